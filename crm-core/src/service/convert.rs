//! Lead conversion: a lead becomes a contact, optionally with an account and a deal, atomically.

use serde::{Deserialize, Serialize};

use super::Crm;
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::kind::Stored;
use crate::model::{Account, Contact, Deal, Lead, LeadId, LeadStatus, NewAccount, NewContact, NewDeal};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::Entity;

/// What to create besides the contact, and how the contact differs from the lead.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConvertLead {
    /// Fields for the contact where the lead's should not be used (e.g. a person's name for a
    /// lead that only had a company); each given field replaces the lead's.
    #[serde(default)]
    pub contact: Option<NewContact>,
    /// An account to create; the contact (and deal) are linked to it.
    #[serde(default)]
    pub account: Option<NewAccount>,
    /// A deal to create, linked to the contact and account.
    #[serde(default)]
    pub deal: Option<NewDeal>,
}

/// What a conversion created.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversion {
    /// The lead, now `converted`.
    pub lead: Lead,
    /// The new contact, carrying the lead's person fields and custom fields.
    pub contact: Contact,
    /// The new account, if asked for.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub account: Option<Account>,
    /// The new deal, if asked for.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub deal: Option<Deal>,
}

impl Crm {
    /// Converts a lead into a contact (plus an account and a deal when asked), in one
    /// transaction. A lead converts once: a second or concurrent conversion is `Conflict`.
    pub async fn convert_lead(
        &self,
        scope: &Scope,
        lead_id: LeadId,
        input: ConvertLead,
    ) -> Result<Conversion> {
        let grant = self.authorize(scope, Action::Update, Resource::Lead)?;
        self.authorize(scope, Action::Create, Resource::Contact)?;
        if input.account.is_some() {
            self.authorize(scope, Action::Create, Resource::Account)?;
        }
        if input.deal.is_some() {
            self.authorize(scope, Action::Create, Resource::Deal)?;
        }
        let lead = self.load::<Lead>(scope, lead_id).await?;
        if !grant.covers_any(scope.principal(), crate::model::Record::owners(&lead)) {
            return Err(Error::Forbidden);
        }
        if lead.status == LeadStatus::Converted {
            return Err(Error::guard("the lead is already converted"));
        }
        let mut draft = self.draft(scope);
        let account = match input.account {
            Some(new) => {
                Some(self.prepare_create::<Account>(&mut draft, new).await.map_err(nest("account"))?)
            }
            None => None,
        };
        let given = input.contact.unwrap_or_default();
        let new_contact = NewContact {
            first_name: given.first_name.or_else(|| lead.first_name.clone()),
            last_name: given.last_name.or_else(|| lead.last_name.clone()),
            email: given.email.or_else(|| lead.email.clone()),
            phone: given.phone.or_else(|| lead.phone.clone()),
            title: given.title.or_else(|| lead.title.clone()),
            account_id: given.account_id.or(account.as_ref().map(|a| a.meta.id)),
            owner_id: given.owner_id.or(lead.owner_id),
            custom_fields: if given.custom_fields.is_empty() {
                lead.custom_fields.clone()
            } else {
                given.custom_fields
            },
        };
        let contact =
            self.prepare_create::<Contact>(&mut draft, new_contact).await.map_err(nest("contact"))?;
        let deal = match input.deal {
            Some(mut new) => {
                new.account_id = new.account_id.or(account.as_ref().map(|a| a.meta.id));
                new.contact_id = new.contact_id.or(Some(contact.meta.id));
                new.owner_id = new.owner_id.or(lead.owner_id);
                Some(self.prepare_create::<Deal>(&mut draft, new).await.map_err(nest("deal"))?)
            }
            None => None,
        };
        let mut converted = lead.clone();
        converted.status = LeadStatus::Converted;
        converted.converted_contact_id = Some(contact.meta.id);
        converted.meta.version += 1;
        converted.meta.updated_at = draft.now;
        let (before, after) = (lead.to_row(), converted.to_row());
        self.record_row_change(&mut draft, AuditAction::Converted, Some(&before), Some(&after));
        draft.update(Entity::Record(after), lead.meta.version);
        self.commit(draft).await?;
        Ok(Conversion { lead: converted, contact, account, deal })
    }
}

/// Prefixes validation field names with the part of the input they came from.
fn nest(prefix: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Validation(fields) => Error::Validation(
            fields
                .into_iter()
                .map(|mut f| {
                    f.field = format!("{prefix}.{}", f.field);
                    f
                })
                .collect(),
        ),
        other => other,
    }
}
