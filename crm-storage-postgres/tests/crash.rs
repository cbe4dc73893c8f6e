//! A worker process killed mid-job on Postgres loses no job (`crm_core::testkit::crash`): this
//! test re-runs its own binary as the worker, on the same test database.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;

use crm_core::testkit::crash;
use crm_storage_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use support::{database_url, fresh_database};

async fn open(options: PgConnectOptions) -> Arc<dyn crm_core::Store> {
    let pool = PgPoolOptions::new().max_connections(4).connect_with(options).await.expect("connect");
    Arc::new(PgStore::from_pool(pool))
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_no_job() {
    let Some(url) = database_url() else { return };
    let admin: PgConnectOptions = url.parse().expect("a postgres URL");
    if let Ok(name) = std::env::var(crash::WORKER_ENV) {
        return crash::work_until_killed(open(admin.database(&name)).await).await;
    }
    let db = fresh_database(&url).await;
    let name = db.options.get_database().expect("a test database name").to_owned();
    PgStore::connect_with(db.options.clone(), PgPoolOptions::new().max_connections(1))
        .await
        .expect("migrate the test database");
    let spawn = || {
        Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", "a_worker_killed_mid_job_loses_no_job", "--nocapture"])
            .env(crash::WORKER_ENV, &name)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the worker")
    };
    crash::killed_worker_loses_no_job(open(db.options.clone()).await, spawn).await;
}
