//! Postgres errors mapped to the core's meanings, in one place.

use crm_core::{Conflict, Error};

/// Maps a driver error. Constraint clashes become `Conflict` (named by constraint, never by
/// SQL text); connection trouble and serialization failures `Unavailable`; the rest `Internal`.
pub(crate) fn map(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                "23505" => return Error::taken(unique_field(db.constraint())),
                "23503" => return Error::Conflict(Conflict::Link),
                "40001" | "40P01" | "55P03" | "57P01" | "53300" => return Error::Unavailable(Box::new(err)),
                _ => {}
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => return Error::Unavailable(Box::new(err)),
        _ => {}
    }
    tracing::error!(error = %err, "postgres error");
    Error::Internal(Box::new(err))
}

/// The input field whose value is taken, by the violated constraint's name.
fn unique_field(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("tenants_slug_key") => "slug",
        Some("users_email_key") => "email",
        Some("memberships_pkey") => "user_id",
        _ => "id",
    }
}
