//! Bulk import of leads through the library (each lead validated, with its audit entry and
//! outbox event, committed in batches of `IMPORT_BATCH`) beside the raw driver writing the same
//! rows in the same batches: prepared inserts on SQLite, `COPY` on Postgres.
//!
//! The smaller size (100k) is measured by criterion, ten samples, each into a fresh database;
//! the larger (1M) is timed once per side — ten samples of it would take most of an hour — and
//! printed as a `ONCE` line. `CRM_BENCH_QUICK=1` shrinks both.
//!
//! `cargo bench -p crm-benches --bench import` (Postgres with `CRM_TEST_DATABASE_URL`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use crm_benches::data::{self, LeadFields};
use crm_benches::{import_sizes, label, pg, report_once, runtime, sqlite};
use crm_core::IMPORT_BATCH;
use crm_core::model::Lead;

fn rows(n: usize) -> Vec<LeadFields> {
    (0..n).map(data::fields).collect()
}

async fn crm_sqlite(n: usize) -> Duration {
    let f = sqlite::fresh().await;
    let input = data::new_leads(0..n);
    let start = Instant::now();
    let report = f.crm.import::<Lead>(&f.scope, input, Default::default()).await.expect("import");
    let elapsed = start.elapsed();
    assert_eq!(report.created.len(), n);
    black_box(report);
    elapsed
}

async fn raw_sqlite(fields: &[LeadFields]) -> Duration {
    let f = sqlite::fresh().await;
    let mut conn = sqlite::raw(&f.path);
    let (tenant, owner) = (f.scope.tenant_id().uuid(), f.scope.user_id().expect("user").uuid());
    let start = Instant::now();
    sqlite::import(&mut conn, tenant, owner, fields, IMPORT_BATCH);
    start.elapsed()
}

async fn crm_pg(url: &str, n: usize) -> Duration {
    let f = pg::fresh(url).await;
    let input = data::new_leads(0..n);
    let start = Instant::now();
    let report = f.crm.import::<Lead>(&f.scope, input, Default::default()).await.expect("import");
    let elapsed = start.elapsed();
    assert_eq!(report.created.len(), n);
    black_box(report);
    elapsed
}

async fn raw_pg(url: &str, fields: &[LeadFields]) -> Duration {
    let f = pg::fresh(url).await;
    let start = Instant::now();
    pg::import(&f.pool, f.tenant(), f.owner(), fields, IMPORT_BATCH).await;
    start.elapsed()
}

fn group_settings(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(1));
}

fn sqlite_import(c: &mut Criterion) {
    let rt = runtime();
    let (small, big) = import_sizes();
    let fields = rows(small);
    let mut group = c.benchmark_group(format!("sqlite_import_{}", label(small)));
    group_settings(&mut group);
    group.bench_function("crm", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(crm_sqlite(small))).sum())
    });
    group.bench_function("raw (prepared inserts, same batches)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(raw_sqlite(&fields))).sum())
    });
    group.finish();
    drop(fields);

    let fields = rows(big);
    let raw = rt.block_on(raw_sqlite(&fields));
    drop(fields);
    let crm = rt.block_on(crm_sqlite(big));
    report_once(&format!("sqlite_import_{}", label(big)), crm, raw, big);
}

fn pg_import(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    let (small, big) = import_sizes();
    let fields = rows(small);
    let mut group = c.benchmark_group(format!("pg_import_{}", label(small)));
    group_settings(&mut group);
    group.bench_function("crm (RLS)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(crm_pg(&url, small))).sum())
    });
    group.bench_function("raw (COPY, same batches)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(raw_pg(&url, &fields))).sum())
    });
    group.finish();
    drop(fields);

    let fields = rows(big);
    let raw = rt.block_on(raw_pg(&url, &fields));
    drop(fields);
    let crm = rt.block_on(crm_pg(&url, big));
    report_once(&format!("pg_import_{}", label(big)), crm, raw, big);
}

criterion_group! {
    name = benches;
    config = crm_benches::criterion();
    targets = sqlite_import, pg_import
}
criterion_main!(benches);
