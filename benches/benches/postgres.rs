//! Library operations on Postgres beside raw sqlx doing the same SQL work, in the same run.
//!
//! Needs `CRM_TEST_DATABASE_URL` (a role that may create databases); skips without it.
//! `cargo bench -p crm-benches --bench postgres -- --quick`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use crm_benches::new_lead;
use crm_core::Crm;
use crm_core::model::{Lead, NewTenant, NewUser};

fn benches(c: &mut Criterion) {
    if std::env::var("CRM_TEST_DATABASE_URL").is_err() {
        eprintln!("SKIPPED postgres benches: set CRM_TEST_DATABASE_URL");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let store = rt.block_on(crm_storage_postgres::testing::fresh_store()).expect("store");
    let pool = store.pool().clone();
    let crm = Crm::new(store);
    let scope = rt
        .block_on(crm.create_tenant(NewTenant {
            name: "Bench".into(),
            slug: "bench".into(),
            owner: NewUser { email: "owner@bench.example".into(), name: "Owner".into() },
        }))
        .expect("tenant")
        .owner_scope;
    let tenant = scope.tenant_id().uuid();
    let n = AtomicUsize::new(0);

    let mut group = c.benchmark_group("pg_create_lead");
    group.bench_function("crm (lead + audit + outbox, RLS)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            black_box(crm.create::<Lead>(&scope, new_lead(i)).await.expect("create"))
        })
    });
    group.bench_function("raw sqlx (single-row insert transaction)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query(
                "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
                 company, status, custom_fields, search_words)
                 VALUES ($1, $2, 1, now(), now(), 'Ada', $3, $4, 'Analytical Engines', 'new', '{}', '')",
            )
            .bind(tenant)
            .bind(uuid::Uuid::now_v7())
            .bind(format!("Lovelace {i}"))
            .bind(format!("ada{i}@example.com"))
            .execute(&mut *tx)
            .await
            .expect("insert");
            tx.commit().await.expect("commit");
        })
    });
    group.finish();

    let id = rt.block_on(crm.create::<Lead>(&scope, new_lead(0))).expect("lead").meta.id;
    let mut group = c.benchmark_group("pg_get_lead");
    group.bench_function("crm (scoped transaction, RLS)", |b| {
        b.to_async(&rt).iter(|| async { black_box(crm.get(&scope, id).await.expect("get")) })
    });
    group.bench_function("raw sqlx (point select)", |b| {
        b.to_async(&rt).iter(|| async {
            let row: (Option<String>, serde_json::Value) = sqlx::query_as(
                "SELECT last_name, custom_fields FROM leads WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant)
            .bind(id.uuid())
            .fetch_one(&pool)
            .await
            .expect("row");
            black_box(row)
        })
    });
    group.finish();
}

criterion_group!(postgres, benches);
criterion_main!(postgres);
