//! Query strings of list endpoints → [`ListRequest`]. Unknown parameters are refused (422),
//! like unknown body fields.

use chrono::{DateTime, Utc};
use crm_core::kind::{FieldDef, FieldType, KindDef};
use crm_core::store::TimeRange;
use crm_core::{Error, FieldError, Filter, ListRequest, UserId, kind};
use uuid::Uuid;

use crate::error::ApiError;

/// Parses `limit`, `cursor`, `sort`, `q`, the filters `def` declares — each field's value read
/// by its type, `me` for a member field naming the caller, `<name>_after`/`<name>_before` for an
/// instant field `<name>_at`, and the kind's named filters as `<name>=true` — the creation-time
/// range, and `cf.<name>=<value>` (a JSON scalar, else a string: `cf.seats=10` matches the number
/// 10, `cf.seats="10"` the string). Anything else is refused, naming the parameter.
pub fn parse(
    def: &KindDef,
    me: Option<UserId>,
    pairs: Vec<(String, String)>,
) -> Result<ListRequest, ApiError> {
    let mut request = ListRequest::new();
    let mut filter = Filter::default();
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let mut bad = |message: &str| errors.push(FieldError::new(key.clone(), message));
        let filtered = def.field(&key).filter(|f| f.filter && f.ty != FieldType::Time);
        let ranged = range_of(def, &key);
        match key.as_str() {
            "limit" => match value.parse() {
                Ok(n) => request.limit = Some(n),
                Err(_) => bad("must be a number between 1 and 200"),
            },
            "cursor" => request.cursor = Some(value),
            "sort" => request.sort = Some(value),
            "q" => request.q = Some(value),
            "created_after" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_after = Some(t)),
            "created_before" => time(&value)
                .map_or_else(|| bad("is not an RFC 3339 time"), |t| filter.created_before = Some(t)),
            _ if filtered.is_some() => match filtered.map(|field| field_value(field, &value, me)) {
                Some(Ok(v)) => filter.equals.push((key.clone(), v)),
                Some(Err(message)) => bad(message),
                None => {}
            },
            _ if ranged.is_some() => match (ranged, time(&value)) {
                (Some((field, after)), Some(t)) => {
                    let (from, before) = if after { (Some(t), None) } else { (None, Some(t)) };
                    filter.ranges.push(TimeRange { field: field.to_owned(), from, before });
                }
                _ => bad("is not an RFC 3339 time"),
            },
            _ if def.named_filters.iter().any(|n| n.name == key) => match value.as_str() {
                "true" => filter.named.push(key.clone()),
                _ => bad("can only be `true`"),
            },
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

/// The instant field a `<name>_after` or `<name>_before` parameter ranges over, and whether it
/// is the lower end.
fn range_of(def: &KindDef, key: &str) -> Option<(&'static str, bool)> {
    let (stem, after) = match (key.strip_suffix("_after"), key.strip_suffix("_before")) {
        (Some(stem), _) => (stem, true),
        (_, Some(stem)) => (stem, false),
        _ => return None,
    };
    let field = def
        .fields
        .iter()
        .find(|f| f.filter && f.ty == FieldType::Time && f.name.strip_suffix("_at") == Some(stem))?;
    Some((field.name, after))
}

/// A filter value for `field`, read by its type.
fn field_value(field: &FieldDef, value: &str, me: Option<UserId>) -> Result<kind::Value, &'static str> {
    match field.ty {
        FieldType::Enum(values) => match values.iter().find(|v| **v == value) {
            Some(v) => Ok(kind::Value::Text((*v).into())),
            None => Err("is not one of its values"),
        },
        FieldType::Member if value == "me" => {
            me.map(|u| kind::Value::Uuid(u.uuid())).ok_or("names no member: the caller is not one")
        }
        FieldType::Member | FieldType::Ref(_) => id(value).map(kind::Value::Uuid).ok_or("is not an id"),
        _ => Ok(kind::Value::Text(value.to_owned().into())),
    }
}

fn id(value: &str) -> Option<Uuid> {
    Uuid::try_parse(value).ok()
}

fn time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc))
}

/// The parameters [`parse`] reads, as each record list documents them: one unit type per list
/// with the filters its kind's description declares (core refuses the others with 422).
pub(crate) mod params {
    use crm_core::kind::{FieldDef, FieldType, KindDef};
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
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
        // an optional instant and an id), so generated clients do not mistake any string for
        // one — and every string the pattern admits is a position the server takes.
        let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(
            "^A(?:[Q-Za-fw-z0-9_-][A-Za-z0-9_-]{20}[AEIMQUYcgkosw048]|[w-z0-9_-][A-Za-z0-9_-]{31}[AQgw])$",
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
    pub(crate) fn of(def: &KindDef) -> Vec<Parameter> {
        let time = || formatted(KnownFormat::DateTime);
        let own = def.fields.iter().filter(|f| f.filter).flat_map(|field| {
            if field.ty == FieldType::Time {
                let stem = field.name.strip_suffix("_at").unwrap_or(field.name);
                return vec![
                    query(
                        &format!("{stem}_after"),
                        time(),
                        &format!("Only {} with `{}` at or after this time.", def.plural, field.name),
                    ),
                    query(
                        &format!("{stem}_before"),
                        time(),
                        &format!("Only {} with `{}` before this time.", def.plural, field.name),
                    ),
                ];
            }
            let (schema, what) = field_schema(def, field);
            vec![query(field.name, schema, &format!("Only {} {what}.", def.plural))]
        });
        let named = def.named_filters.iter().map(|named| {
            let schema = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"]));
            query(named.name, schema, named.description)
        });
        def.searchable()
            .then(q)
            .into_iter()
            .chain(own)
            .chain(named)
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
    fn field_schema(def: &KindDef, field: &FieldDef) -> (RefOr<Schema>, String) {
        if field.ty == FieldType::Member {
            // A member's id, or `me` for the caller.
            let me = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["me"]));
            let schema = OneOfBuilder::new().item(formatted(KnownFormat::Uuid)).item(me);
            let whose = if field.name == "owner_id" {
                "owned by".to_owned()
            } else {
                format!("whose {} is", field.name)
            };
            return (schema.into(), format!("{whose} this member (`me`: the caller)"));
        }
        let (schema, what) = plain_field_schema(def, field);
        (schema.into(), what)
    }

    fn plain_field_schema(def: &KindDef, field: &FieldDef) -> (ObjectBuilder, String) {
        let in_group = def.one_of.iter().any(|group| group.contains(field.name));
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
