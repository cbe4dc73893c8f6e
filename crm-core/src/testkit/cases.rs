//! The example-based half of the store conformance suite: one async function per behaviour.
//!
//! Each case receives a [`Crm`] over a fresh, empty store with a deterministic clock and ids (see
//! [`super::deterministic_crm`]), drives it through the public services only, and panics when the
//! outcome differs from the documented behaviour. The cases use distinct tenant names, so a store
//! that leaks between tenants shows up even though every case starts empty.
//!
//! Some cases also guard rules that crm-core enforces itself (lead status, custom-field text, the
//! last owner); they run here because they once failed, whatever the store.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use super::assert_invalid;
use super::tenant;
use crate::audit::{AuditAction, AuditEntry, AuditQuery};
use crate::clock::{SequentialIds, SteppingClock};
use crate::error::{Conflict, Error, Result};
use crate::event::DomainEvent;
use crate::hooks::{AuditSink, EventHook};
use crate::id::Id;
use crate::model::{
    Account, AccountPatch, Activity, ActivityKind, ActivityPatch, ActivityTarget, Contact, ContactPatch,
    CustomFields, Deal, DealPatch, Kind, Lead, LeadPatch, LeadStatus, Member, Money, NewAccount, NewActivity,
    NewContact, NewDeal, NewLead, NewMember, NewPipeline, NewStage, NewTenant, NewUser, PipelinePatch,
    Record, StageChange, StageKind,
};
use crate::scope::{Actor, Principal, Role, Scope, TenantId, UserId};
use crate::service::{ConvertLead, Crm, ListRequest, TimelineItem};
use crate::store::{ChangeSet, Entity, Filter, ListQuery, RecordStore, Store};

// ---------------------------------------------------------------------------------------------
// Helpers

/// An id that no store holds: the cases' CRM only makes ids of another shape.
fn unknown<T>(n: u16) -> Id<T> {
    Id::from_uuid(Uuid::from_u128(0x0f0f_0f0f_0f0f_4f0f_8f0f_0f0f_0f0f_0000 | u128::from(n)))
}

/// A custom-fields object from JSON.
fn fields(value: Value) -> CustomFields {
    match value {
        Value::Object(map) => map,
        other => panic!("custom fields must be an object, not {other}"),
    }
}

/// A UTC time.
fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("a valid time")
}

/// A lead with just a last name.
fn named(last_name: &str) -> NewLead {
    NewLead { last_name: Some(last_name.into()), ..NewLead::default() }
}

/// A deal with just a name.
fn deal(name: &str) -> NewDeal {
    NewDeal { name: name.into(), ..NewDeal::default() }
}

/// An account with just a name.
fn account(name: &str) -> NewAccount {
    NewAccount { name: name.into(), ..NewAccount::default() }
}

/// A contact with a first and last name.
fn person(first: &str, last: &str) -> NewContact {
    NewContact { first_name: Some(first.into()), last_name: Some(last.into()), ..NewContact::default() }
}

/// A note with a subject on a record.
fn note(target: ActivityTarget, subject: &str) -> NewActivity {
    let mut new = NewActivity::on(target, ActivityKind::Note);
    new.subject = Some(subject.into());
    new
}

/// Money in a currency.
fn money(amount_minor: i64, currency: &str) -> Money {
    Money { amount_minor, currency: currency.into() }
}

/// The ids of records, in order.
fn ids<R: Record>(records: &[R]) -> Vec<Uuid> {
    records.iter().map(|r| r.meta().id.uuid()).collect()
}

/// Ids, newest first: the order every list promises.
fn newest_first(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// Every record the request matches, following cursors to the end.
async fn list_all<R: Record>(crm: &Crm, scope: &Scope, mut request: ListRequest) -> Vec<R> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = crm.list::<R>(scope, request.clone()).await.expect("list");
        out.extend(page.data);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return out,
        }
    }
    panic!("pagination did not end after 1000 pages");
}

/// The ids of every record matching the filter, newest first as listed.
async fn listed<R: Record>(crm: &Crm, scope: &Scope, filter: Filter) -> Vec<Uuid> {
    ids(&list_all::<R>(crm, scope, ListRequest::new().limit(7).filter(filter)).await)
}

/// The ids of every record matching a text search, as listed.
async fn search<R: Record>(crm: &Crm, scope: &Scope, q: &str) -> Vec<Uuid> {
    ids(&list_all::<R>(crm, scope, ListRequest::new().q(q)).await)
}

/// Every audit entry matching the query, newest first, following cursors.
async fn audit_all(crm: &Crm, scope: &Scope, query: AuditQuery) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page =
            crm.audit_log(scope, query.clone(), cursor.as_deref(), Some(200)).await.expect("audit log");
        out.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("audit log pagination did not end after 1000 pages");
}

/// A record's audit entries, newest first.
async fn audit_of(crm: &Crm, scope: &Scope, id: Uuid) -> Vec<AuditEntry> {
    audit_all(crm, scope, AuditQuery { resource_id: Some(id), ..AuditQuery::default() }).await
}

/// How many audit entries the tenant has.
async fn audit_count(crm: &Crm, scope: &Scope) -> usize {
    audit_all(crm, scope, AuditQuery::default()).await.len()
}

/// The actions of audit entries, in order.
fn actions(entries: &[AuditEntry]) -> Vec<AuditAction> {
    entries.iter().map(|e| e.action).collect()
}

/// Every item of a record's timeline with pages of `limit`, and the number of pages.
async fn timeline_all(
    crm: &Crm,
    scope: &Scope,
    target: ActivityTarget,
    limit: u32,
) -> (Vec<TimelineItem>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..1000 {
        let page = crm.timeline(scope, target, cursor.as_deref(), Some(limit)).await.expect("timeline");
        assert!(page.data.len() <= limit as usize, "a timeline page is longer than its limit");
        out.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (out, pages),
        }
    }
    panic!("timeline pagination did not end after 1000 pages");
}

/// Adds a member with a role and returns it with a scope for it, as a host would get one.
async fn join(crm: &Crm, admin: &Scope, email: &str, role: Role) -> (Member, Scope) {
    let new =
        NewMember { email: email.into(), name: format!("{} {email}", role.as_str()), role, password: None };
    let member = crm.add_member(admin, new).await.expect("add member");
    let scope = crm.scope_for(admin.tenant_id(), member.user.id).await.expect("scope for a new member");
    (member, scope)
}

/// The role a scope acts with.
fn role_of(scope: &Scope) -> Option<Role> {
    scope.principal().role()
}

/// A member's current membership version (for role changes).
async fn member_version(crm: &Crm, scope: &Scope, user_id: UserId) -> i64 {
    let members = crm.members(scope).await.expect("members");
    members.iter().find(|m| m.user.id == user_id).map(|m| m.version).expect("a member")
}

/// The tenant's owners.
async fn owners(crm: &Crm, scope: &Scope) -> Vec<UserId> {
    let members = crm.members(scope).await.expect("members");
    members.iter().filter(|m| m.role == Role::Owner).map(|m| m.user.id).collect()
}

/// Checks that `id` behaves like a missing id in `scope` for get, update and delete.
async fn assert_unreachable<R: Record>(crm: &Crm, scope: &Scope, id: Id<R>)
where
    R::Patch: Default,
{
    let kind = R::DEF.name;
    let missing = crm.get(scope, unknown::<R>(999)).await.expect_err("a random id is not found");
    let got = crm.get(scope, id).await;
    assert_err!(&got, Error::NotFound);
    let err = got.expect_err("checked above");
    assert_eq!(
        err.to_string(),
        missing.to_string(),
        "{kind}: another tenant's id must read like a missing one"
    );
    assert_err!(crm.update(scope, id, Some(1), R::Patch::default()).await, Error::NotFound);
    assert_err!(crm.delete(scope, id, Some(1)).await, Error::NotFound);
    assert_err!(crm.delete(scope, id, None).await, Error::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Tenants and scopes

/// A new tenant has its owner as sole member and a default "Sales" pipeline, and resolves by id and slug.
pub async fn tenant_creation_makes_owner_and_default_pipeline(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let scope = &acme.owner_scope;
    assert_eq!(acme.tenant.slug, "acme");
    assert_eq!(acme.tenant.name, "Acme Inc");
    assert_eq!(acme.owner.email, "owner@acme.example");
    assert_eq!(acme.owner.name, "Acme Owner");
    assert_eq!(scope.tenant_id(), acme.tenant.id);
    assert_eq!(*scope.principal(), Principal::User { user_id: acme.owner.id, role: Role::Owner });

    let members = crm.members(scope).await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].user, acme.owner);
    assert_eq!(members[0].role, Role::Owner);
    assert_eq!(members[0].version, 1);

    let pipelines = crm.pipelines(scope).await.unwrap();
    assert_eq!(pipelines.len(), 1, "{pipelines:?}");
    let sales = &pipelines[0];
    assert_eq!(sales.name, "Sales");
    assert!(sales.is_default);
    assert_eq!(sales.meta.tenant_id, acme.tenant.id);
    let stages: Vec<(&str, StageKind)> = sales.stages.iter().map(|s| (s.key.as_str(), s.kind)).collect();
    assert_eq!(
        stages,
        [
            ("prospecting", StageKind::Open),
            ("qualification", StageKind::Open),
            ("proposal", StageKind::Open),
            ("negotiation", StageKind::Open),
            ("won", StageKind::Won),
            ("lost", StageKind::Lost),
        ]
    );
    assert_eq!(crm.pipeline(scope, sales.meta.id).await.unwrap(), *sales);

    assert_eq!(crm.tenant(acme.tenant.id).await.unwrap(), acme.tenant);
    assert_eq!(crm.tenant_by_slug("acme").await.unwrap(), acme.tenant);
    assert_err!(crm.tenant(unknown(1)).await, Error::NotFound);
    assert_err!(crm.tenant_by_slug("acme-two").await, Error::NotFound);
    assert_err!(crm.tenant_by_slug("ACME").await, Error::NotFound);
    assert_eq!(crm.scope_for(acme.tenant.id, acme.owner.id).await.unwrap(), *scope);

    // The owner's scope works for records.
    let lead = crm.create::<Lead>(scope, named("First")).await.unwrap();
    assert_eq!(lead.owner_id, Some(acme.owner.id));
    assert_eq!(lead.meta.tenant_id, acme.tenant.id);
    assert_eq!(crm.get(scope, lead.meta.id).await.unwrap(), lead);

    // Tenant creation is audited like any write.
    let audited: BTreeSet<Kind> =
        audit_all(&crm, scope, AuditQuery::default()).await.iter().map(|e| e.resource).collect();
    assert_eq!(audited, BTreeSet::from([Kind::Tenant, Kind::Member, Kind::Pipeline, Kind::Lead]));

    // A known e-mail address, in any case, makes the existing user the next tenant's owner.
    let beta = crm
        .create_tenant(NewTenant {
            name: "Beta Ltd".into(),
            slug: "beta".into(),
            owner: NewUser { email: "Owner@ACME.example".into(), name: "Someone Else".into() },
        })
        .await
        .unwrap();
    assert_eq!(beta.owner, acme.owner, "the existing user, unchanged");
    assert_ne!(beta.tenant.id, acme.tenant.id);
    let beta_pipelines = crm.pipelines(&beta.owner_scope).await.unwrap();
    assert_eq!(beta_pipelines.len(), 1);
    assert!(beta_pipelines[0].is_default);
    assert_ne!(beta_pipelines[0].meta.id, sales.meta.id);
    assert_eq!(crm.pipelines(scope).await.unwrap().len(), 1, "Acme keeps its one pipeline");
    assert_eq!(crm.scope_for(beta.tenant.id, acme.owner.id).await.unwrap(), beta.owner_scope);
    assert!(list_all::<Lead>(&crm, &beta.owner_scope, ListRequest::new()).await.is_empty());
}

/// Constraints the store itself enforces (past any check in core, as in a race) come back by
/// meaning: a unique one as the field that is taken, a reference as a link that no longer
/// holds; the change set writes nothing.
pub async fn store_constraint_violations_say_what_conflicted(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let tenant_row = crm.store().tenant(s.tenant_id()).await.unwrap().expect("the tenant");
    let user_row = crm.store().user(acme.owner.id).await.unwrap().expect("the owner");
    let another_tenant = crate::model::Tenant {
        id: TenantId::from_uuid(uuid::Uuid::from_u128(0xac3e)),
        name: "Acme Again".into(),
        ..tenant_row
    };
    let another_user =
        crate::model::User { id: UserId::from_uuid(uuid::Uuid::from_u128(0xac3f)), ..user_row };
    let new_tenant_scope = Scope::system(another_tenant.id);
    let mut twin = lead.clone();
    twin.last_name = Some("Twin".into());
    let cases = [
        (&new_tenant_scope, Entity::Tenant(another_tenant), "slug"),
        (s, Entity::User(another_user), "email"),
        (s, crate::kind::Stored::to_entity(&twin), "id"),
    ];
    for (scope, entity, field) in cases {
        let changes = ChangeSet { writes: vec![crate::store::Write::Insert(entity)], ..ChangeSet::default() };
        let result = crm.store().commit(scope, changes).await;
        assert_err!(result, Error::Conflict(Conflict::Unique { field: ref taken }) if taken == field);
    }
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);

    let contact = crm.create::<Contact>(s, person("Ann", "Lee")).await.unwrap();
    let mut orphan = contact.clone();
    orphan.meta.id = Id::from_uuid(uuid::Uuid::from_u128(0xac40));
    orphan.account_id = Some(Id::from_uuid(uuid::Uuid::from_u128(0xac41)));
    let changes = ChangeSet {
        writes: vec![crate::store::Write::Insert(crate::kind::Stored::to_entity(&orphan))],
        ..ChangeSet::default()
    };
    assert_err!(crm.store().commit(s, changes).await, Error::Conflict(Conflict::Link));
    assert_err!(crm.get(s, orphan.meta.id).await, Error::NotFound);
}

/// Creating a tenant with a slug that is taken is a Conflict and writes nothing.
pub async fn duplicate_slug_is_conflict(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let audit_before = audit_count(&crm, &acme.owner_scope).await;
    let new = |email: &str| NewTenant {
        name: "Acme Again".into(),
        slug: "acme".into(),
        owner: NewUser { email: email.into(), name: "Founder".into() },
    };

    assert_err!(crm.create_tenant(new("founder@elsewhere.example")).await, Error::Conflict(Conflict::Unique { ref field }) if field == "slug");
    assert_err!(crm.create_tenant(new("owner@acme.example")).await, Error::Conflict(Conflict::Unique { ref field }) if field == "slug");

    assert_eq!(crm.tenant_by_slug("acme").await.unwrap(), acme.tenant);
    assert!(crm.store().user_by_email("founder@elsewhere.example").await.unwrap().is_none());
    assert_eq!(crm.members(&acme.owner_scope).await.unwrap().len(), 1);
    assert_eq!(crm.pipelines(&acme.owner_scope).await.unwrap().len(), 1);
    assert_eq!(audit_count(&crm, &acme.owner_scope).await, audit_before);

    // Another slug is fine.
    let other = crm
        .create_tenant(NewTenant { slug: "acme-2".into(), ..new("founder@elsewhere.example") })
        .await
        .unwrap();
    assert_eq!(crm.tenant_by_slug("acme-2").await.unwrap(), other.tenant);
    assert_ne!(other.tenant.id, acme.tenant.id);
}

/// Invalid tenant input is a Validation error naming `name`, `slug`, `owner.email`, `owner.name`.
pub async fn invalid_tenant_input_names_fields(crm: Crm) {
    let new = |name: &str, slug: &str, email: &str, owner: &str| NewTenant {
        name: name.into(),
        slug: slug.into(),
        owner: NewUser { email: email.into(), name: owner.into() },
    };
    assert_invalid(
        crm.create_tenant(new("  ", "Bad Slug!", "not-an-email", "Owner")).await,
        &["name", "slug", "owner.email"],
    );
    assert_invalid(crm.create_tenant(new("Acme", "acme", "owner@acme.example", " ")).await, &["owner.name"]);
    assert_invalid(crm.create_tenant(new("Acme", "acme", "owner@acme", "Owner")).await, &["owner.email"]);
    assert_invalid(crm.create_tenant(new("Ac\0me", "acme", "owner@acme.example", "O")).await, &["name"]);
    let long_name = "n".repeat(201);
    assert_invalid(crm.create_tenant(new(&long_name, "acme", "owner@acme.example", "O")).await, &["name"]);
    let long_slug = "a".repeat(64);
    for slug in ["ab", "-acme", "acme-", "Acme", "ac_me", "ac me", "", long_slug.as_str()] {
        assert_invalid(crm.create_tenant(new("Acme", slug, "owner@acme.example", "O")).await, &["slug"]);
    }

    // Nothing was created by any of that.
    assert_err!(crm.tenant_by_slug("acme").await, Error::NotFound);
    assert!(crm.store().user_by_email("owner@acme.example").await.unwrap().is_none());

    // The longest valid slug works.
    let longest = "a".repeat(63);
    let ok = crm.create_tenant(new("Acme", &longest, "owner@acme.example", "Owner")).await.unwrap();
    assert_eq!(crm.tenant_by_slug(&longest).await.unwrap(), ok.tenant);
}

/// `scope_for` gives members their role and refuses non-members and unknown tenants alike (Forbidden).
pub async fn scope_for_requires_membership(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;

    assert_err!(crm.scope_for(acme.tenant.id, globex.owner.id).await, Error::Forbidden);
    assert_err!(crm.scope_for(unknown(1), acme.owner.id).await, Error::Forbidden);
    assert_err!(crm.scope_for(acme.tenant.id, unknown(2)).await, Error::Forbidden);

    let owner = crm.scope_for(acme.tenant.id, acme.owner.id).await.unwrap();
    assert_eq!(role_of(&owner), Some(Role::Owner));
    for role in [Role::Admin, Role::Manager, Role::Member, Role::Viewer] {
        let email = format!("{}@acme.example", role.as_str());
        let (member, scope) = join(&crm, &acme.owner_scope, &email, role).await;
        assert_eq!(member.role, role);
        assert_eq!(scope.tenant_id(), acme.tenant.id);
        assert_eq!(scope.user_id(), Some(member.user.id));
        assert_eq!(*scope.principal(), Principal::User { user_id: member.user.id, role });
        assert_eq!(scope.actor(), Actor::User(member.user.id));
        assert_err!(crm.scope_for(globex.tenant.id, member.user.id).await, Error::Forbidden);
    }
    assert_err!(crm.scope_for(globex.tenant.id, acme.owner.id).await, Error::Forbidden);
}

// ---------------------------------------------------------------------------------------------
// Records

/// A lead round-trips through create, get, update (including clearing a field) and delete.
pub async fn lead_crud_round_trip(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let new = NewLead {
        first_name: Some("Jane".into()),
        last_name: Some("Doe".into()),
        email: Some("jane.doe@example.com".into()),
        phone: Some("+1 (555) 010-0000".into()),
        company: Some("Acme Corp".into()),
        title: Some("CTO".into()),
        source: Some("web".into()),
        status: Some(LeadStatus::Contacted),
        owner_id: Some(acme.owner.id),
        custom_fields: fields(json!({
            "tier": "gold", "seats": 25, "ratio": 0.5, "vip": true, "tags": ["a", "b"], "note": "two\nlines"
        })),
    };
    let lead = crm.create::<Lead>(s, new.clone()).await.unwrap();
    assert_eq!(lead.first_name, new.first_name);
    assert_eq!(lead.last_name, new.last_name);
    assert_eq!(lead.email, new.email);
    assert_eq!(lead.phone, new.phone);
    assert_eq!(lead.company, new.company);
    assert_eq!(lead.title, new.title);
    assert_eq!(lead.source, new.source);
    assert_eq!(lead.status, LeadStatus::Contacted);
    assert_eq!(lead.owner_id, Some(acme.owner.id));
    assert_eq!(lead.custom_fields, new.custom_fields);
    assert_eq!(lead.converted_contact_id, None);
    assert_eq!(lead.meta.version, 1);
    assert_eq!(lead.meta.tenant_id, acme.tenant.id);
    assert_eq!(lead.meta.created_at, lead.meta.updated_at);
    assert_eq!(lead.meta.deleted_at, None);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);

    let patch = LeadPatch {
        first_name: Some(Some("Janet".into())),
        phone: Some(None),
        status: Some(LeadStatus::Qualified),
        custom_fields: Some(fields(json!({"tier": "platinum"}))),
        ..LeadPatch::default()
    };
    let updated = crm.update(s, lead.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(updated.meta.id, lead.meta.id);
    assert_eq!(updated.first_name.as_deref(), Some("Janet"));
    assert_eq!(updated.phone, None, "Some(None) clears the field");
    assert_eq!(updated.status, LeadStatus::Qualified);
    assert_eq!(updated.custom_fields, fields(json!({"tier": "platinum"})), "custom fields are replaced");
    assert_eq!(updated.last_name, lead.last_name, "fields the patch leaves out are unchanged");
    assert_eq!(updated.email, lead.email);
    assert_eq!(updated.company, lead.company);
    assert_eq!(updated.owner_id, lead.owner_id);
    assert_eq!(updated.meta.version, 2);
    assert_eq!(updated.meta.created_at, lead.meta.created_at);
    assert!(updated.meta.updated_at > lead.meta.updated_at);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), updated);

    // The creator owns a lead that names no owner; the status defaults to `new`.
    let mine = crm
        .create::<Lead>(s, NewLead { company: Some("Solo Ltd".into()), ..NewLead::default() })
        .await
        .unwrap();
    assert_eq!(mine.owner_id, Some(acme.owner.id));
    assert_eq!(mine.status, LeadStatus::New);
    assert!(mine.custom_fields.is_empty());
    let unowned =
        crm.update(s, mine.meta.id, Some(1), LeadPatch { owner_id: Some(None), ..LeadPatch::default() });
    let unowned = unowned.await.unwrap();
    assert_eq!(unowned.owner_id, None);
    assert_eq!(crm.get(s, mine.meta.id).await.unwrap(), unowned);

    crm.delete(s, lead.meta.id, Some(2)).await.unwrap();
    assert_err!(crm.get(s, lead.meta.id).await, Error::NotFound);
    assert_eq!(crm.get(s, mine.meta.id).await.unwrap(), unowned, "deleting one lead leaves the others");
    crm.delete(s, mine.meta.id, None).await.unwrap();
    assert_err!(crm.get(s, mine.meta.id).await, Error::NotFound);
}

/// Invalid lead input is a Validation error naming each offending field, and writes nothing.
pub async fn lead_validation_names_fields(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let audit_before = audit_count(&crm, s).await;
    let doe = || named("Doe");
    let create = |new: NewLead| crm.create::<Lead>(s, new);

    assert_invalid(create(NewLead { email: Some("not-an-email".into()), ..doe() }).await, &["email"]);
    assert_invalid(create(NewLead { email: Some("jane@example".into()), ..doe() }).await, &["email"]);
    assert_invalid(create(NewLead { phone: Some("call me".into()), ..doe() }).await, &["phone"]);
    assert_invalid(create(NewLead { first_name: Some("x".repeat(201)), ..doe() }).await, &["first_name"]);
    assert_invalid(create(NewLead { company: Some("Acme\0Corp".into()), ..doe() }).await, &["company"]);
    assert_invalid(create(NewLead { title: Some("CTO\nCEO".into()), ..doe() }).await, &["title"]);
    assert_invalid(
        create(NewLead { first_name: Some("Jane".into()), ..NewLead::default() }).await,
        &["last_name"],
    );
    assert_invalid(
        create(NewLead {
            first_name: Some("Jane".into()),
            last_name: Some("  ".into()),
            company: Some(" ".into()),
            ..NewLead::default()
        })
        .await,
        &["last_name"],
    );
    assert_invalid(
        create(NewLead { email: Some("bad".into()), phone: Some("phone".into()), ..doe() }).await,
        &["email", "phone"],
    );
    assert_invalid(
        create(NewLead { custom_fields: fields(json!({"Bad Key": 1})), ..doe() }).await,
        &["custom_fields"],
    );
    assert_invalid(
        create(NewLead { custom_fields: fields(json!({"nested": {"a": 1}})), ..doe() }).await,
        &["custom_fields.nested"],
    );
    assert_invalid(
        create(NewLead { custom_fields: fields(json!({"note": "a\u{0}b"})), ..doe() }).await,
        &["custom_fields.note"],
    );
    let too_many: CustomFields = (0..65).map(|i| (format!("f{i}"), json!(i))).collect();
    assert_invalid(create(NewLead { custom_fields: too_many, ..doe() }).await, &["custom_fields"]);
    assert_invalid(create(NewLead { owner_id: Some(unknown(1)), ..doe() }).await, &["owner_id"]);

    // None of that was written.
    assert!(list_all::<Lead>(&crm, s, ListRequest::new()).await.is_empty());
    assert_eq!(audit_count(&crm, s).await, audit_before);

    // The limits are inclusive.
    let longest = create(NewLead { first_name: Some("x".repeat(200)), ..doe() }).await.unwrap();
    assert_eq!(crm.get(s, longest.meta.id).await.unwrap(), longest);

    // Updates are validated the same way, and a refused update changes nothing.
    let lead = create(NewLead { email: Some("jane@example.com".into()), ..doe() }).await.unwrap();
    let bad_email = LeadPatch { email: Some(Some("nope".into())), ..LeadPatch::default() };
    assert_invalid(crm.update(s, lead.meta.id, Some(1), bad_email).await, &["email"]);
    let nameless = LeadPatch { last_name: Some(None), email: Some(None), ..LeadPatch::default() };
    assert_invalid(crm.update(s, lead.meta.id, Some(1), nameless).await, &["last_name"]);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);

    // A converted lead keeps its status.
    let conversion = crm.convert_lead(s, lead.meta.id, ConvertLead::default()).await.unwrap();
    let requalify = LeadPatch { status: Some(LeadStatus::Qualified), ..LeadPatch::default() };
    assert_invalid(crm.update(s, lead.meta.id, Some(2), requalify).await, &["status"]);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), conversion.lead);
    let restated = LeadPatch { status: Some(LeadStatus::Converted), ..LeadPatch::default() };
    assert_invalid(crm.update(s, lead.meta.id, None, restated).await, &["status"]);

    // `converted` is only reachable through conversion: not on create...
    let born_converted = NewLead { status: Some(LeadStatus::Converted), ..doe() };
    assert_invalid(create(born_converted).await, &["status"]);
    // ...nor by a patch, which would leave a "converted" lead without a contact.
    let other = create(named("Roe")).await.unwrap();
    let to_converted = LeadPatch { status: Some(LeadStatus::Converted), ..LeadPatch::default() };
    assert_invalid(crm.update(s, other.meta.id, Some(1), to_converted).await, &["status"]);
    assert_eq!(crm.get(s, other.meta.id).await.unwrap(), other);
    // Strings inside custom-field lists are text like any other: no NUL, no control characters.
    let nul_in_list = NewLead { custom_fields: fields(json!({"tags": ["ok", "a\u{0}b"]})), ..doe() };
    assert_invalid(create(nul_in_list).await, &["custom_fields.tags"]);
}

/// A write that states no version applies to whatever is current (invariant 6): two of them
/// racing on one lead both land, one after the other, and neither change is lost; the same
/// holds for pipelines and roles. A stated version still conflicts.
pub async fn unversioned_updates_apply_to_the_current_version(crm: Crm) {
    let (crm, gate) = gated(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let id = lead.meta.id;
    let title = LeadPatch { title: Some(Some("CEO".into())), ..LeadPatch::default() };
    let source = LeadPatch { source: Some(Some("referral".into())), ..LeadPatch::default() };
    let (a, b) = race(&gate, crm.update(s, id, None, title.clone()), crm.update(s, id, None, source)).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!([a.meta.version.min(b.meta.version), a.meta.version.max(b.meta.version)], [2, 3]);
    let now = crm.get(s, id).await.unwrap();
    assert_eq!(
        (now.title.as_deref(), now.source.as_deref(), now.meta.version),
        (Some("CEO"), Some("referral"), 3)
    );
    assert_err!(crm.update(s, id, Some(2), title).await, Error::Conflict(Conflict::StaleVersion));

    let sales = crm.pipelines(s).await.unwrap().remove(0);
    let rename = |name: &str| PipelinePatch { name: Some(name.into()), ..PipelinePatch::default() };
    let renamed = crm.update_pipeline(s, sales.meta.id, None, rename("New business")).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.meta.version), ("New business", sales.meta.version + 1));
    let stale = crm.update_pipeline(s, sales.meta.id, Some(sales.meta.version), rename("Old")).await;
    assert_err!(stale, Error::Conflict(Conflict::StaleVersion));

    let (ann, _) = join(&crm, s, "ann@acme.example", Role::Member).await;
    let promoted = crm.change_role(s, ann.user.id, None, Role::Manager).await.unwrap();
    assert_eq!((promoted.role, promoted.version), (Role::Manager, ann.version + 1));
    let stale = crm.change_role(s, ann.user.id, Some(ann.version), Role::Viewer).await;
    assert_err!(stale, Error::Conflict(Conflict::StaleVersion));
}

/// An update or delete stating a stale version is a Conflict and changes nothing.
pub async fn update_with_stale_version_is_conflict(crm: Crm) {
    let (crm, gate) = gated(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let rename = |name: &str| LeadPatch { first_name: Some(Some(name.into())), ..LeadPatch::default() };
    let v2 = crm.update(s, lead.meta.id, Some(1), rename("Ann")).await.unwrap();
    assert_eq!(v2.meta.version, 2);

    assert_err!(
        crm.update(s, lead.meta.id, Some(1), rename("Bob")).await,
        Error::Conflict(Conflict::StaleVersion)
    );
    assert_err!(
        crm.update(s, lead.meta.id, Some(3), rename("Bob")).await,
        Error::Conflict(Conflict::StaleVersion)
    );
    assert_err!(crm.delete(s, lead.meta.id, Some(1)).await, Error::Conflict(Conflict::StaleVersion));
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), v2);

    // Other kinds and other update paths check versions the same way.
    let d = crm.create::<Deal>(s, deal("Renewal")).await.unwrap();
    let moved = crm.move_deal_to_stage(s, d.meta.id, Some(1), "qualification").await.unwrap();
    assert_err!(
        crm.move_deal_to_stage(s, d.meta.id, Some(1), "proposal").await,
        Error::Conflict(Conflict::StaleVersion)
    );
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), moved);
    assert_eq!(crm.stage_history(s, d.meta.id).await.unwrap().len(), 2);
    let c = crm.create::<Contact>(s, person("Ann", "Lee")).await.unwrap();
    let title = ContactPatch { title: Some(Some("CEO".into())), ..ContactPatch::default() };
    assert_err!(crm.update(s, c.meta.id, Some(2), title).await, Error::Conflict(Conflict::StaleVersion));
    assert_eq!(crm.get(s, c.meta.id).await.unwrap(), c);

    // Two updates of the same version race to commit: the store lets exactly one win.
    let (a, b) = race(
        &gate,
        crm.update(s, lead.meta.id, Some(2), rename("Cat")),
        crm.update(s, lead.meta.id, Some(2), rename("Dan")),
    )
    .await;
    let winner = match (&a, &b) {
        (Ok(w), Err(Error::Conflict(Conflict::StaleVersion)))
        | (Err(Error::Conflict(Conflict::StaleVersion)), Ok(w)) => w.clone(),
        _ => panic!("expected exactly one winner and one Conflict, got {a:?} and {b:?}"),
    };
    assert_eq!(winner.meta.version, 3);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), winner);
    assert_eq!(
        actions(&audit_of(&crm, s, lead.meta.id.uuid()).await),
        [AuditAction::Updated, AuditAction::Updated, AuditAction::Created],
        "the losers of races leave no audit entry"
    );
}

/// Deleted records are gone: get, update, delete, timeline and conversion are NotFound, lists skip them.
pub async fn deleted_records_are_gone(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let gone = crm.create::<Lead>(s, named("Gone")).await.unwrap();
    let kept = crm.create::<Lead>(s, named("Kept")).await.unwrap();
    crm.delete(s, gone.meta.id, Some(1)).await.unwrap();

    assert_err!(crm.get(s, gone.meta.id).await, Error::NotFound);
    assert_eq!(listed::<Lead>(&crm, s, Filter::default()).await, [kept.meta.id.uuid()]);
    for version in [1, 2] {
        let patch = LeadPatch { first_name: Some(Some("Zombie".into())), ..LeadPatch::default() };
        assert_err!(crm.update(s, gone.meta.id, Some(version), patch).await, Error::NotFound);
        assert_err!(crm.delete(s, gone.meta.id, Some(version)).await, Error::NotFound);
    }
    assert_err!(crm.delete(s, gone.meta.id, None).await, Error::NotFound);
    assert_err!(crm.timeline(s, ActivityTarget::Lead(gone.meta.id), None, None).await, Error::NotFound);
    assert_err!(crm.convert_lead(s, gone.meta.id, ConvertLead::default()).await, Error::NotFound);
    assert!(search::<Lead>(&crm, s, "gone").await.is_empty());
    assert_invalid(
        crm.create::<Activity>(s, note(ActivityTarget::Lead(gone.meta.id), "Hi")).await,
        &["lead_id"],
    );

    // Every kind.
    let acct = crm.create::<Account>(s, account("Gone Corp")).await.unwrap();
    let c = crm.create::<Contact>(s, person("Gone", "Person")).await.unwrap();
    let d = crm.create::<Deal>(s, deal("Gone deal")).await.unwrap();
    let a = crm.create::<Activity>(s, note(ActivityTarget::Lead(kept.meta.id), "Gone note")).await.unwrap();
    crm.delete(s, a.meta.id, Some(1)).await.unwrap();
    crm.delete(s, d.meta.id, Some(1)).await.unwrap();
    crm.delete(s, c.meta.id, None).await.unwrap();
    crm.delete(s, acct.meta.id, None).await.unwrap();
    assert_err!(crm.get(s, acct.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, c.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, d.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, a.meta.id).await, Error::NotFound);
    assert!(listed::<Account>(&crm, s, Filter::default()).await.is_empty());
    assert!(listed::<Contact>(&crm, s, Filter::default()).await.is_empty());
    assert!(listed::<Deal>(&crm, s, Filter::default()).await.is_empty());
    assert!(listed::<Activity>(&crm, s, Filter::default()).await.is_empty());
    assert_err!(crm.stage_history(s, d.meta.id).await, Error::NotFound);
    assert_err!(crm.move_deal_to_stage(s, d.meta.id, Some(2), "proposal").await, Error::NotFound);
    let (items, _) = timeline_all(&crm, s, ActivityTarget::Lead(kept.meta.id), 50).await;
    assert!(
        !items.iter().any(|i| i.record::<Activity>().is_some_and(|x| x.meta.id == a.meta.id)),
        "a deleted activity leaves the timeline"
    );

    // Deleted records cannot be linked to.
    let at_gone = NewContact { account_id: Some(acct.meta.id), ..person("New", "Person") };
    assert_invalid(crm.create::<Contact>(s, at_gone).await, &["account_id"]);
    let with_gone = NewDeal { contact_id: Some(c.meta.id), ..deal("New deal") };
    assert_invalid(crm.create::<Deal>(s, with_gone).await, &["contact_id"]);
    assert_invalid(
        crm.create::<Activity>(s, note(ActivityTarget::Deal(d.meta.id), "Hi")).await,
        &["deal_id"],
    );
}

/// Another tenant's ids behave exactly like missing ids (NotFound) for every operation, and change nothing.
pub async fn other_tenants_ids_are_not_found(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let (a, b) = (&acme.owner_scope, &globex.owner_scope);
    let acct = crm.create::<Account>(a, account("Acme Corp")).await.unwrap();
    let contact =
        crm.create::<Contact>(a, NewContact { account_id: Some(acct.meta.id), ..person("Ann", "Lee") });
    let contact = contact.await.unwrap();
    let new_deal =
        NewDeal { account_id: Some(acct.meta.id), contact_id: Some(contact.meta.id), ..deal("Big deal") };
    let d = crm.create::<Deal>(a, new_deal).await.unwrap();
    let lead = crm.create::<Lead>(a, named("Doe")).await.unwrap();
    let act = crm.create::<Activity>(a, note(ActivityTarget::Lead(lead.meta.id), "Call")).await.unwrap();
    let audit_before = audit_count(&crm, a).await;

    assert_unreachable(&crm, b, lead.meta.id).await;
    assert_unreachable(&crm, b, contact.meta.id).await;
    assert_unreachable(&crm, b, acct.meta.id).await;
    assert_unreachable(&crm, b, d.meta.id).await;
    assert_unreachable(&crm, b, act.meta.id).await;

    for target in [
        ActivityTarget::Lead(lead.meta.id),
        ActivityTarget::Contact(contact.meta.id),
        ActivityTarget::Account(acct.meta.id),
        ActivityTarget::Deal(d.meta.id),
    ] {
        assert_err!(crm.timeline(b, target, None, None).await, Error::NotFound);
    }
    assert_err!(crm.convert_lead(b, lead.meta.id, ConvertLead::default()).await, Error::NotFound);
    assert_err!(crm.convert_lead(b, unknown(5), ConvertLead::default()).await, Error::NotFound);
    assert_err!(crm.move_deal_to_stage(b, d.meta.id, Some(1), "won").await, Error::NotFound);
    assert_err!(crm.stage_history(b, d.meta.id).await, Error::NotFound);
    let a_pipeline = crm.pipelines(a).await.unwrap()[0].meta.id;
    assert_err!(crm.pipeline(b, a_pipeline).await, Error::NotFound);

    // Lists, searches and the audit log in B never show A's rows either.
    let on_lead = Filter { target: Some(ActivityTarget::Lead(lead.meta.id)), ..Filter::default() };
    assert!(listed::<Activity>(&crm, b, on_lead).await.is_empty());
    let at_acct = Filter { account_id: Some(acct.meta.id), ..Filter::default() };
    assert!(listed::<Contact>(&crm, b, at_acct.clone()).await.is_empty());
    assert!(listed::<Deal>(&crm, b, at_acct).await.is_empty());
    assert!(search::<Lead>(&crm, b, "doe").await.is_empty());
    assert!(search::<Account>(&crm, b, "acme").await.is_empty());
    assert!(audit_of(&crm, b, lead.meta.id.uuid()).await.is_empty());
    assert!(crm.outbox(b, None, 1000).await.unwrap().iter().all(|e| e.tenant_id == globex.tenant.id));

    // A's records are untouched.
    assert_eq!(crm.get(a, lead.meta.id).await.unwrap(), lead);
    assert_eq!(crm.get(a, contact.meta.id).await.unwrap(), contact);
    assert_eq!(crm.get(a, acct.meta.id).await.unwrap(), acct);
    assert_eq!(crm.get(a, d.meta.id).await.unwrap(), d);
    assert_eq!(crm.get(a, act.meta.id).await.unwrap(), act);
    assert_eq!(crm.stage_history(a, d.meta.id).await.unwrap().len(), 1);
    assert_eq!(audit_count(&crm, a).await, audit_before);
}

/// Links to another tenant's records or users are Validation errors naming the field; nothing is written.
pub async fn cross_tenant_links_are_rejected(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let (a, b) = (&acme.owner_scope, &globex.owner_scope);
    let acct = crm.create::<Account>(a, account("Acme Corp")).await.unwrap();
    let contact = crm.create::<Contact>(a, person("Ann", "Lee")).await.unwrap();
    let lead = crm.create::<Lead>(a, named("Doe")).await.unwrap();
    let d = crm.create::<Deal>(a, deal("Acme deal")).await.unwrap();
    let a_pipeline = d.pipeline_id;
    let b_audit = audit_count(&crm, b).await;

    let at_a = NewContact { account_id: Some(acct.meta.id), ..person("Bob", "Roe") };
    assert_invalid(crm.create::<Contact>(b, at_a).await, &["account_id"]);
    assert_invalid(
        crm.create::<Deal>(b, NewDeal { contact_id: Some(contact.meta.id), ..deal("B deal") }).await,
        &["contact_id"],
    );
    assert_invalid(
        crm.create::<Deal>(b, NewDeal { account_id: Some(acct.meta.id), ..deal("B deal") }).await,
        &["account_id"],
    );
    assert_invalid(
        crm.create::<Deal>(b, NewDeal { pipeline_id: Some(a_pipeline), ..deal("B deal") }).await,
        &["pipeline_id"],
    );
    let in_a_stage =
        NewDeal { pipeline_id: Some(a_pipeline), stage: Some("prospecting".into()), ..deal("B deal") };
    assert_invalid(crm.create::<Deal>(b, in_a_stage).await, &["pipeline_id"]);
    for (target, field) in [
        (ActivityTarget::Lead(lead.meta.id), "lead_id"),
        (ActivityTarget::Contact(contact.meta.id), "contact_id"),
        (ActivityTarget::Account(acct.meta.id), "account_id"),
        (ActivityTarget::Deal(d.meta.id), "deal_id"),
    ] {
        assert_invalid(crm.create::<Activity>(b, note(target, "Sneaky")).await, &[field]);
    }
    assert_invalid(
        crm.create::<Lead>(b, NewLead { owner_id: Some(acme.owner.id), ..named("Roe") }).await,
        &["owner_id"],
    );
    assert_invalid(
        crm.create::<Account>(b, NewAccount { owner_id: Some(acme.owner.id), ..account("B Corp") }).await,
        &["owner_id"],
    );
    let bad_conversion = ConvertLead {
        deal: Some(NewDeal { account_id: Some(acct.meta.id), ..deal("B deal") }),
        ..ConvertLead::default()
    };
    let b_lead = crm.create::<Lead>(b, named("Roe")).await.unwrap();
    assert_invalid(crm.convert_lead(b, b_lead.meta.id, bad_conversion).await, &["deal.account_id"]);

    // Nothing was written in B but that lead.
    assert_eq!(listed::<Lead>(&crm, b, Filter::default()).await, [b_lead.meta.id.uuid()]);
    assert!(listed::<Contact>(&crm, b, Filter::default()).await.is_empty());
    assert!(listed::<Account>(&crm, b, Filter::default()).await.is_empty());
    assert!(listed::<Deal>(&crm, b, Filter::default()).await.is_empty());
    assert!(listed::<Activity>(&crm, b, Filter::default()).await.is_empty());
    assert_eq!(audit_count(&crm, b).await, b_audit + 1);

    // Updates cannot link across tenants either.
    let bc = crm.create::<Contact>(b, person("Bob", "Roe")).await.unwrap();
    let bd = crm.create::<Deal>(b, deal("B deal")).await.unwrap();
    let to_a_acct = ContactPatch { account_id: Some(Some(acct.meta.id)), ..ContactPatch::default() };
    assert_invalid(crm.update(b, bc.meta.id, Some(1), to_a_acct).await, &["account_id"]);
    let to_a_owner = ContactPatch { owner_id: Some(Some(acme.owner.id)), ..ContactPatch::default() };
    assert_invalid(crm.update(b, bc.meta.id, Some(1), to_a_owner).await, &["owner_id"]);
    let to_a_contact = DealPatch { contact_id: Some(Some(contact.meta.id)), ..DealPatch::default() };
    assert_invalid(crm.update(b, bd.meta.id, Some(1), to_a_contact).await, &["contact_id"]);
    let to_a_pipeline = DealPatch { pipeline_id: Some(a_pipeline), ..DealPatch::default() };
    assert_invalid(crm.update(b, bd.meta.id, Some(1), to_a_pipeline).await, &["pipeline_id"]);
    assert_eq!(crm.get(b, bc.meta.id).await.unwrap(), bc);
    assert_eq!(crm.get(b, bd.meta.id).await.unwrap(), bd);
}

/// Contacts, accounts, deals and activities round-trip through create, get, update and delete with their links.
pub async fn contact_account_deal_activity_crud(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let me = Some(acme.owner.id);

    // Account.
    let new_account = NewAccount {
        name: "Acme Corp".into(),
        domain: Some("acme-corp.example".into()),
        industry: Some("Manufacturing".into()),
        owner_id: None,
        custom_fields: fields(json!({"region": "emea"})),
    };
    let acct = crm.create::<Account>(s, new_account).await.unwrap();
    assert_eq!(acct.name, "Acme Corp");
    assert_eq!(acct.domain.as_deref(), Some("acme-corp.example"));
    assert_eq!(acct.industry.as_deref(), Some("Manufacturing"));
    assert_eq!(acct.owner_id, me);
    assert_eq!(acct.custom_fields, fields(json!({"region": "emea"})));
    assert_eq!(acct.meta.version, 1);
    assert_eq!(crm.get(s, acct.meta.id).await.unwrap(), acct);
    assert_invalid(crm.create::<Account>(s, account(" ")).await, &["name"]);
    let bad_domain = NewAccount { domain: Some("not a domain".into()), ..account("X") };
    assert_invalid(crm.create::<Account>(s, bad_domain).await, &["domain"]);
    let patch =
        AccountPatch { name: Some("Acme Corporation".into()), domain: Some(None), ..AccountPatch::default() };
    let acct2 = crm.update(s, acct.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(acct2.name, "Acme Corporation");
    assert_eq!(acct2.domain, None);
    assert_eq!(acct2.industry, acct.industry);
    assert_eq!(acct2.meta.version, 2);
    assert_eq!(crm.get(s, acct.meta.id).await.unwrap(), acct2);
    let blank = AccountPatch { name: Some(String::new()), ..AccountPatch::default() };
    assert_invalid(crm.update(s, acct.meta.id, Some(2), blank).await, &["name"]);

    // Contact at the account.
    let new_contact = NewContact {
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        email: Some("ann.lee@acme-corp.example".into()),
        phone: Some("+44 20 7946 0000".into()),
        title: Some("Buyer".into()),
        account_id: Some(acct.meta.id),
        owner_id: me,
        custom_fields: fields(json!({"newsletter": false})),
    };
    let contact = crm.create::<Contact>(s, new_contact.clone()).await.unwrap();
    assert_eq!(contact.first_name, new_contact.first_name);
    assert_eq!(contact.last_name, new_contact.last_name);
    assert_eq!(contact.email, new_contact.email);
    assert_eq!(contact.phone, new_contact.phone);
    assert_eq!(contact.title, new_contact.title);
    assert_eq!(contact.account_id, Some(acct.meta.id));
    assert_eq!(contact.owner_id, me);
    assert_eq!(contact.custom_fields, new_contact.custom_fields);
    assert_eq!(crm.get(s, contact.meta.id).await.unwrap(), contact);
    assert_invalid(crm.create::<Contact>(s, NewContact::default()).await, &["last_name"]);
    let bad_email = NewContact { email: Some("ann@".into()), ..person("Ann", "Lee") };
    assert_invalid(crm.create::<Contact>(s, bad_email).await, &["email"]);
    let patch = ContactPatch {
        account_id: Some(None),
        title: Some(Some("Head of Buying".into())),
        ..ContactPatch::default()
    };
    let contact2 = crm.update(s, contact.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(contact2.account_id, None);
    assert_eq!(contact2.title.as_deref(), Some("Head of Buying"));
    assert_eq!(contact2.email, contact.email);
    assert_eq!(contact2.meta.version, 2);
    assert_eq!(crm.get(s, contact.meta.id).await.unwrap(), contact2);

    // Deal with both links.
    let close = NaiveDate::from_ymd_opt(2026, 3, 31).expect("a valid date");
    let new_deal = NewDeal {
        name: "Acme rollout".into(),
        amount: Some(money(125_000, "EUR")),
        expected_close_date: Some(close),
        probability: Some(40),
        account_id: Some(acct.meta.id),
        contact_id: Some(contact.meta.id),
        custom_fields: fields(json!({"source": "partner"})),
        ..NewDeal::default()
    };
    let d = crm.create::<Deal>(s, new_deal).await.unwrap();
    assert_eq!(d.name, "Acme rollout");
    assert_eq!(d.amount, Some(money(125_000, "EUR")));
    assert_eq!(d.expected_close_date, Some(close));
    assert_eq!(d.probability, Some(40));
    assert_eq!(d.account_id, Some(acct.meta.id));
    assert_eq!(d.contact_id, Some(contact.meta.id));
    assert_eq!(d.owner_id, me);
    assert_eq!(d.stage, "prospecting");
    assert_eq!(d.closed_at, None);
    assert_eq!(d.custom_fields, fields(json!({"source": "partner"})));
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d);
    assert_invalid(crm.create::<Deal>(s, deal("")).await, &["name"]);
    let patch = DealPatch {
        name: Some("Acme rollout, phase 1".into()),
        amount: Some(None),
        probability: Some(None),
        contact_id: Some(None),
        ..DealPatch::default()
    };
    let d2 = crm.update(s, d.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(d2.name, "Acme rollout, phase 1");
    assert_eq!(d2.amount, None);
    assert_eq!(d2.probability, None);
    assert_eq!(d2.contact_id, None);
    assert_eq!(d2.account_id, d.account_id);
    assert_eq!(d2.stage, d.stage);
    assert_eq!(d2.meta.version, 2);
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d2);

    // Activities on each kind of record; times keep microseconds.
    let occurred = Utc.timestamp_opt(1_767_000_000, 123_456_789).single().expect("a valid time");
    let mut new_call = NewActivity::on(ActivityTarget::Deal(d.meta.id), ActivityKind::Call);
    new_call.subject = Some("Intro call".into());
    new_call.body = Some("Talked about pricing.\nFollow up next week.".into());
    new_call.occurred_at = Some(occurred);
    let call = crm.create::<Activity>(s, new_call).await.unwrap();
    assert_eq!(call.kind, ActivityKind::Call);
    assert_eq!(call.target, ActivityTarget::Deal(d.meta.id));
    assert_eq!(call.subject.as_deref(), Some("Intro call"));
    assert_eq!(call.owner_id, me);
    assert_eq!(call.occurred_at.timestamp(), occurred.timestamp());
    assert_eq!(call.occurred_at.timestamp_subsec_nanos(), 123_456_000, "times are kept to the microsecond");
    assert_eq!(crm.get(s, call.meta.id).await.unwrap(), call);
    let patch = ActivityPatch {
        kind: Some(ActivityKind::Meeting),
        subject: Some(Some("Intro meeting".into())),
        body: Some(None),
        ..ActivityPatch::default()
    };
    let call2 = crm.update(s, call.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(call2.kind, ActivityKind::Meeting);
    assert_eq!(call2.subject.as_deref(), Some("Intro meeting"));
    assert_eq!(call2.body, None);
    assert_eq!(call2.target, call.target);
    assert_eq!(call2.occurred_at, call.occurred_at);
    assert_eq!(call2.meta.version, 2);
    assert_eq!(crm.get(s, call.meta.id).await.unwrap(), call2);
    let on_contact = crm.create::<Activity>(s, note(ActivityTarget::Contact(contact.meta.id), "Hi")).await;
    let on_contact = on_contact.unwrap();
    assert_eq!(
        crm.get(s, on_contact.meta.id).await.unwrap().target,
        ActivityTarget::Contact(contact.meta.id)
    );
    let on_account = crm.create::<Activity>(s, note(ActivityTarget::Account(acct.meta.id), "Hi")).await;
    let on_account = on_account.unwrap();
    assert_eq!(crm.get(s, on_account.meta.id).await.unwrap().target, ActivityTarget::Account(acct.meta.id));

    // Delete everything.
    crm.delete(s, call.meta.id, Some(2)).await.unwrap();
    crm.delete(s, on_contact.meta.id, Some(1)).await.unwrap();
    crm.delete(s, on_account.meta.id, Some(1)).await.unwrap();
    crm.delete(s, d.meta.id, Some(2)).await.unwrap();
    crm.delete(s, contact.meta.id, Some(2)).await.unwrap();
    crm.delete(s, acct.meta.id, Some(2)).await.unwrap();
    assert_err!(crm.get(s, call.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, on_contact.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, on_account.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, d.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, contact.meta.id).await, Error::NotFound);
    assert_err!(crm.get(s, acct.meta.id).await, Error::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Lists and search

/// Cursor pagination returns every record exactly once, newest first, and ends with no cursor.
pub async fn list_pagination_is_stable_and_complete(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(crm.create::<Lead>(s, named(&format!("Page {i:02}"))).await.unwrap().meta.id.uuid());
        if i % 5 == 0 {
            // Another tenant's rows interleave with ours and must never show up.
            crm.create::<Lead>(&globex.owner_scope, named(&format!("Other {i}"))).await.unwrap();
        }
    }
    let expected = newest_first(created.clone());
    assert_eq!(expected, created.iter().rev().copied().collect::<Vec<_>>(), "ids grow with creation");

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = crm.list::<Lead>(s, ListRequest::new().limit(5).cursor(cursor)).await.unwrap();
        sizes.push(page.data.len());
        seen.extend(ids(&page.data));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(seen, expected, "every lead exactly once, newest first");

    // Pages that end exactly at the last record, or hold everything, have no next cursor.
    let one = crm.list::<Lead>(s, ListRequest::new().limit(23)).await.unwrap();
    assert_eq!(ids(&one.data), expected);
    assert_eq!(one.next_cursor, None);
    let all = crm.list::<Lead>(s, ListRequest::new()).await.unwrap();
    assert_eq!(ids(&all.data), expected);
    assert_eq!(all.next_cursor, None);
    let last = crm.list::<Lead>(s, ListRequest::new().limit(3).cursor(Some(cursor_after(&crm, s, 20).await)));
    let last = last.await.unwrap();
    assert_eq!(ids(&last.data), expected[20..]);
    assert_eq!(last.next_cursor, None);

    // Records created while paging do not disturb the pages still to come.
    let first = crm.list::<Lead>(s, ListRequest::new().limit(10)).await.unwrap();
    assert_eq!(ids(&first.data), expected[..10]);
    let newcomer = crm.create::<Lead>(s, named("Newcomer")).await.unwrap();
    let rest = list_all::<Lead>(&crm, s, ListRequest::new().limit(4).cursor(first.next_cursor)).await;
    assert_eq!(ids(&rest), expected[10..]);
    let fresh = crm.list::<Lead>(s, ListRequest::new().limit(1)).await.unwrap();
    assert_eq!(ids(&fresh.data), [newcomer.meta.id.uuid()]);
    assert!(fresh.next_cursor.is_some());

    // An empty list is one empty page.
    let empty = crm.list::<Contact>(s, ListRequest::new().limit(5)).await.unwrap();
    assert!(empty.data.is_empty());
    assert_eq!(empty.next_cursor, None);
}

/// The cursor a client holds after reading the first `n` leads with pages of `n`.
async fn cursor_after(crm: &Crm, scope: &Scope, n: u32) -> String {
    let page = crm.list::<Lead>(scope, ListRequest::new().limit(n)).await.expect("list");
    page.next_cursor.expect("more leads after the first page")
}

/// Exact filters (status, owner, creation time, account, contact, pipeline, stage, target, kind) select the right live records.
pub async fn list_filters(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let (member, ms) = join(&crm, s, "member@acme.example", Role::Member).await;
    let with_status = |last: &str, status| NewLead { status: Some(status), ..named(last) };

    // Leads.
    let l_new = crm.create::<Lead>(s, with_status("New", LeadStatus::New)).await.unwrap();
    let l_c1 = crm.create::<Lead>(s, with_status("Contacted 1", LeadStatus::Contacted)).await.unwrap();
    let l_c2 = crm.create::<Lead>(s, with_status("Contacted 2", LeadStatus::Contacted)).await.unwrap();
    let l_m = crm.create::<Lead>(&ms, with_status("Members", LeadStatus::Qualified)).await.unwrap();
    let id = |l: &Lead| l.meta.id.uuid();
    let by_status = |status| Filter { status: Some(status), ..Filter::default() };
    assert_eq!(listed::<Lead>(&crm, s, by_status(LeadStatus::Contacted)).await, [id(&l_c2), id(&l_c1)]);
    assert_eq!(listed::<Lead>(&crm, s, by_status(LeadStatus::New)).await, [id(&l_new)]);
    assert!(listed::<Lead>(&crm, s, by_status(LeadStatus::Unqualified)).await.is_empty());
    let mine = Filter { owner_id: Some(member.user.id), ..Filter::default() };
    assert_eq!(listed::<Lead>(&crm, s, mine).await, [id(&l_m)]);
    let owners_contacted = Filter { owner_id: Some(acme.owner.id), ..by_status(LeadStatus::Contacted) };
    assert_eq!(listed::<Lead>(&crm, s, owners_contacted).await, [id(&l_c2), id(&l_c1)]);
    let owners_qualified = Filter { owner_id: Some(acme.owner.id), ..by_status(LeadStatus::Qualified) };
    assert!(listed::<Lead>(&crm, s, owners_qualified).await.is_empty());

    let after = Filter { created_after: Some(l_c1.meta.created_at), ..Filter::default() };
    assert_eq!(listed::<Lead>(&crm, s, after).await, [id(&l_m), id(&l_c2), id(&l_c1)], "inclusive");
    let before = Filter { created_before: Some(l_c1.meta.created_at), ..Filter::default() };
    assert_eq!(listed::<Lead>(&crm, s, before).await, [id(&l_new)], "exclusive");
    let between = Filter {
        created_after: Some(l_new.meta.created_at),
        created_before: Some(l_m.meta.created_at),
        ..Filter::default()
    };
    assert_eq!(listed::<Lead>(&crm, s, between).await, [id(&l_c2), id(&l_c1), id(&l_new)]);

    // Contacts and deals by account and contact; deals by pipeline and stage.
    let a1 = crm.create::<Account>(s, account("First Corp")).await.unwrap();
    let a2 = crm.create::<Account>(s, account("Second Corp")).await.unwrap();
    let c1 = crm.create::<Contact>(s, NewContact { account_id: Some(a1.meta.id), ..person("C", "One") });
    let c1 = c1.await.unwrap();
    let c2 = crm.create::<Contact>(s, NewContact { account_id: Some(a2.meta.id), ..person("C", "Two") });
    let c2 = c2.await.unwrap();
    let c3 = crm.create::<Contact>(s, person("C", "Three")).await.unwrap();
    let at = |a: &Account| Filter { account_id: Some(a.meta.id), ..Filter::default() };
    assert_eq!(listed::<Contact>(&crm, s, at(&a1)).await, [c1.meta.id.uuid()]);
    assert_eq!(listed::<Contact>(&crm, s, at(&a2)).await, [c2.meta.id.uuid()]);
    assert_eq!(listed::<Contact>(&crm, s, Filter::default()).await.len(), 3);
    assert!(listed::<Contact>(&crm, s, Filter::default()).await.contains(&c3.meta.id.uuid()));

    let renewals = crm.create_pipeline(s, renewals_pipeline()).await.unwrap();
    let sales = crm.pipelines(s).await.unwrap()[0].meta.id;
    let new_deal = |name: &str, a: &Account, c: Option<&Contact>| NewDeal {
        account_id: Some(a.meta.id),
        contact_id: c.map(|c| c.meta.id),
        ..deal(name)
    };
    let d1 = crm.create::<Deal>(s, new_deal("D1", &a1, Some(&c1))).await.unwrap();
    let d2 = crm.create::<Deal>(s, NewDeal { stage: Some("proposal".into()), ..new_deal("D2", &a1, None) });
    let d2 = d2.await.unwrap();
    let d3 = crm
        .create::<Deal>(s, NewDeal { pipeline_id: Some(renewals.meta.id), ..new_deal("D3", &a2, Some(&c2)) });
    let d3 = d3.await.unwrap();
    let did = |d: &Deal| d.meta.id.uuid();
    assert_eq!(listed::<Deal>(&crm, s, at(&a1)).await, [did(&d2), did(&d1)]);
    assert_eq!(listed::<Deal>(&crm, s, at(&a2)).await, [did(&d3)]);
    let with_c1 = Filter { contact_id: Some(c1.meta.id), ..Filter::default() };
    assert_eq!(listed::<Deal>(&crm, s, with_c1).await, [did(&d1)]);
    let stage = |key: &str| Filter { stage: Some(key.into()), ..Filter::default() };
    assert_eq!(listed::<Deal>(&crm, s, stage("proposal")).await, [did(&d2)]);
    assert_eq!(listed::<Deal>(&crm, s, stage("prospecting")).await, [did(&d1)]);
    assert_eq!(listed::<Deal>(&crm, s, stage("renewal")).await, [did(&d3)]);
    let in_renewals = Filter { pipeline_id: Some(renewals.meta.id), ..Filter::default() };
    assert_eq!(listed::<Deal>(&crm, s, in_renewals.clone()).await, [did(&d3)]);
    let in_sales = Filter { pipeline_id: Some(sales), ..Filter::default() };
    assert_eq!(listed::<Deal>(&crm, s, in_sales).await, [did(&d2), did(&d1)]);
    let nowhere = Filter { stage: Some("proposal".into()), ..in_renewals };
    assert!(listed::<Deal>(&crm, s, nowhere).await.is_empty());

    // Activities by target and kind.
    let lead_target = ActivityTarget::Lead(l_new.meta.id);
    let n1 = crm.create::<Activity>(s, note(lead_target, "First note")).await.unwrap();
    let mut call = NewActivity::on(lead_target, ActivityKind::Call);
    call.subject = Some("Call".into());
    let n2 = crm.create::<Activity>(s, call).await.unwrap();
    let mut deal_call = NewActivity::on(ActivityTarget::Deal(d1.meta.id), ActivityKind::Call);
    deal_call.body = Some("Called about D1".into());
    let n3 = crm.create::<Activity>(s, deal_call).await.unwrap();
    let aid = |a: &Activity| a.meta.id.uuid();
    let on = |t| Filter { target: Some(t), ..Filter::default() };
    assert_eq!(listed::<Activity>(&crm, s, on(lead_target)).await, [aid(&n2), aid(&n1)]);
    assert_eq!(listed::<Activity>(&crm, s, on(ActivityTarget::Deal(d1.meta.id))).await, [aid(&n3)]);
    assert!(listed::<Activity>(&crm, s, on(ActivityTarget::Deal(d2.meta.id))).await.is_empty());
    let calls = Filter { activity_kind: Some(ActivityKind::Call), ..Filter::default() };
    assert_eq!(listed::<Activity>(&crm, s, calls.clone()).await, [aid(&n3), aid(&n2)]);
    let lead_calls = Filter { target: Some(lead_target), ..calls };
    assert_eq!(listed::<Activity>(&crm, s, lead_calls).await, [aid(&n2)]);
    // An activity's account and contact references are filters like its other targets.
    let on_account =
        crm.create::<Activity>(s, note(ActivityTarget::Account(a1.meta.id), "On A1")).await.unwrap();
    let on_contact =
        crm.create::<Activity>(s, note(ActivityTarget::Contact(c1.meta.id), "On C1")).await.unwrap();
    let by_account = Filter { account_id: Some(a1.meta.id), ..Filter::default() };
    assert_eq!(listed::<Activity>(&crm, s, by_account).await, [aid(&on_account)]);
    let by_contact = Filter { contact_id: Some(c1.meta.id), ..Filter::default() };
    assert_eq!(listed::<Activity>(&crm, s, by_contact).await, [aid(&on_contact)]);
    assert_eq!(
        listed::<Activity>(&crm, s, on(ActivityTarget::Contact(c1.meta.id))).await,
        [aid(&on_contact)]
    );

    // Soft-deleted records drop out of every filter.
    crm.delete(s, l_c1.meta.id, None).await.unwrap();
    assert_eq!(listed::<Lead>(&crm, s, by_status(LeadStatus::Contacted)).await, [id(&l_c2)]);
    crm.delete(s, d2.meta.id, None).await.unwrap();
    assert_eq!(listed::<Deal>(&crm, s, at(&a1)).await, [did(&d1)]);
    assert!(listed::<Deal>(&crm, s, stage("proposal")).await.is_empty());
    crm.delete(s, n2.meta.id, None).await.unwrap();
    assert_eq!(listed::<Activity>(&crm, s, on(lead_target)).await, [aid(&n1)]);
    crm.delete(s, c1.meta.id, None).await.unwrap();
    assert!(listed::<Contact>(&crm, s, at(&a1)).await.is_empty());
}

/// A second pipeline: renewal (open), negotiating (open), renewed (won), churned (lost).
fn renewals_pipeline() -> NewPipeline {
    let stage = |key: &str, kind| NewStage { key: key.into(), name: format!("Stage {key}"), kind };
    NewPipeline {
        name: "Renewals".into(),
        stages: vec![
            stage("renewal", StageKind::Open),
            stage("negotiating", StageKind::Open),
            stage("renewed", StageKind::Won),
            stage("churned", StageKind::Lost),
        ],
    }
}

/// Bad list requests (limit, cursor, filters that do not apply, empty search) are Validation errors naming the field.
pub async fn list_rejects_bad_requests(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    crm.update(
        s,
        lead.meta.id,
        Some(1),
        LeadPatch { title: Some(Some("CEO".into())), ..LeadPatch::default() },
    )
    .await
    .unwrap();
    let leads = |request: ListRequest| crm.list::<Lead>(s, request);

    assert_invalid(leads(ListRequest::new().limit(0)).await, &["limit"]);
    assert_invalid(leads(ListRequest::new().limit(201)).await, &["limit"]);
    assert_eq!(leads(ListRequest::new().limit(200)).await.unwrap().data.len(), 1);
    assert_eq!(leads(ListRequest::new().limit(1)).await.unwrap().data.len(), 1);

    let time_cursor = crm.timeline(s, ActivityTarget::Lead(lead.meta.id), None, Some(1)).await.unwrap();
    let time_cursor = time_cursor.next_cursor.expect("a second timeline page");
    let long = "A".repeat(100);
    for garbage in ["not a cursor!", "", "AQ", "AAAA", long.as_str(), time_cursor.as_str()] {
        assert_invalid(leads(ListRequest::new().cursor(Some(garbage.into()))).await, &["cursor"]);
    }

    let contacts = |filter: Filter| crm.list::<Contact>(s, ListRequest::new().filter(filter));
    assert_invalid(
        contacts(Filter { status: Some(LeadStatus::New), ..Filter::default() }).await,
        &["status"],
    );
    assert_invalid(
        contacts(Filter { pipeline_id: Some(unknown(1)), ..Filter::default() }).await,
        &["pipeline_id"],
    );
    assert_invalid(
        contacts(Filter { contact_id: Some(unknown(1)), ..Filter::default() }).await,
        &["contact_id"],
    );
    let on_lead = Filter { target: Some(ActivityTarget::Lead(lead.meta.id)), ..Filter::default() };
    assert_invalid(contacts(on_lead).await, &["target"]);
    let with = |filter: Filter| ListRequest::new().filter(filter);
    assert_invalid(leads(with(Filter { stage: Some("won".into()), ..Filter::default() })).await, &["stage"]);
    assert_invalid(
        leads(with(Filter { account_id: Some(unknown(1)), ..Filter::default() })).await,
        &["account_id"],
    );
    let calls = Filter { activity_kind: Some(ActivityKind::Call), ..Filter::default() };
    assert_invalid(crm.list::<Deal>(s, with(calls)).await, &["kind"]);
    assert_invalid(crm.list::<Activity>(s, ListRequest::new().q("call")).await, &["q"]);
    let cf = |name: &str| Filter { custom_fields: vec![(name.into(), json!(1))], ..Filter::default() };
    assert_invalid(crm.list::<Activity>(s, with(cf("tier"))).await, &["custom_fields"]);
    assert_invalid(leads(with(cf("Bad Name"))).await, &["cf.Bad Name"]);
    for q in ["@@", "", "  ", "-- !"] {
        assert_invalid(leads(ListRequest::new().q(q)).await, &["q"]);
    }
    let backwards = Filter {
        created_after: Some(utc(2026, 2, 1, 0)),
        created_before: Some(utc(2026, 1, 1, 0)),
        ..Filter::default()
    };
    // An inverted range and a search without a word are valid and match nothing.
    assert_eq!(leads(with(backwards)).await.unwrap().data, []);
    assert_eq!(leads(ListRequest::new().q("¥ 🚀")).await.unwrap().data, []);
    assert!(!leads(ListRequest::new()).await.unwrap().data.is_empty(), "there are leads to match");

    // Every problem is reported at once.
    let everything = ListRequest::new()
        .limit(0)
        .cursor(Some("garbage!".into()))
        .filter(Filter { status: Some(LeadStatus::New), ..Filter::default() });
    assert_invalid(crm.list::<Contact>(s, everything).await, &["limit", "cursor", "status"]);

    // Timelines and the audit log check their limits and cursors too.
    let target = ActivityTarget::Lead(lead.meta.id);
    assert_invalid(crm.timeline(s, target, None, Some(0)).await, &["limit"]);
    assert_invalid(crm.timeline(s, target, None, Some(201)).await, &["limit"]);
    assert_invalid(crm.timeline(s, target, Some("garbage!"), None).await, &["cursor"]);
    crm.create::<Lead>(s, named("Roe")).await.unwrap();
    let id_cursor = cursor_after(&crm, s, 1).await;
    assert_invalid(crm.timeline(s, target, Some(&id_cursor), None).await, &["cursor"]);
    assert_invalid(crm.audit_log(s, AuditQuery::default(), None, Some(201)).await, &["limit"]);
    assert_invalid(crm.audit_log(s, AuditQuery::default(), Some("AAAA"), None).await, &["cursor"]);

    // Odd but harmless filter values are never a storage error: either nothing matches or the
    // value is refused as invalid.
    let odd_stage =
        crm.list::<Deal>(s, with(Filter { stage: Some("pro\0posal".into()), ..Filter::default() }));
    match odd_stage.await {
        Ok(page) => assert!(page.data.is_empty()),
        Err(err @ Error::Validation(_)) => assert!(err.field_errors().iter().any(|f| f.field == "stage")),
        Err(other) => panic!("a NUL in a stage filter must not be {other:?}"),
    }
    let odd_cf = Filter { custom_fields: vec![("tier".into(), json!("go\u{0}ld"))], ..Filter::default() };
    match leads(with(odd_cf)).await {
        Ok(page) => assert!(page.data.is_empty()),
        Err(err @ Error::Validation(_)) => assert!(err.field_errors().iter().any(|f| f.field == "cf.tier")),
        Err(other) => panic!("a NUL in a custom-field filter must not be {other:?}"),
    }
}

/// Text search: every word of `q` must case-insensitively prefix a word of the record's names, e-mail or company.
pub async fn text_search_matches_word_prefixes(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let lead =
        |first: Option<&str>, last: Option<&str>, email: Option<&str>, company: Option<&str>| NewLead {
            first_name: first.map(Into::into),
            last_name: last.map(Into::into),
            email: email.map(Into::into),
            company: company.map(Into::into),
            ..NewLead::default()
        };
    let create = |new: NewLead| crm.create::<Lead>(s, new);
    let l1 =
        create(lead(Some("Jane"), Some("Doe"), Some("jd@example.com"), Some("Acme Corp"))).await.unwrap();
    let l2 = create(lead(Some("John"), Some("Smith"), Some("john.smith@initech.io"), Some("Globex")));
    let l2 = l2.await.unwrap();
    let l3 = create(lead(Some("Janet"), Some("Roe"), None, Some("Acme Labs"))).await.unwrap();
    let l4 = create(lead(None, Some("Macmillan"), None, Some("Umbrella"))).await.unwrap();
    let l5 = create(lead(None, None, Some("Pat.Kowalski@Contoso.org"), None)).await.unwrap();
    let theirs =
        NewLead { first_name: Some("Jane".into()), company: Some("Acme Corp".into()), ..named("Acme") };
    let theirs = crm.create::<Lead>(&globex.owner_scope, theirs).await.unwrap();
    let id = |l: &Lead| l.meta.id.uuid();

    assert_eq!(search::<Lead>(&crm, s, "acm").await, [id(&l3), id(&l1)], "company word prefix");
    assert_eq!(search::<Lead>(&crm, s, "ACME").await, [id(&l3), id(&l1)], "case-insensitive");
    assert_eq!(search::<Lead>(&crm, s, "Acme!").await, [id(&l3), id(&l1)], "punctuation is not a word");
    assert_eq!(search::<Lead>(&crm, s, "JANE").await, [id(&l3), id(&l1)]);
    assert_eq!(search::<Lead>(&crm, s, "jane acme").await, [id(&l3), id(&l1)]);
    assert_eq!(search::<Lead>(&crm, s, "acme jane").await, [id(&l3), id(&l1)], "word order is free");
    assert_eq!(search::<Lead>(&crm, s, "janet").await, [id(&l3)]);
    assert_eq!(search::<Lead>(&crm, s, "jane corp").await, [id(&l1)], "every word must match");
    assert!(search::<Lead>(&crm, s, "john acme").await.is_empty());
    assert!(search::<Lead>(&crm, s, "acme umbrella").await.is_empty());
    assert_eq!(search::<Lead>(&crm, s, "smith").await, [id(&l2)]);
    assert_eq!(search::<Lead>(&crm, s, "initech").await, [id(&l2)], "e-mail domain words");
    assert_eq!(search::<Lead>(&crm, s, "kowal").await, [id(&l5)], "e-mail local-part words");
    assert_eq!(search::<Lead>(&crm, s, "pat").await, [id(&l5)]);
    assert_eq!(search::<Lead>(&crm, s, "contoso").await, [id(&l5)]);
    assert_eq!(search::<Lead>(&crm, s, "pat.kowalski@contoso.org").await, [id(&l5)]);
    assert_eq!(search::<Lead>(&crm, s, "mac").await, [id(&l4)]);
    assert!(search::<Lead>(&crm, s, "cme").await.is_empty(), "prefixes, not substrings");
    assert!(search::<Lead>(&crm, s, "oe").await.is_empty(), "prefixes, not substrings");
    assert!(search::<Lead>(&crm, s, "acmes").await.is_empty(), "the whole term must be a prefix");

    // Search combines with filters, and never reaches another tenant.
    let contacted = LeadPatch { status: Some(LeadStatus::Contacted), ..LeadPatch::default() };
    crm.update(s, l3.meta.id, Some(1), contacted).await.unwrap();
    let request = ListRequest::new()
        .q("acm")
        .filter(Filter { status: Some(LeadStatus::Contacted), ..Filter::default() });
    assert_eq!(ids(&list_all::<Lead>(&crm, s, request).await), [id(&l3)]);
    assert_eq!(search::<Lead>(&crm, &globex.owner_scope, "jane acme").await, [id(&theirs)]);
    assert!(!search::<Lead>(&crm, s, "acme").await.contains(&id(&theirs)));

    // Changes and deletions are searchable at once.
    let renamed = LeadPatch { company: Some(Some("Initrode".into())), ..LeadPatch::default() };
    crm.update(s, l4.meta.id, Some(1), renamed).await.unwrap();
    assert_eq!(search::<Lead>(&crm, s, "initr").await, [id(&l4)]);
    assert!(search::<Lead>(&crm, s, "umbrella").await.is_empty());
    crm.delete(s, l3.meta.id, None).await.unwrap();
    assert_eq!(search::<Lead>(&crm, s, "acm").await, [id(&l1)]);

    // Search results page like any list.
    let mut paged = Vec::new();
    for i in 0..7 {
        let new = NewLead { company: Some(format!("Paged Search {i}")), ..NewLead::default() };
        paged.push(id(&crm.create::<Lead>(s, new).await.unwrap()));
    }
    let pages = list_all::<Lead>(&crm, s, ListRequest::new().q("paged sea").limit(3)).await;
    assert_eq!(ids(&pages), newest_first(paged));

    // A term starting several words on many records (past any cap for fetching matches first):
    // only those records, however the store plans it, with non-matching ones in between.
    let rows: Vec<NewLead> = (0..180)
        .map(|i| {
            let company = match i % 6 {
                0 => format!("Decoy {i}"),
                n if n % 2 == 0 => format!("Walkera {i}"),
                _ => format!("Walkerb {i}"),
            };
            NewLead { company: Some(company), ..NewLead::default() }
        })
        .collect();
    let imported = crm.import::<Lead>(s, rows, crate::ImportMode::Atomic).await.unwrap().created;
    let walkers: Vec<Uuid> = imported
        .iter()
        .filter(|l| l.company.as_deref().is_some_and(|c| c.starts_with("Walker")))
        .map(id)
        .collect();
    let pages = list_all::<Lead>(&crm, s, ListRequest::new().q("walker").limit(50)).await;
    assert_eq!(ids(&pages), newest_first(walkers), "a common prefix of several words");

    // Contacts, accounts and deals are searchable by name (and contacts by e-mail).
    let maria = NewContact { email: Some("m.lopez@example.org".into()), ..person("Maria", "Lopez") };
    let maria = crm.create::<Contact>(s, maria).await.unwrap();
    let mario = crm.create::<Contact>(s, person("Mario", "Rossi")).await.unwrap();
    let cid = |c: &Contact| c.meta.id.uuid();
    assert_eq!(search::<Contact>(&crm, s, "mari").await, [cid(&mario), cid(&maria)]);
    assert_eq!(search::<Contact>(&crm, s, "lop").await, [cid(&maria)]);
    assert_eq!(search::<Contact>(&crm, s, "rossi mario").await, [cid(&mario)]);
    assert!(search::<Contact>(&crm, s, "maria rossi").await.is_empty());
    let wayne = crm.create::<Account>(s, account("Wayne Enterprises")).await.unwrap();
    let stark = crm.create::<Account>(s, account("Stark Industries")).await.unwrap();
    assert_eq!(search::<Account>(&crm, s, "wayne ent").await, [wayne.meta.id.uuid()]);
    assert_eq!(search::<Account>(&crm, s, "ind").await, [stark.meta.id.uuid()]);
    let big = crm.create::<Deal>(s, deal("Big Renewal 2026")).await.unwrap();
    let small = crm.create::<Deal>(s, deal("Small upsell")).await.unwrap();
    assert_eq!(search::<Deal>(&crm, s, "renew 2026").await, [big.meta.id.uuid()]);
    assert_eq!(search::<Deal>(&crm, s, "2026").await, [big.meta.id.uuid()]);
    assert_eq!(search::<Deal>(&crm, s, "UPSELL").await, [small.meta.id.uuid()]);
    assert!(search::<Deal>(&crm, s, "acme").await.is_empty(), "deals do not match their leads' words");
}

/// `Filter::custom_fields` selects records whose custom field equals the JSON value exactly (type included).
pub async fn custom_field_filter(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let with = |last: &str, cf: Value| NewLead { custom_fields: fields(cf), ..named(last) };
    let create = |new: NewLead| crm.create::<Lead>(s, new);
    let l1 = create(with("L1", json!({"tier": "gold", "seats": 10, "vip": true}))).await.unwrap();
    let l2 = create(with("L2", json!({"tier": "silver", "seats": 10}))).await.unwrap();
    let l3 = create(with("L3", json!({"tier": "gold", "seats": 5, "vip": false}))).await.unwrap();
    let l4 = create(with("L4", json!({}))).await.unwrap();
    let l5 = create(with("L5", json!({"tier": "Gold", "seats": "10", "vip": 1}))).await.unwrap();
    let l6 = create(with("L6", json!({"ratio": 0.25, "tags": ["gold"], "region": "emea"}))).await.unwrap();
    crm.create::<Lead>(&globex.owner_scope, with("Theirs", json!({"tier": "gold"}))).await.unwrap();
    let id = |l: &Lead| l.meta.id.uuid();
    let cf = |pairs: &[(&str, Value)]| Filter {
        custom_fields: pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        ..Filter::default()
    };

    assert_eq!(listed::<Lead>(&crm, s, cf(&[("tier", json!("gold"))])).await, [id(&l3), id(&l1)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("tier", json!("Gold"))])).await, [id(&l5)], "exact strings");
    assert!(listed::<Lead>(&crm, s, cf(&[("tier", json!("bronze"))])).await.is_empty());
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("seats", json!(10))])).await, [id(&l2), id(&l1)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("seats", json!("10"))])).await, [id(&l5)], "types matter");
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("seats", json!(5))])).await, [id(&l3)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("vip", json!(true))])).await, [id(&l1)], "true is not 1");
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("vip", json!(false))])).await, [id(&l3)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("vip", json!(1))])).await, [id(&l5)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("ratio", json!(0.25))])).await, [id(&l6)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("region", json!("emea"))])).await, [id(&l6)]);
    assert!(listed::<Lead>(&crm, s, cf(&[("nope", json!("gold"))])).await.is_empty());
    // `null` matches a null or missing field; a list matches an equal list only.
    let all = [id(&l6), id(&l5), id(&l4), id(&l3), id(&l2), id(&l1)];
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("nope", json!(null))])).await, all, "missing is null");
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("vip", json!(null))])).await, [id(&l6), id(&l4), id(&l2)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("tags", json!(["gold"]))])).await, [id(&l6)]);
    assert!(listed::<Lead>(&crm, s, cf(&[("tags", json!("gold"))])).await.is_empty(), "a list is no string");
    assert!(listed::<Lead>(&crm, s, cf(&[("tags", json!(["gold", "x"]))])).await.is_empty());
    assert!(listed::<Lead>(&crm, s, cf(&[("tags", json!([]))])).await.is_empty());
    assert!(
        listed::<Lead>(&crm, s, cf(&[("tier", json!(["gold"]))])).await.is_empty(),
        "a string is no list"
    );
    let both = cf(&[("tier", json!("gold")), ("seats", json!(10))]);
    assert_eq!(listed::<Lead>(&crm, s, both).await, [id(&l1)], "every pair must match");
    let and_status = Filter { status: Some(LeadStatus::New), ..cf(&[("seats", json!(5))]) };
    assert_eq!(listed::<Lead>(&crm, s, and_status).await, [id(&l3)]);
    assert!(!listed::<Lead>(&crm, s, Filter::default()).await.is_empty());
    let _ = l4;

    // Updates and deletions are reflected.
    let regold = LeadPatch { custom_fields: Some(fields(json!({"tier": "gold"}))), ..LeadPatch::default() };
    crm.update(s, l2.meta.id, Some(1), regold).await.unwrap();
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("tier", json!("gold"))])).await, [id(&l3), id(&l2), id(&l1)]);
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("seats", json!(10))])).await, [id(&l1)]);
    crm.delete(s, l1.meta.id, None).await.unwrap();
    assert_eq!(listed::<Lead>(&crm, s, cf(&[("tier", json!("gold"))])).await, [id(&l3), id(&l2)]);

    // Other kinds filter the same way.
    let emea = NewDeal { custom_fields: fields(json!({"region": "emea"})), ..deal("EMEA deal") };
    let emea = crm.create::<Deal>(s, emea).await.unwrap();
    let apac = NewDeal { custom_fields: fields(json!({"region": "apac"})), ..deal("APAC deal") };
    crm.create::<Deal>(s, apac).await.unwrap();
    assert_eq!(listed::<Deal>(&crm, s, cf(&[("region", json!("emea"))])).await, [emea.meta.id.uuid()]);
    let c = NewContact { custom_fields: fields(json!({"newsletter": true})), ..person("Ann", "Lee") };
    let c = crm.create::<Contact>(s, c).await.unwrap();
    crm.create::<Contact>(s, person("Bob", "Roe")).await.unwrap();
    assert_eq!(listed::<Contact>(&crm, s, cf(&[("newsletter", json!(true))])).await, [c.meta.id.uuid()]);
    let a = NewAccount { custom_fields: fields(json!({"size": 500})), ..account("Big Corp") };
    let a = crm.create::<Account>(s, a).await.unwrap();
    assert_eq!(listed::<Account>(&crm, s, cf(&[("size", json!(500))])).await, [a.meta.id.uuid()]);
}

// ---------------------------------------------------------------------------------------------
// Deals and pipelines

/// A deal without pipeline or stage lands in the default pipeline's first stage, with one stage-history entry.
pub async fn deal_defaults_to_default_pipeline(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let sales = crm.pipelines(s).await.unwrap().remove(0);
    let renewals = crm.create_pipeline(s, renewals_pipeline()).await.unwrap();
    assert!(!renewals.is_default, "only the tenant's first pipeline is its default");

    let d = crm.create::<Deal>(s, deal("Default deal")).await.unwrap();
    assert_eq!(d.pipeline_id, sales.meta.id);
    assert_eq!(d.stage, "prospecting");
    assert_eq!(d.closed_at, None);
    assert_eq!(d.owner_id, Some(acme.owner.id));
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d);
    let history = crm.stage_history(s, d.meta.id).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let entry: &StageChange = &history[0];
    assert_eq!(entry.deal_id, d.meta.id);
    assert_eq!(entry.pipeline_id, sales.meta.id);
    assert_eq!(entry.from_stage, None);
    assert_eq!(entry.to_stage, "prospecting");
    assert_eq!(entry.actor, Actor::User(acme.owner.id));
    assert_eq!(entry.at, d.meta.created_at);
    assert_eq!(entry.tenant_id, acme.tenant.id);

    // A stage without a pipeline is a stage of the default pipeline.
    let staged = crm.create::<Deal>(s, NewDeal { stage: Some("proposal".into()), ..deal("Staged") }).await;
    let staged = staged.unwrap();
    assert_eq!((staged.pipeline_id, staged.stage.as_str()), (sales.meta.id, "proposal"));
    let history = crm.stage_history(s, staged.meta.id).await.unwrap();
    assert_eq!(
        history.iter().map(|h| (h.from_stage.as_deref(), h.to_stage.as_str())).collect::<Vec<_>>(),
        [(None, "proposal")]
    );

    // A pipeline without a stage means its first stage.
    let renewal = NewDeal { pipeline_id: Some(renewals.meta.id), ..deal("Renewal") };
    let renewal = crm.create::<Deal>(s, renewal).await.unwrap();
    assert_eq!((renewal.pipeline_id, renewal.stage.as_str()), (renewals.meta.id, "renewal"));
    assert_eq!(crm.stage_history(s, renewal.meta.id).await.unwrap()[0].pipeline_id, renewals.meta.id);

    // A deal created in a closing stage is closed at once.
    let won =
        crm.create::<Deal>(s, NewDeal { stage: Some("won".into()), ..deal("Done deal") }).await.unwrap();
    assert_eq!(won.closed_at, Some(won.meta.created_at));
    assert_eq!(crm.get(s, won.meta.id).await.unwrap(), won);
}

/// Stage moves bump the version, append (from, to, actor) to the stage history, audit as StageChanged, and closing stages set `closed_at`.
pub async fn deal_stage_moves_are_recorded(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let (manager, ms) = join(&crm, s, "manager@acme.example", Role::Manager).await;
    let d = crm.create::<Deal>(s, deal("Moving deal")).await.unwrap();

    let qualified = crm.move_deal_to_stage(s, d.meta.id, Some(1), "qualification").await.unwrap();
    assert_eq!(qualified.stage, "qualification");
    assert_eq!(qualified.meta.version, 2);
    assert_eq!(qualified.closed_at, None);
    let renamed = DealPatch { name: Some("Moving deal (renamed)".into()), ..DealPatch::default() };
    let renamed = crm.update(s, d.meta.id, Some(2), renamed).await.unwrap();
    assert_eq!(renamed.stage, "qualification");
    let won = crm.move_deal_to_stage(&ms, d.meta.id, Some(3), "won").await.unwrap();
    assert_eq!(won.stage, "won");
    assert_eq!(won.meta.version, 4);
    assert_eq!(won.closed_at, Some(won.meta.updated_at));
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), won);

    let history = crm.stage_history(s, d.meta.id).await.unwrap();
    let moves: Vec<_> =
        history.iter().map(|h| (h.from_stage.as_deref(), h.to_stage.as_str(), h.actor, h.at)).collect();
    assert_eq!(
        moves,
        [
            (None, "prospecting", Actor::User(acme.owner.id), d.meta.created_at),
            (Some("prospecting"), "qualification", Actor::User(acme.owner.id), qualified.meta.updated_at),
            (Some("qualification"), "won", Actor::User(manager.user.id), won.meta.updated_at),
        ]
    );
    assert!(history.iter().all(|h| h.deal_id == d.meta.id && h.pipeline_id == d.pipeline_id));

    let audit = audit_of(&crm, s, d.meta.id.uuid()).await;
    assert_eq!(
        actions(&audit),
        [AuditAction::StageChanged, AuditAction::Updated, AuditAction::StageChanged, AuditAction::Created]
    );
    let to_qualification = &audit[2];
    assert_eq!(to_qualification.changes.before, fields(json!({"stage": "prospecting"})));
    assert_eq!(to_qualification.changes.after, fields(json!({"stage": "qualification"})));
    let to_won = &audit[0];
    assert_eq!(to_won.actor, Actor::User(manager.user.id));
    assert_eq!(to_won.changes.before, fields(json!({"stage": "qualification", "closed_at": null})));
    assert_eq!(to_won.changes.after.get("stage"), Some(&json!("won")));
    assert!(to_won.changes.after.contains_key("closed_at"), "{:?}", to_won.changes);

    // A stage change through a plain update is a move like any other.
    let other = crm.create::<Deal>(s, deal("Other deal")).await.unwrap();
    let patch = DealPatch { stage: Some("lost".into()), probability: Some(Some(0)), ..DealPatch::default() };
    let lost = crm.update(&ms, other.meta.id, Some(1), patch).await.unwrap();
    assert_eq!(lost.closed_at, Some(lost.meta.updated_at));
    assert_eq!(crm.stage_history(s, other.meta.id).await.unwrap().len(), 2);
    assert_eq!(audit_of(&crm, s, other.meta.id.uuid()).await[0].action, AuditAction::StageChanged);
}

/// Deals in a won or lost stage cannot move any more (Validation on `stage`), though other fields stay editable.
pub async fn terminal_stages_are_final(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let renewals = crm.create_pipeline(s, renewals_pipeline()).await.unwrap();
    let d = crm.create::<Deal>(s, deal("Winner")).await.unwrap();
    let won = crm.move_deal_to_stage(s, d.meta.id, Some(1), "won").await.unwrap();

    for stage in ["proposal", "lost", "prospecting"] {
        assert_invalid(crm.move_deal_to_stage(s, d.meta.id, Some(2), stage).await, &["stage"]);
    }
    let patch = DealPatch { stage: Some("negotiation".into()), ..DealPatch::default() };
    assert_invalid(crm.update(s, d.meta.id, Some(2), patch).await, &["stage"]);
    let elsewhere = DealPatch {
        pipeline_id: Some(renewals.meta.id),
        stage: Some("renewal".into()),
        ..DealPatch::default()
    };
    assert_invalid(crm.update(s, d.meta.id, Some(2), elsewhere).await, &["stage"]);
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), won);
    assert_eq!(crm.stage_history(s, d.meta.id).await.unwrap().len(), 2);

    // Other fields may still change; the deal stays closed.
    let patch = DealPatch { name: Some("Winner (signed)".into()), ..DealPatch::default() };
    let renamed = crm.update(s, d.meta.id, Some(2), patch).await.unwrap();
    assert_eq!(renamed.stage, "won");
    assert_eq!(renamed.closed_at, won.closed_at);
    assert_eq!(crm.stage_history(s, d.meta.id).await.unwrap().len(), 2);

    // Lost is final too, also in other pipelines and when created there.
    let l = crm.create::<Deal>(s, deal("Loser")).await.unwrap();
    crm.move_deal_to_stage(s, l.meta.id, Some(1), "lost").await.unwrap();
    assert_invalid(crm.move_deal_to_stage(s, l.meta.id, Some(2), "prospecting").await, &["stage"]);
    assert_invalid(crm.move_deal_to_stage(s, l.meta.id, Some(2), "won").await, &["stage"]);
    let churned =
        NewDeal { pipeline_id: Some(renewals.meta.id), stage: Some("churned".into()), ..deal("Gone") };
    let churned = crm.create::<Deal>(s, churned).await.unwrap();
    assert!(churned.closed_at.is_some());
    assert_invalid(crm.move_deal_to_stage(s, churned.meta.id, Some(1), "renewal").await, &["stage"]);
    assert_eq!(crm.get(s, churned.meta.id).await.unwrap(), churned);
}

/// Unknown stage keys are a Validation error on `stage`, unknown pipelines one on `pipeline_id`.
pub async fn unknown_stage_is_rejected(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let renewals = crm.create_pipeline(s, renewals_pipeline()).await.unwrap();

    assert_invalid(
        crm.create::<Deal>(s, NewDeal { stage: Some("nope".into()), ..deal("X") }).await,
        &["stage"],
    );
    let random_pipeline = NewDeal { pipeline_id: Some(unknown(1)), ..deal("X") };
    assert_invalid(crm.create::<Deal>(s, random_pipeline).await, &["pipeline_id"]);
    let random_with_stage =
        NewDeal { pipeline_id: Some(unknown(1)), stage: Some("prospecting".into()), ..deal("X") };
    assert_invalid(crm.create::<Deal>(s, random_with_stage).await, &["pipeline_id"]);
    let wrong_pipeline =
        NewDeal { pipeline_id: Some(renewals.meta.id), stage: Some("prospecting".into()), ..deal("X") };
    assert_invalid(crm.create::<Deal>(s, wrong_pipeline).await, &["stage"]);

    let d = crm.create::<Deal>(s, deal("Real deal")).await.unwrap();
    assert_invalid(crm.move_deal_to_stage(s, d.meta.id, Some(1), "nope").await, &["stage"]);
    assert_invalid(crm.move_deal_to_stage(s, d.meta.id, Some(1), "").await, &["stage"]);
    assert_invalid(crm.move_deal_to_stage(s, d.meta.id, Some(1), "Prospecting ").await, &["stage"]);
    assert_invalid(crm.move_deal_to_stage(s, d.meta.id, Some(1), "renewal").await, &["stage"]);
    let to_random = DealPatch { pipeline_id: Some(unknown(2)), ..DealPatch::default() };
    assert_invalid(crm.update(s, d.meta.id, Some(1), to_random).await, &["pipeline_id"]);
    let keep_stage = DealPatch { pipeline_id: Some(renewals.meta.id), ..DealPatch::default() };
    assert_invalid(crm.update(s, d.meta.id, Some(1), keep_stage).await, &["stage"]);

    // Nothing changed.
    assert_eq!(listed::<Deal>(&crm, s, Filter::default()).await, [d.meta.id.uuid()]);
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d);
    assert_eq!(crm.stage_history(s, d.meta.id).await.unwrap().len(), 1);

    // Moving to another pipeline together with one of its stages is fine.
    let both = DealPatch {
        pipeline_id: Some(renewals.meta.id),
        stage: Some("negotiating".into()),
        ..DealPatch::default()
    };
    let moved = crm.update(s, d.meta.id, Some(1), both).await.unwrap();
    assert_eq!((moved.pipeline_id, moved.stage.as_str()), (renewals.meta.id, "negotiating"));
    let history = crm.stage_history(s, d.meta.id).await.unwrap();
    assert_eq!(
        history.last().map(|h| (h.pipeline_id, h.to_stage.as_str())),
        Some((renewals.meta.id, "negotiating"))
    );
}

/// Money needs an ISO 4217 code and a non-negative amount; probability is 0–100.
pub async fn money_and_probability_validation(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let priced = |amount: Money| NewDeal { amount: Some(amount), ..deal("Priced") };
    let likely = |p: i32| NewDeal { probability: Some(p), ..deal("Likely") };
    let create = |new: NewDeal| crm.create::<Deal>(s, new);

    for currency in ["EURO", "eur", "XXX", "", "E"] {
        assert_invalid(create(priced(money(100, currency))).await, &["amount.currency"]);
    }
    assert_invalid(create(priced(money(-1, "EUR"))).await, &["amount.amount_minor"]);
    assert_invalid(create(priced(money(-5, "eur"))).await, &["amount.amount_minor", "amount.currency"]);
    assert_invalid(create(likely(101)).await, &["probability"]);
    assert_invalid(create(likely(-1)).await, &["probability"]);
    assert!(listed::<Deal>(&crm, s, Filter::default()).await.is_empty(), "nothing written");

    let zero = create(NewDeal { probability: Some(0), ..priced(money(0, "EUR")) }).await.unwrap();
    let sure = create(likely(100)).await.unwrap();
    let huge = create(priced(money(9_007_199_254_740_993, "JPY"))).await.unwrap();
    assert_eq!(crm.get(s, zero.meta.id).await.unwrap(), zero);
    assert_eq!(crm.get(s, sure.meta.id).await.unwrap().probability, Some(100));
    let read = crm.get(s, huge.meta.id).await.unwrap();
    assert_eq!(read.amount, Some(money(9_007_199_254_740_993, "JPY")), "money is exact integers");

    // Updates are checked the same way.
    let usd = DealPatch { amount: Some(Some(money(5, "usd"))), ..DealPatch::default() };
    assert_invalid(crm.update(s, zero.meta.id, Some(1), usd).await, &["amount.currency"]);
    let certain = DealPatch { probability: Some(Some(150)), ..DealPatch::default() };
    assert_invalid(crm.update(s, zero.meta.id, Some(1), certain).await, &["probability"]);
    assert_eq!(crm.get(s, zero.meta.id).await.unwrap(), zero);
    let fine = DealPatch {
        amount: Some(Some(money(5, "USD"))),
        probability: Some(Some(55)),
        ..DealPatch::default()
    };
    let fine = crm.update(s, zero.meta.id, Some(1), fine).await.unwrap();
    assert_eq!((fine.amount, fine.probability), (Some(money(5, "USD")), Some(55)));

    // A conversion's deal is checked too, with the field named inside the input.
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let input = ConvertLead { deal: Some(likely(101)), ..ConvertLead::default() };
    assert_invalid(crm.convert_lead(s, lead.meta.id, input).await, &["deal.probability"]);
}

// ---------------------------------------------------------------------------------------------
// Conversion

/// Converting a lead creates its contact (with the lead's person and custom fields), account and deal together, linked.
pub async fn lead_conversion_creates_records_atomically(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let sales = crm.pipelines(s).await.unwrap().remove(0);
    let (member, _) = join(&crm, s, "member@acme.example", Role::Member).await;
    let new = NewLead {
        first_name: Some("Jane".into()),
        last_name: Some("Doe".into()),
        email: Some("jane@acme-corp.example".into()),
        phone: Some("+1 555 0100".into()),
        company: Some("Acme Corp".into()),
        title: Some("CTO".into()),
        source: Some("web".into()),
        status: Some(LeadStatus::Qualified),
        owner_id: Some(member.user.id),
        custom_fields: fields(json!({"tier": "gold", "seats": 25})),
    };
    let lead = crm.create::<Lead>(s, new).await.unwrap();
    let input = ConvertLead {
        account: Some(NewAccount { domain: Some("acme-corp.example".into()), ..account("Acme Corp") }),
        deal: Some(NewDeal { amount: Some(money(5_000_000, "USD")), ..deal("Acme rollout") }),
        contact: None,
    };
    let conv = crm.convert_lead(s, lead.meta.id, input).await.unwrap();
    let acct = conv.account.clone().expect("an account");
    let d = conv.deal.clone().expect("a deal");
    let c = &conv.contact;

    assert_eq!(c.first_name, lead.first_name);
    assert_eq!(c.last_name, lead.last_name);
    assert_eq!(c.email, lead.email);
    assert_eq!(c.phone, lead.phone);
    assert_eq!(c.title, lead.title);
    assert_eq!(c.custom_fields, lead.custom_fields);
    assert_eq!(c.account_id, Some(acct.meta.id));
    assert_eq!(c.owner_id, Some(member.user.id), "the lead's owner keeps the contact");
    assert_eq!(acct.name, "Acme Corp");
    assert_eq!(acct.domain.as_deref(), Some("acme-corp.example"));
    assert_eq!(d.account_id, Some(acct.meta.id));
    assert_eq!(d.contact_id, Some(c.meta.id));
    assert_eq!(d.pipeline_id, sales.meta.id);
    assert_eq!(d.stage, "prospecting");
    assert_eq!(d.amount, Some(money(5_000_000, "USD")));
    assert_eq!(d.owner_id, Some(member.user.id));

    let converted = &conv.lead;
    assert_eq!(converted.status, LeadStatus::Converted);
    assert_eq!(converted.converted_contact_id, Some(c.meta.id));
    assert_eq!(converted.meta.version, 2);
    assert!(converted.meta.updated_at > lead.meta.updated_at);
    assert_eq!((&converted.first_name, &converted.company), (&lead.first_name, &lead.company));

    // Everything is readable as returned.
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), *converted);
    assert_eq!(crm.get(s, c.meta.id).await.unwrap(), *c);
    assert_eq!(crm.get(s, acct.meta.id).await.unwrap(), acct);
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d);
    assert_eq!(crm.stage_history(s, d.meta.id).await.unwrap().len(), 1);
    let at_acct = Filter { account_id: Some(acct.meta.id), ..Filter::default() };
    assert_eq!(listed::<Contact>(&crm, s, at_acct.clone()).await, [c.meta.id.uuid()]);
    assert_eq!(listed::<Deal>(&crm, s, at_acct).await, [d.meta.id.uuid()]);

    // One audit entry per record, all at the same instant.
    let lead_audit = audit_of(&crm, s, lead.meta.id.uuid()).await;
    assert_eq!(actions(&lead_audit), [AuditAction::Converted, AuditAction::Created]);
    assert_eq!(lead_audit[0].changes.after.get("status"), Some(&json!("converted")));
    assert_eq!(lead_audit[0].changes.before.get("status"), Some(&json!("qualified")));
    for id in [c.meta.id.uuid(), acct.meta.id.uuid(), d.meta.id.uuid()] {
        let entries = audit_of(&crm, s, id).await;
        assert_eq!(actions(&entries), [AuditAction::Created]);
        assert_eq!(entries[0].at, lead_audit[0].at);
    }

    // Without account and deal, only the contact is made.
    let plain = crm.create::<Lead>(s, NewLead { email: Some("solo@example.com".into()), ..named("Solo") });
    let plain = plain.await.unwrap();
    let conv2 = crm.convert_lead(s, plain.meta.id, ConvertLead::default()).await.unwrap();
    assert_eq!((conv2.account, conv2.deal), (None, None));
    assert_eq!(conv2.contact.account_id, None);
    assert_eq!(conv2.contact.owner_id, Some(acme.owner.id));
    // With a deal but no account, the deal links the contact only.
    let third = crm.create::<Lead>(s, named("Third")).await.unwrap();
    let only_deal = ConvertLead { deal: Some(deal("Third deal")), ..ConvertLead::default() };
    let conv3 = crm.convert_lead(s, third.meta.id, only_deal).await.unwrap();
    let d3 = conv3.deal.expect("a deal");
    assert_eq!((d3.account_id, d3.contact_id), (None, Some(conv3.contact.meta.id)));
    assert_eq!(listed::<Contact>(&crm, s, Filter::default()).await.len(), 3);
    assert_eq!(listed::<Account>(&crm, s, Filter::default()).await.len(), 1);
    assert_eq!(listed::<Deal>(&crm, s, Filter::default()).await.len(), 2);
}

/// A lead converts once: a second conversion is a Conflict, and of two concurrent ones exactly one succeeds.
pub async fn lead_converts_only_once(crm: Crm) {
    let (crm, gate) = gated(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Once")).await.unwrap();
    let first = crm.convert_lead(s, lead.meta.id, ConvertLead::default()).await.unwrap();
    let with_account = || ConvertLead { account: Some(account("Twice Corp")), ..ConvertLead::default() };
    assert_err!(crm.convert_lead(s, lead.meta.id, with_account()).await, Error::Conflict(Conflict::Guard(_)));
    assert_err!(
        crm.convert_lead(s, lead.meta.id, ConvertLead::default()).await,
        Error::Conflict(Conflict::Guard(_))
    );
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), first.lead);
    assert_eq!(listed::<Contact>(&crm, s, Filter::default()).await, [first.contact.meta.id.uuid()]);
    assert!(listed::<Account>(&crm, s, Filter::default()).await.is_empty());

    // Two conversions of one lead race to commit: the store lets exactly one win, atomically.
    let racy = crm.create::<Lead>(s, named("Racy")).await.unwrap();
    let (x, y) = race(
        &gate,
        crm.convert_lead(s, racy.meta.id, with_account()),
        crm.convert_lead(s, racy.meta.id, ConvertLead::default()),
    )
    .await;
    let winner = match (&x, &y) {
        (Ok(w), Err(Error::Conflict(Conflict::StaleVersion)))
        | (Err(Error::Conflict(Conflict::StaleVersion)), Ok(w)) => w.clone(),
        _ => panic!("expected exactly one conversion and one Conflict, got {x:?} and {y:?}"),
    };
    assert_eq!(crm.get(s, racy.meta.id).await.unwrap(), winner.lead);
    assert_eq!(winner.lead.converted_contact_id, Some(winner.contact.meta.id));
    let contacts = listed::<Contact>(&crm, s, Filter::default()).await;
    assert_eq!(
        contacts,
        [winner.contact.meta.id.uuid(), first.contact.meta.id.uuid()],
        "the loser wrote nothing"
    );
    let accounts = listed::<Account>(&crm, s, Filter::default()).await;
    assert_eq!(accounts, winner.account.iter().map(|a| a.meta.id.uuid()).collect::<Vec<_>>());
    let audit = audit_of(&crm, s, racy.meta.id.uuid()).await;
    assert_eq!(actions(&audit), [AuditAction::Converted, AuditAction::Created]);
}

/// A conversion that fails validation writes nothing: no records, no audit entries, no events, lead untouched.
pub async fn failed_conversion_writes_nothing(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead =
        crm.create::<Lead>(s, NewLead { first_name: Some("Jane".into()), ..named("Doe") }).await.unwrap();
    let audit_before = audit_count(&crm, s).await;
    let outbox_before = crm.outbox(s, None, 1000).await.unwrap().len();

    let bad_deal = ConvertLead {
        account: Some(account("Acme Corp")),
        deal: Some(NewDeal { amount: Some(money(100, "euro")), ..deal("Acme deal") }),
        contact: None,
    };
    assert_invalid(crm.convert_lead(s, lead.meta.id, bad_deal).await, &["deal.amount.currency"]);
    let bad_account =
        ConvertLead { account: Some(account(" ")), deal: Some(deal("Acme deal")), contact: None };
    assert_invalid(crm.convert_lead(s, lead.meta.id, bad_account).await, &["account.name"]);
    let bad_stage = ConvertLead {
        account: Some(account("Acme Corp")),
        deal: Some(NewDeal { stage: Some("nope".into()), ..deal("Acme deal") }),
        contact: None,
    };
    assert_invalid(crm.convert_lead(s, lead.meta.id, bad_stage).await, &["deal.stage"]);

    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);
    assert!(listed::<Contact>(&crm, s, Filter::default()).await.is_empty());
    assert!(listed::<Account>(&crm, s, Filter::default()).await.is_empty());
    assert!(listed::<Deal>(&crm, s, Filter::default()).await.is_empty());
    assert_eq!(audit_count(&crm, s).await, audit_before);
    assert_eq!(crm.outbox(s, None, 1000).await.unwrap().len(), outbox_before);

    // The lead is still convertible.
    let good =
        ConvertLead { account: Some(account("Acme Corp")), deal: Some(deal("Acme deal")), contact: None };
    let conv = crm.convert_lead(s, lead.meta.id, good).await.unwrap();
    assert_eq!(conv.lead.meta.version, 2);
    assert_eq!(audit_count(&crm, s).await, audit_before + 4);
}

// ---------------------------------------------------------------------------------------------
// Activities and timelines

/// An activity needs exactly one existing target record, and a subject or a body.
pub async fn activities_need_exactly_one_target(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let d = crm.create::<Deal>(s, deal("Deal")).await.unwrap();
    let targets = ["lead_id", "contact_id", "account_id", "deal_id"];
    let assert_target_error = |result: Result<Activity>| match &result {
        Err(err @ Error::Validation(_)) => {
            let named: Vec<&str> = err.field_errors().iter().map(|f| f.field.as_str()).collect();
            assert!(
                !named.is_empty() && named.iter().all(|f| targets.contains(f)),
                "expected an error on the target fields, got {result:?}"
            );
        }
        _ => panic!("expected a validation error on the target, got {result:?}"),
    };

    let mut none = note(ActivityTarget::Lead(lead.meta.id), "Nowhere");
    none.lead_id = None;
    assert_target_error(crm.create::<Activity>(s, none).await);
    let mut two = note(ActivityTarget::Lead(lead.meta.id), "Twice");
    two.deal_id = Some(d.meta.id);
    assert_target_error(crm.create::<Activity>(s, two).await);
    let mut four = note(ActivityTarget::Lead(lead.meta.id), "Everywhere");
    four.deal_id = Some(d.meta.id);
    four.contact_id = Some(unknown(1));
    four.account_id = Some(unknown(2));
    assert_target_error(crm.create::<Activity>(s, four).await);

    for (target, field) in [
        (ActivityTarget::Lead(unknown(3)), "lead_id"),
        (ActivityTarget::Contact(unknown(4)), "contact_id"),
        (ActivityTarget::Account(unknown(5)), "account_id"),
        (ActivityTarget::Deal(unknown(6)), "deal_id"),
        // An id of the wrong kind is no better than a random one.
        (ActivityTarget::Contact(Id::from_uuid(lead.meta.id.uuid())), "contact_id"),
    ] {
        assert_invalid(crm.create::<Activity>(s, note(target, "Lost")).await, &[field]);
    }
    let empty = NewActivity::on(ActivityTarget::Lead(lead.meta.id), ActivityKind::Call);
    assert_invalid(crm.create::<Activity>(s, empty).await, &["subject"]);
    let mut blank = note(ActivityTarget::Lead(lead.meta.id), " ");
    blank.body = Some("\n".into());
    assert_invalid(crm.create::<Activity>(s, blank).await, &["subject"]);
    let mut huge = NewActivity::on(ActivityTarget::Lead(lead.meta.id), ActivityKind::Email);
    huge.body = Some("x".repeat(20_001));
    assert_invalid(crm.create::<Activity>(s, huge).await, &["body"]);
    assert!(listed::<Activity>(&crm, s, Filter::default()).await.is_empty(), "nothing written");

    let ok = crm.create::<Activity>(s, note(ActivityTarget::Deal(d.meta.id), "Fine")).await.unwrap();
    assert_eq!(ok.target, ActivityTarget::Deal(d.meta.id));
    assert_eq!(ok.occurred_at, ok.meta.created_at, "occurred_at defaults to now");
    let clear_both = ActivityPatch { subject: Some(None), ..ActivityPatch::default() };
    assert_invalid(crm.update(s, ok.meta.id, Some(1), clear_both).await, &["subject"]);
    assert_eq!(crm.get(s, ok.meta.id).await.unwrap(), ok);
}

/// A record's timeline merges its activities and audited changes, newest first by (time, id), and pages without gaps or repeats.
pub async fn timeline_merges_activities_and_changes(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Timeline")).await.unwrap();
    let contacted = LeadPatch { status: Some(LeadStatus::Contacted), ..LeadPatch::default() };
    crm.update(s, lead.meta.id, Some(1), contacted).await.unwrap();
    let target = ActivityTarget::Lead(lead.meta.id);
    let recent = crm.create::<Activity>(s, note(target, "Called back")).await.unwrap();
    let mut past = NewActivity::on(target, ActivityKind::Meeting);
    past.subject = Some("Met at the trade fair".into());
    past.occurred_at = Some(utc(2025, 6, 1, 12));
    let past = crm.create::<Activity>(s, past).await.unwrap();
    // Noise that belongs to other records.
    let other = crm.create::<Lead>(s, named("Other")).await.unwrap();
    crm.create::<Activity>(s, note(ActivityTarget::Lead(other.meta.id), "Not ours")).await.unwrap();

    let changes = audit_of(&crm, s, lead.meta.id.uuid()).await;
    assert_eq!(actions(&changes), [AuditAction::Updated, AuditAction::Created]);
    let page = crm.timeline(s, target, None, None).await.unwrap();
    assert_eq!(page.next_cursor, None);
    let describe = |item: &TimelineItem| (item.type_name(), item.position().id);
    let got: Vec<_> = page.data.iter().map(describe).collect();
    assert_eq!(
        got,
        [
            ("activity", recent.meta.id.uuid()),
            ("change", changes[0].id.uuid()),
            ("change", changes[1].id.uuid()),
            ("activity", past.meta.id.uuid()),
        ]
    );
    assert!(page.data.windows(2).all(|w| w[0].position() > w[1].position()), "newest first");
    assert!(page.data.iter().any(|item| item.record::<Activity>().as_ref() == Some(&recent)));
    assert!(page.data.contains(&TimelineItem::Change(changes[0].clone())));

    // Any page size yields the same items, each once.
    for limit in 1..=5 {
        let (items, pages) = timeline_all(&crm, s, target, limit).await;
        assert_eq!(items, page.data, "pages of {limit}");
        assert_eq!(pages, 4usize.div_ceil(limit as usize), "pages of {limit}");
    }

    // Items that share an instant are ordered by id.
    let mut same_time = note(target, "Same instant");
    same_time.occurred_at = Some(past.occurred_at);
    let twin = crm.create::<Activity>(s, same_time).await.unwrap();
    let (items, _) = timeline_all(&crm, s, target, 1).await;
    let tail: Vec<_> = items.iter().rev().take(2).map(describe).collect();
    let (low, high) =
        if twin.meta.id < past.meta.id { (twin.meta.id, past.meta.id) } else { (past.meta.id, twin.meta.id) };
    assert_eq!(tail, [("activity", low.uuid()), ("activity", high.uuid())]);

    // Deleted activities leave; a deal's timeline shows its stage moves.
    crm.delete(s, recent.meta.id, None).await.unwrap();
    let (items, _) = timeline_all(&crm, s, target, 2).await;
    assert_eq!(items.len(), 4);
    assert!(!items.iter().any(|i| describe(i).1 == recent.meta.id.uuid()));
    let d = crm.create::<Deal>(s, deal("Timeline deal")).await.unwrap();
    crm.move_deal_to_stage(s, d.meta.id, Some(1), "proposal").await.unwrap();
    let deal_items = crm.timeline(s, ActivityTarget::Deal(d.meta.id), None, None).await.unwrap().data;
    let deal_actions: Vec<_> = deal_items
        .iter()
        .map(|i| match i {
            TimelineItem::Change(c) => c.action,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(deal_actions, [AuditAction::StageChanged, AuditAction::Created]);
}

// ---------------------------------------------------------------------------------------------
// Audit trail and outbox

/// Every successful write leaves one audit entry (actor, request id, diff of changed fields only); failed writes leave none.
pub async fn audit_entry_per_write_with_diff(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let owner = &acme.owner_scope;
    let (viewer, vs) = join(&crm, owner, "viewer@acme.example", Role::Viewer).await;
    let (member, ms) = join(&crm, owner, "member@acme.example", Role::Member).await;
    let s = owner.clone().with_request_id("req-1");
    assert_eq!(s.request_id(), Some("req-1"));

    let new = NewLead {
        first_name: Some("Jane".into()),
        phone: Some("+44 20 7946 0000".into()),
        custom_fields: fields(json!({"tier": "gold"})),
        ..named("Doe")
    };
    let lead = crm.create::<Lead>(&s, new).await.unwrap();
    let patch =
        LeadPatch { first_name: Some(Some("Janet".into())), phone: Some(None), ..LeadPatch::default() };
    let updated = crm.update(&s, lead.meta.id, Some(1), patch).await.unwrap();
    crm.delete(&s, lead.meta.id, Some(2)).await.unwrap();

    let entries = audit_of(&crm, owner, lead.meta.id.uuid()).await;
    assert_eq!(actions(&entries), [AuditAction::Deleted, AuditAction::Updated, AuditAction::Created]);
    for e in &entries {
        assert_eq!(e.actor, Actor::User(acme.owner.id));
        assert_eq!(e.request_id.as_deref(), Some("req-1"));
        assert_eq!(e.resource, Kind::Lead);
        assert_eq!(e.resource_id, lead.meta.id.uuid());
        assert_eq!(e.tenant_id, acme.tenant.id);
    }
    let (deleted, update, created) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(created.at, lead.meta.created_at);
    assert!(created.changes.before.is_empty());
    assert_eq!(created.changes.after.get("first_name"), Some(&json!("Jane")));
    assert_eq!(created.changes.after.get("last_name"), Some(&json!("Doe")));
    assert_eq!(created.changes.after.get("custom_fields"), Some(&json!({"tier": "gold"})));
    for bookkeeping in ["version", "created_at", "updated_at"] {
        assert!(!created.changes.after.contains_key(bookkeeping), "{bookkeeping} is not a change");
    }
    assert_eq!(update.at, updated.meta.updated_at);
    assert_eq!(update.changes.before, fields(json!({"first_name": "Jane", "phone": "+44 20 7946 0000"})));
    let after: BTreeSet<&str> =
        update.changes.after.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str()).collect();
    assert_eq!(after, BTreeSet::from(["first_name"]), "only changed fields: {:?}", update.changes);
    assert_eq!(update.changes.after.get("first_name"), Some(&json!("Janet")));
    assert!(deleted.at > update.at);
    assert!(deleted.changes.after.is_empty());

    // A scope without a request id records none.
    let plain = crm.create::<Lead>(owner, named("Plain")).await.unwrap();
    let plain_audit = audit_of(&crm, owner, plain.meta.id.uuid()).await;
    assert_eq!(plain_audit.len(), 1);
    assert_eq!(plain_audit[0].request_id, None);

    // Failed writes leave no entry.
    let before = audit_count(&crm, owner).await;
    let bad = LeadPatch { email: Some(Some("bad".into())), ..LeadPatch::default() };
    assert_invalid(crm.update(&s, plain.meta.id, Some(1), bad).await, &["email"]);
    assert_invalid(crm.create::<Lead>(&s, NewLead::default()).await, &["last_name"]);
    let rename = || LeadPatch { first_name: Some(Some("X".into())), ..LeadPatch::default() };
    assert_err!(
        crm.update(&s, plain.meta.id, Some(7), rename()).await,
        Error::Conflict(Conflict::StaleVersion)
    );
    assert_err!(crm.update(&vs, plain.meta.id, Some(1), rename()).await, Error::Forbidden);
    assert_err!(crm.update(&ms, plain.meta.id, Some(1), rename()).await, Error::Forbidden);
    assert_err!(crm.update(&s, lead.meta.id, Some(3), rename()).await, Error::NotFound);
    assert_err!(crm.delete(&vs, plain.meta.id, None).await, Error::Forbidden);
    assert_eq!(audit_count(&crm, owner).await, before);

    // Filters: by resource kind, by actor, by time.
    let by_member = crm.create::<Contact>(&ms, person("Mem", "Ber")).await.unwrap();
    let all = audit_all(&crm, owner, AuditQuery::default()).await;
    assert!(all.windows(2).all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id)), "newest first");
    let leads_only =
        audit_all(&crm, owner, AuditQuery { resource: Some(Kind::Lead), ..AuditQuery::default() });
    let leads_only = leads_only.await;
    assert_eq!(leads_only.len(), 4);
    assert!(leads_only.iter().all(|e| e.resource == Kind::Lead));
    let mine =
        audit_all(&crm, owner, AuditQuery { actor: Some(member.user.id), ..AuditQuery::default() }).await;
    assert_eq!(mine.iter().map(|e| e.resource_id).collect::<Vec<_>>(), [by_member.meta.id.uuid()]);
    let theirs = audit_all(&crm, owner, AuditQuery { actor: Some(viewer.user.id), ..AuditQuery::default() });
    assert!(theirs.await.is_empty());
    let by_id = AuditQuery { resource_id: Some(lead.meta.id.uuid()), ..AuditQuery::default() };
    let from = audit_all(&crm, owner, AuditQuery { from: Some(update.at), ..by_id.clone() }).await;
    assert_eq!(actions(&from), [AuditAction::Deleted, AuditAction::Updated], "from is inclusive");
    let to = audit_all(&crm, owner, AuditQuery { to: Some(update.at), ..by_id }).await;
    assert_eq!(actions(&to), [AuditAction::Created], "to is exclusive");

    // Pages of the audit log cover it exactly.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..=all.len() {
        let page = crm.audit_log(owner, AuditQuery::default(), cursor.as_deref(), Some(3)).await.unwrap();
        assert!(page.data.len() <= 3);
        paged.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages of 3 cover the audit log exactly");
}

/// The outbox holds one event per audit entry (`<kind>.<action>`), in commit order, per tenant.
pub async fn outbox_event_per_write(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let d = crm.create::<Deal>(s, deal("Deal")).await.unwrap();
    crm.move_deal_to_stage(s, d.meta.id, Some(1), "qualification").await.unwrap();
    let input = ConvertLead { account: Some(account("Doe Corp")), ..ConvertLead::default() };
    let conv = crm.convert_lead(s, lead.meta.id, input).await.unwrap();
    crm.delete(s, d.meta.id, None).await.unwrap();
    assert_invalid(crm.create::<Lead>(s, NewLead::default()).await, &["last_name"]);

    let events = crm.outbox(s, None, 1000).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tenant.created",
            "member.created",
            "pipeline.created",
            "lead.created",
            "deal.created",
            "deal.stage_changed",
            "account.created",
            "contact.created",
            "lead.converted",
            "deal.deleted",
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    assert!(events.iter().all(|e| e.tenant_id == acme.tenant.id));
    assert!(events.iter().all(|e| e.actor == Actor::User(acme.owner.id)));

    // One event per audit entry, matching it.
    let mut from_audit: Vec<(String, Kind, Uuid, DateTime<Utc>)> = audit_all(&crm, s, AuditQuery::default())
        .await
        .iter()
        .map(|e| (DomainEvent::name_for(e.resource, e.action), e.resource, e.resource_id, e.at))
        .collect();
    let mut from_outbox: Vec<_> =
        events.iter().map(|e| (e.name.clone(), e.resource, e.resource_id, e.at)).collect();
    from_audit.sort();
    from_outbox.sort();
    assert_eq!(from_outbox, from_audit);

    // Payloads are the records after the change; deletions carry none.
    let by_name = |name: &str| events.iter().find(|e| e.name == name).expect("an event");
    assert_eq!(by_name("lead.created").payload["id"], json!(lead.meta.id.uuid()));
    assert_eq!(by_name("lead.created").resource_id, lead.meta.id.uuid());
    assert_eq!(by_name("deal.stage_changed").payload["stage"], json!("qualification"));
    assert_eq!(by_name("lead.converted").payload["status"], json!("converted"));
    assert_eq!(by_name("lead.converted").payload["converted_contact_id"], json!(conv.contact.meta.id.uuid()));
    assert_eq!(by_name("deal.deleted").resource_id, d.meta.id.uuid());
    assert!(by_name("deal.deleted").payload.get("id").is_none());

    // Reading on from a position, and in small batches.
    let rest = crm.outbox(s, Some(events[3].id.uuid()), 1000).await.unwrap();
    assert_eq!(rest, events[4..]);
    assert_eq!(crm.outbox(s, None, 2).await.unwrap(), events[..2]);
    assert!(crm.outbox(s, Some(events[9].id.uuid()), 1000).await.unwrap().is_empty());

    // Each tenant has its own outbox.
    let theirs = crm.outbox(&globex.owner_scope, None, 1000).await.unwrap();
    assert_eq!(theirs.len(), 3);
    assert!(theirs.iter().all(|e| e.tenant_id == globex.tenant.id));
}

// ---------------------------------------------------------------------------------------------
// Roles

/// Viewers read everything but every write is Forbidden — before validation — and writes nothing.
pub async fn viewer_cannot_write(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let acct = crm.create::<Account>(s, account("Acme Corp")).await.unwrap();
    let contact = crm.create::<Contact>(s, person("Ann", "Lee")).await.unwrap();
    let lead = crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let d = crm.create::<Deal>(s, deal("Deal")).await.unwrap();
    let act = crm.create::<Activity>(s, note(ActivityTarget::Lead(lead.meta.id), "Hi")).await.unwrap();
    let (viewer, v) = join(&crm, s, "viewer@acme.example", Role::Viewer).await;
    let before = audit_count(&crm, s).await;

    // Reads.
    assert_eq!(crm.get(&v, lead.meta.id).await.unwrap(), lead);
    assert_eq!(crm.get(&v, contact.meta.id).await.unwrap(), contact);
    assert_eq!(crm.get(&v, acct.meta.id).await.unwrap(), acct);
    assert_eq!(crm.get(&v, d.meta.id).await.unwrap(), d);
    assert_eq!(crm.get(&v, act.meta.id).await.unwrap(), act);
    assert_eq!(listed::<Lead>(&crm, &v, Filter::default()).await, [lead.meta.id.uuid()]);
    assert_eq!(search::<Lead>(&crm, &v, "doe").await, [lead.meta.id.uuid()]);
    assert_eq!(crm.timeline(&v, ActivityTarget::Lead(lead.meta.id), None, None).await.unwrap().data.len(), 2);
    assert_eq!(crm.stage_history(&v, d.meta.id).await.unwrap().len(), 1);
    assert_eq!(crm.pipelines(&v).await.unwrap().len(), 1);
    assert_eq!(crm.members(&v).await.unwrap().len(), 2);

    // Writes, valid or not.
    assert_err!(crm.create::<Lead>(&v, named("Mine")).await, Error::Forbidden);
    assert_err!(crm.create::<Lead>(&v, NewLead::default()).await, Error::Forbidden);
    assert_err!(crm.create::<Contact>(&v, person("A", "B")).await, Error::Forbidden);
    assert_err!(crm.create::<Account>(&v, account("A")).await, Error::Forbidden);
    assert_err!(crm.create::<Deal>(&v, deal("A")).await, Error::Forbidden);
    assert_err!(
        crm.create::<Activity>(&v, note(ActivityTarget::Lead(lead.meta.id), "A")).await,
        Error::Forbidden
    );
    assert_err!(crm.update(&v, lead.meta.id, Some(1), LeadPatch::default()).await, Error::Forbidden);
    assert_err!(crm.update(&v, contact.meta.id, Some(1), ContactPatch::default()).await, Error::Forbidden);
    assert_err!(crm.update(&v, acct.meta.id, Some(1), AccountPatch::default()).await, Error::Forbidden);
    assert_err!(crm.update(&v, d.meta.id, Some(1), DealPatch::default()).await, Error::Forbidden);
    assert_err!(crm.update(&v, act.meta.id, Some(1), ActivityPatch::default()).await, Error::Forbidden);
    assert_err!(crm.delete(&v, lead.meta.id, Some(1)).await, Error::Forbidden);
    assert_err!(crm.delete(&v, contact.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.delete(&v, acct.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.delete(&v, d.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.delete(&v, act.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.move_deal_to_stage(&v, d.meta.id, Some(1), "won").await, Error::Forbidden);
    assert_err!(crm.convert_lead(&v, lead.meta.id, ConvertLead::default()).await, Error::Forbidden);
    assert_err!(crm.create_pipeline(&v, renewals_pipeline()).await, Error::Forbidden);
    let newcomer = NewMember {
        email: "new@acme.example".into(),
        name: "New".into(),
        role: Role::Viewer,
        password: None,
    };
    assert_err!(crm.add_member(&v, newcomer).await, Error::Forbidden);
    assert_err!(crm.change_role(&v, viewer.user.id, Some(1), Role::Admin).await, Error::Forbidden);
    assert_err!(crm.remove_member(&v, acme.owner.id, None).await, Error::Forbidden);
    assert_err!(crm.audit_log(&v, AuditQuery::default(), None, None).await, Error::Forbidden);
    assert_err!(crm.outbox(&v, None, 10).await, Error::Forbidden);

    // Nothing changed.
    assert_eq!(audit_count(&crm, s).await, before);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);
    assert_eq!(crm.get(s, contact.meta.id).await.unwrap(), contact);
    assert_eq!(crm.get(s, acct.meta.id).await.unwrap(), acct);
    assert_eq!(crm.get(s, d.meta.id).await.unwrap(), d);
    assert_eq!(crm.get(s, act.meta.id).await.unwrap(), act);
    assert_eq!(listed::<Lead>(&crm, s, Filter::default()).await.len(), 1);
    assert_eq!(listed::<Deal>(&crm, s, Filter::default()).await.len(), 1);
    assert_eq!(crm.pipelines(s).await.unwrap().len(), 1);
    assert_eq!(crm.members(s).await.unwrap().len(), 2);
    assert!(crm.store().user_by_email("new@acme.example").await.unwrap().is_none());
    assert_eq!(role_of(&crm.scope_for(acme.tenant.id, viewer.user.id).await.unwrap()), Some(Role::Viewer));
}

/// Members read every record and create records, but change or delete only the ones they own.
pub async fn member_edits_only_own_records(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let (member, ms) = join(&crm, s, "member@acme.example", Role::Member).await;
    let (_, mgr) = join(&crm, s, "manager@acme.example", Role::Manager).await;
    let theirs = crm.create::<Lead>(s, named("Owners")).await.unwrap();
    let their_deal = crm.create::<Deal>(s, deal("Owners deal")).await.unwrap();
    let their_note =
        crm.create::<Activity>(s, note(ActivityTarget::Lead(theirs.meta.id), "Owner note")).await;
    let their_note = their_note.unwrap();

    // Own records.
    let mine = crm.create::<Lead>(&ms, named("Mine")).await.unwrap();
    assert_eq!(mine.owner_id, Some(member.user.id));
    let rename = |name: &str| LeadPatch { first_name: Some(Some(name.into())), ..LeadPatch::default() };
    let mine2 = crm.update(&ms, mine.meta.id, Some(1), rename("Mia")).await.unwrap();
    assert_eq!(mine2.meta.version, 2);
    let my_note = crm.create::<Activity>(&ms, note(ActivityTarget::Lead(theirs.meta.id), "My note")).await;
    let my_note = my_note.unwrap();
    assert_eq!(my_note.owner_id, Some(member.user.id));
    let edit = ActivityPatch { subject: Some(Some("My edited note".into())), ..ActivityPatch::default() };
    crm.update(&ms, my_note.meta.id, Some(1), edit.clone()).await.unwrap();

    // Others' records: readable, not writable.
    assert_eq!(crm.get(&ms, theirs.meta.id).await.unwrap(), theirs);
    assert_eq!(
        listed::<Lead>(&crm, &ms, Filter::default()).await,
        [mine.meta.id.uuid(), theirs.meta.id.uuid()]
    );
    assert!(crm.timeline(&ms, ActivityTarget::Lead(theirs.meta.id), None, None).await.is_ok());
    assert_err!(crm.update(&ms, theirs.meta.id, Some(1), rename("Hijack")).await, Error::Forbidden);
    assert_err!(crm.delete(&ms, theirs.meta.id, Some(1)).await, Error::Forbidden);
    assert_err!(crm.delete(&ms, theirs.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.convert_lead(&ms, theirs.meta.id, ConvertLead::default()).await, Error::Forbidden);
    assert_err!(crm.move_deal_to_stage(&ms, their_deal.meta.id, Some(1), "won").await, Error::Forbidden);
    assert_err!(crm.update(&ms, their_note.meta.id, Some(1), edit).await, Error::Forbidden);
    assert_err!(crm.delete(&ms, their_note.meta.id, None).await, Error::Forbidden);
    assert_err!(crm.update(&ms, unknown::<Lead>(1), Some(1), rename("Ghost")).await, Error::NotFound);
    assert_err!(crm.create_pipeline(&ms, renewals_pipeline()).await, Error::Forbidden);
    assert_eq!(crm.get(s, theirs.meta.id).await.unwrap(), theirs);
    assert_eq!(crm.get(s, their_deal.meta.id).await.unwrap(), their_deal);
    assert_eq!(crm.get(s, their_note.meta.id).await.unwrap(), their_note);
    assert_eq!(audit_of(&crm, s, theirs.meta.id.uuid()).await.len(), 1);

    // A member converts and deletes their own lead; a manager edits anyone's.
    let conv = crm.convert_lead(
        &ms,
        mine.meta.id,
        ConvertLead { deal: Some(deal("My deal")), ..ConvertLead::default() },
    );
    let conv = conv.await.unwrap();
    assert_eq!(conv.contact.owner_id, Some(member.user.id));
    let own_deal = conv.deal.expect("a deal");
    crm.move_deal_to_stage(&ms, own_deal.meta.id, Some(1), "proposal").await.unwrap();
    crm.delete(&ms, mine.meta.id, Some(3)).await.unwrap();
    assert_err!(crm.get(s, mine.meta.id).await, Error::NotFound);
    crm.update(&mgr, theirs.meta.id, Some(1), rename("Managed")).await.unwrap();
    crm.move_deal_to_stage(&mgr, their_deal.meta.id, Some(1), "won").await.unwrap();
}

/// Only owners and admins read the audit log and the outbox; managers, members and viewers are Forbidden.
pub async fn admin_only_audit_log(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    crm.create::<Lead>(s, named("Doe")).await.unwrap();
    let (_, admin) = join(&crm, s, "admin@acme.example", Role::Admin).await;
    let (_, manager) = join(&crm, s, "manager@acme.example", Role::Manager).await;
    let (_, member) = join(&crm, s, "member@acme.example", Role::Member).await;
    let (_, viewer) = join(&crm, s, "viewer@acme.example", Role::Viewer).await;

    let as_owner = crm.audit_log(s, AuditQuery::default(), None, None).await.unwrap();
    let as_admin = crm.audit_log(&admin, AuditQuery::default(), None, None).await.unwrap();
    assert!(!as_owner.data.is_empty());
    assert_eq!(as_admin, as_owner);
    assert_eq!(crm.outbox(&admin, None, 100).await.unwrap(), crm.outbox(s, None, 100).await.unwrap());
    for scope in [&manager, &member, &viewer] {
        assert_err!(crm.audit_log(scope, AuditQuery::default(), None, None).await, Error::Forbidden);
        let own = AuditQuery { actor: scope.user_id(), ..AuditQuery::default() };
        assert_err!(crm.audit_log(scope, own, None, None).await, Error::Forbidden);
        assert_err!(crm.outbox(scope, None, 100).await, Error::Forbidden);
    }
}

// ---------------------------------------------------------------------------------------------
// Members

/// Adding, re-adding, changing and removing members: users are shared across tenants, versions are checked, only owners grant `owner`.
pub async fn member_management(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let add = async |scope: &Scope, email: &str, role| {
        let new = NewMember { email: email.into(), name: "Ann Lee".into(), role, password: None };
        crm.add_member(scope, new).await
    };

    let ann = add(s, "Ann.Lee@Example.com", Role::Member).await.unwrap();
    assert_eq!(ann.user.email, "ann.lee@example.com", "e-mail addresses are stored lower-case");
    assert_eq!(ann.user.name, "Ann Lee");
    assert_eq!((ann.role, ann.version), (Role::Member, 1));
    assert_eq!(crm.store().user(ann.user.id).await.unwrap(), Some(ann.user.clone()));
    let members = crm.members(s).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.user.id, m.role)).collect::<Vec<_>>(),
        [(acme.owner.id, Role::Owner), (ann.user.id, Role::Member)]
    );
    assert_eq!(members[1], ann);

    // The same person in another tenant is the same user, with a role of its own there.
    let ann_g = crm
        .add_member(
            &globex.owner_scope,
            NewMember {
                email: "ann.lee@example.com".into(),
                name: "Another Name".into(),
                role: Role::Viewer,
                password: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(ann_g.user, ann.user, "the existing user, unchanged");
    assert_eq!(ann_g.role, Role::Viewer);
    assert_eq!(role_of(&crm.scope_for(globex.tenant.id, ann.user.id).await.unwrap()), Some(Role::Viewer));
    assert_eq!(role_of(&crm.scope_for(acme.tenant.id, ann.user.id).await.unwrap()), Some(Role::Member));

    // Duplicates and bad input.
    assert_err!(add(s, "ANN.LEE@example.com", Role::Admin).await, Error::Conflict(Conflict::Unique { ref field }) if field == "user_id");
    assert_invalid(add(s, "nope", Role::Member).await, &["email"]);
    let nameless =
        NewMember { email: "x@example.com".into(), name: " ".into(), role: Role::Member, password: None };
    assert_invalid(crm.add_member(s, nameless).await, &["name"]);
    assert_eq!(crm.members(s).await.unwrap().len(), 2);

    // Role changes are versioned.
    let ann2 = crm.change_role(s, ann.user.id, Some(1), Role::Manager).await.unwrap();
    assert_eq!((ann2.role, ann2.version, ann2.user.id), (Role::Manager, 2, ann.user.id));
    assert_eq!(role_of(&crm.scope_for(acme.tenant.id, ann.user.id).await.unwrap()), Some(Role::Manager));
    assert_eq!(role_of(&crm.scope_for(globex.tenant.id, ann.user.id).await.unwrap()), Some(Role::Viewer));
    assert_err!(
        crm.change_role(s, ann.user.id, Some(1), Role::Admin).await,
        Error::Conflict(Conflict::StaleVersion)
    );
    assert_err!(crm.change_role(s, globex.owner.id, Some(1), Role::Admin).await, Error::NotFound);
    assert_err!(crm.remove_member(s, globex.owner.id, None).await, Error::NotFound);

    // Admins manage members, but not owners.
    let (admin, admin_scope) = join(&crm, s, "admin@acme.example", Role::Admin).await;
    assert_err!(add(&admin_scope, "boss@example.com", Role::Owner).await, Error::Forbidden);
    assert!(crm.store().user_by_email("boss@example.com").await.unwrap().is_none());
    assert_err!(crm.change_role(&admin_scope, ann.user.id, Some(2), Role::Owner).await, Error::Forbidden);
    assert_err!(crm.change_role(&admin_scope, acme.owner.id, Some(1), Role::Admin).await, Error::Forbidden);
    assert_err!(crm.remove_member(&admin_scope, acme.owner.id, None).await, Error::Forbidden);
    let ann3 = crm.change_role(&admin_scope, ann.user.id, Some(2), Role::Viewer).await.unwrap();
    assert_eq!((ann3.role, ann3.version), (Role::Viewer, 3));
    let helper = add(&admin_scope, "helper@example.com", Role::Member).await.unwrap();
    assert_eq!(helper.role, Role::Member);

    // Managers and below do not manage members.
    let (_, manager) = join(&crm, s, "manager@acme.example", Role::Manager).await;
    assert_err!(add(&manager, "m2@example.com", Role::Viewer).await, Error::Forbidden);
    assert_err!(crm.change_role(&manager, ann.user.id, Some(3), Role::Member).await, Error::Forbidden);
    assert_err!(crm.remove_member(&manager, ann.user.id, None).await, Error::Forbidden);

    // Removal is versioned, ends access to this tenant only, and keeps the user.
    assert_err!(crm.remove_member(s, ann.user.id, Some(2)).await, Error::Conflict(Conflict::StaleVersion));
    crm.remove_member(s, ann.user.id, Some(3)).await.unwrap();
    assert_err!(crm.scope_for(acme.tenant.id, ann.user.id).await, Error::Forbidden);
    assert_eq!(role_of(&crm.scope_for(globex.tenant.id, ann.user.id).await.unwrap()), Some(Role::Viewer));
    assert!(!crm.members(s).await.unwrap().iter().any(|m| m.user.id == ann.user.id));
    assert_eq!(crm.store().user(ann.user.id).await.unwrap(), Some(ann.user.clone()));
    assert_err!(crm.remove_member(s, ann.user.id, None).await, Error::NotFound);
    assert_err!(crm.change_role(s, ann.user.id, Some(3), Role::Member).await, Error::NotFound);

    // A former member can be added again.
    let back = add(s, "ann.lee@example.com", Role::Member).await.unwrap();
    assert_eq!((back.user.id, back.role, back.version), (ann.user.id, Role::Member, 1));
    assert_eq!(role_of(&crm.scope_for(acme.tenant.id, ann.user.id).await.unwrap()), Some(Role::Member));
    let history = audit_all(
        &crm,
        s,
        AuditQuery {
            resource: Some(Kind::Member),
            resource_id: Some(ann.user.id.uuid()),
            ..AuditQuery::default()
        },
    );
    assert_eq!(
        actions(&history.await),
        [
            AuditAction::Created,
            AuditAction::Deleted,
            AuditAction::Updated,
            AuditAction::Updated,
            AuditAction::Created
        ]
    );
    let _ = admin;
}

/// A tenant always keeps an owner: demoting or removing the last one is a Conflict.
pub async fn last_owner_is_kept(crm: Crm) {
    let (crm, gate) = gated(&crm);
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let first = acme.owner.id;

    assert_err!(crm.change_role(s, first, Some(1), Role::Admin).await, Error::Conflict(Conflict::Guard(_)));
    assert_err!(crm.remove_member(s, first, None).await, Error::Conflict(Conflict::Guard(_)));
    assert_err!(crm.remove_member(s, first, Some(1)).await, Error::Conflict(Conflict::Guard(_)));
    assert_eq!(owners(&crm, s).await, [first]);
    assert_eq!(member_version(&crm, s, first).await, 1);
    let (_, admin) = join(&crm, s, "admin@acme.example", Role::Admin).await;
    assert_err!(crm.change_role(&admin, first, Some(1), Role::Admin).await, Error::Forbidden);

    // With a second owner, the first may step down.
    let (second, second_scope) = join(&crm, s, "second@acme.example", Role::Owner).await;
    assert_eq!(second.role, Role::Owner);
    let stepped_down = crm.change_role(s, first, Some(1), Role::Admin).await.unwrap();
    assert_eq!((stepped_down.role, stepped_down.version), (Role::Admin, 2));
    assert_eq!(owners(&crm, s).await, [second.user.id]);
    let demoted = crm.scope_for(acme.tenant.id, first).await.unwrap();
    assert_eq!(role_of(&demoted), Some(Role::Admin));
    assert_err!(crm.change_role(&demoted, second.user.id, Some(1), Role::Admin).await, Error::Forbidden);

    // Now the second is the last owner.
    assert_err!(
        crm.remove_member(&second_scope, second.user.id, None).await,
        Error::Conflict(Conflict::Guard(_))
    );
    assert_err!(
        crm.change_role(&second_scope, second.user.id, Some(1), Role::Viewer).await,
        Error::Conflict(Conflict::Guard(_))
    );
    crm.change_role(&second_scope, first, Some(2), Role::Owner).await.unwrap();
    crm.remove_member(&second_scope, second.user.id, None).await.unwrap();
    assert_eq!(owners(&crm, s).await, [first]);

    // Two owners demoting each other at once both see another owner when they read; the commit
    // must still refuse the second demotion (`Guard::TenantKeepsAnOwner`).
    let first_scope = crm.scope_for(acme.tenant.id, first).await.unwrap();
    let (third, third_scope) = join(&crm, &first_scope, "third@acme.example", Role::Owner).await;
    let first_version = member_version(&crm, s, first).await;
    let (x, y) = race(
        &gate,
        crm.change_role(&first_scope, third.user.id, Some(1), Role::Admin),
        crm.change_role(&third_scope, first, Some(first_version), Role::Admin),
    )
    .await;
    let left = owners(&crm, s).await;
    assert_eq!(left.len(), 1, "concurrent demotions must leave exactly one owner: {x:?}, {y:?}");
    match (&x, &y) {
        (Ok(m), Err(Error::Conflict(Conflict::Guard(_)))) => {
            assert_eq!((m.user.id, left[0]), (third.user.id, first))
        }
        (Err(Error::Conflict(Conflict::Guard(_))), Ok(m)) => {
            assert_eq!((m.user.id, left[0]), (first, third.user.id))
        }
        _ => panic!("expected one demotion and one Conflict, got {x:?} and {y:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hooks and sinks

/// A store shared with another [`Crm`], whose commits a test can make fail or hold back.
#[derive(Debug)]
struct SharedStore {
    inner: Arc<dyn Store>,
    fail_commits: Arc<AtomicBool>,
    gate: Arc<Gate>,
}

/// Holds commits back until every party of a race has reached its commit (or finished without
/// one), so that racing operations have all done their reads before any of them writes — the
/// interleaving that a store's version checks exist for, made deterministic.
#[derive(Debug, Default)]
struct Gate {
    parties: AtomicUsize,
    arrived: AtomicUsize,
    open: AtomicBool,
    opened: Notify,
}

impl Gate {
    /// Waits at the gate, if a race is on.
    async fn pass(&self) {
        let parties = self.parties.load(Ordering::SeqCst);
        if parties == 0 {
            return;
        }
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= parties {
            return self.release();
        }
        loop {
            let mut opened = pin!(self.opened.notified());
            opened.as_mut().enable();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }

    /// Lets every waiting commit through.
    fn release(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.opened.notify_waiters();
    }
}

/// Runs two operations against a [`gated`] CRM so that both finish their reads before either
/// commits; an operation that ends without committing opens the gate for the other.
async fn race<A, B>(gate: &Gate, a: impl Future<Output = A>, b: impl Future<Output = B>) -> (A, B) {
    gate.open.store(false, Ordering::SeqCst);
    gate.arrived.store(0, Ordering::SeqCst);
    gate.parties.store(2, Ordering::SeqCst);
    let a = async {
        let out = a.await;
        gate.release();
        out
    };
    let b = async {
        let out = b.await;
        gate.release();
        out
    };
    let out = tokio::join!(a, b);
    gate.parties.store(0, Ordering::SeqCst);
    out
}

/// A deterministic CRM over the same store as `crm` whose commits can be gated for [`race`].
/// Cases that use it use it for everything, so that its ids alone order their records.
fn gated(crm: &Crm) -> (Crm, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let store = SharedStore { inner: crm.store().clone(), fail_commits: Arc::default(), gate: gate.clone() };
    let crm = Crm::builder(store)
        .clock(SteppingClock::starting_at(utc(2026, 1, 1, 9)))
        .ids(SequentialIds::new(3))
        .build();
    (crm, gate)
}

#[async_trait]
impl RecordStore for SharedStore {
    async fn get(&self, scope: &Scope, kind: Kind, id: Uuid) -> Result<Option<Entity>> {
        self.inner.get(scope, kind, id).await
    }
    async fn list(&self, scope: &Scope, query: &ListQuery) -> Result<Vec<Entity>> {
        self.inner.list(scope, query).await
    }
    async fn commit(&self, scope: &Scope, changes: ChangeSet) -> Result<()> {
        self.gate.pass().await;
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("commit refused by the conformance test".into()));
        }
        self.inner.commit(scope, changes).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

crate::delegate_store!(SharedStore => inner: IdentityStore, HistoryStore, IdempotencyStore, JobStore, RetentionStore,
    WebhookStore);

/// What a [`Witness`] saw, and whether it was already committed when it saw it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Audit { id: Uuid, committed: bool },
    Event { id: Uuid, committed: bool },
}

/// An audit sink and event hook that records what it receives and checks the store already has it.
#[derive(Debug, Clone)]
struct Witness {
    store: Arc<dyn Store>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Witness {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("witness log"))
    }
}

#[async_trait]
impl AuditSink for Witness {
    async fn record(&self, entry: &AuditEntry) {
        let scope = Scope::system(entry.tenant_id);
        let query = AuditQuery { resource_id: Some(entry.resource_id), ..AuditQuery::default() };
        let stored = self.store.audit_log(&scope, &query, None, 1000).await;
        let committed = stored.is_ok_and(|rows| rows.iter().any(|r| r.id == entry.id));
        self.seen.lock().expect("witness log").push(Seen::Audit { id: entry.id.uuid(), committed });
    }
}

#[async_trait]
impl EventHook for Witness {
    async fn on_event(&self, event: &DomainEvent) {
        let scope = Scope::system(event.tenant_id);
        let stored = self.store.outbox(&scope, None, 1000).await;
        let committed = stored.is_ok_and(|rows| rows.iter().any(|r| r.id == event.id));
        self.seen.lock().expect("witness log").push(Seen::Event { id: event.id.uuid(), committed });
    }
}

/// Audit sinks and event hooks receive every entry and event once, after commit, in commit order — and nothing from failed writes.
pub async fn hooks_and_sinks_run_after_commit(crm: Crm) {
    // The case gets a Crm without hooks, so it builds a second one over the same store.
    let fail = Arc::new(AtomicBool::new(false));
    let witness = Witness { store: crm.store().clone(), seen: Arc::default() };
    let store = SharedStore { inner: crm.store().clone(), fail_commits: fail.clone(), gate: Arc::default() };
    let hooked = Crm::builder(store)
        .clock(SteppingClock::starting_at(utc(2026, 2, 1, 9)))
        .ids(SequentialIds::new(2))
        .audit_sink(witness.clone())
        .event_hook(witness.clone())
        .build();
    let expect_seen = |audit: &[AuditEntry], events: &[DomainEvent]| -> Vec<Seen> {
        let mut audit: Vec<&AuditEntry> = audit.iter().collect();
        audit.sort_by_key(|e| (e.at, e.id));
        let entries = audit.iter().map(|e| Seen::Audit { id: e.id.uuid(), committed: true });
        entries.chain(events.iter().map(|e| Seen::Event { id: e.id.uuid(), committed: true })).collect()
    };

    let acme = tenant(&hooked, "Acme").await;
    let s = &acme.owner_scope;
    let events = crm.outbox(s, None, 1000).await.unwrap();
    let audit = audit_all(&crm, s, AuditQuery::default()).await;
    assert_eq!(events.len(), 3);
    assert_eq!(witness.take(), expect_seen(&audit, &events), "tenant creation");

    let lead = hooked.create::<Lead>(s, named("Doe")).await.unwrap();
    let new_events = crm.outbox(s, Some(events[2].id.uuid()), 1000).await.unwrap();
    let lead_audit = audit_of(&crm, s, lead.meta.id.uuid()).await;
    assert_eq!(witness.take(), expect_seen(&lead_audit, &new_events), "lead creation");
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead, "both CRMs share the store");

    // Failed writes reach no sink and no hook.
    assert_invalid(hooked.create::<Lead>(s, NewLead::default()).await, &["last_name"]);
    assert_err!(hooked.update(s, lead.meta.id, Some(9), LeadPatch::default()).await, Error::Conflict(_));
    let (_, viewer) = join(&hooked, s, "viewer@acme.example", Role::Viewer).await;
    witness.take();
    assert_err!(hooked.create::<Lead>(&viewer, named("Nope")).await, Error::Forbidden);
    fail.store(true, Ordering::SeqCst);
    assert_err!(hooked.create::<Lead>(s, named("Lost")).await, Error::Unavailable(_));
    assert_err!(hooked.convert_lead(s, lead.meta.id, ConvertLead::default()).await, Error::Unavailable(_));
    fail.store(false, Ordering::SeqCst);
    assert_eq!(witness.take(), [], "failed writes are not reported");
    assert_eq!(listed::<Lead>(&crm, s, Filter::default()).await, [lead.meta.id.uuid()]);
    assert_eq!(crm.get(s, lead.meta.id).await.unwrap(), lead);

    // A write of several records reports them all, in commit order.
    let seen_before = crm.outbox(s, None, 1000).await.unwrap();
    let input =
        ConvertLead { account: Some(account("Doe Corp")), deal: Some(deal("Doe deal")), contact: None };
    hooked.convert_lead(s, lead.meta.id, input).await.unwrap();
    let after = crm.outbox(s, seen_before.last().map(|e| e.id.uuid()), 1000).await.unwrap();
    let names: Vec<&str> = after.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["account.created", "contact.created", "deal.created", "lead.converted"]);
    let entries: Vec<AuditEntry> =
        audit_all(&crm, s, AuditQuery { from: Some(after[0].at), ..AuditQuery::default() })
            .await
            .into_iter()
            .filter(|e| after.iter().any(|ev| ev.resource_id == e.resource_id))
            .collect();
    assert_eq!(entries.len(), 4);
    assert_eq!(witness.take(), expect_seen(&entries, &after), "conversion");
}

// ---------------------------------------------------------------------------------------------
// Pipelines

/// Pipelines need a name, 1–30 stages with unique valid keys and an open stage; only owners and admins create them.
pub async fn pipelines_validation(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    let stage = |key: &str, kind| NewStage { key: key.into(), name: format!("Stage {key}"), kind };
    let pipeline = |name: &str, stages: Vec<NewStage>| NewPipeline { name: name.into(), stages };
    let open = |key: &str| stage(key, StageKind::Open);

    assert_invalid(crm.create_pipeline(s, pipeline("Empty", vec![])).await, &["stages"]);
    let dup = pipeline("Dup", vec![open("a"), open("b"), open("a")]);
    assert_invalid(crm.create_pipeline(s, dup).await, &["stages[2].key"]);
    let bad_key = pipeline("Bad", vec![open("Bad Key"), open("ok")]);
    assert_invalid(crm.create_pipeline(s, bad_key).await, &["stages[0].key"]);
    let long_key = "k".repeat(65);
    for key in ["", "UPPER", "dash-ed", long_key.as_str()] {
        let bad = pipeline("Bad", vec![open("ok"), open(key)]);
        assert_invalid(crm.create_pipeline(s, bad).await, &["stages[1].key"]);
    }
    let closed = pipeline("Closed", vec![stage("won", StageKind::Won), stage("lost", StageKind::Lost)]);
    assert_invalid(crm.create_pipeline(s, closed).await, &["stages"]);
    assert_invalid(crm.create_pipeline(s, pipeline(" ", vec![open("a")])).await, &["name"]);
    let nameless_stage = NewStage { name: String::new(), ..open("a") };
    assert_invalid(crm.create_pipeline(s, pipeline("P", vec![nameless_stage])).await, &["stages[0].name"]);
    let too_long: Vec<NewStage> = (0..31).map(|i| open(&format!("s{i}"))).collect();
    assert_invalid(crm.create_pipeline(s, pipeline("Long", too_long)).await, &["stages"]);
    assert_eq!(crm.pipelines(s).await.unwrap().len(), 1, "nothing written");

    // Owners and admins create pipelines; others may not, whatever the input.
    for role in [Role::Manager, Role::Member, Role::Viewer] {
        let (_, scope) = join(&crm, s, &format!("{}@acme.example", role.as_str()), role).await;
        assert_err!(crm.create_pipeline(&scope, renewals_pipeline()).await, Error::Forbidden);
        assert_err!(crm.create_pipeline(&scope, pipeline("", vec![])).await, Error::Forbidden);
        assert_eq!(crm.pipelines(&scope).await.unwrap().len(), 1, "{role:?} can read pipelines");
    }
    let (_, admin) = join(&crm, s, "admin@acme.example", Role::Admin).await;
    let renewals = crm.create_pipeline(&admin, renewals_pipeline()).await.unwrap();
    assert_eq!(renewals.name, "Renewals");
    assert!(!renewals.is_default);
    assert_eq!(renewals.stages, renewals_pipeline().stages);
    assert_eq!(renewals.meta.version, 1);
    let thirty: Vec<NewStage> = (0..30).map(|i| open(&format!("s{i}"))).collect();
    let longest = crm.create_pipeline(s, pipeline("Thirty", thirty)).await.unwrap();
    let all = crm.pipelines(s).await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Sales", "Renewals", "Thirty"], "oldest first");
    assert_eq!(all.iter().filter(|p| p.is_default).count(), 1);
    assert_eq!(crm.pipeline(s, renewals.meta.id).await.unwrap(), renewals);
    assert_eq!(crm.pipeline(s, longest.meta.id).await.unwrap().stages.len(), 30);
    assert_err!(crm.pipeline(s, unknown(1)).await, Error::NotFound);
    assert_eq!(actions(&audit_of(&crm, s, renewals.meta.id.uuid()).await), [AuditAction::Created]);

    // Deals live in the new pipeline with its own stages.
    let in_renewals = |stage: Option<&str>| NewDeal {
        pipeline_id: Some(renewals.meta.id),
        stage: stage.map(Into::into),
        ..deal("Renewal")
    };
    let d = crm.create::<Deal>(s, in_renewals(None)).await.unwrap();
    assert_eq!(d.stage, "renewal");
    assert_invalid(crm.create::<Deal>(s, in_renewals(Some("prospecting"))).await, &["stage"]);
    let d2 = crm.move_deal_to_stage(s, d.meta.id, Some(1), "negotiating").await.unwrap();
    let d3 = crm.move_deal_to_stage(s, d.meta.id, Some(2), "renewed").await.unwrap();
    assert_eq!(d3.closed_at, Some(d3.meta.updated_at));
    assert_eq!(d2.closed_at, None);
    let history = crm.stage_history(s, d.meta.id).await.unwrap();
    let moves: Vec<_> = history.iter().map(|h| (h.from_stage.as_deref(), h.to_stage.as_str())).collect();
    assert_eq!(
        moves,
        [(None, "renewal"), (Some("renewal"), "negotiating"), (Some("negotiating"), "renewed")]
    );
    assert_eq!(crm.create::<Deal>(s, deal("Default")).await.unwrap().stage, "prospecting");

    // Pipelines are per tenant.
    let g = &globex.owner_scope;
    assert_err!(crm.pipeline(g, renewals.meta.id).await, Error::NotFound);
    assert_eq!(crm.pipelines(g).await.unwrap().len(), 1);
    assert_invalid(crm.create::<Deal>(g, in_renewals(None)).await, &["pipeline_id"]);
}
