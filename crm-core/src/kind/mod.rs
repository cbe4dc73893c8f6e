//! Record kinds, each described once (invariant 11 of DESIGN.md).
//!
//! A [`KindDef`] says what the layers around a record type need to know about it: its wire name
//! and plural, the policy resource, its fields (one per column, in table order) with their types
//! and nullability, which lists may filter, sort or search on, which hold personal data, which
//! other kinds they reference, and which references form an "exactly one of" group. List
//! validation, store filters and HTTP query parameters derive from it instead of restating each
//! kind by hand; the domain rules of a kind (create, patch, validate, links, conversion) stay in
//! its own model file.
//!
//! The descriptions are plain public values, so that a host may one day describe a kind of its
//! own; [`Kind`] stays a closed enum for now, because audit and outbox rows decode it.
//!
//! Every kind's table starts with the meta columns (`tenant_id`, `id`, `version`, `created_at`,
//! `updated_at`, `deleted_at`), which no description lists; then one column per field (two for
//! [`FieldType::Money`], which names them); then `custom_fields` when the kind
//! carries them, and `search_words` when a field is searchable.

mod change;
pub(crate) mod condition;
mod declare;
mod row;
pub(crate) mod text;

pub use condition::Condition;
pub use row::{
    Column, ColumnSource, ColumnType, Columns, InPlace, META_COLUMNS, RecordRow, RowMeta, RowValues, Stored,
    Value,
};
pub use text::{TextRule, TextShape};

use crate::model::{ActivityKind, Kind, LeadStatus};
use crate::policy::Resource;

pub use crate::model::account::ACCOUNT;
pub use crate::model::activity::ACTIVITY;
pub use crate::model::contact::CONTACT;
pub use crate::model::deal::DEAL;
pub use crate::model::lead::LEAD;
pub use crate::model::pipeline::PIPELINE;
pub use crate::model::task::TASK;
pub use crate::model::webhook::WEBHOOK;

/// Every record kind's description, in [`Kind`] order.
pub static RECORD_KINDS: [&KindDef; 8] =
    [&PIPELINE, &LEAD, &CONTACT, &ACCOUNT, &DEAL, &ACTIVITY, &TASK, &WEBHOOK];

/// The description of one record kind.
#[derive(Debug)]
pub struct KindDef {
    /// The wire name (`lead`): the audit resource, the event prefix, the timeline target.
    pub name: &'static str,
    /// The plural (`leads`): the route segment, the table and the API tag.
    pub plural: &'static str,
    /// What records of the kind are, in a sentence: the API tag's description.
    pub about: &'static str,
    /// The Rust type's name (`Lead`), which also names its OpenAPI schema.
    pub type_name: &'static str,
    /// The kind.
    pub kind: Kind,
    /// What the policy authorizes reads and writes of it against.
    pub resource: Resource,
    /// Its own fields, in table order (the meta columns are implied).
    pub fields: &'static [FieldDef],
    /// Whether it carries a tenant-defined `custom_fields` object (filtered as `cf.<name>`).
    pub custom_fields: bool,
    /// Groups of reference fields of which one is set (an activity's target) or at most one (a
    /// task's related record).
    pub one_of: &'static [OneOf],
    /// Whether activities can be logged on it, so it has a timeline.
    pub carries_activities: bool,
    /// Whether its records appear in the timeline of the record they reference through a
    /// [`KindDef::one_of`] group (an activity, a task), and the instant that places them there:
    /// a [`FieldType::Time`] field's name, or `created_at`.
    pub timeline_at: Option<&'static str>,
    /// Groups of text fields of which at least one must be filled (not blank): a lead needs a
    /// last name, an e-mail or a company.
    pub filled_one_of: &'static [&'static [&'static str]],
    /// Filters by name that stand for conditions core works out when a list is asked for
    /// (a task's `overdue`: open and due before now).
    pub named_filters: &'static [NamedFilter],
    /// [`KindDef::columns`], worked out on first use: every row read and written walks them.
    #[doc(hidden)]
    pub column_cache: std::sync::OnceLock<Vec<row::Column>>,
}

/// Reference fields of which exactly one (`required`) or at most one is set.
#[derive(Debug)]
pub struct OneOf {
    /// The fields, in table order.
    pub fields: &'static [&'static str],
    /// Whether one must be set.
    pub required: bool,
}

impl OneOf {
    /// Whether `name` is one of the group's fields.
    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains(&name)
    }
}

/// A filter by name (`overdue=true`) that stands for conditions on a kind's fields, worked
/// out by core with its clock when a list is asked for; stores see only the conditions.
#[derive(Debug)]
pub struct NamedFilter {
    /// The query parameter.
    pub name: &'static str,
    /// What it keeps, for the API documentation.
    pub description: &'static str,
    /// Adds its conditions to a filter, as of `now`.
    pub apply: fn(now: chrono::DateTime<chrono::Utc>, filter: &mut crate::store::Filter),
}

impl KindDef {
    /// The member fields whose member owns a record for the `Own` record scope (`owner_id`,
    /// and a task's `assignee_id`).
    pub fn owner_fields(&self) -> impl Iterator<Item = &'static FieldDef> + '_ {
        self.fields.iter().filter(|f| f.owns)
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether lists may filter on the field named `name`.
    pub fn filters_on(&self, name: &str) -> bool {
        self.field(name).is_some_and(|f| f.filter)
    }

    /// Whether text search applies to it (some field is searchable).
    pub fn searchable(&self) -> bool {
        self.fields.iter().any(|f| f.search)
    }

    /// The space-separated [`crate::search::words`] of `values`, the searchable fields' values in
    /// field order: what a store indexes for text search, computed in core so that results are
    /// the same on every store.
    pub fn search_words<'a>(&self, values: impl IntoIterator<Item = Option<&'a str>>) -> String {
        let words: Vec<String> = values.into_iter().flatten().flat_map(crate::search::words).collect();
        words.join(" ")
    }

    /// The field of a [`KindDef::one_of`] group that references a record of `kind`, if any
    /// (an activity's `deal_id`).
    pub fn one_of_reference(&self, kind: Kind) -> Option<&'static FieldDef> {
        let names = self.one_of.iter().flat_map(|group| group.fields.iter());
        names.filter_map(|name| self.field(name)).find(|f| f.ty == FieldType::Ref(kind))
    }
}

impl PartialEq for KindDef {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Kind {
    /// The description of a record kind; `None` for tenants, users, members and API keys,
    /// which identity keeps in tables of its own.
    pub fn def(self) -> Option<&'static KindDef> {
        match self {
            Kind::Pipeline => Some(&PIPELINE),
            Kind::Lead => Some(&LEAD),
            Kind::Contact => Some(&CONTACT),
            Kind::Account => Some(&ACCOUNT),
            Kind::Deal => Some(&DEAL),
            Kind::Activity => Some(&ACTIVITY),
            Kind::Task => Some(&TASK),
            Kind::Webhook => Some(&WEBHOOK),
            Kind::Tenant | Kind::User | Kind::Member | Kind::ApiKey => None,
        }
    }
}

/// One field of a kind: one column of its table (two for money).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Its name on the wire and as the column.
    pub name: &'static str,
    /// What it holds.
    pub ty: FieldType,
    /// Whether it may be absent (`null`).
    pub nullable: bool,
    /// Whether lists filter on it by equality (`?name=value`).
    pub filter: bool,
    /// Whether lists may be ordered by it (served from tasks on).
    pub sort: bool,
    /// Whether text search looks at its words.
    pub search: bool,
    /// Whether it holds personal data (what erasure removes and export gathers).
    pub personal: bool,
    /// Whether the member it names owns the record for the `Own` record scope (a member field).
    pub owns: bool,
    /// Whether it holds a secret (a webhook's signing key): it never leaves the store through
    /// the record's JSON form, so no event, audit entry or response carries it, and the
    /// record's type skips it in serde.
    pub secret: bool,
    /// How much a [`FieldType::Text`] holds (see [`FieldDef::text_rule`]).
    pub text: TextShape,
    /// Who sets it.
    pub write: Writable,
    /// Values of an enum field that only the kind's own rules give it (a lead's `converted`):
    /// a record is never created holding one.
    pub rule_values: &'static [&'static str],
}

impl FieldDef {
    /// A required field a caller sets at any time, not filtered, sorted or searched.
    pub const fn new(name: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            ty,
            nullable: false,
            filter: false,
            sort: false,
            search: false,
            personal: false,
            owns: false,
            secret: false,
            text: TextShape::Line,
            write: Writable::Always,
            rule_values: &[],
        }
    }

    /// It may be absent.
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// Lists filter on it.
    pub const fn filter(mut self) -> Self {
        self.filter = true;
        self
    }

    /// Lists may be ordered by it.
    pub const fn sort(mut self) -> Self {
        self.sort = true;
        self
    }

    /// Text search looks at its words.
    pub const fn search(mut self) -> Self {
        self.search = true;
        self
    }

    /// It holds personal data.
    pub const fn personal(mut self) -> Self {
        self.personal = true;
        self
    }

    /// Text of several lines, up to 20 000 characters (a note's body).
    pub const fn body(mut self) -> Self {
        self.text = TextShape::Body;
        self
    }

    /// The member it names owns the record.
    pub const fn owns(mut self) -> Self {
        self.owns = true;
        self
    }

    /// It holds a secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Who sets it.
    pub const fn write(mut self, write: Writable) -> Self {
        self.write = write;
        self
    }

    /// Values only the kind's rules set.
    pub const fn rule_values(mut self, values: &'static [&'static str]) -> Self {
        self.rule_values = values;
        self
    }

    /// The values a caller may give it when creating a record: an enum's values less those
    /// only rules set (empty for other types).
    pub fn creatable_values(&self) -> Vec<&'static str> {
        match self.ty {
            FieldType::Enum(values) => {
                values.iter().copied().filter(|v| !self.rule_values.contains(v)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// What a field holds: decides its column type in every store and how a filter value parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// Text, one line or several ([`TextShape`]); a required line is never blank.
    Text,
    /// A domain name (`example.com`).
    Domain,
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// Text, one of these values.
    Enum(&'static [&'static str]),
    /// A stage key into the record's pipeline (`a-z`, `0-9`, `_`).
    Key,
    /// A 32-bit integer.
    Int,
    /// An amount in minor units and its ISO 4217 currency, in these two columns.
    Money {
        /// The amount column (`amount_minor`).
        minor: &'static str,
        /// The currency column (`currency`).
        currency: &'static str,
    },
    /// An instant, to the microsecond.
    Time,
    /// A calendar date.
    Date,
    /// True or false.
    Bool,
    /// A JSON document the kind interprets itself (a pipeline's stages).
    Json,
    /// The id of a live record of this kind in the same tenant.
    Ref(Kind),
    /// The id of a member of the tenant.
    Member,
}

/// Who sets a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// The caller, on create and on update.
    Always,
    /// The caller, on create only.
    OnCreate,
    /// Only the kind's rules (a deal's `closed_at`, a lead's `converted_contact_id`).
    Rule,
}

/// The wire names of an enum with an `ALL` array and a `const fn as_str`, in declaration
/// order, computed at compile time (so an [`FieldType::Enum`] cannot disagree with its enum).
macro_rules! wire_names {
    ($ty:ty) => {{
        let mut names = [""; <$ty>::ALL.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = <$ty>::ALL[i].as_str();
            i += 1;
        }
        names
    }};
}

/// The wire names of [`LeadStatus`].
pub(crate) const LEAD_STATUSES: [&str; LeadStatus::ALL.len()] = wire_names!(LeadStatus);

/// The wire names of [`ActivityKind`].
pub(crate) const ACTIVITY_KINDS: [&str; ActivityKind::ALL.len()] = wire_names!(ActivityKind);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{TimeZone, Utc};
    use serde::Serialize;
    use serde_json::{Value, json};
    use uuid::Uuid;

    use super::RecordRow;
    use super::*;
    use crate::model::{
        Account, Activity, ActivityTarget, Contact, Deal, Lead, Money, NewAccount, NewActivity, NewContact,
        NewDeal, NewLead, NewTask, Pipeline, Record, RecordMeta, Stage, StageKind, Task, TaskPriority,
        TaskStatus,
    };
    use crate::scope::TenantId;
    use crate::store::Entity;
    use crate::{Id, UserId};

    fn meta<T>() -> RecordMeta<T> {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        RecordMeta {
            id: Id::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            version: 1,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        }
    }

    fn id<T>(n: u128) -> Id<T> {
        Id::from_uuid(Uuid::from_u128(n))
    }

    fn text(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    /// One record of every listed kind, every field set (an activity has one target).
    fn samples() -> Vec<(&'static KindDef, Entity, Value)> {
        let owner = Some(UserId::from_uuid(Uuid::from_u128(3)));
        let lead = Lead::create(
            NewLead {
                first_name: text("Grace"),
                last_name: text("Hopper"),
                email: text("Grace.Hopper@Navy.example"),
                phone: text("+1 555 0100"),
                company: text("Navy Labs"),
                title: text("Rear Admiral"),
                source: text("web"),
                ..NewLead::default()
            },
            meta(),
            owner,
        )
        .unwrap();
        let contact = Contact::create(
            NewContact {
                first_name: text("Ada"),
                last_name: text("Lovelace"),
                email: text("ada@engines.example"),
                phone: text("+44 20 0000"),
                title: text("Analyst"),
                account_id: Some(id(4)),
                ..NewContact::default()
            },
            meta(),
            owner,
        )
        .unwrap();
        let account = Account::create(
            NewAccount {
                name: "Analytical Engines".into(),
                domain: text("engines.example"),
                industry: text("Computing"),
                ..NewAccount::default()
            },
            meta(),
            owner,
        )
        .unwrap();
        let mut deal = Deal::create(
            NewDeal {
                name: "Difference engine No. 2".into(),
                amount: Some(Money { amount_minor: 100, currency: "GBP".into() }),
                pipeline_id: Some(id(5)),
                stage: text("qualified"),
                expected_close_date: chrono::NaiveDate::from_ymd_opt(2026, 6, 1),
                probability: Some(50),
                account_id: Some(id(4)),
                contact_id: Some(id(6)),
                ..NewDeal::default()
            },
            meta(),
            owner,
        )
        .unwrap();
        deal.closed_at = Some(meta::<Deal>().created_at);
        let mut on_deal = NewActivity::on(ActivityTarget::Deal(id(7)), ActivityKind::Call);
        on_deal.subject = text("Call");
        on_deal.body = text("About engines");
        let activity = Activity::create(on_deal, meta(), owner).unwrap();
        let mut task = Task::create(
            NewTask {
                title: "Call Ada about engines".into(),
                description: text("Before the board meets"),
                due_at: Some(meta::<Task>().created_at),
                priority: Some(TaskPriority::High),
                status: Some(TaskStatus::Done),
                assignee_id: owner,
                contact_id: Some(id(6)),
                ..NewTask::default()
            },
            meta(),
            owner,
        )
        .unwrap();
        task.custom_fields.insert("effort".into(), json!(3));
        let pipeline = Pipeline {
            meta: meta(),
            name: "Sales".into(),
            is_default: true,
            stages: vec![Stage { key: "won".into(), name: "Won".into(), kind: StageKind::Won }],
        };
        let new = crate::model::NewWebhook {
            url: "https://hooks.example/crm".into(),
            event_types: vec!["deal.*".into(), "lead.created".into()],
            description: text("Deals to the warehouse"),
            enabled: Some(false),
        };
        let mut webhook = crate::model::Webhook::create(new, meta(), owner).unwrap();
        webhook.disabled_reason = text("the endpoint answered 410 Gone");
        webhook.failing_since = Some(meta::<Task>().created_at);
        webhook.previous_secret = Some(crate::webhook::WebhookSecret::generate());
        webhook.previous_secret_expires_at = Some(meta::<Task>().created_at);
        fn json(record: &impl Serialize) -> Value {
            serde_json::to_value(record).unwrap()
        }
        vec![
            (&LEAD, lead.to_entity(), json(&lead)),
            (&CONTACT, contact.to_entity(), json(&contact)),
            (&ACCOUNT, account.to_entity(), json(&account)),
            (&DEAL, deal.to_entity(), json(&deal)),
            (&ACTIVITY, activity.to_entity(), json(&activity)),
            (&PIPELINE, pipeline.to_entity(), json(&pipeline)),
            (&TASK, task.to_entity(), json(&task)),
            (&WEBHOOK, webhook.to_entity(), json(&webhook)),
        ]
    }

    #[test]
    fn every_record_kind_has_its_description() {
        for def in RECORD_KINDS {
            assert_eq!(def.kind.def(), Some(def));
            assert_eq!(def.name, def.kind.as_str());
            assert_eq!(def.resource.as_str(), def.name);
        }
        for kind in [Kind::Tenant, Kind::User, Kind::Member, Kind::ApiKey] {
            assert!(kind.def().is_none());
        }
    }

    /// The descriptions name exactly the fields a record of the kind serializes.
    #[test]
    fn descriptions_list_the_fields_records_carry() {
        let meta_keys = ["id", "version", "created_at", "updated_at"];
        for (def, _, json) in samples() {
            let keys: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
            // Secret fields are declared but never serialized.
            let mut declared: BTreeSet<&str> =
                def.fields.iter().filter(|f| !f.secret).map(|f| f.name).collect();
            declared.extend(meta_keys);
            if def.custom_fields {
                declared.insert("custom_fields");
            }
            let grouped: BTreeSet<&str> = def.one_of.iter().flat_map(|g| g.fields.iter().copied()).collect();
            assert!(keys.is_subset(&declared), "{}: undeclared {:?}", def.name, keys.difference(&declared));
            let missing: Vec<_> = declared.difference(&keys).filter(|k| !grouped.contains(*k)).collect();
            assert!(missing.is_empty(), "{}: declared but not carried: {missing:?}", def.name);
            for group in def.one_of {
                assert_eq!(
                    group.fields.iter().filter(|f| keys.contains(*f)).count(),
                    1,
                    "{}: one of {group:?}",
                    def.name
                );
                for name in group.fields {
                    assert!(def.field(name).is_some_and(|f| matches!(f.ty, FieldType::Ref(_))), "{name}");
                }
            }
            for field in def.fields.iter().filter(|f| !f.secret) {
                let value = json.get(field.name).unwrap_or(&Value::Null);
                assert!(
                    field.nullable || !value.is_null(),
                    "{}.{} is null but not nullable",
                    def.name,
                    field.name
                );
                if let FieldType::Enum(values) = field.ty {
                    assert!(values.contains(&value.as_str().unwrap()), "{}.{}", def.name, field.name);
                }
            }
        }
    }

    /// The filters the descriptions declare are today's filter table, kind by kind.
    #[test]
    fn filterable_fields_are_the_list_filters() {
        use Kind::*;
        let table: &[(&str, &[Kind])] = &[
            ("status", &[Lead, Task]),
            ("owner_id", &[Lead, Contact, Account, Deal, Activity, Task]),
            ("pipeline_id", &[Deal]),
            ("stage", &[Deal]),
            ("account_id", &[Contact, Deal, Activity, Task]),
            ("contact_id", &[Deal, Activity, Task]),
            ("lead_id", &[Activity, Task]),
            ("deal_id", &[Activity, Task]),
            ("kind", &[Activity]),
            ("priority", &[Task]),
            ("assignee_id", &[Task]),
            ("due_at", &[Task]),
        ];
        for def in RECORD_KINDS {
            let declared: BTreeSet<&str> = def.fields.iter().filter(|f| f.filter).map(|f| f.name).collect();
            let expected: BTreeSet<&str> =
                table.iter().filter(|(_, kinds)| kinds.contains(&def.kind)).map(|(name, _)| *name).collect();
            assert_eq!(declared, expected, "{}", def.name);
        }
        // An activity's target is its one-of group: every member is a filter.
        assert!(ACTIVITY.one_of[0].fields.iter().all(|f| ACTIVITY.filters_on(f)));
        assert!(ACTIVITY.one_of[0].required && !TASK.one_of[0].required);
        assert_eq!(ACTIVITY.one_of_reference(Deal).map(|f| f.name), Some("deal_id"));
        assert!(DEAL.one_of_reference(Account).is_none(), "a deal's account is no target");
        let searchable: Vec<Kind> = RECORD_KINDS.iter().filter(|d| d.searchable()).map(|d| d.kind).collect();
        assert_eq!(searchable, [Lead, Contact, Account, Deal, Task]);
        let custom: Vec<Kind> = RECORD_KINDS.iter().filter(|d| d.custom_fields).map(|d| d.kind).collect();
        assert_eq!(custom, [Lead, Contact, Account, Deal, Task]);
        // Sorted cursors encode instants: only instant fields sort.
        for def in RECORD_KINDS {
            for field in def.fields.iter().filter(|f| f.sort) {
                assert_eq!(field.ty, FieldType::Time, "{}.{} sorts", def.name, field.name);
            }
        }
        let owners = |def: &KindDef| def.owner_fields().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(owners(&TASK), ["assignee_id", "owner_id"]);
        assert_eq!(owners(&LEAD), ["owner_id"]);
        assert!(owners(&PIPELINE).is_empty());
        assert!(RECORD_KINDS.iter().flat_map(|d| d.owner_fields()).all(|f| f.ty == FieldType::Member));
        let timelines: Vec<Kind> =
            RECORD_KINDS.iter().filter(|d| d.carries_activities).map(|d| d.kind).collect();
        assert_eq!(timelines, [Lead, Contact, Account, Deal]);
    }

    /// Search words from the descriptions are what stores index today.
    #[test]
    fn searchable_fields_give_the_indexed_words() {
        // What the stores indexed when each kind listed its search words by hand.
        let indexed = [
            Some("grace hopper grace hopper navy example navy labs"),
            Some("ada lovelace ada engines example"),
            Some("analytical engines engines example"),
            Some("difference engine no 2"),
            None,
            None,
            Some("call ada about engines"),
        ];
        for ((def, entity, json), indexed) in samples().into_iter().zip(indexed) {
            let values = def.fields.iter().filter(|f| f.search).map(|f| json[f.name].as_str());
            let words = def.searchable().then(|| def.search_words(values));
            assert_eq!(words.as_deref(), indexed, "{}", def.name);
            let Entity::Record(row) = &entity else { panic!("{}: not a record entity", def.name) };
            assert_eq!(row.search_words().as_deref(), indexed, "{}: from the row", def.name);
            assert_eq!(entity.record_key(), Some((def.kind, row.meta.id)));
        }
        assert_eq!(
            json!(LEAD_STATUSES),
            json!(["new", "contacted", "qualified", "unqualified", "converted"])
        );
        assert_eq!(json!(ACTIVITY_KINDS), json!(["note", "call", "email", "meeting"]));
        // `wire_enum!` names are serde's names.
        assert_eq!(json!(TaskPriority::NAMES), json!(TaskPriority::ALL));
        assert_eq!(json!(TaskStatus::NAMES), json!(TaskStatus::ALL));
    }

    /// A record with every optional field cleared, of each kind that has any.
    fn bare(entity: &Entity) -> Entity {
        let Entity::Record(row) = entity else { panic!("not a record entity") };
        let mut bare = row.clone();
        for (column, value) in row.def.columns().zip(&mut bare.values) {
            let in_group = row.def.one_of.iter().any(|g| g.contains(column.name));
            if column.nullable && !in_group {
                *value = super::Value::Null;
            }
        }
        bare.custom_fields = bare.custom_fields.map(|_| Default::default());
        Entity::Record(bare)
    }

    fn row(entity: &Entity) -> &RecordRow {
        let Entity::Record(row) = entity else { panic!("not a record entity") };
        row
    }

    /// A kind placed in timelines names a set instant to be placed by, and references the
    /// records whose timelines it joins through a one-of group.
    #[test]
    fn timeline_kinds_name_an_instant_and_a_reference_group() {
        let placed: Vec<_> = RECORD_KINDS.iter().filter(|d| d.timeline_at.is_some()).collect();
        assert_eq!(placed.iter().map(|d| d.name).collect::<Vec<_>>(), ["activity", "task"]);
        for def in placed {
            let at = def.timeline_at.unwrap_or_default();
            let instant = def.field(at).is_some_and(|f| f.ty == FieldType::Time && !f.nullable && f.sort);
            assert!(at == "created_at" || instant, "{}: {at}", def.name);
            let timelines = RECORD_KINDS.iter().filter(|t| t.carries_activities);
            assert!(timelines.clone().all(|t| def.one_of_reference(t.kind).is_some()), "{}", def.name);
        }
    }

    /// An activity can target exactly the kinds its one-of group references.
    #[test]
    fn activity_targets_are_the_referenced_kinds() {
        let others = [Kind::Tenant, Kind::User, Kind::Member, Kind::ApiKey];
        for kind in RECORD_KINDS.iter().map(|d| d.kind).chain(others) {
            let target = ActivityTarget::from_parts(kind, Uuid::from_u128(9));
            assert_eq!(target.is_some(), ACTIVITY.one_of_reference(kind).is_some(), "{kind:?}");
            assert!(target.is_none_or(|t| t.parts() == (kind, Uuid::from_u128(9))), "{kind:?}");
        }
    }

    /// A record in a timeline is `{"type": <kind>, "item": <its serialized form>}` and reads
    /// back as its type, and only as its type.
    #[test]
    fn timeline_items_carry_the_records_serialized_form() {
        use crate::service::TimelineItem;
        for (def, entity, json) in samples() {
            let item = TimelineItem::Record(row(&entity).clone());
            assert_eq!(serde_json::to_value(&item).unwrap(), json!({ "type": def.name, "item": json }));
            assert_eq!(item.record::<Activity>().is_some(), def.kind == Kind::Activity, "{}", def.name);
        }
        let activity = samples().remove(4).1;
        let item = TimelineItem::Record(row(&activity).clone());
        assert_eq!(item.record::<Activity>(), Some(Activity::from_entity(activity).unwrap()));
    }

    /// A row's JSON form is what serde makes of the record, set or bare: events and audit
    /// entries read the same whichever way they were built.
    #[test]
    fn rows_give_the_records_serialized_form() {
        for (def, entity, json) in samples() {
            assert_eq!(row(&entity).to_json(), json, "{}", def.name);
            let bare = bare(&entity);
            let serialized = match def.kind {
                Kind::Lead => serde_json::to_value(Lead::from_entity(bare.clone()).unwrap()),
                Kind::Contact => serde_json::to_value(Contact::from_entity(bare.clone()).unwrap()),
                Kind::Account => serde_json::to_value(Account::from_entity(bare.clone()).unwrap()),
                Kind::Deal => serde_json::to_value(Deal::from_entity(bare.clone()).unwrap()),
                Kind::Activity => serde_json::to_value(Activity::from_entity(bare.clone()).unwrap()),
                Kind::Pipeline => serde_json::to_value(Pipeline::from_entity(bare.clone()).unwrap()),
                Kind::Task => serde_json::to_value(Task::from_entity(bare.clone()).unwrap()),
                Kind::Webhook => {
                    serde_json::to_value(crate::model::Webhook::from_entity(bare.clone()).unwrap())
                }
                other => panic!("not a record kind: {other:?}"),
            };
            assert_eq!(row(&bare).to_json(), serialized.unwrap(), "{} bare", def.name);
        }
    }

    /// Diffs of rows are the diffs of the serialized records: creation, deletion, an update of
    /// every field, a money amount set, an activity moved to another target.
    #[test]
    fn row_changes_are_the_serialized_changes() {
        use crate::audit::Changes;
        let empty = Value::Object(Default::default());
        for (def, entity, json) in samples() {
            let (full, bare) = (row(&entity).clone(), bare(&entity));
            let bare_json = row(&bare).to_json();
            let cases = [
                (None, Some(&full), &empty, &json),
                (Some(&full), None, &json, &empty),
                (Some(&full), Some(row(&bare)), &json, &bare_json),
                (Some(row(&bare)), Some(&full), &bare_json, &json),
            ];
            for (i, (before, after, old, new)) in cases.into_iter().enumerate() {
                let changes = Changes::between_rows(before, after);
                assert_eq!(changes, Changes::between(old, new), "{} case {i}", def.name);
                assert!(!changes.is_empty() || def.kind == Kind::Pipeline && i >= 2, "{} case {i}", def.name);
            }
            assert!(Changes::between_rows(Some(&full), Some(&full)).is_empty(), "{}", def.name);
        }
        let activity = row(&samples()[4].1).clone();
        let mut moved = activity.clone();
        let (lead, deal) = (column_of(&ACTIVITY, "lead_id"), column_of(&ACTIVITY, "deal_id"));
        moved.values[lead] = moved.values[deal].clone();
        moved.values[deal] = super::Value::Null;
        let changes = Changes::between_rows(Some(&activity), Some(&moved));
        assert_eq!(changes, Changes::between(&activity.to_json(), &moved.to_json()));
        assert_eq!(changes.after.keys().collect::<Vec<_>>(), ["deal_id", "lead_id"]);
    }

    fn column_of(def: &KindDef, name: &str) -> usize {
        def.columns().position(|c| c.name == name).unwrap()
    }

    /// Redaction clears what the description marks personal, and custom fields, and nothing else.
    #[test]
    fn redaction_clears_personal_fields() {
        use crate::audit::Changes;
        let lead = row(&samples()[0].1).clone();
        let mut changes = Changes::between_rows(None, Some(&lead));
        changes.after.insert("custom_fields".into(), json!({"ssn": "078-05-1120"}));
        changes.redact(&LEAD);
        for key in ["first_name", "last_name", "email", "phone", "custom_fields"] {
            assert_eq!(changes.after[key], Value::Null, "{key}");
        }
        assert_eq!(changes.after["company"], json!("Navy Labs"));
        assert_eq!(changes.after["status"], json!("new"));
        let personal: Vec<&str> = LEAD.fields.iter().filter(|f| f.personal).map(|f| f.name).collect();
        assert_eq!(personal, ["first_name", "last_name", "email", "phone"]);
    }

    /// Values only rules set are named once, in the description: what create refuses and what
    /// the create input offers follow from it.
    #[test]
    fn rule_values_are_not_creatable() {
        let status = LEAD.field("status").unwrap();
        assert_eq!(status.creatable_values(), ["new", "contacted", "qualified", "unqualified"]);
        assert!(ACTIVITY.fields.iter().all(|f| f.rule_values.is_empty()));
        let Entity::Record(mut row) = samples().remove(0).1 else { panic!("a lead row") };
        assert!(row.rule_held().is_empty());
        row.values[column_of(&LEAD, "status")] = super::Value::Text("converted".into());
        let held: Vec<String> = row.rule_held().into_iter().map(|e| e.field).collect();
        assert_eq!(held, ["status"]);
    }

    fn round_trip<R: Stored + PartialEq + std::fmt::Debug>(record: &R) {
        let row = record.to_row();
        row.check().unwrap();
        assert_eq!(row.def, R::DEF);
        assert_eq!(row.values.len(), R::DEF.columns().count());
        assert_eq!(&R::from_row(row).unwrap(), record);
    }

    /// Every kind's declaration maps its records to rows that fit the description, and back.
    #[test]
    fn records_round_trip_through_rows() {
        for (def, entity, _) in samples() {
            match def.kind {
                Kind::Lead => round_trip(&Lead::from_entity(entity).unwrap()),
                Kind::Contact => round_trip(&Contact::from_entity(entity).unwrap()),
                Kind::Account => round_trip(&Account::from_entity(entity).unwrap()),
                Kind::Deal => round_trip(&Deal::from_entity(entity).unwrap()),
                Kind::Activity => round_trip(&Activity::from_entity(entity).unwrap()),
                Kind::Pipeline => round_trip(&Pipeline::from_entity(entity).unwrap()),
                Kind::Task => round_trip(&Task::from_entity(entity).unwrap()),
                Kind::Webhook => round_trip(&crate::model::Webhook::from_entity(entity).unwrap()),
                other => panic!("not a record kind: {other:?}"),
            }
        }
        let deal = Deal::from_entity(samples()[3].1.clone()).unwrap();
        let columns: Vec<&str> = DEAL.columns().map(|c| c.name).collect();
        assert_eq!(&columns[..3], ["name", "amount_minor", "currency"]);
        let unpriced = Deal { amount: None, closed_at: None, ..deal.clone() };
        round_trip(&unpriced);
    }

    /// Rows that do not fit are internal errors, never a record with a wrong field.
    #[test]
    fn rows_that_do_not_fit_are_refused() {
        let lead = Lead::from_entity(samples()[0].1.clone()).unwrap();
        let activity = Activity::from_entity(samples()[4].1.clone()).unwrap();
        let row = lead.to_row();
        assert!(Contact::from_row(row.clone()).is_err(), "a lead row is no contact");
        let mut short = row.clone();
        short.values.pop();
        assert!(short.check().is_err() && Lead::from_row(short).is_err());
        let mut long = row.clone();
        long.values.push(super::Value::Null);
        assert!(long.check().is_err() && Lead::from_row(long).is_err());
        let mut null_status = row.clone();
        let status = LEAD.columns().position(|c| c.name == "status").unwrap();
        null_status.values[status] = super::Value::Null;
        assert!(null_status.check().is_err() && Lead::from_row(null_status).is_err());
        let mut no_custom = row;
        no_custom.custom_fields = None;
        assert!(no_custom.check().is_err() && Lead::from_row(no_custom).is_err());

        let mut two_targets = activity.to_row();
        let lead_id = ACTIVITY.columns().position(|c| c.name == "lead_id").unwrap();
        two_targets.values[lead_id] = super::Value::Uuid(Uuid::from_u128(9));
        assert!(Activity::from_row(two_targets).is_err(), "an activity on two records");
        let mut no_target = activity.to_row();
        let deal_id = ACTIVITY.columns().position(|c| c.name == "deal_id").unwrap();
        no_target.values[deal_id] = super::Value::Null;
        assert!(Activity::from_row(no_target).is_err(), "an activity on no record");
    }
}
