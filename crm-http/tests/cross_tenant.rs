//! Cross-tenant matrix (DESIGN invariant 3): tenant B's callers, handed tenant A's ids, get
//! exactly what an unknown id gets, and A's data does not move. Lists, searches, exports, the
//! audit log and filters from B never show A's rows; links from B's records to A's ids are
//! refused like links to ids that do not exist.

mod common;

use axum::Router;
use axum::http::{StatusCode, header};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// One record of every kind in a tenant, with `word` in its searchable text.
#[derive(Debug, Clone)]
struct Seeded {
    word: String,
    lead: String,
    spare_lead: String,
    contact: String,
    account: String,
    deal: String,
    activity: String,
    pipeline: String,
    default_pipeline: String,
    owner: String,
    member: String,
    key: String,
}

impl Seeded {
    /// Every id of the tenant a request could name.
    fn ids(&self) -> Vec<&str> {
        vec![
            &self.lead,
            &self.spare_lead,
            &self.contact,
            &self.account,
            &self.deal,
            &self.activity,
            &self.pipeline,
            &self.default_pipeline,
            &self.owner,
            &self.member,
            &self.key,
        ]
    }

    fn record(&self, resource: &str) -> &str {
        match resource {
            "leads" => &self.lead,
            "contacts" => &self.contact,
            "accounts" => &self.account,
            "deals" => &self.deal,
            "activities" => &self.activity,
            other => panic!("{other}"),
        }
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

async fn seed(t: &Tenant, word: &str) -> Seeded {
    let o = &t.owner;
    let account = id_of(
        &o.create(
            "/api/accounts",
            &json!({"name": format!("{word} Corp"), "domain": format!("{word}.example")}),
        )
        .await,
    );
    let contact = id_of(
        &o.create(
            "/api/contacts",
            &json!({"first_name": word, "last_name": "Person", "email": format!("p@{word}.example"),
                    "account_id": account}),
        )
        .await,
    );
    let lead_body =
        json!({"first_name": word, "company": format!("{word} Leads"), "email": format!("l@{word}.example")});
    let lead = id_of(&o.create("/api/leads", &lead_body).await);
    let spare_lead = id_of(&o.create("/api/leads", &lead_body).await);
    let stages = json!([{"key": "open", "name": "Open", "kind": "open"}, {"key": "won", "name": "Won", "kind": "won"}]);
    let pipeline = id_of(
        &o.create("/api/pipelines", &json!({"name": format!("{word} pipeline"), "stages": stages})).await,
    );
    let deal = id_of(
        &o.create(
            "/api/deals",
            &json!({"name": format!("{word} deal"), "account_id": account, "contact_id": contact,
                    "pipeline_id": pipeline, "stage": "open"}),
        )
        .await,
    );
    let activity = id_of(
        &o.create(
            "/api/activities",
            &json!({"kind": "call", "subject": format!("{word} call"), "deal_id": deal}),
        )
        .await,
    );
    let member = o
        .create(
            "/api/users",
            &json!({"email": format!("member@{}.example", t.slug), "name": format!("{word} Member"), "role": "member"}),
        )
        .await;
    let key =
        id_of(&o.create("/api/api-keys", &json!({"name": format!("{word} key"), "role": "admin"})).await);
    let pipelines = o.get("/api/pipelines").await;
    let default_pipeline = pipelines.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .map(id_of)
        .unwrap();
    Seeded {
        word: word.to_owned(),
        lead,
        spare_lead,
        contact,
        account,
        deal,
        activity,
        pipeline,
        default_pipeline,
        owner: t.owner_id(),
        member: member["user"]["id"].as_str().unwrap().to_owned(),
        key,
    }
}

/// Everything tenant A's owner can read, in full.
async fn snapshot(a: &Caller, s: &Seeded) -> Vec<(String, Value)> {
    let mut paths: Vec<String> = Vec::new();
    for resource in RECORDS {
        paths.push(format!("/api/{resource}/{}", s.record(resource)));
        paths.push(format!("/api/{resource}?limit=200"));
    }
    for resource in ["leads", "contacts", "accounts", "deals"] {
        paths.push(format!("/api/{resource}/{}/timeline?limit=200", s.record(resource)));
    }
    paths.push(format!("/api/leads/{}", s.spare_lead));
    paths.extend(
        ["/api/users", "/api/api-keys", "/api/pipelines", "/api/audit-logs?limit=200", "/api/leads/export"]
            .map(str::to_owned),
    );
    paths.push(format!("/api/users/{}", s.member));
    paths.push(format!("/api/pipelines/{}", s.pipeline));
    let mut out = Vec::new();
    for path in paths {
        let reply = a.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        out.push((path, reply.body));
    }
    out
}

/// Two replies a client cannot tell apart: same status, same problem (but for the request id),
/// same headers present.
fn assert_same_answer(what: &str, theirs: &Reply, missing: &Reply) {
    assert_eq!(theirs.status, missing.status, "{what}: {} vs {}", theirs.body, missing.body);
    assert_eq!(theirs.problem_sans_request_id(), missing.problem_sans_request_id(), "{what}");
    let names = |r: &Reply| {
        let mut n: Vec<String> = r.headers.keys().map(|k| k.as_str().to_owned()).collect();
        n.sort();
        n
    };
    assert_eq!(names(theirs), names(missing), "{what}");
}

struct Pair {
    a: Tenant,
    b: Tenant,
    sa: Seeded,
    sb: Seeded,
    /// B's owner, and an admin API key of B: both must be kept out.
    b_callers: Vec<Caller>,
}

async fn pair(app: &Router) -> Pair {
    let a = Tenant::register(app, "acme").await;
    let b = Tenant::register(app, "globex").await;
    let sa = seed(&a, "Acmesecret").await;
    let sb = seed(&b, "Globexown").await;
    let (_, b_key) = b.api_key("admin").await;
    let b_callers = vec![b.owner.clone(), b_key];
    Pair { a, b, sa, sb, b_callers }
}

#[tokio::test]
async fn another_tenants_ids_answer_like_unknown_ids_and_change_nothing() {
    for (store, app) in apps_with(roomy()).await {
        let p = pair(&app).await;
        let before = snapshot(&p.a.owner, &p.sa).await;
        let b_audit = p.b.owner.audit_head().await;
        let s = &p.sa;

        // (method, path with {id}, body, A's id)
        let mut cases: Vec<(&str, String, Option<Value>, String)> = Vec::new();
        for resource in RECORDS {
            let id = s.record(resource).to_owned();
            let path = format!("/api/{resource}/{{id}}");
            cases.push(("GET", path.clone(), None, id.clone()));
            cases.push(("PATCH", path.clone(), Some(patch_record(resource, "pwned")), id.clone()));
            cases.push(("DELETE", path, None, id.clone()));
            if resource != "activities" {
                cases.push(("GET", format!("/api/{resource}/{{id}}/timeline"), None, id));
            }
        }
        let convert = json!({"account": {"name": "pwned"}, "deal": {"name": "pwned"}});
        cases.push(("POST", "/api/leads/{id}/convert".into(), Some(convert.clone()), s.lead.clone()));
        cases.push(("POST", "/api/leads/{id}/convert".into(), Some(json!({})), s.spare_lead.clone()));
        for user in [&s.member, &s.owner] {
            cases.push(("GET", "/api/users/{id}".into(), None, user.clone()));
            cases.push(("PATCH", "/api/users/{id}".into(), Some(json!({"role": "viewer"})), user.clone()));
            cases.push(("DELETE", "/api/users/{id}".into(), None, user.clone()));
        }
        cases.push(("DELETE", "/api/api-keys/{id}".into(), None, s.key.clone()));
        for pipeline in [&s.pipeline, &s.default_pipeline] {
            cases.push(("GET", "/api/pipelines/{id}".into(), None, pipeline.clone()));
            cases.push((
                "PATCH",
                "/api/pipelines/{id}".into(),
                Some(json!({"name": "pwned"})),
                pipeline.clone(),
            ));
        }

        let mut checked = 0;
        for caller in &p.b_callers {
            for (method, path, body, id) in &cases {
                // Without a precondition, and with one naming the version A's record has.
                let preconditions: &[Option<&str>] =
                    if matches!(*method, "PATCH" | "DELETE") { &[None, Some("\"1\"")] } else { &[None] };
                for if_match in preconditions {
                    let request = |target: &str| {
                        let mut r = caller.request(method, &path.replace("{id}", target), body.as_ref());
                        if let Some(v) = if_match {
                            r.headers_mut().insert(header::IF_MATCH, v.parse().unwrap());
                        }
                        r
                    };
                    let theirs = caller.send(request(id)).await;
                    let missing = caller.send(request(&Uuid::now_v7().to_string())).await;
                    let what = format!("{store}: {method} {path} (If-Match {if_match:?}) with A's id");
                    assert_problem(&theirs, StatusCode::NOT_FOUND);
                    assert_same_answer(&what, &theirs, &missing);
                    checked += 1;
                }
            }
        }
        assert!(checked >= 2 * 40, "{checked} cases");

        assert_eq!(p.b.owner.audit_head().await, b_audit, "{store}: failed attempts write nothing in B");
        let after = snapshot(&p.a.owner, &p.sa).await;
        for ((path, was), (_, is)) in before.iter().zip(&after) {
            assert_eq!(was, is, "{store}: A's {path} changed");
        }
        // (The snapshot covers A's keys and members: none was revoked or removed.)
    }
}

/// Whatever B can list, search, export or audit mentions none of A's ids or words.
fn assert_nothing_of(store: &str, what: &str, reply: &Reply, s: &Seeded) {
    let text = String::from_utf8_lossy(&reply.bytes).to_lowercase();
    for id in s.ids() {
        assert!(!text.contains(id), "{store}: {what} shows A's id {id}: {text}");
    }
    assert!(!text.contains(&s.word.to_lowercase()), "{store}: {what} shows A's data: {text}");
}

#[tokio::test]
async fn lists_searches_exports_audit_and_filters_in_b_never_show_a() {
    for (store, app) in apps_with(roomy()).await {
        let p = pair(&app).await;
        let (sa, sb) = (&p.sa, &p.sb);
        for caller in &p.b_callers {
            // Lists that must show B's own rows (so "nothing of A" is not vacuous).
            let mut own: Vec<(String, String)> = Vec::new();
            for resource in RECORDS {
                own.push((format!("/api/{resource}?limit=200"), sb.record(resource).to_owned()));
            }
            for resource in ["leads", "contacts", "accounts", "deals"] {
                let id = sb.record(resource);
                own.push((format!("/api/{resource}/{id}/timeline"), id.to_owned()));
                own.push((format!("/api/{resource}?q=globexown"), id.to_owned()));
            }
            own.push(("/api/users".into(), sb.member.clone()));
            own.push(("/api/api-keys".into(), sb.key.clone()));
            own.push(("/api/pipelines".into(), sb.pipeline.clone()));
            own.push(("/api/audit-logs?limit=200".into(), sb.lead.clone()));
            own.push(("/api/leads/export?format=json".into(), sb.lead.clone()));
            own.push(("/api/leads/export?format=csv".into(), sb.lead.clone()));
            own.push(("/api/auth/me".into(), p.b.session["tenant"]["id"].as_str().unwrap().to_owned()));
            for (path, b_id) in &own {
                let reply = caller.get(path).await;
                assert_eq!(reply.status, StatusCode::OK, "{store}: {path}: {}", reply.body);
                let text = String::from_utf8_lossy(&reply.bytes);
                assert!(text.contains(b_id.as_str()), "{store}: {path} should show B's {b_id}: {text}");
                assert_nothing_of(store, path, &reply, sa);
            }

            // Searching for A's words finds nothing.
            for resource in ["leads", "contacts", "accounts", "deals"] {
                let reply = caller.get(&format!("/api/{resource}?q={}", sa.word)).await;
                assert_eq!(
                    (reply.status, reply.body["data"].as_array().map(Vec::len)),
                    (StatusCode::OK, Some(0))
                );
            }

            // Filters naming A's ids: empty, or refused; never A's rows.
            let filters = [
                format!("/api/leads?owner_id={}", sa.owner),
                format!("/api/leads?owner_id={}", sa.member),
                format!("/api/contacts?account_id={}", sa.account),
                format!("/api/contacts?owner_id={}", sa.owner),
                format!("/api/accounts?owner_id={}", sa.owner),
                format!("/api/deals?account_id={}", sa.account),
                format!("/api/deals?contact_id={}", sa.contact),
                format!("/api/deals?pipeline_id={}", sa.pipeline),
                format!("/api/deals?pipeline_id={}&stage=open", sa.pipeline),
                format!("/api/deals?owner_id={}", sa.owner),
                format!("/api/activities?lead_id={}", sa.lead),
                format!("/api/activities?deal_id={}", sa.deal),
                format!("/api/activities?contact_id={}", sa.contact),
                format!("/api/activities?account_id={}", sa.account),
                format!("/api/activities?owner_id={}", sa.owner),
                format!("/api/audit-logs?actor_id={}", sa.owner),
                format!("/api/audit-logs?resource_id={}", sa.lead),
                format!("/api/audit-logs?resource=lead&resource_id={}", sa.lead),
                format!("/api/leads/export?owner_id={}", sa.owner),
                format!("/api/leads/export?format=csv&owner_id={}", sa.owner),
            ];
            for path in &filters {
                let reply = caller.get(path).await;
                match reply.status {
                    StatusCode::OK => {
                        let rows = reply.body.get("data").unwrap_or(&reply.body);
                        let empty = rows.as_array().is_some_and(Vec::is_empty)
                            || String::from_utf8_lossy(&reply.bytes).lines().count() == 1;
                        assert!(empty, "{store}: {path} in B returned rows: {}", reply.body);
                    }
                    StatusCode::UNPROCESSABLE_ENTITY => {}
                    other => panic!("{store}: {path} answered {other}: {}", reply.body),
                }
                assert_nothing_of(store, path, &reply, sa);
            }
        }
    }
}

#[tokio::test]
async fn links_from_b_to_a_are_refused_like_missing_ids() {
    for (store, app) in apps_with(roomy()).await {
        let p = pair(&app).await;
        let before = snapshot(&p.a.owner, &p.sa).await;
        let b_audit = p.b.owner.audit_head().await;
        let (sa, sb) = (&p.sa, &p.sb);
        // (method, path, body with {id} where A's id goes, A's id)
        let mut cases: Vec<(&str, String, Value, &str)> = vec![
            ("POST", "/api/leads".into(), json!({"company": "x", "owner_id": "{id}"}), &sa.owner),
            ("POST", "/api/leads".into(), json!({"company": "x", "owner_id": "{id}"}), &sa.member),
            ("POST", "/api/contacts".into(), json!({"last_name": "x", "account_id": "{id}"}), &sa.account),
            ("POST", "/api/contacts".into(), json!({"last_name": "x", "owner_id": "{id}"}), &sa.owner),
            ("POST", "/api/accounts".into(), json!({"name": "x", "owner_id": "{id}"}), &sa.owner),
            ("POST", "/api/deals".into(), json!({"name": "x", "account_id": "{id}"}), &sa.account),
            ("POST", "/api/deals".into(), json!({"name": "x", "contact_id": "{id}"}), &sa.contact),
            ("POST", "/api/deals".into(), json!({"name": "x", "pipeline_id": "{id}"}), &sa.pipeline),
            (
                "POST",
                "/api/deals".into(),
                json!({"name": "x", "pipeline_id": "{id}", "stage": "open"}),
                &sa.pipeline,
            ),
            ("POST", "/api/deals".into(), json!({"name": "x", "owner_id": "{id}"}), &sa.owner),
            (
                "POST",
                "/api/activities".into(),
                json!({"kind": "note", "subject": "x", "lead_id": "{id}"}),
                &sa.lead,
            ),
            (
                "POST",
                "/api/activities".into(),
                json!({"kind": "note", "subject": "x", "contact_id": "{id}"}),
                &sa.contact,
            ),
            (
                "POST",
                "/api/activities".into(),
                json!({"kind": "note", "subject": "x", "account_id": "{id}"}),
                &sa.account,
            ),
            (
                "POST",
                "/api/activities".into(),
                json!({"kind": "note", "subject": "x", "deal_id": "{id}"}),
                &sa.deal,
            ),
            ("PATCH", format!("/api/leads/{}", sb.lead), json!({"owner_id": "{id}"}), &sa.owner),
            ("PATCH", format!("/api/contacts/{}", sb.contact), json!({"account_id": "{id}"}), &sa.account),
            ("PATCH", format!("/api/accounts/{}", sb.account), json!({"owner_id": "{id}"}), &sa.member),
            ("PATCH", format!("/api/deals/{}", sb.deal), json!({"account_id": "{id}"}), &sa.account),
            ("PATCH", format!("/api/deals/{}", sb.deal), json!({"contact_id": "{id}"}), &sa.contact),
            (
                "PATCH",
                format!("/api/deals/{}", sb.deal),
                json!({"pipeline_id": "{id}", "stage": "open"}),
                &sa.pipeline,
            ),
            (
                "PATCH",
                format!("/api/deals/{}", sb.deal),
                json!({"pipeline_id": "{id}"}),
                &sa.default_pipeline,
            ),
        ];
        let convert = format!("/api/leads/{}/convert", sb.spare_lead);
        cases.extend([
            ("POST", convert.clone(), json!({"contact": {"account_id": "{id}"}}), sa.account.as_str()),
            ("POST", convert.clone(), json!({"contact": {"owner_id": "{id}"}}), sa.owner.as_str()),
            (
                "POST",
                convert.clone(),
                json!({"deal": {"name": "x", "pipeline_id": "{id}"}}),
                sa.pipeline.as_str(),
            ),
            (
                "POST",
                convert.clone(),
                json!({"deal": {"name": "x", "contact_id": "{id}"}}),
                sa.contact.as_str(),
            ),
            ("POST", convert, json!({"account": {"name": "x", "owner_id": "{id}"}}), sa.owner.as_str()),
        ]);
        for caller in &p.b_callers {
            for (method, path, body, id) in &cases {
                let with = |target: &str| -> Value {
                    serde_json::from_str(&body.to_string().replace("{id}", target)).unwrap()
                };
                let theirs = caller.call(method, path, Some(&with(id))).await;
                let missing = caller.call(method, path, Some(&with(&Uuid::now_v7().to_string()))).await;
                let what = format!("{store}: {method} {path} {body} with A's id");
                assert_eq!(theirs.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", theirs.body);
                assert_same_answer(&what, &theirs, &missing);
            }
            // Imports report the row the same way, and create nothing (not even the valid row, atomically).
            for mode in ["", "?mode=atomic"] {
                let rows = |owner: &str| json!([{"company": "ok"}, {"company": "x", "owner_id": owner}]);
                let uri = format!("/api/leads/import{mode}");
                let theirs = caller.post(&uri, &rows(&sa.owner)).await;
                let missing = caller.post(&uri, &rows(&Uuid::now_v7().to_string())).await;
                assert_eq!(theirs.body["errors"], missing.body["errors"], "{store}: import{mode}");
                if mode.is_empty() {
                    assert_eq!(theirs.status, StatusCode::OK, "{store}: {}", theirs.body);
                    assert_eq!(theirs.body["errors"][0]["row"], 1, "{store}: {}", theirs.body);
                } else {
                    assert_eq!(theirs.fields(), ["[1].owner_id"], "{store}: {}", theirs.body);
                    assert_same_answer(&format!("{store}: import{mode}"), &theirs, &missing);
                }
                let csv = |owner: &str| format!("company,owner_id\nx,{owner}\n");
                let send_csv = |text: String| {
                    let request = raw_request("POST", &uri, None, Some("text/csv"), text);
                    caller.send(caller.authorize(request))
                };
                let theirs = send_csv(csv(&sa.owner)).await;
                let missing = send_csv(csv(&Uuid::now_v7().to_string())).await;
                if mode.is_empty() {
                    assert_eq!((theirs.status, theirs.body["created"].as_u64()), (StatusCode::OK, Some(0)));
                    assert_eq!(theirs.body, missing.body, "{store}: csv import{mode}");
                } else {
                    assert_eq!(theirs.fields(), ["[0].owner_id"], "{store}: {}", theirs.body);
                    assert_same_answer(&format!("{store}: csv import{mode}"), &theirs, &missing);
                }
            }
        }
        // The refused links wrote nothing in B (the valid import rows aside), and nothing in A.
        let audit = p.b.owner.get("/api/audit-logs?limit=200").await;
        let since: Vec<&Value> = audit.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .take_while(|e| e["id"].as_str() != b_audit.as_deref())
            .collect();
        assert!(
            since.iter().all(|e| e["action"] == "created" && e["resource"] == "lead"),
            "{store}: only the valid import rows were written: {since:?}"
        );
        // One valid best-effort row per JSON import (A's id and a random one), per caller.
        assert_eq!(since.len(), 2 * p.b_callers.len(), "{store}: {since:?}");
        let after = snapshot(&p.a.owner, &p.sa).await;
        for ((path, was), (_, is)) in before.iter().zip(&after) {
            assert_eq!(was, is, "{store}: A's {path} changed");
        }
    }
}

#[tokio::test]
async fn a_tenant_named_besides_the_credential_must_be_the_credentials() {
    for (store, app) in apps_with(roomy()).await {
        let a = Tenant::register(&app, "acme").await;
        let b = Tenant::register(&app, "globex").await;
        let (_, b_key) = b.api_key("viewer").await;
        let a_id = a.session["tenant"]["id"].as_str().unwrap().to_owned();
        for caller in [&b.owner, &b_key] {
            for named in ["acme", a_id.as_str()] {
                let mut request = caller.request("GET", "/api/leads", None);
                request.headers_mut().insert("x-tenant", named.parse().unwrap());
                assert_problem(&caller.send(request).await, StatusCode::FORBIDDEN);
            }
        }
        // B's owner's password does not open A; the answer is a wrong password's.
        let login = |email: &str, password: &str| {
            json_request(
                "POST",
                "/api/auth/login",
                None,
                &json!({"email": email, "password": password, "tenant": "acme"}),
            )
        };
        let theirs = send(&app, login("owner@globex.example", PASSWORD)).await;
        let wrong = send(&app, login("owner@acme.example", "not the password at all")).await;
        assert_problem(&theirs, StatusCode::UNAUTHORIZED);
        assert_eq!(theirs.problem_sans_request_id(), wrong.problem_sans_request_id(), "{store}");
    }
}
