//! Cron schedules: a tenant's recurring jobs (digests, cleanup), stored so they survive
//! restarts, fired by whichever runner sees them due first, never twice per occurrence.
//!
//! A schedule stores its next occurrence (`next_run_at`). A runner that finds it due computes
//! the occurrence after it and asks the store to move `next_run_at` there *only if it still
//! holds the due value* and to enqueue that occurrence's job in the same transaction
//! ([`JobStore::fire_schedule`](crate::store::JobStore::fire_schedule)): of two runners racing
//! for one occurrence, one moves it and the other writes nothing. The occurrence's job also
//! carries the unique key `cron:<name>:<instant>`. A schedule that was due several times while
//! no runner ran fires once, for the occurrence it was waiting for, then resumes after now:
//! missed occurrences are not replayed one by one.
//!
//! Patterns are POSIX cron (minute, hour, day of month, month, day of week, with ranges,
//! steps, lists and names), optionally with a leading seconds field, evaluated in UTC.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::error::{Error, FieldError, Result};
use crate::job::NewJob;
use crate::scope::TenantId;

/// Longest schedule name, in bytes.
pub const MAX_SCHEDULE_NAME_LEN: usize = 64;
/// Longest cron pattern, in bytes.
pub const MAX_CRON_LEN: usize = 128;

/// A schedule to create, or to replace the one of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// Its name, unique in the tenant: printable ASCII, at most [`MAX_SCHEDULE_NAME_LEN`] bytes.
    pub name: String,
    /// When it fires: `0 7 * * MON` (07:00 UTC on Mondays); a sixth, leading field counts
    /// seconds.
    pub cron: String,
    /// The job each occurrence enqueues: its type and payload.
    pub job_type: String,
    /// The payload of each occurrence's job.
    pub payload: serde_json::Value,
}

impl NewSchedule {
    /// Every problem with the schedule, each naming its field (a pattern that never fires is
    /// one).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        let mut errors = Vec::new();
        if self.name.len() > MAX_SCHEDULE_NAME_LEN || !crate::validate::is_printable_key(&self.name) {
            let message = format!("must be 1 to {MAX_SCHEDULE_NAME_LEN} printable ASCII characters");
            errors.push(FieldError::new("name", message));
        }
        if let Err(message) = Pattern::parse(&self.cron).and_then(|p| p.next_after(now)) {
            errors.push(FieldError::new("cron", message));
        }
        if let Err(Error::Validation(job)) = NewJob::new(&self.job_type, self.payload.clone()).validate() {
            errors.extend(job);
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    /// The tenant whose jobs it enqueues.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub tenant_id: TenantId,
    /// Its name, unique in the tenant.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// The type of the job each occurrence enqueues.
    pub job_type: String,
    /// That job's payload.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub payload: serde_json::Value,
    /// The next occurrence: when it is due.
    pub next_run_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced or fired.
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    /// A schedule from a validated [`NewSchedule`], first due at its first occurrence after
    /// `now`.
    pub fn new(tenant_id: TenantId, new: NewSchedule, now: DateTime<Utc>) -> Result<Self> {
        let next_run_at = Pattern::parse(&new.cron)
            .and_then(|p| p.next_after(now))
            .map_err(|m| Error::invalid("cron", m))?;
        Ok(Schedule {
            tenant_id,
            name: new.name,
            cron: new.cron,
            job_type: new.job_type,
            payload: new.payload,
            next_run_at,
            created_at: now,
            updated_at: now,
        })
    }

    /// The job of the occurrence due now: unique by `cron:<name>:<instant>`.
    pub fn occurrence(&self) -> NewJob {
        let instant = self.next_run_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        NewJob::new(&self.job_type, self.payload.clone()).unique_key(format!("cron:{}:{instant}", self.name))
    }

    /// The occurrence to wait for once the due one fires at `now`: the first after both.
    pub fn following(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let pattern = Pattern::parse(&self.cron).map_err(|m| Error::invalid("cron", m))?;
        pattern.next_after(now.max(self.next_run_at)).map_err(|m| Error::invalid("cron", m))
    }
}

/// A parsed cron pattern.
struct Pattern(croner::Cron);

impl Pattern {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        if text.len() > MAX_CRON_LEN {
            return Err(format!("must be at most {MAX_CRON_LEN} bytes"));
        }
        croner::Cron::from_str(text).map(Pattern).map_err(|e| format!("is not a cron pattern: {e}"))
    }

    /// The first occurrence strictly after `after` (whole seconds).
    fn next_after(&self, after: DateTime<Utc>) -> std::result::Result<DateTime<Utc>, String> {
        self.0.find_next_occurrence(&after.trunc_subsecs(0), false).map_err(|_| "never fires".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn new(name: &str, cron: &str) -> NewSchedule {
        NewSchedule {
            name: name.into(),
            cron: cron.into(),
            job_type: "digest.weekly".into(),
            payload: serde_json::json!({ "period": "week" }),
        }
    }

    fn fields(result: Result<()>) -> Vec<String> {
        match result {
            Err(Error::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn schedules_are_checked_field_by_field() {
        let now = at("2026-03-02T08:00:00Z");
        assert!(new("weekly digest", "0 7 * * MON").validate(now).is_ok());
        assert!(new("every second", "* * * * * *").validate(now).is_ok(), "seconds are optional");
        assert_eq!(fields(new("", "0 7 * * MON").validate(now)), ["name"]);
        assert_eq!(fields(new(&"n".repeat(65), "0 7 * * MON").validate(now)), ["name"]);
        for cron in ["", "every monday", "61 * * * *", "* * * * * * * *", &"*".repeat(200)] {
            assert_eq!(fields(new("x", cron).validate(now)), ["cron"], "{cron:?}");
        }
        assert_eq!(fields(new("x", "0 0 30 2 *").validate(now)), ["cron"], "February 30 never comes");
        let bad_job = NewSchedule { job_type: "Bad Type".into(), ..new("x", "* * * * *") };
        assert_eq!(fields(bad_job.validate(now)), ["job_type"]);
    }

    #[test]
    fn occurrences_follow_the_pattern_and_carry_their_instant() {
        let tenant = TenantId::from_uuid(Uuid::from_u128(1));
        let now = at("2026-03-02T08:00:00.250Z"); // a Monday, after 07:00
        let s = Schedule::new(tenant, new("weekly digest", "0 7 * * MON"), now).unwrap();
        assert_eq!(s.next_run_at, at("2026-03-09T07:00:00Z"), "next Monday");
        let job = s.occurrence();
        assert_eq!(job.unique_key.as_deref(), Some("cron:weekly digest:2026-03-09T07:00:00.000000Z"));
        assert_eq!((job.job_type.as_str(), &job.payload), ("digest.weekly", &s.payload));
        // Fired on time, it waits for the Monday after.
        assert_eq!(s.following(at("2026-03-09T07:00:01Z")).unwrap(), at("2026-03-16T07:00:00Z"));
        // Fired three weeks late, it resumes after now instead of replaying the missed ones.
        assert_eq!(s.following(at("2026-03-31T12:00:00Z")).unwrap(), at("2026-04-06T07:00:00Z"));
        // Fired early (a runner's clock behind), it still moves past the due occurrence.
        assert_eq!(s.following(at("2026-03-09T06:59:00Z")).unwrap(), at("2026-03-16T07:00:00Z"));
        let every_second = Schedule::new(tenant, new("tick", "* * * * * *"), now).unwrap();
        assert_eq!(every_second.next_run_at, Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 1).unwrap());
    }
}
