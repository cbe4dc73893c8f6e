//! Every failure becomes an `application/problem+json` response with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::Error;

use crate::problem::Problem;

/// A handler error: a core error, or a problem built at the HTTP edge (bad JSON, wrong media
/// type, stale `If-Match`).
#[derive(Debug)]
pub enum ApiError {
    /// From the core.
    Core(Error),
    /// From the edge, already shaped.
    Problem(Box<Problem>),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Core(e)
    }
}

impl ApiError {
    /// An edge problem with a status, a type slug, a title and a detail.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError::Problem(Box::new(Problem {
            kind: format!("https://crm.dev/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: None,
            errors: Vec::new(),
        }))
    }

    /// 413 for a body over the limit.
    pub fn too_large() -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Body too large", "The body is too large.")
    }

    /// 422 naming one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Core(Error::invalid(field, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::Core(error) => {
                if matches!(error, Error::Internal(_) | Error::Unavailable(_)) {
                    tracing::error!(error = ?error, "request failed");
                }
                let retry = match &error {
                    Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
                    _ => None,
                };
                let mut response = problem_response(Problem::from_error(&error, None));
                if let Some(secs) = retry {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return response;
            }
            ApiError::Problem(p) => *p,
        };
        problem_response(problem)
    }
}

/// The challenge of every 401: a bearer token (an access token, or an API key, which also goes
/// in `X-API-Key`).
pub(crate) const WWW_AUTHENTICATE: &str = "Bearer realm=\"crm\"";

/// Serializes a problem; the request-id middleware fills `request_id` on the way out.
pub(crate) fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(Problem::CONTENT_TYPE));
    if status == StatusCode::UNAUTHORIZED {
        // RFC 9110 §11.6.1: a 401 names the scheme that would be accepted.
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE));
    }
    response.extensions_mut().insert(problem);
    response
}
