//! Text search through the search index. Under Row-Level Security Postgres uses the index for
//! the words only when `tsvector @@ tsquery` is marked `LEAKPROOF` (a superuser's choice, see
//! `PgStore`); the store then fetches rare words' matches through it and walks the id index for
//! common ones. The conformance suite runs without the mark, so these cases run the search
//! cases again with it, each in its own database.

use crm_core::testkit::{bulk, cases, deterministic_crm};
use crm_storage_postgres::PgStore;
use crm_storage_postgres::testing::{TestDatabase, database_url, fresh_database};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

/// A migrated store on a fresh database whose match operator is marked `LEAKPROOF`, or `None`
/// (with a message) when not configured or not allowed (only superusers may mark it).
async fn leakproof_store() -> Option<(PgStore, TestDatabase)> {
    let url = database_url()?;
    let db = fresh_database(&url).await;
    let mut conn = PgConnection::connect_with(&db.options).await.expect("connect");
    let mark =
        sqlx::query("ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF").execute(&mut conn).await;
    if let Err(e) = mark {
        eprintln!("SKIPPED search-index case: cannot mark ts_match_vq LEAKPROOF ({e})");
        return None;
    }
    let pool = PgPoolOptions::new().max_connections(4);
    let store = PgStore::connect_with(db.options.clone(), pool).await.expect("store");
    Some((store, db))
}

#[tokio::test]
async fn common_and_rare_words_through_the_search_index() {
    let Some((store, _db)) = leakproof_store().await else { return };
    bulk::search_pages_alike_for_common_and_rare_words(deterministic_crm(store, 1)).await;
}

#[tokio::test]
async fn word_prefixes_through_the_search_index() {
    let Some((store, _db)) = leakproof_store().await else { return };
    cases::text_search_matches_word_prefixes(deterministic_crm(store, 1)).await;
}

#[tokio::test]
async fn tenants_stay_apart_through_the_search_index() {
    let Some((store, _db)) = leakproof_store().await else { return };
    cases::other_tenants_ids_are_not_found(deterministic_crm(store, 1)).await;
}
