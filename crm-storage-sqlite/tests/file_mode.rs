//! The conformance suite again, on database files (WAL, a writer thread plus reader threads)
//! instead of memory — its race cases run on a multi-threaded runtime, where concurrent commits
//! share the writer's transactions (group commit) — and a group with a failing member.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crm_core::model::{Lead, NewLead, NewTenant, NewUser};
use crm_core::{Crm, Error};
use crm_storage_sqlite::SqliteStore;

/// A fresh database file under the system temp dir; files older than an hour are swept.
async fn file_store() -> Option<SqliteStore> {
    let dir = std::env::temp_dir().join("crm-sqlite-tests");
    std::fs::create_dir_all(&dir).expect("test dir");
    sweep(&dir);
    let path: PathBuf = dir.join(format!("{}.db", uuid::Uuid::now_v7().simple()));
    Some(SqliteStore::open(&path).await.expect("open file store"))
}

fn sweep(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let cutoff = SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

mod suite {
    crm_core::store_conformance_tests!(super::file_store);
}

async fn crm_with_lead() -> (Crm, crm_core::Scope, Lead) {
    let crm = Crm::new(file_store().await.expect("store"));
    let acme = crm
        .create_tenant(NewTenant {
            name: "Acme".into(),
            slug: "acme".into(),
            owner: NewUser { email: "owner@acme.example".into(), name: "Owner".into() },
        })
        .await
        .unwrap();
    let scope = acme.owner_scope;
    let lead =
        crm.create::<Lead>(&scope, NewLead { last_name: Some("Lovelace".into()), ..NewLead::default() });
    let lead = lead.await.unwrap();
    (crm, scope, lead)
}

/// Commits queued together share one transaction, each in its own savepoint: a change set that
/// fails (here a taken slug) rolls back alone, and every other one in the group stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_commit_in_a_group_rolls_back_alone() {
    let (crm, scope, _) = crm_with_lead().await;
    let audit_count = || async {
        crm.audit_log(&scope, crm_core::AuditQuery::default(), None, Some(200)).await.unwrap().data.len()
    };
    let audit_before = audit_count().await;
    let tenants: Vec<_> = (0..16)
        .map(|i| {
            let crm = crm.clone();
            tokio::spawn(async move {
                crm.create_tenant(NewTenant {
                    name: "Dup".into(),
                    slug: "dup".into(),
                    owner: NewUser { email: format!("owner{i}@dup.example"), name: "Owner".into() },
                })
                .await
            })
        })
        .collect();
    let leads: Vec<_> = (0..16)
        .map(|i| {
            let (crm, scope) = (crm.clone(), scope.clone());
            tokio::spawn(async move {
                crm.create::<Lead>(
                    &scope,
                    NewLead { last_name: Some(format!("Grouped {i}")), ..NewLead::default() },
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tenants {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1, "one tenant takes the slug");
    for task in leads {
        task.await.unwrap().unwrap();
    }
    let all = crm.list::<Lead>(&scope, crm_core::ListRequest::new().q("grouped").limit(200)).await.unwrap();
    assert_eq!(all.data.len(), 16, "every lead committed beside the failed tenants");
    assert_eq!(audit_count().await, audit_before + 16, "one audit entry per lead");
}
