use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{Kind, Link, Record, RecordMeta, nullable, patch_field, record_common};
use super::{AccountId, ContactId, DealId, LeadId};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::{FieldType, Writable};
use crate::scope::UserId;
use crate::validate;

crate::record_kind! {
    /// The description of activities (see [`crate::kind`]). The record they are on is one of four
    /// references, exactly one of them set.
    pub static ACTIVITY for Activity {
        name: "activity",
        plural: "activities",
        about: "Notes, calls, e-mails and meetings; record timelines.",
        carries_activities: false,
        timeline_at: "occurred_at",
        filled_one_of: &[&["subject", "body"]],
    }
    fields {
        kind: FieldType::Enum(&crate::kind::ACTIVITY_KINDS), filter;
        subject: FieldType::Text, nullable;
        body: FieldType::Text, nullable, body;
        occurred_at: FieldType::Time, sort;
        target => one_of [
            lead_id: FieldType::Ref(Kind::Lead),
            contact_id: FieldType::Ref(Kind::Contact),
            account_id: FieldType::Ref(Kind::Account),
            deal_id: FieldType::Ref(Kind::Deal),
        ], nullable, filter, write(Writable::OnCreate);
        owner_id: FieldType::Member, nullable, filter, owns;
    }
}

/// Activity id.
pub type ActivityId = Id<Activity>;

/// A note, call, e-mail or meeting attached to one record; part of that record's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Activity>,
    /// What happened.
    pub kind: ActivityKind,
    /// One-line summary.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub subject: Option<String>,
    /// Details.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub body: Option<String>,
    /// When it happened (may be before it was logged).
    pub occurred_at: DateTime<Utc>,
    /// The record it belongs to, serialized as `lead_id` / `contact_id` / `account_id` / `deal_id`.
    #[serde(flatten)]
    pub target: ActivityTarget,
    /// Who logged it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
}

/// Kinds of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A written note.
    Note,
    /// A phone call.
    Call,
    /// An e-mail.
    Email,
    /// A meeting.
    Meeting,
}

impl ActivityKind {
    /// Every kind.
    pub const ALL: [ActivityKind; 4] =
        [ActivityKind::Note, ActivityKind::Call, ActivityKind::Email, ActivityKind::Meeting];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Note => "note",
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The record an activity belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ActivityTarget {
    /// A lead.
    #[serde(rename = "lead_id")]
    Lead(LeadId),
    /// A contact.
    #[serde(rename = "contact_id")]
    Contact(ContactId),
    /// An account.
    #[serde(rename = "account_id")]
    Account(AccountId),
    /// A deal.
    #[serde(rename = "deal_id")]
    Deal(DealId),
}

impl ActivityTarget {
    /// The target's kind and id.
    pub fn parts(self) -> (Kind, Uuid) {
        match self {
            ActivityTarget::Lead(id) => (Kind::Lead, id.uuid()),
            ActivityTarget::Contact(id) => (Kind::Contact, id.uuid()),
            ActivityTarget::Account(id) => (Kind::Account, id.uuid()),
            ActivityTarget::Deal(id) => (Kind::Deal, id.uuid()),
        }
    }

    /// The records named by an input's four optional references, in field order.
    pub(crate) fn given(
        lead: Option<LeadId>,
        contact: Option<ContactId>,
        account: Option<AccountId>,
        deal: Option<DealId>,
    ) -> Vec<ActivityTarget> {
        let given = [
            lead.map(ActivityTarget::Lead),
            contact.map(ActivityTarget::Contact),
            account.map(ActivityTarget::Account),
            deal.map(ActivityTarget::Deal),
        ];
        given.into_iter().flatten().collect()
    }

    /// The activity field that holds this target (`deal_id`), from the activity description.
    pub fn field(self) -> Option<&'static crate::kind::FieldDef> {
        ACTIVITY.one_of_reference(self.parts().0)
    }

    /// Builds a target from a kind and id; `None` for kinds activities cannot attach to.
    pub fn from_parts(kind: Kind, id: Uuid) -> Option<Self> {
        // Over the targets, not over kinds: a new kind is simply not a target.
        let targets = [
            ActivityTarget::Lead(Id::from_uuid(id)),
            ActivityTarget::Contact(Id::from_uuid(id)),
            ActivityTarget::Account(Id::from_uuid(id)),
            ActivityTarget::Deal(Id::from_uuid(id)),
        ];
        targets.into_iter().find(|target| target.parts().0 == kind)
    }
}

/// Input to log an activity: exactly one of `lead_id`, `contact_id`, `account_id`, `deal_id`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NewActivity {
    pub kind: ActivityKind,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub lead_id: Option<LeadId>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    #[serde(default)]
    pub account_id: Option<AccountId>,
    #[serde(default)]
    pub deal_id: Option<DealId>,
}

impl NewActivity {
    /// An activity of `kind` on `target`, with everything else unset.
    pub fn on(target: ActivityTarget, kind: ActivityKind) -> Self {
        let mut new = NewActivity {
            kind,
            subject: None,
            body: None,
            occurred_at: None,
            lead_id: None,
            contact_id: None,
            account_id: None,
            deal_id: None,
        };
        match target {
            ActivityTarget::Lead(id) => new.lead_id = Some(id),
            ActivityTarget::Contact(id) => new.contact_id = Some(id),
            ActivityTarget::Account(id) => new.account_id = Some(id),
            ActivityTarget::Deal(id) => new.deal_id = Some(id),
        }
        new
    }
}

/// Changes to an activity. Its target cannot change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ActivityPatch {
    #[serde(default)]
    pub kind: Option<ActivityKind>,
    #[serde(default, deserialize_with = "nullable")]
    pub subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub body: Option<Option<String>>,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Record for Activity {
    type New = NewActivity;
    type Patch = ActivityPatch;
    record_common!(Activity);

    fn create(
        new: NewActivity,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        let targets = ActivityTarget::given(new.lead_id, new.contact_id, new.account_id, new.deal_id);
        let [target] = targets[..] else {
            return Err(vec![FieldError::new(
                "lead_id",
                "exactly one of lead_id, contact_id, account_id or deal_id is required",
            )]);
        };
        let occurred_at = new.occurred_at.map(crate::clock::truncate_to_micros).unwrap_or(meta.created_at);
        Ok(Activity {
            meta,
            kind: new.kind,
            subject: new.subject,
            body: new.body,
            occurred_at,
            target,
            owner_id: creator,
        })
    }

    fn apply(&mut self, p: ActivityPatch, _errors: &mut Vec<FieldError>) {
        patch_field(&mut self.kind, p.kind);
        patch_field(&mut self.subject, p.subject);
        patch_field(&mut self.body, p.body);
        patch_field(&mut self.occurred_at, p.occurred_at.map(crate::clock::truncate_to_micros));
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        validate::time("occurred_at", &self.occurred_at, errors);
    }

    fn links(&self) -> Vec<Link> {
        let (kind, id) = self.target.parts();
        let field = self.target.field().map_or("target", |f| f.name);
        vec![Link::Record { field, kind, id }]
    }
}
