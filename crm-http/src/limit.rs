//! Rate limits (GCRA, `governor`): per client address on `/api/auth/*`, per tenant and per API
//! key elsewhere. Refusals are 429 problems with `Retry-After`; every limited response carries
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.

use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::ApiState;
use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// What the API limit counts against: a tenant's users together, or one API key. A value, so
/// no string is built for it at every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ApiKeyOrTenant {
    Tenant(crm_core::TenantId),
    ApiKey(crm_core::model::ApiKeyId),
}

/// Requests per minute allowed per key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Per client address on `/api/auth/*` (default 30).
    pub auth_per_minute: u32,
    /// Per tenant, and per API key, on everything else (default 1200).
    pub api_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { auth_per_minute: 30, api_per_minute: 1200 }
    }
}

/// The limiters of one router.
#[derive(Debug)]
pub(crate) struct Limiters {
    /// Per client address (`None`: unknown, all such clients together).
    auth: Keyed<Option<std::net::IpAddr>>,
    api: Keyed<ApiKeyOrTenant>,
    limits: RateLimits,
}

fn keyed<K: Clone + Eq + std::hash::Hash>(per_minute: u32) -> Keyed<K> {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>()
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self { auth: keyed(limits.auth_per_minute), api: keyed(limits.api_per_minute), limits }
    }

    /// Checks one request against the API limiter for `key` (a tenant or an API key): the
    /// budget to report in the response, refused or not, and whether it may go on.
    pub(crate) fn check_api(&self, key: ApiKeyOrTenant) -> (Budget, Result<(), ApiError>) {
        check(&self.api, key, self.limits.api_per_minute)
    }
}

/// How many checks pass between sweeps of keys whose budget is full again.
const SWEEP_EVERY: u64 = 4096;
static CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the `RateLimit-*` headers of one response say. Plain numbers, so a request carries no
/// header map of its own until the response is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl Budget {
    pub(crate) fn add_headers(self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

fn check<K: Clone + Eq + std::hash::Hash>(
    limiter: &Keyed<K>,
    key: K,
    limit: u32,
) -> (Budget, Result<(), ApiError>) {
    // Keyed limiters keep a cell per key; without sweeping, a client rotating addresses or keys
    // would grow memory without bound.
    if CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
    match limiter.check_key(&key) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            (Budget { limit, remaining, reset_secs: 60 }, Ok(()))
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let refused = Err(ApiError::Core(crm_core::Error::RateLimited { retry_after_secs: secs }));
            (Budget { limit, remaining: 0, reset_secs: secs }, refused)
        }
    }
}

/// Per-address limit for the authentication endpoints (registration, login, refresh, logout).
pub(crate) async fn auth_limit(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let trusted = &state.config().trusted_proxies;
    let address = crate::client_ip::client_ip(request.extensions(), request.headers(), trusted);
    let (budget, allowed) = check(&state.limiters().auth, address, state.limiters().limits.auth_per_minute);
    let mut response = match allowed {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    };
    budget.add_headers(response.headers_mut());
    response
}
