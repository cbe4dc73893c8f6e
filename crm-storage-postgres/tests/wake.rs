//! A runner wakes on a job another process enqueued (`LISTEN/NOTIFY`), not on its poll: two
//! stores with pools of their own stand in for the two processes, and the runner's poll interval
//! is an hour.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crm_core::job::{Failure, JobState, NewJob};
use crm_core::runner::{JobContext, RunnerConfig};
use crm_core::store::Enqueued;
use crm_core::{Crm, Scope};
use crm_storage_postgres::PgStore;
use sqlx::postgres::PgPoolOptions;
use support::{database_url, fresh_database};

async fn settled(crm: &Crm, scope: &Scope, id: crm_core::job::JobId, state: JobState) {
    let started = Instant::now();
    loop {
        let job = crm.job(scope, id).await.expect("read the job");
        if job.state == state {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never {state:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Fails its first run for good, so the job is dead until someone retries it.
async fn fails_once(_ctx: JobContext) -> Result<(), Failure> {
    if RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        Err(Failure::permanent("first run refused"))
    } else {
        Ok(())
    }
}

#[tokio::test]
async fn runners_wake_on_jobs_enqueued_and_retried_by_another_process() {
    let Some(url) = database_url() else { return };
    let db = fresh_database(&url).await;
    let pool = || PgPoolOptions::new().max_connections(4);
    let worker_store = PgStore::connect_with(db.options.clone(), pool()).await.expect("worker store");
    let app_store = PgStore::connect_with(db.options.clone(), pool()).await.expect("app store");
    let worker =
        Crm::builder_shared(Arc::new(worker_store)).job_handler("test.fails_once", fails_once).build();
    let app = Crm::new(app_store);
    let scope = crm_core::testkit::tenant(&app, "Acme").await.owner_scope;

    let config = RunnerConfig { poll_interval: Duration::from_secs(3600), ..RunnerConfig::default() };
    let runner = worker.run_jobs(config).expect("a runner");
    // Let the runner make its first (empty) claim and go idle, so only a wake can find the job.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Enqueued::New(id) =
        app.enqueue_job(&scope, NewJob::new("test.fails_once", serde_json::Value::Null)).await.unwrap()
    else {
        panic!("a new job");
    };
    settled(&app, &scope, id, JobState::Dead).await;
    app.retry_job(&scope, id).await.expect("retry");
    settled(&app, &scope, id, JobState::Succeeded).await;
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
    runner.shutdown().await;
    drop((worker, app));
    drop(db);
}
