//! A store that can be taken down: every call answers [`Error::Unavailable`] while it is down.
//!
//! An outage must reach the caller as one (HTTP 503, retry later), never as a wrong password, a
//! foreign tenant or a missing record. Wrap the store a test builds its [`Crm`](crate::Crm)
//! from, keep the [`OutageSwitch`], and take the store down at the step under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditEntry, AuditQuery};
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crate::error::{Error, Result};
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
    PurgeCutoffs, Purged, RecordStore, RetentionStore, Store, TimeCursor, WebhookStore,
};

/// Wraps a store; see the module docs.
#[derive(Debug)]
pub struct Outage<S> {
    inner: S,
    down: Arc<AtomicBool>,
}

/// Takes an [`Outage`]'s store down and brings it back.
#[derive(Debug, Clone)]
pub struct OutageSwitch(Arc<AtomicBool>);

impl OutageSwitch {
    /// From now on every call fails with `Unavailable`.
    pub fn down(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// From now on calls reach the store again.
    pub fn up(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl<S: Store> Outage<S> {
    /// `inner`, up, and the switch that takes it down.
    pub fn new(inner: S) -> (Self, OutageSwitch) {
        let down = Arc::new(AtomicBool::new(false));
        (Self { inner, down: down.clone() }, OutageSwitch(down))
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Unavailable("the store is down for this test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<S: Store> RecordStore for Outage<S> {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        self.check()?;
        self.inner.get(scope, kind, id).await
    }
    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        self.check()?;
        self.inner.list(scope, query).await
    }
    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        self.check()?;
        self.inner.commit(scope, changes).await
    }
    async fn ping(&self) -> Result<()> {
        self.check()?;
        self.inner.ping().await
    }
}

#[async_trait]
impl<S: Store> IdentityStore for Outage<S> {
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.check()?;
        self.inner.tenant(id).await
    }
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        self.check()?;
        self.inner.tenant_by_slug(slug).await
    }
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.check()?;
        self.inner.user(id).await
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.check()?;
        self.inner.user_by_email(email).await
    }
    async fn membership(&self, scope: &Scope, user_id: UserId) -> Result<Option<Membership>> {
        self.check()?;
        self.inner.membership(scope, user_id).await
    }
    async fn members(&self, scope: &Scope) -> Result<Vec<Member>> {
        self.check()?;
        self.inner.members(scope).await
    }
    async fn credential(&self, user_id: UserId) -> Result<Option<Credential>> {
        self.check()?;
        self.inner.credential(user_id).await
    }
    async fn refresh_token(&self, scope: &Scope, id: RefreshTokenId) -> Result<Option<RefreshToken>> {
        self.check()?;
        self.inner.refresh_token(scope, id).await
    }
    async fn api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<Option<ApiKey>> {
        self.check()?;
        self.inner.api_key(scope, id).await
    }
    async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>> {
        self.check()?;
        self.inner.api_keys(scope).await
    }
    async fn login_failures(&self, scope: &Scope, key: &str) -> Result<Option<LoginFailures>> {
        self.check()?;
        self.inner.login_failures(scope, key).await
    }
}

#[async_trait]
impl<S: Store> HistoryStore for Outage<S> {
    async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>> {
        self.check()?;
        self.inner.stage_history(scope, deal_id).await
    }
    async fn audit_log(
        &self,
        scope: &Scope,
        query: &AuditQuery,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.check()?;
        self.inner.audit_log(scope, query, before, limit).await
    }
    async fn outbox(&self, scope: &Scope, after: Option<Uuid>, limit: u32) -> Result<Vec<DomainEvent>> {
        self.check()?;
        self.inner.outbox(scope, after, limit).await
    }
}

#[async_trait]
impl<S: Store> IdempotencyStore for Outage<S> {
    async fn idempotency_record(
        &self,
        scope: &Scope,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        self.check()?;
        self.inner.idempotency_record(scope, principal, key).await
    }
}

#[async_trait]
impl<S: Store> JobStore for Outage<S> {
    async fn enqueue(&self, scope: &Scope, job: &Job) -> Result<Enqueued> {
        self.check()?;
        self.inner.enqueue(scope, job).await
    }
    async fn claim(
        &self,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease: std::time::Duration,
        token: Uuid,
    ) -> Result<Option<Job>> {
        self.check()?;
        self.inner.claim(job_types, now, lease, token).await
    }
    async fn heartbeat(&self, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
        self.check()?;
        self.inner.heartbeat(token, until).await
    }
    async fn finish(&self, token: Uuid, job: &Job) -> Result<bool> {
        self.check()?;
        self.inner.finish(token, job).await
    }
    async fn job(&self, scope: &Scope, id: JobId) -> Result<Option<Job>> {
        self.check()?;
        self.inner.job(scope, id).await
    }
    async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        self.check()?;
        self.inner.jobs(scope, state, before, limit).await
    }
    async fn update_job(&self, scope: &Scope, job: &Job, expected: JobState) -> Result<bool> {
        self.check()?;
        self.inner.update_job(scope, job, expected).await
    }
    async fn put_schedule(&self, scope: &Scope, schedule: &Schedule) -> Result<()> {
        self.check()?;
        self.inner.put_schedule(scope, schedule).await
    }
    async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>> {
        self.check()?;
        self.inner.schedules(scope).await
    }
    async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<bool> {
        self.check()?;
        self.inner.delete_schedule(scope, name).await
    }
    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        self.check()?;
        self.inner.due_schedules(now, limit).await
    }
    async fn fire_schedule(&self, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool> {
        self.check()?;
        self.inner.fire_schedule(due, next, job).await
    }
    fn enqueue_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.enqueue_signal()
    }
}

#[async_trait]
impl<S: Store> RetentionStore for Outage<S> {
    async fn purge(&self, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
        self.check()?;
        self.inner.purge(cutoffs, limit).await
    }
}

#[async_trait]
impl<S: Store> WebhookStore for Outage<S> {
    async fn delivery(&self, scope: &Scope, id: DeliveryId) -> Result<Option<Delivery>> {
        self.check()?;
        self.inner.delivery(scope, id).await
    }
    async fn earlier_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        self.check()?;
        self.inner.earlier_pending(scope, delivery).await
    }
    async fn later_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        self.check()?;
        self.inner.later_pending(scope, delivery).await
    }
    async fn update_delivery(
        &self,
        scope: &Scope,
        delivery: &Delivery,
        attempt: Option<&DeliveryAttempt>,
    ) -> Result<()> {
        self.check()?;
        self.inner.update_delivery(scope, delivery, attempt).await
    }
    async fn deliveries(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.check()?;
        self.inner.deliveries(scope, webhook_id, before, limit).await
    }
    async fn attempts(&self, scope: &Scope, delivery_id: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        self.check()?;
        self.inner.attempts(scope, delivery_id).await
    }
}
