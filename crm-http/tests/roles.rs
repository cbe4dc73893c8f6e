//! Role × action matrix: every role (and an API key of every role a key may hold) against every
//! endpoint. The expected status is derived from crm-core's `DefaultPolicy` (and `Grant::covers`
//! for own-record scope), not copied into a table; a denied write must change nothing.

mod common;

use axum::http::StatusCode;
use common::*;
use crm_core::model::ApiKeyId;
use crm_core::{Action, DefaultPolicy, Id, Policy, Principal, Resource, Role, UserId};
use serde_json::{Value, json};

/// One principal of the tenant and how to call as it.
struct Who {
    label: String,
    principal: Principal,
    caller: Caller,
    /// The user it acts for: itself, or the creator of an API key.
    acting_user: String,
}

/// What a denied write must leave as it was: a GET path, and the id of an item in its `data`.
type Watch = (String, Option<String>);

struct Case {
    name: String,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// Every permission the endpoint asks the policy for, in order.
    needs: Vec<(Action, Resource)>,
    /// For record-scoped endpoints, the owner of the record (checked against the first need).
    owner: Option<Option<String>>,
    success: StatusCode,
    write: bool,
    watch: Option<Watch>,
    /// Core rules beside the policy: only people create API keys; only owners hand out `owner`.
    people_only: bool,
    owner_only: bool,
}

impl Case {
    fn read(path: String, needs: Vec<(Action, Resource)>) -> Self {
        Case {
            name: path.clone(),
            method: "GET",
            path,
            body: None,
            needs,
            owner: None,
            success: StatusCode::OK,
            write: false,
            watch: None,
            people_only: false,
            owner_only: false,
        }
    }

    fn write(method: &'static str, path: String, body: Option<Value>, need: (Action, Resource)) -> Self {
        let success = match method {
            "POST" => StatusCode::CREATED,
            "DELETE" => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        };
        Case {
            name: format!("{method} {path}"),
            method,
            path,
            body,
            needs: vec![need],
            owner: None,
            success,
            write: true,
            watch: None,
            people_only: false,
            owner_only: false,
        }
    }

    fn named(mut self, name: &str) -> Self {
        self.name = format!("{} ({name})", self.name);
        self
    }

    fn owned_by(mut self, owner: Option<String>) -> Self {
        self.owner = Some(owner);
        self
    }

    fn watching(mut self, path: String, item: Option<String>) -> Self {
        self.watch = Some((path, item));
        self
    }

    /// The status the default policy (and core's few fixed rules) call for.
    fn expected(&self, principal: &Principal) -> StatusCode {
        for (i, (action, resource)) in self.needs.iter().enumerate() {
            let Some(grant) = DefaultPolicy.authorize(principal, *action, *resource) else {
                return StatusCode::FORBIDDEN;
            };
            if let (0, Some(owner)) = (i, &self.owner) {
                let owner: Option<UserId> = owner.as_deref().map(|o| Id::from_uuid(o.parse().unwrap()));
                if !grant.covers(principal, owner) {
                    // Records outside a read scope do not exist for the caller; writes are refused.
                    return if *action == Action::Read {
                        StatusCode::NOT_FOUND
                    } else {
                        StatusCode::FORBIDDEN
                    };
                }
            }
        }
        if self.people_only && !matches!(principal, Principal::User { .. }) {
            return StatusCode::FORBIDDEN;
        }
        if self.owner_only && principal.role() != Some(Role::Owner) {
            return StatusCode::FORBIDDEN;
        }
        self.success
    }
}

fn resource_of(path_segment: &str) -> Resource {
    match path_segment {
        "leads" => Resource::Lead,
        "contacts" => Resource::Contact,
        "accounts" => Resource::Account,
        "deals" => Resource::Deal,
        "activities" => Resource::Activity,
        other => panic!("{other}"),
    }
}

fn uuid(s: &str) -> uuid::Uuid {
    s.parse().unwrap()
}

/// The tenant: its owner, a bystander who owns the "other" records, and shared fixtures.
struct World {
    tenant: Tenant,
    bystander: (String, Caller),
    /// A record of each kind owned by the bystander, for reads.
    shared: Vec<(&'static str, String)>,
    lead: String,
    pipeline: String,
    counter: std::cell::Cell<u32>,
}

impl World {
    fn unique(&self, what: &str) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("{what}{}", self.counter.get())
    }

    fn owner(&self) -> &Caller {
        &self.tenant.owner
    }

    /// A record of `resource` owned by `owner` (a user id), or created by `creator`.
    async fn record(
        &self,
        resource: &str,
        creator: &Caller,
        owner: Option<&str>,
    ) -> (String, Option<String>) {
        let mut body = new_record(resource, &self.lead);
        if let (Some(o), true) = (owner, resource != "activities") {
            body["owner_id"] = json!(o);
        }
        let created = creator.create(&format!("/api/{resource}"), &body).await;
        (created["id"].as_str().unwrap().to_owned(), created["owner_id"].as_str().map(str::to_owned))
    }

    /// A member added without a password (cannot log in; a target, not a caller).
    async fn disposable_member(&self) -> String {
        let name = self.unique("temp");
        let body = json!({"email": format!("{name}@acme.example"), "name": name, "role": "viewer"});
        self.owner().create("/api/users", &body).await["user"]["id"].as_str().unwrap().to_owned()
    }
}

async fn world(app: &axum::Router) -> World {
    let tenant = Tenant::register(app, "acme").await;
    let bystander = tenant.member("bystander", "manager").await;
    let mut w = World {
        tenant,
        bystander,
        shared: Vec::new(),
        lead: String::new(),
        pipeline: String::new(),
        counter: Default::default(),
    };
    w.lead = w.record("leads", &w.bystander.1, None).await.0;
    for resource in RECORDS {
        let id = w.record(resource, &w.bystander.1, None).await.0;
        w.shared.push((resource, id));
    }
    let stages = json!([{"key": "open", "name": "Open", "kind": "open"}, {"key": "won", "name": "Won", "kind": "won"}]);
    let pipeline = w.owner().create("/api/pipelines", &json!({"name": "Renewals", "stages": stages})).await;
    w.pipeline = pipeline["id"].as_str().unwrap().to_owned();
    w
}

/// The principals asked for: users of `users` roles (the owner is the tenant's), and API keys of
/// `keys` roles.
async fn principals(w: &World, users: &[Role], keys: &[Role]) -> Vec<Who> {
    let owner_id = w.tenant.owner_id();
    let mut out = Vec::new();
    for &role in users {
        let (id, caller) = match role {
            Role::Owner => (owner_id.clone(), w.owner().clone()),
            _ => w.tenant.member(role.as_str(), role.as_str()).await,
        };
        out.push(Who {
            label: role.as_str().into(),
            principal: Principal::User { user_id: Id::from_uuid(uuid(&id)), role },
            caller,
            acting_user: id,
        });
    }
    for &role in keys {
        let (id, caller) = w.tenant.api_key(role.as_str()).await;
        let key_id: ApiKeyId = Id::from_uuid(uuid(&id));
        out.push(Who {
            label: format!("{} key", role.as_str()),
            principal: Principal::ApiKey { key_id, role, created_by: Id::from_uuid(uuid(&owner_id)) },
            caller,
            acting_user: owner_id.clone(),
        });
    }
    out
}

/// Every endpoint once (record writes twice: on the caller's own record and on someone else's),
/// with fresh targets for writes.
async fn cases(w: &World, who: &Who) -> Vec<Case> {
    use Action::*;
    let mut out = vec![Case::read("/api/auth/me".into(), vec![])];
    let bystander = Some(w.bystander.0.clone());
    for (resource, id) in &w.shared {
        let r = resource_of(resource);
        out.push(Case::read(format!("/api/{resource}"), vec![(Read, r)]));
        out.push(Case::read(format!("/api/{resource}/{id}"), vec![(Read, r)]).owned_by(bystander.clone()));
        if *resource != "activities" {
            let timeline = Case::read(
                format!("/api/{resource}/{id}/timeline"),
                vec![(Read, r), (Read, Resource::Activity)],
            );
            out.push(timeline.owned_by(bystander.clone()));
        }
    }
    out.push(Case::read("/api/leads/export".into(), vec![(Read, Resource::Lead)]));
    out.push(Case::read("/api/audit-logs".into(), vec![(Read, Resource::AuditLog)]));
    out.push(Case::read("/api/users".into(), vec![(Read, Resource::Member)]));
    out.push(Case::read(format!("/api/users/{}", w.bystander.0), vec![(Read, Resource::Member)]));
    out.push(Case::read("/api/api-keys".into(), vec![(Read, Resource::ApiKey)]));
    out.push(Case::read("/api/pipelines".into(), vec![(Read, Resource::Pipeline)]));
    out.push(Case::read(format!("/api/pipelines/{}", w.pipeline), vec![(Read, Resource::Pipeline)]));

    // Record writes. "Own" records are owned by the user the principal acts for; an activity's
    // owner is whoever logs it, so the principal logs its own when it may.
    let may_log = DefaultPolicy.authorize(&who.principal, Create, Resource::Activity).is_some();
    for resource in RECORDS {
        let r = resource_of(resource);
        let path = format!("/api/{resource}");
        out.push(Case::write("POST", path.clone(), Some(new_record(resource, &w.lead)), (Create, r)));
        for (method, action) in [("PATCH", Update), ("DELETE", Delete)] {
            let own_creator = if resource == "activities" && may_log { &who.caller } else { w.owner() };
            let own = w.record(resource, own_creator, Some(&who.acting_user)).await;
            let other = w.record(resource, &w.bystander.1, None).await;
            for (whose, (id, owner)) in [("own", own), ("other's", other)] {
                let body = (method == "PATCH").then(|| patch_record(resource, "changed"));
                let case = Case::write(method, format!("{path}/{id}"), body, (action, r))
                    .named(whose)
                    .owned_by(owner)
                    .watching(format!("{path}/{id}"), None);
                out.push(case);
            }
        }
    }
    for (whose, creator, owner) in
        [("own", w.owner(), Some(who.acting_user.as_str())), ("other's", &w.bystander.1, None)]
    {
        let (lead, owner) = w.record("leads", creator, owner).await;
        let body = json!({"account": {"name": "Converted"}, "deal": {"name": "Converted deal"}});
        let mut case =
            Case::write("POST", format!("/api/leads/{lead}/convert"), Some(body), (Update, Resource::Lead))
                .named(whose)
                .owned_by(owner)
                .watching(format!("/api/leads/{lead}"), None);
        case.needs.extend([
            (Create, Resource::Contact),
            (Create, Resource::Account),
            (Create, Resource::Deal),
        ]);
        case.success = StatusCode::OK;
        out.push(case);
    }
    let mut import = Case::write(
        "POST",
        "/api/leads/import".into(),
        Some(json!([{"company": "Imported"}])),
        (Create, Resource::Lead),
    );
    import.success = StatusCode::OK;
    out.push(import);

    // Members.
    for role in ["viewer", "owner"] {
        let name = w.unique("new");
        let body = json!({"email": format!("{name}@acme.example"), "name": name, "role": role});
        let mut case =
            Case::write("POST", "/api/users".into(), Some(body), (Create, Resource::Member)).named(role);
        case.owner_only = role == "owner";
        out.push(case);
    }
    for role in ["member", "owner"] {
        let id = w.disposable_member().await;
        let path = format!("/api/users/{id}");
        let mut case =
            Case::write("PATCH", path.clone(), Some(json!({"role": role})), (Update, Resource::Member))
                .named(role)
                .watching(path, None);
        case.owner_only = role == "owner";
        out.push(case);
    }
    let id = w.disposable_member().await;
    let path = format!("/api/users/{id}");
    out.push(Case::write("DELETE", path.clone(), None, (Delete, Resource::Member)).watching(path, None));

    // API keys.
    let mut create_key = Case::write(
        "POST",
        "/api/api-keys".into(),
        Some(json!({"name": "new key", "role": "viewer"})),
        (Create, Resource::ApiKey),
    );
    create_key.people_only = true;
    out.push(create_key);
    let (key, _) = w.tenant.api_key("viewer").await;
    out.push(
        Case::write("DELETE", format!("/api/api-keys/{key}"), None, (Delete, Resource::ApiKey))
            .watching("/api/api-keys".into(), Some(key)),
    );

    // Pipelines.
    let stages = json!([{"key": "open", "name": "Open", "kind": "open"}, {"key": "won", "name": "Won", "kind": "won"}]);
    out.push(Case::write(
        "POST",
        "/api/pipelines".into(),
        Some(json!({"name": "New", "stages": stages})),
        (Create, Resource::Pipeline),
    ));
    let path = format!("/api/pipelines/{}", w.pipeline);
    out.push(
        Case::write(
            "PATCH",
            path.clone(),
            Some(json!({"name": w.unique("Renamed ")})),
            (Update, Resource::Pipeline),
        )
        .watching(path, None),
    );
    out
}

/// The watched value: the whole body, or one item of its `data`.
async fn watched(owner: &Caller, (path, item): &Watch) -> Value {
    let reply = owner.get(path).await;
    match item {
        None => json!({"status": reply.status.as_u16(), "body": reply.body}),
        Some(id) => reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null),
    }
}

/// The permissions `/api/auth/me` reports, as the default policy computes them.
fn policy_permissions(principal: &Principal) -> Vec<Value> {
    use Resource::*;
    let mut out = Vec::new();
    for resource in [Lead, Contact, Account, Deal, Activity, Pipeline, Member, AuditLog, ApiKey] {
        for action in [Action::Read, Action::Create, Action::Update, Action::Delete] {
            if let Some(grant) = DefaultPolicy.authorize(principal, action, resource) {
                let scope = if grant.record_scope == crm_core::RecordScope::All { "all" } else { "own" };
                out.push(json!({
                    "resource": resource.as_str(),
                    "action": action.as_str(),
                    "scope": scope,
                }));
            }
        }
    }
    out
}

/// Runs the whole matrix for some principals (split across tests so they run in parallel).
async fn matrix(users: &[Role], keys: &[Role]) {
    for (store, app) in apps_with(roomy()).await {
        let w = world(&app).await;
        let mut tally = std::collections::BTreeMap::<u16, usize>::new();
        for who in &principals(&w, users, keys).await {
            let me = who.caller.get("/api/auth/me").await;
            let permissions = json!(policy_permissions(&who.principal));
            assert_eq!(me.body["permissions"], permissions, "{store}: {}", who.label);
            for case in cases(&w, who).await {
                let expected = case.expected(&who.principal);
                let what = format!("{store}: {} → {}", who.label, case.name);
                let before = match &case.watch {
                    Some(watch) if case.write => Some(watched(w.owner(), watch).await),
                    _ => None,
                };
                let head = if case.write { w.owner().audit_head().await } else { None };
                let reply = who.caller.call(case.method, &case.path, case.body.as_ref()).await;
                assert_eq!(reply.status, expected, "{what}: {}", reply.body);
                *tally.entry(expected.as_u16()).or_default() += 1;
                if !case.write {
                    continue;
                }
                let head_after = w.owner().audit_head().await;
                if expected.is_success() {
                    assert_ne!(head_after, head, "{what}: an allowed write is audited");
                } else {
                    assert_eq!(head_after, head, "{what}: a denied write writes nothing");
                    if let (Some(watch), Some(before)) = (&case.watch, before) {
                        assert_eq!(watched(w.owner(), watch).await, before, "{what}: target changed");
                    }
                }
            }
        }
        // Not one-sided: every group meets refusals and successes.
        assert!(tally.get(&403).is_some_and(|n| *n > 0) && tally[&200] > 0, "{store}: {tally:?}");
    }
}

#[tokio::test]
async fn owners_and_admins_get_what_the_default_policy_says() {
    matrix(&[Role::Owner, Role::Admin], &[]).await;
}

#[tokio::test]
async fn managers_members_and_viewers_get_what_the_default_policy_says() {
    matrix(&[Role::Manager, Role::Member, Role::Viewer], &[]).await;
}

#[tokio::test]
async fn api_keys_of_every_role_get_what_the_default_policy_says() {
    matrix(&[], &[Role::Admin, Role::Manager, Role::Member, Role::Viewer]).await;
}

#[tokio::test]
async fn members_change_only_their_own_records_and_keys_act_for_their_creator() {
    for (store, app) in apps_with(roomy()).await {
        let w = world(&app).await;
        let (member_id, member) = w.tenant.member("mo", "member").await;
        // A member creates a lead: it is theirs, and they may change it.
        let mine = member.create("/api/leads", &json!({"company": "Mine"})).await;
        assert_eq!(mine["owner_id"], member_id.as_str(), "{store}");
        let id = mine["id"].as_str().unwrap();
        assert_eq!(
            member.patch(&format!("/api/leads/{id}"), &json!({"title": "CEO"})).await.status,
            StatusCode::OK
        );
        // Handing it to someone else is allowed once; after that it is no longer theirs.
        let handed = member.patch(&format!("/api/leads/{id}"), &json!({"owner_id": w.bystander.0})).await;
        assert_eq!(handed.status, StatusCode::OK, "{store}: {}", handed.body);
        let again = member.patch(&format!("/api/leads/{id}"), &json!({"title": "CTO"})).await;
        assert_problem(&again, StatusCode::FORBIDDEN);
        // A member cannot create a record owned by someone else and then still edit it either.
        let theirs =
            member.create("/api/leads", &json!({"company": "For Bo", "owner_id": w.bystander.0})).await;
        let path = format!("/api/leads/{}", theirs["id"].as_str().unwrap());
        assert_problem(&member.delete(&path).await, StatusCode::FORBIDDEN);
        assert_eq!(w.owner().get(&path).await.status, StatusCode::OK, "{store}: still there");

        // A member-role key acts for the owner who made it: the owner's records are its own.
        let (_, key) = w.tenant.api_key("member").await;
        let owners = w.owner().create("/api/leads", &json!({"company": "Owner's"})).await;
        let path = format!("/api/leads/{}", owners["id"].as_str().unwrap());
        assert_eq!(key.patch(&path, &json!({"title": "By key"})).await.status, StatusCode::OK, "{store}");
        let by_key = key.create("/api/leads", &json!({"company": "Keyed"})).await;
        assert_eq!(by_key["owner_id"].as_str(), Some(w.tenant.owner_id().as_str()), "{store}");
        let bystanders = format!("/api/leads/{}", w.shared[0].1);
        assert_problem(&key.patch(&bystanders, &json!({"title": "x"})).await, StatusCode::FORBIDDEN);
        // Keys never mint keys, whatever their role.
        let (_, admin_key) = w.tenant.api_key("admin").await;
        let minted = admin_key.post("/api/api-keys", &json!({"name": "child", "role": "viewer"})).await;
        assert_problem(&minted, StatusCode::FORBIDDEN);
        // No key may hold the owner role.
        let owner_key = w.owner().post("/api/api-keys", &json!({"name": "root", "role": "owner"})).await;
        assert_invalid(&owner_key, "role");
    }
}
