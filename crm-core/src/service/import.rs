//! Bulk import: many records in few transactions, with per-row errors.

use serde::Serialize;

use super::Crm;
use crate::error::{Error, FieldError, Result};
use crate::model::Record;
use crate::policy::Action;
use crate::scope::Scope;

/// Rows per transaction in best-effort mode: large enough that commits are not the cost, small
/// enough that one failure (or a crash) leaves every earlier batch committed.
pub const IMPORT_BATCH: usize = 500;

/// What to do when some rows are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Import the valid rows (in batches), report the invalid ones.
    #[default]
    BestEffort,
    /// All or nothing: if any row is invalid, nothing is written; else everything commits in
    /// one transaction.
    Atomic,
}

/// The outcome of an import: what was created and which rows were refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport<R> {
    /// Records created, in input order.
    pub created: Vec<R>,
    /// Rows refused (0-based input index) with their field errors. In atomic mode a non-empty
    /// list means nothing was created.
    pub errors: Vec<RowError>,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    /// 0-based index of the row in the input.
    pub row: usize,
    /// Why.
    pub errors: Vec<FieldError>,
}

impl Crm {
    /// Creates many records of one kind, each validated and audited exactly like
    /// [`Crm::create`], in far fewer transactions.
    pub async fn import<R: Record>(
        &self,
        scope: &Scope,
        rows: Vec<R::New>,
        mode: ImportMode,
    ) -> Result<ImportReport<R>> {
        self.authorize(scope, Action::Create, R::DEF.resource)?;
        let mut created = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        let mut draft = self.draft(scope);
        let mut pending = Vec::new();
        for (row, new) in rows.into_iter().enumerate() {
            match self.prepare_create::<R>(&mut draft, new).await {
                Ok(record) => pending.push(record),
                Err(Error::Validation(fields)) => errors.push(RowError { row, errors: fields }),
                Err(other) => return Err(other),
            }
            // A refused row stages nothing (prepare_create validates before staging).
            if mode == ImportMode::BestEffort && pending.len() == IMPORT_BATCH {
                let mut full = std::mem::replace(&mut draft, self.draft(scope));
                draft.verified_links = std::mem::take(&mut full.verified_links);
                draft.pipelines = std::mem::take(&mut full.pipelines);
                self.commit(full).await?;
                created.append(&mut pending);
            }
        }
        if mode == ImportMode::Atomic && !errors.is_empty() {
            return Ok(ImportReport { created: Vec::new(), errors });
        }
        if !pending.is_empty() {
            self.commit(draft).await?;
            created.append(&mut pending);
        }
        Ok(ImportReport { created, errors })
    }
}
