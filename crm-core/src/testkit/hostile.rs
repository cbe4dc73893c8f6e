//! Conformance cases that call the store directly, as a host may through its own handle, with
//! input core would have refused. A store must never let such input reach its SQL text: the
//! answer is the caller's own rows, no rows, or a validation error — never another tenant's
//! row, an error carrying SQL, or a panic.

use serde_json::{Value, json};

use crate::error::Error;
use crate::kind::Stored;
use crate::model::{CustomFields, Kind, Lead, NewLead};
use crate::scope::Scope;
use crate::service::Crm;
use crate::store::ListQuery;

use super::tenant;

fn lead(last_name: &str, custom_fields: Value) -> NewLead {
    let custom_fields: CustomFields = serde_json::from_value(custom_fields).expect("an object");
    NewLead { last_name: Some(last_name.into()), custom_fields, ..NewLead::default() }
}

/// Lists leads straight from the store; panics unless the answer is the scope's own rows or a
/// validation error free of SQL. Returns the last names found.
async fn store_list(crm: &Crm, scope: &Scope, query: &ListQuery, what: &str) -> Vec<String> {
    match crm.store().list(scope, query).await {
        Ok(rows) => rows
            .into_iter()
            .map(|row| {
                assert_eq!(row.tenant_id(), Some(scope.tenant_id()), "{what}: another tenant's row: {row:?}");
                let lead = Lead::from_entity(row).unwrap_or_else(|e| panic!("{what}: not a lead: {e:?}"));
                lead.last_name.unwrap_or_default()
            })
            .collect(),
        Err(err @ Error::Validation(_)) => {
            let text = format!("{err} {err:?}").to_lowercase();
            for sql in ["select", "json_", "custom_fields ->", "syntax"] {
                assert!(!text.contains(sql), "{what}: SQL in an error: {text}");
            }
            Vec::new()
        }
        Err(err) => panic!("{what}: expected rows or a validation error, got {err:?}"),
    }
}

/// Custom-field names and values are bound, never formatted into SQL: crafted names that once
/// read another tenant's leads on SQLite, quotes, comments, NUL, 10 kB and non-ASCII names get
/// only the caller's rows (here: none, or the one lead a valid filter names).
pub async fn hostile_custom_field_filters_stay_in_the_tenant(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    crm.create::<Lead>(s, lead("Ours", json!({"tier": "gold"}))).await.unwrap();
    let theirs = json!({"a": true, "tier": "gold", "v": "v"});
    crm.create::<Lead>(&globex.owner_scope, lead("Theirs", theirs)).await.unwrap();

    let long = "x".repeat(10_000);
    let keys = [
        r#"a"') IS NULL OR 1=1 OR json_type('{}', '$."a"#,
        r#""') OR t.tenant_id <> '' OR ('"#,
        "a\"",
        "')",
        "' OR 1=1 --",
        "tier' OR '1'='1",
        "tier\" OR 1=1 --",
        "tier -- ",
        "tier\0",
        "\0",
        "",
        long.as_str(),
        "ключ",
        "Tier",
        "tier.x",
        "tier[0]",
        "$",
        "*",
        "$.tier",
    ];
    let values = [
        json!(true),
        json!("v"),
        json!("gold"),
        json!(null),
        json!(1),
        json!(1.5),
        json!("' OR 1=1 --"),
        json!("gold\0"),
        json!(long),
        json!(["gold"]),
        json!({"a\0": 1, "b": "') OR 1=1 --"}),
    ];
    for key in keys {
        for value in &values {
            let mut query = ListQuery::new(Kind::Lead);
            query.filter.custom_fields = vec![(key.to_owned(), value.clone())];
            let what = format!("custom field {:?} = {value}", key.chars().take(60).collect::<String>());
            let found = store_list(&crm, s, &query, &what).await;
            assert!(found.is_empty(), "{what}: no lead has this field, found {found:?}");
        }
    }
    // A hostile value on a valid name is a value like any other.
    for value in &values {
        let mut query = ListQuery::new(Kind::Lead);
        query.filter.custom_fields = vec![("tier".to_owned(), value.clone())];
        let found = store_list(&crm, s, &query, &format!("tier = {value}")).await;
        let expected: &[&str] = if *value == json!("gold") { &["Ours"] } else { &[] };
        assert_eq!(found, expected, "tier = {value}");
    }
}

/// Search terms and stage keys a store receives directly are bound or refused too: terms core
/// would not make match nothing, on every store alike.
pub async fn hostile_search_terms_and_stages_stay_in_the_tenant(crm: Crm) {
    let acme = tenant(&crm, "Acme").await;
    let globex = tenant(&crm, "Globex").await;
    let s = &acme.owner_scope;
    crm.create::<Lead>(s, lead("Ours", json!({}))).await.unwrap();
    crm.create::<Lead>(&globex.owner_scope, lead("Theirs", json!({}))).await.unwrap();
    let long = "t".repeat(10_000);
    let hostile = [
        "theirs' OR 1=1 --",
        "t'",
        "t\\",
        "t:*",
        "t & !x",
        "t | theirs",
        "'",
        "\0",
        "t\0",
        "",
        "Theirs",
        "ours theirs",
        long.as_str(),
    ];
    for term in hostile {
        let mut query = ListQuery::new(Kind::Lead);
        query.search = vec![term.to_owned()];
        let what = format!("search {:?}", term.chars().take(60).collect::<String>());
        let found = store_list(&crm, s, &query, &what).await;
        assert!(found.is_empty(), "{what}: found {found:?}");
        // Beside a valid term, the hostile one still matches nothing.
        query.search = vec!["ours".to_owned(), term.to_owned()];
        let found = store_list(&crm, s, &query, &what).await;
        assert!(found.is_empty(), "{what} beside a valid term: found {found:?}");
    }
    let mut query = ListQuery::new(Kind::Lead);
    query.search = vec!["ours".to_owned()];
    assert_eq!(store_list(&crm, s, &query, "search ours").await, ["Ours"]);
    query.search = vec!["theirs".to_owned()];
    assert!(store_list(&crm, s, &query, "search theirs").await.is_empty());

    for stage in ["qualified' OR 1=1 --", "\0", "", "Qualified", long.as_str()] {
        let mut query = ListQuery::new(Kind::Deal);
        query.filter.stage = Some(stage.to_owned());
        match crm.store().list(s, &query).await {
            Ok(rows) => assert!(rows.is_empty(), "stage {stage:?}: {rows:?}"),
            Err(err) => assert!(matches!(err, Error::Validation(_)), "stage {stage:?}: {err:?}"),
        }
    }
}
