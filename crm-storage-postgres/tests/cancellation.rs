//! A caller that gives up mid-call — a client that disconnects, a timeout around a call —
//! must leave its pooled connection clean for the next user.

mod support;

use std::time::Duration;

use crm_core::model::{Lead, NewLead};
use crm_core::testkit::tenant;
use crm_core::{Crm, ListRequest};
use crm_storage_postgres::PgStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

/// Waits `micros` on a blocking thread: tokio's timers tick in milliseconds, coarser than the
/// round trips a call is cut between.
async fn after(micros: u64) {
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_micros(micros))).await;
}

/// Cuts reads and writes off at every point of their first milliseconds, on a pool of one
/// connection, and checks after each that no transaction was left open on it. (sqlx 0.9.0 lost
/// track of a `BEGIN` whose future was dropped before its answer came: the connection stayed in
/// that transaction, and once a statement in it failed, every later one did too — all requests
/// of a load test answered 500.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_given_up_midway_leave_their_connection_clean() {
    let Some(url) = support::database_url() else { return };
    let db = support::fresh_database(&url).await;
    let store =
        PgStore::connect_with(db.options.clone(), PgPoolOptions::new().max_connections(1)).await.unwrap();
    let crm = Crm::new(store.clone());
    let acme = tenant(&crm, "Acme").await;
    let scope = acme.owner_scope;
    let new = NewLead { company: Some("Acme".into()), ..NewLead::default() };
    let lead = crm.create::<Lead>(&scope, new).await.unwrap();
    let mut observer = PgConnection::connect_with(&db.options).await.unwrap();

    for micros in (0..3_000).step_by(20) {
        if micros % 40 == 0 {
            tokio::select! {
                _ = crm.list::<Lead>(&scope, ListRequest::new().limit(5)) => {}
                _ = after(micros) => {}
            }
        } else {
            let new = NewLead { company: Some(format!("Cut at {micros}")), ..NewLead::default() };
            tokio::select! {
                _ = crm.create::<Lead>(&scope, new) => {}
                _ = after(micros) => {}
            }
        }
        // Taking the one connection waits for its return to the pool; then see it from outside.
        let held = store.pool().acquire().await.unwrap();
        let left_open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        drop(held);
        assert_eq!(left_open, 0, "a transaction was left open by a call given up after {micros} µs");
        let read = crm.get::<Lead>(&scope, lead.meta.id).await;
        assert_eq!(read.unwrap().meta.id, lead.meta.id, "after a call given up at {micros} µs");
    }
}
