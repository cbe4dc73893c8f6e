//! Conformance cases for webhook endpoints ([`crate::model::Webhook`]): a record kind the
//! tenant's admins keep, whose signing secret is shown once and never leaves the store in a
//! record's JSON form — no response, audit entry or event carries it.

use super::{assert_invalid, tenant};
use crate::audit::AuditQuery;
use crate::error::Error;
use crate::model::{NewMember, NewWebhook, Webhook, WebhookPatch};
use crate::scope::Role;
use crate::service::{Crm, ListRequest, PREVIOUS_SECRET_VALIDITY};
use crate::webhook::WebhookSecret;

fn endpoint(url: &str, event_types: &[&str]) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        description: Some("Deals to the warehouse".into()),
        enabled: None,
    }
}

/// An admin creates an endpoint and sees its secret once; reads give the same endpoint without
/// it; no audit entry or event of its whole life holds a secret. A rotation gives a new secret
/// and keeps the old one signing for a day. Bad input names its fields.
pub async fn webhook_secrets_are_shown_once_and_rotate(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let owner = acme.owner_scope;
    let created =
        crm.create_webhook(&owner, endpoint("https://hooks.example/crm", &["deal.*"])).await.unwrap();
    assert!(created.secret.starts_with("whsec_"), "shown as whsec_…");
    assert_eq!(WebhookSecret::parse(&created.secret).unwrap(), created.webhook.secret);
    assert_eq!(created.webhook.created_by, Some(acme.owner.id), "deliveries act as the creator");
    assert!(created.webhook.enabled, "enabled unless asked otherwise");
    assert!(created.webhook.wants("deal.stage_changed") && !created.webhook.wants("lead.created"));
    let json = serde_json::to_value(&created).unwrap();
    assert_eq!(json["secret"], created.secret.as_str(), "the creation answer carries it");

    let id = created.webhook.meta.id;
    let fetched = crm.get::<Webhook>(&owner, id).await.unwrap();
    assert_eq!(fetched, created.webhook);
    let fetched_json = serde_json::to_value(&fetched).unwrap();
    assert!(fetched_json.get("secret").is_none() && fetched_json.get("previous_secret").is_none());
    assert_eq!(fetched_json["event_types"], serde_json::json!(["deal.*"]));

    let rotated = crm.rotate_webhook_secret(&owner, id, Some(1)).await.unwrap();
    assert_ne!(rotated.secret, created.secret);
    assert_eq!(rotated.webhook.meta.version, 2);
    let stored = crm.get::<Webhook>(&owner, id).await.unwrap();
    assert_eq!(stored.secret.reveal(), rotated.secret);
    let until = stored.previous_secret_expires_at.expect("the old secret's deadline");
    let now = stored.meta.updated_at;
    assert_eq!(until - now, chrono::Duration::from_std(PREVIOUS_SECRET_VALIDITY).unwrap());
    let signing: Vec<String> = stored.signing_secrets(now).iter().map(|s| s.reveal()).collect();
    assert_eq!(signing, [rotated.secret.clone(), created.secret.clone()], "both sign for a day");
    assert_eq!(stored.signing_secrets(until).len(), 1, "then the new one alone");
    assert_err!(crm.rotate_webhook_secret(&owner, id, Some(1)).await, Error::Conflict(_));

    let disable = WebhookPatch { enabled: Some(false), ..WebhookPatch::default() };
    let disabled = crm.update::<Webhook>(&owner, id, Some(2), disable).await.unwrap();
    assert!(!disabled.enabled && !disabled.wants("deal.created"));
    assert_eq!(disabled.secret, stored.secret, "an update keeps the secret");
    crm.delete::<Webhook>(&owner, id, None).await.unwrap();
    assert_err!(crm.get::<Webhook>(&owner, id).await, Error::NotFound);

    let store = crm.store();
    let audit = store.audit_log(&owner, &AuditQuery::default(), None, 1000).await.unwrap();
    let events = store.outbox(&owner, None, 1000).await.unwrap();
    let trail = format!("{audit:?} {events:?} {}", serde_json::to_string(&events).unwrap());
    assert!(events.iter().any(|e| e.name == "webhook.created"), "its life is in the outbox");
    for secret in [&created.secret, &rotated.secret] {
        let key = secret.trim_start_matches("whsec_");
        assert!(!trail.contains(key), "a secret reached the audit trail or the outbox");
    }

    let ftp = crm.create_webhook(&owner, endpoint("ftp://hooks.example", &["*"])).await;
    assert_invalid(ftp, &["url"]);
    let credentials = crm.create_webhook(&owner, endpoint("https://u:p@hooks.example", &["*"])).await;
    assert_invalid(credentials, &["url"]);
    assert_invalid(crm.create_webhook(&owner, endpoint("hooks.example", &[])).await, &["url", "event_types"]);
    let bad_types = endpoint("https://hooks.example", &["deal.*", "Deal", "deal.", "*.created"]);
    let errors = crm.create_webhook(&owner, bad_types).await;
    assert_invalid(errors, &["event_types[1]", "event_types[2]", "event_types[3]"]);
}

/// Endpoints are the tenant admins': other roles may not create, read or list them, and
/// another tenant's endpoint is not found.
pub async fn webhooks_are_the_tenant_admins(crm: Crm) {
    let owner = tenant(&crm, "Acme").await.owner_scope;
    let other = tenant(&crm, "Globex").await.owner_scope;
    let created = crm.create_webhook(&owner, endpoint("https://hooks.example/a", &["*"])).await.unwrap();
    let id = created.webhook.meta.id;
    for role in [Role::Manager, Role::Member, Role::Viewer] {
        let email = format!("{}@acme.example", role.as_str());
        let new = NewMember { email, name: "M".into(), role, password: None };
        let member = crm.add_member(&owner, new).await.unwrap();
        let scope = crm.scope_for(owner.tenant_id(), member.user.id).await.unwrap();
        let new = endpoint("https://hooks.example/b", &["*"]);
        assert_err!(crm.create_webhook(&scope, new).await, Error::Forbidden);
        assert_err!(crm.get::<Webhook>(&scope, id).await, Error::Forbidden);
        assert_err!(crm.list::<Webhook>(&scope, ListRequest::new()).await, Error::Forbidden);
        assert_err!(crm.rotate_webhook_secret(&scope, id, None).await, Error::Forbidden);
    }
    assert_err!(crm.get::<Webhook>(&other, id).await, Error::NotFound);
    assert_err!(crm.rotate_webhook_secret(&other, id, None).await, Error::NotFound);
    let patch = WebhookPatch { enabled: Some(false), ..WebhookPatch::default() };
    assert_err!(crm.update::<Webhook>(&other, id, None, patch).await, Error::NotFound);
    assert!(crm.list::<Webhook>(&other, ListRequest::new()).await.unwrap().data.is_empty());
    let mine = crm.list::<Webhook>(&owner, ListRequest::new()).await.unwrap().data;
    assert_eq!(mine.iter().map(|w| w.meta.id).collect::<Vec<_>>(), [id]);
}
