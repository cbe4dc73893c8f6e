//! Postgres decodes list pages from its driver rows in place (`RecordStore::list_into`); the
//! conformance suite does not reach the override (it wraps every store), so this calls it on the
//! store itself.

use crm_storage_postgres::testing::fresh_store;

#[tokio::test]
async fn pages_decoded_in_place_are_the_listed_pages() {
    let Some(store) = fresh_store().await else { return };
    crm_core::testkit::list_into::list_into_agrees_with_list((*store).clone()).await;
}
