//! The OpenAPI document against the router it describes — SQLite always, Postgres when
//! `CRM_TEST_DATABASE_URL` is set: every contract endpoint documented, every documented
//! operation served with the security it claims, and real responses matching the documented
//! status, media type, headers and schema, field for field.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use crm_core::Crm;
use crm_http::{ApiState, router};
use crm_storage_sqlite::SqliteStore;
use serde_json::{Value, json};

/// The endpoints of `shared/API.md`, which the document must describe exactly.
/// Headers on every reply whatever the operation (framing, request id, security, CORS).
const EVERY_REPLY: [&str; 9] = [
    "content-type",
    "content-length",
    "x-request-id",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
    "vary",
    "date",
];

const CONTRACT: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/openapi.json"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/me"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("GET", "/api/users/{id}"),
    ("PATCH", "/api/users/{id}"),
    ("DELETE", "/api/users/{id}"),
    ("GET", "/api/api-keys"),
    ("POST", "/api/api-keys"),
    ("DELETE", "/api/api-keys/{id}"),
    ("GET", "/api/leads"),
    ("POST", "/api/leads"),
    ("GET", "/api/leads/{id}"),
    ("PATCH", "/api/leads/{id}"),
    ("DELETE", "/api/leads/{id}"),
    ("POST", "/api/leads/{id}/convert"),
    ("POST", "/api/leads/import"),
    ("GET", "/api/leads/export"),
    ("GET", "/api/contacts"),
    ("POST", "/api/contacts"),
    ("GET", "/api/contacts/{id}"),
    ("PATCH", "/api/contacts/{id}"),
    ("DELETE", "/api/contacts/{id}"),
    ("GET", "/api/accounts"),
    ("POST", "/api/accounts"),
    ("GET", "/api/accounts/{id}"),
    ("PATCH", "/api/accounts/{id}"),
    ("DELETE", "/api/accounts/{id}"),
    ("GET", "/api/deals"),
    ("POST", "/api/deals"),
    ("GET", "/api/deals/{id}"),
    ("PATCH", "/api/deals/{id}"),
    ("DELETE", "/api/deals/{id}"),
    ("GET", "/api/pipelines"),
    ("POST", "/api/pipelines"),
    ("GET", "/api/pipelines/{id}"),
    ("PATCH", "/api/pipelines/{id}"),
    ("GET", "/api/activities"),
    ("POST", "/api/activities"),
    ("GET", "/api/activities/{id}"),
    ("PATCH", "/api/activities/{id}"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{id}"),
    ("PATCH", "/api/tasks/{id}"),
    ("DELETE", "/api/tasks/{id}"),
    ("DELETE", "/api/activities/{id}"),
    ("GET", "/api/{resource}/{id}/timeline"),
    ("GET", "/api/audit-logs"),
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("POST", "/api/jobs/{id}/retry"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("GET", "/api/webhooks"),
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks/{id}"),
    ("PATCH", "/api/webhooks/{id}"),
    ("DELETE", "/api/webhooks/{id}"),
    ("POST", "/api/webhooks/{id}/rotate-secret"),
    ("GET", "/api/webhooks/{id}/deliveries"),
    ("POST", "/api/webhooks/{id}/test"),
    ("POST", "/api/webhooks/deliveries/{id}/redeliver"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn fetch_document(app: &Router) -> Value {
    let reply = send(app, Request::builder().uri("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    assert!(reply.headers.contains_key("x-request-id"), "the same middleware as every route");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    reply.body
}

/// Every documented (METHOD, path).
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// The documented path template a concrete path matches, preferring static segments (as the
/// router does: `/api/leads/import` before `/api/leads/{id}`).
fn template_of(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s);
            matches.then(|| (parts.iter().filter(|p| !p.starts_with('{')).count(), template.clone()))
        })
        .max()
        .map(|(_, template)| template)
}

/// A concrete path for a template: `{resource}` is `leads`, every other parameter `id`.
fn concrete(template: &str, id: &str) -> String {
    template.replace("{resource}", "leads").replace("{id}", id)
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => {
            let target = doc.pointer(pointer.trim_start_matches('#')).unwrap_or_else(|| {
                panic!("dangling reference {pointer}");
            });
            resolve(doc, target)
        }
        None => value,
    }
}

/// Every `$ref` in the document.
fn collect_references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            out.extend(map.get("$ref").and_then(Value::as_str));
            map.values().for_each(|v| collect_references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// A request to send through [`Contract::send`].
struct Call {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

fn call(method: &str, uri: impl Into<String>) -> Call {
    Call { method: method.to_owned(), uri: uri.into(), headers: Vec::new(), body: None }
}

impl Call {
    fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn json(self, body: Value) -> Self {
        self.raw("application/json", body.to_string())
    }

    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    fn request(&self) -> Request<Body> {
        let mut builder = Request::builder().method(self.method.as_str()).uri(&self.uri);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        match &self.body {
            Some((content_type, bytes)) => {
                builder.header(header::CONTENT_TYPE, content_type).body(Body::from(bytes.clone())).unwrap()
            }
            None => builder.body(Body::empty()).unwrap(),
        }
    }
}

/// The document, and what the router was seen to answer.
struct Contract {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
    /// (METHOD, path template, status) of every checked response.
    observed: BTreeSet<(String, String, u16)>,
}

impl Contract {
    fn new(doc: Value) -> Self {
        Self { doc, validators: HashMap::new(), observed: BTreeSet::new() }
    }

    /// Sends the call and checks the reply against the documentation of its operation.
    async fn send(&mut self, app: &Router, call: Call) -> Reply {
        let reply = send(app, call.request()).await;
        self.check(&call.method, &call.uri, &reply);
        reply
    }

    /// Sends and insists on a status, so a test step cannot silently go another way.
    async fn expect(&mut self, app: &Router, call: Call, status: u16) -> Reply {
        let (method, uri) = (call.method.clone(), call.uri.clone());
        let reply = self.send(app, call).await;
        assert_eq!(reply.status.as_u16(), status, "{method} {uri}: {}", reply.body);
        reply
    }

    fn check(&mut self, method: &str, uri: &str, reply: &Reply) {
        let path = uri.split('?').next().unwrap();
        let template = template_of(&self.doc, path).unwrap_or_else(|| panic!("{path} is not documented"));
        let status = reply.status.as_u16();
        let context = format!("{method} {template} → {status}");
        let doc = self.doc.clone();
        let operation = &doc["paths"][&template][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {template} is served but not documented");
        let response = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{context} is not a documented status: {}", reply.body));
        let response = resolve(&doc, response);
        let headers: Vec<(String, bool)> = response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, header)| (name.to_ascii_lowercase(), header["required"] == json!(true)))
            .collect();
        for (name, _) in headers.iter().filter(|(_, required)| *required) {
            assert!(reply.headers.contains_key(name.as_str()), "{context}: required header {name} missing");
        }
        let documented: Vec<&String> = headers.iter().map(|(name, _)| name).collect();
        // Every header a client may act on is documented; the rest are on every reply.
        for name in reply.headers.keys() {
            let name = name.as_str();
            let universal = EVERY_REPLY.contains(&name) || name.starts_with("access-control-");
            assert!(
                universal || documented.iter().any(|d| *d == name),
                "{context}: undocumented header {name}"
            );
        }
        let media = reply
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().trim().to_owned());
        match (response.get("content"), media) {
            (None, _) => assert!(reply.bytes.is_empty(), "{context}: an undocumented body"),
            (Some(content), Some(media)) => {
                let schema = content
                    .get(&media)
                    .unwrap_or_else(|| panic!("{context}: undocumented media type {media}"))
                    .get("schema")
                    .unwrap_or_else(|| panic!("{context}: {media} has no schema"));
                if media.ends_with("json") {
                    let body: Value = serde_json::from_slice(&reply.bytes)
                        .unwrap_or_else(|e| panic!("{context}: the {media} body is not JSON: {e}"));
                    self.validate(&context, schema, &body);
                } else {
                    assert_eq!(resolve(&doc, schema)["type"], "string", "{context}");
                    assert!(std::str::from_utf8(&reply.bytes).is_ok(), "{context}: {media} is not text");
                }
            }
            (Some(_), None) => panic!("{context}: a documented body, but no Content-Type"),
        }
        self.observed.insert((method.to_owned(), template, status));
    }

    /// Validates with a JSON Schema 2020-12 validator, then insists every field in the body is
    /// documented (the schemas do not forbid extra properties, clients must not meet any).
    fn validate(&mut self, context: &str, schema: &Value, body: &Value) {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            let mut root = schema.clone();
            root.as_object_mut().unwrap().insert("components".into(), self.doc["components"].clone());
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("{context}: the schema does not compile: {e}"));
            self.validators.insert(key.clone(), validator);
        }
        let errors: Vec<String> =
            self.validators[&key].iter_errors(body).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{context}: the body does not match its schema: {errors:#?}\n{body}");
        let undocumented = undocumented_fields(&self.doc, &[schema], body, "");
        assert!(undocumented.is_empty(), "{context}: undocumented fields {undocumented:?} in {body}");
    }
}

/// Fields of `value` that its schema does not name. `schemas` all apply (an `allOf`); of a
/// `oneOf` or `anyOf`, the branch that documents the most of the value is the one it meets.
fn undocumented_fields(doc: &Value, schemas: &[&Value], value: &Value, at: &str) -> Vec<String> {
    let mut all = Vec::new();
    for schema in schemas {
        conjunction(doc, schema, &mut all);
    }
    undocumented_under(doc, all, value, at)
}

/// [`undocumented_fields`] under schemas whose `allOf` parts are already listed.
fn undocumented_under<'a>(doc: &'a Value, all: Vec<&'a Value>, value: &Value, at: &str) -> Vec<String> {
    if let Some(i) = all.iter().position(|s| s.get("oneOf").or_else(|| s.get("anyOf")).is_some()) {
        let branches = all[i].get("oneOf").or_else(|| all[i].get("anyOf")).and_then(Value::as_array).unwrap();
        let rest: Vec<&Value> = all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| *s).collect();
        return branches
            .iter()
            .map(|branch| {
                let mut with_branch = rest.clone();
                conjunction(doc, branch, &mut with_branch);
                undocumented_under(doc, with_branch, value, at)
            })
            .min_by_key(Vec::len)
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            let extra: Vec<&Value> = all.iter().filter_map(|s| s.get("additionalProperties")).collect();
            // A schema that names no property (`{}`, a plain `object`) says nothing about fields.
            let free_form = all.iter().all(|s| s.get("properties").is_none())
                && !extra.iter().any(|s| **s == Value::Bool(false));
            for (key, field) in map {
                let path = format!("{at}.{key}");
                let named: Vec<&Value> = all.iter().filter_map(|s| s.get("properties")?.get(key)).collect();
                let field_schemas = if named.is_empty() { extra.clone() } else { named };
                if field_schemas.is_empty() {
                    if !free_form {
                        out.push(path);
                    }
                } else if field_schemas.iter().any(|s| **s == Value::Bool(false)) {
                    out.push(path);
                } else {
                    let objects: Vec<&Value> = field_schemas.into_iter().filter(|s| s.is_object()).collect();
                    out.extend(undocumented_fields(doc, &objects, field, &path));
                }
            }
        }
        Value::Array(items) => {
            let item_schemas: Vec<&Value> = all.iter().filter_map(|s| s.get("items")).collect();
            for (i, item) in items.iter().enumerate() {
                out.extend(undocumented_fields(doc, &item_schemas, item, &format!("{at}[{i}]")));
            }
        }
        _ => {}
    }
    out
}

/// A schema and, recursively, its `allOf` parts, references followed.
fn conjunction<'a>(doc: &'a Value, schema: &'a Value, out: &mut Vec<&'a Value>) {
    let schema = resolve(doc, schema);
    out.push(schema);
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        conjunction(doc, part, out);
    }
}

/// A value a query parameter accepts, from its schema.
fn sample(doc: &Value, parameter: &Value) -> Option<String> {
    let name = parameter["name"].as_str().unwrap();
    let mut schema = resolve(doc, &parameter["schema"]);
    if let Some(first) = schema.get("oneOf").and_then(|items| items.get(0)) {
        schema = resolve(doc, first);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values[0].as_str().map(str::to_owned);
    }
    let value = match (schema["type"].as_str(), schema["format"].as_str()) {
        _ if name == "cursor" => return None,
        (Some("integer"), _) => schema["default"].as_i64().unwrap_or(1).to_string(),
        (_, Some("uuid")) => uuid::Uuid::now_v7().to_string(),
        (_, Some("date-time")) => "2020-01-01T00:00:00Z".to_owned(),
        _ if name == "stage" => "proposal".to_owned(),
        _ => "zz".to_owned(),
    };
    Some(value)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_exactly_what_is_served() {
    for app in apps().await {
        document_matches_router(&app).await;
    }
}

async fn document_matches_router(app: &Router) {
    let doc = fetch_document(app).await;
    let mut contract = Contract::new(doc.clone());
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "crm-http");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut references = Vec::new();
    collect_references(&doc, &mut references);
    for reference in references {
        assert!(doc.pointer(reference.trim_start_matches('#')).is_some(), "dangling reference {reference}");
    }

    let documented = operations(&doc);
    let endpoints: BTreeSet<(String, String)> =
        CONTRACT.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, endpoints, "the document describes exactly the API.md endpoints");

    let mut operation_ids = BTreeSet::new();
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method.to_lowercase()];
        let id = operation["operationId"].as_str().unwrap();
        assert!(operation_ids.insert(id.to_owned()), "operation id {id} is used twice");
        let secured = !operation["security"].as_array().unwrap().is_empty();
        let path_params: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let template_params: BTreeSet<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        assert_eq!(path_params, template_params, "{method} {path} documents its path parameters");

        // Served, and with the security it claims: without credentials a secured operation is
        // 401 and a public one never is.
        let uri = concrete(path, &uuid::Uuid::now_v7().to_string());
        let reply = contract.send(app, call(method, &uri).json(json!({}))).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented, not served");
        if secured {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} claims authentication");
        } else {
            assert!(
                ![StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND].contains(&reply.status),
                "{method} {path} claims to be public and served, got {}",
                reply.status
            );
        }
        // No undocumented method is served on a documented path.
        for other in METHODS.iter().filter(|m| !documented.contains(&(m.to_string(), path.clone()))) {
            let request = Request::builder().method(*other).uri(&uri).body(Body::empty()).unwrap();
            assert_eq!(send(app, request).await.status, StatusCode::METHOD_NOT_ALLOWED, "{other} {path}");
        }
    }

    // Nested under a prefix, the document names it as its server, so its paths resolve.
    let nested = Router::new().nest("/crm", app.clone());
    let reply = send(&nested, Request::builder().uri("/crm/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.body["servers"][0]["url"], "/crm");
    assert!(doc.get("servers").is_none());
}

#[tokio::test]
async fn real_responses_match_the_documented_statuses_headers_and_schemas() {
    for (crm, app) in crms_and_apps().await {
        let mut contract = Contract::new(fetch_document(&app).await);
        exercise(&app, &mut contract).await;
        jobs(&crm, &app, &mut contract).await;
        webhooks(&app, &mut contract).await;
        // Every operation was seen to succeed, so every success schema was checked.
        for (method, path) in operations(&contract.doc) {
            let succeeded = contract.observed.iter().any(|(m, p, s)| (m, p) == (&method, &path) && *s < 300);
            assert!(succeeded, "{method} {path} was never exercised successfully");
        }
    }
}

#[tokio::test]
async fn rate_limited_responses_match_the_document() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let limits = crm_http::RateLimits { auth_per_minute: 2, api_per_minute: 2 };
    let config = crm_http::HttpConfig { rate_limits: limits, ..Default::default() };
    let app =
        router(ApiState::new(Crm::builder(store).identity(cheap_identity()).build()).with_config(config));
    let mut c = Contract::new(fetch_document(&app).await);
    let session = register_through(&mut c, &app, "acme").await;
    let token = session["access_token"].as_str().unwrap();
    c.expect(&app, call("GET", "/api/leads").token(token), 200).await;
    c.expect(&app, call("GET", "/api/leads").token(token), 200).await;
    c.expect(&app, call("GET", "/api/leads").token(token), 429).await;
    let login = json!({ "email": "owner@acme.example", "password": PASSWORD, "tenant": "acme" });
    c.expect(&app, call("POST", "/api/auth/login").json(login.clone()), 200).await;
    c.expect(&app, call("POST", "/api/auth/login").json(login), 429).await;
}

async fn register_through(c: &mut Contract, app: &Router, slug: &str) -> Value {
    let body = json!({
        "email": format!("owner@{slug}.example"), "password": PASSWORD, "name": "Owner",
        "tenant": { "name": slug.to_uppercase(), "slug": slug }
    });
    c.expect(app, call("POST", "/api/auth/register").json(body), 201).await.body
}

/// Drives every documented operation through its successes and the failures a client can cause.
async fn exercise(app: &Router, c: &mut Contract) {
    c.expect(app, call("GET", "/health"), 200).await;
    c.expect(app, call("GET", "/health/ready"), 200).await;
    c.expect(app, call("GET", "/openapi.json"), 200).await;

    let session = auth(app, c).await;
    let token = session["access_token"].as_str().unwrap();
    let owner_id = session["user"]["id"].as_str().unwrap();

    let account = records(
        app,
        c,
        token,
        "/api/accounts",
        json!({
            "name": "Navy Labs", "domain": "navy.example", "industry": "Defence", "owner_id": owner_id,
            "custom_fields": {
                "tier": "gold", "seats": 12, "regions": ["eu", "us"], "active": true, "note": null
            }
        }),
        json!({ "industry": null, "custom_fields": { "tier": "silver" } }),
    )
    .await;
    let contact = records(app, c, token, "/api/contacts", json!({
        "first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example", "phone": "+1 555 0100",
        "title": "Rear Admiral", "account_id": account, "custom_fields": { "seats": 10 }
    }), json!({ "title": "Commodore", "phone": null })).await;
    let lead = records(app, c, token, "/api/leads", json!({
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@engines.example", "company": "Engines",
        "title": "Analyst", "source": "web", "status": "contacted", "custom_fields": { "seats": 10 }
    }), json!({ "status": "qualified", "source": null })).await;
    let deal = records(app, c, token, "/api/deals", json!({
        "name": "Navy deal", "amount": { "amount_minor": 125000, "currency": "EUR" },
        "stage": "qualification",
        "expected_close_date": "2030-06-30", "probability": 40, "account_id": account, "contact_id": contact,
        "custom_fields": { "seats": 10 }
    }), json!({ "stage": "proposal", "amount": null, "probability": 60 })).await;
    records(
        app,
        c,
        token,
        "/api/activities",
        json!({
            "kind": "call", "subject": "Intro call", "body": "Talked engines.",
            "occurred_at": "2024-05-01T10:00:00Z", "lead_id": lead
        }),
        json!({ "kind": "meeting", "body": null }),
    )
    .await;
    c.expect(
        app,
        call("POST", "/api/activities").token(token).json(json!({
            "kind": "note", "subject": "Deal note", "deal_id": deal
        })),
        201,
    )
    .await;

    let task = json!({
        "title": "Call Ada", "description": "About engines", "due_at": "2030-01-01T09:00:00Z",
        "priority": "high", "assignee_id": owner_id, "lead_id": lead, "custom_fields": { "seats": 10 }
    });
    records(app, c, token, "/api/tasks", task, json!({ "status": "done", "due_at": null })).await;
    tasks(app, c, token, &deal).await;

    conversion_and_timelines(app, c, token, &lead, &deal).await;
    members(app, c, token, owner_id).await;
    api_keys(app, c, token).await;
    pipelines(app, c, token).await;
    transfer(app, c, token).await;
    query_parameters(app, c, token, &lead).await;
    text_rules(app, c, token).await;
    whole_inputs(app, c, token, &lead, &deal).await;
    whole_changes(app, c, token).await;
    // JSON Schema's `integer` admits `40.0`; so does the server. A fraction is refused.
    let whole = json!({ "name": "Floats", "probability": 40.0, "amount": { "amount_minor": 100.0, "currency": "EUR" } });
    let floats = c.expect(app, call("POST", "/api/deals").token(token).json(whole), 201).await;
    assert_eq!(
        (&floats.body["probability"], &floats.body["amount"]["amount_minor"]),
        (&json!(40), &json!(100))
    );
    let fraction = json!({ "name": "Fraction", "probability": 40.5 });
    let refused = c.expect(app, call("POST", "/api/deals").token(token).json(fraction), 422).await;
    assert!(refused.body.to_string().contains("probability"), "{}", refused.body);
}

/// Rules across fields are the server's too: a create input's whole schema (its reference
/// group, the text fields of which one must be filled) accepts exactly the bodies the server
/// accepts.
async fn whole_inputs(app: &Router, c: &mut Contract, token: &str, lead: &str, deal: &str) {
    let cases = [
        ("/api/leads", "NewLead", json!({ "first_name": "Ada" }), false),
        ("/api/leads", "NewLead", json!({ "email": "ada@engines.example" }), true),
        ("/api/leads", "NewLead", json!({ "company": "  ", "first_name": "Ada" }), false),
        ("/api/leads", "NewLead", json!({ "last_name": "Lovelace", "company": null }), true),
        ("/api/contacts", "NewContact", json!({ "title": "Analyst" }), false),
        ("/api/contacts", "NewContact", json!({ "first_name": "Ada" }), true),
        ("/api/activities", "NewActivity", json!({ "kind": "note", "lead_id": lead, "body": "a\nb" }), true),
        ("/api/activities", "NewActivity", json!({ "kind": "note", "lead_id": lead, "subject": " " }), false),
        ("/api/activities", "NewActivity", json!({ "kind": "note", "subject": "s" }), false),
        (
            "/api/activities",
            "NewActivity",
            json!({ "kind": "note", "subject": "s", "lead_id": lead, "deal_id": deal }),
            false,
        ),
        (
            "/api/activities",
            "NewActivity",
            json!({ "kind": "note", "subject": "s", "lead_id": null, "deal_id": deal }),
            true,
        ),
        ("/api/tasks", "NewTask", json!({ "title": "t", "lead_id": lead, "deal_id": deal }), false),
        ("/api/tasks", "NewTask", json!({ "title": "t", "lead_id": null, "deal_id": deal }), true),
        ("/api/tasks", "NewTask", json!({ "title": "t" }), true),
    ];
    for (path, schema, body, accepted) in cases {
        let root =
            json!({ "components": c.doc["components"], "$ref": format!("#/components/schemas/{schema}") });
        let validator = jsonschema::validator_for(&root).unwrap();
        assert_eq!(validator.is_valid(&body), accepted, "{schema}: the schema on {body}");
        let status = if accepted { 201 } else { 422 };
        c.expect(app, call("POST", path).token(token).json(body), status).await;
    }
}

/// The same for patches, conversions, money and stage lists: each schema accepts exactly the
/// bodies the server accepts where what it refuses does not depend on what is stored.
async fn whole_changes(app: &Router, c: &mut Contract, token: &str) {
    let post = |path: &str, body: Value| call("POST", path).token(token).json(body);
    let lead = c.expect(app, post("/api/leads", json!({ "email": "grace@navy.example" })), 201).await;
    let lead = lead.body["id"].as_str().unwrap().to_owned();
    let note = json!({ "kind": "note", "lead_id": lead, "subject": "s" });
    let note =
        c.expect(app, post("/api/activities", note), 201).await.body["id"].as_str().unwrap().to_owned();
    let (lead_path, note_path) = (format!("/api/leads/{lead}"), format!("/api/activities/{note}"));
    let open = json!([{ "key": "open", "name": "Open", "kind": "open" }, { "key": "won", "name": "Won", "kind": "won" }]);
    let cases = [
        ("PATCH", lead_path.clone(), "LeadPatch", json!({ "status": "converted" }), 422),
        ("PATCH", lead_path.clone(), "LeadPatch", json!({ "status": "contacted" }), 200),
        ("PATCH", note_path.clone(), "ActivityPatch", json!({ "subject": " ", "body": null }), 422),
        ("PATCH", note_path.clone(), "ActivityPatch", json!({ "subject": null, "body": "b" }), 200),
        (
            "POST",
            "/api/deals".into(),
            "NewDeal",
            json!({ "name": "D", "amount": { "amount_minor": 1, "currency": "ABC" } }),
            422,
        ),
        (
            "POST",
            "/api/deals".into(),
            "NewDeal",
            json!({ "name": "D", "amount": { "amount_minor": 1, "currency": "EUR" } }),
            201,
        ),
        (
            "POST",
            "/api/pipelines".into(),
            "NewPipeline",
            json!({ "name": "P", "stages": [{ "key": "won", "name": "Won", "kind": "won" }] }),
            422,
        ),
        ("POST", "/api/pipelines".into(), "NewPipeline", json!({ "name": "P", "stages": open }), 201),
        ("POST", format!("{lead_path}/convert"), "ConvertLead", json!({ "contact": { "email": null } }), 200),
    ];
    for (method, path, schema, body, status) in cases {
        let root =
            json!({ "components": c.doc["components"], "$ref": format!("#/components/schemas/{schema}") });
        let validator = jsonschema::validator_for(&root).unwrap();
        assert_eq!(validator.is_valid(&body), status != 422, "{schema}: the schema on {body}");
        c.expect(app, call(method, path).token(token).json(body), status).await;
    }
}

/// The schema's string rules are the server's: for tricky strings in every text-like field
/// type, the create input's schema accepts exactly what the server accepts (201) and refuses
/// what it refuses (422 naming the field).
async fn text_rules(app: &Router, c: &mut Contract, token: &str) {
    let long = |n: usize, s: &str| s.repeat(n);
    let samples: Vec<String> = [
        "",
        " ",
        "a",
        "  a  ",
        "tab\there",
        "line\nbreak",
        "trail\n",
        "cr\r",
        "\u{85}",
        "nul\u{0}",
        "\u{a0}",
        "é",
        "ada@engines.example",
        "ada@engines",
        "a b@c.de",
        "a@-b.de",
        "a@b-.de",
        "é@b.de",
        "a@bé.de",
        "a@@b.de",
        "@b.de",
        "a@b..de",
        "a@B.DE",
        "+1 (555) 010-0100",
        "call me",
        "12",
        "x/12",
        "sub.example.com",
        "example",
        "-a.com",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([long(200, "x"), long(201, "x"), long(200, "é"), long(64, "a") + "@b.de", long(65, "a") + "@b.de"])
    .chain([long(20_000, "x"), long(19_999, "y") + "\n", long(20_001, "z")])
    .chain([long(63, "a") + ".de", long(64, "a") + ".de", "a@".to_owned() + &long(63, "b") + ".de"])
    .collect();
    let cases = [
        ("/api/leads", "NewLead", "email", json!({ "company": "Acme" })),
        ("/api/leads", "NewLead", "phone", json!({ "company": "Acme" })),
        ("/api/leads", "NewLead", "first_name", json!({ "company": "Acme" })),
        ("/api/accounts", "NewAccount", "name", json!({})),
        ("/api/accounts", "NewAccount", "domain", json!({ "name": "Acme" })),
        ("/api/tasks", "NewTask", "title", json!({})),
        ("/api/tasks", "NewTask", "description", json!({ "title": "Call" })),
    ];
    for (path, schema, field, base) in cases {
        let property = resolve(&c.doc, &c.doc["components"]["schemas"][schema]["properties"][field]).clone();
        let validator = jsonschema::validator_for(&property).unwrap();
        for sample in &samples {
            let mut body = base.clone();
            body[field] = json!(sample);
            let reply = send(app, call("POST", path).token(token).json(body).request()).await;
            let accepted = match reply.status.as_u16() {
                201 => true,
                422 if reply.fields().contains(&field.to_owned()) => false,
                other => panic!("{path} {field}={sample:?}: {other} {}", reply.body),
            };
            assert_eq!(
                validator.is_valid(&json!(sample)),
                accepted,
                "{schema}.{field} = {sample:?}: the schema and the server disagree ({})",
                reply.body
            );
        }
    }
}

/// Task lists: every filter, `me`, named filters and the due-time order with its cursors.
async fn tasks(app: &Router, c: &mut Contract, token: &str, deal: &str) {
    for due in ["2020-01-01T00:00:00Z", "2031-01-01T00:00:00Z"] {
        let task = json!({ "title": "Renew", "due_at": due, "assignee_id": null, "deal_id": deal });
        c.expect(app, call("POST", "/api/tasks").token(token).json(task), 201).await;
    }
    c.expect(app, call("POST", "/api/tasks").token(token).json(json!({ "title": "Undated" })), 201).await;
    let titles = |reply: &Reply| -> Vec<String> {
        let data = reply.body["data"].as_array().unwrap();
        data.iter().map(|t| format!("{} {}", t["title"].as_str().unwrap(), t["due_at"])).collect()
    };
    let overdue = c.expect(app, call("GET", "/api/tasks?overdue=true").token(token), 200).await;
    assert_eq!(titles(&overdue), ["Renew \"2020-01-01T00:00:00Z\""]);
    let on_deal = format!("/api/tasks?deal_id={deal}&sort=-due_at&limit=1");
    let first = c.expect(app, call("GET", on_deal.as_str()).token(token), 200).await;
    assert_eq!(titles(&first), ["Renew \"2031-01-01T00:00:00Z\""]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = c.expect(app, call("GET", format!("{on_deal}&cursor={cursor}")).token(token), 200).await;
    assert_eq!(titles(&second), ["Renew \"2020-01-01T00:00:00Z\""]);
    let ascending = c.expect(app, call("GET", "/api/tasks?sort=due_at&status=open").token(token), 200).await;
    assert_eq!(titles(&ascending).last().map(String::as_str), Some("Undated null"), "undated last");
    let mine = c.expect(app, call("GET", "/api/tasks?assignee_id=me&status=done").token(token), 200).await;
    assert_eq!(titles(&mine), ["Call Ada null"], "assigned to the caller and done");
    let due = "/api/tasks?due_after=2030-06-01T00:00:00Z&due_before=2031-06-01T00:00:00Z&priority=normal";
    let ranged = c.expect(app, call("GET", due).token(token), 200).await;
    assert_eq!(titles(&ranged), ["Renew \"2031-01-01T00:00:00Z\""]);
    for bad in [
        "overdue=false",
        "priority=whenever",
        "due_after=soon",
        "assignee_id=you",
        "completed_after=2020-01-01T00:00:00Z",
        "sort=title",
    ] {
        let reply = c.expect(app, call("GET", format!("/api/tasks?{bad}")).token(token), 422).await;
        assert_eq!(reply.fields(), [bad.split('=').next().unwrap()], "{bad}");
    }
    let two = json!({ "title": "Two", "lead_id": uuid::Uuid::now_v7(), "deal_id": deal });
    c.expect(app, call("POST", "/api/tasks").token(token).json(two), 422).await;
    c.expect(app, call("POST", "/api/tasks").token(token).json(json!({ "title": " " })), 422).await;
}

/// Registration, login, refresh, logout, "who am I"; returns a live session.
async fn auth(app: &Router, c: &mut Contract) -> Value {
    let session = register_through(c, app, "acme").await;
    register_through(c, app, "globex").await;
    let again = json!({
        "email": "owner@acme.example", "password": PASSWORD, "name": "Owner",
        "tenant": { "name": "Other", "slug": "other" }
    });
    c.expect(app, call("POST", "/api/auth/register").json(again), 409).await;
    c.expect(app, call("POST", "/api/auth/register").raw("application/json", "{\"email\":"), 400).await;
    c.expect(app, call("POST", "/api/auth/register").raw("text/plain", "hello"), 415).await;
    c.expect(app, call("POST", "/api/auth/register").json(json!({})), 422).await;

    let login = json!({ "email": "owner@acme.example", "password": PASSWORD });
    let logged_in =
        c.expect(app, call("POST", "/api/auth/login").header("x-tenant", "acme").json(login), 200).await;
    let wrong =
        json!({ "email": "owner@acme.example", "password": "not the right password", "tenant": "acme" });
    c.expect(app, call("POST", "/api/auth/login").json(wrong), 401).await;
    let elsewhere = json!({ "email": "owner@acme.example", "password": PASSWORD, "tenant": "globex" });
    c.expect(app, call("POST", "/api/auth/login").header("x-tenant", "acme").json(elsewhere), 403).await;
    c.expect(
        app,
        call("POST", "/api/auth/login").json(json!({ "email": "x@y.example", "tenant": "acme" })),
        422,
    )
    .await;

    let refresh = json!({ "refresh_token": logged_in.body["refresh_token"] });
    let refreshed = c.expect(app, call("POST", "/api/auth/refresh").json(refresh.clone()), 200).await;
    c.expect(app, call("POST", "/api/auth/refresh").json(refresh), 401).await;
    let newer = json!({ "refresh_token": "crt1.garbage" });
    c.expect(app, call("POST", "/api/auth/logout").json(newer), 401).await;
    // Reusing the spent token revoked its family, the refreshed pair included.
    let revoked = json!({ "refresh_token": refreshed.body["refresh_token"] });
    c.expect(app, call("POST", "/api/auth/logout").json(revoked), 401).await;
    let logout = json!({ "refresh_token": session["refresh_token"] });
    c.expect(app, call("POST", "/api/auth/logout").json(logout.clone()), 204).await;
    c.expect(app, call("POST", "/api/auth/logout").json(logout), 401).await;

    let token = session["access_token"].as_str().unwrap();
    c.expect(app, call("GET", "/api/auth/me").token(token), 200).await;
    c.expect(app, call("GET", "/api/auth/me").token("not.a.token"), 401).await;
    c.expect(app, call("GET", "/api/auth/me").token(token).header("x-tenant", "globex"), 403).await;
    session
}

/// The life of one record, and the client errors around it; returns a live record's id.
async fn records(
    app: &Router,
    c: &mut Contract,
    token: &str,
    path: &str,
    new: Value,
    patch: Value,
) -> String {
    let created = c.expect(app, call("POST", path).token(token).json(new.clone()), 201).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers[header::LOCATION], format!("{path}/{id}"));
    let item = format!("{path}/{id}");
    c.expect(app, call("GET", &item).token(token), 200).await;
    c.expect(app, call("GET", format!("{path}/not-an-id")).token(token), 404).await;
    c.expect(app, call("GET", format!("{path}/%FF")).token(token), 400).await;
    c.expect(app, call("GET", format!("{path}/{}", uuid::Uuid::now_v7())).token(token), 404).await;
    c.expect(app, call("GET", path).token(token), 200).await;

    c.expect(app, call("PATCH", &item).token(token).header("if-match", "\"1\"").json(patch.clone()), 200)
        .await;
    c.expect(app, call("PATCH", &item).token(token).header("if-match", "\"1\"").json(patch.clone()), 412)
        .await;
    c.expect(app, call("PATCH", &item).token(token).json(patch.clone()), 200).await;
    c.expect(app, call("PATCH", &item).token(token).json(json!({ "no_such_field": 1 })), 422).await;
    c.expect(app, call("PATCH", &item).token(token).raw("application/json", "{"), 400).await;
    c.expect(app, call("PATCH", &item).token(token).raw("text/plain", "x"), 415).await;
    let missing = format!("{path}/{}", uuid::Uuid::now_v7());
    c.expect(app, call("PATCH", &missing).token(token).json(patch), 404).await;

    c.expect(app, call("POST", path).token(token).json(json!({ "custom_fields": { "Bad Name": 1 } })), 422)
        .await;
    c.expect(app, call("POST", path).token(token).raw("application/json", "{"), 400).await;
    c.expect(app, call("POST", path).token(token).raw("text/plain", "name=x"), 415).await;
    let huge = json!({ "name": "x".repeat(2 * 1024 * 1024) });
    c.expect(app, call("POST", path).token(token).json(huge), 413).await;

    // A second record to delete, so the first one lives on for later steps.
    let doomed = c.expect(app, call("POST", path).token(token).json(new), 201).await;
    let doomed = format!("{path}/{}", doomed.body["id"].as_str().unwrap());
    c.expect(app, call("DELETE", &doomed).token(token).header("if-match", "\"7\""), 412).await;
    c.expect(app, call("DELETE", &doomed).token(token).header("if-match", "\"1\""), 204).await;
    c.expect(app, call("DELETE", &doomed).token(token), 404).await;
    c.expect(app, call("GET", &doomed).token(token), 404).await;
    id
}

async fn conversion_and_timelines(app: &Router, c: &mut Contract, token: &str, lead: &str, deal: &str) {
    let convert = format!("/api/leads/{lead}/convert");
    let body = json!({
        "contact": { "first_name": "Ada" },
        "account": { "name": "Engines Ltd" },
        "deal": { "name": "Engines deal", "amount": { "amount_minor": 900, "currency": "GBP" } }
    });
    c.expect(app, call("POST", &convert).token(token).json(body), 200).await;
    c.expect(app, call("POST", &convert).token(token).json(json!({})), 409).await;
    c.expect(app, call("POST", &convert).token(token).json(json!({ "contact": 1 })), 422).await;
    let unknown = format!("/api/leads/{}/convert", uuid::Uuid::now_v7());
    c.expect(app, call("POST", &unknown).token(token).json(json!({})), 404).await;
    let bare =
        c.expect(app, call("POST", "/api/leads").token(token).json(json!({ "company": "Bare" })), 201).await;
    let bare = bare.body["id"].as_str().unwrap();
    let named = json!({ "contact": { "last_name": "Bare" } });
    c.expect(app, call("POST", format!("/api/leads/{bare}/convert")).token(token).json(named), 200).await;

    let timeline = c.expect(app, call("GET", format!("/api/leads/{lead}/timeline")).token(token), 200).await;
    let kinds: BTreeSet<&str> =
        timeline.body["data"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["activity", "change", "task"]), "every kind of item was checked");
    c.expect(app, call("GET", format!("/api/deals/{deal}/timeline?limit=1")).token(token), 200).await;
    c.expect(app, call("GET", format!("/api/widgets/{lead}/timeline")).token(token), 404).await;
    // List pages refer to their item schema rather than inlining a copy of it.
    for (path, item) in [("/api/leads", "Lead"), ("/api/deals", "Deal"), ("/api/activities", "Activity")] {
        let page = resolve(&c.doc, &c.doc["paths"][path]["get"]["responses"]["200"]).clone();
        let schema = resolve(&c.doc, &page["content"]["application/json"]["schema"]).clone();
        let items = &schema["properties"]["data"]["items"];
        assert_eq!(items["$ref"], json!(format!("#/components/schemas/{item}")), "{path}: {schema}");
    }
    // A lead is not created `converted`: the create input's enum says so, and so does the server.
    let status = &c.doc["components"]["schemas"]["NewLead"]["properties"]["status"];
    let offered: Vec<&Value> =
        status["oneOf"].as_array().unwrap().iter().filter_map(|s| s.get("enum")).collect();
    assert_eq!(offered, [&json!(["new", "contacted", "qualified", "unqualified"])], "{status}");
    let converted = c
        .expect(app, call("POST", "/api/leads").token(token).json(json!({"status": "converted"})), 422)
        .await;
    assert_eq!(converted.fields(), ["status"]);
    // The login's X-Tenant is an optional string, not a nullable one.
    let login = &c.doc["paths"]["/api/auth/login"]["post"]["parameters"];
    let tenant = login.as_array().unwrap().iter().find(|p| p["name"] == "X-Tenant").unwrap();
    assert_eq!((&tenant["required"], &tenant["schema"]["type"]), (&json!(false), &json!("string")));
    // The document offers exactly the kinds that have a timeline, as an enum a client can check.
    let parameters = &c.doc["paths"]["/api/{resource}/{id}/timeline"]["get"]["parameters"];
    let resource = parameters.as_array().unwrap().iter().find(|p| p["name"] == "resource").unwrap();
    assert_eq!(resource["schema"]["enum"], json!(["leads", "contacts", "accounts", "deals"]));
    c.expect(app, call("GET", format!("/api/leads/{}/timeline", uuid::Uuid::now_v7())).token(token), 404)
        .await;
    c.expect(app, call("GET", format!("/api/leads/{lead}/timeline?limit=0")).token(token), 422).await;
    c.expect(app, call("GET", format!("/api/leads/{lead}/timeline?cursor=nope")).token(token), 422).await;

    let audit = c.expect(app, call("GET", "/api/audit-logs?limit=2").token(token), 200).await;
    let cursor = audit.body["next_cursor"].as_str().unwrap();
    c.expect(app, call("GET", format!("/api/audit-logs?cursor={cursor}")).token(token), 200).await;
    c.expect(app, call("GET", "/api/audit-logs?resource=widget").token(token), 422).await;
}

/// The job endpoints over a job the host enqueued (no endpoint enqueues one).
async fn jobs(crm: &Crm, app: &Router, c: &mut Contract) {
    let session = register_through(c, app, "jobsco").await;
    let token = session["access_token"].as_str().unwrap();
    let tenant = crm_core::TenantId::from_uuid(session["tenant"]["id"].as_str().unwrap().parse().unwrap());
    let user = crm_core::UserId::from_uuid(session["user"]["id"].as_str().unwrap().parse().unwrap());
    let scope = crm.scope_for(tenant, user).await.unwrap();
    let new = crm_core::job::NewJob::new("export.leads", json!({ "format": "csv" }));
    let crm_core::store::Enqueued::New(id) = crm.enqueue_job(&scope, new).await.unwrap() else {
        panic!("a new job")
    };
    let listed = c.expect(app, call("GET", "/api/jobs?state=pending&limit=10").token(token), 200).await;
    assert_eq!(listed.body["data"][0]["id"], json!(id.uuid()));
    c.expect(app, call("GET", "/api/jobs").token(token), 200).await;
    c.expect(app, call("GET", "/api/jobs?state=asleep").token(token), 422).await;
    let item = format!("/api/jobs/{}", id.uuid());
    let job = c.expect(app, call("GET", &item).token(token), 200).await;
    assert_eq!((&job.body["job_type"], &job.body["state"]), (&json!("export.leads"), &json!("pending")));
    c.expect(app, call("GET", format!("/api/jobs/{}", uuid::Uuid::now_v7())).token(token), 404).await;
    let cancelled = c.expect(app, call("POST", format!("{item}/cancel")).token(token), 200).await;
    assert_eq!(cancelled.body["state"], "cancelled");
    c.expect(app, call("POST", format!("{item}/cancel")).token(token), 409).await;
    let retried = c.expect(app, call("POST", format!("{item}/retry")).token(token), 200).await;
    assert_eq!(retried.body["state"], "pending");
    c.expect(app, call("POST", format!("{item}/retry")).token(token), 409).await;
}

/// Webhook endpoints: the secret in the creation and rotation answers only, If-Match on rotate.
async fn webhooks(app: &Router, c: &mut Contract) {
    let session = register_through(c, app, "hooksco").await;
    let token = session["access_token"].as_str().unwrap();
    let new =
        json!({ "url": "https://hooks.example/crm", "event_types": ["deal.*"], "description": "Deals" });
    let created = c.expect(app, call("POST", "/api/webhooks").token(token).json(new), 201).await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let bad = json!({ "url": "ftp://hooks.example", "event_types": [] });
    c.expect(app, call("POST", "/api/webhooks").token(token).json(bad), 422).await;
    let item = format!("/api/webhooks/{}", created.body["id"].as_str().unwrap());
    let fetched = c.expect(app, call("GET", &item).token(token), 200).await;
    assert!(fetched.body.get("secret").is_none(), "a read never shows the secret");
    let listed = c.expect(app, call("GET", "/api/webhooks").token(token), 200).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let rotate = format!("{item}/rotate-secret");
    let rotated = c.expect(app, call("POST", &rotate).token(token).header("if-match", "\"1\""), 200).await;
    assert_ne!(rotated.body["secret"].as_str().unwrap(), secret);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    c.expect(app, call("POST", &rotate).token(token).header("if-match", "\"1\""), 412).await;
    let off = json!({ "enabled": false });
    let patched = c.expect(app, call("PATCH", &item).token(token).json(off), 200).await;
    assert_eq!(patched.body["enabled"], false);
    c.expect(app, call("PATCH", &item).token(token).json(json!({ "event_types": ["Deal"] })), 422).await;
    let test = c.expect(app, call("POST", format!("{item}/test")).token(token), 202).await;
    assert_eq!((&test.body["event_type"], &test.body["state"]), (&json!("webhook.test"), &json!("pending")));
    let deliveries =
        c.expect(app, call("GET", format!("{item}/deliveries?limit=10")).token(token), 200).await;
    assert_eq!(deliveries.body["data"][0]["id"], test.body["id"]);
    assert_eq!(
        (&deliveries.body["data"][0]["attempts"], &deliveries.body["data"][0]["attempt_log"]),
        (&json!(0), &json!([]))
    );
    assert!(deliveries.body["data"][0].get("body").is_none(), "the body is not listed");
    c.expect(app, call("GET", format!("{item}/deliveries?state=x")).token(token), 422).await;
    let redeliver = format!("/api/webhooks/deliveries/{}/redeliver", test.body["id"].as_str().unwrap());
    let again = c.expect(app, call("POST", &redeliver).token(token), 202).await;
    assert_ne!(again.body["id"], test.body["id"]);
    assert_eq!(again.body["event_id"], test.body["event_id"], "the same event again");
    let unknown = format!("/api/webhooks/deliveries/{}/redeliver", uuid::Uuid::now_v7());
    c.expect(app, call("POST", &unknown).token(token), 404).await;
    c.expect(app, call("DELETE", &item).token(token), 204).await;
    c.expect(app, call("GET", &item).token(token), 404).await;
    c.expect(app, call("POST", &rotate).token(token), 404).await;
}

async fn members(app: &Router, c: &mut Contract, token: &str, owner_id: &str) {
    c.expect(app, call("GET", "/api/users").token(token), 200).await;
    let sam = json!({ "email": "sam@acme.example", "name": "Sam", "role": "viewer", "password": PASSWORD });
    let added = c.expect(app, call("POST", "/api/users").token(token).json(sam.clone()), 201).await;
    c.expect(app, call("POST", "/api/users").token(token).json(sam), 409).await;
    c.expect(app, call("POST", "/api/users").token(token).json(json!({ "email": "x" })), 422).await;
    let sam = added.body["user"]["id"].as_str().unwrap();
    let item = format!("/api/users/{sam}");
    c.expect(app, call("GET", &item).token(token), 200).await;
    c.expect(app, call("PATCH", &item).token(token).json(json!({ "role": "member" })), 200).await;
    c.expect(app, call("PATCH", &item).token(token).json(json!({ "role": "boss" })), 422).await;
    let me = format!("/api/users/{owner_id}");
    c.expect(app, call("PATCH", &me).token(token).json(json!({ "role": "viewer" })), 409).await;
    c.expect(app, call("DELETE", &me).token(token), 409).await;

    let login = json!({ "email": "sam@acme.example", "password": PASSWORD, "tenant": "acme" });
    let sam_session = c.expect(app, call("POST", "/api/auth/login").json(login), 200).await;
    let sam_token = sam_session.body["access_token"].as_str().unwrap();
    c.expect(app, call("GET", "/api/auth/me").token(sam_token), 200).await;
    c.expect(
        app,
        call("POST", "/api/pipelines").token(sam_token).json(json!({ "name": "P", "stages": [] })),
        403,
    )
    .await;
    c.expect(app, call("DELETE", &item).token(token), 204).await;
    c.expect(app, call("GET", &item).token(token), 404).await;
    c.expect(app, call("GET", "/api/auth/me").token(sam_token), 404).await;
}

async fn api_keys(app: &Router, c: &mut Contract, token: &str) {
    let key = json!({ "name": "ci", "role": "viewer" });
    let created = c.expect(app, call("POST", "/api/api-keys").token(token).json(key), 201).await;
    c.expect(app, call("POST", "/api/api-keys").token(token).json(json!({ "name": "x" })), 422).await;
    c.expect(app, call("GET", "/api/api-keys").token(token), 200).await;
    let secret = created.body["key"].as_str().unwrap();
    c.expect(app, call("GET", "/api/auth/me").header("x-api-key", secret), 200).await;
    c.expect(app, call("GET", "/api/leads").token(secret), 200).await;
    c.expect(app, call("POST", "/api/leads").token(secret).json(json!({ "company": "X" })), 403).await;
    c.expect(app, call("GET", "/api/api-keys").token(secret), 403).await;
    let item = format!("/api/api-keys/{}", created.body["id"].as_str().unwrap());
    c.expect(app, call("DELETE", &item).token(token), 204).await;
    c.expect(app, call("DELETE", format!("/api/api-keys/{}", uuid::Uuid::now_v7())).token(token), 404).await;
    c.expect(app, call("GET", "/api/leads").header("x-api-key", secret), 401).await;
}

async fn pipelines(app: &Router, c: &mut Contract, token: &str) {
    c.expect(app, call("GET", "/api/pipelines").token(token), 200).await;
    let stages = json!([
        { "key": "open", "name": "Open", "kind": "open" },
        { "key": "done", "name": "Done", "kind": "won" },
        { "key": "gone", "name": "Gone", "kind": "lost" }
    ]);
    let created = c
        .expect(
            app,
            call("POST", "/api/pipelines").token(token).json(json!({ "name": "Renewals", "stages": stages })),
            201,
        )
        .await;
    c.expect(
        app,
        call("POST", "/api/pipelines").token(token).json(json!({ "name": "Empty", "stages": [] })),
        422,
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    let item = format!("/api/pipelines/{id}");
    c.expect(app, call("GET", &item).token(token), 200).await;
    c.expect(app, call("GET", format!("/api/pipelines/{}", uuid::Uuid::now_v7())).token(token), 404).await;
    let rename = json!({ "name": "Renewals 2" });
    c.expect(app, call("PATCH", &item).token(token).header("if-match", "\"1\"").json(rename.clone()), 200)
        .await;
    c.expect(app, call("PATCH", &item).token(token).header("if-match", "\"1\"").json(rename), 412).await;
    let deal = json!({ "name": "Renewal", "pipeline_id": id, "stage": "open" });
    c.expect(app, call("POST", "/api/deals").token(token).json(deal), 201).await;
    let without_open = json!({ "stages": [
        { "key": "start", "name": "Start", "kind": "open" },
        { "key": "done", "name": "Done", "kind": "won" }
    ] });
    c.expect(app, call("PATCH", &item).token(token).json(without_open), 409).await;
}

async fn transfer(app: &Router, c: &mut Contract, token: &str) {
    let rows =
        json!([{ "company": "A" }, { "email": "broken" }, { "company": "C", "custom_fields": { "n": 1 } }]);
    c.expect(app, call("POST", "/api/leads/import").token(token).json(rows.clone()), 200).await;
    let refused =
        c.expect(app, call("POST", "/api/leads/import?mode=atomic").token(token).json(rows), 422).await;
    assert_eq!(refused.fields(), ["[1].email"]);
    let csv = "first_name,last_name,email,company,status,custom_fields\n\
               Ada,Lovelace,ada2@example.com,\"Engines, Ltd\",new,\"{\"\"seats\"\": 3}\"\n\
               Bad,Row,not-an-email,,sleeping,\n";
    c.expect(app, call("POST", "/api/leads/import").token(token).raw("text/csv", csv), 200).await;
    let unknown_column = "colour\nred\n";
    c.expect(app, call("POST", "/api/leads/import").token(token).raw("text/csv", unknown_column), 422).await;
    c.expect(app, call("POST", "/api/leads/import?mode=sometimes").token(token).json(json!([])), 422).await;
    c.expect(app, call("POST", "/api/leads/import").token(token).raw("text/plain", "x"), 415).await;
    c.expect(app, call("POST", "/api/leads/import").token(token).raw("application/json", "[{"), 400).await;

    // A replayed write says so, in a documented header.
    let keyed = || call("POST", "/api/leads").token(token).header("idempotency-key", "contract-replay");
    let first = c.expect(app, keyed().json(json!({"last_name": "Replay"})), 201).await;
    let again = c.expect(app, keyed().json(json!({"last_name": "Replay"})), 201).await;
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let json_export = c.expect(app, call("GET", "/api/leads/export?format=json").token(token), 200).await;
    assert!(json_export.body.as_array().is_some_and(|leads| leads.len() > 3));
    let csv_export =
        c.expect(app, call("GET", "/api/leads/export?format=csv&status=new").token(token), 200).await;
    assert!(csv_export.bytes.starts_with(b"id,version,created_at"));
    c.expect(app, call("GET", "/api/leads/export?format=xml").token(token), 422).await;
}

/// Every documented query parameter of every list is accepted, and every parameter another
/// operation documents but this one does not is refused (422): the document says exactly what
/// each list reads.
async fn query_parameters(app: &Router, c: &mut Contract, token: &str, lead: &str) {
    let doc = c.doc.clone();
    let mut by_operation: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (method, path) in operations(&doc).into_iter().filter(|(m, _)| m == "GET") {
        let query: Vec<Value> = doc["paths"][&path]["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .cloned()
            .collect();
        if !query.is_empty() {
            by_operation.insert(format!("{method} {path}"), query);
        }
    }
    let every_name: BTreeSet<String> =
        by_operation.values().flatten().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    // Paths under a webhook name an endpoint, not a lead.
    let endpoint = json!({ "url": "https://hooks.example/q", "event_types": ["*"] });
    let webhook = c.send(app, call("POST", "/api/webhooks").token(token).json(endpoint)).await;
    let webhook = webhook.body["id"].as_str().unwrap().to_owned();
    for (operation, parameters) in &by_operation {
        let id = if operation.starts_with("GET /api/webhooks/") { webhook.as_str() } else { lead };
        let path = concrete(operation.trim_start_matches("GET "), id);
        for parameter in parameters {
            let Some(value) = sample(&doc, parameter) else { continue };
            let name = parameter["name"].as_str().unwrap();
            let reply = c.send(app, call("GET", format!("{path}?{name}={value}")).token(token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{operation} documents `{name}`: {}", reply.body);
        }
        let own: BTreeSet<&str> = parameters.iter().map(|p| p["name"].as_str().unwrap()).collect();
        for name in every_name.iter().filter(|n| !own.contains(n.as_str())) {
            let value = by_operation
                .values()
                .flatten()
                .find(|p| p["name"] == name.as_str())
                .and_then(|p| sample(&doc, p))
                .unwrap_or_else(|| "x".to_owned());
            let reply = c.send(app, call("GET", format!("{path}?{name}={value}")).token(token)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{operation} does not document `{name}`, yet it is accepted"
            );
        }
    }
    // Custom-field filters and paging, which no single parameter sample covers.
    let second = json!({ "company": "Second", "custom_fields": { "seats": 10 } });
    c.expect(app, call("POST", "/api/leads").token(token).json(second), 201).await;
    let filtered = c.expect(app, call("GET", "/api/leads?cf.seats=10&limit=1").token(token), 200).await;
    let cursor = filtered.body["next_cursor"].as_str().unwrap();
    c.expect(app, call("GET", format!("/api/leads?cf.seats=10&cursor={cursor}")).token(token), 200).await;
    // Sorted lists page with cursors of their own; the documented cursor schema takes both kinds.
    let sorted = c.expect(app, call("GET", "/api/leads?sort=-created_at&limit=1").token(token), 200).await;
    let sorted_cursor = sorted.body["next_cursor"].as_str().unwrap();
    let next = format!("/api/leads?sort=-created_at&limit=1&cursor={sorted_cursor}");
    c.expect(app, call("GET", next).token(token), 200).await;
    c.expect(app, call("GET", format!("/api/leads?cursor={sorted_cursor}")).token(token), 200).await;
    c.expect(app, call("GET", "/api/leads?sort=status").token(token), 422).await;
    let parameters = doc["paths"]["/api/leads"]["get"]["parameters"].as_array().unwrap();
    let cursor_schema = &parameters.iter().find(|p| p["name"] == "cursor").unwrap()["schema"];
    for cursor in [cursor, sorted_cursor] {
        assert!(jsonschema::is_valid(cursor_schema, &json!(cursor)), "{cursor} fits the cursor schema");
    }
    assert!(!jsonschema::is_valid(cursor_schema, &json!("A")));
    c.expect(app, call("GET", "/api/leads?cf.Bad=1").token(token), 422).await;
    c.expect(app, call("GET", "/api/activities?cf.seats=10").token(token), 422).await;
}
