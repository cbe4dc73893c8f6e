//! Queries. Every tenant-owned query filters on `tenant_id` first: its indexes lead with it.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

use crm_core::audit::{AuditEntry, AuditQuery};
use crm_core::kind::Condition;
use crm_core::model::{
    ApiKey, Credential, IdempotencyRecord, Kind, LoginFailures, Member, Membership, RefreshToken,
    StageChange, Tenant, User,
};
use crm_core::store::{Entity, ListQuery, TimeCursor};
use crm_core::{DomainEvent, Result, TenantId, UserId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use uuid::Uuid;

use crate::error;
use crate::rows::{self, Table};

fn query_rows<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    decode: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(error::map)?;
    let rows = stmt.query_map(params_from_iter(params), decode).map_err(error::map)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(error::map)
}

fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    decode: impl FnOnce(&Row) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(error::map)?;
    stmt.query_row(params_from_iter(params), decode).optional().map_err(error::map)
}

pub(crate) fn tenant_by(conn: &Connection, column: &str, value: Value) -> Result<Option<Tenant>> {
    let sql = format!("{} WHERE {column} = ?1", rows::TENANTS.select());
    query_one(conn, &sql, vec![value], rows::tenant)
}

pub(crate) fn user_by(conn: &Connection, column: &str, value: Value) -> Result<Option<User>> {
    let sql = format!("{} WHERE {column} = ?1", rows::USERS.select());
    query_one(conn, &sql, vec![value], rows::user)
}

pub(crate) fn membership(conn: &Connection, tenant: TenantId, user: UserId) -> Result<Option<Membership>> {
    let sql = format!("{} WHERE tenant_id = ?1 AND user_id = ?2", rows::MEMBERSHIPS.select());
    query_one(conn, &sql, vec![rows::uuid(tenant.uuid()), rows::uuid(user.uuid())], rows::membership)
}

pub(crate) fn members(conn: &Connection, tenant: TenantId) -> Result<Vec<Member>> {
    let sql = "SELECT u.id, u.email, u.name, u.created_at, m.role, m.version, m.created_at
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.tenant_id = ?1 ORDER BY m.created_at, u.id";
    query_rows(conn, sql, vec![rows::uuid(tenant.uuid())], |row| {
        let user = rows::user(row)?;
        let role: String = row.get(4)?;
        Ok(Member {
            user,
            role: crm_core::Role::parse(&role).ok_or(rusqlite::Error::InvalidQuery)?,
            version: row.get(5)?,
            joined_at: chrono::DateTime::from_timestamp_micros(row.get(6)?).unwrap_or_default(),
        })
    })
}

pub(crate) fn get(conn: &Connection, tenant: TenantId, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
    let Some(table) = rows::table_of(kind) else { return Ok(None) };
    // Built once per table: formatting the column list took a good part of a point read.
    static SQL: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
        crm_core::kind::RECORD_KINDS
            .iter()
            .filter_map(|def| rows::table_of(def.kind))
            .map(|t| {
                (t.name, format!("{} WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL", t.select()))
            })
            .collect()
    });
    let sql = SQL.get(table.name).ok_or_else(|| crm_core::Error::internal("no point read for this table"))?;
    query_one(conn, sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id)], |row| rows::entity(kind, row))
}

pub(crate) fn stage_history(conn: &Connection, tenant: TenantId, deal: Uuid) -> Result<Vec<StageChange>> {
    let sql =
        format!("{} WHERE tenant_id = ?1 AND deal_id = ?2 ORDER BY at, id", rows::STAGE_CHANGES.select());
    query_rows(conn, &sql, vec![rows::uuid(tenant.uuid()), rows::uuid(deal)], rows::stage_change)
}

/// Builds a `WHERE` clause with numbered parameters.
#[derive(Clone)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    fn new(tenant: TenantId) -> Self {
        Self { clauses: vec!["t.tenant_id = ?1".into()], params: vec![rows::uuid(tenant.uuid())] }
    }

    /// Adds `clause`, whose `?` placeholders are numbered in order.
    fn and(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) {
        let mut out = String::new();
        let mut values = values.into_iter();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                self.params.push(values.next().unwrap_or(Value::Null));
                out.push_str(&format!("?{}", self.params.len()));
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

pub(crate) fn list(conn: &Connection, tenant: TenantId, query: &ListQuery) -> Result<Vec<Entity>> {
    let kind = query.kind;
    list_with(conn, tenant, query, &mut |row| rows::entity(kind, row))
}

/// The rows of a list, each turned into a `T` by `decode` as it is read.
pub(crate) fn list_with<T>(
    conn: &Connection,
    tenant: TenantId,
    query: &ListQuery,
    decode: &mut dyn FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let Some(table) = rows::table_of(query.kind) else { return Ok(Vec::new()) };
    if !query.can_match() {
        return Ok(Vec::new());
    }
    let mut w = Where::new(tenant);
    w.and("t.deleted_at IS NULL", []);
    let sorted = query.order()?.is_some();
    // The longest term drives the search through `search_terms` (see below); a sorted list
    // checks every term on the record and walks its order instead.
    let driving = query.search.iter().max_by_key(|t| t.chars().count()).filter(|_| !sorted);
    // Every term must start a word of the record: `search_words` is its words, space-separated.
    // The driving term is checked only by the plan that does not find it through its words.
    for term in query.search.iter().filter(|t| Some(*t) != driving) {
        starts_a_word(&mut w, term);
    }
    for condition in query.conditions()? {
        match condition {
            Condition::Eq(field, value) => w.and(&format!("t.{} = ?", field.name), [rows::sql_value(value)]),
            Condition::CreatedFrom(at) => w.and("t.created_at >= ?", [rows::time(at)]),
            Condition::CreatedBefore(at) => w.and("t.created_at < ?", [rows::time(at)]),
            Condition::From(field, at) => w.and(&format!("t.{} >= ?", field.name), [rows::time(at)]),
            Condition::Before(field, at) => w.and(&format!("t.{} < ?", field.name), [rows::time(at)]),
            Condition::OwnedBy(fields, member) => {
                let either: Vec<String> = fields.iter().map(|f| format!("t.{} = ?", f.name)).collect();
                w.and(&either.join(" OR "), fields.iter().map(|_| rows::uuid(member)));
            }
            Condition::Custom { key, value } => custom_field(&mut w, &key, &value),
        }
    }
    let Some(term) = driving else {
        let order = order(&mut w, query)?;
        return page(conn, table, query, w, &order, None, decode);
    };
    if let Some(after) = query.after {
        w.and("t.id < ?", [rows::uuid(after)]);
    }
    // The usual search — a surname, a company — names one word: try that plan first, in one
    // statement that finds the word itself (and finds nothing when the term starts several).
    let found = one_word_page(conn, table, query, w.clone(), term, decode)?;
    if !found.is_empty() {
        return Ok(found);
    }
    match search_plan(conn, tenant, table, query.kind, term)? {
        SearchPlan::Nothing | SearchPlan::OneWord => Ok(Vec::new()),
        // Few matches: fetch them by id and sort them.
        SearchPlan::Few(ids) => {
            w.and("t.id IN rarray(?)", [Value::Null]);
            let at = w.params.len() - 1;
            page(conn, table, query, w, NEWEST, Some((at, Rc::new(ids))), decode)
        }
        // Many, under several words: walking the id index newest first meets a page soon.
        SearchPlan::Walk => {
            starts_a_word(&mut w, term);
            page(conn, table, query, w, NEWEST, None, decode)
        }
    }
}

/// The default list order.
const NEWEST: &str = "t.id DESC";

/// The `ORDER BY` of a list, after adding the keyset clause that continues after the last row
/// seen: `(value, id)` in the sort's direction, rows without a value last.
fn order(w: &mut Where, query: &ListQuery) -> Result<String> {
    let Some(sort) = query.order()? else {
        if let Some(after) = query.after {
            w.and("t.id < ?", [rows::uuid(after)]);
        }
        return Ok(NEWEST.to_owned());
    };
    let column = sort.key.column();
    let (direction, past) = if sort.descending { ("DESC", "<") } else { ("ASC", ">") };
    if let Some(after) = query.after {
        match rows::sql_value(sort.after_value.clone()) {
            Value::Null => w.and(&format!("t.{column} IS NULL AND t.id {past} ?"), [rows::uuid(after)]),
            // A column that is never null: one row comparison, which an index range serves.
            value if !sort.key.nullable() => {
                w.and(&format!("(t.{column}, t.id) {past} (?, ?)"), [value, rows::uuid(after)])
            }
            value => w.and(
                &format!("t.{column} {past} ? OR (t.{column} = ? AND t.id {past} ?) OR t.{column} IS NULL"),
                [value.clone(), value, rows::uuid(after)],
            ),
        }
    }
    let nulls = if sort.key.nullable() { " NULLS LAST" } else { "" };
    Ok(format!("t.{column} {direction}{nulls}, t.id {direction}"))
}

/// Keeps records whose custom field `name` equals `value`, JSON types compared too (`true` is
/// not `1`, `"10"` is not `10`; `null` also matches a missing field). The JSON path is bound,
/// never formatted into the statement: `$.` and the name as a JSON string.
fn custom_field(w: &mut Where, name: &str, value: &serde_json::Value) {
    let path = || Value::Text(format!("$.{}", serde_json::Value::from(name)));
    let typed = |types: &str| format!("json_type(t.custom_fields, ?) IN ({types})");
    match value {
        serde_json::Value::Null => w.and(&format!("coalesce({}, 1)", typed("'null'")), [path()]),
        serde_json::Value::Bool(true) => w.and(&typed("'true'"), [path()]),
        serde_json::Value::Bool(false) => w.and(&typed("'false'"), [path()]),
        serde_json::Value::Number(n) => {
            let v = n.as_i64().map_or_else(|| Value::Real(n.as_f64().unwrap_or(f64::NAN)), Value::Integer);
            let clause = format!("{} AND json_extract(t.custom_fields, ?) = ?", typed("'integer', 'real'"));
            w.and(&clause, [path(), path(), v]);
        }
        serde_json::Value::String(s) => {
            let clause = format!("{} AND json_extract(t.custom_fields, ?) = ?", typed("'text'"));
            w.and(&clause, [path(), path(), Value::Text(s.clone())]);
        }
        other => {
            let json = Value::Text(other.to_string());
            w.and("json_extract(t.custom_fields, ?) = json(?)", [path(), json]);
        }
    }
}

/// Keeps records with a word that starts with `term`.
fn starts_a_word(w: &mut Where, term: &str) {
    w.and("instr(' ' || t.search_words, ' ' || ?) > 0", [Value::Text(term.to_owned())]);
}

/// A page of `table` in `order`, `array` bound at its parameter index (`rarray(?)`).
fn page<T>(
    conn: &Connection,
    table: &Table,
    query: &ListQuery,
    w: Where,
    order: &str,
    array: Option<(usize, rusqlite::vtab::array::Array)>,
    decode: &mut dyn FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let sql = format!(
        "SELECT {} FROM {} t WHERE {} ORDER BY {order} LIMIT ?{}",
        table.aliased_columns(),
        table.name,
        w.sql(),
        w.params.len() + 1
    );
    run_page(conn, &sql, query, w.params, array, decode)
}

/// The page when the term starts exactly one word: that word's terms come in id order, so the
/// page is the first records among them that pass the filters (CROSS JOIN: terms drive,
/// records follow). Empty when the term starts no word or several.
fn one_word_page<T>(
    conn: &Connection,
    table: &Table,
    query: &ListQuery,
    mut w: Where,
    term: &str,
    decode: &mut dyn FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    w.params.push(Value::Text(query.kind.as_str().into()));
    let k = w.params.len();
    w.params.push(Value::Text(term.to_owned()));
    w.params.push(Value::Text(crm_core::search::prefix_successor(term)));
    let range = term_range(k);
    let first = format!("(SELECT word FROM search_terms WHERE {range} ORDER BY word LIMIT 1)");
    let last = format!("(SELECT word FROM search_terms WHERE {range} ORDER BY word DESC LIMIT 1)");
    w.clauses.push(format!("s.tenant_id = ?1 AND s.kind = ?{k} AND s.word = {first} AND {first} = {last}"));
    if let Some(after) = query.after {
        w.and("s.record_id < ?", [rows::uuid(after)]);
    }
    let sql = format!(
        "SELECT {} FROM search_terms s CROSS JOIN {} t ON t.tenant_id = s.tenant_id AND t.id = s.record_id
         WHERE {} ORDER BY s.record_id DESC LIMIT ?{}",
        table.aliased_columns(),
        table.name,
        w.sql(),
        w.params.len() + 1
    );
    run_page(conn, &sql, query, w.params, None, decode)
}

/// The `search_terms` rows of the tenant (`?1`) whose word a term starts: the kind, the term and
/// its successor are parameters `k`, `k + 1` and `k + 2`.
fn term_range(k: usize) -> String {
    format!("tenant_id = ?1 AND kind = ?{k} AND word >= ?{} AND word < ?{}", k + 1, k + 2)
}

fn run_page<T>(
    conn: &Connection,
    sql: &str,
    query: &ListQuery,
    mut params: Vec<Value>,
    array: Option<(usize, rusqlite::vtab::array::Array)>,
    decode: &mut dyn FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    params.push(Value::Integer(query.limit.into()));
    let mut bound: Vec<&dyn rusqlite::ToSql> = params.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
    if let Some((at, array)) = &array {
        bound[*at] = array;
    }
    let mut stmt = conn.prepare_cached(sql).map_err(error::map)?;
    let rows = stmt.query_map(&bound[..], |row| decode(row)).map_err(error::map)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(error::map)
}

/// How a search finds its page, from what `search_terms` holds for its longest term.
enum SearchPlan {
    /// No word starts with the term.
    Nothing,
    /// Exactly one word does (see [`one_word_page`]).
    OneWord,
    /// Several words do, on these few records (ids, possibly repeated).
    Few(Vec<Value>),
    /// Several words do, on many records.
    Walk,
}

/// Chooses the plan: the first and last word the term starts (two index probes, one statement),
/// then, if they differ, the matching records up to a cap. Fetching matches costs about one row
/// visit each; walking the id index, about page × rows / matches visits until a page is full.
/// They break even near 1.5 × √rows, so that is the cap (with `rows` the table's largest rowid,
/// all tenants together); either way a search visits at most a few √rows rows.
fn search_plan(
    conn: &Connection,
    tenant: TenantId,
    table: &Table,
    kind: Kind,
    term: &str,
) -> Result<SearchPlan> {
    let range = term_range(2);
    let params = || {
        vec![
            rows::uuid(tenant.uuid()),
            Value::Text(kind.as_str().into()),
            Value::Text(term.to_owned()),
            Value::Text(crm_core::search::prefix_successor(term)),
        ]
    };
    let sql = format!(
        "SELECT (SELECT word FROM search_terms WHERE {range} ORDER BY word LIMIT 1),
                (SELECT word FROM search_terms WHERE {range} ORDER BY word DESC LIMIT 1)"
    );
    let ends = query_one(conn, &sql, params(), |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let Some((Some(first), last)) = ends else { return Ok(SearchPlan::Nothing) };
    if last.as_deref() == Some(first.as_str()) {
        return Ok(SearchPlan::OneWord);
    }
    let rows: i64 = conn
        .prepare_cached(&format!("SELECT coalesce(max(rowid), 0) FROM {}", table.name))
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(error::map)?;
    let cap = (1.5 * (rows as f64).sqrt()).max(100.0) as i64;
    // Reading stops past the cap: a common prefix is not read to the end.
    let sql = format!("SELECT record_id FROM search_terms WHERE {range} LIMIT ?5");
    let mut values = params();
    values.push(Value::Integer(cap + 1));
    let ids = query_rows(conn, &sql, values, |r| r.get::<_, Value>(0))?;
    Ok(if ids.len() as i64 <= cap { SearchPlan::Few(ids) } else { SearchPlan::Walk })
}

fn before_clause(w: &mut Where, time_column: &str, before: Option<TimeCursor>) {
    if let Some(c) = before {
        w.and(&format!("(t.{time_column}, t.id) < (?, ?)"), [rows::time(c.at), rows::uuid(c.id)]);
    }
}

pub(crate) fn audit_log(
    conn: &Connection,
    tenant: TenantId,
    query: &AuditQuery,
    before: Option<TimeCursor>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut w = Where::new(tenant);
    if let Some(actor) = query.actor {
        w.and("t.actor = ?", [rows::actor(&crm_core::Actor::User(actor))]);
    }
    if let Some(resource) = query.resource {
        w.and("t.resource = ?", [Value::Text(resource.as_str().into())]);
    }
    if let Some(id) = query.resource_id {
        w.and("t.resource_id = ?", [rows::uuid(id)]);
    }
    if let Some(from) = query.from {
        w.and("t.at >= ?", [rows::time(from)]);
    }
    if let Some(to) = query.to {
        w.and("t.at < ?", [rows::time(to)]);
    }
    before_clause(&mut w, "at", before);
    let sql = format!(
        "{} t WHERE {} ORDER BY t.at DESC, t.id DESC LIMIT {limit}",
        select_aliased(&rows::AUDIT),
        w.sql()
    );
    query_rows(conn, &sql, w.params, rows::audit_entry)
}

pub(crate) fn outbox(
    conn: &Connection,
    tenant: TenantId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<DomainEvent>> {
    let mut w = Where::new(tenant);
    if let Some(after) = after {
        w.and("t.id > ?", [rows::uuid(after)]);
    }
    let sql = format!("{} t WHERE {} ORDER BY t.id LIMIT {limit}", select_aliased(&rows::OUTBOX), w.sql());
    query_rows(conn, &sql, w.params, rows::event)
}

/// `SELECT t.<columns> FROM <table>` — the caller appends the alias `t`.
fn select_aliased(table: &Table) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| format!("t.{c}")).collect();
    format!("SELECT {} FROM {}", cols.join(", "), table.name)
}

pub(crate) fn credential(conn: &Connection, user: UserId) -> Result<Option<Credential>> {
    let sql = format!("{} WHERE user_id = ?1", rows::CREDENTIALS.select());
    query_one(conn, &sql, vec![rows::uuid(user.uuid())], rows::credential)
}

pub(crate) fn refresh_token(conn: &Connection, tenant: TenantId, id: Uuid) -> Result<Option<RefreshToken>> {
    let sql = format!("{} WHERE tenant_id = ?1 AND id = ?2", rows::REFRESH_TOKENS.select());
    query_one(conn, &sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id)], rows::refresh_token)
}

pub(crate) fn api_key(conn: &Connection, tenant: TenantId, id: Uuid) -> Result<Option<ApiKey>> {
    let sql = format!("{} WHERE tenant_id = ?1 AND id = ?2", rows::API_KEYS.select());
    query_one(conn, &sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id)], rows::api_key)
}

pub(crate) fn api_keys(conn: &Connection, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let sql = format!("{} WHERE tenant_id = ?1 ORDER BY created_at, id", rows::API_KEYS.select());
    query_rows(conn, &sql, vec![rows::uuid(tenant.uuid())], rows::api_key)
}

pub(crate) fn login_failures(
    conn: &Connection,
    tenant: TenantId,
    key: &str,
) -> Result<Option<LoginFailures>> {
    let sql = "SELECT count, last_at FROM login_failures WHERE tenant_id = ?1 AND key = ?2";
    query_one(conn, sql, vec![rows::uuid(tenant.uuid()), Value::Text(key.to_owned())], |row| {
        let micros: i64 = row.get(1)?;
        Ok(LoginFailures {
            count: row.get(0)?,
            last_at: chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default(),
        })
    })
}

pub(crate) fn idempotency_record(
    conn: &Connection,
    tenant: TenantId,
    principal: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    let sql = "SELECT tenant_id, principal, key, fingerprint, token, created_at, locked_until, expires_at,
               response FROM idempotency_keys WHERE tenant_id = ?1 AND principal = ?2 AND key = ?3";
    let params =
        vec![rows::uuid(tenant.uuid()), Value::Text(principal.to_owned()), Value::Text(key.to_owned())];
    query_one(conn, sql, params, rows::idempotency_record)
}
