//! A record's timeline (activities and audited changes, newest first) and the audit log.

use serde::Serialize;
use uuid::Uuid;

use super::Crm;
use super::list::{self, Page};
use crate::audit::{AuditEntry, AuditQuery};
use crate::cursor;
use crate::error::{Error, Result};
use crate::model::{Activity, ActivityTarget};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::{Entity, TimeCursor};

/// One item of a record's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "item", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimelineItem {
    /// A note, call, e-mail or meeting on the record.
    Activity(Activity),
    /// A change to the record, from the audit trail.
    Change(AuditEntry),
}

impl TimelineItem {
    /// The item's position: when it happened, then its id.
    pub fn position(&self) -> TimeCursor {
        match self {
            TimelineItem::Activity(a) => TimeCursor { at: a.occurred_at, id: a.meta.id.uuid() },
            TimelineItem::Change(c) => TimeCursor { at: c.at, id: c.id.uuid() },
        }
    }
}

impl Crm {
    /// A record's activities and changes, newest first. Needs read access to the record.
    pub async fn timeline(
        &self,
        scope: &Scope,
        target: ActivityTarget,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<TimelineItem>> {
        let (kind, id) = target.parts();
        let def = kind.def().ok_or(Error::NotFound)?;
        let grant = self.authorize(scope, Action::Read, def.resource)?;
        self.authorize(scope, Action::Read, Resource::Activity)?;
        let limit = list::limit(limit)?;
        let before = cursor.map(cursor::decode_time).transpose()?;
        // Only kinds that carry activities have a timeline.
        let Some(Entity::Record(row)) = self.store_ref().get(scope, kind, id).await? else {
            return Err(Error::NotFound);
        };
        if !row.def.carries_activities {
            return Err(Error::NotFound);
        }
        let owner = row.member("owner_id");
        if !grant.covers(scope.principal(), owner) {
            return Err(Error::NotFound);
        }
        let store = self.store_ref();
        let activities = store.activities_for(scope, target, before, limit + 1).await?;
        let query = AuditQuery { resource: Some(kind), resource_id: Some(id), ..AuditQuery::default() };
        let changes = store.audit_log(scope, &query, before, limit + 1).await?;
        let mut items: Vec<TimelineItem> = activities
            .into_iter()
            .map(TimelineItem::Activity)
            .chain(changes.into_iter().map(TimelineItem::Change))
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.position()));
        Ok(page_by_time(items, limit, TimelineItem::position))
    }

    /// The tenant's audit trail, newest first (owners and admins).
    pub async fn audit_log(
        &self,
        scope: &Scope,
        query: AuditQuery,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEntry>> {
        self.authorize(scope, Action::Read, Resource::AuditLog)?;
        let limit = list::limit(limit)?;
        let before = cursor.map(cursor::decode_time).transpose()?;
        let mut errors = Vec::new();
        if let Some(t) = &query.from {
            crate::validate::time("from", t, &mut errors);
        }
        if let Some(t) = &query.to {
            crate::validate::time("to", t, &mut errors);
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let rows = self.store_ref().audit_log(scope, &query, before, limit + 1).await?;
        Ok(page_by_time(rows, limit, |e| TimeCursor { at: e.at, id: e.id.uuid() }))
    }

    /// The tenant's outbox events after `after`, in order: for workers and tests.
    pub async fn outbox(
        &self,
        scope: &Scope,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<crate::event::DomainEvent>> {
        self.authorize(scope, Action::Read, Resource::AuditLog)?;
        self.store_ref().outbox(scope, after, limit.clamp(1, 1000)).await
    }
}

fn page_by_time<T>(mut rows: Vec<T>, limit: u32, position: impl Fn(&T) -> TimeCursor) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| cursor::encode_time(position(r))) } else { None };
    Page { data: rows, next_cursor }
}
