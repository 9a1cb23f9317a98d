//! Alert rules fire once per rule and subject while they hold, post to the webhook, and send
//! a resolve notification when they stop holding.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use crossdock_api::ops::Settings;
use crossdock_api::ops::alerts::{Alerting, AlertsConfig};
use crossdock_domain::ids::System;
use crossdock_domain::order::{Command, Lane};
use crossdock_ports::{FailureClass, ManualClock};
use crossdock_store::{Decision, SyncMark};
use serde_json::Value;
use time::macros::datetime;

use crate::harness::{Hub, draft};

async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn posted(received: &Arc<Mutex<Vec<Value>>>) -> Vec<(String, String, String)> {
    received
        .lock()
        .expect("lock")
        .iter()
        .map(|v| {
            (
                v["status"].as_str().unwrap_or_default().to_owned(),
                v["rule"].as_str().unwrap_or_default().to_owned(),
                v["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_late_critical_flow_alerts_once_then_resolves() {
    let t0 = datetime!(2026-11-27 12:00 UTC);
    let clock = ManualClock::new(t0);
    let (url, received) = webhook().await;
    let mut settings = Settings::default();
    settings.config.health_cache_ms = 0;
    let hub = Hub::start("alerts", Arc::new(clock.clone()), settings, false).await;
    let mut alerting = Alerting::new(
        AlertsConfig {
            webhook_url: Some(url),
            ..AlertsConfig::default()
        },
        hub.ops.clone(),
    )
    .expect("valid");

    assert!(
        alerting.evaluate().await.expect("evaluates").is_empty(),
        "nothing holds yet"
    );
    hub.apply(
        "AL-1",
        vec![Command::CaptureOrder(draft(
            "AL-1",
            "ACME",
            900,
            t0 - time::Duration::minutes(10),
        ))],
        System::Salesforce,
        false,
    )
    .await;
    let fired = alerting.evaluate().await.expect("evaluates");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].status.as_str(), fired[0].alert.rule.as_str()),
        ("firing", "flow_backlog_late")
    );
    assert_eq!(
        fired[0].alert.severity, "critical",
        "order capture is critical"
    );
    assert!(
        fired[0].alert.summary.contains("USD 900.00"),
        "{}",
        fired[0].alert.summary
    );
    assert!(
        alerting.evaluate().await.expect("evaluates").is_empty(),
        "no repeat while it holds"
    );
    assert_eq!(
        posted(&received),
        vec![(
            "firing".to_owned(),
            "flow_backlog_late".to_owned(),
            "order-capture".to_owned()
        )]
    );
    assert_eq!(hub.ops.active_alerts().len(), 1);

    // Booked and shown in Salesforce: the alert resolves.
    hub.apply(
        "AL-1",
        vec![Command::RecordBooking {
            erp_ref: "E-1".to_owned(),
            at: t0,
        }],
        System::Erp,
        false,
    )
    .await;
    let row = hub.store.order("AL-1").await.expect("store").expect("row");
    hub.store
        .commit(Decision {
            synced: vec![SyncMark {
                order_id: "AL-1".to_owned(),
                version: row.version,
                status: row.status,
                at: t0,
            }],
            ..Decision::default()
        })
        .await
        .expect("sync");
    let resolved = alerting.evaluate().await.expect("evaluates");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, "resolved");
    assert_eq!(posted(&received).len(), 2);
    assert!(hub.ops.active_alerts().is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn a_breaker_open_past_the_recovery_objective_alerts() {
    let t0 = datetime!(2026-11-27 12:00 UTC);
    let clock = ManualClock::new(t0);
    let hub = Hub::start(
        "breaker",
        Arc::new(clock.clone()),
        Settings::default(),
        false,
    )
    .await;
    let mut alerting = Alerting::new(AlertsConfig::default(), hub.ops.clone()).expect("valid");
    let lane = hub.engine.lane(Lane::Erp);
    for _ in 0..1_000 {
        lane.record(Err(FailureClass::Transient));
    }
    assert!(
        alerting.evaluate().await.expect("evaluates").is_empty(),
        "just opened"
    );
    // The shortest recovery objective of the ERP's flows is order capture's 15 minutes.
    clock.advance(Duration::from_secs(901));
    let fired = alerting.evaluate().await.expect("evaluates");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (
            fired[0].alert.rule.as_str(),
            fired[0].alert.subject.as_str()
        ),
        ("breaker_open_too_long", "erp")
    );
    lane.record(Ok(()));
    let resolved = alerting.evaluate().await.expect("evaluates");
    assert_eq!(
        resolved
            .iter()
            .map(|n| n.status.as_str())
            .collect::<Vec<_>>(),
        ["resolved"]
    );
    hub.stop().await;
}

#[test]
fn alert_settings_are_checked() {
    let bad = AlertsConfig {
        interval_secs: 0,
        webhook_url: Some("ftp://x".to_owned()),
        ..AlertsConfig::default()
    };
    assert_eq!(bad.validate().err().map(|p| p.len()), Some(2));
}
