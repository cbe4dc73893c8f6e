//! Point reads (a record by id, a membership) in one round trip instead of two.
//!
//! A scoped read is `BEGIN` with the settings, then the statement: two round trips, which on a
//! loopback VM cost more than the query itself. Here the settings and the statement travel in
//! one simple-protocol message — `SET LOCAL ROLE crm_app; SET LOCAL app.tenant_id = '…';
//! EXECUTE crm_get_leads('…', '…')` — which Postgres runs as one implicit transaction: the
//! settings end with it, or with its failure, as they would at `ROLLBACK`, so Row-Level
//! Security applies (invariant 7) and the pooled connection carries nothing to its next user.
//!
//! The statement is prepared once per connection, lazily: when it is missing (a new
//! connection, or one a host reset with `DISCARD ALL`) it is prepared and the message sent
//! again. So a read is neither parsed nor planned each time — inlining the values into a plain
//! `SELECT` instead was measured and lost 12 % of requests per second under load to parsing and
//! planning. Only UUIDs printed by `uuid` (hex and dashes) are inlined into the message.

use std::sync::LazyLock;

use crm_core::model::Kind;
use crm_core::{Result, TenantId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use crate::error;
use crate::rows::{self, Table};
use crate::store::APP_ROLE;

/// A prepared point read: its name and the statement, keyed by `(tenant_id, $2)`.
pub(crate) struct PointRead {
    name: String,
    prepare: String,
}

impl PointRead {
    /// A live record of `kind` by id; `None` for kinds without a table. Built once per kind:
    /// formatting the column list is a good part of the client's work for a point read.
    pub fn record(kind: Kind) -> Option<&'static PointRead> {
        static READS: LazyLock<Vec<(Kind, PointRead)>> = LazyLock::new(|| {
            crm_core::kind::RECORD_KINDS
                .iter()
                .filter_map(|def| {
                    let table = rows::table_of(def.kind)?;
                    Some((def.kind, PointRead::new(table, "get", "t.id = $2 AND t.deleted_at IS NULL")))
                })
                .collect()
        });
        READS.iter().find(|(k, _)| *k == kind).map(|(_, read)| read)
    }

    /// A membership by user id within the tenant.
    pub fn membership() -> &'static PointRead {
        static READ: LazyLock<PointRead> =
            LazyLock::new(|| PointRead::new(&rows::MEMBERSHIPS, "user_id", "t.user_id = $2"));
        &READ
    }

    fn new(table: &Table, what: &str, condition: &str) -> Self {
        let name = format!("crm_{}_{what}", table.name);
        let prepare = format!(
            "PREPARE {name} (uuid, uuid) AS {} WHERE t.tenant_id = $1 AND {condition}",
            table.select()
        );
        Self { name, prepare }
    }

    /// The row of `tenant` keyed by `key`, read as [`APP_ROLE`] with the tenant set.
    pub async fn fetch(&self, pool: &PgPool, tenant: TenantId, key: Uuid) -> Result<Option<PgRow>> {
        let tenant = tenant.uuid().hyphenated();
        let message = format!(
            "SET LOCAL ROLE {APP_ROLE}; SET LOCAL app.tenant_id = '{tenant}'; \
             EXECUTE {}('{tenant}', '{}')",
            self.name,
            key.hyphenated()
        );
        let mut conn = pool.acquire().await.map_err(error::map)?;
        let mut prepared = false;
        loop {
            match sqlx::raw_sql(AssertSqlSafe(message.as_str())).fetch_all(&mut *conn).await {
                Ok(rows) => return Ok(rows.into_iter().next()),
                Err(e) if !prepared && has_sqlstate(&e, "26000") => {
                    // No such prepared statement on this connection yet.
                    match sqlx::raw_sql(AssertSqlSafe(self.prepare.as_str())).execute(&mut *conn).await {
                        Err(e) if !has_sqlstate(&e, "42P05") => return Err(error::map(e)),
                        _ => prepared = true,
                    }
                }
                Err(e) => return Err(error::map(e)),
            }
        }
    }
}

fn has_sqlstate(err: &sqlx::Error, code: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(code))
}
