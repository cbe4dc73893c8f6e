//! Cron schedules on SQLite (`crm_core::schedule`): kept per tenant, fired by compare-and-set
//! on `next_run_at` in the writer's transaction together with the occurrence's job.

use chrono::{DateTime, Utc};
use crm_core::job::Job;
use crm_core::schedule::Schedule;
use crm_core::store::Enqueued;
use crm_core::{Result, TenantId};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::jobs::{self, execute};
use crate::{error, rows};

fn select(conn: &Connection, sql: &str, values: Vec<Value>) -> Result<Vec<Schedule>> {
    let mut stmt = conn.prepare_cached(sql).map_err(error::map)?;
    let found = stmt.query_map(params_from_iter(values), rows::schedule).map_err(error::map)?;
    found.collect::<rusqlite::Result<Vec<_>>>().map_err(error::map)
}

/// Inserts or replaces `schedule`, keeping a replaced one's `created_at`.
pub(crate) fn put(conn: &mut Connection, schedule: &Schedule) -> Result<()> {
    let sql = format!(
        "INSERT INTO job_schedules ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tenant_id, name) DO UPDATE SET cron = excluded.cron, job_type = excluded.job_type,
             payload = excluded.payload, next_run_at = excluded.next_run_at, updated_at = excluded.updated_at",
        rows::SCHEDULE_COLUMNS
    );
    execute(conn, &sql, rows::schedule_row(schedule)).map(drop)
}

/// `tenant`'s schedules, by name.
pub(crate) fn list(conn: &Connection, tenant: TenantId) -> Result<Vec<Schedule>> {
    let sql =
        format!("SELECT {} FROM job_schedules WHERE tenant_id = ?1 ORDER BY name", rows::SCHEDULE_COLUMNS);
    select(conn, &sql, vec![rows::uuid(tenant.uuid())])
}

/// Deletes `tenant`'s schedule `name`.
pub(crate) fn delete(conn: &mut Connection, tenant: TenantId, name: &str) -> Result<bool> {
    let sql = "DELETE FROM job_schedules WHERE tenant_id = ?1 AND name = ?2";
    Ok(execute(conn, sql, vec![rows::uuid(tenant.uuid()), Value::Text(name.to_owned())])? == 1)
}

/// Every tenant's schedules due at `now`, earliest first.
pub(crate) fn due(conn: &Connection, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
    let sql = format!(
        "SELECT {} FROM job_schedules WHERE next_run_at <= ?1 ORDER BY next_run_at, tenant_id, name LIMIT ?2",
        rows::SCHEDULE_COLUMNS
    );
    select(conn, &sql, vec![rows::time(now), Value::Integer(limit.into())])
}

/// Moves `due` on to `next` if it is still as read, and enqueues its occurrence `job`.
pub(crate) fn fire(conn: &mut Connection, due: &Schedule, next: DateTime<Utc>, job: &Job) -> Result<bool> {
    let tx = conn.savepoint().map_err(error::map)?;
    let sql = "UPDATE job_schedules SET next_run_at = ?3, updated_at = ?4
               WHERE tenant_id = ?1 AND name = ?2 AND next_run_at = ?5 AND updated_at = ?6";
    let values = vec![
        rows::uuid(due.tenant_id.uuid()),
        Value::Text(due.name.clone()),
        rows::time(next),
        rows::time(job.created_at),
        rows::time(due.next_run_at),
        rows::time(due.updated_at),
    ];
    if execute(&tx, sql, values)? != 1 {
        return Ok(false); // the savepoint rolls back on drop: nothing written
    }
    let _: Enqueued = jobs::enqueue_in(&tx, job)?;
    tx.commit().map_err(error::map)?;
    Ok(true)
}
