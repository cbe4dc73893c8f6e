//! Races that only a multi-connection store can lose: optimistic versions and one conversion.

mod support;

use crm_core::model::{Lead, LeadPatch, NewLead, NewTenant, NewUser};
use crm_core::{ConvertLead, Crm, Error};

async fn crm_with_lead() -> Option<(Crm, crm_core::Scope, Lead)> {
    let store = support::fresh_store().await?;
    let crm = Crm::new(store);
    let acme = crm
        .create_tenant(NewTenant {
            name: "Acme".into(),
            slug: "acme".into(),
            owner: NewUser { email: "owner@acme.example".into(), name: "Owner".into() },
        })
        .await
        .unwrap();
    let scope = acme.owner_scope;
    let lead = NewLead { last_name: Some("Lovelace".into()), ..NewLead::default() };
    let lead = crm.create::<Lead>(&scope, lead).await.unwrap();
    Some((crm, scope, lead))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_with_one_version_have_one_winner() {
    let Some((crm, scope, lead)) = crm_with_lead().await else { return };
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move {
                let patch = LeadPatch { title: Some(Some(format!("writer {i}"))), ..LeadPatch::default() };
                crm.update(&scope, lead.meta.id, lead.meta.version, patch).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let stored = crm.get(&scope, lead.meta.id).await.unwrap();
    assert_eq!(stored.meta.version, lead.meta.version + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conversions_convert_once() {
    let Some((crm, scope, lead)) = crm_with_lead().await else { return };
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move { crm.convert_lead(&scope, lead.meta.id, ConvertLead::default()).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let contacts = crm.list::<crm_core::model::Contact>(&scope, crm_core::ListRequest::new()).await.unwrap();
    assert_eq!(contacts.data.len(), 1, "exactly one contact was created");
}
