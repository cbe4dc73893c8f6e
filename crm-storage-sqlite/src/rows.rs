//! Entities ⇄ rows. Record kinds share one path driven by their descriptions (`record`,
//! `to_row`); identity and history tables keep their column lists and converters here.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::audit::{AuditAction, AuditEntry, Changes};
use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryState};
use crm_core::job::{Job, JobState};
use crm_core::kind::{Column, ColumnType, KindDef, META_COLUMNS, RECORD_KINDS, RecordRow, RowMeta};
use crm_core::model::{
    ApiKey, Credential, CustomFields, IdempotencyRecord, Kind, Membership, RefreshToken, StageChange, Tenant,
    User,
};
use crm_core::schedule::Schedule;
use crm_core::store::Entity;
use crm_core::{Actor, DomainEvent, Id, Role};
use rusqlite::Row;
use rusqlite::types::{Value, ValueRef};
use uuid::Uuid;

/// A table's name and columns, in the order of the values the converters produce.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// Columns that identify a row (the `WHERE` of an update).
    pub key: &'static [&'static str],
    insert: OnceLock<String>,
    update: OnceLock<String>,
    aliased: OnceLock<String>,
}

impl Table {
    /// A table whose statements are built on first use.
    const fn new(name: &'static str, columns: &'static [&'static str], key: &'static [&'static str]) -> Self {
        Self {
            name,
            columns,
            key,
            insert: OnceLock::new(),
            update: OnceLock::new(),
            aliased: OnceLock::new(),
        }
    }

    /// `SELECT <columns> FROM <table>`, for reads that decode with this table's converter.
    pub fn select(&self) -> String {
        format!("SELECT {} FROM {}", self.columns.join(", "), self.name)
    }

    /// The columns as `t.<column>, …`, for queries that alias this table as `t`. Built once:
    /// every listing and search needs it.
    pub fn aliased_columns(&self) -> &str {
        self.aliased.get_or_init(|| {
            let cols: Vec<String> = self.columns.iter().map(|c| format!("t.{c}")).collect();
            cols.join(", ")
        })
    }

    pub fn insert_sql(&self) -> &str {
        self.insert.get_or_init(|| self.build_insert())
    }

    pub fn update_sql(&self) -> &str {
        self.update.get_or_init(|| self.build_update())
    }

    fn build_insert(&self) -> String {
        let marks: Vec<String> = (1..=self.columns.len()).map(|i| format!("?{i}")).collect();
        format!("INSERT INTO {} ({}) VALUES ({})", self.name, self.columns.join(", "), marks.join(", "))
    }

    /// `UPDATE … SET <all but key and created_at> WHERE <key> AND version = ?N`, with parameters
    /// numbered by column position so the insert values bind unchanged, plus the expected version.
    fn build_update(&self) -> String {
        let position = |c: &str| self.columns.iter().position(|x| *x == c).map(|i| i + 1).unwrap_or(0);
        let sets: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(c) && **c != "created_at")
            .map(|c| format!("{c} = ?{}", position(c)))
            .collect();
        let wheres: Vec<String> = self.key.iter().map(|c| format!("{c} = ?{}", position(c))).collect();
        format!(
            "UPDATE {} SET {} WHERE {} AND version = ?{}",
            self.name,
            sets.join(", "),
            wheres.join(" AND "),
            self.columns.len() + 1
        )
    }
}

const RECORD_KEY: &[&str] = &["tenant_id", "id"];

pub(crate) static TENANTS: Table = Table::new("tenants", &["id", "slug", "name", "created_at"], &["id"]);
pub(crate) static USERS: Table = Table::new("users", &["id", "email", "name", "created_at"], &["id"]);
pub(crate) static MEMBERSHIPS: Table = Table::new(
    "memberships",
    &["tenant_id", "user_id", "role", "version", "created_at", "updated_at"],
    &["tenant_id", "user_id"],
);
pub(crate) static STAGE_CHANGES: Table = Table::new(
    "deal_stage_changes",
    &["tenant_id", "id", "deal_id", "pipeline_id", "from_stage", "to_stage", "actor", "at"],
    RECORD_KEY,
);
pub(crate) static AUDIT: Table = Table::new(
    "audit_log",
    &["tenant_id", "id", "actor", "action", "resource", "resource_id", "changes", "request_id", "at"],
    RECORD_KEY,
);
pub(crate) static OUTBOX: Table = Table::new(
    "outbox",
    &["tenant_id", "id", "name", "resource", "resource_id", "actor", "payload", "at"],
    RECORD_KEY,
);

pub(crate) static CREDENTIALS: Table =
    Table::new("credentials", &["user_id", "password_hash", "version", "updated_at"], &["user_id"]);
pub(crate) static REFRESH_TOKENS: Table = Table::new(
    "refresh_tokens",
    &[
        "tenant_id",
        "id",
        "family_id",
        "user_id",
        "secret_hash",
        "created_at",
        "expires_at",
        "used_at",
        "revoked_at",
        "version",
    ],
    RECORD_KEY,
);
pub(crate) static API_KEYS: Table = Table::new(
    "api_keys",
    &[
        "tenant_id",
        "id",
        "name",
        "role",
        "secret_hash",
        "created_by",
        "created_at",
        "last_used_at",
        "use_count",
        "revoked_at",
        "version",
    ],
    RECORD_KEY,
);

/// The tables of the record kinds, their columns from the descriptions
/// ([`crm_core::kind::KindDef::table_columns`]).
static RECORD_TABLES: LazyLock<Vec<(Kind, Table)>> = LazyLock::new(|| {
    let table = |def: &'static KindDef| {
        // Built once per kind for the life of the process.
        let columns: &'static [&'static str] = Box::leak(def.table_columns().into_boxed_slice());
        (def.kind, Table::new(def.plural, columns, RECORD_KEY))
    };
    RECORD_KINDS.iter().copied().map(table).collect()
});

/// The table of a record kind; `None` for kinds that are not records.
pub(crate) fn table_of(kind: Kind) -> Option<&'static Table> {
    RECORD_TABLES.iter().find(|(k, _)| *k == kind).map(|(_, table)| table)
}

// ---- values -------------------------------------------------------------------------------

pub(crate) fn uuid(id: Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

fn id<T>(id: Id<T>) -> Value {
    uuid(id.uuid())
}

pub(crate) fn time(t: DateTime<Utc>) -> Value {
    Value::Integer(t.timestamp_micros())
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, time)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt_text(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, text)
}

fn json(v: &impl serde::Serialize) -> Value {
    Value::Text(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
}

pub(crate) fn actor(a: &Actor) -> Value {
    Value::Text(actor_text(a))
}

/// Actors as text: `user:<uuid>` or `system`, so the audit log can be filtered by equality.
pub(crate) fn actor_text(a: &Actor) -> String {
    match a {
        Actor::User(id) => format!("user:{id}"),
        Actor::ApiKey(id) => format!("api_key:{id}"),
        _ => "system".into(),
    }
}

/// The table and column values of a row to insert or update.
pub(crate) fn to_row(entity: Entity) -> Option<(&'static Table, Vec<Value>)> {
    match entity {
        Entity::Record(row) => Some((table_of(row.def.kind)?, record_values(row))),
        other => columns_of(&other),
    }
}

/// A record row's SQL values, in its table's column order.
fn record_values(row: RecordRow) -> Vec<Value> {
    let words = row.search_words();
    let RecordRow { meta, values, custom_fields, .. } = row;
    let mut out = Vec::with_capacity(META_COLUMNS.len() + values.len() + 2);
    out.extend([
        uuid(meta.tenant_id.uuid()),
        uuid(meta.id),
        Value::Integer(meta.version),
        time(meta.created_at),
        time(meta.updated_at),
        opt_time(meta.deleted_at),
    ]);
    out.extend(values.into_iter().map(sql_value));
    out.extend(custom_fields.map(|cf| json(&cf)));
    out.extend(words.map(Value::Text));
    out
}

/// A column value as SQLite stores it: ids as 16-byte blobs, times as microseconds, dates as
/// ISO text, JSON as text.
pub(crate) fn sql_value(value: crm_core::kind::Value) -> Value {
    use crm_core::kind::Value as V;
    match value {
        V::Null => Value::Null,
        V::Text(text) => Value::Text(text.into_owned()),
        V::Int(n) => Value::Integer(n),
        V::Bool(b) => Value::Integer(b.into()),
        V::Uuid(id) => uuid(id),
        V::Time(t) => time(t),
        V::Date(d) => Value::Text(d.to_string()),
        V::Json(j) => json(&j),
    }
}

fn columns_of(entity: &Entity) -> Option<(&'static Table, Vec<Value>)> {
    Some(match entity {
        Entity::Tenant(t) => (&TENANTS, vec![id(t.id), text(&t.slug), text(&t.name), time(t.created_at)]),
        Entity::User(u) => (&USERS, vec![id(u.id), text(&u.email), text(&u.name), time(u.created_at)]),
        Entity::Membership(m) => (
            &MEMBERSHIPS,
            vec![
                id(m.tenant_id),
                id(m.user_id),
                text(m.role.as_str()),
                Value::Integer(m.version),
                time(m.created_at),
                time(m.updated_at),
            ],
        ),
        Entity::StageChange(s) => (
            &STAGE_CHANGES,
            vec![
                id(s.tenant_id),
                id(s.id),
                id(s.deal_id),
                id(s.pipeline_id),
                opt_text(&s.from_stage),
                text(&s.to_stage),
                actor(&s.actor),
                time(s.at),
            ],
        ),
        Entity::Credential(c) => (
            &CREDENTIALS,
            vec![id(c.user_id), text(&c.password_hash), Value::Integer(c.version), time(c.updated_at)],
        ),
        Entity::RefreshToken(t) => (
            &REFRESH_TOKENS,
            vec![
                id(t.tenant_id),
                id(t.id),
                uuid(t.family_id),
                id(t.user_id),
                text(&t.secret_hash),
                time(t.created_at),
                time(t.expires_at),
                opt_time(t.used_at),
                opt_time(t.revoked_at),
                Value::Integer(t.version),
            ],
        ),
        Entity::ApiKey(k) => (
            &API_KEYS,
            vec![
                id(k.tenant_id),
                id(k.id),
                text(&k.name),
                text(k.role.as_str()),
                text(&k.secret_hash),
                id(k.created_by),
                time(k.created_at),
                opt_time(k.last_used_at),
                Value::Integer(k.use_count),
                opt_time(k.revoked_at),
                Value::Integer(k.version),
            ],
        ),
        // Records go through the generic path (`to_row`).
        Entity::Record(_) => return None,
    })
}

pub(crate) fn audit_row(e: &AuditEntry) -> Vec<Value> {
    vec![
        id(e.tenant_id),
        id(e.id),
        actor(&e.actor),
        text(e.action.as_str()),
        text(e.resource.as_str()),
        uuid(e.resource_id),
        json(&e.changes),
        opt_text(&e.request_id),
        time(e.at),
    ]
}

pub(crate) fn event_row(e: &DomainEvent) -> Vec<Value> {
    vec![
        id(e.tenant_id),
        id(e.id),
        text(&e.name),
        text(e.resource.as_str()),
        uuid(e.resource_id),
        actor(&e.actor),
        json(&e.payload),
        time(e.at),
    ]
}

// ---- rows ---------------------------------------------------------------------------------

type R<T> = rusqlite::Result<T>;

fn bad(idx: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, what.to_owned().into())
}

fn get_uuid(row: &Row, idx: usize) -> R<Uuid> {
    let bytes: Vec<u8> = row.get(idx)?;
    Uuid::from_slice(&bytes).map_err(|_| bad(idx, "malformed uuid"))
}

fn get_id<T>(row: &Row, idx: usize) -> R<Id<T>> {
    get_uuid(row, idx).map(Id::from_uuid)
}

fn get_opt_id<T>(row: &Row, idx: usize) -> R<Option<Id<T>>> {
    let bytes: Option<Vec<u8>> = row.get(idx)?;
    bytes.map(|b| Uuid::from_slice(&b).map(Id::from_uuid).map_err(|_| bad(idx, "malformed uuid"))).transpose()
}

fn get_time(row: &Row, idx: usize) -> R<DateTime<Utc>> {
    let micros: i64 = row.get(idx)?;
    DateTime::from_timestamp_micros(micros).ok_or_else(|| bad(idx, "time out of range"))
}

fn get_opt_time(row: &Row, idx: usize) -> R<Option<DateTime<Utc>>> {
    let micros: Option<i64> = row.get(idx)?;
    micros
        .map(|m| DateTime::from_timestamp_micros(m).ok_or_else(|| bad(idx, "time out of range")))
        .transpose()
}

fn get_json<T: serde::de::DeserializeOwned>(row: &Row, idx: usize) -> R<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into()))
}

fn get_enum<T>(row: &Row, idx: usize, parse: fn(&str) -> Option<T>) -> R<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| bad(idx, "unknown enum value"))
}

fn get_actor(row: &Row, idx: usize) -> R<Actor> {
    let text: String = row.get(idx)?;
    if let Some(id) = text.strip_prefix("user:") {
        return id.parse().map(Actor::User).map_err(|_| bad(idx, "malformed actor"));
    }
    if let Some(id) = text.strip_prefix("api_key:") {
        return id.parse().map(Actor::ApiKey).map_err(|_| bad(idx, "malformed actor"));
    }
    if text == "system" { Ok(Actor::System) } else { Err(bad(idx, "malformed actor")) }
}

pub(crate) fn tenant(row: &Row) -> R<Tenant> {
    Ok(Tenant { id: get_id(row, 0)?, slug: row.get(1)?, name: row.get(2)?, created_at: get_time(row, 3)? })
}

pub(crate) fn user(row: &Row) -> R<User> {
    Ok(User { id: get_id(row, 0)?, email: row.get(1)?, name: row.get(2)?, created_at: get_time(row, 3)? })
}

pub(crate) fn membership(row: &Row) -> R<Membership> {
    Ok(Membership {
        tenant_id: get_id(row, 0)?,
        user_id: get_id(row, 1)?,
        role: get_enum(row, 2, Role::parse)?,
        version: row.get(3)?,
        created_at: get_time(row, 4)?,
        updated_at: get_time(row, 5)?,
    })
}

/// A row of a record kind's table as a record row (the layout is `RecordRow::read`'s).
pub(crate) fn record(def: &'static KindDef, row: &Row) -> R<RecordRow> {
    let meta = meta(row)?;
    RecordRow::read(def, meta, |idx, c| column_value(row, idx, c), |idx| get_json::<CustomFields>(row, idx))
}

/// The meta columns every record row starts with.
pub(crate) fn meta(row: &Row) -> R<RowMeta> {
    Ok(RowMeta {
        tenant_id: get_id(row, 0)?,
        id: get_uuid(row, 1)?,
        version: row.get(2)?,
        created_at: get_time(row, 3)?,
        updated_at: get_time(row, 4)?,
        deleted_at: get_opt_time(row, 5)?,
    })
}

/// A record row of `def`'s table read in place: each field column decoded when the record's
/// mapping asks for it, with no `Vec<Value>` in between.
pub(crate) fn in_place<'a>(def: &'static KindDef, row: &'a Row) -> impl crm_core::kind::ColumnSource + 'a {
    crm_core::kind::InPlace::new(
        def,
        move |idx, column| column_value(row, idx, column).map_err(crate::error::map),
        move |idx| get_json::<CustomFields>(row, idx).map_err(crate::error::map),
    )
}

/// One column as a core value, by its type.
#[inline]
fn column_value(row: &Row, idx: usize, column: &Column) -> R<crm_core::kind::Value> {
    use crm_core::kind::Value as V;
    Ok(match column.ty {
        // An enum's value is one of its static names: borrowed, not allocated.
        ColumnType::Text if !column.choices.is_empty() => match row.get_ref(idx)? {
            ValueRef::Null => V::Null,
            ValueRef::Text(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|_| bad(idx, "malformed text"))?;
                V::Text(column.choice(text).map_or_else(|| Cow::Owned(text.to_owned()), Cow::Borrowed))
            }
            _ => return Err(bad(idx, "not text")),
        },
        ColumnType::Text => row.get::<_, Option<String>>(idx)?.map_or(V::Null, |text| V::Text(text.into())),
        ColumnType::Int | ColumnType::Int32 => row.get::<_, Option<i64>>(idx)?.map_or(V::Null, V::Int),
        ColumnType::Bool => row.get::<_, Option<bool>>(idx)?.map_or(V::Null, V::Bool),
        ColumnType::Uuid => get_opt_id::<()>(row, idx)?.map_or(V::Null, |id| V::Uuid(id.uuid())),
        ColumnType::Time => get_opt_time(row, idx)?.map_or(V::Null, V::Time),
        ColumnType::Date => match row.get::<_, Option<String>>(idx)? {
            Some(d) => V::Date(d.parse::<NaiveDate>().map_err(|_| bad(idx, "malformed date"))?),
            None => V::Null,
        },
        ColumnType::Json => match row.get::<_, Option<String>>(idx)? {
            Some(text) => V::Json(serde_json::from_str(&text).map_err(|_| bad(idx, "malformed JSON"))?),
            None => V::Null,
        },
    })
}

pub(crate) fn stage_change(row: &Row) -> R<StageChange> {
    Ok(StageChange {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        deal_id: get_id(row, 2)?,
        pipeline_id: get_id(row, 3)?,
        from_stage: row.get(4)?,
        to_stage: row.get(5)?,
        actor: get_actor(row, 6)?,
        at: get_time(row, 7)?,
    })
}

pub(crate) fn audit_entry(row: &Row) -> R<AuditEntry> {
    Ok(AuditEntry {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        actor: get_actor(row, 2)?,
        action: get_enum(row, 3, AuditAction::parse)?,
        resource: get_enum(row, 4, Kind::parse)?,
        resource_id: get_uuid(row, 5)?,
        changes: get_json::<Changes>(row, 6)?,
        request_id: row.get(7)?,
        at: get_time(row, 8)?,
    })
}

pub(crate) fn event(row: &Row) -> R<DomainEvent> {
    Ok(DomainEvent {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        name: row.get(2)?,
        resource: get_enum(row, 3, Kind::parse)?,
        resource_id: get_uuid(row, 4)?,
        actor: get_actor(row, 5)?,
        payload: get_json(row, 6)?,
        at: get_time(row, 7)?,
    })
}

pub(crate) fn credential(row: &Row) -> R<Credential> {
    Ok(Credential {
        user_id: get_id(row, 0)?,
        password_hash: row.get(1)?,
        version: row.get(2)?,
        updated_at: get_time(row, 3)?,
    })
}

pub(crate) fn refresh_token(row: &Row) -> R<RefreshToken> {
    Ok(RefreshToken {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        family_id: get_uuid(row, 2)?,
        user_id: get_id(row, 3)?,
        secret_hash: row.get(4)?,
        created_at: get_time(row, 5)?,
        expires_at: get_time(row, 6)?,
        used_at: get_opt_time(row, 7)?,
        revoked_at: get_opt_time(row, 8)?,
        version: row.get(9)?,
    })
}

pub(crate) fn api_key(row: &Row) -> R<ApiKey> {
    Ok(ApiKey {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        name: row.get(2)?,
        role: get_enum(row, 3, Role::parse)?,
        secret_hash: row.get(4)?,
        created_by: get_id(row, 5)?,
        created_at: get_time(row, 6)?,
        last_used_at: get_opt_time(row, 7)?,
        use_count: row.get(8)?,
        revoked_at: get_opt_time(row, 9)?,
        version: row.get(10)?,
    })
}

/// Decodes a row of `kind`'s table into an entity.
pub(crate) fn entity(kind: Kind, row: &Row) -> R<Entity> {
    let def = kind.def().ok_or(rusqlite::Error::InvalidQuery)?;
    Ok(Entity::Record(record(def, row)?))
}

pub(crate) fn idempotency_row(r: &IdempotencyRecord) -> Vec<Value> {
    vec![
        uuid(r.tenant_id.uuid()),
        Value::Text(r.principal.clone()),
        Value::Text(r.key.clone()),
        Value::Text(r.fingerprint.clone()),
        uuid(r.token),
        time(r.created_at),
        time(r.locked_until),
        time(r.expires_at),
        r.response.clone().map_or(Value::Null, Value::Text),
    ]
}

/// Decodes the columns of [`idempotency_row`], in order.
pub(crate) fn idempotency_record(row: &Row) -> R<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        tenant_id: get_id(row, 0)?,
        principal: row.get(1)?,
        key: row.get(2)?,
        fingerprint: row.get(3)?,
        token: get_uuid(row, 4)?,
        created_at: get_time(row, 5)?,
        locked_until: get_time(row, 6)?,
        expires_at: get_time(row, 7)?,
        response: row.get(8)?,
    })
}

// ---- jobs ---------------------------------------------------------------------------------

/// The columns of `jobs` (but `lease_token`), in table order: what [`job`] decodes.
pub(crate) const JOB_COLUMNS: &str = "tenant_id, id, job_type, payload, state, attempts, max_attempts, run_at, \
     unique_key, lease_until, last_error, created_at, updated_at";

/// A job's values in [`JOB_COLUMNS`] order.
pub(crate) fn job_row(j: &Job) -> Vec<Value> {
    vec![
        uuid(j.tenant_id.uuid()),
        id(j.id),
        text(&j.job_type),
        json(&j.payload),
        text(j.state.as_str()),
        Value::Integer(j.attempts.into()),
        Value::Integer(j.max_attempts.into()),
        time(j.run_at),
        opt_text(&j.unique_key),
        opt_time(j.lease_until),
        opt_text(&j.last_error),
        time(j.created_at),
        time(j.updated_at),
    ]
}

/// Decodes the columns of [`JOB_COLUMNS`], in order.
pub(crate) fn job(row: &Row) -> R<Job> {
    Ok(Job {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        job_type: row.get(2)?,
        payload: get_json(row, 3)?,
        state: get_enum(row, 4, JobState::parse)?,
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        run_at: get_time(row, 7)?,
        unique_key: row.get(8)?,
        lease_until: get_opt_time(row, 9)?,
        last_error: row.get(10)?,
        created_at: get_time(row, 11)?,
        updated_at: get_time(row, 12)?,
    })
}

// ---- schedules ----------------------------------------------------------------------------

/// The columns of `job_schedules`, in table order: what [`schedule`] decodes.
pub(crate) const SCHEDULE_COLUMNS: &str =
    "tenant_id, name, cron, job_type, payload, next_run_at, created_at, updated_at";

/// A schedule's values in [`SCHEDULE_COLUMNS`] order.
pub(crate) fn schedule_row(s: &Schedule) -> Vec<Value> {
    vec![
        uuid(s.tenant_id.uuid()),
        text(&s.name),
        text(&s.cron),
        text(&s.job_type),
        json(&s.payload),
        time(s.next_run_at),
        time(s.created_at),
        time(s.updated_at),
    ]
}

/// Decodes the columns of [`SCHEDULE_COLUMNS`], in order.
pub(crate) fn schedule(row: &Row) -> R<Schedule> {
    Ok(Schedule {
        tenant_id: get_id(row, 0)?,
        name: row.get(1)?,
        cron: row.get(2)?,
        job_type: row.get(3)?,
        payload: get_json(row, 4)?,
        next_run_at: get_time(row, 5)?,
        created_at: get_time(row, 6)?,
        updated_at: get_time(row, 7)?,
    })
}

// ---- webhook deliveries -------------------------------------------------------------------

/// The columns of `webhook_deliveries`, in table order: what [`delivery`] decodes.
pub(crate) const DELIVERY_COLUMNS: &str = "tenant_id, id, webhook_id, event_id, event_type, lane, body, state, \
     attempts, next_attempt_at, last_error, created_at, updated_at";

/// A delivery's values in [`DELIVERY_COLUMNS`] order.
pub(crate) fn delivery_row(d: &Delivery) -> Vec<Value> {
    vec![
        id(d.tenant_id),
        id(d.id),
        id(d.webhook_id),
        uuid(d.event_id),
        text(&d.event_type),
        uuid(d.lane),
        text(&d.body),
        text(d.state.as_str()),
        Value::Integer(d.attempts.into()),
        time(d.next_attempt_at),
        opt_text(&d.last_error),
        time(d.created_at),
        time(d.updated_at),
    ]
}

/// Decodes the columns of [`DELIVERY_COLUMNS`], in order.
pub(crate) fn delivery(row: &Row) -> R<Delivery> {
    Ok(Delivery {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        webhook_id: get_id(row, 2)?,
        event_id: get_uuid(row, 3)?,
        event_type: row.get(4)?,
        lane: get_uuid(row, 5)?,
        body: row.get(6)?,
        state: get_enum(row, 7, DeliveryState::parse)?,
        attempts: row.get(8)?,
        next_attempt_at: get_time(row, 9)?,
        last_error: row.get(10)?,
        created_at: get_time(row, 11)?,
        updated_at: get_time(row, 12)?,
    })
}

/// The columns of `webhook_attempts` but the tenant, in table order: what [`attempt`] decodes.
pub(crate) const ATTEMPT_COLUMNS: &str =
    "delivery_id, number, at, status, duration_ms, response_excerpt, error";

/// An attempt's values: the tenant, then [`ATTEMPT_COLUMNS`] in order.
pub(crate) fn attempt_row(tenant: crm_core::TenantId, a: &DeliveryAttempt) -> Vec<Value> {
    vec![
        id(tenant),
        id(a.delivery_id),
        Value::Integer(a.number.into()),
        time(a.at),
        a.status.map_or(Value::Null, |s| Value::Integer(s.into())),
        Value::Integer(a.duration_ms.into()),
        opt_text(&a.response_excerpt),
        opt_text(&a.error),
    ]
}

/// Decodes the columns of [`ATTEMPT_COLUMNS`], in order.
pub(crate) fn attempt(row: &Row) -> R<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        delivery_id: get_id(row, 0)?,
        number: row.get(1)?,
        at: get_time(row, 2)?,
        status: row.get(3)?,
        duration_ms: row.get(4)?,
        response_excerpt: row.get(5)?,
        error: row.get(6)?,
    })
}
