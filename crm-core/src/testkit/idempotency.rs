//! Conformance cases for idempotency keys: a keyed call runs at most once, its response is
//! recorded in the same transaction as its writes, and keys never cross principals or tenants.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::clock::{SequentialIds, SteppingClock};
use crate::error::{Conflict, Error};
use crate::model::{Lead, NewApiKey, NewLead};
use crate::service::{Crm, IDEMPOTENCY_KEY_FIELD, IdempotencyClaim, Idempotent, ImportMode, ListRequest};
use crate::{AuditQuery, Role, Scope};

use super::{assert_invalid, tenant};

/// A CRM over the case's store whose clock the case moves.
fn with_clock(crm: &Crm) -> (Crm, SteppingClock) {
    let clock = SteppingClock::starting_at(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).single().expect("date"));
    let crm =
        Crm::builder_shared(crm.store().clone()).clock(clock.clone()).ids(SequentialIds::new(11)).build();
    (crm, clock)
}

fn new_lead(name: &str) -> NewLead {
    NewLead { last_name: Some(name.into()), ..NewLead::default() }
}

async fn lead_names(crm: &Crm, scope: &Scope) -> Vec<String> {
    let page = crm.list::<Lead>(scope, ListRequest::new()).await.expect("list");
    let mut names: Vec<String> = page.data.into_iter().filter_map(|l| l.last_name).collect();
    names.sort();
    names
}

async fn audit_count(crm: &Crm, scope: &Scope) -> usize {
    crm.audit_log(scope, AuditQuery::default(), None, Some(200)).await.expect("audit log").data.len()
}

/// Creates a lead under `key`, recording the lead's id as the response.
async fn create_keyed(crm: &Crm, scope: &Scope, key: &str, name: &str) -> crate::Result<Idempotent<Lead>> {
    let request = name.as_bytes();
    crm.idempotent(
        scope,
        key,
        &[b"create lead", request],
        |s| async move { crm.create::<Lead>(&s, new_lead(name)).await },
        |lead| lead.meta.id.to_string(),
    )
    .await
}

/// The first call runs and records; a retry replays without writing anything again.
pub async fn idempotent_call_runs_once_and_replays(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let audit_before = audit_count(&crm, s).await;
    let Idempotent::Ran(lead) = create_keyed(&crm, s, "k-1", "Ada").await.unwrap() else {
        panic!("the first call must run")
    };
    for _ in 0..2 {
        let again = create_keyed(&crm, s, "k-1", "Ada").await.unwrap();
        assert_eq!(again, Idempotent::Replayed(lead.meta.id.to_string()));
    }
    assert_eq!(lead_names(&crm, s).await, ["Ada"]);
    assert_eq!(audit_count(&crm, s).await, audit_before + 1, "one audit entry: the write ran once");
    // Another key is another request.
    assert!(matches!(create_keyed(&crm, s, "k-2", "Ada").await.unwrap(), Idempotent::Ran(_)));
    assert_eq!(lead_names(&crm, s).await, ["Ada", "Ada"]);
}

/// A key reused with a different request is refused naming the key, and writes nothing.
pub async fn idempotency_key_reused_for_another_request_is_refused(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    create_keyed(&crm, s, "k", "Ada").await.unwrap();
    assert_invalid(create_keyed(&crm, s, "k", "Grace").await, &[IDEMPOTENCY_KEY_FIELD]);
    assert_eq!(lead_names(&crm, s).await, ["Ada"]);
    for bad in ["", "   ", "naïve", "tab\there", &"x".repeat(256)] {
        assert_invalid(create_keyed(&crm, s, bad, "Grace").await, &[IDEMPOTENCY_KEY_FIELD]);
    }
    assert_eq!(lead_names(&crm, s).await, ["Ada"]);
}

/// While a claim runs its twin is a conflict; after the lease the key can be taken over, and
/// the old claim can no longer complete — its writes are not committed.
pub async fn unfinished_claims_block_twins_until_their_lease_ends(crm: Crm) {
    let (crm, clock) = with_clock(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let request: &[&[u8]] = &[b"create lead", b"Ada"];
    let IdempotencyClaim::Run(first) = crm.claim_idempotency_key(s, "k", request).await.unwrap() else {
        panic!("a new key runs")
    };
    assert!(first.is_idempotent());
    crm.create::<Lead>(&first, new_lead("Ada")).await.unwrap();
    assert!(lead_names(&crm, s).await.is_empty(), "writes are held until the response is recorded");
    assert_err!(crm.claim_idempotency_key(s, "k", request).await, Error::Conflict(Conflict::InFlight));

    clock.advance(Duration::from_secs(61));
    let IdempotencyClaim::Run(second) = crm.claim_idempotency_key(s, "k", request).await.unwrap() else {
        panic!("an expired lease is taken over")
    };
    assert_err!(
        crm.complete_idempotency_key(&first, "first".into()).await,
        Error::Conflict(Conflict::InFlight)
    );
    assert!(lead_names(&crm, s).await.is_empty(), "the overtaken claim's writes roll back with it");
    crm.abandon_idempotency_key(&first).await.unwrap();

    crm.create::<Lead>(&second, new_lead("Ada")).await.unwrap();
    crm.complete_idempotency_key(&second, "second".into()).await.unwrap();
    assert_eq!(lead_names(&crm, s).await, ["Ada"]);
    let replay = crm.claim_idempotency_key(s, "k", request).await.unwrap();
    assert!(matches!(replay, IdempotencyClaim::Replay(r) if r == "second"));
}

/// A failed call frees its key at once; a completed key is forgotten after the retention.
pub async fn failed_calls_free_the_key_and_keys_expire(crm: Crm) {
    let (crm, clock) = with_clock(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let crm = &crm;
    let failing = crm
        .idempotent(
            s,
            "k",
            &[b"same request"],
            |scope| async move { crm.create::<Lead>(&scope, NewLead::default()).await },
            |lead: &Lead| lead.meta.id.to_string(),
        )
        .await;
    assert_invalid(failing, &["last_name"]);
    let ran = crm
        .idempotent(
            s,
            "k",
            &[b"same request"],
            |scope| async move { crm.create::<Lead>(&scope, new_lead("Ada")).await },
            |lead: &Lead| lead.meta.id.to_string(),
        )
        .await
        .unwrap();
    assert!(matches!(ran, Idempotent::Ran(_)), "the retry runs: the failure recorded nothing");

    assert!(matches!(create_keyed(crm, s, "old", "Grace").await.unwrap(), Idempotent::Ran(_)));
    clock.advance(Duration::from_secs(23 * 3600));
    assert!(matches!(create_keyed(crm, s, "old", "Grace").await.unwrap(), Idempotent::Replayed(_)));
    clock.advance(Duration::from_secs(3600));
    assert!(matches!(create_keyed(crm, s, "old", "Grace").await.unwrap(), Idempotent::Ran(_)));
    assert_eq!(lead_names(crm, s).await, ["Ada", "Grace", "Grace"]);
}

/// The same key used by another user, an API key, or in another tenant is another key.
pub async fn idempotency_keys_are_per_principal_and_tenant(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let owner = &acme.owner_scope;
    let key =
        crm.create_api_key(owner, NewApiKey { name: "sync".into(), role: Role::Manager }).await.unwrap();
    let as_key = crm.authenticate_api_key(&key.key).await.unwrap();
    let member = crm
        .add_member(
            owner,
            crate::model::NewMember {
                email: "m@acme.example".into(),
                name: "M".into(),
                role: Role::Member,
                password: None,
            },
        )
        .await
        .unwrap();
    let as_member = crm.scope_for(acme.tenant.id, member.user.id).await.unwrap();
    for scope in [owner, &as_key, &as_member, &globex.owner_scope] {
        let outcome = create_keyed(&crm, scope, "shared-key", "Ada").await.unwrap();
        assert!(matches!(outcome, Idempotent::Ran(_)), "each principal's key is its own");
    }
    assert_eq!(lead_names(&crm, owner).await, ["Ada", "Ada", "Ada"]);
    assert_eq!(lead_names(&crm, &globex.owner_scope).await, ["Ada"]);
}

/// A call that commits in several batches (a large import) still runs once: the earlier
/// batches commit as it goes, the last one with the recorded response.
pub async fn batched_calls_commit_every_batch_once(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let rows = || (0..crate::IMPORT_BATCH + 20).map(|i| new_lead(&format!("L{i}"))).collect::<Vec<_>>();
    let crm = &crm;
    let run = || {
        crm.idempotent(
            s,
            "import-1",
            &[b"import"],
            |scope| async move { crm.import::<Lead>(&scope, rows(), ImportMode::BestEffort).await },
            |report| report.created.len().to_string(),
        )
    };
    let first = run().await.unwrap();
    assert!(matches!(&first, Idempotent::Ran(r) if r.created.len() == crate::IMPORT_BATCH + 20));
    assert_eq!(run().await.unwrap(), Idempotent::Replayed((crate::IMPORT_BATCH + 20).to_string()));
    let mut request = ListRequest::new();
    request.limit = Some(crate::MAX_LIMIT);
    let mut total = 0;
    loop {
        let page = crm.list::<Lead>(s, request.clone()).await.unwrap();
        total += page.data.len();
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(total, crate::IMPORT_BATCH + 20);
}
