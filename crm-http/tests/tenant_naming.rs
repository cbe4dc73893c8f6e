//! How a request names its tenant besides its credential: ids compare as UUIDs (any letter
//! case), slugs without regard to case, and a store that cannot answer while the name is being
//! resolved is a 503 — never a 403 for a "foreign" tenant or a 401 for a "wrong password".

mod common;

use axum::http::StatusCode;
use common::{
    PASSWORD, Tenant, apps_with, assert_problem, cheap_identity, json_request, roomy, send, send_in_outage,
};
use crm_core::Crm;
use crm_core::testkit::outage::Outage;
use crm_http::{ApiState, router};
use crm_storage_sqlite::SqliteStore;
use serde_json::json;

fn login(tenant: &str) -> axum::http::Request<axum::body::Body> {
    let body = json!({"email": "owner@acme.example", "password": PASSWORD, "tenant": tenant});
    json_request("POST", "/api/auth/login", None, &body)
}

#[tokio::test]
async fn tenant_ids_compare_as_uuids() {
    for (store, app) in apps_with(roomy()).await {
        let acme = Tenant::register(&app, "acme").await;
        let id = acme.session["tenant"]["id"].as_str().unwrap().to_owned();
        for named in [id.clone(), id.to_uppercase(), format!(" {} ", id.to_uppercase()), "ACME".into()] {
            let mut request = acme.owner.request("GET", "/api/leads", None);
            request.headers_mut().insert("x-tenant", named.parse().unwrap());
            let reply = acme.owner.send(request).await;
            assert_eq!(reply.status, StatusCode::OK, "{store}: X-Tenant {named:?}: {}", reply.body);
            let reply = send(&app, login(named.trim())).await;
            assert_eq!(reply.status, StatusCode::OK, "{store}: login to {named:?}: {}", reply.body);
        }
        // The id in X-Tenant and the slug in the body name one tenant; two tenants do not.
        let mut request = json_request(
            "POST",
            "/api/auth/login",
            None,
            &json!({"email": "owner@acme.example", "password": PASSWORD, "tenant": "acme"}),
        );
        request.headers_mut().insert("x-tenant", id.to_uppercase().parse().unwrap());
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::OK, "{store}: id and slug of one tenant: {}", reply.body);
        Tenant::register(&app, "globex").await;
        let mut request = json_request(
            "POST",
            "/api/auth/login",
            None,
            &json!({"email": "owner@acme.example", "password": PASSWORD, "tenant": "globex"}),
        );
        request.headers_mut().insert("x-tenant", id.parse().unwrap());
        assert_problem(&send(&app, request).await, StatusCode::FORBIDDEN);
        let other = uuid::Uuid::from_u128(0xdead_beef).to_string().to_uppercase();
        let mut request = acme.owner.request("GET", "/api/leads", None);
        request.headers_mut().insert("x-tenant", other.parse().unwrap());
        assert_problem(&acme.owner.send(request).await, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_store_outage_while_resolving_the_tenant_is_503() {
    let (store, switch) = Outage::new(SqliteStore::open_in_memory().await.unwrap());
    let crm = Crm::builder(store).identity(cheap_identity()).build();
    let app = router(ApiState::new(crm).with_config(roomy()));
    let acme = Tenant::register(&app, "acme").await;
    switch.down();
    // A bearer token needs no store; checking the slug it is sent with does.
    let mut request = acme.owner.request("GET", "/api/auth/me", None);
    request.headers_mut().insert("x-tenant", "acme".parse().unwrap());
    assert_problem(&send_in_outage(&app, request).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_problem(&send_in_outage(&app, login("acme")).await, StatusCode::SERVICE_UNAVAILABLE);
    switch.up();
    assert_eq!(send(&app, login("acme")).await.status, StatusCode::OK);
}
