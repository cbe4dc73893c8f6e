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
    let incoming = request.headers().get(&X_REQUEST_ID).filter(|v| {
        let id = v.as_bytes();
        !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
    });
    // The echoed header shares the incoming bytes (visible ASCII, so text); only a made-up id
    // is formatted.
    let (id, id_header) = match incoming {
        Some(v) => (String::from_utf8_lossy(v.as_bytes()).into_owned(), v.clone()),
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            let header = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"));
            (id, header)
        }
    };
    request.extensions_mut().insert(RequestId(id));
    let slot = RateLimitSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    // Room for what is added below, so the map grows once rather than rehashing twice.
    response.headers_mut().reserve(10);
    if let Some(budget) = slot.0.lock().ok().and_then(|mut s| s.take()) {
        budget.add_headers(response.headers_mut());
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
        problem.request_id = id_header.to_str().ok().map(str::to_owned);
        let headers = std::mem::take(response.headers_mut());
        response = problem_response(problem);
        for (name, value) in headers.iter() {
            if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID.clone(), id_header);
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
