//! Library operations on Postgres beside raw sqlx doing the same SQL work, in the same run.
//!
//! Needs `CRM_TEST_DATABASE_URL` (a role that may create databases); skips without it.
//! `cargo bench -p crm-benches --bench postgres` (`CRM_BENCH_QUICK=1` for a smoke run). Bulk
//! import is in the `import` bench.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crm_benches::{cursor_after, data, label, list_sizes, new_lead, pg, runtime};
use crm_core::model::{Deal, Lead, LeadStatus, NewAccount, NewDeal};
use crm_core::{ConvertLead, Filter, ListRequest};

fn create(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    let f = rt.block_on(pg::fresh(&url));
    rt.block_on(crm_benches::seed_leads(&f.crm, &f.scope, 1_000));
    let (tenant, owner) = (f.tenant(), f.owner());
    let n = AtomicUsize::new(10_000);
    let mut group = c.benchmark_group("pg_create_lead");
    group.bench_function("crm (lead + audit + outbox, RLS)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            black_box(f.crm.create::<Lead>(&f.scope, new_lead(i)).await.expect("create"))
        })
    });
    group.bench_function("raw (single-row insert transaction)", |b| {
        b.to_async(&rt).iter(|| async {
            let l = data::fields(n.fetch_add(1, Ordering::Relaxed));
            let mut tx = f.pool.begin().await.expect("begin");
            sqlx::query(
                "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
                 company, status, custom_fields, search_words)
                 VALUES ($1, $2, 1, now(), now(), $3, $4, $5, $6, $7, '{}', $8)",
            )
            .bind(tenant)
            .bind(uuid::Uuid::now_v7())
            .bind(&l.first_name)
            .bind(&l.last_name)
            .bind(&l.email)
            .bind(&l.company)
            .bind(l.status.as_str())
            .bind(l.search_words())
            .execute(&mut *tx)
            .await
            .expect("insert");
            tx.commit().await.expect("commit");
        })
    });
    group.bench_function("raw (lead + audit + outbox transaction)", |b| {
        b.to_async(&rt).iter(|| async {
            let l = data::fields(n.fetch_add(1, Ordering::Relaxed));
            pg::create_same_rows(&f.pool, tenant, owner, &l).await
        })
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    let f = rt.block_on(pg::seeded(&url, 10_000));
    let tenant = f.tenant();
    let id = rt.block_on(pg::nth_id(&f.pool, tenant, "new", 1_000));
    let lead_id = crm_core::Id::<Lead>::from_uuid(id);
    let mut group = c.benchmark_group("pg_get_lead");
    group.bench_function("crm (scoped transaction, RLS)", |b| {
        b.to_async(&rt).iter(|| async { black_box(f.crm.get(&f.scope, lead_id).await.expect("get")) })
    });
    group.bench_function("raw (point select, every column decoded)", |b| {
        b.to_async(&rt).iter(|| async { black_box(pg::get(&f.pool, tenant, id).await) })
    });
    group.finish();
}

/// As on SQLite: a filtered keyset page from the middle, a selective search (one surname) and
/// a common one (a company word on 1 % of the leads), 50 per page (51 asked for).
fn list_and_search(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    for n in list_sizes() {
        let f = rt.block_on(pg::seeded(&url, n));
        let tenant = f.tenant();
        let size = label(n);

        let middle = rt.block_on(pg::nth_id(&f.pool, tenant, "qualified", n / 8));
        let mut filter = Filter::default();
        filter.status = Some(LeadStatus::Qualified);
        let request = ListRequest::new().limit(50).filter(filter).cursor(Some(cursor_after(middle)));
        let mut group = c.benchmark_group("pg_list_page_status_keyset");
        group.bench_function(BenchmarkId::new("crm", &size), |b| {
            b.to_async(&rt).iter(|| async {
                let page = f.crm.list::<Lead>(&f.scope, request.clone()).await.expect("list");
                assert_eq!(page.data.len(), 50);
                black_box(page)
            })
        });
        group.bench_function(BenchmarkId::new("raw", &size), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(pg::list_by_status(&f.pool, tenant, "qualified", middle, 51).await)
            })
        });
        group.finish();

        let surname = data::surname(n / 2).to_lowercase();
        let company = data::company_word(7).to_lowercase();
        for (name, q, rare) in
            [("surname", surname.as_str(), true), ("company_1pct", company.as_str(), false)]
        {
            let mut group = c.benchmark_group(format!("pg_search_{name}"));
            group.bench_function(BenchmarkId::new("crm", &size), |b| {
                b.to_async(&rt).iter(|| async {
                    let page = f.crm.list::<Lead>(&f.scope, ListRequest::new().limit(50).q(q)).await;
                    black_box(page.expect("search"))
                })
            });
            group.bench_function(BenchmarkId::new("raw", &size), |b| {
                b.to_async(&rt)
                    .iter(|| async { black_box(pg::search(&f.pool, tenant, &[q], 51, rare).await) })
            });
            group.finish();
        }
    }
}

/// Converting a lead into an account, a contact and a deal; fresh leads are imported before
/// each measured batch (not timed).
fn convert(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    let f = &rt.block_on(pg::fresh(&url));
    let next = AtomicUsize::new(0);
    let leads = |count: u64| {
        let from = next.fetch_add(count as usize, Ordering::Relaxed);
        let rows = data::new_leads(from..from + count as usize);
        async move { f.crm.import::<Lead>(&f.scope, rows, Default::default()).await.expect("import").created }
    };
    let input = |lead: &Lead| ConvertLead {
        account: Some(NewAccount { name: lead.company.clone().unwrap_or_default(), ..Default::default() }),
        deal: Some(NewDeal {
            name: format!("{} deal", lead.company.as_deref().unwrap_or("")),
            ..Default::default()
        }),
        contact: None,
    };
    let (tenant, owner) = (f.tenant(), f.owner());
    let pipeline = rt.block_on(pg::pipeline(&f.pool, tenant));
    let mut group = c.benchmark_group("pg_convert_lead");
    group.bench_function("crm (account + contact + deal, RLS)", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let leads = leads(iters).await;
            let start = Instant::now();
            for lead in &leads {
                black_box(f.crm.convert_lead(&f.scope, lead.meta.id, input(lead)).await.expect("convert"));
            }
            start.elapsed()
        })
    });
    group.bench_function("raw (same rows, one transaction)", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let leads = leads(iters).await;
            let start = Instant::now();
            for lead in &leads {
                pg::convert(&f.pool, tenant, owner, pipeline, lead.meta.id.uuid()).await;
            }
            start.elapsed()
        })
    });
    group.finish();
}

const STAGES: [&str; 4] = ["prospecting", "qualification", "proposal", "negotiation"];

/// Moving a deal to the next open stage (cycling through the four).
fn stage_move(c: &mut Criterion) {
    let Some(url) = pg::url() else { return };
    let rt = runtime();
    let f = rt.block_on(pg::fresh(&url));
    let new_deal = || NewDeal { name: "Bench deal".into(), ..Default::default() };
    let deal = rt.block_on(f.crm.create::<Deal>(&f.scope, new_deal())).expect("deal");
    let state = Cell::new((deal.meta.version, 0usize));
    let mut group = c.benchmark_group("pg_move_deal_stage");
    group.bench_function("crm (RLS)", |b| {
        b.to_async(&rt).iter(|| async {
            let (version, at) = state.get();
            let to = STAGES[(at + 1) % STAGES.len()];
            let moved =
                f.crm.move_deal_to_stage(&f.scope, deal.meta.id, Some(version), to).await.expect("move");
            state.set((moved.meta.version, at + 1));
        })
    });
    let raw_deal = rt.block_on(f.crm.create::<Deal>(&f.scope, new_deal())).expect("deal");
    let (tenant, owner) = (f.tenant(), f.owner());
    let state = Cell::new((raw_deal.meta.version, 0usize));
    group.bench_function("raw (same rows, one transaction)", |b| {
        b.to_async(&rt).iter(|| async {
            let (version, at) = state.get();
            let (from, to) = (STAGES[at % STAGES.len()], STAGES[(at + 1) % STAGES.len()]);
            let (id, pipeline) = (raw_deal.meta.id.uuid(), raw_deal.pipeline_id.uuid());
            pg::move_stage(&f.pool, tenant, owner, pipeline, id, version, from, to).await;
            state.set((version + 1, at + 1));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = crm_benches::criterion();
    targets = create, get, list_and_search, convert, stage_move
}
criterion_main!(benches);
