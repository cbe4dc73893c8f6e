//! Hostile input on every endpoint that takes a body or a query: malformed, mistyped, oversized,
//! deeply nested, mis-encoded and injection-shaped. Each gets a clear 4xx problem (never 5xx,
//! checked in `send`), and nothing hostile writes anything; what is valid but looks dangerous
//! (SQL, script, search operators) is stored and returned as plain data.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

/// An endpoint that takes a JSON body: a valid body, and a text field in it (dotted path) to
/// spoil. `None` caller: the unauthenticated auth endpoints.
struct Target {
    method: &'static str,
    path: String,
    valid: Value,
    field: &'static str,
    caller: Option<Caller>,
    /// Credential fields answer a bad value as a failed sign-in (401), like any wrong value,
    /// rather than describing it.
    credential: bool,
}

/// `body` with the value at dotted `path` replaced.
fn with_field(body: &Value, path: &str, value: Value) -> Value {
    let mut out = body.clone();
    let mut at = &mut out;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = &mut at[*part];
    }
    at[parts[parts.len() - 1]] = value;
    out
}

/// `valid` serialized with `raw` (JSON text) spliced in as the value of `field`.
fn with_raw(valid: &Value, field: &str, raw: &[u8]) -> Vec<u8> {
    let marker = "\u{1}MARKER\u{1}";
    let text = with_field(valid, field, json!(marker)).to_string();
    let quoted = serde_json::to_string(marker).unwrap();
    let (before, after) = text.split_once(&quoted).unwrap();
    [before.as_bytes(), raw, after.as_bytes()].concat()
}

struct Fixture {
    app: Router,
    tenant: Tenant,
    targets: Vec<Target>,
    lead: String,
}

async fn fixture(app: &Router) -> Fixture {
    let tenant = Tenant::register(app, "acme").await;
    let o = tenant.owner.clone();
    let lead = o.create("/api/leads", &new_record("leads", "")).await["id"].as_str().unwrap().to_owned();
    let member =
        o.create("/api/users", &json!({"email": "m@acme.example", "name": "M", "role": "viewer"})).await;
    let member = member["user"]["id"].as_str().unwrap().to_owned();
    let stages = json!([{"key": "open", "name": "Open", "kind": "open"}, {"key": "won", "name": "Won", "kind": "won"}]);
    let pipeline = o.create("/api/pipelines", &json!({"name": "P", "stages": stages})).await;
    let pipeline = pipeline["id"].as_str().unwrap().to_owned();
    let auth = |path: &str, valid: Value, field, credential| Target {
        method: "POST",
        path: path.to_owned(),
        valid,
        field,
        caller: None,
        credential,
    };
    let mut targets = vec![
        auth(
            "/api/auth/register",
            json!({"email": "new@example.com", "password": PASSWORD, "name": "New",
                   "tenant": {"name": "New", "slug": "newco"}}),
            "name",
            false,
        ),
        auth(
            "/api/auth/login",
            json!({"email": "owner@acme.example", "password": PASSWORD, "tenant": "acme"}),
            "email",
            true,
        ),
        auth("/api/auth/refresh", json!({"refresh_token": "crm_rt_nothing"}), "refresh_token", true),
        auth("/api/auth/logout", json!({"refresh_token": "crm_rt_nothing"}), "refresh_token", true),
    ];
    let mut with = |method, path: String, valid: Value, field| {
        targets.push(Target { method, path, valid, field, caller: Some(o.clone()), credential: false })
    };
    with(
        "POST",
        "/api/users".into(),
        json!({"email": "x@acme.example", "name": "X", "role": "viewer"}),
        "name",
    );
    with("PATCH", format!("/api/users/{member}"), json!({"role": "member"}), "role");
    with("POST", "/api/api-keys".into(), json!({"name": "k", "role": "viewer"}), "name");
    with("POST", "/api/pipelines".into(), json!({"name": "Q", "stages": stages}), "name");
    with("PATCH", format!("/api/pipelines/{pipeline}"), json!({"name": "Q"}), "name");
    with("POST", format!("/api/leads/{lead}/convert"), json!({"account": {"name": "A"}}), "account.name");
    for (resource, create_field, patch_field) in [
        ("leads", "company", "title"),
        ("contacts", "first_name", "title"),
        ("accounts", "name", "industry"),
        ("deals", "name", "name"),
        ("activities", "subject", "subject"),
    ] {
        let id = o.create(&format!("/api/{resource}"), &new_record(resource, &lead)).await;
        let id = id["id"].as_str().unwrap();
        with("POST", format!("/api/{resource}"), new_record(resource, &lead), create_field);
        with("PATCH", format!("/api/{resource}/{id}"), patch_record(resource, "t"), patch_field);
    }
    Fixture { app: app.clone(), tenant, targets, lead }
}

impl Target {
    async fn send(&self, app: &Router, content_type: Option<&str>, body: impl Into<Body>) -> Reply {
        let request = raw_request(self.method, &self.path, None, content_type, body);
        match &self.caller {
            Some(c) => c.send(c.authorize(request)).await,
            None => send(app, request).await,
        }
    }

    async fn json(&self, app: &Router, body: impl Into<Body>) -> Reply {
        self.send(app, Some("application/json"), body).await
    }
}

fn assert_type(reply: &Reply, slug: &str) {
    assert!(reply.body["type"].as_str().is_some_and(|t| t.ends_with(slug)), "{}", reply.body);
}

#[tokio::test]
async fn hostile_bodies_get_clear_4xx_and_write_nothing() {
    for (store, app) in apps_with(roomy()).await {
        let f = fixture(&app).await;
        let head = f.tenant.owner.audit_head().await;
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        for t in &f.targets {
            let what = |variant: &str| format!("{store}: {} {} with {variant}", t.method, t.path);
            let v = &t.valid;

            // Malformed: 400.
            for (variant, body) in [
                ("truncated JSON", v.to_string()[..v.to_string().len() - 2].to_owned()),
                ("a missing value", String::from_utf8(with_raw(v, t.field, b"")).unwrap()),
                ("an empty body", String::new()),
                ("trailing garbage", format!("{v} x")),
                ("two values", format!("{v}{v}")),
                ("single quotes", "{'a': 1}".to_owned()),
                (
                    "a lone surrogate",
                    with_field(v, t.field, json!("MARK")).to_string().replace("MARK", "\\ud800"),
                ),
            ] {
                let reply = t.json(&f.app, body).await;
                assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}: {}", what(variant), reply.body);
                assert_type(&reply, "/malformed");
            }
            let invalid_utf8 = with_raw(v, t.field, b"\"caf\xe9 \xff\xfe\"");
            let reply = t.json(&f.app, invalid_utf8).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}: {}", what("invalid UTF-8"), reply.body);

            // 10 000 levels of nesting, anywhere: refused without overflowing the stack.
            for (variant, body) in [
                ("deep arrays", deep.clone().into_bytes()),
                ("deep objects", deep_object.clone().into_bytes()),
                ("deep arrays in a field", with_raw(v, t.field, deep.as_bytes())),
                ("deep objects in a field", with_raw(v, t.field, deep_object.as_bytes())),
            ] {
                let reply = t.json(&f.app, body).await;
                assert!(matches!(reply.status.as_u16(), 400 | 422), "{}: {}", what(variant), reply.body);
            }

            // Wrong media type: 415, whatever the body.
            for content_type in [
                None,
                Some("text/plain"),
                Some("application/x-www-form-urlencoded"),
                Some("application/jsonx"),
            ] {
                let reply = t.send(&f.app, content_type, v.to_string()).await;
                assert_problem(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }

            // The wrong shape: 422 naming the field.
            let unknown = with_field(v, "bogus_field", json!(true));
            assert_invalid(&t.json(&f.app, unknown.to_string()).await, "bogus_field");
            for wrong in [json!(12345), json!(true), json!({"x": 1}), json!(["a"])] {
                let reply = t.json(&f.app, with_field(v, t.field, wrong.clone()).to_string()).await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{}: {}",
                    what(&wrong.to_string()),
                    reply.body
                );
                assert_invalid(&reply, t.field);
            }
            for whole in ["null", "[]", "[\"Ada\", \"Lovelace\"]", "42", "\"text\""] {
                let reply = t.json(&f.app, whole).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {}", what(whole), reply.body);
            }
            let duplicate = with_raw(v, t.field, b"\"a\", \"bogus_dup\": 1");
            let duplicate = String::from_utf8(duplicate)
                .unwrap()
                .replace("bogus_dup", t.field.rsplit('.').next().unwrap());
            let reply = t.json(&f.app, duplicate).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}: {}",
                what("a duplicate"),
                reply.body
            );

            // Values no field may hold: 422 naming the field (a credential is simply not valid: 401).
            for (variant, bad) in [
                ("a huge string", "x".repeat(300_000)),
                ("a NUL byte", "a\u{0}b".to_owned()),
                ("an escape sequence", "\u{1b}[31mred".to_owned()),
                ("a bell", "ding\u{7}".to_owned()),
            ] {
                let reply = t.json(&f.app, with_field(v, t.field, json!(bad)).to_string()).await;
                let expected =
                    if t.credential { StatusCode::UNAUTHORIZED } else { StatusCode::UNPROCESSABLE_ENTITY };
                assert_eq!(reply.status, expected, "{}: {}", what(variant), reply.body);
                if !t.credential {
                    assert_invalid(&reply, t.field);
                }
            }

            // Custom fields hold any JSON the client sends, so nesting and odd values reach them.
            let takes_custom_fields = ["leads", "contacts", "accounts", "deals"]
                .iter()
                .any(|r| t.path.starts_with(&format!("/api/{r}")) && !t.path.ends_with("/convert"));
            if takes_custom_fields {
                let deep_value = with_raw(v, "custom_fields", format!("{{\"a\": {deep}}}").as_bytes());
                let reply = t.json(&f.app, deep_value).await;
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{}: {}",
                    what("deep custom fields"),
                    reply.body
                );
                for (bad, field) in [
                    (json!({"note": "a\u{0}b"}), "custom_fields.note"),
                    (json!({"note": "x".repeat(20_001)}), "custom_fields.note"),
                    (json!({"note": {"nested": true}}), "custom_fields.note"),
                    (json!({"'; DROP TABLE leads;--": 1}), "custom_fields"),
                    (json!({"big": "x".repeat(17 * 1024)}), "custom_fields"),
                ] {
                    let reply = t.json(&f.app, with_field(v, "custom_fields", bad).to_string()).await;
                    assert_eq!(
                        reply.status,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "{}: {}",
                        what(field),
                        reply.body
                    );
                    assert_invalid(&reply, field);
                }
            }

            // Over the body limit: 413.
            let big = with_field(v, t.field, json!("x".repeat(2 * 1024 * 1024)));
            let reply = t.json(&f.app, big.to_string()).await;
            assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE);
        }
        assert_eq!(f.tenant.owner.audit_head().await, head, "{store}: hostile bodies wrote something");
        // The register target was never valid, so its tenant does not exist.
        let login = json!({"email": "new@example.com", "password": PASSWORD, "tenant": "newco"});
        assert_problem(
            &send(&app, json_request("POST", "/api/auth/login", None, &login)).await,
            StatusCode::UNAUTHORIZED,
        );
    }
}

#[tokio::test]
async fn imports_refuse_hostile_json_and_csv_without_5xx() {
    for (store, app) in apps_with(roomy()).await {
        let f = fixture(&app).await;
        let o = &f.tenant.owner;
        let head = o.audit_head().await;
        let import = |content_type: Option<&'static str>, body: Vec<u8>, mode: &'static str| {
            let request = raw_request("POST", &format!("/api/leads/import{mode}"), None, content_type, body);
            o.send(o.authorize(request))
        };
        let json_cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("truncated", b"[{\"company\": ".to_vec(), 400),
            ("empty", Vec::new(), 400),
            ("invalid UTF-8", b"[{\"company\": \"\xff\xfe\"}]".to_vec(), 400),
            ("deep arrays", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), 422),
            (
                "deep custom fields",
                format!(
                    "[{{\"company\": \"x\", \"custom_fields\": {{\"a\": {}{}}}}}]",
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                )
                .into_bytes(),
                400,
            ),
            ("an object", b"{\"company\": \"x\"}".to_vec(), 422),
            ("a wrong type", b"[{\"company\": 5}]".to_vec(), 422),
            ("an unknown field", b"[{\"company\": \"x\", \"bogus\": 1}]".to_vec(), 422),
        ];
        for (what, body, status) in json_cases {
            let reply = import(Some("application/json"), body, "").await;
            assert_eq!(reply.status.as_u16(), status, "{store}: JSON import of {what}: {}", reply.body);
        }
        let reply = import(Some("application/json"), b"[{\"company\": 5}]".to_vec(), "").await;
        assert_invalid(&reply, "[0].company");

        // Per-row problems are reported per row; in atomic mode nothing is written.
        let rows =
            json!([{"company": "a\u{0}b"}, {"company": "x".repeat(300_000)}, {"company": "\u{1b}[2J"}]);
        let reply = import(Some("application/json"), rows.to_string().into_bytes(), "").await;
        assert_eq!((reply.status, reply.body["created"].as_u64()), (StatusCode::OK, Some(0)), "{store}");
        let refused: Vec<u64> =
            reply.body["errors"].as_array().unwrap().iter().map(|e| e["row"].as_u64().unwrap()).collect();
        assert_eq!(refused, [0, 1, 2], "{store}: {}", reply.body);
        assert!(
            reply.body["errors"].as_array().unwrap().iter().all(|e| e["errors"][0]["field"] == "company")
        );
        let atomic = import(Some("application/json"), rows.to_string().into_bytes(), "?mode=atomic").await;
        assert_eq!(
            atomic.fields(),
            ["[0].company", "[1].company", "[2].company"],
            "{store}: {}",
            atomic.body
        );

        // CSV: bad encodings and shapes are row errors or a 422 naming the body/column; never 5xx.
        let csv_cases: Vec<(&str, Vec<u8>)> = vec![
            ("invalid UTF-8 in the header", b"comp\xffany\nx\n".to_vec()),
            ("invalid UTF-8 in a cell", b"company\ncaf\xe9\n".to_vec()),
            ("NUL in a cell", b"company\na\x00b\n".to_vec()),
            ("an unknown column", b"company,is_admin\nx,true\n".to_vec()),
            ("a ragged row", b"company,title\nx\ny,z,w\n".to_vec()),
            ("an unterminated quote", b"company\n\"x\n".to_vec()),
            ("only a header", b"company\n".to_vec()),
            ("nothing", Vec::new()),
            ("a bad id", b"company,owner_id\nx,'; DROP TABLE leads;--\n".to_vec()),
            ("a bad status", b"company,status\nx,converted\n".to_vec()),
            ("bad custom fields", b"company,custom_fields\nx,{\"a\":\n".to_vec()),
            (
                "nested custom fields",
                format!("company,custom_fields\nx,\"{}\"\n", "[".repeat(5_000)).into_bytes(),
            ),
        ];
        for (what, body) in csv_cases {
            for mode in ["", "?mode=atomic"] {
                let reply = import(Some("text/csv"), body.clone(), mode).await;
                match reply.status {
                    StatusCode::OK => {
                        assert_eq!(reply.body["created"], 0, "{store}: CSV with {what}: {}", reply.body);
                    }
                    StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {}
                    other => panic!("{store}: CSV with {what}{mode}: {other} {}", reply.body),
                }
            }
        }
        for content_type in [None, Some("text/plain"), Some("application/xml")] {
            assert_problem(
                &import(content_type, b"company\nx\n".to_vec(), "").await,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            );
        }
        assert_invalid(&import(Some("text/csv"), b"company\nx\n".to_vec(), "?mode=yolo").await, "mode");
        assert_invalid(&import(Some("text/csv"), b"company\nx\n".to_vec(), "?bogus=1").await, "bogus");
        let big = vec![b'x'; 33 * 1024 * 1024];
        assert_problem(&import(Some("text/csv"), big, "").await, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(o.audit_head().await, head, "{store}: no hostile import wrote anything");
    }
}

/// Strings that look like code to someone: they are data.
const HOSTILE: [&str; 9] = [
    "Robert'); DROP TABLE leads;--",
    "<script>alert(\"x\")</script>",
    "' OR '1'='1' --",
    "100% _under_ \\back\\ \"quoted\" *star*",
    "NEAR(alpha beta) AND -gamma OR delta NOT",
    "$1 ?1 :name @p {{x}} ${x} `tick`",
    "Zoë 🚀 ñandú 東京",
    "\u{202e}reversed \u{feff}bom",
    "&lt;b&gt; &amp; %00 %27",
];

#[tokio::test]
async fn injection_shaped_text_round_trips_verbatim() {
    for (store, app) in apps_with(roomy()).await {
        let t = Tenant::register(&app, "acme").await;
        let o = &t.owner;
        let lead =
            o.create("/api/leads", &json!({"company": "Anchor"})).await["id"].as_str().unwrap().to_owned();
        for (i, text) in HOSTILE.iter().enumerate() {
            let bodies = [
                (
                    "leads",
                    json!({"first_name": text, "last_name": text, "company": text, "title": text,
                                 "source": text, "email": "o'brien+x%_@example.com", "custom_fields": {"note": text}}),
                ),
                (
                    "contacts",
                    json!({"first_name": text, "last_name": text, "title": text, "custom_fields": {"note": text}}),
                ),
                ("accounts", json!({"name": text, "industry": text, "custom_fields": {"note": text}})),
                ("deals", json!({"name": text, "custom_fields": {"note": text}})),
                (
                    "activities",
                    json!({"kind": "note", "subject": text, "body": format!("{text}\n\t{text}"), "lead_id": lead}),
                ),
            ];
            for (resource, body) in bodies {
                let created = o.create(&format!("/api/{resource}"), &body).await;
                let id = created["id"].as_str().unwrap();
                let fetched = o.get(&format!("/api/{resource}/{id}")).await;
                for (field, value) in body.as_object().unwrap() {
                    assert_eq!(&created[field], value, "{store}: {resource}.{field} created #{i}");
                    assert_eq!(&fetched.body[field], value, "{store}: {resource}.{field} read #{i}");
                }
                // Patched in too, and found by its custom field exactly.
                let other = HOSTILE[(i + 1) % HOSTILE.len()];
                let patch = patch_record(resource, other);
                let patched = o.patch(&format!("/api/{resource}/{id}"), &patch).await;
                assert_eq!(patched.status, StatusCode::OK, "{store}: {}", patched.body);
                let (field, value) = patch.as_object().unwrap().iter().next().unwrap();
                assert_eq!(&patched.body[field], value, "{store}: {resource}.{field} patched #{i}");
                if resource != "activities" {
                    let query = url_encode(text);
                    let found = o.get(&format!("/api/{resource}?cf.note={query}")).await;
                    let ids: Vec<&str> = found.body["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|r| r["id"].as_str())
                        .collect();
                    assert_eq!(ids, [id], "{store}: {resource} by cf.note={text:?}");
                }
            }
        }
        // Every table still answers, with every row.
        for resource in RECORDS {
            let listed = o.get(&format!("/api/{resource}?limit=200")).await;
            let expected = HOSTILE.len() + usize::from(resource == "leads");
            assert_eq!(listed.body["data"].as_array().unwrap().len(), expected, "{store}: {resource}");
        }
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn search_operators_are_words_and_garbage_queries_are_422() {
    for (store, app) in apps_with(roomy()).await {
        let t = Tenant::register(&app, "acme").await;
        let o = &t.owner;
        let mut ids = Vec::new();
        for text in HOSTILE {
            ids.push(
                o.create("/api/leads", &json!({"company": text})).await["id"].as_str().unwrap().to_owned(),
            );
        }
        o.create("/api/leads", &json!({"company": "Plain Widgets"})).await;
        // q → the leads it must find (indexes into HOSTILE); None: refused, as its schema says.
        let searches: Vec<(&str, Option<Vec<usize>>)> = vec![
            ("'; DROP TABLE", Some(vec![0])),
            ("Robert'); DROP TABLE leads;--", Some(vec![0])),
            ("NEAR(", Some(vec![4])),
            ("NEAR(alpha", Some(vec![4])),
            ("AND", Some(vec![4])),
            ("-gamma", Some(vec![4])),
            ("delta NOT", Some(vec![4])),
            ("OR", Some(vec![2, 4])),
            ("\"quoted", Some(vec![3])),
            ("star*", Some(vec![3])),
            ("col:script", Some(vec![])),
            ("script", Some(vec![1])),
            ("^zo", Some(vec![6])),
            ("zoë", Some(vec![6])),
            ("東京", Some(vec![6])),
            ("1'='1", Some(vec![2, 3, 5])),
            ("%", None),
            ("_", None),
            ("\"", None),
            ("*", None),
            ("(", None),
            ("' --", None),
            ("🚀", Some(vec![])),
            ("¥", Some(vec![])),
            ("", None),
        ];
        for (q, expected) in searches {
            let reply = o.get(&format!("/api/leads?q={}", url_encode(q))).await;
            match expected {
                Some(which) => {
                    assert_eq!(reply.status, StatusCode::OK, "{store}: q={q:?}: {}", reply.body);
                    let mut found: Vec<&str> = reply.body["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["id"].as_str().unwrap())
                        .collect();
                    let mut want: Vec<&str> = which.iter().map(|i| ids[*i].as_str()).collect();
                    found.sort();
                    want.sort();
                    assert_eq!(found, want, "{store}: q={q:?}");
                }
                None => assert_invalid(&reply, "q"),
            }
        }
        let long = "word ".repeat(5_000);
        assert_eq!(o.get(&format!("/api/leads?q={}", url_encode(&long))).await.status, StatusCode::OK);
        assert_eq!(o.get(&format!("/api/leads?q={}", "x".repeat(6_000))).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn garbage_query_strings_are_422_naming_the_parameter() {
    for (store, app) in apps_with(roomy()).await {
        let f = fixture(&app).await;
        let o = &f.tenant.owner;
        let lists = [
            "/api/leads".to_owned(),
            "/api/contacts".into(),
            "/api/accounts".into(),
            "/api/deals".into(),
            "/api/activities".into(),
            "/api/audit-logs".into(),
            format!("/api/leads/{}/timeline", f.lead),
        ];
        for list in &lists {
            for (query, field) in [
                ("limit=abc", "limit"),
                ("limit=0", "limit"),
                ("limit=1000", "limit"),
                ("limit=201", "limit"),
                ("limit=-1", "limit"),
                ("limit=1.5", "limit"),
                ("limit=99999999999999999999", "limit"),
                ("limit=", "limit"),
                ("cursor=broken", "cursor"),
                ("cursor=", "cursor"),
                ("cursor=%27%3B%20DROP%20TABLE%20leads%3B--", "cursor"),
                ("cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "cursor"),
                ("bogus=1", "bogus"),
                ("limit=10&bogus=1", "bogus"),
            ] {
                let reply = o.get(&format!("{list}?{query}")).await;
                assert_invalid(&reply, field);
                assert!(reply.body["request_id"].is_string(), "{store}: {list}?{query}");
            }
            // Accepted oddities: still never a 5xx (checked in send).
            for query in ["limit=1&limit=2", "%ZZ=1", "&&&", "=x", "limit=10#frag"] {
                let reply = o.get(&format!("{list}?{query}")).await;
                assert!(
                    reply.status.is_success() || reply.status.is_client_error(),
                    "{store}: {list}?{query}"
                );
            }
        }
        // Record lists' own filters.
        for (path, field) in [
            ("/api/leads?owner_id=not-a-uuid", "owner_id"),
            ("/api/leads?status=sleeping", "status"),
            ("/api/leads?created_after=yesterday", "created_after"),
            ("/api/leads?created_before=99999-01-01T00:00:00Z", "created_before"),
            ("/api/leads?stage=open", "stage"),
            ("/api/leads?cf.bad%20name=1", "cf.bad name"),
            ("/api/leads?cf.note=a%00b", "cf.note"),
            ("/api/deals?stage=DROP%20TABLE", "stage"),
            ("/api/deals?pipeline_id=1", "pipeline_id"),
            ("/api/activities?kind=fax", "kind"),
            ("/api/activities?lead_id=x", "lead_id"),
            ("/api/audit-logs?resource=widget", "resource"),
            ("/api/audit-logs?actor_id=x", "actor_id"),
            ("/api/audit-logs?from=yesterday", "from"),
            ("/api/leads/export?format=xml", "format"),
            ("/api/leads/export?limit=10", "limit"),
            ("/api/leads/export?cursor=abc", "cursor"),
            ("/api/leads/export?bogus=1", "bogus"),
            ("/api/users?limit=10", "limit"),
            ("/api/api-keys?cursor=x", "cursor"),
            ("/api/pipelines?bogus=1", "bogus"),
        ] {
            assert_invalid(&o.get(path).await, field);
        }
        // An inverted range is a valid query that matches nothing.
        let inverted = "/api/leads?created_after=2030-01-01T00:00:00Z&created_before=2020-01-01T00:00:00Z";
        let reply = o.get(inverted).await;
        assert_eq!((reply.status, &reply.body["data"]), (StatusCode::OK, &json!([])), "{store}");
        // Numbers and odd JSON in custom-field filters are values, not errors.
        for query in [
            "cf.seats=1e400",
            "cf.seats=18446744073709551616",
            "cf.seats=-0",
            "cf.seats=NaN",
            "cf.seats=null",
            "cf.seats=%5B1%5D",
        ] {
            let reply = o.get(&format!("/api/leads?{query}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{store}: {query}: {}", reply.body);
        }
    }
}

#[tokio::test]
async fn hostile_paths_and_headers_are_4xx() {
    for (store, app) in apps_with(roomy()).await {
        let t = Tenant::register(&app, "acme").await;
        let o = &t.owner;
        let id = o.create("/api/leads", &json!({"company": "C"})).await["id"].as_str().unwrap().to_owned();
        let long = "a".repeat(10_000);
        for path in [
            "/api/leads/%00".to_owned(),
            "/api/leads/%FF%FE".into(),
            "/api/leads/'%3B%20DROP%20TABLE%20leads%3B--".into(),
            format!("/api/leads/{long}"),
            format!("/api/leads/{long}/timeline"),
            "/api/leads/..%2F..%2Fetc%2Fpasswd".into(),
            format!("/api/leads/{id}/timeline/extra"),
            format!("/api/widgets/{id}"),
            format!("/api/users/{id}"),
            format!("/api/pipelines/{id}"),
            "/api/users/not-an-id".into(),
            "/api/pipelines/not-an-id".into(),
        ] {
            let reply = o.get(&path).await;
            assert!(reply.status.is_client_error(), "{store}: GET {path}: {}", reply.status);
        }
        for (method, path) in
            [("DELETE", "/api/api-keys/x"), ("PATCH", "/api/pipelines/x"), ("POST", "/api/leads/x/convert")]
        {
            let reply = o.call(method, path, Some(&json!({}))).await;
            assert_problem(&reply, StatusCode::NOT_FOUND);
        }
        // Credentials and other headers that are not what they claim.
        let bad_auth: Vec<(&str, Vec<u8>)> = vec![
            ("authorization", b"Bearer ".to_vec()),
            ("authorization", b"Bearer crm_".to_vec()),
            ("authorization", format!("Bearer crm_{long}").into_bytes()),
            ("authorization", format!("Bearer {long}.{long}.{long}").into_bytes()),
            ("authorization", b"Bearer \xff\xfe".to_vec()),
            ("authorization", b"Basic b3duZXI6cGFzcw==".to_vec()),
            ("authorization", b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_vec()),
            ("x-api-key", b"'; DROP TABLE api_keys;--".to_vec()),
            (
                "x-api-key",
                b"crm_k1.00000000000000000000000000000000.00000000000000000000000000000000.x".to_vec(),
            ),
        ];
        for (name, value) in bad_auth {
            let mut request = raw_request("GET", "/api/leads", None, None, Body::empty());
            request.headers_mut().insert(
                axum::http::HeaderName::from_static(name),
                axum::http::HeaderValue::from_bytes(&value).unwrap(),
            );
            assert_problem(&send(&app, request).await, StatusCode::UNAUTHORIZED);
        }
        for (name, value) in [
            ("x-tenant", b"\xff\xfe".to_vec()),
            ("x-tenant", "x".repeat(5_000).into_bytes()),
            ("if-match", b"\"\xff\"".to_vec()),
            ("x-request-id", b"\xffnot-sane".to_vec()),
            ("x-request-id", "r".repeat(5_000).into_bytes()),
        ] {
            let mut request = o.request("PATCH", &format!("/api/leads/{id}"), Some(&json!({"title": "t"})));
            request.headers_mut().insert(
                axum::http::HeaderName::from_static(name),
                axum::http::HeaderValue::from_bytes(&value).unwrap(),
            );
            let reply = o.send(request).await;
            assert!(
                reply.status.is_success() || reply.status.is_client_error(),
                "{store}: {name}: {}",
                reply.status
            );
            let echoed = reply.headers["x-request-id"].to_str().unwrap();
            assert!(echoed.len() <= 128 && echoed.bytes().all(|b| b.is_ascii_graphic()), "{store}: {echoed}");
        }
    }
}
