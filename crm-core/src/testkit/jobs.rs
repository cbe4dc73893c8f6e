//! Conformance cases for [`JobStore`](crate::store::JobStore): unique keys held by a
//! constraint, claims fair across tenants, leases that expire and tokens that alone finish an
//! attempt, moves that lose to a claim, and jobs that stay in their tenant.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{assert_invalid, tenant};
use crate::error::Error;
use crate::job::{Failure, Job, JobId, JobState, NewJob, RetryPolicy};
use crate::model::NewMember;
use crate::scope::{Role, Scope};
use crate::service::Crm;
use crate::store::{Enqueued, JobStore};

const LEASE: Duration = Duration::from_secs(30);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("a valid time")
        + chrono::Duration::seconds(seconds)
}

/// A job of the scope's tenant with an id from `n` (v7-like: ids sort by `n`).
fn job(scope: &Scope, n: u128, new: NewJob) -> Job {
    let id = JobId::from_uuid(Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | n));
    Job::new(id, scope.tenant_id(), new, at(0), &RetryPolicy::default())
}

fn noop(key: Option<&str>) -> NewJob {
    let new = NewJob::new("test.noop", serde_json::json!({ "n": 1 }));
    match key {
        Some(key) => new.unique_key(key),
        None => new,
    }
}

async fn claim(store: &dyn JobStore, now: DateTime<Utc>) -> Option<(Job, Uuid)> {
    let token = Uuid::now_v7();
    store.claim(&["test.noop"], now, LEASE, token).await.expect("claim").map(|j| (j, token))
}

/// A unique key admits one unfinished job per tenant, whoever asks, and frees once the job is
/// done; other tenants and other keys are unaffected.
pub async fn unique_jobs_are_one_per_key_until_finished(crm: Crm) {
    let (a, b) = (tenant(&crm, "Acme").await.owner_scope, tenant(&crm, "Globex").await.owner_scope);
    let store = crm.store().as_ref();
    let first = job(&a, 1, noop(Some("digest:2026-03-01")));
    assert_eq!(store.enqueue(&a, &first).await.unwrap(), Enqueued::New(first.id));
    let twin = job(&a, 2, noop(Some("digest:2026-03-01")));
    assert_eq!(store.enqueue(&a, &twin).await.unwrap(), Enqueued::Existing(first.id));
    assert_eq!(store.job(&a, twin.id).await.unwrap(), None, "the twin was not stored");
    let elsewhere = job(&b, 3, noop(Some("digest:2026-03-01")));
    assert_eq!(store.enqueue(&b, &elsewhere).await.unwrap(), Enqueued::New(elsewhere.id), "per tenant");
    let other_key = job(&a, 4, noop(Some("digest:2026-03-02")));
    assert_eq!(store.enqueue(&a, &other_key).await.unwrap(), Enqueued::New(other_key.id));

    // Running still holds the key; finishing frees it.
    let (mut running, token) = claim(store, at(1)).await.expect("a due job");
    let scope = if running.tenant_id == a.tenant_id() { a.clone() } else { b.clone() };
    let held = job(&scope, 5, noop(running.unique_key.as_deref()));
    let holder = store.enqueue(&scope, &held).await.unwrap();
    assert_eq!(holder, Enqueued::Existing(running.id), "a running job holds its key");
    running.succeed(at(2)).unwrap();
    assert!(store.finish(token, &running).await.unwrap());
    let again = job(&scope, 6, noop(running.unique_key.as_deref()));
    assert_eq!(
        store.enqueue(&scope, &again).await.unwrap(),
        Enqueued::New(again.id),
        "the key is free again"
    );
}

/// One tenant's flood does not starve another: claims take the tenants in turn, each tenant's
/// jobs by due time; jobs not yet due and other job types wait.
pub async fn claims_take_tenants_in_turn(crm: Crm) {
    let (a, b) = (tenant(&crm, "Acme").await.owner_scope, tenant(&crm, "Globex").await.owner_scope);
    let store = crm.store().as_ref();
    for n in 0..40 {
        store.enqueue(&a, &job(&a, 100 + n, noop(None))).await.unwrap();
    }
    let later = job(&b, 900, noop(None).run_at(at(3600)));
    store.enqueue(&b, &later).await.unwrap();
    let other_type = job(&b, 901, NewJob::new("test.other", serde_json::Value::Null));
    store.enqueue(&b, &other_type).await.unwrap();
    for n in 0..2 {
        store.enqueue(&b, &job(&b, 200 + n, noop(None))).await.unwrap();
    }
    let mut order = Vec::new();
    for step in 0..8 {
        let (mut claimed, token) = claim(store, at(10 + step)).await.expect("a due job");
        order.push((if claimed.tenant_id == a.tenant_id() { 'a' } else { 'b' }, claimed.id));
        claimed.succeed(at(10 + step)).unwrap();
        assert!(store.finish(token, &claimed).await.unwrap());
    }
    let tenants: String = order.iter().map(|(t, _)| *t).collect();
    assert!(tenants.starts_with("abab") || tenants.starts_with("baba"), "claims alternate: {tenants}");
    assert_eq!(&tenants[4..], "aaaa", "then the flood, once the other tenant has nothing due: {tenants}");
    let a_ids: Vec<JobId> = order.iter().filter(|(t, _)| *t == 'a').map(|(_, id)| *id).collect();
    assert!(a_ids.windows(2).all(|w| w[0] < w[1]), "a tenant's jobs in due order");
    assert!(order.iter().all(|(_, id)| *id != later.id && *id != other_type.id));
    let due = store.claim(&["test.noop"], at(3600), LEASE, Uuid::now_v7()).await.unwrap().expect("due now");
    assert_eq!(due.id, later.id, "the waiting tenant's turn comes first once its job is due");
    let other = store.claim(&["test.other"], at(3600), LEASE, Uuid::now_v7()).await.unwrap();
    assert_eq!(other.map(|j| j.id), Some(other_type.id));
    assert_eq!(store.claim(&[], at(3600), LEASE, Uuid::now_v7()).await.unwrap(), None);
}

/// A lease belongs to its token: a crashed worker's job is taken over once the lease ends,
/// and the old token can then neither renew nor finish it.
pub async fn expired_leases_pass_to_another_worker(crm: Crm) {
    let a = tenant(&crm, "Acme").await.owner_scope;
    let store = crm.store().as_ref();
    let queued = job(&a, 1, noop(None));
    store.enqueue(&a, &queued).await.unwrap();
    let (first, crashed) = claim(store, at(0)).await.expect("due");
    assert_eq!((first.state, first.attempts, first.lease_until), (JobState::Running, 1, Some(at(30))));
    assert!(claim(store, at(10)).await.is_none(), "leased: not claimed twice");
    assert!(store.heartbeat(crashed, at(40)).await.unwrap(), "its worker renews it");
    assert!(claim(store, at(35)).await.is_none(), "renewed past 35 s");

    let (taken, token) = claim(store, at(40)).await.expect("the lease ran out");
    assert_eq!((taken.id, taken.attempts, taken.lease_until), (queued.id, 2, Some(at(70))));
    assert!(!store.heartbeat(crashed, at(100)).await.unwrap(), "the old token renews nothing");
    let mut late = first.clone();
    late.succeed(at(41)).unwrap();
    assert!(!store.finish(crashed, &late).await.unwrap(), "nor finishes it");
    assert_eq!(store.job(&a, queued.id).await.unwrap().map(|j| j.state), Some(JobState::Running));

    let mut done = taken.clone();
    done.succeed(at(42)).unwrap();
    assert!(store.finish(token, &done).await.unwrap());
    assert!(!store.finish(token, &done).await.unwrap(), "a token finishes once");
    assert_eq!(store.job(&a, queued.id).await.unwrap(), Some(done));
    assert!(claim(store, at(1000)).await.is_none(), "a finished job is not claimed");
}

/// Failed attempts come back after their backoff and die after their last one; cancel and
/// retry apply only from the state they were decided in, so one that lost to a claim writes
/// nothing.
pub async fn failures_back_off_die_and_move_only_from_their_state(crm: Crm) {
    let a = tenant(&crm, "Acme").await.owner_scope;
    let store = crm.store().as_ref();
    let policy = RetryPolicy::default();
    let queued = job(&a, 1, noop(None).max_attempts(2));
    store.enqueue(&a, &queued).await.unwrap();
    let (mut attempt, token) = claim(store, at(0)).await.expect("due");
    attempt.fail(&Failure::transient("timeout"), at(1), &policy, 0.0).unwrap();
    assert!(store.finish(token, &attempt).await.unwrap());
    let stored = store.job(&a, queued.id).await.unwrap().expect("the job");
    assert_eq!(
        (stored.state, stored.run_at, stored.last_error.as_deref()),
        (JobState::Pending, at(6), Some("timeout"))
    );
    assert!(claim(store, at(5)).await.is_none(), "not before its backoff");
    let (mut attempt, token) = claim(store, at(6)).await.expect("due again");
    attempt.fail(&Failure::transient("timeout again"), at(7), &policy, 0.0).unwrap();
    assert!(store.finish(token, &attempt).await.unwrap());
    let mut dead = store.job(&a, queued.id).await.unwrap().expect("the job");
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 2));

    let mut retried = dead.clone();
    retried.retry(at(8)).unwrap();
    assert!(store.update_job(&a, &retried, JobState::Dead).await.unwrap());
    assert!(!store.update_job(&a, &retried, JobState::Dead).await.unwrap(), "no longer dead");
    let (claimed, _) = claim(store, at(8)).await.expect("retried jobs run");
    assert_eq!(claimed.attempts, 1, "with fresh attempts");
    dead.cancel(at(9)).unwrap();
    assert!(!store.update_job(&a, &dead, JobState::Dead).await.unwrap(), "a cancel that lost to a claim");
    assert_eq!(store.job(&a, queued.id).await.unwrap().map(|j| j.state), Some(JobState::Running));
}

/// Another tenant's job is answered like one that does not exist, and lists hold the tenant's
/// jobs only, newest first, filtered by state and paged by id.
pub async fn jobs_stay_in_their_tenant(crm: Crm) {
    let (a, b) = (tenant(&crm, "Acme").await.owner_scope, tenant(&crm, "Globex").await.owner_scope);
    let store = crm.store().as_ref();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let queued = job(&a, n, noop(None));
        store.enqueue(&a, &queued).await.unwrap();
        ids.push(queued.id);
    }
    let theirs = job(&b, 10, noop(None));
    store.enqueue(&b, &theirs).await.unwrap();
    assert_eq!(store.job(&a, theirs.id).await.unwrap(), None);
    let mut stolen = theirs.clone();
    stolen.tenant_id = a.tenant_id();
    stolen.cancel(at(1)).unwrap();
    assert!(!store.update_job(&a, &stolen, JobState::Pending).await.unwrap(), "another tenant's id");
    assert_eq!(store.job(&b, theirs.id).await.unwrap().map(|j| j.state), Some(JobState::Pending));

    let listed: Vec<JobId> =
        store.jobs(&a, None, None, 10).await.unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]]);
    let page: Vec<JobId> =
        store.jobs(&a, None, Some(ids[2]), 1).await.unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(page, [ids[1]]);
    assert!(store.jobs(&a, Some(JobState::Dead), None, 10).await.unwrap().is_empty());
    let pending = store.jobs(&b, Some(JobState::Pending), None, 10).await.unwrap();
    assert_eq!(pending.into_iter().map(|j| j.id).collect::<Vec<_>>(), [theirs.id]);
}

/// Workers claiming at once never run one job twice: twenty claims racing for twenty jobs of
/// two tenants each get another one.
pub async fn concurrent_claims_take_distinct_jobs(crm: Crm) {
    let (a, b) = (tenant(&crm, "Acme").await.owner_scope, tenant(&crm, "Globex").await.owner_scope);
    let store = crm.store().clone();
    for n in 0..20 {
        let scope = if n % 2 == 0 { &a } else { &b };
        store.enqueue(scope, &job(scope, n, noop(None))).await.unwrap();
    }
    let claims: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim(&["test.noop"], at(1), LEASE, Uuid::now_v7()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.expect("a claim task").expect("a claim").map(|j| j.id));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every claim took a job of its own");
    assert!(claim(store.as_ref(), at(2)).await.is_none(), "and nothing is left");
}

async fn member(crm: &Crm, owner: &Scope, email: &str, role: Role) -> Scope {
    let new = NewMember { email: email.into(), name: email.into(), role, password: None };
    let member = crm.add_member(owner, new).await.expect("add member");
    crm.scope_for(owner.tenant_id(), member.user.id).await.expect("a member's scope")
}

/// Through the service, jobs are the tenant admins' (and the system's): enqueued checked field
/// by field, listed and paged, cancelled and retried from the states that allow it; other
/// roles are refused and another tenant's job does not exist.
pub async fn job_services_are_for_the_tenants_admins(crm: Crm) {
    let owner = tenant(&crm, "Acme").await.owner_scope;
    let other = tenant(&crm, "Globex").await.owner_scope;
    let admin = member(&crm, &owner, "admin@acme.example", Role::Admin).await;
    let manager = member(&crm, &owner, "manager@acme.example", Role::Manager).await;
    let viewer = member(&crm, &owner, "viewer@acme.example", Role::Viewer).await;

    let Enqueued::New(first) = crm.enqueue_job(&admin, noop(Some("export:1"))).await.unwrap() else {
        panic!("a new job")
    };
    assert_eq!(crm.enqueue_job(&owner, noop(Some("export:1"))).await.unwrap(), Enqueued::Existing(first));
    let Enqueued::New(second) = crm.enqueue_job(&owner, noop(None).run_at(at(3600))).await.unwrap() else {
        panic!("a new job")
    };
    assert_invalid(
        crm.enqueue_job(&owner, NewJob::new("Not A Type", serde_json::Value::Null)).await,
        &["job_type"],
    );
    for scope in [&manager, &viewer] {
        assert_err!(crm.enqueue_job(scope, noop(None)).await, Error::Forbidden);
        assert_err!(crm.job(scope, first).await, Error::Forbidden);
        assert_err!(crm.jobs(scope, None, None, None).await, Error::Forbidden);
        assert_err!(crm.cancel_job(scope, first).await, Error::Forbidden);
    }
    assert_err!(crm.job(&other, first).await, Error::NotFound);
    assert_err!(crm.cancel_job(&other, first).await, Error::NotFound);

    let page = crm.jobs(&admin, None, None, Some(1)).await.unwrap();
    assert_eq!(page.data.iter().map(|j| j.id).collect::<Vec<_>>(), [second]);
    let rest = crm.jobs(&admin, None, page.next_cursor.as_deref(), Some(1)).await.unwrap();
    assert_eq!((rest.data.iter().map(|j| j.id).collect::<Vec<_>>(), rest.next_cursor), (vec![first], None));
    assert_invalid(crm.jobs(&admin, None, None, Some(0)).await, &["limit"]);

    let cancelled = crm.cancel_job(&admin, second).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(crm.job(&owner, second).await.unwrap(), cancelled);
    assert_err!(crm.cancel_job(&admin, second).await, Error::Conflict(_));
    assert_eq!(crm.retry_job(&admin, second).await.unwrap().state, JobState::Pending);
    assert_err!(crm.retry_job(&admin, first).await, Error::Conflict(_)); // a pending job is not retried
    let cancelled = crm.jobs(&owner, Some(JobState::Cancelled), None, None).await.unwrap();
    assert!(cancelled.data.is_empty());
}
