//! Conformance cases for [`RetentionStore`](crate::store::RetentionStore): a purge deletes, across
//! tenants and in bounded batches, only what has served its use — finished jobs past the cutoff,
//! expired refresh tokens, expired and unlocked idempotency keys — and keeps everything else.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{assert_invalid, tenant};
use crate::clock::SteppingClock;
use crate::job::{Failure, Job, JobId, JobState, NewJob, RetryPolicy};
use crate::model::{IdempotencyRecord, RefreshToken, RefreshTokenId};
use crate::scope::Scope;
use crate::service::Crm;
use crate::store::{ChangeSet, Entity, PurgeCutoffs, Purged, Store, Write};
use crate::{Id, NewTenantInfo, Registration};

const LEASE: Duration = Duration::from_secs(30);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("a valid time")
        + chrono::Duration::seconds(seconds)
}

/// The jobs of one tenant, each of a type of its own so a claim can pick it.
struct Jobs {
    succeeded_long_ago: JobId,
    cancelled_long_ago: JobId,
    succeeded_lately: JobId,
    dead_long_ago: JobId,
    running: JobId,
    pending: JobId,
}

const TYPES: [&str; 6] =
    ["test.succeeded", "test.cancelled", "test.lately", "test.dead", "test.running", "test.pending"];

async fn enqueue_jobs(store: &dyn Store, scope: &Scope, seed: u128) -> Jobs {
    let mut ids = Vec::new();
    for (n, job_type) in TYPES.iter().enumerate() {
        let id =
            JobId::from_uuid(Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | (seed + n as u128)));
        let new = NewJob::new(*job_type, serde_json::json!({}));
        store
            .enqueue(scope, &Job::new(id, scope.tenant_id(), new, at(0), &RetryPolicy::default()))
            .await
            .unwrap();
        ids.push(id);
    }
    Jobs {
        succeeded_long_ago: ids[0],
        cancelled_long_ago: ids[1],
        succeeded_lately: ids[2],
        dead_long_ago: ids[3],
        running: ids[4],
        pending: ids[5],
    }
}

/// Claims one job of `job_type` (of whichever tenant's turn it is) and finishes it with `end`.
async fn run_one(store: &dyn Store, job_type: &str, now: DateTime<Utc>, end: impl Fn(&mut Job)) {
    let token = Uuid::now_v7();
    let mut job = store.claim(&[job_type], now, LEASE, token).await.unwrap().expect("a due job");
    end(&mut job);
    assert!(store.finish(token, &job).await.unwrap(), "finished under its token");
}

async fn put(store: &dyn Store, scope: &Scope, write: Write) {
    let changes = ChangeSet { writes: vec![write], ..ChangeSet::default() };
    store.commit(scope, changes).await.unwrap();
}

fn token_id(n: u128) -> RefreshTokenId {
    Id::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n))
}

fn refresh_token(scope: &Scope, user: crate::UserId, n: u128, expires_at: DateTime<Utc>) -> RefreshToken {
    RefreshToken {
        id: token_id(n),
        tenant_id: scope.tenant_id(),
        family_id: Uuid::from_u128(n),
        user_id: user,
        secret_hash: format!("{n:064x}"),
        created_at: at(0),
        expires_at,
        used_at: None,
        revoked_at: None,
        version: 1,
    }
}

fn idempotency_key(
    scope: &Scope,
    key: &str,
    locked_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Write {
    let record = IdempotencyRecord {
        tenant_id: scope.tenant_id(),
        principal: "user:retention".into(),
        key: key.into(),
        fingerprint: "f".into(),
        token: Uuid::now_v7(),
        created_at: at(0),
        locked_until,
        expires_at,
        response: None,
    };
    Write::ClaimIdempotencyKey { record, replacing: None }
}

/// Finished jobs last changed before the cutoff go, in both tenants; a dead, running, pending
/// or lately finished job stays. Expired tokens and unlocked expired keys go; live ones, and a
/// key whose claim still holds it, stay. A purge deletes at most `limit` of each sort and says
/// how many went, so a caller knows to ask again; one that finds nothing deletes nothing.
pub async fn purges_take_only_what_has_served_its_use(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let store = crm.store().as_ref();
    let mut jobs = Vec::new();
    for (created, seed) in [(&acme, 0x100), (&globex, 0x200)] {
        let scope = &created.owner_scope;
        jobs.push((scope.clone(), enqueue_jobs(store, scope, seed).await));
        let expired = refresh_token(scope, created.owner.id, seed, at(20));
        put(store, scope, Write::Insert(Entity::RefreshToken(expired))).await;
        let live = refresh_token(scope, created.owner.id, seed + 1, at(100));
        put(store, scope, Write::Insert(Entity::RefreshToken(live))).await;
        put(store, scope, idempotency_key(scope, "expired", at(5), at(20))).await;
        put(store, scope, idempotency_key(scope, "held", at(60), at(20))).await;
        put(store, scope, idempotency_key(scope, "live", at(5), at(100))).await;
    }
    for _ in 0..2 {
        run_one(store, "test.succeeded", at(1), |j| j.succeed(at(10)).unwrap()).await;
        run_one(store, "test.lately", at(1), |j| j.succeed(at(60)).unwrap()).await;
        let dead = Failure::permanent("gave up");
        run_one(store, "test.dead", at(1), |j| j.fail(&dead, at(10), &RetryPolicy::default(), 0.0).unwrap())
            .await;
        let token = Uuid::now_v7();
        store.claim(&["test.running"], at(1), Duration::from_secs(3600), token).await.unwrap().expect("due");
    }
    for (scope, ids) in &jobs {
        let mut job = store.job(scope, ids.cancelled_long_ago).await.unwrap().expect("stored");
        job.cancel(at(10)).unwrap();
        assert!(store.update_job(scope, &job, JobState::Pending).await.unwrap());
    }

    let cutoffs = PurgeCutoffs { finished_jobs_before: at(50), expired_before: at(50) };
    let first = store.purge(&cutoffs, 1).await.unwrap();
    assert_eq!(first, Purged { jobs: 1, refresh_tokens: 1, idempotency_keys: 1 }, "one of each at most");
    assert!(first.reached(1));
    let rest = store.purge(&cutoffs, 100).await.unwrap();
    assert_eq!(rest, Purged { jobs: 3, refresh_tokens: 1, idempotency_keys: 1 }, "the rest, in both tenants");
    assert!(!rest.reached(100));
    assert_eq!(store.purge(&cutoffs, 100).await.unwrap(), Purged::default(), "nothing left to purge");

    for (scope, ids) in &jobs {
        let state = async |id| store.job(scope, id).await.unwrap().map(|j| j.state);
        assert_eq!(state(ids.succeeded_long_ago).await, None);
        assert_eq!(state(ids.cancelled_long_ago).await, None);
        assert_eq!(state(ids.succeeded_lately).await, Some(JobState::Succeeded), "finished after the cutoff");
        assert_eq!(state(ids.dead_long_ago).await, Some(JobState::Dead), "kept for a manual retry");
        assert_eq!(state(ids.running).await, Some(JobState::Running));
        assert_eq!(state(ids.pending).await, Some(JobState::Pending));
        let seed = if scope.tenant_id() == acme.tenant.id { 0x100 } else { 0x200 };
        let token = async |n| store.refresh_token(scope, token_id(n)).await.unwrap();
        assert!(token(seed).await.is_none(), "the expired token went");
        assert!(token(seed + 1).await.is_some(), "the live token stayed");
        let key = async |key: &str| store.idempotency_record(scope, "user:retention", key).await.unwrap();
        assert!(key("expired").await.is_none(), "the expired key went");
        assert!(key("held").await.is_some(), "a key its claim still holds stays");
        assert!(key("live").await.is_some(), "the live key stayed");
    }
}

/// [`Crm::purge_expired`] draws its lines with the CRM's clock: a refresh token goes once the
/// clock passes its expiry, a finished job once it is older than it is kept; a keep too long to
/// subtract from now names its field.
pub async fn purge_expired_follows_the_clock(crm: Crm) {
    let clock =
        SteppingClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().expect("valid"));
    let identity = super::identity::test_config();
    let ttl = identity.refresh_ttl;
    let crm = Crm::builder_shared(crm.store().clone()).clock(clock.clone()).identity(identity).build();
    let registration = Registration {
        email: "ann@retention.example".into(),
        password: "a long enough passphrase".into(),
        name: "Ann".into(),
        tenant: NewTenantInfo { name: "Retention Inc".into(), slug: "retention".into() },
    };
    let session = crm.register(registration).await.unwrap();
    let scope = crm.scope_for(session.tenant.id, session.user.id).await.unwrap();
    crm.enqueue_job(&scope, NewJob::new("test.noop", serde_json::json!({}))).await.unwrap();
    let token = Uuid::now_v7();
    let store = crm.store().as_ref();
    let mut job = store.claim(&["test.noop"], crm.now(), LEASE, token).await.unwrap().expect("due");
    job.succeed(crm.now()).unwrap();
    assert!(store.finish(token, &job).await.unwrap());

    let day = Duration::from_secs(24 * 3600);
    assert_eq!(crm.purge_expired(day).await.unwrap(), Purged::default(), "all still in use");
    clock.advance(day + Duration::from_secs(60));
    assert_eq!(crm.purge_expired(day).await.unwrap(), Purged { jobs: 1, ..Purged::default() });
    clock.advance(ttl);
    assert_eq!(crm.purge_expired(day).await.unwrap(), Purged { refresh_tokens: 1, ..Purged::default() });
    assert!(crm.refresh(&session.refresh_token).await.is_err(), "the session is gone");
    assert_invalid(crm.purge_expired(Duration::MAX).await, &["finished_jobs_kept"]);
}
