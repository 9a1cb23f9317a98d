//! `/metrics` is valid Prometheus text and its values move when orders flow.

use std::sync::Arc;
use std::time::Duration;

use crossdock_ports::SystemClock;

use crate::harness::{Hub, capture_message, quick_settings};
use crate::prometheus::{Scrape, parse};

async fn scrape(hub: &Hub) -> Scrape {
    let response = reqwest::get(format!("{}/metrics", hub.base))
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test]
async fn metrics_parse_and_move_when_orders_flow() {
    let hub = Hub::start("metrics", Arc::new(SystemClock), quick_settings(), true).await;
    let before = scrape(&hub).await;
    assert_eq!(before.sum("crossdock_flow_steps_total", &[]), 0.0);
    assert_eq!(
        before.sum("crossdock_circuit_state", &[("lane", "erp")]),
        0.0
    );
    assert!(before.has("crossdock_dead_letters_open"));

    for i in 0..5 {
        hub.engine
            .accept_message(capture_message(&format!("M-{i}"), "ACME", 1))
            .await
            .expect("accepted");
    }
    hub.wait_for(Duration::from_secs(30), "five closed orders", || async {
        hub.store
            .order_counts()
            .await
            .expect("counts")
            .iter()
            .any(|(status, n)| status == "Closed" && *n == 5)
    })
    .await;
    let after = scrape(&hub).await;
    assert_eq!(after.sum("crossdock_orders", &[("status", "Closed")]), 5.0);
    // Each order: its capture plus the loopback ERP's four changes (shipped, delivered,
    // invoiced, paid).
    assert_eq!(
        after.sum("crossdock_inbound_messages_total", &[("outcome", "new")]),
        25.0
    );
    assert_eq!(
        after.sum(
            "crossdock_flow_steps_total",
            &[("flow", "order-capture"), ("step", "book")]
        ),
        5.0
    );
    assert!(after.sum("crossdock_events_total", &[("type", "OrderClosed")]) >= 5.0);
    let booked = after.sum(
        "crossdock_step_duration_seconds_count",
        &[("lane", "erp"), ("step", "book")],
    );
    assert_eq!(booked, 5.0, "one latency observation per booking");
    assert!(
        after.sum(
            "crossdock_lane_queue_depth",
            &[("lane", "erp"), ("state", "pending")]
        ) >= 0.0
    );
    hub.ops.catch_up_fully().await.expect("catch up");
    let cycles = scrape(&hub).await;
    assert!(
        cycles
            .samples
            .iter()
            .any(|s| s.name == "crossdock_order_stage_duration_seconds"
                && s.labels.get("stage").map(String::as_str) == Some("order_to_close")),
        "cycle times appear once orders close"
    );

    // An ERP outage shows in the retry counters.
    hub.erp
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    hub.engine
        .accept_message(capture_message("M-DOWN", "ACME", 1))
        .await
        .expect("accepted");
    hub.wait_for(Duration::from_secs(20), "transient retries", || async {
        scrape(&hub).await.sum(
            "crossdock_retries_total",
            &[("lane", "erp"), ("class", "transient")],
        ) >= 2.0
    })
    .await;
    hub.erp
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    hub.stop().await;
}
