use serde::{Deserialize, Serialize};

use super::common::{Kind, Link, Record, RecordMeta, nullable, owner_link, patch_field, record_common};
use super::{ContactId, CustomFields};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::{FieldType, Writable};
use crate::scope::UserId;
use crate::validate;

crate::record_kind! {
    /// The description of leads (see [`crate::kind`]).
    pub static LEAD for Lead {
        name: "lead",
        plural: "leads",
        about: "Prospects not yet qualified, their conversion, import and export.",
        carries_activities: true,
        custom_fields: custom_fields,
        filled_one_of: &[&["last_name", "email", "company"]],
    }
    fields {
        first_name: FieldType::Text, nullable, search, personal;
        last_name: FieldType::Text, nullable, search, personal;
        email: FieldType::Email, nullable, search, personal;
        phone: FieldType::Phone, nullable, personal;
        company: FieldType::Text, nullable, search;
        title: FieldType::Text, nullable;
        source: FieldType::Text, nullable;
        status: FieldType::Enum(&crate::kind::LEAD_STATUSES), filter, rule_values(&["converted"]);
        owner_id: FieldType::Member, nullable, filter, owns;
        converted_contact_id: FieldType::Ref(Kind::Contact), nullable, write(Writable::Rule);
    }
}

/// Lead id.
pub type LeadId = Id<Lead>;

/// A prospective customer not yet qualified into a contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lead {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Lead>,
    /// Given name.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub first_name: Option<String>,
    /// Family name.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_name: Option<String>,
    /// E-mail address.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub email: Option<String>,
    /// Phone number.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub phone: Option<String>,
    /// Company name as the lead gave it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub company: Option<String>,
    /// Job title.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub title: Option<String>,
    /// Where the lead came from (`web`, `referral`, …).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub source: Option<String>,
    /// Where the lead is in qualification.
    pub status: LeadStatus,
    /// The member responsible for it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
    /// Set once the lead is converted: the contact it became.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub converted_contact_id: Option<ContactId>,
    /// Tenant-defined fields.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Qualification status: `new → contacted → qualified → converted | unqualified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Not yet worked.
    #[default]
    New,
    /// Reached out to.
    Contacted,
    /// Worth pursuing.
    Qualified,
    /// Not worth pursuing.
    Unqualified,
    /// Became a contact; set only by conversion, and final.
    Converted,
}

impl LeadStatus {
    /// Every status.
    pub const ALL: [LeadStatus; 5] = [
        LeadStatus::New,
        LeadStatus::Contacted,
        LeadStatus::Qualified,
        LeadStatus::Unqualified,
        LeadStatus::Converted,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Qualified => "qualified",
            LeadStatus::Unqualified => "unqualified",
            LeadStatus::Converted => "converted",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

const CONVERTED_ONLY_BY_CONVERSION: &str = "a lead becomes converted only through conversion";

/// Input to create a lead. At least one of `last_name`, `email`, `company` is required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLead {
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Company name.
    #[serde(default)]
    pub company: Option<String>,
    /// Job title.
    #[serde(default)]
    pub title: Option<String>,
    /// Origin.
    #[serde(default)]
    pub source: Option<String>,
    /// Initial status (default `new`; `converted` is refused).
    #[serde(default)]
    pub status: Option<LeadStatus>,
    /// Owner (default: the creator).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Tenant-defined fields.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Changes to a lead. `status` cannot become `converted` (use conversion) nor leave it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LeadPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub source: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<LeadStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<UserId>>,
    /// Replaces the whole custom-fields object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::common::CustomFieldsSchema>))]
    pub custom_fields: Option<CustomFields>,
}

impl Record for Lead {
    type New = NewLead;
    type Patch = LeadPatch;
    record_common!(Lead);

    fn create(
        new: NewLead,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        Ok(Lead {
            meta,
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
            phone: new.phone,
            company: new.company,
            title: new.title,
            source: new.source,
            status: new.status.unwrap_or_default(),
            owner_id: new.owner_id.or(creator),
            converted_contact_id: None,
            custom_fields: new.custom_fields,
        })
    }

    fn apply(&mut self, p: LeadPatch, errors: &mut Vec<FieldError>) {
        if let Some(status) = p.status {
            // `converted` is never a patch's to give, even to a converted lead: the schema can
            // then leave it out of the patch as it does of the create input.
            if status == LeadStatus::Converted {
                errors.push(FieldError::new("status", CONVERTED_ONLY_BY_CONVERSION));
            } else if self.status == LeadStatus::Converted {
                errors.push(FieldError::new("status", "a converted lead cannot change status"));
            }
            self.status = status;
        }
        patch_field(&mut self.first_name, p.first_name);
        patch_field(&mut self.last_name, p.last_name);
        patch_field(&mut self.email, p.email);
        patch_field(&mut self.phone, p.phone);
        patch_field(&mut self.company, p.company);
        patch_field(&mut self.title, p.title);
        patch_field(&mut self.source, p.source);
        patch_field(&mut self.owner_id, p.owner_id);
        patch_field(&mut self.custom_fields, p.custom_fields);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        validate::custom_fields(&self.custom_fields, errors);
    }

    fn links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        owner_link(self.owner_id, &mut links);
        if let Some(contact) = self.converted_contact_id {
            links.push(Link::Record {
                field: "converted_contact_id",
                kind: Kind::Contact,
                id: contact.uuid(),
            });
        }
        links
    }
}
