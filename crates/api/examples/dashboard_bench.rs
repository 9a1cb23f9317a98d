//! Dashboard page timings with a large store: generates orders through the store (default
//! 100,000: most closed and in sync with Salesforce, some stuck in each business process, a
//! few failed steps), then times every dashboard page over HTTP. Prints figures; asserts
//! nothing.
//!
//! ```sh
//! cargo run --release -p crossdock-api --example dashboard_bench -- [ORDERS] [STORE]
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossdock_api::AppState;
use crossdock_api::ops::config::DashboardAccess;
use crossdock_api::ops::{Ops, Settings};
use crossdock_domain::ids::{
    AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, PaymentId, ShipmentId, Sku,
    System,
};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{
    Channel, Command, DraftLine, InvoiceFacts, Milestone, OrderDraft, PaymentFacts,
};
use crossdock_engine::apply::{Cause, Loaded, apply};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::{Clock, SeededRng, SystemClock};
use crossdock_store::{Decision, InventoryRow, SyncMark};
use rust_decimal::Decimal;
use tokio::task::JoinSet;

fn draft(i: u64, at: time::OffsetDateTime) -> OrderDraft {
    OrderDraft {
        id: OrderId::new(format!("B-{i:06}")),
        refs: ExternalRefs {
            sf_id: Some(format!("801B{i:014}")),
            sf_number: Some(format!("SO-{i:06}")),
            erp_ref: None,
        },
        account: AccountId::new(format!("ACC-{:04}", i % 2_000)),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: (1..=3)
            .map(|l| DraftLine {
                line: LineNo(l),
                sku: Sku::new(format!("SKU-{}", (i + u64::from(l)) % 500)),
                quantity: 1 + (i % 7) as u32,
                unit_price: Decimal::new(1_000 + (i % 90_000) as i64, 2),
                sf_id: None,
            })
            .collect(),
        region: None,
        source: System::Salesforce,
        captured_at: at,
    }
}

/// The commands of order `i`: most complete their lifecycle; every 40th waits for booking,
/// every 50th is booked but not confirmed in Salesforce.
fn commands(i: u64, at: time::OffsetDateTime) -> (Vec<Command>, bool) {
    let d = draft(i, at);
    let total: Decimal = d
        .lines
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();
    let mut out = vec![Command::CaptureOrder(d)];
    if i.is_multiple_of(40) {
        return (out, false);
    }
    let t = |m: i64| at + time::Duration::minutes(m);
    out.push(Command::RecordBooking {
        erp_ref: format!("SO{i:07}"),
        at: t(2),
    });
    if i.is_multiple_of(50) {
        return (out, false);
    }
    let lines: BTreeMap<LineNo, u32> = (1..=3).map(|l| (LineNo(l), 1 + (i % 7) as u32)).collect();
    for (milestone, m) in [(Milestone::Shipped, 300), (Milestone::Delivered, 2_000)] {
        out.push(Command::RecordShipment {
            shipment: ShipmentId::new(format!("S{i}")),
            location: Some(LocationId::new("WH-1")),
            lines: lines.clone(),
            milestone,
            carrier: Some("UPS".to_owned()),
            tracking: Some(format!("1Z{i}")),
            at: t(m),
        });
    }
    out.push(Command::RecordInvoice {
        invoice: InvoiceId::new(format!("I{i}")),
        facts: InvoiceFacts {
            number: format!("INV{i}"),
            lines,
            net: total,
            tax: Decimal::ZERO,
            total,
            issued_at: t(2_100),
        },
    });
    out.push(Command::RecordPayment {
        payment: PaymentId::new(format!("P{i}")),
        facts: PaymentFacts {
            invoice: None,
            amount: total,
            received_at: t(4_000),
        },
    });
    out.push(Command::CloseOrder { at: t(4_001) });
    (out, true)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let orders: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir =
        std::env::temp_dir().join(format!("crossdock-dashboard-bench-{}", std::process::id()));
    let location = args
        .next()
        .unwrap_or_else(|| dir.join("bench.sqlite").display().to_string());
    let store = crossdock_store::open(&location).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::new(Parts {
        store: Arc::clone(&store),
        erp: Arc::new(LoopbackErp::new(Arc::clone(&clock))),
        salesforce: Arc::new(LoopbackSalesforce::default()),
        clock: Arc::clone(&clock),
        rng: Arc::new(SeededRng::new(1)),
        config: EngineConfig::default(),
    });
    let now = clock.now();

    println!("Generating {orders} orders in {location} …");
    let started = Instant::now();
    let mut inflight = JoinSet::new();
    let config = engine.config().clone();
    for i in 0..orders {
        let at = now - time::Duration::days(30)
            + time::Duration::seconds((i * 2_500_000 / orders.max(1)) as i64);
        let (commands, sync) = commands(i, at);
        let id = OrderId::new(format!("B-{i:06}"));
        let cause = Cause {
            system: System::Salesforce,
            causation: format!("bench:{i}"),
            correlation: Some(format!("bench-{i}")),
        };
        let mut decision = apply(
            &id,
            &Loaded {
                state: Default::default(),
                version: 0,
            },
            &commands,
            &cause,
            &config,
            now,
        )?
        .decision;
        decision.tasks.clear();
        if sync && let Some(row) = &decision.order {
            decision.synced.push(SyncMark {
                order_id: row.order_id.clone(),
                version: row.version,
                status: row.status.clone(),
                at: now,
            });
        }
        let store = Arc::clone(&store);
        inflight.spawn(async move { store.commit(decision).await.map(|_| ()) });
        if inflight.len() >= 256
            && let Some(done) = inflight.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = inflight.join_next().await {
        done??;
    }
    let inventory: Vec<InventoryRow> = (0..500)
        .map(|s| InventoryRow {
            sku: format!("SKU-{s}"),
            location: "WH-1".to_owned(),
            on_hand: 100,
            reserved: 5,
            available: 95,
            as_of: now - time::Duration::minutes(s % 60),
            updated_at: now - time::Duration::minutes(s % 60),
        })
        .collect();
    store
        .commit(Decision {
            inventory,
            ..Decision::default()
        })
        .await?;
    let generated = started.elapsed();
    println!(
        "Generated in {:.1} s ({:.0} orders/s)",
        generated.as_secs_f64(),
        orders as f64 / generated.as_secs_f64()
    );

    let mut settings = Settings::default();
    settings.config.dashboard_access = DashboardAccess::Open;
    // Every report is out of date at once: each request starts a recomputation in the
    // background and is served the last report (what `serve_stale_health` does in a hub).
    settings.config.health_cache_ms = 0;
    settings.config.serve_stale_health = true;
    let state = AppState::new(Arc::clone(&engine));
    let ops = Ops::new(state.clone(), settings);
    let started = Instant::now();
    ops.catch_up_fully().await?;
    println!(
        "Read the whole history for returns, payments and cycle times in {:.1} s (once per hub start)",
        started.elapsed().as_secs_f64()
    );

    let app = crossdock_api::router(state).layer(axum::Extension(ops.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crossdock_api::serve_router(listener, app, shutdown.clone()));
    let client = reqwest::Client::new();
    let pages = [
        ("Health overview", "/dashboard".to_owned()),
        ("Flows", "/dashboard/flows".to_owned()),
        (
            "Order trace",
            format!("/dashboard/orders/SO-{:06}", orders / 2 + 1),
        ),
        ("Failed work", "/dashboard/exceptions".to_owned()),
        ("Connected systems", "/dashboard/systems".to_owned()),
        ("Results (ROI)", "/dashboard/roi".to_owned()),
        (
            "Health JSON (/ops/health, no auth in this bench: page only)",
            "/dashboard?partial=1".to_owned(),
        ),
        ("Prometheus /metrics", "/metrics".to_owned()),
    ];
    println!(
        "\n{:<58} {:>9} {:>9} {:>9} {:>10}",
        "page", "min ms", "median", "max ms", "bytes"
    );
    for (name, path) in pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..7 {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            times.push(started.elapsed());
            bytes = body.len();
            if !status.is_success() {
                println!("{name}: HTTP {status}");
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
        println!(
            "{name:<58} {:>9.1} {:>9.1} {:>9.1} {:>10}",
            ms(times[0]),
            ms(times[3]),
            ms(times[6]),
            bytes
        );
    }
    let report = ops.health().await?;
    println!(
        "\nHealth: {} stuck items over {} orders, computed in {} ms",
        report.exceptions.len(),
        orders,
        report.took_ms
    );
    shutdown.cancel();
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
