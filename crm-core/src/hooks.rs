//! Extension points that run after a write commits: extra audit copies and in-process events.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::event::DomainEvent;

/// Receives a copy of every audit entry after its write commits (e.g. to ship to a SIEM).
///
/// The authoritative trail is the store's own audit table, written in the write's transaction;
/// sinks are best-effort copies, so a failing sink never undoes or fails a committed write.
#[async_trait]
pub trait AuditSink: Send + Sync + Debug + 'static {
    /// Called once per entry, in commit order.
    async fn record(&self, entry: &AuditEntry);
}

/// Reacts to domain events in-process after commit (cache invalidation, notifications).
///
/// Durable delivery (webhooks, e-mail) belongs to outbox workers instead: hooks are not retried.
#[async_trait]
pub trait EventHook: Send + Sync + Debug + 'static {
    /// Called once per event, in commit order.
    async fn on_event(&self, event: &DomainEvent);
}
