//! Inventory (cache with age, refresh past the threshold, stale when the ERP fails), pricing,
//! returns and account sync.

use std::time::Duration;

use crossdock_api::ApiConfig;
use crossdock_store::{Decision, InventoryRow};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, order, price};

async fn cache(app: &TestApp, sku: &str, age_secs: i64, available: i64) {
    let now = app.state.engine.clock().now();
    let as_of = now - time::Duration::seconds(age_secs);
    app.store()
        .commit(Decision {
            inventory: vec![InventoryRow {
                sku: sku.to_owned(),
                location: "WH-LOOP".to_owned(),
                on_hand: available,
                reserved: 0,
                available,
                as_of,
                updated_at: as_of,
            }],
            ..Decision::default()
        })
        .await
        .expect("cache");
}

#[tokio::test]
async fn fresh_inventory_comes_from_the_cache_with_its_age() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    cache(&app, "SKU-INV", 30, 7).await;
    let calls_before = app
        .loopback()
        .calls
        .load(std::sync::atomic::Ordering::Relaxed);
    let response = app
        .send(
            "GET",
            "/v1/inventory?sku=SKU-INV",
            &app.key.clone(),
            None,
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let age: i64 = response.headers()["age"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((30..=32).contains(&age), "age {age}");
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["source"], "cache");
    assert_eq!(view["stale"], false);
    assert_eq!(view["max_age_seconds"], 300);
    assert_eq!(view["levels"][0]["available"], 7);
    let calls_after = app
        .loopback()
        .calls
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(calls_before, calls_after, "the ERP was not asked");
}

#[tokio::test]
async fn old_inventory_is_refreshed_from_the_erp_and_cached() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    cache(&app, "SKU-OLD", 900, 7).await;
    let (code, view) = app.get_json("/v1/inventory?sku=SKU-OLD").await;
    assert_eq!(code, 200);
    assert_eq!(view["source"], "erp");
    assert_eq!(view["levels"][0]["available"], 1_000_000);
    assert!(view["levels"][0]["age_seconds"].as_i64().expect("age") <= 1);
    let cached = app
        .store()
        .inventory(&["SKU-OLD".to_owned()])
        .await
        .expect("cache");
    assert_eq!(cached[0].available, 1_000_000, "the cache was refreshed");
    // Next inquiry: from the cache.
    let (_, again) = app
        .get_json("/v1/inventory?sku=SKU-OLD&location=WH-LOOP")
        .await;
    assert_eq!(again["source"], "cache");
}

#[tokio::test]
async fn when_the_erp_is_slow_the_stale_cache_is_served_as_stale() {
    let config = ApiConfig {
        erp_budget_ms: 50,
        inventory_max_age_secs: Some(60),
        ..ApiConfig::default()
    };
    let app = TestApp::with(Options {
        config,
        run_engine: false,
    })
    .await;
    *app.erp.delay.lock().expect("lock") = Duration::from_millis(500);
    cache(&app, "SKU-STALE", 600, 3).await;
    let (code, view) = app.get_json("/v1/inventory?sku=SKU-STALE").await;
    assert_eq!(code, 200);
    assert_eq!(view["source"], "cache");
    assert_eq!(view["stale"], true);
    assert_eq!(view["max_age_seconds"], 60);
    assert_eq!(view["levels"][0]["available"], 3);
    let (code, problem) = app.get_json("/v1/inventory?sku=SKU-NEVER-SEEN").await;
    assert_eq!(code, 503);
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/erp-unavailable"
    );
}

#[tokio::test]
async fn prices_come_from_the_erp_for_the_account() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    let body = json!({ "account": "ACC-1", "items": [{ "sku": "SKU-1", "quantity": 2 }, { "sku": "SKU-2", "quantity": 1 }], "on": "2025-03-03" });
    let response = app
        .send("POST", "/v1/prices", &app.key.clone(), Some(&body), None)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().await.expect("json");
    assert_eq!(list["on"], "2025-03-03");
    assert_eq!(list["quotes"][0]["unit_price"], price("SKU-1").as_str());
    assert_eq!(list["quotes"][1]["unit_price"], price("SKU-2").as_str());
    let bad =
        json!({ "account": "ACC-1", "items": [{ "sku": "SKU-1", "quantity": 0 }], "on": "March" });
    let response = app
        .send("POST", "/v1/prices", &app.key.clone(), Some(&bad), None)
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["items[0].quantity", "on"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_request_is_authorised_credited_and_refunded() {
    let app = TestApp::start().await;
    app.submit(&order("RET-1", "ACC-1"), "ret-1").await;
    let id = "EXT-all-scopes-RET-1";
    app.wait_for(&format!("/v1/orders/{id}/shipments"), |s| {
        s["shipments"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["milestone"] == "delivered"))
    })
    .await;
    let body = json!({ "order": id, "case_number": "00077", "lines": [{ "line": 1, "quantity": 1 }], "reason": "damaged" });
    let response = app
        .send("POST", "/v1/returns", &app.key.clone(), Some(&body), None)
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted["rma"], "RMA-00077");
    let view = app
        .wait_for("/v1/returns/RMA-00077", |r| {
            r["status"] == "Closed" || r["status"] == "Refunded"
        })
        .await;
    assert_eq!(view["order_id"], id);
    assert_eq!(view["case_number"], "00077");
    assert_ne!(view["refunded"], "0");
    // More than shipped is refused.
    let too_many = json!({ "order": id, "case_number": "00078", "lines": [{ "line": 1, "quantity": 99 }], "reason": "x" });
    let response = app
        .send(
            "POST",
            "/v1/returns",
            &app.key.clone(),
            Some(&too_many),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_put_is_stored_and_synced() {
    let app = TestApp::start().await;
    let body = json!({ "name": "Harbor Outfitters", "tier": "Gold", "currency": "USD", "region": "EAST",
        "billing": { "street": "1 Main St", "city": "Boston", "postal_code": "02110", "country": "US" } });
    let response = app
        .send(
            "PUT",
            "/v1/accounts/ACC-42",
            &app.key.clone(),
            Some(&body),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(account) = app.store().account("ACC-42").await.expect("account") {
            assert_eq!(account.name, "Harbor Outfitters");
            assert_eq!(account.tier, "Gold");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the account never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
