//! SQLite decodes list pages on its reader thread (`RecordStore::list_into`). The conformance
//! suite wraps every store in an isolation check, which decodes after its own checked `list`;
//! this runs the store's own override, unwrapped, against the plain `list`.

use crm_core::kind::Stored;
use crm_core::model::{Kind, Lead, NewLead};
use crm_core::store::{DecodedPage, Entity, ListQuery, RecordStore};
use crm_core::testkit::{deterministic_crm, tenant};
use crm_core::{ListRequest, Result};
use crm_storage_sqlite::SqliteStore;

fn last_names(rows: Vec<Entity>) -> Result<DecodedPage> {
    let leads = rows.into_iter().map(Lead::from_entity).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(leads.into_iter().map(|l| l.last_name.unwrap_or_default()).collect::<Vec<String>>()))
}

#[tokio::test]
async fn pages_decoded_on_the_reader_thread_are_the_listed_pages() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let crm = deterministic_crm(store.clone(), 1);
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    for name in ["Ada", "Grace", "Edsger"] {
        crm.create::<Lead>(s, NewLead { last_name: Some(name.into()), ..NewLead::default() }).await.unwrap();
    }
    let theirs = NewLead { last_name: Some("Theirs".into()), ..NewLead::default() };
    crm.create::<Lead>(&globex.owner_scope, theirs).await.unwrap();

    let query = ListQuery::new(Kind::Lead);
    let listed = store.list(s, &query).await.unwrap();
    let listed: Vec<String> =
        listed.into_iter().map(|e| Lead::from_entity(e).unwrap().last_name.unwrap()).collect();
    let decoded = store.list_into(s, &query, last_names).await.unwrap();
    assert_eq!(*decoded.downcast::<Vec<String>>().unwrap(), listed);
    assert_eq!(listed, ["Edsger", "Grace", "Ada"]);

    // Through Crm, which decodes with `list_into`: a page and its cursor.
    let page = crm.list::<Lead>(s, ListRequest::new().limit(2)).await.unwrap();
    let names: Vec<_> = page.data.iter().map(|l| l.last_name.clone().unwrap()).collect();
    assert_eq!(
        (names.as_slice(), page.next_cursor.is_some()),
        (&["Edsger".to_owned(), "Grace".to_owned()][..], true)
    );
    let rest = crm.list::<Lead>(s, ListRequest::new().limit(2).cursor(page.next_cursor)).await.unwrap();
    assert_eq!(rest.data.len(), 1);

    // A decoder's error comes back as the list's error.
    let failing: fn(Vec<Entity>) -> Result<DecodedPage> =
        |_| Err(crm_core::Error::internal("decoder failed"));
    assert!(matches!(store.list_into(s, &query, failing).await, Err(crm_core::Error::Internal(_))));
}
