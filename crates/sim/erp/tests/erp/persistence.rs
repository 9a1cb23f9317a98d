//! Persistence: a simulator started on the data directory of a stopped (or killed) one resumes
//! its whole state — orders, stock, the feed and its cursors, idempotency, scheduled warehouse
//! work, webhooks, the clock and the random streams.

use std::path::Path;
use std::time::Duration;

use crossdock_sim_erp::config::{HOUR_MS, MINUTE_MS, SECOND_MS};
use crossdock_sim_erp::persist::STATE_FILE;
use crossdock_sim_erp::{Config, Faults, PersistError, Simulator, StartError};
use http::Method;
use serde_json::{Value, json};

use crate::support::{TempDir, TestErp, eventually};
use crate::webhooks::start_receiver;

const SKU: &str = "SKU-00001";

fn persistent(seed: u64, dir: &Path) -> Config {
    let mut config = TestErp::config(seed);
    config.data_dir = Some(dir.to_owned());
    config
}

async fn book(erp: &TestErp, reference: &str, customer: &str, lines: Value) -> Value {
    let reply = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": reference, "customer": customer, "lines": lines }),
        )
        .await;
    assert_eq!(reply.status, 201, "{reference}: {:?}", reply.body);
    reply.body
}

/// Bookings (one backordered), shipments moving, a payment under an `Idempotency-Key`, a
/// return received in part and credited, a master-data edit, and an order left mid-process.
async fn first_half(erp: &TestErp) {
    erp.rich_customer("SF-ACC-P").await;
    erp.set_stock(SKU, "WH-01", 4).await;
    erp.set_stock(SKU, "WH-02", 3).await;
    erp.set_stock(SKU, "WH-03", 0).await;
    book(
        erp,
        "SF-ORD-P1",
        "SF-ACC-P",
        json!([{ "sku": SKU, "quantity": 10, "line_ref": "L1" }]),
    )
    .await;
    book(
        erp,
        "SF-ORD-P2",
        "SF-ACC-P",
        json!([{ "sku": "SKU-00002", "quantity": 2 }, { "sku": "SKU-00003", "quantity": 1 }]),
    )
    .await;
    erp.advance(45 * MINUTE_MS).await;
    book(
        erp,
        "SF-ORD-P3",
        "ACC-00002",
        json!([{ "sku": "SKU-00004", "quantity": 1 }]),
    )
    .await;
    erp.advance(4 * 24 * HOUR_MS).await;
    let invoices = erp.get("/api/v1/orders/SF-ORD-P1/invoices").await;
    let invoice = invoices.body["invoices"][0]["number"]
        .as_str()
        .expect("P1 is invoiced")
        .to_owned();
    let paid = erp
        .call(
            Method::POST,
            "/api/v1/payments",
            Some(json!({ "invoice": invoice, "amount": "10.00", "external_ref": "BANK-1" })),
            &[("idempotency-key", "pay-key-1")],
        )
        .await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    let rma = erp
        .post(
            "/api/v1/rmas",
            json!({ "external_ref": "SF-CASE-P", "order": "SF-ORD-P1", "reason": "damaged", "lines": [{ "line": 1, "quantity": 2 }] }),
        )
        .await;
    assert_eq!(rma.status, 201, "{:?}", rma.body);
    let received = erp
        .post(
            "/api/v1/rmas/SF-CASE-P/receipts",
            json!({ "lines": [{ "line": 1, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(received.status, 200, "{:?}", received.body);
    let memo = erp
        .post("/api/v1/rmas/SF-CASE-P/credit-memos", json!({}))
        .await;
    assert_eq!(memo.status, 201, "{:?}", memo.body);
    let renamed = erp
        .put(
            "/admin/items/SKU-00002",
            json!({ "name": "Renamed Lamp", "list_price": "12.34" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    book(
        erp,
        "SF-ORD-P4",
        "SF-ACC-P",
        json!([{ "sku": "SKU-00005", "quantity": 1 }]),
    )
    .await;
    erp.advance(10 * MINUTE_MS).await;
}

/// More of everything after the (possible) restart.
async fn second_half(erp: &TestErp) {
    erp.advance(2 * HOUR_MS).await;
    book(
        erp,
        "SF-ORD-P5",
        "ACC-00003",
        json!([{ "sku": "SKU-00006", "quantity": 3 }]),
    )
    .await;
    let refund = erp
        .post("/api/v1/credit-memos/CM-000001/refunds", json!({}))
        .await;
    assert_eq!(refund.status, 201, "{:?}", refund.body);
    erp.advance(40 * 24 * HOUR_MS).await;
}

async fn orders(erp: &TestErp) -> Vec<Value> {
    let mut all = Vec::new();
    for n in 1..=5 {
        let reply = erp.get(&format!("/api/v1/orders/SF-ORD-P{n}")).await;
        if reply.status == 200 {
            all.push(reply.body);
        }
    }
    all
}

#[tokio::test]
async fn a_restored_simulator_continues_exactly_like_one_that_never_stopped() {
    // Feed faults and the default payment behaviour make every random stream matter.
    let configure = |mut config: Config| {
        config.payments = crossdock_sim_erp::config::PaymentBehaviour::default();
        config.faults = Faults {
            duplicate_rate: 0.2,
            reorder_rate: 0.2,
            ..Faults::default()
        };
        config
    };
    let dir = TempDir::new("continue");

    let erp = TestErp::start(configure(persistent(61, &dir.path()))).await;
    first_half(&erp).await;
    erp.handle.shutdown().await;
    let erp = TestErp::start(configure(persistent(61, &dir.path()))).await;
    assert!(erp.handle.restored());
    second_half(&erp).await;
    let (resumed_feed, resumed_raw) = erp.whole_feed().await;
    let resumed_orders = orders(&erp).await;
    erp.handle.shutdown().await;

    let reference = TestErp::start(configure(TestErp::config(61))).await;
    first_half(&reference).await;
    second_half(&reference).await;
    let (feed, raw) = reference.whole_feed().await;
    let reference_orders = orders(&reference).await;
    reference.handle.shutdown().await;

    assert!(feed.len() > 80, "a real feed ({} deliveries)", feed.len());
    assert_eq!(resumed_feed.len(), feed.len());
    assert!(
        resumed_raw == raw,
        "the feed of the resumed run differs from the uninterrupted one"
    );
    assert_eq!(resumed_orders.len(), 5);
    assert_eq!(resumed_orders, reference_orders);
}

#[tokio::test]
async fn after_a_restart_orders_stock_feed_idempotency_webhooks_and_scheduled_work_carry_on() {
    let dir = TempDir::new("restart");
    let erp = TestErp::start(persistent(62, &dir.path())).await;
    assert!(!erp.handle.restored(), "an empty directory starts fresh");
    let (hook_url, receiver) = start_receiver(0).await;
    let registered = erp
        .post(
            "/admin/webhooks",
            json!({ "url": hook_url, "secret": "whsec-p", "event_types": ["order.booked", "shipment.shipped"] }),
        )
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    first_half(&erp).await;

    let orders_before = orders(&erp).await;
    let availability_before = erp.get(&format!("/api/v1/availability/{SKU}")).await.body;
    let customers_before = erp.get("/admin/customers").await.body;
    let (feed_before, _) = erp.whole_feed().await;
    let cursor = feed_before.last().expect("events")["position"]
        .as_u64()
        .expect("position");
    let last_seq = erp.handle.inspect(|s| s.last_seq());
    let p4 = erp.get("/api/v1/orders/SF-ORD-P4/shipments").await.body;
    assert_eq!(
        p4["shipments"][0]["status"], "allocated",
        "P4 waits for picking at the restart"
    );
    let replayed_before = erp
        .call(
            Method::POST,
            "/api/v1/payments",
            Some(json!({ "invoice": "INV-000001", "amount": "10.00", "external_ref": "BANK-1" })),
            &[("idempotency-key", "pay-key-1")],
        )
        .await;
    // Everything offered to the subscription so far.
    let offered = erp.handle.inspect(|s| {
        s.webhooks()
            .next()
            .map(|w| w.next_position - 1 + w.pending())
            .expect("one webhook")
    });
    assert!(
        offered >= 4,
        "bookings and shipments were offered ({offered})"
    );
    eventually("webhook deliveries before the restart", || {
        receiver.lock().expect("lock").accepted.len() as u64 == offered
    })
    .await;
    erp.handle.shutdown().await;

    let erp = TestErp::start(persistent(62, &dir.path())).await;
    assert!(erp.handle.restored());
    assert_eq!(erp.handle.data_dir(), Some(dir.path().as_path()));
    // Same orders, numbers, stock and master data (not generated again).
    assert_eq!(orders(&erp).await, orders_before);
    assert_eq!(
        erp.get(&format!("/api/v1/availability/{SKU}")).await.body,
        availability_before
    );
    assert_eq!(erp.get("/admin/customers").await.body, customers_before);
    let item = erp.get("/api/v1/items/SKU-00002").await.body;
    assert_eq!(
        (item["name"].as_str(), item["list_price"].as_str()),
        (Some("Renamed Lamp"), Some("12.34"))
    );
    // The feed is the same, and the cursor from before sees exactly what is new.
    let (feed_after, _) = erp.whole_feed().await;
    assert_eq!(feed_after, feed_before);
    let empty = erp.get(&format!("/api/v1/events?after={cursor}")).await;
    assert_eq!(empty.body["events"], json!([]));
    // Idempotency: the booking reference and the Idempotency-Key answer as before.
    let again = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": "SF-ORD-P1", "customer": "SF-ACC-P", "lines": [{ "sku": SKU, "quantity": 10 }] }),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["number"], orders_before[0]["number"]);
    assert_eq!(erp.handle.inspect(|s| s.orders_created_for("SF-ORD-P1")), 1);
    let replayed = erp
        .call(
            Method::POST,
            "/api/v1/payments",
            Some(json!({ "invoice": "INV-000001", "amount": "10.00", "external_ref": "BANK-1" })),
            &[("idempotency-key", "pay-key-1")],
        )
        .await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.raw, replayed_before.raw);
    assert_eq!(
        replayed
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // New documents continue the numbering; new events get higher sequence numbers.
    let p5 = book(
        &erp,
        "SF-ORD-P5",
        "ACC-00003",
        json!([{ "sku": "SKU-00006", "quantity": 3 }]),
    )
    .await;
    assert_eq!(p5["number"], "SO-000005");
    // Scheduled work still runs, at the times it was scheduled for.
    erp.advance(2 * HOUR_MS).await;
    let p4 = erp.get("/api/v1/orders/SF-ORD-P4/shipments").await.body;
    let shipment = &p4["shipments"][0];
    assert_eq!(shipment["status"], "shipped");
    let booked_at = erp.get("/api/v1/orders/SF-ORD-P4").await.body["booked_at"].clone();
    let booked_ms =
        crossdock_sim_erp::clock::parse_time(booked_at.as_str().expect("time")).expect("RFC 3339");
    let picked = shipment["milestones"][1].clone();
    assert_eq!(picked["status"], "picked");
    assert_eq!(
        picked["at"]
            .as_str()
            .map(crossdock_sim_erp::clock::parse_time),
        Some(Some(booked_ms + 30 * MINUTE_MS)),
        "picked 30 minutes after booking, across the restart"
    );
    let new = erp
        .get(&format!("/api/v1/events?after={cursor}&limit=1000"))
        .await;
    let new = new.body["events"].as_array().cloned().unwrap_or_default();
    assert!(new.len() >= 4, "{} new events", new.len());
    for (offset, event) in new.iter().enumerate() {
        assert_eq!(event["position"], cursor + 1 + offset as u64);
        assert_eq!(event["seq"], last_seq + 1 + offset as u64);
    }
    // The webhook subscription resumed at the next position.
    eventually("webhook deliveries after the restart", || {
        receiver.lock().expect("lock").accepted.len() as u64 > offered
    })
    .await;
    let positions: Vec<u64> = receiver
        .lock()
        .expect("lock")
        .accepted
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).expect("JSON")["position"]
                .as_u64()
                .expect("position")
        })
        .collect();
    let expected: Vec<u64> = (1..=positions.len() as u64).collect();
    assert_eq!(positions, expected, "no delivery lost or repeated");
    erp.handle.shutdown().await;
}

/// The `next_seq` and `now_ms` recorded in the state file.
fn saved_marks(dir: &Path) -> Option<(u64, i64)> {
    let bytes = std::fs::read(dir.join(STATE_FILE)).ok()?;
    let saved: Value = serde_json::from_slice(&bytes).ok()?;
    Some((saved["next_seq"].as_u64()?, saved["now_ms"].as_i64()?))
}

#[tokio::test]
async fn a_crash_after_the_periodic_write_loses_nothing_written() {
    let dir = TempDir::new("crash");
    let mut config = persistent(63, &dir.path());
    config.persist_interval_ms = 100;
    let erp = TestErp::start(config.clone()).await;
    first_half(&erp).await;
    let orders_before = orders(&erp).await;
    let (feed_before, _) = erp.whole_feed().await;
    let live = erp.handle.inspect(|s| (s.last_seq() + 1, s.now_ms()));
    // The file is renamed into place just before the write is counted.
    let writes = || erp.handle.stats()["persistence"]["writes"].as_u64();
    eventually("the periodic write of the last change", || {
        saved_marks(&dir.path()) == Some(live) && writes() >= Some(2)
    })
    .await;
    // A crash: the handle goes away without shutdown, so nothing is written at the end.
    drop(erp);

    let erp = TestErp::start(config).await;
    assert!(erp.handle.restored());
    assert_eq!(orders(&erp).await, orders_before);
    assert_eq!(erp.whole_feed().await.0, feed_before);
    let again = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": "SF-ORD-P4", "customer": "SF-ACC-P", "lines": [{ "sku": "SKU-00005", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(again.status, 200, "the existing order answers");
    assert_eq!(again.body["number"], orders_before[3]["number"]);
    erp.advance(2 * HOUR_MS).await;
    let p4 = erp.get("/api/v1/orders/SF-ORD-P4").await.body;
    assert_eq!(p4["shipment_status"], "shipped");
    erp.handle.shutdown().await;
}

/// Every answer waits for the write that holds it: with no periodic write at all (an hour's
/// interval), a crash right after the last answer keeps every booking, every number and every
/// feed event, and the restarted simulator issues fresh numbers, never one it already gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_an_answer_loses_nothing_that_was_acknowledged() {
    let dir = TempDir::new("durable");
    let data = dir.path().join("erp");
    let mut config = persistent(65, &data);
    config.persist_interval_ms = HOUR_MS.unsigned_abs();
    let erp = std::sync::Arc::new(TestErp::start(config.clone()).await);
    erp.rich_customer("SF-ACC-D").await;
    // Concurrent bookings: group commit covers many answers with one write.
    let bookings = 120;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..bookings {
        let erp = erp.clone();
        tasks.spawn(async move {
            let reference = format!("SF-ORD-D{n}");
            let body = book(
                &erp,
                &reference,
                "SF-ACC-D",
                json!([{ "sku": "SKU-00002", "quantity": 1 }]),
            )
            .await;
            (reference, body["number"].as_str().map(str::to_owned))
        });
    }
    let mut numbers = std::collections::BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (reference, number) = joined.expect("booking task");
        numbers.insert(reference, number.expect("a booking has a number"));
    }
    erp.advance(3 * HOUR_MS).await;
    let (feed_before, _) = erp.whole_feed().await;
    let writes = erp.handle.stats()["persistence"]["writes"]
        .as_u64()
        .expect("write count");
    println!("{bookings} concurrent bookings and a clock advance took {writes} writes");
    assert!(writes >= 2, "the answers waited for writes: {writes}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(
            mode(&data.join(STATE_FILE)),
            Some(0o600),
            "the state file is owner-only"
        );
        assert_eq!(
            mode(&data),
            Some(0o700),
            "the directory it creates is owner-only"
        );
    }
    // A crash: no write at the end, and the periodic one never came.
    let erp = std::sync::Arc::into_inner(erp).expect("every task finished");
    drop(erp);

    let erp = TestErp::start(config).await;
    assert!(erp.handle.restored());
    for (reference, number) in &numbers {
        let order = erp.get(&format!("/api/v1/orders/{reference}")).await;
        assert_eq!(order.status, 200, "{reference} was acknowledged");
        assert_eq!(order.body["number"], number.as_str(), "{reference}");
    }
    assert_eq!(
        erp.whole_feed().await.0,
        feed_before,
        "every announced event is still there"
    );
    let fresh = book(
        &erp,
        "SF-ORD-D-NEW",
        "SF-ACC-D",
        json!([{ "sku": "SKU-00002", "quantity": 1 }]),
    )
    .await;
    let fresh = fresh["number"].as_str().expect("number").to_owned();
    assert!(
        !numbers.values().any(|n| *n == fresh),
        "{fresh} was issued before the crash"
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn a_real_clock_resumes_with_the_time_that_passed_and_runs_what_came_due() {
    let dir = TempDir::new("real");
    let config = || {
        let mut config = TestErp::config(64).starting_now();
        config.warehouse.pick_ms = 2_500;
        config.warehouse.pack_ms = 500;
        config.warehouse.ship_ms = SECOND_MS;
        config.data_dir = Some(dir.path());
        config
    };
    let erp = TestErp::start(config()).await;
    erp.rich_customer("SF-ACC-R").await;
    erp.set_stock(SKU, "WH-01", 50).await;
    let order = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": "SF-ORD-R", "customer": "SF-ACC-R", "locations": ["WH-01"], "lines": [{ "sku": SKU, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(order.status, 201, "{:?}", order.body);
    let booked_ms =
        crossdock_sim_erp::clock::parse_time(order.body["booked_at"].as_str().expect("time"))
            .expect("RFC 3339");
    let wall = crossdock_sim_erp::clock::wall_clock_ms();
    assert!(
        (wall - booked_ms).abs() < 2_000,
        "booked at the wall-clock time ({booked_ms} vs {wall})"
    );
    erp.handle.shutdown().await;
    let shipment = "SH-000001";
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).expect("state file"))
            .expect("JSON");
    assert_eq!(
        saved["shipments"][shipment]["status"], "allocated",
        "stopped before picking"
    );

    tokio::time::sleep(Duration::from_millis(3_500)).await;
    // The configured start time no longer matters: the clock resumes from the saved time.
    let mut again = config();
    again.start_time_ms = Config::default().start_time_ms;
    let erp = TestErp::start(again).await;
    let now = erp.handle.now_ms();
    let wall = crossdock_sim_erp::clock::wall_clock_ms();
    assert!(
        (wall - now).abs() < 1_000,
        "the clock resumed at the wall-clock time ({now} vs {wall})"
    );
    let milestones = erp.handle.inspect(|s| {
        s.shipment(shipment)
            .map(|sh| {
                sh.milestones
                    .iter()
                    .map(|m| (m.status.as_str(), m.at - booked_ms))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    assert_eq!(
        milestones[..3],
        [("allocated", 0), ("picked", 2_500), ("packed", 3_000)],
        "work that came due while stopped ran at its own time"
    );
    eventually("the shipment ships on the resumed real clock", || {
        erp.handle.inspect(|s| {
            s.shipment(shipment)
                .is_some_and(|sh| sh.status.as_str() == "shipped")
        })
    })
    .await;
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_state_file_stops_the_start_with_a_precise_error() {
    let dir = TempDir::new("corrupt");
    let path = dir.path().join(STATE_FILE);
    std::fs::write(&path, b"{\"format\": 1, \"seed\": ").expect("write");
    let error = Simulator::start(persistent(65, &dir.path()))
        .await
        .expect_err("a truncated file is refused");
    match &error {
        StartError::Persistence(PersistError::Corrupt { path: at, message }) => {
            assert_eq!(at, &path);
            assert!(message.contains("EOF"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(error.to_string().contains(STATE_FILE), "{error}");

    std::fs::write(&path, b"{\"format\": 99, \"something\": \"else\"}").expect("write");
    let error = Simulator::start(persistent(65, &dir.path()))
        .await
        .expect_err("another layout is refused");
    assert!(
        matches!(
            error,
            StartError::Persistence(PersistError::Format {
                found: 99,
                expected: 1,
                ..
            })
        ),
        "{error:?}"
    );

    let file_in_the_way = dir.path().join("not-a-dir");
    std::fs::write(&file_in_the_way, b"x").expect("write");
    let error = Simulator::start(persistent(65, &file_in_the_way))
        .await
        .expect_err("a file is not a directory");
    assert!(
        matches!(
            error,
            StartError::Persistence(PersistError::Io {
                action: "create",
                ..
            })
        ),
        "{error:?}"
    );
}
