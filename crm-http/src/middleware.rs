//! Request ids and security headers on every response, problems included.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::problem_response;
use crate::extract::RateLimitSlot;
use crate::problem::Problem;

/// The request's id, as echoed in `X-Request-Id` and audit entries.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Echoes a sane incoming `X-Request-Id` (1–128 visible ASCII characters) or makes one, puts it
/// in problem bodies, and adds the security headers of the API contract.
pub async fn request_id_and_headers(mut request: Request, next: Next, hsts: bool) -> Response {
    let incoming = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok());
    let id = match incoming {
        Some(id) if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => {
            id.to_owned()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    };
    request.extensions_mut().insert(RequestId(id.clone()));
    let slot = RateLimitSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(limits) = slot.0.lock().ok().and_then(|mut s| s.take()) {
        response.headers_mut().extend(limits);
    }
    if response.status().as_u16() >= 400 && response.extensions().get::<Problem>().is_none() {
        // A rejection from axum or a layer (405, a malformed path or query): same format as ours.
        let status = response.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = title.to_lowercase().replace(' ', "-");
        let mut replacement = problem_response(Problem {
            kind: format!("https://crm.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: format!("{title}."),
            request_id: None,
            errors: Vec::new(),
        });
        for (name, value) in response.headers() {
            if name == header::ALLOW || name == header::RETRY_AFTER {
                replacement.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response = replacement;
    }
    if let Some(mut problem) = response.extensions_mut().remove::<Problem>() {
        problem.request_id = Some(id.clone());
        let headers = std::mem::take(response.headers_mut());
        response = problem_response(problem);
        for (name, value) in headers.iter() {
            if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
    ];
    for (name, value) in fixed {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}
