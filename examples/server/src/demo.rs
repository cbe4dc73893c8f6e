//! `--seed-demo`: a demo tenant with a team and realistic records, to explore the API.

use crm_core::model::{
    Account, Activity, ActivityKind, ActivityTarget, Contact, Deal, Lead, LeadStatus, Money, NewAccount,
    NewActivity, NewContact, NewDeal, NewLead, NewMember,
};
use crm_core::{Crm, ImportMode, Role};

/// The password of every demo user (printed at start; change it before exposing the server).
pub const DEMO_PASSWORD: &str = "demo password for crm";

const COMPANIES: [(&str, &str, &str); 8] = [
    ("Northwind Traders", "northwind.example", "Wholesale"),
    ("Contoso Pharma", "contoso.example", "Healthcare"),
    ("Fabrikam Robotics", "fabrikam.example", "Manufacturing"),
    ("Tailspin Air", "tailspin.example", "Aviation"),
    ("Litware Labs", "litware.example", "Software"),
    ("Adatum Energy", "adatum.example", "Energy"),
    ("Woodgrove Bank", "woodgrove.example", "Finance"),
    ("Proseware Media", "proseware.example", "Media"),
];
const PEOPLE: [(&str, &str); 10] = [
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Alan", "Turing"),
    ("Katherine", "Johnson"),
    ("Edsger", "Dijkstra"),
    ("Barbara", "Liskov"),
    ("Donald", "Knuth"),
    ("Margaret", "Hamilton"),
    ("John", "McCarthy"),
    ("Frances", "Allen"),
];

/// Creates the `demo` tenant unless it exists. Returns false when it was already there.
pub async fn seed(crm: &Crm) -> Result<bool, crm_core::Error> {
    if crm.tenant_by_slug("demo").await.is_ok() {
        return Ok(false);
    }
    let registration = crm_core::Registration {
        email: "owner@demo.example".into(),
        password: DEMO_PASSWORD.into(),
        name: "Olivia Owner".into(),
        tenant: crm_core::NewTenantInfo { name: "Demo Ltd".into(), slug: "demo".into() },
    };
    let session = crm.register(registration).await?;
    let owner = crm.authenticate(&session.access_token)?;
    for (email, name, role) in [
        ("sam@demo.example", "Sam Seller", Role::Member),
        ("mia@demo.example", "Mia Manager", Role::Manager),
        ("vic@demo.example", "Vic Viewer", Role::Viewer),
    ] {
        let member =
            NewMember { email: email.into(), name: name.into(), role, password: Some(DEMO_PASSWORD.into()) };
        crm.add_member(&owner, member).await?;
    }

    let mut accounts = Vec::new();
    for (name, domain, industry) in COMPANIES {
        let new = NewAccount {
            name: name.into(),
            domain: Some(domain.into()),
            industry: Some(industry.into()),
            ..NewAccount::default()
        };
        accounts.push(crm.create::<Account>(&owner, new).await?);
    }
    let statuses = [LeadStatus::New, LeadStatus::Contacted, LeadStatus::Qualified, LeadStatus::Unqualified];
    let leads: Vec<NewLead> = (0..60)
        .map(|i| {
            let (first, last) = PEOPLE[i % PEOPLE.len()];
            let (company, domain, _) = COMPANIES[(i * 3) % COMPANIES.len()];
            NewLead {
                first_name: Some(first.into()),
                last_name: Some(format!("{last} {}", i / PEOPLE.len() + 1)),
                email: Some(format!("{}.{}{}@{domain}", first.to_lowercase(), last.to_lowercase(), i)),
                company: Some(company.into()),
                source: Some(["web", "referral", "event", "outbound"][i % 4].into()),
                status: Some(statuses[i % statuses.len()]),
                ..NewLead::default()
            }
        })
        .collect();
    crm.import::<Lead>(&owner, leads, ImportMode::Atomic).await?;

    let stages = ["prospecting", "qualification", "proposal", "negotiation", "won", "lost"];
    for (i, account) in accounts.iter().enumerate() {
        let (first, last) = PEOPLE[i % PEOPLE.len()];
        let contact = NewContact {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(format!(
                "{}@{}",
                first.to_lowercase(),
                account.domain.as_deref().unwrap_or("example.com")
            )),
            title: Some("Head of Operations".into()),
            account_id: Some(account.meta.id),
            ..NewContact::default()
        };
        let contact = crm.create::<Contact>(&owner, contact).await?;
        let deal = NewDeal {
            name: format!("{} — platform rollout", account.name),
            amount: Some(Money { amount_minor: 1_250_000 * (i as i64 + 1), currency: "EUR".into() }),
            stage: Some(stages[i % stages.len()].into()),
            probability: Some([10, 25, 50, 75, 100, 0][i % 6]),
            account_id: Some(account.meta.id),
            contact_id: Some(contact.meta.id),
            ..NewDeal::default()
        };
        let deal = crm.create::<Deal>(&owner, deal).await?;
        let note = NewActivity {
            subject: Some("Kick-off call".into()),
            body: Some(format!("Discussed goals with {first}; next step: proposal.")),
            ..NewActivity::on(ActivityTarget::Deal(deal.meta.id), ActivityKind::Call)
        };
        crm.create::<Activity>(&owner, note).await?;
    }
    Ok(true)
}
