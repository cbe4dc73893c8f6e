//! Query strings of list endpoints → [`ListRequest`]. Unknown parameters are refused (422),
//! like unknown body fields.

use chrono::{DateTime, Utc};
use crm_core::model::{ActivityKind, ActivityTarget, Kind, LeadStatus};
use crm_core::{Error, FieldError, Filter, ListRequest, kind};
use uuid::Uuid;

use crate::error::ApiError;

/// Parses `limit`, `cursor`, `q`, the exact filters and `cf.<name>=<value>` (a JSON scalar, else
/// a string: `cf.seats=10` matches the number 10, `cf.seats="10"` the string).
pub fn parse(pairs: Vec<(String, String)>) -> Result<ListRequest, ApiError> {
    let mut request = ListRequest::new();
    let mut filter = Filter::default();
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let mut bad = |message: &str| errors.push(FieldError::new(key.clone(), message));
        match key.as_str() {
            "limit" => match value.parse() {
                Ok(n) => request.limit = Some(n),
                Err(_) => bad("must be a number between 1 and 200"),
            },
            "cursor" => request.cursor = Some(value),
            "sort" => request.sort = Some(value),
            "q" => request.q = Some(value),
            "status" => match LeadStatus::parse(&value) {
                Some(s) => filter.status = Some(s),
                None => bad("is not a lead status"),
            },
            "kind" => match ActivityKind::parse(&value) {
                Some(k) => filter.activity_kind = Some(k),
                None => bad("is not an activity kind"),
            },
            "stage" => filter.stage = Some(value),
            "owner_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.owner_id = Some(u.into()))
            }
            "pipeline_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.pipeline_id = Some(u.into()))
            }
            "account_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.account_id = Some(u.into()))
            }
            "contact_id" => {
                id(&value).map_or_else(|| bad("is not an id"), |u| filter.contact_id = Some(u.into()))
            }
            "lead_id" | "deal_id" => {
                let kind = if key == "lead_id" { Kind::Lead } else { Kind::Deal };
                match id(&value) {
                    Some(u) => filter.target = ActivityTarget::from_parts(kind, u),
                    None => bad("is not an id"),
                }
            }
            "created_after" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_after = Some(t)),
            "created_before" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_before = Some(t)),
            _ => match key.strip_prefix("cf.") {
                Some(name) => {
                    let parsed = serde_json::from_str::<serde_json::Value>(&value)
                        .ok()
                        .filter(|v| !v.is_object() && !v.is_array())
                        .unwrap_or(serde_json::Value::String(value.clone()));
                    filter.custom_fields.push((name.to_owned(), parsed));
                }
                None => bad("is not a parameter of this list"),
            },
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors).into());
    }
    Ok(request.filter(filter))
}

fn id(value: &str) -> Option<Uuid> {
    Uuid::try_parse(value).ok()
}

fn time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc))
}

/// The parameters [`parse`] reads, as each record list documents them: one unit type per list
/// with the filters its kind's description declares (core refuses the others with 422).
mod params {
    use crm_core::kind::{FieldDef, FieldType, KindDef};
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Required, Schema};

    fn query(name: &str, schema: impl Into<RefOr<Schema>>, description: &str) -> Parameter {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .schema(Some(schema))
            .description(Some(description))
            .build()
    }

    fn formatted(format: KnownFormat) -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)))
    }

    pub(super) fn limit() -> Parameter {
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(crm_core::MAX_LIMIT))
            .default(Some(crm_core::DEFAULT_LIMIT.into()));
        query("limit", schema, "Page size.")
    }

    pub(super) fn cursor() -> Parameter {
        // The layouts core's cursors have (base64url of a tag byte and an id; sorted lists: tag,
        // order, an optional instant and an id), so generated clients do not mistake any string
        // for one.
        let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(
            "^A(?:[Q-Za-f][A-Za-z0-9_-]{20}[AEIMQUYcgkosw048]|[w-z0-9_-][A-Za-z0-9_-]{22}\
             |[w-z0-9_-][A-Za-z0-9_-]{32}[AEIMQUYcgkosw048])$",
        ));
        query("cursor", schema, "`next_cursor` of the previous page.")
    }

    pub(super) fn q() -> Parameter {
        query(
            "q",
            // At least one character that can be part of a word (not ASCII punctuation, space or
            // control); a query without a word is 422.
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"[^\s\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]")),
            "Text search: every word (a run of letters and digits) must start a word of the \
             record's names, e-mail or company.",
        )
    }

    /// The orders of `def`'s lists: `created_at` and its sortable fields, each either way.
    fn sort(def: &KindDef) -> Parameter {
        let keys = std::iter::once("created_at").chain(def.fields.iter().filter(|f| f.sort).map(|f| f.name));
        let orders: Vec<String> = keys.flat_map(|k| [k.to_owned(), format!("-{k}")]).collect();
        let schema = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(orders));
        query(
            "sort",
            schema,
            "Order: smallest first, or largest first after `-`; records without a value last. \
             Default: newest first.",
        )
    }

    /// The filters `def` declares, in field order, then the creation-time range every list has,
    /// then its orders.
    pub(super) fn of(def: &KindDef) -> Vec<Parameter> {
        let own = def.fields.iter().filter(|f| f.filter).map(|field| {
            let (schema, what) = field_schema(def, field);
            query(field.name, schema, &format!("Only {} {what}.", def.plural))
        });
        let time = || formatted(KnownFormat::DateTime);
        def.searchable()
            .then(q)
            .into_iter()
            .chain(own)
            .chain([
                query(
                    "created_after",
                    time(),
                    &format!("Only {} created at or after this time.", def.plural),
                ),
                query("created_before", time(), &format!("Only {} created before this time.", def.plural)),
                sort(def),
            ])
            .collect()
    }

    /// A filter's schema, from its field's type, and what it keeps.
    fn field_schema(def: &KindDef, field: &FieldDef) -> (ObjectBuilder, String) {
        let in_group = def.one_of.iter().any(|group| group.contains(&field.name));
        match field.ty {
            FieldType::Enum(values) => {
                let schema =
                    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()));
                (schema, format!("with this {}", field.name))
            }
            FieldType::Key => {
                let schema =
                    ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[a-z0-9_]{1,64}$"));
                (schema, "at this stage key".to_owned())
            }
            FieldType::Member => (formatted(KnownFormat::Uuid), "owned by this member".to_owned()),
            FieldType::Ref(kind) if in_group => {
                (formatted(KnownFormat::Uuid), format!("on this {}", kind.as_str()))
            }
            FieldType::Ref(kind) => (formatted(KnownFormat::Uuid), format!("with this {}", kind.as_str())),
            _ => (ObjectBuilder::new().schema_type(Type::String), format!("with this {}", field.name)),
        }
    }
}

/// Declares a parameter set for `#[utoipa::path(params(...))]`.
macro_rules! parameter_set {
    ($(#[$doc:meta])* $name:ident => $parameters:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                $parameters.into_iter().collect()
            }
        }
    };
}

parameter_set!(
    /// `limit` and `cursor`.
    ListPage => [params::limit(), params::cursor()]
);

parameter_set!(
    /// Lead filters, from the lead description.
    LeadFilters => params::of(&kind::LEAD)
);

parameter_set!(
    /// Contact filters, from the contact description.
    ContactFilters => params::of(&kind::CONTACT)
);

parameter_set!(
    /// Account filters, from the account description.
    AccountFilters => params::of(&kind::ACCOUNT)
);

parameter_set!(
    /// Deal filters, from the deal description.
    DealFilters => params::of(&kind::DEAL)
);

parameter_set!(
    /// Activity filters, from the activity description.
    ActivityFilters => params::of(&kind::ACTIVITY)
);
