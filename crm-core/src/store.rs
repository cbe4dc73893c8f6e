//! The storage boundary: what a store must do, and the values that cross it.
//!
//! The traits are deliberately small, split by subject, and free of business rules. Core decides *what* to write and
//! hands the store one [`ChangeSet`] per use case; the store applies it atomically (invariant 5)
//! and checks versions (invariant 6). Every tenant-owned read and write takes a [`Scope`], and a
//! store must confine it to `scope.tenant_id()` (invariant 1).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditEntry, AuditQuery};
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crate::error::Result;
use crate::event::DomainEvent;
use crate::job::{Job, JobId, JobState};
use crate::kind::{ColumnSource, FieldDef, KindDef, RecordRow, RowMeta, Value};
use crate::model::{
    AccountId, ActivityKind, ActivityTarget, ApiKey, ApiKeyId, ContactId, Credential, DealId,
    IdempotencyRecord, Kind, LeadStatus, LoginFailures, Member, Membership, PipelineId, RefreshToken,
    RefreshTokenId, StageChange, Tenant, User,
};
use crate::schedule::Schedule;
use crate::scope::{Scope, TenantId, UserId};

/// Any row a store writes. Tenant-owned variants carry their tenant id, which the store must
/// check equals the scope's.
#[derive(Debug, Clone, PartialEq)]
///
/// Not `#[non_exhaustive]`, like [`Write`] and [`Guard`]: every store matches every variant, so a
/// new one is a compile error in each store (a host's too) instead of a write a store silently
/// refuses at run time.
#[allow(missing_docs)]
pub enum Entity {
    Tenant(Tenant),
    User(User),
    Membership(Membership),
    /// A record of any kind, as a row of its kind's description: stores write and read every
    /// kind through this one variant.
    Record(RecordRow),
    StageChange(StageChange),
    Credential(Credential),
    RefreshToken(RefreshToken),
    ApiKey(ApiKey),
}

impl Entity {
    /// The tenant that owns the row; `None` for users, which are global.
    pub fn tenant_id(&self) -> Option<TenantId> {
        Some(match self {
            Entity::Tenant(t) => t.id,
            Entity::User(_) | Entity::Credential(_) => return None,
            Entity::Membership(m) => m.tenant_id,
            Entity::Record(r) => r.meta.tenant_id,
            Entity::StageChange(r) => r.tenant_id,
            Entity::RefreshToken(r) => r.tenant_id,
            Entity::ApiKey(r) => r.tenant_id,
        })
    }
}

impl Entity {
    /// A record's kind and id; `None` for identity and history rows.
    pub fn record_key(&self) -> Option<(Kind, Uuid)> {
        match self {
            Entity::Record(r) => Some((r.def.kind, r.meta.id)),
            Entity::Tenant(_)
            | Entity::User(_)
            | Entity::Membership(_)
            | Entity::StageChange(_)
            | Entity::Credential(_)
            | Entity::RefreshToken(_)
            | Entity::ApiKey(_) => None,
        }
    }
}

/// One row change in a [`ChangeSet`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert a new row. Unique violations (slug, e-mail, membership) are [`crate::Error::Conflict`].
    Insert(Entity),
    /// Replace a row's fields if its stored version is still `expected_version`; else
    /// [`crate::Error::Conflict`]. The entity carries the new version (`expected_version + 1`).
    Update {
        /// The row as it should be stored.
        entity: Entity,
        /// The version the caller read.
        expected_version: i64,
    },
    /// Remove a user's membership of the scope's tenant if its version is still as read.
    RemoveMembership {
        /// The member.
        user_id: UserId,
        /// The version the caller read.
        expected_version: i64,
    },
    /// Revoke every unrevoked refresh token of a family (logout, reuse detected).
    RevokeTokenFamily {
        /// The family.
        family_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Count one use of an API key: `use_count + 1`, `last_used_at = at` (atomic, no version).
    TouchApiKey {
        /// The key.
        id: ApiKeyId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Count one login attempt for `key`, atomically: `count + 1`, or 1 when the row is new or
    /// its `last_at` is before `forget_before`; `last_at = at`.
    RecordLoginFailure {
        /// `account:<email>` or `client:<address>`.
        key: String,
        /// When.
        at: DateTime<Utc>,
        /// Failures before this instant no longer count.
        forget_before: DateTime<Utc>,
    },
    /// Revoke an API key (only `revoked_at`, so concurrent usage counts are kept).
    RevokeApiKey {
        /// The key.
        id: ApiKeyId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Forget the failed logins of `key` (after a success).
    ClearLoginFailures {
        /// The key.
        key: String,
    },
    /// Take back one counted attempt of `key` (`count - 1`, not below 0): the attempt turned
    /// out to be a success, so it must not count against a shared client address.
    ForgiveLoginAttempt {
        /// The key.
        key: String,
    },
    /// Claim an idempotency key: insert `record` when `replacing` is `None` (an existing key is
    /// [`crate::Error::Conflict`]), else overwrite the stored record only while its token is
    /// still `replacing` (else `Conflict`). Also forgets the tenant's records that expired
    /// before `record.created_at`, so the table only holds live keys.
    ClaimIdempotencyKey {
        /// The new claim, without a response.
        record: IdempotencyRecord,
        /// The token of the expired or abandoned record being taken over.
        replacing: Option<Uuid>,
    },
    /// Record the response of a claimed key, in the same transaction as the request's writes.
    /// If the claim no longer holds `token` (taken over, released) or already has a response,
    /// the whole change set fails with [`crate::Error::Conflict`].
    CompleteIdempotencyKey {
        /// `IdempotencyRecord::principal`.
        principal: String,
        /// The key.
        key: String,
        /// The claim's token.
        token: Uuid,
        /// The recorded response.
        response: String,
    },
    /// Forget a claim that did not complete (its request failed), if it still holds `token`
    /// and has no response; otherwise nothing.
    ReleaseIdempotencyKey {
        /// `IdempotencyRecord::principal`.
        principal: String,
        /// The key.
        key: String,
        /// The claim's token.
        token: Uuid,
    },
    /// Revoke a member's access on removal: their refresh tokens in the tenant and the API keys
    /// they created, so nothing they held works again even if they are re-added.
    RevokeMemberAccess {
        /// The removed member.
        user_id: UserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Store a webhook delivery (of an event of this change set: the fan-out).
    Deliver(Delivery),
    /// Enqueue a job in the same transaction, as [`JobStore::enqueue`] does (a unique key held
    /// by an unfinished job makes it a no-op): work that must happen because this change set
    /// committed, and only then.
    Enqueue(Job),
}

/// A rule that spans rows, which the store checks inside the commit's transaction (where no
/// concurrent commit can slip between check and write); when it fails the whole change set is
/// rolled back with [`crate::Error::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// After the writes, the scope's tenant still has at least one member with role `owner`.
    /// Stores must serialize concurrent commits carrying this guard (e.g. by locking the
    /// tenant's owner memberships before writing), so two owners demoting each other cannot both
    /// succeed.
    TenantKeepsAnOwner,
}

impl Guard {
    /// The conflict a store answers when the guard fails, the same from every store and core.
    pub fn broken(self) -> crate::Error {
        match self {
            Guard::TenantKeepsAnOwner => crate::Error::guard("a tenant must keep at least one owner"),
        }
    }
}

/// Everything one use case writes: rows, their audit entries and their outbox events.
/// A store applies it in one transaction — all of it or none of it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChangeSet {
    /// Cross-row rules to check in the transaction.
    pub guards: Vec<Guard>,
    /// Row changes, applied in order.
    pub writes: Vec<Write>,
    /// Audit entries, one per changed record.
    pub audit: Vec<AuditEntry>,
    /// Outbox events.
    pub events: Vec<DomainEvent>,
}

/// Filters for listing one kind of record: the typed convenience callers in Rust build. Core and
/// stores read it only through [`ListQuery::conditions`], which checks each filter against the
/// kind's description and refuses one the kind does not declare.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Filter {
    /// Leads: this status.
    pub status: Option<LeadStatus>,
    /// Records owned by this user.
    pub owner_id: Option<UserId>,
    /// Deals: in this pipeline.
    pub pipeline_id: Option<PipelineId>,
    /// Deals: at this stage key.
    pub stage: Option<String>,
    /// Contacts and deals: at this account.
    pub account_id: Option<AccountId>,
    /// Deals: with this contact.
    pub contact_id: Option<ContactId>,
    /// Activities: on this record.
    pub target: Option<ActivityTarget>,
    /// Activities: of this kind.
    pub activity_kind: Option<ActivityKind>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Custom-field equality: `custom_fields[name] == value`.
    pub custom_fields: Vec<(String, serde_json::Value)>,
    /// Equality on any field the kind's description lets lists filter on, by name
    /// (`("priority", Value::Text("high".into()))`): the typed fields above for every kind.
    pub equals: Vec<(String, Value)>,
    /// Instant fields the description lets lists filter on, within a range (`due_at`).
    pub ranges: Vec<TimeRange>,
    /// Filters the kind declares by name ([`crate::kind::NamedFilter`], `overdue`), which core
    /// turns into conditions as of its clock; a store given one refuses the query.
    pub named: Vec<String>,
    /// Records one of whose [`owns`](crate::kind::FieldDef::owns) fields names this member:
    /// how core applies the `Own` record scope to a list.
    pub owned_by: Option<UserId>,
}

/// An instant field within a range, either end open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    /// The field.
    pub field: String,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Strictly before this instant.
    pub before: Option<DateTime<Utc>>,
}

/// A list request as a store receives it, validated and authorized when core built it. A store
/// renders it from [`ListQuery::conditions`] with every value bound, and answers a query that
/// [`ListQuery::can_match`] says nothing can match with no rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Lead, Contact, Account, Deal or Activity.
    pub kind: Kind,
    /// Exact filters.
    pub filter: Filter,
    /// Text search terms from [`crate::search::query_terms`]: each must prefix-match a word
    /// ([`crate::search::words`]) of the record's names, e-mail or company. Lower-case
    /// alphanumeric only, so stores may quote them into a query string.
    pub search: Vec<String>,
    /// Rows to return at most.
    pub limit: u32,
    /// Keyset: the id of the last row seen. Without a [`Sort`] the order is id descending
    /// (newest first) and the page holds ids strictly less than this one; with one, rows after
    /// `(sort.after_value, after)` in the sort's order.
    pub after: Option<Uuid>,
    /// An order other than newest first.
    pub sort: Option<Sort>,
}

/// A list order by one column, then by id in the same direction; rows without a value come
/// last in either direction (a task without a due date after every dated one). Keyset pages
/// continue strictly after `(after_value, ListQuery::after)`, so a page never repeats or skips a
/// row when values tie.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// What to order by.
    pub key: SortKey,
    /// Largest first.
    pub descending: bool,
    /// With [`ListQuery::after`]: the sort value of the last row seen ([`Value::Null`] when it
    /// had none); ignored on a first page.
    pub after_value: Value,
}

/// A column lists may be ordered by: `created_at`, which every kind has, or a field its
/// description marks [`FieldDef::sort`](crate::kind::FieldDef::sort).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// When the record was created.
    CreatedAt,
    /// A described field (an instant: [`crate::kind::FieldType::Time`]).
    Field(&'static FieldDef),
}

impl SortKey {
    /// The column, from the meta columns or the description (never from input).
    pub fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::Field(field) => field.name,
        }
    }

    /// Whether rows may lack a value (and so sort last).
    pub fn nullable(self) -> bool {
        match self {
            SortKey::CreatedAt => false,
            SortKey::Field(field) => field.nullable,
        }
    }
}

impl ListQuery {
    /// The first page of every live record of `kind`, as many as a page holds by default; set
    /// the public fields to narrow it. For stores' own tests: core builds the queries it sends.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            filter: Filter::default(),
            search: Vec::new(),
            limit: crate::service::DEFAULT_LIMIT,
            after: None,
            sort: None,
        }
    }

    /// Whether any stored record could match: `false` when a search term, stage key or
    /// custom-field filter has a form no stored value has (a term [`crate::search::query_terms`]
    /// would not make, a name that is not a [`crate::validate::is_key`], a NUL, which
    /// PostgreSQL cannot hold). Core never builds such a query, but a host may call a store
    /// directly: a store answers it with no rows rather than sending it to its database.
    pub fn can_match(&self) -> bool {
        let f = &self.filter;
        self.search.iter().all(|t| crate::search::is_term(t))
            && f.stage.as_deref().is_none_or(crate::validate::is_key)
            && f.custom_fields.iter().all(|(name, value)| crate::validate::is_key(name) && !holds_nul(value))
    }
}

/// Whether a JSON value holds a NUL character in a string or an object key.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// A position in a time-ordered stream (timeline, audit log): strictly before `(at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeCursor {
    /// The time of the last item seen.
    pub at: DateTime<Utc>,
    /// Its id, breaking ties.
    pub id: Uuid,
}

/// Persistence for everything the library keeps, as seven traits split by subject: the generic
/// records ([`RecordStore`]), identity ([`IdentityStore`]), history ([`HistoryStore`]),
/// idempotency ([`IdempotencyStore`]), jobs ([`JobStore`]), retention ([`RetentionStore`]) and
/// webhook deliveries ([`WebhookStore`]). A type that implements the seven is a `Store` (a
/// blanket impl); `crm-storage-sqlite`, `crm-storage-postgres` or a host's own
/// store prove themselves with `crm_core::testkit`'s conformance suite. A new subsystem
/// (webhooks next) adds a trait here instead of growing one, and a new record kind adds no
/// method at all.
///
/// Rules every method follows:
/// - reads never return soft-deleted rows nor rows of a tenant other than `scope.tenant_id()`;
/// - results are in the documented order, so pagination is stable;
/// - errors are [`crate::Error::Conflict`] with the [`crate::Conflict`] that occurred (by
///   constraint, never by message text), [`crate::Error::Unavailable`] when the database cannot
///   be reached, else [`crate::Error::Internal`] (never with SQL text in the message).
pub trait Store:
    RecordStore + IdentityStore + HistoryStore + IdempotencyStore + JobStore + RetentionStore + WebhookStore
{
}

impl<T> Store for T where
    T: RecordStore
        + IdentityStore
        + HistoryStore
        + IdempotencyStore
        + JobStore
        + RetentionStore
        + WebhookStore
{
}

/// Records of every kind, through one generic path: a point read, a filtered list, and the
/// atomic commit of a change set. Its methods do not grow with the number of kinds.
#[async_trait]
pub trait RecordStore: Send + Sync + Debug + 'static {
    /// One live record of any described kind.
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>>;
    /// Live records matching the query, id descending, at most `query.limit`.
    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>>;
    /// [`RecordStore::list`], with each row handed to a [`PageSink`] that `decode` makes, which
    /// builds the caller's records. The default hands over the rows `list` returned. A store
    /// may instead feed the sink each driver row in place, where it was read (SQLite does, on
    /// its reader thread): no `Vec<Value>` per row, and no other core reading the fresh rows —
    /// the two costs that made a 50-row page slower than hand-written decoding (BENCHMARKS.md,
    /// record kinds step 2).
    async fn list_into(&self, scope: &Scope, query: &ListQuery, decode: PageDecoder) -> Result<DecodedPage> {
        let mut sink = decode();
        for entity in self.list(scope, query).await? {
            let Entity::Record(row) = entity else {
                return Err(crate::Error::internal("a list returned a row that is not a record"));
            };
            let mut values = crate::kind::RowValues::new(row.values, row.custom_fields);
            sink.row(row.def, row.meta, &mut values)?;
        }
        Ok(sink.finish())
    }
    /// Applies every write, audit entry and event in one transaction, or none of them.
    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()>;
    /// Checks that the store answers (readiness probes).
    async fn ping(&self) -> Result<()>;
}

/// Builds the caller's records from rows as a store reads them, one at a time. Type-erased so
/// that [`RecordStore`] stays object-safe: core makes one per record type and downcasts what
/// [`PageSink::finish`] returns.
pub trait PageSink: Send {
    /// One row of `def`'s table: its meta, then its columns in table order from `values`.
    fn row(&mut self, def: &'static KindDef, meta: RowMeta, values: &mut dyn ColumnSource) -> Result<()>;
    /// The page built so far.
    fn finish(self: Box<Self>) -> DecodedPage;
}

/// Makes the [`PageSink`] of one list call.
pub type PageDecoder = fn() -> Box<dyn PageSink>;

/// A page of records of the type the [`PageSink`] built (core's `Vec<R>`).
pub type DecodedPage = Box<dyn std::any::Any + Send>;

/// Tenants, users, memberships, credentials, tokens, API keys and login throttling.
#[async_trait]
pub trait IdentityStore: Send + Sync + Debug + 'static {
    /// A tenant by id. Unscoped: tenants are resolved before any scope exists.
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    /// A tenant by slug. Unscoped, like [`IdentityStore::tenant`].
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    /// A user by id. Users are global, not tenant data.
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// A user by (lower-case) e-mail.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// A user's password hash. Global, like users.
    async fn credential(&self, user_id: UserId) -> Result<Option<Credential>>;
    /// The user's membership of the scope's tenant.
    async fn membership(&self, scope: &Scope, user_id: UserId) -> Result<Option<Membership>>;
    /// All members of the scope's tenant, oldest first.
    async fn members(&self, scope: &Scope) -> Result<Vec<Member>>;
    /// A refresh token of the scope's tenant (revoked and used ones included).
    async fn refresh_token(&self, scope: &Scope, id: RefreshTokenId) -> Result<Option<RefreshToken>>;
    /// An API key of the scope's tenant (revoked ones included).
    async fn api_key(&self, scope: &Scope, id: ApiKeyId) -> Result<Option<ApiKey>>;
    /// The tenant's API keys, oldest first (revoked ones included).
    async fn api_keys(&self, scope: &Scope) -> Result<Vec<ApiKey>>;
    /// The failed-login count of `key` in the scope's tenant.
    async fn login_failures(&self, scope: &Scope, key: &str) -> Result<Option<LoginFailures>>;
}

/// What happened, in time order: the audit log, the outbox and a deal's stage history (a
/// record's activities are records, read through [`RecordStore::list`] in time order).
#[async_trait]
pub trait HistoryStore: Send + Sync + Debug + 'static {
    /// Audit entries matching the query, by `(at, id)` descending, strictly before `before`.
    async fn audit_log(
        &self,
        scope: &Scope,
        query: &AuditQuery,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
    /// Outbox events of the scope's tenant in id order, strictly after `after`.
    async fn outbox(&self, scope: &Scope, after: Option<Uuid>, limit: u32) -> Result<Vec<DomainEvent>>;
    /// A deal's stage history, oldest first.
    async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>>;
}

/// Background jobs ([`crate::job`]; the design is in `docs/jobs.md`): enqueued in a tenant,
/// claimed by workers across every tenant, fairly, under a lease whose token alone may finish
/// the attempt.
#[async_trait]
pub trait JobStore: Send + Sync + Debug + 'static {
    /// Stores `job` (pending, of the scope's tenant) unless a pending or running job of the
    /// tenant holds its `unique_key`, enforced by a constraint: then nothing is written and
    /// that job's id comes back as [`Enqueued::Existing`].
    async fn enqueue(&self, scope: &Scope, job: &Job) -> Result<Enqueued>;

    /// Claims one job of `job_types` that [`Job::is_claimable`] at `now`, across every tenant:
    /// of the tenants with such a job, the one whose last claim is oldest (never claimed
    /// first), then its job due first (`run_at`, then id). The job becomes running under
    /// `token` until `now + lease`, its attempts counted up. `None` when nothing is due.
    async fn claim(
        &self,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease: std::time::Duration,
        token: Uuid,
    ) -> Result<Option<Job>>;

    /// Extends the lease of the job running under `token` to `until`; `false` when it no
    /// longer runs under that token (its lease ran out and another worker took it).
    async fn heartbeat(&self, token: Uuid, until: DateTime<Utc>) -> Result<bool>;

    /// Writes the outcome of the attempt running under `token` (`job` after
    /// [`Job::succeed`] or [`Job::fail`]); `false`, writing nothing, when the job no longer
    /// runs under that token.
    async fn finish(&self, token: Uuid, job: &Job) -> Result<bool>;

    /// One job of the scope's tenant.
    async fn job(&self, scope: &Scope, id: JobId) -> Result<Option<Job>>;

    /// The scope's tenant's jobs, newest first (id descending), in `state` if given, with ids
    /// below `before`, at most `limit`.
    async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>>;

    /// Writes `job` (after [`Job::cancel`] or [`Job::retry`]) if it is still in `expected`;
    /// `false`, writing nothing, when it moved meanwhile (a worker claimed it).
    async fn update_job(&self, scope: &Scope, job: &Job, expected: JobState) -> Result<bool>;

    /// Creates or replaces the scope's tenant's schedule of `schedule.name`, keeping the
    /// replaced one's `created_at`.
    async fn put_schedule(&self, scope: &Scope, schedule: &Schedule) -> Result<()>;

    /// The scope's tenant's schedules, by name.
    async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>>;

    /// Deletes the scope's tenant's schedule `name`; `false` when there was none.
    async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<bool>;

    /// Every tenant's schedules due at `now` (`next_run_at <= now`), earliest first, at most
    /// `limit`. Unscoped, like [`JobStore::claim`]: runners fire every tenant's schedules.
    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>>;

    /// Fires `due` (from [`JobStore::due_schedules`]) in one transaction: moves its
    /// `next_run_at` to `next` and its `updated_at` to `job.created_at` if both still are
    /// `due`'s, then enqueues `job`, the occurrence, as [`JobStore::enqueue`] does. `false`,
    /// writing nothing, when another runner fired it first or it was replaced or deleted.
    async fn fire_schedule(&self, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool>;

    /// A signal that changes when another process may have enqueued a job, so that idle
    /// runners wake before their next poll (Postgres: `LISTEN` on the enqueue's `NOTIFY`).
    /// `None`, the default, suits a store one process uses: its own enqueues wake its runners
    /// directly, and runners poll for the rest.
    fn enqueue_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// What [`JobStore::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The job was stored.
    New(JobId),
    /// A job holding the unique key was pending or running: this one, unchanged.
    Existing(JobId),
}

/// The records behind `Idempotency-Key`: which response a repeated request replays.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + Debug + 'static {
    /// The idempotency record of `principal`'s `key` in the scope's tenant, expired or not.
    async fn idempotency_record(
        &self,
        scope: &Scope,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>>;
}

/// Deletes what the library no longer needs: rows whose use has ended, across every tenant, in
/// bounded batches so that a purge never holds a long transaction. Unscoped like
/// [`JobStore::claim`]: the sweep is the runners', not a tenant's, and it reads nothing out.
#[async_trait]
pub trait RetentionStore: Send + Sync + Debug + 'static {
    /// Deletes at most `limit` rows of each sort that [`PurgeCutoffs`] marks as done with, and
    /// says how many went: jobs that succeeded or were cancelled, last changed before
    /// `cutoffs.finished_jobs_before` (dead jobs stay, for a manual retry); refresh tokens
    /// expired before `cutoffs.expired_before`; idempotency keys expired and unlocked before it.
    async fn purge(&self, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged>;
}

/// Where [`RetentionStore::purge`] draws its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCutoffs {
    /// Succeeded and cancelled jobs last changed before this go.
    pub finished_jobs_before: DateTime<Utc>,
    /// Refresh tokens and idempotency keys that expired before this go: now, as a rule, since
    /// an expired one is refused whether it is kept or not.
    pub expired_before: DateTime<Utc>,
}

/// How many rows of each sort one [`RetentionStore::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished jobs.
    pub jobs: u64,
    /// Expired refresh tokens.
    pub refresh_tokens: u64,
    /// Expired idempotency keys.
    pub idempotency_keys: u64,
}

impl Purged {
    /// Whether any sort reached `limit`, so that another batch may find more.
    pub fn reached(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.jobs >= limit || self.refresh_tokens >= limit || self.idempotency_keys >= limit
    }
}

impl std::ops::AddAssign for Purged {
    /// Counts another batch in.
    fn add_assign(&mut self, batch: Purged) {
        self.jobs += batch.jobs;
        self.refresh_tokens += batch.refresh_tokens;
        self.idempotency_keys += batch.idempotency_keys;
    }
}

/// Webhook deliveries and their attempts ([`crate::delivery`]). Deliveries are written by a
/// change set ([`Write::Deliver`]), in the transaction of the events they carry; this trait
/// reads them and records attempts.
#[async_trait]
pub trait WebhookStore: Send + Sync + Debug + 'static {
    /// One delivery of the scope's tenant.
    async fn delivery(&self, scope: &Scope, id: DeliveryId) -> Result<Option<Delivery>>;

    /// The first pending delivery of `delivery`'s endpoint and lane that comes before it (id
    /// order), if any: while there is one, `delivery` waits.
    async fn earlier_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>>;

    /// The first pending delivery of `delivery`'s endpoint and lane that comes after it: the
    /// one to wake when `delivery` is done.
    async fn later_pending(&self, scope: &Scope, delivery: &Delivery) -> Result<Option<Delivery>>;

    /// Writes `delivery`'s state, attempts, next attempt and error, and appends `attempt` (if
    /// one was made: a delivery given up without one has none) to its log, in one transaction.
    async fn update_delivery(
        &self,
        scope: &Scope,
        delivery: &Delivery,
        attempt: Option<&DeliveryAttempt>,
    ) -> Result<()>;

    /// An endpoint's deliveries, newest first, with ids below `before`, at most `limit`.
    async fn deliveries(
        &self,
        scope: &Scope,
        webhook_id: crate::model::WebhookId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;

    /// A delivery's attempts, first first.
    async fn attempts(&self, scope: &Scope, delivery_id: DeliveryId) -> Result<Vec<DeliveryAttempt>>;
}
