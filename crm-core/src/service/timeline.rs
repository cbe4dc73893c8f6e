//! A record's timeline (activities and audited changes, newest first) and the audit log.

use serde::Serialize;
use uuid::Uuid;

use super::Crm;
use super::list::{self, Page};
use crate::audit::{AuditEntry, AuditQuery};
use crate::cursor;
use crate::error::{Error, Result};
use crate::kind::{ACTIVITY, FieldDef, Value};
use crate::model::{Activity, ActivityTarget, Record, Task};
use crate::policy::{Action, RecordScope, Resource};
use crate::scope::Scope;
use crate::store::{Entity, ListQuery, Sort, SortKey, TimeCursor};

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
    /// A task about the record, when it was created.
    Task(Task),
}

impl TimelineItem {
    /// The item's position: when it happened, then its id.
    pub fn position(&self) -> TimeCursor {
        match self {
            TimelineItem::Activity(a) => TimeCursor { at: a.occurred_at, id: a.meta.id.uuid() },
            TimelineItem::Change(c) => TimeCursor { at: c.at, id: c.id.uuid() },
            TimelineItem::Task(t) => TimeCursor { at: t.meta.created_at, id: t.meta.id.uuid() },
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
        let owners = row.def.owner_fields().filter_map(|f| row.member(f.name));
        if !grant.covers_any(scope.principal(), owners) {
            return Err(Error::NotFound);
        }
        let (after, sort) = (SortKey::Field(occurred_at()?), SortKey::CreatedAt);
        let activities: Vec<Activity> = self.about(scope, target, after, before, limit + 1).await?;
        let query = AuditQuery { resource: Some(kind), resource_id: Some(id), ..AuditQuery::default() };
        let changes = self.store_ref().audit_log(scope, &query, before, limit + 1).await?;
        let tasks: Vec<Task> = match self.authorize(scope, Action::Read, Resource::Task) {
            Ok(_) => self.about(scope, target, sort, before, limit + 1).await?,
            Err(_) => Vec::new(), // a timeline without tasks for callers who may not read them
        };
        let mut items: Vec<TimelineItem> = activities
            .into_iter()
            .map(TimelineItem::Activity)
            .chain(changes.into_iter().map(TimelineItem::Change))
            .chain(tasks.into_iter().map(TimelineItem::Task))
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.position()));
        Ok(page_by_time(items, limit, TimelineItem::position))
    }

    /// The records of kind `R` about `target` (in its one-of group) that the caller may read,
    /// by `key` and id descending, strictly before `before`.
    async fn about<R: Record>(
        &self,
        scope: &Scope,
        target: ActivityTarget,
        key: SortKey,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<R>> {
        let grant = self.authorize(scope, Action::Read, R::DEF.resource)?;
        let mut query = ListQuery::new(R::DEF.kind);
        query.filter.target = Some(target);
        if grant.record_scope == RecordScope::Own {
            query.filter.owned_by = scope.user_id();
        }
        query.limit = limit;
        query.after = before.map(|b| b.id);
        let after_value = before.map_or(Value::Null, |b| Value::Time(b.at));
        query.sort = Some(Sort { key, descending: true, after_value });
        let rows = self.store_ref().list(scope, &query).await?;
        rows.into_iter().map(R::from_entity).collect()
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

/// The field activities are ordered by in a timeline.
fn occurred_at() -> Result<&'static FieldDef> {
    ACTIVITY.field("occurred_at").ok_or_else(|| Error::internal("activities without occurred_at"))
}

fn page_by_time<T>(mut rows: Vec<T>, limit: u32, position: impl Fn(&T) -> TimeCursor) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| cursor::encode_time(position(r))) } else { None };
    Page { data: rows, next_cursor }
}
