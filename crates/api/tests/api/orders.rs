//! Order submission, status (v1 and v2), timeline, shipments, degradation and back-pressure.

use std::time::Duration;

use crossdock_api::ApiConfig;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_order_is_validated_at_once_and_booked_asynchronously() {
    let app = TestApp::start().await;
    let response = app.submit(&order("F-1", "ACC-1"), "f-1").await;
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(
        response.headers()["location"],
        "/v1/orders/EXT-all-scopes-F-1"
    );
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted["validation"]["state"], "passed");
    assert_eq!(accepted["status"], "Awaiting Booking");
    let checks: Vec<&str> = accepted["validation"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(checks, ["price", "inventory", "credit", "fulfilment"]);

    let status = app
        .wait_for("/v1/orders/EXT-all-scopes-F-1", |o| {
            o["erp_order_number"].is_string()
        })
        .await;
    assert_eq!(status["account"], "ACC-1");
    // The ERP's number names the order too.
    let erp_ref = status["erp_order_number"]
        .as_str()
        .expect("erp number")
        .to_owned();
    let (code, by_erp) = app.get_json(&format!("/v1/orders/{erp_ref}")).await;
    assert_eq!(
        (code, by_erp["order_id"].as_str()),
        (200, Some("EXT-all-scopes-F-1"))
    );

    let v2 = app
        .wait_for("/v2/orders/EXT-all-scopes-F-1", |o| {
            o["shipments"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    assert_eq!(v2["ids"]["erp_order_number"], erp_ref.as_str());
    assert_eq!(v2["lines"][0]["ordered"], 2);
    let shipments = app
        .wait_for("/v1/orders/EXT-all-scopes-F-1/shipments", |s| {
            s["shipments"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    assert_eq!(shipments["shipments"][0]["lines"][0]["line"], 1);
    let timeline = app
        .wait_for("/v1/orders/EXT-all-scopes-F-1/timeline?limit=2", |_| true)
        .await;
    assert_eq!(timeline["entries"].as_array().map(Vec::len), Some(2));
    let cursor = timeline["next_cursor"].as_str().expect("more pages");
    let (_, next) = app
        .get_json(&format!(
            "/v1/orders/EXT-all-scopes-F-1/timeline?cursor={cursor}"
        ))
        .await;
    let first_id = timeline["entries"][1]["id"].as_i64().expect("id");
    assert!(
        next["entries"][0]["id"].as_i64().expect("id") > first_id,
        "pages follow each other"
    );
}

#[tokio::test]
async fn v1_status_announces_its_deprecation_and_successor() {
    let app = TestApp::start().await;
    app.submit(&order("D-1", "ACC-1"), "d-1").await;
    app.wait_for("/v1/orders/EXT-all-scopes-D-1", |_| true)
        .await;
    let response = app
        .send(
            "GET",
            "/v1/orders/EXT-all-scopes-D-1",
            &app.key.clone(),
            None,
            None,
        )
        .await;
    let headers = response.headers();
    assert_eq!(headers["deprecation"], "@1767225600");
    assert_eq!(headers["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
    assert_eq!(
        headers["link"],
        "</v2/orders/EXT-all-scopes-D-1>; rel=\"successor-version\""
    );
    let v2 = app
        .send(
            "GET",
            "/v2/orders/EXT-all-scopes-D-1",
            &app.key.clone(),
            None,
            None,
        )
        .await;
    assert!(!v2.headers().contains_key("deprecation"));
}

#[tokio::test]
async fn an_order_that_fails_validation_is_rejected_with_its_checks() {
    let app = TestApp::start().await;
    let mut body = order("P-1", "ACC-1");
    body["lines"][0]["unit_price"] = json!("0.01");
    let response = app.submit(&body, "p-1").await;
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/order-rejected"
    );
    assert_eq!(problem["order_id"], "EXT-all-scopes-P-1");
    assert_eq!(problem["errors"][0]["field"], "price");
    let status = app
        .wait_for("/v1/orders/EXT-all-scopes-P-1", |o| {
            o["status_code"] == "Rejected"
        })
        .await;
    assert_eq!(status["erp_order_number"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_erp_defers_validation_and_the_order_is_still_booked() {
    let config = ApiConfig {
        erp_budget_ms: 100,
        ..ApiConfig::default()
    };
    let app = TestApp::with(Options {
        config,
        run_engine: true,
    })
    .await;
    *app.erp.delay.lock().expect("lock") = Duration::from_millis(400);
    let started = std::time::Instant::now();
    let response = app.submit(&order("S-1", "ACC-1"), "s-1").await;
    assert!(
        started.elapsed() < Duration::from_millis(390),
        "answered within the budget"
    );
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted["validation"]["state"], "pending");
    assert_eq!(accepted["status"], "Awaiting Booking");
    app.wait_for("/v1/orders/EXT-all-scopes-S-1", |o| {
        o["erp_order_number"].is_string()
    })
    .await;
}

#[tokio::test]
async fn submissions_get_429_only_past_the_durable_backlog_bound() {
    let config = ApiConfig {
        backlog_limit: 3,
        ..ApiConfig::default()
    };
    // No engine: every accepted order leaves tasks queued.
    let app = TestApp::with(Options {
        config,
        run_engine: false,
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let response = app
            .submit(&order(&format!("B-{n}"), "ACC-1"), &format!("b-{n}"))
            .await;
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            assert_eq!(response.headers()["retry-after"], "5");
            let problem: Value = response.json().await.expect("json");
            assert_eq!(
                problem["type"],
                "https://crossdock.dev/problems/backlog-full"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(statuses[..2], [202, 202], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Reads are never refused for the backlog.
    let (code, _) = app.get_json("/v1/orders").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn lists_are_paginated_by_cursor() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: true,
    })
    .await;
    for n in 0..5 {
        assert_eq!(
            app.submit(&order(&format!("L-{n}"), "ACC-1"), &format!("l-{n}"))
                .await
                .status()
                .as_u16(),
            202
        );
    }
    for n in 0..5 {
        app.wait_for(&format!("/v1/orders/EXT-all-scopes-L-{n}"), |_| true)
            .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/orders?limit=2".to_owned();
    loop {
        let (code, page) = app.get_json(&path).await;
        assert_eq!(code, 200);
        for item in page["items"].as_array().expect("items") {
            seen.push(item["order_id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/orders?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}
