//! Webhooks delivered per second to a local receiver (issue 16): `events` leads are created
//! (each fans out one delivery and its job in its own transaction), then runners send them all
//! through `WebhookClient` to an axum receiver on loopback that verifies every signature.
//!
//! `crm-bench-webhooks <admin-url|sqlite> <events> <runners> <concurrency>` prints one JSON
//! line. A Postgres database is fresh and dropped afterwards; SQLite is a fresh temporary file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use crm_core::model::{Lead, NewLead, NewWebhook};
use crm_core::outbound::OutboundPolicy;
use crm_core::runner::RunnerConfig;
use crm_core::webhook::{WebhookSecret, verify};
use crm_core::{Crm, Store};
use crm_http::webhook_client::WebhookClient;
use tokio::sync::Notify;

/// What the receiver counts: verified deliveries, and any it could not verify.
struct Receiver {
    secret: std::sync::OnceLock<WebhookSecret>,
    verified: AtomicUsize,
    refused: AtomicUsize,
    target: AtomicUsize,
    all_in: Notify,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp: i64 = value("webhook-timestamp").parse().unwrap_or_default();
    let secret = r.secret.get().expect("the secret is known before any delivery");
    let now = chrono::Utc::now().timestamp();
    if !verify(&[secret], &value("webhook-signature"), &value("webhook-id"), timestamp, &body, now) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST;
    }
    if r.verified.fetch_add(1, Ordering::SeqCst) + 1 == r.target.load(Ordering::SeqCst) {
        r.all_in.notify_one();
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, events, runners, concurrency] = args.as_slice() else {
        eprintln!("usage: crm-bench-webhooks <admin-url|sqlite> <events> <runners> <concurrency>");
        std::process::exit(2);
    };
    let (events, runners, concurrency): (usize, usize, usize) =
        (events.parse().unwrap(), runners.parse().unwrap(), concurrency.parse().unwrap());

    let receiver = Arc::new(Receiver {
        secret: std::sync::OnceLock::new(),
        verified: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        target: AtomicUsize::new(events),
        all_in: Notify::new(),
    });
    let app = axum::Router::new().route("/hook", post(receive)).with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (store, _db, _dir): (Arc<dyn Store>, _, _) = if target == "sqlite" {
        let dir = std::env::temp_dir().join(format!("crm-bench-webhooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = crm_storage_sqlite::SqliteStore::open(dir.join("bench.db")).await.unwrap();
        (Arc::new(store), None, Some(TempDir(dir)))
    } else {
        let db = crm_storage_postgres::testing::fresh_database(target).await;
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections((runners * 3 + 8) as u32);
        let store = crm_storage_postgres::PgStore::connect_with(db.options.clone(), pool).await.unwrap();
        (Arc::new(store), Some(db), None)
    };
    let client = WebhookClient::new(OutboundPolicy::from_allow_list("127.0.0.0/8").unwrap());
    let crm = Crm::builder_shared(store).webhooks(client).build();
    let scope = crm_benches::create_tenant(&crm).await;
    let endpoint = NewWebhook {
        url: format!("http://127.0.0.1:{port}/hook"),
        event_types: vec!["lead.created".into()],
        ..NewWebhook::default()
    };
    let created = crm.create_webhook(&scope, endpoint).await.unwrap();
    receiver.secret.set(WebhookSecret::parse(&created.secret).unwrap()).ok();

    // Every event first (8 writers), then the runners deliver them all.
    let write_started = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move {
                for n in (w..events).step_by(8) {
                    let new = NewLead { company: Some(format!("Company {n}")), ..NewLead::default() };
                    crm.create::<Lead>(&scope, new).await.expect("a lead");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let write_secs = write_started.elapsed().as_secs_f64();
    let config = RunnerConfig { concurrency, ..RunnerConfig::default() };
    let started = Instant::now();
    let handles: Vec<_> = (0..runners).map(|_| crm.run_jobs(config).expect("a runner")).collect();
    receiver.all_in.notified().await;
    let deliver_secs = started.elapsed().as_secs_f64();
    for handle in handles {
        handle.shutdown().await;
    }
    let store = if target == "sqlite" { "sqlite" } else { "postgres" };
    println!(
        "{{\"store\":\"{store}\",\"events\":{events},\"runners\":{runners},\"concurrency\":{concurrency},\
         \"writes_per_sec\":{:.0},\"webhooks_per_sec\":{:.0},\"unverified\":{}}}",
        events as f64 / write_secs,
        events as f64 / deliver_secs,
        receiver.refused.load(Ordering::SeqCst)
    );
}

/// A directory removed when the bench ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
