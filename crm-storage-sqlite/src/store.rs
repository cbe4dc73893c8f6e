//! [`SqliteStore`]: the `crm_core::Store` implementation.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crm_core::job::{Job, JobId, JobState};
use crm_core::model::WebhookId;
use crm_core::model::{
    ApiKey, ApiKeyId, Credential, DealId, IdempotencyRecord, Kind, LoginFailures, Member, Membership,
    RefreshToken, RefreshTokenId, StageChange, Tenant, User,
};
use crm_core::store::{
    ChangeSet, DecodedPage, Enqueued, Entity, HistoryStore, IdempotencyStore, IdentityStore, JobStore,
    ListQuery, PageDecoder, PurgeCutoffs, Purged, RecordStore, RetentionStore, TimeCursor, WebhookStore,
};
use crm_core::{DomainEvent, Result, Scope, TenantId, UserId};
use rusqlite::types::Value;
use uuid::Uuid;

use crate::conn::{Connections, SqliteOptions};
use crate::{deliveries, jobs, migrate, read, retention, schedules, write};
use crm_core::schedule::Schedule;

/// A crm store in a SQLite database file, or in memory.
///
/// Cheap to clone: clones share the same connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conns: Arc<Connections>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Like [`SqliteStore::open`], with explicit options.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        Self::setup(move || Connections::open_file(&path, &options, migrate::migrate)).await
    }

    /// A private in-memory database, migrated; gone when the last clone drops.
    pub async fn open_in_memory() -> Result<Self> {
        Self::setup(|| Connections::open_memory(&SqliteOptions::default(), migrate::migrate)).await
    }

    async fn setup(open: impl FnOnce() -> Result<Connections> + Send + 'static) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let conns = open()?;
            tracing::debug!(location = %conns.location, "sqlite store ready");
            Ok(Self { conns: Arc::new(conns) })
        })
        .await
        .map_err(crate::error::join)?
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        self.conns.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(crate::error::map)).await
    }
}

fn uuid(id: Uuid) -> Value {
    crate::rows::uuid(id)
}

/// Writes in a change set up to which the caller turns its rows into SQL values (see
/// [`write::Prepared`]).
const PREPARED_BY_CALLER: usize = 16;

#[async_trait]
impl RecordStore for SqliteStore {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::get(c, tenant, kind, id)).await
    }

    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        let tenant = scope.tenant_id();
        let query = query.clone();
        self.conns.read(move |c| read::list(c, tenant, &query)).await
    }

    async fn list_into(&self, scope: &Scope, query: &ListQuery, decode: PageDecoder) -> Result<DecodedPage> {
        let tenant = scope.tenant_id();
        let query = query.clone();
        let Some(def) = query.kind.def() else { return Ok(decode().finish()) };
        // Each row is decoded on the reader thread as it is read: no `Vec<Value>` per row, and
        // no other core touching the fresh rows.
        self.conns
            .read(move |c| {
                let mut sink = decode();
                let mut failed = None;
                let read = read::list_with(c, tenant, &query, &mut |row| {
                    let meta = crate::rows::meta(row)?;
                    let mut values = crate::rows::in_place(def, row);
                    sink.row(def, meta, &mut values).map_err(|e| {
                        failed = Some(e);
                        rusqlite::Error::InvalidQuery
                    })
                });
                match (read, failed) {
                    (_, Some(e)) | (Err(e), None) => Err(e),
                    (Ok(_), None) => Ok(sink.finish()),
                }
            })
            .await
    }

    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        let tenant = scope.tenant_id();
        // A create or an update is prepared here, off the one writer thread; an import's batch
        // (milliseconds of work) on the writer, not on the async runtime.
        if changes.writes.len() <= PREPARED_BY_CALLER {
            let prepared = write::prepare(tenant, changes)?;
            self.conns.commit(move |c| write::commit(c, prepared)).await
        } else {
            self.conns.commit(move |c| write::commit(c, write::prepare(tenant, changes)?)).await
        }
    }

    async fn ping(&self) -> Result<()> {
        SqliteStore::ping(self).await
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.conns.read(move |c| read::tenant_by(c, "id", uuid(id.uuid()))).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let slug = Value::Text(slug.to_owned());
        self.conns.read(move |c| read::tenant_by(c, "slug", slug)).await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.conns.read(move |c| read::user_by(c, "id", uuid(id.uuid()))).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let email = Value::Text(email.to_owned());
        self.conns.read(move |c| read::user_by(c, "email", email)).await
    }

    async fn membership(&self, scope: &Scope, user_id: UserId) -> Result<Option<Membership>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::membership(c, tenant, user_id)).await
    }

    async fn members(&self, scope: &Scope) -> Result<Vec<Member>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::members(c, tenant)).await
    }

    async fn credential(&self, user_id: UserId) -> Result<Option<Credential>> {
        self.conns.read(move |c| read::credential(c, user_id)).await
    }

    async fn refresh_token(&self, scope: &Scope, id: RefreshTokenId) -> Result<Option<RefreshToken>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::refresh_token(c, tenant, id.uuid())).await
    }

    async fn api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<Option<ApiKey>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::api_key(c, tenant, id.uuid())).await
    }

    async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::api_keys(c, tenant)).await
    }

    async fn login_failures(&self, scope: &Scope, key: &str) -> Result<Option<LoginFailures>> {
        let tenant = scope.tenant_id();
        let key = key.to_owned();
        self.conns.read(move |c| read::login_failures(c, tenant, &key)).await
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::stage_history(c, tenant, deal_id.uuid())).await
    }

    async fn audit_log(
        &self,
        scope: &Scope,
        query: &AuditQuery,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let tenant = scope.tenant_id();
        let query = query.clone();
        self.conns.read(move |c| read::audit_log(c, tenant, &query, before, limit)).await
    }

    async fn outbox(&self, scope: &Scope, after: Option<Uuid>, limit: u32) -> Result<Vec<DomainEvent>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| read::outbox(c, tenant, after, limit)).await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn idempotency_record(
        &self,
        scope: &Scope,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let tenant = scope.tenant_id();
        let (principal, key) = (principal.to_owned(), key.to_owned());
        self.conns.read(move |c| read::idempotency_record(c, tenant, &principal, &key)).await
    }
}

impl SqliteStore {
    /// Runs `f` on the writer in its own savepoint (see `conn.rs`) and hands back what it
    /// returned, once the transaction holding it is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.conns
            .commit(move |c| {
                let value = f(c)?;
                // The receiver waits below: it is gone only if the caller gave up.
                let _ = sender.send(value);
                Ok(())
            })
            .await?;
        receiver.await.map_err(|_| crm_core::Error::internal("a job write answered nothing"))
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue(&self, scope: &Scope, job: &Job) -> Result<Enqueued> {
        if job.tenant_id != scope.tenant_id() {
            return Err(crm_core::Error::internal("a job enqueued outside its tenant scope"));
        }
        let job = job.clone();
        self.write(move |c| jobs::enqueue(c, &job)).await
    }

    async fn claim(
        &self,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease: std::time::Duration,
        token: Uuid,
    ) -> Result<Option<Job>> {
        let types: Vec<String> = job_types.iter().map(|t| (*t).to_owned()).collect();
        let until = now
            + chrono::Duration::from_std(lease)
                .map_err(|_| crm_core::Error::invalid("lease", "is too long"))?;
        self.write(move |c| jobs::claim(c, &types, now, until, token)).await
    }

    async fn heartbeat(&self, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
        self.write(move |c| jobs::heartbeat(c, token, until)).await
    }

    async fn finish(&self, token: Uuid, job: &Job) -> Result<bool> {
        let job = job.clone();
        self.write(move |c| jobs::finish(c, token, &job)).await
    }

    async fn job(&self, scope: &Scope, id: JobId) -> Result<Option<Job>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| jobs::job(c, tenant, id)).await
    }

    async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| jobs::jobs(c, tenant, state, before, limit)).await
    }

    async fn update_job(&self, scope: &Scope, job: &Job, expected: JobState) -> Result<bool> {
        let (tenant, job) = (scope.tenant_id(), job.clone());
        self.write(move |c| jobs::update(c, tenant, &job, expected)).await
    }

    async fn put_schedule(&self, scope: &Scope, schedule: &Schedule) -> Result<()> {
        if schedule.tenant_id != scope.tenant_id() {
            return Err(crm_core::Error::internal("a schedule put outside its tenant scope"));
        }
        let schedule = schedule.clone();
        self.write(move |c| schedules::put(c, &schedule)).await
    }

    async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| schedules::list(c, tenant)).await
    }

    async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<bool> {
        let (tenant, name) = (scope.tenant_id(), name.to_owned());
        self.write(move |c| schedules::delete(c, tenant, &name)).await
    }

    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        self.conns.read(move |c| schedules::due(c, now, limit)).await
    }

    async fn fire_schedule(&self, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool> {
        if job.tenant_id != due.tenant_id {
            return Err(crm_core::Error::internal("an occurrence enqueued outside its schedule's tenant"));
        }
        let (due, job) = (due.clone(), job.clone());
        self.write(move |c| schedules::fire(c, &due, next, &job)).await
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge(&self, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
        let cutoffs = *cutoffs;
        self.write(move |c| retention::purge(c, &cutoffs, limit)).await
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn delivery(&self, scope: &Scope, id: DeliveryId) -> Result<Option<Delivery>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| deliveries::get(c, tenant, id)).await
    }

    async fn earlier_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let (tenant, delivery) = (scope.tenant_id(), delivery.clone());
        self.conns.read(move |c| deliveries::neighbour(c, tenant, &delivery, false)).await
    }

    async fn later_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let (tenant, delivery) = (scope.tenant_id(), delivery.clone());
        self.conns.read(move |c| deliveries::neighbour(c, tenant, &delivery, true)).await
    }

    async fn update_delivery(
        &self,
        scope: &Scope,
        delivery: &Delivery,
        attempt: Option<&DeliveryAttempt>,
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        if delivery.tenant_id != tenant {
            return Err(crm_core::Error::internal("an attempt recorded outside its tenant scope"));
        }
        let (delivery, attempt) = (delivery.clone(), attempt.cloned());
        self.write(move |c| deliveries::update_delivery(c, tenant, &delivery, attempt.as_ref())).await
    }

    async fn deliveries(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| deliveries::list(c, tenant, webhook_id, before, limit)).await
    }

    async fn attempts(&self, scope: &Scope, delivery_id: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let tenant = scope.tenant_id();
        self.conns.read(move |c| deliveries::attempts(c, tenant, delivery_id)).await
    }
}
