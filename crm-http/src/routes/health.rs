//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::ApiState;
use crate::error::ApiError;
use crate::openapi::Unavailable;

/// A health check's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: HealthStatus,
}

/// `ok` from liveness, `ready` from readiness.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum HealthStatus {
    Ok,
    Ready,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    operation_id = "health",
    security(),
    responses((status = 200, description = "The process is up: `{\"status\": \"ok\"}`.", body = Health))
)]
pub async fn live() -> Json<Health> {
    Json(Health { status: HealthStatus::Ok })
}

/// The store answers.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "meta",
    operation_id = "ready",
    security(),
    responses(
        (status = 200, description = "The store answers: `{\"status\": \"ready\"}`.", body = Health),
        (status = 503, response = Unavailable)
    )
)]
pub async fn ready(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    match state.crm().ping().await {
        Ok(()) => Ok(Json(Health { status: HealthStatus::Ready })),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "The store does not answer.",
        )),
    }
}
