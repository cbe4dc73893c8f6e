//! Domain events: written to the outbox with the change, handed to [`crate::EventHook`]s after commit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::id::Id;
use crate::model::Kind;
use crate::scope::{Actor, TenantId};

/// Event id (also the idempotency key consumers should dedupe on).
pub type EventId = Id<DomainEvent>;

/// Something that happened to a record, e.g. `lead.created` or `deal.stage_changed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainEvent {
    /// Id.
    pub id: EventId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// `<resource>.<action>`, e.g. `lead.converted`.
    pub name: String,
    /// The kind of record.
    pub resource: Kind,
    /// The record.
    pub resource_id: Uuid,
    /// Who caused it.
    pub actor: Actor,
    /// The record as it is after the change (empty for deletions).
    pub payload: Value,
    /// When.
    pub at: DateTime<Utc>,
}

impl DomainEvent {
    /// The event name for an action on a kind of record.
    pub fn name_for(resource: Kind, action: AuditAction) -> String {
        format!("{}.{}", resource.as_str(), action.as_str())
    }
}
