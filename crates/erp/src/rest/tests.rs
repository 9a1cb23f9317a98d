//! Path templates, configuration checks, and the REST adapter's failure classes and mapping
//! errors against a tiny local HTTP stub.

use std::time::Duration;

use crossdock_domain::ids::{AccountId, LineNo, OrderId, Sku};
use crossdock_domain::money::Currency;
use crossdock_ports::erp::{BookingLine, BookingRequest};
use crossdock_ports::{Erp, FailureClass};
use rust_decimal::Decimal;
use serde_json::json;

use super::template::PathTemplate;
use super::{Adapter, Config};
use crate::sim::tests::stub;

#[test]
fn placeholders_are_filled_and_encoded_as_one_segment() {
    let template = PathTemplate::parse("/orders/{reference}/lines/{line.no}").expect("parses");
    let path = template
        .render(&json!({ "reference": "SF 1/2", "line": { "no": 3 } }))
        .expect("renders");
    assert_eq!(path, "/orders/SF%201%2F2/lines/3");
}

#[test]
fn bad_templates_and_missing_values_are_refused() {
    assert!(
        PathTemplate::parse("orders/{id}").is_err(),
        "must start with /"
    );
    assert!(PathTemplate::parse("/orders/{id").is_err(), "unclosed");
    assert!(PathTemplate::parse("/orders/{}").is_err(), "empty");
    assert!(PathTemplate::parse("/orders/id}").is_err(), "unopened");
    let template = PathTemplate::parse("/orders/{id}").expect("parses");
    assert!(template.render(&json!({})).is_err(), "missing value");
    assert!(
        template.render(&json!({ "id": null })).is_err(),
        "null value"
    );
    assert!(
        template.render(&json!({ "id": [1] })).is_err(),
        "array value"
    );
}

const MINIMAL: &str = r#"
base_url = "http://127.0.0.1:9"
[operations.order]
response = '{erp_ref: .body.number}'
[[operations.order.call]]
method = "GET"
path = "/orders/{erp_ref}"
"#;

#[test]
fn the_check_reports_every_problem_at_once() {
    let text = r#"
base_url = "ftp://erp"
[errors]
message = '.body | nosuchfilter'
[operations.order]
response = '{erp_ref: .body.number'
[[operations.order.call]]
method = "FE TCH"
path = "orders/{erp_ref}"
[operations.changes]
response = '.'
call = []
"#;
    let config = Config::from_toml(text).expect("the TOML itself is well formed");
    let problems = config.validate().expect_err("invalid");
    let all = problems.join("\n");
    for expected in [
        "base_url",
        "errors.message",
        "operations.order.response",
        "operations.order.call[0].method",
        "operations.order.call[0].path",
        "operations.changes: at least one call",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(Adapter::new(&config).is_err());
}

#[test]
fn unknown_keys_are_refused() {
    let text = MINIMAL.replace("response =", "respones =");
    let error = Config::from_toml(&text).expect_err("unknown key");
    assert!(error.contains("respones"), "{error}");
}

fn adapter(config_text: &str, url: &str) -> Adapter {
    let mut config = Config::from_toml(config_text).expect("config");
    config.base_url = url.to_owned();
    config.timeout_secs = 2;
    Adapter::new(&config).expect("adapter")
}

const WITH_ERRORS: &str = r#"
base_url = "http://127.0.0.1:9"
[errors]
message = '.body.error.message? // empty'
code = '.body.error.code? // empty'
class = 'if .body.error.code? == "locked" then "conflict" else null end'
[operations.order]
response = '{erp_ref: .body.number, reference: .body.ref, cancelled: false, lines: [], shipments: [], invoices: []}'
refusal = 'if .body.refused then "refused: \(.body.why)" else null end'
[[operations.order.call]]
method = "GET"
path = "/orders/{erp_ref}"
"#;

#[tokio::test]
async fn error_answers_are_read_with_the_error_filters() {
    let refusal =
        r#"{"error":{"code":"cancel_after_shipment","message":"order SO-1 cannot be cancelled"}}"#;
    let locked = r#"{"error":{"code":"locked","message":"row locked"}}"#;
    let (url, _) = stub(vec![
        (409, vec![], refusal.to_owned()),
        (409, vec![], locked.to_owned()),
        (429, vec![("retry-after", "3")], "{}".to_owned()),
        (503, vec![], "down".to_owned()),
    ])
    .await;
    let erp = adapter(WITH_ERRORS, &url);
    let failure = erp.order("SO-1").await.expect_err("refused");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.message, "order SO-1 cannot be cancelled");
    assert_eq!(failure.code.as_deref(), Some("cancel_after_shipment"));
    let failure = erp.order("SO-1").await.expect_err("locked");
    assert_eq!(
        failure.class,
        FailureClass::Conflict,
        "the class filter decides"
    );
    let failure = erp.order("SO-1").await.expect_err("throttled");
    assert_eq!(
        failure.class,
        FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    let failure = erp.order("SO-1").await.expect_err("unavailable");
    assert_eq!(failure.class, FailureClass::Transient);
    assert!(failure.message.contains("down"), "{failure}");
}

#[tokio::test]
async fn answers_the_mapping_cannot_use_are_unknown_and_precise() {
    let (url, _) = stub(vec![
        (200, vec![], "<html>".to_owned()),
        (200, vec![], r#"{"number": 7, "ref": "ORD-1"}"#.to_owned()),
        (200, vec![], r#"{"number": "SO-1"}"#.to_owned()),
        (
            200,
            vec![],
            r#"{"refused": true, "why": "blocked customer"}"#.to_owned(),
        ),
    ])
    .await;
    let erp = adapter(WITH_ERRORS, &url);
    let failure = erp.order("SO-1").await.expect_err("not JSON");
    assert_eq!(failure.class, FailureClass::Unknown);
    assert!(failure.message.starts_with("order:"), "{failure}");
    assert!(failure.message.contains("not valid JSON"), "{failure}");
    let failure = erp.order("SO-1").await.expect_err("wrong type");
    assert_eq!(failure.class, FailureClass::Unknown);
    assert!(failure.message.contains("`erp_ref`"), "{failure}");
    let failure = erp.order("SO-1").await.expect_err("null reference");
    assert_eq!(failure.class, FailureClass::Unknown);
    assert!(failure.message.contains("`reference`"), "{failure}");
    let failure = erp.order("SO-1").await.expect_err("refusal in a 200");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.message, "refused: blocked customer");
}

#[tokio::test]
async fn a_mapping_that_fails_at_run_time_is_unknown() {
    let text = MINIMAL.replace(
        "'{erp_ref: .body.number}'",
        "'.body.lines[] | error(\"no lines\")'",
    );
    let (url, _) = stub(vec![(200, vec![], r#"{"lines": [1]}"#.to_owned())]).await;
    let failure = adapter(&text, &url).order("SO-1").await.expect_err("fails");
    assert_eq!(failure.class, FailureClass::Unknown);
    assert!(failure.message.contains("order: `response`"), "{failure}");
    assert!(failure.message.contains("no lines"), "{failure}");
}

#[tokio::test]
async fn an_operation_left_out_is_a_permanent_failure() {
    let erp = adapter(MINIMAL, "http://127.0.0.1:9");
    let failure = erp
        .credit_status(&AccountId::new("ACC-1"))
        .await
        .expect_err("not configured");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("not_configured"));
}

const LOOKUP_FIRST: &str = r#"
base_url = "http://127.0.0.1:9"
[operations.book_order]
response = '''
(if .calls.lookup.status == 200 then .calls.lookup.body else .calls.create.body end) as $o
| {erp_ref: $o.number, created: (.calls.lookup.status == 404), allocations: [], backorders: []}
'''
[[operations.book_order.call]]
name = "lookup"
method = "GET"
path = "/orders/{reference}"
accept = [404]
[[operations.book_order.call]]
name = "create"
method = "POST"
path = "/orders"
when = '.calls.lookup.status == 404'
query = '{channel: "hub", note: null}'
body = '{ref: .reference, lines: [.lines[] | {sku, qty: .quantity}]}'
"#;

fn booking() -> BookingRequest {
    BookingRequest {
        reference: OrderId::new("ORD 7"),
        sf_number: None,
        account: AccountId::new("ACC-1"),
        currency: Currency::USD,
        lines: vec![BookingLine {
            line: LineNo(1),
            sku: Sku::new("SKU-1"),
            quantity: 2,
            unit_price: Decimal::ONE,
        }],
        fulfilment: None,
        region: None,
    }
}

#[tokio::test]
async fn look_up_first_books_only_when_the_erp_has_no_order() {
    let (url, seen) = stub(vec![
        (404, vec![], r#"{"error":"none"}"#.to_owned()),
        (201, vec![], r#"{"number":"SO-9"}"#.to_owned()),
        (200, vec![], r#"{"number":"SO-9"}"#.to_owned()),
    ])
    .await;
    let erp = adapter(LOOKUP_FIRST, &url);
    let first = erp.book_order(&booking(), "key-7").await.expect("booked");
    assert!(first.created);
    assert_eq!(first.erp_ref, "SO-9");
    let second = erp.book_order(&booking(), "key-7").await.expect("found");
    assert!(!second.created);
    let requests = seen.lock().expect("log").clone();
    assert_eq!(requests.len(), 3, "look-up, create, look-up: {requests:#?}");
    assert!(
        requests[0].starts_with("GET /orders/ORD%207 "),
        "{}",
        requests[0]
    );
    assert!(
        !requests[0].to_ascii_lowercase().contains("idempotency-key"),
        "no key on a read: {}",
        requests[0]
    );
    assert!(
        requests[1].starts_with("POST /orders?channel=hub "),
        "{}",
        requests[1]
    );
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains("idempotency-key: key-7"),
        "the key on the write: {}",
        requests[1]
    );
    assert!(
        requests[1].contains(r#"{"lines":[{"qty":2,"sku":"SKU-1"}],"ref":"ORD 7"}"#),
        "the body template: {}",
        requests[1]
    );
    assert!(requests[2].starts_with("GET /orders/ORD%207 "));
}
