//! The simulator sustains the hub's load tests: hundreds of requests per second.

use std::time::Instant;

use http::Method;
use serde_json::json;

use crate::support::{TempDir, TestErp, client, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_sustains_hundreds_of_requests_per_second() {
    let erp = TestErp::start(TestErp::config(51)).await;
    let rate = mixed_load(&erp).await;
    // Alone it does about 1,100/s in a debug build; the bound leaves room for a busy CI machine.
    assert!(rate > 200.0, "{rate:.0} requests/s");
    erp.handle.shutdown().await;
}

/// The same load on a data directory: every answer waits for the write that holds it, and
/// group commit keeps the writes far fewer than the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_durable_answers_it_still_sustains_dozens_of_requests_per_second() {
    let dir = TempDir::new("load");
    let mut config = TestErp::config(51);
    config.data_dir = Some(dir.path());
    let erp = TestErp::start(config).await;
    let writes_before = writes(&erp);
    let rate = mixed_load(&erp).await;
    let written = writes(&erp) - writes_before;
    println!("durable: {written} writes for 1600 requests");
    // About 200/s in a debug build on a busy two-core machine (each write fsyncs twice).
    assert!(rate > 50.0, "{rate:.0} requests/s");
    assert!(
        written < 800,
        "group commit: {written} writes for 1600 requests"
    );
    erp.handle.shutdown().await;
}

fn writes(erp: &TestErp) -> u64 {
    erp.handle.stats()["persistence"]["writes"]
        .as_u64()
        .expect("write count")
}

/// 16 clients × 100 requests (bookings, quotes, availability, feed reads); the rate per second.
async fn mixed_load(erp: &TestErp) -> f64 {
    erp.rich_customer("SF-ACC-L").await;
    let workers = 16;
    let per_worker = 100;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let base = erp.base.clone();
        tasks.push(tokio::spawn(async move {
            let http = client(true);
            let mut ok = 0;
            for n in 0..per_worker {
                let (method, path, body) = match n % 4 {
                    0 => (Method::POST, "/api/v1/orders", Some(json!({ "external_ref": format!("L-{w}-{n}"), "customer": "SF-ACC-L", "lines": [{ "sku": format!("SKU-{:05}", n % 40 + 1), "quantity": 1 }] }))),
                    1 => (Method::POST, "/api/v1/price-quotes", Some(json!({ "customer": "SF-ACC-L", "sku": "SKU-00002", "quantity": 3 }))),
                    2 => (Method::GET, "/api/v1/availability/SKU-00003", None),
                    _ => (Method::GET, "/api/v1/events?after=0&limit=50", None),
                };
                let text = body.map(|b| b.to_string());
                let reply = send(&http, method, &format!("{base}{path}"), text.as_deref(), &[]).await;
                if reply.is_ok_and(|r| r.status < 300) {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.expect("worker");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = f64::from(workers * per_worker) / elapsed;
    println!(
        "{} requests in {elapsed:.2} s: {rate:.0} requests/s",
        workers * per_worker
    );
    assert_eq!(ok, workers * per_worker);
    rate
}
