//! Helpers shared by the HTTP test files: the router over every available store (SQLite always,
//! Postgres when `CRM_TEST_DATABASE_URL` is set), requests, and the checks every reply must pass.
#![allow(dead_code)] // each test file uses its own subset

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use crm_core::Crm;
use crm_core::identity::{Argon2Params, IdentityConfig};
use crm_http::{ApiState, HttpConfig, RateLimits, router};
use crm_storage_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const PASSWORD: &str = "a long and unusual passphrase";

/// Argon2 at its cheapest: tests hash a handful of passwords, not thousands.
pub fn cheap_identity() -> IdentityConfig {
    IdentityConfig {
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..IdentityConfig::default()
    }
}

/// A webhook sender for CRMs whose runners never run in these tests: deliveries are stored and
/// listed, never sent (and could go to public addresses only).
pub fn no_receiver() -> crm_http::webhook_client::WebhookClient {
    crm_http::webhook_client::WebhookClient::new(crm_core::outbound::OutboundPolicy::public_only())
}

/// Settings whose rate limits a matrix of hundreds of requests from one tenant cannot reach.
pub fn roomy() -> HttpConfig {
    HttpConfig {
        rate_limits: RateLimits { auth_per_minute: 100_000, api_per_minute: 100_000 },
        ..HttpConfig::default()
    }
}

/// The router over every available store, named for failure messages: SQLite in memory, and a
/// fresh Postgres database when configured (dropped with the router).
pub async fn apps_with(config: HttpConfig) -> Vec<(&'static str, Router)> {
    let sqlite = SqliteStore::open_in_memory().await.unwrap();
    let crm = Crm::builder(sqlite).identity(cheap_identity()).webhooks(no_receiver()).build();
    let mut apps = vec![("sqlite", router(ApiState::new(crm).with_config(config.clone())))];
    if let Some(pg) = crm_storage_postgres::testing::fresh_store().await {
        let crm = Crm::builder(pg).identity(cheap_identity()).webhooks(no_receiver()).build();
        apps.push(("postgres", router(ApiState::new(crm).with_config(config))));
    }
    apps
}

/// The router over every available store, with default settings, beside the `Crm` it serves
/// (for what no endpoint does: enqueueing a job).
pub async fn crms_and_apps() -> Vec<(Crm, Router)> {
    let sqlite = Crm::builder(SqliteStore::open_in_memory().await.unwrap())
        .identity(cheap_identity())
        .webhooks(no_receiver())
        .build();
    let mut crms = vec![sqlite];
    if let Some(pg) = crm_storage_postgres::testing::fresh_store().await {
        crms.push(Crm::builder(pg).identity(cheap_identity()).webhooks(no_receiver()).build());
    }
    crms.into_iter().map(|crm| (crm.clone(), router(ApiState::new(crm)))).collect()
}

/// The router over every available store, with default settings.
pub async fn apps() -> Vec<Router> {
    apps_with(HttpConfig::default()).await.into_iter().map(|(_, app)| app).collect()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    pub bytes: Bytes,
}

impl Reply {
    /// The body without its `request_id`, for comparing two problems.
    pub fn problem_sans_request_id(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("request_id");
        }
        body
    }

    pub fn str(&self, pointer: &str) -> String {
        match self.body.pointer(pointer).and_then(Value::as_str) {
            Some(s) => s.to_owned(),
            None => panic!("no string at {pointer} in {}", self.body),
        }
    }

    /// The fields named by a validation problem.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// Sends one request. Every reply, in every test, is checked against the contract's floor:
/// no 5xx for anything a client sent, and every error is a problem carrying the request id.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let what = format!("{} {}", request.method(), request.uri());
    let reply = send_in_outage(app, request).await;
    let (status, body) = (reply.status, &reply.body);
    assert!(status.as_u16() < 500, "{what} answered {status}: {body}");
    reply
}

/// Sends one request where a 5xx may be right (the store is down); every error is still a
/// problem carrying the request id.
pub async fn send_in_outage(app: &Router, request: Request<Body>) -> Reply {
    let what = format!("{} {}", request.method(), request.uri());
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.as_u16() >= 400 {
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{what} {status}");
        assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
        assert!(body["request_id"].is_string(), "{what}: problems carry the request id: {body}");
        assert_eq!(body["request_id"].as_str(), headers["x-request-id"].to_str().ok(), "{what}");
    }
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

/// A request with any body bytes and an optional content type.
pub fn raw_request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(c) = content_type {
        builder = builder.header(header::CONTENT_TYPE, c);
    }
    builder.body(body.into()).unwrap()
}

pub fn get(uri: &str, token: &str) -> Request<Body> {
    raw_request("GET", uri, Some(token), None, Body::empty())
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

/// A 422 naming `field` among its errors.
pub fn assert_invalid(reply: &Reply, field: &str) {
    assert_problem(reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.fields().iter().any(|f| f == field), "expected {field} to be named: {}", reply.body);
}

/// How a caller proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Bearer(String),
    ApiKey(String),
}

/// One authenticated caller of one app.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app: Router,
    pub credential: Credential,
}

impl Caller {
    pub fn bearer(app: &Router, token: &str) -> Self {
        Caller { app: app.clone(), credential: Credential::Bearer(token.to_owned()) }
    }

    pub fn api_key(app: &Router, key: &str) -> Self {
        Caller { app: app.clone(), credential: Credential::ApiKey(key.to_owned()) }
    }

    /// The request, authenticated, with a JSON body when given.
    pub fn request(&self, method: &str, uri: &str, body: Option<&Value>) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(uri);
        builder = match &self.credential {
            Credential::Bearer(t) => builder.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Credential::ApiKey(k) => builder.header("x-api-key", k),
        };
        match body {
            Some(b) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        }
    }

    /// Authenticates a request built elsewhere.
    pub fn authorize(&self, mut request: Request<Body>) -> Request<Body> {
        let (name, value) = match &self.credential {
            Credential::Bearer(t) => (header::AUTHORIZATION, format!("Bearer {t}")),
            Credential::ApiKey(k) => (header::HeaderName::from_static("x-api-key"), k.clone()),
        };
        request.headers_mut().insert(name, value.parse().unwrap());
        request
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.app, request).await
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<&Value>) -> Reply {
        send(&self.app, self.request(method, uri, body)).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call("GET", uri, None).await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.call("POST", uri, Some(body)).await
    }

    pub async fn patch(&self, uri: &str, body: &Value) -> Reply {
        self.call("PATCH", uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.call("DELETE", uri, None).await
    }

    /// A request that must succeed with `status`; its body.
    pub async fn ok(&self, method: &str, uri: &str, body: Option<&Value>, status: StatusCode) -> Value {
        let reply = self.call(method, uri, body).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.body);
        reply.body
    }

    /// Creates something and returns it (201).
    pub async fn create(&self, uri: &str, body: &Value) -> Value {
        self.ok("POST", uri, Some(body), StatusCode::CREATED).await
    }

    /// The id of the newest audit entry: it moves with every write and only with writes.
    pub async fn audit_head(&self) -> Option<String> {
        let reply = self.get("/api/audit-logs?limit=1").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["data"][0]["id"].as_str().map(str::to_owned)
    }
}

/// A registered tenant: its owner's session and caller.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub slug: String,
    pub session: Value,
    pub owner: Caller,
}

impl Tenant {
    pub async fn register(app: &Router, slug: &str) -> Self {
        let session = register(app, slug).await;
        let owner = Caller::bearer(app, session["access_token"].as_str().unwrap());
        Tenant { slug: slug.to_owned(), session, owner }
    }

    pub fn owner_id(&self) -> String {
        self.session["user"]["id"].as_str().unwrap().to_owned()
    }

    /// Adds a member with a password and logs them in.
    pub async fn member(&self, name: &str, role: &str) -> (String, Caller) {
        let email = format!("{name}@{}.example", self.slug);
        let body = json!({"email": email, "name": name, "role": role, "password": PASSWORD});
        let added = self.owner.create("/api/users", &body).await;
        let login = json!({"email": email, "password": PASSWORD, "tenant": self.slug});
        let reply = send(&self.owner.app, json_request("POST", "/api/auth/login", None, &login)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let caller = Caller::bearer(&self.owner.app, &reply.str("/access_token"));
        (added["user"]["id"].as_str().unwrap().to_owned(), caller)
    }

    /// Creates an API key with `role`; its id and a caller using it.
    pub async fn api_key(&self, role: &str) -> (String, Caller) {
        let created =
            self.owner.create("/api/api-keys", &json!({"name": format!("{role} key"), "role": role})).await;
        let caller = Caller::api_key(&self.owner.app, created["key"].as_str().unwrap());
        (created["id"].as_str().unwrap().to_owned(), caller)
    }
}

/// A valid create body for each record resource; `activities` needs a lead to attach to.
pub fn new_record(resource: &str, lead_id: &str) -> Value {
    match resource {
        "leads" => json!({"first_name": "Ada", "last_name": "Lovelace", "company": "Engines"}),
        "contacts" => json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example"}),
        "accounts" => json!({"name": "Initech", "domain": "initech.example"}),
        "deals" => json!({"name": "Big deal", "amount": {"amount_minor": 125000, "currency": "EUR"}}),
        "activities" => json!({"kind": "note", "subject": "Called", "lead_id": lead_id}),
        other => panic!("not a record resource: {other}"),
    }
}

/// A patch that changes a text field of each record resource.
pub fn patch_record(resource: &str, text: &str) -> Value {
    match resource {
        "leads" | "contacts" => json!({"title": text}),
        "accounts" => json!({"industry": text}),
        "deals" => json!({"name": text}),
        "activities" => json!({"subject": text}),
        other => panic!("not a record resource: {other}"),
    }
}

pub const RECORDS: [&str; 5] = ["leads", "contacts", "accounts", "deals", "activities"];
