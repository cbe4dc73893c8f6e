//! A record's timeline (its changes and the records about it, newest first) and the audit log.

use serde::ser::{Serialize, SerializeMap, Serializer};
use uuid::Uuid;

use super::Crm;
use super::list::{self, Page};
use crate::audit::{AuditEntry, AuditQuery};
use crate::cursor;
use crate::error::{Error, Result};
use crate::kind::{KindDef, RECORD_KINDS, RecordRow, Stored, Value};
use crate::model::ActivityTarget;
use crate::policy::{Action, Grant, RecordScope, Resource};
use crate::scope::Scope;
use crate::store::{Entity, ListQuery, Sort, SortKey, TimeCursor};

/// One item of a record's timeline: a change to it, or a record about it of a kind whose
/// description gives a [`KindDef::timeline_at`] (an activity, a task).
///
/// Records are held as rows, so a new kind appears in timelines without a variant here; read
/// one as its type with [`TimelineItem::record`]. On the wire an item is
/// `{"type": "change" | <kind name>, "item": <the entry or the record>}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TimelineItem {
    /// A change to the record, from the audit trail.
    Change(AuditEntry),
    /// A record that references the record, placed by its kind's `timeline_at`.
    Record(RecordRow),
}

impl TimelineItem {
    /// The item's `type` on the wire: `change`, or the record's kind name (`activity`).
    pub fn type_name(&self) -> &'static str {
        match self {
            TimelineItem::Change(_) => "change",
            TimelineItem::Record(row) => row.def.name,
        }
    }

    /// The item as a record of type `R`, when it is one of that kind.
    pub fn record<R: Stored>(&self) -> Option<R> {
        match self {
            TimelineItem::Record(row) if row.def.kind == R::DEF.kind => R::from_row(row.clone()).ok(),
            _ => None,
        }
    }

    /// The item's position: when it happened, then its id.
    pub fn position(&self) -> TimeCursor {
        match self {
            TimelineItem::Change(c) => TimeCursor { at: c.at, id: c.id.uuid() },
            TimelineItem::Record(row) => {
                let at = match row.def.timeline_at.and_then(|name| row.value(name)) {
                    Some(Value::Time(at)) => *at,
                    _ => row.meta.created_at,
                };
                TimeCursor { at, id: row.meta.id }
            }
        }
    }
}

impl Serialize for TimelineItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", self.type_name())?;
        match self {
            TimelineItem::Change(entry) => map.serialize_entry("item", entry)?,
            TimelineItem::Record(row) => map.serialize_entry("item", &row.to_json())?,
        }
        map.end()
    }
}

/// The schema states each `type` with its item's schema, from the descriptions.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TimelineItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let variant = |name: &str, item: &str, description: String| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([name])))
                .property("item", Ref::from_schema_name(item))
                .required("type")
                .required("item")
        };
        let change = variant("change", "AuditEntry", "A change to the record, from the audit trail.".into());
        let records = RECORD_KINDS.iter().filter(|def| def.timeline_at.is_some()).map(|def| {
            let at = def.timeline_at.unwrap_or("created_at");
            let description = format!("One of the record's {}, placed by its `{at}`.", def.plural);
            variant(def.name, def.type_name, description)
        });
        records.fold(OneOfBuilder::new().item(change), |one_of, record| one_of.item(record)).into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TimelineItem {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((AuditEntry::name().into(), AuditEntry::schema()));
        AuditEntry::schemas(schemas);
    }
}

impl Crm {
    /// A record's changes and the records about it that the caller may read (activities,
    /// tasks), newest first. Needs read access to the record.
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
        let query = AuditQuery { resource: Some(kind), resource_id: Some(id), ..AuditQuery::default() };
        let changes = self.store_ref().audit_log(scope, &query, before, limit + 1).await?;
        let mut items: Vec<TimelineItem> = changes.into_iter().map(TimelineItem::Change).collect();
        let about =
            RECORD_KINDS.iter().filter(|d| d.timeline_at.is_some() && d.one_of_reference(kind).is_some());
        for about_def in about {
            // A timeline leaves out the kinds the caller may not read.
            if let Ok(grant) = self.authorize(scope, Action::Read, about_def.resource) {
                let rows = self.about(scope, about_def, grant, target, before, limit + 1).await?;
                items.extend(rows.into_iter().map(TimelineItem::Record));
            }
        }
        items.sort_by_key(|i| std::cmp::Reverse(i.position()));
        Ok(page_by_time(items, limit, TimelineItem::position))
    }

    /// The `def` records about `target` (in its one-of group) that `grant` lets the caller
    /// read, by the kind's `timeline_at` and id descending, strictly before `before`.
    async fn about(
        &self,
        scope: &Scope,
        def: &'static KindDef,
        grant: Grant,
        target: ActivityTarget,
        before: Option<TimeCursor>,
        limit: u32,
    ) -> Result<Vec<RecordRow>> {
        let key = match def.timeline_at.and_then(|name| def.field(name)) {
            Some(field) => SortKey::Field(field),
            None => SortKey::CreatedAt,
        };
        let mut query = ListQuery::new(def.kind);
        query.filter.target = Some(target);
        if grant.record_scope == RecordScope::Own {
            query.filter.owned_by = scope.user_id();
        }
        query.limit = limit;
        query.after = before.map(|b| b.id);
        let after_value = before.map_or(Value::Null, |b| Value::Time(b.at));
        query.sort = Some(Sort { key, descending: true, after_value });
        let rows = self.store_ref().list(scope, &query).await?;
        let rows = rows.into_iter().map(|entity| match entity {
            Entity::Record(row) => Ok(row),
            other => Err(Error::internal(format!("expected a {} row, got {other:?}", def.name))),
        });
        rows.collect()
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
