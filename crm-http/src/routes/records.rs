//! The five record resources through one generic set of handlers.

use axum::Router;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::model::Record;
use crm_core::{Error, Id, Page, Scope};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::list;
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};

/// `GET/POST <path>` and `GET/PATCH/DELETE <path>/{id}` for one record type.
pub fn routes<R>(path: &'static str) -> Router<ApiState>
where
    R: Record,
    R::New: DeserializeOwned,
    R::Patch: DeserializeOwned,
{
    Router::new()
        .route(path, get(list_records::<R>).post(create::<R>))
        .route(&format!("{path}/{{id}}"), get(get_one::<R>).patch(update::<R>).delete(delete::<R>))
}

/// 404 in the problem format, for unknown paths and malformed ids alike.
pub async fn not_found() -> ApiError {
    Error::NotFound.into()
}

/// An id from the path; a malformed one is answered like a missing record.
fn parse_id<R>(raw: &str) -> Result<Id<R>, ApiError> {
    Uuid::try_parse(raw).map(Id::from_uuid).map_err(|_| Error::NotFound.into())
}

/// `If-Match: "<version>"` (or `W/"…"`); `*` and absence mean "whatever is current".
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let version = text.trim_start_matches("W/").trim_matches('"').parse::<i64>();
    version.map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "stale",
            "Precondition failed",
            "If-Match names no version of this record.",
        )
    })
}

/// 412 for a stale `If-Match`.
pub(crate) fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "stale",
        "Precondition failed",
        "The record changed since the version in If-Match; reload it and retry.",
    )
}

/// The record as JSON with its `ETag`.
fn with_etag<R: Record>(status: StatusCode, record: &R) -> Response {
    let mut response = (status, axum::Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", record.meta().version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

async fn list_records<R: Record>(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Page<R>>, ApiError> {
    let request = list::parse(pairs)?;
    Ok(axum::Json(state.crm.list::<R>(&scope, request).await?))
}

async fn create<R>(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    OriginalUri(uri): OriginalUri,
    JsonBody(new): JsonBody<R::New>,
) -> Result<Response, ApiError>
where
    R: Record,
    R::New: DeserializeOwned,
{
    let record = state.crm.create::<R>(&scope, new).await?;
    let mut response = with_etag(StatusCode::CREATED, &record);
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), record.meta().id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn get_one<R: Record>(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state.crm.get::<R>(&scope, parse_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &record))
}

async fn update<R>(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<R::Patch>,
) -> Result<Response, ApiError>
where
    R: Record,
    R::Patch: DeserializeOwned,
{
    let id = parse_id::<R>(&id)?;
    let expected = if_match(&headers)?;
    let version = current_version(&state, &scope, id, expected).await?;
    match state.crm.update::<R>(&scope, id, version, patch).await {
        Ok(record) => Ok(with_etag(StatusCode::OK, &record)),
        Err(Error::Conflict(_)) if expected.is_some() => Err(stale()),
        Err(e) => Err(e.into()),
    }
}

async fn delete<R: Record>(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_id::<R>(&id)?;
    let expected = if_match(&headers)?;
    match state.crm.delete::<R>(&scope, id, expected).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(Error::Conflict(_)) if expected.is_some() => Err(stale()),
        Err(e) => Err(e.into()),
    }
}

/// The version to update from: the client's `If-Match`, else the current one.
async fn current_version<R: Record>(
    state: &ApiState,
    scope: &Scope,
    id: Id<R>,
    expected: Option<i64>,
) -> Result<i64, ApiError> {
    match expected {
        Some(v) => Ok(v),
        None => Ok(state.crm.get::<R>(scope, id).await?.meta().version),
    }
}
