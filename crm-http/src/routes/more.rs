//! Conversion, timelines, the audit log, members, API keys, pipelines and lead import.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_core::model::{
    ActivityTarget, ApiKey, Kind, LeadId, Member, NewApiKey, NewMember, NewPipeline, Pipeline,
};
use crm_core::{AuditEntry, AuditQuery, Conversion, ConvertLead, Error, Page, Role, TimelineItem};
use serde::Deserialize;
use uuid::Uuid;

use super::records::{IfMatch, if_match};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, StrictQuery};
use crate::openapi::{Conflict, PreconditionFailed};

fn id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| Error::NotFound.into())
}

/// Convert a lead
///
/// Turns a lead into a contact, optionally with a new account and deal, in one transaction. A
/// lead converts once; converting it again is 409.
#[utoipa::path(
    post,
    path = "/api/leads/{id}/convert",
    tag = "leads",
    operation_id = "convert_lead",
    params(("id" = Uuid, Path, description = "The lead.")),
    request_body = ConvertLead,
    responses(
        (status = 200, description = "What the conversion created; the lead is now `converted`.",
            body = Conversion),
        (status = 409, response = Conflict),
    )
)]
pub async fn convert(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(lead): Path<String>,
    JsonBody(input): JsonBody<ConvertLead>,
) -> Result<Json<Conversion>, ApiError> {
    let lead: LeadId = id(&lead)?.into();
    Ok(Json(state.crm().convert_lead(&scope, lead, input).await?))
}

/// A page of a time-ordered list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^A[g-v][A-Za-z0-9_-]{31}[AQgw]$")]
    cursor: Option<String>,
}

/// A record's timeline
///
/// The record's activities and the audited changes to it, newest first.
#[utoipa::path(
    get,
    path = "/api/{resource}/{id}/timeline",
    tag = "activities",
    operation_id = "timeline",
    params(TimelineResource, ("id" = Uuid, Path, description = "The record."), PageParams),
    responses((status = 200, description = "A page of the timeline.", body = Page<TimelineItem>))
)]
pub async fn timeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path((resource, record)): Path<(String, String)>,
    StrictQuery(page): StrictQuery<PageParams>,
) -> Result<Json<Page<TimelineItem>>, ApiError> {
    // The kinds with a timeline are those whose description says they carry activities.
    let def = crm_core::kind::RECORD_KINDS.iter().find(|d| d.plural == resource && d.carries_activities);
    let kind = def.ok_or(Error::NotFound)?.kind;
    let target = ActivityTarget::from_parts(kind, id(&record)?).ok_or(Error::NotFound)?;
    Ok(Json(state.crm().timeline(&scope, target, page.cursor.as_deref(), page.limit).await?))
}

/// The `{resource}` of a timeline path: the plural of a kind that carries activities, listed
/// from the descriptions so a generated client offers exactly the kinds that have one.
struct TimelineResource;

impl utoipa::IntoParams for TimelineResource {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let plurals = crm_core::kind::RECORD_KINDS.iter().filter(|d| d.carries_activities).map(|d| d.plural);
        vec![
            ParameterBuilder::new()
                .name("resource")
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(plurals))))
                .description(Some("The kind of record."))
                .build(),
        ]
    }
}

/// Filters and page of the audit log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Page size.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^A[g-v][A-Za-z0-9_-]{31}[AQgw]$")]
    cursor: Option<String>,
    /// Only changes made by this user.
    actor_id: Option<Uuid>,
    /// Only changes to this kind of record.
    #[param(value_type = Option<crm_core::model::Kind>)]
    resource: Option<String>,
    /// Only changes to this record.
    resource_id: Option<Uuid>,
    /// Only changes at or after this time.
    from: Option<DateTime<Utc>>,
    /// Only changes before this time.
    to: Option<DateTime<Utc>>,
}

/// The audit log
///
/// Every change to the tenant's records and settings, newest first (admins).
#[utoipa::path(
    get,
    path = "/api/audit-logs",
    tag = "audit",
    operation_id = "list_audit_logs",
    params(AuditParams),
    responses((status = 200, description = "A page of audit entries.", body = Page<AuditEntry>))
)]
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
    Ok(Json(state.crm().audit_log(&scope, query, p.cursor.as_deref(), p.limit).await?))
}

/// List members
///
/// Every member of the tenant, in one page (`next_cursor` is always `null`).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    operation_id = "list_users",
    responses((status = 200, description = "The members.", body = Page<Member>))
)]
pub async fn list_users(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    StrictQuery(NoQuery {}): StrictQuery<NoQuery>,
) -> Result<Json<Page<Member>>, ApiError> {
    let members = state.crm().members(&scope).await?;
    Ok(Json(Page { data: members, next_cursor: None }))
}

/// Add a member
///
/// Adds a user to the tenant with a role, creating the user if the e-mail is new (with the
/// given password). Only owners may grant `owner`.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "users",
    operation_id = "add_user",
    request_body = NewMember,
    responses(
        (status = 201, description = "The new member.", body = Member, headers(
            ("Location" = String, description = "The member's URL."),
            ("ETag" = String, description = "The membership's version, quoted."),
        )),
        (status = 409, response = Conflict),
    )
)]
pub async fn add_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    OriginalUri(uri): OriginalUri,
    JsonBody(new): JsonBody<NewMember>,
) -> Result<Response, ApiError> {
    let member = state.crm().add_member(&scope, new).await?;
    let response = tagged(StatusCode::CREATED, &member, member.version);
    Ok(located(response, &uri, member.user.id))
}

/// The response with `Location: <collection path>/<id>` (the path as the client sent it).
fn located(mut response: Response, collection: &axum::http::Uri, id: impl std::fmt::Display) -> Response {
    let location = format!("{}/{id}", collection.path().trim_end_matches('/'));
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The query of a list that takes no parameters: any parameter is 422 naming it, rather than
/// silently ignored (a client sending `limit` would think it was honoured).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

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
        e if expected.is_some() && e.is_stale_version() => super::records::stale(),
        other => other.into(),
    }
}

/// Get a member
#[utoipa::path(
    get,
    path = "/api/users/{id}",
    tag = "users",
    operation_id = "get_user",
    params(("id" = Uuid, Path, description = "The member's user id.")),
    responses((status = 200, description = "The member.", body = Member,
        headers(("ETag" = String, description = "The membership's version, quoted."))))
)]
pub async fn get_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let member = state.crm().member(&scope, id(&user)?.into()).await?;
    Ok(tagged(StatusCode::OK, &member, member.version))
}

/// A member's new role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// The role. Only owners grant or take `owner`; a tenant keeps at least one owner.
    role: Role,
}

/// Change a member's role
#[utoipa::path(
    patch,
    path = "/api/users/{id}",
    tag = "users",
    operation_id = "update_user",
    params(("id" = Uuid, Path, description = "The member's user id."), IfMatch),
    request_body = RolePatch,
    responses(
        (status = 200, description = "The member with the new role.", body = Member,
            headers(("ETag" = String, description = "The membership's new version, quoted."))),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    )
)]
pub async fn update_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<RolePatch>,
) -> Result<Response, ApiError> {
    let user = id(&user)?.into();
    let expected = if_match(&headers)?;
    let member =
        state.crm().change_role(&scope, user, expected, patch.role).await.map_err(precondition(expected))?;
    Ok(tagged(StatusCode::OK, &member, member.version))
}

/// Remove a member
///
/// Their sessions and the API keys they created stop working; the tenant's last owner cannot
/// be removed (409).
#[utoipa::path(
    delete,
    path = "/api/users/{id}",
    tag = "users",
    operation_id = "remove_user",
    params(("id" = Uuid, Path, description = "The member's user id."), IfMatch),
    responses(
        (status = 204, description = "The member is removed."),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    )
)]
pub async fn remove_user(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    state.crm().remove_member(&scope, id(&user)?.into(), expected).await.map_err(precondition(expected))?;
    Ok(StatusCode::NO_CONTENT)
}

/// List API keys
///
/// The tenant's API keys, revoked ones included, without their secrets.
#[utoipa::path(
    get,
    path = "/api/api-keys",
    tag = "api-keys",
    operation_id = "list_api_keys",
    responses((status = 200, description = "Every key, in one page.", body = Page<ApiKey>))
)]
pub async fn list_api_keys(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    StrictQuery(NoQuery {}): StrictQuery<NoQuery>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    Ok(Json(Page { data: state.crm().api_keys(&scope).await?, next_cursor: None }))
}

/// Create an API key
///
/// The secret is in `key`, shown this once.
#[utoipa::path(
    post,
    path = "/api/api-keys",
    tag = "api-keys",
    operation_id = "create_api_key",
    request_body = NewApiKey,
    responses(
        (status = 201, description = "The key and its secret.", body = crm_core::CreatedApiKey,
            headers(("Cache-Control" = String, description = "`no-store`: the secret is never cached."))),
    )
)]
pub async fn create_api_key(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    JsonBody(new): JsonBody<NewApiKey>,
) -> Result<Response, ApiError> {
    let created = state.crm().create_api_key(&scope, new).await?;
    let mut response = (StatusCode::CREATED, Json(&created)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revoke an API key
///
/// It stops authenticating at once. Revoking a revoked key changes nothing.
#[utoipa::path(
    delete,
    path = "/api/api-keys/{id}",
    tag = "api-keys",
    operation_id = "revoke_api_key",
    params(("id" = Uuid, Path, description = "The key."), IfMatch),
    responses(
        (status = 204, description = "The key is revoked."),
        (status = 412, response = PreconditionFailed),
    )
)]
pub async fn revoke_api_key(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    state
        .crm()
        .revoke_api_key_at(&scope, id(&key)?.into(), expected)
        .await
        .map_err(precondition(expected))?;
    Ok(StatusCode::NO_CONTENT)
}

/// List pipelines
#[utoipa::path(
    get,
    path = "/api/pipelines",
    tag = "pipelines",
    operation_id = "list_pipelines",
    responses((status = 200, description = "Every pipeline, in one page.", body = Page<Pipeline>))
)]
pub async fn list_pipelines(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    StrictQuery(NoQuery {}): StrictQuery<NoQuery>,
) -> Result<Json<Page<Pipeline>>, ApiError> {
    Ok(Json(Page { data: state.crm().pipelines(&scope).await?, next_cursor: None }))
}

/// Create a pipeline
#[utoipa::path(
    post,
    path = "/api/pipelines",
    tag = "pipelines",
    operation_id = "create_pipeline",
    request_body = NewPipeline,
    responses((status = 201, description = "The new pipeline.", body = Pipeline, headers(
        ("Location" = String, description = "The pipeline's URL."),
        ("ETag" = String, description = "The pipeline's version, quoted."),
    )))
)]
pub async fn create_pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    OriginalUri(uri): OriginalUri,
    JsonBody(new): JsonBody<NewPipeline>,
) -> Result<Response, ApiError> {
    let pipeline = state.crm().create_pipeline(&scope, new).await?;
    let response = tagged(StatusCode::CREATED, &pipeline, pipeline.meta.version);
    Ok(located(response, &uri, pipeline.meta.id))
}

/// Get a pipeline
#[utoipa::path(
    get,
    path = "/api/pipelines/{id}",
    tag = "pipelines",
    operation_id = "get_pipeline",
    params(("id" = Uuid, Path, description = "The pipeline.")),
    responses((status = 200, description = "The pipeline.", body = Pipeline,
        headers(("ETag" = String, description = "The pipeline's version, quoted."))))
)]
pub async fn get_pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(p): Path<String>,
) -> Result<Response, ApiError> {
    let pipeline = state.crm().pipeline(&scope, id(&p)?.into()).await?;
    Ok(tagged(StatusCode::OK, &pipeline, pipeline.meta.version))
}

/// Rename or restage a pipeline
///
/// `stages`, when given, is the complete new list; stages that still hold deals cannot be
/// removed (409).
#[utoipa::path(
    patch,
    path = "/api/pipelines/{id}",
    tag = "pipelines",
    operation_id = "update_pipeline",
    params(
        ("id" = Uuid, Path, description = "The pipeline."),
        IfMatch,
    ),
    request_body = crm_core::model::PipelinePatch,
    responses(
        (status = 200, description = "The changed pipeline.", body = Pipeline,
            headers(("ETag" = String, description = "The pipeline's new version, quoted."))),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    )
)]
pub async fn update_pipeline(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(p): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<crm_core::model::PipelinePatch>,
) -> Result<Response, ApiError> {
    let id = id(&p)?.into();
    let expected = if_match(&headers)?;
    let pipeline =
        state.crm().update_pipeline(&scope, id, expected, patch).await.map_err(precondition(expected))?;
    Ok(tagged(StatusCode::OK, &pipeline, pipeline.meta.version))
}
