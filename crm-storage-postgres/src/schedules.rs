//! Cron schedules on Postgres (`crm_core::schedule`): managed per tenant as the application
//! role; read across tenants and fired as `crm_worker`, by compare-and-set on `next_run_at`
//! in the transaction that enqueues the occurrence's job.

use chrono::{DateTime, Utc};
use crm_core::job::Job;
use crm_core::schedule::Schedule;
use crm_core::{Result, TenantId};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::error;
use crate::jobs::{self, execute};
use crate::rows::{self, Val, bind_all};

async fn select(conn: &mut PgConnection, sql: String, values: Vec<Val>) -> Result<Vec<Schedule>> {
    let found =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)?;
    found.iter().map(|r| rows::schedule(r).map_err(error::map)).collect()
}

/// Inserts or replaces `schedule`, keeping a replaced one's `created_at`.
pub(crate) async fn put(conn: &mut PgConnection, schedule: &Schedule) -> Result<()> {
    let sql = format!(
        "INSERT INTO job_schedules ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, name) DO UPDATE SET cron = excluded.cron, job_type = excluded.job_type,
             payload = excluded.payload, next_run_at = excluded.next_run_at, updated_at = excluded.updated_at",
        rows::SCHEDULE_COLUMNS
    );
    execute(conn, sql, rows::schedule_row(schedule)).await.map(drop)
}

/// `tenant`'s schedules, by name.
pub(crate) async fn list(conn: &mut PgConnection, tenant: TenantId) -> Result<Vec<Schedule>> {
    let sql = format!(
        "SELECT {} FROM job_schedules WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"",
        rows::SCHEDULE_COLUMNS
    );
    select(conn, sql, vec![Val::Uuid(Some(tenant.uuid()))]).await
}

/// Deletes `tenant`'s schedule `name`.
pub(crate) async fn delete(conn: &mut PgConnection, tenant: TenantId, name: &str) -> Result<bool> {
    let sql = "DELETE FROM job_schedules WHERE tenant_id = $1 AND name = $2".to_owned();
    let values = vec![Val::Uuid(Some(tenant.uuid())), Val::Text(Some(name.to_owned()))];
    Ok(execute(conn, sql, values).await? == 1)
}

/// Every tenant's schedules due at `now`, earliest first (as `crm_worker`).
pub(crate) async fn due(conn: &mut PgConnection, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
    let sql = format!(
        "SELECT {} FROM job_schedules WHERE next_run_at <= $1
         ORDER BY next_run_at, tenant_id, name COLLATE \"C\" LIMIT $2",
        rows::SCHEDULE_COLUMNS
    );
    select(conn, sql, vec![Val::Time(Some(now)), Val::Int(Some(limit.into()))]).await
}

/// Moves `due` on to `next` if it is still as read, and enqueues its occurrence `job` (as
/// `crm_worker`, in the caller's transaction).
pub(crate) async fn fire(
    conn: &mut PgConnection,
    due: &Schedule,
    next: DateTime<Utc>,
    job: &Job,
) -> Result<bool> {
    let sql = "UPDATE job_schedules SET next_run_at = $3, updated_at = $4
               WHERE tenant_id = $1 AND name = $2 AND next_run_at = $5 AND updated_at = $6"
        .to_owned();
    let values = vec![
        Val::Uuid(Some(due.tenant_id.uuid())),
        Val::Text(Some(due.name.clone())),
        Val::Time(Some(next)),
        Val::Time(Some(job.created_at)),
        Val::Time(Some(due.next_run_at)),
        Val::Time(Some(due.updated_at)),
    ];
    if execute(conn, sql, values).await? != 1 {
        return Ok(false);
    }
    jobs::enqueue(conn, job).await?;
    Ok(true)
}
