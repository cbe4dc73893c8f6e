//! A store wrapper that checks tenant isolation on every call, so that the whole conformance
//! suite — every case, race and model test — doubles as a leak test.
//!
//! [`store_conformance_tests!`](crate::store_conformance_tests) wraps each store in an
//! [`IsolationCheck`] before a test sees it. Any row a read returns that belongs to a tenant
//! other than the scope's, or is not what was asked for, **panics** the test: an error could be
//! swallowed by the code under test, a panic cannot. What each call checks:
//! - scoped reads: every row carries the scope's tenant (and the kind, id, deal or target
//!   asked for);
//! - members, which carry no tenant id: each is cross-checked through [`IdentityStore::membership`];
//! - unscoped reads (tenant, user, credential): what came back is what was asked for;
//! - [`RecordStore::commit`]: every written row, audit entry, event and idempotency claim carries the
//!   scope's tenant or none (users and credentials are global).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditEntry, AuditQuery};
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crate::error::Result;
use crate::event::DomainEvent;
use crate::job::{Job, JobId, JobState};
use crate::model::WebhookId;
use crate::model::{
    ApiKey, ApiKeyId, Credential, DealId, IdempotencyRecord, Kind, LoginFailures, Member, Membership,
    RefreshToken, RefreshTokenId, StageChange, Tenant, User,
};
use crate::schedule::Schedule;
use crate::scope::{Scope, TenantId, UserId};
use crate::store::{
    ChangeSet, Enqueued, Entity, HistoryStore, IdempotencyStore, IdentityStore, JobStore, ListQuery,
    PurgeCutoffs, Purged, RecordStore, RetentionStore, Store, TimeCursor, WebhookStore, Write,
};

/// Wraps a store and panics when a call crosses a tenant (see the module docs).
#[derive(Debug)]
pub struct IsolationCheck<S> {
    inner: S,
}

impl<S: Store> IsolationCheck<S> {
    /// Checks every call to `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// Panics unless `ok`: the store (or core) broke tenant isolation.
#[track_caller]
fn check(ok: bool, what: &str, detail: &dyn Debug) {
    assert!(ok, "tenant isolation broken: {what}: {detail:?}");
}

/// Checks that every row is the scope's.
#[track_caller]
fn all_in<T: Debug>(scope: &Scope, what: &str, rows: &[T], tenant: impl Fn(&T) -> TenantId) {
    for row in rows {
        check(tenant(row) == scope.tenant_id(), what, row);
    }
}

/// The kind and id of a record entity; `None` for the other rows a store keeps.
fn record_of(entity: &Entity) -> Option<(Kind, Uuid)> {
    entity.record_key()
}

/// Checks a record a scoped read returned: the scope's tenant and the kind asked for.
#[track_caller]
fn record_in(scope: &Scope, kind: Kind, entity: &Entity) -> Option<Uuid> {
    check(entity.tenant_id() == Some(scope.tenant_id()), "a record of another tenant", entity);
    let record = record_of(entity);
    check(record.is_some_and(|(k, _)| k == kind), "a row of another kind", entity);
    record.map(|(_, id)| id)
}

/// The tenant a write names, when it names one.
fn write_tenant(write: &Write) -> Option<TenantId> {
    match write {
        Write::Insert(entity) | Write::Update { entity, .. } => entity.tenant_id(),
        Write::ClaimIdempotencyKey { record, .. } => Some(record.tenant_id),
        Write::Deliver(delivery) => Some(delivery.tenant_id),
        Write::Enqueue(job) => Some(job.tenant_id),
        // These act on the scope's tenant and name no other.
        Write::RemoveMembership { .. }
        | Write::RevokeTokenFamily { .. }
        | Write::TouchApiKey { .. }
        | Write::RecordLoginFailure { .. }
        | Write::RevokeApiKey { .. }
        | Write::ClearLoginFailures { .. }
        | Write::ForgiveLoginAttempt { .. }
        | Write::CompleteIdempotencyKey { .. }
        | Write::ReleaseIdempotencyKey { .. }
        | Write::RevokeMemberAccess { .. } => None,
    }
}

#[async_trait]
impl<S: Store> RecordStore for IsolationCheck<S> {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        let entity = self.inner.get(scope, kind, id).await?;
        if let Some(e) = &entity {
            check(record_in(scope, kind, e) == Some(id), "another record than the id asked for", e);
        }
        Ok(entity)
    }

    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        let rows = self.inner.list(scope, query).await?;
        for row in &rows {
            record_in(scope, query.kind, row);
        }
        Ok(rows)
    }

    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        let tenant = scope.tenant_id();
        for write in &changes.writes {
            check(write_tenant(write).is_none_or(|t| t == tenant), "a write for another tenant", write);
        }
        all_in(scope, "an audit entry for another tenant", &changes.audit, |e| e.tenant_id);
        all_in(scope, "an event for another tenant", &changes.events, |e| e.tenant_id);
        self.inner.commit(scope, changes).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[async_trait]
impl<S: Store> IdentityStore for IsolationCheck<S> {
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let tenant = self.inner.tenant(id).await?;
        if let Some(t) = &tenant {
            check(t.id == id, "another tenant than the id asked for", t);
        }
        Ok(tenant)
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let tenant = self.inner.tenant_by_slug(slug).await?;
        if let Some(t) = &tenant {
            check(t.slug.eq_ignore_ascii_case(slug), "another tenant than the slug asked for", t);
        }
        Ok(tenant)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let user = self.inner.user(id).await?;
        if let Some(u) = &user {
            check(u.id == id, "another user than the id asked for", u);
        }
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let user = self.inner.user_by_email(email).await?;
        if let Some(u) = &user {
            check(
                u.email.to_lowercase() == email.to_lowercase(),
                "another user than the e-mail asked for",
                u,
            );
        }
        Ok(user)
    }

    async fn membership(&self, scope: &Scope, user_id: UserId) -> Result<Option<Membership>> {
        let membership = self.inner.membership(scope, user_id).await?;
        if let Some(m) = &membership {
            let ok = m.tenant_id == scope.tenant_id() && m.user_id == user_id;
            check(ok, "another membership than the one asked for", m);
        }
        Ok(membership)
    }

    async fn members(&self, scope: &Scope) -> Result<Vec<Member>> {
        let members = self.inner.members(scope).await?;
        for member in &members {
            let membership = self.inner.membership(scope, member.user.id).await?;
            check(membership.is_some(), "a member of another tenant", member);
        }
        Ok(members)
    }

    async fn credential(&self, user_id: UserId) -> Result<Option<Credential>> {
        let credential = self.inner.credential(user_id).await?;
        if let Some(c) = &credential {
            check(c.user_id == user_id, "another user's credential", &c.user_id);
        }
        Ok(credential)
    }

    async fn refresh_token(&self, scope: &Scope, id: RefreshTokenId) -> Result<Option<RefreshToken>> {
        let token = self.inner.refresh_token(scope, id).await?;
        if let Some(t) = &token {
            check(
                t.tenant_id == scope.tenant_id() && t.id == id,
                "another refresh token",
                &(t.tenant_id, t.id),
            );
        }
        Ok(token)
    }

    async fn api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<Option<ApiKey>> {
        let key = self.inner.api_key(scope, id).await?;
        if let Some(k) = &key {
            check(k.tenant_id == scope.tenant_id() && k.id == id, "another API key", &(k.tenant_id, k.id));
        }
        Ok(key)
    }

    async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>> {
        let keys = self.inner.api_keys(scope).await?;
        all_in(scope, "an API key of another tenant", &keys, |k| k.tenant_id);
        Ok(keys)
    }

    async fn login_failures(&self, scope: &Scope, key: &str) -> Result<Option<LoginFailures>> {
        // A count names no tenant: there is nothing in the answer to check.
        self.inner.login_failures(scope, key).await
    }
}

#[async_trait]
impl<S: Store> HistoryStore for IsolationCheck<S> {
    async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>> {
        let changes = self.inner.stage_history(scope, deal_id).await?;
        all_in(scope, "a stage change of another tenant", &changes, |c| c.tenant_id);
        for c in &changes {
            check(c.deal_id == deal_id, "a stage change of another deal", c);
        }
        Ok(changes)
    }

    async fn audit_log(
        &self,
        scope: &Scope,
        query: &AuditQuery,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let entries = self.inner.audit_log(scope, query, before, limit).await?;
        all_in(scope, "an audit entry of another tenant", &entries, |e| e.tenant_id);
        Ok(entries)
    }

    async fn outbox(&self, scope: &Scope, after: Option<Uuid>, limit: u32) -> Result<Vec<DomainEvent>> {
        let events = self.inner.outbox(scope, after, limit).await?;
        all_in(scope, "an event of another tenant", &events, |e| e.tenant_id);
        Ok(events)
    }
}

#[async_trait]
impl<S: Store> IdempotencyStore for IsolationCheck<S> {
    async fn idempotency_record(
        &self,
        scope: &Scope,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let record = self.inner.idempotency_record(scope, principal, key).await?;
        if let Some(r) = &record {
            let ok = r.tenant_id == scope.tenant_id() && r.principal == principal && r.key == key;
            check(ok, "another idempotency record", &(r.tenant_id, &r.principal, &r.key));
        }
        Ok(record)
    }
}

#[async_trait]
impl<S: Store> JobStore for IsolationCheck<S> {
    async fn enqueue(&self, scope: &Scope, job: &Job) -> Result<Enqueued> {
        check(job.tenant_id == scope.tenant_id(), "a job enqueued for another tenant", &job.tenant_id);
        self.inner.enqueue(scope, job).await
    }

    // Workers claim across tenants: nothing to check against a scope.
    async fn claim(
        &self,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease: std::time::Duration,
        token: Uuid,
    ) -> Result<Option<Job>> {
        self.inner.claim(job_types, now, lease, token).await
    }

    async fn heartbeat(&self, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
        self.inner.heartbeat(token, until).await
    }

    async fn finish(&self, token: Uuid, job: &Job) -> Result<bool> {
        self.inner.finish(token, job).await
    }

    async fn job(&self, scope: &Scope, id: JobId) -> Result<Option<Job>> {
        let job = self.inner.job(scope, id).await?;
        if let Some(j) = &job {
            check(j.tenant_id == scope.tenant_id() && j.id == id, "another job", &(j.tenant_id, j.id));
        }
        Ok(job)
    }

    async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let jobs = self.inner.jobs(scope, state, before, limit).await?;
        all_in(scope, "a job of another tenant", &jobs, |j| j.tenant_id);
        Ok(jobs)
    }

    async fn update_job(&self, scope: &Scope, job: &Job, expected: JobState) -> Result<bool> {
        check(job.tenant_id == scope.tenant_id(), "a job updated for another tenant", &job.tenant_id);
        self.inner.update_job(scope, job, expected).await
    }

    async fn put_schedule(&self, scope: &Scope, schedule: &Schedule) -> Result<()> {
        check(schedule.tenant_id == scope.tenant_id(), "a schedule for another tenant", &schedule.tenant_id);
        self.inner.put_schedule(scope, schedule).await
    }

    async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>> {
        let schedules = self.inner.schedules(scope).await?;
        all_in(scope, "a schedule of another tenant", &schedules, |s| s.tenant_id);
        Ok(schedules)
    }

    async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<bool> {
        self.inner.delete_schedule(scope, name).await
    }

    // Runners fire every tenant's schedules; the occurrence must be the schedule's tenant's.
    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        self.inner.due_schedules(now, limit).await
    }

    async fn fire_schedule(&self, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool> {
        check(job.tenant_id == due.tenant_id, "an occurrence for another tenant", &job.tenant_id);
        self.inner.fire_schedule(due, next, job).await
    }

    fn enqueue_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.enqueue_signal()
    }
}

#[async_trait]
impl<S: Store> RetentionStore for IsolationCheck<S> {
    // A purge sweeps every tenant and returns only counts: no row to check against a scope.
    async fn purge(&self, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
        self.inner.purge(cutoffs, limit).await
    }
}

#[async_trait]
impl<S: Store> WebhookStore for IsolationCheck<S> {
    async fn delivery(&self, scope: &Scope, id: DeliveryId) -> Result<Option<Delivery>> {
        let delivery = self.inner.delivery(scope, id).await?;
        if let Some(d) = &delivery {
            check(d.tenant_id == scope.tenant_id() && d.id == id, "another delivery than asked for", d);
        }
        Ok(delivery)
    }
    async fn earlier_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let earlier = self.inner.earlier_pending(scope, delivery).await?;
        if let Some(e) = &earlier {
            let same_lane =
                e.webhook_id == delivery.webhook_id && e.lane == delivery.lane && e.id < delivery.id;
            check(e.tenant_id == scope.tenant_id() && same_lane, "a delivery of another lane", e);
        }
        Ok(earlier)
    }
    async fn later_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let later = self.inner.later_pending(scope, delivery).await?;
        if let Some(l) = &later {
            let same_lane =
                l.webhook_id == delivery.webhook_id && l.lane == delivery.lane && l.id > delivery.id;
            check(l.tenant_id == scope.tenant_id() && same_lane, "a delivery of another lane", l);
        }
        Ok(later)
    }
    async fn update_delivery(
        &self,
        scope: &Scope,
        delivery: &Delivery,
        attempt: Option<&DeliveryAttempt>,
    ) -> Result<()> {
        check(delivery.tenant_id == scope.tenant_id(), "an attempt for another tenant", delivery);
        self.inner.update_delivery(scope, delivery, attempt).await
    }
    async fn deliveries(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let deliveries = self.inner.deliveries(scope, webhook_id, before, limit).await?;
        all_in(scope, "a delivery of another tenant", &deliveries, |d| d.tenant_id);
        for d in &deliveries {
            check(d.webhook_id == webhook_id, "a delivery of another endpoint", d);
        }
        Ok(deliveries)
    }
    async fn attempts(&self, scope: &Scope, delivery_id: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let attempts = self.inner.attempts(scope, delivery_id).await?;
        for a in &attempts {
            check(a.delivery_id == delivery_id, "an attempt of another delivery", a);
        }
        Ok(attempts)
    }
}
