//! Retention on Postgres (`RetentionStore::purge`, `docs/jobs.md`): three bounded deletes,
//! oldest rows first, each its own statement on a `crm_worker` connection, so no batch holds a
//! transaction open across the others.

use crm_core::Result;
use crm_core::store::{PurgeCutoffs, Purged};
use sqlx::PgConnection;

use crate::jobs::execute;
use crate::rows::Val;

// Finished jobs change no more, so a lock is another purge's: skip it rather than wait.
const FINISHED_JOBS: &str = "DELETE FROM jobs WHERE (tenant_id, id) IN (
        SELECT tenant_id, id FROM jobs WHERE state IN ('succeeded', 'cancelled') AND updated_at < $1
        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

// No `FOR UPDATE` on tokens and keys: crm_worker may not update them (see migration 0008).
const EXPIRED_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE (tenant_id, id) IN (
        SELECT tenant_id, id FROM refresh_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)";

// A key whose claim still holds it stays, even past its expiry, until the claim ends.
const EXPIRED_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE (tenant_id, principal, key) IN (
        SELECT tenant_id, principal, key FROM idempotency_keys
        WHERE expires_at < $1 AND locked_until < $1 ORDER BY expires_at LIMIT $2)";

pub(crate) async fn purge(conn: &mut PgConnection, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
    let limit = || Val::Int(Some(i64::from(limit)));
    let finished = Val::Time(Some(cutoffs.finished_jobs_before));
    let expired = || Val::Time(Some(cutoffs.expired_before));
    Ok(Purged {
        jobs: execute(conn, FINISHED_JOBS.into(), vec![finished, limit()]).await?,
        refresh_tokens: execute(conn, EXPIRED_REFRESH_TOKENS.into(), vec![expired(), limit()]).await?,
        idempotency_keys: execute(conn, EXPIRED_IDEMPOTENCY_KEYS.into(), vec![expired(), limit()]).await?,
    })
}
