//! The order-state cache with another writer on the same store: this hub never decides on
//! the state it remembers once the stored order has moved on.

use std::sync::Arc;
use std::time::Duration;

use crossdock_domain::ids::{LineNo, LocationId, OrderId, ShipmentId, System};
use crossdock_domain::order::{Command, Milestone};
use crossdock_engine::apply::{self, Cause};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_ports::{Clock, SystemClock};

use super::harness::{Hub, capture, message, test_config};

fn shipment(milestone: Milestone) -> Command {
    Command::RecordShipment {
        shipment: ShipmentId::new("X1"),
        location: Some(LocationId::new("WH")),
        lines: [(LineNo(1), 2), (LineNo(2), 1)].into(),
        milestone,
        carrier: None,
        tracking: None,
        at: SystemClock.now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_behind_the_hubs_back_is_seen_before_its_next_decision() {
    let mut config = test_config();
    // Without the change feed the order waits, booked, for news of its shipment.
    config.erp_polling = false;
    let erp = Arc::new(LoopbackErp::new(Arc::new(SystemClock)));
    let sf = Arc::new(LoopbackSalesforce::default());
    let hub = Hub::start("cache-behind", erp, sf, config.clone()).await;
    hub.submit(capture("ORD-B", "ACC-1")).await;
    let store = hub.store.clone();
    hub.wait_for_order(Duration::from_secs(30), "ORD-B", "ORD-B booked", |row| {
        row.booked_at.is_some()
    })
    .await;

    // Let the booking step end (its state then enters the cache) and the hub go idle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another writer (a second hub on the same store) records the dispatch.
    let order = OrderId::new("ORD-B");
    let loaded = apply::load(&store, &order).await.unwrap();
    let cause = Cause {
        system: System::Erp,
        causation: "the-other-hub".to_owned(),
        correlation: None,
    };
    let applied = apply::apply(
        &order,
        &loaded,
        &[shipment(Milestone::Shipped)],
        &cause,
        &config,
        SystemClock.now(),
    )
    .unwrap();
    store.commit(applied.decision).await.unwrap();

    // This hub then hears of the delivery. Its memory of the order predates the dispatch:
    // deciding on it would conflict forever or refuse the news.
    hub.submit(message(
        System::Erp,
        "deliver-x1",
        "ORD-B",
        shipment(Milestone::Delivered),
    ))
    .await;
    hub.wait_for_order(Duration::from_secs(30), "ORD-B", "ORD-B delivered", |row| {
        row.delivered_at.is_some()
    })
    .await;
    let events = store.read_stream("order:ORD-B").await.unwrap();
    let milestones: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "ShipmentProgressed")
        .filter_map(|e| e.payload["data"]["milestone"].as_str())
        .collect();
    assert_eq!(
        milestones.len(),
        2,
        "dispatch and delivery once each: {milestones:?}"
    );
    let letters = store.dead_letters(Default::default()).await.unwrap();
    assert!(letters.is_empty(), "{letters:#?}");
    // The first decision was taken on the remembered state and did not stand.
    let timeline = store.timeline("ORD-B").await.unwrap();
    let retried = timeline.iter().any(|e| {
        e.entry.kind == "attempt"
            && e.entry.outcome.as_deref() == Some("conflict")
            && e.entry.summary.starts_with("inbound")
    });
    assert!(
        retried,
        "{:#?}",
        timeline
            .iter()
            .map(|e| &e.entry.summary)
            .collect::<Vec<_>>()
    );
    hub.stop().await;
}
