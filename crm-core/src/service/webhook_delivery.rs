//! Webhook delivery (`docs/webhooks.md`): the fan-out that turns a change set's events into
//! deliveries in the same transaction, and the `webhook.deliver` job that sends one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Crm;
use super::records::on_current;
use crate::audit::AuditAction;
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryId, DeliveryState};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::job::{Failure, Job, JobId, NewJob, RetryPolicy};
use crate::kind::Stored;
use crate::model::{Kind, Webhook, WebhookId};
use crate::policy::{Action, Resource};
use crate::runner::{JobContext, JobHandler, JobOptions};
use crate::scope::{Principal, Scope};
use crate::store::{ChangeSet, Entity, Filter, ListQuery, Write};
use crate::webhook::{Verdict, WebhookRequest, WebhookTransport, delivery_retry};

/// The job type that sends one delivery ([`crate::CrmBuilder::webhooks`]).
pub const DELIVER_WEBHOOK: &str = "webhook.deliver";

/// An endpoint whose every delivery has failed for this long is disabled.
pub const FAILING_DISABLES_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The most endpoints one tenant's events fan out to.
const MAX_ENDPOINTS: u32 = 500;

/// How `webhook.deliver` jobs run. The delivery keeps its own attempts and schedule
/// ([`delivery_retry`]); the job only waits (its `not_before`) between them and while an earlier
/// delivery of its lane is pending, so its own backoff is a second at most, and its attempts
/// cover ten deliveries' worth of waiting.
pub(crate) fn deliver_options() -> JobOptions {
    JobOptions {
        retry: RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            max_attempts: crate::job::MAX_ATTEMPTS,
        },
        timeout: crate::webhook::ATTEMPT_TIMEOUT + Duration::from_secs(15),
    }
}

impl Crm {
    /// Whether this CRM fans events out to webhooks (built with [`crate::CrmBuilder::webhooks`]).
    pub(crate) fn delivers_webhooks(&self) -> bool {
        self.inner.job_types.get(DELIVER_WEBHOOK).is_some()
    }

    /// Adds to `changes` a delivery, and the job that sends it, for every event and enabled
    /// endpoint of the tenant that wants it: in the events' transaction, so a committed event
    /// is never without its deliveries and a rolled-back one has none. Events about endpoints
    /// themselves are configuration, not CRM data, and go nowhere.
    pub(crate) async fn fan_out(&self, scope: &Scope, changes: &mut ChangeSet) -> Result<()> {
        let wanted = |kind: Kind| kind != Kind::Webhook;
        if !self.delivers_webhooks() || !changes.events.iter().any(|e| wanted(e.resource)) {
            return Ok(());
        }
        let query = ListQuery {
            kind: Kind::Webhook,
            filter: Filter::default(),
            search: Vec::new(),
            limit: MAX_ENDPOINTS,
            after: None,
            sort: None,
        };
        let endpoints: Vec<Webhook> = self
            .store_ref()
            .list(scope, &query)
            .await?
            .into_iter()
            .map(Webhook::from_entity)
            .collect::<Result<_>>()?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let now = self.inner.clock.now();
        let mut writes = Vec::new();
        for event in changes.events.iter().filter(|e| wanted(e.resource)) {
            for endpoint in endpoints.iter().filter(|w| w.wants(&event.name) && w.meta.created_at <= event.at)
            {
                let body = json!({ "type": event.name, "timestamp": event.at, "data": event.payload });
                let message =
                    Message { event_id: event.id.uuid(), event_type: &event.name, lane: event.resource_id };
                writes.extend(self.delivery_writes(scope, endpoint.meta.id, message, body.to_string(), now));
            }
        }
        changes.writes.extend(writes);
        Ok(())
    }

    /// A new pending delivery of `message` to an endpoint, and the job that sends it.
    pub(crate) fn delivery_writes(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        message: Message<'_>,
        body: String,
        now: DateTime<Utc>,
    ) -> [Write; 2] {
        let delivery = Delivery {
            id: self.new_id(),
            tenant_id: scope.tenant_id(),
            webhook_id,
            event_id: message.event_id,
            event_type: message.event_type.to_owned(),
            lane: message.lane,
            body,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        let retry = self.inner.job_types.options(DELIVER_WEBHOOK).retry;
        let new = NewJob::new(DELIVER_WEBHOOK, json!({ "delivery_id": delivery.id }))
            .unique_key(format!("webhook:{}", delivery.id));
        let job = Job::new(JobId::from_uuid(self.inner.ids.new_id()), scope.tenant_id(), new, now, &retry);
        [Write::Deliver(delivery), Write::Enqueue(job)]
    }

    /// Refuses what needs the sender when this CRM has none.
    pub(crate) fn require_webhooks(&self) -> Result<()> {
        if self.delivers_webhooks() {
            Ok(())
        } else {
            Err(Error::invalid("webhook", "this CRM does not deliver webhooks (see CrmBuilder::webhooks)"))
        }
    }

    /// One attempt at a delivery, or the wait before it (see [`SendDelivery`]).
    async fn deliver(&self, scope: &Scope, id: DeliveryId, transport: &dyn WebhookTransport) -> Result<Step> {
        let store = self.store_ref();
        let Some(mut delivery) = store.delivery(scope, id).await? else { return Ok(Step::Done) };
        if delivery.state != DeliveryState::Pending {
            return Ok(Step::Done);
        }
        let now = self.inner.clock.now();
        if let Some(earlier) = store.earlier_pending(scope, &delivery).await? {
            let wait =
                (earlier.next_attempt_at - now).to_std().unwrap_or_default().max(Duration::from_secs(1));
            return Ok(Step::Wait(wait, format!("waits for delivery {} of the same record", earlier.id)));
        }
        if delivery.next_attempt_at > now {
            return Ok(Step::Wait(
                (delivery.next_attempt_at - now).to_std().unwrap_or_default(),
                "not due".into(),
            ));
        }
        let endpoint = match self.load::<Webhook>(scope, delivery.webhook_id).await {
            Ok(endpoint) if endpoint.enabled => endpoint,
            Ok(_) | Err(Error::NotFound) => {
                return self.give_up(scope, delivery, now, None, "the endpoint is disabled or deleted").await;
            }
            Err(error) => return Err(error),
        };
        if !self.creator_may_read(scope, &endpoint, &delivery).await? {
            let reason = "the endpoint's creator may no longer read this record";
            return self.give_up(scope, delivery, now, None, reason).await;
        }

        let message_id = format!("msg_{}", delivery.event_id.simple());
        let secrets = endpoint.signing_secrets(now);
        let request = WebhookRequest::signed(
            &endpoint.url,
            &message_id,
            now.timestamp(),
            delivery.body.clone().into_bytes(),
            &secrets,
        );
        let started = std::time::Instant::now();
        let outcome = transport.send(&request).await;
        let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        delivery.attempts += 1;
        let attempt = DeliveryAttempt {
            delivery_id: delivery.id,
            number: delivery.attempts,
            at: now,
            status: outcome.as_ref().ok().map(|r| r.status),
            duration_ms,
            response_excerpt: outcome.as_ref().ok().map(|r| r.excerpt.clone()),
            error: outcome.as_ref().err().map(ToString::to_string),
        };
        match Verdict::of(&outcome) {
            Verdict::Delivered => {
                (delivery.state, delivery.last_error, delivery.updated_at) =
                    (DeliveryState::Delivered, None, now);
                store.update_delivery(scope, &delivery, Some(&attempt)).await?;
                if endpoint.failing_since.is_some() {
                    self.set_health(scope, endpoint.meta.id, |w| w.failing_since = None).await?;
                }
                Ok(Step::Done)
            }
            Verdict::Gone => {
                let reason = "the endpoint answered 410 Gone";
                self.disable(scope, endpoint.meta.id, reason).await?;
                self.give_up(scope, delivery, now, Some(&attempt), reason).await
            }
            Verdict::Failed(failure) => {
                let error = failure.message.clone();
                let next = delivery_retry(delivery.attempts).filter(|_| !failure.permanent);
                let Some(delay) = next.map(|d| d.max(failure.not_before.unwrap_or_default())) else {
                    return self.give_up(scope, delivery, now, Some(&attempt), &error).await;
                };
                delivery.next_attempt_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                (delivery.last_error, delivery.updated_at) = (Some(error.clone()), now);
                store.update_delivery(scope, &delivery, Some(&attempt)).await?;
                self.note_failure(scope, &endpoint, now).await?;
                Ok(Step::Wait(delay, error))
            }
        }
    }

    /// Wakes the job of the next pending delivery in `id`'s lane, now that `id` is done: it may
    /// be waiting for `id`'s next attempt that will not come. Enqueueing its job again by its
    /// unique key finds the job (or stores it, had it been lost); a pending one is made due now.
    async fn wake_lane(&self, scope: &Scope, id: DeliveryId) -> Result<()> {
        let store = self.store_ref();
        let Some(done) = store.delivery(scope, id).await? else { return Ok(()) };
        let Some(next) = store.later_pending(scope, &done).await? else { return Ok(()) };
        let now = self.inner.clock.now();
        let [_, Write::Enqueue(probe)] =
            self.delivery_writes(scope, next.webhook_id, next.message(), String::new(), now)
        else {
            return Ok(());
        };
        let probe = Job {
            payload: json!({ "delivery_id": next.id }),
            unique_key: Some(format!("webhook:{}", next.id)),
            ..probe
        };
        match store.enqueue(scope, &probe).await? {
            crate::store::Enqueued::New(_) => self.wake_runners(),
            crate::store::Enqueued::Existing(job_id) => {
                let Some(mut job) = store.job(scope, job_id).await? else { return Ok(()) };
                if job.state == crate::job::JobState::Pending && job.run_at > now {
                    (job.run_at, job.updated_at) = (now, now);
                    if store.update_job(scope, &job, crate::job::JobState::Pending).await? {
                        self.wake_runners();
                    }
                }
            }
        }
        Ok(())
    }

    /// Marks a delivery failed for good, with the attempt that ended it if there was one.
    async fn give_up(
        &self,
        scope: &Scope,
        mut delivery: Delivery,
        now: DateTime<Utc>,
        attempt: Option<&DeliveryAttempt>,
        reason: &str,
    ) -> Result<Step> {
        delivery.state = DeliveryState::Failed;
        delivery.last_error = Some(reason.to_owned());
        delivery.updated_at = now;
        self.store_ref().update_delivery(scope, &delivery, attempt).await?;
        Ok(Step::Done)
    }

    /// Whether the endpoint's creator, as a member now, may read the delivery's record: an
    /// endpoint sees no more than the admin who made it, and nothing once they leave.
    async fn creator_may_read(&self, scope: &Scope, endpoint: &Webhook, delivery: &Delivery) -> Result<bool> {
        let Some(user_id) = endpoint.created_by else { return Ok(false) };
        let Some(membership) = self.store_ref().membership(scope, user_id).await? else { return Ok(false) };
        let principal = Principal::User { user_id, role: membership.role };
        let kind = delivery.event_type.split('.').next().and_then(Kind::parse);
        let (resource, def) = match kind {
            Some(Kind::Member) => (Resource::Member, None),
            Some(kind) => match kind.def() {
                Some(def) => (def.resource, Some(def)),
                None => return Ok(false),
            },
            None => return Ok(false),
        };
        let Some(grant) = self.inner.policy.authorize(&principal, Action::Read, resource) else {
            return Ok(false);
        };
        let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap_or_default();
        let owners = def.into_iter().flat_map(|d| d.owner_fields()).filter_map(|field| {
            body["data"][field.name].as_str().and_then(|id| id.parse().ok()).map(Id::from_uuid)
        });
        Ok(grant.covers_any(&principal, owners))
    }

    /// Records that a delivery to `endpoint` failed: the start of its failing streak, and its
    /// disabling once the streak is [`FAILING_DISABLES_AFTER`] long.
    async fn note_failure(&self, scope: &Scope, endpoint: &Webhook, now: DateTime<Utc>) -> Result<()> {
        let limit = chrono::Duration::from_std(FAILING_DISABLES_AFTER).unwrap_or_default();
        match endpoint.failing_since {
            None => self.set_health(scope, endpoint.meta.id, |w| w.failing_since = Some(now)).await,
            Some(since) if now - since >= limit => {
                tracing::warn!(webhook = %endpoint.meta.id, "disabled after failing for five days");
                self.disable(scope, endpoint.meta.id, "every delivery failed for five days").await
            }
            Some(_) => Ok(()),
        }
    }

    /// Stops deliveries to an endpoint, saying why, and tells its creator by mail if this CRM
    /// sends mail (the notice is enqueued in the same transaction).
    async fn disable(&self, scope: &Scope, id: WebhookId, reason: &str) -> Result<()> {
        let disabling = |w: &mut Webhook| {
            w.enabled = false;
            w.disabled_reason = Some(reason.to_owned());
        };
        let notice = |w: &Webhook| {
            let (this, url) = (self.clone(), w.url.clone());
            let (scope, creator) = (scope.clone(), w.created_by);
            async move { this.disabled_notice(&scope, creator, &url, reason).await }
        };
        self.change_health(scope, id, disabling, notice).await
    }

    /// The `mail.send` job telling `creator` that the endpoint at `url` was disabled; `None`
    /// without a mailer or a creator to tell.
    async fn disabled_notice(
        &self,
        scope: &Scope,
        creator: Option<crate::scope::UserId>,
        url: &str,
        reason: &str,
    ) -> Result<Option<Job>> {
        use crate::mail::{SEND_MAIL, webhook_disabled};
        if self.inner.job_types.get(SEND_MAIL).is_none() {
            return Ok(None);
        }
        let Some(user) = (match creator {
            Some(id) => self.store_ref().user(id).await?,
            None => None,
        }) else {
            return Ok(None);
        };
        let mail = webhook_disabled(&user.email, &user.name, url, reason);
        let payload = serde_json::to_value(&mail).map_err(Error::internal)?;
        let now = self.inner.clock.now();
        let retry = self.inner.job_types.options(SEND_MAIL).retry;
        let id = JobId::from_uuid(self.inner.ids.new_id());
        Ok(Some(Job::new(id, scope.tenant_id(), NewJob::new(SEND_MAIL, payload), now, &retry)))
    }

    async fn set_health(&self, scope: &Scope, id: WebhookId, change: impl Fn(&mut Webhook)) -> Result<()> {
        self.change_health(scope, id, change, |_: &Webhook| async { Ok(None) }).await
    }

    /// Changes the fields only delivery sets (enabled, why disabled, failing since) on the
    /// current version, audited as the system's change, with the job `also` makes if any.
    async fn change_health<F, Fut>(
        &self,
        scope: &Scope,
        id: WebhookId,
        change: impl Fn(&mut Webhook),
        also: F,
    ) -> Result<()>
    where
        F: Fn(&Webhook) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Job>>>,
    {
        on_current(None, || async {
            let current = match self.load::<Webhook>(scope, id).await {
                Err(Error::NotFound) => return Ok(()),
                other => other?,
            };
            let mut updated = current.clone();
            change(&mut updated);
            if updated == current {
                return Ok(());
            }
            let mut draft = self.draft(scope);
            updated.meta.version += 1;
            updated.meta.updated_at = draft.now;
            let (before, after) = (current.to_row(), updated.to_row());
            self.record_row_change(&mut draft, AuditAction::Updated, Some(&before), Some(&after));
            draft.update(Entity::Record(after), current.meta.version);
            if let Some(job) = also(&updated).await? {
                draft.changes.writes.push(Write::Enqueue(job));
            }
            self.commit(draft).await
        })
        .await
    }
}

/// What a delivery carries besides its body: which event, and the lane it joins.
pub(crate) struct Message<'a> {
    /// Its `webhook-id` (as `msg_<id>`).
    pub event_id: uuid::Uuid,
    /// Its `type`.
    pub event_type: &'a str,
    /// The record it is about.
    pub lane: uuid::Uuid,
}

/// What a `webhook.deliver` run came to.
enum Step {
    /// Delivered or given up: the job is done.
    Done,
    /// Not now: the job waits this long (the delivery's next attempt, or its lane's turn).
    Wait(Duration, String),
}

/// The `webhook.deliver` job's handler: one delivery through the CRM's transport.
#[derive(Debug)]
pub(crate) struct SendDelivery(pub(crate) Arc<dyn WebhookTransport>);

#[async_trait::async_trait]
impl JobHandler for SendDelivery {
    async fn run(&self, ctx: JobContext) -> std::result::Result<(), Failure> {
        let id = ctx.job.payload["delivery_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .map(Id::from_uuid)
            .ok_or_else(|| Failure::permanent("the job names no delivery"))?;
        match ctx.crm.deliver(&ctx.scope, id, self.0.as_ref()).await {
            Ok(Step::Done) => {
                if let Err(error) = ctx.crm.wake_lane(&ctx.scope, id).await {
                    // The next delivery's job still runs when its wait ends.
                    tracing::warn!(%error, delivery = %id, "the lane's next delivery was not woken");
                }
                Ok(())
            }
            Ok(Step::Wait(wait, why)) => Err(Failure { not_before: Some(wait), ..Failure::transient(why) }),
            Err(error) => Err(Failure::transient(error.to_string())),
        }
    }
}
