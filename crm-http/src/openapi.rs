//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.
//!
//! Handlers describe themselves with `#[utoipa::path]` and are registered through
//! `utoipa_axum`'s `OpenApiRouter`, so the router and the document come from the same calls and
//! cannot drift apart. This module adds what every operation shares: the problem responses, the
//! security schemes, and [`cross_cutting`], which derives from each operation's own declaration
//! the statuses that its extractors (not its handler) produce.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_core::kind::TextRule;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HttpMethod, OpenApi as Document, Ref, RefOr, Required, SecurityRequirement};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::problem::Problem;

/// The parts of the document no handler owns: info, tags, security schemes, shared responses.
/// The record kinds' tags come from their descriptions ([`kind_tags`]).
#[derive(OpenApi)]
#[openapi(
    info(description = API_DESCRIPTION),
    modifiers(&SecuritySchemes),
    components(
        schemas(Problem),
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            Invalid,
            RateLimited,
            Unavailable,
            Unexpected
        )
    ),
    tags(
        (name = "meta", description = "Health checks and this document."),
        (name = "auth", description = "Registration, sessions and the caller."),
        (name = "users", description = "Members of the tenant and their roles (admins write)."),
        (name = "api-keys", description = "Tenant API keys (admins)."),
        (name = "audit", description = "The tenant's audit trail (admins)."),
        (name = "jobs", description = "The tenant's background jobs: inspect, retry, cancel (admins)."),
    )
)]
pub(crate) struct ApiDoc;

const API_DESCRIPTION: &str = "\
The REST API of an embeddable, multi-tenant CRM.

- **Tenancy.** With a token, the token's tenant is authoritative; an `X-Tenant` header (id or \
slug) or subdomain naming another tenant is refused with 403. Without a token (login), the tenant \
comes from `X-Tenant`, the subdomain or the body.
- **Errors** are RFC 9457 `application/problem+json` bodies carrying the `request_id`; validation \
problems name each field in `errors`. Nothing a client sends produces a 500.
- **Every response** carries `X-Request-Id` (a sane incoming one is echoed) and security headers.
- **Lists** page with `limit` (1-200, default 50) and the opaque `next_cursor` passed back as \
`cursor`; the last page has `next_cursor: null`. `sort=<field>` (or `-<field>`, largest first) \
orders a list by `created_at` or a field its `sort` parameter lists, records without a value last.
- **Concurrency.** Records carry `version`, sent as `ETag: \"<version>\"`; `If-Match` on `PATCH` \
and `DELETE` makes a stale write fail with 412.
- **Rate limits** apply per client address on `/api/auth/*` and per tenant or API key elsewhere; \
limited responses carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, and a \
refusal is 429 with `Retry-After`.";

/// Names of the security schemes, as operations refer to them.
const ACCESS_TOKEN: &str = "access_token";
const API_KEY: &str = "api_key";
const API_KEY_HEADER: &str = "api_key_header";

/// The three ways to authenticate: an access token, or an API key in either header.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            ACCESS_TOKEN,
            bearer(
                "JWT",
                "An access token from register, login or refresh: `Authorization: Bearer <jwt>`. \
                 It expires after `expires_in` seconds (15 minutes by default).",
            ),
        );
        components.add_security_scheme(
            API_KEY,
            bearer(
                "crm API key",
                "A tenant API key: `Authorization: Bearer crm_…`. Acts with the key's role.",
            ),
        );
        components.add_security_scheme(
            API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A tenant API key in its own header. Acts with the key's role.",
            ))),
        );
    }
}

/// A problem response: `application/problem+json` with the [`Problem`] schema.
fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(Problem::CONTENT_TYPE, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
}

/// Declares the shared problem responses, each a `components/responses` entry that operations
/// refer to by name (`(status = 409, response = Conflict)`).
macro_rules! problem_responses {
    ($($name:ident: $description:literal;)*) => {$(
        #[doc = $description]
        pub(crate) struct $name;

        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), problem($description).into())
            }
        }
    )*};
}

problem_responses! {
    BadRequest: "The request is not well-formed: malformed JSON, or a path segment that is not UTF-8.";
    Forbidden: "The caller's role may not do this, or `X-Tenant` or the subdomain names another \
        tenant than the credentials'.";
    NotFound: "No such record: unknown, deleted, malformed or another tenant's id, indistinguishably.";
    Conflict: "The change collides with the current state (details in `detail`).";
    PreconditionFailed: "`If-Match` names a version that is no longer current; reload and retry.";
    PayloadTooLarge: "The body is larger than the limit (1 MiB; 32 MiB for imports).";
    UnsupportedMediaType: "The body's `Content-Type` is not one this operation reads.";
    Invalid: "Invalid input: `errors` names each offending body field or query parameter.";
    Unavailable: "The store does not answer, or the request timed out; retry later.";
    Unexpected: "Any other failure (500, 503, …), always as a problem without internal details.";
}

/// 401 with the challenge RFC 9110 requires.
pub(crate) struct Unauthenticated;

impl<'s> ToResponse<'s> for Unauthenticated {
    fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
        let mut response = problem("No valid credentials: missing, expired or revoked token or key.");
        let challenge = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "`Bearer realm=\"crm\"`: send an access token or an API key as a bearer token \
                 (or the key in `X-API-Key`).",
            ))
            .build();
        response.headers.insert("WWW-Authenticate".into(), challenge);
        ("Unauthenticated", response.into())
    }
}

/// 429 with the header a client needs to back off.
pub(crate) struct RateLimited;

impl<'s> ToResponse<'s> for RateLimited {
    fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
        let mut response = problem(
            "Too many requests; retry after `Retry-After` seconds. The refusal also carries \
             `RateLimit-Limit` and `RateLimit-Remaining`.",
        );
        let seconds = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
            .description(Some("Seconds to wait before retrying."))
            .build();
        response.headers.insert("Retry-After".into(), seconds);
        ("RateLimited", response.into())
    }
}

/// Adds to every operation what follows from its own declaration rather than from its handler:
///
/// - operations are authenticated unless they declare `security()`; authenticated ones accept
///   an access token or an API key, and the `Auth` extractor can answer 401, 403 or 429;
/// - a request body can be malformed (400), too large (413), of the wrong type (415) or of the
///   wrong shape (422);
/// - a path id that is malformed or unknown is 404 (400 if it does not even decode to UTF-8);
///   a query parameter that is unknown or invalid is 422;
/// - authenticated `POST` and `PATCH` accept an `Idempotency-Key`;
/// - anything else the edge can answer is a problem (`default`).
pub(crate) fn cross_cutting(doc: &mut Document) {
    each_operation(doc);
}

/// Points array items that copy a component schema at the component instead: utoipa inlines
/// the `T` of a generic `Page<T>`, and a generated client should name the item type rather than
/// declare an anonymous copy of it per list. Done on the JSON (utoipa's types do not read their
/// own output back).
fn refer_to_components(json: &mut serde_json::Value) {
    let components: Vec<(String, serde_json::Value)> = json["components"]["schemas"]
        .as_object()
        .map(|schemas| schemas.iter().map(|(name, schema)| (name.clone(), schema.clone())).collect())
        .unwrap_or_default();
    refer_items(json, &components);
}

/// Narrows each enum field of a kind's create input and patch (`New<Kind>`, `<Kind>Patch`) to
/// the values a caller may give it, from the kind's description: a lead is neither created nor
/// patched `converted`, so a generated client does not offer it.
fn creatable_values(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let inputs = crm_core::kind::RECORD_KINDS.iter().flat_map(|def| {
        [format!("New{}", def.type_name), format!("{}Patch", def.type_name)].map(|schema| (def, schema))
    });
    for (def, schema) in inputs {
        let pointer = format!("/components/schemas/{schema}/properties");
        let Some(properties) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        for field in def.fields.iter().filter(|f| !f.rule_values.is_empty()) {
            let Some(property) = properties.get_mut(field.name) else { continue };
            let description = property.get("description").cloned();
            let nullable =
                property["oneOf"].as_array().is_some_and(|b| b.iter().any(|s| s["type"] == "null"));
            let values = json!({ "type": "string", "enum": field.creatable_values() });
            let mut narrowed =
                if nullable { json!({ "oneOf": [{ "type": "null" }, values] }) } else { values };
            if let Some(description) = description {
                narrowed["description"] = description;
            }
            *property = narrowed;
        }
    }
}

/// States each text field's rule from its kind's description (`minLength`, `maxLength`,
/// `pattern`) in the record, its create input and its patch, so the schema refuses exactly what
/// core's validation refuses ([`crm_core::kind::TextRule`]).
fn text_rules(doc: &mut serde_json::Value) {
    for def in crm_core::kind::RECORD_KINDS {
        let type_name = def.type_name;
        for schema in [format!("New{type_name}"), format!("{type_name}Patch")] {
            for field in def.fields {
                let Some(rule) = field.text_rule() else { continue };
                let pointer = format!("/components/schemas/{schema}/properties/{}", field.name);
                if let Some(property) = doc.pointer_mut(&pointer) {
                    apply_text_rule(property, rule);
                }
            }
        }
    }
    for (schema, field, rule) in input_text_rules() {
        if let Some(property) = doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}")) {
            apply_text_rule(property, rule);
        }
    }
}

/// Narrows an API key's role to the roles a key may have: every one but `owner`.
fn api_key_roles(doc: &mut serde_json::Value) {
    let roles: Vec<&str> =
        crm_core::Role::ALL.iter().filter(|r| **r != crm_core::Role::Owner).map(|r| r.as_str()).collect();
    if let Some(role) = doc.pointer_mut("/components/schemas/NewApiKey/properties/role") {
        *role = serde_json::json!({
            "type": "string",
            "enum": roles,
            "description": "The role it acts with (not `owner`).",
        });
    }
}

/// The text rules of inputs that are not records, as core's validation applies them.
fn input_text_rules() -> Vec<(&'static str, &'static str, TextRule)> {
    vec![
        ("NewApiKey", "name", TextRule::NAME),
        ("NewMember", "name", TextRule::NAME),
        ("NewMember", "email", TextRule::EMAIL),
        ("Registration", "name", TextRule::NAME),
        ("Registration", "email", TextRule::EMAIL),
        ("NewTenantInfo", "name", TextRule::NAME),
        ("NewPipeline", "name", TextRule::NAME),
        ("PipelinePatch", "name", TextRule::NAME),
        ("Stage", "name", TextRule::NAME),
    ]
}

/// Writes `rule` into the string part of a property's schema (itself, or its non-null
/// `oneOf` option).
fn apply_text_rule(property: &mut serde_json::Value, rule: TextRule) {
    use serde_json::{Value, json};
    let is_string = |s: &Value| {
        s["type"] == "string" || s["type"].as_array().is_some_and(|t| t.contains(&json!("string")))
    };
    let target = if is_string(property) {
        Some(property)
    } else {
        property["oneOf"].as_array_mut().and_then(|options| options.iter_mut().find(|s| is_string(s)))
    };
    let Some(target) = target.and_then(Value::as_object_mut) else { return };
    if rule.min_chars > 0 {
        target.insert("minLength".into(), json!(rule.min_chars));
    }
    target.insert("maxLength".into(), json!(rule.max_chars));
    target.insert("pattern".into(), json!(rule.pattern));
}

/// States the part of the password policy a schema can: a password of one character repeated
/// is refused ([`crm_core::identity::check_password_policy`]; the common-password list and "not
/// your e-mail" stay in the description).
fn password_rules(doc: &mut serde_json::Value) {
    for schema in ["Registration", "NewMember"] {
        let pointer = format!("/components/schemas/{schema}/properties/password");
        if let Some(property) = doc.pointer_mut(&pointer) {
            property["not"] = serde_json::json!({ "type": "string", "pattern": "^(.)\\1*$" });
        }
    }
}

/// States each kind's reference groups on its create input: exactly one of an activity's
/// `lead_id`/`contact_id`/`account_id`/`deal_id` set (not null), at most one of a task's — as a
/// `oneOf` of which exactly one alternative holds.
fn reference_groups(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    for def in crm_core::kind::RECORD_KINDS {
        let Some(group) = def.one_of.first() else { continue };
        let pointer = format!("/components/schemas/New{}", def.type_name);
        let Some(schema) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        let set = |name: &str| json!({ "required": [name], "properties": { name: { "type": "string" } } });
        let mut options: Vec<Value> = group.fields.iter().map(|f| set(f)).collect();
        if !group.required {
            let none: serde_json::Map<String, Value> =
                group.fields.iter().map(|f| (f.to_string(), json!({ "type": "null" }))).collect();
            options.insert(0, json!({ "properties": none }));
        }
        schema.insert("oneOf".into(), Value::Array(options));
    }
}

/// States on each kind's create input the groups of text fields of which one must be filled (a
/// lead's last name, e-mail or company), as an `anyOf` of "this one is there and not blank".
fn filled_groups(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    for def in crm_core::kind::RECORD_KINDS {
        let Some(group) = def.filled_one_of.first() else { continue };
        let pointer = format!("/components/schemas/New{}", def.type_name);
        let Some(schema) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        // Unanchored: somewhere a character that is not white space (`trim` leaves something).
        let filled = |name: &str| json!({ "required": [name], "properties": { name: { "type": "string", "pattern": "\\S" } } });
        schema.insert("anyOf".into(), Value::Array(group.iter().map(|f| filled(f)).collect()));
    }
}

/// States on each kind's patch that it may not blank every field of a filled group at once (a
/// `not` of "all of them there, each null or blank"); whether blanking some of them is allowed
/// depends on what the record holds, which no schema can say.
fn filled_groups_in_patches(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    for def in crm_core::kind::RECORD_KINDS {
        let Some(group) = def.filled_one_of.first() else { continue };
        let pointer = format!("/components/schemas/{}Patch", def.type_name);
        let Some(schema) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        let blank = json!({ "oneOf": [{ "type": "null" }, { "type": "string", "pattern": "^\\s*$" }] });
        let properties: Map<String, Value> = group.iter().map(|f| (f.to_string(), blank.clone())).collect();
        schema.insert("not".into(), json!({ "required": group, "properties": properties }));
    }
}

/// A conversion's `contact` holds fields that replace the lead's, so "one of these must be
/// filled" is a rule of the merged contact, not of the overrides: they get the create input's
/// schema without it, as `ContactOverrides`.
fn conversion_overrides(doc: &mut serde_json::Value) {
    use serde_json::json;
    let Some(mut overrides) = doc.pointer("/components/schemas/NewContact").cloned() else { return };
    if let Some(schema) = overrides.as_object_mut() {
        schema.remove("anyOf");
        schema.insert("description".into(), json!("Fields of the new contact that replace the lead's."));
    }
    doc["components"]["schemas"]["ContactOverrides"] = overrides;
    let contact = doc.pointer_mut("/components/schemas/ConvertLead/properties/contact/oneOf");
    for option in contact.and_then(serde_json::Value::as_array_mut).into_iter().flatten() {
        if option["$ref"] == "#/components/schemas/NewContact" {
            option["$ref"] = json!("#/components/schemas/ContactOverrides");
        }
    }
}

/// States what core accepts beyond shapes where a schema can: the ISO 4217 codes of money
/// (`^[A-Z]{3}$` let `ABC` through) and an open stage in every stage list (`contains`).
fn money_and_stages(doc: &mut serde_json::Value) {
    use serde_json::json;
    if let Some(currency) = doc.pointer_mut("/components/schemas/Money/properties/currency") {
        currency["enum"] = json!(crm_core::validate::currencies());
    }
    let open = json!({ "required": ["kind"], "properties": { "kind": { "const": "open" } } });
    for schema in ["NewPipeline", "PipelinePatch"] {
        if let Some(stages) = doc.pointer_mut(&format!("/components/schemas/{schema}/properties/stages")) {
            stages["contains"] = open.clone();
        }
    }
}

/// Adds a tag per record kind, named by its plural and described by its `about`, before the
/// tags that follow the kinds (`audit`): a new kind's operations are grouped and described
/// without an entry here.
fn kind_tags(doc: &mut serde_json::Value) {
    let Some(tags) = doc["tags"].as_array_mut() else { return };
    let at = tags.iter().position(|tag| tag["name"] == "audit").unwrap_or(tags.len());
    let kinds =
        crm_core::kind::RECORD_KINDS.iter().filter(|def| !tags.iter().any(|tag| tag["name"] == def.plural));
    let kinds: Vec<serde_json::Value> =
        kinds.map(|def| serde_json::json!({ "name": def.plural, "description": def.about })).collect();
    tags.splice(at..at, kinds);
}

/// States which response headers are always sent and adds the ones a reply may carry: every
/// header documented so far is `required` (the contract tests hold the server to it), and each
/// `/api` response may carry the caller's `RateLimit-*` budget (absent when no credential was
/// accepted), a keyed write's success `Idempotent-Replayed` when it is a replay. Done on the JSON:
/// utoipa's `Header` has no `required`.
fn declare_headers(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let integer = |description: &str| json!({ "schema": { "type": "integer", "minimum": 0 }, "description": description });
    let rate_limits = [
        (
            "RateLimit-Limit",
            integer(
                "Requests allowed per window for this caller (tenant, API key or, on `/api/auth`, address).",
            ),
        ),
        ("RateLimit-Remaining", integer("Requests left in the current window.")),
        ("RateLimit-Reset", integer("Seconds until the window is full again.")),
    ];
    let replayed = json!({
        "schema": { "type": "string", "enum": ["true"] },
        "description": "Sent on a replay of an earlier response to the same `Idempotency-Key`.",
    });
    let mark_required = |response: &mut Value| {
        if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
            headers.values_mut().for_each(|h| h["required"] = json!(true));
        }
    };
    let add = |response: &mut Value, name: &str, header: &Value| {
        if let Some(object) = response.as_object_mut() {
            let headers = object.entry("headers").or_insert_with(|| json!({}));
            headers[name] = header.clone();
        }
    };
    if let Some(responses) = doc.pointer_mut("/components/responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            mark_required(response);
            rate_limits.iter().for_each(|(name, header)| add(response, name, header));
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let keyed = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if response.get("$ref").is_some() {
                    continue;
                }
                mark_required(response);
                if path.starts_with("/api/") {
                    rate_limits.iter().for_each(|(name, header)| add(response, name, header));
                }
                if keyed && status.starts_with('2') {
                    add(response, "Idempotent-Replayed", &replayed);
                }
            }
        }
    }
}

fn refer_items(node: &mut serde_json::Value, components: &[(String, serde_json::Value)]) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some(items) = map.get_mut("items") {
                if let Some((name, _)) = components.iter().find(|(_, schema)| schema == items) {
                    *items = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
                }
            }
            map.values_mut().for_each(|value| refer_items(value, components));
        }
        serde_json::Value::Array(values) => {
            values.iter_mut().for_each(|value| refer_items(value, components))
        }
        _ => {}
    }
}

/// The per-operation additions listed on [`cross_cutting`].
fn each_operation(doc: &mut Document) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                add_edge_responses(method, operation);
            }
        }
    }
}

fn add_edge_responses(method: HttpMethod, operation: &mut Operation) {
    let authenticated = operation.security.is_none();
    if authenticated {
        operation.security = Some(
            [ACCESS_TOKEN, API_KEY, API_KEY_HEADER]
                .into_iter()
                .map(|scheme| SecurityRequirement::new::<_, _, &str>(scheme, []))
                .collect(),
        );
    }
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let keyed = authenticated && matches!(method, HttpMethod::Post | HttpMethod::Patch);
    if keyed {
        parameters.push(idempotency_key());
    }
    let has = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
    let (by_path, by_query) = (has(ParameterIn::Path), has(ParameterIn::Query));
    if parameters.is_empty() {
        operation.parameters = None;
    }
    let mut add = |status: &str, name: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| Ref::from_response_name(name).into());
    };
    if authenticated {
        add("401", "Unauthenticated");
        add("403", "Forbidden");
        add("429", "RateLimited");
    }
    if operation.request_body.is_some() {
        add("400", "BadRequest");
        add("413", "PayloadTooLarge");
        add("415", "UnsupportedMediaType");
        add("422", "Invalid");
    }
    if keyed {
        add("409", "Conflict");
        add("422", "Invalid");
    }
    if by_path {
        add("400", "BadRequest");
        add("404", "NotFound");
    }
    if by_query {
        add("422", "Invalid");
    }
    add("default", "Unexpected");
}

/// The `Idempotency-Key` request header of authenticated writes.
fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crm_core::MAX_IDEMPOTENCY_KEY_LEN))
                .pattern(Some("^[ -~]*[!-~][ -~]*$")),
        ))
        .description(Some(
            "Makes a retry safe: the same key with the same request (method, path, query, content \
             type and body) within 24 hours replays the first successful response — same status, \
             body, `Location` and `ETag`, plus `Idempotent-Replayed: true` — without running it \
             again; with a different request it is 422 naming `Idempotency-Key`; while the first is \
             still in flight, 409. A failed request records nothing, so a corrected retry runs. A \
             response carrying a secret (a new API key) is not kept: its replay is 409. Keys are \
             1–255 printable ASCII characters, scoped per tenant and principal.",
        ))
        .build()
}

/// The finished document, serialized once per router.
#[derive(Clone)]
pub(crate) struct Served {
    doc: Arc<serde_json::Value>,
    json: Bytes,
}

impl Served {
    pub(crate) fn new(doc: Document) -> Self {
        let mut doc = serde_json::to_value(&doc).unwrap_or_default();
        refer_to_components(&mut doc);
        kind_tags(&mut doc);
        creatable_values(&mut doc);
        text_rules(&mut doc);
        reference_groups(&mut doc);
        filled_groups(&mut doc);
        filled_groups_in_patches(&mut doc);
        conversion_overrides(&mut doc);
        money_and_stages(&mut doc);
        api_key_roles(&mut doc);
        password_rules(&mut doc);
        declare_headers(&mut doc);
        let json = serde_json::to_vec(&doc).unwrap_or_default();
        Self { doc: Arc::new(doc), json: json.into() }
    }
}

/// This document.
///
/// When the router is nested under a prefix (`/crm/openapi.json`), the document names that
/// prefix as its server, so the paths it lists resolve.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object))
)]
pub(crate) async fn document(
    Extension(served): Extension<Served>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let prefix = uri.path().strip_suffix("/openapi.json").unwrap_or_default();
    let json = if prefix.is_empty() {
        served.json
    } else {
        let mut doc = (*served.doc).clone();
        doc["servers"] = serde_json::json!([{ "url": prefix }]);
        serde_json::to_vec(&doc).unwrap_or_default().into()
    };
    let mut response = json.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
