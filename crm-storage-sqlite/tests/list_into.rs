//! SQLite decodes list pages from its rows in place, on its reader thread
//! (`RecordStore::list_into`); the conformance suite does not reach the override (it wraps every
//! store), so this calls it on the store itself.

use crm_storage_sqlite::SqliteStore;

#[tokio::test]
async fn pages_decoded_in_place_are_the_listed_pages() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    crm_core::testkit::list_into::list_into_agrees_with_list(store).await;
}
