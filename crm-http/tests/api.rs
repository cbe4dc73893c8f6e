//! The router against real stores — SQLite always, Postgres when `CRM_TEST_DATABASE_URL` is
//! set (always in CI): status codes, headers and problem bodies.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use crm_core::Crm;
use crm_http::{ApiState, router};
use crm_storage_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn register_login_refresh_logout() {
    for app in apps().await {
        register_login_refresh_logout_on(app).await;
    }
}

async fn register_login_refresh_logout_on(app: Router) {
    let session = register(&app, "acme").await;
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["role"], "owner");

    let login = json!({ "email": "owner@acme.example", "password": PASSWORD });
    let mut request = json_request("POST", "/api/auth/login", None, &login);
    request.headers_mut().insert("x-tenant", "acme".parse().unwrap());
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();

    for wrong in [
        json!({"email": "owner@acme.example", "password": "not the right one!", "tenant": "acme"}),
        json!({"email": "nobody@acme.example", "password": PASSWORD, "tenant": "acme"}),
        json!({"email": "owner@acme.example", "password": PASSWORD, "tenant": "no-such-tenant"}),
    ] {
        let reply = send(&app, json_request("POST", "/api/auth/login", None, &wrong)).await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["detail"], "Sign in and try again.", "the same answer for every wrong login");
    }

    let reply =
        send(&app, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": refresh })))
            .await;
    assert_eq!(reply.status, StatusCode::OK);
    let newer = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let reused =
        send(&app, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": refresh })))
            .await;
    assert_problem(&reused, StatusCode::UNAUTHORIZED);
    let revoked =
        send(&app, json_request("POST", "/api/auth/refresh", None, &json!({ "refresh_token": newer }))).await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED);

    let token = session["access_token"].as_str().unwrap();
    let me = send(&app, get("/api/auth/me", token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!((me.body["role"].as_str(), me.body["tenant"]["slug"].as_str()), (Some("owner"), Some("acme")));
    let logout = send(
        &app,
        json_request("POST", "/api/auth/logout", None, &json!({ "refresh_token": session["refresh_token"] })),
    )
    .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn lead_lifecycle_with_etags_and_locations() {
    for app in apps().await {
        lead_lifecycle_with_etags_and_locations_on(app).await;
    }
}

async fn lead_lifecycle_with_etags_and_locations_on(app: Router) {
    let session = register(&app, "acme").await;
    let token = session["access_token"].as_str().unwrap();

    let created = send(
        &app,
        json_request(
            "POST",
            "/api/leads",
            Some(token),
            &json!({"company": "Navy Labs", "email": "grace@navy.example"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers[header::LOCATION], format!("/api/leads/{id}"));
    assert_eq!(created.headers[header::ETAG], "\"1\"");

    let fetched = send(&app, get(&format!("/api/leads/{id}"), token)).await;
    assert_eq!((fetched.status, fetched.body["company"].as_str()), (StatusCode::OK, Some("Navy Labs")));

    let patch = |if_match: &str, title: &str| {
        let mut r =
            json_request("PATCH", &format!("/api/leads/{id}"), Some(token), &json!({ "title": title }));
        r.headers_mut().insert(header::IF_MATCH, if_match.parse().unwrap());
        r
    };
    let updated = send(&app, patch("\"1\"", "CTO")).await;
    assert_eq!((updated.status, updated.headers[header::ETAG].to_str().unwrap()), (StatusCode::OK, "\"2\""));
    let stale = send(&app, patch("\"1\"", "CEO")).await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED);

    let listed = send(&app, get("/api/leads?q=navy&status=new&limit=10", token)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    assert!(listed.body["next_cursor"].is_null());

    let mut delete = Request::builder().method("DELETE").uri(format!("/api/leads/{id}"));
    delete = delete.header(header::AUTHORIZATION, format!("Bearer {token}"));
    let deleted = send(&app, delete.body(Body::empty()).unwrap()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_problem(&send(&app, get(&format!("/api/leads/{id}"), token)).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_requests_get_problems_never_500() {
    for app in apps().await {
        bad_requests_get_problems_never_500_on(app).await;
    }
}

async fn bad_requests_get_problems_never_500_on(app: Router) {
    let session = register(&app, "acme").await;
    let token = session["access_token"].as_str().unwrap();

    let malformed = Request::builder()
        .method("POST")
        .uri("/api/leads")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from("{\"company\": "))
        .unwrap();
    assert_problem(&send(&app, malformed).await, StatusCode::BAD_REQUEST);

    let wrong_type = Request::builder()
        .method("POST")
        .uri("/api/leads")
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from("company=x"))
        .unwrap();
    assert_problem(&send(&app, wrong_type).await, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let unknown =
        send(&app, json_request("POST", "/api/leads", Some(token), &json!({"company": "X", "admin": true})))
            .await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], "admin");

    let typed = send(
        &app,
        json_request("POST", "/api/deals", Some(token), &json!({"name": "D", "probability": "high"})),
    )
    .await;
    assert_problem(&typed, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(typed.body["errors"][0]["field"], "probability");

    let invalid =
        send(&app, json_request("POST", "/api/leads", Some(token), &json!({"email": "nope"}))).await;
    assert_problem(&invalid, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["errors"][0]["field"], "email");

    let huge = json!({ "company": "x".repeat(2 * 1024 * 1024) });
    assert_problem(
        &send(&app, json_request("POST", "/api/leads", Some(token), &huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested = Request::builder()
        .method("POST")
        .uri("/api/leads")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(deep))
        .unwrap();
    let reply = send(&app, nested).await;
    assert!(reply.status.is_client_error(), "{}", reply.status);

    assert_problem(&send(&app, get("/api/leads?colour=red", token)).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&send(&app, get("/api/leads?limit=0", token)).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&send(&app, get("/api/leads/not-a-uuid", token)).await, StatusCode::NOT_FOUND);
    assert_problem(&send(&app, get("/api/nothing-here", token)).await, StatusCode::NOT_FOUND);
    let no_auth = Request::builder().uri("/api/leads").body(Body::empty()).unwrap();
    assert_problem(&send(&app, no_auth).await, StatusCode::UNAUTHORIZED);
    assert_problem(&send(&app, get("/api/leads", "garbage.token.here")).await, StatusCode::UNAUTHORIZED);
    let put = Request::builder()
        .method("PUT")
        .uri("/api/leads")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_problem(&send(&app, put).await, StatusCode::METHOD_NOT_ALLOWED);

    // SQL and script fragments are data, stored and returned verbatim.
    let hostile = "Robert'); DROP TABLE leads;-- <script>alert(1)</script>";
    let created =
        send(&app, json_request("POST", "/api/leads", Some(token), &json!({"company": hostile}))).await;
    assert_eq!((created.status, created.body["company"].as_str()), (StatusCode::CREATED, Some(hostile)));
}

#[tokio::test]
async fn other_tenants_ids_are_404_and_headers_are_set() {
    for app in apps().await {
        other_tenants_ids_are_404_and_headers_are_set_on(app).await;
    }
}

async fn other_tenants_ids_are_404_and_headers_are_set_on(app: Router) {
    let a = register(&app, "acme").await;
    let b = register(&app, "globex").await;
    let (ta, tb) = (a["access_token"].as_str().unwrap(), b["access_token"].as_str().unwrap());
    let created =
        send(&app, json_request("POST", "/api/accounts", Some(ta), &json!({"name": "Acme Corp"}))).await;
    let id = created.body["id"].as_str().unwrap();

    let theirs = send(&app, get(&format!("/api/accounts/{id}"), tb)).await;
    let missing = send(&app, get(&format!("/api/accounts/{}", uuid::Uuid::now_v7()), tb)).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND);
    assert_eq!(
        (theirs.body["title"].clone(), theirs.body["detail"].clone()),
        (missing.body["title"].clone(), missing.body["detail"].clone())
    );
    let patch = send(
        &app,
        json_request("PATCH", &format!("/api/accounts/{id}"), Some(tb), &json!({"name": "pwned"})),
    )
    .await;
    assert_problem(&patch, StatusCode::NOT_FOUND);
    let still = send(&app, get(&format!("/api/accounts/{id}"), ta)).await;
    assert_eq!(still.body["name"], "Acme Corp");

    // A header naming another tenant than the token's is refused.
    let mut request = get("/api/accounts", ta);
    request.headers_mut().insert("x-tenant", "globex".parse().unwrap());
    assert_problem(&send(&app, request).await, StatusCode::FORBIDDEN);

    let mut request = get("/health", ta);
    request.headers_mut().insert("x-request-id", "trace-me-123".parse().unwrap());
    let reply = send(&app, request).await;
    assert_eq!(reply.headers["x-request-id"], "trace-me-123");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert_eq!(reply.headers["referrer-policy"], "no-referrer");
    assert!(reply.headers.contains_key("content-security-policy"));
    let ready = send(&app, Request::builder().uri("/health/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(ready.status, StatusCode::OK);
}

#[tokio::test]
async fn conversion_timeline_members_keys_pipelines_audit_and_import() {
    for app in apps().await {
        conversion_timeline_members_keys_pipelines_audit_and_import_on(app).await;
    }
}

async fn conversion_timeline_members_keys_pipelines_audit_and_import_on(app: Router) {
    let session = register(&app, "acme").await;
    let token = session["access_token"].as_str().unwrap();

    let lead = send(
        &app,
        json_request("POST", "/api/leads", Some(token), &json!({"last_name": "Hopper", "company": "Navy"})),
    )
    .await;
    let lead_id = lead.body["id"].as_str().unwrap().to_owned();
    let body = json!({"account": {"name": "Navy Labs"}, "deal": {"name": "Navy deal"}});
    let converted =
        send(&app, json_request("POST", &format!("/api/leads/{lead_id}/convert"), Some(token), &body)).await;
    assert_eq!(converted.status, StatusCode::OK, "{}", converted.body);
    assert_eq!(converted.body["lead"]["status"], "converted");
    assert_eq!(converted.body["deal"]["stage"], "prospecting");
    let again =
        send(&app, json_request("POST", &format!("/api/leads/{lead_id}/convert"), Some(token), &json!({})))
            .await;
    assert_problem(&again, StatusCode::CONFLICT);

    let timeline = send(&app, get(&format!("/api/leads/{lead_id}/timeline"), token)).await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.body);
    assert_eq!(timeline.body["data"].as_array().unwrap().len(), 2, "created and converted");
    assert_problem(
        &send(&app, get(&format!("/api/widgets/{lead_id}/timeline"), token)).await,
        StatusCode::NOT_FOUND,
    );

    let audit = send(&app, get("/api/audit-logs?resource=lead&limit=5", token)).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert_eq!(audit.body["data"].as_array().unwrap().len(), 2);

    let member = json!({"email": "sam@acme.example", "name": "Sam", "role": "viewer", "password": PASSWORD});
    let added = send(&app, json_request("POST", "/api/users", Some(token), &member)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let sam = added.body["user"]["id"].as_str().unwrap().to_owned();
    let promoted = send(
        &app,
        json_request("PATCH", &format!("/api/users/{sam}"), Some(token), &json!({"role": "member"})),
    )
    .await;
    assert_eq!((promoted.status, promoted.body["role"].as_str()), (StatusCode::OK, Some("member")));
    let users = send(&app, get("/api/users", token)).await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 2);

    let key = send(
        &app,
        json_request("POST", "/api/api-keys", Some(token), &json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    assert_eq!(
        (key.status, key.headers[header::CACHE_CONTROL].to_str().unwrap()),
        (StatusCode::CREATED, "no-store")
    );
    let secret = key.body["key"].as_str().unwrap().to_owned();
    let with_key =
        Request::builder().uri("/api/leads").header("x-api-key", &secret).body(Body::empty()).unwrap();
    assert_eq!(send(&app, with_key).await.status, StatusCode::OK);
    let write_with_key = json_request("POST", "/api/leads", Some(&secret), &json!({"company": "X"}));
    assert_problem(&send(&app, write_with_key).await, StatusCode::FORBIDDEN);
    let keys = send(&app, get("/api/api-keys", token)).await;
    assert!(!keys.body.to_string().contains(&secret), "the secret is shown once");
    let key_id = key.body["id"].as_str().unwrap();
    let mut revoke = Request::builder().method("DELETE").uri(format!("/api/api-keys/{key_id}"));
    revoke = revoke.header(header::AUTHORIZATION, format!("Bearer {token}"));
    assert_eq!(send(&app, revoke.body(Body::empty()).unwrap()).await.status, StatusCode::NO_CONTENT);
    let after =
        Request::builder().uri("/api/leads").header("x-api-key", &secret).body(Body::empty()).unwrap();
    let revoked = send(&app, after).await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoked.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"crm\"",
        "RFC 9110: a 401 names its scheme"
    );

    let pipelines = send(&app, get("/api/pipelines", token)).await;
    assert_eq!(pipelines.body["data"][0]["name"], "Sales");
    let stages = json!({"name": "Renewals", "stages": [{"key": "open", "name": "Open", "kind": "open"}, {"key": "done", "name": "Done", "kind": "won"}]});
    let created = send(&app, json_request("POST", "/api/pipelines", Some(token), &stages)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let rows = json!([{"company": "A"}, {"email": "broken"}, {"company": "C"}]);
    let report = send(&app, json_request("POST", "/api/leads/import", Some(token), &rows)).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(report.body["created"], 2);
    assert_eq!(report.body["errors"][0]["row"], 1);
    let before = send(&app, get("/api/leads?limit=200", token)).await.body["data"].as_array().unwrap().len();
    let atomic = send(&app, json_request("POST", "/api/leads/import?mode=atomic", Some(token), &rows)).await;
    assert_invalid(&atomic, "[1].email");
    let after = send(&app, get("/api/leads?limit=200", token)).await.body["data"].as_array().unwrap().len();
    assert_eq!(before, after, "an atomic import that refuses a row creates nothing");
    let valid = json!([{"company": "D"}, {"company": "E"}]);
    let atomic = send(&app, json_request("POST", "/api/leads/import?mode=atomic", Some(token), &valid)).await;
    assert_eq!((atomic.status, atomic.body["created"].as_u64()), (StatusCode::OK, Some(2)));
}

#[tokio::test]
async fn csv_import_and_streamed_exports() {
    for app in apps().await {
        csv_import_and_streamed_exports_on(app).await;
    }
}

async fn csv_import_and_streamed_exports_on(app: Router) {
    let session = register(&app, "acme").await;
    let token = session["access_token"].as_str().unwrap();
    let mut csv = String::from("first_name,last_name,email,company,status\n");
    for i in 0..450 {
        csv.push_str(&format!("Ada,Lovelace {i},ada{i}@example.com,\"Engines, Ltd\",contacted\n"));
    }
    csv.push_str("Bad,Row,not-an-email,,new\n");
    csv.push_str("Bad,Status,x@example.com,,sleeping\n");
    csv.push_str("=cmd,Formula,f@example.com,,new\n");
    let import = Request::builder()
        .method("POST")
        .uri("/api/leads/import")
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(csv))
        .unwrap();
    let report = send(&app, import).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(report.body["created"], 451);
    let refused: Vec<(u64, String)> = report.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["errors"][0]["field"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(refused, [(450, "email".to_owned()), (451, "status".to_owned())]);

    let export = |uri: &str| {
        let app = app.clone();
        let request = get(uri, token);
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, content_type, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, content_type, body) = export("/api/leads/export?format=json&status=contacted").await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    let leads: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(leads.len(), 450, "every page, not just the first");
    let (status, content_type, body) = export("/api/leads/export?format=csv").await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1 + 451);
    assert!(lines[0].starts_with("id,version,created_at"));
    assert!(body.contains("\"Engines, Ltd\""));
    assert!(body.contains(",'=cmd,"), "formula cells are defused");
    let empty = export("/api/leads/export?q=nothingmatches").await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&empty.2).unwrap().len(), 0);
    assert_problem(
        &send(&app, get("/api/leads/export?format=xml", token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
}

#[tokio::test]
async fn cors_echoes_only_allowed_origins() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let config =
        crm_http::HttpConfig { cors_origins: vec!["https://app.example".into()], ..Default::default() };
    let app = router(ApiState::new(Crm::new(store)).with_config(config));
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/leads")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = send(&app, preflight("https://app.example")).await;
    assert_eq!(allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
    let other = send(&app, preflight("https://evil.example")).await;
    assert!(!other.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

    // No origin configured (the default): no origin is ever allowed.
    let closed = router(ApiState::new(Crm::new(SqliteStore::open_in_memory().await.unwrap())));
    let refused = send(&closed, preflight("https://app.example")).await;
    assert!(!refused.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let identity = cheap_identity();
    let limits = crm_http::RateLimits { auth_per_minute: 3, api_per_minute: 5 };
    let config = crm_http::HttpConfig { rate_limits: limits, ..Default::default() };
    let app = router(ApiState::new(Crm::builder(store).identity(identity).build()).with_config(config));
    let session = register(&app, "acme").await;
    let token = session["access_token"].as_str().unwrap();

    let mut statuses = Vec::new();
    for _ in 0..7 {
        let reply = send(&app, get("/api/leads", token)).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.headers["ratelimit-limit"], "5");
        } else {
            assert_problem(&reply, StatusCode::TOO_MANY_REQUESTS);
            assert!(reply.headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);

    // Registration used one of the three auth attempts of this (unknown) address.
    let login = json!({ "email": "owner@acme.example", "password": "wrong password here", "tenant": "acme" });
    let first = send(&app, json_request("POST", "/api/auth/login", None, &login)).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    send(&app, json_request("POST", "/api/auth/login", None, &login)).await;
    let limited = send(&app, json_request("POST", "/api/auth/login", None, &login)).await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn subdomains_name_tenants_and_query_errors_name_parameters() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let config = crm_http::HttpConfig { base_domain: Some("crm.example.com".into()), ..Default::default() };
    let app =
        router(ApiState::new(Crm::builder(store).identity(cheap_identity()).build()).with_config(config));
    let session = register(&app, "acme").await;
    register(&app, "globex").await;
    let token = session["access_token"].as_str().unwrap();

    let login = |host: &str| {
        let body = json!({ "email": "owner@acme.example", "password": PASSWORD });
        let mut request = json_request("POST", "/api/auth/login", None, &body);
        request.headers_mut().insert(header::HOST, host.parse().unwrap());
        request
    };
    assert_eq!(send(&app, login("acme.crm.example.com:8080")).await.status, StatusCode::OK);
    assert_problem(&send(&app, login("globex.crm.example.com")).await, StatusCode::UNAUTHORIZED);
    // Right credentials naming no tenant sign in nowhere: the 401 of an unknown tenant.
    let nowhere = send(&app, login("crm.example.com")).await;
    assert_problem(&nowhere, StatusCode::UNAUTHORIZED);
    assert!(nowhere.headers.contains_key(header::WWW_AUTHENTICATE));

    let mut other = get("/api/leads", token);
    other.headers_mut().insert(header::HOST, "globex.crm.example.com".parse().unwrap());
    assert_problem(&send(&app, other).await, StatusCode::FORBIDDEN);
    let mut own = get("/api/leads", token);
    own.headers_mut().insert(header::HOST, "acme.crm.example.com".parse().unwrap());
    assert_eq!(send(&app, own).await.status, StatusCode::OK);
    // The subdomain's slug and X-Tenant's id name one tenant: not a mismatch.
    let acme_id = session["tenant"]["id"].as_str().unwrap();
    let mut both = get("/api/leads", token);
    both.headers_mut().insert(header::HOST, "acme.crm.example.com".parse().unwrap());
    both.headers_mut().insert("x-tenant", acme_id.parse().unwrap());
    assert_eq!(send(&app, both).await.status, StatusCode::OK);
    let mut login_both = login("acme.crm.example.com");
    login_both.headers_mut().insert("x-tenant", acme_id.to_uppercase().parse().unwrap());
    assert_eq!(send(&app, login_both).await.status, StatusCode::OK);
    let mut crossed = login("globex.crm.example.com");
    crossed.headers_mut().insert("x-tenant", acme_id.parse().unwrap());
    assert_problem(&send(&app, crossed).await, StatusCode::FORBIDDEN);

    let unknown = send(&app, get("/api/audit-logs?colour=red", token)).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], "colour");
    let typed = send(&app, get("/api/audit-logs?limit=many", token)).await;
    assert_problem(&typed, StatusCode::UNPROCESSABLE_ENTITY);
}
