use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Kind, Link, Record, RecordMeta, nullable, owner_link, patch_field, record_common};
use super::{AccountId, ActivityTarget, ContactId, CustomFields, DealId, LeadId};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::{FieldType, NamedFilter, Writable};
use crate::scope::UserId;
use crate::store::{Filter, TimeRange};
use crate::validate;

crate::record_kind! {
    /// The description of tasks (see [`crate::kind`]). Two members own a task, its owner and
    /// its assignee; the record it is about is one of four references, at most one of them set.
    pub static TASK for Task {
        name: "task",
        plural: "tasks",
        about: "Things to do, by a time, about a record; their owner and assignee edit them.",
        carries_activities: false,
        timeline_at: "created_at",
        custom_fields: custom_fields,
        named_filters: &[NamedFilter {
            name: "overdue",
            description: "Only open tasks whose due time has passed.",
            apply: overdue,
        }],
    }
    fields {
        title: FieldType::Text, search;
        description: FieldType::Text, nullable, body;
        due_at: FieldType::Time, nullable, filter, sort;
        priority: FieldType::Enum(&TaskPriority::NAMES), filter;
        status: FieldType::Enum(&TaskStatus::NAMES), filter;
        assignee_id: FieldType::Member, nullable, filter, owns;
        related => at_most_one_of [
            lead_id: FieldType::Ref(Kind::Lead),
            contact_id: FieldType::Ref(Kind::Contact),
            account_id: FieldType::Ref(Kind::Account),
            deal_id: FieldType::Ref(Kind::Deal),
        ], nullable, filter, write(Writable::OnCreate);
        completed_at: FieldType::Time, nullable, write(Writable::Rule);
        owner_id: FieldType::Member, nullable, filter, owns;
    }
}

/// `overdue`: open, and due before now.
fn overdue(now: DateTime<Utc>, filter: &mut Filter) {
    filter.equals.push(("status".into(), crate::kind::Value::Text(TaskStatus::Open.as_str().into())));
    filter.ranges.push(TimeRange { field: "due_at".into(), from: None, before: Some(now) });
}

/// Task id.
pub type TaskId = Id<Task>;

/// Something a member has to do, perhaps by a time, perhaps about a record; it shows in that
/// record's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Task>,
    /// What to do.
    pub title: String,
    /// Details.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub description: Option<String>,
    /// When it is due.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub due_at: Option<DateTime<Utc>>,
    /// How urgent it is.
    pub priority: TaskPriority,
    /// Whether it is still to do.
    pub status: TaskStatus,
    /// The member who is to do it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub assignee_id: Option<UserId>,
    /// The record it is about, serialized as `lead_id` / `contact_id` / `account_id` / `deal_id`.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = RelatedRecordSchema))]
    pub related: Option<ActivityTarget>,
    /// When it was done; set when `status` becomes `done`, cleared when it is reopened.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub completed_at: Option<DateTime<Utc>>,
    /// The member who created it, unless another was named.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
    /// Tenant-defined fields.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// The record a task is about, as the task's JSON carries it: at most one of these keys.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
pub(crate) struct RelatedRecordSchema {
    /// A lead.
    lead_id: Option<uuid::Uuid>,
    /// A contact.
    contact_id: Option<uuid::Uuid>,
    /// An account.
    account_id: Option<uuid::Uuid>,
    /// A deal.
    deal_id: Option<uuid::Uuid>,
}

crate::wire_enum! {
    /// How urgent a task is.
    pub enum TaskPriority as "a task priority" {
        /// Whenever there is time.
        Low = "low",
        /// The default.
        Normal = "normal",
        /// Before normal work.
        High = "high",
        /// Now.
        Urgent = "urgent",
    }
}

crate::wire_enum! {
    /// Whether a task is still to do.
    pub enum TaskStatus as "a task status" {
        /// To do.
        Open = "open",
        /// Done.
        Done = "done",
        /// No longer to do.
        Cancelled = "cancelled",
    }
}

/// Input to create a task: a title, and at most one of `lead_id`, `contact_id`, `account_id`,
/// `deal_id`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// Default `normal`.
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    /// Default `open`.
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default)]
    pub assignee_id: Option<UserId>,
    #[serde(default)]
    pub lead_id: Option<LeadId>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    #[serde(default)]
    pub account_id: Option<AccountId>,
    #[serde(default)]
    pub deal_id: Option<DealId>,
    /// Default: the creator.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Changes to a task. The record it is about cannot change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TaskPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub due_at: Option<Option<DateTime<Utc>>>,
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<UserId>>,
    /// Replaces the whole custom-fields object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::common::CustomFieldsSchema>))]
    pub custom_fields: Option<CustomFields>,
}

impl Record for Task {
    type New = NewTask;
    type Patch = TaskPatch;
    record_common!(Task);

    fn create(
        new: NewTask,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        let related = ActivityTarget::given(new.lead_id, new.contact_id, new.account_id, new.deal_id);
        if related.len() > 1 {
            let message = "at most one of lead_id, contact_id, account_id or deal_id";
            return Err(vec![FieldError::new("lead_id", message)]);
        }
        let status = new.status.unwrap_or(TaskStatus::Open);
        Ok(Task {
            title: new.title,
            description: new.description,
            due_at: new.due_at.map(crate::clock::truncate_to_micros),
            priority: new.priority.unwrap_or(TaskPriority::Normal),
            status,
            assignee_id: new.assignee_id,
            related: related.first().copied(),
            completed_at: (status == TaskStatus::Done).then_some(meta.created_at),
            owner_id: new.owner_id.or(creator),
            custom_fields: new.custom_fields,
            meta,
        })
    }

    fn apply(&mut self, p: TaskPatch, _errors: &mut Vec<FieldError>) {
        if let Some(status) = p.status {
            self.completed_at = match status {
                TaskStatus::Done if self.status == TaskStatus::Done => self.completed_at,
                TaskStatus::Done => Some(self.meta.updated_at),
                TaskStatus::Open | TaskStatus::Cancelled => None,
            };
            self.status = status;
        }
        patch_field(&mut self.title, p.title);
        patch_field(&mut self.description, p.description);
        patch_field(&mut self.due_at, p.due_at.map(|d| d.map(crate::clock::truncate_to_micros)));
        patch_field(&mut self.priority, p.priority);
        patch_field(&mut self.assignee_id, p.assignee_id);
        patch_field(&mut self.owner_id, p.owner_id);
        patch_field(&mut self.custom_fields, p.custom_fields);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(due_at) = &self.due_at {
            validate::time("due_at", due_at, errors);
        }
        validate::custom_fields(&self.custom_fields, errors);
    }

    fn links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        owner_link(self.owner_id, &mut links);
        if let Some(user_id) = self.assignee_id {
            links.push(Link::Member { field: "assignee_id", user_id });
        }
        if let Some(related) = self.related {
            let (kind, id) = related.parts();
            let field = TASK.one_of_reference(kind).map_or("lead_id", |f| f.name);
            links.push(Link::Record { field, kind, id });
        }
        links
    }

    fn implied_events(before: Option<&Self>, after: &Self) -> Vec<&'static str> {
        let mut events = Vec::new();
        if after.assignee_id.is_some() && before.is_none_or(|b| b.assignee_id != after.assignee_id) {
            events.push("assigned");
        }
        if after.status == TaskStatus::Done && before.is_none_or(|b| b.status != TaskStatus::Done) {
            events.push("completed");
        }
        events
    }
}
