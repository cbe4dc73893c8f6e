//! The job runner on Postgres, measured as `benches/jobs.sh` compares it with graphile-worker:
//! no-op jobs per second (all enqueued first, then run to the last), and enqueue-to-start
//! latency (one job at a time into idle runners woken by `LISTEN/NOTIFY`).
//!
//! `crm-bench-jobs <admin-url> <jobs> <runners> <concurrency> <latency-samples>` prints one
//! JSON line. The database is fresh and dropped afterwards.

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
