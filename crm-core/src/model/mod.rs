//! Domain types: the records a CRM keeps, and the inputs that create and change them.
//!
//! Each record type has a `New…` input (create) and a `…Patch` input (update). Patch fields are
//! `Option<Option<T>>` where the field may be cleared: absent = unchanged, `null` = cleared.

pub(crate) mod account;
pub(crate) mod activity;
mod common;
pub(crate) mod contact;
pub(crate) mod deal;
mod idempotency;
mod identity;
pub(crate) mod lead;
pub(crate) mod pipeline;
pub(crate) mod task;
mod tenant;
mod timestamp;
pub(crate) mod webhook;

pub use account::{Account, AccountId, AccountPatch, NewAccount};
pub use activity::{Activity, ActivityId, ActivityKind, ActivityPatch, ActivityTarget, NewActivity};
pub use common::{CustomFields, Kind, Link, Money, Record, RecordMeta};
pub use contact::{Contact, ContactId, ContactPatch, NewContact};
pub use deal::{Deal, DealId, DealPatch, NewDeal, StageChange, StageChangeId};
pub use idempotency::IdempotencyRecord;
pub use identity::{ApiKey, ApiKeyId, Credential, LoginFailures, NewApiKey, RefreshToken, RefreshTokenId};
pub use lead::{Lead, LeadId, LeadPatch, LeadStatus, NewLead};
pub use pipeline::{NewPipeline, NewStage, Pipeline, PipelineId, PipelinePatch, Stage, StageKind};
pub use task::{NewTask, Task, TaskId, TaskPatch, TaskPriority, TaskStatus};
pub use tenant::{Member, Membership, NewMember, NewTenant, NewUser, Tenant, User};
pub use webhook::{MAX_EVENT_TYPES, MAX_URL_LEN, NewWebhook, Webhook, WebhookId, WebhookPatch};
