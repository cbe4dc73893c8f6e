//! The webhook operations beyond the generic record ones (`records::webhooks`), admins only:
//! create and rotate, the two answers that show a secret; deliveries with their attempts; a
//! test event; redelivery.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::delivery::Delivery;
use crm_core::model::NewWebhook;
use crm_core::{DeliveryLog, Page, WebhookWithSecret};
use serde::Deserialize;

use super::records::{IfMatch, if_match, parse_id, stale};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, StrictQuery};
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

/// The query of a delivery list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Page size.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^A(?:[Q-Za-fw-z0-9_-][A-Za-z0-9_-]{20}[AEIMQUYcgkosw048]|[w-z0-9_-][A-Za-z0-9_-]{31}[AQgw])$"
    )]
    cursor: Option<String>,
}

/// List a webhook's deliveries
///
/// The endpoint's deliveries, newest first, each with every attempt: when, the status it
/// answered, how long it took, and the start of its answer or why there was none.
#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "The endpoint."), DeliveryParams),
    responses((status = 200, description = "A page of deliveries.", body = Page<DeliveryLog>))
)]
pub async fn list_webhook_deliveries(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
    StrictQuery(p): StrictQuery<DeliveryParams>,
) -> Result<Json<Page<DeliveryLog>>, ApiError> {
    let page = state.crm().webhook_deliveries(&scope, parse_id(&id)?, p.cursor.as_deref(), p.limit).await?;
    Ok(Json(page))
}

/// Send a test event
///
/// Delivers a `webhook.test` event to the endpoint now, whatever its event types: a way to
/// check the receiver and its signature verification.
#[utoipa::path(
    post,
    path = "/api/webhooks/{id}/test",
    tag = "webhooks",
    operation_id = "test_webhook",
    params(("id" = Uuid, Path, description = "The endpoint.")),
    responses((status = 202, description = "The delivery, on its way.", body = Delivery))
)]
pub async fn test_webhook(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.crm().send_test_webhook(&scope, parse_id(&id)?).await?)))
}

/// Redeliver
///
/// Sends a delivery's event again, as a new delivery after the endpoint's others about the
/// same record, whatever came of the first.
#[utoipa::path(
    post,
    path = "/api/webhooks/deliveries/{id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliver_webhook",
    params(("id" = Uuid, Path, description = "The delivery.")),
    responses((status = 202, description = "The new delivery, on its way.", body = Delivery))
)]
pub async fn redeliver_webhook(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.crm().redeliver(&scope, parse_id(&id)?).await?)))
}
