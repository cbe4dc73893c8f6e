//! The job runner: claims due jobs from the store, runs each with its type's handler under a
//! renewed lease, and writes the outcome.
//!
//! A host registers handlers on the [`CrmBuilder`](crate::CrmBuilder) — one per job type,
//! each with its [`JobOptions`] (retry schedule, attempt limit, timeout) — and starts any number
//! of runners with [`Crm::run_jobs`], in its own process or in separate worker processes:
//! claims are leased, so runners need no coordination beyond the store. Every process that
//! enqueues must register the same options for a type (the attempt limit is fixed at enqueue);
//! only the processes that run jobs need the handlers to be real work.
//!
//! Delivery is at least once: a handler may run again after a crash between its work and the
//! store recording it, so handlers are idempotent (a webhook delivery keeps its `webhook-id`).
//! What a runner guarantees:
//! - a job runs in one attempt at a time: the attempt renews its lease every third of the lease,
//!   and an attempt that finds its lease taken over (it stalled past its lease) is stopped;
//! - a job runs with its tenant's scope (the system principal) and reaches no other tenant;
//! - a handler that fails, panics or outlives its type's timeout fails the attempt, which
//!   backs off by its type's [`RetryPolicy`] until the job is dead;
//! - [`JobRunner::shutdown`] stops claiming and waits for running attempts up to
//!   [`RunnerConfig::drain_timeout`]; an attempt still running then is left to its lease, after
//!   which any runner takes the job over.
//!
//! Each runner also fires the cron schedules that came due ([`crate::schedule`]), looking every
//! poll interval or every second, whichever is shorter.
//!
//! Idle runners wake on an enqueue in their own process at once, on one in another process when
//! the store signals it ([`JobStore::enqueue_signal`](crate::store::JobStore::enqueue_signal):
//! `LISTEN/NOTIFY` on Postgres), and otherwise every [`RunnerConfig::poll_interval`] (the
//! fallback that also finds jobs whose `run_at` came).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Error, FieldError, Result};
use crate::job::{Failure, Job, RetryPolicy};
use crate::scope::Scope;
use crate::service::Crm;

/// Runs jobs of one type. A closure `Fn(JobContext) -> impl Future<Output = Result<(), Failure>>`
/// is a handler too.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// One attempt at `ctx.job`. `Err` fails the attempt: it is retried with backoff unless the
    /// failure is permanent or the job has no attempt left.
    async fn run(&self, ctx: JobContext) -> std::result::Result<(), Failure>;
}

#[async_trait]
impl<F, Fut> JobHandler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), Failure>> + Send + 'static,
{
    async fn run(&self, ctx: JobContext) -> std::result::Result<(), Failure> {
        self(ctx).await
    }
}

/// What a handler gets for one attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobContext {
    /// The CRM, to read and write through its services.
    pub crm: Crm,
    /// The job's tenant, acting as the system: every call with it stays in that tenant.
    pub scope: Scope,
    /// The job as claimed: running, its `attempts` counting this one.
    pub job: Job,
}

/// How jobs of one type are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// Backoff between attempts, and the attempts a job gets unless it names its own.
    pub retry: RetryPolicy,
    /// An attempt still running after this long fails (and is retried like any failure).
    pub timeout: Duration,
}

impl Default for JobOptions {
    /// [`RetryPolicy::default`], five minutes per attempt.
    fn default() -> Self {
        JobOptions { retry: RetryPolicy::default(), timeout: Duration::from_secs(300) }
    }
}

/// A registered job type.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) handler: Arc<dyn JobHandler>,
    pub(crate) options: JobOptions,
}

/// The job types a [`Crm`] knows, by name.
#[derive(Clone, Default)]
pub(crate) struct JobTypes(HashMap<String, Registered>);

impl JobTypes {
    pub(crate) fn insert(&mut self, job_type: String, registered: Registered) {
        self.0.insert(job_type, registered);
    }

    pub(crate) fn get(&self, job_type: &str) -> Option<&Registered> {
        self.0.get(job_type)
    }

    /// The options of `job_type`, or the defaults for a type this process has no handler for.
    pub(crate) fn options(&self, job_type: &str) -> JobOptions {
        self.get(job_type).map_or_else(JobOptions::default, |r| r.options)
    }

    /// Every registered name, sorted (so claims list them the same way each time).
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }
}

impl fmt::Debug for JobTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// How a runner claims and runs jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Attempts run at once (1 to 1000).
    pub concurrency: usize,
    /// How long a claim holds a job without renewal (1 s to 1 h); attempts renew it every third
    /// of it, and a crashed runner's jobs are taken over this long after its last renewal.
    pub lease: Duration,
    /// How often an idle runner looks for due jobs without being woken (10 ms to 1 h).
    pub poll_interval: Duration,
    /// How long [`JobRunner::shutdown`] waits for running attempts.
    pub drain_timeout: Duration,
    /// How long succeeded and cancelled jobs are kept (1 minute to 10 years) before the
    /// runner's hourly sweep deletes them, with expired refresh tokens and idempotency keys
    /// ([`Crm::purge_expired`]); `None`: this runner does not sweep (another does, or the host).
    pub finished_jobs_kept: Option<Duration>,
}

/// How often a runner sweeps with [`Crm::purge_expired`]: rows it deletes are past their use
/// already, so an hour late costs some disk and nothing else.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

impl Default for RunnerConfig {
    /// Ten at once, 30 s leases, a poll a second, 30 s to drain, finished jobs kept a week.
    fn default() -> Self {
        RunnerConfig {
            concurrency: 10,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            finished_jobs_kept: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

impl RunnerConfig {
    /// Every problem with the configuration, each naming its field.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if !(1..=1000).contains(&self.concurrency) {
            errors.push(FieldError::new("concurrency", "must be between 1 and 1000"));
        }
        let hour = Duration::from_secs(3600);
        if !(Duration::from_secs(1)..=hour).contains(&self.lease) {
            errors.push(FieldError::new("lease", "must be between 1 second and 1 hour"));
        }
        if !(Duration::from_millis(10)..=hour).contains(&self.poll_interval) {
            errors.push(FieldError::new("poll_interval", "must be between 10 milliseconds and 1 hour"));
        }
        if self.drain_timeout > hour {
            errors.push(FieldError::new("drain_timeout", "must be at most 1 hour"));
        }
        let ten_years = Duration::from_secs(3650 * 24 * 3600);
        if self.finished_jobs_kept.is_some_and(|kept| !(Duration::from_secs(60)..=ten_years).contains(&kept))
        {
            errors.push(FieldError::new("finished_jobs_kept", "must be between 1 minute and 10 years"));
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }
}

/// A running runner. [`JobRunner::shutdown`] drains it; dropping it stops claiming without
/// waiting (running attempts go on in the background until they end).
#[derive(Debug)]
pub struct JobRunner {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl JobRunner {
    /// Stops claiming, waits for running attempts up to the drain timeout, and returns; an
    /// attempt still running then is abandoned to its lease.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for JobRunner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Crm {
    /// Starts a runner for every job type registered on this CRM, on the current Tokio runtime.
    /// Refuses a configuration out of range, and a job type name that no job could carry.
    pub fn run_jobs(&self, config: RunnerConfig) -> Result<JobRunner> {
        config.validate()?;
        let types = self.job_types().names();
        if let Some(bad) =
            types.iter().find(|t| crate::job::NewJob::new(*t, serde_json::Value::Null).validate().is_err())
        {
            return Err(Error::invalid("job_type", format!("{bad:?} is not a job type name")));
        }
        let (stop, stopped) = watch::channel(false);
        let runner = Runner { crm: self.clone(), config, types };
        let task = tokio::spawn(runner.run(stopped));
        Ok(JobRunner { stop, task: Some(task) })
    }
}

struct Runner {
    crm: Crm,
    config: RunnerConfig,
    types: Vec<String>,
}

impl Runner {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut local = this.crm.enqueue_signal();
        let mut remote = this.crm.job_store().enqueue_signal();
        let mut running = JoinSet::new();
        let mut claiming: JoinSet<Result<Option<(Job, Uuid)>>> = JoinSet::new();
        let _schedules =
            AbortOnDrop(tokio::spawn(fire_schedules(this.crm.clone(), this.config.poll_interval)));
        let _sweep = this
            .config
            .finished_jobs_kept
            .map(|kept| AbortOnDrop(tokio::spawn(sweep(this.crm.clone(), kept))));
        let poll = tokio::time::sleep(this.config.poll_interval);
        tokio::pin!(poll);
        // Idle: the last claim found nothing (or failed); no claim starts until a wake or the poll.
        let mut idle = false;
        // Claims allowed under way at once: one after a wake, doubled by each claim that brings a
        // job, up to the free slots. A claim is a round trip, so one at a time capped a runner at
        // one job per round trip (1 800 jobs/s on Postgres here); starting small keeps a wake
        // for one job to one query.
        let mut burst = 1;
        loop {
            if *stopped.borrow() {
                break;
            }
            while !idle && claiming.len() < burst && running.len() + claiming.len() < this.config.concurrency
            {
                // Marked seen before the claim starts: whatever was enqueued before is visible to
                // it, and an enqueue from now on wakes the wait below.
                local.mark_unchanged();
                if let Some(remote) = remote.as_mut() {
                    remote.mark_unchanged();
                }
                let this = Arc::clone(&this);
                claiming.spawn(async move { this.claim().await });
            }
            tokio::select! {
                _ = stopped.changed() => break,
                Some(claimed) = claiming.join_next(), if !claiming.is_empty() => {
                    match claimed {
                        Ok(Ok(Some((job, token)))) => {
                            this.start(&mut running, job, token);
                            burst = (burst * 2).min(this.config.concurrency);
                        }
                        Ok(Ok(None)) => (idle, burst) = (true, 1),
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "claiming a job failed; trying again after the poll interval");
                            (idle, burst) = (true, 1);
                        }
                        Err(error) => {
                            tracing::error!(%error, "a claim task failed");
                            (idle, burst) = (true, 1);
                        }
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = local.changed(), if idle => idle = false,
                _ = changed(remote.as_mut()), if idle => idle = false,
                _ = &mut poll => {
                    idle = false;
                    poll.as_mut().reset(tokio::time::Instant::now() + this.config.poll_interval);
                }
            }
        }
        // Claims under way may still bring jobs: those run, and are drained with the rest.
        while let Some(claimed) = claiming.join_next().await {
            if let Ok(Ok(Some((job, token)))) = claimed {
                this.start(&mut running, job, token);
            }
        }
        let drained = tokio::time::timeout(this.config.drain_timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = running.len(), "drain timed out; unfinished jobs wait for their leases");
        }
    }

    /// Starts the attempt at a claimed job.
    fn start(self: &Arc<Self>, running: &mut JoinSet<()>, job: Job, token: Uuid) {
        let span = tracing::info_span!("job", id = %job.id, job_type = %job.job_type, attempt = job.attempts);
        running.spawn(Arc::clone(self).attempt(job, token).instrument(span));
    }

    async fn claim(&self) -> Result<Option<(Job, Uuid)>> {
        let types: Vec<&str> = self.types.iter().map(String::as_str).collect();
        let token = Uuid::now_v7();
        let now = self.crm.now();
        let job = self.crm.job_store().claim(&types, now, self.config.lease, token).await?;
        Ok(job.map(|job| (job, token)))
    }

    /// One attempt: the handler in a task of its own (so a panic is a failure, not a lost
    /// runner), its lease renewed beside it, then the outcome written under the claim's token.
    async fn attempt(self: Arc<Self>, mut job: Job, token: Uuid) {
        let Some(registered) = self.crm.job_types().get(&job.job_type).cloned() else {
            return; // claimed only by registered type, so unreachable
        };
        let ctx = JobContext { crm: self.crm.clone(), scope: Scope::system(job.tenant_id), job: job.clone() };
        let handler = registered.handler;
        let mut work = AbortOnDrop(tokio::spawn(async move { handler.run(ctx).await }));
        let mut renew = tokio::time::interval(self.config.lease / 3);
        renew.tick().await;
        let deadline = tokio::time::sleep(registered.options.timeout);
        tokio::pin!(deadline);
        let outcome = loop {
            tokio::select! {
                done = &mut work.0 => break match done {
                    Ok(outcome) => outcome,
                    Err(e) if e.is_panic() => Err(Failure::transient("the handler panicked")),
                    Err(_) => Err(Failure::transient("the handler was cancelled")),
                },
                _ = &mut deadline => {
                    let secs = registered.options.timeout.as_secs_f64();
                    break Err(Failure::transient(format!("timed out after {secs} s")));
                }
                _ = renew.tick() => {
                    let until = self.crm.now() + self.config.lease;
                    match self.crm.job_store().heartbeat(token, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("lease lost to another runner; attempt stopped");
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "renewing a lease failed"),
                    }
                }
            }
        };
        drop(work);
        let now = self.crm.now();
        let moved = match &outcome {
            Ok(()) => job.succeed(now),
            Err(failure) => job.fail(failure, now, &registered.options.retry, rand::random::<f64>()),
        };
        if let Err(error) = moved {
            tracing::error!(%error, "a claimed job could not take its outcome");
            return;
        }
        match self.crm.job_store().finish(token, &job).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease lost before the outcome was written; another attempt runs"),
            Err(error) => {
                tracing::warn!(%error, "writing the outcome failed; the job runs again after its lease")
            }
        }
    }
}

/// Fires due cron schedules every poll interval, or every second if that is longer (cron has
/// seconds), until the runner ends and aborts it.
async fn fire_schedules(crm: Crm, poll_interval: Duration) {
    let mut tick = tokio::time::interval(poll_interval.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = crm.fire_due_schedules().await {
            tracing::warn!(%error, "firing due schedules failed; trying again");
        }
    }
}

/// Purges what has served its use every [`PURGE_INTERVAL`], the first time one interval after
/// the start (so a restarting fleet does not sweep all at once), until the runner ends and
/// aborts it. Two runners sweeping at once delete disjoint rows or none.
async fn sweep(crm: Crm, finished_jobs_kept: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PURGE_INTERVAL, PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match crm.purge_expired(finished_jobs_kept).await {
            Ok(purged) => tracing::debug!(?purged, "swept finished jobs, expired tokens and keys"),
            Err(error) => tracing::warn!(%error, "the retention sweep failed; trying again next time"),
        }
    }
}

/// Waits for a change of a signal that may be absent (then forever).
async fn changed(signal: Option<&mut watch::Receiver<u64>>) {
    match signal {
        Some(signal) => {
            if signal.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Aborts the handler task when the attempt ends early (lease lost, timeout, shutdown).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
