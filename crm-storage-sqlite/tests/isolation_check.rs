//! The conformance suite's isolation check bites: a store that answers lists with the first
//! tenant's rows, whoever asks, fails the first list another tenant makes.

use std::sync::Mutex;

use async_trait::async_trait;
use crm_core::model::{Kind, Lead, NewLead};
use crm_core::store::{ChangeSet, Entity, ListQuery, RecordStore};
use crm_core::testkit::isolation::IsolationCheck;
use crm_core::testkit::{deterministic_crm, tenant};
use crm_core::{ListRequest, Result, Scope};
use crm_storage_sqlite::SqliteStore;
use uuid::Uuid;

/// Lists with the scope of the first commit it saw, whatever scope it is given.
#[derive(Debug)]
struct LeakingStore {
    inner: SqliteStore,
    first_scope: Mutex<Option<Scope>>,
}

crm_core::delegate_store!(LeakingStore => inner: IdentityStore, HistoryStore, IdempotencyStore, JobStore, RetentionStore,
    WebhookStore);

/// Lists with the first scope it committed in: the leak.
#[async_trait]
impl RecordStore for LeakingStore {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        self.inner.get(scope, kind, id).await
    }

    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        let first = self.first_scope.lock().unwrap().clone();
        self.inner.list(first.as_ref().unwrap_or(scope), query).await
    }

    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        self.first_scope.lock().unwrap().get_or_insert_with(|| scope.clone());
        self.inner.commit(scope, changes).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[tokio::test]
#[should_panic(expected = "tenant isolation broken: a record of another tenant")]
async fn the_isolation_check_catches_a_store_that_leaks() {
    let inner = SqliteStore::open_in_memory().await.unwrap();
    let crm =
        deterministic_crm(IsolationCheck::new(LeakingStore { inner, first_scope: Mutex::new(None) }), 1);
    let acme = tenant(&crm, "Acme").await;
    let lead = NewLead { last_name: Some("Acme's".into()), ..NewLead::default() };
    crm.create::<Lead>(&acme.owner_scope, lead).await.unwrap();
    let globex = tenant(&crm, "Globex").await;
    // The leaking store answers Globex with Acme's lead; the check panics before core sees it.
    let _ = crm.list::<Lead>(&globex.owner_scope, ListRequest::new()).await;
}

#[tokio::test]
async fn the_isolation_check_passes_an_honest_store() {
    let crm = deterministic_crm(IsolationCheck::new(SqliteStore::open_in_memory().await.unwrap()), 1);
    let acme = tenant(&crm, "Acme").await;
    let lead = NewLead { last_name: Some("Acme's".into()), ..NewLead::default() };
    crm.create::<Lead>(&acme.owner_scope, lead).await.unwrap();
    let globex = tenant(&crm, "Globex").await;
    assert!(crm.list::<Lead>(&globex.owner_scope, ListRequest::new()).await.unwrap().data.is_empty());
    assert_eq!(crm.list::<Lead>(&acme.owner_scope, ListRequest::new()).await.unwrap().data.len(), 1);
}
