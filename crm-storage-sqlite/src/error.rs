//! SQLite errors mapped to the core's meanings, in one place.

use crm_core::Error;
use rusqlite::ErrorCode;

/// Maps a driver error: constraint clashes become `Conflict`, a busy or locked database
/// `Unavailable`, anything else `Internal`. SQL text never reaches the message.
pub(crate) fn map(err: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(code, message) = &err {
        match code.code {
            ErrorCode::ConstraintViolation => {
                let message = message.as_deref().unwrap_or_default();
                if let Some(conflict) = unique_conflict(message) {
                    return Error::Conflict(conflict.into());
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

/// The user-facing meaning of a uniqueness violation, by the constraint SQLite names.
fn unique_conflict(message: &str) -> Option<&'static str> {
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    Some(match columns {
        "tenants.slug" => "slug: this slug is already taken",
        "users.email" => "email: a user with this e-mail already exists",
        "memberships.tenant_id, memberships.user_id" => "this user is already a member",
        _ => "a record with this id already exists",
    })
}

/// A failed blocking task (panic or cancellation) is an internal error.
pub(crate) fn join(err: tokio::task::JoinError) -> Error {
    tracing::error!(error = %err, "sqlite worker task failed");
    Error::internal(err)
}
