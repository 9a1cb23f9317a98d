//! Property tests: random bodies, ids and SOQL never crash the simulator; every answer is a
//! success or a documented error.

use crossdock_sim_salesforce::cdc::EventLog;
use crossdock_sim_salesforce::{meta, soql, store::Org};
use proptest::prelude::*;
use proptest::test_runner::{Config as PConfig, TestRunner};
use serde_json::{Map, Value as Json};

use crate::{Sim, q};

const DML_CODES: &[&str] = &[
    "JSON_PARSER_ERROR",
    "INVALID_FIELD",
    "INVALID_FIELD_FOR_INSERT_UPDATE",
    "REQUIRED_FIELD_MISSING",
    "STRING_TOO_LONG",
    "MALFORMED_ID",
    "FIELD_INTEGRITY_EXCEPTION",
    "INVALID_CROSS_REFERENCE_KEY",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "DUPLICATE_VALUE",
];
const QUERY_CODES: &[&str] = &[
    "MALFORMED_QUERY",
    "INVALID_FIELD",
    "INVALID_TYPE",
    "NUMBER_OUTSIDE_VALID_RANGE",
];

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        "[ -~]{0,20}".prop_map(Json::String),
        Just(Json::String("2026-11-26".into())),
        Just(Json::String("001Dd0000000001AAA".into())),
        Just(Json::String("Gold".into())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "Name",
        "name",
        "Phone",
        "ParentId",
        "Customer_Tier__c",
        "Credit_Limit__c",
        "ERP_Customer_Number__c",
        "CreatedDate",
        "Id",
        "AccountId",
        "EffectiveDate",
        "Status",
        "Pricebook2Id",
        "TotalAmount",
        "Hub_Order_Id__c",
        "Hub_Synced_At__c",
        "Bogus__c",
        "attributes",
    ]);
    let object = prop::collection::vec((names, json_value()), 0..6).prop_map(|pairs| {
        let m: Map<String, Json> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::to_vec(&Json::Object(m)).unwrap_or_default()
    });
    prop_oneof![
        4 => object,
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn soql_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "COUNT()",
        "Id",
        "Name",
        "Account.Name",
        "Account",
        "Order",
        "Contact",
        "Foo",
        "Credit_Limit__c",
        "CreatedDate",
        ",",
        "(",
        ")",
        "=",
        "!=",
        "<",
        ">=",
        "'x'",
        "'%a_'",
        "5",
        "-2.5",
        "2026-01-01",
        "2026-01-01T00:00:00Z",
        "null",
        "true",
        "'",
        ".",
    ]);
    prop_oneof![
        3 => prop::collection::vec(token, 0..14).prop_map(|t| t.join(" ")),
        2 => prop::collection::vec(prop::sample::select(vec!["Id", "Name", "Account.Name", "Phone"]), 1..4).prop_flat_map(|fields| {
            let select = fields.join(", ");
            ("[ -~]{0,12}", 0u32..3000).prop_map(move |(tail, n)| format!("SELECT {select} FROM Contact WHERE Name LIKE '{tail}' LIMIT {n}"))
        }),
        1 => "\\PC{0,40}",
    ]
}

#[test]
fn random_soql_compiles_to_rows_or_a_documented_error() {
    let org = Org::new(
        meta::standard(),
        "Fuzz",
        "u@example.com",
        0,
        EventLog::new(1, 1_000),
    );
    let mut runner = TestRunner::new(PConfig {
        cases: 2_000,
        failure_persistence: None,
        ..PConfig::default()
    });
    let result = runner.run(&soql_text(), |text| {
        match soql::compile(&org, &text) {
            Ok(plan) => {
                let rows = soql::run(&org, &plan, false, "60.0");
                prop_assert!(rows.records.len() <= rows.total.max(rows.records.len()));
            }
            Err(e) => {
                prop_assert!(QUERY_CODES.contains(&e.code), "{} for {text:?}", e.code);
                prop_assert!(e.message.contains("ERROR at Row:"), "{}", e.message);
            }
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn random_bodies_ids_and_queries_over_http_get_documented_answers() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = rt.block_on(Sim::start());
    let mut runner = TestRunner::new(PConfig {
        cases: 150,
        failure_persistence: None,
        ..PConfig::default()
    });
    let result = runner.run(
        &(
            body(),
            prop::sample::select(vec!["Account", "Order", "Case"]),
        ),
        |(bytes, object)| {
            let r = rt.block_on(
                sim.send(
                    sim.http
                        .post(sim.data(&format!("sobjects/{object}")))
                        .bearer_auth(&sim.token)
                        .header("content-type", "application/json")
                        .body(bytes),
                ),
            );
            match r.status {
                201 => prop_assert!(r.body["id"].is_string()),
                400 => prop_assert!(
                    r.error_code().is_some_and(|c| DML_CODES.contains(&c)),
                    "{}",
                    r.text
                ),
                other => prop_assert!(false, "unexpected status {other}: {}", r.text),
            }
            Ok(())
        },
    );
    assert!(result.is_ok(), "{result:?}");

    let mut runner = TestRunner::new(PConfig {
        cases: 100,
        failure_persistence: None,
        ..PConfig::default()
    });
    let result = runner.run(&("[0-9A-Za-z]{0,20}", soql_text()), |(id, text)| {
        let r = rt.block_on(sim.get(&format!("sobjects/Account/{id}")));
        prop_assert!(
            matches!(
                (r.status, r.error_code()),
                (404, Some("NOT_FOUND" | "ENTITY_IS_DELETED")) | (200, None)
            ),
            "{id}: {}",
            r.text
        );
        let r = rt.block_on(sim.get(&format!("query?q={}", q(&text))));
        prop_assert!(
            r.status == 200
                || (r.status == 400 && r.error_code().is_some_and(|c| QUERY_CODES.contains(&c))),
            "{text:?}: {}",
            r.text
        );
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    let alive = rt.block_on(sim.get("limits"));
    assert_eq!(alive.status, 200, "the simulator still answers");
    rt.block_on(sim.shutdown());
}
