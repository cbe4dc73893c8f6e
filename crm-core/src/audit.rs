//! The audit trail: one entry per record change, written in the same transaction as the change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::id::Id;
use crate::model::Kind;
use crate::scope::{Actor, TenantId, UserId};

/// Audit entry id.
pub type AuditId = Id<AuditEntry>;

/// One change to one record: who, what, when, and the fields that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Id.
    pub id: AuditId,
    /// Owning tenant.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Who made the change.
    pub actor: Actor,
    /// What kind of change.
    pub action: AuditAction,
    /// The kind of record changed.
    pub resource: Kind,
    /// The record changed.
    pub resource_id: Uuid,
    /// The changed fields, before and after.
    pub changes: Changes,
    /// The request that made it, when known.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub request_id: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What kind of change an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// Created.
    Created,
    /// Fields changed.
    Updated,
    /// Soft-deleted (or a membership removed).
    Deleted,
    /// A lead became a contact.
    Converted,
    /// A deal moved to another stage.
    StageChanged,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 5] = [
        AuditAction::Created,
        AuditAction::Updated,
        AuditAction::Deleted,
        AuditAction::Converted,
        AuditAction::StageChanged,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Updated => "updated",
            AuditAction::Deleted => "deleted",
            AuditAction::Converted => "converted",
            AuditAction::StageChanged => "stage_changed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Before and after values of the fields a change touched (top-level JSON fields of the record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Changes {
    /// Old values of changed fields.
    pub before: Map<String, Value>,
    /// New values of changed fields.
    pub after: Map<String, Value>,
}

impl Changes {
    /// The fields that differ between two serialized records; bookkeeping fields are left out.
    /// An empty side (creation, deletion) records nothing for that side.
    pub fn between(before: &Value, after: &Value) -> Changes {
        const SKIP: [&str; 3] = ["version", "updated_at", "created_at"];
        let empty = Map::new();
        let old = before.as_object().unwrap_or(&empty);
        let new = after.as_object().unwrap_or(&empty);
        let mut changes = Changes::default();
        let keys = old.keys().chain(new.keys().filter(|k| !old.contains_key(*k)));
        for key in keys {
            if SKIP.contains(&key.as_str()) {
                continue;
            }
            let (a, b) = (old.get(key).unwrap_or(&Value::Null), new.get(key).unwrap_or(&Value::Null));
            // A field set on create has no "before"; a cleared field's "after" is null.
            if a != b {
                if !old.is_empty() {
                    changes.before.insert(key.clone(), a.clone());
                }
                if !new.is_empty() {
                    changes.after.insert(key.clone(), b.clone());
                }
            }
        }
        changes
    }
}

/// Filters for reading the audit log; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only changes by this user.
    pub actor: Option<UserId>,
    /// Only changes to this kind of record.
    pub resource: Option<Kind>,
    /// Only changes to this record.
    pub resource_id: Option<Uuid>,
    /// Only changes at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only changes before this time.
    pub to: Option<DateTime<Utc>>,
}

impl Changes {
    /// Whether no field changed.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}
