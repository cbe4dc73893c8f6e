//! The stored trace of a request made with an idempotency key.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::scope::TenantId;

/// One idempotency key of one principal in one tenant: claimed while its request runs, then
/// holding that request's recorded response until it expires.
///
/// The response is whatever the caller recorded (the HTTP adapter stores status, a few headers
/// and the body); core treats it as opaque text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Who used the key (`user:<id>`, `api_key:<id>`): keys of different principals never meet.
    pub principal: String,
    /// The key as the client sent it.
    pub key: String,
    /// A hash of the request the key was first used with.
    pub fingerprint: String,
    /// Which claim holds the key; completing or releasing it must name this token, so a claim
    /// taken over after its lease ran out can no longer complete.
    pub token: Uuid,
    /// When the key was (last) claimed.
    pub created_at: DateTime<Utc>,
    /// Until when a claim without a response blocks twins (409); after that it may be taken over.
    pub locked_until: DateTime<Utc>,
    /// When the record is forgotten and the key may be used afresh.
    pub expires_at: DateTime<Utc>,
    /// The recorded response, once the request has completed.
    pub response: Option<String>,
}
