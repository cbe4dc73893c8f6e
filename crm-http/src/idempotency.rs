//! `Idempotency-Key` on `POST` and `PATCH`: the first request with a key runs; a retry with the
//! same key and the same request gets the first response again (same status, body, `Location`
//! and `ETag`, plus `Idempotent-Replayed: true`); the same key with a different request is 422;
//! a retry while the first is still running is 409.
//!
//! The rules and the storage live in core ([`crm_core::Crm::claim_idempotency_key`]): the
//! recorded response commits in the same transaction as the request's writes. This layer only
//! reads the request, records the response, and replays it. Keys are scoped to the tenant and
//! principal (user or API key). Responses marked `Cache-Control: no-store` carry secrets (a new
//! API key) and are never stored: a retry of such a request is a 409 that says it succeeded.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::{Error, IdempotencyClaim, Scope};
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, Authenticated};
use crate::routes::{MAX_BODY_BYTES, MAX_IMPORT_BYTES};

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The response headers a replay repeats; the rest are per request (request id, rate limits).
const RECORDED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// A response as stored for replay: core keeps it as opaque text.
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    status: u16,
    headers: Vec<(String, String)>,
    /// `None` when the response was not kept (it carried a secret).
    body: Option<String>,
}

/// Runs keyed `POST`/`PATCH` requests at most once (see the module docs); other requests pass.
pub(crate) async fn idempotency(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let keyed = matches!(*request.method(), Method::POST | Method::PATCH)
        && request.headers().contains_key(&IDEMPOTENCY_KEY);
    if !keyed {
        return next.run(request).await;
    }
    match run_once(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_once(state: &ApiState, request: Request, next: Next) -> Result<Response, Response> {
    let (mut parts, body) = request.into_parts();
    // Bytes that are not text become U+FFFD, which the key rule refuses like any non-ASCII.
    let key = parts.headers.get(&IDEMPOTENCY_KEY).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let key = key.unwrap_or_default();
    crm_core::check_idempotency_key(&key).map_err(|e| ApiError::Core(e).into_response())?;
    let Auth(scope) =
        Auth::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
    let limit = if parts.uri.path().ends_with("/leads/import") { MAX_IMPORT_BYTES } else { MAX_BODY_BYTES };
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::too_large().into_response())?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes).unwrap_or_default();
    // The path as the client sent it, before any nesting stripped a prefix.
    let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0);
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default().to_owned();
    let request_parts: [&[u8]; 4] =
        [parts.method.as_str().as_bytes(), target.as_bytes(), content_type, &body];
    let claim = state.crm().claim_idempotency_key(&scope, &key, &request_parts).await;
    let scope = match claim.map_err(|e| ApiError::Core(e).into_response())? {
        IdempotencyClaim::Replay(text) => return Ok(replay(&text)),
        IdempotencyClaim::Run(scope) => scope,
    };
    let had_if_match = parts.headers.contains_key(header::IF_MATCH);
    parts.extensions.insert(Authenticated(scope.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        abandon(state, &scope).await;
        return Ok(response);
    }
    let (response_parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        abandon(state, &scope).await;
        return Err(ApiError::Core(Error::internal("could not read a response body")).into_response());
    };
    let recorded = record(response_parts.status, &response_parts.headers, &body);
    match state.crm().complete_idempotency_key(&scope, recorded).await {
        Ok(()) => Ok(Response::from_parts(response_parts, Body::from(body))),
        Err(error) => {
            abandon(state, &scope).await;
            // The writes were held until now, so a lost version race surfaces here; answer it
            // as the handler would have.
            if had_if_match && error.is_stale_version() {
                return Err(crate::routes::stale().into_response());
            }
            Err(ApiError::Core(error).into_response())
        }
    }
}

/// Frees the key of a request that failed, so a retry runs again.
async fn abandon(state: &ApiState, scope: &Scope) {
    if let Err(error) = state.crm().abandon_idempotency_key(scope).await {
        tracing::warn!(%error, "could not release an idempotency key; it frees itself when its lease ends");
    }
}

fn record(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> String {
    let secret = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("no-store")));
    let text = std::str::from_utf8(body).ok().filter(|_| !secret);
    let recorded = Recorded {
        status: status.as_u16(),
        headers: RECORDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: text.map(str::to_owned),
    };
    serde_json::to_string(&recorded).unwrap_or_default()
}

fn replay(text: &str) -> Response {
    let recorded: Option<Recorded> = serde_json::from_str(text).ok();
    let Some(Recorded { status, headers, body: Some(body) }) = recorded else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "already-completed",
            "Already completed",
            "A request with this Idempotency-Key already succeeded. Its response held a secret, \
             which is shown only once and not kept; list the resource to see the result.",
        )
        .into_response();
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(REPLAYED.clone(), HeaderValue::from_static("true"));
    response
}
