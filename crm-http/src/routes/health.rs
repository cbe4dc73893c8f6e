//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;

/// The process is up.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers.
pub async fn ready(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    match state.crm.ping().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "The store does not answer.",
        )),
    }
}
