//! Background jobs: what a job is, the states it moves through, and when a failed one runs
//! again.
//!
//! The store trait that persists and claims jobs and the runner that drives them build on
//! these types (issue 16); nothing here does I/O, so every store and the runner share one set
//! of transition rules and one retry schedule, tested here once.
//!
//! A job moves like this:
//!
//! ```text
//! pending ──claim──► running ──success──► succeeded
//!    ▲                  │ failure
//!    │                  ├──── attempts left ────► pending (run_at = now + backoff)
//!    │                  └──── none left ────────► dead ──retry──► pending
//!    └── lease expired: claimable again (its worker is presumed gone)
//! pending, dead ──cancel──► cancelled ──retry──► pending
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, FieldError, Result};
use crate::id::Id;
use crate::scope::TenantId;

/// A job's id (UUID v7, so ids sort by creation).
pub type JobId = Id<Job>;

/// Longest job type name, in bytes.
pub const MAX_JOB_TYPE_LEN: usize = 64;
/// Longest unique key, in bytes (printable ASCII, as [`crate::validate::is_printable_key`]).
pub const MAX_UNIQUE_KEY_LEN: usize = crate::validate::MAX_KEY_LEN;
/// Largest payload, as JSON: a job carries ids and parameters, not documents.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most attempts a job may be given.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest error kept from a failed attempt, in characters.
pub const MAX_ERROR_CHARS: usize = 2000;

crate::wire_enum! {
    /// Where a job is in its life (see the module docs for the moves between states).
    pub enum JobState as "a job state" {
        /// Waiting for its `run_at`, or for a worker.
        Pending = "pending",
        /// Claimed by a worker, under a lease.
        Running = "running",
        /// Done.
        Succeeded = "succeeded",
        /// Failed on its last attempt, or permanently; kept for inspection and manual retry.
        Dead = "dead",
        /// Stopped by an admin before it ran to the end.
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// Whether nothing more happens to the job unless someone retries it: cleanup may purge
    /// such jobs after a while.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Dead | JobState::Cancelled)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to run: a dotted name the runner has a handler for (`webhook.deliver`).
    pub job_type: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Not before this instant; `None` runs it as soon as a worker is free.
    pub run_at: Option<DateTime<Utc>>,
    /// While a pending or running job of the tenant holds this key, enqueueing another with it
    /// is a no-op that returns the existing job (stores enforce it with a constraint).
    pub unique_key: Option<String>,
    /// Attempts before the job is dead; `None` takes the [`RetryPolicy`]'s.
    pub max_attempts: Option<u32>,
}

impl NewJob {
    /// A job of `job_type` with `payload`, to run now, not unique, with the default attempts.
    pub fn new(job_type: impl Into<String>, payload: serde_json::Value) -> Self {
        NewJob { job_type: job_type.into(), payload, run_at: None, unique_key: None, max_attempts: None }
    }

    /// Runs it not before `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Makes it unique by `key` among the tenant's unfinished jobs.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Gives it `attempts` attempts instead of the policy's.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Every problem with the job, each naming its field.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if !is_job_type(&self.job_type) {
            let message = format!(
                "must be dot-separated lower-case words (a-z, 0-9, _), at most {MAX_JOB_TYPE_LEN} bytes"
            );
            errors.push(FieldError::new("job_type", message));
        }
        if let Some(key) = &self.unique_key {
            if !crate::validate::is_printable_key(key) {
                let message = format!("must be 1 to {MAX_UNIQUE_KEY_LEN} printable ASCII characters");
                errors.push(FieldError::new("unique_key", message));
            }
        }
        if self.max_attempts.is_some_and(|n| !(1..=MAX_ATTEMPTS).contains(&n)) {
            errors.push(FieldError::new("max_attempts", format!("must be between 1 and {MAX_ATTEMPTS}")));
        }
        let size = serde_json::to_vec(&self.payload).map_or(usize::MAX, |json| json.len());
        if size > MAX_PAYLOAD_BYTES {
            errors.push(FieldError::new("payload", "must be at most 64 KiB as JSON"));
        }
        if let Some(at) = self.run_at {
            crate::validate::time("run_at", &at, &mut errors);
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }
}

/// `webhook.deliver`: dot-separated words of `a-z`, `0-9` and `_`, each starting with a letter.
fn is_job_type(name: &str) -> bool {
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    name.len() <= MAX_JOB_TYPE_LEN && name.split('.').all(word)
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The tenant it works for: it runs with that tenant's scope and no other.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub tenant_id: TenantId,
    /// What runs it.
    pub job_type: String,
    /// Its input (any JSON value).
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub payload: serde_json::Value,
    /// Where it is.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts it gets before it is dead.
    pub max_attempts: u32,
    /// Not before this instant (the next attempt's, after a failure).
    pub run_at: DateTime<Utc>,
    /// Its unique key, if it has one.
    pub unique_key: Option<String>,
    /// While running: when its worker's lease ends unless renewed.
    pub lease_until: Option<DateTime<Utc>>,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed state.
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// A pending job from a validated [`NewJob`].
    pub fn new(
        id: JobId,
        tenant_id: TenantId,
        new: NewJob,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Self {
        Job {
            id,
            tenant_id,
            job_type: new.job_type,
            payload: new.payload,
            state: JobState::Pending,
            attempts: 0,
            max_attempts: new.max_attempts.unwrap_or(policy.max_attempts),
            run_at: new.run_at.unwrap_or(now),
            unique_key: new.unique_key,
            lease_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a worker may claim it at `now`: pending and due, or running under a lease that
    /// ran out (its worker stopped renewing it).
    pub fn is_claimable(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            JobState::Pending => self.run_at <= now,
            JobState::Running => self.lease_until.is_none_or(|until| until <= now),
            _ => false,
        }
    }

    /// Claims it for an attempt under a lease of `lease` from `now`.
    pub fn claim(&mut self, now: DateTime<Utc>, lease: Duration) -> Result<()> {
        if !self.is_claimable(now) {
            return Err(Error::guard(format!(
                "the job is {} and not due: nothing to claim",
                self.state.as_str()
            )));
        }
        self.state = JobState::Running;
        self.attempts += 1;
        self.lease_until = Some(now + lease);
        self.updated_at = now;
        Ok(())
    }

    /// Records a successful attempt.
    pub fn succeed(&mut self, now: DateTime<Utc>) -> Result<()> {
        self.running()?;
        self.state = JobState::Succeeded;
        self.lease_until = None;
        self.updated_at = now;
        Ok(())
    }

    /// Records a failed attempt: pending again after the policy's backoff (never sooner than
    /// `not_before`, a `Retry-After`), or dead when no attempt is left or the failure is
    /// `permanent`. `jitter` is a draw from `[0, 1)`.
    pub fn fail(
        &mut self,
        failure: &Failure,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Result<()> {
        self.running()?;
        self.last_error = Some(failure.message.chars().take(MAX_ERROR_CHARS).collect());
        self.lease_until = None;
        self.updated_at = now;
        if failure.permanent || self.attempts >= self.max_attempts {
            self.state = JobState::Dead;
        } else {
            let delay = policy.delay(self.attempts, jitter).max(failure.not_before.unwrap_or_default());
            self.state = JobState::Pending;
            self.run_at = now + delay;
        }
        Ok(())
    }

    /// Stops a job that has not run to the end (pending or dead); a running attempt is left to
    /// finish, so cancelling it is refused.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<()> {
        if !matches!(self.state, JobState::Pending | JobState::Dead) {
            return Err(Error::guard(format!("a {} job cannot be cancelled", self.state.as_str())));
        }
        self.state = JobState::Cancelled;
        self.updated_at = now;
        Ok(())
    }

    /// Runs a dead or cancelled job again, now, with a fresh set of attempts.
    pub fn retry(&mut self, now: DateTime<Utc>) -> Result<()> {
        if !matches!(self.state, JobState::Dead | JobState::Cancelled) {
            return Err(Error::guard(format!("a {} job cannot be retried", self.state.as_str())));
        }
        self.state = JobState::Pending;
        self.attempts = 0;
        self.run_at = now;
        self.updated_at = now;
        Ok(())
    }

    fn running(&self) -> Result<()> {
        match self.state {
            JobState::Running => Ok(()),
            other => Err(Error::guard(format!("a {} job has no attempt to finish", other.as_str()))),
        }
    }
}

/// Why an attempt failed, as its handler reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failure {
    /// What went wrong, for the job's `last_error` (cut to [`MAX_ERROR_CHARS`]).
    pub message: String,
    /// No later attempt can succeed (a webhook endpoint answered 410): the job is dead now.
    pub permanent: bool,
    /// The next attempt must not start sooner (a `Retry-After`).
    pub not_before: Option<Duration>,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Failure { message: message.into(), ..Failure::default() }
    }

    /// A failure no retry can mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        Failure { message: message.into(), permanent: true, not_before: None }
    }
}

/// When a failed attempt runs again: exponential backoff from `base`, doubled per failed
/// attempt up to `max_delay`, with "equal jitter" — half the delay fixed, half drawn — so the
/// jobs that failed together (an endpoint down) do not all come back in the same second, while
/// none comes back sooner than half its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry's delay before jitter.
    pub base: Duration,
    /// The longest delay before jitter.
    pub max_delay: Duration,
    /// Attempts a job gets unless it names its own.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 10 s doubling to at most an hour, 20 attempts: from the first failure to dead takes
    /// between 5.7 and 11.4 hours, 8.6 on average.
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(10), max_delay: Duration::from_secs(3600), max_attempts: 20 }
    }
}

impl RetryPolicy {
    /// The delay after the `failed`-th failed attempt (1 for the first), for a `jitter` drawn
    /// from `[0, 1)` (clamped): between half and all of `min(base · 2^(failed-1), max_delay)`.
    pub fn delay(&self, failed: u32, jitter: f64) -> Duration {
        let step =
            self.base.saturating_mul(2u32.saturating_pow(failed.saturating_sub(1))).min(self.max_delay);
        let half = step / 2;
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        half + (step - half).mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn job(new: NewJob) -> Job {
        let tenant = TenantId::from_uuid(Uuid::from_u128(1));
        Job::new(JobId::from_uuid(Uuid::from_u128(2)), tenant, new, at(0), &RetryPolicy::default())
    }

    fn fields(result: Result<()>) -> Vec<String> {
        match result {
            Err(Error::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn new_jobs_are_checked_field_by_field() {
        let ok = NewJob::new("webhook.deliver", serde_json::json!({ "id": 1 })).unique_key("delivery:1");
        assert!(ok.validate().is_ok());
        assert!(NewJob::new("cleanup", serde_json::Value::Null).max_attempts(1).validate().is_ok());
        for name in ["", "Webhook", "webhook.", ".x", "a..b", "1st", "a-b", &"a".repeat(65)] {
            assert_eq!(
                fields(NewJob::new(name, serde_json::Value::Null).validate()),
                ["job_type"],
                "{name:?}"
            );
        }
        let bad = NewJob::new("x", serde_json::json!("a".repeat(MAX_PAYLOAD_BYTES)))
            .unique_key(" ")
            .max_attempts(0)
            .run_at(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(fields(bad.validate()), ["unique_key", "max_attempts", "payload", "run_at"]);
        assert_eq!(
            fields(NewJob::new("x", serde_json::Value::Null).unique_key("é").validate()),
            ["unique_key"]
        );
        assert_eq!(
            fields(NewJob::new("x", serde_json::Value::Null).max_attempts(101).validate()),
            ["max_attempts"]
        );
    }

    #[test]
    fn backoff_doubles_within_its_jitter_band_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let secs = |failed, jitter| policy.delay(failed, jitter).as_secs_f64();
        assert_eq!((secs(1, 0.0), secs(1, 1.0)), (5.0, 10.0));
        assert_eq!((secs(2, 0.0), secs(2, 0.5)), (10.0, 15.0));
        assert_eq!((secs(10, 0.0), secs(10, 1.0)), (1800.0, 3600.0), "capped at an hour");
        assert_eq!(secs(u32::MAX, 1.0), 3600.0, "no overflow");
        assert_eq!((secs(1, -3.0), secs(1, 7.0), secs(1, f64::NAN)), (5.0, 10.0, 5.0), "clamped draws");
        for failed in 1..40 {
            assert!(secs(failed + 1, 0.0) >= secs(failed, 0.0), "never shorter after another failure");
        }
        // The default gives up 5.7 to 11.4 hours after the first failure.
        let total = |jitter| (1..20).map(|n| secs(n, jitter)).sum::<f64>() / 3600.0;
        assert_eq!(
            (total(0.0), total(0.5), total(1.0)),
            (20555.0 / 3600.0, 30832.5 / 3600.0, 41110.0 / 3600.0)
        );
    }

    #[test]
    fn a_job_runs_fails_backs_off_and_dies_after_its_attempts() {
        let policy = RetryPolicy::default();
        let lease = Duration::from_secs(30);
        let mut j = job(NewJob::new("x", serde_json::Value::Null).max_attempts(2));
        assert_eq!((j.state, j.run_at, j.max_attempts), (JobState::Pending, at(0), 2));
        j.claim(at(1), lease).unwrap();
        assert_eq!((j.state, j.attempts, j.lease_until), (JobState::Running, 1, Some(at(31))));
        assert!(j.claim(at(2), lease).is_err(), "a leased job is not claimed twice");

        j.fail(&Failure::transient("timeout"), at(3), &policy, 0.0).unwrap();
        assert_eq!((j.state, j.run_at, j.lease_until), (JobState::Pending, at(8), None));
        assert_eq!(j.last_error.as_deref(), Some("timeout"));
        assert!(!j.is_claimable(at(7)) && j.is_claimable(at(8)), "not before its backoff");

        j.claim(at(8), lease).unwrap();
        j.fail(&Failure::transient("timeout again"), at(9), &policy, 0.0).unwrap();
        assert_eq!((j.state, j.attempts), (JobState::Dead, 2), "no attempt left");
        assert!(!j.is_claimable(at(1_000_000)));
        assert!(j.fail(&Failure::transient("late"), at(10), &policy, 0.0).is_err(), "nothing to finish");

        j.retry(at(20)).unwrap();
        assert_eq!((j.state, j.attempts, j.run_at), (JobState::Pending, 0, at(20)));
        j.claim(at(20), lease).unwrap();
        j.succeed(at(21)).unwrap();
        assert!(j.state.is_finished());
        assert!(j.retry(at(22)).is_err() && j.cancel(at(22)).is_err(), "a succeeded job stays so");
    }

    #[test]
    fn failures_can_be_permanent_or_name_their_earliest_retry() {
        let policy = RetryPolicy::default();
        let mut j = job(NewJob::new("x", serde_json::Value::Null));
        j.claim(at(0), Duration::from_secs(30)).unwrap();
        let later = Failure { not_before: Some(Duration::from_secs(120)), ..Failure::transient("429") };
        j.fail(&later, at(1), &policy, 1.0).unwrap();
        assert_eq!(j.run_at, at(121), "Retry-After beats a shorter backoff");
        j.claim(at(121), Duration::from_secs(30)).unwrap();
        j.fail(&Failure::permanent("410 Gone"), at(122), &policy, 0.0).unwrap();
        assert_eq!(j.state, JobState::Dead, "with attempts left");
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let mut k = job(NewJob::new("x", serde_json::Value::Null));
        k.claim(at(0), Duration::from_secs(30)).unwrap();
        k.fail(&Failure::transient(long), at(1), &policy, 0.0).unwrap();
        assert_eq!(k.last_error.unwrap().chars().count(), MAX_ERROR_CHARS);
    }

    #[test]
    fn an_expired_lease_frees_the_job_for_another_worker() {
        let mut j = job(NewJob::new("x", serde_json::Value::Null));
        j.claim(at(0), Duration::from_secs(30)).unwrap();
        assert!(!j.is_claimable(at(29)));
        assert!(j.is_claimable(at(30)), "the worker stopped renewing: presumed gone");
        j.claim(at(30), Duration::from_secs(30)).unwrap();
        assert_eq!((j.attempts, j.lease_until), (2, Some(at(60))), "the crashed attempt counts");
    }

    #[test]
    fn only_waiting_or_dead_jobs_are_cancelled_and_only_stopped_ones_retried() {
        let mut j = job(NewJob::new("x", serde_json::Value::Null));
        assert!(j.retry(at(1)).is_err(), "a pending job is not retried");
        j.claim(at(1), Duration::from_secs(30)).unwrap();
        assert!(j.cancel(at(2)).is_err(), "a running attempt finishes first");
        j.fail(&Failure::permanent("no"), at(3), &RetryPolicy::default(), 0.0).unwrap();
        j.cancel(at(4)).unwrap();
        assert_eq!(j.state, JobState::Cancelled);
        j.retry(at(5)).unwrap();
        j.cancel(at(6)).unwrap();
        assert!(j.state.is_finished());
        assert_eq!(JobState::parse("cancelled"), Some(JobState::Cancelled));
        assert_eq!(JobState::NAMES, ["pending", "running", "succeeded", "dead", "cancelled"]);
    }
}
