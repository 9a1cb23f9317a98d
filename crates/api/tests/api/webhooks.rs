//! Signed ERP webhooks: accepted once, replays and bad signatures refused.

use serde_json::{Value, json};

use crate::helpers::{Issuer, Options, TestApp, WEBHOOK_SECRET};

async fn deliver(
    app: &TestApp,
    delivery: &str,
    body: &str,
    timestamp: i64,
    secret: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{}/webhooks/erp", app.base))
        .header("content-type", "application/json")
        .header("x-erp-timestamp", timestamp.to_string())
        .header(
            "x-erp-signature",
            crossdock_api::webhooks::sign(secret, delivery, timestamp, body.as_bytes()),
        )
        .header("x-erp-event-id", delivery)
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_accepted_once_and_replays_and_forgeries_are_refused() {
    let issuer = Issuer::new();
    let dir = std::env::temp_dir().join(format!("crossdock-hooks-{}", uuid::Uuid::now_v7()));
    let app = TestApp::with(Options {
        config: issuer.config(&dir),
        run_engine: true,
    })
    .await;
    let now = app.state.engine.clock().now();
    let change = json!({
        "id": "wh-1",
        "at": crossdock_api::views::rfc3339(now),
        "kind": { "type": "inventory", "level": {
            "sku": "SKU-HOOK", "location": "WH-9", "on_hand": 40, "reserved": 2, "available": 38,
            "as_of": crossdock_api::views::rfc3339(now) } }
    })
    .to_string();
    let ts = now.unix_timestamp();

    let response = deliver(&app, "delivery-1", &change, ts, WEBHOOK_SECRET).await;
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted, json!({ "accepted": 1, "duplicates": 0 }));
    let inventory = app
        .wait_for("/v1/inventory?sku=SKU-HOOK&location=WH-9", |v| {
            v["levels"][0]["available"] == 38
        })
        .await;
    assert_eq!(inventory["source"], "cache");

    let replay = deliver(&app, "delivery-1", &change, ts, WEBHOOK_SECRET).await;
    assert_eq!(replay.status().as_u16(), 409);
    let problem: Value = replay.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/webhook-replayed"
    );

    // The captured delivery under a new id: the id is signed, so the old signature fails.
    let renamed = app
        .client
        .post(format!("{}/webhooks/erp", app.base))
        .header("content-type", "application/json")
        .header("x-erp-timestamp", ts.to_string())
        .header(
            "x-erp-signature",
            crossdock_api::webhooks::sign(WEBHOOK_SECRET, "delivery-1", ts, change.as_bytes()),
        )
        .header("x-erp-event-id", "delivery-9")
        .body(change.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(renamed.status().as_u16(), 401);

    let forged = deliver(
        &app,
        "delivery-2",
        &change,
        ts,
        "whsec_not_the_secret_at_all",
    )
    .await;
    assert_eq!(forged.status().as_u16(), 401);
    let stale = deliver(&app, "delivery-3", &change, ts - 3_600, WEBHOOK_SECRET).await;
    assert_eq!(stale.status().as_u16(), 401);
    let mut tampered = app
        .client
        .post(format!("{}/webhooks/erp", app.base))
        .header("content-type", "application/json")
        .header("x-erp-timestamp", ts.to_string())
        .header(
            "x-erp-signature",
            crossdock_api::webhooks::sign(WEBHOOK_SECRET, "delivery-4", ts, change.as_bytes()),
        )
        .header("x-erp-event-id", "delivery-4");
    tampered = tampered.body(change.replace("38", "99"));
    assert_eq!(tampered.send().await.expect("sent").status().as_u16(), 401);

    let audit = app.store().audit_log(0, 100).await.expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.entry.action == "webhook.erp")
            .count(),
        1
    );
}

#[tokio::test]
async fn webhooks_are_off_unless_configured() {
    let app = TestApp::with(Options::default()).await;
    let response = deliver(&app, "d", "{}", 0, WEBHOOK_SECRET).await;
    assert_eq!(response.status().as_u16(), 404);
}
