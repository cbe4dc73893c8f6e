//! Migration 0004 moved search onto `search_terms` (a B-tree Row-Level Security lets searches
//! use). Databases migrated before it hold records without terms: the migration adds them, for
//! every tenant (one tenant at a time, so an owning role subject to the forced policies can too).

use crm_core::model::{Lead, NewLead};
use crm_core::testkit::{deterministic_crm, tenant};
use crm_core::{Crm, ListRequest, Scope};
use crm_storage_postgres::testing::fresh_store;
use sqlx::{Connection, PgConnection};

async fn found(crm: &Crm, scope: &Scope, q: &str) -> Vec<String> {
    let page = crm.list::<Lead>(scope, ListRequest::new().q(q)).await.unwrap();
    page.data.into_iter().filter_map(|l| l.company).collect()
}

#[tokio::test]
async fn records_from_before_the_terms_table_are_found_after_it() {
    let Some(store) = fresh_store().await else { return };
    let crm = deterministic_crm((*store).clone(), 1);
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    for (scope, company) in [(&acme.owner_scope, "Acme Rockets"), (&globex.owner_scope, "Globex Rockets")] {
        let new = NewLead { company: Some(company.into()), ..NewLead::default() };
        crm.create::<Lead>(scope, new).await.unwrap();
    }

    // Back to schema 3 with its data: no terms table (nor the tasks, jobs, schedules, retention
    // and webhooks after it), the GIN index, version 3 recorded.
    let options = store.pool().connect_options().as_ref().clone();
    let mut owner = PgConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql(
        "DROP POLICY purge ON refresh_tokens;
         DROP POLICY purge ON idempotency_keys;
         DROP INDEX refresh_tokens_expiry, idempotency_keys_expired;
         DROP TABLE webhook_attempts, webhook_deliveries;
         DROP TABLE webhooks;
         DROP TABLE job_schedules;
         DROP TABLE jobs, job_tenants;
         DROP SEQUENCE job_claims;
         DROP TABLE tasks;
         DROP TABLE search_terms;
         DROP FUNCTION crm_search_terms_added, crm_search_terms_changed, crm_search_terms_removed CASCADE;
         DROP FUNCTION crm_search_terms_of;
         CREATE INDEX leads_search ON leads USING gin (tenant_id, search);
         DELETE FROM crm_schema_migrations WHERE version >= 4;",
    )
    .execute(&mut owner)
    .await
    .unwrap();

    store.migrate().await.unwrap();
    assert_eq!(found(&crm, &acme.owner_scope, "rock").await, ["Acme Rockets"]);
    assert_eq!(found(&crm, &globex.owner_scope, "rockets").await, ["Globex Rockets"]);
    let gin: Option<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE indexname = 'leads_search'")
            .fetch_optional(&mut owner)
            .await
            .unwrap();
    assert_eq!(gin, None, "the GIN index is gone");
}
