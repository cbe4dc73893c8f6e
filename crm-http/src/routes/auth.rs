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

/// Token responses must not be cached anywhere.
fn no_store(status: StatusCode, session: &Session) -> Response {
    let mut response = (status, Json(session)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn register(
    State(state): State<ApiState>,
    JsonBody(input): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    let session = state.crm.register(input).await?;
    Ok(no_store(StatusCode::CREATED, &session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
    /// Tenant id or slug, when not given by `X-Tenant`.
    #[serde(default)]
    tenant: Option<String>,
}

/// Resolves a tenant named by id or slug; unknown names resolve to nothing (and log in fails
/// exactly like a wrong password).
async fn resolve_tenant(state: &ApiState, name: &str) -> Option<TenantId> {
    if let Ok(id) = name.parse::<TenantId>() {
        return Some(id);
    }
    state.crm.tenant_by_slug(&name.to_ascii_lowercase()).await.ok().map(|t| t.id)
}

pub async fn login(
    State(state): State<ApiState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let named = crate::extract::named_tenant(&headers, &state.config)?;
    let name = match (named.as_deref(), body.tenant.as_deref()) {
        (Some(h), Some(b)) if !h.eq_ignore_ascii_case(b) => return Err(Error::Forbidden.into()),
        (Some(h), _) => h.to_owned(),
        (None, Some(b)) => b.to_owned(),
        (None, None) => {
            return Err(ApiError::invalid(
                "tenant",
                "name the tenant with X-Tenant, the subdomain or `tenant`",
            ));
        }
    };
    let name = name.as_str();
    // An unknown tenant still runs the full login path (dummy hash) and fails the same way.
    let tenant_id =
        resolve_tenant(&state, name).await.unwrap_or_else(|| TenantId::from_uuid(uuid::Uuid::nil()));
    let client = client.map(|ip| ip.to_string());
    let login = Login { tenant_id, email: body.email, password: body.password, client };
    let session = state.crm.login(login).await?;
    Ok(no_store(StatusCode::OK, &session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, ApiError> {
    let session = state.crm.refresh(&body.refresh_token).await?;
    Ok(no_store(StatusCode::OK, &session))
}

pub async fn logout(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    state.crm.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct Me {
    tenant: crm_core::model::Tenant,
    user: Option<crm_core::model::User>,
    role: Option<crm_core::Role>,
    api_key_id: Option<uuid::Uuid>,
    permissions: Vec<Permission>,
}

#[derive(Serialize)]
struct Permission {
    resource: String,
    action: String,
    scope: &'static str,
}

pub async fn me(State(state): State<ApiState>, Auth(scope): Auth) -> Result<Json<Me>, ApiError> {
    let tenant = state.crm.tenant(scope.tenant_id()).await?;
    let user = match scope.principal() {
        crm_core::Principal::User { user_id, .. } => Some(state.crm.member(&scope, *user_id).await?.user),
        _ => None,
    };
    let api_key_id = match scope.principal() {
        crm_core::Principal::ApiKey { key_id, .. } => Some(key_id.uuid()),
        _ => None,
    };
    let permissions = state
        .crm
        .permissions(&scope)
        .into_iter()
        .map(|(resource, action, grant)| Permission {
            resource: format!("{resource:?}").to_lowercase(),
            action: format!("{action:?}").to_lowercase(),
            scope: if grant.record_scope == crm_core::RecordScope::All { "all" } else { "own" },
        })
        .collect();
    Ok(Json(Me { tenant, user, role: scope.principal().role(), api_key_id, permissions }))
}
