use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    Kind, Link, Record, RecordMeta, integral_opt, nullable, nullable_integral, owner_link, patch_field,
    record_common, record_link,
};
use super::{AccountId, ContactId, CustomFields, Money, PipelineId};
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::{FieldType, Writable};
use crate::scope::{Actor, TenantId, UserId};
use crate::validate;

crate::record_kind! {
    /// The description of deals (see [`crate::kind`]).
    pub static DEAL for Deal {
        name: "deal",
        plural: "deals",
        about: "Opportunities moving through a pipeline's stages.",
        carries_activities: true,
        custom_fields: custom_fields,
    }
    fields {
        name: FieldType::Text, search;
        amount: FieldType::Money { minor: "amount_minor", currency: "currency" }, nullable;
        pipeline_id: FieldType::Ref(Kind::Pipeline), filter;
        stage: FieldType::Key, filter;
        expected_close_date: FieldType::Date, nullable;
        probability: FieldType::Int, nullable;
        account_id: FieldType::Ref(Kind::Account), nullable, filter;
        contact_id: FieldType::Ref(Kind::Contact), nullable, filter;
        owner_id: FieldType::Member, nullable, filter, owns;
        closed_at: FieldType::Time, nullable, write(Writable::Rule);
    }
}

/// Deal id.
pub type DealId = Id<Deal>;
/// Stage-change id.
pub type StageChangeId = Id<StageChange>;

/// A sales opportunity moving through a pipeline's stages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deal {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Deal>,
    /// What is being sold.
    pub name: String,
    /// Expected value.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub amount: Option<Money>,
    /// The pipeline the deal moves through.
    pub pipeline_id: PipelineId,
    /// The key of its current stage in that pipeline.
    pub stage: String,
    /// When it is expected to close.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expected_close_date: Option<NaiveDate>,
    /// Chance of winning, 0–100.
    #[cfg_attr(feature = "openapi", schema(required = true, minimum = 0, maximum = 100))]
    pub probability: Option<i32>,
    /// The buying account.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub account_id: Option<AccountId>,
    /// The main contact.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub contact_id: Option<ContactId>,
    /// The member responsible for the deal.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub owner_id: Option<UserId>,
    /// When it entered a won or lost stage; `None` while open.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub closed_at: Option<DateTime<Utc>>,
    /// Tenant-defined fields.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Input to create a deal.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NewDeal {
    pub name: String,
    #[serde(default)]
    pub amount: Option<Money>,
    /// Default: the tenant's default pipeline.
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
    /// Default: the pipeline's first stage.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub expected_close_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "integral_opt")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub probability: Option<i32>,
    #[serde(default)]
    pub account_id: Option<AccountId>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// Owner (default: the creator).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::CustomFieldsSchema))]
    pub custom_fields: CustomFields,
}

/// Changes to a deal. A new `stage` is a stage move: recorded in the stage history, and refused
/// once the deal is in a won or lost stage.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DealPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub amount: Option<Option<Money>>,
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub expected_close_date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "nullable_integral")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub probability: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    pub account_id: Option<Option<AccountId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<UserId>>,
    /// Replaces the whole custom-fields object.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::common::CustomFieldsSchema>))]
    pub custom_fields: Option<CustomFields>,
}

/// One move of a deal between stages: the deal's stage history, kept for reporting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageChange {
    /// Id.
    pub id: StageChangeId,
    /// Owning tenant.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The deal that moved.
    pub deal_id: DealId,
    /// Its pipeline after the move.
    pub pipeline_id: PipelineId,
    /// The stage it left; `None` when the deal was created.
    pub from_stage: Option<String>,
    /// The stage it entered.
    pub to_stage: String,
    /// Who moved it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

impl Record for Deal {
    type New = NewDeal;
    type Patch = DealPatch;
    record_common!(Deal);

    fn create(
        new: NewDeal,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        Ok(Deal {
            meta,
            name: new.name,
            amount: new.amount,
            // Nil and empty mean "default"; the service resolves them before validation.
            pipeline_id: new.pipeline_id.unwrap_or(Id::from_uuid(uuid::Uuid::nil())),
            stage: new.stage.unwrap_or_default(),
            expected_close_date: new.expected_close_date,
            probability: new.probability,
            account_id: new.account_id,
            contact_id: new.contact_id,
            owner_id: new.owner_id.or(creator),
            closed_at: None,
            custom_fields: new.custom_fields,
        })
    }

    fn apply(&mut self, p: DealPatch, _errors: &mut Vec<FieldError>) {
        patch_field(&mut self.name, p.name);
        patch_field(&mut self.amount, p.amount);
        patch_field(&mut self.pipeline_id, p.pipeline_id);
        patch_field(&mut self.stage, p.stage);
        patch_field(&mut self.expected_close_date, p.expected_close_date);
        patch_field(&mut self.probability, p.probability);
        patch_field(&mut self.account_id, p.account_id);
        patch_field(&mut self.contact_id, p.contact_id);
        patch_field(&mut self.owner_id, p.owner_id);
        patch_field(&mut self.custom_fields, p.custom_fields);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(money) = &self.amount {
            if !validate::is_currency(&money.currency) {
                errors.push(FieldError::new("amount.currency", "must be an ISO 4217 code such as EUR"));
            }
            if money.amount_minor < 0 {
                errors.push(FieldError::new("amount.amount_minor", "must not be negative"));
            }
        }
        if let Some(date) = &self.expected_close_date {
            validate::date("expected_close_date", date, errors);
        }
        if let Some(p) = self.probability {
            if !(0..=100).contains(&p) {
                errors.push(FieldError::new("probability", "must be between 0 and 100"));
            }
        }
        validate::custom_fields(&self.custom_fields, errors);
    }

    fn links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        owner_link(self.owner_id, &mut links);
        record_link("account_id", Kind::Account, self.account_id, &mut links);
        record_link("contact_id", Kind::Contact, self.contact_id, &mut links);
        links.push(Link::Stage { pipeline_id: self.pipeline_id, stage: self.stage.clone() });
        links
    }

    fn as_deal_mut(&mut self) -> Option<&mut Deal> {
        Some(self)
    }

    fn as_deal(&self) -> Option<&Deal> {
        Some(self)
    }
}
