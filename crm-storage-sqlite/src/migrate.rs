//! Embedded, versioned migrations, tracked in the store's own table.

use crm_core::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::error;

/// Migrations in order; a migration is never edited once released, only followed by another.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "identity", include_str!("../migrations/0002_identity.sql")),
    (3, "idempotency", include_str!("../migrations/0003_idempotency.sql")),
    (4, "search_terms", include_str!("../migrations/0004_search_terms.sql")),
    (5, "tasks", include_str!("../migrations/0005_tasks.sql")),
    (6, "jobs", include_str!("../migrations/0006_jobs.sql")),
    (7, "schedules", include_str!("../migrations/0007_schedules.sql")),
    (8, "retention", include_str!("../migrations/0008_retention.sql")),
    (9, "webhooks", include_str!("../migrations/0009_webhooks.sql")),
    (10, "webhook_deliveries", include_str!("../migrations/0010_webhook_deliveries.sql")),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = 10;

/// Brings the schema up to [`SCHEMA_VERSION`]. Safe to call on every start and from several
/// processes: each migration runs in its own immediate transaction and is applied once.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS crm_schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(error::map)?;
    for &(version, name, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error::map)?;
        let applied: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM crm_schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )
            .map_err(error::map)?;
        if !applied {
            tx.execute_batch(sql).map_err(error::map)?;
            tx.execute(
                "INSERT INTO crm_schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![version, name, chrono::Utc::now().timestamp_micros()],
            )
            .map_err(error::map)?;
            tracing::info!(version, name, "applied sqlite migration");
        }
        tx.commit().map_err(error::map)?;
    }
    let newest: i64 = conn
        .query_row("SELECT COALESCE(MAX(version), 0) FROM crm_schema_migrations", [], |r| r.get(0))
        .map_err(error::map)?;
    if newest > SCHEMA_VERSION {
        return Err(Error::internal(format!(
            "database schema version {newest} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    Ok(())
}
