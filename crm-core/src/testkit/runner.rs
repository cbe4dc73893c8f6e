//! Conformance cases for the job runner ([`crate::runner`]) over a store: jobs run once in their
//! tenant's scope, failures back off and die, panics and timeouts are failures, a lease renewed
//! by its attempt keeps a second runner off the job, and shutdown drains.
//!
//! Each case builds a CRM of its own over the suite's store, with the system clock (leases and
//! backoff are real time here) and the handlers it needs. Waits are bounded by [`SETTLE`], a
//! limit on how long a case may hang, not a speed assertion.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{assert_invalid, tenant};
use crate::job::{Failure, Job, JobState, NewJob, RetryPolicy};
use crate::model::{Lead, NewLead};
use crate::runner::{JobContext, JobOptions, RunnerConfig};
use crate::schedule::NewSchedule;
use crate::scope::Scope;
use crate::service::{Crm, CrmBuilder, ListRequest};
use crate::store::Enqueued;

/// The longest a case waits for a job to settle before it fails.
const SETTLE: Duration = Duration::from_secs(30);

/// Never polls: in these cases only the enqueue signal wakes an idle runner, unless a case
/// needs the poll (a job whose backoff came due).
fn waking_only() -> RunnerConfig {
    RunnerConfig { poll_interval: Duration::from_secs(3600), ..RunnerConfig::default() }
}

fn polling() -> RunnerConfig {
    RunnerConfig { poll_interval: Duration::from_millis(20), ..RunnerConfig::default() }
}

/// A CRM over the suite's store with the system clock, for handlers to be registered on.
fn builder(crm: &Crm) -> CrmBuilder {
    Crm::builder_shared(Arc::clone(crm.store()))
}

async fn enqueue(crm: &Crm, scope: &Scope, new: NewJob) -> crate::job::JobId {
    match crm.enqueue_job(scope, new).await.expect("enqueue") {
        Enqueued::New(id) => id,
        Enqueued::Existing(id) => panic!("job {id} was already there"),
    }
}

/// Waits until the job is in `state`, and returns it.
async fn settled(crm: &Crm, scope: &Scope, id: crate::job::JobId, state: JobState) -> Job {
    let started = Instant::now();
    loop {
        let job = crm.job(scope, id).await.expect("read the job");
        if job.state == state {
            return job;
        }
        assert!(started.elapsed() < SETTLE, "the job never became {state:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn panics(_ctx: JobContext) -> Result<(), Failure> {
    panic!("a handler bug")
}

async fn endless(_ctx: JobContext) -> Result<(), Failure> {
    std::future::pending().await
}

/// Each job runs once, woken by its enqueue (the runner never polls here), with its own
/// tenant's scope: what a handler writes lands in that tenant and nowhere else.
pub async fn jobs_run_once_in_their_tenants_scope(crm: Crm) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let crm = builder(&crm)
        .job_handler("test.write_lead", move |ctx: JobContext| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let name = ctx.job.payload["name"].as_str().unwrap_or_default().to_owned();
                let lead = NewLead { last_name: Some(name), ..NewLead::default() };
                ctx.crm
                    .create::<Lead>(&ctx.scope, lead)
                    .await
                    .map_err(|e| Failure::transient(e.to_string()))?;
                Ok(())
            }
        })
        .build();
    let (a, b) = (tenant(&crm, "Acme").await.owner_scope, tenant(&crm, "Globex").await.owner_scope);
    let runner = crm.run_jobs(waking_only()).expect("a valid runner");
    let in_a = enqueue(&crm, &a, NewJob::new("test.write_lead", serde_json::json!({ "name": "Ada" }))).await;
    let in_b = enqueue(&crm, &b, NewJob::new("test.write_lead", serde_json::json!({ "name": "Bob" }))).await;
    for (scope, id) in [(&a, in_a), (&b, in_b)] {
        let done = settled(&crm, scope, id, JobState::Succeeded).await;
        assert_eq!((done.attempts, done.last_error), (1, None));
    }
    runner.shutdown().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each job ran once");
    for (scope, name) in [(&a, "Ada"), (&b, "Bob")] {
        let leads = crm.list::<Lead>(scope, ListRequest::new()).await.unwrap().data;
        let names: Vec<_> = leads.iter().filter_map(|l| l.last_name.as_deref()).collect();
        assert_eq!(names, [name], "the job wrote in its own tenant only");
    }
}

/// A failing job comes back after its type's backoff — no sooner than half of each step —
/// until it succeeds; panics and permanent failures are failures like any other, and a job out
/// of attempts is dead with what its last attempt said.
pub async fn failures_back_off_and_panics_and_permanent_failures_kill(crm: Crm) {
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&starts);
    let quick = JobOptions {
        retry: RetryPolicy {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: 5,
        },
        ..JobOptions::default()
    };
    let crm = builder(&crm)
        .job_handler_with(
            "test.flaky",
            move |ctx: JobContext| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().await.push(Instant::now());
                    if ctx.job.attempts < 3 {
                        return Err(Failure::transient(format!("attempt {} failed", ctx.job.attempts)));
                    }
                    Ok(())
                }
            },
            quick,
        )
        .job_handler_with("test.panics", panics, quick)
        .job_handler_with(
            "test.refused",
            |_ctx: JobContext| async { Err(Failure::permanent("410 Gone")) },
            quick,
        )
        .build();
    let s = tenant(&crm, "Acme").await.owner_scope;
    let runner = crm.run_jobs(polling()).expect("a valid runner");
    let flaky = enqueue(&crm, &s, NewJob::new("test.flaky", serde_json::Value::Null)).await;
    let panics = enqueue(&crm, &s, NewJob::new("test.panics", serde_json::Value::Null).max_attempts(2)).await;
    let refused = enqueue(&crm, &s, NewJob::new("test.refused", serde_json::Value::Null)).await;

    let done = settled(&crm, &s, flaky, JobState::Succeeded).await;
    assert_eq!((done.attempts, done.max_attempts), (3, 5), "the type's attempt limit applies");
    assert_eq!(done.last_error.as_deref(), Some("attempt 2 failed"));
    let starts = starts.lock().await.clone();
    assert_eq!(starts.len(), 3);
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(50), "first backoff at least half of 100 ms: {gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(100), "second at least half of 200 ms: {gaps:?}");

    let dead = settled(&crm, &s, panics, JobState::Dead).await;
    assert_eq!((dead.attempts, dead.last_error.as_deref()), (2, Some("the handler panicked")));
    let dead = settled(&crm, &s, refused, JobState::Dead).await;
    assert_eq!((dead.attempts, dead.last_error.as_deref()), (1, Some("410 Gone")), "with attempts left");
    runner.shutdown().await;
}

/// An attempt longer than its lease renews it, so a second runner never takes the job while
/// it runs; an attempt longer than its type's timeout fails.
pub async fn renewed_leases_keep_other_runners_off_and_timeouts_fail(crm: Crm) {
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (now_running, at_most) = (Arc::clone(&running), Arc::clone(&most));
    let hang = JobOptions {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
    };
    let crm = builder(&crm)
        .job_handler("test.slow", move |_ctx: JobContext| {
            let (now_running, at_most) = (Arc::clone(&now_running), Arc::clone(&at_most));
            async move {
                let current = now_running.fetch_add(1, Ordering::SeqCst) + 1;
                at_most.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2500)).await;
                now_running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .job_handler_with("test.hangs", endless, hang)
        .build();
    let s = tenant(&crm, "Acme").await.owner_scope;
    let short = RunnerConfig { lease: Duration::from_secs(1), ..polling() };
    let runners = [crm.run_jobs(short).unwrap(), crm.run_jobs(short).unwrap()];
    let slow = enqueue(&crm, &s, NewJob::new("test.slow", serde_json::Value::Null)).await;
    let hangs = enqueue(&crm, &s, NewJob::new("test.hangs", serde_json::Value::Null)).await;

    let done = settled(&crm, &s, slow, JobState::Succeeded).await;
    assert_eq!(done.attempts, 1, "2.5 s under a 1 s lease, renewed: never taken over");
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two attempts at once");
    let dead = settled(&crm, &s, hangs, JobState::Dead).await;
    assert_eq!(dead.last_error.as_deref(), Some("timed out after 0.2 s"));
    for runner in runners {
        runner.shutdown().await;
    }
}

/// Shutdown stops claiming and waits for the attempts running; one that outlasts the drain
/// timeout is left running, to its lease.
pub async fn shutdown_drains_running_attempts(crm: Crm) {
    let crm = builder(&crm)
        .job_handler("test.brief", |_ctx: JobContext| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        })
        .job_handler("test.endless", endless)
        .build();
    let s = tenant(&crm, "Acme").await.owner_scope;
    let runner = crm.run_jobs(waking_only()).unwrap();
    let brief = enqueue(&crm, &s, NewJob::new("test.brief", serde_json::Value::Null)).await;
    settled(&crm, &s, brief, JobState::Running).await;
    runner.shutdown().await;
    assert_eq!(crm.job(&s, brief).await.unwrap().state, JobState::Succeeded, "drained, not dropped");
    let after = enqueue(&crm, &s, NewJob::new("test.brief", serde_json::Value::Null)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(crm.job(&s, after).await.unwrap().state, JobState::Pending, "a stopped runner claims nothing");

    let impatient = RunnerConfig { drain_timeout: Duration::from_millis(100), ..waking_only() };
    let runner = crm.run_jobs(impatient).unwrap();
    settled(&crm, &s, after, JobState::Succeeded).await;
    let endless = enqueue(&crm, &s, NewJob::new("test.endless", serde_json::Value::Null)).await;
    settled(&crm, &s, endless, JobState::Running).await;
    runner.shutdown().await;
    let left = crm.job(&s, endless).await.unwrap();
    assert_eq!((left.state, left.attempts), (JobState::Running, 1), "left to its lease");
}

/// A runner is refused a configuration out of range, and a handler registered under a name no
/// job could carry.
pub async fn runner_configuration_is_checked(crm: Crm) {
    let zero = RunnerConfig {
        concurrency: 0,
        lease: Duration::from_millis(10),
        poll_interval: Duration::ZERO,
        drain_timeout: Duration::from_secs(7200),
        finished_jobs_kept: Some(Duration::from_secs(59)),
    };
    let fields = ["concurrency", "lease", "poll_interval", "drain_timeout", "finished_jobs_kept"];
    assert_invalid(crm.run_jobs(zero).map(drop), &fields);
    let misnamed = builder(&crm).job_handler("Not A Type", |_ctx: JobContext| async { Ok(()) }).build();
    assert_invalid(misnamed.run_jobs(RunnerConfig::default()).map(drop), &["job_type"]);
}

/// A cron schedule fires through the runners: two runners look every 20 ms at a schedule due
/// every second, and each occurrence is enqueued and run once.
pub async fn cron_occurrences_run_once_across_runners(crm: Crm) {
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let crm = builder(&crm)
        .job_handler("test.tick", move |ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().await.push(ctx.job.unique_key.clone().unwrap_or_default());
                Ok(())
            }
        })
        .build();
    let s = tenant(&crm, "Acme").await.owner_scope;
    let tick = NewSchedule {
        name: "tick".into(),
        cron: "* * * * * *".into(),
        job_type: "test.tick".into(),
        payload: serde_json::Value::Null,
    };
    crm.set_schedule(&s, tick).await.unwrap();
    let runners = [crm.run_jobs(polling()).unwrap(), crm.run_jobs(polling()).unwrap()];
    let started = Instant::now();
    while runs.lock().await.len() < 3 {
        assert!(started.elapsed() < SETTLE, "the schedule never fired three times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for runner in runners {
        runner.shutdown().await;
    }
    let mut ran = runs.lock().await.clone();
    assert!(ran.iter().all(|key| key.starts_with("cron:tick:")), "{ran:?}");
    let count = ran.len();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), count, "no occurrence ran twice");
    let jobs = crm.jobs(&s, None, None, Some(100)).await.unwrap().data;
    let mut keys: Vec<_> = jobs.iter().filter_map(|j| j.unique_key.clone()).collect();
    let enqueued = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), enqueued, "no occurrence enqueued twice");
}
