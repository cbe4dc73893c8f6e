//! [`PgStore`]: the `crm_core::Store` implementation, and its scoped transactions.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crm_core::job::{Job, JobId, JobState};
use crm_core::model::{
    ApiKey, ApiKeyId, Credential, DealId, IdempotencyRecord, Kind, LoginFailures, Member, Membership,
    RefreshToken, RefreshTokenId, StageChange, Tenant, User, WebhookId,
};
use crm_core::schedule::Schedule;
use crm_core::store::{
    ChangeSet, DecodedPage, Enqueued, Entity, HistoryStore, IdempotencyStore, IdentityStore, JobStore,
    ListQuery, PageDecoder, PurgeCutoffs, Purged, RecordStore, RetentionStore, TimeCursor, WebhookStore,
};
use crm_core::{DomainEvent, Result, Scope, TenantId, UserId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use crate::point::PointRead;
use crate::rows::{self, Val};
use crate::{deliveries, error, jobs, migrate, read, retention, schedules, write};

/// The role every transaction switches to: no `BYPASSRLS`, owns nothing (created by the
/// migrations; grant it to the login role the application uses).
pub const APP_ROLE: &str = "crm_app";

/// The role job claims switch to: it sees every tenant's rows of the two job tables and no
/// other table (created by the migrations; grant it to the login role too).
pub const WORKER_ROLE: &str = "crm_worker";

/// A crm store in a PostgreSQL database. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Started by the first [`JobStore::enqueue_signal`] call, shared by clones.
    enqueued: Arc<OnceLock<watch::Receiver<u64>>>,
    /// Connections that are [`WORKER_ROLE`] for their whole session, made on first use: a
    /// claim, renewal or finish is then one statement in autocommit, one round trip, where a
    /// transaction switching role took three (BEGIN and the role, the statement, COMMIT).
    workers: Arc<OnceLock<PgPool>>,
}

impl PgStore {
    /// Connects to `url`, migrates the schema, and returns the store. The URL's role must own
    /// (or be allowed to create) the tables; see the crate docs for a least-privilege set-up.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(error::map)?;
        Self::connect_with(options, PgPoolOptions::new().max_connections(16)).await
    }

    /// Like [`PgStore::connect`], with explicit connection and pool options.
    pub async fn connect_with(options: PgConnectOptions, pool: PgPoolOptions) -> Result<Self> {
        let pool = pool.connect_with(options).await.map_err(error::map)?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool without migrating (when migrations run as a separate step).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool, enqueued: Arc::default(), workers: Arc::default() }
    }

    /// Applies pending migrations (needs the owning role).
    pub async fn migrate(&self) -> Result<()> {
        migrate::migrate(&self.pool).await
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(error::map)
    }

    /// Begins a transaction as [`APP_ROLE`], confined to `tenant` (none: no tenant rows visible).
    /// Both settings are transaction-local, so a pooled connection carries nothing to its next user.
    async fn begin(&self, tenant: Option<TenantId>) -> Result<Transaction<'static, Postgres>> {
        self.begin_planned(tenant, Plans::Custom).await
    }

    /// [`PgStore::begin`], choosing how the transaction's statements are planned.
    async fn begin_planned(
        &self,
        tenant: Option<TenantId>,
        plans: Plans,
    ) -> Result<Transaction<'static, Postgres>> {
        // One round trip for BEGIN and the settings. The values are inlined, which is safe: the
        // role and plan mode are constants and the tenant a UUID printed by `uuid` (hex, dashes).
        let tenant = tenant.map(|t| t.uuid().hyphenated().to_string()).unwrap_or_default();
        let plans = match plans {
            Plans::Custom => "",
            Plans::Generic => ", set_config('plan_cache_mode', 'force_generic_plan', true)",
        };
        let begin = format!(
            "BEGIN; SELECT set_config('role', '{APP_ROLE}', true), set_config('app.tenant_id', '{tenant}', true){plans}"
        );
        self.begin_with(begin).await
    }

    /// Begins a transaction on a worker connection (see [`PgStore::workers`]).
    async fn begin_worker(&self) -> Result<Transaction<'static, Postgres>> {
        let workers = self.workers().clone();
        FinishedIfDropped::new(async move { workers.begin().await }).await.map_err(error::map)
    }

    /// The worker connections (see the field). Never shared with the application's pool, so
    /// the session role reaches no request; the pool is as large as the application's.
    fn workers(&self) -> &PgPool {
        self.workers.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(self.pool.options().get_max_connections())
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query(AssertSqlSafe(format!("SET ROLE {WORKER_ROLE}")))
                            .execute(conn)
                            .await
                            .map(drop)
                    })
                })
                .connect_lazy_with((*self.pool.connect_options()).clone())
        })
    }

    async fn begin_with(&self, begin: String) -> Result<Transaction<'static, Postgres>> {
        // Finished even if the caller gives up meanwhile: sqlx 0.9.0 forgets a BEGIN whose
        // future is dropped before the answer (transact-rs/sqlx#4393), so the pooled connection
        // would stay in that transaction for its next users — each failing with 25P02 once one
        // statement failed. Finished, a transaction nobody takes is dropped, so rolled back.
        let pool = self.pool.clone();
        FinishedIfDropped::new(async move { pool.begin_with(AssertSqlSafe(begin)).await })
            .await
            .map_err(error::map)
    }
}

/// A future that, if dropped before it is done, is handed to a task of its own to finish (its
/// output then dropped). Costs nothing when it runs to its end — unlike spawning every time,
/// which on this VM added a cross-thread wake-up (~70 µs) to each transaction.
struct FinishedIfDropped<F: Future<Output: Send + 'static> + Send + 'static> {
    future: Option<Pin<Box<F>>>,
}

impl<F: Future<Output: Send + 'static> + Send + 'static> FinishedIfDropped<F> {
    fn new(future: F) -> Self {
        Self { future: Some(Box::pin(future)) }
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Future for FinishedIfDropped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(future) = self.future.as_mut() else { panic!("polled after completion") };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Drop for FinishedIfDropped<F> {
    fn drop(&mut self) {
        if let (Some(future), Ok(runtime)) = (self.future.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(future);
        }
    }
}

/// How Postgres plans the prepared statements of a transaction.
#[derive(Debug, Clone, Copy)]
enum Plans {
    /// Postgres's default: custom plans for the values at hand until a generic one looks as good.
    Custom,
    /// One generic plan per statement and connection. For statements whose plan choice is made
    /// inside the SQL (text search gates its branches on what the term index holds): their
    /// custom plans look costlier to Postgres than the generic one, so it would re-plan every
    /// call — about 0.4 ms, four times the search itself.
    Generic,
}

impl Plans {
    /// A list's: generic for text search (see [`Plans::Generic`]), custom otherwise.
    fn for_list(query: &ListQuery) -> Self {
        if query.search.is_empty() { Plans::Custom } else { Plans::Generic }
    }
}

/// Runs a read in a scoped transaction, then drops it uncommitted: sqlx queues its `ROLLBACK`
/// (for a read, the same as a commit, settings included) and sends it with the check that
/// returns the connection to the pool, off the caller's path — a read is two round trips, not
/// three. The next user of the connection waits for it first.
macro_rules! scoped {
    ($store:expr, $tenant:expr, |$conn:ident| $body:expr) => {
        scoped!($store, $tenant, Plans::Custom, |$conn| $body)
    };
    ($store:expr, $tenant:expr, $plans:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin_planned($tenant, $plans).await?;
        let result = {
            let $conn = &mut *tx;
            $body.await?
        };
        drop(tx);
        Ok(result)
    }};
}

/// Runs a write in a scoped transaction and commits it.
macro_rules! committed {
    ($store:expr, $tenant:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin($tenant).await?;
        let result = {
            let $conn = &mut *tx;
            $body.await?
        };
        tx.commit().await.map_err(error::map)?;
        Ok(result)
    }};
}

#[async_trait]
impl RecordStore for PgStore {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        let Some(read) = PointRead::record(kind) else { return Ok(None) };
        let row = read.fetch(&self.pool, scope.tenant_id(), id).await?;
        row.map(|r| rows::entity(kind, &r).map_err(error::map)).transpose()
    }

    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        let tenant = scope.tenant_id();
        let plans = Plans::for_list(query);
        scoped!(self, Some(tenant), plans, |c| read::list(c, tenant, query))
    }

    async fn list_into(&self, scope: &Scope, query: &ListQuery, decode: PageDecoder) -> Result<DecodedPage> {
        let tenant = scope.tenant_id();
        let Some(def) = query.kind.def() else { return Ok(decode().finish()) };
        let plans = Plans::for_list(query);
        let rows: Vec<sqlx::postgres::PgRow> =
            scoped!(self, Some(tenant), plans, |c| read::list_rows(c, tenant, query))?;
        // Each row decoded in place: no `Vec<Value>` per row.
        let mut sink = decode();
        for row in &rows {
            let meta = crate::rows::meta(row).map_err(error::map)?;
            sink.row(def, meta, &mut crate::rows::in_place(def, row))?;
        }
        Ok(sink.finish())
    }

    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        let tenant = scope.tenant_id();
        committed!(self, Some(tenant), |c| write::apply(c, tenant, changes))
    }

    async fn ping(&self) -> Result<()> {
        PgStore::ping(self).await
    }
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        scoped!(self, None, |c| read::tenant_by(c, "id", Val::Uuid(Some(id.uuid()))))
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        scoped!(self, None, |c| read::tenant_by(c, "slug", Val::Text(Some(slug.to_owned()))))
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        scoped!(self, None, |c| read::user_by(c, "id", Val::Uuid(Some(id.uuid()))))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        scoped!(self, None, |c| read::user_by(c, "email", Val::Text(Some(email.to_owned()))))
    }

    async fn membership(&self, scope: &Scope, user_id: UserId) -> Result<Option<Membership>> {
        let row = PointRead::membership().fetch(&self.pool, scope.tenant_id(), user_id.uuid()).await?;
        row.map(|r| rows::membership(&r).map_err(error::map)).transpose()
    }

    async fn members(&self, scope: &Scope) -> Result<Vec<Member>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::members(c, tenant))
    }

    async fn credential(&self, user_id: UserId) -> Result<Option<Credential>> {
        scoped!(self, None, |c| read::credential(c, user_id))
    }

    async fn refresh_token(&self, scope: &Scope, id: RefreshTokenId) -> Result<Option<RefreshToken>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::refresh_token(c, tenant, id.uuid()))
    }

    async fn api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<Option<ApiKey>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::api_key(c, tenant, id.uuid()))
    }

    async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::api_keys(c, tenant))
    }

    async fn login_failures(&self, scope: &Scope, key: &str) -> Result<Option<LoginFailures>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::login_failures(c, tenant, key))
    }
}

#[async_trait]
impl HistoryStore for PgStore {
    async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::stage_history(c, tenant, deal_id.uuid()))
    }

    async fn audit_log(
        &self,
        scope: &Scope,
        query: &AuditQuery,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::audit_log(c, tenant, query, before, limit))
    }

    async fn outbox(&self, scope: &Scope, after: Option<Uuid>, limit: u32) -> Result<Vec<DomainEvent>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::outbox(c, tenant, after, limit))
    }
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn idempotency_record(
        &self,
        scope: &Scope,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| read::idempotency_record(c, tenant, principal, key))
    }
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue(&self, scope: &Scope, job: &Job) -> Result<Enqueued> {
        let tenant = scope.tenant_id();
        if job.tenant_id != tenant {
            return Err(crm_core::Error::internal("a job enqueued outside its tenant scope"));
        }
        committed!(self, Some(tenant), |c| jobs::enqueue(c, job))
    }

    async fn claim(
        &self,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease: std::time::Duration,
        token: Uuid,
    ) -> Result<Option<Job>> {
        if job_types.is_empty() {
            return Ok(None);
        }
        let lease = chrono::Duration::from_std(lease)
            .map_err(|_| crm_core::Error::invalid("lease", "is too long"))?;
        let types: Vec<String> = job_types.iter().map(|t| (*t).to_owned()).collect();
        let mut conn = self.workers().acquire().await.map_err(error::map)?;
        jobs::claim(&mut conn, &types, now, now + lease, token).await
    }

    async fn heartbeat(&self, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.workers().acquire().await.map_err(error::map)?;
        jobs::heartbeat(&mut conn, token, until).await
    }

    async fn finish(&self, token: Uuid, job: &Job) -> Result<bool> {
        let mut conn = self.workers().acquire().await.map_err(error::map)?;
        jobs::finish(&mut conn, token, job).await
    }

    async fn job(&self, scope: &Scope, id: JobId) -> Result<Option<Job>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| jobs::job(c, tenant, id))
    }

    async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| jobs::jobs(c, tenant, state, before, limit))
    }

    async fn update_job(&self, scope: &Scope, job: &Job, expected: JobState) -> Result<bool> {
        let tenant = scope.tenant_id();
        committed!(self, Some(tenant), |c| jobs::update(c, tenant, job, expected))
    }

    async fn put_schedule(&self, scope: &Scope, schedule: &Schedule) -> Result<()> {
        let tenant = scope.tenant_id();
        if schedule.tenant_id != tenant {
            return Err(crm_core::Error::internal("a schedule put outside its tenant scope"));
        }
        committed!(self, Some(tenant), |c| schedules::put(c, schedule))
    }

    async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>> {
        let tenant = scope.tenant_id();
        committed!(self, Some(tenant), |c| schedules::list(c, tenant))
    }

    async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<bool> {
        let tenant = scope.tenant_id();
        committed!(self, Some(tenant), |c| schedules::delete(c, tenant, name))
    }

    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        let mut conn = self.workers().acquire().await.map_err(error::map)?;
        schedules::due(&mut conn, now, limit).await
    }

    async fn fire_schedule(&self, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool> {
        if job.tenant_id != due.tenant_id {
            return Err(crm_core::Error::internal("an occurrence enqueued outside its schedule's tenant"));
        }
        let mut tx = self.begin_worker().await?;
        let fired = schedules::fire(&mut tx, due, next, job).await?;
        tx.commit().await.map_err(error::map)?;
        Ok(fired)
    }

    /// Bumped on each `crm_jobs` notification, by a task that holds one pooled connection
    /// `LISTEN`ing for as long as a receiver lives. A notification sent while that connection
    /// is being re-established is lost; the runners' poll finds its job.
    fn enqueue_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.enqueued.get_or_init(|| jobs::listen(self.pool.clone())).clone())
    }
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge(&self, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
        let mut conn = self.workers().acquire().await.map_err(error::map)?;
        retention::purge(&mut conn, cutoffs, limit).await
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn delivery(&self, scope: &Scope, id: DeliveryId) -> Result<Option<Delivery>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| deliveries::get(c, tenant, id))
    }

    async fn earlier_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| deliveries::neighbour(c, tenant, delivery, false))
    }

    async fn later_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| deliveries::neighbour(c, tenant, delivery, true))
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
        committed!(self, Some(tenant), |c| deliveries::update_delivery(c, tenant, delivery, attempt))
    }

    async fn deliveries(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| deliveries::list(c, tenant, webhook_id, before, limit))
    }

    async fn attempts(&self, scope: &Scope, delivery_id: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        let tenant = scope.tenant_id();
        scoped!(self, Some(tenant), |c| deliveries::attempts(c, tenant, delivery_id))
    }
}
