//! API calls per order lifecycle (a measurement: it prints what batching costs).

use std::time::Instant;

use crossdock_ports::Salesforce;

use crate::{Org, Stage, summary_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_per_order_lifecycle() {
    let org = Org::start().await;
    let orders = 1_000;
    let seed = org.seed(orders, 2);
    let adapter = org.adapter();
    let before = org.calls_used();
    let kinds_before = org.sim.state().calls_by_kind();
    let started = Instant::now();
    for stage in Stage::ALL {
        let summaries: Vec<_> = seed
            .orders
            .iter()
            .enumerate()
            .map(|(n, o)| summary_of(o, &seed.account_number, n, stage))
            .collect();
        for batch in summaries.chunks(crossdock_ports::salesforce::MAX_BATCH) {
            let results = adapter.write_orders(batch).await;
            assert!(
                results.iter().all(Result::is_ok),
                "{stage:?}: {:?}",
                results.iter().find(|r| r.is_err())
            );
        }
    }
    let elapsed = started.elapsed();
    let used = org.calls_used() - before;
    let changes = orders * Stage::ALL.len();
    let kinds_after = org.sim.state().calls_by_kind();
    let by_kind: Vec<String> = kinds_after
        .iter()
        .map(|(k, v)| format!("{k}={}", v - kinds_before.get(k).copied().unwrap_or(0)))
        .collect();
    println!(
        "API calls per order lifecycle: {orders} orders x {} status changes ({} records per order: order, 2 items, 1 shipment) in batches of {}",
        Stage::ALL.len(),
        4,
        crossdock_ports::salesforce::MAX_BATCH
    );
    println!(
        "  calls used: {used} ({}) | per order: {:.3} | per status change: {:.4} | token requests: {} | {:.1} s",
        by_kind.join(", "),
        used as f64 / orders as f64,
        used as f64 / changes as f64,
        adapter.client().tokens().requests(),
        elapsed.as_secs_f64()
    );
    // Batching is the point: one call per status change would be 6,000 calls.
    assert!(used <= 150, "{used} calls for {changes} status changes");
    org.shutdown().await;
}
