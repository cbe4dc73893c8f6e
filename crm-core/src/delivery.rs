//! Webhook deliveries: one event on its way to one endpoint, and the log of its attempts
//! (`docs/webhooks.md`).
//!
//! A delivery's body is fixed when the event is fanned out, so every attempt sends the same
//! bytes under the same `webhook-id` and receivers can de-duplicate. Deliveries of one endpoint
//! about one record form a *lane*: a delivery is attempted only once every earlier delivery of
//! its lane has been delivered or has failed for good, which keeps the order of a record's
//! events per endpoint without holding back the endpoint's other records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::id::Id;
use crate::model::WebhookId;
use crate::scope::TenantId;

/// Delivery id.
pub type DeliveryId = Id<Delivery>;

crate::wire_enum! {
    /// Where a delivery stands.
    pub enum DeliveryState as "a delivery state" {
        /// Not yet delivered; attempted when due and first in its lane.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Given up: retries spent, the endpoint gone (410) or disabled, or the address refused.
        Failed = "failed",
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Id; ids grow with the events they carry, which orders a lane.
    #[cfg_attr(feature = "openapi", schema(value_type = Uuid))]
    pub id: DeliveryId,
    /// The tenant.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The endpoint.
    #[cfg_attr(feature = "openapi", schema(value_type = Uuid))]
    pub webhook_id: WebhookId,
    /// The event: its id is the `webhook-id` of every attempt.
    pub event_id: Uuid,
    /// The event's type (`deal.stage_changed`).
    pub event_type: String,
    /// The record the event is about: deliveries of one endpoint about one record keep their
    /// order.
    pub lane: Uuid,
    /// What every attempt POSTs: `{"type", "timestamp", "data"}`.
    #[serde(skip)]
    pub body: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed, or why the delivery was given up.
    pub last_error: Option<String>,
    /// When it was made (the event's fan-out).
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// What it carries besides its body: its event and lane.
    pub(crate) fn message(&self) -> crate::service::Message<'_> {
        crate::service::Message { event_id: self.event_id, event_type: &self.event_type, lane: self.lane }
    }
}

/// One attempt of a delivery, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// The delivery.
    #[cfg_attr(feature = "openapi", schema(value_type = Uuid))]
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub at: DateTime<Utc>,
    /// The HTTP status the endpoint answered; `None` when it did not answer.
    pub status: Option<u16>,
    /// How long it took, in milliseconds.
    pub duration_ms: u32,
    /// The start of the answer's body ([`crate::webhook::RESPONSE_EXCERPT_BYTES`] at most).
    pub response_excerpt: Option<String>,
    /// Why there was no answer (timeout, connection refused, address refused).
    pub error: Option<String>,
}
