//! `Idempotency-Key` through the real router, on SQLite and (when configured) Postgres: replays,
//! conflicts, per-principal scope, failed requests, secrets, and stale `If-Match`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use crm_core::identity::{Argon2Params, IdentityConfig};
use crm_core::{Crm, IdempotencyClaim};
use crm_http::{ApiState, router};
use crm_storage_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "a long and unusual passphrase";

/// The CRM and its router over every available store.
async fn apps() -> Vec<(Crm, Router)> {
    let identity = || IdentityConfig {
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..IdentityConfig::default()
    };
    let sqlite = Crm::builder(SqliteStore::open_in_memory().await.unwrap()).identity(identity()).build();
    let mut crms = vec![sqlite];
    if let Some(pg) = crm_storage_postgres::testing::fresh_store().await {
        crms.push(Crm::builder(pg).identity(identity()).build());
    }
    crms.into_iter().map(|crm| (crm.clone(), router(ApiState::new(crm)))).collect()
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn keyed(method: &str, uri: &str, token: &str, key: Option<&str>, body: &Value) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn get(uri: &str, token: &str) -> Request<Body> {
    let auth = format!("Bearer {token}");
    Request::builder().uri(uri).header(header::AUTHORIZATION, auth).body(Body::empty()).unwrap()
}

async fn register(app: &Router, slug: &str) -> String {
    let body = json!({
        "email": format!("owner@{slug}.example"), "password": PASSWORD, "name": "Owner",
        "tenant": { "name": slug.to_uppercase(), "slug": slug }
    });
    let request = Request::builder()
        .method("POST")
        .uri("/api/auth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send(app, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn lead_count(app: &Router, token: &str) -> usize {
    send(app, get("/api/leads?limit=200", token)).await.body["data"].as_array().unwrap().len()
}

fn assert_problem(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn a_keyed_create_runs_once_and_replays_its_response() {
    for (_, app) in apps().await {
        let token = register(&app, "acme").await;
        let lead = json!({ "last_name": "Lovelace", "email": "ada@example.com" });
        let first = send(&app, keyed("POST", "/api/leads", &token, Some("create-ada"), &lead)).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert!(first.headers.get("idempotent-replayed").is_none());
        for _ in 0..2 {
            let again = send(&app, keyed("POST", "/api/leads", &token, Some("create-ada"), &lead)).await;
            assert_eq!(again.status, StatusCode::CREATED);
            assert_eq!(again.body, first.body, "the same body");
            assert_eq!(again.headers[header::LOCATION], first.headers[header::LOCATION]);
            assert_eq!(again.headers[header::ETAG], first.headers[header::ETAG]);
            assert_eq!(again.headers["idempotent-replayed"], "true");
            assert!(again.headers.contains_key("x-request-id"));
        }
        assert_eq!(lead_count(&app, &token).await, 1);

        let other = json!({ "last_name": "Hopper" });
        let reused = send(&app, keyed("POST", "/api/leads", &token, Some("create-ada"), &other)).await;
        assert_problem(&reused, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reused.body["errors"][0]["field"], "Idempotency-Key");
        let elsewhere = send(&app, keyed("POST", "/api/accounts", &token, Some("create-ada"), &lead)).await;
        assert_problem(&elsewhere, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(lead_count(&app, &token).await, 1, "refused requests write nothing");

        // A method the path does not serve is 405, whatever key it carries.
        let wrong = send(&app, keyed("PATCH", "/api/leads/import", &token, Some("create-ada"), &lead)).await;
        assert_problem(&wrong, StatusCode::METHOD_NOT_ALLOWED);

        // Without a key the same request is simply another request.
        let unkeyed = send(&app, keyed("POST", "/api/leads", &token, None, &lead)).await;
        assert_eq!(unkeyed.status, StatusCode::CREATED);
        assert_ne!(unkeyed.body["id"], first.body["id"]);
    }
}

#[tokio::test]
async fn keys_belong_to_their_tenant_and_principal() {
    for (_, app) in apps().await {
        let acme = register(&app, "acme").await;
        let globex = register(&app, "globex").await;
        let lead = json!({ "last_name": "Lovelace" });
        let key_body = json!({ "name": "sync", "role": "manager" });
        let created = send(&app, keyed("POST", "/api/api-keys", &acme, None, &key_body)).await;
        let api_key = created.body["key"].as_str().unwrap().to_owned();
        let mut ids = Vec::new();
        for token in [&acme, &globex, &api_key] {
            let reply = send(&app, keyed("POST", "/api/leads", token, Some("same-key"), &lead)).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            assert!(reply.headers.get("idempotent-replayed").is_none(), "another principal's key is its own");
            ids.push(reply.body["id"].clone());
        }
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(lead_count(&app, &acme).await, 2);
        assert_eq!(lead_count(&app, &globex).await, 1);
    }
}

#[tokio::test]
async fn failed_requests_free_their_key() {
    for (_, app) in apps().await {
        let token = register(&app, "acme").await;
        let invalid = json!({ "email": "not an e-mail" });
        let refused = send(&app, keyed("POST", "/api/leads", &token, Some("k"), &invalid)).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.body["errors"][0]["field"], "email");
        let fixed = json!({ "email": "ada@example.com" });
        let reply = send(&app, keyed("POST", "/api/leads", &token, Some("k"), &fixed)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "a failed request records nothing: {}", reply.body);

        for bad in ["", "naïve", &"x".repeat(300)] {
            let mut request = keyed("POST", "/api/leads", &token, None, &fixed);
            if let Ok(value) = bad.parse() {
                request.headers_mut().insert("idempotency-key", value);
            } else {
                request
                    .headers_mut()
                    .insert("idempotency-key", axum::http::HeaderValue::from_bytes(bad.as_bytes()).unwrap());
            }
            let reply = send(&app, request).await;
            assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(reply.body["errors"][0]["field"], "Idempotency-Key");
        }
        assert_eq!(lead_count(&app, &token).await, 1);
    }
}

#[tokio::test]
async fn a_twin_in_flight_is_a_conflict() {
    for (crm, app) in apps().await {
        let token = register(&app, "acme").await;
        let lead = json!({ "last_name": "Lovelace" });
        // Claim the key as the router would for this very request, and leave it running.
        let scope = crm.authenticate(&token).unwrap();
        let body = lead.to_string();
        let parts: [&[u8]; 4] = [b"POST", b"/api/leads", b"application/json", body.as_bytes()];
        let IdempotencyClaim::Run(running) = crm.claim_idempotency_key(&scope, "busy", &parts).await.unwrap()
        else {
            panic!("a new key runs")
        };
        let twin = send(&app, keyed("POST", "/api/leads", &token, Some("busy"), &lead)).await;
        assert_problem(&twin, StatusCode::CONFLICT);
        crm.abandon_idempotency_key(&running).await.unwrap();
        let retry = send(&app, keyed("POST", "/api/leads", &token, Some("busy"), &lead)).await;
        assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    }
}

#[tokio::test]
async fn keyed_patches_replay_and_keep_if_match() {
    for (_, app) in apps().await {
        let token = register(&app, "acme").await;
        let created =
            send(&app, keyed("POST", "/api/leads", &token, None, &json!({ "last_name": "A" }))).await;
        let uri = format!("/api/leads/{}", created.body["id"].as_str().unwrap());
        let patch = json!({ "title": "CTO" });
        let first = send(&app, keyed("PATCH", &uri, &token, Some("p1"), &patch)).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        assert_eq!(first.body["version"], 2);
        let later = send(&app, keyed("PATCH", &uri, &token, None, &json!({ "title": "CEO" }))).await;
        assert_eq!(later.body["version"], 3);
        let replay = send(&app, keyed("PATCH", &uri, &token, Some("p1"), &patch)).await;
        assert_eq!(replay.status, StatusCode::OK);
        assert_eq!(replay.body, first.body, "the first response, not the current record");
        assert_eq!(replay.headers[header::ETAG], "\"2\"");

        let mut stale = keyed("PATCH", &uri, &token, Some("p2"), &json!({ "title": "CFO" }));
        stale.headers_mut().insert(header::IF_MATCH, "\"1\"".parse().unwrap());
        assert_problem(&send(&app, stale).await, StatusCode::PRECONDITION_FAILED);
        let current = send(&app, get(&uri, &token)).await;
        assert_eq!(
            (current.body["title"].as_str(), current.body["version"].as_i64()),
            (Some("CEO"), Some(3))
        );
    }
}

#[tokio::test]
async fn responses_with_secrets_are_not_kept() {
    for (_, app) in apps().await {
        let token = register(&app, "acme").await;
        let body = json!({ "name": "sync", "role": "member" });
        let first = send(&app, keyed("POST", "/api/api-keys", &token, Some("key-1"), &body)).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert!(first.body["key"].is_string());
        let again = send(&app, keyed("POST", "/api/api-keys", &token, Some("key-1"), &body)).await;
        assert_problem(&again, StatusCode::CONFLICT);
        assert!(again.body.get("key").is_none());
        let keys = send(&app, get("/api/api-keys", &token)).await;
        assert_eq!(keys.body["data"].as_array().map(Vec::len), Some(1), "{}", keys.body);
    }
}
