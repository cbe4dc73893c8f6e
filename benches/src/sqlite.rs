//! SQLite fixtures and the raw rusqlite baselines.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use crm_core::{Crm, Scope};
use crm_storage_sqlite::SqliteStore;
use rusqlite::{Connection, Row, params};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::TempDir;
use crate::data::LeadFields;

/// A CRM on a SQLite file with the bench tenant and its owner's scope.
pub struct Fixture {
    /// The services.
    pub crm: Crm,
    /// The owner's scope.
    pub scope: Scope,
    /// The database file, for the raw baseline to open.
    pub path: PathBuf,
    _dir: Option<TempDir>,
}

impl Fixture {
    /// The tenant id as the raw side binds it.
    pub fn tenant_blob(&self) -> Vec<u8> {
        self.scope.tenant_id().uuid().as_bytes().to_vec()
    }

    /// The owner's id as the raw side binds it.
    pub fn owner_blob(&self) -> Vec<u8> {
        self.scope.user_id().expect("a user scope").uuid().as_bytes().to_vec()
    }
}

/// An empty bench tenant on a fresh temporary file.
pub async fn fresh() -> Fixture {
    let dir = TempDir::new();
    let path = dir.0.join("bench.db");
    let crm = Crm::new(SqliteStore::open(&path).await.expect("open store"));
    let scope = crate::create_tenant(&crm).await;
    Fixture { crm, scope, path, _dir: Some(dir) }
}

/// The bench tenant holding leads `0..n`, imported through the library. The file is kept in
/// [`crate::data_dir`] and reused by later runs while the seed version and the store's
/// migrations are unchanged; benches on it only read.
pub async fn seeded(n: usize) -> Fixture {
    let migrations = migrations_text();
    let key = crate::fingerprint(&[&migrations]);
    let path = crate::data_dir().join(format!("sqlite-leads-{n}-seed{}-{key}.db", crate::SEED_VERSION));
    let done = path.with_extension("done");
    if !done.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let crm = Crm::new(SqliteStore::open(&path).await.expect("open store"));
        let scope = crate::create_tenant(&crm).await;
        crate::seed_leads(&crm, &scope, n).await;
        drop(crm);
        std::fs::write(&done, b"seeded\n").expect("marker");
    }
    let store = SqliteStore::open(&path).await.expect("open store");
    let crm = Crm::new(store.clone());
    let scope = crate::tenant_scope(&crm, &store).await;
    Fixture { crm, scope, path, _dir: None }
}

fn migrations_text() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crm-storage-sqlite/migrations");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("migrations").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).expect("migration")).collect()
}

/// A raw connection with the store's settings, for the baseline (the planner stability
/// guarantee too: without it a `LIMIT ?` statement is re-prepared at every execution).
pub fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open raw");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
    .expect("pragmas");
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).expect("qpsg");
    conn
}

/// The lead columns, in the store's order.
pub const LEAD_COLUMNS: &str = "t.tenant_id, t.id, t.version, t.created_at, t.updated_at, t.deleted_at, \
    t.first_name, t.last_name, t.email, t.phone, t.company, t.title, t.source, t.status, t.owner_id, \
    t.converted_contact_id, t.custom_fields";

/// A lead row decoded into owned driver values (no domain types, no JSON parsing).
#[derive(Debug)]
#[allow(missing_docs)]
pub struct RawLead {
    pub tenant_id: Vec<u8>,
    pub id: Vec<u8>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub status: String,
    pub owner_id: Option<Vec<u8>>,
    pub converted_contact_id: Option<Vec<u8>>,
    pub custom_fields: String,
}

impl RawLead {
    /// Decodes a row selected with [`LEAD_COLUMNS`].
    pub fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant_id: r.get(0)?,
            id: r.get(1)?,
            version: r.get(2)?,
            created_at: r.get(3)?,
            updated_at: r.get(4)?,
            deleted_at: r.get(5)?,
            first_name: r.get(6)?,
            last_name: r.get(7)?,
            email: r.get(8)?,
            phone: r.get(9)?,
            company: r.get(10)?,
            title: r.get(11)?,
            source: r.get(12)?,
            status: r.get(13)?,
            owner_id: r.get(14)?,
            converted_contact_id: r.get(15)?,
            custom_fields: r.get(16)?,
        })
    }
}

/// Raw point select of one lead.
pub fn get(conn: &Connection, tenant: &[u8], id: Uuid) -> RawLead {
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = ?1 AND t.id = ?2 AND t.deleted_at IS NULL"
    );
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    stmt.query_row(params![tenant, id.as_bytes().as_slice()], RawLead::from_row).expect("row")
}

/// Raw keyset page: leads of `status` with ids below `after`, newest first.
pub fn list_by_status(
    conn: &Connection,
    tenant: &[u8],
    status: &str,
    after: Uuid,
    limit: u32,
) -> Vec<RawLead> {
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = ?1 AND t.deleted_at IS NULL AND t.status = ?2 \
         AND t.id < ?3 ORDER BY t.id DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    let rows = stmt
        .query_map(params![tenant, status, after.as_bytes().as_slice(), limit], RawLead::from_row)
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

/// Raw search page, as a developer who knows the data would write it, on the store's term index
/// (`search_terms`): for a rare word, the records of the words it starts, sorted; for a common
/// one (a whole word), that word's records in id order, newest first, until the page is full.
pub fn search(conn: &Connection, tenant: &[u8], terms: &[&str], limit: u32, rare: bool) -> Vec<RawLead> {
    let word = if rare { "s.word >= ?2 AND s.word < ?3" } else { "s.word = ?2 AND ?3 IS NOT NULL" };
    let order = if rare { "t.id" } else { "s.record_id" };
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM search_terms s CROSS JOIN leads t ON t.tenant_id = s.tenant_id \
         AND t.id = s.record_id WHERE s.tenant_id = ?1 AND s.kind = 'lead' AND {word} \
         AND t.deleted_at IS NULL ORDER BY {order} DESC LIMIT ?4"
    );
    let term = terms.iter().max_by_key(|t| t.len()).expect("a term");
    let end = crm_core::search::prefix_successor(term);
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    let rows = stmt.query_map(params![tenant, term, end, limit], RawLead::from_row).expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

/// The id of the `k`-th newest lead of `status` (to start a page in the middle of the list).
pub fn nth_id(conn: &Connection, tenant: &[u8], status: &str, k: usize) -> Uuid {
    let sql = "SELECT id FROM leads WHERE tenant_id = ?1 AND deleted_at IS NULL AND status = ?2
               ORDER BY id DESC LIMIT 1 OFFSET ?3";
    let id: Vec<u8> = conn.query_row(sql, params![tenant, status, k as i64], |r| r.get(0)).expect("nth");
    Uuid::from_slice(&id).expect("uuid")
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

const LEAD_INSERT: &str = "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, deleted_at, \
    first_name, last_name, email, phone, company, title, source, status, owner_id, converted_contact_id, \
    custom_fields, search_words) VALUES (?1, ?2, 1, ?3, ?3, NULL, ?4, ?5, ?6, NULL, ?7, NULL, NULL, ?8, ?9, \
    NULL, '{}', ?10)";
const AUDIT_INSERT: &str = "INSERT INTO audit_log (tenant_id, id, actor, action, resource, resource_id, \
    changes, request_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)";
const OUTBOX_INSERT: &str = "INSERT INTO outbox (tenant_id, id, name, resource, resource_id, actor, payload, at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The JSON a created lead's audit entry and event carry, built by hand, as text.
pub fn lead_json(id: Uuid, f: &LeadFields, owner: Uuid, now: DateTime<Utc>) -> (String, String) {
    let (changes, payload) = lead_values(id, f, owner, now);
    (changes.to_string(), payload.to_string())
}

/// The JSON a created lead's audit entry (`changes`) and event (`payload`) carry.
pub fn lead_values(id: Uuid, f: &LeadFields, owner: Uuid, now: DateTime<Utc>) -> (Value, Value) {
    let at = rfc3339(now);
    let after = json!({
        "id": id, "first_name": f.first_name, "last_name": f.last_name, "email": f.email,
        "company": f.company, "status": f.status.as_str(), "owner_id": owner, "custom_fields": {},
    });
    let changes = json!({ "before": {}, "after": after.clone() });
    let mut payload = after;
    if let Value::Object(m) = &mut payload {
        for k in ["phone", "title", "source", "converted_contact_id"] {
            m.insert(k.into(), Value::Null);
        }
        m.insert("version".into(), json!(1));
        m.insert("created_at".into(), json!(at));
        m.insert("updated_at".into(), json!(at));
    }
    (changes, payload)
}

/// Raw import: per batch, one immediate transaction inserting each lead, its audit entry and
/// its outbox event through cached prepared statements (what the library writes).
pub fn import(conn: &mut Connection, tenant: Uuid, owner: Uuid, leads: &[LeadFields], batch: usize) {
    let tb = tenant.as_bytes().as_slice();
    let actor = format!("user:{owner}");
    for chunk in leads.chunks(batch) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        {
            let now = Utc::now();
            let micros = now.timestamp_micros();
            let mut lead = tx.prepare_cached(LEAD_INSERT).expect("prepare");
            let mut audit = tx.prepare_cached(AUDIT_INSERT).expect("prepare");
            let mut outbox = tx.prepare_cached(OUTBOX_INSERT).expect("prepare");
            for f in chunk {
                let id = Uuid::now_v7();
                let idb = id.as_bytes().as_slice();
                let (changes, payload) = lead_json(id, f, owner, now);
                lead.execute(params![
                    tb,
                    idb,
                    micros,
                    f.first_name,
                    f.last_name,
                    f.email,
                    f.company,
                    f.status.as_str(),
                    owner.as_bytes().as_slice(),
                    f.search_words()
                ])
                .expect("lead");
                let audit_id = Uuid::now_v7();
                audit
                    .execute(params![
                        tb,
                        audit_id.as_bytes().as_slice(),
                        actor,
                        "created",
                        "lead",
                        idb,
                        changes,
                        micros
                    ])
                    .expect("audit");
                let event_id = Uuid::now_v7();
                outbox
                    .execute(params![
                        tb,
                        event_id.as_bytes().as_slice(),
                        "lead.created",
                        "lead",
                        idb,
                        actor,
                        payload,
                        micros
                    ])
                    .expect("outbox");
            }
        }
        tx.commit().expect("commit");
    }
}

/// Raw create with the same rows as the library: one transaction with the lead, its audit
/// entry and its event.
pub fn create_same_rows(conn: &mut Connection, tenant: Uuid, owner: Uuid, f: &LeadFields) {
    import(conn, tenant, owner, std::slice::from_ref(f), 1);
}

/// Raw conversion of `lead`: in one immediate transaction, read the lead, insert an account, a
/// contact, a deal and its first stage change, mark the lead converted (version-checked), and
/// write the four audit entries and events.
pub fn convert(conn: &mut Connection, tenant: Uuid, owner: Uuid, pipeline: Uuid, lead: Uuid) {
    let tb = tenant.as_bytes().as_slice();
    let ob = owner.as_bytes().as_slice();
    let actor = format!("user:{owner}");
    let now = Utc::now();
    let micros = now.timestamp_micros();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
    let l = {
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads t WHERE t.tenant_id = ?1 AND t.id = ?2 AND t.deleted_at IS NULL"
        );
        let mut stmt = tx.prepare_cached(&sql).expect("prepare");
        stmt.query_row(params![tb, lead.as_bytes().as_slice()], RawLead::from_row).expect("lead")
    };
    let company = l.company.clone().unwrap_or_default();
    let (account, contact, deal, change) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let words = |parts: &[&Option<String>]| -> String {
        parts
            .iter()
            .filter_map(|p| p.as_deref())
            .flat_map(|s| s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()))
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
        tx.prepare_cached(sql).expect("prepare").execute(p).expect("execute");
    };
    exec(
        "INSERT INTO accounts (tenant_id, id, version, created_at, updated_at, name, owner_id, custom_fields, search_words)
         VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, '{}', ?6)",
        params![tb, account.as_bytes().as_slice(), micros, company, ob, words(&[&l.company])],
    );
    exec(
        "INSERT INTO contacts (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
         account_id, owner_id, custom_fields, search_words) VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6, ?7, ?8, '{}', ?9)",
        params![
            tb,
            contact.as_bytes().as_slice(),
            micros,
            l.first_name,
            l.last_name,
            l.email,
            account.as_bytes().as_slice(),
            ob,
            words(&[&l.first_name, &l.last_name, &l.email])
        ],
    );
    let deal_name = format!("{company} deal");
    exec(
        "INSERT INTO deals (tenant_id, id, version, created_at, updated_at, name, pipeline_id, stage, account_id,
         contact_id, owner_id, custom_fields, search_words) VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, 'prospecting', ?6, ?7, ?8, '{}', ?9)",
        params![
            tb,
            deal.as_bytes().as_slice(),
            micros,
            deal_name,
            pipeline.as_bytes().as_slice(),
            account.as_bytes().as_slice(),
            contact.as_bytes().as_slice(),
            ob,
            words(&[&Some(deal_name.clone())])
        ],
    );
    exec(
        "INSERT INTO deal_stage_changes (tenant_id, id, deal_id, pipeline_id, from_stage, to_stage, actor, at)
         VALUES (?1, ?2, ?3, ?4, NULL, 'prospecting', ?5, ?6)",
        params![
            tb,
            change.as_bytes().as_slice(),
            deal.as_bytes().as_slice(),
            pipeline.as_bytes().as_slice(),
            actor,
            micros
        ],
    );
    let updated = tx
        .prepare_cached(
            "UPDATE leads SET status = 'converted', converted_contact_id = ?3, version = version + 1, updated_at = ?4
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?5",
        )
        .expect("prepare")
        .execute(params![tb, lead.as_bytes().as_slice(), contact.as_bytes().as_slice(), micros, l.version])
        .expect("update");
    assert_eq!(updated, 1, "version check");
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
        let changes = json!({ "before": {}, "after": after }).to_string();
        exec(
            AUDIT_INSERT,
            params![
                tb,
                Uuid::now_v7().as_bytes().as_slice(),
                actor,
                action,
                resource,
                id.as_bytes().as_slice(),
                changes,
                micros
            ],
        );
        exec(
            OUTBOX_INSERT,
            params![
                tb,
                Uuid::now_v7().as_bytes().as_slice(),
                format!("{resource}.{action}"),
                resource,
                id.as_bytes().as_slice(),
                actor,
                after.to_string(),
                micros
            ],
        );
    }
    tx.commit().expect("commit");
}

/// Raw stage move of `deal` from `from` to `to` at `version`: in one immediate transaction the
/// version-checked update, the stage-history row, the audit entry and the event.
#[allow(clippy::too_many_arguments)]
pub fn move_stage(
    conn: &mut Connection,
    tenant: Uuid,
    owner: Uuid,
    pipeline: Uuid,
    deal: Uuid,
    version: i64,
    from: &str,
    to: &str,
) {
    let tb = tenant.as_bytes().as_slice();
    let db = deal.as_bytes().as_slice();
    let actor = format!("user:{owner}");
    let now = Utc::now();
    let micros = now.timestamp_micros();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
    let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> usize {
        tx.prepare_cached(sql).expect("prepare").execute(p).expect("execute")
    };
    let n = exec(
        "UPDATE deals SET stage = ?3, version = version + 1, updated_at = ?4, closed_at = NULL
         WHERE tenant_id = ?1 AND id = ?2 AND version = ?5",
        params![tb, db, to, micros, version],
    );
    assert_eq!(n, 1, "version check");
    exec(
        "INSERT INTO deal_stage_changes (tenant_id, id, deal_id, pipeline_id, from_stage, to_stage, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![tb, Uuid::now_v7().as_bytes().as_slice(), db, pipeline.as_bytes().as_slice(), from, to, actor, micros],
    );
    let changes = json!({ "before": { "stage": from }, "after": { "stage": to } }).to_string();
    exec(
        AUDIT_INSERT,
        params![
            tb,
            Uuid::now_v7().as_bytes().as_slice(),
            actor,
            "stage_changed",
            "deal",
            db,
            changes,
            micros
        ],
    );
    let payload = json!({
        "id": deal, "name": "Bench deal", "pipeline_id": pipeline, "stage": to, "version": version + 1,
        "updated_at": rfc3339(now), "owner_id": owner, "custom_fields": {},
    })
    .to_string();
    exec(
        OUTBOX_INSERT,
        params![
            tb,
            Uuid::now_v7().as_bytes().as_slice(),
            "deal.stage_changed",
            "deal",
            db,
            actor,
            payload,
            micros
        ],
    );
    tx.commit().expect("commit");
}
