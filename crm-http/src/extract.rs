//! Extractors: JSON bodies with field-named errors, and the caller's scope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use crm_core::{Error, Scope, TenantId};
use serde::de::DeserializeOwned;

use crate::ApiState;
use crate::error::ApiError;
use crate::limit::ApiKeyOrTenant;
use crate::middleware::RequestId;

/// A JSON body. Wrong media type is 415, too large 413, malformed JSON 400, and JSON of the
/// wrong shape (unknown field, wrong type, missing field) 422 naming the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "Malformed request",
                    "The body could not be read.",
                )
            }
        })?;
        // serde would take an array as a struct's fields in order (`["Ada"]` as a lead's
        // first name); bodies are objects with named fields.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 naming the field).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = || {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", "Malformed JSON", "The body is not valid JSON.")
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde_json reports a non-string where an enum goes (`"role": 5`) as a syntax error;
        // the body is well-formed JSON of the wrong shape, so it is answered like one.
        let well_formed = || serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
        let message = if inner.is_eof() || (inner.is_syntax() && !well_formed()) {
            return malformed();
        } else if inner.is_syntax() {
            "has the wrong type".to_owned()
        } else {
            inner.to_string()
        };
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        // serde_path_to_error's path ends at an unknown field, but at the parent of a missing one.
        let root = path == "." || path.is_empty();
        let field = match (missing_field(&message), root) {
            (Some(f), true) => f,
            (Some(f), false) => format!("{path}.{f}"),
            (None, true) => "body".to_owned(),
            (None, false) => path,
        };
        ApiError::Core(Error::invalid(field.trim_start_matches('.').to_owned(), message))
    })?;
    // Whitespace may follow the value; anything else (a second value, garbage) is malformed.
    deserializer.end().map_err(|_| malformed())?;
    Ok(value)
}

/// The field serde names in "missing field `x`".
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// Where [`Auth`] leaves the rate-limit budget for the response middleware to report.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateLimitSlot(pub std::sync::Arc<std::sync::Mutex<Option<crate::limit::Budget>>>);

/// The caller, authenticated by `Authorization: Bearer <access token | API key>` or
/// `X-API-Key`. A tenant named by `X-Tenant` must be the token's.
#[derive(Debug, Clone)]
pub struct Auth(pub Scope);

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        if let Some(Authenticated(scope)) = parts.extensions.get::<Authenticated>() {
            return Ok(Auth(scope.clone()));
        }
        let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let bearer = header_str("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let scope = match (bearer, header_str("x-api-key")) {
            (Some(token), _) if token.starts_with("crm_") => state.crm().authenticate_api_key(token).await?,
            (Some(token), _) => state.crm().authenticate(token)?,
            (None, Some(key)) => state.crm().authenticate_api_key(key).await?,
            (None, None) => return Err(Error::Unauthenticated.into()),
        };
        for named in named_tenants(&parts.headers, state.config()) {
            if !names_tenant(state, &named, scope.tenant_id()).await? {
                return Err(Error::Forbidden.into());
            }
        }
        let key = match scope.principal() {
            crm_core::Principal::ApiKey { key_id, .. } => ApiKeyOrTenant::ApiKey(*key_id),
            _ => ApiKeyOrTenant::Tenant(scope.tenant_id()),
        };
        // The headers go out with a refusal too, so a client can see its budget is spent.
        let (budget, allowed) = state.limiters().check_api(key);
        if let Some(slot) = parts.extensions.get::<RateLimitSlot>() {
            if let Ok(mut slot) = slot.0.lock() {
                *slot = Some(budget);
            }
        }
        allowed?;
        let scope = match parts.extensions.get::<RequestId>() {
            Some(id) => scope.with_request_id(id.0.clone()),
            None => scope,
        };
        Ok(Auth(scope))
    }
}

/// A caller already authenticated by a layer (the idempotency layer authenticates to find the
/// key's owner); [`Auth`] takes it as is, so a request is authenticated and rate-counted once.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub Scope);

/// A query string parsed into `T`; a parameter that is unknown or of the wrong type is 422
/// naming it, like a JSON body field.
#[derive(Debug)]
pub struct StrictQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(StrictQuery).map_err(|e| {
            // The path names the parameter whose value is wrong; unknown ones are in the message.
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let unknown = message.split('`').nth(1).filter(|_| message.contains("field"));
            let field = match unknown {
                Some(name) => name.to_owned(),
                None if path != "." && !path.is_empty() => path,
                None => "query".to_owned(),
            };
            ApiError::Core(Error::invalid(field, message))
        })
    }
}

/// Whether `named` (an id, in any letter case, or a slug) is the tenant `id`. A store that
/// cannot answer is the caller's error (503), never a mismatch (403).
async fn names_tenant(state: &ApiState, named: &str, id: TenantId) -> Result<bool, ApiError> {
    if uuid::Uuid::try_parse(named).is_ok_and(|named| named == id.uuid()) {
        return Ok(true);
    }
    Ok(tenant_by_slug(state, named).await? == Some(id))
}

/// The tenant a slug names, in any letter case; `None` when none does. A store that cannot
/// answer is the caller's error (503), not an unknown tenant.
pub(crate) async fn tenant_by_slug(state: &ApiState, slug: &str) -> Result<Option<TenantId>, ApiError> {
    match state.crm().tenant_by_slug(&slug.to_ascii_lowercase()).await {
        Ok(tenant) => Ok(Some(tenant.id)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The names a request gives its tenant besides any token: `X-Tenant` (id or slug) and the
/// subdomain of the configured base domain, each when present. Callers resolve each name, so
/// an id in one and the slug in the other name the same tenant.
pub(crate) fn named_tenants(headers: &axum::http::HeaderMap, config: &crate::HttpConfig) -> Vec<String> {
    let header = headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
    let subdomain = config.base_domain.as_deref().and_then(|base| {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        let host = host.split(':').next()?.to_ascii_lowercase();
        let label = host.strip_suffix(&base.to_ascii_lowercase())?.strip_suffix('.')?;
        (!label.is_empty() && !label.contains('.')).then(|| label.to_owned())
    });
    header.into_iter().chain(subdomain).collect()
}
