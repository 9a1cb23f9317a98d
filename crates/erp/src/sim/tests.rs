//! Failure classes and shape errors against a tiny local HTTP stub (malformed JSON, wrong
//! types, missing fields, business refusals, 503, 429 with `Retry-After`, refused
//! connections, timeouts), and fault knobs of the real simulator run in-process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_domain::ids::{AccountId, LineNo, OrderId, Sku};
use crossdock_domain::money::Currency;
use crossdock_ports::erp::{BookingLine, BookingRequest};
use crossdock_ports::{Erp, Failure, FailureClass};
use crossdock_sim_erp::{ErrorRates, Faults, Simulator};
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Adapter, Config};

/// A canned answer: status, extra headers, body.
pub(crate) type Canned = (u16, Vec<(&'static str, &'static str)>, String);

/// Serves the canned answers in turn, one per connection, and records each request.
pub(crate) async fn stub(answers: Vec<Canned>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stub");
    let url = format!("http://{}", listener.local_addr().expect("stub address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for (status, headers, body) in answers {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read the head and whatever body the content length announces.
            while let Ok(n) = socket.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            record.lock().expect("stub log").push(text);
            let mut answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                answer.push_str(&format!("{name}: {value}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, seen)
}

fn adapter(url: &str) -> Adapter {
    let mut config = Config::new(url);
    config.timeout_secs = 1;
    Adapter::new(&config).expect("adapter")
}

fn booking(reference: &str) -> BookingRequest {
    BookingRequest {
        reference: OrderId::new(reference),
        sf_number: None,
        account: AccountId::new("ACC-00001"),
        currency: Currency::USD,
        lines: vec![BookingLine {
            line: LineNo(1),
            sku: Sku::new("SKU-00001"),
            quantity: 2,
            unit_price: Decimal::new(1250, 2),
        }],
        fulfilment: None,
        region: None,
    }
}

fn unknown(result: Result<impl std::fmt::Debug, Failure>) -> Failure {
    let failure = result.expect_err("the call must fail");
    assert_eq!(failure.class, FailureClass::Unknown, "{failure}");
    failure
}

#[tokio::test]
async fn malformed_json_is_unknown_and_names_the_operation() {
    let (url, _) = stub(vec![(200, vec![], "{\"sku\": \"SKU-1\", ".to_owned())]).await;
    let failure = unknown(adapter(&url).availability(&[Sku::new("SKU-1")], None).await);
    assert!(failure.message.starts_with("availability:"), "{failure}");
    assert!(failure.message.contains("not valid JSON"), "{failure}");
}

#[tokio::test]
async fn a_number_where_money_is_expected_names_the_field() {
    let body = r#"{"sku":"SKU-1","currency":"USD","list_price":"12.50","customer_price":null,
                   "promotion":null,"unit_price":12.5}"#;
    let (url, _) = stub(vec![(200, vec![], body.to_owned())]).await;
    let failure = unknown(
        adapter(&url)
            .prices(
                &AccountId::new("ACC-1"),
                &[crossdock_ports::erp::PriceRequest {
                    sku: Sku::new("SKU-1"),
                    quantity: 1,
                }],
                time::macros::date!(2025 - 03 - 03),
            )
            .await,
    );
    assert!(failure.message.starts_with("price_quote:"), "{failure}");
    assert!(failure.message.contains("`unit_price`"), "{failure}");
}

#[tokio::test]
async fn a_missing_field_names_the_operation_and_the_field() {
    let body = r#"{"number":"SO-000001","external_ref":"ORD-1","cancelled_at":null}"#;
    let (url, _) = stub(vec![(201, vec![], body.to_owned())]).await;
    let failure = unknown(adapter(&url).book_order(&booking("ORD-1"), "key-1").await);
    assert!(failure.message.starts_with("book_order:"), "{failure}");
    assert!(
        failure.message.contains("missing field `lines`"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_wrong_type_deep_in_a_list_names_its_path() {
    let body = r#"{"number":"SO-000001","external_ref":"ORD-1","cancelled_at":null,
                   "lines":[{"line":1,"sku":"SKU-00001","quantity":2,"allocated":"two",
                             "backordered":0,"shipped":0,"delivered":0}]}"#;
    let (url, _) = stub(vec![(201, vec![], body.to_owned())]).await;
    let failure = unknown(adapter(&url).book_order(&booking("ORD-1"), "key-1").await);
    assert!(
        failure.message.contains("`lines[0].allocated`"),
        "{failure}"
    );
}

#[tokio::test]
async fn an_answer_for_another_reference_is_unknown() {
    let body =
        r#"{"number":"SO-000009","external_ref":"SOMEONE-ELSE","cancelled_at":null,"lines":[]}"#;
    let (url, _) = stub(vec![(200, vec![], body.to_owned())]).await;
    let failure = unknown(adapter(&url).book_order(&booking("ORD-1"), "key-1").await);
    assert!(failure.message.contains("SOMEONE-ELSE"), "{failure}");
}

#[tokio::test]
async fn a_business_refusal_is_permanent_with_the_erp_message() {
    let body = r#"{"error":{"code":"credit_limit_exceeded","message":"order total 5711.88 exceeds the available credit 100.00 of customer C-10027","details":{}}}"#;
    let (url, seen) = stub(vec![(422, vec![], body.to_owned())]).await;
    let failure = adapter(&url)
        .book_order(&booking("ORD-1"), "key-1")
        .await
        .expect_err("refused");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(
        failure.message,
        "order total 5711.88 exceeds the available credit 100.00 of customer C-10027"
    );
    assert_eq!(failure.code.as_deref(), Some("credit_limit_exceeded"));
    assert!(seen.lock().expect("log")[0].starts_with("POST /api/v1/orders HTTP/1.1"));
}

#[tokio::test]
async fn service_unavailable_is_transient() {
    let body = r#"{"error":{"code":"outage","message":"the ERP is unavailable (outage window)"}}"#;
    let (url, _) = stub(vec![(503, vec![("retry-after", "1")], body.to_owned())]).await;
    let failure = adapter(&url)
        .order("SO-000001")
        .await
        .expect_err("unavailable");
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
    assert_eq!(failure.code.as_deref(), Some("outage"));
}

#[tokio::test]
async fn a_non_json_server_error_is_transient_with_a_snippet() {
    let (url, _) = stub(vec![(502, vec![], "<html>bad gateway</html>".to_owned())]).await;
    let failure = adapter(&url).order("SO-1").await.expect_err("bad gateway");
    assert_eq!(failure.class, FailureClass::Transient);
    assert!(failure.message.contains("bad gateway"), "{failure}");
}

#[tokio::test]
async fn rate_limiting_is_throttled_with_the_servers_retry_after() {
    let body = r#"{"error":{"code":"rate_limited","message":"too many requests"}}"#;
    let (url, _) = stub(vec![(429, vec![("retry-after", "7")], body.to_owned())]).await;
    let failure = adapter(&url)
        .credit_status(&AccountId::new("ACC-1"))
        .await
        .expect_err("throttled");
    assert_eq!(
        failure.class,
        FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let failure = adapter(&url).order("SO-1").await.expect_err("refused");
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
    assert_eq!(failure.code.as_deref(), Some("connect"));
}

#[tokio::test]
async fn no_answer_in_time_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    // Accept and never answer.
    let _keep = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let failure = adapter(&url).order("SO-1").await.expect_err("timeout");
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
    assert_eq!(failure.code.as_deref(), Some("timeout"));
}

#[tokio::test]
async fn a_feed_event_of_the_wrong_shape_names_the_event_and_the_field() {
    let body = r#"{"events":[{"position":4,"seq":4,"id":"e-4","type":"inventory.changed",
        "occurred_at":"2025-03-03T08:00:00.000Z",
        "data":{"sku":"SKU-1","location":"WH-01","on_hand":"many","reserved":0,"available":1,
                "as_of":"2025-03-03T08:00:00.000Z"}}],"next_after":4,"has_more":false}"#;
    let (url, _) = stub(vec![(200, vec![], body.to_owned())]).await;
    let failure = unknown(adapter(&url).changes(Some("3"), 10).await);
    assert!(
        failure.message.contains("event 4 (inventory.changed)"),
        "{failure}"
    );
    assert!(failure.message.contains("`on_hand`"), "{failure}");
}

#[tokio::test]
async fn unknown_event_types_are_skipped_and_the_cursor_moves() {
    let body = r#"{"events":[{"position":8,"seq":8,"id":"e-8","type":"warehouse.repainted",
        "occurred_at":"2025-03-03T08:00:00.000Z","data":{}}],"next_after":8,"has_more":false}"#;
    let (url, _) = stub(vec![(200, vec![], body.to_owned())]).await;
    let batch = adapter(&url).changes(Some("7"), 10).await.expect("page");
    assert!(batch.changes.is_empty());
    assert_eq!(batch.cursor, "8");
}

#[tokio::test]
async fn a_cursor_the_adapter_never_gave_is_permanent() {
    let failure = adapter("http://127.0.0.1:9")
        .changes(Some("yesterday"), 10)
        .await
        .expect_err("bad cursor");
    assert_eq!(failure.class, FailureClass::Permanent);
}

async fn simulator(faults: Faults) -> (crossdock_sim_erp::Handle, Adapter) {
    let handle = Simulator::start(crossdock_sim_erp::Config {
        faults,
        ..crossdock_sim_erp::Config::default()
    })
    .await
    .expect("start the simulator");
    let adapter = adapter(&handle.base_url());
    (handle, adapter)
}

fn only(op: &str, rates: ErrorRates) -> Faults {
    Faults {
        errors: [(op.to_owned(), rates)].into_iter().collect(),
        ..Faults::default()
    }
}

#[tokio::test]
async fn the_simulators_injected_errors_map_to_their_classes() {
    let (_sim, erp) = simulator(only(
        "customer_credit",
        ErrorRates {
            http_429: 1.0,
            ..ErrorRates::default()
        },
    ))
    .await;
    let failure = erp
        .credit_status(&AccountId::new("ACC-00001"))
        .await
        .expect_err("throttled");
    assert_eq!(
        failure.class,
        FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(1))
        },
        "{failure}"
    );
    let (_sim, erp) = simulator(only(
        "customer_credit",
        ErrorRates {
            http_503: 1.0,
            ..ErrorRates::default()
        },
    ))
    .await;
    let failure = erp
        .credit_status(&AccountId::new("ACC-00001"))
        .await
        .expect_err("unavailable");
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
}

#[tokio::test]
async fn a_lost_booking_answer_retried_with_its_key_answers_the_first_order() {
    // The simulator processes the booking, holds the answer and answers 504.
    let mut faults = only(
        "book_order",
        ErrorRates {
            timeout: 1.0,
            ..ErrorRates::default()
        },
    );
    faults.timeout_ms = 50;
    let (sim, erp) = simulator(faults).await;
    let request = booking("ORD-LOST-1");
    let failure = erp
        .book_order(&request, "book/ORD-LOST-1")
        .await
        .expect_err("lost answer");
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
    sim.set_faults(Faults::default()).expect("clear faults");
    let retried = erp
        .book_order(&request, "book/ORD-LOST-1")
        .await
        .expect("retry");
    assert!(
        !retried.created,
        "the first attempt got through: {retried:?}"
    );
    let stats = sim.stats();
    assert_eq!(stats["bookings"]["ORD-LOST-1"]["orders_created"], 1);
}

#[tokio::test]
async fn an_unknown_item_is_refused_permanently() {
    let (_sim, erp) = simulator(Faults::default()).await;
    let mut request = booking("ORD-BAD-ITEM");
    request.lines[0].sku = Sku::new("NO-SUCH-SKU");
    let failure = erp
        .book_order(&request, "k")
        .await
        .expect_err("unknown item");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("unknown_item"));
    assert!(failure.message.contains("NO-SUCH-SKU"), "{failure}");
}

#[tokio::test]
async fn hub_line_numbers_survive_booking_and_reads() {
    let (_sim, erp) = simulator(Faults::default()).await;
    let mut request = booking("ORD-LINES");
    request.lines = vec![
        BookingLine {
            line: LineNo(10),
            sku: Sku::new("SKU-00001"),
            quantity: 1,
            unit_price: Decimal::ONE,
        },
        BookingLine {
            line: LineNo(20),
            sku: Sku::new("SKU-00002"),
            quantity: 1,
            unit_price: Decimal::ONE,
        },
    ];
    let booked = erp.book_order(&request, "k").await.expect("booked");
    let order = erp.order(&booked.erp_ref).await.expect("order");
    let lines: Vec<LineNo> = order.lines.iter().map(|l| l.line).collect();
    assert_eq!(lines, vec![LineNo(10), LineNo(20)]);
    for allocation in &booked.allocations {
        assert!(lines.contains(&allocation.line), "{allocation:?}");
    }
    // A fresh adapter (empty cache) maps the feed's lines the same way.
    let fresh = adapter(erp.base_url());
    let batch = fresh.changes(None, 1000).await.expect("feed");
    let allocated: Vec<LineNo> = batch
        .changes
        .iter()
        .filter_map(|c| match &c.kind {
            crossdock_ports::erp::ChangeKind::LineAllocated { allocation, .. } => {
                Some(allocation.line)
            }
            _ => None,
        })
        .collect();
    assert!(!allocated.is_empty(), "the booking allocated stock");
    assert!(allocated.iter().all(|l| lines.contains(l)), "{allocated:?}");
}

#[tokio::test]
async fn the_admin_side_steers_the_simulator_and_lists_its_seed_data() {
    let (sim, erp) = simulator(Faults::default()).await;
    let admin = super::Admin::new(&Config::new(sim.base_url())).expect("admin");

    let seed = admin.seed().await.expect("seed data");
    assert_eq!(seed.customers.len(), 25, "default scenario customers");
    assert_eq!(seed.items.len(), 40, "default scenario items");
    assert!(seed.locations.iter().any(|l| l.kind == "warehouse"));
    let negotiated: usize = seed
        .customers
        .iter()
        .map(|c| c.negotiated_prices.len())
        .sum();
    assert!(
        negotiated > 0,
        "Gold and Silver customers have negotiated prices"
    );
    for customer in &seed.customers {
        for (sku, price) in &customer.negotiated_prices {
            let item = seed.items.iter().find(|i| &i.sku == sku).expect("item");
            assert!(
                price < &item.list_price,
                "{sku}: {price} vs {}",
                item.list_price
            );
        }
    }
    assert!(
        seed.items
            .iter()
            .all(|i| i.on_hand.len() == seed.locations.len()),
        "stock per location"
    );

    admin
        .start_outage(super::OutageMode::Http503, None)
        .await
        .expect("outage");
    let failure = erp
        .credit_status(&AccountId::new("ACC-00001"))
        .await
        .expect_err("outage");
    assert_eq!(failure.class, FailureClass::Transient);
    assert_eq!(failure.code.as_deref(), Some("outage"));
    assert_eq!(admin.stop_outages().await.expect("stop"), 1);
    erp.credit_status(&AccountId::new("ACC-00001"))
        .await
        .expect("back after the outage");

    let mut faults = admin.faults().await.expect("faults");
    faults.errors.insert(
        "credit_check".to_owned(),
        super::ErrorRates {
            http_500: 0.5,
            ..super::ErrorRates::default()
        },
    );
    let stored = admin.set_faults(&faults).await.expect("set faults");
    assert_eq!(stored.errors["credit_check"].http_500, 0.5);
    let bad = super::Faults {
        duplicate_rate: 2.0,
        ..super::Faults::default()
    };
    let refused = admin.set_faults(&bad).await.expect_err("out of range");
    assert_eq!(refused.class, FailureClass::Permanent);

    let before = admin.clock().await.expect("clock");
    let after = admin.advance_clock(3_600_000).await.expect("advance");
    assert_eq!(after.now_ms - before.now_ms, 3_600_000);

    erp.book_order(&booking("ORD-STATS"), "k-1")
        .await
        .expect("booked");
    erp.book_order(&booking("ORD-STATS"), "k-2")
        .await
        .expect("again");
    let stats = admin.stats().await.expect("stats");
    assert_eq!(stats.bookings["ORD-STATS"].requests, 2);
    assert_eq!(stats.bookings["ORD-STATS"].orders_created, 1);
    assert_eq!(stats.calls["book_order"].calls, 2);
    assert!(
        stats.total_calls() > 40,
        "the seed listing went through the API"
    );
}
