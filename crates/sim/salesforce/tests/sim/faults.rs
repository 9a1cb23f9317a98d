//! Daily limit, fault knobs, determinism by seed, admin API.

use crossdock_sim_salesforce::{Config, Faults};
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::Sim;

#[tokio::test]
async fn the_daily_limit_refuses_calls_and_admin_calls_do_not_count() {
    let sim = Sim::with(Config {
        daily_api_limit: 3,
        ..Config::default()
    })
    .await;
    for n in 1..=3 {
        let r = sim.get("limits").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("sforce-limit-info"),
            Some(format!("api-usage={n}/3").as_str())
        );
    }
    let refused = sim.get("limits").await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (403, Some("REQUEST_LIMIT_EXCEEDED"))
    );
    assert_eq!(
        refused.body[0]["message"],
        json!("TotalRequests Limit exceeded.")
    );
    let stats = sim.admin(Method::GET, "stats", None).await;
    assert_eq!(
        stats.body["api_usage"],
        json!({"used": 3, "max": 3, "refused": 1})
    );
    assert_eq!(stats.body["calls_by_kind"]["limits"], json!(3));
    assert_eq!(
        sim.admin(Method::POST, "usage/reset", None).await.status,
        200
    );
    assert_eq!(sim.get("limits").await.status, 200);
    sim.admin(
        Method::PUT,
        "limits",
        Some(json!({"daily_api_requests": 100})),
    )
    .await;
    assert_eq!(
        sim.get("limits").await.header("sforce-limit-info"),
        Some("api-usage=2/100")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_knobs_inject_throttling_server_errors_and_row_locks() {
    let sim = Sim::start().await;
    let set = sim
        .admin(
            Method::PUT,
            "faults",
            Some(json!({"throttle_rate": 1.0, "retry_after_secs": 7})),
        )
        .await;
    assert_eq!(set.body["throttle_rate"], json!(1.0), "{}", set.text);
    let throttled = sim.get("limits").await;
    assert_eq!(
        (throttled.status, throttled.header("retry-after")),
        (429, Some("7"))
    );

    sim.admin(
        Method::PUT,
        "faults",
        Some(json!({"server_error_rate": 1.0})),
    )
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let r = sim.get("limits").await;
        seen.insert((r.status, r.error_code().map(str::to_string)));
    }
    let expected: std::collections::BTreeSet<(u16, Option<String>)> = [
        (500, Some("UNKNOWN_EXCEPTION".to_string())),
        (503, Some("SERVER_UNAVAILABLE".to_string())),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, expected);

    sim.admin(Method::PUT, "faults", Some(json!({"lock_row_rate": 1.0})))
        .await;
    let single = sim
        .post("sobjects/Account", json!({"Name": "Locked"}))
        .await;
    assert_eq!(
        (single.status, single.error_code()),
        (400, Some("UNABLE_TO_LOCK_ROW"))
    );
    let many = sim.post("composite/sobjects", json!({"records": [{"attributes": {"type": "Account"}, "Name": "a"}, {"attributes": {"type": "Account"}, "Name": "b"}]})).await;
    assert!(
        many.body.as_array().is_some_and(|a| a
            .iter()
            .all(|r| r["errors"][0]["statusCode"] == json!("UNABLE_TO_LOCK_ROW"))),
        "{}",
        many.text
    );
    assert_eq!(sim.handle.state().count("Account"), 0);
    let reads = sim.get("limits").await;
    assert_eq!(reads.status, 200, "reads never lock rows");

    let invalid = sim
        .admin(Method::PUT, "faults", Some(json!({"lock_row_rate": 2.0})))
        .await;
    assert_eq!(invalid.status, 400);
    let unknown = sim
        .admin(Method::PATCH, "faults", Some(json!({"nope": 1})))
        .await;
    assert_eq!(unknown.status, 400);
    let cleared = sim.admin(Method::PUT, "faults", Some(json!({}))).await;
    assert_eq!(cleared.body["lock_row_rate"], json!(0.0));
    let stats = sim.admin(Method::GET, "stats", None).await;
    assert!(
        stats.body["faults_injected"]["UNABLE_TO_LOCK_ROW"]
            .as_u64()
            .is_some_and(|n| n >= 3)
    );
    sim.shutdown().await;
}

async fn fault_pattern(seed: u64) -> Vec<u16> {
    let sim = Sim::with(Config {
        seed,
        faults: Faults {
            server_error_rate: 0.5,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..24 {
        out.push(sim.get("limits").await.status);
    }
    sim.shutdown().await;
    out
}

#[tokio::test]
async fn the_same_seed_repeats_the_same_faults() {
    let a = fault_pattern(7).await;
    let b = fault_pattern(7).await;
    let c = fault_pattern(8).await;
    assert_eq!(a, b);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500), "{a:?}");
    assert_ne!(a, c);
}

#[tokio::test]
async fn latency_is_added_to_data_calls() {
    let sim = Sim::with(Config {
        faults: Faults {
            latency_ms: 150,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let started = std::time::Instant::now();
    sim.get("limits").await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let r = sim.admin(Method::GET, "faults", None).await;
    assert_eq!(r.body["latency_ms"], json!(150));
    let unknown = sim.admin(Method::GET, "nope", None).await;
    assert_eq!(unknown.status, 404);
    assert!(matches!(unknown.body, Json::Object(_)));
    sim.shutdown().await;
}
