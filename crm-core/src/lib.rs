//! # crm-core
//!
//! The domain of an embeddable, multi-tenant CRM: records (leads, contacts, accounts, deals,
//! activities), tenants and members, the services that are its use cases, and the traits that
//! hosts and storage adapters implement. No SQL and no HTTP live here.
//!
//! ```text
//! host ──► Crm (services) ──► Policy (before any store call)
//!                     │  └──► RecordStore::commit(ChangeSet { rows, audit, events })  — one transaction
//!                     └─────► AuditSink / EventHook (after commit)
//! ```
//!
//! Start with [`Crm`]: build one over a store (e.g. `crm_storage_sqlite::SqliteStore`), create
//! a tenant with [`Crm::create_tenant`], and act through the [`Scope`] it returns — or get one
//! for an authenticated user with [`Crm::scope_for`].
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod clock;
mod cursor;
#[doc(hidden)]
pub mod delegate;
pub mod delivery;
mod error;
pub mod event;
pub mod hooks;
mod id;
pub mod identity;
pub mod job;
pub mod kind;
pub mod mail;
pub mod model;
pub mod outbound;
pub mod policy;
pub mod runner;
pub mod schedule;
mod scope;
pub mod search;
mod service;
pub mod store;
pub mod validate;
pub mod webhook;

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use audit::{AuditAction, AuditEntry, AuditQuery};
pub use error::{BoxError, Conflict, Error, FieldError, Result};
pub use event::DomainEvent;
pub use hooks::{AuditSink, EventHook};
pub use id::Id;
pub use policy::{Action, DefaultPolicy, Grant, Policy, RecordScope, Resource};
pub use scope::{Actor, Principal, Role, Scope, TenantId, UserId};
pub use service::{
    Conversion, ConvertLead, CreatedApiKey, Crm, CrmBuilder, DEFAULT_LIMIT, DELIVER_WEBHOOK, DeliveryLog,
    FAILING_DISABLES_AFTER, IDEMPOTENCY_KEY_FIELD, IMPORT_BATCH, IdempotencyClaim, IdempotencyConfig,
    Idempotent, ImportMode, ImportReport, ListRequest, Login, MAX_IDEMPOTENCY_KEY_LEN, MAX_LIMIT,
    NewTenantInfo, PREVIOUS_SECRET_VALIDITY, Page, Registration, RowError, Session, TEST_EVENT,
    TenantCreated, TimelineItem, WebhookWithSecret, check_idempotency_key,
};
pub use store::{Filter, Store};
