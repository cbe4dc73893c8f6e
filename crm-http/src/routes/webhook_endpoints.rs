//! The two webhook endpoint operations that show a secret (admins): create and rotate. The
//! other operations on `/api/webhooks` are the generic record ones (`records::webhooks`).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::WebhookWithSecret;
use crm_core::model::NewWebhook;

use super::records::{IfMatch, if_match, parse_id, stale};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};
use crate::openapi::{Conflict, PreconditionFailed};

/// The endpoint with its secret, and the endpoint's version as `ETag`.
fn shown_once(status: StatusCode, created: &WebhookWithSecret) -> Response {
    let mut response = (status, axum::Json(created)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", created.webhook.meta.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Create webhook
///
/// A new endpoint for the events its `event_types` match (`deal.created`, `deal.*`, `*`),
/// signed per the Standard Webhooks specification. The answer holds the signing `secret`
/// (`whsec_…`): it is shown this once.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "The new endpoint and its secret.", body = WebhookWithSecret, headers(
            ("Location" = String, description = "The new endpoint's URL."),
            ("ETag" = String, description = "The endpoint's `version`, quoted."),
        )),
    )
)]
pub async fn create_webhook(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    OriginalUri(uri): OriginalUri,
    JsonBody(new): JsonBody<NewWebhook>,
) -> Result<Response, ApiError> {
    let created = state.crm().create_webhook(&scope, new).await?;
    let mut response = shown_once(StatusCode::CREATED, &created);
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), created.webhook.meta.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Rotate a webhook's secret
///
/// Gives the endpoint a new signing secret, shown this once. For 24 hours deliveries carry a
/// second signature by the old secret, so receivers can switch without missing one.
#[utoipa::path(
    post,
    path = "/api/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("id" = Uuid, Path, description = "The endpoint."), IfMatch),
    responses(
        (status = 200, description = "The endpoint and its new secret.", body = WebhookWithSecret, headers(
            ("ETag" = String, description = "The endpoint's new `version`, quoted."),
        )),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    match state.crm().rotate_webhook_secret(&scope, parse_id(&id)?, expected).await {
        Ok(rotated) => Ok(shown_once(StatusCode::OK, &rotated)),
        Err(e) if expected.is_some() && e.is_stale_version() => Err(stale()),
        Err(e) => Err(e.into()),
    }
}
