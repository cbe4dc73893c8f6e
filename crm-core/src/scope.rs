//! Who is acting, and in which tenant. Every tenant-scoped store call takes a [`Scope`].

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::model::{ApiKeyId, Tenant, User};
use crate::service::ClaimHandle;

/// Tenant id.
pub type TenantId = Id<Tenant>;
/// User id.
pub type UserId = Id<User>;

/// The tenant and principal a call acts for.
///
/// Only `crm-core` can make one (its fields are private and it has no public constructor), and it
/// does so only after checking that the principal belongs to the tenant. A store therefore never
/// sees a tenant id that no authenticated caller was entitled to — invariant 1 of the design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    tenant_id: TenantId,
    principal: Principal,
    request_id: Option<String>,
    /// Set while the call runs under an idempotency key: its writes are held and committed
    /// together with the recorded response (see [`crate::Crm::claim_idempotency_key`]).
    claim: Option<ClaimHandle>,
}

impl Scope {
    pub(crate) fn new(tenant_id: TenantId, principal: Principal) -> Self {
        Self { tenant_id, principal, request_id: None, claim: None }
    }

    pub(crate) fn with_claim(mut self, claim: ClaimHandle) -> Self {
        self.claim = Some(claim);
        self
    }

    pub(crate) fn claim(&self) -> Option<&ClaimHandle> {
        self.claim.as_ref()
    }

    /// Whether this scope acts under a claimed idempotency key.
    pub fn is_idempotent(&self) -> bool {
        self.claim.is_some()
    }

    /// The library itself acting in a tenant (tenant creation, membership checks).
    pub(crate) fn system(tenant_id: TenantId) -> Self {
        Self::new(tenant_id, Principal::System)
    }

    /// The tenant every read and write of this call is confined to.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// Who is acting.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The user on whose behalf the call acts (an API key acts for its creator): owner of the
    /// records it creates, and the "own" of own-record permissions.
    pub fn user_id(&self) -> Option<UserId> {
        self.principal.acting_user()
    }

    /// The request id recorded in audit entries, so a change can be traced to its request.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The same scope, tagged with a request id (at most 128 printable ASCII characters kept).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        let id: String = request_id.into();
        let sane = id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
        self.request_id = sane.then_some(id);
        self
    }

    /// The actor recorded in audit entries.
    pub fn actor(&self) -> Actor {
        match self.principal {
            Principal::User { user_id, .. } => Actor::User(user_id),
            Principal::ApiKey { key_id, .. } => Actor::ApiKey(key_id),
            Principal::System => Actor::System,
        }
    }
}

/// An authenticated identity within one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// A member of the tenant with a role.
    User {
        /// The user.
        user_id: UserId,
        /// The user's role in this tenant.
        role: Role,
    },
    /// An API key of the tenant, acting with its role on behalf of the admin who created it.
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
        /// The role it acts with.
        role: Role,
        /// The admin who created it.
        created_by: UserId,
    },
    /// The library's own bookkeeping; never reachable from outside.
    System,
}

impl Principal {
    /// The role, or `None` for the system.
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::User { role, .. } | Principal::ApiKey { role, .. } => Some(*role),
            Principal::System => None,
        }
    }

    /// The user it acts for, if any.
    pub fn acting_user(&self) -> Option<UserId> {
        match self {
            Principal::User { user_id, .. } => Some(*user_id),
            Principal::ApiKey { created_by, .. } => Some(*created_by),
            Principal::System => None,
        }
    }
}

/// Who made a change, as recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// A user.
    User(UserId),
    /// An API key.
    ApiKey(ApiKeyId),
    /// The library itself.
    System,
}

/// A member's role in a tenant; the default policy's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created the tenant; everything an admin can do. A tenant always keeps at least one.
    Owner,
    /// Manages members, pipelines and every record.
    Admin,
    /// Reads and writes every record.
    Manager,
    /// Reads every record; creates records; changes and deletes only the records they own.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::Manager, Role::Member, Role::Viewer];

    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
