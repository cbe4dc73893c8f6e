//! A tenant's cron schedules through the service: set, list, delete (owners and admins, or the
//! system), and the firing runners do.

use super::Crm;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::policy::{Action, Resource};
use crate::schedule::{NewSchedule, Schedule};
use crate::scope::Scope;

/// Schedules a runner fires per look: the rest wait for its next one.
const FIRE_BATCH: u32 = 100;

impl Crm {
    /// Creates the tenant's schedule `new.name`, or replaces it: either way it is next due at
    /// its first occurrence from now.
    pub async fn set_schedule(&self, scope: &Scope, new: NewSchedule) -> Result<Schedule> {
        self.authorize(scope, Action::Update, Resource::Job)?;
        let now = self.inner.clock.now();
        new.validate(now)?;
        let schedule = Schedule::new(scope.tenant_id(), new, now)?;
        self.store_ref().put_schedule(scope, &schedule).await?;
        Ok(schedule)
    }

    /// The tenant's schedules, by name.
    pub async fn schedules(&self, scope: &Scope) -> Result<Vec<Schedule>> {
        self.authorize(scope, Action::Read, Resource::Job)?;
        self.store_ref().schedules(scope).await
    }

    /// Deletes the tenant's schedule `name`; the jobs it already enqueued stay.
    pub async fn delete_schedule(&self, scope: &Scope, name: &str) -> Result<()> {
        self.authorize(scope, Action::Delete, Resource::Job)?;
        if self.store_ref().delete_schedule(scope, name).await? { Ok(()) } else { Err(Error::NotFound) }
    }

    /// Fires every schedule due now, across tenants (see [`crate::schedule`]); how many fired
    /// here. A schedule another runner fired first, or whose pattern no longer parses, is
    /// skipped.
    pub(crate) async fn fire_due_schedules(&self) -> Result<usize> {
        let now = self.inner.clock.now();
        let mut fired = 0;
        for due in self.store_ref().due_schedules(now, FIRE_BATCH).await? {
            let next = match due.following(now) {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(schedule = %due.name, %error, "a stored schedule does not parse; skipped");
                    continue;
                }
            };
            let retry = self.inner.job_types.options(&due.job_type).retry;
            let id = JobId::from_uuid(self.inner.ids.new_id());
            let job = Job::new(id, due.tenant_id, due.occurrence(), now, &retry);
            if self.store_ref().fire_schedule(&due, next, &job).await? {
                fired += 1;
            }
        }
        if fired > 0 {
            self.wake_runners();
        }
        Ok(fired)
    }
}
