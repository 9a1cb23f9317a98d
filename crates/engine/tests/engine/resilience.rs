//! Outages, dead letters and replay, ownership refusals, bad input, shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossdock_domain::ids::{LineNo, LocationId, ShipmentId, System};
use crossdock_domain::order::{Command, Lane, Milestone};
use crossdock_engine::BreakerState;
use crossdock_engine::loopback::LoopbackSalesforce;
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::{Clock, SystemClock};
use crossdock_store::{DeadLetterFilter, DeadLetterStatus, InboundStatus};

use super::harness::{FlakyErp, Hub, capture, message, test_config};

async fn closed(hub: &Hub, order: &str) {
    hub.wait_for_order(
        Duration::from_secs(60),
        order,
        &format!("{order} closed"),
        |r| r.status == "Closed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_erp_outage_orders_wait_and_are_booked_in_capture_order_per_account() {
    let erp = FlakyErp::new();
    let hub = Hub::start(
        "outage",
        erp.clone(),
        Arc::new(LoopbackSalesforce::default()),
        test_config(),
    )
    .await;
    erp.down.store(true, Ordering::SeqCst);
    let mut expected_a = Vec::new();
    let mut expected_b = Vec::new();
    for n in 0..6 {
        let (order, account) = (
            format!("OUT-{n}"),
            if n % 3 == 0 { "ACC-B" } else { "ACC-A" },
        );
        hub.submit(capture(&order, account)).await;
        if account == "ACC-A" {
            expected_a.push(order)
        } else {
            expected_b.push(order)
        }
    }
    let engine = hub.engine.clone();
    hub.wait_for(Duration::from_secs(20), "the ERP breaker to open", || {
        let engine = engine.clone();
        async move { engine.lane(Lane::Erp).breaker() != BreakerState::Closed }
    })
    .await;
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(20), "every order accepted", || {
        let store = store.clone();
        async move {
            let mut all = true;
            for n in 0..6 {
                all &= store.order(&format!("OUT-{n}")).await.unwrap().is_some();
            }
            all
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..6 {
        assert_eq!(
            hub.status(&format!("OUT-{n}")).await.as_deref(),
            Some("Captured"),
            "accepted and awaiting booking while the ERP is down"
        );
    }
    assert_eq!(erp.booked.lock().unwrap().len(), 0);
    erp.down.store(false, Ordering::SeqCst);
    for n in 0..6 {
        closed(&hub, &format!("OUT-{n}")).await;
    }
    // Capture order is the order in which the hub recorded the captures (messages of
    // different orders are processed side by side, so it may differ from arrival order).
    let mut captured_at = std::collections::HashMap::new();
    for n in 0..6 {
        let order = format!("OUT-{n}");
        let events = store.read_stream(&format!("order:{order}")).await.unwrap();
        let capture = events.iter().find(|e| e.kind == "OrderCaptured").unwrap();
        captured_at.insert(order, capture.global_seq);
    }
    expected_a.sort_by_key(|o| captured_at[o]);
    expected_b.sort_by_key(|o| captured_at[o]);
    let booked = erp.booked.lock().unwrap().clone();
    let of = |prefix: &[String]| {
        booked
            .iter()
            .filter(|o| prefix.contains(o))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(&expected_a),
        expected_a,
        "account A booked in capture order"
    );
    assert_eq!(
        of(&expected_b),
        expected_b,
        "account B booked in capture order"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_booking_holds_its_account_until_replayed() {
    let erp = FlakyErp::new();
    let hub = Hub::start(
        "dlq",
        erp.clone(),
        Arc::new(LoopbackSalesforce::default()),
        test_config(),
    )
    .await;
    *erp.fail_booking_of.lock().unwrap() = Some("DLQ-1".to_owned());
    hub.submit(capture("DLQ-1", "ACC-H")).await;
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(30), "a dead letter", || {
        let store = store.clone();
        async move {
            !store
                .dead_letters(DeadLetterFilter::default())
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    hub.submit(capture("DLQ-2", "ACC-H")).await;
    hub.submit(capture("OTHER-1", "ACC-I")).await;
    closed(&hub, "OTHER-1").await;
    assert_ne!(
        hub.status("DLQ-2").await.as_deref(),
        Some("Closed"),
        "held behind the dead letter"
    );
    let letters = store
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.task.kind, "book");
    assert_eq!(letter.class, "unknown");
    assert!(letter.error.contains("empty body"), "{}", letter.error);
    let attempts = store
        .timeline("DLQ-1")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.kind == "attempt" && e.entry.summary.starts_with("book"))
        .count();
    assert_eq!(attempts, 3, "every attempt is on the timeline");

    *erp.fail_booking_of.lock().unwrap() = None;
    store
        .retry_dead_letter(letter.id, None, "operator", SystemClock.now())
        .await
        .unwrap();
    hub.engine.wake(Lane::Erp);
    closed(&hub, "DLQ-1").await;
    closed(&hub, "DLQ-2").await;
    let letter = store.dead_letter_by_id(letter.id).await.unwrap().unwrap();
    assert_eq!(letter.status, DeadLetterStatus::Retried);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_refusal_rejects_the_order_and_tells_salesforce() {
    let erp = FlakyErp::new();
    let sf = Arc::new(LoopbackSalesforce::default());
    let hub = Hub::start("credit", erp.clone(), sf.clone(), test_config()).await;
    *erp.refuse_credit_of.lock().unwrap() = Some("ACC-TIGHT".to_owned());
    hub.submit(capture("CR-1", "ACC-TIGHT")).await;
    let store = hub.store.clone();
    hub.wait_for(
        Duration::from_secs(30),
        "the rejection to reach Salesforce",
        || {
            let store = store.clone();
            async move {
                store.order("CR-1").await.unwrap().is_some_and(|r| {
                    r.status == "Rejected" && r.sf_synced_status.as_deref() == Some("Rejected")
                })
            }
        },
    )
    .await;
    let row = store.order("CR-1").await.unwrap().unwrap();
    assert!(
        row.body.value()["reason"]
            .as_str()
            .unwrap_or("")
            .contains("credit limit"),
        "{}",
        row.body
    );
    assert_eq!(erp.inner.bookings_created.load(Ordering::Relaxed), 0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_cannot_report_shipments() {
    let (hub, _, _) = Hub::loopback("ownership").await;
    hub.submit(capture("OWN-1", "ACC-1")).await;
    closed(&hub, "OWN-1").await;
    let forged = message(
        System::Salesforce,
        "forged-ship",
        "OWN-1",
        Command::RecordShipment {
            shipment: ShipmentId::new("FAKE"),
            location: Some(LocationId::new("WH")),
            lines: [(LineNo(1), 1)].into(),
            milestone: Milestone::Delivered,
            carrier: None,
            tracking: None,
            at: SystemClock.now(),
        },
    );
    hub.submit(forged).await;
    hub.wait_for_timeline(Duration::from_secs(20), "OWN-1", "refusal")
        .await;
    let store = hub.store.clone();
    let refusal = store
        .timeline("OWN-1")
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entry.kind == "refusal")
        .unwrap();
    assert!(
        refusal
            .entry
            .summary
            .contains("salesforce does not own fulfilment"),
        "{}",
        refusal.entry.summary
    );
    let events = store.read_stream("order:OWN-1").await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e.payload["data"]["shipment"] == "FAKE"),
        "never written through"
    );
    let refused = store
        .inbound_by_status(InboundStatus::Refused, 0, 10)
        .await
        .unwrap();
    assert_eq!(refused.len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_is_kept_and_can_be_fixed_and_replayed() {
    let (hub, _, _) = Hub::loopback("unreadable").await;
    let bad = InboundMessage {
        source: System::Salesforce,
        message_id: "bad-1".to_owned(),
        received_at: SystemClock.now(),
        raw: "{\"Status\": \"Activated\", \"TotalAmount\": \"twelve\"}".to_owned(),
        body: Inbound::Unreadable {
            reason: "TotalAmount is not a number".to_owned(),
        },
    };
    hub.submit(bad).await;
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(20), "a dead letter", || {
        let store = store.clone();
        async move {
            !store
                .dead_letters(DeadLetterFilter::default())
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    let letter = store
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(letter.class, "permanent");
    assert!(letter.error.contains("TotalAmount is not a number"));
    let failed = store
        .inbound_by_status(InboundStatus::Failed, 0, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].raw.contains("twelve"), "raw payload kept");

    // The operator fixes the body and retries.
    let fixed = capture("FIX-1", "ACC-1").body;
    let mut payload = letter.task.payload.clone();
    payload["body"] = serde_json::to_value(&fixed).unwrap();
    store
        .retry_dead_letter(letter.id, Some(payload), "operator", SystemClock.now())
        .await
        .unwrap();
    hub.engine.wake(Lane::Hub);
    closed(&hub, "FIX-1").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_every_lease() {
    let erp = FlakyErp::new();
    let hub = Hub::start(
        "shutdown",
        erp.clone(),
        Arc::new(LoopbackSalesforce::default()),
        test_config(),
    )
    .await;
    for n in 0..20 {
        hub.submit(capture(&format!("SD-{n}"), &format!("ACC-{n}")))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let store = hub.store.clone();
    hub.stop().await;
    let depths = store.lane_depths(SystemClock.now()).await.unwrap();
    let leased: u64 = depths.iter().map(|d| d.leased).sum();
    assert_eq!(leased, 0, "{depths:?}");
}
