//! Shared set-up for the benchmarks: a seeded tenant on a temporary database file, and the raw
//! rusqlite baseline doing the same SQL work as the library in the same run.

use std::path::PathBuf;

use crm_core::model::{Lead, NewLead, NewTenant, NewUser};
use crm_core::{Crm, Scope};
use crm_storage_sqlite::SqliteStore;

/// A CRM on a fresh SQLite file (WAL, default durability), with one tenant and its owner scope.
pub struct Fixture {
    /// The services.
    pub crm: Crm,
    /// The owner's scope.
    pub scope: Scope,
    /// The database file, for the raw baseline to open.
    pub path: PathBuf,
    _dir: TempDir,
}

/// Builds a [`Fixture`] holding `leads` leads.
pub async fn fixture(leads: usize) -> Fixture {
    let dir = TempDir::new();
    let path = dir.0.join("bench.db");
    let store = SqliteStore::open(&path).await.expect("open store");
    let crm = Crm::new(store);
    let created = crm
        .create_tenant(NewTenant {
            name: "Bench".into(),
            slug: "bench".into(),
            owner: NewUser { email: "owner@bench.example".into(), name: "Owner".into() },
        })
        .await
        .expect("tenant");
    let scope = created.owner_scope;
    for i in 0..leads {
        crm.create::<Lead>(&scope, new_lead(i)).await.expect("seed lead");
    }
    Fixture { crm, scope, path, _dir: dir }
}

/// The lead every create benchmark inserts (numbered, so rows differ).
pub fn new_lead(i: usize) -> NewLead {
    NewLead {
        first_name: Some("Ada".into()),
        last_name: Some(format!("Lovelace {i}")),
        email: Some(format!("ada{i}@example.com")),
        company: Some("Analytical Engines".into()),
        ..NewLead::default()
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("crm-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
