//! Test databases for this crate's tests and for hosts' own: each test gets its own database,
//! created from `CRM_TEST_DATABASE_URL` and dropped when the test's store is dropped (or, if a run
//! was killed, by a later run once it is an hour old), so tests run in parallel without sharing
//! state.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

const PREFIX: &str = "crm_test_";

/// The admin URL, or `None` (with a visible message) when Postgres tests are not configured.
/// Under CI a missing URL is a failure, not a skip.
pub fn database_url() -> Option<String> {
    match std::env::var("CRM_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CRM_TEST_DATABASE_URL is not set under CI: the Postgres suite must run")
        }
        _ => {
            eprintln!("SKIPPED Postgres test: set CRM_TEST_DATABASE_URL=postgres://… to run it");
            None
        }
    }
}

/// An empty database, dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    /// Options that connect to the test database.
    pub options: PgConnectOptions,
}

/// Creates an empty database.
pub async fn fresh_database(url: &str) -> TestDatabase {
    let admin: PgConnectOptions = url.parse().expect("CRM_TEST_DATABASE_URL is a postgres URL");
    let mut conn = PgConnection::connect_with(&admin).await.expect("connect to CRM_TEST_DATABASE_URL");
    drop_stale_databases(&mut conn).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = format!("{PREFIX}{now}_{}", Uuid::now_v7().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    TestDatabase { options: admin.database(&name) }
}

/// A migrated store on a fresh database, or `None` when Postgres tests are not configured.
/// The database is dropped when the returned store is.
pub async fn fresh_store() -> Option<TestStore> {
    let url = database_url()?;
    let db = fresh_database(&url).await;
    let pool = PgPoolOptions::new().max_connections(4);
    let store =
        PgStore::connect_with(db.options.clone(), pool).await.expect("connect and migrate the test database");
    Some(TestStore { store, _db: db })
}

/// A [`PgStore`] that drops its database when dropped.
#[derive(Debug)]
pub struct TestStore {
    store: PgStore,
    _db: TestDatabase,
}

impl std::ops::Deref for TestStore {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.options.get_database().map(str::to_owned) else { return };
        let admin = self.options.clone().database("postgres");
        // Drop runs inside a runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect_with(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

crm_core::delegate_store!(TestStore => store: RecordStore, IdentityStore, HistoryStore, IdempotencyStore, JobStore, RetentionStore,
    WebhookStore);

async fn drop_stale_databases(conn: &mut PgConnection) {
    let cutoff = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) - 3600;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'crm\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name.trim_start_matches(PREFIX).split('_').next().and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await;
        }
    }
}
