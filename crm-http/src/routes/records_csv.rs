//! Records as CSV rows and back, column by column from their kind's description, so import and
//! export follow a kind's fields without restating them.

use crm_core::FieldError;
use crm_core::kind::{FieldType, KindDef, Writable};
use serde_json::{Map, Value};

/// The meta columns an export starts with.
const META: [&str; 4] = ["id", "version", "created_at", "updated_at"];

/// The columns a record of `def` is exported as: the meta columns, its fields in order, then
/// `custom_fields` when the kind has them.
pub(super) fn export_columns(def: &KindDef) -> Vec<&'static str> {
    let mut columns = META.to_vec();
    columns.extend(def.fields.iter().map(|f| f.name));
    if def.custom_fields {
        columns.push("custom_fields");
    }
    columns
}

/// Whether an import may name `column`: a field a caller sets on create, or the custom fields.
pub(super) fn importable(def: &KindDef, column: &str) -> bool {
    match def.field(column) {
        Some(field) => field.write != Writable::Rule,
        None => def.custom_fields && column == "custom_fields",
    }
}

/// A record's cells in [`export_columns`] order, from its JSON form: text as is, absent values
/// empty, numbers and objects (money, custom fields) as JSON.
pub(super) fn cells(def: &KindDef, record: &Value) -> Vec<String> {
    export_columns(def)
        .into_iter()
        .map(|column| match record.get(column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        })
        .collect()
}

/// One CSV row as the JSON object of a create input: each non-empty cell checked against its
/// field's type (an empty cell leaves the field out). Columns must be [`importable`].
pub(super) fn input<'a>(
    def: &KindDef,
    row: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let (mut object, mut errors) = (Map::new(), Vec::new());
    for (column, cell) in row {
        if cell.is_empty() {
            continue;
        }
        let value = match def.field(column) {
            Some(field) => typed(field.ty, cell),
            None => serde_json::from_str::<Map<String, Value>>(cell)
                .map(Value::Object)
                .map_err(|_| "is not a JSON object".to_owned()),
        };
        match value {
            Ok(value) => {
                object.insert(column.to_owned(), value);
            }
            Err(message) => errors.push(FieldError::new(column, message)),
        }
    }
    if errors.is_empty() { Ok(object) } else { Err(errors) }
}

/// A cell as the JSON value a field of type `ty` takes, or why it cannot be one.
fn typed(ty: FieldType, cell: &str) -> Result<Value, String> {
    let text = || Value::String(cell.to_owned());
    match ty {
        FieldType::Enum(values) if values.contains(&cell) => Ok(text()),
        FieldType::Enum(values) => Err(format!("is not one of: {}", values.join(", "))),
        FieldType::Ref(_) | FieldType::Member => uuid::Uuid::try_parse(cell)
            .map(|id| Value::String(id.to_string()))
            .map_err(|_| "is not an id".to_owned()),
        FieldType::Int => {
            cell.parse::<i64>().map(Value::from).map_err(|_| "is not a whole number".to_owned())
        }
        FieldType::Bool => {
            cell.parse::<bool>().map(Value::from).map_err(|_| "is not true or false".to_owned())
        }
        FieldType::Date => cell
            .parse::<chrono::NaiveDate>()
            .map(|_| text())
            .map_err(|_| "is not a date (YYYY-MM-DD)".to_owned()),
        FieldType::Time => chrono::DateTime::parse_from_rfc3339(cell)
            .map(|_| text())
            .map_err(|_| "is not an RFC 3339 time".to_owned()),
        FieldType::Money { .. } | FieldType::Json => {
            serde_json::from_str(cell).map_err(|_| "is not JSON".to_owned())
        }
        // Text, e-mail, phone and stage keys are checked by the kind's own validation; so is a
        // field type added later until it is given a parse here.
        _ => Ok(text()),
    }
}

#[cfg(test)]
mod tests {
    use crm_core::kind::{DEAL, LEAD};
    use serde_json::json;

    use super::*;

    #[test]
    fn lead_columns_come_from_its_description() {
        assert_eq!(
            export_columns(&LEAD),
            [
                "id",
                "version",
                "created_at",
                "updated_at",
                "first_name",
                "last_name",
                "email",
                "phone",
                "company",
                "title",
                "source",
                "status",
                "owner_id",
                "converted_contact_id",
                "custom_fields"
            ]
        );
        assert!(importable(&LEAD, "status") && importable(&LEAD, "custom_fields"));
        assert!(!importable(&LEAD, "converted_contact_id"), "set only by conversion");
        assert!(!importable(&LEAD, "id") && !importable(&LEAD, "nickname"));
    }

    #[test]
    fn cells_are_checked_by_field_type() {
        let row = [
            ("last_name", "Lovelace"),
            ("status", "contacted"),
            ("email", ""),
            ("custom_fields", "{\"a\":1}"),
        ];
        let input = input(&LEAD, row).unwrap();
        assert_eq!(
            Value::Object(input),
            json!({"last_name": "Lovelace", "status": "contacted", "custom_fields": {"a": 1}})
        );
        let bad = [("status", "sleeping"), ("owner_id", "me"), ("custom_fields", "[1]")];
        let fields: Vec<String> =
            super::input(&LEAD, bad).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["status", "owner_id", "custom_fields"]);
        let deal = [("amount", "{\"amount_minor\":5,\"currency\":\"EUR\"}"), ("probability", "x")];
        let errors = super::input(&DEAL, deal).unwrap_err();
        assert_eq!((errors.len(), errors[0].field.as_str()), (1, "probability"));
    }

    #[test]
    fn exported_cells_follow_the_columns() {
        let lead =
            json!({"id": "i", "version": 2, "last_name": "O'Neil", "custom_fields": {}, "email": null});
        let cells = cells(&LEAD, &lead);
        assert_eq!(cells.len(), export_columns(&LEAD).len());
        assert_eq!((cells[0].as_str(), cells[1].as_str(), cells[5].as_str()), ("i", "2", "O'Neil"));
        assert_eq!((cells[6].as_str(), cells[14].as_str()), ("", "{}"));
    }
}
