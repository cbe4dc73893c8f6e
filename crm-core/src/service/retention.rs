//! Retention: what the library deletes once it has served its use (see
//! [`crate::store::RetentionStore`]). Runners sweep on their own ([`crate::runner::RunnerConfig`]);
//! a host without runners calls [`Crm::purge_expired`] from its own schedule.

use std::time::Duration;

use super::Crm;
use crate::error::{Error, Result};
use crate::store::{PurgeCutoffs, Purged};

/// Rows of each sort one purge batch deletes: small enough that no batch holds the database
/// for long, large enough that a backlog clears in a few batches.
pub(crate) const PURGE_BATCH: u32 = 1000;

impl Crm {
    /// Deletes, across every tenant, the jobs that succeeded or were cancelled more than
    /// `finished_jobs_kept` ago, and the refresh tokens and idempotency keys that have expired
    /// (an expired one is refused whether kept or not), batch after batch until none is left;
    /// what went. Dead jobs stay until retried or cancelled. Nothing a tenant can still use is
    /// touched, so the sweep needs no scope.
    pub async fn purge_expired(&self, finished_jobs_kept: Duration) -> Result<Purged> {
        let now = self.inner.clock.now();
        let kept = chrono::Duration::from_std(finished_jobs_kept)
            .ok()
            .and_then(|kept| now.checked_sub_signed(kept))
            .ok_or_else(|| Error::invalid("finished_jobs_kept", "is too long"))?;
        let cutoffs = PurgeCutoffs { finished_jobs_before: kept, expired_before: now };
        let mut purged = Purged::default();
        loop {
            let batch = self.store_ref().purge(&cutoffs, PURGE_BATCH).await?;
            purged += batch;
            if !batch.reached(PURGE_BATCH) {
                return Ok(purged);
            }
            // Between batches, let the runner's other work in.
            tokio::task::yield_now().await;
        }
    }
}
