use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Link, Record, RecordMeta, nullable, patch_field};
use crate::error::{FieldError, Result};
use crate::id::Id;
use crate::kind::{ColumnSource, Columns, FieldType, Value, Writable};
use crate::scope::UserId;
use crate::webhook::{EventFilter, WebhookSecret};

crate::record_kind! {
    /// The description of webhook endpoints (see [`crate::kind`]): where a tenant's events are
    /// delivered, signed with a secret that never leaves the store but in a delivery's
    /// signature and, once, to the admin who made or rotated it.
    pub static WEBHOOK for Webhook {
        name: "webhook",
        plural: "webhooks",
        about: "Endpoints the tenant's events are delivered to, signed (admins only).",
        carries_activities: false,
    }
    fields {
        url: FieldType::Text;
        event_types: FieldType::Json;
        description: FieldType::Text, nullable;
        enabled: FieldType::Bool;
        disabled_reason: FieldType::Text, nullable, write(Writable::Rule);
        failing_since: FieldType::Time, nullable, write(Writable::Rule);
        created_by: FieldType::Member, nullable, write(Writable::Rule);
        secret: FieldType::Text, secret, write(Writable::Rule);
        previous_secret: FieldType::Text, nullable, secret, write(Writable::Rule);
        previous_secret_expires_at: FieldType::Time, nullable, write(Writable::Rule);
    }
}

/// Webhook endpoint id.
pub type WebhookId = Id<Webhook>;

/// The most event-type filters one endpoint holds.
pub const MAX_EVENT_TYPES: usize = 50;
/// The longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;

/// An endpoint a tenant's events are delivered to. Its secrets are skipped by serde: they
/// are shown once, by [`crate::Crm::create_webhook`] and [`crate::Crm::rotate_webhook_secret`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Webhook>,
    /// Where deliveries are POSTed (`https://…`).
    pub url: String,
    /// Which events it receives: `deal.stage_changed`, `deal.*` or `*`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub event_types: Vec<EventFilter>,
    /// What it is for.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub description: Option<String>,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Why delivery stopped, when the endpoint was disabled by its failures (410, or 5 days
    /// failing) rather than by an admin.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed; cleared by a success.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub failing_since: Option<DateTime<Utc>>,
    /// The member who created it: deliveries carry only what they may read.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub created_by: Option<UserId>,
    /// The signing secret.
    #[serde(skip)]
    pub secret: WebhookSecret,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    #[serde(skip)]
    pub previous_secret: Option<WebhookSecret>,
    /// Until when the previous secret signs too (24 h after a rotation).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl Webhook {
    /// The secrets a delivery at `now` is signed with: the current one, and the previous one
    /// while it is still valid.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let previous = match (&self.previous_secret, self.previous_secret_expires_at) {
            (Some(secret), Some(until)) if now < until => Some(secret),
            _ => None,
        };
        std::iter::once(&self.secret).chain(previous).collect()
    }

    /// Whether events of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|f| f.matches(event_type))
    }
}

/// Input to create a webhook endpoint.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries go: an `http` or `https` URL without credentials.
    pub url: String,
    /// At least one event type (`deal.stage_changed`), prefix (`deal.*`) or `*`.
    pub event_types: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to a webhook endpoint. Enabling it again clears why it was disabled.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Reads event-type filters, each error naming its place (`event_types[2]`).
fn event_filters(texts: &[String], errors: &mut Vec<FieldError>) -> Vec<EventFilter> {
    if texts.is_empty() || texts.len() > MAX_EVENT_TYPES {
        errors.push(FieldError::new("event_types", format!("must hold 1 to {MAX_EVENT_TYPES} event types")));
    }
    let mut filters = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match EventFilter::parse(&format!("event_types[{i}]"), text) {
            Ok(filter) if !filters.contains(&filter) => filters.push(filter),
            Ok(_) => {}
            Err(error) => errors.extend_from_slice(error.field_errors()),
        }
    }
    filters
}

/// Checks an endpoint URL: absolute `http` or `https` with a host, no credentials, no fragment.
/// Where it may point (no private addresses) is the sender's to check, at each delivery: a
/// name's addresses change.
fn check_url(url: &str, errors: &mut Vec<FieldError>) {
    let problem = match url::Url::parse(url) {
        _ if url.len() > MAX_URL_LEN => Some(format!("must be at most {MAX_URL_LEN} characters")),
        Err(_) => Some("must be an absolute http or https URL".to_owned()),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() => {
            Some("must be an absolute http or https URL".to_owned())
        }
        Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            Some("must not carry credentials".to_owned())
        }
        Ok(parsed) if parsed.fragment().is_some() => Some("must not carry a fragment".to_owned()),
        Ok(_) => None,
    };
    if let Some(message) = problem {
        errors.push(FieldError::new("url", message));
    }
}

impl Record for Webhook {
    type New = NewWebhook;
    type Patch = WebhookPatch;

    fn meta(&self) -> &RecordMeta<Self> {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut RecordMeta<Self> {
        &mut self.meta
    }

    /// No member owns an endpoint: it is the tenant's admins'.
    fn owner_id(&self) -> Option<UserId> {
        None
    }

    fn create(
        new: NewWebhook,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_url(&new.url, &mut errors);
        let event_types = event_filters(&new.event_types, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Webhook {
            meta,
            url: new.url,
            event_types,
            description: new.description,
            enabled: new.enabled.unwrap_or(true),
            disabled_reason: None,
            failing_since: None,
            created_by: creator,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            previous_secret_expires_at: None,
        })
    }

    fn apply(&mut self, p: WebhookPatch, errors: &mut Vec<FieldError>) {
        if let Some(texts) = p.event_types {
            self.event_types = event_filters(&texts, errors);
        }
        if p.enabled == Some(true) {
            self.disabled_reason = None;
            self.failing_since = None;
        }
        patch_field(&mut self.url, p.url);
        patch_field(&mut self.description, p.description);
        patch_field(&mut self.enabled, p.enabled);
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_url(&self.url, errors);
    }

    fn links(&self) -> Vec<Link> {
        self.created_by.map(|user_id| Link::Member { field: "created_by", user_id }).into_iter().collect()
    }
}

/// Event-type filters as one JSON column: an array of the filters as written.
impl Columns for Vec<EventFilter> {
    fn put(&self, out: &mut Vec<Value>) {
        let texts = self.iter().map(|f| serde_json::Value::from(f.as_str())).collect();
        out.push(Value::Json(serde_json::Value::Array(texts)));
    }

    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        let Value::Json(serde_json::Value::Array(items)) = values.next_value()? else {
            return Err(crate::Error::internal("expected event types in a row"));
        };
        items
            .iter()
            .map(|item| {
                let text = item.as_str().unwrap_or_default();
                EventFilter::parse("event_types", text)
                    .map_err(|_| crate::Error::internal("a stored event type does not parse"))
            })
            .collect()
    }
}

/// A secret as one text column, in the form its owner was shown (`whsec_…`).
impl Columns for WebhookSecret {
    fn put(&self, out: &mut Vec<Value>) {
        out.push(Value::Text(Cow::Owned(self.reveal())));
    }

    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        match values.next_value()? {
            Value::Text(text) => WebhookSecret::parse(&text)
                .map_err(|_| crate::Error::internal("a stored webhook secret does not parse")),
            _ => Err(crate::Error::internal("expected a webhook secret in a row")),
        }
    }
}

impl Columns for Option<WebhookSecret> {
    fn put(&self, out: &mut Vec<Value>) {
        match self {
            Some(secret) => secret.put(out),
            None => out.push(Value::Null),
        }
    }

    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        match values.next_value()? {
            Value::Null => Ok(None),
            Value::Text(text) => WebhookSecret::parse(&text)
                .map(Some)
                .map_err(|_| crate::Error::internal("a stored webhook secret does not parse")),
            _ => Err(crate::Error::internal("expected a webhook secret in a row")),
        }
    }
}
