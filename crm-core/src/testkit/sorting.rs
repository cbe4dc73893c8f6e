//! Conformance cases for sorted lists: `(value, id)` keyset pages in either direction, with
//! filters and text search; orders a kind does not have refused.

use uuid::Uuid;

use super::{assert_invalid, tenant};
use crate::kind::{ACTIVITY, Value};
use crate::model::{Kind, Lead, NewLead, Record};
use crate::service::{Crm, ListRequest};
use crate::store::{ListQuery, Sort, SortKey};

/// Every lead the request lists, following cursors, as (last name, id), with the page sizes.
async fn pages(crm: &Crm, scope: &crate::Scope, request: ListRequest) -> (Vec<Uuid>, Vec<usize>) {
    let (mut seen, mut sizes, mut request) = (Vec::new(), Vec::new(), request);
    loop {
        let page = crm.list::<Lead>(scope, request.clone()).await.expect("a sorted page");
        sizes.push(page.data.len());
        seen.extend(page.data.iter().map(|l| l.meta().id.uuid()));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return (seen, sizes),
        }
        assert!(sizes.len() < 20, "pagination does not end");
    }
}

/// Lists sorted by creation time page through every record once, oldest or newest first,
/// filtered and searched alike; another tenant's records never show up.
pub async fn sorted_lists_page_by_value_then_id(crm: Crm) {
    let acme = tenant(&crm, "Sortacme").await;
    let globex = tenant(&crm, "Sortglobex").await;
    let s = &acme.owner_scope;
    let mut created = Vec::new();
    let mut smiths = Vec::new();
    for i in 0..7 {
        let last_name = if i % 2 == 0 { format!("Smith {i}") } else { format!("Jones {i}") };
        let lead = crm.create::<Lead>(s, NewLead { last_name: Some(last_name), ..NewLead::default() });
        let lead = lead.await.unwrap();
        if i % 2 == 0 {
            smiths.push(lead.meta.id.uuid());
        }
        created.push((lead.meta.created_at, lead.meta.id.uuid()));
        let other = NewLead { last_name: Some(format!("Smith other {i}")), ..NewLead::default() };
        crm.create::<Lead>(&globex.owner_scope, other).await.unwrap();
    }
    created.sort();
    let oldest: Vec<Uuid> = created.iter().map(|(_, id)| *id).collect();
    let newest: Vec<Uuid> = oldest.iter().rev().copied().collect();

    let (seen, sizes) = pages(&crm, s, ListRequest::new().sort("created_at").limit(3)).await;
    assert_eq!(seen, oldest, "oldest first, each once");
    assert_eq!(sizes, [3, 3, 1]);
    let (seen, _) = pages(&crm, s, ListRequest::new().sort("-created_at").limit(2)).await;
    assert_eq!(seen, newest, "newest first, each once");

    // Search and sort together: the matches alone, in the asked order, on every page.
    let (seen, sizes) = pages(&crm, s, ListRequest::new().q("smith").sort("created_at").limit(2)).await;
    assert_eq!(seen, smiths);
    assert_eq!(sizes, [2, 2]);
    let (seen, _) = pages(&crm, s, ListRequest::new().q("smith").sort("-created_at").limit(3)).await;
    assert_eq!(seen, smiths.iter().rev().copied().collect::<Vec<_>>());

    // A cursor is a position: given to another order, it starts after that position there
    // (no list refuses a well-formed cursor, so a generated client never meets a 422 for one).
    let first = crm.list::<Lead>(s, ListRequest::new().sort("created_at").limit(2)).await.unwrap();
    let sorted_cursor = first.next_cursor.expect("a second page");
    let reversed = ListRequest::new().sort("-created_at").cursor(Some(sorted_cursor.clone()));
    let before_it = crm.list::<Lead>(s, reversed).await.unwrap();
    assert_eq!(before_it.data.iter().map(|l| l.meta.id.uuid()).collect::<Vec<_>>(), oldest[..1]);
    let unsorted = crm.list::<Lead>(s, ListRequest::new().cursor(Some(sorted_cursor))).await.unwrap();
    assert_eq!(unsorted.data.iter().map(|l| l.meta.id.uuid()).collect::<Vec<_>>(), newest[6..]);
    assert_invalid(
        crm.list::<Lead>(s, ListRequest::new().sort("created_at").cursor(Some("AAAA".into()))).await,
        &["cursor"],
    );
}

/// An order the kind does not have is refused by core (naming `sort`) and by the store when a
/// host hands it one directly.
pub async fn orders_a_kind_lacks_are_refused(crm: Crm) {
    let acme = tenant(&crm, "Unsorted").await;
    let s = &acme.owner_scope;
    for sort in ["last_name", "-status", "updated_at", "", "-", "--created_at", "created_at; DROP"] {
        assert_invalid(crm.list::<Lead>(s, ListRequest::new().sort(sort)).await, &["sort"]);
    }
    // A field of another kind, or a keyset value that is not an instant.
    let occurred_at = ACTIVITY.field("occurred_at").expect("activities have occurred_at");
    let mut query = ListQuery::new(Kind::Lead);
    query.sort = Some(Sort { key: SortKey::Field(occurred_at), descending: false, after_value: Value::Null });
    assert_invalid(crm.store().list(s, &query).await, &["sort"]);
    query.sort = Some(Sort { key: SortKey::CreatedAt, descending: false, after_value: Value::Int(1) });
    query.after = Some(Uuid::nil());
    assert_invalid(crm.store().list(s, &query).await, &["sort"]);
}
