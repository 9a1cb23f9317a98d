//! The daily API limit: the connector slows down before it is spent instead of failing orders.

use std::time::Duration;

use crossdock_ports::{FailureClass, Salesforce};
use serde_json::json;

use crate::{Org, Stage, summary_of};

#[tokio::test]
async fn near_the_daily_limit_writes_are_throttled_not_failed() {
    let org = Org::start().await;
    let seed = org.seed(400, 1);
    let adapter = org.adapter_with(|c| {
        c.daily_limit_reserve = 20;
        c.reserve_backoff_secs = 1;
    });
    let summaries: Vec<_> = seed
        .orders
        .iter()
        .enumerate()
        .map(|(n, o)| summary_of(o, &seed.account_number, n, Stage::Booked))
        .collect();
    assert!(
        adapter
            .write_orders(&summaries[..50])
            .await
            .iter()
            .all(Result::is_ok)
    );
    let first = adapter.usage().expect("usage is reported");
    org.sim.set_daily_limit(first.used + 30);

    let mut written = 0;
    let mut throttled = Vec::new();
    for chunk in summaries[50..].chunks(25) {
        for result in adapter.write_orders(chunk).await {
            match result {
                Ok(()) => written += 1,
                Err(f) => throttled.push(f),
            }
        }
    }
    assert!(written > 0, "writes went through while calls were left");
    assert!(!throttled.is_empty(), "the reserve was reached");
    for f in &throttled {
        match f.class {
            FailureClass::Throttled {
                retry_after: Some(wait),
            } => {
                assert!(wait <= Duration::from_secs(1), "{f}");
            }
            _ => panic!("only throttling is allowed near the limit, got {f}"),
        }
    }
    let usage = adapter.usage().expect("usage");
    assert!(usage.remaining() < 20, "{usage:?}");
    assert!(usage.remaining() > 0, "the reserve was kept: {usage:?}");
    let (used, max) = org.sim.state().api_usage();
    assert!(used < max, "the org's limit was never hit ({used}/{max})");
    let stats = org.admin(reqwest::Method::GET, "stats", json!({})).await;
    assert_eq!(
        stats["api_usage"]["refused"], 0,
        "no call was refused: {stats}"
    );
    println!(
        "limit test: {written} orders written, {} held back, usage {}/{}",
        throttled.len(),
        usage.used,
        usage.limit
    );

    // A new window: after the back-off one write probes, succeeds, and writes resume.
    org.sim.reset_usage();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let results = adapter.write_orders(&summaries[..25]).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let results = adapter.write_orders(&summaries[25..50]).await;
    assert!(results.iter().all(Result::is_ok), "writes resumed");
    assert!(adapter.usage().expect("usage").used < 10);
    org.shutdown().await;
}

#[tokio::test]
async fn a_refusal_for_the_limit_is_throttling() {
    let org = Org::start().await;
    let seed = org.seed(2, 1);
    let adapter = org.adapter();
    let summary = summary_of(&seed.orders[0], &seed.account_number, 0, Stage::Booked);
    org.sim.set_daily_limit(0);
    let results = adapter.write_orders(std::slice::from_ref(&summary)).await;
    let failure = results[0].as_ref().expect_err("refused");
    assert!(
        matches!(failure.class, FailureClass::Throttled { .. }),
        "{failure}"
    );
    assert_eq!(failure.code.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"));
    org.shutdown().await;
}
