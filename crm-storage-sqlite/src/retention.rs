//! Retention on SQLite (`RetentionStore::purge`, `docs/jobs.md`): three bounded deletes, oldest
//! rows first, in the writer's transaction.

use crm_core::Result;
use crm_core::store::{PurgeCutoffs, Purged};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::jobs::execute;
use crate::rows;

const FINISHED_JOBS: &str = "DELETE FROM jobs WHERE (tenant_id, id) IN (
        SELECT tenant_id, id FROM jobs WHERE state IN ('succeeded', 'cancelled') AND updated_at < ?1
        ORDER BY updated_at LIMIT ?2)";

const EXPIRED_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE (tenant_id, id) IN (
        SELECT tenant_id, id FROM refresh_tokens WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)";

// A key whose claim still holds it stays, even past its expiry, until the claim ends.
const EXPIRED_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE (tenant_id, principal, key) IN (
        SELECT tenant_id, principal, key FROM idempotency_keys
        WHERE expires_at < ?1 AND locked_until < ?1 ORDER BY expires_at LIMIT ?2)";

pub(crate) fn purge(conn: &Connection, cutoffs: &PurgeCutoffs, limit: u32) -> Result<Purged> {
    let limit = Value::Integer(i64::from(limit));
    let finished = rows::time(cutoffs.finished_jobs_before);
    let expired = rows::time(cutoffs.expired_before);
    let count = |n: usize| n as u64;
    Ok(Purged {
        jobs: count(execute(conn, FINISHED_JOBS, vec![finished, limit.clone()])?),
        refresh_tokens: count(execute(conn, EXPIRED_REFRESH_TOKENS, vec![expired.clone(), limit.clone()])?),
        idempotency_keys: count(execute(conn, EXPIRED_IDEMPOTENCY_KEYS, vec![expired, limit])?),
    })
}
