//! Queries. Each runs inside a scoped transaction (see `store.rs`), so Row-Level Security
//! applies on top of the explicit `tenant_id` filter that every query carries.

use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::model::{
    Activity, ActivityTarget, ApiKey, Credential, IdempotencyRecord, Kind, LoginFailures, Member, Membership,
    Pipeline, RefreshToken, StageChange, Tenant, User,
};
use crm_core::store::{Entity, ListQuery, TimeCursor};
use crm_core::{DomainEvent, Result, TenantId, UserId};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::error;
use crate::rows::{self, Val, bind_all};

async fn fetch_all<T>(
    conn: &mut PgConnection,
    sql: String,
    values: Vec<Val>,
    decode: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>> {
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)?;
    rows.iter().map(|r| decode(r).map_err(error::map)).collect()
}

async fn fetch_one<T>(
    conn: &mut PgConnection,
    sql: String,
    values: Vec<Val>,
    decode: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>> {
    let row =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_optional(conn).await.map_err(error::map)?;
    row.as_ref().map(|r| decode(r).map_err(error::map)).transpose()
}

fn uuid(id: Uuid) -> Val {
    Val::Uuid(Some(id))
}

pub(crate) async fn tenant_by(conn: &mut PgConnection, column: &str, value: Val) -> Result<Option<Tenant>> {
    let sql = format!("{} WHERE t.{column} = $1", rows::TENANTS.select());
    fetch_one(conn, sql, vec![value], rows::tenant).await
}

pub(crate) async fn user_by(conn: &mut PgConnection, column: &str, value: Val) -> Result<Option<User>> {
    let sql = format!("{} WHERE t.{column} = $1", rows::USERS.select());
    fetch_one(conn, sql, vec![value], rows::user).await
}

pub(crate) async fn membership(
    conn: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<Membership>> {
    let sql = format!("{} WHERE t.tenant_id = $1 AND t.user_id = $2", rows::MEMBERSHIPS.select());
    fetch_one(conn, sql, vec![uuid(tenant.uuid()), uuid(user.uuid())], rows::membership).await
}

pub(crate) async fn members(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<Member>> {
    let sql = "SELECT u.id, u.email, u.name, u.created_at, m.role, m.version, m.created_at
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.tenant_id = $1 ORDER BY m.created_at, u.id"
        .to_owned();
    fetch_all(conn, sql, vec![uuid(tenant.uuid())], rows::member).await
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> Result<Option<Entity>> {
    let Some(table) = rows::table_of(kind) else { return Ok(None) };
    let sql = format!("{} WHERE t.tenant_id = $1 AND t.id = $2 AND t.deleted_at IS NULL", table.select());
    fetch_one(conn, sql, vec![uuid(tenant.uuid()), uuid(id)], |row| rows::entity(kind, row)).await
}

pub(crate) async fn pipelines(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<Pipeline>> {
    let sql = format!(
        "{} WHERE t.tenant_id = $1 AND t.deleted_at IS NULL ORDER BY t.created_at, t.id",
        rows::PIPELINES.select()
    );
    fetch_all(conn, sql, vec![uuid(tenant.uuid())], rows::pipeline).await
}

pub(crate) async fn stage_history(
    conn: &mut PgConnection,
    tenant: TenantId,
    deal: Uuid,
) -> Result<Vec<StageChange>> {
    let sql = format!(
        "{} WHERE t.tenant_id = $1 AND t.deal_id = $2 ORDER BY t.at, t.id",
        rows::STAGE_CHANGES.select()
    );
    fetch_all(conn, sql, vec![uuid(tenant.uuid()), uuid(deal)], rows::stage_change).await
}

/// Builds a `WHERE` clause with numbered parameters.
struct Where {
    clauses: Vec<String>,
    values: Vec<Val>,
}

impl Where {
    fn new(tenant: TenantId) -> Self {
        Self { clauses: vec!["t.tenant_id = $1".into()], values: vec![uuid(tenant.uuid())] }
    }

    /// Adds `clause`, whose `?` placeholders become `$n` in order.
    fn and(&mut self, clause: &str, values: impl IntoIterator<Item = Val>) {
        let mut out = String::new();
        let mut values = values.into_iter();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                self.values.push(values.next().unwrap_or(Val::Text(None)));
                out.push_str(&format!("${}", self.values.len()));
            }
            out.push_str(part);
        }
        self.clauses.push(out);
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

fn target_column(kind: Kind) -> &'static str {
    match kind {
        Kind::Lead => "lead_id",
        Kind::Contact => "contact_id",
        Kind::Account => "account_id",
        _ => "deal_id",
    }
}

/// `search_index`: whether a text search may go through the search index (see
/// [`crate::PgStore`]'s `search_index_usable`); without it the id walk is the only plan.
pub(crate) async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    query: &ListQuery,
    search_index: bool,
) -> Result<Vec<Entity>> {
    let Some(table) = rows::table_of(query.kind) else { return Ok(Vec::new()) };
    let f = &query.filter;
    let mut w = Where::new(tenant);
    w.and("t.deleted_at IS NULL", []);
    if !query.search.is_empty() {
        // Terms are lower-case alphanumeric words (crm_core::search), safe inside quotes.
        let expr: Vec<String> = query.search.iter().map(|t| format!("'{}':*", t.replace('\'', ""))).collect();
        w.and("t.search @@ ?::tsquery", [Val::Text(Some(expr.join(" & ")))]);
    }
    if let Some(status) = f.status {
        w.and("t.status = ?", [Val::Text(Some(status.as_str().into()))]);
    }
    if let Some(owner) = f.owner_id {
        w.and("t.owner_id = ?", [uuid(owner.uuid())]);
    }
    if let Some(pipeline) = f.pipeline_id {
        w.and("t.pipeline_id = ?", [uuid(pipeline.uuid())]);
    }
    if let Some(stage) = &f.stage {
        w.and("t.stage = ?", [Val::Text(Some(stage.clone()))]);
    }
    if let Some(account) = f.account_id {
        w.and("t.account_id = ?", [uuid(account.uuid())]);
    }
    if let Some(contact) = f.contact_id {
        w.and("t.contact_id = ?", [uuid(contact.uuid())]);
    }
    if let Some(target) = f.target {
        let (kind, id) = target.parts();
        w.and(&format!("t.{} = ?", target_column(kind)), [uuid(id)]);
    }
    if let Some(kind) = f.activity_kind {
        w.and("t.kind = ?", [Val::Text(Some(kind.as_str().into()))]);
    }
    if let Some(after) = f.created_after {
        w.and("t.created_at >= ?", [Val::Time(Some(after))]);
    }
    if let Some(before) = f.created_before {
        w.and("t.created_at < ?", [Val::Time(Some(before))]);
    }
    for (name, value) in &f.custom_fields {
        let name = Val::Text(Some(name.clone()));
        if value.is_null() {
            w.and(
                "(t.custom_fields -> ? IS NULL OR t.custom_fields -> ? = 'null'::jsonb)",
                [name.clone(), name],
            );
        } else {
            w.and("t.custom_fields -> ? = ?", [name, Val::Json(value.clone())]);
        }
    }
    if let Some(after) = query.after {
        w.and("t.id < ?", [uuid(after)]);
    }
    let kind = query.kind;
    let sql = if query.search.is_empty() || !search_index {
        format!("{} WHERE {} ORDER BY t.id DESC LIMIT {}", table.select(), w.sql(), query.limit)
    } else {
        // The planner cannot tell a rare prefix from a common one (it guesses ~0.5 % of rows), and
        // for a rare one its favourite plan — walking the id index newest first until a page is
        // full — reads every row of a large tenant. So the matches are fetched through the search
        // index first, up to a cap, and sorted; only past the cap does the walk run (a gated
        // branch of the same statement), and then it meets a page of matches soon.
        format!(
            "WITH m AS MATERIALIZED ({select} WHERE {where_} LIMIT {probe})
             (SELECT m.* FROM m WHERE (SELECT count(*) FROM m) <= {cap} ORDER BY m.id DESC LIMIT {limit})
             UNION ALL
             ({select} WHERE {where_} AND (SELECT count(*) FROM m) > {cap} ORDER BY t.id DESC LIMIT {limit})",
            select = table.select(),
            where_ = w.sql(),
            probe = SEARCH_CAP + 1,
            cap = SEARCH_CAP,
            limit = query.limit,
        )
    };
    fetch_all(conn, sql, w.values, |row| rows::entity(kind, row)).await
}

/// Matches a search fetches through the search index before it walks the id index instead
/// (constant: with a parameter the planner assumes a small limit and scans the table). Fetching
/// costs about one row visit per match, walking about page × rows / matches; they break even near
/// 1.5 × √rows, i.e. here for a tenant of about half a million rows.
const SEARCH_CAP: i64 = 1_000;

fn before_clause(w: &mut Where, time_column: &str, before: Option<TimeCursor>) {
    if let Some(c) = before {
        w.and(&format!("(t.{time_column}, t.id) < (?, ?)"), [Val::Time(Some(c.at)), uuid(c.id)]);
    }
}

pub(crate) async fn activities_for(
    conn: &mut PgConnection,
    tenant: TenantId,
    target: ActivityTarget,
    before: Option<TimeCursor>,
    limit: u32,
) -> Result<Vec<Activity>> {
    let (kind, id) = target.parts();
    let mut w = Where::new(tenant);
    w.and(&format!("t.{} = ?", target_column(kind)), [uuid(id)]);
    w.and("t.deleted_at IS NULL", []);
    before_clause(&mut w, "occurred_at", before);
    let sql = format!(
        "{} WHERE {} ORDER BY t.occurred_at DESC, t.id DESC LIMIT {limit}",
        rows::ACTIVITIES.select(),
        w.sql()
    );
    fetch_all(conn, sql, w.values, rows::activity).await
}

pub(crate) async fn audit_log(
    conn: &mut PgConnection,
    tenant: TenantId,
    query: &AuditQuery,
    before: Option<TimeCursor>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut w = Where::new(tenant);
    if let Some(actor) = query.actor {
        w.and("t.actor = ?", [Val::Text(Some(rows::actor_text(&crm_core::Actor::User(actor))))]);
    }
    if let Some(resource) = query.resource {
        w.and("t.resource = ?", [Val::Text(Some(resource.as_str().into()))]);
    }
    if let Some(id) = query.resource_id {
        w.and("t.resource_id = ?", [uuid(id)]);
    }
    if let Some(from) = query.from {
        w.and("t.at >= ?", [Val::Time(Some(from))]);
    }
    if let Some(to) = query.to {
        w.and("t.at < ?", [Val::Time(Some(to))]);
    }
    before_clause(&mut w, "at", before);
    let sql =
        format!("{} WHERE {} ORDER BY t.at DESC, t.id DESC LIMIT {limit}", rows::AUDIT.select(), w.sql());
    fetch_all(conn, sql, w.values, rows::audit_entry).await
}

pub(crate) async fn outbox(
    conn: &mut PgConnection,
    tenant: TenantId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<DomainEvent>> {
    let mut w = Where::new(tenant);
    if let Some(after) = after {
        w.and("t.id > ?", [uuid(after)]);
    }
    let sql = format!("{} WHERE {} ORDER BY t.id LIMIT {limit}", rows::OUTBOX.select(), w.sql());
    fetch_all(conn, sql, w.values, rows::event).await
}

pub(crate) async fn credential(conn: &mut PgConnection, user: UserId) -> Result<Option<Credential>> {
    let sql = format!("{} WHERE t.user_id = $1", rows::CREDENTIALS.select());
    fetch_one(conn, sql, vec![uuid(user.uuid())], rows::credential).await
}

pub(crate) async fn refresh_token(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<RefreshToken>> {
    let sql = format!("{} WHERE t.tenant_id = $1 AND t.id = $2", rows::REFRESH_TOKENS.select());
    fetch_one(conn, sql, vec![uuid(tenant.uuid()), uuid(id)], rows::refresh_token).await
}

pub(crate) async fn api_key(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Option<ApiKey>> {
    let sql = format!("{} WHERE t.tenant_id = $1 AND t.id = $2", rows::API_KEYS.select());
    fetch_one(conn, sql, vec![uuid(tenant.uuid()), uuid(id)], rows::api_key).await
}

pub(crate) async fn api_keys(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let sql = format!("{} WHERE t.tenant_id = $1 ORDER BY t.created_at, t.id", rows::API_KEYS.select());
    fetch_all(conn, sql, vec![uuid(tenant.uuid())], rows::api_key).await
}

pub(crate) async fn login_failures(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: &str,
) -> Result<Option<LoginFailures>> {
    let sql = "SELECT count, last_at FROM login_failures WHERE tenant_id = $1 AND key = $2".to_owned();
    fetch_one(conn, sql, vec![uuid(tenant.uuid()), Val::Text(Some(key.to_owned()))], |row| {
        Ok(LoginFailures { count: row.try_get(0)?, last_at: row.try_get(1)? })
    })
    .await
}

pub(crate) async fn idempotency_record(
    conn: &mut PgConnection,
    tenant: TenantId,
    principal: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    let sql = "SELECT tenant_id, principal, key, fingerprint, token, created_at, locked_until, expires_at,
               response FROM idempotency_keys WHERE tenant_id = $1 AND principal = $2 AND key = $3"
        .to_owned();
    let values =
        vec![uuid(tenant.uuid()), Val::Text(Some(principal.to_owned())), Val::Text(Some(key.to_owned()))];
    fetch_one(conn, sql, values, rows::idempotency_record).await
}
