//! Webhook endpoints through the service: created with a secret shown once, rotated with the
//! old secret still signing for a day. Reads, updates and deletes go through the generic record
//! services ([`Crm::get`], [`Crm::list`], [`Crm::update`], [`Crm::delete`] of [`Webhook`]).

use serde::Serialize;

use serde_json::Value;

use super::Crm;
use super::list::{self, Page};
use super::records::on_current;
use super::webhook_delivery::Message;
use crate::audit::{AuditAction, Changes};
use crate::cursor;
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crate::error::{Error, Result};
use crate::kind::Stored;
use crate::model::{Kind, NewWebhook, Webhook, WebhookId};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::{Entity, Write};
use crate::webhook::WebhookSecret;

/// How long the secret before a rotation keeps signing, so receivers can switch without
/// dropping a delivery.
pub const PREVIOUS_SECRET_VALIDITY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A webhook endpoint with its signing secret, shown this once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: the key receivers verify signatures with. Not shown again.
    pub secret: String,
}

impl Crm {
    /// Creates a webhook endpoint (admins), created by the caller: deliveries carry only what
    /// the caller may read. Its secret is in the answer and nowhere else.
    pub async fn create_webhook(&self, scope: &Scope, new: NewWebhook) -> Result<WebhookWithSecret> {
        let webhook = self.create::<Webhook>(scope, new).await?;
        Ok(WebhookWithSecret { secret: webhook.secret.reveal(), webhook })
    }

    /// Gives the endpoint a new secret, returned this once; the old one signs too (a second
    /// signature) for [`PREVIOUS_SECRET_VALIDITY`]. With `expected_version`, only if the
    /// endpoint is still at that version.
    pub async fn rotate_webhook_secret(
        &self,
        scope: &Scope,
        id: WebhookId,
        expected_version: Option<i64>,
    ) -> Result<WebhookWithSecret> {
        self.authorize(scope, Action::Update, Resource::Webhook)?;
        on_current(expected_version, || async {
            let current = self.load::<Webhook>(scope, id).await?;
            let version = expected_version.unwrap_or(current.meta.version);
            if current.meta.version != version {
                return Err(Error::stale_version());
            }
            let mut draft = self.draft(scope);
            let validity = chrono::Duration::from_std(PREVIOUS_SECRET_VALIDITY).unwrap_or_default();
            let mut rotated = current.clone();
            rotated.previous_secret = Some(std::mem::replace(&mut rotated.secret, WebhookSecret::generate()));
            rotated.previous_secret_expires_at = Some(draft.now + validity);
            rotated.meta.version += 1;
            rotated.meta.updated_at = draft.now;
            let (before, after) = (current.to_row(), rotated.to_row());
            self.record_row_change(&mut draft, AuditAction::Updated, Some(&before), Some(&after));
            draft.update(Entity::Record(after), version);
            self.commit(draft).await?;
            Ok(WebhookWithSecret { secret: rotated.secret.reveal(), webhook: rotated })
        })
        .await
    }
}

/// A delivery with every attempt made at it: what `/api/webhooks/{id}/deliveries` lists.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryLog {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Its attempts, first first (`attempts` is their number).
    pub attempt_log: Vec<DeliveryAttempt>,
}

impl Crm {
    /// An endpoint's deliveries, newest first, each with its attempts (admins).
    pub async fn webhook_deliveries(
        &self,
        scope: &Scope,
        id: WebhookId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<DeliveryLog>> {
        self.authorize(scope, Action::Read, Resource::Webhook)?;
        self.load::<Webhook>(scope, id).await?;
        let limit = list::limit(limit)?;
        let before = cursor.map(cursor::decode_sorted).transpose()?.map(|c| DeliveryId::from_uuid(c.id));
        let store = self.store_ref();
        let found = store.deliveries(scope, id, before, limit + 1).await?;
        let page = list::page_by_id(found, limit, |d| d.id.uuid());
        let mut data = Vec::with_capacity(page.data.len());
        for delivery in page.data {
            let attempt_log = store.attempts(scope, delivery.id).await?;
            data.push(DeliveryLog { delivery, attempt_log });
        }
        Ok(Page { data, next_cursor: page.next_cursor })
    }

    /// Sends a delivery's event again, as a new delivery at the end of its lane, whatever came
    /// of the first (admins; the endpoint must still exist).
    pub async fn redeliver(&self, scope: &Scope, id: DeliveryId) -> Result<Delivery> {
        self.authorize(scope, Action::Update, Resource::Webhook)?;
        self.require_webhooks()?;
        let earlier = self.store_ref().delivery(scope, id).await?.ok_or(Error::NotFound)?;
        self.load::<Webhook>(scope, earlier.webhook_id).await?;
        let message =
            Message { event_id: earlier.event_id, event_type: &earlier.event_type, lane: earlier.lane };
        self.send_message(scope, earlier.webhook_id, message, earlier.body.clone(), "redelivered").await
    }

    /// Sends the endpoint a `webhook.test` event now, whatever its filters (admins).
    pub async fn send_test_webhook(&self, scope: &Scope, id: WebhookId) -> Result<Delivery> {
        self.authorize(scope, Action::Update, Resource::Webhook)?;
        self.require_webhooks()?;
        self.load::<Webhook>(scope, id).await?;
        let (event_id, now) = (self.inner.ids.new_id(), self.inner.clock.now());
        let body = serde_json::json!({
            "type": TEST_EVENT,
            "timestamp": now,
            "data": { "webhook_id": id, "message": "A test event from the CRM." },
        });
        let message = Message { event_id, event_type: TEST_EVENT, lane: id.uuid() };
        self.send_message(scope, id, message, body.to_string(), "tested").await
    }

    /// Stores a delivery of `message` with its job, audited on the endpoint as `what`.
    async fn send_message(
        &self,
        scope: &Scope,
        webhook_id: WebhookId,
        message: Message<'_>,
        body: String,
        what: &str,
    ) -> Result<Delivery> {
        let mut draft = self.draft(scope);
        let writes = self.delivery_writes(scope, webhook_id, message, body, draft.now);
        let Write::Deliver(delivery) = &writes[0] else {
            return Err(Error::internal("no delivery was made"));
        };
        let delivery = delivery.clone();
        let mut changes = Changes::default();
        changes.after.insert(what.into(), delivery.id.to_string().into());
        self.push_change(
            &mut draft,
            AuditAction::Updated,
            Kind::Webhook,
            webhook_id.uuid(),
            changes,
            Value::Null,
        );
        draft.changes.writes.extend(writes);
        self.commit(draft).await?;
        Ok(delivery)
    }
}

/// The type of the event [`Crm::send_test_webhook`] sends.
pub const TEST_EVENT: &str = "webhook.test";
