//! ERP benchmark: the ERP calls the hub makes per order over a full lifecycle, and booking
//! latency, against the ERP simulator (in-process) or the local Tryton server.
//!
//! ```sh
//! cargo run --release -p crossdock-erp --example erp_bench -- --erp sim --orders 200
//! cargo run --release -p crossdock-erp --example erp_bench -- --erp tryton --orders 10
//! ```
//!
//! The hub's adapter talks to the ERP through a counting proxy on 127.0.0.1, so every HTTP
//! request it sends is counted; the warehouse staff (shipping, receiving returns) talk to the
//! ERP directly and are not. Per order the hub validates (prices, availability, credit,
//! fulfilment options), books, follows the change feed (polled in pages of 500 after the
//! warehouse shipped every order), authorises a return, issues the credit memo and refunds.
//! It prints figures; it asserts nothing about timings.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{LineNo, OrderId, RmaId};
use crossdock_erp::conformance::sim::SimWarehouse;
use crossdock_erp::conformance::tryton::TrytonWarehouse;
use crossdock_erp::conformance::{Seeds, Warehouse};
use crossdock_erp::{sim, tryton};
use crossdock_ports::erp::{
    BookingLine, BookingRequest, FulfilmentRequest, PriceRequest, ReturnRequest,
};
use crossdock_ports::{Clock, Erp, Failure, SystemClock};
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Counts the HTTP requests passing through to `upstream`.
struct Proxy {
    url: String,
    requests: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, counter).await;
                    }
                });
            }
        });
        Ok(Self { url, requests })
    }

    fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Forwards requests one by one (counting each: head, then `Content-Length` bytes of body)
/// and copies answers back as they come.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    counter: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // A full head, then its body.
        let head_end = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = client_read.read(&mut buffer).await?;
            if n == 0 {
                answers.abort();
                return Ok(());
            }
            pending.extend_from_slice(&buffer[..n]);
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        while pending.len() < head_end + length {
            let n = client_read.read(&mut buffer).await?;
            if n == 0 {
                answers.abort();
                return Ok(());
            }
            pending.extend_from_slice(&buffer[..n]);
        }
        counter.fetch_add(1, Ordering::Relaxed);
        let request: Vec<u8> = pending.drain(..head_end + length).collect();
        server_write.write_all(&request).await?;
    }
}

struct Args {
    erp: String,
    orders: usize,
}

fn args() -> Result<Args, String> {
    let mut erp = "sim".to_owned();
    let mut orders = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--erp" => erp = args.next().ok_or("--erp needs sim or tryton")?,
            "--orders" => {
                let n = args.next().ok_or("--orders needs a number")?;
                orders = Some(
                    n.parse()
                        .map_err(|_| format!("--orders: {n:?} is not a number"))?,
                );
            }
            "-h" | "--help" => {
                return Err("usage: erp_bench --erp sim|tryton --orders N".to_owned());
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: --erp sim|tryton --orders N)"
                ));
            }
        }
    }
    if erp != "sim" && erp != "tryton" {
        return Err(format!("--erp must be sim or tryton, got {erp:?}"));
    }
    let orders = orders.unwrap_or(if erp == "sim" { 200 } else { 10 });
    if orders == 0 {
        return Err("--orders must be at least 1".to_owned());
    }
    Ok(Args { erp, orders })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn must<T>(result: Result<T, Failure>, what: &str) -> T {
    result.unwrap_or_else(|f| panic!("{what}: {f}"))
}

/// Phases of the hub's calls, counted through the proxy.
#[derive(Default)]
struct Counts {
    validation: u64,
    booking: u64,
    feed: u64,
    returns: u64,
}

async fn drain_feed(erp: &dyn Erp, cursor: &mut Option<String>) -> usize {
    let mut seen = 0;
    for _ in 0..100_000 {
        let batch = must(erp.changes(cursor.as_deref(), 500).await, "change feed");
        let moved = cursor.as_deref() != Some(batch.cursor.as_str());
        seen += batch.changes.len();
        *cursor = Some(batch.cursor);
        if !moved || batch.changes.is_empty() {
            break;
        }
    }
    seen
}

async fn run(
    erp: Arc<dyn Erp>,
    direct: Arc<dyn Erp>,
    warehouse: Arc<dyn Warehouse>,
    proxy: &Proxy,
    orders: usize,
    label: &str,
) {
    let seeds: Seeds = warehouse.seeds().clone();
    let run_id = SystemClock.now().unix_timestamp();
    let today = SystemClock.now().date();
    let mut counts = Counts::default();
    let mut latencies = Vec::new();
    let mut booked = Vec::new();
    let mut cursor = None;
    // Start the feed at its end (not counted: a running hub already holds its cursor).
    drain_feed(erp.as_ref(), &mut cursor).await;
    let started = Instant::now();
    for n in 0..orders {
        let reference = format!("BENCH-{run_id}-{n}");
        let before = proxy.count();
        let lines = vec![(seeds.plenty_item.clone(), 2u32)];
        let quotes = must(
            erp.prices(
                &seeds.good_customer,
                &[PriceRequest {
                    sku: seeds.plenty_item.clone(),
                    quantity: 2,
                }],
                today,
            )
            .await,
            "prices",
        );
        let unit = quotes.first().map_or(Decimal::ONE, |q| q.unit_price);
        must(
            erp.availability(std::slice::from_ref(&seeds.plenty_item), None)
                .await,
            "availability",
        );
        must(
            erp.credit_check(&seeds.good_customer, unit * Decimal::TWO, seeds.currency)
                .await,
            "credit check",
        );
        must(
            erp.fulfilment_options(&FulfilmentRequest {
                account: seeds.good_customer.clone(),
                region: None,
                lines: lines.clone(),
            })
            .await,
            "fulfilment options",
        );
        let middle = proxy.count();
        counts.validation += middle - before;
        let request = BookingRequest {
            reference: OrderId::new(reference.as_str()),
            sf_number: None,
            account: seeds.good_customer.clone(),
            currency: seeds.currency,
            lines: vec![BookingLine {
                line: LineNo(1),
                sku: seeds.plenty_item.clone(),
                quantity: 2,
                unit_price: unit,
            }],
            fulfilment: Some(FulfilmentOption {
                method: FulfilmentMethod::ShipFromWarehouse,
                locations: vec![seeds.location.clone()],
                promised_date: None,
            }),
            region: None,
        };
        let t = Instant::now();
        let confirmation = must(
            erp.book_order(&request, &format!("{reference}/book")).await,
            "booking",
        );
        latencies.push(t.elapsed());
        counts.booking += proxy.count() - middle;
        booked.push((reference, confirmation.erp_ref));
    }
    let booking_phase = started.elapsed();
    for (_, erp_ref) in &booked {
        // The simulator's warehouse ships everything allocated as its clock moves, so an
        // order may have left with an earlier one (read directly: not a hub call).
        let read = must(direct.order(erp_ref).await, "reading an order");
        if read.lines.iter().all(|l| l.shipped >= l.ordered) {
            continue;
        }
        warehouse
            .ship(erp_ref, LineNo(1), 2)
            .await
            .unwrap_or_else(|e| panic!("shipping {erp_ref}: {e}"));
    }
    let before = proxy.count();
    let changes = drain_feed(erp.as_ref(), &mut cursor).await;
    counts.feed += proxy.count() - before;
    let mut rmas = Vec::new();
    for (reference, erp_ref) in &booked {
        let before = proxy.count();
        let rma = RmaId::new(format!("{reference}-RMA"));
        let authorisation = must(
            erp.create_return(
                &ReturnRequest {
                    rma: rma.clone(),
                    order: OrderId::new(reference.as_str()),
                    order_erp_ref: Some(erp_ref.clone()),
                    account: seeds.good_customer.clone(),
                    lines: vec![(LineNo(1), seeds.plenty_item.clone(), 1)],
                    reason: "benchmark".to_owned(),
                },
                &format!("{rma}/authorise"),
            )
            .await,
            "return",
        );
        counts.returns += proxy.count() - before;
        rmas.push((rma, authorisation.erp_ref));
    }
    for (_, erp_rma) in &rmas {
        warehouse
            .receive_return(erp_rma, &[(LineNo(1), 1)])
            .await
            .unwrap_or_else(|e| panic!("receiving {erp_rma}: {e}"));
    }
    let before = proxy.count();
    for (rma, erp_rma) in &rmas {
        let memo = must(
            erp.issue_credit_memo(erp_rma, &format!("{rma}/credit"))
                .await,
            "credit memo",
        );
        must(
            erp.issue_refund(&memo.id, &format!("{rma}/refund")).await,
            "refund",
        );
    }
    counts.returns += proxy.count() - before;
    let before = proxy.count();
    let more = drain_feed(erp.as_ref(), &mut cursor).await;
    counts.feed += proxy.count() - before;
    let refunds_seen = more;

    let n = orders as f64;
    let total = counts.validation + counts.booking + counts.feed + counts.returns;
    latencies.sort();
    println!("ERP benchmark against {label}: {orders} orders, full lifecycle each");
    println!("  (validate, book, ship, follow the change feed, return, credit memo, refund)");
    println!();
    println!("ERP calls per order: {:.2}", total as f64 / n);
    println!("  validation lookups  {:.2}", counts.validation as f64 / n);
    println!("  booking             {:.2}", counts.booking as f64 / n);
    println!(
        "  follow-ups          {:.2}  (change feed {:.2} for {} changes, returns {:.2})",
        (counts.feed + counts.returns) as f64 / n,
        counts.feed as f64 / n,
        changes + refunds_seen,
        counts.returns as f64 / n
    );
    println!();
    println!(
        "booking latency: p50 {}, p99 {}, max {} over {} bookings ({:.1} bookings/s sequential, validation included)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len(),
        n / booking_phase.as_secs_f64()
    );
    if let Some(sample) = booked.first() {
        let read = must(erp.order(&sample.1).await, "reading an order back");
        let shipped: u32 = read.lines.iter().map(|l| l.shipped).sum();
        println!(
            "check: {} reads back with {shipped} units shipped",
            sample.1
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    match args.erp.as_str() {
        "sim" => {
            let handle = crossdock_sim_erp::Simulator::start(crossdock_sim_erp::Config::default())
                .await
                .unwrap_or_else(|e| panic!("cannot start the ERP simulator: {e}"));
            let direct = sim::Config::new(handle.base_url());
            let warehouse = must(
                SimWarehouse::prepare(&direct).await,
                "preparing the simulator",
            );
            let upstream = handle.base_url().trim_start_matches("http://").to_owned();
            let proxy = Proxy::start(upstream)
                .await
                .unwrap_or_else(|e| panic!("proxy: {e}"));
            let erp: Arc<dyn Erp> = Arc::new(must(
                sim::Adapter::new(&sim::Config::new(proxy.url.clone())),
                "adapter",
            ));
            let uncounted: Arc<dyn Erp> = Arc::new(must(sim::Adapter::new(&direct), "adapter"));
            run(
                erp,
                uncounted,
                Arc::new(warehouse),
                &proxy,
                args.orders,
                "the ERP simulator (in-process, through the simulator adapter)",
            )
            .await;
            handle.shutdown().await;
        }
        _ => {
            let env = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tryton/env");
            let (uncounted, warehouse) = TrytonWarehouse::connect(&env)
                .await
                .unwrap_or_else(|message| panic!("{message}"));
            let mut config = tryton::Config::from_env_file(&env).unwrap_or_else(|e| panic!("{e}"));
            let upstream = config
                .url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            let proxy = Proxy::start(upstream)
                .await
                .unwrap_or_else(|e| panic!("proxy: {e}"));
            config.url = proxy.url.clone();
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let adapter = tryton::Adapter::connect(config, clock)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to Tryton: {e}"));
            run(
                Arc::new(adapter),
                uncounted,
                Arc::new(warehouse),
                &proxy,
                args.orders,
                "Tryton 8.0 (local server, through the Tryton adapter)",
            )
            .await;
        }
    }
}
