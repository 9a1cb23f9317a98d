//! The API load benchmark (`crossdock bench-api`): a real hub (engine with in-process loopback
//! downstreams, the given store) served on 127.0.0.1, driven by an in-repo load generator over
//! HTTP/1.1 keep-alive connections. Measures requests per second and p50/p99 latency for
//! inventory inquiry (from the cache) and order submission (synchronous validation, durable
//! capture, asynchronous booking), next to a trivial handler on the same server and client as
//! the baseline. It prints; it asserts nothing about timings.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::{Clock, SeededRng, SystemClock};
use crossdock_store::{Decision, InventoryRow, SharedStore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth::keys::{self, NewKey};
use crate::auth::scope::Scope;
use crate::state::AppState;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Concurrent connections (one request in flight on each).
    pub connections: usize,
    /// Requests per read scenario (baseline, inventory).
    pub requests: u64,
    /// Order submissions.
    pub orders: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            connections: 64,
            requests: 20_000,
            orders: 5_000,
        }
    }
}

/// Figures of one scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Requests answered with the expected status.
    pub ok: u64,
    /// Other answers and transport errors.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency percentiles (p50, p99).
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Scenario {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Every scenario of a run; the first is the baseline.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Connections used.
    pub connections: usize,
    /// Store backend.
    pub backend: String,
    /// Scenarios, baseline first.
    pub scenarios: Vec<Scenario>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "API benchmark: {} concurrent connections, {} store, loopback ERP and Salesforce",
            self.connections, self.backend
        )?;
        writeln!(
            f,
            "{:<28} {:>8} {:>7} {:>11} {:>9} {:>9} {:>10} {:>10}",
            "scenario", "ok", "errors", "req/s", "p50 ms", "p99 ms", "rate/base", "p50/base"
        )?;
        let Some(base) = self.scenarios.first() else {
            return Ok(());
        };
        for s in &self.scenarios {
            writeln!(
                f,
                "{:<28} {:>8} {:>7} {:>11.0} {:>9.2} {:>9.2} {:>10.3} {:>10.2}",
                s.name,
                s.ok,
                s.errors,
                s.rate(),
                s.p50.as_secs_f64() * 1e3,
                s.p99.as_secs_f64() * 1e3,
                s.rate() / base.rate().max(1e-9),
                s.p50.as_secs_f64() / base.p50.as_secs_f64().max(1e-9),
            )?;
        }
        Ok(())
    }
}

/// A request the load generator sends.
#[derive(Clone, Copy)]
enum Kind {
    Baseline,
    Inventory,
    Order,
}

/// Runs the benchmark against `store`.
///
/// # Errors
/// The hub could not start or the key could not be created.
pub async fn run(store: SharedStore, options: BenchOptions) -> Result<BenchReport, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::new(Parts {
        store: store.clone(),
        erp: Arc::new(LoopbackErp::new(clock.clone())),
        salesforce: Arc::new(LoopbackSalesforce::default()),
        clock: clock.clone(),
        rng: Arc::new(SeededRng::new(1)),
        config: EngineConfig {
            owner: "bench-api".to_owned(),
            ..EngineConfig::default()
        },
    });
    let shutdown = CancellationToken::new();
    let engine_task = tokio::spawn(Arc::clone(&engine).run(shutdown.clone()));
    let key = keys::create(
        &store,
        NewKey {
            client: "bench".to_owned(),
            scopes: Scope::ALL.to_vec(),
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: Some(10_000_000),
        },
        clock.now(),
    )
    .await
    .map_err(|e| e.to_string())?
    .key;
    let now = clock.now();
    let stock: Vec<InventoryRow> = (0..10)
        .map(|i| InventoryRow {
            sku: format!("SKU-BENCH-{i}"),
            location: "WH-LOOP".to_owned(),
            on_hand: 1_000,
            reserved: 0,
            available: 1_000,
            as_of: now,
            updated_at: now,
        })
        .collect();
    store
        .commit(Decision {
            inventory: stock,
            ..Decision::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let state = AppState::new(engine);
    let app = crate::router(state).route("/bench/noop", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(crate::serve_router(listener, app, shutdown.clone()));
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.connections)
        .http1_only()
        .build()
        .map_err(|e| e.to_string())?;
    let mut scenarios = Vec::new();
    for (name, kind, count) in [
        (
            "baseline (trivial handler)",
            Kind::Baseline,
            options.requests,
        ),
        ("inventory inquiry", Kind::Inventory, options.requests),
        ("order submission", Kind::Order, options.orders),
    ] {
        scenarios.push(drive(&client, &base, &key, name, kind, count, options.connections).await);
    }
    shutdown.cancel();
    let _ = server.await;
    let _ = engine_task.await;
    Ok(BenchReport {
        connections: options.connections,
        backend: store.backend().to_owned(),
        scenarios,
    })
}

async fn drive(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    name: &str,
    kind: Kind,
    count: u64,
    connections: usize,
) -> Scenario {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let next = Arc::clone(&next);
        let base = base.to_owned();
        let auth = format!("Bearer {key}");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let request = match kind {
                    Kind::Baseline => client.get(format!("{base}/bench/noop")),
                    Kind::Inventory => client
                        .get(format!("{base}/v1/inventory?sku=SKU-BENCH-{}", n % 10))
                        .header("authorization", &auth),
                    Kind::Order => client
                        .post(format!("{base}/v1/orders"))
                        .header("authorization", &auth)
                        .header("idempotency-key", format!("bench-{n}"))
                        .json(&json!({
                            "external_order_id": format!("B-{n}"),
                            "account": format!("ACC-{}", n % 50),
                            "channel": "web",
                            "currency": "USD",
                            "lines": [{
                                "sku": "SKU-1",
                                "quantity": 1 + n % 3,
                                "unit_price": crossdock_engine::loopback::list_price(&"SKU-1".into()).to_string(),
                            }],
                        })),
                };
                let sent = Instant::now();
                let expected = match kind {
                    Kind::Order => 202,
                    _ => 200,
                };
                match request.send().await {
                    Ok(response) => {
                        let ok = response.status().as_u16() == expected;
                        let _ = response.bytes().await;
                        if ok {
                            latencies.push(sent.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        if let Ok((mut l, e)) = worker.await {
            latencies.append(&mut l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((latencies.len() as f64) * p).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };
    Scenario {
        name: name.to_owned(),
        ok: latencies.len() as u64,
        errors,
        elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}
