//! The use cases. [`Crm`] is what a host holds: every method authorizes first, validates, then
//! writes the change with its audit entry and outbox event in one store transaction.

mod auth;
mod convert;
mod deals;
mod draft;
mod idempotency;
mod import;
mod jobs;
mod list;
mod records;
mod retention;
mod schedules;
mod tenancy;
mod timeline;
mod webhook_delivery;
mod webhooks;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use auth::{CreatedApiKey, Login, NewTenantInfo, Registration, Session};
pub use convert::{Conversion, ConvertLead};
pub(crate) use idempotency::ClaimHandle;
pub use idempotency::{
    IDEMPOTENCY_KEY_FIELD, IdempotencyClaim, IdempotencyConfig, Idempotent, MAX_IDEMPOTENCY_KEY_LEN,
    check_idempotency_key,
};
pub use import::{IMPORT_BATCH, ImportMode, ImportReport, RowError};
pub use list::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT, Page};
pub use tenancy::TenantCreated;
pub use timeline::TimelineItem;
pub(crate) use webhook_delivery::Message;
pub use webhook_delivery::{DELIVER_WEBHOOK, FAILING_DISABLES_AFTER};
pub use webhooks::{DeliveryLog, PREVIOUS_SECRET_VALIDITY, TEST_EVENT, WebhookWithSecret};

use crate::clock::{Clock, IdGenerator, SystemClock, UuidV7};
use crate::error::{Error, Result};
use crate::hooks::{AuditSink, EventHook};
use crate::identity::{Argon2Params, IdentityConfig, PasswordHasher};
use crate::policy::{Action, DefaultPolicy, Grant, Policy, Resource};
use crate::runner::{JobHandler, JobOptions, JobTypes, Registered};
use crate::scope::Scope;
use crate::store::Store;

/// The embeddable CRM: services over a store. Cheap to clone; share one per process.
///
/// Every way in goes through a service: each checks the policy, and each write commits its
/// audit entries and outbox events with it. `Crm` hands out no raw store handle that could
/// read outside a scope or write past those rules:
///
/// ```compile_fail
/// fn raw(crm: &crm_core::Crm) {
///     let _ = crm.store(); // not public
/// }
/// ```
#[derive(Clone)]
pub struct Crm {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    audit_sinks: Vec<Arc<dyn AuditSink>>,
    event_hooks: Vec<Arc<dyn EventHook>>,
    identity: IdentityConfig,
    hasher: PasswordHasher,
    idempotency: IdempotencyConfig,
    job_types: JobTypes,
    /// Bumped on every job enqueued through this CRM: wakes its idle runners at once.
    enqueued: tokio::sync::watch::Sender<u64>,
}

impl fmt::Debug for Crm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crm")
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Crm {
    /// A CRM over `store` with the default policy, the system clock and UUID v7 ids.
    pub fn new(store: impl Store) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring a CRM over `store`.
    pub fn builder(store: impl Store) -> CrmBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// Starts configuring a CRM over a store shared with other code (or another `Crm`).
    pub fn builder_shared(store: Arc<dyn Store>) -> CrmBuilder {
        CrmBuilder {
            inner: Inner {
                store,
                policy: Arc::new(DefaultPolicy),
                clock: Arc::new(SystemClock),
                ids: Arc::new(UuidV7),
                audit_sinks: Vec::new(),
                event_hooks: Vec::new(),
                identity: IdentityConfig::default(),
                hasher: hasher_for(Argon2Params::default()),
                idempotency: IdempotencyConfig::default(),
                job_types: JobTypes::default(),
                enqueued: tokio::sync::watch::Sender::new(0),
            },
        }
    }

    /// The underlying store, for the conformance suite's store-level cases. Not public: a
    /// handle from `Crm` could read outside a scope and write past policy, audit and outbox;
    /// a host that wants its store keeps the handle it built (health checks use [`Crm::ping`]).
    #[cfg(feature = "testkit")]
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.inner.store.ping().await
    }

    /// Every action the principal may take on every resource: for "who am I" screens.
    pub fn permissions(&self, scope: &Scope) -> Vec<(Resource, Action, Grant)> {
        use Action::*;
        use Resource::*;
        let resources = [Lead, Contact, Account, Deal, Activity, Pipeline, Member, AuditLog, ApiKey];
        let mut out = Vec::new();
        for resource in resources {
            for action in [Read, Create, Update, Delete] {
                if let Some(grant) = self.inner.policy.authorize(scope.principal(), action, resource) {
                    out.push((resource, action, grant));
                }
            }
        }
        out
    }

    fn store_ref(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The store, for the job runner: claims span tenants, so they are not scoped calls.
    pub(crate) fn job_store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The registered job types, for the runner and for enqueue's defaults.
    pub(crate) fn job_types(&self) -> &JobTypes {
        &self.inner.job_types
    }

    /// Changes whenever a job is enqueued through this CRM.
    pub(crate) fn enqueue_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.enqueued.subscribe()
    }

    /// The CRM's clock reading.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Asks the policy; `Forbidden` when it says no.
    fn authorize(&self, scope: &Scope, action: Action, resource: Resource) -> Result<Grant> {
        self.inner.policy.authorize(scope.principal(), action, resource).ok_or(Error::Forbidden)
    }
}

/// Configures a [`Crm`]: policy, clock, ids, audit sinks and event hooks.
pub struct CrmBuilder {
    inner: Inner,
}

impl fmt::Debug for CrmBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmBuilder").finish_non_exhaustive()
    }
}

impl CrmBuilder {
    /// Replaces the default role matrix.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.inner.policy = Arc::new(policy);
        self
    }

    /// Replaces the system clock (tests, simulations).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.inner.clock = Arc::new(clock);
        self
    }

    /// Replaces UUID v7 id generation (tests, reproducible runs).
    pub fn ids(mut self, ids: impl IdGenerator) -> Self {
        self.inner.ids = Arc::new(ids);
        self
    }

    /// Adds a sink that receives a copy of every audit entry after commit.
    pub fn audit_sink(mut self, sink: impl AuditSink) -> Self {
        self.inner.audit_sinks.push(Arc::new(sink));
        self
    }

    /// Adds a hook that receives every domain event after commit.
    pub fn event_hook(mut self, hook: impl EventHook) -> Self {
        self.inner.event_hooks.push(Arc::new(hook));
        self
    }

    /// Sets token, password and lockout configuration (default: [`IdentityConfig::default`],
    /// whose signing key is random per process).
    pub fn identity(mut self, identity: IdentityConfig) -> Self {
        self.inner.hasher = hasher_for(identity.argon2);
        self.inner.identity = identity;
        self
    }

    /// Sets how long idempotency keys live and block (default: [`IdempotencyConfig::default`]).
    pub fn idempotency(mut self, idempotency: IdempotencyConfig) -> Self {
        self.inner.idempotency = idempotency;
        self
    }

    /// Registers the handler of `job_type` with [`JobOptions::default`]; runners started with
    /// [`Crm::run_jobs`] claim jobs of every registered type. Registering a type again replaces
    /// it.
    pub fn job_handler(self, job_type: impl Into<String>, handler: impl JobHandler) -> Self {
        self.job_handler_with(job_type, handler, JobOptions::default())
    }

    /// Registers the handler of `job_type` with its own retry schedule, attempt limit and
    /// timeout.
    pub fn job_handler_with(
        mut self,
        job_type: impl Into<String>,
        handler: impl JobHandler,
        options: JobOptions,
    ) -> Self {
        self.inner.job_types.insert(job_type.into(), Registered { handler: Arc::new(handler), options });
        self
    }

    /// Sends mail through `mailer`: registers the `mail.send` job type
    /// ([`crate::mail::SEND_MAIL`]), which the CRM then uses for the mail it sends itself (a
    /// welcome on registration). Without a mailer no mail is enqueued.
    pub fn mailer(self, mailer: impl crate::mail::Mailer) -> Self {
        let handler = crate::mail::SendMail(Arc::new(mailer));
        self.job_handler_with(crate::mail::SEND_MAIL, handler, crate::mail::send_mail_options())
    }

    /// Delivers webhooks through `transport` (`crm-http`'s `WebhookClient` checks where a
    /// request may go): events fan out to the tenant's endpoints in their own transaction and
    /// `webhook.deliver` jobs ([`DELIVER_WEBHOOK`]) send them. Every process that writes records
    /// needs it, or its events reach no endpoint.
    pub fn webhooks(self, transport: impl crate::webhook::WebhookTransport) -> Self {
        let handler = webhook_delivery::SendDelivery(Arc::new(transport));
        self.job_handler_with(DELIVER_WEBHOOK, handler, webhook_delivery::deliver_options())
    }

    /// Finishes configuration.
    pub fn build(self) -> Crm {
        Crm { inner: Arc::new(self.inner) }
    }
}

/// Password hashing runs on at most one blocking thread per core.
fn hasher_for(params: Argon2Params) -> PasswordHasher {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    PasswordHasher::new(params, cores)
}

/// Serializes a record for audit diffs and event payloads; our types always serialize.
fn snapshot(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
