//! List filters as stores receive them: typed conditions on described fields, never text.
//!
//! [`Filter`] stays the typed convenience that callers in Rust build; [`ListQuery::conditions`]
//! lowers it against the kind's [`KindDef`], refusing what the description does not declare. A
//! store turns each [`Condition`] into one parenthesised clause whose identifier comes from the
//! description (or, for `created_at`, from the meta columns every kind has) and whose value is
//! bound — so no text that came with a query reaches SQL text.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FieldDef, FieldType, KindDef, Value};
use crate::error::{Error, FieldError, Result};
use crate::model::Kind;
use crate::store::{Filter, ListQuery, Sort, SortKey};
use crate::validate;

/// One list condition; a query's conditions combine with AND, in the order given.
///
/// Not `#[non_exhaustive]`, like [`Value`]: a store must match every variant, so a new one is a
/// compile error in every store rather than a silent fallback arm.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field equals the value.
    Eq(&'static FieldDef, Value),
    /// `created_at` is at or after this instant.
    CreatedFrom(DateTime<Utc>),
    /// `created_at` is strictly before this instant.
    CreatedBefore(DateTime<Utc>),
    /// The instant field is at or after this instant (a record without one does not match).
    From(&'static FieldDef, DateTime<Utc>),
    /// The instant field is strictly before this instant (a record without one does not match).
    Before(&'static FieldDef, DateTime<Utc>),
    /// One of these member fields (the kind's owners) names this member.
    OwnedBy(Vec<&'static FieldDef>, Uuid),
    /// Custom field `key` equals `value` as JSON, types compared too; `null` also matches a
    /// missing field. The key is a valid custom-field name ([`validate::is_key`]).
    Custom {
        /// The custom field.
        key: String,
        /// The JSON value it must have.
        value: serde_json::Value,
    },
}

impl ListQuery {
    /// The kind's description; an internal error for kinds that are not records.
    pub fn def(&self) -> Result<&'static KindDef> {
        self.kind
            .def()
            .ok_or_else(|| Error::internal(format!("{} records are not listed", self.kind.as_str())))
    }

    /// The query's filter as conditions on the kind's described fields, in a fixed order. A
    /// filter the kind does not declare, or a value its field cannot hold, is a validation
    /// error naming the filter (`status`, `target`, `cf.<name>`, …).
    pub fn conditions(&self) -> Result<Vec<Condition>> {
        let def = self.def()?;
        let mut errors = Vec::new();
        let conditions = lower(def, &self.filter, &mut errors);
        if errors.is_empty() { Ok(conditions) } else { Err(Error::Validation(errors)) }
    }

    /// The query's [`Sort`], checked against the kind's description: a store orders by a
    /// column only when it is `created_at` or a sortable instant of this kind, and continues
    /// after an instant or `Null`. `None`: newest first.
    pub fn order(&self) -> Result<Option<&Sort>> {
        let def = self.def()?;
        let Some(sort) = &self.sort else { return Ok(None) };
        let key_fits = match sort.key {
            SortKey::CreatedAt => true,
            SortKey::Field(field) => {
                field.sort && field.ty == FieldType::Time && def.field(field.name) == Some(field)
            }
        };
        let value_fits = matches!(sort.after_value, Value::Null | Value::Time(_));
        if key_fits && value_fits {
            Ok(Some(sort))
        } else {
            Err(Error::invalid("sort", format!("is not an order of {} records", def.name)))
        }
    }
}

/// The description of a kind that lists serve; an internal error for identity kinds.
pub(crate) fn listed(kind: Kind) -> Result<&'static KindDef> {
    kind.def().ok_or_else(|| Error::internal(format!("{} records are not listed", kind.as_str())))
}

/// Lowers `filter` against `def`, pushing an error for each filter the kind does not declare.
pub(crate) fn lower(def: &'static KindDef, filter: &Filter, errors: &mut Vec<FieldError>) -> Vec<Condition> {
    let f = filter;
    let mut out = Vec::new();
    let mut eq = |wire: &str, field: &str, value: Option<Value>| {
        let Some(value) = value else { return };
        match def.field(field).filter(|d| d.filter) {
            Some(d) if fits(d, &value) => out.push(Condition::Eq(d, value)),
            Some(d) => errors.push(FieldError::new(wire, not_a_value(d))),
            None => errors.push(not_a_filter(def, wire)),
        }
    };
    let id = |uuid: Uuid| Value::Uuid(uuid);
    eq("status", "status", f.status.map(|s| Value::Text(s.as_str().into())));
    eq("owner_id", "owner_id", f.owner_id.map(|u| id(u.uuid())));
    eq("pipeline_id", "pipeline_id", f.pipeline_id.map(|p| id(p.uuid())));
    eq("stage", "stage", f.stage.clone().map(|stage| Value::Text(stage.into())));
    eq("account_id", "account_id", f.account_id.map(|a| id(a.uuid())));
    eq("contact_id", "contact_id", f.contact_id.map(|c| id(c.uuid())));
    // The record an activity is on is one of its one-of references, named by the target's kind.
    let target = f.target.map(|t| t.parts()).map(|(kind, uuid)| (def.one_of_reference(kind), uuid));
    if let Some((Some(field), uuid)) = target {
        eq("target", field.name, Some(id(uuid)));
    }
    eq("kind", "kind", f.activity_kind.map(|k| Value::Text(k.as_str().into())));
    for (name, value) in &f.equals {
        eq(name, name, Some(value.clone()));
    }
    if let Some((None, _)) = target {
        errors.push(not_a_filter(def, "target"));
    }
    out.extend(f.created_after.map(Condition::CreatedFrom));
    out.extend(f.created_before.map(Condition::CreatedBefore));
    for range in &f.ranges {
        match def.field(&range.field).filter(|d| d.filter && d.ty == FieldType::Time) {
            Some(field) => {
                out.extend(range.from.map(|at| Condition::From(field, at)));
                out.extend(range.before.map(|at| Condition::Before(field, at)));
            }
            None => errors.push(not_a_filter(def, &range.field)),
        }
    }
    if let Some(member) = f.owned_by {
        let owners: Vec<&'static FieldDef> = def.owner_fields().collect();
        if owners.is_empty() {
            errors.push(not_a_filter(def, "owned_by"));
        }
        out.push(Condition::OwnedBy(owners, member.uuid()));
    }
    for name in &f.named {
        errors.push(FieldError::new(name.clone(), "is a named filter, which core applies before a store"));
    }
    if !f.custom_fields.is_empty() && !def.custom_fields {
        errors.push(not_a_filter(def, "custom_fields"));
    }
    for (name, value) in &f.custom_fields {
        if validate::is_key(name) {
            out.push(Condition::Custom { key: name.clone(), value: value.clone() });
        } else {
            errors.push(FieldError::new(format!("cf.{name}"), "is not a custom field name (a-z, 0-9, _)"));
        }
    }
    out
}

/// Whether `value` is of a kind `field` can hold.
fn fits(field: &FieldDef, value: &Value) -> bool {
    match (field.ty, value) {
        (FieldType::Enum(names), Value::Text(v)) => names.contains(&v.as_ref()),
        (FieldType::Key, Value::Text(v)) => validate::is_key(v),
        (FieldType::Text | FieldType::Domain | FieldType::Email | FieldType::Phone, Value::Text(_)) => true,
        (FieldType::Ref(_) | FieldType::Member, Value::Uuid(_)) => true,
        _ => false,
    }
}

fn not_a_value(field: &FieldDef) -> &'static str {
    match field.ty {
        FieldType::Key => "is not a stage key",
        FieldType::Enum(_) => "is not one of its values",
        _ => "is not a value of this field",
    }
}

fn not_a_filter(def: &KindDef, wire: &str) -> FieldError {
    FieldError::new(wire, format!("is not a filter for {} records", def.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActivityTarget, LeadStatus};
    use crate::{Id, UserId};

    fn query(kind: Kind, filter: Filter) -> ListQuery {
        let mut q = ListQuery::new(kind);
        q.filter = filter;
        q
    }

    fn named(result: Result<Vec<Condition>>) -> Vec<String> {
        result.unwrap_err().field_errors().iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn filters_lower_to_conditions_on_described_fields() {
        let owner = UserId::from_uuid(Uuid::from_u128(1));
        let filter = Filter {
            status: Some(LeadStatus::Qualified),
            owner_id: Some(owner),
            custom_fields: vec![("tier".into(), serde_json::json!("gold"))],
            ..Filter::default()
        };
        let conditions = query(Kind::Lead, filter).conditions().unwrap();
        assert_eq!(
            conditions,
            [
                Condition::Eq(crate::kind::LEAD.field("status").unwrap(), Value::Text("qualified".into())),
                Condition::Eq(crate::kind::LEAD.field("owner_id").unwrap(), Value::Uuid(owner.uuid())),
                Condition::Custom { key: "tier".into(), value: serde_json::json!("gold") },
            ]
        );
        let on_deal =
            Filter { target: Some(ActivityTarget::Deal(Id::from_uuid(Uuid::nil()))), ..Filter::default() };
        let conditions = query(Kind::Activity, on_deal).conditions().unwrap();
        assert!(matches!(&conditions[..], [Condition::Eq(f, Value::Uuid(_))] if f.name == "deal_id"));
    }

    #[test]
    fn undeclared_filters_are_named() {
        let status = Filter { status: Some(LeadStatus::New), ..Filter::default() };
        assert_eq!(named(query(Kind::Deal, status).conditions()), ["status"]);
        let target =
            Filter { target: Some(ActivityTarget::Deal(Id::from_uuid(Uuid::nil()))), ..Filter::default() };
        assert_eq!(named(query(Kind::Deal, target).conditions()), ["target"]);
        let cf = Filter { custom_fields: vec![("x".into(), serde_json::json!(1))], ..Filter::default() };
        assert_eq!(named(query(Kind::Activity, cf).conditions()), ["custom_fields"]);
        let bad = Filter { custom_fields: vec![("X'".into(), serde_json::json!(1))], ..Filter::default() };
        assert_eq!(named(query(Kind::Lead, bad).conditions()), ["cf.X'"]);
        let stage = Filter { stage: Some("Won".into()), ..Filter::default() };
        assert_eq!(named(query(Kind::Deal, stage).conditions()), ["stage"]);
        assert!(query(Kind::Tenant, Filter::default()).conditions().is_err());
    }
}
