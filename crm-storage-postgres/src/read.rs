//! Queries. Each runs inside a scoped transaction (see `store.rs`), so Row-Level Security
//! applies on top of the explicit `tenant_id` filter that every query carries.

use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::kind::Condition;
use crm_core::model::{
    ApiKey, Credential, IdempotencyRecord, LoginFailures, Member, RefreshToken, StageChange, Tenant, User,
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

pub(crate) async fn members(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<Member>> {
    let sql = "SELECT u.id, u.email, u.name, u.created_at, m.role, m.version, m.created_at
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.tenant_id = $1 ORDER BY m.created_at, u.id"
        .to_owned();
    fetch_all(conn, sql, vec![uuid(tenant.uuid())], rows::member).await
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

    /// The clauses, each parenthesised, joined with AND.
    fn sql(&self) -> String {
        let clauses: Vec<String> = self.clauses.iter().map(|c| format!("({c})")).collect();
        clauses.join(" AND ")
    }
}

/// Keeps records whose custom field `key` equals `value` as jsonb (types compared too; `null`
/// also matches a missing field). The key is bound: `->` takes it as a parameter.
fn custom_field(w: &mut Where, key: String, value: serde_json::Value) {
    let key = Val::Text(Some(key));
    if value.is_null() {
        w.and("t.custom_fields -> ? IS NULL OR t.custom_fields -> ? = 'null'::jsonb", [key.clone(), key]);
    } else {
        w.and("t.custom_fields -> ? = ?", [key, Val::Json(value)]);
    }
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<Vec<Entity>> {
    let rows = list_rows(conn, tenant, query).await?;
    rows.iter().map(|row| rows::entity(query.kind, row).map_err(error::map)).collect()
}

/// The driver rows of [`list`], for decoding in place.
pub(crate) async fn list_rows(
    conn: &mut PgConnection,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<Vec<PgRow>> {
    let Some((sql, values)) = list_statement(tenant, query)? else { return Ok(Vec::new()) };
    bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)
}

/// The statement and values of [`list`] (a validation error for a filter the kind does not
/// declare); `None` when nothing can match: a kind that has no
/// table, or a query no stored record can match ([`ListQuery::can_match`]).
fn list_statement(tenant: TenantId, query: &ListQuery) -> Result<Option<(String, Vec<Val>)>> {
    let Some(table) = rows::table_of(query.kind) else { return Ok(None) };
    if !query.can_match() {
        return Ok(None);
    }
    let mut w = Where::new(tenant);
    w.and("t.deleted_at IS NULL", []);
    if !query.search.is_empty() {
        // Every term, rechecked on the record (the term index below finds candidates for one).
        // Terms are lower-case alphanumeric words (crm_core::search), safe inside quotes.
        let expr: Vec<String> = query.search.iter().map(|t| format!("'{}':*", t.replace('\'', ""))).collect();
        w.and("t.search @@ ?::tsquery", [Val::Text(Some(expr.join(" & ")))]);
    }
    for condition in query.conditions()? {
        match condition {
            Condition::Eq(field, value) => {
                // Bound with the column's own type, so the comparison needs no cast.
                let value = field.column_type().and_then(|ty| rows::typed_val(ty, value));
                let value = value
                    .ok_or_else(|| crm_core::Error::internal("a filter value its column cannot hold"))?;
                w.and(&format!("t.{} = ?", field.name), [value]);
            }
            Condition::CreatedFrom(at) => w.and("t.created_at >= ?", [Val::Time(Some(at))]),
            Condition::CreatedBefore(at) => w.and("t.created_at < ?", [Val::Time(Some(at))]),
            Condition::From(field, at) => w.and(&format!("t.{} >= ?", field.name), [Val::Time(Some(at))]),
            Condition::Before(field, at) => w.and(&format!("t.{} < ?", field.name), [Val::Time(Some(at))]),
            Condition::OwnedBy(fields, member) => {
                let either: Vec<String> = fields.iter().map(|f| format!("t.{} = ?", f.name)).collect();
                w.and(&either.join(" OR "), fields.iter().map(|_| uuid(member)));
            }
            Condition::Custom { key, value } => custom_field(&mut w, key, value),
        }
    }
    // A sorted list finds its terms through the `search` column alone and walks its order.
    let sorted = query.order()?.is_some();
    let term = query.search.iter().max_by_key(|t| t.chars().count()).filter(|_| !sorted);
    let Some(term) = term else {
        let order = order(&mut w, query)?;
        let sql = format!("{} WHERE {} ORDER BY {order} LIMIT {}", table.select(), w.sql(), query.limit);
        return Ok(Some((sql, w.values)));
    };
    if let Some(after) = query.after {
        w.and("t.id < ?", [uuid(after)]);
    }
    // The planner cannot tell a rare prefix from a common one (it guesses ~0.5 % of rows), and
    // for a rare one its favourite plan — walking the id index newest first until a page is
    // full — reads every row of a large tenant. So the statement picks its plan as it runs, from
    // what `search_terms` holds for the longest term (likely the rarest); each branch is gated
    // on that, only one runs, and its gate's lookups run only when needed:
    // 1. the term starts one word only (a surname, a company name — the common case): that
    //    word's terms are in id order, so the page is the first records among them that pass
    //    the filters, as cheap for 1M records as for 10k;
    // 2. several words, on at most `SEARCH_CAP` records: look each up by id and sort those
    //    that match every condition;
    // 3. several words on more records (a prefix such as "a"): walk the id index newest
    //    first; with that many matches it meets a page of them soon.
    // Records are looked up by id inside `LATERAL (… OFFSET 0)`, so the planner, which may have
    // no statistics yet after an import, cannot turn the lookups into a filtered scan. The term
    // conditions and the tenant are B-tree comparisons on LEAKPROOF operators, so Row-Level
    // Security lets the index evaluate them (see migration 0004).
    let mut terms = vec![
        Val::Text(Some(query.kind.as_str().into())),
        Val::Text(Some(term.clone())),
        Val::Text(Some(crm_core::search::prefix_successor(term))),
    ];
    let mut after = String::new();
    if let Some(id) = query.after {
        terms.push(uuid(id));
        after = format!(" AND s.record_id < ${}", w.values.len() + terms.len());
    }
    let n = w.values.len();
    let (k, from, to) = (n + 1, n + 2, n + 3);
    let range = format!("s.tenant_id = $1 AND s.kind = ${k} AND s.word >= ${from} AND s.word < ${to}");
    let lookup = format!("LATERAL ({} WHERE {} AND t.id = c.record_id OFFSET 0) l", table.select(), w.sql());
    let sql = format!(
        "WITH v AS MATERIALIZED (SELECT
                 (SELECT s.word FROM search_terms s WHERE {range} ORDER BY s.word LIMIT 1) AS lo,
                 (SELECT s.word FROM search_terms s WHERE {range} ORDER BY s.word DESC LIMIT 1) AS hi),
              m AS MATERIALIZED (SELECT s.record_id FROM search_terms s WHERE {range}{after} LIMIT {probe})
         (SELECT l.* FROM (SELECT s.record_id FROM search_terms s
                           WHERE s.tenant_id = $1 AND s.kind = ${k} AND s.word = (SELECT lo FROM v){after}
                           ORDER BY s.record_id DESC) c, {lookup}
          WHERE (SELECT lo = hi FROM v) ORDER BY c.record_id DESC LIMIT {limit})
         UNION ALL
         (SELECT l.* FROM (SELECT DISTINCT record_id FROM m) c, {lookup}
          WHERE NOT (SELECT lo = hi FROM v) AND (SELECT count(*) FROM m) <= {cap}
          ORDER BY l.id DESC LIMIT {limit})
         UNION ALL
         ({select} WHERE {where_} AND NOT (SELECT lo = hi FROM v) AND (SELECT count(*) FROM m) > {cap}
          ORDER BY t.id DESC LIMIT {limit})",
        select = table.select(),
        where_ = w.sql(),
        probe = SEARCH_CAP + 1,
        cap = SEARCH_CAP,
        limit = query.limit,
    );
    w.values.extend(terms);
    Ok(Some((sql, w.values)))
}

/// The `ORDER BY` of a list, after adding the keyset clause that continues after the last row
/// seen: `(value, id)` in the sort's direction, rows without a value last.
fn order(w: &mut Where, query: &ListQuery) -> Result<String> {
    let Some(sort) = query.order()? else {
        if let Some(after) = query.after {
            w.and("t.id < ?", [uuid(after)]);
        }
        return Ok("t.id DESC".to_owned());
    };
    let column = sort.key.column();
    let (direction, past) = if sort.descending { ("DESC", "<") } else { ("ASC", ">") };
    if let Some(after) = query.after {
        match &sort.after_value {
            // A column that is never null: one row comparison, which an index range serves.
            crm_core::kind::Value::Time(at) if !sort.key.nullable() => {
                w.and(&format!("(t.{column}, t.id) {past} (?, ?)"), [Val::Time(Some(*at)), uuid(after)])
            }
            crm_core::kind::Value::Time(at) => w.and(
                &format!("t.{column} {past} ? OR (t.{column} = ? AND t.id {past} ?) OR t.{column} IS NULL"),
                [Val::Time(Some(*at)), Val::Time(Some(*at)), uuid(after)],
            ),
            _ => w.and(&format!("t.{column} IS NULL AND t.id {past} ?"), [uuid(after)]),
        }
    }
    let nulls = if sort.key.nullable() { " NULLS LAST" } else { "" };
    Ok(format!("t.{column} {direction}{nulls}, t.id {direction}"))
}

/// Term rows a search of several words reads before it walks the id index instead (constant:
/// with a parameter the planner assumes a small limit and scans the table). Fetching costs about
/// one row visit per match, walking about page × rows / matches; they break even near
/// 1.5 × √rows, i.e. here for a tenant of about half a million rows. A record counts once per
/// word the term starts, so the walk may start a little early; it finds the same page.
const SEARCH_CAP: i64 = 1_000;

fn before_clause(w: &mut Where, time_column: &str, before: Option<TimeCursor>) {
    if let Some(c) = before {
        w.and(&format!("(t.{time_column}, t.id) < (?, ?)"), [Val::Time(Some(c.at)), uuid(c.id)]);
    }
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

#[cfg(test)]
mod tests {
    use crm_core::model::{Kind, Lead, NewLead};
    use crm_core::store::ListQuery;
    use crm_core::testkit::{deterministic_crm, tenant};
    use crm_core::{ImportMode, TenantId};
    use serde_json::Value;

    use super::list_statement;
    use crate::rows::bind_all;
    use crate::store::APP_ROLE;

    /// Rows of `relation` a plan read (returned or filtered out), from `EXPLAIN (ANALYZE, FORMAT JSON)`.
    fn rows_read(node: &Value, relation: &str) -> f64 {
        let num = |k: &str| node.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let own = if node.get("Relation Name").and_then(Value::as_str) == Some(relation) {
            (num("Actual Rows") + num("Rows Removed by Filter")) * num("Actual Loops")
        } else {
            0.0
        };
        let children = node.get("Plans").and_then(Value::as_array).into_iter().flatten();
        own + children.map(|c| rows_read(c, relation)).sum::<f64>()
    }

    /// What RLS would otherwise cost: with the match operator not LEAKPROOF, the GIN index could
    /// not look a word up for the application role, and a rare word's search read every row.
    #[tokio::test]
    async fn a_rare_word_is_looked_up_not_scanned_for_under_rls() {
        let Some(store) = crate::testing::fresh_store().await else { return };
        let crm = deterministic_crm((*store).clone(), 1);
        let acme = tenant(&crm, "Acme").await;
        let rows = (0..3_000)
            .map(|i| NewLead {
                last_name: Some(format!("Row {i}")),
                company: Some(if i == 1_234 { "Zyzzyva Labs" } else { "Common Corp" }.into()),
                ..NewLead::default()
            })
            .collect();
        crm.import::<Lead>(&acme.owner_scope, rows, ImportMode::Atomic).await.unwrap();
        let tenant_id: TenantId = acme.owner_scope.tenant_id();

        for plans in ["auto", "force_generic_plan"] {
            let explain = |q: &'static str| {
                let store = &store;
                async move {
                    let mut query = ListQuery::new(Kind::Lead);
                    query.search = vec![q.to_owned()];
                    let (sql, values) = list_statement(tenant_id, &query).unwrap().unwrap();
                    let mut tx = store.pool().begin().await.unwrap();
                    let settings =
                        "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true),
                                set_config('plan_cache_mode', $3, true)";
                    sqlx::query(settings)
                        .bind(APP_ROLE)
                        .bind(tenant_id.uuid().to_string())
                        .bind(plans)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}");
                    let row = bind_all(sqlx::query(sqlx::AssertSqlSafe(explain)), values)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    let plan: Value = sqlx::Row::get(&row, 0);
                    plan[0]["Plan"].clone()
                }
            };
            let rare = explain("zyzz").await;
            assert!(rare.to_string().contains("search_terms_pkey"), "{plans}: {rare}");
            let read = rows_read(&rare, "leads");
            assert!(read <= 2.0, "{plans}: a rare word read {read} leads: {rare}");
            // "common" is on 2,999 leads, one word: its terms, in id order, give the page.
            let common = explain("common").await;
            let (leads, terms) = (rows_read(&common, "leads"), rows_read(&common, "search_terms"));
            assert!(
                (50.0..=60.0).contains(&leads),
                "{plans}: a common word reads a page: {leads} leads read"
            );
            assert!(terms <= 2.0 + 60.0, "{plans}: the range's ends and a page of terms: {terms}");
            // "co" starts two words (common, corp): the id walk finds the page.
            let prefix = explain("co").await;
            let (leads, terms) = (rows_read(&prefix, "leads"), rows_read(&prefix, "search_terms"));
            assert!(
                (50.0..=60.0).contains(&leads),
                "{plans}: a common prefix walks to a page: {leads} leads read"
            );
            assert!(terms <= 1_001.0 + 2.0, "{plans}: the capped count and the range's ends only: {terms}");
        }
    }
}
