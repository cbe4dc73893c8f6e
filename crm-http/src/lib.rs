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

mod client_ip;
mod error;
mod extract;
mod idempotency;
mod limit;
pub mod mailer;
mod middleware;
mod openapi;
mod problem;
mod routes;
pub mod webhook_client;

pub use client_ip::IpRange;
pub use error::ApiError;
pub use limit::RateLimits;
pub use problem::{Problem, ProblemField};
pub use routes::router;

use std::sync::Arc;

use crm_core::Crm;

/// What every handler gets: the CRM and the HTTP settings. One shared allocation, because
/// axum clones the state into every extractor and middleware of every request.
#[derive(Debug, Clone)]
pub struct ApiState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    crm: Crm,
    config: HttpConfig,
    limiters: limit::Limiters,
}

impl ApiState {
    /// State over a CRM with default settings.
    pub fn new(crm: Crm) -> Self {
        Self::build(crm, HttpConfig::default())
    }

    /// Replaces the HTTP settings (and so starts fresh rate-limit budgets).
    pub fn with_config(self, config: HttpConfig) -> Self {
        Self::build(self.0.crm.clone(), config)
    }

    fn build(crm: Crm, config: HttpConfig) -> Self {
        let limiters = limit::Limiters::new(config.rate_limits);
        Self(Arc::new(Shared { crm, config, limiters }))
    }

    /// The services.
    pub fn crm(&self) -> &Crm {
        &self.0.crm
    }

    /// HTTP settings.
    pub fn config(&self) -> &HttpConfig {
        &self.0.config
    }

    pub(crate) fn limiters(&self) -> &limit::Limiters {
        &self.0.limiters
    }
}

/// Edge settings of the API.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins allowed to call the API from a browser (exact `scheme://host[:port]`). Others
    /// get no CORS headers: an origin not on the list is never echoed back.
    pub cors_origins: Vec<String>,
    /// A request taking longer is answered 503 (default 30 s).
    pub request_timeout: std::time::Duration,
    /// Send `Strict-Transport-Security` (set when served over TLS).
    pub hsts: bool,
    /// Request rates.
    pub rate_limits: RateLimits,
    /// With `crm.example.com`, a request to `acme.crm.example.com` names the tenant `acme`
    /// (like `X-Tenant: acme`).
    pub base_domain: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed when finding a client's address
    /// (for per-address limits). Empty by default: the header is ignored.
    pub trusted_proxies: Vec<IpRange>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            request_timeout: std::time::Duration::from_secs(30),
            hsts: false,
            rate_limits: RateLimits::default(),
            base_domain: None,
            trusted_proxies: Vec::new(),
        }
    }
}
