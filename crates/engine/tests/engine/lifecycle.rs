//! Orders flow from capture to closed; duplicates and out-of-order messages are absorbed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossdock_domain::ids::{LineNo, LocationId, ShipmentId, System};
use crossdock_domain::order::{Command, Milestone};

use super::harness::{Hub, capture, message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_flow_from_capture_to_closed() {
    let (hub, erp, sf) = Hub::loopback("lifecycle").await;
    for n in 0..40 {
        hub.submit(capture(&format!("ORD-{n}"), &format!("ACC-{}", n % 5)))
            .await;
    }
    hub.wait_for_closed(Duration::from_secs(60), 40).await;
    let store = hub.store.clone();
    assert_eq!(
        erp.bookings_created.load(Ordering::Relaxed),
        40,
        "one booking per order"
    );
    let row = store.order("ORD-7").await.unwrap().expect("row");
    assert!(row.erp_ref.as_deref().unwrap_or("").starts_with("LB-"));
    assert!(row.booked_at.is_some() && row.paid_at.is_some());
    let timeline = store.timeline("ORD-7").await.unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.entry.kind.as_str()).collect();
    assert!(
        kinds.contains(&"inbound") && kinds.contains(&"event") && kinds.contains(&"attempt"),
        "{kinds:?}"
    );
    // State-based write-backs coalesce: far fewer Salesforce calls than status changes.
    hub.wait_for(
        Duration::from_secs(10),
        "the final Salesforce write",
        || {
            let store = store.clone();
            async move {
                let row = store.order("ORD-7").await.unwrap().unwrap();
                row.sf_synced_status.as_deref() == Some("Closed")
            }
        },
    )
    .await;
    let calls = sf.calls.load(Ordering::Relaxed);
    assert!(calls < 40 * 8, "Salesforce calls {calls} for 40 orders");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_twice_is_processed_once() {
    let (hub, erp, _) = Hub::loopback("dedupe").await;
    hub.submit(capture("ORD-D", "ACC-1")).await;
    hub.submit(capture("ORD-D", "ACC-1")).await;
    let store = hub.store.clone();
    hub.wait_for_order(Duration::from_secs(30), "ORD-D", "ORD-D closed", |r| {
        r.status == "Closed"
    })
    .await;
    assert_eq!(erp.bookings_created.load(Ordering::Relaxed), 1);
    let events = store.read_stream("order:ORD-D").await.unwrap();
    let captured = events.iter().filter(|e| e.kind == "OrderCaptured").count();
    assert_eq!(captured, 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_reported_before_the_capture_waits_for_it() {
    let (hub, _, _) = Hub::loopback("early-shipment").await;
    let early = message(
        System::Erp,
        "ship-early",
        "ORD-E",
        Command::RecordShipment {
            shipment: ShipmentId::new("X1"),
            location: Some(LocationId::new("WH")),
            lines: [(LineNo(1), 1)].into(),
            milestone: Milestone::Shipped,
            carrier: None,
            tracking: None,
            at: time::macros::datetime!(2026-11-27 10:00 UTC),
        },
    );
    hub.submit(early).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hub.status("ORD-E").await,
        None,
        "nothing to show before the capture"
    );
    hub.submit(capture("ORD-E", "ACC-1")).await;
    let store = hub.store.clone();
    hub.wait_for(
        Duration::from_secs(30),
        "the early shipment applied",
        || {
            let store = store.clone();
            async move {
                store
                    .read_stream("order:ORD-E")
                    .await
                    .unwrap()
                    .iter()
                    .any(|e| {
                        e.kind == "ShipmentProgressed" && e.payload["data"]["shipment"] == "X1"
                    })
            }
        },
    )
    .await;
    hub.stop().await;
}

/// An inbound task carries the message it processes; a task that names only its inbox row
/// (as enqueued before tasks carried the message) is processed from the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_task_naming_only_its_inbox_row_is_processed_from_the_row() {
    let (hub, _erp, _sf) = Hub::loopback("inbound-row").await;
    let message = capture("ROW-1", "ACC-1");
    let body = serde_json::to_value(&message.body).unwrap();
    let accepted = hub
        .store
        .accept_inbound(crossdock_store::NewInbound {
            source: message.source.as_str().to_owned(),
            message_id: message.message_id.clone(),
            kind: message.body.kind(),
            key: message.body.key(),
            received_at: message.received_at,
            raw: message.raw.clone(),
            body,
            task: Some(crossdock_store::NewTask {
                lane: "hub".to_owned(),
                kind: "inbound".to_owned(),
                key: message.body.key(),
                dedupe: None,
                idempotency_key: "salesforce:capture-ROW-1".to_owned(),
                payload: serde_json::json!({ "correlation": "salesforce:capture-ROW-1" }),
                due_at: message.received_at,
                blocking: false,
                order_id: Some("ROW-1".to_owned()),
            }),
        })
        .await
        .unwrap();
    assert!(matches!(accepted, crossdock_store::Accepted::New(_)));
    hub.engine.wake(crossdock_domain::order::Lane::Hub);
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(30), "ROW-1 captured", || {
        let store = store.clone();
        async move { store.order("ROW-1").await.unwrap().is_some() }
    })
    .await;
    let timeline = store.timeline("ROW-1").await.unwrap();
    let received = timeline
        .iter()
        .find(|e| e.entry.kind == "inbound")
        .expect("the message's arrival is on the timeline");
    assert_eq!(received.entry.detail["message_id"], "capture-ROW-1");
    assert_eq!(received.entry.system.as_deref(), Some("salesforce"));
    hub.stop().await;
}

/// The task of a new inbound message carries the message (source, id, body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_task_carries_its_message() {
    let (mut hub, _erp, _sf) = Hub::loopback("inbound-carried").await;
    // Stopped, so that the task stays in the queue to be looked at.
    hub.shutdown.cancel();
    hub.running.take().unwrap().await.unwrap();
    let message = capture("CARRY-1", "ACC-1");
    let body = serde_json::to_value(&message.body).unwrap();
    hub.submit(message).await;
    let tasks = hub.store.tasks_for_order("CARRY-1").await.unwrap();
    let task = tasks
        .iter()
        .find(|t| t.kind == "inbound")
        .expect("the inbound task");
    assert_eq!(task.payload["source"], "salesforce");
    assert_eq!(task.payload["message_id"], "capture-CARRY-1");
    assert_eq!(task.payload["body"], body);
}

/// A subscriber's page goes to the inbox with its checkpoint in one write: the engine keeps
/// the checkpoint where `StoreCheckpoints` reads it, a redelivered page stores nothing twice,
/// and its orders close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_and_its_checkpoint_are_stored_together() {
    use crossdock_engine::checkpoints::StoreCheckpoints;
    use crossdock_ports::SystemClock;
    use crossdock_ports::inbound::{Checkpoints, InboundSink};

    let (hub, erp, _sf) = Hub::loopback("page-checkpoint").await;
    let page = || {
        (0..6)
            .map(|n| capture(&format!("ORD-{n}"), "ACC-1"))
            .collect::<Vec<_>>()
    };
    let checkpoint = Some(("sub:/data/OrderChangeEvent".to_owned(), "00ff".to_owned()));
    let sink: &dyn InboundSink = &*hub.engine;
    assert!(
        sink.accept_page(page(), checkpoint.clone()).await.unwrap(),
        "the engine keeps the checkpoint with the page"
    );
    let checkpoints = StoreCheckpoints::new(hub.store.clone(), std::sync::Arc::new(SystemClock));
    assert_eq!(
        checkpoints
            .load("sub:/data/OrderChangeEvent")
            .await
            .unwrap()
            .as_deref(),
        Some("00ff")
    );
    assert!(sink.accept_page(page(), checkpoint).await.unwrap());
    hub.wait_for_closed(Duration::from_secs(60), 6).await;
    let duplicates = hub.engine.metrics().snapshot().inbound_duplicate;
    assert_eq!(duplicates, 6, "the redelivered page, and nothing else");
    assert_eq!(erp.bookings_created.load(Ordering::Relaxed), 6);
    hub.stop().await;
}
