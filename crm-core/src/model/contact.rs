use serde::{Deserialize, Serialize};

use super::common::{
    Kind, Link, Record, RecordMeta, nullable, owner_link, patch_field, record_common, record_link,
};
use super::{AccountId, CustomFields};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::FieldType;
use crate::scope::UserId;
use crate::validate;

crate::record_kind! {
    /// The description of contacts (see [`crate::kind`]).
    pub static CONTACT for Contact {
        name: "contact",
        plural: "contacts",
        about: "People the tenant does business with.",
        carries_activities: true,
        custom_fields: custom_fields,
        filled_one_of: &[&["last_name", "first_name", "email"]],
    }
    fields {
        first_name: FieldType::Text, nullable, search, personal;
        last_name: FieldType::Text, nullable, search, personal;
        email: FieldType::Email, nullable, search, personal;
        phone: FieldType::Phone, nullable, personal;
        title: FieldType::Text, nullable;
        account_id: FieldType::Ref(Kind::Account), nullable, filter;
        owner_id: FieldType::Member, nullable, filter, owns;
    }
}

/// Contact id.
pub type ContactId = Id<Contact>;

/// A person the tenant does business with, optionally at an account.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Contact>,
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
    /// Job title.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub title: Option<String>,
    /// The account the contact works at.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub account_id: Option<AccountId>,
    /// The member responsible for the contact.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
    /// Tenant-defined fields.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Input to create a contact. At least one of `first_name`, `last_name`, `email` is required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NewContact {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// Owner (default: the creator).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Changes to a contact.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ContactPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub account_id: Option<Option<AccountId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<UserId>>,
    /// Replaces the whole custom-fields object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::common::CustomFieldsSchema>))]
    pub custom_fields: Option<CustomFields>,
}

impl Record for Contact {
    type New = NewContact;
    type Patch = ContactPatch;
    record_common!(Contact);

    fn create(
        new: NewContact,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        Ok(Contact {
            meta,
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
            phone: new.phone,
            title: new.title,
            account_id: new.account_id,
            owner_id: new.owner_id.or(creator),
            custom_fields: new.custom_fields,
        })
    }

    fn apply(&mut self, p: ContactPatch, _errors: &mut Vec<FieldError>) {
        patch_field(&mut self.first_name, p.first_name);
        patch_field(&mut self.last_name, p.last_name);
        patch_field(&mut self.email, p.email);
        patch_field(&mut self.phone, p.phone);
        patch_field(&mut self.title, p.title);
        patch_field(&mut self.account_id, p.account_id);
        patch_field(&mut self.owner_id, p.owner_id);
        patch_field(&mut self.custom_fields, p.custom_fields);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        validate::custom_fields(&self.custom_fields, errors);
    }

    fn links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        owner_link(self.owner_id, &mut links);
        record_link("account_id", Kind::Account, self.account_id, &mut links);
        links
    }
}
