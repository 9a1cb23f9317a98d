//! The simulator sustains the hub's load tests: hundreds of requests per second.

use std::time::Instant;

use http::Method;
use serde_json::json;

use crate::support::{TestErp, client, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_sustains_hundreds_of_requests_per_second() {
    let erp = TestErp::start(TestErp::config(51)).await;
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
    // Alone it does about 1,100/s in a debug build; the bound leaves room for a busy CI machine.
    assert!(rate > 200.0, "{rate:.0} requests/s");
    erp.handle.shutdown().await;
}
