//! Every status code of the contract, produced on purpose; and `If-Match` on every resource that
//! can be changed or deleted: a stale or unreadable version is 412 and changes nothing.

mod common;

use std::collections::BTreeSet;

use axum::http::{StatusCode, header};
use common::*;
use crm_http::{HttpConfig, RateLimits};
use serde_json::{Value, json};

/// A request with `If-Match`, as `caller`.
async fn with_if_match(
    caller: &Caller,
    method: &str,
    uri: &str,
    body: Option<&Value>,
    if_match: &str,
) -> Reply {
    let mut request = caller.request(method, uri, body);
    request.headers_mut().insert(header::IF_MATCH, if_match.parse().unwrap());
    caller.send(request).await
}

fn etag(reply: &Reply) -> String {
    reply.headers.get(header::ETAG).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// A changeable thing: where it lives, a change to make, and how to read it back.
struct Changeable {
    name: String,
    path: String,
    patch: Option<Value>,
    deletable: bool,
    /// Where its current state (including `version`) is read: the path itself, or an item of a list.
    read: (String, Option<String>),
}

async fn read(caller: &Caller, (path, item): &(String, Option<String>)) -> (Value, String) {
    let reply = caller.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    match item {
        None => (reply.body.clone(), etag(&reply)),
        Some(id) => {
            let found = reply.body["data"].as_array().unwrap().iter().find(|v| v["id"] == id.as_str());
            let found = found.cloned().unwrap_or(Value::Null);
            let tag = format!("\"{}\"", found["version"]);
            (found, tag)
        }
    }
}

#[tokio::test]
async fn stale_if_match_is_412_on_every_patch_and_delete() {
    for (store, app) in apps_with(roomy()).await {
        let t = Tenant::register(&app, "acme").await;
        let o = &t.owner;
        let lead = o.create("/api/leads", &new_record("leads", "")).await["id"].as_str().unwrap().to_owned();
        let mut things = Vec::new();
        for resource in RECORDS {
            let id = o.create(&format!("/api/{resource}"), &new_record(resource, &lead)).await;
            let path = format!("/api/{resource}/{}", id["id"].as_str().unwrap());
            things.push(Changeable {
                name: resource.into(),
                path: path.clone(),
                patch: Some(patch_record(resource, "changed")),
                deletable: true,
                read: (path, None),
            });
        }
        let member =
            o.create("/api/users", &json!({"email": "m@acme.example", "name": "M", "role": "viewer"})).await;
        let path = format!("/api/users/{}", member["user"]["id"].as_str().unwrap());
        things.push(Changeable {
            name: "users".into(),
            path: path.clone(),
            patch: Some(json!({"role": "member"})),
            deletable: true,
            read: (path, None),
        });
        let (key, _) = t.api_key("viewer").await;
        things.push(Changeable {
            name: "api-keys".into(),
            path: format!("/api/api-keys/{key}"),
            patch: None,
            deletable: true,
            read: ("/api/api-keys".into(), Some(key)),
        });
        let stages = json!([{"key": "open", "name": "Open", "kind": "open"}, {"key": "won", "name": "Won", "kind": "won"}]);
        let pipeline = o.create("/api/pipelines", &json!({"name": "P", "stages": stages})).await;
        let path = format!("/api/pipelines/{}", pipeline["id"].as_str().unwrap());
        things.push(Changeable {
            name: "pipelines".into(),
            path: path.clone(),
            patch: Some(json!({"name": "Renamed"})),
            deletable: false,
            read: (path, None),
        });

        for thing in &things {
            let what = format!("{store}: {}", thing.name);
            let (first, tag) = read(o, &thing.read).await;
            assert_eq!(tag, "\"1\"", "{what}: a fresh record's ETag is its version");
            let head = o.audit_head().await;
            let mut refused = Vec::new();
            for stale in ["\"2\"", "\"0\"", "W/\"7\"", "\"abc\"", "\"\"", "1.5"] {
                if let Some(patch) = &thing.patch {
                    refused.push(with_if_match(o, "PATCH", &thing.path, Some(patch), stale).await);
                }
                if thing.deletable {
                    refused.push(with_if_match(o, "DELETE", &thing.path, None, stale).await);
                }
            }
            for reply in &refused {
                assert_problem(reply, StatusCode::PRECONDITION_FAILED);
            }
            assert_eq!(read(o, &thing.read).await.0, first, "{what}: a refused write changed it");
            assert_eq!(o.audit_head().await, head, "{what}: a refused write was audited");

            // The current version goes through, and moves the ETag on.
            let mut tag = tag;
            if let Some(patch) = &thing.patch {
                let reply = with_if_match(o, "PATCH", &thing.path, Some(patch), &tag).await;
                assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
                assert_eq!(etag(&reply), "\"2\"", "{what}: PATCH answers the new ETag");
                assert_eq!(reply.body["version"], 2, "{what}");
                // The old version is now stale.
                let again = with_if_match(o, "PATCH", &thing.path, Some(patch), &tag).await;
                assert_problem(&again, StatusCode::PRECONDITION_FAILED);
                tag = "W/\"2\"".into();
            }
            if thing.deletable {
                let reply = with_if_match(o, "DELETE", &thing.path, None, &tag).await;
                assert_eq!(reply.status, StatusCode::NO_CONTENT, "{what}: {}", reply.body);
            }
        }
        // `*` means whatever is current.
        let id = o.create("/api/accounts", &json!({"name": "Star"})).await["id"].as_str().unwrap().to_owned();
        let reply =
            with_if_match(o, "PATCH", &format!("/api/accounts/{id}"), Some(&json!({"name": "S"})), "*").await;
        assert_eq!(reply.status, StatusCode::OK, "{store}");
    }
}

#[tokio::test]
async fn every_status_in_the_contract_is_produced() {
    let mut seen = BTreeSet::new();
    for (store, app) in apps_with(roomy()).await {
        let t = Tenant::register(&app, "acme").await;
        seen.insert(201);
        let o = &t.owner;
        let mut saw = |reply: &Reply, status: StatusCode| {
            assert_eq!(reply.status, status, "{store}: {}", reply.body);
            seen.insert(status.as_u16());
        };
        saw(&o.get("/api/leads").await, StatusCode::OK);
        let lead = o.create("/api/leads", &json!({"last_name": "L", "company": "C"})).await;
        let lead_path = format!("/api/leads/{}", lead["id"].as_str().unwrap());
        saw(
            &o.send(raw_request("POST", "/api/leads", None, Some("application/json"), "{")).await,
            StatusCode::UNAUTHORIZED,
        );
        let malformed =
            o.send(o.authorize(raw_request("POST", "/api/leads", None, Some("application/json"), "{"))).await;
        saw(&malformed, StatusCode::BAD_REQUEST);
        let (_, viewer) = t.member("vera", "viewer").await;
        saw(&viewer.patch(&lead_path, &json!({"title": "x"})).await, StatusCode::FORBIDDEN);
        saw(&o.get(&format!("/api/leads/{}", uuid::Uuid::now_v7())).await, StatusCode::NOT_FOUND);
        let convert = format!("{lead_path}/convert");
        saw(&o.post(&convert, &json!({})).await, StatusCode::OK);
        saw(&o.post(&convert, &json!({})).await, StatusCode::CONFLICT);
        let duplicate = json!({"email": "vera@acme.example", "name": "V", "role": "viewer"});
        saw(&o.post("/api/users", &duplicate).await, StatusCode::CONFLICT);
        let slug = json!({"email": "x@y.example", "password": PASSWORD, "name": "X", "tenant": {"name": "A", "slug": "acme"}});
        saw(&send(&app, json_request("POST", "/api/auth/register", None, &slug)).await, StatusCode::CONFLICT);
        saw(
            &with_if_match(o, "PATCH", &lead_path, Some(&json!({"title": "x"})), "\"1\"").await,
            StatusCode::PRECONDITION_FAILED,
        );
        let big = json!({"company": "x".repeat(2 << 20)});
        saw(&o.post("/api/leads", &big).await, StatusCode::PAYLOAD_TOO_LARGE);
        let text = o
            .send(o.authorize(raw_request("POST", "/api/leads", None, Some("text/plain"), "company=x")))
            .await;
        saw(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        saw(&o.post("/api/leads", &json!({"email": "nope"})).await, StatusCode::UNPROCESSABLE_ENTITY);
        saw(&o.delete(&lead_path).await, StatusCode::NO_CONTENT);
    }
    // 429 needs a router with tight limits (SQLite is enough: the limiter is the router's).
    let config = HttpConfig {
        rate_limits: RateLimits { auth_per_minute: 1000, api_per_minute: 2 },
        ..HttpConfig::default()
    };
    let (_, app) = apps_with(config).await.remove(0);
    let t = Tenant::register(&app, "acme").await;
    let replies =
        [t.owner.get("/api/leads").await, t.owner.get("/api/leads").await, t.owner.get("/api/leads").await];
    assert_eq!(replies.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(), [200, 200, 429]);
    assert!(replies[2].headers.contains_key(header::RETRY_AFTER));
    assert_eq!(replies[2].headers["ratelimit-remaining"], "0");
    seen.insert(429);

    let contract: BTreeSet<u16> = [200, 201, 204, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429].into();
    assert_eq!(seen, contract);
}
