//! A worker process killed mid-job on a database file loses no job (`crm_core::testkit::crash`):
//! this test re-runs its own binary as the worker.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crm_core::testkit::crash;
use crm_storage_sqlite::SqliteStore;

async fn open(path: &str) -> Arc<dyn crm_core::Store> {
    Arc::new(SqliteStore::open(path).await.expect("open the database file"))
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_no_job() {
    if let Ok(path) = std::env::var(crash::WORKER_ENV) {
        return crash::work_until_killed(open(&path).await).await;
    }
    let dir = std::env::temp_dir().join("crm-sqlite-tests");
    std::fs::create_dir_all(&dir).expect("test dir");
    let path: PathBuf = dir.join(format!("crash-{}.db", uuid::Uuid::now_v7().simple()));
    let path = path.to_str().expect("a UTF-8 temp path").to_owned();
    let spawn = || {
        Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", "a_worker_killed_mid_job_loses_no_job", "--nocapture"])
            .env(crash::WORKER_ENV, &path)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the worker")
    };
    crash::killed_worker_loses_no_job(open(&path).await, spawn).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}
