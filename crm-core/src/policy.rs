//! Authorization: the one chokepoint every read and write passes before any store call.

use std::fmt::Debug;

use crate::scope::{Principal, Role, UserId};

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Get, list, search, timeline, export.
    Read,
    /// Create a record.
    Create,
    /// Change a record (including stage moves and conversion).
    Update,
    /// Delete a record.
    Delete,
}

/// What it wants to do it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// Leads.
    Lead,
    /// Contacts.
    Contact,
    /// Accounts.
    Account,
    /// Deals.
    Deal,
    /// Activities.
    Activity,
    /// Tasks.
    Task,
    /// Pipelines and their stages.
    Pipeline,
    /// Tenant members and their roles.
    Member,
    /// The tenant's audit log.
    AuditLog,
    /// The tenant's API keys.
    ApiKey,
    /// The tenant's background jobs.
    Job,
    /// The tenant's webhook endpoints and their deliveries.
    Webhook,
}

impl Action {
    /// The action's wire name (`read`, `create`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

impl Resource {
    /// The resource's wire name, snake case like audit entries' `resource` (`api_key`).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Lead => "lead",
            Resource::Contact => "contact",
            Resource::Account => "account",
            Resource::Deal => "deal",
            Resource::Activity => "activity",
            Resource::Task => "task",
            Resource::Pipeline => "pipeline",
            Resource::Member => "member",
            Resource::AuditLog => "audit_log",
            Resource::Job => "job",
            Resource::ApiKey => "api_key",
            Resource::Webhook => "webhook",
        }
    }
}

impl Resource {
    /// Whether it is a kind of record that members own (its description marks a member field
    /// [`owns`](crate::kind::FieldDef::owns)): what the `Own` record scope applies to.
    /// Pipelines are records without owners, configured by admins.
    pub fn holds_owned_records(self) -> bool {
        crate::kind::RECORD_KINDS
            .iter()
            .any(|def| def.resource == self && def.owner_fields().next().is_some())
    }
}

/// Which records a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordScope {
    /// Every record of the tenant.
    All,
    /// Only records the acting user owns: named in a field the kind's description marks
    /// [`owns`](crate::kind::FieldDef::owns) (`owner_id`; a task's `assignee_id` too).
    Own,
}

/// A permission, returned by a [`Policy`] and applied by core to each record the call touches.
///
/// It is a struct rather than a bool so that richer rules (team scope, field masks) can be added
/// as fields without changing any caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Which records the permission covers.
    pub record_scope: RecordScope,
}

impl Grant {
    /// A grant over every record.
    pub const ALL: Grant = Grant { record_scope: RecordScope::All };
    /// A grant over the principal's own records.
    pub const OWN: Grant = Grant { record_scope: RecordScope::Own };

    /// Whether the grant covers a record owned by `owner` when `principal` acts.
    pub fn covers(&self, principal: &Principal, owner: Option<UserId>) -> bool {
        self.covers_any(principal, owner)
    }

    /// Whether the grant covers a record owned by any of `owners` (a task's owner and
    /// assignee) when `principal` acts.
    pub fn covers_any(&self, principal: &Principal, owners: impl IntoIterator<Item = UserId>) -> bool {
        match self.record_scope {
            RecordScope::All => true,
            RecordScope::Own => match principal.acting_user() {
                Some(user_id) => owners.into_iter().any(|owner| owner == user_id),
                None => matches!(principal, Principal::System),
            },
        }
    }
}

/// Decides whether a principal may perform an action on a kind of resource.
///
/// Hosts can replace the default matrix with their own rules; core calls this before any store
/// access and applies the returned [`Grant`] to each record (and as a filter on lists).
pub trait Policy: Send + Sync + Debug + 'static {
    /// `Some(grant)` when allowed, `None` when not.
    fn authorize(&self, principal: &Principal, action: Action, resource: Resource) -> Option<Grant>;
}

/// The default role × resource × action matrix.
///
/// | role    | records (lead, contact, account, deal, activity, task) | pipelines  | members    | audit log, API keys, jobs, webhooks |
/// |---------|--------------------------------------------------|------------|------------|---------------------|
/// | owner   | all actions, all records                         | read/write | read/write | read (keys, jobs, webhooks: write) |
/// | admin   | all actions, all records                         | read/write | read/write | read (keys, jobs, webhooks: write) |
/// | manager | all actions, all records                         | read       | read       | —                   |
/// | member  | read all; create; update/delete own              | read       | read       | —                   |
/// | viewer  | read all                                         | read       | read       | —                   |
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {
    fn authorize(&self, principal: &Principal, action: Action, resource: Resource) -> Option<Grant> {
        let role = match principal.role() {
            None => return Some(Grant::ALL),
            Some(role) => role,
        };
        let is_record = resource.holds_owned_records();
        use Action::*;
        use Role::*;
        match (role, action) {
            (Owner | Admin, _) => Some(Grant::ALL),
            (_, Read)
                if matches!(
                    resource,
                    Resource::AuditLog | Resource::ApiKey | Resource::Job | Resource::Webhook
                ) =>
            {
                None
            }
            (_, Read) => Some(Grant::ALL),
            (Manager, _) if is_record => Some(Grant::ALL),
            (Member, Create) if is_record => Some(Grant::ALL),
            (Member, Update | Delete) if is_record => Some(Grant::OWN),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds members own are read off the descriptions: every kind with an owner.
    #[test]
    fn owned_records_are_the_kinds_with_an_owner() {
        let owned: Vec<Resource> = [
            Resource::Lead,
            Resource::Contact,
            Resource::Account,
            Resource::Deal,
            Resource::Activity,
            Resource::Task,
            Resource::Pipeline,
            Resource::Member,
            Resource::AuditLog,
            Resource::ApiKey,
            Resource::Job,
            Resource::Webhook,
        ]
        .into_iter()
        .filter(|r| r.holds_owned_records())
        .collect();
        assert_eq!(
            owned,
            [
                Resource::Lead,
                Resource::Contact,
                Resource::Account,
                Resource::Deal,
                Resource::Activity,
                Resource::Task
            ]
        );
        let member =
            Principal::User { user_id: UserId::from_uuid(uuid::Uuid::from_u128(1)), role: Role::Member };
        let grant = DefaultPolicy.authorize(&member, Action::Update, Resource::Activity);
        assert_eq!(grant.map(|g| g.record_scope), Some(RecordScope::Own));
        assert_eq!(DefaultPolicy.authorize(&member, Action::Update, Resource::Pipeline), None);
    }
}
