//! The API's routes (see `../shared/API.md`), mounted by [`router`].

mod auth;
mod health;
mod list;
mod more;
mod records;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use crm_core::model::{Account, Activity, Contact, Deal, Lead};

use crate::ApiState;

/// Largest request body accepted (imports aside): 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The API router with its middleware: request ids, security headers, body limit.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/leads/import", post(more::import_leads))
        .route("/leads/{id}/convert", post(more::convert))
        .route("/{resource}/{id}/timeline", get(more::timeline))
        .route("/audit-logs", get(more::audit_logs))
        .route("/users", get(more::users).post(more::add_user))
        .route("/users/{id}", get(more::user).patch(more::update_user).delete(more::remove_user))
        .route("/api-keys", get(more::api_keys).post(more::create_api_key))
        .route("/api-keys/{id}", delete(more::revoke_api_key))
        .route("/pipelines", get(more::pipelines).post(more::create_pipeline))
        .route("/pipelines/{id}", get(more::pipeline))
        .merge(records::routes::<Lead>("/leads"))
        .merge(records::routes::<Contact>("/contacts"))
        .merge(records::routes::<Account>("/accounts"))
        .merge(records::routes::<Deal>("/deals"))
        .merge(records::routes::<Activity>("/activities"))
        .fallback(records::not_found);
    Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .nest("/api", api)
        .fallback(records::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::middleware::request_id_and_headers))
        .with_state(state)
}
