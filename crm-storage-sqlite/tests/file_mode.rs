//! The conformance suite again, on database files (WAL, writer plus reader pool) instead of
//! memory — its race cases run on a multi-threaded runtime, where statements run via
//! `block_in_place`, and a commit must be visible to the reader pool at once.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crm_storage_sqlite::SqliteStore;

/// A fresh database file under the system temp dir; files older than an hour are swept.
async fn file_store() -> Option<SqliteStore> {
    let dir = std::env::temp_dir().join("crm-sqlite-tests");
    std::fs::create_dir_all(&dir).expect("test dir");
    sweep(&dir);
    let path: PathBuf = dir.join(format!("{}.db", uuid::Uuid::now_v7().simple()));
    Some(SqliteStore::open(&path).await.expect("open file store"))
}

fn sweep(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let cutoff = SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

mod suite {
    crm_core::store_conformance_tests!(super::file_store);
}
