//! A tenant's background jobs through the service: enqueue, inspect, cancel and retry (owners
//! and admins, or the system), each checked by the policy before the store sees it.

use super::Crm;
use super::list::{self, Page};
use crate::cursor;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobState, NewJob};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::Enqueued;

impl Crm {
    /// Enqueues a job for the scope's tenant; a job whose unique key an unfinished job already
    /// holds is not enqueued again ([`Enqueued::Existing`]).
    pub async fn enqueue_job(&self, scope: &Scope, new: NewJob) -> Result<Enqueued> {
        self.authorize(scope, Action::Create, Resource::Job)?;
        new.validate()?;
        let id = JobId::from_uuid(self.inner.ids.new_id());
        let retry = self.inner.job_types.options(&new.job_type).retry;
        let job = Job::new(id, scope.tenant_id(), new, self.inner.clock.now(), &retry);
        let enqueued = self.store_ref().enqueue(scope, &job).await?;
        if matches!(enqueued, Enqueued::New(_)) {
            self.wake_runners();
        }
        Ok(enqueued)
    }

    /// One of the tenant's jobs; another tenant's is `NotFound`, as a missing one is.
    pub async fn job(&self, scope: &Scope, id: JobId) -> Result<Job> {
        self.authorize(scope, Action::Read, Resource::Job)?;
        self.store_ref().job(scope, id).await?.ok_or(Error::NotFound)
    }

    /// The tenant's jobs, newest first, in `state` if given.
    pub async fn jobs(
        &self,
        scope: &Scope,
        state: Option<JobState>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Job>> {
        self.authorize(scope, Action::Read, Resource::Job)?;
        let limit = list::limit(limit)?;
        let before = cursor.map(cursor::decode_sorted).transpose()?.map(|c| JobId::from_uuid(c.id));
        let jobs = self.store_ref().jobs(scope, state, before, limit + 1).await?;
        Ok(list::page_by_id(jobs, limit, |j| j.id.uuid()))
    }

    /// Stops a pending or dead job. A job a worker claimed meanwhile is a conflict.
    pub async fn cancel_job(&self, scope: &Scope, id: JobId) -> Result<Job> {
        self.move_job(scope, id, Job::cancel).await
    }

    /// Runs a dead or cancelled job again, now, with fresh attempts.
    pub async fn retry_job(&self, scope: &Scope, id: JobId) -> Result<Job> {
        self.move_job(scope, id, Job::retry).await
    }

    /// Wakes this process's idle runners: a job is due.
    pub(crate) fn wake_runners(&self) {
        self.inner.enqueued.send_modify(|n| *n = n.wrapping_add(1));
    }

    async fn move_job(
        &self,
        scope: &Scope,
        id: JobId,
        change: fn(&mut Job, chrono::DateTime<chrono::Utc>) -> Result<()>,
    ) -> Result<Job> {
        self.authorize(scope, Action::Update, Resource::Job)?;
        let mut job = self.store_ref().job(scope, id).await?.ok_or(Error::NotFound)?;
        let before = job.state;
        change(&mut job, self.inner.clock.now())?;
        if self.store_ref().update_job(scope, &job, before).await? {
            if job.state == JobState::Pending {
                self.wake_runners();
            }
            Ok(job)
        } else {
            Err(Error::guard("the job changed meanwhile (a worker took it); reload it"))
        }
    }
}
