//! Registration, login, refresh, logout and "who am I".

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::{Error, Login, Registration, Session, TenantId};
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};
use crate::openapi::{Conflict, Forbidden, RateLimited, Unauthenticated};

/// Token responses must not be cached anywhere.
fn no_store(status: StatusCode, session: &Session) -> Response {
    let mut response = (status, Json(session)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Register a tenant
///
/// Creates a tenant with the caller as its owner and signs them in. An e-mail that already has
/// an account is refused (409 naming `email`): such a person signs in and creates tenants from
/// there.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    operation_id = "register",
    security(),
    request_body = crm_core::Registration,
    responses(
        (status = 201, description = "The new tenant, its owner and their tokens.", body = crm_core::Session,
            headers(("Cache-Control" = String, description = "`no-store`: tokens are never cached."))),
        (status = 409, response = Conflict),
        (status = 429, response = RateLimited),
    )
)]
pub async fn register(
    State(state): State<ApiState>,
    JsonBody(input): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    let session = state.crm().register(input).await?;
    Ok(no_store(StatusCode::CREATED, &session))
}

/// Credentials for one tenant.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// E-mail address.
    email: String,
    /// Password.
    password: String,
    /// Tenant id or slug, when neither `X-Tenant` nor the subdomain names it; if both name one,
    /// they must agree.
    #[serde(default)]
    tenant: Option<String>,
}

/// Resolves a tenant named by id (in any letter case) or slug; unknown names resolve to nothing
/// (and log in fails exactly like a wrong password). A store that cannot answer is an error
/// (503), not an unknown tenant.
async fn resolve_tenant(state: &ApiState, name: &str) -> Result<Option<TenantId>, ApiError> {
    if let Ok(id) = uuid::Uuid::try_parse(name) {
        return Ok(Some(TenantId::from_uuid(id)));
    }
    crate::extract::tenant_by_slug(state, name).await
}

/// The optional `X-Tenant` header of a login: a string when sent (never `null`).
struct TenantHeader;

impl utoipa::IntoParams for TenantHeader {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![
            ParameterBuilder::new()
                .name("X-Tenant")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
                .description(Some("The tenant's id or slug."))
                .build(),
        ]
    }
}

/// Log in
///
/// Signs a member in to one tenant, named by `X-Tenant`, the subdomain or `tenant`. A wrong
/// password, an unknown e-mail and an unknown or unnamed tenant all get the same 401; repeated failures
/// lock the account and the client out for a while (429).
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    operation_id = "login",
    security(),
    params(TenantHeader),
    request_body = LoginBody,
    responses(
        (status = 200, description = "The member's tokens.", body = crm_core::Session,
            headers(("Cache-Control" = String, description = "`no-store`: tokens are never cached."))),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 429, response = RateLimited),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let mut names = crate::extract::named_tenants(&headers, state.config());
    names.extend(body.tenant.clone());
    // No tenant named is the 401 of an unknown one: there is nothing to sign in to, and since
    // the tenant may come from a header or the body, no schema could make it a validation rule.
    if names.is_empty() {
        return Err(Error::Unauthenticated.into());
    }
    // Every name must be the same tenant (an id and a slug may name the same one); names that
    // disagree are 403 whether or not they exist.
    let mut resolved = Vec::with_capacity(names.len());
    for name in &names {
        resolved.push((name.as_str(), resolve_tenant(&state, name).await?));
    }
    let same = |(a, x): &(&str, Option<TenantId>), (b, y): &(&str, Option<TenantId>)| match (x, y) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    if resolved.windows(2).any(|pair| !same(&pair[0], &pair[1])) {
        return Err(Error::Forbidden.into());
    }
    // An unknown tenant still runs the full login path (dummy hash) and fails the same way.
    let tenant_id = resolved[0].1.unwrap_or_else(|| TenantId::from_uuid(uuid::Uuid::nil()));
    let client = client.map(|ip| ip.to_string());
    let login = Login { tenant_id, email: body.email, password: body.password, client };
    let session = state.crm().login(login).await?;
    Ok(no_store(StatusCode::OK, &session))
}

/// A refresh token from a previous register, login or refresh.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The opaque refresh token.
    refresh_token: String,
}

/// Refresh a session
///
/// Exchanges a refresh token for a new pair; the presented token is spent. Presenting a spent
/// token revokes its whole family (401).
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    security(),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair.", body = crm_core::Session,
            headers(("Cache-Control" = String, description = "`no-store`: tokens are never cached."))),
        (status = 401, response = Unauthenticated),
        (status = 429, response = RateLimited),
    )
)]
pub async fn refresh(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, ApiError> {
    let session = state.crm().refresh(&body.refresh_token).await?;
    Ok(no_store(StatusCode::OK, &session))
}

/// Log out
///
/// Ends the session: the refresh token's whole family is revoked. Access tokens already issued
/// stay valid until they expire.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    operation_id = "logout",
    security(),
    request_body = RefreshBody,
    responses(
        (status = 204, description = "The session is over."),
        (status = 401, response = Unauthenticated),
        (status = 429, response = RateLimited),
    )
)]
pub async fn logout(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    state.crm().logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller as the API sees them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The tenant the credentials belong to.
    tenant: crm_core::model::Tenant,
    /// The signed-in user; `null` for an API key.
    #[schema(required = true)]
    user: Option<crm_core::model::User>,
    /// The role the caller acts with.
    #[schema(required = true)]
    role: Option<crm_core::Role>,
    /// The API key in use; `null` for a user.
    #[schema(required = true)]
    api_key_id: Option<uuid::Uuid>,
    /// Everything the caller may do.
    permissions: Vec<Permission>,
}

/// One thing the caller may do.
#[derive(Serialize, utoipa::ToSchema)]
struct Permission {
    /// The kind of resource.
    #[schema(schema_with = resource_names)]
    resource: String,
    /// What may be done to it.
    #[schema(schema_with = action_names)]
    action: String,
    /// `all` records, or only the caller's `own`.
    #[schema(schema_with = scope_names)]
    scope: &'static str,
}

fn names(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn resource_names() -> utoipa::openapi::Object {
    names(&["lead", "contact", "account", "deal", "activity", "pipeline", "member", "audit_log", "api_key"])
}

fn action_names() -> utoipa::openapi::Object {
    names(&["read", "create", "update", "delete"])
}

fn scope_names() -> utoipa::openapi::Object {
    names(&["all", "own"])
}

/// Who am I
///
/// The caller's tenant, user (or API key), role and effective permissions.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    operation_id = "me",
    responses(
        (status = 200, description = "The caller.", body = Me),
        (status = 404, description = "The user's membership was removed after the token was issued.",
            body = crate::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(State(state): State<ApiState>, Auth(scope): Auth) -> Result<Json<Me>, ApiError> {
    let tenant = state.crm().tenant(scope.tenant_id()).await?;
    let user = match scope.principal() {
        crm_core::Principal::User { user_id, .. } => Some(state.crm().member(&scope, *user_id).await?.user),
        _ => None,
    };
    let api_key_id = match scope.principal() {
        crm_core::Principal::ApiKey { key_id, .. } => Some(key_id.uuid()),
        _ => None,
    };
    let permissions = state
        .crm()
        .permissions(&scope)
        .into_iter()
        .map(|(resource, action, grant)| Permission {
            resource: resource.as_str().to_owned(),
            action: action.as_str().to_owned(),
            scope: if grant.record_scope == crm_core::RecordScope::All { "all" } else { "own" },
        })
        .collect();
    Ok(Json(Me { tenant, user, role: scope.principal().role(), api_key_id, permissions }))
}
