//! Unit tests: error classes, limit parsing and the reserve, config checks, the field
//! mapping, order drafts from query rows, the Avro decoder and event interpretation helpers.

use std::collections::BTreeMap;
use std::time::Duration;

use crossdock_domain::ids::{
    AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, RmaId, ShipmentId, Sku,
};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{
    Channel, DraftLine, LineQuantities, Milestone, OrderDraft, OrderStatus, ReturnStatus,
    StageTimes,
};
use crossdock_domain::summary::{
    InvoiceSummary, LineSummary, OrderSummary, ReturnSummary, ShipmentSummary,
};
use crossdock_ports::FailureClass;
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};
use time::macros::datetime;

use crate::adapter::{decimal, draft_from, parse_channel, parse_datetime};
use crate::config::{Auth, Config, MappingConfig, Secret};
use crate::errors::{http_failure, record_failure, severity, worst};
use crate::limits::{Limits, parse_limit_info};
use crate::mapping::{LineValue, Mapping, OrderValue};
use crate::pubsub::avro::{self, Schema};
use crate::pubsub::events::{self, Decoded};
use crate::pubsub::{parse_replay_hex, replay_hex};

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

// ---------------------------------------------------------------- error classes

#[test]
fn rest_errors_map_to_the_documented_classes() {
    let body = |code: &str| format!(r#"[{{"message":"m","errorCode":"{code}"}}]"#);
    let cases: Vec<(u16, String, Option<Duration>, FailureClass)> = vec![
        (
            400,
            body("UNABLE_TO_LOCK_ROW"),
            None,
            FailureClass::Conflict,
        ),
        (
            403,
            body("REQUEST_LIMIT_EXCEEDED"),
            None,
            FailureClass::Throttled { retry_after: None },
        ),
        (
            429,
            body("REQUEST_LIMIT_EXCEEDED"),
            Some(Duration::from_secs(7)),
            FailureClass::Throttled {
                retry_after: Some(Duration::from_secs(7)),
            },
        ),
        (
            429,
            String::new(),
            None,
            FailureClass::Throttled { retry_after: None },
        ),
        (
            503,
            body("SERVER_UNAVAILABLE"),
            None,
            FailureClass::Transient,
        ),
        (
            500,
            body("UNKNOWN_EXCEPTION"),
            None,
            FailureClass::Transient,
        ),
        (
            502,
            "<html>bad gateway</html>".into(),
            None,
            FailureClass::Transient,
        ),
        (500, body("SOMETHING_NEW"), None, FailureClass::Transient),
        (400, body("INVALID_FIELD"), None, FailureClass::Permanent),
        (
            400,
            body("REQUIRED_FIELD_MISSING"),
            None,
            FailureClass::Permanent,
        ),
        (
            400,
            body("FIELD_INTEGRITY_EXCEPTION"),
            None,
            FailureClass::Permanent,
        ),
        (400, body("MALFORMED_ID"), None, FailureClass::Permanent),
        (404, body("NOT_FOUND"), None, FailureClass::Permanent),
        (
            404,
            body("ENTITY_IS_DELETED"),
            None,
            FailureClass::Permanent,
        ),
        (400, body("DUPLICATE_VALUE"), None, FailureClass::Permanent),
        (
            300,
            r#"["/services/data/v60.0/sobjects/Account/001"]"#.into(),
            None,
            FailureClass::Permanent,
        ),
        (400, body("SOMETHING_NEW"), None, FailureClass::Unknown),
        (400, "not json".into(), None, FailureClass::Unknown),
        (418, "[]".into(), None, FailureClass::Unknown),
    ];
    for (status, body, retry_after, expected) in cases {
        let failure = http_failure(status, &body, retry_after);
        assert_eq!(failure.class, expected, "HTTP {status} {body}: {failure}");
        assert!(!failure.message.is_empty());
    }
}

#[test]
fn unknown_codes_name_the_code_in_the_message() {
    let f = http_failure(400, r#"[{"message":"odd","errorCode":"NEW_CODE"}]"#, None);
    assert_eq!(f.code.as_deref(), Some("NEW_CODE"));
    assert!(
        f.message.contains("NEW_CODE") && f.message.contains("odd"),
        "{}",
        f.message
    );
    let f = http_failure(400, "<<garbage>>", None);
    assert!(f.message.contains("<<garbage>>"), "{}", f.message);
}

#[test]
fn per_record_errors_use_status_code_and_fields() {
    let f = record_failure(
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [Name]",
        &["Name".to_owned()],
    );
    assert_eq!(f.class, FailureClass::Permanent);
    assert_eq!(f.code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
    assert!(f.message.contains("fields: Name"));
    assert_eq!(
        record_failure("UNABLE_TO_LOCK_ROW", "busy", &[]).class,
        FailureClass::Conflict
    );
}

#[test]
fn an_order_fails_with_its_most_severe_record() {
    use crossdock_ports::Failure;
    let conflict = Failure::conflict("lock");
    let transient = Failure::transient("503");
    let permanent = Failure::permanent("bad field");
    let w = worst(Some(conflict.clone()), transient.clone());
    assert_eq!(w.class, FailureClass::Transient);
    let w = worst(Some(w), permanent.clone());
    assert_eq!(w.class, FailureClass::Permanent);
    let w = worst(Some(w), conflict);
    assert_eq!(w.class, FailureClass::Permanent);
    assert!(
        severity(FailureClass::Unknown) > severity(FailureClass::Throttled { retry_after: None })
    );
}

#[test]
fn collections_answers_give_one_result_per_record() {
    let answer = json!([
        {"id": "8010000000000AAAAA", "success": true, "errors": []},
        {"id": null, "success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy", "fields": []}]},
        {"id": null, "success": false, "errors": [{"statusCode": "INVALID_FIELD", "message": "no such field", "fields": ["X__c"]}]},
        {"id": "a0I000000000001AAA", "success": true, "errors": [], "created": true}
    ]);
    let results = crate::client::per_record(&answer, 4);
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0].as_ref().map(|w| w.id.as_str()),
        Ok("8010000000000AAAAA")
    );
    assert_eq!(
        results[1].as_ref().map_err(|f| f.class),
        Err(FailureClass::Conflict)
    );
    assert_eq!(
        results[2].as_ref().map_err(|f| f.class),
        Err(FailureClass::Permanent)
    );
    assert_eq!(results[3].as_ref().map(|w| w.created), Ok(Some(true)));
    // An answer of the wrong length fails every record as unknown.
    let short = crate::client::per_record(&json!([{"id": "x", "success": true}]), 2);
    assert!(
        short
            .iter()
            .all(|r| r.as_ref().is_err_and(|f| f.class == FailureClass::Unknown))
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn limit_info_is_parsed_with_or_without_per_app_usage() {
    let u = parse_limit_info("api-usage=25/15000").expect("parses");
    assert_eq!((u.used, u.limit, u.remaining()), (25, 15000, 14975));
    let u =
        parse_limit_info("api-usage=7/100; per-app-api-usage=2/50(appName=hub)").expect("parses");
    assert_eq!((u.used, u.limit), (7, 100));
    assert!(parse_limit_info("per-app-api-usage=2/50").is_none());
    assert!(parse_limit_info("api-usage=x/100").is_none());
}

#[tokio::test]
async fn writes_are_held_back_inside_the_reserve_and_probe_after_the_backoff() {
    let limits = Limits::new(20, Duration::from_millis(80));
    assert!(limits.admit_write().is_ok(), "no usage known yet");
    limits.observe("api-usage=50/100");
    assert!(limits.admit_write().is_ok(), "50 left, reserve 20");
    limits.observe("api-usage=85/100");
    let held = limits
        .admit_write()
        .expect_err("15 left is inside the reserve");
    match held.class {
        FailureClass::Throttled {
            retry_after: Some(d),
        } => assert!(d <= Duration::from_millis(80)),
        other => panic!("expected throttled with a wait, got {other:?}"),
    }
    assert!(held.message.contains("85 of 100"), "{}", held.message);
    assert!(limits.admit_write().is_err(), "still inside the backoff");
    assert_eq!(limits.held_writes(), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(limits.admit_write().is_ok(), "one probe after the backoff");
    assert!(limits.admit_write().is_err(), "only one probe per backoff");
    limits.observe("api-usage=3/100");
    assert!(limits.admit_write().is_ok(), "the window has room again");
    assert!(limits.admit_write().is_ok());
}

// ---------------------------------------------------------------- config

fn token_config() -> Config {
    Config::new(
        "https://login.salesforce.com",
        Auth::AccessToken {
            token: Secret::new("00D000000000001!secret-token"),
            instance_url: "https://example.my.salesforce.com".into(),
        },
    )
}

#[test]
fn secrets_never_print() {
    let config = Config::new(
        "https://login.salesforce.com",
        Auth::ClientCredentials {
            client_id: "id".into(),
            client_secret: Secret::new("s3cr3t-value"),
        },
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("***"));
    assert_eq!(Secret::new("x").to_string(), "***");
}

#[test]
fn config_check_reports_every_problem() {
    let mut config = token_config();
    config.login_url = "login.salesforce.com".into();
    config.api_version = "sixty".into();
    config.batch_size = 500;
    config.client_name = "a;b".into();
    config.pubsub.num_requested = 0;
    config.pubsub.endpoint = "nohost".into();
    config.pubsub.topics = vec!["OrderChangeEvent".into()];
    config
        .mapping
        .order
        .insert("Bad Field".into(), OrderValue::Status);
    let problems = config.validate().expect_err("invalid");
    for needle in [
        "login_url",
        "api_version",
        "batch_size",
        "client_name",
        "num_requested",
        "pubsub.endpoint",
        "pubsub.topics",
        "mapping.order",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} missing from {problems:?}"
        );
    }
    assert!(token_config().validate().is_ok());
}

#[test]
fn config_reads_from_toml_like_json_and_rejects_unknown_fields() {
    let config: Config = serde_json::from_value(json!({
        "login_url": "https://test.salesforce.com",
        "auth": {"type": "client_credentials", "client_id": "id", "client_secret": "secret"},
        "batch_size": 150,
        "pubsub": {"topics": ["/data/OrderChangeEvent"], "start": "earliest"},
        "mapping": {"order": {"Hub_Synced_At__c": "omit", "Order_Total__c": "total"}}
    }))
    .expect("valid config");
    assert_eq!(config.batch_size, 150);
    assert_eq!(config.api_version, "60.0");
    assert_eq!(config.pubsub.num_requested, 100);
    assert!(config.validate().is_ok());
    let unknown = serde_json::from_value::<Config>(json!({
        "auth": {"type": "client_credentials", "client_id": "id", "client_secret": "s"},
        "batch_sise": 10
    }));
    assert!(unknown.is_err());
}

// ---------------------------------------------------------------- mapping

fn summary() -> OrderSummary {
    let q = |ordered, allocated, shipped, delivered, invoiced| LineQuantities {
        ordered,
        allocated,
        backordered: 0,
        picked: shipped,
        shipped,
        delivered,
        invoiced,
        returned: 0,
    };
    OrderSummary {
        id: OrderId::new("SF-00000100"),
        refs: ExternalRefs {
            sf_id: Some("801000000000001AAA".into()),
            sf_number: Some("00000100".into()),
            erp_ref: Some("ERP-42".into()),
        },
        account: AccountId::new("C-1"),
        channel: Channel::B2b,
        currency: Currency::USD,
        status: OrderStatus::PartiallyShipped,
        total: dec("250.00"),
        invoiced: dec("100.50"),
        paid: dec("0"),
        credited: dec("0"),
        refunded: dec("0"),
        lines: vec![
            LineSummary {
                line: LineNo(1),
                sku: Sku::new("SKU-1"),
                sf_id: Some("802000000000001AAA".into()),
                unit_price: dec("50"),
                quantities: q(3, 3, 2, 1, 2),
            },
            LineSummary {
                line: LineNo(2),
                sku: Sku::new("SKU-2"),
                sf_id: Some("802000000000002AAA".into()),
                unit_price: dec("50"),
                quantities: q(2, 2, 0, 0, 0),
            },
        ],
        shipments: vec![ShipmentSummary {
            id: ShipmentId::new("SH-1"),
            location: Some(LocationId::new("WH-1")),
            milestone: Some(Milestone::Shipped),
            carrier: Some("UPS".into()),
            tracking: Some("1Z999".into()),
            lines: vec![(LineNo(1), 2)],
        }],
        invoices: vec![InvoiceSummary {
            id: InvoiceId::new("INV-1"),
            number: "INV-0001".into(),
            total: dec("100.50"),
        }],
        returns: vec![ReturnSummary {
            rma: RmaId::new("RMA-00001001"),
            case: ExternalRefs::default(),
            status: ReturnStatus::Closed,
            erp_ref: Some("RMA-9".into()),
            lines: vec![(LineNo(1), 1)],
            credit_memos: vec!["CM-1".into(), "CM-2".into()],
            credited: dec("50"),
            refunded: dec("20"),
            refusal: None,
        }],
        reason: None,
        times: StageTimes::default(),
    }
}

#[test]
fn an_order_summary_renders_to_its_salesforce_fields() {
    let mapping = Mapping::default();
    let s = summary();
    let now = datetime!(2026-11-26 22:33:00.25 UTC);
    let mut rec = Map::new();
    mapping.order.render(&mut rec, |v| v.of(&s, now));
    assert_eq!(rec["Hub_Order_Id__c"], "SF-00000100");
    assert_eq!(rec["ERP_Order_Number__c"], "ERP-42");
    assert_eq!(rec["Hub_Status__c"], "Partially Shipped");
    assert_eq!(rec["Hub_Status_Reason__c"], Json::Null);
    assert_eq!(rec["Fulfillment_Status__c"], "2 of 5 shipped, 1 delivered");
    assert_eq!(rec["Tracking_Numbers__c"], "1Z999");
    assert_eq!(rec["Invoice_Number__c"], "INV-0001");
    assert_eq!(rec["Invoice_Status__c"], "Partially Invoiced");
    assert_eq!(rec["Payment_Status__c"], "Unpaid");
    assert_eq!(rec["Amount_Invoiced__c"], json!(100.5));
    assert_eq!(rec["Amount_Paid__c"], json!(0.0));
    assert_eq!(rec["Credit_Memo_Number__c"], "CM-1, CM-2");
    assert_eq!(rec["Hub_Synced_At__c"], "2026-11-26T22:33:00.250+0000");
    assert_eq!(rec.len(), crate::mapping::ORDER_FIELDS.len());

    let mut item = Map::new();
    mapping.order_item.render(&mut item, |v| v.of(&s.lines[0]));
    assert_eq!(
        Json::Object(item),
        json!({
            "Quantity_Allocated__c": 3, "Quantity_Backordered__c": 0, "Quantity_Shipped__c": 2,
            "Quantity_Delivered__c": 1, "Quantity_Invoiced__c": 2, "Quantity_Returned__c": 0
        })
    );

    let mut ship = Map::new();
    mapping
        .shipment
        .render(&mut ship, |v| v.of(&s.shipments[0]));
    assert_eq!(
        Json::Object(ship),
        json!({"TrackingNumber": "1Z999", "Provider": "UPS", "Status": "Shipped"})
    );

    let mut case = Map::new();
    mapping.case.render(&mut case, |v| v.of(&s.returns[0]));
    assert_eq!(
        Json::Object(case),
        json!({
            "RMA_Number__c": "RMA-9", "Return_Status__c": "Closed",
            "Credit_Memo_Number__c": "CM-1, CM-2", "Refund_Status__c": "Partially Refunded",
            "Refund_Amount__c": 20.0, "Status": "Closed"
        })
    );
}

#[test]
fn an_open_return_leaves_the_case_status_alone() {
    let mapping = Mapping::default();
    let mut s = summary();
    s.returns[0].status = ReturnStatus::Authorised;
    let mut case = Map::new();
    mapping.case.render(&mut case, |v| v.of(&s.returns[0]));
    assert!(!case.contains_key("Status"), "{case:?}");
    assert_eq!(case["Return_Status__c"], "Authorised");
}

#[test]
fn mapping_overrides_add_replace_and_omit_fields() {
    let mut config = MappingConfig::default();
    config
        .order
        .insert("Hub_Synced_At__c".into(), OrderValue::Omit);
    config
        .order
        .insert("Order_Total__c".into(), OrderValue::Total);
    config
        .order
        .insert("hub_status__c".into(), OrderValue::Channel);
    config
        .order_item
        .insert("Quantity_Picked__c".into(), LineValue::Picked);
    let mapping = Mapping::new(&config);
    let s = summary();
    let mut rec = Map::new();
    mapping
        .order
        .render(&mut rec, |v| v.of(&s, datetime!(2026-01-01 0:00 UTC)));
    assert!(!rec.contains_key("Hub_Synced_At__c"));
    assert_eq!(rec["Order_Total__c"], json!(250.0));
    assert_eq!(
        rec["Hub_Status__c"], "B2B",
        "override matches field names case-insensitively"
    );
    let mut item = Map::new();
    mapping.order_item.render(&mut item, |v| v.of(&s.lines[0]));
    assert_eq!(item["Quantity_Picked__c"], 2);
}

// ---------------------------------------------------------------- reading orders

fn order_row() -> Json {
    json!({
        "attributes": {"type": "Order"},
        "Id": "801000000000001AAA", "OrderNumber": "00000100", "Status": "Activated",
        "ActivatedDate": "2026-11-26T10:00:00.000+0000", "Sales_Channel__c": "Web",
        "ShippingState": "CA",
        "Account": {"attributes": {"type": "Account"}, "ERP_Customer_Number__c": "C-1", "AccountNumber": "A-9"}
    })
}

fn item_row(id: &str, number: &str, quantity: Json, price: Json, sku: &str) -> Json {
    json!({
        "Id": id, "OrderItemNumber": number, "Quantity": quantity, "UnitPrice": price,
        "Product2": {"StockKeepingUnit": null, "ProductCode": "", "ERP_Item_Code__c": sku}
    })
}

#[test]
fn an_order_and_its_items_become_a_draft() {
    let sku_fields: Vec<String> = crate::mapping::SKU_FIELDS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let sku_refs: Vec<&String> = sku_fields.iter().collect();
    let items = vec![
        item_row(
            "802000000000002AAA",
            "0000000002",
            json!(1),
            json!(19.99),
            "SKU-B",
        ),
        item_row(
            "802000000000001AAA",
            "0000000001",
            json!(3.0),
            json!(120.5),
            "SKU-A",
        ),
    ];
    let draft = draft_from(
        &order_row(),
        &items,
        &sku_refs,
        &["ShippingState".to_owned()],
        datetime!(2026-12-01 0:00 UTC),
    )
    .expect("draft");
    assert_eq!(draft.id.as_str(), "SF-00000100");
    assert_eq!(draft.account.as_str(), "C-1");
    assert_eq!(draft.channel, Channel::Web);
    assert_eq!(draft.currency, Currency::USD);
    assert_eq!(draft.region.as_deref(), Some("CA"));
    assert_eq!(draft.captured_at, datetime!(2026-11-26 10:00 UTC));
    assert_eq!(draft.refs.sf_number.as_deref(), Some("00000100"));
    assert_eq!(
        draft.lines,
        vec![
            DraftLine {
                line: LineNo(1),
                sku: Sku::new("SKU-A"),
                quantity: 3,
                unit_price: dec("120.5"),
                sf_id: Some("802000000000001AAA".into()),
            },
            DraftLine {
                line: LineNo(2),
                sku: Sku::new("SKU-B"),
                quantity: 1,
                unit_price: dec("19.99"),
                sf_id: Some("802000000000002AAA".into()),
            },
        ]
    );
}

#[test]
fn orders_that_cannot_be_captured_fail_permanently_with_the_reason() {
    let sku_fields: Vec<String> = vec!["ERP_Item_Code__c".into()];
    let sku_refs: Vec<&String> = sku_fields.iter().collect();
    let now = datetime!(2026-12-01 0:00 UTC);
    let fractional = vec![item_row(
        "802000000000001AAA",
        "1",
        json!(2.5),
        json!(1),
        "S",
    )];
    let f = draft_from(&order_row(), &fractional, &sku_refs, &[], now).expect_err("2.5 units");
    assert_eq!(f.class, FailureClass::Permanent);
    assert!(f.message.contains("2.5"), "{}", f.message);
    let f = draft_from(&order_row(), &[], &sku_refs, &[], now).expect_err("no items");
    assert!(f.message.contains("no items"), "{}", f.message);
    let mut no_account = order_row();
    no_account["Account"] = Json::Null;
    let items = vec![item_row("802000000000001AAA", "1", json!(1), json!(1), "S")];
    let f = draft_from(&no_account, &items, &sku_refs, &[], now).expect_err("no account");
    assert!(
        f.message.contains("ERP_Customer_Number__c"),
        "{}",
        f.message
    );
    let mut odd_channel = order_row();
    odd_channel["Sales_Channel__c"] = json!("Telepathy");
    let f = draft_from(&odd_channel, &items, &sku_refs, &[], now).expect_err("channel");
    assert!(f.message.contains("Telepathy"), "{}", f.message);
}

#[test]
fn wire_values_parse_exactly() {
    assert_eq!(decimal(&json!(120.5)), Some(dec("120.5")));
    assert_eq!(decimal(&json!("19.99")), Some(dec("19.99")));
    assert_eq!(decimal(&json!(1e2)), Some(dec("100")));
    assert_eq!(decimal(&json!(true)), None);
    assert_eq!(
        parse_datetime("2026-11-26T22:33:00.000+0000"),
        Some(datetime!(2026-11-26 22:33 UTC))
    );
    assert_eq!(
        parse_datetime("2026-11-26T22:33:00Z"),
        Some(datetime!(2026-11-26 22:33 UTC))
    );
    assert_eq!(parse_datetime("yesterday"), None);
    assert_eq!(parse_channel(None).ok(), Some(Channel::B2b));
    assert_eq!(
        parse_channel(Some("marketplace")).ok(),
        Some(Channel::Marketplace)
    );
}

// ---------------------------------------------------------------- Avro

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn put_strs(out: &mut Vec<u8>, items: &[&str]) {
    if !items.is_empty() {
        put_long(out, items.len() as i64);
        for s in items {
            put_str(out, s);
        }
    }
    put_long(out, 0);
}

fn header_schema() -> Json {
    let strings = json!({"type": "array", "items": "string"});
    json!({"name": "ChangeEventHeader", "type": {"type": "record", "name": "ChangeEventHeader", "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": strings},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": "com.sforce.eventbus",
            "symbols": ["CREATE", "DELETE", "GAP_CREATE", "GAP_DELETE", "GAP_OVERFLOW", "GAP_UNDELETE", "GAP_UPDATE", "UNDELETE", "UPDATE"]}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": strings},
        {"name": "diffFields", "type": strings},
        {"name": "changedFields", "type": strings}
    ]}})
}

/// `OrderChangeEvent` with header, Status, TotalAmount, a compound ShippingAddress, and
/// optionally a field added later.
fn order_schema(with_added_field: bool) -> String {
    let mut fields = vec![
        header_schema(),
        json!({"name": "Status", "type": ["null", "string"], "default": null}),
        json!({"name": "TotalAmount", "type": ["null", "double"], "default": null}),
        json!({"name": "ShippingAddress", "type": ["null", {"type": "record", "name": "Address", "fields": [
            {"name": "City", "type": ["null", "string"], "default": null},
            {"name": "Country", "type": ["null", "string"], "default": null}
        ]}], "default": null}),
        json!({"name": "LastModifiedDate", "type": ["null", "long"], "default": null}),
    ];
    if with_added_field {
        fields.push(json!({"name": "Gift_Note__c", "type": ["null", "string"], "default": null}));
    }
    json!({"type": "record", "name": "OrderChangeEvent", "namespace": "com.sforce.eventbus", "fields": fields}).to_string()
}

fn order_payload(origin: &str, changed: &[&str], added: Option<&str>) -> Vec<u8> {
    let mut p = Vec::new();
    put_str(&mut p, "Order");
    put_strs(&mut p, &["801000000000001AAA"]);
    put_long(&mut p, 8); // UPDATE
    put_str(&mut p, origin);
    put_str(&mut p, "tx-1");
    put_long(&mut p, 1);
    put_long(&mut p, 1_795_732_662_000);
    put_long(&mut p, 10_000_001);
    put_str(&mut p, "005000000000001AAA");
    put_strs(&mut p, &[]);
    put_strs(&mut p, &[]);
    put_strs(&mut p, changed);
    put_long(&mut p, 1); // Status present
    put_str(&mut p, "Activated");
    put_long(&mut p, 1); // TotalAmount present
    p.extend_from_slice(&120.5f64.to_le_bytes());
    put_long(&mut p, 1); // ShippingAddress present
    put_long(&mut p, 1);
    put_str(&mut p, "Lyon");
    put_long(&mut p, 0);
    put_long(&mut p, 1);
    put_long(&mut p, 1_795_732_662_000);
    if let Some(note) = added {
        put_long(&mut p, 1);
        put_str(&mut p, note);
    }
    p
}

#[test]
fn change_events_decode_with_bitmaps_expanded() {
    let schema = avro::parse_schema(&order_schema(false)).expect("schema");
    // Bits 1 and 4 → Status and LastModifiedDate; nested "3-0x1" → ShippingAddress.City.
    let payload = order_payload(
        "com/salesforce/api/rest/60.0;client=crossdock",
        &["0x12", "3-0x1"],
        None,
    );
    let Decoded::Change(ev) = events::decode_event(&schema, &payload).expect("decodes") else {
        panic!("a change event");
    };
    assert_eq!(ev.entity, "Order");
    assert_eq!(ev.change_type, "UPDATE");
    assert_eq!(ev.record_ids, vec!["801000000000001AAA"]);
    assert_eq!(ev.commit_timestamp, 1_795_732_662_000);
    assert_eq!(
        ev.changed_fields,
        vec!["Status", "LastModifiedDate", "ShippingAddress.City"]
    );
    assert_eq!(ev.text("Status"), Some("Activated"));
    assert_eq!(ev.fields["TotalAmount"], json!(120.5));
    assert_eq!(
        ev.fields["ShippingAddress"],
        json!({"City": "Lyon", "Country": null})
    );
    assert_eq!(
        ev.json["ChangeEventHeader"]["changedFields"],
        json!(["Status", "LastModifiedDate", "ShippingAddress.City"])
    );
    assert!(events::origin_is(&ev.change_origin, "crossdock"));
    assert!(!events::origin_is(&ev.change_origin, "crossdock2"));
}

#[test]
fn a_field_added_to_the_schema_does_not_break_decoding() {
    let v2 = avro::parse_schema(&order_schema(true)).expect("schema v2");
    let payload = order_payload("", &["0x22"], Some("wrap it"));
    let Decoded::Change(ev) = events::decode_event(&v2, &payload).expect("decodes") else {
        panic!("a change event");
    };
    assert_eq!(ev.changed_fields, vec!["Status", "Gift_Note__c"]);
    assert_eq!(ev.text("Gift_Note__c"), Some("wrap it"));
    assert_eq!(ev.text("Status"), Some("Activated"));
    // The old schema still decodes the old payloads.
    let v1 = avro::parse_schema(&order_schema(false)).expect("schema v1");
    assert!(events::decode_event(&v1, &order_payload("", &["0x2"], None)).is_ok());
}

#[test]
fn bitmaps_outside_the_schema_are_errors_not_panics() {
    let schema = avro::parse_schema(&order_schema(false)).expect("schema");
    let fields = schema.record_fields().expect("record");
    assert_eq!(
        avro::expand_bitmaps(fields, &["0x14".into()]),
        Ok(vec![
            "TotalAmount".to_owned(),
            "LastModifiedDate".to_owned()
        ])
    );
    assert!(
        avro::expand_bitmaps(fields, &["0x24".into()]).is_err(),
        "bit 5 is beyond 5 fields"
    );
    assert!(avro::expand_bitmaps(fields, &["0x100".into()]).is_err());
    assert!(
        avro::expand_bitmaps(fields, &["1-0x1".into()]).is_err(),
        "Status is not compound"
    );
    assert!(avro::expand_bitmaps(fields, &["0xZZ".into()]).is_err());
    assert_eq!(
        avro::expand_bitmaps(fields, &["Status".into()]),
        Ok(vec!["Status".into()])
    );
}

#[test]
fn malformed_payloads_are_precise_errors() {
    let schema = avro::parse_schema(&order_schema(false)).expect("schema");
    let good = order_payload("", &["0x2"], None);
    for cut in [0, 1, 5, good.len() / 2, good.len() - 1] {
        let err = events::decode_event(&schema, &good[..cut]).expect_err("truncated");
        assert!(err.contains("byte"), "{err}");
    }
    let mut extra = good.clone();
    extra.push(0);
    assert!(
        events::decode_event(&schema, &extra)
            .expect_err("trailing")
            .contains("left after")
    );
    // A string claiming a huge length.
    let mut huge = Vec::new();
    put_long(&mut huge, i64::MAX / 2);
    assert!(events::decode_event(&schema, &huge).is_err());
    // An array announcing more items than bytes.
    let array = avro::parse_schema(r#"{"type":"array","items":"long"}"#).expect("schema");
    let mut block = Vec::new();
    put_long(&mut block, 1_000_000);
    assert!(avro::decode_payload(&array, &block).is_err());
    // A bad union branch.
    let union = avro::parse_schema(r#"["null","string"]"#).expect("schema");
    assert!(avro::decode_payload(&union, &[4]).is_err());
    // Schemas that are not schemas.
    assert!(avro::parse_schema("{}").is_err());
    assert!(
        avro::parse_schema(r#"{"type":"record","name":"X","fields":[{"name":"a","type":"Nope"}]}"#)
            .is_err()
    );
}

#[test]
fn avro_primitives_round_trip() {
    let schema = avro::parse_schema(
        r#"{"type":"record","name":"R","fields":[
            {"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
            {"name":"f","type":"float"},{"name":"m","type":{"type":"map","values":"int"}},
            {"name":"x","type":{"type":"fixed","name":"F","size":2}},{"name":"y","type":"bytes"}]}"#,
    )
    .expect("schema");
    assert!(matches!(schema, Schema::Record { .. }));
    let mut p = vec![1];
    put_long(&mut p, -3);
    put_long(&mut p, 1 << 40);
    p.extend_from_slice(&1.5f32.to_le_bytes());
    put_long(&mut p, -1); // one item, with a byte size
    put_long(&mut p, 3);
    put_str(&mut p, "k");
    put_long(&mut p, 7);
    put_long(&mut p, 0);
    p.extend_from_slice(&[0xAB, 0xCD]);
    put_long(&mut p, 2);
    p.extend_from_slice(&[1, 2]);
    let v = avro::decode_payload(&schema, &p).expect("decodes");
    assert_eq!(
        v,
        json!({"b": true, "i": -3, "l": 1_i64 << 40, "f": 1.5, "m": {"k": 7}, "x": "q80=", "y": "AQI="})
    );
}

// ---------------------------------------------------------------- events

#[test]
fn return_lines_map_skus_to_order_lines() {
    let draft = OrderDraft {
        id: OrderId::new("SF-1"),
        refs: ExternalRefs::default(),
        account: AccountId::new("C-1"),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: vec![
            DraftLine {
                line: LineNo(1),
                sku: Sku::new("A"),
                quantity: 2,
                unit_price: dec("1"),
                sf_id: None,
            },
            DraftLine {
                line: LineNo(2),
                sku: Sku::new("B"),
                quantity: 1,
                unit_price: dec("1"),
                sf_id: None,
            },
            DraftLine {
                line: LineNo(3),
                sku: Sku::new("A"),
                quantity: 5,
                unit_price: dec("1"),
                sf_id: None,
            },
        ],
        region: None,
        source: crossdock_domain::ids::System::Salesforce,
        captured_at: datetime!(2026-01-01 0:00 UTC),
    };
    let lines = events::return_lines(" A:3 ; B:1", &draft).expect("valid");
    assert_eq!(
        lines,
        BTreeMap::from([(LineNo(1), 2), (LineNo(2), 1), (LineNo(3), 1)])
    );
    assert!(
        events::return_lines("C:1", &draft)
            .expect_err("unknown")
            .contains("SKU C")
    );
    assert!(
        events::return_lines("B:2", &draft)
            .expect_err("too many")
            .contains("more")
    );
    assert!(
        events::return_lines("A", &draft)
            .expect_err("malformed")
            .contains("SKU:QTY")
    );
    assert!(events::return_lines("A:0", &draft).is_err());
    assert!(events::return_lines(" ; ", &draft).is_err());
}

#[test]
fn accounts_read_from_salesforce_become_canonical_accounts() {
    let record = json!({
        "Id": "001000000000001AAA", "Name": "Acme", "ERP_Customer_Number__c": "C-7",
        "AccountNumber": "A-7", "Customer_Tier__c": "Gold", "BillingCity": "Paris",
        "BillingCountry": "FR", "ShippingState": null
    });
    let m = events::account_meaning("001000000000001AAA", &record);
    let crossdock_ports::inbound::Inbound::Account { account } = m.body else {
        panic!("an account: {m:?}");
    };
    assert_eq!(account.id.as_str(), "C-7");
    assert_eq!(account.name, "Acme");
    assert_eq!(account.tier, crossdock_domain::account::CustomerTier::Gold);
    assert_eq!(account.region.as_deref(), Some("FR"));
    assert_eq!(
        account.billing.as_ref().map(|a| a.city.as_str()),
        Some("Paris")
    );
    assert!(account.shipping.is_none());
    assert!(account.credit_limit.is_none(), "credit belongs to the ERP");
    let nameless = events::account_meaning("001000000000002AAA", &json!({"Name": "x"}));
    assert!(matches!(
        nameless.body,
        crossdock_ports::inbound::Inbound::Unreadable { .. }
    ));
}

#[test]
fn topics_name_their_entity_and_replay_ids_round_trip() {
    assert_eq!(
        events::entity_of_topic("/data/OrderChangeEvent").as_deref(),
        Some("Order")
    );
    assert_eq!(
        events::entity_of_topic("/data/Inventory_Level__ChangeEvent").as_deref(),
        Some("Inventory_Level__c")
    );
    assert_eq!(events::entity_of_topic("/data/ChangeEvents"), None);
    assert_eq!(events::entity_of_topic("/event/Order_Shipped__e"), None);
    let bytes = 1_234_567_u64.to_be_bytes();
    let hex = replay_hex(&bytes);
    assert_eq!(hex, "000000000012d687");
    assert_eq!(parse_replay_hex(&hex), Some(bytes.to_vec()));
    assert_eq!(parse_replay_hex("abc"), None);
    assert_eq!(parse_replay_hex("zz"), None);
    assert_eq!(
        events::hub_order_id(&json!({"OrderNumber": "00000100"})).as_deref(),
        Some("SF-00000100")
    );
    assert_eq!(
        events::hub_order_id(&json!({"OrderNumber": "1", "Hub_Order_Id__c": "H-9"})).as_deref(),
        Some("H-9")
    );
}

#[test]
fn private_keys_load_in_both_pem_forms() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for file in ["jwt_key.pem", "jwt_key_rsa.pem"] {
        let key = crate::auth::load_private_key(std::path::Path::new(&format!("{dir}/{file}")));
        assert!(key.is_ok(), "{file}: {:?}", key.err());
    }
    let err = crate::auth::parse_private_key(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    )
    .expect_err("not a key");
    assert!(err.contains("PRIVATE KEY"), "{err}");
    assert!(
        crate::auth::parse_private_key(
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----"
        )
        .is_err()
    );
}

#[test]
fn token_errors_are_classified() {
    let f = crate::auth::token_failure(
        400,
        r#"{"error":"invalid_grant","error_description":"authentication failure"}"#,
        None,
    );
    assert_eq!(f.class, FailureClass::Permanent);
    assert_eq!(f.code.as_deref(), Some("invalid_grant"));
    assert_eq!(
        crate::auth::token_failure(503, "down", None).class,
        FailureClass::Transient
    );
    assert_eq!(
        crate::auth::token_failure(400, "???", None).class,
        FailureClass::Unknown
    );
}
