//! `crossdock drill`: a durability drill. Runs the hub from a configuration whose ERP is the
//! ERP simulator, feeds it N synthetic orders (from the simulator's own customers and items,
//! at the ERP's prices), and exits once every order has reached a final state. Kill it at any
//! moment and start it again on the same store: the orders are not created twice (the inbox
//! dedupes them), nothing is lost, and the ERP books each order once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, Command, DraftLine, OrderDraft};
use crossdock_ports::erp::PriceRequest;
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::{Clock, Erp, SystemClock};
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::DrillArgs;
use crate::config::{Config, ErpSection};
use crate::hub::{self, Hub};

/// Statuses after which nothing more happens to an order in the drill.
pub const FINAL: [&str; 3] = ["Closed", "Rejected", "Cancelled"];

/// Runs the drill with `config`, read from `args.config`.
pub async fn run(args: DrillArgs, config: Config) -> Result<()> {
    let problems = config.check();
    if !problems.is_empty() {
        bail!(
            "{} has problems:\n  {}",
            args.config.display(),
            problems.join("\n  ")
        );
    }
    let Some(ErpSection::Sim(sim)) = &config.erp else {
        bail!("the drill needs `[erp] type = \"sim\"` (it orders the simulator's own items)");
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = crossdock_store::open(&config.store.url)
        .await
        .with_context(|| format!("opening the store at {}", config.store.url))?;
    let erp = hub::erp(config.erp.as_ref().context("[erp]")?, Arc::clone(&clock)).await?;
    let admin = crossdock_erp::sim::Admin::new(sim).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seed = admin
        .seed()
        .await
        .map_err(|e| anyhow::anyhow!("reading the simulator's data: {e}"))?;
    let customers: Vec<String> = seed
        .customers
        .iter()
        .take(20)
        .map(|c| c.account.clone())
        .collect();
    let items: Vec<String> = seed
        .items
        .iter()
        .filter(|i| i.available.values().sum::<i64>() > 200)
        .take(12)
        .map(|i| i.sku.clone())
        .collect();
    if customers.is_empty() || items.is_empty() {
        bail!("the ERP simulator has no customers or no items in stock");
    }
    let prices = price_book(erp.as_ref(), &customers, &items, clock.now()).await?;

    let listener = TcpListener::bind(&config.hub.listen).await?;
    let hub = Hub::build(config, store.clone(), Arc::clone(&clock), erp).await?;
    let engine = hub.engine.clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(hub.run(listener, shutdown.clone()));
    tokio::spawn(crate::commands::serve::stop_on_signal(shutdown.clone()));

    for n in 0..args.orders {
        let message = order(n, &customers, &items, &prices, clock.now());
        engine
            .accept_message(message)
            .await
            .map_err(|e| anyhow::anyhow!("order {n}: {e}"))?;
    }
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let counts = store.order_counts().await?;
        let done: u64 = counts
            .iter()
            .filter(|(status, _)| FINAL.contains(&status.as_str()))
            .map(|(_, n)| *n)
            .sum();
        if last_report.elapsed() > Duration::from_secs(2) || done >= u64::from(args.orders) {
            println!(
                "drill: {done}/{} orders final after {:.0}s {counts:?}",
                args.orders,
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if done >= u64::from(args.orders) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shutdown.cancel();
    running.await??;
    println!("drill: complete");
    Ok(())
}

type Prices = std::collections::BTreeMap<(String, String), Decimal>;

async fn price_book(
    erp: &dyn Erp,
    customers: &[String],
    items: &[String],
    now: time::OffsetDateTime,
) -> Result<Prices> {
    let mut prices = Prices::new();
    let requests: Vec<PriceRequest> = items
        .iter()
        .map(|sku| PriceRequest {
            sku: Sku::new(sku.clone()),
            quantity: 1,
        })
        .collect();
    for customer in customers {
        let quotes = erp
            .prices(&AccountId::new(customer.clone()), &requests, now.date())
            .await
            .map_err(|e| anyhow::anyhow!("price quotes for {customer}: {e}"))?;
        for quote in quotes {
            prices.insert((customer.clone(), quote.sku.to_string()), quote.unit_price);
        }
    }
    Ok(prices)
}

fn order(
    n: u32,
    customers: &[String],
    items: &[String],
    prices: &Prices,
    now: time::OffsetDateTime,
) -> InboundMessage {
    let customer = &customers[n as usize % customers.len()];
    let count = 1 + (n as usize % 2);
    let lines = (0..count)
        .map(|i| {
            let sku = &items[(n as usize * 3 + i * 5) % items.len()];
            DraftLine {
                line: LineNo(i as u32 + 1),
                sku: Sku::new(sku.clone()),
                quantity: 1 + (n + i as u32) % 2,
                unit_price: prices
                    .get(&(customer.clone(), sku.clone()))
                    .copied()
                    .unwrap_or_default(),
                sf_id: None,
            }
        })
        .collect();
    let id = OrderId::new(format!("DRILL-{n:05}"));
    let body = Inbound::Order {
        order: id.clone(),
        command: Command::CaptureOrder(OrderDraft {
            id,
            refs: ExternalRefs {
                sf_number: Some(format!("D{n:07}")),
                ..ExternalRefs::default()
            },
            account: AccountId::new(customer.clone()),
            channel: Channel::B2b,
            currency: Currency::USD,
            lines,
            region: None,
            source: System::Salesforce,
            captured_at: now,
        }),
    };
    InboundMessage {
        source: System::Salesforce,
        message_id: format!("drill-{n}"),
        received_at: now,
        raw: serde_json::to_string(&body).unwrap_or_default(),
        body,
    }
}
