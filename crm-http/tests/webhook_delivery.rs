//! Webhook delivery end to end, on every available store: records change through the CRM, the
//! runner sends the deliveries through `WebhookClient` to a real receiver on loopback, which
//! verifies every signature. The CRM's clock is a test clock the test moves, so the retry
//! schedule's gaps (seconds, then minutes) pass without waiting for them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::any;
use chrono::TimeZone;
use crm_core::clock::SteppingClock;
use crm_core::delivery::DeliveryState;
use crm_core::job::JobState;
use crm_core::model::{Deal, DealPatch, Lead, NewDeal, NewLead, NewTenant, NewUser, NewWebhook, Webhook};
use crm_core::outbound::OutboundPolicy;
use crm_core::runner::RunnerConfig;
use crm_core::store::Store;
use crm_core::webhook::{WebhookSecret, verify};
use crm_core::{Crm, Scope};
use crm_http::mailer::SmtpMailer;
use crm_http::webhook_client::WebhookClient;
use serde_json::Value;

/// What the receiver got: path, headers, body; and how many times each flaky path has failed.
#[derive(Debug, Default)]
struct Received {
    requests: Mutex<Vec<(String, HeaderMap, Bytes)>>,
}

async fn receive(
    State(seen): State<Arc<Received>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_owned();
    let mut requests = seen.requests.lock().unwrap();
    requests.push((path.clone(), headers, body));
    let earlier = requests.iter().filter(|(p, ..)| *p == path).count() - 1;
    let mut answer = HeaderMap::new();
    let status = match path.as_str() {
        "/ok" => StatusCode::OK,
        "/flaky" if earlier < 2 => StatusCode::INTERNAL_SERVER_ERROR,
        "/flaky" => StatusCode::NO_CONTENT,
        "/gone" => StatusCode::GONE,
        "/busy" if earlier == 0 => {
            answer.insert(header::RETRY_AFTER, "600".parse().unwrap());
            StatusCode::TOO_MANY_REQUESTS
        }
        "/busy" => StatusCode::OK,
        _ => StatusCode::NOT_FOUND,
    };
    (status, answer, "seen")
}

async fn receiver() -> (u16, Arc<Received>) {
    let seen = Arc::new(Received::default());
    let app = Router::new().fallback(any(receive)).with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// Waits (real time) until `done` holds, polling; fails after ten seconds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let sqlite = crm_storage_sqlite::SqliteStore::open_in_memory().await.unwrap();
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![("sqlite", Arc::new(sqlite))];
    if let Some(pg) = crm_storage_postgres::testing::fresh_store().await {
        stores.push(("postgres", Arc::new(pg)));
    }
    stores
}

struct World {
    crm: Crm,
    store: Arc<dyn Store>,
    /// The CRM's clock when the test moves it; `None`: the system clock.
    clock: Option<SteppingClock>,
    owner: Scope,
    port: u16,
    seen: Arc<Received>,
}

impl World {
    /// A CRM over `store` that delivers to a fresh receiver, on a test clock if `moved`.
    async fn new(store: Arc<dyn Store>, moved: bool) -> World {
        World::with_mail(store, moved, None).await
    }

    /// [`World::new`], sending mail through `mailer` if given.
    async fn with_mail(store: Arc<dyn Store>, moved: bool, mailer: Option<SmtpMailer>) -> World {
        let (port, seen) = receiver().await;
        let start = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().unwrap();
        let clock = moved.then(|| SteppingClock::starting_at(start));
        let client = WebhookClient::new(OutboundPolicy::from_allow_list("127.0.0.0/8").unwrap());
        let mut builder = Crm::builder_shared(Arc::clone(&store)).webhooks(client);
        if let Some(clock) = &clock {
            builder = builder.clock(clock.clone());
        }
        if let Some(mailer) = mailer {
            builder = builder.mailer(mailer);
        }
        let crm = builder.build();
        let tenant = NewTenant {
            name: "Acme".into(),
            slug: "acme".into(),
            owner: NewUser { email: "owner@acme.example".into(), name: "Owner".into() },
        };
        let owner = crm.create_tenant(tenant).await.unwrap().owner_scope;
        World { crm, store, clock, owner, port, seen }
    }

    async fn endpoint(&self, path: &str, event_types: &[&str]) -> (Webhook, WebhookSecret) {
        let new = NewWebhook {
            url: format!("http://127.0.0.1:{}{path}", self.port),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            ..NewWebhook::default()
        };
        let created = self.crm.create_webhook(&self.owner, new).await.unwrap();
        (created.webhook, WebhookSecret::parse(&created.secret).unwrap())
    }

    fn received(&self, path: &str) -> Vec<(HeaderMap, Bytes)> {
        let requests = self.seen.requests.lock().unwrap();
        requests.iter().filter(|(p, ..)| p == path).map(|(_, h, b)| (h.clone(), b.clone())).collect()
    }

    /// Waits until no job runs: every attempt so far has been recorded and its job rescheduled,
    /// so moving the clock now cannot race a retry time computed from before the move.
    async fn settled(&self) {
        eventually("the runners to settle", || async {
            let running = self.store.jobs(&self.owner, Some(JobState::Running), None, 10).await.unwrap();
            running.is_empty()
        })
        .await;
    }

    async fn delivery_states(&self, webhook: &Webhook) -> Vec<(DeliveryState, u32)> {
        let store = &self.store;
        let deliveries = store.deliveries(&self.owner, webhook.meta.id, None, 50).await.unwrap();
        deliveries.into_iter().rev().map(|d| (d.state, d.attempts)).collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Checks a delivery as a receiver's Standard Webhooks library would, and returns its body.
fn verified(secret: &WebhookSecret, headers: &HeaderMap, body: &[u8]) -> Value {
    let timestamp: i64 = header(headers, "webhook-timestamp").parse().unwrap();
    let (id, signature) = (header(headers, "webhook-id"), header(headers, "webhook-signature"));
    assert!(verify(&[secret], &signature, &id, timestamp, body, timestamp), "a valid signature");
    serde_json::from_slice(body).unwrap()
}

fn polling() -> RunnerConfig {
    RunnerConfig { poll_interval: Duration::from_millis(20), ..RunnerConfig::default() }
}

/// A deal's events reach the endpoint that wants them, signed and in order, each under its
/// event's id; an endpoint that does not want them gets nothing.
#[tokio::test]
async fn events_arrive_signed_and_in_order() {
    for (name, store) in stores().await {
        // The system clock: a delivery waiting for the one before it waits a real second.
        let w = World::new(store, false).await;
        let (deals, secret) = w.endpoint("/ok", &["deal.*"]).await;
        let (leads, _) = w.endpoint("/gone", &["lead.created"]).await;
        let runner = w.crm.run_jobs(polling()).unwrap();
        let new = NewDeal { name: "Engines".into(), ..NewDeal::default() };
        let deal = w.crm.create::<Deal>(&w.owner, new).await.unwrap();
        for (n, title) in ["Engines II", "Engines III"].iter().enumerate() {
            let patch = DealPatch { name: Some((*title).into()), ..DealPatch::default() };
            let version = i64::try_from(n).unwrap() + 1;
            w.crm.update::<Deal>(&w.owner, deal.meta.id, Some(version), patch).await.unwrap();
        }
        eventually("three deal deliveries", || async { w.received("/ok").len() >= 3 }).await;
        let bodies: Vec<Value> = w.received("/ok").iter().map(|(h, b)| verified(&secret, h, b)).collect();
        let seen: Vec<(&str, &str)> = bodies
            .iter()
            .map(|b| (b["type"].as_str().unwrap(), b["data"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [("deal.created", "Engines"), ("deal.updated", "Engines II"), ("deal.updated", "Engines III")],
            "{name}: in the order of the deal's changes"
        );
        assert!(
            bodies.iter().all(|b| b["data"]["id"] == deal.meta.id.to_string() && b["timestamp"].is_string())
        );
        let ids: Vec<String> = w.received("/ok").iter().map(|(h, _)| header(h, "webhook-id")).collect();
        assert!(ids.iter().all(|id| id.starts_with("msg_")) && ids[0] != ids[1], "{name}: one id per event");
        // The receiver answers before the attempt is recorded: wait for the record.
        eventually("three deliveries recorded", || async {
            w.delivery_states(&deals).await == vec![(DeliveryState::Delivered, 1); 3]
        })
        .await;
        assert!(w.delivery_states(&leads).await.is_empty(), "{name}: no lead event, no delivery");

        // A test event, whatever the filters; and the first delivery again, under its id.
        w.crm.send_test_webhook(&w.owner, leads.meta.id).await.unwrap();
        eventually("the test event", || async { w.received("/gone").len() == 1 }).await;
        let (headers, body) = w.received("/gone").remove(0);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["type"], "webhook.test", "{name}");
        assert!(header(&headers, "webhook-id").starts_with("msg_"));
        let first = w.store.deliveries(&w.owner, deals.meta.id, None, 50).await.unwrap().pop().unwrap();
        w.crm.redeliver(&w.owner, first.id).await.unwrap();
        eventually("the redelivery", || async { w.received("/ok").len() == 4 }).await;
        let again = w.received("/ok");
        assert_eq!(header(&again[3].0, "webhook-id"), ids[0], "{name}: redelivered under the event's id");
        assert_eq!(again[3].1, again[0].1, "{name}: the same body");
        runner.shutdown().await;
    }
}

/// A receiver that fails twice sees the attempts at growing gaps (5 s, then 5 min by the
/// schedule) and then takes the delivery; 410 disables the endpoint at once; a 429's
/// `Retry-After` is honoured over the schedule's shorter step.
#[tokio::test]
async fn failures_back_off_gone_disables_and_retry_after_is_honoured() {
    for (name, store) in stores().await {
        let w = World::new(store, true).await;
        let clock = w.clock.clone().expect("a test clock");
        let (flaky, flaky_secret) = w.endpoint("/flaky", &["lead.created"]).await;
        let (gone, _) = w.endpoint("/gone", &["lead.created"]).await;
        let (busy, _) = w.endpoint("/busy", &["lead.*"]).await;
        let runner = w.crm.run_jobs(polling()).unwrap();
        let new = NewLead { company: Some("Babbage Ltd".into()), ..NewLead::default() };
        w.crm.create::<Lead>(&w.owner, new).await.unwrap();

        eventually("the first attempts", || async {
            w.received("/flaky").len() == 1
                && w.received("/gone").len() == 1
                && w.received("/busy").len() == 1
        })
        .await;
        let store = &w.store;
        eventually("the 410 to disable its endpoint", || async {
            w.crm.get::<Webhook>(&w.owner, gone.meta.id).await.is_ok_and(|g| !g.enabled)
        })
        .await;
        let gone_now = w.crm.get::<Webhook>(&w.owner, gone.meta.id).await.unwrap();
        assert_eq!(gone_now.disabled_reason.as_deref(), Some("the endpoint answered 410 Gone"), "{name}");
        assert_eq!(w.delivery_states(&gone).await, [(DeliveryState::Failed, 1)], "{name}");

        // Five seconds on, the second attempt; five minutes on, the third, which succeeds.
        w.settled().await;
        let failing = w.crm.get::<Webhook>(&w.owner, flaky.meta.id).await.unwrap();
        assert!(failing.failing_since.is_some() && failing.enabled, "{name}: failing, not yet disabled");
        clock.advance(Duration::from_secs(6));
        eventually("the second attempt", || async { w.received("/flaky").len() == 2 }).await;
        w.settled().await;
        clock.advance(Duration::from_secs(301));
        eventually("the third attempt", || async { w.received("/flaky").len() == 3 }).await;
        let stamps: Vec<i64> = w
            .received("/flaky")
            .iter()
            .map(|(h, _)| header(h, "webhook-timestamp").parse().unwrap())
            .collect();
        let gaps = [stamps[1] - stamps[0], stamps[2] - stamps[1]];
        assert!(gaps[0] >= 5 && gaps[1] >= 300 && gaps[1] > gaps[0], "{name}: growing gaps {gaps:?}");
        for (headers, body) in w.received("/flaky") {
            verified(&flaky_secret, &headers, &body);
        }
        let flaky_ids: Vec<String> =
            w.received("/flaky").iter().map(|(h, _)| header(h, "webhook-id")).collect();
        assert!(flaky_ids.iter().all(|id| *id == flaky_ids[0]), "{name}: one webhook-id across retries");
        eventually("the flaky delivery to be delivered", || async {
            w.delivery_states(&flaky).await == [(DeliveryState::Delivered, 3)]
        })
        .await;
        let delivery = store.deliveries(&w.owner, flaky.meta.id, None, 1).await.unwrap().remove(0);
        let log = store.attempts(&w.owner, delivery.id).await.unwrap();
        let statuses: Vec<Option<u16>> = log.iter().map(|a| a.status).collect();
        assert_eq!(statuses, [Some(500), Some(500), Some(204)], "{name}: every attempt logged");
        eventually("a success to end the failing streak", || async {
            w.crm.get::<Webhook>(&w.owner, flaky.meta.id).await.is_ok_and(|f| f.failing_since.is_none())
        })
        .await;

        // The busy endpoint asked for ten minutes: five minutes were not enough.
        assert_eq!(w.received("/busy").len(), 1, "{name}: Retry-After is honoured");
        let waiting = store.deliveries(&w.owner, busy.meta.id, None, 1).await.unwrap().remove(0);
        let first = store.attempts(&w.owner, waiting.id).await.unwrap().remove(0);
        assert!(waiting.next_attempt_at - first.at >= chrono::Duration::seconds(600), "{name}");
        w.settled().await;
        clock.advance(Duration::from_secs(600));
        eventually("the busy endpoint's second attempt", || async { w.received("/busy").len() == 2 }).await;
        runner.shutdown().await;
    }
}

/// Deliveries carry only what the endpoint's creator may read now: once the admin who made it
/// leaves the tenant, its deliveries are given up and nothing is sent.
#[tokio::test]
async fn an_endpoint_sees_no_more_than_its_creator() {
    for (name, store) in stores().await {
        let w = World::new(store, true).await;
        let new = crm_core::model::NewMember {
            email: "ann@acme.example".into(),
            name: "Ann".into(),
            role: crm_core::Role::Admin,
            password: None,
        };
        let ann = w.crm.add_member(&w.owner, new).await.unwrap().user.id;
        let ann_scope = w.crm.scope_for(w.owner.tenant_id(), ann).await.unwrap();
        let endpoint = NewWebhook {
            url: format!("http://127.0.0.1:{}/ok", w.port),
            event_types: vec!["lead.*".into()],
            ..NewWebhook::default()
        };
        let made = w.crm.create_webhook(&ann_scope, endpoint).await.unwrap().webhook;
        assert_eq!(made.created_by, Some(ann));
        w.crm.remove_member(&w.owner, ann, None).await.unwrap();
        let runner = w.crm.run_jobs(polling()).unwrap();
        let new = NewLead { company: Some("Analytical Engines".into()), ..NewLead::default() };
        w.crm.create::<Lead>(&w.owner, new).await.unwrap();
        eventually("the delivery to be given up", || async {
            w.delivery_states(&made).await == [(DeliveryState::Failed, 0)]
        })
        .await;
        let given_up = w.store.deliveries(&w.owner, made.meta.id, None, 1).await.unwrap().remove(0);
        assert_eq!(
            given_up.last_error.as_deref(),
            Some("the endpoint's creator may no longer read this record"),
            "{name}"
        );
        assert!(w.received("/ok").is_empty(), "{name}: nothing was sent");
        runner.shutdown().await;
    }
}

/// The SMTP server `.ci/run` starts, with the maildir it writes; `None` (said on stderr)
/// outside CI when it is not configured.
fn smtp_server() -> Option<(String, std::path::PathBuf)> {
    match (std::env::var("CRM_TEST_SMTP_URL"), std::env::var("CRM_TEST_SMTP_MAILDIR")) {
        (Ok(url), Ok(dir)) if !url.is_empty() => Some((url, dir.into())),
        _ if std::env::var_os("CI").is_some() => panic!("CRM_TEST_SMTP_URL is not set under CI"),
        _ => {
            eprintln!("SKIPPED the mail part: set CRM_TEST_SMTP_URL and CRM_TEST_SMTP_MAILDIR (see .ci/run)");
            None
        }
    }
}

/// An endpoint whose every delivery fails is disabled once the failing streak is five days
/// long, and its creator gets a mail saying so.
#[tokio::test]
async fn five_failing_days_disable_an_endpoint_and_its_creator_is_told() {
    for (name, store) in stores().await {
        let smtp = smtp_server();
        let mailer = smtp.as_ref().map(|(url, _)| SmtpMailer::new(url, "CRM <crm@example.com>").unwrap());
        let w = World::with_mail(store, true, mailer).await;
        let clock = w.clock.clone().expect("a test clock");
        let (down, _) = w.endpoint("/down", &["lead.created"]).await;
        let runner = w.crm.run_jobs(polling()).unwrap();
        let lead = || NewLead { company: Some("Difference Engines".into()), ..NewLead::default() };
        w.crm.create::<Lead>(&w.owner, lead()).await.unwrap();
        eventually("the failing streak to start", || async {
            w.crm.get::<Webhook>(&w.owner, down.meta.id).await.is_ok_and(|d| d.failing_since.is_some())
        })
        .await;
        w.settled().await;
        let still = w.crm.get::<Webhook>(&w.owner, down.meta.id).await.unwrap();
        assert!(still.enabled, "{name}: a day of failures is not five");

        clock.advance(crm_core::FAILING_DISABLES_AFTER + Duration::from_secs(60));
        w.crm.create::<Lead>(&w.owner, lead()).await.unwrap();
        eventually("the endpoint to be disabled", || async {
            w.crm.get::<Webhook>(&w.owner, down.meta.id).await.is_ok_and(|d| !d.enabled)
        })
        .await;
        let disabled = w.crm.get::<Webhook>(&w.owner, down.meta.id).await.unwrap();
        assert_eq!(
            disabled.disabled_reason.as_deref(),
            Some("every delivery failed for five days"),
            "{name}"
        );
        if let Some((_, maildir)) = &smtp {
            let marker = format!("http://127.0.0.1:{}/down", w.port);
            let message = received_mail(maildir, &marker).await;
            assert!(message.contains("To: owner@acme.example"), "{name}: {message}");
            assert!(message.contains("Subject: A webhook endpoint was disabled"), "{name}: {message}");
            assert!(message.contains("every delivery failed for five days"), "{name}: {message}");
        }
        runner.shutdown().await;
    }
}

/// The message in the maildir that holds `marker`, waiting for the server to write it.
async fn received_mail(maildir: &std::path::Path, marker: &str) -> String {
    for _ in 0..500 {
        for entry in std::fs::read_dir(maildir.join("new")).into_iter().flatten().flatten() {
            // Quoted-printable bodies break long lines softly (`=` at a line's end).
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let text = raw.replace("=\r\n", "").replace("=\n", "");
            if text.contains(marker) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no message with {marker} arrived");
}
