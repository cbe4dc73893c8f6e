//! Postgres fixtures and the raw sqlx baselines. The raw side connects as the login role (a
//! superuser here), so it neither switches role nor sets the tenant: Row-Level Security does
//! not apply to it, while the store pays for both in every transaction.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use crm_core::{Crm, Scope};
use crm_storage_postgres::PgStore;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::data::LeadFields;
use crate::sqlite::rfc3339;

/// The admin URL from `CRM_TEST_DATABASE_URL`, or `None` (benches then skip, saying so).
pub fn url() -> Option<String> {
    match std::env::var("CRM_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED postgres benches: set CRM_TEST_DATABASE_URL=postgres://…");
            None
        }
    }
}

/// A CRM on a Postgres database with the bench tenant, its owner's scope, and a raw pool on
/// the same database.
pub struct Fixture {
    /// The services.
    pub crm: Crm,
    /// The owner's scope.
    pub scope: Scope,
    /// The raw baseline's pool (the login role, no RLS).
    pub pool: PgPool,
    _db: Option<crm_storage_postgres::testing::TestDatabase>,
}

impl Fixture {
    /// The tenant id.
    pub fn tenant(&self) -> Uuid {
        self.scope.tenant_id().uuid()
    }

    /// The owner's id.
    pub fn owner(&self) -> Uuid {
        self.scope.user_id().expect("a user scope").uuid()
    }
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().max_connections(4)
}

/// An empty bench tenant in a fresh database, dropped with the fixture.
pub async fn fresh(url: &str) -> Fixture {
    let db = crm_storage_postgres::testing::fresh_database(url).await;
    let store = PgStore::connect_with(db.options.clone(), pool_options()).await.expect("store");
    let pool = store.pool().clone();
    let crm = Crm::new(store);
    let scope = crate::create_tenant(&crm).await;
    Fixture { crm, scope, pool, _db: Some(db) }
}

/// The bench tenant holding leads `0..n`, imported through the library, in a database kept
/// between runs (`crm_bench_leads_<n>_seed<version>_<schema>`); marked complete by a comment on
/// the database, and vacuumed and analyzed after seeding, as autovacuum does soon after a bulk
/// load. Benches on it only read.
pub async fn seeded(url: &str, n: usize) -> Fixture {
    let key = crate::fingerprint(&[&migrations_text()]);
    let name = format!("crm_bench_leads_{n}_seed{}_{key}", crate::SEED_VERSION);
    let admin: PgConnectOptions = url.parse().expect("postgres url");
    let mut conn = PgConnection::connect_with(&admin).await.expect("connect admin");
    let comment: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(&name)
    .fetch_optional(&mut conn)
    .await
    .expect("look up database");
    let options = admin.clone().database(&name);
    if comment.flatten().as_deref() != Some("crm-bench seeded") {
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await
            .expect("drop");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create");
        let store = PgStore::connect_with(options.clone(), pool_options()).await.expect("store");
        let pool = store.pool().clone();
        let crm = Crm::new(store);
        let scope = crate::create_tenant(&crm).await;
        crate::seed_leads(&crm, &scope, n).await;
        sqlx::query("VACUUM ANALYZE").execute(&pool).await.expect("vacuum");
        sqlx::query(AssertSqlSafe(format!("COMMENT ON DATABASE {name} IS 'crm-bench seeded'")))
            .execute(&mut conn)
            .await
            .expect("mark seeded");
    }
    let store = PgStore::connect_with(options, pool_options()).await.expect("store");
    let pool = store.pool().clone();
    let crm = Crm::new(store.clone());
    let scope = crate::tenant_scope(&crm, &store).await;
    Fixture { crm, scope, pool, _db: None }
}

fn migrations_text() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crm-storage-postgres/migrations");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("migrations").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).expect("migration")).collect()
}

/// The lead columns, in the store's order.
pub const LEAD_COLUMNS: &str = crate::sqlite::LEAD_COLUMNS;

/// A lead row decoded into owned driver values.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct RawLead {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub status: String,
    pub owner_id: Option<Uuid>,
    pub converted_contact_id: Option<Uuid>,
    pub custom_fields: Value,
}

impl RawLead {
    /// Decodes a row selected with [`LEAD_COLUMNS`].
    pub fn from_row(r: &PgRow) -> Self {
        let go = || -> sqlx::Result<Self> {
            Ok(Self {
                tenant_id: r.try_get(0)?,
                id: r.try_get(1)?,
                version: r.try_get(2)?,
                created_at: r.try_get(3)?,
                updated_at: r.try_get(4)?,
                deleted_at: r.try_get(5)?,
                first_name: r.try_get(6)?,
                last_name: r.try_get(7)?,
                email: r.try_get(8)?,
                phone: r.try_get(9)?,
                company: r.try_get(10)?,
                title: r.try_get(11)?,
                source: r.try_get(12)?,
                status: r.try_get(13)?,
                owner_id: r.try_get(14)?,
                converted_contact_id: r.try_get(15)?,
                custom_fields: r.try_get(16)?,
            })
        };
        go().expect("decode lead")
    }
}

/// Raw point select of one lead.
pub async fn get(pool: &PgPool, tenant: Uuid, id: Uuid) -> RawLead {
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = $1 AND t.id = $2 AND t.deleted_at IS NULL"
    );
    let row = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_one(pool).await.expect("row");
    RawLead::from_row(&row)
}

/// Raw keyset page: leads of `status` with ids below `after`, newest first.
pub async fn list_by_status(
    pool: &PgPool,
    tenant: Uuid,
    status: &str,
    after: Uuid,
    limit: i64,
) -> Vec<RawLead> {
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = $1 AND t.deleted_at IS NULL AND t.status = $2 \
         AND t.id < $3 ORDER BY t.id DESC LIMIT $4"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
        .expect("rows");
    rows.iter().map(RawLead::from_row).collect()
}

/// Raw search page, as a developer who knows the data would write it, on the store's term index
/// (`search_terms`): for a rare word, the records of the words it starts, sorted; for a common
/// one (a whole word), that word's records in id order, newest first, until the page is full.
pub async fn search(pool: &PgPool, tenant: Uuid, terms: &[&str], limit: i64, rare: bool) -> Vec<RawLead> {
    let word = if rare { "s.word >= $2 AND s.word < $3" } else { "s.word = $2 AND $3::text IS NOT NULL" };
    let order = if rare { "t.id" } else { "s.record_id" };
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM search_terms s JOIN leads t ON t.tenant_id = s.tenant_id \
         AND t.id = s.record_id WHERE s.tenant_id = $1 AND s.kind = 'lead' AND {word} \
         AND t.deleted_at IS NULL ORDER BY {order} DESC LIMIT $4"
    );
    let term = terms.iter().max_by_key(|t| t.len()).expect("a term");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(*term)
        .bind(crm_core::search::prefix_successor(term))
        .bind(limit)
        .fetch_all(pool)
        .await
        .expect("rows");
    rows.iter().map(RawLead::from_row).collect()
}

/// The id of the `k`-th newest lead of `status`.
pub async fn nth_id(pool: &PgPool, tenant: Uuid, status: &str, k: usize) -> Uuid {
    sqlx::query_scalar(
        "SELECT id FROM leads WHERE tenant_id = $1 AND deleted_at IS NULL AND status = $2
         ORDER BY id DESC LIMIT 1 OFFSET $3",
    )
    .bind(tenant)
    .bind(status)
    .bind(k as i64)
    .fetch_one(pool)
    .await
    .expect("nth")
}

/// The tenant's default pipeline.
pub async fn pipeline(pool: &PgPool, tenant: Uuid) -> Uuid {
    sqlx::query_scalar("SELECT id FROM pipelines WHERE tenant_id = $1 AND is_default")
        .bind(tenant)
        .fetch_one(pool)
        .await
        .expect("pipeline")
}

/// Appends `value` to a COPY text row, escaped (`\N` for none).
fn field(out: &mut String, value: Option<&str>) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\t');
    }
    match value {
        None => out.push_str("\\N"),
        Some(v) => {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

async fn copy(conn: &mut PgConnection, statement: &str, data: String) {
    let mut copy = conn.copy_in_raw(statement).await.expect("copy");
    copy.send(data.into_bytes()).await.expect("send");
    copy.finish().await.expect("finish copy");
}

/// Raw import with `COPY`: per batch, one transaction copying the leads, their audit entries and
/// their outbox events (the rows the library writes).
pub async fn import(pool: &PgPool, tenant: Uuid, owner: Uuid, leads: &[LeadFields], batch: usize) {
    let mut conn = pool.acquire().await.expect("conn");
    let t = tenant.to_string();
    let o = owner.to_string();
    let actor = format!("user:{owner}");
    for chunk in leads.chunks(batch) {
        let mut tx = conn.begin().await.expect("begin");
        let now = Utc::now();
        let at = rfc3339(now);
        let (mut l, mut a, mut e) = (String::new(), String::new(), String::new());
        for f in chunk {
            let id = Uuid::now_v7();
            let ids = id.to_string();
            let (changes, payload) = crate::sqlite::lead_json(id, f, owner, now);
            for v in [Some(t.as_str()), Some(&ids), Some("1"), Some(&at), Some(&at), None] {
                field(&mut l, v);
            }
            let words = f.search_words();
            for v in [
                Some(f.first_name.as_str()),
                Some(&f.last_name),
                Some(&f.email),
                None,
                Some(&f.company),
                None,
                None,
                Some(f.status.as_str()),
                Some(&o),
                None,
                Some("{}"),
                Some(&words),
            ] {
                field(&mut l, v);
            }
            l.push('\n');
            let audit_id = Uuid::now_v7().to_string();
            for v in [&t, &audit_id, &actor, "created", "lead", &ids, &changes] {
                field(&mut a, Some(v));
            }
            field(&mut a, None);
            field(&mut a, Some(&at));
            a.push('\n');
            let event_id = Uuid::now_v7().to_string();
            for v in [&t, &event_id, "lead.created", "lead", &ids, &actor, &payload, &at] {
                field(&mut e, Some(v));
            }
            e.push('\n');
        }
        copy(
            &mut tx,
            "COPY leads (tenant_id, id, version, created_at, updated_at, deleted_at, first_name, last_name, \
             email, phone, company, title, source, status, owner_id, converted_contact_id, custom_fields, \
             search_words) FROM STDIN",
            l,
        )
        .await;
        copy(
            &mut tx,
            "COPY audit_log (tenant_id, id, actor, action, resource, resource_id, changes, request_id, at) FROM STDIN",
            a,
        )
        .await;
        copy(
            &mut tx,
            "COPY outbox (tenant_id, id, name, resource, resource_id, actor, payload, at) FROM STDIN",
            e,
        )
        .await;
        tx.commit().await.expect("commit");
    }
}

const AUDIT_INSERT: &str = "INSERT INTO audit_log (tenant_id, id, actor, action, resource, resource_id, \
    changes, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)";
const OUTBOX_INSERT: &str = "INSERT INTO outbox (tenant_id, id, name, resource, resource_id, actor, payload, at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Raw create with the same rows as the library: the lead, its audit entry and its event, one
/// statement each, in one transaction.
pub async fn create_same_rows(pool: &PgPool, tenant: Uuid, owner: Uuid, f: &LeadFields) {
    let mut tx = pool.begin().await.expect("begin");
    let now = Utc::now();
    let id = Uuid::now_v7();
    let (changes, payload) = crate::sqlite::lead_values(id, f, owner, now);
    let actor = format!("user:{owner}");
    sqlx::query(
        "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
         company, status, owner_id, custom_fields, search_words)
         VALUES ($1, $2, 1, $3, $3, $4, $5, $6, $7, $8, $9, '{}', $10)",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .bind(&f.first_name)
    .bind(&f.last_name)
    .bind(&f.email)
    .bind(&f.company)
    .bind(f.status.as_str())
    .bind(owner)
    .bind(f.search_words())
    .execute(&mut *tx)
    .await
    .expect("lead");
    audit_and_event(&mut tx, tenant, &actor, "lead", id, "created", changes, payload, now).await;
    tx.commit().await.expect("commit");
}

#[allow(clippy::too_many_arguments)]
async fn audit_and_event(
    conn: &mut PgConnection,
    tenant: Uuid,
    actor: &str,
    resource: &str,
    id: Uuid,
    action: &str,
    changes: Value,
    payload: Value,
    now: DateTime<Utc>,
) {
    sqlx::query(AUDIT_INSERT)
        .bind(tenant)
        .bind(Uuid::now_v7())
        .bind(actor)
        .bind(action)
        .bind(resource)
        .bind(id)
        .bind(changes)
        .bind(now)
        .execute(&mut *conn)
        .await
        .expect("audit");
    sqlx::query(OUTBOX_INSERT)
        .bind(tenant)
        .bind(Uuid::now_v7())
        .bind(format!("{resource}.{action}"))
        .bind(resource)
        .bind(id)
        .bind(actor)
        .bind(payload)
        .bind(now)
        .execute(&mut *conn)
        .await
        .expect("outbox");
}

/// Raw conversion of `lead`: in one transaction, read the lead, insert an account, a contact, a
/// deal and its first stage change, mark the lead converted (version-checked), and write the four
/// audit entries and events — one statement each.
pub async fn convert(pool: &PgPool, tenant: Uuid, owner: Uuid, pipeline: Uuid, lead: Uuid) {
    let mut tx = pool.begin().await.expect("begin");
    let now = Utc::now();
    let actor = format!("user:{owner}");
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = $1 AND t.id = $2 AND t.deleted_at IS NULL"
    );
    let row =
        sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(lead).fetch_one(&mut *tx).await.expect("lead");
    let l = RawLead::from_row(&row);
    let company = l.company.clone().unwrap_or_default();
    let (account, contact, deal, change) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let words = |parts: &[Option<&str>]| -> String {
        parts
            .iter()
            .flatten()
            .flat_map(|s| s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()))
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    sqlx::query(
        "INSERT INTO accounts (tenant_id, id, version, created_at, updated_at, name, owner_id, custom_fields, search_words)
         VALUES ($1, $2, 1, $3, $3, $4, $5, '{}', $6)",
    )
    .bind(tenant)
    .bind(account)
    .bind(now)
    .bind(&company)
    .bind(owner)
    .bind(words(&[Some(&company)]))
    .execute(&mut *tx)
    .await
    .expect("account");
    sqlx::query(
        "INSERT INTO contacts (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
         account_id, owner_id, custom_fields, search_words) VALUES ($1, $2, 1, $3, $3, $4, $5, $6, $7, $8, '{}', $9)",
    )
    .bind(tenant)
    .bind(contact)
    .bind(now)
    .bind(&l.first_name)
    .bind(&l.last_name)
    .bind(&l.email)
    .bind(account)
    .bind(owner)
    .bind(words(&[l.first_name.as_deref(), l.last_name.as_deref(), l.email.as_deref()]))
    .execute(&mut *tx)
    .await
    .expect("contact");
    let deal_name = format!("{company} deal");
    sqlx::query(
        "INSERT INTO deals (tenant_id, id, version, created_at, updated_at, name, pipeline_id, stage, account_id,
         contact_id, owner_id, custom_fields, search_words)
         VALUES ($1, $2, 1, $3, $3, $4, $5, 'prospecting', $6, $7, $8, '{}', $9)",
    )
    .bind(tenant)
    .bind(deal)
    .bind(now)
    .bind(&deal_name)
    .bind(pipeline)
    .bind(account)
    .bind(contact)
    .bind(owner)
    .bind(words(&[Some(&deal_name)]))
    .execute(&mut *tx)
    .await
    .expect("deal");
    sqlx::query(
        "INSERT INTO deal_stage_changes (tenant_id, id, deal_id, pipeline_id, from_stage, to_stage, actor, at)
         VALUES ($1, $2, $3, $4, NULL, 'prospecting', $5, $6)",
    )
    .bind(tenant)
    .bind(change)
    .bind(deal)
    .bind(pipeline)
    .bind(&actor)
    .bind(now)
    .execute(&mut *tx)
    .await
    .expect("stage change");
    let updated = sqlx::query(
        "UPDATE leads SET status = 'converted', converted_contact_id = $3, version = version + 1, updated_at = $4
         WHERE tenant_id = $1 AND id = $2 AND version = $5",
    )
    .bind(tenant)
    .bind(lead)
    .bind(contact)
    .bind(now)
    .bind(l.version)
    .execute(&mut *tx)
    .await
    .expect("update");
    assert_eq!(updated.rows_affected(), 1, "version check");
    let at = rfc3339(now);
    let records = [
        ("account", account, "created", json!({ "id": account, "name": company, "owner_id": owner })),
        (
            "contact",
            contact,
            "created",
            json!({ "id": contact, "first_name": l.first_name, "last_name": l.last_name, "email": l.email,
                    "account_id": account, "owner_id": owner }),
        ),
        (
            "deal",
            deal,
            "created",
            json!({ "id": deal, "name": deal_name, "pipeline_id": pipeline, "stage": "prospecting",
                    "account_id": account, "contact_id": contact, "owner_id": owner }),
        ),
        (
            "lead",
            lead,
            "converted",
            json!({ "id": lead, "status": "converted", "converted_contact_id": contact, "updated_at": at }),
        ),
    ];
    for (resource, id, action, after) in records {
        let changes = json!({ "before": {}, "after": after.clone() });
        audit_and_event(&mut tx, tenant, &actor, resource, id, action, changes, after, now).await;
    }
    tx.commit().await.expect("commit");
}

/// Raw stage move: in one transaction the version-checked update, the stage-history row, the
/// audit entry and the event.
#[allow(clippy::too_many_arguments)]
pub async fn move_stage(
    pool: &PgPool,
    tenant: Uuid,
    owner: Uuid,
    pipeline: Uuid,
    deal: Uuid,
    version: i64,
    from: &str,
    to: &str,
) {
    let mut tx = pool.begin().await.expect("begin");
    let now = Utc::now();
    let actor = format!("user:{owner}");
    let n = sqlx::query(
        "UPDATE deals SET stage = $3, version = version + 1, updated_at = $4, closed_at = NULL
         WHERE tenant_id = $1 AND id = $2 AND version = $5",
    )
    .bind(tenant)
    .bind(deal)
    .bind(to)
    .bind(now)
    .bind(version)
    .execute(&mut *tx)
    .await
    .expect("update");
    assert_eq!(n.rows_affected(), 1, "version check");
    sqlx::query(
        "INSERT INTO deal_stage_changes (tenant_id, id, deal_id, pipeline_id, from_stage, to_stage, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(deal)
    .bind(pipeline)
    .bind(from)
    .bind(to)
    .bind(&actor)
    .bind(now)
    .execute(&mut *tx)
    .await
    .expect("stage change");
    let changes = json!({ "before": { "stage": from }, "after": { "stage": to } });
    let payload = json!({
        "id": deal, "name": "Bench deal", "pipeline_id": pipeline, "stage": to, "version": version + 1,
        "updated_at": rfc3339(now), "owner_id": owner, "custom_fields": {},
    });
    audit_and_event(&mut tx, tenant, &actor, "deal", deal, "stage_changed", changes, payload, now).await;
    tx.commit().await.expect("commit");
}
