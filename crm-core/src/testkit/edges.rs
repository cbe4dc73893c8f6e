//! Conformance cases for inputs at the edges: unusual words in search, out-of-range times,
//! oversized filters — each must get the same answer from every store, never an internal error.

use chrono::{NaiveDate, TimeZone, Utc};

use crate::error::{Conflict, Error};
use crate::model::{Activity, ActivityKind, ActivityTarget, Deal, Lead, NewActivity, NewDeal, NewLead};
use crate::service::{Crm, ListRequest};
use crate::store::Filter;
use crate::{AuditQuery, FieldError};

use super::tenant;

fn fields(result: &Error) -> Vec<String> {
    result.field_errors().iter().map(|f: &FieldError| f.field.clone()).collect()
}

/// Search treats letters and digits of every script alike on every store: `x²y`, `ab½c` and
/// `josé` are single words, found by their prefixes and not by their inner parts.
pub async fn search_words_are_the_same_on_every_store(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    for name in ["x²y", "ab½c", "José Ñandú", "Straße", "東京 Tokyo"] {
        crm.create::<Lead>(s, NewLead { last_name: Some(name.into()), ..NewLead::default() }).await.unwrap();
    }
    let crm = &crm;
    let found = |q: &'static str| async move {
        let page = crm.list::<Lead>(s, ListRequest::new().q(q)).await.unwrap();
        let mut names: Vec<String> = page.data.into_iter().filter_map(|l| l.last_name).collect();
        names.sort();
        names
    };
    assert_eq!(found("x²").await, ["x²y"]);
    assert!(found("y").await.is_empty(), "the inside of a word is not a word");
    assert_eq!(found("ab½").await, ["ab½c"]);
    assert!(found("c").await.is_empty());
    assert_eq!(found("JOSÉ").await, ["José Ñandú"]);
    assert!(found("jose").await.is_empty(), "accents are kept, on every store");
    assert_eq!(found("ñan").await, ["José Ñandú"]);
    assert_eq!(found("stra").await, ["Straße"]);
    assert_eq!(found("東京").await, ["東京 Tokyo"]);
    assert_eq!(found("tok").await, ["東京 Tokyo"]);
}

/// Long words are found by any prefix a query can hold (terms are cut to 64 characters); words
/// alike in their first 64 characters, on one record or on two, find each record once.
pub async fn long_words_are_found_by_their_prefixes(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let stem = "x".repeat(100);
    let both = NewLead {
        first_name: Some(format!("{stem}alpha")),
        last_name: Some(format!("{stem}beta")),
        ..NewLead::default()
    };
    let both = crm.create::<Lead>(s, both).await.unwrap().meta.id.uuid();
    let one = NewLead { last_name: Some(format!("{stem}gamma")), ..NewLead::default() };
    let one = crm.create::<Lead>(s, one).await.unwrap().meta.id.uuid();
    let crm = &crm;
    let found = |q: String| async move {
        let page = crm.list::<Lead>(s, ListRequest::new().q(q)).await.unwrap();
        page.data.into_iter().map(|l| l.meta.id.uuid()).collect::<Vec<_>>()
    };
    assert_eq!(found("x".repeat(10)).await, [one, both]);
    assert_eq!(found("x".repeat(64)).await, [one, both]);
    assert_eq!(found(format!("{stem}beta")).await, [one, both], "the term is cut to 64 characters");
    assert!(found("y".repeat(70)).await.is_empty());
}

/// Times and dates outside the years 1–9999 are refused naming the field, everywhere.
pub async fn out_of_range_times_are_validation_errors(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead =
        crm.create::<Lead>(s, NewLead { company: Some("Acme".into()), ..NewLead::default() }).await.unwrap();
    let ancient = Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).single().unwrap();
    let new = NewActivity {
        subject: Some("Call".into()),
        occurred_at: Some(ancient),
        ..NewActivity::on(ActivityTarget::Lead(lead.meta.id), ActivityKind::Call)
    };
    let err = crm.create::<Activity>(s, new).await.unwrap_err();
    assert_eq!(fields(&err), ["occurred_at"]);
    let deal = NewDeal {
        name: "Old".into(),
        expected_close_date: NaiveDate::from_ymd_opt(-6000, 1, 1),
        ..NewDeal::default()
    };
    assert_eq!(fields(&crm.create::<Deal>(s, deal).await.unwrap_err()), ["expected_close_date"]);
    let filter = Filter { created_after: Some(ancient), ..Filter::default() };
    let err = crm.list::<Lead>(s, ListRequest::new().filter(filter)).await.unwrap_err();
    assert_eq!(fields(&err), ["created_after"]);
    let query = AuditQuery { from: Some(ancient), ..AuditQuery::default() };
    assert_eq!(fields(&crm.audit_log(s, query, None, None).await.unwrap_err()), ["from"]);
}

/// Custom-field filters are capped, so no query grows past what a store accepts.
pub async fn too_many_filters_are_refused(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let many = (0..2_000).map(|i| (format!("f{i}"), serde_json::json!(i))).collect();
    let filter = Filter { custom_fields: many, ..Filter::default() };
    let err = crm.list::<Lead>(s, ListRequest::new().filter(filter)).await.unwrap_err();
    assert!(fields(&err).contains(&"custom_fields".to_owned()), "{err:?}");
}

/// A lead with only a company converts when the caller names the contact; without a name it
/// is refused naming the contact field, and nothing is written.
pub async fn company_only_lead_converts_with_a_named_contact(crm: Crm) {
    use crate::model::{Contact, NewContact};
    use crate::service::ConvertLead;
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let lead = crm
        .create::<Lead>(s, NewLead { company: Some("Navy Labs".into()), ..NewLead::default() })
        .await
        .unwrap();
    let err = crm.convert_lead(s, lead.meta.id, ConvertLead::default()).await.unwrap_err();
    assert_eq!(fields(&err), ["contact.last_name"]);
    assert!(crm.list::<Contact>(s, ListRequest::new()).await.unwrap().data.is_empty());
    let named = NewContact {
        first_name: Some("Grace".into()),
        last_name: Some("Hopper".into()),
        ..NewContact::default()
    };
    let input = ConvertLead { contact: Some(named), ..ConvertLead::default() };
    let conversion = crm.convert_lead(s, lead.meta.id, input).await.unwrap();
    assert_eq!(conversion.contact.last_name.as_deref(), Some("Hopper"));
    assert_eq!(conversion.lead.converted_contact_id, Some(conversion.contact.meta.id));
}

/// Pipelines can be renamed and restaged by admins; a stage that holds live deals cannot be
/// removed, and a stale version is a conflict.
pub async fn pipelines_change_but_keep_stages_in_use(crm: Crm) {
    use crate::model::{PipelinePatch, Stage, StageKind};
    let acme = tenant(&crm, "Acme").await;
    let s = &acme.owner_scope;
    let sales = crm.pipelines(s).await.unwrap().remove(0);
    let deal = crm.create::<Deal>(s, NewDeal { name: "Big".into(), ..NewDeal::default() }).await.unwrap();
    assert_eq!(deal.stage, "prospecting");
    let without_prospecting: Vec<Stage> =
        sales.stages.iter().filter(|st| st.key != "prospecting").cloned().collect();
    let patch = PipelinePatch { stages: Some(without_prospecting.clone()), ..PipelinePatch::default() };
    let err = crm.update_pipeline(s, sales.meta.id, Some(sales.meta.version), patch).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::Guard(_))), "{err:?}");

    let mut stages = sales.stages.clone();
    stages.insert(1, Stage { key: "demo".into(), name: "Demo".into(), kind: StageKind::Open });
    let patch = PipelinePatch { name: Some("New business".into()), stages: Some(stages) };
    let updated =
        crm.update_pipeline(s, sales.meta.id, Some(sales.meta.version), patch.clone()).await.unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.meta.version, updated.stages[1].key.as_str()),
        ("New business", 2, "demo")
    );
    let stale = crm.update_pipeline(s, sales.meta.id, Some(sales.meta.version), patch).await.unwrap_err();
    assert!(stale.is_stale_version(), "{stale:?}");
    let moved = crm.move_deal_to_stage(s, deal.meta.id, Some(deal.meta.version), "demo").await.unwrap();
    assert_eq!(moved.stage, "demo");

    let empty = PipelinePatch { stages: Some(Vec::new()), ..PipelinePatch::default() };
    assert_eq!(
        fields(&crm.update_pipeline(s, sales.meta.id, Some(2), empty).await.unwrap_err()),
        ["stages", "stages"]
    );
    let viewer = crate::model::NewMember {
        email: "v@acme.example".into(),
        name: "V".into(),
        role: crate::Role::Viewer,
        password: None,
    };
    let v = crm.add_member(s, viewer).await.unwrap();
    let vs = crm.scope_for(acme.tenant.id, v.user.id).await.unwrap();
    let denied = crm.update_pipeline(&vs, sales.meta.id, Some(2), PipelinePatch::default()).await;
    assert!(matches!(denied, Err(Error::Forbidden)));
}
