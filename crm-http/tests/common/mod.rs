//! Helpers shared by the HTTP test crates: the router over every available store, requests,
//! and problem assertions.
#![allow(dead_code)] // Each test crate uses a subset.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use crm_core::Crm;
use crm_core::identity::{Argon2Params, IdentityConfig};
use crm_http::{ApiState, router};
use crm_storage_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const PASSWORD: &str = "a long and unusual passphrase";

pub fn cheap_identity() -> IdentityConfig {
    IdentityConfig {
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..IdentityConfig::default()
    }
}

/// The router over every available store: SQLite in memory, and a fresh Postgres database when
/// configured (dropped with the router).
pub async fn apps() -> Vec<Router> {
    let sqlite = SqliteStore::open_in_memory().await.unwrap();
    let mut apps = vec![router(ApiState::new(Crm::builder(sqlite).identity(cheap_identity()).build()))];
    if let Some(pg) = crm_storage_postgres::testing::fresh_store().await {
        apps.push(router(ApiState::new(Crm::builder(pg).identity(cheap_identity()).build())));
    }
    apps
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    /// The body as JSON, `Null` when it is not JSON.
    pub body: Value,
    /// The body as sent.
    pub bytes: axum::body::Bytes,
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, bytes }
}

pub fn json_request(method: &str, uri: &str, token: Option<&str>, body: &Value) -> Request<Body> {
    let mut builder =
        Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

pub fn get(uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

pub async fn register(app: &Router, slug: &str) -> Value {
    let body = json!({
        "email": format!("owner@{slug}.example"), "password": PASSWORD, "name": "Owner",
        "tenant": { "name": slug.to_uppercase(), "slug": slug }
    });
    let reply = send(app, json_request("POST", "/api/auth/register", None, &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    reply.body
}

pub fn assert_problem(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(reply.body["status"], status.as_u16());
    assert!(reply.body["type"].as_str().is_some_and(|t| t.starts_with("https://")));
    assert!(reply.body["request_id"].is_string(), "problems carry the request id: {}", reply.body);
}
