//! Pipelines and deal stages: defaults, moves, terminal stages and the stage history.

use super::Crm;
use super::draft::Draft;
use super::list::MAX_LIMIT;
use super::records::on_current;
use crate::audit::AuditAction;
use crate::error::{Error, FieldError, Result};
use crate::kind::Stored;
use crate::model::{
    Deal, DealId, DealPatch, Kind, NewPipeline, Pipeline, PipelineId, PipelinePatch, StageChange,
};
use crate::policy::{Action, Resource};
use crate::scope::Scope;
use crate::store::{Entity, Filter, ListQuery};

impl Crm {
    /// Moves a deal to another stage of its pipeline (recorded in its stage history). Deals in a
    /// won or lost stage do not move.
    pub async fn move_deal_to_stage(
        &self,
        scope: &Scope,
        deal_id: DealId,
        expected_version: Option<i64>,
        stage: impl Into<String>,
    ) -> Result<Deal> {
        let patch = DealPatch { stage: Some(stage.into()), ..DealPatch::default() };
        self.update(scope, deal_id, expected_version, patch).await
    }

    /// A deal's stage history, oldest first.
    pub async fn stage_history(&self, scope: &Scope, deal_id: DealId) -> Result<Vec<StageChange>> {
        self.get(scope, deal_id).await?;
        self.store_ref().stage_history(scope, deal_id).await
    }

    /// Creates a pipeline (admins). The tenant's first pipeline is its default.
    pub async fn create_pipeline(&self, scope: &Scope, new: NewPipeline) -> Result<Pipeline> {
        self.authorize(scope, Action::Create, Resource::Pipeline)?;
        let is_default = self.all_pipelines(scope).await?.is_empty();
        let mut draft = self.draft(scope);
        let pipeline = self.prepare_pipeline(&mut draft, new, is_default)?;
        self.commit(draft).await?;
        Ok(pipeline)
    }

    /// Renames a pipeline or replaces its stages (admins): with `expected_version`, only if it
    /// is still at that version; without, to the current one. A stage that live deals are in
    /// cannot be removed (`Conflict`: move the deals first).
    pub async fn update_pipeline(
        &self,
        scope: &Scope,
        id: PipelineId,
        expected_version: Option<i64>,
        patch: PipelinePatch,
    ) -> Result<Pipeline> {
        self.authorize(scope, Action::Update, Resource::Pipeline)?;
        on_current(expected_version, || self.apply_pipeline_patch(scope, id, expected_version, patch.clone()))
            .await
    }

    async fn apply_pipeline_patch(
        &self,
        scope: &Scope,
        id: PipelineId,
        expected_version: Option<i64>,
        patch: PipelinePatch,
    ) -> Result<Pipeline> {
        let current = self.pipeline_of(scope, id).await?.ok_or(Error::NotFound)?;
        let expected_version = expected_version.unwrap_or(current.meta.version);
        if current.meta.version != expected_version {
            return Err(Error::stale_version());
        }
        let candidate = NewPipeline {
            name: patch.name.unwrap_or_else(|| current.name.clone()),
            stages: patch.stages.unwrap_or_else(|| current.stages.clone()),
        };
        let errors = candidate.validate();
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        for removed in current.stages.iter().filter(|s| candidate.stages.iter().all(|c| c.key != s.key)) {
            let filter =
                Filter { pipeline_id: Some(id), stage: Some(removed.key.clone()), ..Filter::default() };
            let query =
                ListQuery { kind: Kind::Deal, filter, search: Vec::new(), limit: 1, after: None, sort: None };
            if !self.store_ref().list(scope, &query).await?.is_empty() {
                return Err(Error::guard(format!(
                    "stages: stage \"{}\" still holds deals; move them to another stage first",
                    removed.key
                )));
            }
        }
        let mut draft = self.draft(scope);
        let mut updated = current.clone();
        updated.name = candidate.name;
        updated.stages = candidate.stages;
        if updated == current {
            return Ok(current);
        }
        updated.meta.version += 1;
        updated.meta.updated_at = draft.now;
        let (before, after) = (current.to_row(), updated.to_row());
        self.record_row_change(&mut draft, AuditAction::Updated, Some(&before), Some(&after));
        draft.update(Entity::Record(after), expected_version);
        self.commit(draft).await?;
        Ok(updated)
    }

    /// The tenant's pipelines, oldest first.
    pub async fn pipelines(&self, scope: &Scope) -> Result<Vec<Pipeline>> {
        self.authorize(scope, Action::Read, Resource::Pipeline)?;
        self.all_pipelines(scope).await
    }

    /// Every pipeline of the tenant, oldest first, read through the generic list page by page.
    async fn all_pipelines(&self, scope: &Scope) -> Result<Vec<Pipeline>> {
        let mut query = ListQuery::new(Kind::Pipeline);
        query.limit = MAX_LIMIT;
        let mut pipelines = Vec::new();
        loop {
            let page = self.store_ref().list(scope, &query).await?;
            let last_page = page.len() < query.limit as usize;
            for entity in page {
                let pipeline = Pipeline::from_entity(entity)?;
                query.after = Some(pipeline.meta.id.uuid());
                pipelines.push(pipeline);
            }
            if last_page {
                break;
            }
        }
        pipelines.sort_by_key(|p| (p.meta.created_at, p.meta.id.uuid()));
        Ok(pipelines)
    }

    /// One pipeline.
    pub async fn pipeline(&self, scope: &Scope, id: PipelineId) -> Result<Pipeline> {
        self.authorize(scope, Action::Read, Resource::Pipeline)?;
        self.pipeline_of(scope, id).await?.ok_or(Error::NotFound)
    }

    pub(crate) fn prepare_pipeline(
        &self,
        draft: &mut Draft,
        new: NewPipeline,
        is_default: bool,
    ) -> Result<Pipeline> {
        let errors = new.validate();
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let pipeline =
            Pipeline { meta: self.new_meta(draft), name: new.name, is_default, stages: new.stages };
        let row = pipeline.to_row();
        self.record_row_change(draft, AuditAction::Created, None, Some(&row));
        draft.insert(Entity::Record(row));
        Ok(pipeline)
    }

    pub(crate) async fn pipeline_of(&self, scope: &Scope, id: PipelineId) -> Result<Option<Pipeline>> {
        self.store_ref().get(scope, Kind::Pipeline, id.uuid()).await?.map(Pipeline::from_entity).transpose()
    }

    /// A pipeline as read once for this draft.
    pub(crate) async fn draft_pipeline(&self, draft: &mut Draft, id: PipelineId) -> Result<Option<Pipeline>> {
        if let Some(known) = draft.pipelines.get(&id.uuid()) {
            return Ok(known.clone());
        }
        let pipeline = self.pipeline_of(&draft.scope, id).await?;
        draft.pipelines.insert(id.uuid(), pipeline.clone());
        Ok(pipeline)
    }

    /// Fills in the default pipeline and its first stage where a new deal names none.
    pub(crate) async fn resolve_pipeline_defaults(&self, draft: &mut Draft, deal: &mut Deal) -> Result<()> {
        if deal.pipeline_id.uuid().is_nil() {
            let pipelines = self.all_pipelines(&draft.scope).await?;
            for p in &pipelines {
                draft.pipelines.insert(p.meta.id.uuid(), Some(p.clone()));
            }
            let default = pipelines.into_iter().find(|p| p.is_default).ok_or_else(|| {
                Error::invalid("pipeline_id", "is required: this tenant has no default pipeline")
            })?;
            deal.pipeline_id = default.meta.id;
            if deal.stage.is_empty() {
                deal.stage = default.stages[0].key.clone();
            }
        } else if deal.stage.is_empty() {
            if let Some(p) = self.draft_pipeline(draft, deal.pipeline_id).await? {
                deal.stage = p.stages[0].key.clone();
            }
        }
        Ok(())
    }

    /// Sets `closed_at` for a deal entering its (validated) stage and returns the history row,
    /// which the caller stages after the deal itself; refuses to move a closed deal.
    pub(crate) async fn enter_stage(
        &self,
        draft: &mut Draft,
        deal: &mut Deal,
        from: Option<&Deal>,
    ) -> Result<StageChange> {
        if let Some(old) = from {
            let old_pipeline = self.draft_pipeline(draft, old.pipeline_id).await?;
            let closed = old_pipeline.and_then(|p| p.stage(&old.stage).map(|s| s.kind.is_terminal()));
            if closed == Some(true) {
                return Err(Error::Validation(vec![FieldError::new(
                    "stage",
                    "the deal is closed (won or lost) and cannot move",
                )]));
            }
        }
        let pipeline = self.draft_pipeline(draft, deal.pipeline_id).await?.ok_or(Error::NotFound)?;
        let terminal = pipeline.stage(&deal.stage).is_some_and(|s| s.kind.is_terminal());
        deal.closed_at = terminal.then_some(draft.now);
        let change = StageChange {
            id: self.new_id(),
            tenant_id: draft.scope.tenant_id(),
            deal_id: deal.meta.id,
            pipeline_id: deal.pipeline_id,
            from_stage: from.map(|d| d.stage.clone()),
            to_stage: deal.stage.clone(),
            actor: draft.scope.actor(),
            at: draft.now,
        };
        Ok(change)
    }
}
