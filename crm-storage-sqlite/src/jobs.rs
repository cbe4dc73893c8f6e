//! Background jobs on SQLite (`docs/jobs.md`): enqueue with a unique key, the tenant-fair
//! claim, leases by token. One process owns the database and every write goes through its one
//! writer, so a claim needs no row locks: it reads and updates in the writer's transaction.

use chrono::{DateTime, Utc};
use crm_core::job::{Job, JobId, JobState};
use crm_core::store::Enqueued;
use crm_core::{Error, Result, TenantId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use uuid::Uuid;

use crate::{error, rows};

/// `jobs` rows a worker may claim at `?1`: pending and due, or running with an expired lease.
const CLAIMABLE: &str =
    "((j.state = 'pending' AND j.run_at <= ?1) OR (j.state = 'running' AND j.lease_until <= ?1))";

pub(crate) fn execute(conn: &Connection, sql: &str, values: Vec<Value>) -> Result<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(params_from_iter(values))).map_err(error::map)
}

fn select_job(conn: &Connection, tenant: TenantId, id: Uuid) -> Result<Option<Job>> {
    let sql = format!("SELECT {} FROM jobs WHERE tenant_id = ?1 AND id = ?2", rows::JOB_COLUMNS);
    let mut stmt = conn.prepare_cached(&sql).map_err(error::map)?;
    let params = [rows::uuid(tenant.uuid()), rows::uuid(id)];
    stmt.query_row(params_from_iter(params), rows::job).optional().map_err(error::map)
}

/// Stores `job` unless an unfinished job of its tenant holds its unique key (the partial unique
/// index `jobs_unique` decides, in this transaction).
pub(crate) fn enqueue(conn: &mut Connection, job: &Job) -> Result<Enqueued> {
    let tx = conn.savepoint().map_err(error::map)?;
    let outcome = enqueue_in(&tx, job)?;
    tx.commit().map_err(error::map)?;
    Ok(outcome)
}

/// [`enqueue`] in the caller's transaction.
pub(crate) fn enqueue_in(tx: &Connection, job: &Job) -> Result<Enqueued> {
    let tenant = rows::uuid(job.tenant_id.uuid());
    execute(
        tx,
        "INSERT INTO job_tenants (tenant_id) VALUES (?1) ON CONFLICT DO NOTHING",
        vec![tenant.clone()],
    )?;
    let sql = format!(
        "INSERT INTO jobs ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT DO NOTHING",
        rows::JOB_COLUMNS
    );
    let outcome = if execute(tx, &sql, rows::job_row(job))? == 1 {
        Enqueued::New(job.id)
    } else {
        let holder = "SELECT id FROM jobs
                      WHERE tenant_id = ?1 AND unique_key = ?2 AND state IN ('pending', 'running')";
        let key = job.unique_key.clone().map_or(Value::Null, Value::Text);
        let id: Option<Vec<u8>> = tx
            .prepare_cached(holder)
            .and_then(|mut s| s.query_row(params_from_iter([tenant, key]), |r| r.get(0)).optional())
            .map_err(error::map)?;
        let id = id.and_then(|bytes| Uuid::from_slice(&bytes).ok());
        Enqueued::Existing(JobId::from_uuid(id.ok_or_else(|| Error::internal("a job id was taken twice"))?))
    };
    Ok(outcome)
}

/// Claims the next job (see `JobStore::claim`): the tenant whose turn is oldest among those
/// with a claimable job of `job_types`, then its job due first.
pub(crate) fn claim(
    conn: &mut Connection,
    job_types: &[String],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    token: Uuid,
) -> Result<Option<Job>> {
    if job_types.is_empty() {
        return Ok(None);
    }
    let tx = conn.savepoint().map_err(error::map)?;
    // Placeholders only, one per job type: the names themselves are bound.
    let types = (2..job_types.len() + 2).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut values = vec![rows::time(now)];
    values.extend(job_types.iter().map(|t| Value::Text(t.clone())));
    let next_tenant = format!(
        "SELECT t.tenant_id FROM job_tenants t WHERE EXISTS (SELECT 1 FROM jobs j
         WHERE j.tenant_id = t.tenant_id AND j.job_type IN ({types}) AND {CLAIMABLE})
         ORDER BY t.last_claim, t.tenant_id LIMIT 1"
    );
    let tenant: Option<Vec<u8>> = tx
        .prepare_cached(&next_tenant)
        .and_then(|mut s| s.query_row(params_from_iter(values.clone()), |r| r.get(0)).optional())
        .map_err(error::map)?;
    let Some(tenant) = tenant else { return Ok(None) };
    let tenant_at = job_types.len() + 2;
    // Two index searches, each its first row, instead of one condition with an `OR` of the two
    // states: that one sorted every claimable job of the tenant per claim (3.8 ms at 20 000).
    let next_job = format!(
        "SELECT id FROM (
             SELECT * FROM (SELECT j.id, j.run_at FROM jobs j
                 WHERE j.tenant_id = ?{tenant_at} AND j.state = 'pending' AND j.run_at <= ?1
                   AND j.job_type IN ({types})
                 ORDER BY j.run_at, j.id LIMIT 1)
             UNION ALL
             SELECT * FROM (SELECT j.id, j.run_at FROM jobs j
                 WHERE j.tenant_id = ?{tenant_at} AND j.state = 'running' AND j.lease_until <= ?1
                   AND j.job_type IN ({types})
                 ORDER BY j.run_at, j.id LIMIT 1))
         ORDER BY run_at, id LIMIT 1"
    );
    values.push(Value::Blob(tenant.clone()));
    let id: Vec<u8> = tx
        .prepare_cached(&next_job)
        .and_then(|mut s| s.query_row(params_from_iter(values), |r| r.get(0)))
        .map_err(error::map)?;
    let lease =
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?3, lease_token = ?4,
                 updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2";
    let (tenant_value, id_value) = (Value::Blob(tenant.clone()), Value::Blob(id.clone()));
    let values =
        vec![tenant_value.clone(), id_value, rows::time(lease_until), rows::uuid(token), rows::time(now)];
    execute(&tx, lease, values)?;
    let turn = "UPDATE job_tenants SET last_claim = (SELECT max(last_claim) FROM job_tenants) + 1
                WHERE tenant_id = ?1";
    execute(&tx, turn, vec![tenant_value])?;
    let tenant =
        Uuid::from_slice(&tenant).map_err(|_| Error::internal("a malformed tenant id in job_tenants"))?;
    let id = Uuid::from_slice(&id).map_err(|_| Error::internal("a malformed job id"))?;
    let job = select_job(&tx, TenantId::from_uuid(tenant), id)?;
    tx.commit().map_err(error::map)?;
    Ok(job)
}

/// Extends the lease held under `token`.
pub(crate) fn heartbeat(conn: &mut Connection, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
    let tx = conn.savepoint().map_err(error::map)?;
    let sql = "UPDATE jobs SET lease_until = ?2 WHERE lease_token = ?1 AND state = 'running'";
    let renewed = execute(&tx, sql, vec![rows::uuid(token), rows::time(until)])? == 1;
    tx.commit().map_err(error::map)?;
    Ok(renewed)
}

/// Writes the outcome of the attempt held under `token`, and lets the token go.
pub(crate) fn finish(conn: &mut Connection, token: Uuid, job: &Job) -> Result<bool> {
    let tx = conn.savepoint().map_err(error::map)?;
    let sql =
        "UPDATE jobs SET state = ?2, attempts = ?3, run_at = ?4, lease_until = NULL, lease_token = NULL,
               last_error = ?5, updated_at = ?6 WHERE lease_token = ?1 AND state = 'running'";
    let finished = execute(&tx, sql, outcome(rows::uuid(token), job))? == 1;
    tx.commit().map_err(error::map)?;
    Ok(finished)
}

/// Writes a cancel or retry of the scope's tenant's job if it is still in `expected`.
pub(crate) fn update(conn: &mut Connection, tenant: TenantId, job: &Job, expected: JobState) -> Result<bool> {
    let tx = conn.savepoint().map_err(error::map)?;
    let sql = "UPDATE jobs SET state = ?2, attempts = ?3, run_at = ?4, last_error = ?5, updated_at = ?6
               WHERE id = ?1 AND tenant_id = ?7 AND state = ?8";
    let mut values = outcome(rows::uuid(job.id.uuid()), job);
    values.extend([rows::uuid(tenant.uuid()), Value::Text(expected.as_str().into())]);
    let updated = execute(&tx, sql, values)? == 1;
    tx.commit().map_err(error::map)?;
    Ok(updated)
}

/// `?1` (given), then the state, attempts, run_at, last error and updated_at a move changes.
fn outcome(first: Value, job: &Job) -> Vec<Value> {
    vec![
        first,
        Value::Text(job.state.as_str().into()),
        Value::Integer(job.attempts.into()),
        rows::time(job.run_at),
        job.last_error.clone().map_or(Value::Null, Value::Text),
        rows::time(job.updated_at),
    ]
}

/// One job of `tenant`.
pub(crate) fn job(conn: &Connection, tenant: TenantId, id: JobId) -> Result<Option<Job>> {
    select_job(conn, tenant, id.uuid())
}

/// `tenant`'s jobs, id descending, optionally in one state and below a cursor.
pub(crate) fn jobs(
    conn: &Connection,
    tenant: TenantId,
    state: Option<JobState>,
    before: Option<JobId>,
    limit: u32,
) -> Result<Vec<Job>> {
    let sql = format!(
        "SELECT {} FROM jobs WHERE tenant_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4",
        rows::JOB_COLUMNS
    );
    let values = vec![
        rows::uuid(tenant.uuid()),
        state.map_or(Value::Null, |s| Value::Text(s.as_str().into())),
        before.map_or(Value::Null, |id| rows::uuid(id.uuid())),
        Value::Integer(limit.into()),
    ];
    let mut stmt = conn.prepare_cached(&sql).map_err(error::map)?;
    let found = stmt.query_map(params_from_iter(values), rows::job).map_err(error::map)?;
    found.collect::<rusqlite::Result<Vec<Job>>>().map_err(error::map)
}
