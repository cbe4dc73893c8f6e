//! The tenant's background jobs (`/api/jobs`, admins): list, inspect, retry, cancel.

use axum::Json;
use axum::extract::{Path, State};
use crm_core::Page;
use crm_core::job::{Job, JobState};
use serde::Deserialize;

use super::records::parse_id;
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, StrictQuery};
use crate::openapi::Conflict;

/// The query of the job list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Page size.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^A(?:[Q-Za-fw-z0-9_-][A-Za-z0-9_-]{20}[AEIMQUYcgkosw048]|[w-z0-9_-][A-Za-z0-9_-]{31}[AQgw])$"
    )]
    cursor: Option<String>,
}

/// List jobs
///
/// The tenant's background jobs, newest first (admins).
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    operation_id = "list_jobs",
    params(JobParams),
    responses((status = 200, description = "A page of jobs.", body = Page<Job>))
)]
pub async fn list_jobs(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    StrictQuery(p): StrictQuery<JobParams>,
) -> Result<Json<Page<Job>>, ApiError> {
    Ok(Json(state.crm().jobs(&scope, p.state, p.cursor.as_deref(), p.limit).await?))
}

/// Get a job
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    params(("id" = Uuid, Path, description = "The job.")),
    responses((status = 200, description = "The job.", body = Job))
)]
pub async fn get_job(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.crm().job(&scope, parse_id::<Job>(&id)?).await?))
}

/// Retry a job
///
/// Runs a dead or cancelled job again, now, with fresh attempts; any other state is 409.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/retry",
    tag = "jobs",
    operation_id = "retry_job",
    params(("id" = Uuid, Path, description = "The job.")),
    responses(
        (status = 200, description = "The job, pending again.", body = Job),
        (status = 409, response = Conflict),
    )
)]
pub async fn retry_job(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.crm().retry_job(&scope, parse_id::<Job>(&id)?).await?))
}

/// Cancel a job
///
/// Stops a pending or dead job; a running one finishes its attempt first, so it is 409, as is
/// a job already finished.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    tag = "jobs",
    operation_id = "cancel_job",
    params(("id" = Uuid, Path, description = "The job.")),
    responses(
        (status = 200, description = "The job, cancelled.", body = Job),
        (status = 409, response = Conflict),
    )
)]
pub async fn cancel_job(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.crm().cancel_job(&scope, parse_id::<Job>(&id)?).await?))
}
