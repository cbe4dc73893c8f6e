//! One error type for every layer: adapters map *into* it, HTTP maps *out of* it.

use std::fmt;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error source kept for logs; never shown to callers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, by meaning rather than by source.
///
/// The set of kinds is small on purpose: each maps to exactly one HTTP status and one way for a
/// caller to react. Storage details live in the boxed `source`, which is logged, never displayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record does not exist, is deleted, or belongs to another tenant — indistinguishably.
    #[error("not found")]
    NotFound,
    /// The input is invalid; every offending field is named.
    #[error("validation failed: {}", FieldErrors(.0))]
    Validation(Vec<FieldError>),
    /// The write collides with the stored state; [`Conflict`] says with what.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The principal is known but not allowed to do this.
    #[error("forbidden")]
    Forbidden,
    /// No valid identity was presented.
    #[error("not authenticated")]
    Unauthenticated,
    /// Too many attempts; retry after the given number of seconds.
    #[error("rate limited; retry after {retry_after_secs}s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The store could not be reached or is busy; the operation may be retried.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// A bug or a broken invariant; details are in the source and the logs only.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    /// A validation error for a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// An internal error from any source (logged by the caller that surfaces it).
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Error::Internal(source.into())
    }

    /// A stale `version`: the record changed since the caller read it.
    pub fn stale_version() -> Self {
        Error::Conflict(Conflict::StaleVersion)
    }

    /// A taken unique value, named by its input field.
    pub fn taken(field: impl Into<String>) -> Self {
        Error::Conflict(Conflict::Unique { field: field.into() })
    }

    /// A rule over the stored state that forbids the change, in words.
    pub fn guard(message: impl Into<String>) -> Self {
        Error::Conflict(Conflict::Guard(message.into()))
    }

    /// Whether this is a stale-version conflict: the one a caller resolves by reloading.
    pub fn is_stale_version(&self) -> bool {
        matches!(self, Error::Conflict(Conflict::StaleVersion))
    }

    /// The field errors, if this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(fields) => fields,
            _ => &[],
        }
    }
}

/// What a write collided with. Stores map their constraint violations to these by constraint
/// name (Postgres) or by the columns the error names (SQLite), so no layer above them reads
/// an error's text; each variant is one way for a caller to react.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// The record changed since the caller read its version: reload and retry.
    StaleVersion,
    /// A value that must be unique is taken; `field` names it as the input does (`slug`,
    /// `email`, `user_id` for a membership, `id`).
    Unique {
        /// The input field holding the taken value.
        field: String,
    },
    /// A rule over the stored state forbids the change (the tenant's last owner, a stage that
    /// still holds deals, a lead already converted); the message says which, in words.
    Guard(String),
    /// A record the write links to stopped existing after it was checked.
    Link,
    /// Another request with the same idempotency key has not finished: retry later.
    InFlight,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::StaleVersion => {
                f.write_str("the record was changed by someone else; reload it and retry")
            }
            Conflict::Unique { field } => {
                let what = match field.rsplit('.').next().unwrap_or_default() {
                    "slug" => "this slug is already taken",
                    "email" => "an account with this e-mail already exists; sign in instead",
                    "user_id" => "this user is already a member",
                    "id" => "a record with this id already exists",
                    _ => "this value is already taken",
                };
                write!(f, "{field}: {what}")
            }
            Conflict::Guard(message) => f.write_str(message),
            Conflict::Link => f.write_str("a linked record no longer exists"),
            Conflict::InFlight => {
                f.write_str("a request with this Idempotency-Key is still in progress; retry later")
            }
        }
    }
}

/// One invalid field and why, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's name as it appears in the input (`email`, `amount.currency`, `custom_fields.x`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

struct FieldErrors<'a>(&'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
};
