//! List requests: validation of filters per kind, search terms, limits and cursors.

use serde::Serialize;

use crate::cursor;
use crate::error::{Error, FieldError, Result};
use chrono::{DateTime, Utc};

use crate::kind::{FieldType, KindDef, Value};
use crate::model::{Kind, Record};
use crate::store::{Filter, ListQuery, Sort, SortKey};
use crate::validate;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 200;

/// What a caller asks of a list: filters, text search, page size and position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListRequest {
    /// Exact filters.
    pub filter: Filter,
    /// Text search over names, e-mail and company: every word must start a word of the record.
    pub q: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The order: `created_at` or a sortable field of the kind, smallest first, or `-<name>`
    /// for largest first; records without a value last either way. Default: newest first.
    pub sort: Option<String>,
}

impl ListRequest {
    /// A request with no filters and the default page size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the text search.
    pub fn q(mut self, q: impl Into<String>) -> Self {
        self.q = Some(q.into());
        self
    }

    /// Continues after a previous page.
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Orders the list (`due_at`, `-created_at`, …).
    pub fn sort(mut self, sort: impl Into<String>) -> Self {
        self.sort = Some(sort.into());
        self
    }

    /// Replaces the filters.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
}

/// One page of results and the cursor for the next (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items, in the list's order.
    pub data: Vec<T>,
    /// Pass back as `cursor` to get the next page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// Checks a page size.
pub(crate) fn limit(limit: Option<u32>) -> Result<u32> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")))
    }
}

/// Turns a caller's request into a store query, refusing filters the kind does not have;
/// `None` for a valid request no record can match.
pub(crate) fn to_query(
    kind: Kind,
    mut request: ListRequest,
    now: DateTime<Utc>,
) -> Result<Option<ListQuery>> {
    let mut errors = Vec::new();
    let def = crate::kind::condition::listed(kind)?;
    for name in std::mem::take(&mut request.filter.named) {
        match def.named_filters.iter().find(|n| n.name == name) {
            Some(named) => (named.apply)(now, &mut request.filter),
            None => errors.push(FieldError::new(name, format!("is not a filter for {} records", def.name))),
        }
    }
    let f = &request.filter;
    crate::kind::condition::lower(def, f, &mut errors);
    if request.q.is_some() && !def.searchable() {
        errors.push(FieldError::new("q", format!("is not a filter for {} records", kind.as_str())));
    }
    for (name, value) in &f.custom_fields {
        if validate::is_key(name) {
            validate::json_strings(&format!("cf.{name}"), value, &mut errors);
        }
    }
    if f.custom_fields.len() > validate::MAX_CUSTOM_FIELDS {
        errors.push(FieldError::new(
            "custom_fields",
            format!("at most {} custom-field filters", validate::MAX_CUSTOM_FIELDS),
        ));
    }
    if let Some(t) = &f.created_after {
        validate::time("created_after", t, &mut errors);
    }
    if let Some(t) = &f.created_before {
        validate::time("created_before", t, &mut errors);
    }
    for range in &f.ranges {
        let stem = range.field.strip_suffix("_at").unwrap_or(&range.field);
        if let Some(t) = &range.from {
            validate::time(&format!("{stem}_after"), t, &mut errors);
        }
        if let Some(t) = &range.before {
            validate::time(&format!("{stem}_before"), t, &mut errors);
        }
    }
    // An inverted range (`created_after` later than `created_before`) is not an error: it matches
    // nothing, as an inverted `due_*` range does, and a schema could not state the rule.
    let mut matches_nothing = false;
    let search = match &request.q {
        Some(q) => {
            let terms = crate::search::query_terms(q);
            // What the `q` schema refuses (nothing but spaces and ASCII punctuation) is an
            // error; other text without a word (`¥`, `🚀`) is a search no record matches.
            // (The schema's `\s` is ECMAScript's: U+FEFF is a space there, U+0085 is not.)
            let space = |c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}';
            let refused = |c: char| space(c) || c.is_ascii() && !c.is_ascii_alphanumeric();
            if terms.is_empty() && q.chars().all(refused) {
                errors.push(FieldError::new("q", "must contain a letter or a digit"));
            }
            matches_nothing = terms.is_empty();
            terms
        }
        None => Vec::new(),
    };
    let limit = match limit(request.limit) {
        Ok(l) => l,
        Err(e) => {
            errors.extend(e.field_errors().iter().cloned());
            DEFAULT_LIMIT
        }
    };
    let mut sort = request.sort.as_deref().and_then(|s| sort_of(def, s, &mut errors));
    let after = match request.cursor.as_deref().map(cursor::decode_sorted).transpose() {
        Ok(position) => {
            if let (Some(sort), Some(position)) = (&mut sort, position) {
                sort.after_value = position.at.map_or(Value::Null, Value::Time);
            }
            position.map(|p| p.id)
        }
        Err(e) => {
            errors.extend_from_slice(e.field_errors());
            None
        }
    };
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok((!matches_nothing).then_some(ListQuery { kind, filter: request.filter, search, limit, after, sort }))
}

/// The order `-name` or `name` names, if `def` may be sorted by it.
fn sort_of(def: &'static KindDef, sort: &str, errors: &mut Vec<FieldError>) -> Option<Sort> {
    let (descending, name) = match sort.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, sort),
    };
    let key = match def.field(name) {
        _ if name == "created_at" => SortKey::CreatedAt,
        Some(field) if field.sort && field.ty == FieldType::Time => SortKey::Field(field),
        _ => {
            let mut names = vec!["created_at"];
            names.extend(def.fields.iter().filter(|f| f.sort).map(|f| f.name));
            errors.push(FieldError::new(
                "sort",
                format!("must be one of {} (`-` before it for largest first)", names.join(", ")),
            ));
            return None;
        }
    };
    Some(Sort { key, descending, after_value: Value::Null })
}

/// Builds a page of a sorted list from up to `limit + 1` records: the cursor holds the last
/// record's sort value and id.
pub(crate) fn page_sorted<R: Record>(mut rows: Vec<R>, limit: u32, sort: &Sort) -> Page<R> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let last = rows.last().filter(|_| more);
    let next_cursor = last.map(|record| {
        let at = match sort.key {
            SortKey::CreatedAt => Some(record.meta().created_at),
            SortKey::Field(field) => match record.to_row().value(field.name) {
                Some(Value::Time(at)) => Some(*at),
                _ => None,
            },
        };
        cursor::encode_sorted(cursor::SortedCursor { at, id: record.meta().id.uuid() })
    });
    Page { data: rows, next_cursor }
}

/// Builds a page from up to `limit + 1` rows: the extra row only signals that more exist.
pub(crate) fn page_by_id<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> uuid::Uuid) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| cursor::encode_id(id(r))) } else { None };
    Page { data: rows, next_cursor }
}
