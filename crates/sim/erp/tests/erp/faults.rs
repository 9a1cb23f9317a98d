//! Each fault knob has its measurable effect.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossdock_sim_erp::{ErrorRates, Faults, Latency, OutageMode};
use http::Method;
use serde_json::json;

use crate::support::{TestErp, client, send};

async fn timed_availability(erp: &TestErp, calls: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..calls {
        let start = Instant::now();
        let reply = erp.get("/api/v1/availability/SKU-00001").await;
        assert_eq!(reply.status, 200);
        times.push(start.elapsed());
    }
    times
}

#[tokio::test]
async fn fixed_latency_is_added_and_slowdown_multiplies_it() {
    let erp = TestErp::start(TestErp::config(21)).await;
    erp.handle
        .set_faults(Faults {
            latency: Latency::Fixed { ms: 40.0 },
            ..Faults::default()
        })
        .expect("valid");
    let plain = timed_availability(&erp, 5).await;
    assert!(
        plain.iter().all(|t| *t >= Duration::from_millis(40)),
        "{plain:?}"
    );
    let reply = erp
        .put(
            "/admin/faults",
            json!({ "latency": { "type": "fixed", "ms": 40.0 }, "slowdown": 3.0 }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let slowed = timed_availability(&erp, 5).await;
    assert!(
        slowed.iter().all(|t| *t >= Duration::from_millis(120)),
        "{slowed:?}"
    );
    let stats = erp.handle.stats();
    let added = stats["calls"]["availability"]["added_latency_ms"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((added - (5.0 * 40.0 + 5.0 * 120.0)).abs() < 1e-6, "{added}");
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn log_normal_latency_has_a_long_tail() {
    let erp = TestErp::start(TestErp::config(22)).await;
    erp.handle
        .set_faults(Faults {
            latency: Latency::LogNormal {
                p50_ms: 2.0,
                p99_ms: 40.0,
            },
            ..Faults::default()
        })
        .expect("valid");
    let mut times = timed_availability(&erp, 200).await;
    times.sort();
    let (p50, p99) = (times[100], times[198]);
    // The draws are seeded, so the lower bounds hold exactly; the upper bound leaves room for a
    // busy machine.
    assert!(
        p50 >= Duration::from_millis(1) && p50 < Duration::from_millis(50),
        "p50 {p50:?}"
    );
    assert!(p99 > Duration::from_millis(12), "p99 {p99:?}");
    assert!(p99 > p50 * 3, "a long tail: p50 {p50:?}, p99 {p99:?}");
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn injected_error_rates_hold_within_tolerance_and_only_for_their_operation() {
    let erp = TestErp::start(TestErp::config(23)).await;
    let mut errors = BTreeMap::new();
    errors.insert(
        "availability".to_owned(),
        ErrorRates {
            http_500: 0.2,
            http_503: 0.1,
            ..ErrorRates::default()
        },
    );
    errors.insert(
        "credit_check".to_owned(),
        ErrorRates {
            http_429: 1.0,
            ..ErrorRates::default()
        },
    );
    erp.handle
        .set_faults(Faults {
            errors,
            retry_after_secs: 7,
            ..Faults::default()
        })
        .expect("valid");
    let mut counts: BTreeMap<u16, u32> = BTreeMap::new();
    for _ in 0..500 {
        *counts
            .entry(erp.get("/api/v1/availability/SKU-00002").await.status)
            .or_default() += 1;
    }
    let share = |status| f64::from(counts.get(&status).copied().unwrap_or(0)) / 500.0;
    assert!((0.15..=0.25).contains(&share(500)), "{counts:?}");
    assert!((0.06..=0.14).contains(&share(503)), "{counts:?}");
    let throttled = erp
        .post(
            "/api/v1/credit-checks",
            json!({ "customer": "ACC-00001", "amount": "1.00" }),
        )
        .await;
    assert_eq!((throttled.status, throttled.code()), (429, "rate_limited"));
    assert_eq!(
        throttled.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    for _ in 0..20 {
        let quote = erp
            .post(
                "/api/v1/price-quotes",
                json!({ "customer": "ACC-00001", "sku": "SKU-00001", "quantity": 1 }),
            )
            .await;
        assert_eq!(quote.status, 200, "operations without rates are untouched");
    }
    let stats = erp.handle.stats();
    assert_eq!(
        stats["calls"]["availability"]["injected_500"].as_u64(),
        counts.get(&500).map(|c| u64::from(*c))
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn an_injected_timeout_still_books_and_a_retry_finds_the_same_order() {
    let erp = TestErp::start(TestErp::config(24)).await;
    erp.rich_customer("SF-ACC-T").await;
    let mut errors = BTreeMap::new();
    errors.insert(
        "book_order".to_owned(),
        ErrorRates {
            timeout: 1.0,
            ..ErrorRates::default()
        },
    );
    erp.handle
        .set_faults(Faults {
            errors,
            timeout_ms: 300,
            ..Faults::default()
        })
        .expect("valid");
    let body = json!({ "external_ref": "SF-ORD-T", "customer": "SF-ACC-T", "lines": [{ "sku": "SKU-00001", "quantity": 1 }] });
    let start = Instant::now();
    let lost = erp.post("/api/v1/orders", body.clone()).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!((lost.status, lost.code()), (504, "gateway_timeout"));
    erp.handle.set_faults(Faults::default()).expect("valid");
    let retry = erp.post("/api/v1/orders", body).await;
    assert_eq!(retry.status, 200, "the first call had booked it");
    assert_eq!(erp.handle.inspect(|s| s.orders_created_for("SF-ORD-T")), 1);
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn an_outage_refuses_every_call_then_recovers_on_the_sim_clock() {
    let erp = TestErp::start(TestErp::config(25)).await;
    let started = erp
        .post(
            "/admin/outages",
            json!({ "mode": "http_503", "duration_ms": 60_000 }),
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    for path in [
        "/api/v1/items",
        "/api/v1/availability/SKU-00001",
        "/api/v1/events",
    ] {
        let refused = erp.get(path).await;
        assert_eq!((refused.status, refused.code()), (503, "outage"), "{path}");
        assert!(refused.headers.contains_key("retry-after"));
    }
    assert_eq!(
        erp.get("/admin/stats").await.body["active_outage"]["mode"],
        "http_503",
        "admin stays up"
    );
    erp.advance(60_000).await;
    assert_eq!(erp.get("/api/v1/items").await.status, 200);

    // Scheduled on the simulated clock.
    erp.post(
        "/admin/outages",
        json!({ "start_in_ms": 10_000, "duration_ms": 5_000 }),
    )
    .await;
    assert_eq!(erp.get("/api/v1/items").await.status, 200);
    erp.advance(10_000).await;
    assert_eq!(erp.get("/api/v1/items").await.status, 503);
    erp.advance(5_000).await;
    assert_eq!(erp.get("/api/v1/items").await.status, 200);

    // Open-ended, stopped by hand.
    erp.post("/admin/outages", json!({})).await;
    assert_eq!(erp.get("/api/v1/items").await.status, 503);
    assert_eq!(
        erp.call(Method::DELETE, "/admin/outages", None, &[])
            .await
            .body["stopped"],
        1
    );
    assert_eq!(erp.get("/api/v1/items").await.status, 200);
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn a_connection_outage_gives_connection_errors_then_recovers() {
    let config = crossdock_sim_erp::Config {
        admin_port: Some(0),
        ..TestErp::config(26)
    };
    let erp = TestErp::start(config).await;
    let fresh = client(false);
    let url = format!("{}/api/v1/items", erp.base);
    assert!(send(&fresh, Method::GET, &url, None, &[]).await.is_ok());
    erp.handle.start_outage(OutageMode::Connection, None);
    for _ in 0..3 {
        let failed = send(&fresh, Method::GET, &url, None, &[]).await;
        assert!(
            failed.is_err(),
            "expected a connection error, got {failed:?}"
        );
    }
    // The admin listener still answers and can end the outage.
    let admin = erp.handle.admin_url().expect("admin listener");
    let stats = send(
        &fresh,
        Method::GET,
        &format!("{admin}/admin/stats"),
        None,
        &[],
    )
    .await
    .expect("admin answers");
    assert!(stats.body["connections_refused"].as_u64().unwrap_or(0) >= 1);
    let stopped = send(
        &fresh,
        Method::DELETE,
        &format!("{admin}/admin/outages"),
        None,
        &[],
    )
    .await
    .expect("admin answers");
    assert_eq!(stopped.body["stopped"], 1);
    let ok = send(&fresh, Method::GET, &url, None, &[])
        .await
        .expect("recovered");
    assert_eq!(ok.status, 200);
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn duplicates_and_reordering_appear_in_the_feed_and_nothing_is_lost() {
    let faulty = Faults {
        duplicate_rate: 0.25,
        reorder_rate: 0.25,
        reorder_window: 4,
        ..Faults::default()
    };
    for (faults, expect_faults) in [(Faults::default(), false), (faulty, true)] {
        let erp = TestErp::start(TestErp::config(27)).await;
        erp.handle.set_faults(faults).expect("valid");
        erp.rich_customer("SF-ACC-F").await;
        for n in 0..15 {
            let body = json!({ "external_ref": format!("SF-ORD-F{n}"), "customer": "SF-ACC-F", "lines": [{ "sku": format!("SKU-{:05}", n + 1), "quantity": 2 }] });
            assert_eq!(erp.post("/api/v1/orders", body).await.status, 201);
        }
        erp.advance(3_600_000).await; // also past the longest hold: held events are released
        let (feed, _) = erp.whole_feed().await;
        let seqs: Vec<u64> = feed
            .iter()
            .map(|e| e["seq"].as_u64().unwrap_or(0))
            .collect();
        let last = erp.handle.inspect(|s| s.last_seq());
        let distinct: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(
            distinct,
            (1..=last).collect(),
            "every event is delivered at least once"
        );
        let duplicates = seqs.len() - distinct.len();
        let inversions = seqs.windows(2).filter(|w| w[1] < w[0]).count();
        let positions: Vec<u64> = feed
            .iter()
            .map(|e| e["position"].as_u64().unwrap_or(0))
            .collect();
        assert_eq!(
            positions,
            (1..=positions.len() as u64).collect::<Vec<_>>(),
            "positions are the cursor"
        );
        if expect_faults {
            assert!(
                duplicates > 10,
                "duplicates: {duplicates} of {}",
                seqs.len()
            );
            assert!(inversions > 10, "out of order: {inversions}");
            // A duplicate is the same event: same id.
            let first_dup = seqs
                .iter()
                .enumerate()
                .find(|(i, s)| seqs[..*i].contains(s))
                .map(|(i, _)| i)
                .expect("dup");
            let original = feed
                .iter()
                .position(|e| e["seq"] == feed[first_dup]["seq"])
                .expect("original");
            assert_eq!(feed[original]["id"], feed[first_dup]["id"]);
        } else {
            assert_eq!((duplicates, inversions), (0, 0));
        }
        erp.handle.shutdown().await;
    }
}
