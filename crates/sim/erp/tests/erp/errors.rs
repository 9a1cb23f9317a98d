//! Bad input gets precise JSON errors with stable codes, never a panic.

use serde_json::json;

use crate::support::TestErp;

#[tokio::test]
async fn bad_input_gets_stable_error_codes() {
    let erp = TestErp::start(TestErp::config(41)).await;
    erp.rich_customer("SF-ACC-E").await;
    let order =
        |lines| json!({ "external_ref": "SF-ORD-E", "customer": "SF-ACC-E", "lines": lines });
    let cases = vec![
        (erp.raw_post("/api/v1/orders", "{\"external_ref\": ").await, 400, "malformed_json"),
        (erp.raw_post("/api/v1/orders", "[1, 2]").await, 400, "invalid_request"),
        (erp.post("/api/v1/orders", json!({ "customer": "SF-ACC-E" })).await, 400, "invalid_request"),
        (erp.post("/api/v1/orders", json!({ "external_ref": "X", "customer": "NOPE", "lines": [{ "sku": "SKU-00001", "quantity": 1 }] })).await, 422, "unknown_customer"),
        (erp.post("/api/v1/orders", order(json!([{ "sku": "SKU-NOPE", "quantity": 1 }]))).await, 422, "unknown_item"),
        (erp.post("/api/v1/orders", order(json!([{ "sku": "SKU-00001", "quantity": 0 }]))).await, 422, "invalid_quantity"),
        (erp.post("/api/v1/orders", order(json!([{ "sku": "SKU-00001", "quantity": -3 }]))).await, 422, "invalid_quantity"),
        (erp.post("/api/v1/orders", order(json!([{ "sku": "SKU-00001", "quantity": 1.5 }]))).await, 422, "invalid_quantity"),
        (erp.post("/api/v1/orders", json!({ "external_ref": "Y", "customer": "SF-ACC-E", "locations": ["WH-99"], "lines": [{ "sku": "SKU-00001", "quantity": 1 }] })).await, 422, "unknown_location"),
        (erp.post("/api/v1/credit-checks", json!({ "customer": "SF-ACC-E", "amount": "-5.00" })).await, 422, "negative_money"),
        (erp.post("/api/v1/credit-checks", json!({ "customer": "SF-ACC-E", "amount": 5.0 })).await, 422, "invalid_money"),
        (erp.post("/api/v1/price-quotes", json!({ "customer": "SF-ACC-E", "sku": "SKU-00001", "quantity": 1, "date": "next tuesday" })).await, 400, "invalid_date"),
        (erp.get("/api/v1/orders/SO-999999").await, 404, "unknown_order"),
        (erp.get("/api/v1/availability/SKU-NOPE").await, 404, "unknown_item"),
        (erp.get("/api/v1/events?after=abc").await, 400, "invalid_request"),
        (erp.get("/api/v1/nowhere").await, 404, "not_found"),
        (erp.post("/api/v1/payments", json!({ "invoice": "INV-000404", "amount": "1.00" })).await, 422, "unknown_invoice"),
        (erp.post("/api/v1/rmas/RMA-404/receipts", json!({})).await, 404, "unknown_rma"),
        (erp.put("/admin/faults", json!({ "duplicate_rate": 2.0 })).await, 400, "invalid_faults"),
    ];
    let huge = erp
        .post(
            "/api/v1/credit-checks",
            json!({ "customer": "SF-ACC-E", "amount": "99999999999999999999.00" }),
        )
        .await;
    assert_eq!((huge.status, huge.code()), (422, "invalid_money"));
    let far = erp.get(&format!("/api/v1/events?after={}", u64::MAX)).await;
    assert_eq!(
        (far.status, far.body["events"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    // The unknown-customer case must not have booked "X".
    for (index, (reply, status, code)) in cases.iter().enumerate() {
        assert_eq!(
            (reply.status, reply.code()),
            (*status, *code),
            "case {index}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {index}"
        );
    }
    assert_eq!(erp.handle.inspect(|s| s.orders_created_for("X")), 0);
    // A key used for another operation is refused.
    let headers = [("idempotency-key", "shared-key")];
    erp.call(
        http::Method::PUT,
        "/api/v1/customers/SF-ACC-K",
        Some(json!({ "name": "K" })),
        &headers,
    )
    .await;
    let reused = erp
        .call(
            http::Method::POST,
            "/api/v1/orders",
            Some(order(json!([{ "sku": "SKU-00001", "quantity": 1 }]))),
            &headers,
        )
        .await;
    assert_eq!(reused.code(), "idempotency_key_reused");
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn overpaying_an_invoice_is_refused_and_payments_are_idempotent_by_reference() {
    let mut config = TestErp::config(42);
    config.payments.on_time_share = 0.0; // nobody pays by themselves
    let erp = TestErp::start(config).await;
    erp.rich_customer("SF-ACC-P").await;
    erp.set_stock("SKU-00001", "WH-01", 10).await;
    erp.post("/api/v1/orders", json!({ "external_ref": "SF-ORD-P", "customer": "SF-ACC-P", "locations": ["WH-01"], "lines": [{ "sku": "SKU-00001", "quantity": 2 }] })).await;
    erp.advance(3 * 3_600_000).await;
    let order = erp.get("/api/v1/orders/SF-ORD-P").await.body;
    let invoice = order["invoices"][0].as_str().expect("invoice").to_owned();
    let due = erp.get(&format!("/api/v1/invoices/{invoice}")).await.body["amount_due"].clone();
    let too_much = erp
        .post(
            "/api/v1/payments",
            json!({ "invoice": invoice, "amount": "999999.00" }),
        )
        .await;
    assert_eq!(too_much.code(), "overpayment");
    let paid = erp
        .post(
            "/api/v1/payments",
            json!({ "invoice": invoice, "amount": due, "external_ref": "PAY-REF-1" }),
        )
        .await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    let again = erp
        .post(
            "/api/v1/payments",
            json!({ "invoice": invoice, "amount": due, "external_ref": "PAY-REF-1" }),
        )
        .await;
    assert_eq!((again.status, &again.body["id"]), (200, &paid.body["id"]));
    let invoice = erp.get(&format!("/api/v1/invoices/{invoice}")).await.body;
    assert_eq!(
        (invoice["status"].as_str(), invoice["amount_due"].as_str()),
        (Some("paid"), Some("0.00"))
    );
    erp.handle.shutdown().await;
}
