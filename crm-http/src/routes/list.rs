//! Query strings of list endpoints → [`ListRequest`]. Unknown parameters are refused (422),
//! like unknown body fields.

use chrono::{DateTime, Utc};
use crm_core::model::{ActivityKind, ActivityTarget, Kind, LeadStatus};
use crm_core::{Error, FieldError, Filter, ListRequest};
use uuid::Uuid;

use crate::error::ApiError;

/// Parses `limit`, `cursor`, `q`, the exact filters and `cf.<name>=<value>` (a JSON scalar, else
/// a string: `cf.seats=10` matches the number 10, `cf.seats="10"` the string).
pub fn parse(pairs: Vec<(String, String)>) -> Result<ListRequest, ApiError> {
    let mut request = ListRequest::new();
    let mut filter = Filter::default();
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let mut bad = |message: &str| errors.push(FieldError::new(key.clone(), message));
        match key.as_str() {
            "limit" => match value.parse() {
                Ok(n) => request.limit = Some(n),
                Err(_) => bad("must be a number between 1 and 200"),
            },
            "cursor" => request.cursor = Some(value),
            "q" => request.q = Some(value),
            "status" => match LeadStatus::parse(&value) {
                Some(s) => filter.status = Some(s),
                None => bad("is not a lead status"),
            },
            "kind" => match ActivityKind::parse(&value) {
                Some(k) => filter.activity_kind = Some(k),
                None => bad("is not an activity kind"),
            },
            "stage" => filter.stage = Some(value),
            "owner_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.owner_id = Some(u.into()))
            }
            "pipeline_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.pipeline_id = Some(u.into()))
            }
            "account_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.account_id = Some(u.into()))
            }
            "contact_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.contact_id = Some(u.into()))
            }
            "lead_id" | "deal_id" => {
                let kind = if key == "lead_id" { Kind::Lead } else { Kind::Deal };
                match id(&value) {
                    Some(u) => filter.target = ActivityTarget::from_parts(kind, u),
                    None => bad("is not an id"),
                }
            }
            "created_after" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_after = Some(t)),
            "created_before" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_before = Some(t)),
            _ => match key.strip_prefix("cf.") {
                Some(name) => {
                    let parsed = serde_json::from_str::<serde_json::Value>(&value)
                        .ok()
                        .filter(|v| !v.is_object() && !v.is_array())
                        .unwrap_or(serde_json::Value::String(value.clone()));
                    filter.custom_fields.push((name.to_owned(), parsed));
                }
                None => bad("is not a parameter of this list"),
            },
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors).into());
    }
    Ok(request.filter(filter))
}

fn id(value: &str) -> Option<Uuid> {
    Uuid::try_parse(value).ok()
}

fn time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc))
}
