//! Embedded, versioned migrations, tracked in the store's own table.

use crm_core::{Error, Result};
use sqlx::PgPool;

use crate::error;

/// Migrations in order; a released migration is never edited, only followed by another.
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

/// Brings the schema up to [`SCHEMA_VERSION`], as the connecting (owning) role. Concurrent
/// callers serialize on an advisory lock, so many app instances may start at once.
pub(crate) async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(error::map)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('crm_schema_migrations'))")
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS crm_schema_migrations (
             version    bigint PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *tx)
    .await
    .map_err(error::map)?;
    let newest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM crm_schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(error::map)?;
    if newest > SCHEMA_VERSION {
        return Err(Error::internal(format!(
            "database schema version {newest} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > newest) {
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(error::map)?;
        sqlx::query("INSERT INTO crm_schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        tracing::info!(version, name, "applied postgres migration");
    }
    tx.commit().await.map_err(error::map)
}
