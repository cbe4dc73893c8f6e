//! A record's JSON form and its changes, worked out from its description.
//!
//! The audit trail and domain events carry a record as the JSON object its type serializes to
//! (`{"id": …, "version": …, "first_name": …}`). Here that form comes from the [`RecordRow`] and
//! its [`KindDef`] instead of a serde round trip of the record: a change compares column
//! values and turns only the fields that differ into JSON, and the personal fields the
//! description marks are what [`Changes::redact`] removes. Secret fields are never part of it. Unit tests pin the result to the
//! serde form, so the wire does not depend on which path built it.

use serde_json::{Map, Value as Json};

use super::row::{RecordRow, Value};
use super::{FieldDef, FieldType, KindDef};
use crate::audit::Changes;

/// One top-level key of a record's JSON form, as the row holds it.
#[derive(PartialEq)]
enum Part<'a> {
    /// A field: one column, or two for money.
    Field(&'static FieldDef, &'a [Value]),
    /// The custom-fields object.
    Custom(&'a Map<String, Json>),
}

impl Part<'_> {
    fn to_json(&self) -> Json {
        match self {
            Part::Field(FieldDef { ty: FieldType::Money { minor, currency }, .. }, values) => match values {
                [Value::Int(amount), Value::Text(code)] => {
                    let mut money = Map::new();
                    money.insert((*minor).into(), (*amount).into());
                    money.insert((*currency).into(), code.as_ref().into());
                    Json::Object(money)
                }
                _ => Json::Null,
            },
            Part::Field(_, [value]) => value.to_json(),
            Part::Field(..) => Json::Null,
            Part::Custom(fields) => Json::Object((*fields).clone()),
        }
    }

    /// Whether the record's JSON form leaves the key out: an unset member of a one-of group
    /// (an activity's target is one key, whichever it is).
    fn omitted(&self, def: &KindDef) -> bool {
        match self {
            Part::Field(field, [Value::Null]) => def.one_of.iter().any(|group| group.contains(field.name)),
            _ => false,
        }
    }
}

impl Value {
    /// The value as JSON, the way its field's Rust type serializes.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Text(text) => text.as_ref().into(),
            Value::Int(n) => (*n).into(),
            Value::Bool(b) => (*b).into(),
            Value::Uuid(id) => id.to_string().into(),
            Value::Time(at) => serde_json::to_value(at).unwrap_or_default(),
            Value::Date(day) => serde_json::to_value(day).unwrap_or_default(),
            Value::Json(doc) => doc.clone(),
        }
    }
}

impl RecordRow {
    /// The row's fields and custom fields in order, each with the column values it is made of;
    /// secret fields are not part of the JSON form, so they are left out.
    fn parts(&self) -> impl Iterator<Item = (&'static str, Part<'_>)> {
        let mut rest = self.values.as_slice();
        let fields = self
            .def
            .fields
            .iter()
            .map(move |field| {
                let width = if matches!(field.ty, FieldType::Money { .. }) { 2 } else { 1 };
                let (values, after) = rest.split_at(width.min(rest.len()));
                rest = after;
                (field.name, Part::Field(field, values))
            })
            .filter(|(_, part)| !matches!(part, Part::Field(field, _) if field.secret));
        let custom = self.custom_fields.as_ref().map(|cf| ("custom_fields", Part::Custom(cf)));
        fields.chain(custom)
    }

    /// The record as the JSON object its type serializes to: what a domain event carries.
    pub fn to_json(&self) -> Json {
        let meta = &self.meta;
        let mut object = Map::new();
        object.insert("id".into(), meta.id.to_string().into());
        object.insert("version".into(), meta.version.into());
        object.insert("created_at".into(), Value::Time(meta.created_at).to_json());
        object.insert("updated_at".into(), Value::Time(meta.updated_at).to_json());
        for (key, part) in self.parts() {
            if !part.omitted(self.def) {
                object.insert(key.into(), part.to_json());
            }
        }
        Json::Object(object)
    }
}

impl Changes {
    /// The fields that differ between two versions of a record, from their rows: on creation
    /// every set field (and the id) as "after", on deletion every set field as "before". The
    /// bookkeeping fields (version, times) are left out, as in [`Changes::between`].
    pub fn between_rows(before: Option<&RecordRow>, after: Option<&RecordRow>) -> Changes {
        let mut changes = Changes::default();
        match (before, after) {
            (Some(old), Some(new)) => {
                for ((key, a), (_, b)) in old.parts().zip(new.parts()) {
                    if a != b {
                        changes.before.insert(key.into(), a.to_json());
                        changes.after.insert(key.into(), b.to_json());
                    }
                }
            }
            (Some(row), None) => changes.before = set_fields(row),
            (None, Some(row)) => changes.after = set_fields(row),
            (None, None) => {}
        }
        changes
    }

    /// Replaces with `null` every value of a field `def` marks personal, and the custom fields
    /// (a tenant may keep anything there): what erasing a person does to the audit trail of
    /// their record, which keeps that the record changed and when.
    pub fn redact(&mut self, def: &KindDef) {
        let personal = |key: &str| key == "custom_fields" || def.field(key).is_some_and(|f| f.personal);
        for side in [&mut self.before, &mut self.after] {
            for (key, value) in side.iter_mut() {
                if personal(key) {
                    *value = Json::Null;
                }
            }
        }
    }
}

/// The id and every field a row sets, as JSON.
fn set_fields(row: &RecordRow) -> Map<String, Json> {
    let mut fields = Map::new();
    fields.insert("id".into(), row.meta.id.to_string().into());
    for (key, part) in row.parts() {
        let json = part.to_json();
        if !json.is_null() {
            fields.insert(key.into(), json);
        }
    }
    fields
}
