//! # crm-http
//!
//! The optional axum adapter of the crm library: a [`Router`](axum::Router) a host mounts in
//! its own app, serving the REST API over a [`crm_core::Crm`]. It holds no business rule: it
//! authenticates, maps JSON to core calls, and maps core errors to RFC 9457 problem responses.
//!
//! ```no_run
//! # async fn demo(crm: crm_core::Crm) {
//! let app = axum::Router::new().nest("/crm", crm_http::router(crm_http::ApiState::new(crm)));
//! # }
//! ```

mod error;
mod extract;
mod middleware;
mod problem;
mod routes;

pub use error::ApiError;
pub use problem::{Problem, ProblemField};
pub use routes::router;

use crm_core::Crm;

/// What every handler gets: the CRM and the HTTP settings.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The services.
    pub crm: Crm,
}

impl ApiState {
    /// State over a CRM.
    pub fn new(crm: Crm) -> Self {
        Self { crm }
    }
}
