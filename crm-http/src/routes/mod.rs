//! The API's routes (see `../shared/API.md`), mounted by [`router`].

mod auth;
mod health;
mod list;
mod more;
mod records;
mod transfer;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use crm_core::model::{Account, Activity, Contact, Deal, Lead};

use crate::ApiState;
pub(crate) use records::stale;

/// Largest request body accepted (imports aside): 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest import body: 32 MiB (about 100k leads of CSV).
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// The API router with its middleware: request ids, security headers, CORS allow-list,
/// request timeout, structured request logs, body limit.
pub fn router(state: ApiState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        state.config.request_timeout,
    );
    let hsts = state.config.hsts;
    let auth_routes = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::limit::auth_limit));
    let resources = Router::new()
        .route("/auth/me", get(auth::me))
        .route("/leads/import", post(transfer::import_leads).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)))
        .route("/leads/export", get(transfer::export_leads))
        .route("/leads/{id}/convert", post(more::convert))
        .route("/{resource}/{id}/timeline", get(more::timeline))
        .route("/audit-logs", get(more::audit_logs))
        .route("/users", get(more::users).post(more::add_user))
        .route("/users/{id}", get(more::user).patch(more::update_user).delete(more::remove_user))
        .route("/api-keys", get(more::api_keys).post(more::create_api_key))
        .route("/api-keys/{id}", delete(more::revoke_api_key))
        .route("/pipelines", get(more::pipelines).post(more::create_pipeline))
        .route("/pipelines/{id}", get(more::pipeline).patch(more::update_pipeline))
        .merge(records::routes::<Lead>("/leads"))
        .merge(records::routes::<Contact>("/contacts"))
        .merge(records::routes::<Account>("/accounts"))
        .merge(records::routes::<Deal>("/deals"))
        .merge(records::routes::<Activity>("/activities"))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::idempotency));
    let api = Router::new().merge(auth_routes).merge(resources).fallback(records::not_found);
    Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .nest("/api", api)
        .fallback(records::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(timeout)
        .layer(cors)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::middleware::request_id_and_headers(req, next, hsts)
        }))
        .with_state(state)
}

/// CORS for exactly the configured origins (none by default).
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("x-tenant"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::ETAG, header::LOCATION, header::HeaderName::from_static("x-request-id")])
}
