//! Conformance cases run on a multi-threaded runtime: concurrent writers on one store. A store
//! with several connections (Postgres, SQLite files with a reader pool) must let exactly one
//! of them win where the rules allow one, and make every commit visible to later reads.

use crate::error::Error;
use crate::model::{Contact, Lead, LeadPatch, NewLead};
use crate::service::{ConvertLead, Crm, Idempotent, ListRequest};
use crate::{Result, Scope};

use super::tenant;

async fn with_lead(crm: &Crm) -> (Scope, Lead) {
    let acme = tenant(crm, "Acme").await;
    let lead = NewLead { last_name: Some("Lovelace".into()), ..NewLead::default() };
    let lead = crm.create::<Lead>(&acme.owner_scope, lead).await.expect("lead");
    (acme.owner_scope, lead)
}

/// Runs `n` copies of `task` at once on the runtime's threads; returns how many succeeded,
/// failing on any error other than `Conflict`.
async fn race<T, F, Fut>(n: usize, task: F) -> usize
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => wins += 1,
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    wins
}

/// Eight writers update one version of a lead: one wins, the version rises by one.
pub async fn concurrent_updates_with_one_version_have_one_winner(crm: Crm) {
    let (scope, lead) = with_lead(&crm).await;
    let wins = race(8, |i| {
        let (crm, scope) = (crm.clone(), scope.clone());
        async move {
            let patch = LeadPatch { title: Some(Some(format!("writer {i}"))), ..LeadPatch::default() };
            crm.update(&scope, lead.meta.id, Some(lead.meta.version), patch).await
        }
    })
    .await;
    assert_eq!(wins, 1);
    let stored = crm.get(&scope, lead.meta.id).await.unwrap();
    assert_eq!(stored.meta.version, lead.meta.version + 1);
}

/// Six conversions of one lead: one contact is created.
pub async fn concurrent_conversions_convert_once(crm: Crm) {
    let (scope, lead) = with_lead(&crm).await;
    let wins = race(6, |_| {
        let (crm, scope) = (crm.clone(), scope.clone());
        async move { crm.convert_lead(&scope, lead.meta.id, ConvertLead::default()).await }
    })
    .await;
    assert_eq!(wins, 1);
    let contacts = crm.list::<Contact>(&scope, ListRequest::new()).await.unwrap();
    assert_eq!(contacts.data.len(), 1, "exactly one contact was created");
}

/// Concurrent creates all land, and reads right after see every one of them.
pub async fn concurrent_creates_are_all_visible(crm: Crm) {
    let (scope, _) = with_lead(&crm).await;
    let wins = race(32, |i| {
        let (crm, scope) = (crm.clone(), scope.clone());
        async move {
            let new = NewLead { company: Some(format!("Company {i}")), ..NewLead::default() };
            crm.create::<Lead>(&scope, new).await
        }
    })
    .await;
    assert_eq!(wins, 32);
    let all = crm.list::<Lead>(&scope, ListRequest::new().limit(200)).await.unwrap();
    assert_eq!(all.data.len(), 33);
}

/// Six twins under one idempotency key: the call runs once; each twin either replays its
/// response or is told the first is still running.
pub async fn concurrent_twins_under_one_idempotency_key_run_once(crm: Crm) {
    let (scope, _) = with_lead(&crm).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move {
                let create = |s: Scope| {
                    let crm = crm.clone();
                    async move {
                        let new = NewLead { last_name: Some("Twin".into()), ..NewLead::default() };
                        crm.create::<Lead>(&s, new).await
                    }
                };
                let record = |lead: &Lead| lead.meta.id.to_string();
                crm.idempotent(&scope, "twin", &[b"create twin"], create, record).await
            })
        })
        .collect();
    let (mut ran, mut replayed) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.expect("task") {
            Ok(Idempotent::Ran(lead)) => ran.push(lead.meta.id.to_string()),
            Ok(Idempotent::Replayed(id)) => replayed.push(id),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(ran.len(), 1, "the call ran once");
    assert!(replayed.iter().all(|id| *id == ran[0]), "replays carry the first response");
    let twins = crm.list::<Lead>(&scope, ListRequest::new().q("twin")).await.unwrap();
    assert_eq!(twins.data.len(), 1);
}
