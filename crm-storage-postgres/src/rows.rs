//! Entities ⇄ rows. Record kinds share one path driven by their descriptions (`record`,
//! `to_row`); identity and history tables keep their column lists and converters here.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::audit::{AuditAction, AuditEntry};
use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryState};
use crm_core::job::{Job, JobState};
use crm_core::kind::{Column, ColumnType, KindDef, META_COLUMNS, RECORD_KINDS, RecordRow, RowMeta};
use crm_core::model::{
    ApiKey, Credential, CustomFields, IdempotencyRecord, Kind, Member, Membership, RefreshToken, StageChange,
    Tenant, User,
};
use crm_core::schedule::Schedule;
use crm_core::store::Entity;
use crm_core::{Actor, DomainEvent, Id, Role};
use serde_json::Value as Json;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};
use uuid::Uuid;

/// A bind value of any column type, so rows can be built as data and bound in a loop.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Json(Json),
}

/// Binds values in order.
pub(crate) fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    values: Vec<Val>,
) -> Query<'q, Postgres, PgArguments> {
    for v in values {
        query = match v {
            Val::Uuid(x) => query.bind(x),
            Val::Text(x) => query.bind(x),
            Val::Int(x) => query.bind(x),
            Val::Int4(x) => query.bind(x),
            Val::Bool(x) => query.bind(x),
            Val::Time(x) => query.bind(x),
            Val::Date(x) => query.bind(x),
            Val::Json(x) => query.bind(x),
        };
    }
    query
}

/// A table's name and columns, in the order of the values the converters produce.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: &'static [&'static str],
    insert: OnceLock<String>,
    update: OnceLock<String>,
}

impl Table {
    const fn new(name: &'static str, columns: &'static [&'static str], key: &'static [&'static str]) -> Self {
        Table { name, columns, key, insert: OnceLock::new(), update: OnceLock::new() }
    }

    /// `SELECT t.<columns> FROM <table> t`.
    pub fn select(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| format!("t.{c}")).collect();
        format!("SELECT {} FROM {} t", cols.join(", "), self.name)
    }

    pub fn insert_sql(&'static self) -> &'static str {
        self.insert.get_or_init(|| {
            let marks: Vec<String> = (1..=self.columns.len()).map(|i| format!("${i}")).collect();
            format!("INSERT INTO {} ({}) VALUES ({})", self.name, self.columns.join(", "), marks.join(", "))
        })
    }

    /// `UPDATE … SET <all but key and created_at> WHERE <key> AND version = $N+1`.
    pub fn update_sql(&'static self) -> &'static str {
        self.update.get_or_init(|| {
            let position = |c: &str| self.columns.iter().position(|x| *x == c).map_or(0, |i| i + 1);
            let sets: Vec<String> = self
                .columns
                .iter()
                .filter(|c| !self.key.contains(c) && **c != "created_at")
                .map(|c| format!("{c} = ${}", position(c)))
                .collect();
            let wheres: Vec<String> = self.key.iter().map(|c| format!("{c} = ${}", position(c))).collect();
            format!(
                "UPDATE {} SET {} WHERE {} AND version = ${}",
                self.name,
                sets.join(", "),
                wheres.join(" AND "),
                self.columns.len() + 1
            )
        })
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

fn id<T>(id: Id<T>) -> Val {
    Val::Uuid(Some(id.uuid()))
}

fn text(s: &str) -> Val {
    Val::Text(Some(s.to_owned()))
}

fn opt_text(s: &Option<String>) -> Val {
    Val::Text(s.clone())
}

fn time(t: DateTime<Utc>) -> Val {
    Val::Time(Some(t))
}

fn json(v: &impl serde::Serialize) -> Val {
    Val::Json(serde_json::to_value(v).unwrap_or(Json::Null))
}

/// Actors as text: `user:<uuid>` or `system`, so the audit log can be filtered by equality.
pub(crate) fn actor_text(a: &Actor) -> String {
    match a {
        Actor::User(id) => format!("user:{id}"),
        Actor::ApiKey(id) => format!("api_key:{id}"),
        _ => "system".into(),
    }
}

fn actor(a: &Actor) -> Val {
    Val::Text(Some(actor_text(a)))
}

/// The table and column values of a row to insert or update.
pub(crate) fn to_row(entity: Entity) -> Option<(&'static Table, Vec<Val>)> {
    match entity {
        Entity::Record(row) => Some((table_of(row.def.kind)?, record_values(row)?)),
        other => columns_of(&other),
    }
}

/// A record row's bind values, in its table's column order, each typed by its column (a null
/// too, so multi-row inserts can type their arrays); `None` for a null in a JSON column, which
/// no kind declares nullable.
fn record_values(row: RecordRow) -> Option<Vec<Val>> {
    let words = row.search_words();
    let RecordRow { def, meta, values, custom_fields } = row;
    let mut out = Vec::with_capacity(META_COLUMNS.len() + values.len() + 2);
    out.extend([
        Val::Uuid(Some(meta.tenant_id.uuid())),
        Val::Uuid(Some(meta.id)),
        Val::Int(Some(meta.version)),
        Val::Time(Some(meta.created_at)),
        Val::Time(Some(meta.updated_at)),
        Val::Time(meta.deleted_at),
    ]);
    for (column, value) in def.columns().zip(values) {
        out.push(typed_val(column.ty, value)?);
    }
    out.extend(custom_fields.map(|cf| Val::Json(Json::Object(cf))));
    out.extend(words.map(|w| Val::Text(Some(w))));
    Some(out)
}

/// A column value bound with its column's type; `None` when the value does not fit the column.
pub(crate) fn typed_val(ty: ColumnType, value: crm_core::kind::Value) -> Option<Val> {
    use crm_core::kind::Value as V;
    Some(match (ty, value) {
        (ColumnType::Text, V::Text(t)) => Val::Text(Some(t.into_owned())),
        (ColumnType::Text, V::Null) => Val::Text(None),
        (ColumnType::Int, V::Int(n)) => Val::Int(Some(n)),
        (ColumnType::Int, V::Null) => Val::Int(None),
        (ColumnType::Int32, V::Int(n)) => Val::Int4(Some(i32::try_from(n).ok()?)),
        (ColumnType::Int32, V::Null) => Val::Int4(None),
        (ColumnType::Bool, V::Bool(b)) => Val::Bool(Some(b)),
        (ColumnType::Bool, V::Null) => Val::Bool(None),
        (ColumnType::Uuid, V::Uuid(u)) => Val::Uuid(Some(u)),
        (ColumnType::Uuid, V::Null) => Val::Uuid(None),
        (ColumnType::Time, V::Time(t)) => Val::Time(Some(t)),
        (ColumnType::Time, V::Null) => Val::Time(None),
        (ColumnType::Date, V::Date(d)) => Val::Date(Some(d)),
        (ColumnType::Date, V::Null) => Val::Date(None),
        (ColumnType::Json, V::Json(j)) => Val::Json(j),
        _ => return None,
    })
}

fn columns_of(entity: &Entity) -> Option<(&'static Table, Vec<Val>)> {
    Some(match entity {
        Entity::Tenant(t) => (&TENANTS, vec![id(t.id), text(&t.slug), text(&t.name), time(t.created_at)]),
        Entity::User(u) => (&USERS, vec![id(u.id), text(&u.email), text(&u.name), time(u.created_at)]),
        Entity::Membership(m) => (
            &MEMBERSHIPS,
            vec![
                id(m.tenant_id),
                id(m.user_id),
                text(m.role.as_str()),
                Val::Int(Some(m.version)),
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
            vec![id(c.user_id), text(&c.password_hash), Val::Int(Some(c.version)), time(c.updated_at)],
        ),
        Entity::RefreshToken(t) => (
            &REFRESH_TOKENS,
            vec![
                id(t.tenant_id),
                id(t.id),
                Val::Uuid(Some(t.family_id)),
                id(t.user_id),
                text(&t.secret_hash),
                time(t.created_at),
                time(t.expires_at),
                Val::Time(t.used_at),
                Val::Time(t.revoked_at),
                Val::Int(Some(t.version)),
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
                Val::Time(k.last_used_at),
                Val::Int(Some(k.use_count)),
                Val::Time(k.revoked_at),
                Val::Int(Some(k.version)),
            ],
        ),
        // Records go through the generic path (`to_row`).
        Entity::Record(_) => return None,
    })
}

pub(crate) fn audit_row(e: &AuditEntry) -> Vec<Val> {
    vec![
        id(e.tenant_id),
        id(e.id),
        actor(&e.actor),
        text(e.action.as_str()),
        text(e.resource.as_str()),
        Val::Uuid(Some(e.resource_id)),
        json(&e.changes),
        opt_text(&e.request_id),
        time(e.at),
    ]
}

pub(crate) fn event_row(e: &DomainEvent) -> Vec<Val> {
    vec![
        id(e.tenant_id),
        id(e.id),
        text(&e.name),
        text(e.resource.as_str()),
        Val::Uuid(Some(e.resource_id)),
        actor(&e.actor),
        Val::Json(e.payload.clone()),
        time(e.at),
    ]
}

// ---- rows ---------------------------------------------------------------------------------

type R<T> = Result<T, sqlx::Error>;

fn bad(idx: usize, what: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: idx.to_string(), source: what.to_owned().into() }
}

fn get_id<T>(row: &PgRow, idx: usize) -> R<Id<T>> {
    row.try_get::<Uuid, _>(idx).map(Id::from_uuid)
}

fn get_json<T: serde::de::DeserializeOwned>(row: &PgRow, idx: usize) -> R<T> {
    let value: Json = row.try_get(idx)?;
    serde_json::from_value(value)
        .map_err(|e| sqlx::Error::ColumnDecode { index: idx.to_string(), source: e.into() })
}

fn get_enum<T>(row: &PgRow, idx: usize, parse: fn(&str) -> Option<T>) -> R<T> {
    let text: String = row.try_get(idx)?;
    parse(&text).ok_or_else(|| bad(idx, "unknown enum value"))
}

fn get_actor(row: &PgRow, idx: usize) -> R<Actor> {
    let text: String = row.try_get(idx)?;
    if let Some(id) = text.strip_prefix("user:") {
        return id.parse().map(Actor::User).map_err(|_| bad(idx, "malformed actor"));
    }
    if let Some(id) = text.strip_prefix("api_key:") {
        return id.parse().map(Actor::ApiKey).map_err(|_| bad(idx, "malformed actor"));
    }
    if text == "system" { Ok(Actor::System) } else { Err(bad(idx, "malformed actor")) }
}

pub(crate) fn tenant(row: &PgRow) -> R<Tenant> {
    Ok(Tenant {
        id: get_id(row, 0)?,
        slug: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

pub(crate) fn user(row: &PgRow) -> R<User> {
    Ok(User {
        id: get_id(row, 0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

pub(crate) fn member(row: &PgRow) -> R<Member> {
    Ok(Member {
        user: user(row)?,
        role: get_enum(row, 4, Role::parse)?,
        version: row.try_get(5)?,
        joined_at: row.try_get(6)?,
    })
}

pub(crate) fn membership(row: &PgRow) -> R<Membership> {
    Ok(Membership {
        tenant_id: get_id(row, 0)?,
        user_id: get_id(row, 1)?,
        role: get_enum(row, 2, Role::parse)?,
        version: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

/// A row of a record kind's table as a record row (the layout is `RecordRow::read`'s).
pub(crate) fn record(def: &'static KindDef, row: &PgRow) -> R<RecordRow> {
    let meta = meta(row)?;
    RecordRow::read(def, meta, |idx, c| column_value(row, idx, c), |idx| get_json::<CustomFields>(row, idx))
}

/// The meta columns every record row starts with.
pub(crate) fn meta(row: &PgRow) -> R<RowMeta> {
    Ok(RowMeta {
        tenant_id: get_id(row, 0)?,
        id: row.try_get(1)?,
        version: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        deleted_at: row.try_get(5)?,
    })
}

/// A record row of `def`'s table read in place: each field column decoded when the record's
/// mapping asks for it, with no `Vec<Value>` in between.
pub(crate) fn in_place<'a>(def: &'static KindDef, row: &'a PgRow) -> impl crm_core::kind::ColumnSource + 'a {
    crm_core::kind::InPlace::new(
        def,
        move |idx, column| column_value(row, idx, column).map_err(crate::error::map),
        move |idx| get_json::<CustomFields>(row, idx).map_err(crate::error::map),
    )
}

/// One column as a core value, by its type.
#[inline]
fn column_value(row: &PgRow, idx: usize, column: &Column) -> R<crm_core::kind::Value> {
    use crm_core::kind::Value as V;
    Ok(match column.ty {
        // An enum's value is one of its static names: borrowed, not allocated.
        ColumnType::Text if !column.choices.is_empty() => match row.try_get::<Option<&str>, _>(idx)? {
            Some(text) => {
                V::Text(column.choice(text).map_or_else(|| Cow::Owned(text.to_owned()), Cow::Borrowed))
            }
            None => V::Null,
        },
        ColumnType::Text => {
            row.try_get::<Option<String>, _>(idx)?.map_or(V::Null, |text| V::Text(text.into()))
        }
        ColumnType::Int => row.try_get::<Option<i64>, _>(idx)?.map_or(V::Null, V::Int),
        ColumnType::Int32 => row.try_get::<Option<i32>, _>(idx)?.map_or(V::Null, |n| V::Int(n.into())),
        ColumnType::Bool => row.try_get::<Option<bool>, _>(idx)?.map_or(V::Null, V::Bool),
        ColumnType::Uuid => row.try_get::<Option<Uuid>, _>(idx)?.map_or(V::Null, V::Uuid),
        ColumnType::Time => row.try_get::<Option<DateTime<Utc>>, _>(idx)?.map_or(V::Null, V::Time),
        ColumnType::Date => row.try_get::<Option<NaiveDate>, _>(idx)?.map_or(V::Null, V::Date),
        ColumnType::Json => row.try_get::<Option<Json>, _>(idx)?.map_or(V::Null, V::Json),
    })
}

pub(crate) fn stage_change(row: &PgRow) -> R<StageChange> {
    Ok(StageChange {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        deal_id: get_id(row, 2)?,
        pipeline_id: get_id(row, 3)?,
        from_stage: row.try_get(4)?,
        to_stage: row.try_get(5)?,
        actor: get_actor(row, 6)?,
        at: row.try_get(7)?,
    })
}

pub(crate) fn audit_entry(row: &PgRow) -> R<AuditEntry> {
    Ok(AuditEntry {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        actor: get_actor(row, 2)?,
        action: get_enum(row, 3, AuditAction::parse)?,
        resource: get_enum(row, 4, Kind::parse)?,
        resource_id: row.try_get(5)?,
        changes: get_json(row, 6)?,
        request_id: row.try_get(7)?,
        at: row.try_get(8)?,
    })
}

pub(crate) fn event(row: &PgRow) -> R<DomainEvent> {
    Ok(DomainEvent {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        name: row.try_get(2)?,
        resource: get_enum(row, 3, Kind::parse)?,
        resource_id: row.try_get(4)?,
        actor: get_actor(row, 5)?,
        payload: row.try_get(6)?,
        at: row.try_get(7)?,
    })
}

pub(crate) fn credential(row: &PgRow) -> R<Credential> {
    Ok(Credential {
        user_id: get_id(row, 0)?,
        password_hash: row.try_get(1)?,
        version: row.try_get(2)?,
        updated_at: row.try_get(3)?,
    })
}

pub(crate) fn refresh_token(row: &PgRow) -> R<RefreshToken> {
    Ok(RefreshToken {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        family_id: row.try_get(2)?,
        user_id: get_id(row, 3)?,
        secret_hash: row.try_get(4)?,
        created_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        used_at: row.try_get(7)?,
        revoked_at: row.try_get(8)?,
        version: row.try_get(9)?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> R<ApiKey> {
    Ok(ApiKey {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        name: row.try_get(2)?,
        role: get_enum(row, 3, Role::parse)?,
        secret_hash: row.try_get(4)?,
        created_by: get_id(row, 5)?,
        created_at: row.try_get(6)?,
        last_used_at: row.try_get(7)?,
        use_count: row.try_get(8)?,
        revoked_at: row.try_get(9)?,
        version: row.try_get(10)?,
    })
}

/// Decodes a row of `kind`'s table into an entity.
pub(crate) fn entity(kind: Kind, row: &PgRow) -> R<Entity> {
    let def = kind.def().ok_or_else(|| bad(0, "not a record kind"))?;
    Ok(Entity::Record(record(def, row)?))
}

pub(crate) fn idempotency_row(r: &IdempotencyRecord) -> Vec<Val> {
    vec![
        Val::Uuid(Some(r.tenant_id.uuid())),
        Val::Text(Some(r.principal.clone())),
        Val::Text(Some(r.key.clone())),
        Val::Text(Some(r.fingerprint.clone())),
        Val::Uuid(Some(r.token)),
        Val::Time(Some(r.created_at)),
        Val::Time(Some(r.locked_until)),
        Val::Time(Some(r.expires_at)),
        Val::Text(r.response.clone()),
    ]
}

/// Decodes the columns of [`idempotency_row`], in order.
pub(crate) fn idempotency_record(row: &PgRow) -> Result<IdempotencyRecord, sqlx::Error> {
    Ok(IdempotencyRecord {
        tenant_id: Id::from_uuid(row.try_get(0)?),
        principal: row.try_get(1)?,
        key: row.try_get(2)?,
        fingerprint: row.try_get(3)?,
        token: row.try_get(4)?,
        created_at: row.try_get(5)?,
        locked_until: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        response: row.try_get(8)?,
    })
}

// ---- jobs ---------------------------------------------------------------------------------

/// The columns of `jobs` (but `lease_token`), in table order: what [`job`] decodes.
pub(crate) const JOB_COLUMNS: &str = "tenant_id, id, job_type, payload, state, attempts, max_attempts, run_at, \
     unique_key, lease_until, last_error, created_at, updated_at";

/// A job's values in [`JOB_COLUMNS`] order.
pub(crate) fn job_row(j: &Job) -> Vec<Val> {
    vec![
        Val::Uuid(Some(j.tenant_id.uuid())),
        Val::Uuid(Some(j.id.uuid())),
        Val::Text(Some(j.job_type.clone())),
        Val::Json(j.payload.clone()),
        Val::Text(Some(j.state.as_str().to_owned())),
        Val::Int4(Some(count(j.attempts))),
        Val::Int4(Some(count(j.max_attempts))),
        Val::Time(Some(j.run_at)),
        Val::Text(j.unique_key.clone()),
        Val::Time(j.lease_until),
        Val::Text(j.last_error.clone()),
        Val::Time(Some(j.created_at)),
        Val::Time(Some(j.updated_at)),
    ]
}

/// Attempts fit an `integer` (core caps them at 100).
pub(crate) fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Decodes the columns of [`JOB_COLUMNS`], in order.
pub(crate) fn job(row: &PgRow) -> R<Job> {
    let attempts = |idx: usize| -> R<u32> {
        let n: i32 = row.try_get(idx)?;
        u32::try_from(n).map_err(|_| bad(idx, "a negative attempt count"))
    };
    Ok(Job {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        job_type: row.try_get(2)?,
        payload: row.try_get(3)?,
        state: get_enum(row, 4, JobState::parse)?,
        attempts: attempts(5)?,
        max_attempts: attempts(6)?,
        run_at: row.try_get(7)?,
        unique_key: row.try_get(8)?,
        lease_until: row.try_get(9)?,
        last_error: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

// ---- schedules ----------------------------------------------------------------------------

/// The columns of `job_schedules`, in table order: what [`schedule`] decodes.
pub(crate) const SCHEDULE_COLUMNS: &str =
    "tenant_id, name, cron, job_type, payload, next_run_at, created_at, updated_at";

/// A schedule's values in [`SCHEDULE_COLUMNS`] order.
pub(crate) fn schedule_row(s: &Schedule) -> Vec<Val> {
    vec![
        Val::Uuid(Some(s.tenant_id.uuid())),
        Val::Text(Some(s.name.clone())),
        Val::Text(Some(s.cron.clone())),
        Val::Text(Some(s.job_type.clone())),
        Val::Json(s.payload.clone()),
        Val::Time(Some(s.next_run_at)),
        Val::Time(Some(s.created_at)),
        Val::Time(Some(s.updated_at)),
    ]
}

/// Decodes the columns of [`SCHEDULE_COLUMNS`], in order.
pub(crate) fn schedule(row: &PgRow) -> R<Schedule> {
    Ok(Schedule {
        tenant_id: get_id(row, 0)?,
        name: row.try_get(1)?,
        cron: row.try_get(2)?,
        job_type: row.try_get(3)?,
        payload: row.try_get(4)?,
        next_run_at: row.try_get(5)?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
    })
}

// ---- webhook deliveries -------------------------------------------------------------------

/// The columns of `webhook_deliveries`, in table order: what [`delivery`] decodes.
pub(crate) const DELIVERY_COLUMNS: &str = "tenant_id, id, webhook_id, event_id, event_type, lane, body, state, \
     attempts, next_attempt_at, last_error, created_at, updated_at";

/// A delivery's values in [`DELIVERY_COLUMNS`] order.
pub(crate) fn delivery_row(d: &Delivery) -> Vec<Val> {
    vec![
        Val::Uuid(Some(d.tenant_id.uuid())),
        Val::Uuid(Some(d.id.uuid())),
        Val::Uuid(Some(d.webhook_id.uuid())),
        Val::Uuid(Some(d.event_id)),
        Val::Text(Some(d.event_type.clone())),
        Val::Uuid(Some(d.lane)),
        Val::Text(Some(d.body.clone())),
        Val::Text(Some(d.state.as_str().to_owned())),
        Val::Int4(Some(count(d.attempts))),
        Val::Time(Some(d.next_attempt_at)),
        Val::Text(d.last_error.clone()),
        Val::Time(Some(d.created_at)),
        Val::Time(Some(d.updated_at)),
    ]
}

/// Decodes the columns of [`DELIVERY_COLUMNS`], in order.
pub(crate) fn delivery(row: &PgRow) -> R<Delivery> {
    let attempts: i32 = row.try_get(8)?;
    Ok(Delivery {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        webhook_id: get_id(row, 2)?,
        event_id: row.try_get(3)?,
        event_type: row.try_get(4)?,
        lane: row.try_get(5)?,
        body: row.try_get(6)?,
        state: get_enum(row, 7, DeliveryState::parse)?,
        attempts: u32::try_from(attempts).map_err(|_| bad(8, "a negative attempt count"))?,
        next_attempt_at: row.try_get(9)?,
        last_error: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

/// The columns of `webhook_attempts` but the tenant, in table order: what [`attempt`] decodes.
pub(crate) const ATTEMPT_COLUMNS: &str =
    "delivery_id, number, at, status, duration_ms, response_excerpt, error";

/// An attempt's values: the tenant, then [`ATTEMPT_COLUMNS`] in order.
pub(crate) fn attempt_row(tenant: crm_core::TenantId, a: &DeliveryAttempt) -> Vec<Val> {
    vec![
        Val::Uuid(Some(tenant.uuid())),
        Val::Uuid(Some(a.delivery_id.uuid())),
        Val::Int4(Some(count(a.number))),
        Val::Time(Some(a.at)),
        Val::Int4(a.status.map(i32::from)),
        Val::Int4(Some(count(a.duration_ms))),
        Val::Text(a.response_excerpt.clone()),
        Val::Text(a.error.clone()),
    ]
}

/// Decodes the columns of [`ATTEMPT_COLUMNS`], in order.
pub(crate) fn attempt(row: &PgRow) -> R<DeliveryAttempt> {
    let unsigned = |idx: usize| -> R<u32> {
        let n: i32 = row.try_get(idx)?;
        u32::try_from(n).map_err(|_| bad(idx, "a negative count"))
    };
    let status: Option<i32> = row.try_get(3)?;
    Ok(DeliveryAttempt {
        delivery_id: get_id(row, 0)?,
        number: unsigned(1)?,
        at: row.try_get(2)?,
        status: status.map(|s| u16::try_from(s).map_err(|_| bad(3, "a status out of range"))).transpose()?,
        duration_ms: unsigned(4)?,
        response_excerpt: row.try_get(5)?,
        error: row.try_get(6)?,
    })
}
