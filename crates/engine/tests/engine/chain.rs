//! How calls settle: claimed (chained) tasks run once each, with their attempt counted once;
//! a lane with a single slot still finishes every order; a batched call's leases settle
//! together.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_ports::SystemClock;

use super::harness::{Hub, capture, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_steps_run_once_each_with_one_attempt() {
    let (hub, erp, _sf) = Hub::loopback("chain-once").await;
    for n in 0..20 {
        hub.submit(capture(&format!("ORD-{n}"), &format!("ACC-{n}")))
            .await;
    }
    hub.wait_for_closed(Duration::from_secs(60), 20).await;
    let chained = hub.engine.metrics().snapshot().steps_chained;
    assert!(chained >= 20, "claimed steps: {chained}");
    assert_eq!(erp.bookings_created.load(Ordering::Relaxed), 20);
    for n in 0..20 {
        let order = format!("ORD-{n}");
        let timeline = hub.store.timeline(&order).await.unwrap();
        let attempts: Vec<&str> = timeline
            .iter()
            .filter(|e| e.entry.kind == "attempt")
            .map(|e| e.entry.summary.as_str())
            .collect();
        for step in ["validate", "book", "close"] {
            let of_step: Vec<&&str> = attempts
                .iter()
                .filter(|s| s.starts_with(&format!("{step} attempt")))
                .collect();
            assert_eq!(
                of_step,
                vec![&&*format!("{step} attempt 1: done")],
                "{order}: {attempts:?}"
            );
        }
    }
    assert!(
        hub.store
            .tasks_for_order("ORD-3")
            .await
            .unwrap()
            .iter()
            .all(|t| t.kind.starts_with("sf-")),
        "nothing but write-backs left"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_with_one_slot_finish_every_order() {
    let erp = Arc::new(LoopbackErp::new(Arc::new(SystemClock)));
    let sf = Arc::new(LoopbackSalesforce::default());
    let mut config = test_config();
    config.erp_lane.concurrency = 1;
    config.hub_lane.concurrency = 1;
    let hub = Hub::start("chain-one-slot", erp.clone(), sf, config).await;
    for n in 0..15 {
        hub.submit(capture(&format!("ORD-{n}"), &format!("ACC-{}", n % 3)))
            .await;
    }
    hub.wait_for_closed(Duration::from_secs(60), 15).await;
    assert_eq!(erp.bookings_created.load(Ordering::Relaxed), 15);
    hub.stop().await;
}

/// A batched Salesforce call's write-backs settle together: their completions share group
/// commits instead of taking one durable commit each, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_write_backs_settles_in_shared_commits() {
    const ORDERS: u64 = 60;
    let erp = Arc::new(LoopbackErp::new(Arc::new(SystemClock)));
    let sf = Arc::new(LoopbackSalesforce::default());
    let mut config = test_config();
    // The orders close before their write-backs are due; idle dispatchers look for due work
    // (each look a commit) seldom, so the write-backs go in one or two batches and the
    // commits counted below are theirs.
    config.sf_sync_delay = Duration::from_secs(3);
    config.idle_poll = Duration::from_secs(5);
    config.salesforce_lane.concurrency = 1;
    let hub = Hub::start("batch-settle", erp, sf.clone(), config).await;
    futures::future::join_all(
        (0..ORDERS).map(|n| hub.submit(capture(&format!("ORD-{n}"), &format!("ACC-{n}")))),
    )
    .await;
    hub.wait_for_closed(Duration::from_secs(60), ORDERS).await;
    let before = hub.store.writer_stats().expect("a SQLite store");
    let written_before = sf.records.load(Ordering::Relaxed);
    hub.wait_for(
        Duration::from_secs(60),
        "every write-back settled",
        || async {
            let mut left = 0;
            for n in 0..ORDERS {
                left += hub
                    .store
                    .tasks_for_order(&format!("ORD-{n}"))
                    .await
                    .unwrap()
                    .len();
            }
            left == 0
        },
    )
    .await;
    let commits = hub.store.writer_stats().expect("a SQLite store").commits - before.commits;
    assert_eq!(
        sf.records.load(Ordering::Relaxed),
        ORDERS,
        "one write-back each"
    );
    let written = ORDERS - written_before;
    assert!(
        written * 2 >= ORDERS,
        "most write-backs fall due after the orders closed: {written}"
    );
    let calls = sf.calls.load(Ordering::Relaxed);
    assert!(
        commits * 2 <= written,
        "{commits} commits (leases and completions) for {written} write-backs in {calls} calls"
    );
    hub.stop().await;
}
