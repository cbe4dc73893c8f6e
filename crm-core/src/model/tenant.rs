use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scope::{Role, TenantId, UserId};

/// A workspace: the unit of isolation. Every record belongs to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Unique, URL- and subdomain-safe name (`acme`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A person who can sign in. Users are global: a membership joins a user to a tenant with a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Id.
    pub id: UserId,
    /// E-mail, stored lower-case; unique across the installation.
    pub email: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A user's role in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The tenant.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// Their role there.
    pub role: Role,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When they joined.
    pub created_at: DateTime<Utc>,
    /// When their role last changed.
    pub updated_at: DateTime<Utc>,
}

/// A member as listed to admins: the user and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The user.
    pub user: User,
    /// Their role in this tenant.
    pub role: Role,
    /// Membership version, for role changes.
    pub version: i64,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// Input to create a tenant with its first owner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// Unique slug: 3–63 of `a-z`, `0-9`, `-`.
    pub slug: String,
    /// The owner; an existing user with this e-mail is reused.
    pub owner: NewUser,
}

/// A user to create (or find by e-mail).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// Input to add a member to a tenant.
#[derive(Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// E-mail address; an existing user with it is reused.
    pub email: String,
    /// Display name, used when the user is new.
    pub name: String,
    /// Role in this tenant.
    pub role: Role,
    /// Password for a new user (12–1024 characters, not a common one, not one character
    /// repeated; ignored for an existing one).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 1024))]
    pub password: Option<String>,
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}
