//! What a text field may hold, from its description: core checks every record's text fields
//! against it before the kind's own rules run, and the OpenAPI document states the same rules
//! (`maxLength`, `minLength`, `pattern`), so a client that satisfies the schema is not refused.
//!
//! The patterns are written for every regex dialect a client may use (ECMA-262, Python, Rust's
//! `regex`): character classes with `\uXXXX` escapes and no look-around. crm-http's contract
//! test holds each pattern to the check here over a list of tricky strings.

use super::{FieldDef, FieldType, RecordRow, Value};
use crate::error::FieldError;
use crate::validate;

/// `a, b or c`.
fn one_of_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// How much a text field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextShape {
    /// One line of up to 200 characters (a name, a title): no control characters.
    Line,
    /// Up to 20 000 characters over several lines: tabs and line breaks allowed.
    Body,
}

/// The rule a text-like field's values follow, as the schema states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    /// At least this many characters.
    pub min_chars: usize,
    /// At most this many characters.
    pub max_chars: usize,
    /// The shape of the whole value, as a JSON Schema `pattern`.
    pub pattern: &'static str,
}

/// One line: no control character (Unicode `Cc`).
const LINE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// One line with a character that is not white space: a required name is never blank.
const NOT_BLANK: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// Several lines: no control character but tab, line feed and carriage return.
const BODY: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";
/// Digits and the usual separators, with a digit somewhere.
const PHONE: &str = r"^[0-9 +().x/-]*[0-9][0-9 +().x/-]*$";
/// `local@domain`: no white space, control character or second `@`; dotted labels of letters,
/// digits and inner hyphens (ASCII: an internationalized domain in its `xn--` form).
const EMAIL: &str = r"^[^\s@\u0000-\u001f\u007f-\u009f]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
/// Dotted labels of letters, digits and inner hyphens, like an e-mail's domain.
const DOMAIN: &str =
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";

impl TextRule {
    /// A required one-line name (an API key's, a member's, a stage's).
    pub const NAME: TextRule = TextRule { min_chars: 1, max_chars: validate::MAX_NAME, pattern: NOT_BLANK };
    /// An e-mail address.
    pub const EMAIL: TextRule = TextRule { min_chars: 3, max_chars: validate::MAX_EMAIL, pattern: EMAIL };
    /// Text of several lines (a custom field's string values).
    pub const BODY: TextRule = TextRule { min_chars: 0, max_chars: validate::MAX_BODY, pattern: BODY };
}

impl FieldDef {
    /// The rule its values follow, for text-like fields.
    pub fn text_rule(&self) -> Option<TextRule> {
        let rule = |min_chars, max_chars, pattern| Some(TextRule { min_chars, max_chars, pattern });
        match (self.ty, self.text) {
            (FieldType::Text, TextShape::Line) if self.nullable => rule(0, validate::MAX_NAME, LINE),
            (FieldType::Text, TextShape::Line) => rule(1, validate::MAX_NAME, NOT_BLANK),
            (FieldType::Text, TextShape::Body) => rule(0, validate::MAX_BODY, BODY),
            (FieldType::Email, _) => rule(3, validate::MAX_EMAIL, EMAIL),
            (FieldType::Phone, _) => rule(3, 50, PHONE),
            (FieldType::Domain, _) => rule(3, validate::MAX_EMAIL - 2, DOMAIN),
            _ => None,
        }
    }
}

/// Checks every text-like value of a record against its field's rule, naming the field, and
/// that each of its kind's [`filled_one_of`](super::KindDef::filled_one_of) groups has a value
/// that is not blank (naming the group's first field).
pub(crate) fn check(row: &RecordRow, errors: &mut Vec<FieldError>) {
    for group in row.def.filled_one_of {
        let filled = |name: &&str| matches!(row.value(name), Some(Value::Text(t)) if !t.trim().is_empty());
        if let ([first, ..], false) = (group, group.iter().any(filled)) {
            errors.push(FieldError::new(*first, format!("one of {} is required", one_of_names(group))));
        }
    }
    for (column, value) in row.def.columns().zip(&row.values) {
        let (Some(field), Value::Text(text)) = (row.def.field(column.name), value) else { continue };
        let name = field.name;
        match (field.ty, field.text) {
            (FieldType::Text, TextShape::Line) if !field.nullable => {
                validate::required_name(name, text, errors)
            }
            (FieldType::Text, TextShape::Line) => {
                validate::text(name, text, validate::MAX_NAME, false, errors)
            }
            (FieldType::Text, TextShape::Body) => {
                validate::text(name, text, validate::MAX_BODY, true, errors)
            }
            (FieldType::Email, _) => validate::email(name, text, errors),
            (FieldType::Phone, _) => validate::phone(name, text, errors),
            (FieldType::Domain, _) if !validate::is_email(&format!("x@{text}")) => {
                errors.push(FieldError::new(name, "must be a domain name like example.com"));
            }
            _ => {}
        }
    }
}
