//! Create, get, update, delete and list for every record type, through one generic path.

use super::Crm;
use super::draft::Draft;
use super::list::{self, ListRequest, Page};
use crate::audit::{AuditAction, Changes};
use crate::error::{Error, FieldError, Result};
use crate::id::Id;
use crate::kind::{ColumnSource, KindDef, RowMeta};
use crate::model::{Link, Record};
use crate::policy::{Action, Grant, RecordScope};
use crate::scope::Scope;
use crate::store::{DecodedPage, Entity, PageSink};

impl Crm {
    /// Creates a record (lead, contact, account, deal or activity) owned by the caller unless
    /// the input names an owner.
    pub async fn create<R: Record>(&self, scope: &Scope, new: R::New) -> Result<R> {
        self.authorize(scope, Action::Create, R::DEF.resource)?;
        let mut draft = self.draft(scope);
        let record = self.prepare_create::<R>(&mut draft, new).await?;
        self.commit(draft).await?;
        Ok(record)
    }

    /// A live record by id. Another tenant's id, a deleted record, and a record outside the
    /// caller's read scope are all `NotFound`.
    pub async fn get<R: Record>(&self, scope: &Scope, id: Id<R>) -> Result<R> {
        let grant = self.authorize(scope, Action::Read, R::DEF.resource)?;
        let record = self.load::<R>(scope, id).await?;
        if !grant.covers_any(scope.principal(), record.owners()) {
            return Err(Error::NotFound);
        }
        Ok(record)
    }

    /// Applies `patch` to the record: with `expected_version`, only if it is still at that
    /// version (else a [`Conflict::StaleVersion`](crate::Conflict::StaleVersion)); without, to
    /// whatever version is current when it commits (invariant 6).
    pub async fn update<R: Record>(
        &self,
        scope: &Scope,
        id: Id<R>,
        expected_version: Option<i64>,
        patch: R::Patch,
    ) -> Result<R> {
        let grant = self.authorize(scope, Action::Update, R::DEF.resource)?;
        on_current(expected_version, || async {
            let current = self.load::<R>(scope, id).await?;
            check_writable(scope, &grant, &current, expected_version.unwrap_or(current.meta().version))?;
            let mut draft = self.draft(scope);
            let updated = self.prepare_update(&mut draft, current.clone(), patch.clone()).await?;
            if draft.changes.writes.is_empty() {
                return Ok(current); // nothing changed: no new version, no audit entry
            }
            self.commit(draft).await?;
            Ok(updated)
        })
        .await
    }

    /// Soft-deletes the record; with `expected_version`, only if it is still at that version.
    pub async fn delete<R: Record>(
        &self,
        scope: &Scope,
        id: Id<R>,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let grant = self.authorize(scope, Action::Delete, R::DEF.resource)?;
        let current = self.load::<R>(scope, id).await?;
        let version = expected_version.unwrap_or(current.meta().version);
        check_writable(scope, &grant, &current, version)?;
        let mut draft = self.draft(scope);
        let mut deleted = current;
        let meta = deleted.meta_mut();
        meta.version += 1;
        meta.updated_at = draft.now;
        meta.deleted_at = Some(draft.now);
        // A deletion's audit entry keeps no field values: the record stays readable to admins
        // through its earlier entries, and erasure can later drop those without touching this.
        let (changes, payload) = (Changes::default(), serde_json::Value::Null);
        self.push_change(&mut draft, AuditAction::Deleted, R::DEF.kind, id.uuid(), changes, payload);
        draft.update(deleted.to_entity(), version);
        self.commit(draft).await
    }

    /// One page of live records in the request's order (newest first unless it names a
    /// `sort`), within the caller's read scope.
    pub async fn list<R: Record>(&self, scope: &Scope, request: ListRequest) -> Result<Page<R>> {
        let grant = self.authorize(scope, Action::Read, R::DEF.resource)?;
        let Some(mut query) = list::to_query(R::DEF.kind, request, self.inner.clock.now())? else {
            return Ok(Page { data: Vec::new(), next_cursor: None });
        };
        if grant.record_scope == RecordScope::Own {
            query.filter.owned_by = scope.user_id();
        }
        let limit = query.limit;
        query.limit += 1;
        let page = self.store_ref().list_into(scope, &query, decode_page::<R>).await?;
        let records = *page
            .downcast::<Vec<R>>()
            .map_err(|_| Error::internal("a store decoded a page into another type"))?;
        Ok(match &query.sort {
            Some(sort) => list::page_sorted(records, limit, sort),
            None => list::page_by_id(records, limit, |r| r.meta().id.uuid()),
        })
    }

    /// Loads a live record of this tenant or fails with `NotFound`.
    pub(crate) async fn load<R: Record>(&self, scope: &Scope, id: Id<R>) -> Result<R> {
        let entity = self.store_ref().get(scope, R::DEF.kind, id.uuid()).await?;
        entity.map(R::from_entity).transpose()?.ok_or(Error::NotFound)
    }

    /// Builds, validates and stages a new record in `draft`.
    pub(crate) async fn prepare_create<R: Record>(&self, draft: &mut Draft, new: R::New) -> Result<R> {
        let meta = self.new_meta(draft);
        let mut record = R::create(new, meta, draft.scope.user_id()).map_err(Error::Validation)?;
        if R::DEF.fields.iter().any(|f| !f.rule_values.is_empty()) {
            let errors = record.to_row().rule_held();
            if !errors.is_empty() {
                return Err(Error::Validation(errors));
            }
        }
        if let Some(deal) = record.as_deal_mut() {
            self.resolve_pipeline_defaults(draft, deal).await?;
        }
        self.check_record(draft, &record, &[]).await?;
        let stage_change = match record.as_deal_mut() {
            Some(deal) => Some(self.enter_stage(draft, deal, None).await?),
            None => None,
        };
        let row = record.to_row();
        self.record_row_change(draft, AuditAction::Created, None, Some(&row));
        self.push_implied_events(draft, R::implied_events(None, &record), &row);
        draft.insert(Entity::Record(row));
        if let Some(change) = stage_change {
            draft.insert(Entity::StageChange(change));
        }
        Ok(record)
    }

    /// Applies, validates and stages a patch of `current` in `draft`.
    pub(crate) async fn prepare_update<R: Record>(
        &self,
        draft: &mut Draft,
        current: R,
        patch: R::Patch,
    ) -> Result<R> {
        let old_links = current.links();
        let mut updated = current.clone();
        updated.meta_mut().updated_at = draft.now;
        let mut errors = Vec::new();
        updated.apply(patch, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        self.check_record(draft, &updated, &old_links).await?;
        let mut action = AuditAction::Updated;
        let mut stage_change = None;
        if let Some(deal) = updated.as_deal_mut() {
            let old = current.as_deal();
            if old.is_some_and(|o| o.stage != deal.stage || o.pipeline_id != deal.pipeline_id) {
                stage_change = Some(self.enter_stage(draft, deal, old).await?);
                action = AuditAction::StageChanged;
            }
        }
        let version = current.meta().version;
        let meta = updated.meta_mut();
        meta.version = version + 1;
        meta.updated_at = draft.now;
        let (before, after) = (current.to_row(), updated.to_row());
        let changes = Changes::between_rows(Some(&before), Some(&after));
        if stage_change.is_none() && changes.is_empty() {
            return Ok(current);
        }
        let (id, payload) = (after.meta.id, after.to_json());
        self.push_change(draft, action, R::DEF.kind, id, changes, payload);
        self.push_implied_events(draft, R::implied_events(Some(&current), &updated), &after);
        draft.update(Entity::Record(after), version);
        if let Some(change) = stage_change {
            draft.insert(Entity::StageChange(change));
        }
        Ok(updated)
    }

    /// Validates a record's fields, then checks that every link it gained points at a live
    /// record (or member, or stage) of this tenant.
    async fn check_record<R: Record>(&self, draft: &mut Draft, record: &R, unchanged: &[Link]) -> Result<()> {
        let mut errors = Vec::new();
        crate::kind::text::check(&record.to_row(), &mut errors);
        record.validate(&mut errors);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        for link in record.links() {
            if unchanged.contains(&link) || draft.stages(&link) || draft.verified_links.contains(&link) {
                continue;
            }
            match self.check_link(draft, &link).await? {
                Some(error) => errors.push(error),
                None => {
                    draft.verified_links.insert(link);
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }

    async fn check_link(&self, draft: &mut Draft, link: &Link) -> Result<Option<FieldError>> {
        let store = self.store_ref();
        let scope = &draft.scope;
        Ok(match link {
            Link::Record { field, kind, id } => {
                let found = store.get(scope, *kind, *id).await?.is_some();
                (!found).then(|| FieldError::new(*field, format!("no {} with this id", kind.as_str())))
            }
            Link::Member { field, user_id } => {
                let found = store.membership(scope, *user_id).await?.is_some();
                (!found).then(|| FieldError::new(*field, "is not a member of this tenant"))
            }
            Link::Stage { pipeline_id, stage } => match self.draft_pipeline(draft, *pipeline_id).await? {
                None => Some(FieldError::new("pipeline_id", "no pipeline with this id")),
                Some(p) if p.stage(stage).is_none() => {
                    Some(FieldError::new("stage", format!("is not a stage of pipeline \"{}\"", p.name)))
                }
                Some(_) => None,
            },
        })
    }
}

/// Builds a page of `R`s from rows (see [`crate::store::RecordStore::list_into`]).
struct Records<R>(Vec<R>);

impl<R: Record> PageSink for Records<R> {
    fn row(&mut self, def: &'static KindDef, meta: RowMeta, values: &mut dyn ColumnSource) -> Result<()> {
        if def.kind != R::DEF.kind {
            return Err(Error::internal(format!("a {} row in a list of {}", def.name, R::DEF.plural)));
        }
        self.0.push(R::read(meta, values)?);
        Ok(())
    }

    fn finish(self: Box<Self>) -> DecodedPage {
        Box::new(self.0)
    }
}

fn decode_page<R: Record>() -> Box<dyn PageSink> {
    Box::new(Records::<R>(Vec::with_capacity(crate::service::list::DEFAULT_LIMIT as usize + 1)))
}

/// How often a write that states no version is tried again after losing a race to another
/// writer of the same record, before the conflict is the caller's.
const RETRIES_ON_CURRENT: usize = 4;

/// Runs a read-then-write attempt. Without an expected version the write applies to whatever
/// is current, so losing a race (a stale version at commit) reads again and retries; with one,
/// the stale version is the caller's answer.
pub(crate) async fn on_current<T, F, Fut>(expected_version: Option<i64>, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if expected_version.is_none() && e.is_stale_version() && retries < RETRIES_ON_CURRENT => {
                retries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Refuses writes outside the grant's record scope and writes based on a stale read.
fn check_writable<R: Record>(scope: &Scope, grant: &Grant, current: &R, expected_version: i64) -> Result<()> {
    if !grant.covers_any(scope.principal(), current.owners()) {
        return Err(Error::Forbidden);
    }
    if current.meta().version != expected_version {
        return Err(Error::stale_version());
    }
    Ok(())
}
