use serde::{Deserialize, Serialize};

use super::CustomFields;
use super::common::{Link, Record, RecordMeta, nullable, owner_link, patch_field, record_common};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::FieldType;
use crate::scope::UserId;
use crate::validate;

crate::record_kind! {
    /// The description of accounts (see [`crate::kind`]).
    pub static ACCOUNT for Account {
        name: "account",
        plural: "accounts",
        about: "Companies.",
        carries_activities: true,
        custom_fields: custom_fields,
    }
    fields {
        name: FieldType::Text, search;
        domain: FieldType::Domain, nullable, search;
        industry: FieldType::Text, nullable;
        owner_id: FieldType::Member, nullable, filter, owns;
    }
}

/// Account id.
pub type AccountId = Id<Account>;

/// A company the tenant sells to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Account>,
    /// Company name.
    pub name: String,
    /// Web domain (`acme.example`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub domain: Option<String>,
    /// Industry.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub industry: Option<String>,
    /// The member responsible for the account.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
    /// Tenant-defined fields.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Input to create an account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NewAccount {
    pub name: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub industry: Option<String>,
    /// Owner (default: the creator).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Changes to an account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AccountPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<UserId>>,
    /// Replaces the whole custom-fields object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::common::CustomFieldsSchema>))]
    pub custom_fields: Option<CustomFields>,
}

impl Record for Account {
    type New = NewAccount;
    type Patch = AccountPatch;
    record_common!(Account);

    fn create(
        new: NewAccount,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        Ok(Account {
            meta,
            name: new.name,
            domain: new.domain,
            industry: new.industry,
            owner_id: new.owner_id.or(creator),
            custom_fields: new.custom_fields,
        })
    }

    fn apply(&mut self, p: AccountPatch, _errors: &mut Vec<FieldError>) {
        patch_field(&mut self.name, p.name);
        patch_field(&mut self.domain, p.domain);
        patch_field(&mut self.industry, p.industry);
        patch_field(&mut self.owner_id, p.owner_id);
        patch_field(&mut self.custom_fields, p.custom_fields);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        validate::custom_fields(&self.custom_fields, errors);
    }

    fn links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        owner_link(self.owner_id, &mut links);
        links
    }
}
