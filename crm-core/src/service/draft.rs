//! Collects the rows, audit entries and events of one use case into a single [`ChangeSet`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::Crm;
use crate::audit::{AuditAction, AuditEntry, Changes};
use crate::error::Result;
use crate::event::DomainEvent;
use crate::id::Id;
use crate::kind::RecordRow;
use crate::model::{Kind, Link, Pipeline, RecordMeta};
use crate::scope::Scope;
use crate::store::{ChangeSet, Entity, Write};

/// One use case's pending writes; committed at once by [`Crm::commit`].
pub(crate) struct Draft {
    pub scope: Scope,
    pub now: DateTime<Utc>,
    pub changes: ChangeSet,
    /// Links already found valid in this draft, so a bulk import checks each owner once.
    pub verified_links: HashSet<Link>,
    /// Pipelines read for this draft (`None`: not found), so a stage move or a conversion reads
    /// its deal's pipeline once rather than once per check.
    pub pipelines: HashMap<Uuid, Option<Pipeline>>,
}

impl Crm {
    pub(crate) fn draft(&self, scope: &Scope) -> Draft {
        Draft {
            scope: scope.clone(),
            now: self.inner.clock.now(),
            changes: ChangeSet::default(),
            verified_links: HashSet::new(),
            pipelines: HashMap::new(),
        }
    }

    pub(crate) fn new_id<T>(&self) -> Id<T> {
        Id::from_uuid(self.inner.ids.new_id())
    }

    /// Fresh metadata for a record created in this draft.
    pub(crate) fn new_meta<T>(&self, draft: &Draft) -> RecordMeta<T> {
        RecordMeta {
            id: self.new_id(),
            tenant_id: draft.scope.tenant_id(),
            version: 1,
            created_at: draft.now,
            updated_at: draft.now,
            deleted_at: None,
        }
    }

    /// Adds an audit entry and its outbox event for a change to one record of a described kind:
    /// the changed fields and the payload come from its rows (`None`: created, or deleted).
    pub(crate) fn record_row_change(
        &self,
        draft: &mut Draft,
        action: AuditAction,
        before: Option<&RecordRow>,
        after: Option<&RecordRow>,
    ) {
        let Some(row) = after.or(before) else { return };
        let changes = Changes::between_rows(before, after);
        let payload = after.map_or(Value::Null, RecordRow::to_json);
        self.push_change(draft, action, row.def.kind, row.meta.id, changes, payload);
    }

    /// Adds the outbox events a record's change implies besides its audited one
    /// (`task.completed`), each carrying the record as it is after the change.
    pub(crate) fn push_implied_events(&self, draft: &mut Draft, actions: Vec<&'static str>, row: &RecordRow) {
        for action in actions {
            draft.changes.events.push(DomainEvent {
                id: self.new_id(),
                tenant_id: draft.scope.tenant_id(),
                name: format!("{}.{action}", row.def.name),
                resource: row.def.kind,
                resource_id: row.meta.id,
                actor: draft.scope.actor(),
                payload: row.to_json(),
                at: draft.now,
            });
        }
    }

    /// Adds an audit entry and its outbox event for a change to a tenant, member or API key,
    /// which have no description: the diff and payload come from their serialized forms.
    pub(crate) fn record_change(
        &self,
        draft: &mut Draft,
        action: AuditAction,
        resource: Kind,
        resource_id: Uuid,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        let empty = Value::Object(Default::default());
        let changes = Changes::between(before.unwrap_or(&empty), after.unwrap_or(&empty));
        let payload = after.cloned().unwrap_or(Value::Null);
        self.push_change(draft, action, resource, resource_id, changes, payload);
    }

    /// Adds the audit entry and the outbox event of one change.
    pub(crate) fn push_change(
        &self,
        draft: &mut Draft,
        action: AuditAction,
        resource: Kind,
        resource_id: Uuid,
        changes: Changes,
        payload: Value,
    ) {
        let actor = draft.scope.actor();
        draft.changes.audit.push(AuditEntry {
            id: self.new_id(),
            tenant_id: draft.scope.tenant_id(),
            actor,
            action,
            resource,
            resource_id,
            changes,
            request_id: draft.scope.request_id().map(str::to_owned),
            at: draft.now,
        });
        draft.changes.events.push(DomainEvent {
            id: self.new_id(),
            tenant_id: draft.scope.tenant_id(),
            name: DomainEvent::name_for(resource, action),
            resource,
            resource_id,
            actor,
            payload,
            at: draft.now,
        });
    }

    /// Applies the draft in one transaction, then feeds audit sinks and event hooks. Under an
    /// idempotency key the change set is held instead, and commits with the recorded response.
    pub(crate) async fn commit(&self, draft: Draft) -> Result<()> {
        let Draft { scope, changes, .. } = draft;
        let Some(claim) = scope.claim() else { return self.apply(&scope, changes).await };
        match claim.hold(changes) {
            // The call commits more than once (a batched import): the earlier batch goes now.
            Some(earlier) => self.apply(&scope, earlier).await,
            None => Ok(()),
        }
    }

    /// Commits a change set with its webhook deliveries, then feeds audit sinks and event hooks.
    pub(crate) async fn apply(&self, scope: &Scope, mut changes: ChangeSet) -> Result<()> {
        self.fan_out(scope, &mut changes).await?;
        let enqueues = changes.writes.iter().any(|w| matches!(w, Write::Enqueue(_)));
        // Copies only when someone listens: a commit is on every write's path.
        let audit = if self.inner.audit_sinks.is_empty() { Vec::new() } else { changes.audit.clone() };
        let events = if self.inner.event_hooks.is_empty() { Vec::new() } else { changes.events.clone() };
        self.store_ref().commit(scope, changes).await?;
        if enqueues {
            self.wake_runners();
        }
        for entry in &audit {
            for sink in &self.inner.audit_sinks {
                sink.record(entry).await;
            }
        }
        for event in &events {
            for hook in &self.inner.event_hooks {
                hook.on_event(event).await;
            }
        }
        Ok(())
    }
}

impl Draft {
    /// Whether the link points at a record inserted earlier in this draft (not yet in the store).
    pub fn stages(&self, link: &Link) -> bool {
        let Link::Record { kind, id, .. } = link else { return false };
        self.changes.writes.iter().any(|w| match w {
            Write::Insert(e) => e.record_key() == Some((*kind, *id)),
            _ => false,
        })
    }

    pub fn insert(&mut self, entity: Entity) {
        self.changes.writes.push(Write::Insert(entity));
    }

    pub fn update(&mut self, entity: Entity, expected_version: i64) {
        self.changes.writes.push(Write::Update { entity, expected_version });
    }
}
