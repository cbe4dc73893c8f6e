//! RFC 9457 problem details for every core error, so clients get one error shape.

use crm_core::Error;
use serde::Serialize;

/// An `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (stable; clients may switch on it).
    #[serde(rename = "type")]
    #[schema(example = "https://crm.dev/problems/validation")]
    pub kind: String,
    /// A short, fixed summary of the kind.
    pub title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What happened in this case, safe to show to the caller (never SQL or internals).
    pub detail: String,
    /// The request id, so a user's report can be matched with the server's logs. The router
    /// always fills it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, value_type = String)]
    pub request_id: Option<String>,
    /// For validation problems: each invalid field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub errors: Vec<ProblemField>,
}

/// One invalid field in a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// The field, as named in the request.
    pub field: String,
    /// Why it is invalid.
    pub message: String,
}

impl Problem {
    /// The media type of a problem body.
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    /// Maps a core error. Internal and storage errors keep their details out of the body.
    pub fn from_error(error: &Error, request_id: Option<&str>) -> Problem {
        let (status, slug, title, detail) = match error {
            Error::NotFound => (404, "not-found", "Not found", "No such record.".to_owned()),
            Error::Validation(_) => {
                (422, "validation", "Invalid input", "Some fields are invalid.".to_owned())
            }
            Error::Conflict(conflict) => (409, "conflict", "Conflict", conflict.to_string()),
            Error::Forbidden => (403, "forbidden", "Forbidden", "You may not do this.".to_owned()),
            Error::Unauthenticated => {
                (401, "unauthenticated", "Not authenticated", "Sign in and try again.".to_owned())
            }
            Error::RateLimited { retry_after_secs } => {
                (429, "rate-limited", "Too many requests", format!("Retry after {retry_after_secs} seconds."))
            }
            Error::Unavailable(_) => {
                (503, "unavailable", "Service unavailable", "Try again shortly.".to_owned())
            }
            _ => (500, "internal", "Internal error", "Something went wrong on our side.".to_owned()),
        };
        Problem {
            kind: format!("https://crm.dev/problems/{slug}"),
            title: title.to_owned(),
            status,
            detail,
            request_id: request_id.map(str::to_owned),
            errors: error
                .field_errors()
                .iter()
                .map(|f| ProblemField { field: f.field.clone(), message: f.message.clone() })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields_and_internal_hides_details() {
        let p = Problem::from_error(&Error::invalid("email", "must be an e-mail"), Some("r1"));
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "email"));
        let body = serde_json::to_value(&p).unwrap();
        assert_eq!(body["request_id"], "r1");
        let p = Problem::from_error(&Error::internal("syntax error near SELECT"), None);
        assert_eq!(p.status, 500);
        assert!(!serde_json::to_string(&p).unwrap().contains("SELECT"));
    }
}
