//! Idempotent submission: one key → one order; one order number → one booking.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::helpers::{TestApp, order, price};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_submissions_with_one_key_make_one_order() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let body = order("CONC-1", "ACC-1");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = std::sync::Arc::clone(&app);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let response = app.submit(&body, "one-key").await;
            let replayed = response.headers().contains_key("idempotent-replayed");
            (
                response.status().as_u16(),
                replayed,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    assert!(
        answers.iter().all(|(status, _, _)| *status == 202),
        "{answers:?}"
    );
    let originals = answers.iter().filter(|(_, replayed, _)| !replayed).count();
    assert_eq!(originals, 1, "exactly one request did the work");
    let first = &answers[0].2;
    assert!(
        answers.iter().all(|(_, _, body)| body == first),
        "every answer is the first answer"
    );
    let order_id = first["order_id"].as_str().expect("order id").to_owned();
    assert_eq!(order_id, "EXT-all-scopes-CONC-1");
    app.wait_for(&format!("/v1/orders/{order_id}"), |o| {
        o["erp_order_number"].is_string()
    })
    .await;
    let orders = app
        .store()
        .orders(crossdock_store::OrderQuery::default())
        .await
        .expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(app.loopback().bookings_created.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_salesforce_order_under_different_keys_is_booked_once() {
    let app = TestApp::start().await;
    let body = json!({
        "salesforce_order_number": "00042",
        "account": "ACC-7",
        "channel": "b2b",
        "currency": "USD",
        "lines": [{ "sku": "SKU-9", "quantity": 3, "unit_price": price("SKU-9") }]
    });
    let mut ids = Vec::new();
    for key in ["k-1", "k-2", "k-3"] {
        let response = app.submit(&body, key).await;
        assert_eq!(response.status().as_u16(), 202);
        let answer: Value = response.json().await.expect("json");
        ids.push(answer["order_id"].as_str().expect("id").to_owned());
    }
    assert!(ids.iter().all(|id| id == "SF-00042"), "{ids:?}");
    // Any id names the order: the Salesforce number too.
    app.wait_for("/v1/orders/00042", |o| o["erp_order_number"].is_string())
        .await;
    // Let the engine settle, then count bookings.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.loopback().bookings_created.load(Ordering::Relaxed), 1);
    let orders = app
        .store()
        .orders(crossdock_store::OrderQuery::default())
        .await
        .expect("orders");
    assert_eq!(orders.len(), 1);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused() {
    let app = TestApp::start().await;
    assert_eq!(
        app.submit(&order("R-1", "ACC-1"), "same")
            .await
            .status()
            .as_u16(),
        202
    );
    let response = app.submit(&order("R-2", "ACC-1"), "same").await;
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/idempotency-key-reused"
    );
}

/// Posts `body` as given (bytes as they are) with the all-scopes key.
async fn submit_text(app: &TestApp, body: String, key: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/orders", app.base))
        .header("authorization", format!("Bearer {}", app.key))
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// Issue 22: the same order re-sent with its key, serialized otherwise, is the same request.
#[tokio::test]
async fn the_same_body_indented_or_with_keys_reordered_gets_the_first_answer() {
    let app = TestApp::start().await;
    let body = order("FMT-1", "ACC-1");
    let first = submit_text(&app, serde_json::to_string(&body).expect("json"), "fmt").await;
    assert_eq!(first.status().as_u16(), 202);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first: Value = first.json().await.expect("json");
    let reordered = format!(
        "{{\n  \"lines\": [\n    {{ \"unit_price\": {p1}, \"quantity\": 2, \"sku\": \"SKU-1\" }},\n    \
         {{ \"quantity\": 1, \"unit_price\": {p2}, \"sku\": \"SKU-2\" }}\n  ],\n  \
         \"currency\": \"USD\",\n  \"channel\": \"web\",\n  \"account\": \"ACC-1\",\n  \
         \"external_order_id\": \"FMT-1\"\n}}\n",
        p1 = body["lines"][0]["unit_price"],
        p2 = body["lines"][1]["unit_price"],
    );
    for text in [
        serde_json::to_string_pretty(&body).expect("json"),
        reordered,
    ] {
        let again = submit_text(&app, text, "fmt").await;
        assert_eq!(again.status().as_u16(), 202);
        assert_eq!(
            again
                .headers()
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true")
        );
        let again: Value = again.json().await.expect("json");
        assert_eq!(again, first, "the first answer again");
    }
    // A different value under the same key is still another request.
    let mut other = body.clone();
    other["lines"][1]["quantity"] = json!(3);
    let refused = submit_text(
        &app,
        serde_json::to_string_pretty(&other).expect("json"),
        "fmt",
    )
    .await;
    assert_eq!(refused.status().as_u16(), 422);
    let problem: Value = refused.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/idempotency-key-reused"
    );
}

#[tokio::test]
async fn a_submission_without_a_key_is_refused() {
    let app = TestApp::start().await;
    let response = app
        .send(
            "POST",
            "/v1/orders",
            &app.key.clone(),
            Some(&order("N-1", "ACC-1")),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/idempotency-key-required"
    );
}

#[tokio::test]
async fn the_same_order_with_other_lines_is_a_conflict() {
    let app = TestApp::start().await;
    assert_eq!(
        app.submit(&order("C-1", "ACC-1"), "c-a")
            .await
            .status()
            .as_u16(),
        202
    );
    app.wait_for("/v1/orders/EXT-all-scopes-C-1", |_| true)
        .await;
    let mut changed = order("C-1", "ACC-1");
    changed["lines"][0]["quantity"] = json!(5);
    let response = app.submit(&changed, "c-b").await;
    assert_eq!(response.status().as_u16(), 409);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/order-conflict"
    );
}
