//! [`delegate_store!`](crate::delegate_store): a wrapper store (a test double, a host's metrics
//! or caching layer) passes whole traits through to the store it wraps, so it writes out only
//! the methods it changes.

#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;
#[doc(hidden)]
pub use uuid::Uuid as __Uuid;
#[doc(hidden)]
pub type __DateTime = chrono::DateTime<chrono::Utc>;
#[doc(hidden)]
pub type __Signal = tokio::sync::watch::Receiver<u64>;

/// Implements the named store traits for a wrapper type by passing every call to one of its
/// fields; the wrapper implements the remaining traits itself (a test store that gates commits
/// writes `RecordStore` and delegates the rest).
///
/// ```ignore
/// struct Gated { inner: SqliteStore, /* … */ }
/// crm_core::delegate_store!(Gated => inner: IdentityStore, HistoryStore, IdempotencyStore, JobStore,
///     RetentionStore, WebhookStore);
/// ```
#[macro_export]
macro_rules! delegate_store {
    ($ty:ty => $field:ident: $($store:ident),+ $(,)?) => {
        $($crate::delegate_store!(@trait $store $ty, $field);)+
    };
    (@trait RecordStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::RecordStore for $ty {
            async fn get(
                &self,
                scope: &$crate::Scope,
                kind: $crate::model::Kind,
                id: $crate::delegate::__Uuid,
            ) -> $crate::Result<Option<$crate::store::Entity>> {
                self.$field.get(scope, kind, id).await
            }
            async fn list(
                &self,
                scope: &$crate::Scope,
                query: &$crate::store::ListQuery,
            ) -> $crate::Result<Vec<$crate::store::Entity>> {
                self.$field.list(scope, query).await
            }
            async fn list_into(
                &self,
                scope: &$crate::Scope,
                query: &$crate::store::ListQuery,
                decode: $crate::store::PageDecoder,
            ) -> $crate::Result<$crate::store::DecodedPage> {
                self.$field.list_into(scope, query, decode).await
            }
            async fn commit(&self, scope: &$crate::Scope, changes: $crate::store::ChangeSet) -> $crate::Result<()> {
                self.$field.commit(scope, changes).await
            }
            async fn ping(&self) -> $crate::Result<()> {
                $crate::store::RecordStore::ping(&self.$field).await
            }
        }
    };
    (@trait IdentityStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::IdentityStore for $ty {
            async fn tenant(&self, id: $crate::TenantId) -> $crate::Result<Option<$crate::model::Tenant>> {
                self.$field.tenant(id).await
            }
            async fn tenant_by_slug(&self, slug: &str) -> $crate::Result<Option<$crate::model::Tenant>> {
                self.$field.tenant_by_slug(slug).await
            }
            async fn user(&self, id: $crate::UserId) -> $crate::Result<Option<$crate::model::User>> {
                self.$field.user(id).await
            }
            async fn user_by_email(&self, email: &str) -> $crate::Result<Option<$crate::model::User>> {
                self.$field.user_by_email(email).await
            }
            async fn credential(&self, user_id: $crate::UserId) -> $crate::Result<Option<$crate::model::Credential>> {
                self.$field.credential(user_id).await
            }
            async fn membership(
                &self,
                scope: &$crate::Scope,
                user_id: $crate::UserId,
            ) -> $crate::Result<Option<$crate::model::Membership>> {
                self.$field.membership(scope, user_id).await
            }
            async fn members(&self, scope: &$crate::Scope) -> $crate::Result<Vec<$crate::model::Member>> {
                self.$field.members(scope).await
            }
            async fn refresh_token(
                &self,
                scope: &$crate::Scope,
                id: $crate::model::RefreshTokenId,
            ) -> $crate::Result<Option<$crate::model::RefreshToken>> {
                self.$field.refresh_token(scope, id).await
            }
            async fn api_key(
                &self,
                scope: &$crate::Scope,
                id: $crate::model::ApiKeyId,
            ) -> $crate::Result<Option<$crate::model::ApiKey>> {
                self.$field.api_key(scope, id).await
            }
            async fn api_keys(&self, scope: &$crate::Scope) -> $crate::Result<Vec<$crate::model::ApiKey>> {
                self.$field.api_keys(scope).await
            }
            async fn login_failures(
                &self,
                scope: &$crate::Scope,
                key: &str,
            ) -> $crate::Result<Option<$crate::model::LoginFailures>> {
                self.$field.login_failures(scope, key).await
            }
        }
    };
    (@trait HistoryStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::HistoryStore for $ty {
            async fn audit_log(
                &self,
                scope: &$crate::Scope,
                query: &$crate::AuditQuery,
                before: Option<$crate::store::TimeCursor>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::AuditEntry>> {
                self.$field.audit_log(scope, query, before, limit).await
            }
            async fn outbox(
                &self,
                scope: &$crate::Scope,
                after: Option<$crate::delegate::__Uuid>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::DomainEvent>> {
                self.$field.outbox(scope, after, limit).await
            }
            async fn stage_history(
                &self,
                scope: &$crate::Scope,
                deal_id: $crate::model::DealId,
            ) -> $crate::Result<Vec<$crate::model::StageChange>> {
                self.$field.stage_history(scope, deal_id).await
            }
        }
    };
    (@trait IdempotencyStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::IdempotencyStore for $ty {
            async fn idempotency_record(
                &self,
                scope: &$crate::Scope,
                principal: &str,
                key: &str,
            ) -> $crate::Result<Option<$crate::model::IdempotencyRecord>> {
                self.$field.idempotency_record(scope, principal, key).await
            }
        }
    };
    (@trait JobStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::JobStore for $ty {
            async fn enqueue(
                &self,
                scope: &$crate::Scope,
                job: &$crate::job::Job,
            ) -> $crate::Result<$crate::store::Enqueued> {
                self.$field.enqueue(scope, job).await
            }
            async fn claim(
                &self,
                job_types: &[&str],
                now: $crate::delegate::__DateTime,
                lease: ::std::time::Duration,
                token: $crate::delegate::__Uuid,
            ) -> $crate::Result<Option<$crate::job::Job>> {
                self.$field.claim(job_types, now, lease, token).await
            }
            async fn heartbeat(
                &self,
                token: $crate::delegate::__Uuid,
                until: $crate::delegate::__DateTime,
            ) -> $crate::Result<bool> {
                self.$field.heartbeat(token, until).await
            }
            async fn finish(&self, token: $crate::delegate::__Uuid, job: &$crate::job::Job) -> $crate::Result<bool> {
                self.$field.finish(token, job).await
            }
            async fn job(
                &self,
                scope: &$crate::Scope,
                id: $crate::job::JobId,
            ) -> $crate::Result<Option<$crate::job::Job>> {
                self.$field.job(scope, id).await
            }
            async fn jobs(
                &self,
                scope: &$crate::Scope,
                state: Option<$crate::job::JobState>,
                before: Option<$crate::job::JobId>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::job::Job>> {
                self.$field.jobs(scope, state, before, limit).await
            }
            async fn update_job(
                &self,
                scope: &$crate::Scope,
                job: &$crate::job::Job,
                expected: $crate::job::JobState,
            ) -> $crate::Result<bool> {
                self.$field.update_job(scope, job, expected).await
            }
            async fn put_schedule(
                &self,
                scope: &$crate::Scope,
                schedule: &$crate::schedule::Schedule,
            ) -> $crate::Result<()> {
                self.$field.put_schedule(scope, schedule).await
            }
            async fn schedules(&self, scope: &$crate::Scope) -> $crate::Result<Vec<$crate::schedule::Schedule>> {
                self.$field.schedules(scope).await
            }
            async fn delete_schedule(&self, scope: &$crate::Scope, name: &str) -> $crate::Result<bool> {
                self.$field.delete_schedule(scope, name).await
            }
            async fn due_schedules(
                &self,
                now: $crate::delegate::__DateTime,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::schedule::Schedule>> {
                self.$field.due_schedules(now, limit).await
            }
            async fn fire_schedule(
                &self,
                due: &$crate::schedule::Schedule,
                next: $crate::delegate::__DateTime,
                job: &$crate::job::Job,
            ) -> $crate::Result<bool> {
                self.$field.fire_schedule(due, next, job).await
            }
            fn enqueue_signal(&self) -> Option<$crate::delegate::__Signal> {
                self.$field.enqueue_signal()
            }
        }
    };    (@trait RetentionStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::RetentionStore for $ty {
            async fn purge(
                &self,
                cutoffs: &$crate::store::PurgeCutoffs,
                limit: u32,
            ) -> $crate::Result<$crate::store::Purged> {
                self.$field.purge(cutoffs, limit).await
            }
        }
    };    (@trait WebhookStore $ty:ty, $field:ident) => {
        #[$crate::delegate::__async_trait]
        impl $crate::store::WebhookStore for $ty {
            async fn delivery(
                &self,
                scope: &$crate::Scope,
                id: $crate::delivery::DeliveryId,
            ) -> $crate::Result<Option<$crate::delivery::Delivery>> {
                self.$field.delivery(scope, id).await
            }
            async fn earlier_pending(
                &self,
                scope: &$crate::Scope,
                delivery: &$crate::delivery::Delivery,
            ) -> $crate::Result<Option<$crate::delivery::Delivery>> {
                self.$field.earlier_pending(scope, delivery).await
            }
            async fn later_pending(
                &self,
                scope: &$crate::Scope,
                delivery: &$crate::delivery::Delivery,
            ) -> $crate::Result<Option<$crate::delivery::Delivery>> {
                self.$field.later_pending(scope, delivery).await
            }
            async fn update_delivery(
                &self,
                scope: &$crate::Scope,
                delivery: &$crate::delivery::Delivery,
                attempt: Option<&$crate::delivery::DeliveryAttempt>,
            ) -> $crate::Result<()> {
                self.$field.update_delivery(scope, delivery, attempt).await
            }
            async fn deliveries(
                &self,
                scope: &$crate::Scope,
                webhook_id: $crate::model::WebhookId,
                before: Option<$crate::delivery::DeliveryId>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::delivery::Delivery>> {
                self.$field.deliveries(scope, webhook_id, before, limit).await
            }
            async fn attempts(
                &self,
                scope: &$crate::Scope,
                delivery_id: $crate::delivery::DeliveryId,
            ) -> $crate::Result<Vec<$crate::delivery::DeliveryAttempt>> {
                self.$field.attempts(scope, delivery_id).await
            }
        }
    };
}
