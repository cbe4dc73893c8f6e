//! SQLite errors mapped to the core's meanings, in one place.

use crm_core::{Conflict, Error};
use rusqlite::ErrorCode;

/// Maps a driver error: constraint clashes become `Conflict`, a busy or locked database
/// `Unavailable`, anything else `Internal`. SQL text never reaches the message.
pub(crate) fn map(err: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(code, message) = &err {
        match code.code {
            ErrorCode::ConstraintViolation => {
                let message = message.as_deref().unwrap_or_default();
                if let Some(field) = unique_field(message) {
                    return Error::taken(field);
                }
                if message.starts_with("FOREIGN KEY constraint failed") {
                    return Error::Conflict(Conflict::Link);
                }
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return Error::Unavailable(Box::new(err));
            }
            _ => {}
        }
    }
    tracing::error!(error = %err, "sqlite error");
    Error::Internal(Box::new(err))
}

/// The input field whose value is taken, by the columns SQLite names in a uniqueness
/// violation (its only way to say which constraint failed).
fn unique_field(message: &str) -> Option<&'static str> {
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    Some(match columns {
        "tenants.slug" => "slug",
        "users.email" => "email",
        "memberships.tenant_id, memberships.user_id" => "user_id",
        _ => "id",
    })
}

/// A failed blocking task (panic or cancellation) is an internal error.
pub(crate) fn join(err: tokio::task::JoinError) -> Error {
    tracing::error!(error = %err, "sqlite worker task failed");
    Error::internal(err)
}
