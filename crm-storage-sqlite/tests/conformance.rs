//! The crm-core conformance suite, run against a fresh in-memory SQLite store per test.

use crm_storage_sqlite::SqliteStore;

crm_core::store_conformance_tests!(|| async {
    Some(SqliteStore::open_in_memory().await.expect("open in-memory store"))
});
