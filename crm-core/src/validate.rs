//! Field checks shared by every record type. Each check pushes a [`FieldError`] naming the field.

use crate::error::FieldError;
use crate::model::CustomFields;

/// Longest name-like text (names, titles, companies), in characters.
pub const MAX_NAME: usize = 200;
/// Longest free text (activity bodies), in characters.
pub const MAX_BODY: usize = 20_000;
/// Longest e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Most custom fields on one record.
pub const MAX_CUSTOM_FIELDS: usize = 64;
/// Largest custom-fields object, serialized, in bytes.
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;

/// Text of at most `max` characters without control characters (newlines and tabs allowed when
/// `multiline`); NUL is always refused because PostgreSQL cannot store it.
pub(crate) fn text(field: &str, value: &str, max: usize, multiline: bool, errors: &mut Vec<FieldError>) {
    if value.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    } else if value.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
}

/// Required name-like text: present and not blank.
pub(crate) fn required_name(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "is required and must not be blank"));
    } else {
        text(field, value, MAX_NAME, false, errors);
    }
}

/// An e-mail address: `local@domain` with a dotted domain, no spaces, at most 254 characters.
///
/// Deliberately lenient on the local part (RFC 5322 allows far more than people expect) and
/// strict on what breaks delivery.
pub(crate) fn email(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if !is_email(value) {
        errors.push(FieldError::new(field, "must be an e-mail address like name@example.com"));
    }
}

/// Checks every string inside a JSON value as multi-line text (no NUL or other control
/// characters), so no store meets a string it cannot hold.
pub(crate) fn json_strings(field: &str, value: &serde_json::Value, errors: &mut Vec<FieldError>) {
    match value {
        serde_json::Value::String(s) => text(field, s, MAX_BODY, true, errors),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(field, v, errors)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(field, v, errors)),
        _ => {}
    }
}

/// Earliest and latest years accepted in times and dates: what every store can hold.
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A time within [`YEARS`].
pub(crate) fn time(field: &str, value: &chrono::DateTime<chrono::Utc>, errors: &mut Vec<FieldError>) {
    use chrono::Datelike;
    if !YEARS.contains(&value.year()) {
        errors.push(FieldError::new(field, "must be between the years 1 and 9999"));
    }
}

/// A date within [`YEARS`].
pub(crate) fn date(field: &str, value: &chrono::NaiveDate, errors: &mut Vec<FieldError>) {
    use chrono::Datelike;
    if !YEARS.contains(&value.year()) {
        errors.push(FieldError::new(field, "must be between the years 1 and 9999"));
    }
}

/// Whether `value` looks like a deliverable e-mail address: at most 254 characters, a local
/// part of at most 64 without white space, control characters or `@`, and a dotted domain of
/// ASCII labels (an internationalized domain in its `xn--` form), so the OpenAPI pattern can
/// state exactly the same rule in every regex dialect.
pub fn is_email(value: &str) -> bool {
    if value.chars().count() > MAX_EMAIL || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = value.rsplit_once('@') else { return false };
    !local.is_empty()
        && local.chars().count() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A phone number: digits with the usual separators, 3 to 50 characters.
pub(crate) fn phone(field: &str, v: &str, errors: &mut Vec<FieldError>) {
    let ok = (3..=50).contains(&v.len())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c));
    if !ok {
        errors.push(FieldError::new(field, "must be a phone number of digits, spaces and + - ( ) ."));
    }
}

/// A key: lower-case ASCII letters, digits and `_`, 1 to 64 characters (stage keys, field names).
pub fn is_key(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Longest caller's key ([`is_printable_key`]), in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A caller's key (an `Idempotency-Key`, a job's unique key): 1 to [`MAX_KEY_LEN`] printable
/// ASCII characters, not all spaces — what an HTTP header can carry unchanged.
pub fn is_printable_key(value: &str) -> bool {
    !value.trim().is_empty()
        && value.len() <= MAX_KEY_LEN
        && value.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// A tenant slug: 3–63 of `a-z`, `0-9` and `-`, not starting or ending with `-` (DNS-label safe,
/// so it can be a subdomain).
pub fn is_slug(value: &str) -> bool {
    (3..=63).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// Custom fields: at most 64 keys named like `a-z0-9_`, scalar values or arrays of scalars,
/// at most 16 KiB serialized.
pub(crate) fn custom_fields(value: &CustomFields, errors: &mut Vec<FieldError>) {
    if value.len() > MAX_CUSTOM_FIELDS {
        errors
            .push(FieldError::new("custom_fields", format!("must have at most {MAX_CUSTOM_FIELDS} fields")));
        return;
    }
    for (key, v) in value {
        let field = format!("custom_fields.{key}");
        if !is_key(key) {
            errors.push(FieldError::new(
                "custom_fields",
                "field names must be 1-64 characters of a-z, 0-9 and _",
            ));
            continue;
        }
        let scalar = |v: &serde_json::Value| !v.is_object() && !v.is_array();
        let ok = scalar(v) || v.as_array().is_some_and(|items| items.iter().all(scalar));
        if !ok {
            errors.push(FieldError::new(
                field.clone(),
                "must be a string, number, boolean, null or a list of those",
            ));
        }
        json_strings(&field, v, errors);
    }
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_FIELDS_BYTES {
        errors.push(FieldError::new("custom_fields", "must be at most 16 KiB"));
    }
}

/// Whether `code` is an active ISO 4217 currency code.
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// The codes [`is_currency`] accepts, sorted: what a schema lists as money's currencies.
pub fn currencies() -> &'static [&'static str] {
    CURRENCIES
}

/// Active ISO 4217 codes (sorted, for binary search), including precious metals and SDR.
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD",
    "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF",
    "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL",
    "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF",
    "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
    "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF",
    "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL",
    "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU",
    "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD",
    "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_currency("EUR") && !is_currency("eur") && !is_currency("XXX"));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "jane.doe+crm@example.com", "x@sub.domain.io"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a b@c.de", "a@-b.co", "a@b..co", "a@b.co\n"] {
            assert!(!is_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn slugs() {
        assert!(is_slug("acme") && is_slug("acme-2"));
        assert!(!is_slug("ac") && !is_slug("-acme") && !is_slug("Acme") && !is_slug("a_b_c"));
    }
}
