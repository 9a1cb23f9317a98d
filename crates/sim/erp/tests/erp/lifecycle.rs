//! Order-to-cash and returns over the HTTP API, under the manual clock.

use crossdock_sim_erp::config::{DAY_MS, HOUR_MS};
use rust_decimal::Decimal;
use serde_json::json;

use crate::support::{TestErp, dec, round_cents};

const SKU: &str = "SKU-00001";

/// Books 10 of SKU-00001 with 4 at WH-01, 3 at WH-02 and none elsewhere.
async fn book_split_order(erp: &TestErp, reference: &str) -> serde_json::Value {
    erp.rich_customer("SF-ACC-1").await;
    erp.set_stock(SKU, "WH-01", 4).await;
    erp.set_stock(SKU, "WH-02", 3).await;
    erp.set_stock(SKU, "WH-03", 0).await;
    let reply = erp
        .post(
            "/api/v1/orders",
            json!({
                "external_ref": reference,
                "customer": "SF-ACC-1",
                "locations": ["WH-01", "WH-02", "WH-03"],
                "lines": [{ "sku": SKU, "quantity": 10, "line_ref": "L1" }],
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn order_ships_from_two_locations_then_the_backorder_follows_and_everything_is_invoiced_and_paid()
 {
    let erp = TestErp::start(TestErp::config(11)).await;
    let order = book_split_order(&erp, "SF-ORD-1").await;
    let number = order["number"].as_str().expect("number").to_owned();
    let line = &order["lines"][0];
    assert_eq!(line["allocated"], 7);
    assert_eq!(line["backordered"], 3);
    assert_eq!(order["status"], "backordered");
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(2));

    // Availability dropped by what was reserved.
    let availability = erp
        .get(&format!("/api/v1/availability/{SKU}?location=WH-01"))
        .await;
    assert_eq!(availability.body["locations"][0]["reserved"], 4);
    assert_eq!(availability.body["locations"][0]["available"], 0);
    assert_eq!(availability.body["locations"][0]["backordered"], 3);
    assert_eq!(
        availability.body["locations"][0]["incoming"], 24,
        "3 missing → two lots of 12"
    );

    // Pick, pack, ship: two shipments leave, each invoiced.
    erp.advance(2 * HOUR_MS).await;
    let shipments = erp.get(&format!("/api/v1/orders/{number}/shipments")).await;
    let shipped: Vec<_> = shipments.body["shipments"]
        .as_array()
        .expect("shipments")
        .clone();
    assert_eq!(shipped.len(), 2);
    for shipment in &shipped {
        assert_eq!(shipment["status"], "shipped");
        assert!(shipment["carrier"].is_string() && shipment["tracking_number"].is_string());
        let statuses: Vec<_> = shipment["milestones"]
            .as_array()
            .expect("milestones")
            .iter()
            .map(|m| m["status"].clone())
            .collect();
        assert_eq!(
            statuses,
            vec![
                json!("allocated"),
                json!("picked"),
                json!("packed"),
                json!("shipped")
            ]
        );
    }
    let locations: Vec<_> = shipped
        .iter()
        .map(|s| s["location"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(locations, vec!["WH-01", "WH-02"]);
    let order = erp.get(&format!("/api/v1/orders/{number}")).await.body;
    assert_eq!(order["status"], "partially_shipped");
    assert_eq!(order["lines"][0]["shipped"], 7);
    assert_eq!(order["invoices"].as_array().map(Vec::len), Some(2));
    let stock = erp.handle.inspect(|s| s.stock(SKU, "WH-01"));
    assert_eq!((stock.on_hand, stock.reserved), (0, 0));

    // The replenishment arrives after two days; the backorder gets its own shipment.
    erp.advance(2 * DAY_MS).await;
    let order = erp.get(&format!("/api/v1/orders/{number}")).await.body;
    assert_eq!(order["lines"][0]["backordered"], 0);
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(3));
    let backorder_id = order["shipments"][2].as_str().expect("id").to_owned();
    let backorder = erp
        .get(&format!("/api/v1/shipments/{backorder_id}"))
        .await
        .body;
    assert_eq!(backorder["backorder"], true);
    assert_eq!(backorder["location"], "WH-01");
    assert_eq!(backorder["lines"][0]["quantity"], 3);

    // Everything ships, arrives and is paid (every customer pays on time in this config).
    erp.advance(30 * DAY_MS).await;
    let order = erp.get(&format!("/api/v1/orders/{number}")).await.body;
    assert_eq!(order["lines"][0]["shipped"], 10);
    assert_eq!(order["lines"][0]["delivered"], 10);
    assert_eq!(order["lines"][0]["invoiced"], 10);
    assert_eq!(order["invoice_status"], "paid");
    assert_eq!(order["status"], "closed");

    // Invoice amounts are exact: quantity × unit price × (1 + tax), rounded once.
    let unit = dec(&order["lines"][0]["unit_price"]);
    let rate = dec(&order["lines"][0]["tax_rate"]);
    let invoices = erp
        .get(&format!("/api/v1/orders/{number}/invoices"))
        .await
        .body;
    let invoices = invoices["invoices"].as_array().expect("invoices").clone();
    assert_eq!(invoices.len(), 3);
    let quantities: Vec<u64> = invoices
        .iter()
        .map(|i| i["lines"][0]["quantity"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(quantities, vec![4, 3, 3]);
    for invoice in &invoices {
        let quantity = Decimal::from(invoice["lines"][0]["quantity"].as_u64().unwrap_or(0));
        assert_eq!(
            dec(&invoice["total_amount"]),
            round_cents(quantity * unit * (Decimal::ONE + rate))
        );
        assert_eq!(
            dec(&invoice["untaxed_amount"]),
            round_cents(quantity * unit)
        );
        assert_eq!(invoice["status"], "paid");
        assert_eq!(invoice["amount_due"], "0.00");
    }
    let customer = erp.get("/api/v1/customers/SF-ACC-1/credit").await.body;
    assert_eq!(customer["open_balance"], "0.00");
    assert_eq!(customer["open_orders"], "0.00");

    // The feed tells the whole story.
    let (feed, _) = erp.whole_feed().await;
    let count = |kind: &str| feed.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("order.booked"), 1);
    assert_eq!(count("order.backordered"), 1);
    assert_eq!(count("order.allocated"), 3);
    for kind in [
        "shipment.picked",
        "shipment.packed",
        "shipment.shipped",
        "shipment.delivered",
        "invoice.issued",
        "payment.received",
    ] {
        assert_eq!(count(kind), 3, "{kind}");
    }
    let seqs: Vec<u64> = feed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers increase by one: {seqs:?}"
    );
    let shipped_event = feed
        .iter()
        .find(|e| e["type"] == "shipment.shipped")
        .expect("shipped event");
    assert!(shipped_event["data"]["tracking_number"].is_string());
    assert!(shipped_event["data"]["lines"][0]["quantity"].is_u64());
    let inventory = feed
        .iter()
        .rfind(|e| e["type"] == "inventory.changed")
        .expect("inventory event");
    for field in [
        "sku",
        "location",
        "on_hand",
        "reserved",
        "available",
        "as_of",
    ] {
        assert!(!inventory["data"][field].is_null(), "{field}");
    }
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn booking_twice_with_the_same_reference_gives_one_order() {
    let erp = TestErp::start(TestErp::config(12)).await;
    let first = book_split_order(&erp, "SF-ORD-DUP").await;
    let again = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": "SF-ORD-DUP", "customer": "SF-ACC-1", "lines": [{ "sku": SKU, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["number"], first["number"]);
    // Concurrent retries of another reference: still one order.
    let mut calls = Vec::new();
    for _ in 0..16 {
        let base = erp.base.clone();
        calls.push(tokio::spawn(async move {
            let body = json!({ "external_ref": "SF-ORD-RACE", "customer": "SF-ACC-1", "lines": [{ "sku": "SKU-00002", "quantity": 1 }] });
            crate::support::send(&crate::support::client(true), http::Method::POST, &format!("{base}/api/v1/orders"), Some(&body.to_string()), &[])
                .await
                .map(|r| r.body["number"].clone())
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    for call in calls {
        numbers.insert(call.await.expect("task").expect("answer").to_string());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    let stats = erp.get("/admin/stats").await.body;
    assert_eq!(stats["bookings"]["SF-ORD-DUP"]["orders_created"], 1);
    assert_eq!(stats["bookings"]["SF-ORD-DUP"]["requests"], 2);
    assert_eq!(stats["bookings"]["SF-ORD-RACE"]["orders_created"], 1);
    assert_eq!(stats["bookings"]["SF-ORD-RACE"]["requests"], 16);
    assert_eq!(
        erp.handle.inspect(|s| s.orders_created_for("SF-ORD-RACE")),
        1
    );
    // An Idempotency-Key replays the first answer, marked as a replay.
    let body = json!({ "external_ref": "SF-ORD-KEY", "customer": "SF-ACC-1", "lines": [{ "sku": SKU, "quantity": 1 }] });
    let first = erp
        .call(
            http::Method::POST,
            "/api/v1/orders",
            Some(body.clone()),
            &[("idempotency-key", "k-1")],
        )
        .await;
    let second = erp
        .call(
            http::Method::POST,
            "/api/v1/orders",
            Some(body),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.raw, second.raw);
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn cancelling_before_shipment_releases_stock_and_after_shipment_is_refused() {
    let erp = TestErp::start(TestErp::config(13)).await;
    erp.rich_customer("SF-ACC-1").await;
    erp.set_stock("SKU-00003", "WH-02", 5).await;
    let book = |reference: &'static str| json!({ "external_ref": reference, "customer": "SF-ACC-1", "locations": ["WH-02"], "lines": [{ "sku": "SKU-00003", "quantity": 2 }] });
    let order = erp.post("/api/v1/orders", book("SF-ORD-C1")).await.body;
    assert_eq!(
        erp.handle
            .inspect(|s| s.stock("SKU-00003", "WH-02").available()),
        3
    );
    erp.advance(40 * 60_000).await; // picked, not shipped
    let cancelled = erp
        .post(
            &format!(
                "/api/v1/orders/{}/cancel",
                order["number"].as_str().unwrap_or("")
            ),
            json!({ "reason": "customer request" }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["lines"][0]["cancelled"], 2);
    let stock = erp.handle.inspect(|s| s.stock("SKU-00003", "WH-02"));
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (5, 0, 5)
    );
    let again = erp.post("/api/v1/orders/SF-ORD-C1/cancel", json!({})).await;
    assert_eq!(
        again.status, 200,
        "cancelling twice answers the cancelled order"
    );
    // The cancelled shipment never ships.
    erp.advance(DAY_MS).await;
    assert_eq!(
        erp.handle
            .inspect(|s| s.stock("SKU-00003", "WH-02").on_hand),
        5
    );
    assert_eq!(erp.events_of_type("order.cancelled").await.len(), 1);

    let shipped = erp.post("/api/v1/orders", book("SF-ORD-C2")).await.body;
    erp.advance(3 * HOUR_MS).await;
    let refused = erp
        .post(
            &format!(
                "/api/v1/orders/{}/cancel",
                shipped["number"].as_str().unwrap_or("")
            ),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.code(), "cancel_after_shipment");
    assert_eq!(
        erp.get("/api/v1/orders/SF-ORD-C2").await.body["status"],
        "shipped"
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn return_is_authorised_received_in_parts_credited_exactly_and_refunded_once() {
    let erp = TestErp::start(TestErp::config(14)).await;
    let order = book_split_order(&erp, "SF-ORD-R").await;
    let number = order["number"].as_str().expect("number").to_owned();
    erp.advance(3 * HOUR_MS).await; // 7 shipped, 3 backordered

    let over = erp
        .post("/api/v1/rmas", json!({ "external_ref": "CASE-0", "order": "SF-ORD-R", "lines": [{ "line": 1, "quantity": 8 }] }))
        .await;
    assert_eq!(over.status, 422);
    assert_eq!(over.code(), "over_return");
    assert_eq!(over.body["error"]["details"]["shipped"], 7);

    let rma = erp
        .post("/api/v1/rmas", json!({ "external_ref": "CASE-1", "order": number, "reason": "damaged", "lines": [{ "sku": SKU, "quantity": 4 }] }))
        .await;
    assert_eq!(rma.status, 201, "{:?}", rma.body);
    let rma_number = rma.body["number"].as_str().expect("rma").to_owned();
    let again = erp
        .post("/api/v1/rmas", json!({ "external_ref": "CASE-1", "order": number, "lines": [{ "sku": SKU, "quantity": 4 }] }))
        .await;
    assert_eq!(
        (again.status, again.body["number"].as_str()),
        (200, Some(rma_number.as_str()))
    );
    let more = erp
        .post("/api/v1/rmas", json!({ "external_ref": "CASE-2", "order": number, "lines": [{ "line": 1, "quantity": 4 }] }))
        .await;
    assert_eq!(
        more.code(),
        "over_return",
        "7 shipped, 4 already authorised: 3 left"
    );

    let on_hand_before = erp.handle.inspect(|s| s.stock(SKU, "WH-01").on_hand);
    let partial = erp
        .post(
            &format!("/api/v1/rmas/{rma_number}/receipts"),
            json!({ "lines": [{ "line": 1, "quantity": 3 }] }),
        )
        .await;
    assert_eq!(partial.status, 200, "{:?}", partial.body);
    assert_eq!(partial.body["status"], "partially_received");
    assert_eq!(
        erp.handle.inspect(|s| s.stock(SKU, "WH-01").on_hand),
        on_hand_before + 3
    );
    let too_many = erp
        .post(
            &format!("/api/v1/rmas/{rma_number}/receipts"),
            json!({ "lines": [{ "line": 1, "quantity": 2 }] }),
        )
        .await;
    assert_eq!(too_many.code(), "over_return");

    let current = erp.get(&format!("/api/v1/orders/{number}")).await.body;
    let invoice_number = current["invoices"][0].as_str().expect("invoice").to_owned();
    let invoice = erp
        .get(&format!("/api/v1/invoices/{invoice_number}"))
        .await
        .body;
    let incl = dec(&invoice["lines"][0]["unit_price_incl_tax"]);
    let unit = dec(&invoice["lines"][0]["unit_price"]);
    let rate = dec(&invoice["lines"][0]["tax_rate"]);
    assert_eq!(
        incl,
        unit * (Decimal::ONE + rate),
        "unit price incl. tax is exact"
    );

    let memo = erp
        .post(
            &format!("/api/v1/rmas/{rma_number}/credit-memos"),
            json!({}),
        )
        .await;
    assert_eq!(memo.status, 201, "{:?}", memo.body);
    assert_eq!(
        dec(&memo.body["total_amount"]),
        round_cents(Decimal::from(3) * incl)
    );
    assert_eq!(memo.body["lines"][0]["quantity"], 3);
    let nothing = erp
        .post(
            &format!("/api/v1/rmas/{rma_number}/credit-memos"),
            json!({}),
        )
        .await;
    assert_eq!((nothing.status, nothing.code()), (409, "nothing_to_credit"));

    let rest = erp
        .post(&format!("/api/v1/rmas/{rma_number}/receipts"), json!({}))
        .await;
    assert_eq!(rest.body["status"], "received");
    let memo2 = erp
        .post(
            &format!("/api/v1/rmas/{rma_number}/credit-memos"),
            json!({}),
        )
        .await;
    assert_eq!(dec(&memo2.body["total_amount"]), round_cents(incl));

    let memo_number = memo.body["number"].as_str().expect("memo").to_owned();
    let refund = erp
        .post(
            &format!("/api/v1/credit-memos/{memo_number}/refunds"),
            json!({}),
        )
        .await;
    assert_eq!(refund.status, 201);
    assert_eq!(refund.body["amount"], memo.body["total_amount"]);
    let refund_again = erp
        .post(
            &format!("/api/v1/credit-memos/{memo_number}/refunds"),
            json!({}),
        )
        .await;
    assert_eq!(
        (refund_again.status, &refund_again.body["id"]),
        (200, &refund.body["id"])
    );
    let memo2_number = memo2.body["number"].as_str().expect("memo").to_owned();
    erp.post(
        &format!("/api/v1/credit-memos/{memo2_number}/refunds"),
        json!({}),
    )
    .await;
    assert_eq!(
        erp.get(&format!("/api/v1/rmas/{rma_number}")).await.body["status"],
        "refunded"
    );

    let (feed, _) = erp.whole_feed().await;
    let count = |kind: &str| feed.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(
        (
            count("rma.authorised"),
            count("rma.received"),
            count("credit_memo.issued"),
            count("refund.issued")
        ),
        (1, 2, 2, 2)
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn credit_limit_breach_is_refused_with_the_available_credit() {
    let erp = TestErp::start(TestErp::config(15)).await;
    let created = erp
        .put("/api/v1/customers/SF-ACC-TIGHT", json!({ "name": "Tight Credit Boutique", "credit_limit": "100.00", "payment_terms": "NET30" }))
        .await;
    assert_eq!(created.status, 201);
    let check = erp
        .post(
            "/api/v1/credit-checks",
            json!({ "customer": "SF-ACC-TIGHT", "amount": "60.00" }),
        )
        .await;
    assert_eq!(
        (
            check.body["approved"].as_bool(),
            check.body["available_credit"].as_str()
        ),
        (Some(true), Some("100.00"))
    );
    let refused = erp
        .post(
            "/api/v1/credit-checks",
            json!({ "customer": "SF-ACC-TIGHT", "amount": "100.01" }),
        )
        .await;
    assert_eq!(
        (
            refused.body["approved"].as_bool(),
            refused.body["reason"].as_str()
        ),
        (Some(false), Some("credit_limit_exceeded"))
    );

    let booking = erp
        .post("/api/v1/orders", json!({ "external_ref": "SF-ORD-BIG", "customer": "SF-ACC-TIGHT", "lines": [{ "sku": "SKU-00004", "quantity": 50 }] }))
        .await;
    assert_eq!(booking.status, 422);
    assert_eq!(booking.code(), "credit_limit_exceeded");
    assert_eq!(
        booking.body["error"]["details"]["available_credit"],
        "100.00"
    );
    assert_eq!(
        erp.get("/api/v1/orders?external_ref=SF-ORD-BIG")
            .await
            .status,
        404,
        "nothing booked"
    );
    let stats = erp.get("/admin/stats").await.body;
    assert_eq!(stats["bookings"]["SF-ORD-BIG"]["orders_created"], 0);

    // Raising the limit lets the same reference book.
    erp.put(
        "/api/v1/customers/SF-ACC-TIGHT",
        json!({ "credit_limit": "1000000.00" }),
    )
    .await;
    let booked = erp
        .post("/api/v1/orders", json!({ "external_ref": "SF-ORD-BIG", "customer": "SF-ACC-TIGHT", "lines": [{ "sku": "SKU-00004", "quantity": 50 }] }))
        .await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn quotes_apply_negotiated_prices_and_promotions_in_their_window() {
    let erp = TestErp::start(TestErp::config(16)).await;
    erp.rich_customer("SF-ACC-Q").await;
    erp.put(
        "/admin/items/SKU-Q",
        json!({ "name": "Quote Test Kettle", "list_price": "20.00", "tax_rate": "0.10" }),
    )
    .await;
    let quote = |body| erp.post("/api/v1/price-quotes", body);
    let list = quote(json!({ "customer": "SF-ACC-Q", "sku": "SKU-Q", "quantity": 3 }))
        .await
        .body;
    assert_eq!(
        (
            list["unit_price"].as_str(),
            list["price_source"].as_str(),
            list["total"].as_str()
        ),
        (Some("20.00"), Some("list"), Some("66.00"))
    );
    erp.put(
        "/admin/customer-prices/SF-ACC-Q/SKU-Q",
        json!({ "price": "18.00" }),
    )
    .await;
    let negotiated = quote(json!({ "customer": "SF-ACC-Q", "sku": "SKU-Q", "quantity": 3 }))
        .await
        .body;
    assert_eq!(
        (
            negotiated["unit_price"].as_str(),
            negotiated["price_source"].as_str()
        ),
        (Some("18.00"), Some("customer_price"))
    );
    let promo = erp
        .post("/admin/promotions", json!({ "name": "Spring", "sku": "SKU-Q", "starts_at": "2025-03-04T00:00:00Z", "ends_at": "2025-03-06T00:00:00Z", "kind": "percent", "value": "15" }))
        .await;
    assert_eq!(promo.status, 201, "{:?}", promo.body);
    let before = quote(
        json!({ "customer": "SF-ACC-Q", "sku": "SKU-Q", "quantity": 1, "date": "2025-03-03" }),
    )
    .await
    .body;
    assert_eq!(before["price_source"], "customer_price");
    let during = quote(
        json!({ "customer": "SF-ACC-Q", "sku": "SKU-Q", "quantity": 1, "date": "2025-03-05" }),
    )
    .await
    .body;
    assert_eq!(
        (
            during["unit_price"].as_str(),
            during["promotion"]["id"].is_string()
        ),
        (Some("17.00"), true)
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn on_completion_invoicing_issues_one_invoice_after_the_backorder_ships() {
    let mut config = TestErp::config(17);
    config.invoicing = crossdock_sim_erp::InvoiceMode::OnCompletion;
    let erp = TestErp::start(config).await;
    let order = book_split_order(&erp, "SF-ORD-OC").await;
    let number = order["number"].as_str().expect("number").to_owned();
    erp.advance(3 * HOUR_MS).await;
    assert_eq!(
        erp.get(&format!("/api/v1/orders/{number}")).await.body["invoices"],
        json!([]),
        "7 of 10 shipped: not yet"
    );
    erp.advance(2 * DAY_MS + 3 * HOUR_MS).await;
    let invoices = erp
        .get(&format!("/api/v1/orders/{number}/invoices"))
        .await
        .body;
    assert_eq!(invoices["invoices"].as_array().map(Vec::len), Some(1));
    assert_eq!(invoices["invoices"][0]["lines"][0]["quantity"], 10);
    assert_eq!(
        invoices["invoices"][0]["total_amount"],
        order["total_amount"]
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn the_real_clock_drives_the_warehouse_and_returns_arrive_by_themselves() {
    let mut config = TestErp::config(18);
    // One simulated minute per real millisecond.
    config.clock = crossdock_sim_erp::ClockMode::Real { speed: 60_000.0 };
    config.auto_receive_returns_after_ms = Some(DAY_MS);
    let erp = TestErp::start(config).await;
    erp.rich_customer("SF-ACC-1").await;
    erp.set_stock(SKU, "WH-01", 10).await;
    let order = erp
        .post("/api/v1/orders", json!({ "external_ref": "SF-ORD-RT", "customer": "SF-ACC-1", "locations": ["WH-01"], "lines": [{ "sku": SKU, "quantity": 2 }] }))
        .await;
    assert_eq!(order.status, 201, "{:?}", order.body);
    crate::support::eventually("shipment", || {
        erp.handle.inspect(|s| {
            s.order("SF-ORD-RT")
                .is_some_and(|o| o.lines[0].shipped == 2)
        })
    })
    .await;
    let rma = erp.post("/api/v1/rmas", json!({ "external_ref": "SF-CASE-RT", "order": "SF-ORD-RT", "lines": [{ "line": 1, "quantity": 1 }] })).await;
    assert_eq!(rma.status, 201, "{:?}", rma.body);
    crate::support::eventually("return receipt", || {
        erp.handle
            .inspect(|s| s.rma("SF-CASE-RT").is_some_and(|r| r.status == "received"))
    })
    .await;
    let receipts = erp.get("/api/v1/rmas/SF-CASE-RT").await.body["receipts"].clone();
    assert_eq!(receipts[0]["lines"][0]["quantity"], 1);
    erp.handle.shutdown().await;
}
