//! A worker process killed with `SIGKILL` in the middle of a job loses no job: the job stays
//! claimed until its lease runs out, then another runner takes it over and finishes it.
//!
//! Needs a second process, so a store's test crate calls these two halves from one test that
//! re-runs its own test binary as the worker (see the store crates' `tests/crash.rs`):
//!
//! ```ignore
//! #[tokio::test]
//! async fn a_worker_killed_mid_job_loses_no_job() {
//!     if let Ok(location) = std::env::var(crash::WORKER_ENV) {
//!         return crash::work_until_killed(open(&location).await).await;
//!     }
//!     crash::killed_worker_loses_no_job(open(&location).await, || spawn_self(&location)).await;
//! }
//! ```

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::job::{Failure, JobState, NewJob};
use crate::runner::{JobContext, RunnerConfig};
use crate::service::Crm;
use crate::store::{Enqueued, Store};

/// Set in the worker process's environment to where its store is (a path, a database name).
pub const WORKER_ENV: &str = "CRM_TEST_CRASH_WORKER";

const JOB_TYPE: &str = "test.crash";

/// The longest the parent waits for the worker to claim, or for the takeover.
const SETTLE: Duration = Duration::from_secs(30);

fn config() -> RunnerConfig {
    RunnerConfig {
        lease: Duration::from_secs(1),
        poll_interval: Duration::from_millis(20),
        ..RunnerConfig::default()
    }
}

/// The worker process: runs a runner whose handler never ends, renewing its lease, until the
/// parent kills the process.
pub async fn work_until_killed(store: Arc<dyn Store>) {
    async fn endless(_ctx: JobContext) -> Result<(), Failure> {
        std::future::pending().await
    }
    let crm = Crm::builder_shared(store).job_handler(JOB_TYPE, endless).build();
    let _runner = crm.run_jobs(config()).expect("a valid runner");
    std::future::pending::<()>().await;
}

/// Kills the worker if the parent fails before it does, so no test leaves a process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The parent: enqueues a job, starts the worker with `spawn`, waits until the worker holds
/// the job, kills it with `SIGKILL`, and checks that the job is still there, claimed, and that a
/// runner here takes it over once the lease the worker last renewed ran out, and finishes it.
pub async fn killed_worker_loses_no_job(store: Arc<dyn Store>, spawn: impl FnOnce() -> Child) {
    async fn succeed(_ctx: JobContext) -> Result<(), Failure> {
        Ok(())
    }
    let crm = Crm::builder_shared(store).job_handler(JOB_TYPE, succeed).build();
    let scope = super::tenant(&crm, "Acme").await.owner_scope;
    let Enqueued::New(id) =
        crm.enqueue_job(&scope, NewJob::new(JOB_TYPE, serde_json::Value::Null)).await.unwrap()
    else {
        panic!("a fresh job");
    };
    let mut worker = KillOnDrop(spawn());
    let started = Instant::now();
    while crm.job(&scope, id).await.unwrap().state != JobState::Running {
        assert!(started.elapsed() < SETTLE, "the worker never claimed the job");
        assert!(worker.0.try_wait().unwrap().is_none(), "the worker exited on its own");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past a renewal or two: the lease the takeover must wait for is a renewed one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    worker.0.kill().expect("SIGKILL the worker");
    worker.0.wait().expect("reap the worker");
    let orphan = crm.job(&scope, id).await.unwrap();
    assert_eq!((orphan.state, orphan.attempts), (JobState::Running, 1), "the killed attempt's job is kept");
    let lease_until = orphan.lease_until.expect("a running job has a lease");

    let runner = crm.run_jobs(config()).unwrap();
    let started = Instant::now();
    let done = loop {
        let job = crm.job(&scope, id).await.unwrap();
        if job.state == JobState::Succeeded {
            break job;
        }
        assert!(started.elapsed() < SETTLE, "the job was never taken over: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    runner.shutdown().await;
    assert_eq!(done.attempts, 2, "the killed attempt counts");
    assert!(done.updated_at >= lease_until, "taken over only after the worker's lease ran out");
}
