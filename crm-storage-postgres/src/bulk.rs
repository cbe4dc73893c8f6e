//! Multi-row inserts. Consecutive inserts into one table go to the server as a single
//! `INSERT INTO t (…) SELECT * FROM UNNEST($1::uuid[], $2::text[], …)` — one array parameter per
//! column, whatever the number of rows — instead of one round trip per row. They run in the
//! commit's transaction, as the application role with the tenant set, so Row-Level Security
//! checks every row exactly as it checks single-row inserts. (`COPY FROM` is not an option:
//! Postgres refuses it on tables with Row-Level Security for roles subject to it.)

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::{Error, Result};
use serde_json::Value as Json;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, Postgres};
use uuid::Uuid;

use crate::error;
use crate::rows::{Table, Val, bind_all};

/// Inserts waiting to be sent: rows of one table, in order.
#[derive(Debug, Default)]
pub(crate) struct Inserts {
    table: Option<&'static Table>,
    rows: Vec<Vec<Val>>,
}

impl Inserts {
    /// Queues a row; rows of another table first send those queued, so the order of the change
    /// set (which foreign keys rely on) is kept.
    pub(crate) async fn push(
        &mut self,
        conn: &mut PgConnection,
        table: &'static Table,
        row: Vec<Val>,
    ) -> Result<()> {
        if self.table.is_some_and(|queued| !std::ptr::eq(queued, table)) {
            self.flush(conn).await?;
        }
        self.table = Some(table);
        self.rows.push(row);
        Ok(())
    }

    /// Sends the queued rows.
    pub(crate) async fn flush(&mut self, conn: &mut PgConnection) -> Result<()> {
        match self.table.take() {
            Some(table) => insert_rows(conn, table, std::mem::take(&mut self.rows)).await,
            None => Ok(()),
        }
    }
}

/// Inserts `rows` into `table` in one statement (a plain prepared insert for a single row).
pub(crate) async fn insert_rows(
    conn: &mut PgConnection,
    table: &'static Table,
    rows: Vec<Vec<Val>>,
) -> Result<()> {
    if rows.len() <= 1 {
        for row in rows {
            bind_all(sqlx::query(table.insert_sql()), row).execute(&mut *conn).await.map_err(error::map)?;
        }
        return Ok(());
    }
    let count = rows.len();
    let columns = transpose(rows)?;
    let sql = unnest_insert(table, &columns, 1);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for column in columns {
        query = column.bind(query);
    }
    let done = query.execute(&mut *conn).await.map_err(error::map)?;
    if done.rows_affected() == count as u64 { Ok(()) } else { Err(mismatch()) }
}

/// Inserts rows into several tables in one statement — one round trip — all but the last as
/// data-modifying `WITH` clauses (a change set's audit entries and outbox events). Every part
/// runs; an error in any fails the whole statement.
pub(crate) async fn insert_tables(
    conn: &mut PgConnection,
    parts: Vec<(&'static Table, Vec<Vec<Val>>)>,
) -> Result<()> {
    let mut parts: Vec<_> = parts.into_iter().filter(|(_, rows)| !rows.is_empty()).collect();
    if parts.len() <= 1 {
        return match parts.pop() {
            Some((table, rows)) => insert_rows(conn, table, rows).await,
            None => Ok(()),
        };
    }
    let mut sql = String::new();
    let mut binds: Vec<Column> = Vec::new();
    let last = parts.len() - 1;
    for (i, (table, rows)) in parts.into_iter().enumerate() {
        let columns = transpose(rows)?;
        let insert = unnest_insert(table, &columns, binds.len() + 1);
        if i < last {
            sql.push_str(if i == 0 { "WITH " } else { ", " });
            sql.push_str(&format!("part{i} AS ({insert})"));
        } else {
            sql.push(' ');
            sql.push_str(&insert);
        }
        binds.extend(columns);
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for column in binds {
        query = column.bind(query);
    }
    query.execute(&mut *conn).await.map_err(error::map)?;
    Ok(())
}

/// The rows as typed columns.
fn transpose(rows: Vec<Vec<Val>>) -> Result<Vec<Column>> {
    let count = rows.len();
    let mut columns: Vec<Column> = match rows.first() {
        Some(first) => first.iter().map(|v| Column::like(v, count)).collect(),
        None => return Ok(Vec::new()),
    };
    for row in rows {
        if row.len() != columns.len() {
            return Err(mismatch());
        }
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value)?;
        }
    }
    Ok(columns)
}

/// `INSERT INTO t (…) SELECT * FROM UNNEST($n::type[], …)`, parameters numbered from `first`.
fn unnest_insert(table: &Table, columns: &[Column], first: usize) -> String {
    let arrays: Vec<String> =
        columns.iter().enumerate().map(|(i, c)| format!("${}::{}", first + i, c.sql_type())).collect();
    format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({})",
        table.name,
        table.columns.join(", "),
        arrays.join(", ")
    )
}

/// One column's values across the rows, typed like the column's [`Val`]s.
enum Column {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Int4(Vec<Option<i32>>),
    Bool(Vec<Option<bool>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    Json(Vec<Json>),
}

impl Column {
    fn like(value: &Val, capacity: usize) -> Self {
        match value {
            Val::Uuid(_) => Column::Uuid(Vec::with_capacity(capacity)),
            Val::Text(_) => Column::Text(Vec::with_capacity(capacity)),
            Val::Int(_) => Column::Int(Vec::with_capacity(capacity)),
            Val::Int4(_) => Column::Int4(Vec::with_capacity(capacity)),
            Val::Bool(_) => Column::Bool(Vec::with_capacity(capacity)),
            Val::Time(_) => Column::Time(Vec::with_capacity(capacity)),
            Val::Date(_) => Column::Date(Vec::with_capacity(capacity)),
            Val::Json(_) => Column::Json(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, value: Val) -> Result<()> {
        match (self, value) {
            (Column::Uuid(c), Val::Uuid(v)) => c.push(v),
            (Column::Text(c), Val::Text(v)) => c.push(v),
            (Column::Int(c), Val::Int(v)) => c.push(v),
            (Column::Int4(c), Val::Int4(v)) => c.push(v),
            (Column::Bool(c), Val::Bool(v)) => c.push(v),
            (Column::Time(c), Val::Time(v)) => c.push(v),
            (Column::Date(c), Val::Date(v)) => c.push(v),
            (Column::Json(c), Val::Json(v)) => c.push(v),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Column::Uuid(_) => "uuid[]",
            Column::Text(_) => "text[]",
            Column::Int(_) => "int8[]",
            Column::Int4(_) => "int4[]",
            Column::Bool(_) => "bool[]",
            Column::Time(_) => "timestamptz[]",
            Column::Date(_) => "date[]",
            Column::Json(_) => "jsonb[]",
        }
    }

    fn bind<'q>(self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        match self {
            Column::Uuid(v) => query.bind(v),
            Column::Text(v) => query.bind(v),
            Column::Int(v) => query.bind(v),
            Column::Int4(v) => query.bind(v),
            Column::Bool(v) => query.bind(v),
            Column::Time(v) => query.bind(v),
            Column::Date(v) => query.bind(v),
            Column::Json(v) => query.bind(v),
        }
    }
}

/// Rows of one table always convert to the same column types; anything else is a bug.
fn mismatch() -> Error {
    Error::internal("rows of a multi-row insert do not line up")
}
