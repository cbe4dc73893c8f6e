//! Row-Level Security as a second wall, proven with raw SQL as the application role.

mod support;

use crm_core::model::{Lead, NewLead, NewTenant, NewUser};
use crm_core::{Crm, TenantCreated};
use crm_storage_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

/// Tables that carry a tenant_id column, read from the catalog (not from a list we maintain).
async fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attname = 'tenant_id' AND NOT a.attisdropped
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

struct World {
    options: PgConnectOptions,
    _db: support::TestDatabase,
    a: TenantCreated,
    b: TenantCreated,
    lead_a: Lead,
    lead_b: Lead,
}

async fn world() -> Option<World> {
    let url = support::database_url()?;
    let db = support::fresh_database(&url).await;
    let options = db.options.clone();
    let store =
        PgStore::connect_with(options.clone(), PgPoolOptions::new().max_connections(2)).await.unwrap();
    let crm = Crm::new(store);
    let tenant = |slug: &str| NewTenant {
        name: slug.to_uppercase(),
        slug: slug.into(),
        owner: NewUser { email: format!("owner@{slug}.example"), name: "Owner".into() },
    };
    let a = crm.create_tenant(tenant("alpha")).await.unwrap();
    let b = crm.create_tenant(tenant("bravo")).await.unwrap();
    let lead = |company: &str| NewLead { company: Some(company.into()), ..NewLead::default() };
    let lead_a = crm.create::<Lead>(&a.owner_scope, lead("Alpha Lead")).await.unwrap();
    let lead_b = crm.create::<Lead>(&b.owner_scope, lead("Bravo Lead")).await.unwrap();
    Some(World { options, _db: db, a, b, lead_a, lead_b })
}

/// A raw connection acting as the application role, with `app.tenant_id` set or not.
async fn as_app(options: &PgConnectOptions, tenant: Option<uuid::Uuid>) -> PgConnection {
    let mut conn = PgConnection::connect_with(options).await.unwrap();
    sqlx::query("SET ROLE crm_app").execute(&mut conn).await.unwrap();
    if let Some(t) = tenant {
        sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
            .bind(t.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn every_tenant_table_has_forced_rls_and_a_policy() {
    let Some(w) = world().await else { return };
    let mut conn = PgConnection::connect_with(&w.options).await.unwrap();
    let tables = tenant_tables(&mut conn).await;
    assert!(tables.len() >= 10, "expected the tenant tables, found {tables:?}");
    for table in tables {
        let row = sqlx::query(
            "SELECT c.relrowsecurity, c.relforcerowsecurity,
                    (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = current_schema())
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1 AND n.nspname = current_schema()",
        )
        .bind(&table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let (enabled, forced, policies): (bool, bool, i64) = (row.get(0), row.get(1), row.get(2));
        assert!(
            enabled && forced && policies > 0,
            "{table}: rls enabled={enabled} forced={forced} policies={policies}"
        );
    }
    let bypass: bool = sqlx::query_scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'crm_app'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!bypass, "crm_app must not bypass RLS");
    let owns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = 'crm_app'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owns, 0, "crm_app must not own tables");
}

#[tokio::test]
async fn no_tenant_set_sees_no_rows() {
    let Some(w) = world().await else { return };
    let mut conn = as_app(&w.options, None).await;
    for table in tenant_tables(&mut conn).await {
        assert_eq!(count(&mut conn, &table).await, 0, "{table} visible without a tenant");
    }
}

#[tokio::test]
async fn tenant_a_sees_none_of_b_and_cannot_write_b() {
    let Some(w) = world().await else { return };
    let mut conn = as_app(&w.options, Some(w.a.tenant.id.uuid())).await;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM leads").fetch_all(&mut conn).await.unwrap();
    assert_eq!(ids, vec![w.lead_a.meta.id.uuid()]);
    for table in tenant_tables(&mut conn).await {
        let other: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE tenant_id <> $1")))
                .bind(w.a.tenant.id.uuid())
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(other, 0, "{table} shows another tenant's rows");
    }

    // Updating B's row touches nothing: it is invisible.
    let updated = sqlx::query("UPDATE leads SET company = 'pwned' WHERE id = $1")
        .bind(w.lead_b.meta.id.uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);

    // Inserting a row for B, or moving A's row to B, is refused by the policy.
    let insert = sqlx::query(
        "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, status, custom_fields, search_words)
         VALUES ($1, gen_random_uuid(), 1, now(), now(), 'new', '{}', '')",
    )
    .bind(w.b.tenant.id.uuid())
    .execute(&mut conn)
    .await;
    assert!(is_rls_violation(&insert), "insert into B: {insert:?}");
    let moved = sqlx::query("UPDATE leads SET tenant_id = $1 WHERE id = $2")
        .bind(w.b.tenant.id.uuid())
        .bind(w.lead_a.meta.id.uuid())
        .execute(&mut conn)
        .await;
    assert!(is_rls_violation(&moved) || moved.is_err(), "moving a row to B: {moved:?}");

    // Nothing of B changed.
    let mut admin = PgConnection::connect_with(&w.options).await.unwrap();
    let company: String = sqlx::query_scalar("SELECT company FROM leads WHERE id = $1")
        .bind(w.lead_b.meta.id.uuid())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(company, "Bravo Lead");
}

fn is_rls_violation(result: &Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn pooled_connection_keeps_no_tenant_after_a_transaction() {
    let Some(w) = world().await else { return };
    let pool = PgPoolOptions::new().max_connections(1).connect_with(w.options.clone()).await.unwrap();
    let crm = Crm::new(PgStore::from_pool(pool.clone()));
    let scope = crm.scope_for(w.a.tenant.id, w.a.owner.id).await.unwrap();
    let seen = crm.get(&scope, w.lead_a.meta.id).await.unwrap();
    assert_eq!(seen.meta.id, w.lead_a.meta.id);

    // The same (only) connection, next user: no tenant, original role, and as crm_app no rows.
    let mut conn = pool.acquire().await.unwrap();
    let (tenant, role): (Option<String>, String) =
        sqlx::query_as("SELECT current_setting('app.tenant_id', true), current_user::text")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(tenant.unwrap_or_default().is_empty(), "tenant setting leaked to the next transaction");
    assert_ne!(role, "crm_app", "role switch leaked past the transaction");
    sqlx::query("SET ROLE crm_app").execute(&mut *conn).await.unwrap();
    assert_eq!(count(&mut conn, "leads").await, 0);
    sqlx::query("RESET ROLE").execute(&mut *conn).await.unwrap();
}

/// Point reads (a record by id) send the settings and a prepared statement in one message,
/// preparing it on a connection that lacks it — also after a host reset the connection.
#[tokio::test]
async fn point_reads_prepare_again_after_a_reset_and_stay_in_their_tenant() {
    let Some(w) = world().await else { return };
    let pool = PgPoolOptions::new().max_connections(1).connect_with(w.options.clone()).await.unwrap();
    let crm = Crm::new(PgStore::from_pool(pool.clone()));
    let scope = crm.scope_for(w.a.tenant.id, w.a.owner.id).await.unwrap();
    assert_eq!(crm.get(&scope, w.lead_a.meta.id).await.unwrap().meta.id, w.lead_a.meta.id);
    let prepared: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'crm_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(prepared >= 1, "the point read is prepared on its connection");

    sqlx::query("DISCARD ALL").execute(&pool).await.unwrap();
    assert_eq!(crm.get(&scope, w.lead_a.meta.id).await.unwrap().meta.id, w.lead_a.meta.id);
    let other: Result<Lead, _> = crm.get(&scope, w.lead_b.meta.id).await;
    assert!(matches!(other, Err(crm_core::Error::NotFound)), "{other:?}");

    let (tenant, role): (Option<String>, String) =
        sqlx::query_as("SELECT current_setting('app.tenant_id', true), current_user::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(tenant.unwrap_or_default().is_empty(), "tenant setting leaked past a point read");
    assert_ne!(role, "crm_app", "role switch leaked past a point read");
}

#[tokio::test]
async fn audit_log_is_append_only_for_the_app_role() {
    let Some(w) = world().await else { return };
    let mut conn = as_app(&w.options, Some(w.a.tenant.id.uuid())).await;
    assert!(count(&mut conn, "audit_log").await > 0, "the tenant has audit entries to attack");
    for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let result = sqlx::query(sql).execute(&mut conn).await;
        assert!(is_rls_violation(&result), "{sql} must be denied: {result:?}");
    }
    let mut admin = PgConnection::connect_with(&w.options).await.unwrap();
    let actions: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'x'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(actions, 0);
}

/// The worker role reaches the job tables whole, and of the tables it purges only the columns
/// that say which row expires when: every other tenant table, every secret and every recorded
/// response is denied to it, and it can change no token or key, only delete one.
#[tokio::test]
async fn the_worker_role_reads_no_record_and_no_secret() {
    let Some(w) = world().await else { return };
    let mut conn = PgConnection::connect_with(&w.options).await.unwrap();
    sqlx::query("SET ROLE crm_worker").execute(&mut conn).await.unwrap();
    let job_tables = ["job_schedules", "job_tenants", "jobs"];
    for table in tenant_tables(&mut conn).await {
        let result = sqlx::query(AssertSqlSafe(format!("SELECT * FROM {table}"))).execute(&mut conn).await;
        if job_tables.contains(&table.as_str()) {
            assert!(result.is_ok(), "{table} is the worker's: {result:?}");
        } else {
            assert!(is_rls_violation(&result), "{table} must be denied to the worker: {result:?}");
        }
    }
    for allowed in [
        "SELECT tenant_id, id, expires_at FROM refresh_tokens",
        "SELECT tenant_id, principal, key, locked_until, expires_at FROM idempotency_keys",
        "DELETE FROM refresh_tokens WHERE expires_at < '2000-01-01'",
    ] {
        let result = sqlx::query(allowed).execute(&mut conn).await;
        assert!(result.is_ok(), "{allowed}: {result:?}");
    }
    for denied in [
        "SELECT secret_hash FROM refresh_tokens",
        "SELECT user_id FROM refresh_tokens",
        "SELECT response FROM idempotency_keys",
        "UPDATE refresh_tokens SET revoked_at = now()",
        "UPDATE idempotency_keys SET expires_at = now()",
        "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, token, created_at,
            locked_until, expires_at) VALUES (gen_random_uuid(), 'p', 'k', 'f', gen_random_uuid(), now(), now(), now())",
    ] {
        let result = sqlx::query(denied).execute(&mut conn).await;
        assert!(is_rls_violation(&result), "{denied} must be denied to the worker: {result:?}");
    }
}
