//! Conformance cases for cron schedules ([`crate::schedule`]): kept per tenant and replaced by
//! name through the service (admins only), and fired once per occurrence however many runners
//! race for it.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{assert_invalid, tenant};
use crate::error::Error;
use crate::job::{Job, JobId, JobState, RetryPolicy};
use crate::model::NewMember;
use crate::schedule::{NewSchedule, Schedule};
use crate::scope::Role;
use crate::service::Crm;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("a valid time")
        + chrono::Duration::seconds(seconds)
}

fn digest(name: &str, cron: &str) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        cron: cron.into(),
        job_type: "digest.send".into(),
        payload: serde_json::json!({ "period": name }),
    }
}

/// A schedule due at `at(0)`, stored as the store would have it.
fn due_schedule(crm_tenant: crate::TenantId) -> Schedule {
    let mut schedule = Schedule::new(crm_tenant, digest("minutely", "* * * * *"), at(-30)).expect("valid");
    schedule.next_run_at = at(0);
    schedule
}

fn occurrence(schedule: &Schedule, n: u128) -> Job {
    let id = JobId::from_uuid(Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | n));
    Job::new(id, schedule.tenant_id, schedule.occurrence(), at(1), &RetryPolicy::default())
}

/// Through the service, schedules are the tenant admins': checked field by field, listed by
/// name, replaced by name (keeping when they were created), deleted; other roles are refused
/// and another tenant's schedules are neither seen nor touched.
pub async fn schedules_are_the_tenants_and_replaced_by_name(crm: Crm) {
    let owner = tenant(&crm, "Acme").await.owner_scope;
    let other = tenant(&crm, "Globex").await.owner_scope;
    let weekly = crm.set_schedule(&owner, digest("weekly", "0 7 * * MON")).await.unwrap();
    let daily = crm.set_schedule(&owner, digest("daily", "0 7 * * *")).await.unwrap();
    crm.set_schedule(&other, digest("weekly", "0 9 * * FRI")).await.unwrap();
    let names: Vec<String> = crm.schedules(&owner).await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["daily", "weekly"]);
    assert!(daily.next_run_at > daily.created_at, "next due after it was set");

    let replaced = crm.set_schedule(&owner, digest("weekly", "30 6 * * TUE")).await.unwrap();
    let stored = crm.schedules(&owner).await.unwrap().into_iter().find(|s| s.name == "weekly").unwrap();
    assert_eq!((stored.cron.as_str(), stored.next_run_at), ("30 6 * * TUE", replaced.next_run_at));
    assert_eq!(stored.created_at, weekly.created_at, "a replacement keeps its creation time");
    let theirs = crm.schedules(&other).await.unwrap();
    assert_eq!((theirs.len(), theirs[0].cron.as_str()), (1, "0 9 * * FRI"), "theirs untouched");

    crm.delete_schedule(&owner, "daily").await.unwrap();
    assert_err!(crm.delete_schedule(&owner, "daily").await, Error::NotFound);
    assert_eq!(crm.schedules(&owner).await.unwrap().len(), 1);
    assert_err!(crm.delete_schedule(&other, "daily").await, Error::NotFound);

    assert_invalid(crm.set_schedule(&owner, digest("", "61 * * * *")).await, &["name", "cron"]);
    let untyped = NewSchedule { job_type: "No Type".into(), ..digest("x", "* * * * *") };
    assert_invalid(crm.set_schedule(&owner, untyped).await, &["job_type"]);

    let new =
        NewMember { email: "m@acme.example".into(), name: "M".into(), role: Role::Manager, password: None };
    let manager = crm.add_member(&owner, new).await.unwrap();
    let manager = crm.scope_for(owner.tenant_id(), manager.user.id).await.unwrap();
    assert_err!(crm.set_schedule(&manager, digest("mine", "* * * * *")).await, Error::Forbidden);
    assert_err!(crm.schedules(&manager).await, Error::Forbidden);
    assert_err!(crm.delete_schedule(&manager, "weekly").await, Error::Forbidden);
}

/// A due schedule fires once: the runner that moves it on enqueues the occurrence, one that
/// read it due too writes nothing; a replaced schedule is not fired from its old reading; a
/// schedule not yet due is not read as due.
pub async fn a_due_occurrence_fires_once(crm: Crm) {
    let a = tenant(&crm, "Acme").await.owner_scope;
    let store = crm.store().as_ref();
    let schedule = due_schedule(a.tenant_id());
    store.put_schedule(&a, &schedule).await.unwrap();
    assert!(store.due_schedules(at(-1), 10).await.unwrap().is_empty(), "not due before its time");
    let seen_by_one = store.due_schedules(at(1), 10).await.unwrap();
    let seen_by_two = store.due_schedules(at(1), 10).await.unwrap();
    assert_eq!(seen_by_one, vec![schedule.clone()], "read back as stored");
    let next = schedule.following(at(1)).unwrap();
    assert_eq!(next, at(60));
    assert!(store.fire_schedule(&seen_by_one[0], next, &occurrence(&schedule, 1)).await.unwrap());
    assert!(
        !store.fire_schedule(&seen_by_two[0], next, &occurrence(&schedule, 2)).await.unwrap(),
        "fired once"
    );
    let jobs = store.jobs(&a, None, None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].unique_key, schedule.occurrence().unique_key);
    assert_eq!((jobs[0].state, jobs[0].job_type.as_str()), (JobState::Pending, "digest.send"));
    let moved = store.schedules(&a).await.unwrap().remove(0);
    assert_eq!((moved.next_run_at, moved.updated_at), (at(60), at(1)));
    assert!(store.due_schedules(at(59), 10).await.unwrap().is_empty(), "next due at its next occurrence");

    // Replaced after a runner read it: that reading fires nothing.
    let stale = store.due_schedules(at(61), 10).await.unwrap().remove(0);
    let mut replaced = stale.clone();
    replaced.payload = serde_json::json!({ "period": "new" });
    replaced.updated_at = at(61);
    store.put_schedule(&a, &replaced).await.unwrap();
    assert!(!store.fire_schedule(&stale, at(120), &occurrence(&stale, 3)).await.unwrap());
    assert!(store.delete_schedule(&a, "minutely").await.unwrap());
    assert!(!store.fire_schedule(&replaced, at(120), &occurrence(&replaced, 4)).await.unwrap(), "deleted");
    assert_eq!(store.jobs(&a, None, None, 10).await.unwrap().len(), 1);
}

/// Runners racing for one occurrence on many threads: one fires it, one job exists.
pub async fn concurrent_fires_enqueue_one_occurrence(crm: Crm) {
    let a = tenant(&crm, "Acme").await.owner_scope;
    let store = crm.store().clone();
    let schedule = due_schedule(a.tenant_id());
    store.put_schedule(&a, &schedule).await.unwrap();
    let next = schedule.following(at(1)).unwrap();
    let fires: Vec<_> = (0..8u128)
        .map(|n| {
            let (store, schedule) = (store.clone(), schedule.clone());
            tokio::spawn(async move { store.fire_schedule(&schedule, next, &occurrence(&schedule, n)).await })
        })
        .collect();
    let mut fired = 0;
    for fire in fires {
        fired += usize::from(fire.await.expect("a fire task").expect("a fire"));
    }
    assert_eq!(fired, 1, "one runner fired the occurrence");
    assert_eq!(store.jobs(&a, None, None, 20).await.unwrap().len(), 1, "one job for it");
}
