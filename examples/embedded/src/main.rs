//! Embeds crm on SQLite: a tenant, a team, leads, a conversion, a won deal, and its timeline.

use crm_core::model::{
    Activity, ActivityKind, ActivityTarget, Deal, Lead, LeadStatus, Money, NewAccount, NewActivity, NewDeal,
    NewLead, NewMember, NewTenant, NewUser,
};
use crm_core::{ConvertLead, Crm, ListRequest, Role, TimelineItem};
use crm_storage_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), crm_core::Error> {
    // 1. A store and the services over it. A file path persists; no argument stays in memory.
    let store = match std::env::args().nth(1) {
        Some(path) => SqliteStore::open(path).await?,
        None => SqliteStore::open_in_memory().await?,
    };
    let crm = Crm::new(store);

    // 2. A tenant with its owner (and a default sales pipeline), then a sales member.
    let acme = crm
        .create_tenant(NewTenant {
            name: "Acme Ltd".into(),
            slug: "acme".into(),
            owner: NewUser { email: "olivia@acme.example".into(), name: "Olivia Owner".into() },
        })
        .await?;
    let owner = acme.owner_scope.clone();
    let sam = crm
        .add_member(
            &owner,
            NewMember {
                email: "sam@acme.example".into(),
                name: "Sam Seller".into(),
                role: Role::Member,
                password: None,
            },
        )
        .await?;
    // The host authenticated Sam its own way; core checks the membership and fixes the role.
    let sam_scope = crm.scope_for(acme.tenant.id, sam.user.id).await?.with_request_id("demo-1");
    println!(
        "tenant {} ({}) with {} members",
        acme.tenant.name,
        acme.tenant.slug,
        crm.members(&owner).await?.len()
    );

    // 3. Sam logs two leads and qualifies one.
    let lead = crm
        .create::<Lead>(
            &sam_scope,
            NewLead {
                first_name: Some("Grace".into()),
                last_name: Some("Hopper".into()),
                email: Some("grace@navy.example".into()),
                company: Some("Navy Labs".into()),
                source: Some("conference".into()),
                ..NewLead::default()
            },
        )
        .await?;
    crm.create::<Lead>(&sam_scope, NewLead { company: Some("Babbage & Co".into()), ..NewLead::default() })
        .await?;
    let patch = crm_core::model::LeadPatch { status: Some(LeadStatus::Qualified), ..Default::default() };
    let lead = crm.update(&sam_scope, lead.meta.id, Some(lead.meta.version), patch).await?;
    let call = NewActivity {
        subject: Some("Intro call".into()),
        body: Some("Wants 40 seats; decision by March.".into()),
        ..NewActivity::on(ActivityTarget::Lead(lead.meta.id), ActivityKind::Call)
    };
    crm.create::<crm_core::model::Activity>(&sam_scope, call).await?;
    let found = crm.list::<Lead>(&sam_scope, ListRequest::new().q("navy")).await?;
    println!("search \"navy\" finds {} lead(s)", found.data.len());

    // 4. Convert the lead: contact + account + deal, in one transaction.
    let conversion = crm
        .convert_lead(
            &sam_scope,
            lead.meta.id,
            ConvertLead {
                account: Some(NewAccount { name: "Navy Labs".into(), ..NewAccount::default() }),
                deal: Some(NewDeal {
                    name: "Navy Labs — 40 seats".into(),
                    amount: Some(Money { amount_minor: 4_800_000, currency: "EUR".into() }),
                    ..NewDeal::default()
                }),
                ..ConvertLead::default()
            },
        )
        .await?;
    let mut deal: Deal = conversion.deal.expect("a deal was asked for");
    println!(
        "converted into contact {} and deal {} at stage {}",
        conversion.contact.meta.id, deal.name, deal.stage
    );

    // 5. Move the deal along the pipeline to won.
    for stage in ["qualification", "proposal", "negotiation", "won"] {
        deal = crm.move_deal_to_stage(&sam_scope, deal.meta.id, Some(deal.meta.version), stage).await?;
    }
    println!("deal closed at {:?}", deal.closed_at);

    // 6. The lead's timeline (its activities and changes) and the deal's stage history.
    println!("\ntimeline of lead {}:", lead.meta.id);
    let timeline = crm.timeline(&owner, ActivityTarget::Lead(lead.meta.id), None, None).await?;
    for item in &timeline.data {
        if let Some(a) = item.record::<Activity>() {
            println!(
                "  {}  {:<8} {}",
                a.occurred_at.format("%H:%M:%S%.3f"),
                a.kind.as_str(),
                a.subject.as_deref().unwrap_or("")
            );
        } else if let TimelineItem::Change(c) = item {
            println!(
                "  {}  {:<8} {}",
                c.at.format("%H:%M:%S%.3f"),
                c.action.as_str(),
                serde_json::to_string(&c.changes.after).unwrap_or_default()
            );
        }
    }
    println!("\nstage history of deal {}:", deal.meta.id);
    for change in crm.stage_history(&owner, deal.meta.id).await? {
        println!("  {} → {}", change.from_stage.as_deref().unwrap_or("(created)"), change.to_stage);
    }
    Ok(())
}
