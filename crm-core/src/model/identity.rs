use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::Id;
use crate::scope::{Role, TenantId, UserId};

/// A user's password hash (PHC string, Argon2id). Kept apart from [`super::User`] so that no
/// serialization of a user can ever carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user.
    pub user_id: UserId,
    /// PHC-format hash, e.g. `$argon2id$v=19$m=19456,t=2,p=1$…`.
    pub password_hash: String,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When the password was last set.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

/// Refresh-token id.
pub type RefreshTokenId = Id<RefreshToken>;

/// One refresh token, stored only as a hash. Tokens of one login form a family; each use
/// rotates to a new token of the family, and presenting a used token revokes the family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Id (part of the token string, so it can be found without scanning).
    pub id: RefreshTokenId,
    /// Tenant the session belongs to.
    pub tenant_id: TenantId,
    /// The login this token descends from.
    pub family_id: Uuid,
    /// The user.
    pub user_id: UserId,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for a new pair; a second use is theft.
    pub used_at: Option<DateTime<Utc>>,
    /// When it (or its family) was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, so two concurrent uses cannot both rotate it.
    pub version: i64,
}

/// API-key id.
pub type ApiKeyId = Id<ApiKey>;

/// A tenant API key: acts with a role, shown once at creation, stored only as a hash.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Id (part of the key string).
    pub id: ApiKeyId,
    /// Owning tenant.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// What it is for.
    pub name: String,
    /// The role it acts with.
    pub role: Role,
    /// SHA-256 of the secret part, hex; never serialized.
    #[serde(skip)]
    pub secret_hash: String,
    /// The admin who created it; records it creates are owned by them.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_used_at: Option<DateTime<Utc>>,
    /// How many requests it authenticated.
    pub use_count: i64,
    /// When it was revoked; revoked keys never authenticate.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// Input to create an API key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What it is for.
    pub name: String,
    /// The role it acts with (not `owner`).
    pub role: Role,
}

/// Failed logins for one key (`account:<email>` or `client:<address>`) in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    /// Consecutive failures since the last success.
    pub count: i64,
    /// When the last one happened.
    pub last_at: DateTime<Utc>,
}
