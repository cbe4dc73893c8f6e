//! Entities ⇄ rows: every column list and conversion lives here, once per table.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::audit::{AuditAction, AuditEntry};
use crm_core::model::{
    Account, Activity, ActivityKind, ActivityTarget, ApiKey, Contact, Credential, Deal, IdempotencyRecord,
    Kind, Lead, LeadStatus, Member, Membership, Money, Pipeline, RecordMeta, RefreshToken, StageChange,
    Tenant, User,
};
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
    Bool(bool),
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

macro_rules! columns {
    ($($c:literal),* $(,)?) => {
        &["tenant_id", "id", "version", "created_at", "updated_at", "deleted_at", $($c),*]
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

fn id<T>(id: Id<T>) -> Val {
    Val::Uuid(Some(id.uuid()))
}

fn opt_id<T>(id: Option<Id<T>>) -> Val {
    Val::Uuid(id.map(Id::uuid))
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

fn with_meta<T, const N: usize>(m: &RecordMeta<T>, rest: [Val; N]) -> Vec<Val> {
    [id(m.tenant_id), id(m.id), Val::Int(Some(m.version)), time(m.created_at), time(m.updated_at)]
        .into_iter()
        .chain([Val::Time(m.deleted_at)])
        .chain(rest)
        .collect()
}

/// The table and column values of a row to insert or update.
pub(crate) fn to_row(entity: &Entity) -> Option<(&'static Table, Vec<Val>)> {
    let (table, mut values) = columns_of(entity)?;
    if let Some(words) = entity.search_words() {
        values.push(Val::Text(Some(words)));
    }
    Some((table, values))
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
        Entity::Pipeline(p) => {
            (&PIPELINES, with_meta(&p.meta, [text(&p.name), Val::Bool(p.is_default), json(&p.stages)]))
        }
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
                    Val::Int(d.amount.as_ref().map(|m| m.amount_minor)),
                    Val::Text(d.amount.as_ref().map(|m| m.currency.clone())),
                    id(d.pipeline_id),
                    text(&d.stage),
                    Val::Date(d.expected_close_date),
                    Val::Int4(d.probability),
                    opt_id(d.account_id),
                    opt_id(d.contact_id),
                    opt_id(d.owner_id),
                    Val::Time(d.closed_at),
                    json(&d.custom_fields),
                ],
            ),
        ),
        Entity::Activity(a) => {
            let target = |kind: Kind| {
                let (k, id) = a.target.parts();
                Val::Uuid((k == kind).then_some(id))
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
        _ => return None,
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

fn get_opt_id<T>(row: &PgRow, idx: usize) -> R<Option<Id<T>>> {
    Ok(row.try_get::<Option<Uuid>, _>(idx)?.map(Id::from_uuid))
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

fn get_meta<T>(row: &PgRow) -> R<RecordMeta<T>> {
    Ok(RecordMeta {
        tenant_id: get_id(row, 0)?,
        id: get_id(row, 1)?,
        version: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        deleted_at: row.try_get(5)?,
    })
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

pub(crate) fn pipeline(row: &PgRow) -> R<Pipeline> {
    Ok(Pipeline {
        meta: get_meta(row)?,
        name: row.try_get(6)?,
        is_default: row.try_get(7)?,
        stages: get_json(row, 8)?,
    })
}

pub(crate) fn lead(row: &PgRow) -> R<Lead> {
    Ok(Lead {
        meta: get_meta(row)?,
        first_name: row.try_get(6)?,
        last_name: row.try_get(7)?,
        email: row.try_get(8)?,
        phone: row.try_get(9)?,
        company: row.try_get(10)?,
        title: row.try_get(11)?,
        source: row.try_get(12)?,
        status: get_enum(row, 13, LeadStatus::parse)?,
        owner_id: get_opt_id(row, 14)?,
        converted_contact_id: get_opt_id(row, 15)?,
        custom_fields: get_json(row, 16)?,
    })
}

pub(crate) fn contact(row: &PgRow) -> R<Contact> {
    Ok(Contact {
        meta: get_meta(row)?,
        first_name: row.try_get(6)?,
        last_name: row.try_get(7)?,
        email: row.try_get(8)?,
        phone: row.try_get(9)?,
        title: row.try_get(10)?,
        account_id: get_opt_id(row, 11)?,
        owner_id: get_opt_id(row, 12)?,
        custom_fields: get_json(row, 13)?,
    })
}

pub(crate) fn account(row: &PgRow) -> R<Account> {
    Ok(Account {
        meta: get_meta(row)?,
        name: row.try_get(6)?,
        domain: row.try_get(7)?,
        industry: row.try_get(8)?,
        owner_id: get_opt_id(row, 9)?,
        custom_fields: get_json(row, 10)?,
    })
}

pub(crate) fn deal(row: &PgRow) -> R<Deal> {
    let amount_minor: Option<i64> = row.try_get(7)?;
    let currency: Option<String> = row.try_get(8)?;
    Ok(Deal {
        meta: get_meta(row)?,
        name: row.try_get(6)?,
        amount: amount_minor.zip(currency).map(|(amount_minor, currency)| Money { amount_minor, currency }),
        pipeline_id: get_id(row, 9)?,
        stage: row.try_get(10)?,
        expected_close_date: row.try_get(11)?,
        probability: row.try_get(12)?,
        account_id: get_opt_id(row, 13)?,
        contact_id: get_opt_id(row, 14)?,
        owner_id: get_opt_id(row, 15)?,
        closed_at: row.try_get(16)?,
        custom_fields: get_json(row, 17)?,
    })
}

pub(crate) fn activity(row: &PgRow) -> R<Activity> {
    let targets = [(10, Kind::Lead), (11, Kind::Contact), (12, Kind::Account), (13, Kind::Deal)];
    let mut target = None;
    for (idx, kind) in targets {
        if let Some(id) = row.try_get::<Option<Uuid>, _>(idx)? {
            target = ActivityTarget::from_parts(kind, id);
        }
    }
    Ok(Activity {
        meta: get_meta(row)?,
        kind: get_enum(row, 6, ActivityKind::parse)?,
        subject: row.try_get(7)?,
        body: row.try_get(8)?,
        occurred_at: row.try_get(9)?,
        target: target.ok_or_else(|| bad(10, "activity without target"))?,
        owner_id: get_opt_id(row, 14)?,
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
    Ok(match kind {
        Kind::Pipeline => Entity::Pipeline(pipeline(row)?),
        Kind::Lead => Entity::Lead(lead(row)?),
        Kind::Contact => Entity::Contact(contact(row)?),
        Kind::Account => Entity::Account(account(row)?),
        Kind::Deal => Entity::Deal(deal(row)?),
        Kind::Activity => Entity::Activity(activity(row)?),
        _ => return Err(bad(0, "not a record kind")),
    })
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
