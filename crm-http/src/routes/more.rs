//! Conversion, timelines, the audit log, members, API keys, pipelines and lead import.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_core::model::{
    ActivityTarget, ApiKey, Kind, LeadId, Member, NewApiKey, NewMember, NewPipeline, Pipeline,
};
use crm_core::{AuditEntry, AuditQuery, Conversion, ConvertLead, Error, Page, Role, TimelineItem};
use serde::Deserialize;
use uuid::Uuid;

use super::records::if_match;
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, StrictQuery};

fn id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| Error::NotFound.into())
}

pub async fn convert(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(lead): Path<String>,
    JsonBody(input): JsonBody<ConvertLead>,
) -> Result<Json<Conversion>, ApiError> {
    let lead: LeadId = id(&lead)?.into();
    Ok(Json(state.crm.convert_lead(&scope, lead, input).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn timeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path((resource, record)): Path<(String, String)>,
    StrictQuery(page): StrictQuery<PageParams>,
) -> Result<Json<Page<TimelineItem>>, ApiError> {
    let kind = match resource.as_str() {
        "leads" => Kind::Lead,
        "contacts" => Kind::Contact,
        "accounts" => Kind::Account,
        "deals" => Kind::Deal,
        _ => return Err(Error::NotFound.into()),
    };
    let target = ActivityTarget::from_parts(kind, id(&record)?).ok_or(Error::NotFound)?;
    Ok(Json(state.crm.timeline(&scope, target, page.cursor.as_deref(), page.limit).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    limit: Option<u32>,
    cursor: Option<String>,
    actor_id: Option<Uuid>,
    resource: Option<String>,
    resource_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

pub async fn audit_logs(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    StrictQuery(p): StrictQuery<AuditParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let resource = match p.resource.as_deref() {
        Some(name) => {
            Some(Kind::parse(name).ok_or_else(|| ApiError::invalid("resource", "is not a resource kind"))?)
        }
        None => None,
    };
    let query = AuditQuery {
        actor: p.actor_id.map(Into::into),
        resource,
        resource_id: p.resource_id,
        from: p.from,
        to: p.to,
    };
    Ok(Json(state.crm.audit_log(&scope, query, p.cursor.as_deref(), p.limit).await?))
}

pub async fn users(State(state): State<ApiState>, Auth(scope): Auth) -> Result<Json<Page<Member>>, ApiError> {
    let members = state.crm.members(&scope).await?;
    Ok(Json(Page { data: members, next_cursor: None }))
}

pub async fn add_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    JsonBody(new): JsonBody<NewMember>,
) -> Result<Response, ApiError> {
    let member = state.crm.add_member(&scope, new).await?;
    Ok(tagged(StatusCode::CREATED, &member, member.version))
}

/// A JSON response with `ETag: "<version>"`.
fn tagged(status: StatusCode, body: &impl serde::Serialize, version: i64) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Maps the core's stale-version conflict to 412 when the client stated a version; other
/// conflicts (the last owner) stay 409.
fn precondition(expected: Option<i64>) -> impl Fn(Error) -> ApiError {
    move |e| match e {
        Error::Conflict(_) if expected.is_some() && e.to_string() == Error::stale_version().to_string() => {
            super::records::stale()
        }
        other => other.into(),
    }
}

pub async fn user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let member = state.crm.member(&scope, id(&user)?.into()).await?;
    Ok(tagged(StatusCode::OK, &member, member.version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    role: Role,
}

pub async fn update_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<RolePatch>,
) -> Result<Response, ApiError> {
    let user = id(&user)?.into();
    let expected = if_match(&headers)?;
    let version = match expected {
        Some(v) => v,
        None => state.crm.member(&scope, user).await?.version,
    };
    let member =
        state.crm.change_role(&scope, user, version, patch.role).await.map_err(precondition(expected))?;
    Ok(tagged(StatusCode::OK, &member, member.version))
}

pub async fn remove_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    state.crm.remove_member(&scope, id(&user)?.into(), expected).await.map_err(precondition(expected))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn api_keys(
    State(state): State<ApiState>,
    Auth(scope): Auth,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    Ok(Json(Page { data: state.crm.api_keys(&scope).await?, next_cursor: None }))
}

pub async fn create_api_key(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    JsonBody(new): JsonBody<NewApiKey>,
) -> Result<Response, ApiError> {
    let created = state.crm.create_api_key(&scope, new).await?;
    let mut response = (StatusCode::CREATED, Json(&created)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub async fn revoke_api_key(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    state.crm.revoke_api_key_at(&scope, id(&key)?.into(), expected).await.map_err(precondition(expected))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pipelines(
    State(state): State<ApiState>,
    Auth(scope): Auth,
) -> Result<Json<Page<Pipeline>>, ApiError> {
    Ok(Json(Page { data: state.crm.pipelines(&scope).await?, next_cursor: None }))
}

pub async fn create_pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    JsonBody(new): JsonBody<NewPipeline>,
) -> Result<Response, ApiError> {
    let pipeline = state.crm.create_pipeline(&scope, new).await?;
    Ok(tagged(StatusCode::CREATED, &pipeline, pipeline.meta.version))
}

pub async fn pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(p): Path<String>,
) -> Result<Response, ApiError> {
    let pipeline = state.crm.pipeline(&scope, id(&p)?.into()).await?;
    Ok(tagged(StatusCode::OK, &pipeline, pipeline.meta.version))
}

pub async fn update_pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(p): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<crm_core::model::PipelinePatch>,
) -> Result<Response, ApiError> {
    let id = id(&p)?.into();
    let expected = if_match(&headers)?;
    let version = match expected {
        Some(v) => v,
        None => state.crm.pipeline(&scope, id).await?.meta.version,
    };
    let pipeline =
        state.crm.update_pipeline(&scope, id, version, patch).await.map_err(precondition(expected))?;
    Ok(tagged(StatusCode::OK, &pipeline, pipeline.meta.version))
}
