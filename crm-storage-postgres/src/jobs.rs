//! Background jobs on Postgres (`docs/jobs.md`): enqueue with a unique key as the application
//! role, the tenant-fair claim with `FOR UPDATE SKIP LOCKED` as `crm_worker`, leases by token.

use chrono::{DateTime, Utc};
use crm_core::job::{Job, JobId, JobState};
use crm_core::store::Enqueued;
use crm_core::{Error, Result, TenantId};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use uuid::Uuid;

use crate::error;
use crate::rows::{self, Val, bind_all};

pub(crate) async fn execute(conn: &mut PgConnection, sql: String, values: Vec<Val>) -> Result<u64> {
    let done = bind_all(sqlx::query(AssertSqlSafe(sql)), values).execute(conn).await.map_err(error::map)?;
    Ok(done.rows_affected())
}

async fn fetch_job(conn: &mut PgConnection, sql: String, values: Vec<Val>) -> Result<Option<Job>> {
    let row =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_optional(conn).await.map_err(error::map)?;
    row.as_ref().map(|r| rows::job(r).map_err(error::map)).transpose()
}

/// Stores `job` unless an unfinished job of its tenant holds its unique key (the partial unique
/// index `jobs_unique` decides), in the caller's tenant transaction.
/// The channel enqueues notify and runners listen on.
pub(crate) const JOBS_CHANNEL: &str = "crm_jobs";

pub(crate) async fn enqueue(conn: &mut PgConnection, job: &Job) -> Result<Enqueued> {
    let tenant = Val::Uuid(Some(job.tenant_id.uuid()));
    let turn = "INSERT INTO job_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING".to_owned();
    execute(conn, turn, vec![tenant.clone()]).await?;
    // The notification is sent at commit, and only for a job that was stored: it wakes the
    // runners listening in other processes (`PgStore::enqueue_signal`).
    let sql = format!(
        "WITH stored AS (
             INSERT INTO jobs ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING RETURNING id)
         SELECT pg_notify('{JOBS_CHANNEL}', '') FROM stored",
        rows::JOB_COLUMNS
    );
    if execute(conn, sql, rows::job_row(job)).await? == 1 {
        return Ok(Enqueued::New(job.id));
    }
    let holder =
        "SELECT id FROM jobs WHERE tenant_id = $1 AND unique_key = $2 AND state IN ('pending', 'running')";
    let values = vec![tenant, Val::Text(job.unique_key.clone())];
    let row = bind_all(sqlx::query(holder), values).fetch_optional(conn).await.map_err(error::map)?;
    let id: Option<Uuid> = row.map(|r| r.try_get(0)).transpose().map_err(error::map)?;
    Ok(Enqueued::Existing(JobId::from_uuid(id.ok_or_else(|| Error::internal("a job id was taken twice"))?)))
}

/// Claims the next job (see `JobStore::claim`), in one statement on a `crm_worker` connection. The
/// tenants are walked in turn order and each asked for its first unlocked claimable job
/// (`SKIP LOCKED`), so a worker whose turn tenant's jobs are all being claimed by others takes
/// the next tenant's instead of coming back empty; two workers may serve one tenant's turn at
/// once, which costs fairness a claim, never a job run twice. The turn row is taken with
/// `SKIP LOCKED` too: a claim that finds another claim of the tenant moving its turn leaves the
/// move to that one instead of waiting for its commit, so claims of one tenant do not queue
/// behind each other on that row (they did: 750 jobs/s with four runners, one tenant); and a
/// tenant whose turn is already the latest (turns come from a sequence, so only the never-served
/// `0` ties) keeps it unwritten, so a queue of one tenant's jobs does not rewrite that row per
/// claim. The
/// claimable jobs are looked up as two index scans, the due pending ones (`jobs_due`) and the
/// running ones whose lease ran out (`jobs_leased`), each its first unlocked row, and the one
/// due first is claimed (the other is let go at commit): one condition with an `OR` of the two
/// states used no index, and sorted every job of the tenant per claim (3 ms at 5 000 jobs,
/// growing with the queue; 0.45 ms now).
pub(crate) async fn claim(
    conn: &mut PgConnection,
    job_types: &[String],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    token: Uuid,
) -> Result<Option<Job>> {
    let sql = format!(
        "WITH next_job AS (
             SELECT t.tenant_id, CASE WHEN r.id IS NOT NULL
                 AND (p.id IS NULL OR (r.run_at, r.id) < (p.run_at, p.id)) THEN r.id ELSE p.id END AS id
             FROM job_tenants t
             LEFT JOIN LATERAL (
                 SELECT j.id, j.run_at FROM jobs j
                 WHERE j.tenant_id = t.tenant_id AND j.state = 'pending' AND j.run_at <= $1
                   AND j.job_type = ANY($2)
                 ORDER BY j.run_at, j.id LIMIT 1
                 FOR UPDATE OF j SKIP LOCKED) p ON true
             LEFT JOIN LATERAL (
                 SELECT j.id, j.run_at FROM jobs j
                 WHERE j.tenant_id = t.tenant_id AND j.state = 'running' AND j.lease_until <= $1
                   AND j.job_type = ANY($2)
                 ORDER BY j.run_at, j.id LIMIT 1
                 FOR UPDATE OF j SKIP LOCKED) r ON true
             WHERE p.id IS NOT NULL OR r.id IS NOT NULL
             ORDER BY t.last_claim, t.tenant_id LIMIT 1),
         turn AS (
             UPDATE job_tenants SET last_claim = nextval('job_claims')
             WHERE tenant_id = (SELECT tenant_id FROM job_tenants
                                WHERE tenant_id = (SELECT tenant_id FROM next_job)
                                  AND (last_claim = 0
                                       OR last_claim < (SELECT max(last_claim) FROM job_tenants))
                                FOR UPDATE SKIP LOCKED))
         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $3, lease_token = $4,
                updated_at = $1
         FROM next_job WHERE jobs.tenant_id = next_job.tenant_id AND jobs.id = next_job.id
         RETURNING {}",
        prefixed(rows::JOB_COLUMNS, "jobs.")
    );
    let query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(job_types).bind(lease_until).bind(token);
    let row = query.fetch_optional(conn).await.map_err(error::map)?;
    row.as_ref().map(|r| rows::job(r).map_err(error::map)).transpose()
}

/// `a, b` → `jobs.a, jobs.b`.
fn prefixed(columns: &str, prefix: &str) -> String {
    columns.split(", ").map(|c| format!("{prefix}{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// Extends the lease held under `token`.
pub(crate) async fn heartbeat(conn: &mut PgConnection, token: Uuid, until: DateTime<Utc>) -> Result<bool> {
    let sql = "UPDATE jobs SET lease_until = $2 WHERE lease_token = $1 AND state = 'running'".to_owned();
    Ok(execute(conn, sql, vec![Val::Uuid(Some(token)), Val::Time(Some(until))]).await? == 1)
}

/// Writes the outcome of the attempt held under `token`, and lets the token go.
pub(crate) async fn finish(conn: &mut PgConnection, token: Uuid, job: &Job) -> Result<bool> {
    let sql =
        "UPDATE jobs SET state = $2, attempts = $3, run_at = $4, lease_until = NULL, lease_token = NULL,
               last_error = $5, updated_at = $6 WHERE lease_token = $1 AND state = 'running'"
            .to_owned();
    Ok(execute(conn, sql, outcome(Val::Uuid(Some(token)), job)).await? == 1)
}

/// Writes a cancel or retry of the tenant's job if it is still in `expected`.
pub(crate) async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    job: &Job,
    expected: JobState,
) -> Result<bool> {
    let sql = "UPDATE jobs SET state = $2, attempts = $3, run_at = $4, last_error = $5, updated_at = $6
               WHERE id = $1 AND tenant_id = $7 AND state = $8"
        .to_owned();
    let mut values = outcome(Val::Uuid(Some(job.id.uuid())), job);
    values.extend([Val::Uuid(Some(tenant.uuid())), Val::Text(Some(expected.as_str().to_owned()))]);
    let moved = execute(conn, sql, values).await? == 1;
    if moved && job.state == JobState::Pending {
        // A retried job is due now: wake the runners elsewhere, as an enqueue does.
        execute(conn, format!("SELECT pg_notify('{JOBS_CHANNEL}', '')"), Vec::new()).await?;
    }
    Ok(moved)
}

/// `$1` (given), then the state, attempts, run_at, last error and updated_at a move changes.
fn outcome(first: Val, job: &Job) -> Vec<Val> {
    vec![
        first,
        Val::Text(Some(job.state.as_str().to_owned())),
        Val::Int4(Some(rows::count(job.attempts))),
        Val::Time(Some(job.run_at)),
        Val::Text(job.last_error.clone()),
        Val::Time(Some(job.updated_at)),
    ]
}

/// One job of `tenant`.
pub(crate) async fn job(conn: &mut PgConnection, tenant: TenantId, id: JobId) -> Result<Option<Job>> {
    let sql = format!("SELECT {} FROM jobs WHERE tenant_id = $1 AND id = $2", rows::JOB_COLUMNS);
    fetch_job(conn, sql, vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(id.uuid()))]).await
}

/// `tenant`'s jobs, id descending, optionally in one state and below a cursor.
pub(crate) async fn jobs(
    conn: &mut PgConnection,
    tenant: TenantId,
    state: Option<JobState>,
    before: Option<JobId>,
    limit: u32,
) -> Result<Vec<Job>> {
    let sql = format!(
        "SELECT {} FROM jobs WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2)
         AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        rows::JOB_COLUMNS
    );
    let values = vec![
        Val::Uuid(Some(tenant.uuid())),
        Val::Text(state.map(|s| s.as_str().to_owned())),
        Val::Uuid(before.map(|id| id.uuid())),
        Val::Int(Some(limit.into())),
    ];
    let found =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)?;
    found.iter().map(|r| rows::job(r).map_err(error::map)).collect()
}

/// Starts the task behind `PgStore::enqueue_signal`: it listens on [`JOBS_CHANNEL`] and bumps
/// the signal per notification, until every receiver is gone.
pub(crate) fn listen(pool: sqlx::PgPool) -> tokio::sync::watch::Receiver<u64> {
    let (signal, receiver) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        let mut listener = loop {
            let listening = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(JOBS_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            tokio::select! {
                _ = signal.closed() => return,
                result = listening => match result {
                    Ok(listener) => {
                        // Jobs enqueued before the LISTEN took hold sent no notification here:
                        // one wake makes the runners look.
                        signal.send_modify(|n| *n = n.wrapping_add(1));
                        break listener;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "listening for enqueued jobs failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                },
            }
        };
        loop {
            tokio::select! {
                _ = signal.closed() => return,
                received = listener.recv() => match received {
                    Ok(_) => signal.send_modify(|n| *n = n.wrapping_add(1)),
                    Err(error) => {
                        tracing::warn!(%error, "the job listener lost its connection; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                },
            }
        }
    });
    receiver
}
