//! The check every store's own `RecordStore::list_into` must pass when called unwrapped; see
//! [`list_into_agrees_with_list`].

use crate::error::Result;
use crate::kind::{ColumnSource, KindDef, RowMeta, Stored};
use crate::model::{Kind, Lead, NewLead};
use crate::service::ListRequest;
use crate::store::{DecodedPage, ListQuery, PageSink, Store};
use crate::testkit::{deterministic_crm, tenant};

/// Collects the last names of the leads it is fed.
struct LastNames(Vec<String>);

impl PageSink for LastNames {
    fn row(&mut self, def: &'static KindDef, meta: RowMeta, values: &mut dyn ColumnSource) -> Result<()> {
        assert_eq!(def.kind, Kind::Lead);
        self.0.push(Lead::read(meta, values)?.last_name.unwrap_or_default());
        Ok(())
    }
    fn finish(self: Box<Self>) -> DecodedPage {
        Box::new(self.0)
    }
}

fn last_names() -> Box<dyn PageSink> {
    Box::new(LastNames(Vec::new()))
}

/// Refuses every row.
struct Refusing;

impl PageSink for Refusing {
    fn row(&mut self, _: &'static KindDef, _: RowMeta, _: &mut dyn ColumnSource) -> Result<()> {
        Err(crate::Error::internal("decoder failed"))
    }
    fn finish(self: Box<Self>) -> DecodedPage {
        Box::new(())
    }
}

/// A store's own `list_into`, called on the store itself (the suite's isolation check wraps
/// every store and decodes after its own checked `list`, so an override is not reached there):
/// the page it decodes is the page `list` returns, through `Crm` too, and a sink's error is the
/// call's error. Call it with a fresh store.
pub async fn list_into_agrees_with_list<S: Store + Clone>(store: S) {
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
    let refusing = || -> Box<dyn PageSink> { Box::new(Refusing) };
    assert!(matches!(store.list_into(s, &query, refusing).await, Err(crate::Error::Internal(_))));
}
