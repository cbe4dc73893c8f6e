//! Tenants, users and memberships: creating a workspace, resolving who may act in it.

use super::records::on_current;
use super::{Crm, snapshot};
use crate::audit::AuditAction;
use crate::error::{Error, FieldError, Result};
use crate::model::{Kind, Member, Membership, NewMember, NewPipeline, NewTenant, NewUser, Tenant, User};
use crate::policy::{Action, Resource};
use crate::scope::{Principal, Role, Scope, TenantId, UserId};
use crate::store::{Entity, Guard, Write};
use crate::validate;

/// What [`Crm::create_tenant`] made.
#[derive(Debug, Clone)]
pub struct TenantCreated {
    /// The new tenant.
    pub tenant: Tenant,
    /// Its owner (an existing user when the e-mail was already known).
    pub owner: User,
    /// A scope for the owner in the new tenant, ready to use.
    pub owner_scope: Scope,
}

impl Crm {
    /// Creates a tenant with its owner and default sales pipeline, atomically.
    ///
    /// This is registration's core: the host decides who may call it (and, with identity, how
    /// the owner proves who they are).
    pub async fn create_tenant(&self, new: NewTenant) -> Result<TenantCreated> {
        let (draft, created) = self.prepare_tenant(new).await?;
        self.commit(draft).await?;
        Ok(created)
    }

    /// Validates and stages a new tenant, its owner and default pipeline, uncommitted, so
    /// registration can add the owner's credential and session to the same transaction.
    pub(crate) async fn prepare_tenant(
        &self,
        new: NewTenant,
    ) -> Result<(super::draft::Draft, TenantCreated)> {
        let mut errors = Vec::new();
        validate::required_name("name", &new.name, &mut errors);
        if !validate::is_slug(&new.slug) {
            errors.push(FieldError::new(
                "slug",
                "must be 3-63 characters of a-z, 0-9 and -, not starting or ending with -",
            ));
        }
        check_new_user("owner.", &new.owner, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        if self.store_ref().tenant_by_slug(&new.slug).await?.is_some() {
            return Err(slug_taken());
        }
        let tenant_id: TenantId = self.new_id();
        let (owner, owner_is_new) = self.find_or_make_user(&new.owner).await?;
        let scope = Scope::new(tenant_id, Principal::User { user_id: owner.id, role: Role::Owner });
        let mut draft = self.draft(&scope);
        let tenant = Tenant { id: tenant_id, slug: new.slug, name: new.name, created_at: draft.now };
        let after = snapshot(&tenant);
        self.record_change(
            &mut draft,
            AuditAction::Created,
            Kind::Tenant,
            tenant_id.uuid(),
            None,
            Some(&after),
        );
        draft.insert(Entity::Tenant(tenant.clone()));
        if owner_is_new {
            draft.insert(Entity::User(owner.clone()));
        }
        self.stage_membership(&mut draft, owner.id, Role::Owner);
        self.prepare_pipeline(&mut draft, NewPipeline::default_sales(), true)?;
        Ok((draft, TenantCreated { tenant, owner, owner_scope: scope }))
    }

    /// A tenant by id, for resolving the tenant of a request.
    pub async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        self.store_ref().tenant(id).await?.ok_or(Error::NotFound)
    }

    /// A tenant by slug, for resolving the tenant of a request.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant> {
        if !validate::is_slug(slug) {
            return Err(Error::NotFound);
        }
        self.store_ref().tenant_by_slug(slug).await?.ok_or(Error::NotFound)
    }

    /// A scope for a user the host has already authenticated, with their role in the tenant.
    ///
    /// `Forbidden` when the user is not a member — and equally when the tenant does not exist,
    /// so the answer never reveals which tenants exist.
    pub async fn scope_for(&self, tenant_id: TenantId, user_id: UserId) -> Result<Scope> {
        let system = Scope::system(tenant_id);
        let membership = self.store_ref().membership(&system, user_id).await?.ok_or(Error::Forbidden)?;
        Ok(Scope::new(tenant_id, Principal::User { user_id, role: membership.role }))
    }

    /// The tenant's members and their roles.
    pub async fn members(&self, scope: &Scope) -> Result<Vec<Member>> {
        self.authorize(scope, Action::Read, Resource::Member)?;
        self.store_ref().members(scope).await
    }

    /// One member of the tenant, by user id (`NotFound` for non-members and unknown ids alike).
    pub async fn member(&self, scope: &Scope, user_id: UserId) -> Result<Member> {
        self.authorize(scope, Action::Read, Resource::Member)?;
        let membership = self.store_ref().membership(scope, user_id).await?.ok_or(Error::NotFound)?;
        let user = self.store_ref().user(user_id).await?.ok_or(Error::NotFound)?;
        Ok(Member {
            user,
            role: membership.role,
            version: membership.version,
            joined_at: membership.created_at,
        })
    }

    /// Adds a user to the tenant with a role, creating the user if the e-mail is new (with the
    /// given password, if any; an existing user's password is never changed here).
    /// Only owners may grant `owner`.
    pub async fn add_member(&self, scope: &Scope, new: NewMember) -> Result<Member> {
        self.authorize(scope, Action::Create, Resource::Member)?;
        let mut errors = Vec::new();
        check_new_user("", &NewUser { email: new.email.clone(), name: new.name.clone() }, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        require_owner_for(scope, new.role)?;
        let new_password = new.password;
        let (user, is_new) = self.find_or_make_user(&NewUser { email: new.email, name: new.name }).await?;
        if !is_new && self.store_ref().membership(scope, user.id).await?.is_some() {
            return Err(Error::taken("user_id"));
        }
        let mut draft = self.draft(scope);
        if is_new {
            draft.insert(Entity::User(user.clone()));
            if let Some(password) = &new_password {
                let credential = self.initial_credential(&user, password, draft.now).await?;
                draft.insert(Entity::Credential(credential));
            }
        }
        let membership = self.stage_membership(&mut draft, user.id, new.role);
        self.commit(draft).await?;
        Ok(Member {
            user,
            role: membership.role,
            version: membership.version,
            joined_at: membership.created_at,
        })
    }

    /// Changes a member's role (with `expected_version`, only if the membership is still at it).
    /// Only owners may grant or take away `owner`, and the last owner cannot be demoted.
    pub async fn change_role(
        &self,
        scope: &Scope,
        user_id: UserId,
        expected_version: Option<i64>,
        role: Role,
    ) -> Result<Member> {
        self.authorize(scope, Action::Update, Resource::Member)?;
        on_current(expected_version, || self.apply_role(scope, user_id, expected_version, role)).await
    }

    async fn apply_role(
        &self,
        scope: &Scope,
        user_id: UserId,
        expected_version: Option<i64>,
        role: Role,
    ) -> Result<Member> {
        let current = self.store_ref().membership(scope, user_id).await?.ok_or(Error::NotFound)?;
        let expected_version = expected_version.unwrap_or(current.version);
        require_owner_for(scope, current.role)?;
        require_owner_for(scope, role)?;
        if current.version != expected_version {
            return Err(Error::stale_version());
        }
        if current.role == role {
            let user = self.store_ref().user(user_id).await?.ok_or(Error::NotFound)?;
            return Ok(Member { user, role, version: current.version, joined_at: current.created_at });
        }
        if current.role == Role::Owner && role != Role::Owner {
            self.ensure_another_owner(scope, user_id).await?;
        }
        let mut draft = self.draft(scope);
        let mut updated = current.clone();
        updated.role = role;
        updated.version += 1;
        updated.updated_at = draft.now;
        self.record_change(
            &mut draft,
            AuditAction::Updated,
            Kind::Member,
            user_id.uuid(),
            Some(&snapshot(&current)),
            Some(&snapshot(&updated)),
        );
        draft.update(Entity::Membership(updated.clone()), expected_version);
        draft.changes.guards.push(Guard::TenantKeepsAnOwner);
        let user = self.store_ref().user(user_id).await?.ok_or(Error::NotFound)?;
        self.commit(draft).await?;
        Ok(Member { user, role, version: updated.version, joined_at: updated.created_at })
    }

    /// Removes a member from the tenant (the user stays, for other tenants). Only owners may
    /// remove owners, and the last owner cannot be removed.
    pub async fn remove_member(
        &self,
        scope: &Scope,
        user_id: UserId,
        expected_version: Option<i64>,
    ) -> Result<()> {
        self.authorize(scope, Action::Delete, Resource::Member)?;
        let current = self.store_ref().membership(scope, user_id).await?.ok_or(Error::NotFound)?;
        require_owner_for(scope, current.role)?;
        let version = expected_version.unwrap_or(current.version);
        if current.version != version {
            return Err(Error::stale_version());
        }
        if current.role == Role::Owner {
            self.ensure_another_owner(scope, user_id).await?;
        }
        let mut draft = self.draft(scope);
        self.record_change(
            &mut draft,
            AuditAction::Deleted,
            Kind::Member,
            user_id.uuid(),
            Some(&snapshot(&current)),
            None,
        );
        draft.changes.writes.push(Write::RemoveMembership { user_id, expected_version: version });
        let at = draft.now;
        draft.changes.writes.push(Write::RevokeMemberAccess { user_id, at });
        draft.changes.guards.push(Guard::TenantKeepsAnOwner);
        self.commit(draft).await
    }

    /// Fails early with a clear message; the commit's [`Guard::TenantKeepsAnOwner`] makes the
    /// rule hold under concurrency too.
    async fn ensure_another_owner(&self, scope: &Scope, leaving: UserId) -> Result<()> {
        let members = self.store_ref().members(scope).await?;
        if members.iter().any(|m| m.role == Role::Owner && m.user.id != leaving) {
            Ok(())
        } else {
            Err(Guard::TenantKeepsAnOwner.broken())
        }
    }

    fn stage_membership(&self, draft: &mut super::draft::Draft, user_id: UserId, role: Role) -> Membership {
        let membership = Membership {
            tenant_id: draft.scope.tenant_id(),
            user_id,
            role,
            version: 1,
            created_at: draft.now,
            updated_at: draft.now,
        };
        let after = snapshot(&membership);
        self.record_change(draft, AuditAction::Created, Kind::Member, user_id.uuid(), None, Some(&after));
        draft.insert(Entity::Membership(membership.clone()));
        membership
    }

    /// The user with this e-mail, or a new (not yet stored) one; `true` when new.
    async fn find_or_make_user(&self, new: &NewUser) -> Result<(User, bool)> {
        let email = new.email.to_lowercase();
        if let Some(user) = self.store_ref().user_by_email(&email).await? {
            return Ok((user, false));
        }
        let user =
            User { id: self.new_id(), email, name: new.name.clone(), created_at: self.inner.clock.now() };
        Ok((user, true))
    }
}

fn check_new_user(prefix: &str, user: &NewUser, errors: &mut Vec<FieldError>) {
    validate::email(&format!("{prefix}email"), &user.email, errors);
    validate::required_name(&format!("{prefix}name"), &user.name, errors);
}

/// Only owners hand out, change or remove the owner role.
fn require_owner_for(scope: &Scope, role: Role) -> Result<()> {
    let is_owner = matches!(scope.principal().role(), Some(Role::Owner) | None);
    if role == Role::Owner && !is_owner { Err(Error::Forbidden) } else { Ok(()) }
}

fn slug_taken() -> Error {
    Error::taken("slug")
}
