//! Entities ⇄ rows: every column list and conversion lives here, once per table.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::audit::{AuditAction, AuditEntry, Changes};
use crm_core::model::{
    Account, Activity, ActivityKind, ActivityTarget, ApiKey, Contact, Credential, CustomFields, Deal,
    IdempotencyRecord, Kind, Lead, LeadStatus, Membership, Money, Pipeline, RecordMeta, RefreshToken,
    StageChange, Tenant, User,
};
use crm_core::store::Entity;
use crm_core::{Actor, DomainEvent, Id, Role};
use rusqlite::Row;
use rusqlite::types::Value;
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

const META: [&str; 6] = ["tenant_id", "id", "version", "created_at", "updated_at", "deleted_at"];
const RECORD_KEY: &[&str] = &["tenant_id", "id"];

macro_rules! columns {
    ($($c:literal),* $(,)?) => {
        &[META[0], META[1], META[2], META[3], META[4], META[5], $($c),*]
    };
}

pub(crate) static TENANTS: Table = Table::new("tenants", &["id", "slug", "name", "created_at"], &["id"]);
pub(crate) static USERS: Table = Table::new("users", &["id", "email", "name", "created_at"], &["id"]);
pub(crate) static MEMBERSHIPS: Table = Table::new(
    "memberships",
    &["tenant_id", "user_id", "role", "version", "created_at", "updated_at"],
    &["tenant_id", "user_id"],
);
pub(crate) static PIPELINES: Table =
    Table::new("pipelines", columns!("name", "is_default", "stages"), RECORD_KEY);
pub(crate) static LEADS: Table = Table::new(
    "leads",
    columns!(
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "title",
        "source",
        "status",
        "owner_id",
        "converted_contact_id",
        "custom_fields",
        "search_words"
    ),
    RECORD_KEY,
);
pub(crate) static CONTACTS: Table = Table::new(
    "contacts",
    columns!(
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "account_id",
        "owner_id",
        "custom_fields",
        "search_words"
    ),
    RECORD_KEY,
);
pub(crate) static ACCOUNTS: Table = Table::new(
    "accounts",
    columns!("name", "domain", "industry", "owner_id", "custom_fields", "search_words"),
    RECORD_KEY,
);
pub(crate) static DEALS: Table = Table::new(
    "deals",
    columns!(
        "name",
        "amount_minor",
        "currency",
        "pipeline_id",
        "stage",
        "expected_close_date",
        "probability",
        "account_id",
        "contact_id",
        "owner_id",
        "closed_at",
        "custom_fields",
        "search_words"
    ),
    RECORD_KEY,
);
pub(crate) static ACTIVITIES: Table = Table::new(
    "activities",
    columns!(
        "kind",
        "subject",
        "body",
        "occurred_at",
        "lead_id",
        "contact_id",
        "account_id",
        "deal_id",
        "owner_id"
    ),
    RECORD_KEY,
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

/// The table for a record kind that `get`/`list` serve.
pub(crate) fn table_of(kind: Kind) -> Option<&'static Table> {
    Some(match kind {
        Kind::Pipeline => &PIPELINES,
        Kind::Lead => &LEADS,
        Kind::Contact => &CONTACTS,
        Kind::Account => &ACCOUNTS,
        Kind::Deal => &DEALS,
        Kind::Activity => &ACTIVITIES,
        _ => return None,
    })
}

// ---- values -------------------------------------------------------------------------------

pub(crate) fn uuid(id: Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

fn opt_id<T>(id: Option<Id<T>>) -> Value {
    id.map_or(Value::Null, |id| uuid(id.uuid()))
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

fn meta<T>(m: &RecordMeta<T>) -> [Value; 6] {
    [
        id(m.tenant_id),
        id(m.id),
        Value::Integer(m.version),
        time(m.created_at),
        time(m.updated_at),
        opt_time(m.deleted_at),
    ]
}

fn with_meta<T, const N: usize>(m: &RecordMeta<T>, rest: [Value; N]) -> Vec<Value> {
    meta(m).into_iter().chain(rest).collect()
}

/// The table and column values of a row to insert or update.
pub(crate) fn to_row(entity: &Entity) -> Option<(&'static Table, Vec<Value>)> {
    let (table, mut values) = columns_of(entity)?;
    if let Some(words) = entity.search_words() {
        values.push(Value::Text(words));
    }
    Some((table, values))
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
        Entity::Pipeline(p) => (
            &PIPELINES,
            with_meta(&p.meta, [text(&p.name), Value::Integer(p.is_default.into()), json(&p.stages)]),
        ),
        Entity::Lead(l) => (
            &LEADS,
            with_meta(
                &l.meta,
                [
                    opt_text(&l.first_name),
                    opt_text(&l.last_name),
                    opt_text(&l.email),
                    opt_text(&l.phone),
                    opt_text(&l.company),
                    opt_text(&l.title),
                    opt_text(&l.source),
                    text(l.status.as_str()),
                    opt_id(l.owner_id),
                    opt_id(l.converted_contact_id),
                    json(&l.custom_fields),
                ],
            ),
        ),
        Entity::Contact(c) => (
            &CONTACTS,
            with_meta(
                &c.meta,
                [
                    opt_text(&c.first_name),
                    opt_text(&c.last_name),
                    opt_text(&c.email),
                    opt_text(&c.phone),
                    opt_text(&c.title),
                    opt_id(c.account_id),
                    opt_id(c.owner_id),
                    json(&c.custom_fields),
                ],
            ),
        ),
        Entity::Account(a) => (
            &ACCOUNTS,
            with_meta(
                &a.meta,
                [
                    text(&a.name),
                    opt_text(&a.domain),
                    opt_text(&a.industry),
                    opt_id(a.owner_id),
                    json(&a.custom_fields),
                ],
            ),
        ),
        Entity::Deal(d) => (
            &DEALS,
            with_meta(
                &d.meta,
                [
                    text(&d.name),
                    d.amount.as_ref().map_or(Value::Null, |m| Value::Integer(m.amount_minor)),
                    d.amount.as_ref().map_or(Value::Null, |m| text(&m.currency)),
                    id(d.pipeline_id),
                    text(&d.stage),
                    d.expected_close_date.map_or(Value::Null, |date| Value::Text(date.to_string())),
                    d.probability.map_or(Value::Null, |p| Value::Integer(p.into())),
                    opt_id(d.account_id),
                    opt_id(d.contact_id),
                    opt_id(d.owner_id),
                    opt_time(d.closed_at),
                    json(&d.custom_fields),
                ],
            ),
        ),
        Entity::Activity(a) => {
            let target = |kind: Kind| {
                let (k, id) = a.target.parts();
                if k == kind { uuid(id) } else { Value::Null }
            };
            (
                &ACTIVITIES,
                with_meta(
                    &a.meta,
                    [
                        text(a.kind.as_str()),
                        opt_text(&a.subject),
                        opt_text(&a.body),
                        time(a.occurred_at),
                        target(Kind::Lead),
                        target(Kind::Contact),
                        target(Kind::Account),
                        target(Kind::Deal),
                        opt_id(a.owner_id),
                    ],
                ),
            )
        }
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
        _ => return None,
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

fn get_meta<T>(row: &Row) -> R<RecordMeta<T>> {
    Ok(RecordMeta {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        version: row.get(2)?,
        created_at: get_time(row, 3)?,
        updated_at: get_time(row, 4)?,
        deleted_at: get_opt_time(row, 5)?,
    })
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

pub(crate) fn pipeline(row: &Row) -> R<Pipeline> {
    Ok(Pipeline {
        meta: get_meta(row)?,
        name: row.get(6)?,
        is_default: row.get(7)?,
        stages: get_json(row, 8)?,
    })
}

pub(crate) fn lead(row: &Row) -> R<Lead> {
    Ok(Lead {
        meta: get_meta(row)?,
        first_name: row.get(6)?,
        last_name: row.get(7)?,
        email: row.get(8)?,
        phone: row.get(9)?,
        company: row.get(10)?,
        title: row.get(11)?,
        source: row.get(12)?,
        status: get_enum(row, 13, LeadStatus::parse)?,
        owner_id: get_opt_id(row, 14)?,
        converted_contact_id: get_opt_id(row, 15)?,
        custom_fields: get_json::<CustomFields>(row, 16)?,
    })
}

pub(crate) fn contact(row: &Row) -> R<Contact> {
    Ok(Contact {
        meta: get_meta(row)?,
        first_name: row.get(6)?,
        last_name: row.get(7)?,
        email: row.get(8)?,
        phone: row.get(9)?,
        title: row.get(10)?,
        account_id: get_opt_id(row, 11)?,
        owner_id: get_opt_id(row, 12)?,
        custom_fields: get_json(row, 13)?,
    })
}

pub(crate) fn account(row: &Row) -> R<Account> {
    Ok(Account {
        meta: get_meta(row)?,
        name: row.get(6)?,
        domain: row.get(7)?,
        industry: row.get(8)?,
        owner_id: get_opt_id(row, 9)?,
        custom_fields: get_json(row, 10)?,
    })
}

pub(crate) fn deal(row: &Row) -> R<Deal> {
    let amount_minor: Option<i64> = row.get(7)?;
    let currency: Option<String> = row.get(8)?;
    let date: Option<String> = row.get(11)?;
    Ok(Deal {
        meta: get_meta(row)?,
        name: row.get(6)?,
        amount: amount_minor.zip(currency).map(|(amount_minor, currency)| Money { amount_minor, currency }),
        pipeline_id: get_id(row, 9)?,
        stage: row.get(10)?,
        expected_close_date: date
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad(11, "malformed date")))
            .transpose()?,
        probability: row.get(12)?,
        account_id: get_opt_id(row, 13)?,
        contact_id: get_opt_id(row, 14)?,
        owner_id: get_opt_id(row, 15)?,
        closed_at: get_opt_time(row, 16)?,
        custom_fields: get_json(row, 17)?,
    })
}

pub(crate) fn activity(row: &Row) -> R<Activity> {
    let targets = [(10, Kind::Lead), (11, Kind::Contact), (12, Kind::Account), (13, Kind::Deal)];
    let mut target = None;
    for (idx, kind) in targets {
        if let Some(id) = get_opt_id::<()>(row, idx)? {
            target = ActivityTarget::from_parts(kind, id.uuid());
        }
    }
    Ok(Activity {
        meta: get_meta(row)?,
        kind: get_enum(row, 6, ActivityKind::parse)?,
        subject: row.get(7)?,
        body: row.get(8)?,
        occurred_at: get_time(row, 9)?,
        target: target.ok_or_else(|| bad(10, "activity without target"))?,
        owner_id: get_opt_id(row, 14)?,
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
    Ok(match kind {
        Kind::Pipeline => Entity::Pipeline(pipeline(row)?),
        Kind::Lead => Entity::Lead(lead(row)?),
        Kind::Contact => Entity::Contact(contact(row)?),
        Kind::Account => Entity::Account(account(row)?),
        Kind::Deal => Entity::Deal(deal(row)?),
        Kind::Activity => Entity::Activity(activity(row)?),
        _ => return Err(rusqlite::Error::InvalidQuery),
    })
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
