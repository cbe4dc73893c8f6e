//! The record resources through one generic set of handlers.
//!
//! utoipa documents concrete functions, not generic ones, so [`record_resource!`] gives each
//! resource five thin documented handlers over the generic ones, and registers them together
//! with their documentation.

use axum::Json;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::model::Record;
use crm_core::{Error, Id, Page};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::keyed;
use super::list::{self, ListPage};
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};
use crate::openapi::{Conflict, PreconditionFailed};

/// `GET/POST /<resource>` and `GET/PATCH/DELETE /<resource>/{id}` for every record type but pipelines.
pub fn routes(state: &ApiState) -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(leads::list))
        .routes(keyed(state, routes!(leads::create)))
        .routes(routes!(leads::get, leads::delete))
        .routes(keyed(state, routes!(leads::update)))
        .routes(routes!(contacts::list))
        .routes(keyed(state, routes!(contacts::create)))
        .routes(routes!(contacts::get, contacts::delete))
        .routes(keyed(state, routes!(contacts::update)))
        .routes(routes!(accounts::list))
        .routes(keyed(state, routes!(accounts::create)))
        .routes(routes!(accounts::get, accounts::delete))
        .routes(keyed(state, routes!(accounts::update)))
        .routes(routes!(deals::list))
        .routes(keyed(state, routes!(deals::create)))
        .routes(routes!(deals::get, deals::delete))
        .routes(keyed(state, routes!(deals::update)))
        .routes(routes!(activities::list))
        .routes(keyed(state, routes!(activities::create)))
        .routes(routes!(activities::get, activities::delete))
        .routes(keyed(state, routes!(activities::update)))
        .routes(routes!(tasks::list))
        .routes(keyed(state, routes!(tasks::create)))
        .routes(routes!(tasks::get, tasks::delete))
        .routes(keyed(state, routes!(tasks::update)))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::get, webhooks::delete))
        .routes(keyed(state, routes!(webhooks::update)))
}

/// What the list of a searchable record type says about its filters beyond the parameters.
const SEARCHABLE_LIST: &str = "Newest first unless `sort` names an order. Filters combine with AND. `q` matches records \
whose names, e-mail or company have words starting with each of its words. Custom fields filter \
by equality as `cf.<name>=<value>`: the value is read as a JSON scalar when it is one, else as a \
string (`cf.seats=10` matches the number 10, `cf.seats=\"10\"` the string); at most 64 of them.";

/// What the activity list says beyond its parameters.
const ACTIVITY_LIST: &str = "Newest first unless `sort` names an order. Filters combine with AND.";

/// What the task list says beyond its parameters.
const TASK_LIST: &str = "Newest first unless `sort` names an order (`sort=due_at`: soonest \
first, tasks without a due time last). Filters combine with AND. `q` matches tasks whose title \
has words starting with each of its words. Custom fields filter as `cf.<name>=<value>`.";

/// What the webhook list says beyond its parameters.
const WEBHOOK_LIST: &str = "The tenant's webhook endpoints, newest first (admins). Their secrets \
are never listed: they are shown once, on creation and on rotation.";

/// Five documented handlers for one record type, in a module named after its path (four with
/// `create = custom`).
#[rustfmt::skip] // rustfmt shifts the attribute arguments inside the macro on every run.
macro_rules! record_resource {
    (
        $module:ident: $record:ident, $new:ident, $patch:ident,
        list = $list:tt, item = $item:tt, list_description = $list_description:expr,
        one = $one:tt $(, create = $create:ident)?
    ) => {
        pub mod $module {
            use super::*;
            use crm_core::model::{$patch, $record};

            /// The list's filters, from the kind's description.
            pub struct Filters;

            impl utoipa::IntoParams for Filters {
                fn into_params(
                    _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
                ) -> Vec<utoipa::openapi::path::Parameter> {
                    list::params::of(<$record as crm_core::kind::Stored>::DEF)
                }
            }

            #[utoipa::path(
                get,
                path = $list,
                tag = stringify!($module),
                operation_id = concat!("list_", stringify!($module)),
                summary = concat!("List ", stringify!($module)),
                description = $list_description,
                params(ListPage, Filters),
                responses((status = 200, description = "A page of records.", body = Page<$record>))
            )]
            pub async fn list(
                state: State<ApiState>,
                auth: Auth,
                query: Query<Vec<(String, String)>>,
            ) -> Result<Json<Page<$record>>, ApiError> {
                list_records::<$record>(state, auth, query).await
            }

            #[utoipa::path(
                get,
                path = $item,
                tag = stringify!($module),
                operation_id = concat!("get_", $one),
                summary = concat!("Get ", $one),
                params(("id" = Uuid, Path, description = "The record.")),
                responses((status = 200, description = "The record.", body = $record, headers(
                    ("ETag" = String, description = "The record's `version`, quoted."),
                )))
            )]
            pub async fn get(
                state: State<ApiState>,
                auth: Auth,
                id: Path<String>,
            ) -> Result<Response, ApiError> {
                get_one::<$record>(state, auth, id).await
            }

            #[utoipa::path(
                patch,
                path = $item,
                tag = stringify!($module),
                operation_id = concat!("update_", $one),
                summary = concat!("Update ", $one),
                description = "Changes the fields given; `null` clears a field that may be empty. \
                    Without `If-Match` the change applies to the current version.",
                params(("id" = Uuid, Path, description = "The record."), IfMatch),
                request_body = $patch,
                responses(
                    (status = 200, description = "The changed record.", body = $record, headers(
                        ("ETag" = String, description = "The record's new `version`, quoted."),
                    )),
                    (status = 409, response = Conflict),
                    (status = 412, response = PreconditionFailed),
                )
            )]
            pub async fn update(
                state: State<ApiState>,
                auth: Auth,
                id: Path<String>,
                headers: HeaderMap,
                body: JsonBody<$patch>,
            ) -> Result<Response, ApiError> {
                super::update::<$record>(state, auth, id, headers, body).await
            }

            #[utoipa::path(
                delete,
                path = $item,
                tag = stringify!($module),
                operation_id = concat!("delete_", $one),
                summary = concat!("Delete ", $one),
                params(("id" = Uuid, Path, description = "The record."), IfMatch),
                responses(
                    (status = 204, description = "The record is deleted."),
                    (status = 409, response = Conflict),
                    (status = 412, response = PreconditionFailed),
                )
            )]
            pub async fn delete(
                state: State<ApiState>,
                auth: Auth,
                id: Path<String>,
                headers: HeaderMap,
            ) -> Result<StatusCode, ApiError> {
                super::delete::<$record>(state, auth, id, headers).await
            }

            record_resource!(@create $($create)?; $new $record $list $one $module);
        }
    };
    // `create = custom`: the resource serves its own create (webhooks answer with a secret).
    (@create custom; $($rest:tt)*) => {};
    (@create; $new:ident $record:ident $list:tt $one:tt $module:ident) => {
            use crm_core::model::$new;

            #[utoipa::path(
                post,
                path = $list,
                tag = stringify!($module),
                operation_id = concat!("create_", $one),
                summary = concat!("Create ", $one),
                request_body = $new,
                responses(
                    (status = 201, description = "The new record.", body = $record, headers(
                        ("Location" = String, description = "The new record's URL."),
                        ("ETag" = String, description = "The record's `version`, quoted."),
                    )),
                )
            )]
            pub async fn create(
                state: State<ApiState>,
                auth: Auth,
                uri: OriginalUri,
                body: JsonBody<$new>,
            ) -> Result<Response, ApiError> {
                super::create::<$record>(state, auth, uri, body).await
            }
    };
}

record_resource!(leads: Lead, NewLead, LeadPatch,
    list = "/api/leads", item = "/api/leads/{id}", list_description = SEARCHABLE_LIST, one = "lead");
record_resource!(contacts: Contact, NewContact, ContactPatch,
    list = "/api/contacts", item = "/api/contacts/{id}", list_description = SEARCHABLE_LIST, one = "contact");
record_resource!(accounts: Account, NewAccount, AccountPatch,
    list = "/api/accounts", item = "/api/accounts/{id}", list_description = SEARCHABLE_LIST, one = "account");
record_resource!(deals: Deal, NewDeal, DealPatch,
    list = "/api/deals", item = "/api/deals/{id}", list_description = SEARCHABLE_LIST, one = "deal");
record_resource!(activities: Activity, NewActivity, ActivityPatch,
    list = "/api/activities", item = "/api/activities/{id}", list_description = ACTIVITY_LIST, one = "activity");
record_resource!(tasks: Task, NewTask, TaskPatch,
    list = "/api/tasks", item = "/api/tasks/{id}", list_description = TASK_LIST, one = "task");
record_resource!(webhooks: Webhook, NewWebhook, WebhookPatch,
    list = "/api/webhooks", item = "/api/webhooks/{id}", list_description = WEBHOOK_LIST, one = "webhook",
    create = custom);

/// The `If-Match` request header of versioned writes.
pub(super) struct IfMatch;

impl utoipa::IntoParams for IfMatch {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![
            ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(IF_MATCH_PATTERN))))
                .description(Some(
                    "The `version` the change is based on, as sent in `ETag` (`\"3\"`, or `W/\"3\"`); \
                     412 if the record has moved on. `*` means any.",
                ))
                .build(),
        ]
    }
}

/// 404 in the problem format, for unknown paths and malformed ids alike.
pub async fn not_found() -> ApiError {
    Error::NotFound.into()
}

/// An id from the path; a malformed one is answered like a missing record.
pub(super) fn parse_id<R>(raw: &str) -> Result<Id<R>, ApiError> {
    Uuid::try_parse(raw).map(Id::from_uuid).map_err(|_| Error::NotFound.into())
}

/// What [`if_match`] reads as a version (anything else is 412): documented, so generated
/// clients know a version is a number.
const IF_MATCH_PATTERN: &str = r#"^[ \t]*(\*|(W/)?"?[0-9]{1,18}"?)?[ \t]*$"#;

/// `If-Match: "<version>"` (or `W/"…"`); `*`, an empty value and absence mean "whatever is
/// current".
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    // Unreadable bytes name no version (412 below); they are not an empty value.
    let text = value.to_str().unwrap_or("\u{fffd}").trim();
    if text == "*" || text.is_empty() {
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
    let request = list::parse(R::DEF, scope.user_id(), pairs)?;
    Ok(axum::Json(state.crm().list::<R>(&scope, request).await?))
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
    let record = state.crm().create::<R>(&scope, new).await?;
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
    let record = state.crm().get::<R>(&scope, parse_id(&id)?).await?;
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
    match state.crm().update::<R>(&scope, id, expected, patch).await {
        Ok(record) => Ok(with_etag(StatusCode::OK, &record)),
        Err(e) if expected.is_some() && e.is_stale_version() => Err(stale()),
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
    match state.crm().delete::<R>(&scope, id, expected).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if expected.is_some() && e.is_stale_version() => Err(stale()),
        Err(e) => Err(e.into()),
    }
}
