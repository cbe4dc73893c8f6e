//! Registration, login, token refresh and logout, access-token and API-key authentication,
//! and API-key management.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Crm, snapshot};
use crate::audit::AuditAction;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::identity::secret::hashes_match;
use crate::identity::{AccessClaims, ApiKeySecret, RefreshSecret, check_password_policy};
use crate::model::{
    ApiKey, ApiKeyId, Credential, Kind, NewApiKey, NewTenant, NewUser, RefreshToken, Tenant, User,
};
use crate::policy::{Action, Resource};
use crate::scope::{Principal, Role, Scope, TenantId, UserId};
use crate::store::{Entity, Write};
use crate::validate;

/// Input to register: a new tenant with the caller as its owner.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The owner's e-mail, which must not have an account yet (409 if it does: such a person
    /// signs in and creates tenants from there).
    pub email: String,
    /// The owner's password (12–1024 characters, not a common one, not one character repeated,
    /// not the e-mail).
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 1024))]
    pub password: String,
    /// The owner's display name.
    pub name: String,
    /// The tenant to create.
    pub tenant: NewTenantInfo,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("email", &self.email)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The tenant part of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTenantInfo {
    /// Display name.
    pub name: String,
    /// Unique slug: 3–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"))]
    pub slug: String,
}

/// Input to log in to one tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The tenant, already resolved by the host (header, subdomain, or a field).
    pub tenant_id: TenantId,
    /// E-mail.
    pub email: String,
    /// Password.
    pub password: String,
    /// The client's address, for the per-client throttle (`None` skips it).
    pub client: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// What a successful registration, login or refresh returns.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token that gets a new pair (`Crm::refresh`, `POST /api/auth/refresh`); rotates on
    /// every use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The user.
    pub user: User,
    /// The tenant.
    pub tenant: Tenant,
    /// The user's role there.
    pub role: Role,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user.id)
            .field("tenant", &self.tenant.id)
            .finish_non_exhaustive()
    }
}

/// A new API key and its secret, which is shown this once and never stored.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    /// The key's record.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret to send as `Authorization: Bearer <key>` or `X-API-Key`.
    pub key: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("api_key", &self.api_key).finish_non_exhaustive()
    }
}

impl Crm {
    /// Registers a new tenant with a new user as its owner, and logs them in — one transaction.
    ///
    /// An e-mail that already has an account is refused (`Conflict` on `email`) without looking
    /// at the password, so registration is no password oracle; such a person signs in and
    /// creates tenants from there.
    pub async fn register(&self, input: Registration) -> Result<Session> {
        let mut errors = Vec::new();
        validate::email("email", &input.email, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        if self.store_ref().user_by_email(&input.email.to_lowercase()).await?.is_some() {
            return Err(Error::taken("email"));
        }
        check_password_policy(&input.password, &input.email)?;
        let new = NewTenant {
            name: input.tenant.name,
            slug: input.tenant.slug,
            owner: NewUser { email: input.email, name: input.name },
        };
        let (mut draft, created) = self.prepare_tenant(new).await.map_err(registration_fields)?;
        let password_hash = self.inner.hasher.hash(&input.password).await?;
        let credential =
            Credential { user_id: created.owner.id, password_hash, version: 1, updated_at: draft.now };
        draft.insert(Entity::Credential(credential));
        let session =
            self.issue_session(&mut draft, &created.tenant, &created.owner, Role::Owner, Uuid::nil())?;
        self.commit(draft).await?;
        self.send_welcome(&created).await;
        Ok(session)
    }

    /// Enqueues the welcome mail to a new tenant's owner, if this CRM sends mail. The account
    /// exists by now, so a failure to enqueue is logged, not returned: the registration stands.
    async fn send_welcome(&self, created: &super::TenantCreated) {
        use crate::mail::{SEND_MAIL, welcome};
        if self.inner.job_types.get(SEND_MAIL).is_none() {
            return;
        }
        let mail = welcome(&created.owner.email, &created.owner.name, &created.tenant.name);
        let Ok(payload) = serde_json::to_value(&mail) else { return };
        let job =
            crate::job::NewJob::new(SEND_MAIL, payload).unique_key(format!("welcome:{}", created.owner.id));
        if let Err(error) = self.enqueue_job(&Scope::system(created.tenant.id), job).await {
            tracing::warn!(%error, tenant = %created.tenant.id, "the welcome mail was not enqueued");
        }
    }

    /// Logs a user in to a tenant. A wrong password, an unknown e-mail, an unknown tenant and a
    /// non-member all take the same path and give the same `Unauthenticated`; attempts are
    /// throttled per account and per client (`RateLimited` with a retry time), see
    /// [`crate::identity::LockoutPolicy`].
    pub async fn login(&self, input: Login) -> Result<Session> {
        let email = input.email.to_lowercase();
        let printable = |s: &str| !s.chars().any(char::is_control);
        if input.password.chars().count() > crate::identity::MAX_PASSWORD_CHARS
            || email.len() > validate::MAX_EMAIL
            || !printable(&email)
        {
            return Err(Error::Unauthenticated);
        }
        // Any client string counts: long or odd ones (a header passed verbatim) by their hash.
        let client_key = input.client.map(|c| match c.len() <= 64 && printable(&c) {
            true => format!("client:{c}"),
            false => format!("client:#{}", crate::identity::secret::hash_secret(&c)),
        });
        let account_key = format!("account:{email}");
        let scope = Scope::system(input.tenant_id);
        let tenant = self.store_ref().tenant(input.tenant_id).await?;
        if tenant.is_some() {
            let policy = self.inner.identity.lockout;
            self.admit_attempt(&scope, &account_key, policy.account_free_failures).await?;
            if let Some(key) = &client_key {
                self.admit_attempt(&scope, key, policy.client_free_failures).await?;
            }
        }
        // The same reads happen whether or not the account exists, so timing reveals nothing.
        let user = self.store_ref().user_by_email(&email).await?;
        let user_id = user.as_ref().map_or(UserId::from_uuid(Uuid::nil()), |u| u.id);
        let membership = self.store_ref().membership(&scope, user_id).await?;
        let credential = self.store_ref().credential(user_id).await?;
        let phc = credential.as_ref().filter(|_| membership.is_some()).map(|c| c.password_hash.as_str());
        let verified = self.inner.hasher.verify(&input.password, phc).await?;
        let (Some(tenant), Some(user), Some(membership), Some(credential), true) =
            (tenant, user, membership, credential, verified)
        else {
            return Err(Error::Unauthenticated);
        };
        let user_scope = Scope::new(tenant.id, Principal::User { user_id: user.id, role: membership.role });
        let mut draft = self.draft(&user_scope);
        draft.changes.writes.push(Write::ClearLoginFailures { key: account_key });
        if let Some(key) = client_key {
            draft.changes.writes.push(Write::ForgiveLoginAttempt { key });
        }
        if self.inner.identity.argon2.is_outdated(&credential.password_hash) {
            let password_hash = self.inner.hasher.hash(&input.password).await?;
            let upgraded = Credential {
                password_hash,
                version: credential.version + 1,
                updated_at: draft.now,
                ..credential
            };
            draft.update(Entity::Credential(upgraded), credential.version);
        }
        let session = self.issue_session(&mut draft, &tenant, &user, membership.role, Uuid::nil())?;
        self.commit(draft).await?;
        Ok(session)
    }

    /// Counts a login attempt before its password is checked, refusing it while the key is
    /// locked out — or when concurrent attempts have used up the allowance meanwhile.
    async fn admit_attempt(&self, scope: &Scope, key: &str, free: i64) -> Result<()> {
        let policy = self.inner.identity.lockout;
        let now = self.inner.clock.now();
        let before = self.store_ref().login_failures(scope, key).await?;
        if let Some(wait) = before.as_ref().and_then(|f| policy.wait(f, free, now)) {
            // Rounded up: waiting the seconds named must be enough.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Error::RateLimited { retry_after_secs: secs.max(1) });
        }
        let prior = before.as_ref().map_or(0, |f| policy.live_count(f, now));
        let mut draft = self.draft(scope);
        let record = Write::RecordLoginFailure {
            key: key.to_owned(),
            at: now,
            forget_before: policy.forget_before(now),
        };
        draft.changes.writes.push(record);
        self.commit(draft).await?;
        let after = self.store_ref().login_failures(scope, key).await?.map_or(prior + 1, |f| f.count);
        if after > free && after > prior + 1 {
            let wait = policy.base_delay.as_secs().max(1);
            return Err(Error::RateLimited { retry_after_secs: wait });
        }
        Ok(())
    }

    /// Exchanges a refresh token for a new pair. The presented token is spent; presenting a
    /// spent token again revokes its whole family (it was stolen, or the client is broken). The
    /// new access token carries the member's current role; a removed member gets nothing.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session> {
        let presented = RefreshSecret::parse(refresh_token).ok_or(Error::Unauthenticated)?;
        let tenant_id: TenantId = presented.tenant.into();
        let scope = Scope::system(tenant_id);
        let stored = self.valid_refresh_token(&scope, &presented).await?;
        let now = self.inner.clock.now();
        if stored.used_at.is_some() {
            tracing::warn!(family = %stored.family_id, "refresh token reused: revoking its family");
            self.revoke_family(&scope, stored.family_id).await?;
            return Err(Error::Unauthenticated);
        }
        if stored.expires_at <= now {
            return Err(Error::Unauthenticated);
        }
        let membership = self.store_ref().membership(&scope, stored.user_id).await?;
        let (Some(membership), Some(user), Some(tenant)) = (
            membership,
            self.store_ref().user(stored.user_id).await?,
            self.store_ref().tenant(tenant_id).await?,
        ) else {
            self.revoke_family(&scope, stored.family_id).await?;
            return Err(Error::Unauthenticated);
        };
        let user_scope = Scope::new(tenant_id, Principal::User { user_id: user.id, role: membership.role });
        let mut draft = self.draft(&user_scope);
        let spent = RefreshToken { used_at: Some(draft.now), version: stored.version + 1, ..stored.clone() };
        draft.update(Entity::RefreshToken(spent), stored.version);
        let session = self.issue_session(&mut draft, &tenant, &user, membership.role, stored.family_id)?;
        // Two concurrent uses of one token: the loser's version check fails. One of them is not
        // the legitimate client, so the family is revoked, as for a late reuse.
        match self.commit(draft).await {
            Ok(()) => Ok(session),
            Err(Error::Conflict(_)) => {
                self.revoke_family(&scope, stored.family_id).await?;
                Err(Error::Unauthenticated)
            }
            Err(other) => Err(other),
        }
    }

    /// Ends the session a refresh token belongs to: its whole family is revoked.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let presented = RefreshSecret::parse(refresh_token).ok_or(Error::Unauthenticated)?;
        let scope = Scope::system(presented.tenant.into());
        let stored = self.valid_refresh_token(&scope, &presented).await?;
        self.revoke_family(&scope, stored.family_id).await
    }

    /// The scope an access token grants. Stateless: the role is the one in the token, so a role
    /// change or removal takes effect for access tokens at their expiry (15 minutes by default).
    pub fn authenticate(&self, access_token: &str) -> Result<Scope> {
        let identity = &self.inner.identity;
        let now = self.inner.clock.now().timestamp();
        let claims = identity.keys.verify(access_token, &identity.issuer, &identity.audience, now)?;
        let role = Role::parse(&claims.role).ok_or(Error::Unauthenticated)?;
        Ok(Scope::new(claims.tid.into(), Principal::User { user_id: claims.sub.into(), role }))
    }

    /// The scope an API key grants: its role, on behalf of the admin who created it. Each use
    /// is counted (`use_count`, `last_used_at`).
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Scope> {
        let presented = ApiKeySecret::parse(key).ok_or(Error::Unauthenticated)?;
        let tenant_id: TenantId = presented.tenant.into();
        let system = Scope::system(tenant_id);
        let stored =
            self.store_ref().api_key(&system, presented.id.into()).await?.ok_or(Error::Unauthenticated)?;
        if !hashes_match(&stored.secret_hash, &presented.hash()) || stored.revoked_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        // A key acts for its creator: it stops working when they leave the tenant, and never
        // acts with more power than they now have.
        let creator = self.store_ref().membership(&system, stored.created_by).await?;
        if creator.is_none_or(|m| m.role > stored.role) {
            return Err(Error::Unauthenticated);
        }
        let mut draft = self.draft(&system);
        let now = draft.now;
        draft.changes.writes.push(Write::TouchApiKey { id: stored.id, at: now });
        self.commit(draft).await?;
        Ok(Scope::new(
            tenant_id,
            Principal::ApiKey { key_id: stored.id, role: stored.role, created_by: stored.created_by },
        ))
    }

    /// Creates an API key (admins). The secret is in the result only.
    pub async fn create_api_key(&self, scope: &Scope, new: NewApiKey) -> Result<CreatedApiKey> {
        self.authorize(scope, Action::Create, Resource::ApiKey)?;
        let mut errors = Vec::new();
        validate::required_name("name", &new.name, &mut errors);
        if new.role == Role::Owner {
            errors.push(FieldError::new("role", "API keys cannot have the owner role"));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        // Only people create keys: a key cannot mint more keys (revoking a leaked key must be enough).
        let Principal::User { user_id: created_by, .. } = *scope.principal() else {
            return Err(Error::Forbidden);
        };
        let mut draft = self.draft(scope);
        let id: ApiKeyId = self.new_id();
        let secret = ApiKeySecret::generate(scope.tenant_id().uuid(), id.uuid());
        let api_key = ApiKey {
            id,
            tenant_id: scope.tenant_id(),
            name: new.name,
            role: new.role,
            secret_hash: secret.hash(),
            created_by,
            created_at: draft.now,
            last_used_at: None,
            use_count: 0,
            revoked_at: None,
            version: 1,
        };
        let after = snapshot(&api_key);
        self.record_change(&mut draft, AuditAction::Created, Kind::ApiKey, id.uuid(), None, Some(&after));
        draft.insert(Entity::ApiKey(api_key.clone()));
        self.commit(draft).await?;
        Ok(CreatedApiKey { api_key, key: secret.expose() })
    }

    /// The tenant's API keys, revoked ones included (admins).
    pub async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>> {
        self.authorize(scope, Action::Read, Resource::ApiKey)?;
        self.store_ref().api_keys(scope).await
    }

    /// Revokes an API key (admins); it stops authenticating at once.
    pub async fn revoke_api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<()> {
        self.revoke_api_key_at(scope, id, None).await
    }

    /// Like [`Crm::revoke_api_key`], if the key is still at `expected_version` (when given): a
    /// key that changed since the caller read it (was revoked) is `Conflict`, like any stale write.
    pub async fn revoke_api_key_at(
        &self,
        scope: &Scope,
        id: ApiKeyId,
        expected_version: Option<i64>,
    ) -> Result<()> {
        self.authorize(scope, Action::Delete, Resource::ApiKey)?;
        let current = self.store_ref().api_key(scope, id).await?.ok_or(Error::NotFound)?;
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(Error::stale_version());
        }
        if current.revoked_at.is_some() {
            return Ok(());
        }
        let mut draft = self.draft(scope);
        let at = draft.now;
        let revoked = ApiKey { revoked_at: Some(at), ..current.clone() };
        self.record_change(
            &mut draft,
            AuditAction::Deleted,
            Kind::ApiKey,
            id.uuid(),
            Some(&snapshot(&current)),
            Some(&snapshot(&revoked)),
        );
        draft.changes.writes.push(Write::RevokeApiKey { id, at });
        self.commit(draft).await
    }

    /// A stored refresh token matching the presented secret, unrevoked; else `Unauthenticated`.
    async fn valid_refresh_token(&self, scope: &Scope, presented: &RefreshSecret) -> Result<RefreshToken> {
        let stored = self.store_ref().refresh_token(scope, presented.id.into()).await?;
        match stored {
            Some(t) if hashes_match(&t.secret_hash, &presented.hash()) && t.revoked_at.is_none() => Ok(t),
            _ => Err(Error::Unauthenticated),
        }
    }

    async fn revoke_family(&self, scope: &Scope, family_id: Uuid) -> Result<()> {
        let mut draft = self.draft(scope);
        let at = draft.now;
        draft.changes.writes.push(Write::RevokeTokenFamily { family_id, at });
        self.commit(draft).await
    }

    /// Stages a new refresh token (in `family`, or a new family when nil) and signs an access token.
    fn issue_session(
        &self,
        draft: &mut super::draft::Draft,
        tenant: &Tenant,
        user: &User,
        role: Role,
        family: Uuid,
    ) -> Result<Session> {
        let identity = &self.inner.identity;
        let id = self.new_id::<RefreshToken>();
        let family_id = if family.is_nil() { id.uuid() } else { family };
        let secret = RefreshSecret::generate(tenant.id.uuid(), id.uuid());
        draft.insert(Entity::RefreshToken(RefreshToken {
            id,
            tenant_id: tenant.id,
            family_id,
            user_id: user.id,
            secret_hash: secret.hash(),
            created_at: draft.now,
            expires_at: draft
                .now
                .checked_add_signed(delta(identity.refresh_ttl))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            used_at: None,
            revoked_at: None,
            version: 1,
        }));
        let now = draft.now.timestamp();
        let ttl = identity.access_ttl.as_secs().min(i64::MAX as u64 / 2);
        let claims = AccessClaims {
            iss: identity.issuer.clone(),
            aud: identity.audience.clone(),
            sub: user.id.uuid(),
            tid: tenant.id.uuid(),
            role: role.as_str().to_owned(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl as i64),
            jti: self.new_id::<()>().uuid(),
        };
        Ok(Session {
            access_token: identity.keys.sign(&claims)?,
            refresh_token: secret.expose(),
            token_type: "Bearer",
            expires_in: ttl,
            user: user.clone(),
            tenant: tenant.clone(),
            role,
        })
    }

    /// Sets the password of a user who has none yet (a new member), checking the policy.
    pub(crate) async fn initial_credential(
        &self,
        user: &User,
        password: &str,
        at: DateTime<Utc>,
    ) -> Result<Credential> {
        check_password_policy(password, &user.email)?;
        let password_hash = self.inner.hasher.hash(password).await?;
        Ok(Credential { user_id: user.id, password_hash, version: 1, updated_at: at })
    }
}

/// Names registration errors after the registration input (`tenant.slug`, `email`), not the
/// tenant input it is turned into.
fn registration_fields(error: Error) -> Error {
    match error {
        Error::Validation(fields) => Error::Validation(
            fields
                .into_iter()
                .map(|mut f| {
                    f.field = match f.field.as_str() {
                        "name" => "tenant.name".into(),
                        "slug" => "tenant.slug".into(),
                        "owner.name" => "name".into(),
                        "owner.email" => "email".into(),
                        other => other.to_owned(),
                    };
                    f
                })
                .collect(),
        ),
        Error::Conflict(Conflict::Unique { field }) if field == "slug" => Error::taken("tenant.slug"),
        other => other,
    }
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
