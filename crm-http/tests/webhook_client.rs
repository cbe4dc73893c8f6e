//! `WebhookClient` against a real HTTP receiver on loopback: signed deliveries, what each answer
//! means, redirects not followed, timeouts; and the SSRF matrix, refused before any packet is
//! sent — names resolve through an injected lookup, and the only address ever connected to is
//! the loopback receiver, which counts every request it gets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use crm_core::outbound::OutboundPolicy;
use crm_core::webhook::{SendError, Verdict, WebhookRequest, WebhookSecret, WebhookTransport, verify};
use crm_http::webhook_client::{HostLookup, WebhookClient};

#[derive(Debug, Default)]
struct Received {
    requests: Mutex<Vec<(String, HeaderMap, Bytes)>>,
}

async fn record(
    State(seen): State<Arc<Received>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_owned();
    seen.requests.lock().unwrap().push((path.clone(), headers, body));
    match path.as_str() {
        "/ok" => (StatusCode::OK, HeaderMap::new(), "thanks".to_owned()),
        "/gone" => (StatusCode::GONE, HeaderMap::new(), String::new()),
        "/busy" => (StatusCode::TOO_MANY_REQUESTS, retry_after("120"), String::new()),
        "/down" => {
            (StatusCode::SERVICE_UNAVAILABLE, retry_after("Fri, 01 Jan 2100 00:00:00 GMT"), String::new())
        }
        "/broken" => (StatusCode::INTERNAL_SERVER_ERROR, retry_after("120"), "stack trace".to_owned()),
        "/big" => (StatusCode::OK, HeaderMap::new(), "x".repeat(5000)),
        "/redirect" => {
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, "/landing".parse().unwrap());
            (StatusCode::FOUND, headers, String::new())
        }
        _ => (StatusCode::NOT_FOUND, HeaderMap::new(), String::new()),
    }
}

fn retry_after(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, value.parse().unwrap());
    headers
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

/// A receiver on 127.0.0.1 and what it received.
async fn receiver() -> (SocketAddr, Arc<Received>) {
    let seen = Arc::new(Received::default());
    let app = Router::new().route("/slow", post(slow)).fallback(any(record)).with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// Names resolve to what the test says, and nothing else resolves.
#[derive(Debug)]
struct FixedLookup(HashMap<&'static str, Vec<IpAddr>>);

#[async_trait]
impl HostLookup for FixedLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

fn lookup(entries: &[(&'static str, &[&str])]) -> Arc<FixedLookup> {
    let map = entries
        .iter()
        .map(|(host, ips)| (*host, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
        .collect();
    Arc::new(FixedLookup(map))
}

fn loopback_allowed() -> OutboundPolicy {
    OutboundPolicy::from_allow_list("127.0.0.0/8").unwrap()
}

fn request(url: &str, secrets: &[&WebhookSecret]) -> WebhookRequest {
    let body = br#"{"type":"deal.created","timestamp":"2026-12-07T00:00:00Z","data":{}}"#.to_vec();
    WebhookRequest::signed(url, "msg_2bK", chrono::Utc::now().timestamp(), body, secrets)
}

#[tokio::test]
async fn deliveries_are_signed_and_answers_decide_what_follows() {
    let (addr, seen) = receiver().await;
    let names = lookup(&[("receiver.test", &["127.0.0.1"])]);
    let client = WebhookClient::with_lookup(loopback_allowed(), names, Duration::from_millis(500));
    let (current, previous) = (WebhookSecret::generate(), WebhookSecret::generate());

    // By a name only the injected lookup knows: the connection went to the address it checked.
    let url = format!("http://receiver.test:{}/ok", addr.port());
    let answer = client.send(&request(&url, &[&current, &previous])).await.unwrap();
    assert_eq!((answer.status, answer.excerpt.as_str()), (200, "thanks"));
    assert_eq!(Verdict::of(&Ok(answer)), Verdict::Delivered);
    let (_, headers, body) = seen.requests.lock().unwrap()[0].clone();
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp: i64 = value("webhook-timestamp").parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    for secret in [&current, &previous] {
        assert!(verify(&[secret], &value("webhook-signature"), &value("webhook-id"), timestamp, &body, now));
    }
    assert!(!verify(
        &[&WebhookSecret::generate()],
        &value("webhook-signature"),
        "msg_2bK",
        timestamp,
        &body,
        now
    ));
    assert_eq!(
        (value("webhook-id"), value("content-type")),
        ("msg_2bK".to_owned(), "application/json".to_owned())
    );

    let at = |path: &str| format!("http://127.0.0.1:{}{path}", addr.port());
    let outcome = |path: &'static str| {
        let client = client.clone();
        let url = at(path);
        async move { client.send(&request(&url, &[&WebhookSecret::generate()])).await }
    };
    assert_eq!(Verdict::of(&outcome("/gone").await), Verdict::Gone);
    let busy = outcome("/busy").await.unwrap();
    assert_eq!(busy.retry_after, Some(Duration::from_secs(120)));
    let Verdict::Failed(failure) = Verdict::of(&Ok(busy)) else { panic!("a 429 fails") };
    assert_eq!((failure.not_before, failure.permanent), (Some(Duration::from_secs(120)), false));
    let down = outcome("/down").await.unwrap();
    assert_eq!(down.retry_after, Some(crm_core::webhook::MAX_RETRY_AFTER), "a far date, capped");
    let broken = outcome("/broken").await.unwrap();
    let Verdict::Failed(failure) = Verdict::of(&Ok(broken.clone())) else { panic!("a 500 fails") };
    assert_eq!(
        (failure.not_before, broken.excerpt.as_str()),
        (None, "stack trace"),
        "Retry-After only on 429/503"
    );
    assert_eq!(outcome("/big").await.unwrap().excerpt.len(), 1024, "the excerpt is capped");

    let redirected = outcome("/redirect").await.unwrap();
    assert_eq!(redirected.status, 302);
    assert!(matches!(Verdict::of(&Ok(redirected)), Verdict::Failed(_)));
    let paths: Vec<String> = seen.requests.lock().unwrap().iter().map(|(p, _, _)| p.clone()).collect();
    assert!(!paths.iter().any(|p| p == "/landing"), "the redirect was not followed: {paths:?}");

    assert_eq!(outcome("/slow").await, Err(SendError::Timeout));
}

#[tokio::test]
async fn requests_to_addresses_the_host_did_not_allow_are_refused_unsent() {
    let (addr, seen) = receiver().await;
    let port = addr.port();
    let names = lookup(&[
        ("localhost", &["127.0.0.1"]),
        ("private.test", &["10.0.0.7"]),
        ("metadata.test", &["169.254.169.254"]),
        ("cgnat.test", &["100.64.1.2"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("v6-local.test", &["fd00::1"]),
        ("link-v6.test", &["fe80::1"]),
        ("mixed.test", &["127.0.0.1", "192.168.1.20"]),
    ]);
    let public_only =
        WebhookClient::with_lookup(OutboundPolicy::public_only(), names.clone(), Duration::from_secs(2));
    let urls = [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://0x7f.1:{port}/ok"),
        format!("http://2130706433:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://private.test:{port}/ok"),
        format!("http://metadata.test:{port}/latest/meta-data"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://cgnat.test:{port}/ok"),
        format!("http://mapped.test:{port}/ok"),
        format!("http://v6-local.test:{port}/ok"),
        format!("http://link-v6.test:{port}/ok"),
        format!("https://private.test:{port}/ok"),
        "ftp://private.test/ok".to_owned(),
        "file:///etc/passwd".to_owned(),
        "not a url".to_owned(),
    ];
    for url in &urls {
        let outcome = public_only.send(&request(url, &[&WebhookSecret::generate()])).await;
        assert!(matches!(outcome, Err(SendError::Refused(_))), "{url}: {outcome:?}");
        let Verdict::Failed(failure) = Verdict::of(&outcome) else { panic!("{url} is not delivered") };
        assert!(failure.permanent, "{url}: a refusal is not retried");
    }
    // Allowing loopback does not allow a name that also answers a private address.
    let loopback = WebhookClient::with_lookup(loopback_allowed(), names, Duration::from_secs(2));
    let mixed = loopback.send(&request(&format!("http://mixed.test:{port}/ok"), &[])).await;
    assert!(matches!(&mixed, Err(SendError::Refused(why)) if why.contains("192.168.1.20")), "{mixed:?}");
    let unknown = loopback.send(&request(&format!("http://nowhere.test:{port}/ok"), &[])).await;
    assert!(matches!(unknown, Err(SendError::Connection(_))), "an unknown name is retried: {unknown:?}");
    assert!(seen.requests.lock().unwrap().is_empty(), "the receiver never heard from a refused request");
}
