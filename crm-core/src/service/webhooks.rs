//! Webhook endpoints through the service: created with a secret shown once, rotated with the
//! old secret still signing for a day. Reads, updates and deletes go through the generic record
//! services ([`Crm::get`], [`Crm::list`], [`Crm::update`], [`Crm::delete`] of [`Webhook`]).

use serde::Serialize;

use super::Crm;
use super::records::on_current;
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::kind::Stored;
use crate::model::{NewWebhook, Webhook, WebhookId};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::Entity;
use crate::webhook::WebhookSecret;

/// How long the secret before a rotation keeps signing, so receivers can switch without
/// dropping a delivery.
pub const PREVIOUS_SECRET_VALIDITY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A webhook endpoint with its signing secret, shown this once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: the key receivers verify signatures with. Not shown again.
    pub secret: String,
}

impl Crm {
    /// Creates a webhook endpoint (admins), created by the caller: deliveries carry only what
    /// the caller may read. Its secret is in the answer and nowhere else.
    pub async fn create_webhook(&self, scope: &Scope, new: NewWebhook) -> Result<WebhookWithSecret> {
        let webhook = self.create::<Webhook>(scope, new).await?;
        Ok(WebhookWithSecret { secret: webhook.secret.reveal(), webhook })
    }

    /// Gives the endpoint a new secret, returned this once; the old one signs too (a second
    /// signature) for [`PREVIOUS_SECRET_VALIDITY`]. With `expected_version`, only if the
    /// endpoint is still at that version.
    pub async fn rotate_webhook_secret(
        &self,
        scope: &Scope,
        id: WebhookId,
        expected_version: Option<i64>,
    ) -> Result<WebhookWithSecret> {
        self.authorize(scope, Action::Update, Resource::Webhook)?;
        on_current(expected_version, || async {
            let current = self.load::<Webhook>(scope, id).await?;
            let version = expected_version.unwrap_or(current.meta.version);
            if current.meta.version != version {
                return Err(Error::stale_version());
            }
            let mut draft = self.draft(scope);
            let validity = chrono::Duration::from_std(PREVIOUS_SECRET_VALIDITY).unwrap_or_default();
            let mut rotated = current.clone();
            rotated.previous_secret = Some(std::mem::replace(&mut rotated.secret, WebhookSecret::generate()));
            rotated.previous_secret_expires_at = Some(draft.now + validity);
            rotated.meta.version += 1;
            rotated.meta.updated_at = draft.now;
            let (before, after) = (current.to_row(), rotated.to_row());
            self.record_row_change(&mut draft, AuditAction::Updated, Some(&before), Some(&after));
            draft.update(Entity::Record(after), version);
            self.commit(draft).await?;
            Ok(WebhookWithSecret { secret: rotated.secret.reveal(), webhook: rotated })
        })
        .await
    }
}
