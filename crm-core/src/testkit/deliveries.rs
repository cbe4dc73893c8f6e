//! Conformance cases for [`WebhookStore`](crate::store::WebhookStore): deliveries written by a
//! change set with the jobs that send them, read per lane in id order, updated with a log of
//! attempts, and confined to their tenant.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::tenant;
use crate::delivery::{Delivery, DeliveryAttempt, DeliveryState};
use crate::error::Error;
use crate::id::Id;
use crate::job::{Job, JobId, JobState, NewJob, RetryPolicy};
use crate::model::{NewWebhook, WebhookId};
use crate::scope::Scope;
use crate::service::Crm;
use crate::store::{ChangeSet, Store, Write};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("a valid time")
        + chrono::Duration::seconds(seconds)
}

fn delivery(scope: &Scope, webhook_id: WebhookId, n: u128, lane: Uuid) -> Delivery {
    Delivery {
        id: Id::from_uuid(Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | n)),
        tenant_id: scope.tenant_id(),
        webhook_id,
        event_id: Uuid::from_u128(n),
        event_type: "deal.updated".into(),
        lane,
        body: format!(r#"{{"type":"deal.updated","n":{n}}}"#),
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: at(0),
        last_error: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn sender(scope: &Scope, n: u128) -> Job {
    let id = JobId::from_uuid(Uuid::from_u128((0x0190_0000_0000_7000_9000_u128 << 48) | n));
    let new =
        NewJob::new("webhook.deliver", serde_json::json!({ "n": n })).unique_key(format!("delivery:{n}"));
    Job::new(id, scope.tenant_id(), new, at(0), &RetryPolicy::default())
}

async fn commit(store: &dyn Store, scope: &Scope, writes: Vec<Write>) {
    store.commit(scope, ChangeSet { writes, ..ChangeSet::default() }).await.unwrap();
}

/// A change set stores deliveries and enqueues their jobs with them (a unique key held making
/// the enqueue a no-op). A delivery waits for the earlier pending ones of its lane only, and
/// knows the next one to wake; an
/// attempt updates it and is logged, a delivery given up without one logs nothing; lists are
/// newest first; another tenant sees none of it.
pub async fn deliveries_keep_their_lane_order_and_log_attempts(crm: Crm) {
    let acme = tenant(&crm, "Acme").await.owner_scope;
    let globex = tenant(&crm, "Globex").await.owner_scope;
    let new = NewWebhook {
        url: "https://hooks.example/crm".into(),
        event_types: vec!["*".into()],
        ..NewWebhook::default()
    };
    let webhook = crm.create_webhook(&acme, new).await.unwrap().webhook.meta.id;
    let store = crm.store().as_ref();
    let (deal_a, deal_b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
    let (first, second, third) = (
        delivery(&acme, webhook, 1, deal_a),
        delivery(&acme, webhook, 2, deal_b),
        delivery(&acme, webhook, 3, deal_a),
    );
    let writes = vec![
        Write::Deliver(first.clone()),
        Write::Deliver(second.clone()),
        Write::Deliver(third.clone()),
        Write::Enqueue(sender(&acme, 1)),
    ];
    commit(store, &acme, writes).await;
    commit(store, &acme, vec![Write::Enqueue(sender(&acme, 1))]).await;
    let jobs = store.jobs(&acme, Some(JobState::Pending), None, 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [sender(&acme, 1).id], "one job per key");

    assert_eq!(store.delivery(&acme, first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.earlier_pending(&acme, &third).await.unwrap().map(|d| d.id), Some(first.id));
    assert_eq!(store.earlier_pending(&acme, &second).await.unwrap(), None, "another lane waits for nothing");
    assert_eq!(store.earlier_pending(&acme, &first).await.unwrap(), None);
    assert_eq!(store.later_pending(&acme, &first).await.unwrap().map(|d| d.id), Some(third.id));
    assert_eq!(store.later_pending(&acme, &second).await.unwrap(), None, "alone in its lane");
    assert_eq!(store.later_pending(&acme, &third).await.unwrap(), None, "the last of its lane");

    let mut failed = first.clone();
    failed.attempts = 1;
    failed.next_attempt_at = at(5);
    failed.last_error = Some("503 Service Unavailable".into());
    failed.updated_at = at(1);
    let attempt = |number, status: Option<u16>| DeliveryAttempt {
        delivery_id: first.id,
        number,
        at: at(i64::from(number)),
        status,
        duration_ms: 12,
        response_excerpt: status.map(|s| format!("answered {s}")),
        error: status.is_none().then(|| "timed out".to_owned()),
    };
    store.update_delivery(&acme, &failed, Some(&attempt(1, Some(503)))).await.unwrap();
    assert_eq!(store.delivery(&acme, first.id).await.unwrap().as_ref(), Some(&failed));
    assert_eq!(
        store.earlier_pending(&acme, &third).await.unwrap().map(|d| d.id),
        Some(first.id),
        "still waits"
    );
    let mut delivered = failed.clone();
    (delivered.state, delivered.attempts, delivered.last_error) = (DeliveryState::Delivered, 2, None);
    store.update_delivery(&acme, &delivered, Some(&attempt(2, None))).await.unwrap();
    assert_eq!(store.earlier_pending(&acme, &third).await.unwrap(), None, "its turn once the first is done");
    let log = store.attempts(&acme, first.id).await.unwrap();
    assert_eq!(log, [attempt(1, Some(503)), attempt(2, None)]);

    let listed: Vec<_> =
        store.deliveries(&acme, webhook, None, 10).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(listed, [third.id, second.id, first.id], "newest first");
    let page = store.deliveries(&acme, webhook, Some(third.id), 1).await.unwrap();
    assert_eq!(page.iter().map(|d| d.id).collect::<Vec<_>>(), [second.id]);

    let mut given_up = second.clone();
    (given_up.state, given_up.last_error) = (DeliveryState::Failed, Some("the endpoint is disabled".into()));
    store.update_delivery(&acme, &given_up, None).await.unwrap();
    assert_eq!(store.delivery(&acme, second.id).await.unwrap().as_ref(), Some(&given_up));
    assert!(store.attempts(&acme, second.id).await.unwrap().is_empty(), "given up without an attempt");

    assert_eq!(store.delivery(&globex, first.id).await.unwrap(), None);
    assert!(store.deliveries(&globex, webhook, None, 10).await.unwrap().is_empty());
    assert!(store.attempts(&globex, first.id).await.unwrap().is_empty());
    let theirs = Delivery { tenant_id: globex.tenant_id(), ..delivered.clone() };
    assert!(matches!(
        store.update_delivery(&globex, &theirs, Some(&attempt(3, Some(200)))).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.attempts(&acme, first.id).await.unwrap().len(), 2, "nothing logged across tenants");
}
