use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::FieldError;
use crate::id::Id;
use crate::kind::Stored;
use crate::scope::{TenantId, UserId};

use super::{Deal, PipelineId};

/// Every kind of thing the library stores; also the `resource` of audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A tenant (workspace).
    Tenant,
    /// A user (global; joins tenants through memberships).
    User,
    /// A user's membership of a tenant.
    Member,
    /// A deal pipeline.
    Pipeline,
    /// A lead.
    Lead,
    /// A contact.
    Contact,
    /// An account.
    Account,
    /// A deal.
    Deal,
    /// An activity.
    Activity,
    /// An API key.
    ApiKey,
    /// A task.
    Task,
    /// A webhook endpoint.
    Webhook,
}

impl Kind {
    /// The wire name (`lead`, `deal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant",
            Kind::User => "user",
            Kind::Member => "member",
            Kind::Pipeline => "pipeline",
            Kind::Lead => "lead",
            Kind::Contact => "contact",
            Kind::Account => "account",
            Kind::Deal => "deal",
            Kind::Activity => "activity",
            Kind::ApiKey => "api_key",
            Kind::Task => "task",
            Kind::Webhook => "webhook",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Kind> {
        use Kind::*;
        [Tenant, User, Member, Pipeline, Lead, Contact, Account, Deal, Activity, ApiKey, Task, Webhook]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Fields every CRM record carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(bound = "")]
pub struct RecordMeta<T> {
    /// The record's id.
    pub id: Id<T>,
    /// The owning tenant; never serialized to clients, who only ever see their own.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Optimistic-concurrency version: 1 on create, +1 on every change.
    pub version: i64,
    /// When it was created.
    #[serde(serialize_with = "super::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "super::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When it was soft-deleted; reads never return deleted records.
    #[serde(skip)]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The OpenAPI schema of [`RecordMeta`], flattened into every record: one `RecordMeta` component
/// for the fields they share, whatever record type `T` the id belongs to (the derive would need
/// a schema per `T`).
#[cfg(feature = "openapi")]
pub(crate) struct RecordMetaSchema;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RecordMetaSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let time = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("id", <Id<()> as utoipa::PartialSchema>::schema())
            .property(
                "version",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(1))
                    .description(Some(
                        "Optimistic-concurrency version: 1 on create, +1 on every change; the ETag.",
                    )),
            )
            .property("created_at", time("When it was created."))
            .property("updated_at", time("When it last changed."))
            .required("id")
            .required("version")
            .required("created_at")
            .required("updated_at")
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RecordMetaSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("RecordMeta")
    }
}

/// Money as integer minor units plus an ISO 4217 code; never floating point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Amount in the currency's minor unit (cents for EUR), an exact integer (a client should
    /// read it as a big integer beyond 2^53).
    #[serde(deserialize_with = "integral")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64))]
    pub amount_minor: i64,
    /// ISO 4217 code, upper case (`EUR`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
}

/// A record's custom fields: a JSON object of names to values.
pub type CustomFields = serde_json::Map<String, serde_json::Value>;

/// The OpenAPI schema of [`CustomFields`] (a foreign type, so it cannot implement the trait):
/// the limits [`crate::validate`] enforces, named once as the `CustomFields` component.
#[cfg(feature = "openapi")]
pub(crate) struct CustomFieldsSchema;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CustomFieldsSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

        use crate::validate::{MAX_CUSTOM_FIELDS, MAX_CUSTOM_FIELDS_BYTES};
        // A string value is text of several lines, as `validate::json_strings` checks it.
        let text = crate::kind::TextRule::BODY;
        let scalar = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean, Type::Null]))
                .max_length(Some(text.max_chars))
                .pattern(Some(text.pattern))
        };
        let value = OneOfBuilder::new().item(scalar()).item(ArrayBuilder::new().items(scalar())).build();
        let name = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[a-z0-9_]{1,64}$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "Tenant-defined fields: at most {MAX_CUSTOM_FIELDS} names of 1-64 characters a-z, 0-9 and \
                 _, each a string, number, boolean, null or a list of those; at most \
                 {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON. Lists filter on them with `cf.<name>=<value>`."
            )))
            .property_names(Some(name))
            .max_properties(Some(MAX_CUSTOM_FIELDS))
            .additional_properties(Some(Schema::OneOf(value)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CustomFieldsSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("CustomFields")
    }
}

/// A reference from one record to another, checked to exist in the same tenant before a write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    /// `field` must name a live record of `kind`.
    Record {
        /// The input field holding the reference.
        field: &'static str,
        /// The kind it must be.
        kind: Kind,
        /// The referenced id.
        id: Uuid,
    },
    /// `field` must name a stage of the pipeline.
    Stage {
        /// The pipeline.
        pipeline_id: PipelineId,
        /// The stage key.
        stage: String,
    },
    /// `field` must name a member of the tenant.
    Member {
        /// The input field holding the reference.
        field: &'static str,
        /// The user.
        user_id: UserId,
    },
}

/// What the generic services need to know about a record type.
///
/// Implemented by [`super::Lead`], [`super::Contact`], [`super::Account`], [`super::Deal`] and
/// [`super::Activity`]; it lets one implementation of create/get/update/delete/list serve all five.
pub trait Record: Stored + Clone + Debug + Serialize + Send + Sync + Sized + 'static {
    /// Create input.
    type New: Debug + Send + 'static;
    /// Update input (cloned when a write without a version is tried again).
    type Patch: Debug + Clone + Send + Sync + 'static;

    /// Common fields.
    fn meta(&self) -> &RecordMeta<Self>;
    /// Common fields, mutably.
    fn meta_mut(&mut self) -> &mut RecordMeta<Self>;
    /// The owning user, for `Own` record scope.
    fn owner_id(&self) -> Option<UserId>;
    /// Builds a record from its input; `creator` becomes the owner when none is given.
    fn create(
        new: Self::New,
        meta: RecordMeta<Self>,
        creator: Option<UserId>,
    ) -> Result<Self, Vec<FieldError>>;
    /// Applies a patch, reporting changes the patch may not make. `meta.updated_at` is already
    /// the time of the change, for rules that record when something happened.
    fn apply(&mut self, patch: Self::Patch, errors: &mut Vec<FieldError>);
    /// Checks the record's own fields (lengths, formats, required fields).
    fn validate(&self, errors: &mut Vec<FieldError>);
    /// References to other records, checked against the store before writing.
    fn links(&self) -> Vec<Link>;
    /// The members who own it for the `Own` record scope: the values of the fields its
    /// description marks [`owns`](crate::kind::FieldDef::owns).
    fn owners(&self) -> Vec<UserId> {
        let row = self.to_row();
        Self::DEF.owner_fields().filter_map(|field| row.member(field.name)).collect()
    }
    /// Events a change implies besides `<kind>.created` or `.updated`, by action name (a task's
    /// `assigned` and `completed`); `before` is `None` on creation.
    fn implied_events(_before: Option<&Self>, _after: &Self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The record as a deal, so deal-only rules (pipelines, stage history) can hook in.
    fn as_deal_mut(&mut self) -> Option<&mut Deal> {
        None
    }
    /// The record as a deal, read-only.
    fn as_deal(&self) -> Option<&Deal> {
        None
    }
}

/// `Option<Option<T>>` deserializer: a present `null` becomes `Some(None)`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An integer given as any JSON number without a fractional part (`60.0` as well as `60`):
/// JSON Schema's `integer` admits both, so a client that follows the schema is not refused.
pub(crate) fn integral<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let number = serde_json::Number::deserialize(d)?;
    let exact = number.as_i64().or_else(|| {
        // Beyond 2^53 a float no longer names one integer.
        number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0).map(|f| f as i64)
    });
    let value = exact.ok_or_else(|| D::Error::custom("must be an integer"))?;
    T::try_from(value).map_err(|_| D::Error::custom("is out of range"))
}

/// [`integral`] for an optional field (`null` is absent).
pub(crate) fn integral_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Integral<T: TryFrom<i64>>(#[serde(deserialize_with = "integral")] T);
    Ok(Option::<Integral<T>>::deserialize(d)?.map(|i| i.0))
}

/// [`integral`] for a patch field: a present `null` becomes `Some(None)`.
pub(crate) fn nullable_integral<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    integral_opt(d).map(Some)
}

/// Replaces `target` with the patch value when the patch names the field.
pub(crate) fn patch_field<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Pushes an owner link when an owner is set.
pub(crate) fn owner_link(owner: Option<UserId>, links: &mut Vec<Link>) {
    if let Some(user_id) = owner {
        links.push(Link::Member { field: "owner_id", user_id });
    }
}

/// Pushes a record link when the reference is set.
pub(crate) fn record_link<T>(field: &'static str, kind: Kind, id: Option<Id<T>>, links: &mut Vec<Link>) {
    if let Some(id) = id {
        links.push(Link::Record { field, kind, id: id.uuid() });
    }
}

/// Implements the boilerplate parts of [`Record`] for a struct with `meta` and `owner_id` fields.
macro_rules! record_common {
    ($ty:ident) => {
        fn meta(&self) -> &$crate::model::RecordMeta<Self> {
            &self.meta
        }
        fn meta_mut(&mut self) -> &mut $crate::model::RecordMeta<Self> {
            &mut self.meta
        }
        fn owner_id(&self) -> Option<$crate::scope::UserId> {
            self.owner_id
        }
    };
}
pub(crate) use record_common;
