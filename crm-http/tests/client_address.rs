//! Per-address limits on `/api/auth/*` see the client through trusted proxies only: a client
//! cannot dodge the limit by writing `X-Forwarded-For`, and clients behind a proxy do not share
//! one budget.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use crm_core::Crm;
use crm_core::identity::{Argon2Params, IdentityConfig};
use crm_http::{ApiState, HttpConfig, RateLimits, router};
use crm_storage_sqlite::SqliteStore;
use tower::ServiceExt;

async fn app(trusted: &[&str]) -> Router {
    let cheap = IdentityConfig {
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..IdentityConfig::default()
    };
    let crm = Crm::builder(SqliteStore::open_in_memory().await.unwrap()).identity(cheap).build();
    let config = HttpConfig {
        rate_limits: RateLimits { auth_per_minute: 2, ..RateLimits::default() },
        trusted_proxies: trusted.iter().map(|r| r.parse().unwrap()).collect(),
        ..HttpConfig::default()
    };
    router(ApiState::new(crm).with_config(config))
}

/// A login attempt from `peer`, claiming to forward for `forwarded_for`.
async fn login(app: &Router, peer: &str, forwarded_for: Option<&str>) -> StatusCode {
    let body = r#"{"email":"x@example.com","password":"not the password!","tenant":"nobody"}"#;
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let peer: SocketAddr = format!("{peer}:50000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    if let Some(value) = forwarded_for {
        request.headers_mut().insert("x-forwarded-for", value.parse().unwrap());
    }
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn a_direct_client_cannot_choose_its_address() {
    let app = app(&[]).await;
    let statuses = [
        login(&app, "203.0.113.9", Some("1.1.1.1")).await,
        login(&app, "203.0.113.9", Some("2.2.2.2")).await,
        login(&app, "203.0.113.9", Some("3.3.3.3")).await,
    ];
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
    assert_eq!(
        login(&app, "198.51.100.1", None).await,
        StatusCode::UNAUTHORIZED,
        "another client has its own"
    );
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    let app = app(&["10.0.0.0/8"]).await;
    for _ in 0..2 {
        assert_eq!(login(&app, "10.0.0.2", Some("198.51.100.7")).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&app, "10.0.0.2", Some("198.51.100.7")).await, StatusCode::TOO_MANY_REQUESTS);
    // A spoofed leftmost entry does not help: the proxy appended the real address.
    assert_eq!(login(&app, "10.0.0.3", Some("9.9.9.9, 198.51.100.7")).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login(&app, "10.0.0.2", Some("198.51.100.8")).await, StatusCode::UNAUTHORIZED);
}
