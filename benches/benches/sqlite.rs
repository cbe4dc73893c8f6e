//! Library operations on SQLite beside raw rusqlite doing the same SQL work, in the same run.
//!
//! `cargo bench -p crm-benches --bench sqlite` (`CRM_BENCH_QUICK=1` for a smoke run). Bulk
//! import is in the `import` bench.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crm_benches::{cursor_after, data, label, list_sizes, new_lead, runtime, sqlite};
use crm_core::ConvertLead;
use crm_core::model::{Deal, Lead, LeadStatus, NewAccount, NewDeal};
use crm_core::{Filter, ListRequest};
use rusqlite::params;

fn create(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(sqlite::fresh());
    rt.block_on(crm_benches::seed_leads(&f.crm, &f.scope, 1_000));
    let mut group = c.benchmark_group("sqlite_create_lead");
    let n = AtomicUsize::new(10_000);
    group.bench_function("crm (lead + audit + outbox)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            black_box(f.crm.create::<Lead>(&f.scope, new_lead(i)).await.expect("create"))
        })
    });
    let mut conn = sqlite::raw(&f.path);
    let tenant = f.tenant_blob();
    group.bench_function("raw (single-row insert transaction)", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let l = data::fields(i);
            let tx = conn.unchecked_transaction().expect("tx");
            tx.prepare_cached(
                "INSERT INTO leads (tenant_id, id, version, created_at, updated_at, first_name, last_name, email,
                 company, status, custom_fields, search_words) VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6, ?7, ?8, '{}', ?9)",
            )
            .expect("prepare")
            .execute(params![
                tenant,
                uuid::Uuid::now_v7().as_bytes().as_slice(),
                0i64,
                l.first_name,
                l.last_name,
                l.email,
                l.company,
                l.status.as_str(),
                l.search_words()
            ])
            .expect("insert");
            tx.commit().expect("commit");
        })
    });
    let (tenant, owner) = (f.scope.tenant_id().uuid(), f.scope.user_id().expect("user").uuid());
    group.bench_function("raw (lead + audit + outbox transaction)", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            sqlite::create_same_rows(&mut conn, tenant, owner, &data::fields(i));
        })
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(sqlite::seeded(10_000));
    let conn = sqlite::raw(&f.path);
    let tenant = f.tenant_blob();
    let id = sqlite::nth_id(&conn, &tenant, "new", 1_000);
    let lead_id = crm_core::Id::<Lead>::from_uuid(id);
    let mut group = c.benchmark_group("sqlite_get_lead");
    group.bench_function("crm", |b| {
        b.to_async(&rt).iter(|| async { black_box(f.crm.get(&f.scope, lead_id).await.expect("get")) })
    });
    group.bench_function("raw (point select, every column decoded)", |b| {
        b.iter(|| black_box(sqlite::get(&conn, &tenant, id)))
    });
    group.finish();
}

/// One page of 50 (the library asks the store for 51 to know whether more follow; so does the
/// raw query): a filtered keyset page from the middle of the list, a selective text search (a
/// surname: one lead) and a common one (a company word: 1 % of the leads).
fn list_and_search(c: &mut Criterion) {
    let rt = runtime();
    for n in list_sizes() {
        let f = rt.block_on(sqlite::seeded(n));
        let conn = sqlite::raw(&f.path);
        let tenant = f.tenant_blob();
        let size = label(n);

        let middle = sqlite::nth_id(&conn, &tenant, "qualified", n / 8);
        let mut filter = Filter::default();
        filter.status = Some(LeadStatus::Qualified);
        let request = ListRequest::new().limit(50).filter(filter).cursor(Some(cursor_after(middle)));
        let mut group = c.benchmark_group("sqlite_list_page_status_keyset");
        group.bench_function(BenchmarkId::new("crm", &size), |b| {
            b.to_async(&rt).iter(|| async {
                let page = f.crm.list::<Lead>(&f.scope, request.clone()).await.expect("list");
                assert_eq!(page.data.len(), 50);
                black_box(page)
            })
        });
        group.bench_function(BenchmarkId::new("raw", &size), |b| {
            b.iter(|| black_box(sqlite::list_by_status(&conn, &tenant, "qualified", middle, 51)))
        });
        group.finish();

        let surname = data::surname(n / 2).to_lowercase();
        let company = data::company_word(7).to_lowercase();
        for (name, q, rare) in
            [("surname", surname.as_str(), true), ("company_1pct", company.as_str(), false)]
        {
            let mut group = c.benchmark_group(format!("sqlite_search_{name}"));
            group.bench_function(BenchmarkId::new("crm", &size), |b| {
                b.to_async(&rt).iter(|| async {
                    let page = f.crm.list::<Lead>(&f.scope, ListRequest::new().limit(50).q(q)).await;
                    black_box(page.expect("search"))
                })
            });
            group.bench_function(BenchmarkId::new("raw", &size), |b| {
                b.iter(|| black_box(sqlite::search(&conn, &tenant, &[q], 51, rare)))
            });
            group.finish();
        }
    }
}

/// Converting a lead into an account, a contact and a deal. Fresh leads are imported before
/// each measured batch (not timed).
fn convert(c: &mut Criterion) {
    let rt = runtime();
    let f = &rt.block_on(sqlite::fresh());
    let next = AtomicUsize::new(0);
    let leads = |count: u64| {
        let from = next.fetch_add(count as usize, Ordering::Relaxed);
        let rows = data::new_leads(from..from + count as usize);
        let crm = f.crm.clone();
        let scope = f.scope.clone();
        async move { crm.import::<Lead>(&scope, rows, Default::default()).await.expect("import").created }
    };
    let input = |lead: &Lead| ConvertLead {
        account: Some(NewAccount { name: lead.company.clone().unwrap_or_default(), ..Default::default() }),
        deal: Some(NewDeal {
            name: format!("{} deal", lead.company.as_deref().unwrap_or("")),
            ..Default::default()
        }),
        contact: None,
    };
    let mut group = c.benchmark_group("sqlite_convert_lead");
    group.bench_function("crm (account + contact + deal)", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let leads = leads(iters).await;
            let start = Instant::now();
            for lead in &leads {
                black_box(f.crm.convert_lead(&f.scope, lead.meta.id, input(lead)).await.expect("convert"));
            }
            start.elapsed()
        })
    });
    let mut conn = sqlite::raw(&f.path);
    let (tenant, owner) = (f.scope.tenant_id().uuid(), f.scope.user_id().expect("user").uuid());
    let pipeline = rt.block_on(f.crm.pipelines(&f.scope)).expect("pipelines")[0].meta.id.uuid();
    group.bench_function("raw (same rows, one transaction)", |b| {
        b.iter_custom(|iters| {
            let leads = rt.block_on(leads(iters));
            let start = Instant::now();
            for lead in &leads {
                sqlite::convert(&mut conn, tenant, owner, pipeline, lead.meta.id.uuid());
            }
            start.elapsed()
        })
    });
    group.finish();
}

const STAGES: [&str; 4] = ["prospecting", "qualification", "proposal", "negotiation"];

/// Moving a deal to the next open stage (cycling through the four).
fn stage_move(c: &mut Criterion) {
    let rt = runtime();
    let f = rt.block_on(sqlite::fresh());
    let new_deal = || NewDeal { name: "Bench deal".into(), ..Default::default() };
    let deal = rt.block_on(f.crm.create::<Deal>(&f.scope, new_deal())).expect("deal");
    let state = Cell::new((deal.meta.version, 0usize));
    let mut group = c.benchmark_group("sqlite_move_deal_stage");
    group.bench_function("crm", |b| {
        b.to_async(&rt).iter(|| async {
            let (version, at) = state.get();
            let to = STAGES[(at + 1) % STAGES.len()];
            let moved =
                f.crm.move_deal_to_stage(&f.scope, deal.meta.id, Some(version), to).await.expect("move");
            state.set((moved.meta.version, at + 1));
        })
    });
    let raw_deal = rt.block_on(f.crm.create::<Deal>(&f.scope, new_deal())).expect("deal");
    let mut conn = sqlite::raw(&f.path);
    let (tenant, owner) = (f.scope.tenant_id().uuid(), f.scope.user_id().expect("user").uuid());
    let state = Cell::new((raw_deal.meta.version, 0usize));
    group.bench_function("raw (same rows, one transaction)", |b| {
        b.iter(|| {
            let (version, at) = state.get();
            let (from, to) = (STAGES[at % STAGES.len()], STAGES[(at + 1) % STAGES.len()]);
            let id = raw_deal.meta.id.uuid();
            sqlite::move_stage(&mut conn, tenant, owner, raw_deal.pipeline_id.uuid(), id, version, from, to);
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
