//! The job runner on Postgres, measured as `benches/jobs.sh` compares it with graphile-worker:
//! no-op jobs per second (all enqueued first, then run to the last), and enqueue-to-start
//! latency (one job at a time into idle runners woken by `LISTEN/NOTIFY`).
//!
//! `crm-bench-jobs <admin-url> <jobs> <runners> <concurrency> <latency-samples>` prints one
//! JSON line. The database is fresh and dropped afterwards.
//!
//! `crm-bench-jobs fairness <admin-url> <flood>`: one tenant enqueues `flood` jobs, a runner
//! works through them, and a second tenant's one job enqueued meanwhile waits for how many of
//! the flood's jobs to start before its own (tenant-fair claiming, issue 16).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crm_core::Crm;
use crm_core::job::{Failure, NewJob};
use crm_core::runner::{JobContext, RunnerConfig};
use crm_storage_postgres::PgStore;
use crm_storage_postgres::testing::fresh_database;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Mutex, Notify};

#[derive(Default)]
struct Counter {
    done: AtomicUsize,
    target: AtomicUsize,
    all_done: Notify,
    starts: Mutex<Vec<Instant>>,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("fairness") {
        let (url, flood) = (&args[2], args[3].parse().expect("a flood size"));
        return fairness(url, flood).await;
    }
    let [_, url, jobs, runners, concurrency, samples] = args.as_slice() else {
        eprintln!("usage: crm-bench-jobs <admin-url> <jobs> <runners> <concurrency> <latency-samples>");
        std::process::exit(2);
    };
    let (jobs, runners, concurrency, samples): (usize, usize, usize, usize) = (
        jobs.parse().unwrap(),
        runners.parse().unwrap(),
        concurrency.parse().unwrap(),
        samples.parse().unwrap(),
    );

    let db = fresh_database(url).await;
    let pool = PgPoolOptions::new().max_connections((runners * 3 + 8) as u32);
    let store = PgStore::connect_with(db.options.clone(), pool).await.expect("connect and migrate");
    let counter = Arc::new(Counter::default());
    let seen = Arc::clone(&counter);
    let crm = Crm::builder(store)
        .job_handler("bench.noop", move |_ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                let done = seen.done.fetch_add(1, Ordering::SeqCst) + 1;
                if done == seen.target.load(Ordering::SeqCst) {
                    seen.all_done.notify_one();
                }
                Ok::<(), Failure>(())
            }
        })
        .job_handler("bench.latency", {
            let seen = Arc::clone(&counter);
            move |_ctx: JobContext| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.starts.lock().await.push(Instant::now());
                    seen.all_done.notify_one();
                    Ok::<(), Failure>(())
                }
            }
        })
        .build();
    let scope = crm_benches::create_tenant(&crm).await;

    // Throughput: every job enqueued first (8 at a time), then the runners start.
    let enqueue_started = Instant::now();
    let enqueuers: Vec<_> = (0..8)
        .map(|w| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move {
                for n in (w..jobs).step_by(8) {
                    let new = NewJob::new("bench.noop", serde_json::json!({ "n": n }));
                    crm.enqueue_job(&scope, new).await.expect("enqueue");
                }
            })
        })
        .collect();
    for e in enqueuers {
        e.await.unwrap();
    }
    let enqueue_secs = enqueue_started.elapsed().as_secs_f64();
    counter.target.store(jobs, Ordering::SeqCst);
    let config = RunnerConfig { concurrency, ..RunnerConfig::default() };
    let started = Instant::now();
    let handles: Vec<_> = (0..runners).map(|_| crm.run_jobs(config).expect("a runner")).collect();
    counter.all_done.notified().await;
    let run_secs = started.elapsed().as_secs_f64();

    // Latency: idle runners, one job at a time.
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = counter.starts.lock().await.len();
        let waiting = counter.all_done.notified();
        let sent = Instant::now();
        crm.enqueue_job(&scope, NewJob::new("bench.latency", serde_json::Value::Null))
            .await
            .expect("enqueue");
        waiting.await;
        let starts = counter.starts.lock().await;
        assert_eq!(starts.len(), before + 1);
        latencies.push(starts[before].duration_since(sent).as_secs_f64() * 1000.0);
    }
    for handle in handles {
        handle.shutdown().await;
    }
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "side": "crm",
            "jobs": jobs,
            "runners": runners,
            "concurrency": concurrency,
            "enqueue_per_sec": jobs as f64 / enqueue_secs,
            "jobs_per_sec": jobs as f64 / run_secs,
            "latency_ms": { "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0), "samples": samples },
        })
    );
    drop(crm);
    drop(db);
}

/// The flood's jobs started between the other tenant's enqueue and its job's start.
async fn fairness(url: &str, flood: usize) {
    let db = fresh_database(url).await;
    let store = PgStore::connect_with(db.options.clone(), PgPoolOptions::new().max_connections(16))
        .await
        .expect("connect and migrate");
    let started: Arc<Mutex<Vec<bool>>> = Arc::default(); // true: the other tenant's job
    let other_started = Arc::new(Notify::new());
    let (seen, notify) = (Arc::clone(&started), Arc::clone(&other_started));
    let crm = Crm::builder(store)
        .job_handler("bench.noop", move |ctx: JobContext| {
            let (seen, notify) = (Arc::clone(&seen), Arc::clone(&notify));
            async move {
                let other = ctx.job.payload["other"].as_bool().unwrap_or(false);
                seen.lock().await.push(other);
                if other {
                    notify.notify_one();
                }
                Ok::<(), Failure>(())
            }
        })
        .build();
    let flooding = crm_benches::create_tenant(&crm).await;
    let other = crm
        .create_tenant(crm_core::model::NewTenant {
            name: "Other".into(),
            slug: "other".into(),
            owner: crm_core::model::NewUser { email: "owner@other.example".into(), name: "Owner".into() },
        })
        .await
        .expect("a second tenant")
        .owner_scope;
    let enqueuers: Vec<_> = (0..8)
        .map(|w| {
            let (crm, scope) = (crm.clone(), flooding.clone());
            tokio::spawn(async move {
                for n in (w..flood).step_by(8) {
                    let new = NewJob::new("bench.noop", serde_json::json!({ "n": n }));
                    crm.enqueue_job(&scope, new).await.expect("enqueue");
                }
            })
        })
        .collect();
    for e in enqueuers {
        e.await.unwrap();
    }
    let runner = crm.run_jobs(RunnerConfig::default()).expect("a runner");
    while started.lock().await.len() < 1000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waiting = other_started.notified();
    let before = started.lock().await.len();
    crm.enqueue_job(&other, NewJob::new("bench.noop", serde_json::json!({ "other": true }))).await.unwrap();
    let enqueued = started.lock().await.len();
    waiting.await;
    let order = started.lock().await.clone();
    let position = order.iter().position(|&o| o).expect("the other tenant's job ran");
    runner.shutdown().await;
    println!(
        "{}",
        serde_json::json!({
            "side": "crm",
            "flood": flood,
            "flood_jobs_started_before_enqueue": before,
            "flood_jobs_started_during_enqueue": enqueued - before,
            "flood_jobs_started_after_enqueue_before_it": position - enqueued,
            "flood_left_when_it_started": flood - position,
        })
    );
    drop(crm);
    drop(db);
}
