//! The SSRF refusals end to end, with the system resolver and real sockets, inside a network
//! namespace this test creates holding loopback alone (`unshare --user --net --mount`), with
//! its own `/etc/hosts` bind-mounted so that names resolve to private and metadata addresses.
//! Nothing can leave the namespace, so a refusal that failed would show as a connection error,
//! not as a packet elsewhere.
//!
//! The test re-runs its own binary inside the namespace; outside CI it skips, visibly, where
//! unprivileged namespaces are not available.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::post;
use crm_core::outbound::OutboundPolicy;
use crm_core::webhook::{SendError, Verdict, WebhookRequest, WebhookSecret, WebhookTransport};
use crm_http::webhook_client::WebhookClient;

const INSIDE: &str = "CRM_TEST_INSIDE_NETNS";

const HOSTS: &str = "127.0.0.1 localhost receiver.test
::1 localhost
10.0.0.7 private.test
169.254.169.254 metadata.test
100.64.1.2 cgnat.test
192.168.1.20 mixed.test
127.0.0.1 mixed.test
fd00::1 v6-local.test
";

#[test]
fn ssrf_refusals_hold_end_to_end_in_a_loopback_only_namespace() {
    if std::env::var_os(INSIDE).is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        return runtime.block_on(inside());
    }
    let available = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "under CI the namespace test must run: unshare failed");
        eprintln!("SKIPPED the network-namespace SSRF test: unprivileged namespaces are not available here");
        return;
    }
    let hosts = std::env::temp_dir().join(format!("crm-netns-hosts-{}", std::process::id()));
    std::fs::write(&hosts, HOSTS).expect("write the namespace's hosts file");
    let me = std::env::current_exe().expect("this test binary");
    let script = format!(
        "ip link set lo up && mount --bind {} /etc/hosts && exec {} --exact {} --nocapture",
        hosts.display(),
        me.display(),
        "ssrf_refusals_hold_end_to_end_in_a_loopback_only_namespace"
    );
    let status = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "sh", "-c", &script])
        .env(INSIDE, "1")
        .status();
    let _ = std::fs::remove_file(&hosts);
    assert!(status.expect("run unshare").success(), "the checks inside the namespace failed");
}

async fn inside() {
    let app = Router::new()
        .route("/ok", post(|| async { "thanks" }))
        .route("/out", post(|| async { (StatusCode::FOUND, [(header::LOCATION, "http://10.0.0.7/in")]) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let port = addr.port();
    let request = |url: String| {
        let body = br#"{"type":"deal.created","data":{}}"#.to_vec();
        WebhookRequest::signed(
            &url,
            "msg_1",
            chrono::Utc::now().timestamp(),
            body,
            &[&WebhookSecret::generate()],
        )
    };

    let public_only = WebhookClient::new(OutboundPolicy::public_only());
    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://receiver.test:{port}/ok"),
        format!("http://private.test:{port}/ok"),
        format!("http://metadata.test:{port}/latest/meta-data"),
        format!("http://cgnat.test:{port}/ok"),
        format!("http://v6-local.test:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        "http://10.0.0.7/ok".to_owned(),
    ] {
        let outcome = public_only.send(&request(url.clone())).await;
        assert!(matches!(outcome, Err(SendError::Refused(_))), "{url}: {outcome:?}");
    }

    let loopback = WebhookClient::with_lookup(
        OutboundPolicy::from_allow_list("127.0.0.0/8").unwrap(),
        std::sync::Arc::new(crm_http::webhook_client::SystemLookup),
        Duration::from_secs(5),
    );
    let delivered = loopback.send(&request(format!("http://receiver.test:{port}/ok"))).await;
    assert_eq!(Verdict::of(&delivered), Verdict::Delivered, "{delivered:?}");
    let mixed = loopback.send(&request(format!("http://mixed.test:{port}/ok"))).await;
    assert!(matches!(mixed, Err(SendError::Refused(_))), "a name with a private address too: {mixed:?}");
    let redirected = loopback.send(&request(format!("http://receiver.test:{port}/out"))).await.unwrap();
    assert_eq!(redirected.status, 302, "answered, not followed to 10.0.0.7");
}
