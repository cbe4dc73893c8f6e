//! Conformance cases for bulk import.

use crate::error::Error;
use crate::model::{Contact, Lead, LeadStatus, NewContact, NewLead};
use crate::service::{Crm, ImportMode, ListRequest};
use crate::{AuditQuery, Filter, Id};

use super::tenant;

fn lead(i: usize) -> NewLead {
    NewLead {
        last_name: Some(format!("Row {i}")),
        email: Some(format!("row{i}@example.com")),
        ..NewLead::default()
    }
}

async fn count_leads(crm: &Crm, scope: &crate::Scope) -> usize {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let page = crm.list::<Lead>(scope, ListRequest::new().limit(200).cursor(cursor)).await.unwrap();
        n += page.data.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return n,
        }
    }
}

async fn audit_count(crm: &Crm, scope: &crate::Scope) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = crm.audit_log(scope, AuditQuery::default(), cursor.as_deref(), Some(200)).await.unwrap();
        n += page.data.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return n,
        }
    }
}

/// Best-effort import creates the valid rows across several batches, audits each, and reports
/// every invalid row by index with its fields.
pub async fn import_reports_row_errors(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let audit_before = audit_count(&crm, s).await;
    let mut rows: Vec<NewLead> = (0..1_203).map(lead).collect();
    rows[7].email = Some("not an e-mail".into());
    rows[600] = NewLead::default();
    rows[1_202].owner_id = Some(Id::from_uuid(uuid::Uuid::from_u128(42)));
    let report = crm.import::<Lead>(s, rows, ImportMode::BestEffort).await.unwrap();
    assert_eq!(report.created.len(), 1_200);
    let refused: Vec<(usize, Vec<String>)> =
        report.errors.iter().map(|e| (e.row, e.errors.iter().map(|f| f.field.clone()).collect())).collect();
    assert_eq!(
        refused,
        [
            (7, vec!["email".to_owned()]),
            (600, vec!["last_name".to_owned()]),
            (1_202, vec!["owner_id".to_owned()])
        ]
    );
    assert_eq!(count_leads(&crm, s).await, 1_200);
    assert_eq!(audit_count(&crm, s).await, audit_before + 1_200, "one audit entry per created record");
    let fetched = crm.get(s, report.created[0].meta.id).await.unwrap();
    assert_eq!(fetched, report.created[0]);
}

/// Atomic import writes nothing when any row is invalid, and everything when all are valid.
pub async fn import_atomic_is_all_or_nothing(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let mut rows: Vec<NewLead> = (0..50).map(lead).collect();
    rows[49].phone = Some("call me".into());
    let report = crm.import::<Lead>(s, rows, ImportMode::Atomic).await.unwrap();
    assert!(report.created.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert_eq!((report.errors[0].row, report.errors[0].errors[0].field.as_str()), (49, "phone"));
    assert_eq!(count_leads(&crm, s).await, 0, "nothing was written");

    let report = crm.import::<Lead>(s, (0..50).map(lead).collect(), ImportMode::Atomic).await.unwrap();
    assert_eq!((report.created.len(), report.errors.len()), (50, 0));
    assert_eq!(count_leads(&crm, s).await, 50);
}

/// Import honours the policy and tenant links like single creates.
pub async fn import_is_authorized_and_tenant_scoped(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let viewer = crate::model::NewMember {
        email: "viewer@acme.example".into(),
        name: "Viewer".into(),
        role: crate::Role::Viewer,
        password: None,
    };
    let member = crm.add_member(&acme.owner_scope, viewer).await.unwrap();
    let viewer_scope = crm.scope_for(acme.tenant.id, member.user.id).await.unwrap();
    let denied = crm.import::<Lead>(&viewer_scope, vec![lead(1)], ImportMode::BestEffort).await;
    assert!(matches!(denied, Err(Error::Forbidden)), "{denied:?}");

    let theirs = crm
        .create::<crate::model::Account>(
            &globex.owner_scope,
            crate::model::NewAccount { name: "Globex".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let rows = vec![
        NewContact { last_name: Some("Ok".into()), ..NewContact::default() },
        NewContact {
            last_name: Some("Cross".into()),
            account_id: Some(theirs.meta.id),
            ..NewContact::default()
        },
    ];
    let report = crm.import::<Contact>(&acme.owner_scope, rows, ImportMode::BestEffort).await.unwrap();
    assert_eq!(report.created.len(), 1);
    assert_eq!((report.errors[0].row, report.errors[0].errors[0].field.as_str()), (1, "account_id"));
}

/// Every lead a search finds, following cursors, newest first as listed.
async fn search_all(crm: &Crm, scope: &crate::Scope, q: &str, status: Option<LeadStatus>) -> Vec<uuid::Uuid> {
    let filter = Filter { status, ..Filter::default() };
    let mut request = ListRequest::new().limit(200).q(q).filter(filter);
    let mut out = Vec::new();
    loop {
        let page = crm.list::<Lead>(scope, request.clone()).await.unwrap();
        out.extend(page.data.iter().map(|l| l.meta.id.uuid()));
        match page.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => return out,
        }
    }
}

/// A search for a word on over a thousand records (more than a store may fetch through its word
/// index before walking the list instead) pages exactly like a rare word: every match once,
/// newest first, filters applied, and only this tenant's — also when the word is rare here but
/// common in another tenant.
pub async fn search_pages_alike_for_common_and_rare_words(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let row = |i: usize, company: &str| NewLead {
        last_name: Some(format!("Row {i}")),
        company: Some(company.into()),
        status: Some(if i % 3 == 0 { LeadStatus::Qualified } else { LeadStatus::New }),
        ..NewLead::default()
    };
    let rows = (0..1_203).map(|i| row(i, if i % 400 == 7 { "Rare Labs" } else { "Common Corp" })).collect();
    let created = crm.import::<Lead>(s, rows, ImportMode::BestEffort).await.unwrap().created;
    let theirs = (0..1_500).map(|i| row(i, "Rare Labs")).collect();
    crm.import::<Lead>(&globex.owner_scope, theirs, ImportMode::BestEffort).await.unwrap();

    let expected = |company: &str, status: Option<LeadStatus>| {
        let mut ids: Vec<uuid::Uuid> = created
            .iter()
            .filter(|l| l.company.as_deref() == Some(company) && status.is_none_or(|s| l.status == s))
            .map(|l| l.meta.id.uuid())
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };
    assert_eq!(search_all(&crm, s, "common", None).await, expected("Common Corp", None));
    assert_eq!(search_all(&crm, s, "comm corp", None).await, expected("Common Corp", None));
    let qualified = Some(LeadStatus::Qualified);
    assert_eq!(search_all(&crm, s, "common", qualified).await, expected("Common Corp", qualified));
    assert_eq!(search_all(&crm, s, "rare", None).await, expected("Rare Labs", None));
    assert_eq!(search_all(&crm, s, "rare labs", None).await.len(), 3);
    assert_eq!(search_all(&crm, s, "row", None).await.len(), 1_203);
    // Prefixes of several words each (common, corp; row, rare), over a thousand records.
    assert_eq!(search_all(&crm, s, "co", None).await, expected("Common Corp", None));
    assert_eq!(search_all(&crm, s, "r", None).await.len(), 1_203);
    assert!(search_all(&crm, s, "rare common", None).await.is_empty());
}
