//! Library operations on SQLite beside raw rusqlite doing the same SQL work, in the same run.
//!
//! `cargo bench -p crm-benches --bench sqlite` (add `-- --quick` for a smoke run).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use crm_benches::{fixture, new_lead};
use crm_core::ListRequest;
use crm_core::model::Lead;
use rusqlite::{Connection, params};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A raw connection with the store's pragmas, for the baseline.
fn raw(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("open raw");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    conn
}

fn create(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(1_000));
    let mut group = c.benchmark_group("create_lead");
    let n = AtomicUsize::new(10_000);
    group.bench_function("crm (lead + audit + outbox)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            black_box(f.crm.create::<Lead>(&f.scope, new_lead(i)).await.expect("create"))
        })
    });
    let conn = raw(&f.path);
    let tenant = f.scope.tenant_id().uuid();
    group.bench_function("raw rusqlite (single-row insert transaction)", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let tx = conn.unchecked_transaction().expect("tx");
            tx.prepare_cached(
                "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
                 company, status, custom_fields, search_words) VALUES (?1, ?2, 1, ?3, ?3, 'Ada', ?4, ?5,
                 'Analytical Engines', 'new', '{}', '')",
            )
            .expect("prepare")
            .execute(params![
                tenant.as_bytes().to_vec(),
                uuid::Uuid::now_v7().as_bytes().to_vec(),
                0i64,
                format!("Lovelace {i}"),
                format!("ada{i}@example.com")
            ])
            .expect("insert");
            tx.commit().expect("commit");
        })
    });
    group.finish();
}

fn get_and_list(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(fixture(10_000));
    let page = rt.block_on(f.crm.list::<Lead>(&f.scope, ListRequest::new().limit(1))).expect("list");
    let id = page.data[0].meta.id;
    let mut group = c.benchmark_group("get_lead");
    group.bench_function("crm", |b| {
        b.to_async(&rt).iter(|| async { black_box(f.crm.get(&f.scope, id).await.expect("get")) })
    });
    let conn = raw(&f.path);
    let tenant = f.scope.tenant_id().uuid();
    group.bench_function("raw rusqlite (point select)", |b| {
        b.iter(|| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant_id, id, version, created_at, updated_at, deleted_at, first_name, last_name,
                     email, phone, company, title, source, status, owner_id, converted_contact_id, custom_fields
                     FROM leads WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
                )
                .expect("prepare");
            let row = stmt
                .query_row(params![tenant.as_bytes().to_vec(), id.uuid().as_bytes().to_vec()], |r| {
                    Ok((r.get::<_, Option<String>>(7)?, r.get::<_, String>(16)?))
                })
                .expect("row");
            black_box(row)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("list_50_leads_of_10k");
    group.bench_function("crm", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(f.crm.list::<Lead>(&f.scope, ListRequest::new().limit(50)).await.expect("list"))
        })
    });
    group.bench_function("crm search q=lovelace", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                f.crm.list::<Lead>(&f.scope, ListRequest::new().q("lovelace 12")).await.expect("search"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, create, get_and_list);
criterion_main!(benches);
