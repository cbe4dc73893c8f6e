//! Lead import (JSON array or CSV) and streamed export (CSV or JSON) with the list's filters.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::kind::LEAD;
use crm_core::model::{Lead, NewLead};
use crm_core::{Crm, FieldError, ImportMode, ListRequest, RowError, Scope};
use futures_util::stream;
use serde::Serialize;

use super::list;
use super::records::leads::Filters as LeadFilters;
use super::records_csv;
use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Auth, parse};

/// Parsed rows (with their input index) and the rows that could not be parsed.
type Parsed = (Vec<(usize, NewLead)>, Vec<RowError>);

/// The outcome of an import.
#[derive(Serialize, utoipa::ToSchema)]
struct ImportReport {
    /// How many leads were created.
    created: usize,
    /// Their ids, in input order.
    ids: Vec<uuid::Uuid>,
    /// Refused rows (0-based, not counting a CSV header) and why. In atomic mode a non-empty
    /// list means nothing was created.
    errors: Vec<RowError>,
}

/// `?mode=` of an import.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Names the values the parser below accepts, for the document only.
enum ImportModeName {
    /// Create the valid rows, report the others (default).
    BestEffort,
    /// Create every row or none.
    Atomic,
}

/// `?format=` of an export.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Names the values the parser below accepts, for the document only.
enum ExportFormat {
    /// A JSON array of leads (default).
    Json,
    /// CSV with a header row.
    Csv,
}

/// How CSV import and export lay out a lead, for both operations' descriptions.
macro_rules! csv_layout {
    () => {
        "CSV has a header row naming the columns. Export writes `id, version, \
created_at, updated_at, first_name, last_name, email, phone, company, title, source, status, \
owner_id, converted_contact_id, custom_fields` (custom fields as a JSON object; cells a spreadsheet \
would run as a formula get a leading `'`). Import reads, in any order, any of the columns a \
caller sets on create: from `first_name` to `owner_id`, and `custom_fields`."
    };
}

/// Import leads
///
/// `application/json` (an array of leads) or `text/csv` (a header row naming lead fields).
/// Refused rows are reported by index; `?mode=atomic` writes all or nothing.
#[utoipa::path(
    post,
    path = "/api/leads/import",
    tag = "leads",
    operation_id = "import_leads",
    description = concat!(
        "An array of leads as JSON, or CSV. Each row is validated like a created lead; refused rows \
         are reported by index. In `atomic` mode nothing is created if any row is refused. ",
        csv_layout!()
    ),
    params(("mode" = inline(Option<ImportModeName>), Query, description = "What to do with invalid rows.")),
    request_body(
        description = "Up to 32 MiB of leads.",
        content(
            (Vec<crm_core::model::NewLead> = "application/json"),
            (String = "text/csv", example = "first_name,last_name,email\nAda,Lovelace,ada@example.com\n"),
        )
    ),
    responses(
        (status = 200, description = "What was created and which rows were refused (best effort; \
            an atomic import that refuses a row answers 422, each field named `[i].<field>` like a body error).", body = ImportReport),
    )
)]
pub async fn import_leads(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut mode = ImportMode::BestEffort;
    for (key, value) in pairs {
        match (key.as_str(), value.as_str()) {
            ("mode", "atomic") => mode = ImportMode::Atomic,
            ("mode", "best_effort") => mode = ImportMode::BestEffort,
            ("mode", _) => return Err(ApiError::invalid("mode", "must be atomic or best_effort")),
            _ => return Err(ApiError::invalid(&key, "is not a parameter of import")),
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (rows, mut errors): Parsed = match media.as_str() {
        "application/json" => (parse::<Vec<NewLead>>(&body)?.into_iter().enumerate().collect(), Vec::new()),
        "text/csv" => from_csv(&body)?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send application/json or text/csv.",
            ));
        }
    };
    if mode == ImportMode::Atomic && !errors.is_empty() {
        return Err(refused(errors));
    }
    let (indexes, leads): (Vec<usize>, Vec<NewLead>) = rows.into_iter().unzip();
    let report = state.crm().import::<Lead>(&scope, leads, mode).await?;
    errors.extend(report.errors.into_iter().map(|e| RowError { row: indexes[e.row], errors: e.errors }));
    errors.sort_by_key(|e| e.row);
    if mode == ImportMode::Atomic && !errors.is_empty() {
        return Err(refused(errors));
    }
    let ids: Vec<uuid::Uuid> = report.created.iter().map(|l| l.meta.id.uuid()).collect();
    Ok(axum::Json(ImportReport { created: ids.len(), ids, errors }).into_response())
}

/// An atomic import that refused rows (so created nothing): a 422 naming each refused field
/// `[i].<field>`, as a malformed body names it.
fn refused(errors: Vec<RowError>) -> ApiError {
    let fields = errors
        .into_iter()
        .flat_map(|e| {
            e.errors.into_iter().map(move |f| FieldError::new(format!("[{}].{}", e.row, f.field), f.message))
        })
        .collect();
    crm_core::Error::Validation(fields).into()
}

/// Parses CSV rows into leads, column by column from the lead description; cells that cannot
/// be a lead's field are row errors.
fn from_csv(body: &[u8]) -> Result<Parsed, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|_| ApiError::invalid("body", "the first CSV row must name the columns"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(unknown) = header.iter().find(|h| !records_csv::importable(&LEAD, h)) {
        return Err(ApiError::invalid(
            &format!("columns.{unknown}"),
            format!("is not a {} field that can be imported", LEAD.name),
        ));
    }
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for (row, record) in reader.records().enumerate() {
        let parsed = match record {
            Ok(record) => records_csv::input(&LEAD, header.iter().map(String::as_str).zip(record.iter()))
                .and_then(|object| {
                    serde_json::from_value::<NewLead>(serde_json::Value::Object(object))
                        .map_err(|e| vec![FieldError::new("row", e.to_string())])
                }),
            Err(e) => Err(vec![FieldError::new("row", format!("is not valid CSV: {e}"))]),
        };
        match parsed {
            Ok(lead) => rows.push((row, lead)),
            Err(errors_of_row) => errors.push(RowError { row, errors: errors_of_row }),
        }
    }
    Ok((rows, errors))
}

/// Export leads
///
/// Every lead matching the filters (as in the list, without paging), streamed page by page so
/// memory stays flat however many there are.
#[utoipa::path(
    get,
    path = "/api/leads/export",
    tag = "leads",
    operation_id = "export_leads",
    description = concat!(
        "Every lead matching the filters (as in the list, without paging), streamed page by page. ",
        csv_layout!()
    ),
    params(("format" = inline(Option<ExportFormat>), Query, description = "The file format."), LeadFilters),
    responses((
        status = 200,
        description = "Every matching lead, newest first.",
        headers(("Content-Disposition" = String,
            description = "`attachment` named `leads.json` or `leads.csv`.")),
        content(
            (Vec<Lead> = "application/json"),
            (String = "text/csv"),
        )
    ))
)]
pub async fn export_leads(
    State(state): State<ApiState>,
    Auth(scope): Auth,
    Query(mut pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let csv = match pairs.iter().position(|(k, _)| k == "format") {
        Some(i) => match pairs.remove(i).1.as_str() {
            "csv" => true,
            "json" => false,
            _ => return Err(ApiError::invalid("format", "must be csv or json")),
        },
        None => false,
    };
    if let Some((paging, _)) = pairs.iter().find(|(k, _)| k == "limit" || k == "cursor") {
        return Err(ApiError::invalid(paging, "export returns every matching lead; use the list to page"));
    }
    let request = list::parse(&crm_core::kind::LEAD, scope.user_id(), pairs)?.limit(200);
    // Check access and filters before the 200 goes out, so errors are still problems.
    let first = state.crm().list::<Lead>(&scope, request.clone()).await?;
    let exporter = Exporter { crm: state.crm().clone(), scope, request, csv };
    let chunks = stream::unfold(Some((exporter, Some(first), true)), |state| async move {
        let (exporter, page, first_chunk) = state?;
        let page = match page {
            Some(p) => p,
            None => return None,
        };
        let mut chunk = exporter.render(&page.data, first_chunk);
        let next = match page.next_cursor {
            Some(cursor) => {
                let request = exporter.request.clone().cursor(Some(cursor));
                match exporter.crm.list::<Lead>(&exporter.scope, request).await {
                    Ok(p) => Some(p),
                    Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                }
            }
            None => {
                if !exporter.csv {
                    chunk.extend_from_slice(b"]");
                }
                None
            }
        };
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), next.map(|p| (exporter, Some(p), false))))
    });
    let mut response = Body::from_stream(chunks).into_response();
    let (media, name) =
        if csv { ("text/csv; charset=utf-8", "leads.csv") } else { ("application/json", "leads.json") };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

struct Exporter {
    crm: Crm,
    scope: Scope,
    request: ListRequest,
    csv: bool,
}

impl Exporter {
    fn render(&self, leads: &[Lead], first: bool) -> Vec<u8> {
        if !self.csv {
            let mut out = Vec::new();
            if first {
                out.push(b'[');
            }
            for (i, lead) in leads.iter().enumerate() {
                if !(first && i == 0) {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(lead).unwrap_or_default());
            }
            if first && leads.is_empty() {
                return b"[".to_vec();
            }
            return out;
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        if first {
            let _ = writer.write_record(records_csv::export_columns(&LEAD));
        }
        for lead in leads {
            let json = serde_json::to_value(lead).unwrap_or_default();
            let _ = writer.write_record(records_csv::cells(&LEAD, &json).iter().map(|cell| defuse(cell)));
        }
        writer.into_inner().unwrap_or_default()
    }
}

/// Cells that spreadsheets would run as formulas get a leading `'` (OWASP CSV injection).
fn defuse(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}
