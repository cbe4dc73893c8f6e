//! The API's routes (see `../shared/API.md`), mounted by [`router`].

mod auth;
mod health;
mod jobs;
mod list;
mod more;
mod records;
mod records_csv;
mod transfer;
mod webhook_endpoints;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::ApiState;
pub(crate) use records::stale;

/// Largest request body accepted (imports aside): 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest import body: 32 MiB (about 100k leads of CSV).
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// The API router with its middleware: request ids, security headers, CORS allow-list,
/// request timeout, structured request logs, body limit. It serves its own OpenAPI document at
/// `GET /openapi.json`, built from the same route registrations.
pub fn router(state: ApiState) -> Router {
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        state.config().request_timeout,
    );
    let hsts = state.config().hsts;
    let (router, mut doc) = documented_routes(&state).split_for_parts();
    crate::openapi::cross_cutting(&mut doc);
    let router = router
        .layer(axum::Extension(crate::openapi::Served::new(doc)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(timeout);
    // With no origin allowed, browsers refuse cross-origin calls on their own; the layer would
    // only add `Vary` headers, at 4 % of a read's CPU.
    let router = if state.config().cors_origins.is_empty() {
        router
    } else {
        router.layer(cors_layer(&state.config().cors_origins))
    };
    router
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::middleware::request_id_and_headers(req, next, hsts)
        }))
        .with_state(state)
}

/// Every route, each registered with its OpenAPI description (`routes!` reads the handler's
/// `#[utoipa::path]`), so a route cannot be served undocumented or documented unserved.
fn documented_routes(state: &ApiState) -> OpenApiRouter<ApiState> {
    let auth_routes = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::limit::auth_limit));
    let resources = OpenApiRouter::new()
        .routes(routes!(auth::me))
        .routes(keyed(state, routes!(transfer::import_leads)).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)))
        .routes(routes!(transfer::export_leads))
        .routes(keyed(state, routes!(more::convert)))
        .routes(routes!(more::timeline))
        .routes(routes!(more::audit_logs))
        .routes(routes!(more::list_users))
        .routes(keyed(state, routes!(more::add_user)))
        .routes(routes!(more::get_user, more::remove_user))
        .routes(keyed(state, routes!(more::update_user)))
        .routes(routes!(more::list_api_keys))
        .routes(keyed(state, routes!(more::create_api_key)))
        .routes(routes!(more::revoke_api_key))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(keyed(state, routes!(jobs::retry_job)))
        .routes(keyed(state, routes!(jobs::cancel_job)))
        .routes(keyed(state, routes!(webhook_endpoints::create_webhook)))
        .routes(keyed(state, routes!(webhook_endpoints::rotate_webhook_secret)))
        .routes(routes!(webhook_endpoints::list_webhook_deliveries))
        .routes(keyed(state, routes!(webhook_endpoints::test_webhook)))
        .routes(keyed(state, routes!(webhook_endpoints::redeliver_webhook)))
        .routes(routes!(more::list_pipelines))
        .routes(keyed(state, routes!(more::create_pipeline)))
        .routes(routes!(more::get_pipeline))
        .routes(keyed(state, routes!(more::update_pipeline)))
        .merge(records::routes(state));
    // The API paths carry their `/api` prefix rather than being nested under it: a nested
    // route rebuilds every request's URI to strip the prefix.
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(crate::openapi::document))
        .merge(auth_routes)
        .merge(resources)
        .fallback(records::not_found)
}

/// Sends a `POST` or `PATCH` handler through the idempotency layer. Register only write
/// handlers with it (reads on the same path go in a plain `routes!`; axum merges the two), so a
/// read pays nothing for it. Layered per method router (not with `Router::route_layer`, which
/// also wraps the 405 answer), so a method the path does not serve is 405 whatever
/// `Idempotency-Key` it carries.
pub(super) fn keyed(state: &ApiState, route: UtoipaMethodRouter<ApiState>) -> UtoipaMethodRouter<ApiState> {
    let (schemas, paths, methods) = route;
    let layer = axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::idempotency);
    (schemas, paths, methods.route_layer(layer))
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
