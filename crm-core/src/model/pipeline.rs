use serde::{Deserialize, Serialize};

use super::RecordMeta;
use crate::error::FieldError;
use crate::id::Id;
use crate::kind::{FieldType, Writable};
use crate::validate;

crate::record_kind! {
    /// The description of pipelines (see [`crate::kind`]): their stages are one JSON document that
    /// the pipeline rules check.
    pub static PIPELINE for Pipeline {
        name: "pipeline",
        plural: "pipelines",
        about: "Deal pipelines and their ordered stages (admins write).",
        carries_activities: false,
    }
    fields {
        name: FieldType::Text;
        is_default: FieldType::Bool, write(Writable::Rule);
        stages: FieldType::Json;
    }
}

/// Pipeline id.
pub type PipelineId = Id<Pipeline>;

/// An ordered list of stages that a tenant's deals move through.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pipeline {
    /// Id, version and times.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::common::RecordMetaSchema))]
    pub meta: RecordMeta<Pipeline>,
    /// Display name.
    pub name: String,
    /// Whether deals created without a pipeline go here. Exactly one per tenant.
    pub is_default: bool,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

impl Pipeline {
    /// The stage with this key.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stable key used by deals (`proposal`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,64}$"))]
    pub key: String,
    /// Display name.
    pub name: String,
    /// Open, or a terminal outcome.
    pub kind: StageKind,
}

/// Whether a stage is open or closes the deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The deal is still in play.
    Open,
    /// Terminal: the deal was won.
    Won,
    /// Terminal: the deal was lost.
    Lost,
}

impl StageKind {
    /// Won and lost stages end a deal's journey: no further moves.
    pub fn is_terminal(self) -> bool {
        !matches!(self, StageKind::Open)
    }
}

/// Input to create a pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPipeline {
    /// Display name.
    pub name: String,
    /// Stages in order: 1–30, unique keys, at least one open stage.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 30))]
    pub stages: Vec<NewStage>,
}

/// Changes to a pipeline: a new name, and/or the full new list of stages. Stages still holding
/// live deals cannot be removed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PipelinePatch {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The complete new stage list, in order.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 30))]
    pub stages: Option<Vec<Stage>>,
}

/// A stage in [`NewPipeline`].
pub type NewStage = Stage;

impl NewPipeline {
    /// The pipeline every tenant starts with.
    pub fn default_sales() -> Self {
        let stage = |key: &str, name: &str, kind| Stage { key: key.into(), name: name.into(), kind };
        NewPipeline {
            name: "Sales".into(),
            stages: vec![
                stage("prospecting", "Prospecting", StageKind::Open),
                stage("qualification", "Qualification", StageKind::Open),
                stage("proposal", "Proposal", StageKind::Open),
                stage("negotiation", "Negotiation", StageKind::Open),
                stage("won", "Won", StageKind::Won),
                stage("lost", "Lost", StageKind::Lost),
            ],
        }
    }

    pub(crate) fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate::required_name("name", &self.name, &mut errors);
        if self.stages.is_empty() || self.stages.len() > 30 {
            errors.push(FieldError::new("stages", "must have between 1 and 30 stages"));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if !validate::is_key(&stage.key) {
                errors.push(FieldError::new(
                    format!("stages[{i}].key"),
                    "must be 1-64 characters of a-z, 0-9 and _",
                ));
            }
            if self.stages[..i].iter().any(|s| s.key == stage.key) {
                errors.push(FieldError::new(format!("stages[{i}].key"), "must be unique in the pipeline"));
            }
            validate::required_name(&format!("stages[{i}].name"), &stage.name, &mut errors);
        }
        if !self.stages.iter().any(|s| s.kind == StageKind::Open) {
            errors.push(FieldError::new("stages", "must include at least one open stage"));
        }
        errors
    }
}
