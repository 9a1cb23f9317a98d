//! Bad input at the edge (issue 22): an order that can never be booked — unknown product or
//! account, a currency the customer does not buy in, more decimals than the currency has — is
//! answered 422 at once with the field at fault, and nothing is captured; an order for an
//! unknown account that gets past the edge ends Rejected, with no dead letter and no alert.

use std::time::{Duration, Instant};

use crossdock_api::ApiConfig;
use crossdock_api::ops::alerts::{Alerting, AlertsConfig};
use crossdock_api::ops::{Ops, Settings};
use crossdock_store::{AccountRow, DeadLetterFilter, Decision};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, order, price};

/// Submits `body` and returns the status, the problem and how long the answer took.
async fn submit(app: &TestApp, body: &Value, key: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = app.submit(body, key).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        elapsed,
    )
}

/// The fields a 422 names.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn assert_refused(app: &TestApp, body: &Value, key: &str, field: &str) -> Value {
    let (status, problem, elapsed) = submit(app, body, key).await;
    assert_eq!(status, 422, "{key}: {problem}");
    assert_eq!(
        problem["type"], "https://crossdock.dev/problems/validation",
        "{key}: {problem}"
    );
    assert_eq!(fields(&problem), [field], "{key}: {problem}");
    assert!(
        elapsed < Duration::from_secs(2),
        "{key}: answered at once, not after {elapsed:?}"
    );
    let id = format!(
        "EXT-all-scopes-{}",
        body["external_order_id"].as_str().expect("id")
    );
    assert_eq!(
        app.store().order(&id).await.expect("read"),
        None,
        "{key}: nothing captured"
    );
    problem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_answered_422_at_once_with_the_field_at_fault() {
    let app = TestApp::start().await;
    app.erp.forget("SKU-GONE");
    app.erp.forget("ACC-GONE");

    let mut unknown_sku = order("E-SKU", "ACC-1");
    unknown_sku["lines"][0]["sku"] = json!("SKU-GONE");
    let problem = assert_refused(&app, &unknown_sku, "e-sku", "lines[0].sku").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SKU-GONE")),
        "{problem}"
    );
    let mut second_line = order("E-SKU-2", "ACC-1");
    second_line["lines"][1]["sku"] = json!("SKU-GONE");
    assert_refused(&app, &second_line, "e-sku-2", "lines[1].sku").await;

    let unknown_account = order("E-ACC", "ACC-GONE");
    assert_refused(&app, &unknown_account, "e-acc", "account").await;

    // The hub's record of the account says it buys in euros.
    let now = app.state.engine.clock().now();
    app.store()
        .commit(Decision {
            accounts: vec![AccountRow {
                account_id: "ACC-EUR".to_owned(),
                sf_id: None,
                erp_ref: Some("ACC-EUR".to_owned()),
                name: "Euro buyer".to_owned(),
                tier: "Silver".to_owned(),
                body: json!({ "id": "ACC-EUR", "currency": "EUR" }),
                updated_at: now,
            }],
            ..Decision::default()
        })
        .await
        .expect("account");
    let problem = assert_refused(&app, &order("E-CUR", "ACC-EUR"), "e-cur", "currency").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("EUR")),
        "{problem}"
    );

    let mut yen = order("E-JPY", "ACC-1");
    yen["currency"] = json!("JPY");
    yen["lines"][0]["unit_price"] = json!("468.99");
    yen["lines"][1]["unit_price"] = json!("468");
    assert_refused(&app, &yen, "e-jpy", "lines[0].unit_price").await;

    let mut dinar = order("E-KWD", "ACC-1");
    dinar["currency"] = json!("KWD");
    dinar["lines"][0]["unit_price"] = json!("12.3456");
    dinar["lines"][1]["unit_price"] = json!("12.345");
    assert_refused(&app, &dinar, "e-kwd", "lines[0].unit_price").await;

    // A good order still passes, in euros for the euro account too.
    let mut euros = order("E-OK", "ACC-EUR");
    euros["currency"] = json!("EUR");
    let (status, accepted, _) = submit(&app, &euros, "e-ok").await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["validation"]["state"], "passed");
}

async fn no_dead_letters_and_no_alerts(app: &TestApp) {
    let dead = app
        .store()
        .dead_letters(DeadLetterFilter::default())
        .await
        .expect("dead letters");
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    let ops = Ops::new(app.state.clone(), Settings::default());
    let mut alerting = Alerting::new(AlertsConfig::default(), ops).expect("alerting");
    let notifications = alerting.evaluate().await.expect("evaluated");
    assert!(notifications.is_empty(), "{notifications:?}");
    assert!(alerting.active().is_empty(), "{:?}", alerting.active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_for_unknown_accounts_leave_no_dead_letter_and_no_alert() {
    let app = TestApp::with(Options {
        config: ApiConfig {
            erp_budget_ms: 100,
            ..ApiConfig::default()
        },
        run_engine: true,
    })
    .await;
    for n in 0..100 {
        app.erp.forget(&format!("ACC-NONE-{n}"));
    }
    // At the edge: each answered 422 at once.
    for n in 0..50 {
        let body = order(&format!("U-{n}"), &format!("ACC-NONE-{n}"));
        let (status, problem, _) = submit(&app, &body, &format!("u-{n}")).await;
        assert_eq!(
            (status, fields(&problem)),
            (422, vec!["account".to_owned()])
        );
    }
    // Past the edge (the ERP too slow to answer within the budget): accepted, then rejected
    // by the engine with the ERP's reason — an order outcome, not a failure.
    *app.erp.delay.lock().expect("lock") = Duration::from_millis(300);
    for n in 50..100 {
        let body = order(&format!("U-{n}"), &format!("ACC-NONE-{n}"));
        let (status, accepted, _) = submit(&app, &body, &format!("u-{n}")).await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["validation"]["state"], "pending");
    }
    *app.erp.delay.lock().expect("lock") = Duration::ZERO;
    for n in 50..100 {
        let status = app
            .wait_for(&format!("/v1/orders/EXT-all-scopes-U-{n}"), |o| {
                o["status_code"] == "Rejected"
            })
            .await;
        assert_eq!(status["erp_order_number"], Value::Null);
    }
    let (_, timeline) = app
        .get_json("/v1/orders/EXT-all-scopes-U-77/timeline?limit=500")
        .await;
    assert!(
        timeline.to_string().contains("unknown customer"),
        "the ERP's reason is on the timeline: {timeline}"
    );
    no_dead_letters_and_no_alerts(&app).await;
}

#[tokio::test]
async fn a_whole_amount_in_a_currency_without_minor_unit_is_accepted() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    let mut yen = order("Y-OK", "ACC-1");
    yen["currency"] = json!("JPY");
    yen["lines"][0]["unit_price"] = json!("468.00");
    yen["lines"][1]["unit_price"] = json!(price("SKU-2"));
    let (status, answer, _) = submit(&app, &yen, "y-ok").await;
    // SKU-2's list price has cents: only its line is at fault.
    assert_eq!(status, 422, "{answer}");
    assert_eq!(fields(&answer), ["lines[1].unit_price"]);
}
