//! `crossdock bench`: drives orders through the whole lifecycle with zero-latency in-process
//! downstreams and prints throughput, step latency, memory, and — measured in the same run on
//! the same file system or database — the store's raw durable commit rate, with the ratio.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, Command, DraftLine, OrderDraft};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce, list_price};
use crossdock_engine::{Engine, EngineConfig, LaneConfig, Parts};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::{Clock, SeededRng, SystemClock};
use crossdock_store::SharedStore;
use tokio_util::sync::CancellationToken;

use crate::cli::BenchArgs;

/// Runs the benchmark.
pub async fn run(args: BenchArgs) -> Result<()> {
    let temp = BenchDir::new()?;
    let temp = &temp.0;
    let (location, baseline) = match args.store.as_deref() {
        Some(url) if crossdock_store::is_postgres(url) => {
            let rate =
                crossdock_store::postgres::baseline_commit_rate(url, 2_000, args.workers.min(16))
                    .await
                    .context("measuring the PostgreSQL baseline")?;
            (
                url.to_owned(),
                ("PostgreSQL single-row INSERT per transaction", rate),
            )
        }
        other => {
            let path = other.map_or_else(|| temp.join("bench.sqlite"), PathBuf::from);
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| temp.clone());
            let rate = crossdock_store::sqlite::baseline_commit_rate(&dir, 3_000)
                .context("measuring the SQLite baseline")?;
            (
                path.display().to_string(),
                (
                    "SQLite WAL synchronous=FULL single-row INSERT per transaction",
                    rate,
                ),
            )
        }
    };
    println!("baseline: {:.0} commits/s ({})", baseline.1, baseline.0);

    let store = crossdock_store::open(&location)
        .await
        .context("opening the store")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let erp_latency = Duration::from_millis(args.erp_latency_ms);
    let sf_latency = Duration::from_millis(args.salesforce_latency_ms);
    let erp = Arc::new(LoopbackErp::new(Arc::clone(&clock)).with_latency(erp_latency));
    let salesforce = Arc::new(LoopbackSalesforce::default().with_latency(sf_latency));
    let mut config = EngineConfig {
        owner: "bench".to_owned(),
        erp_poll: Duration::from_millis(5),
        idle_poll: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    if let Some(ms) = args.salesforce_sync_delay_ms {
        config.sf_sync_delay = Duration::from_millis(ms);
    }
    config.hub_lane = LaneConfig {
        concurrency: args.workers,
        ..config.hub_lane
    };
    config.erp_lane = LaneConfig {
        concurrency: args.workers,
        ..config.erp_lane
    };
    let engine = Engine::new(Parts {
        store: Arc::clone(&store),
        erp: erp.clone(),
        salesforce: salesforce.clone(),
        clock: Arc::clone(&clock),
        rng: Arc::new(SeededRng::new(1)),
        config,
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&engine).run(shutdown.clone()));

    let writer_before = store.writer_stats();
    let started = Instant::now();
    let orders = args.orders;
    // Orders arrive as they do in production: from several senders at once (API clients,
    // subscriber partitions), each waiting for its message to be durable before the next.
    let senders = args.senders.max(1);
    let producers: Vec<_> = (0..senders)
        .map(|sender| {
            let engine = Arc::clone(&engine);
            let clock = Arc::clone(&clock);
            tokio::spawn(async move {
                for n in (sender..orders).step_by(senders as usize) {
                    let message = order_message(n, clock.now());
                    if let Err(error) = engine.accept_message(message).await {
                        eprintln!("could not submit order {n}: {error}");
                    }
                }
            })
        })
        .collect();
    let mut rss_marks = Vec::new();
    let progress = crate::progress::bar(u64::from(orders), "orders closed");
    let mut closed = 0;
    loop {
        // The run ends when the last order closes: look often near the end, so that the
        // measured time overshoots it by milliseconds, not by a fifth of a second.
        let nearly_done = closed * 20 >= u64::from(orders) * 19;
        let pause = if nearly_done { 10 } else { 200 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        closed = closed_orders(&store).await?;
        progress.set_position(closed);
        let quarter = u64::from(orders).div_ceil(4).max(1);
        if closed / quarter > rss_marks.len() as u64 && rss_marks.len() < 4 {
            rss_marks.push((closed, peak_rss_kib()));
        }
        if closed >= u64::from(orders) {
            break;
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            anyhow::bail!("only {closed} of {orders} orders closed after 30 minutes");
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    // The writer's work during the run only (not the shutdown that follows).
    let writer_during = store
        .writer_stats()
        .zip(writer_before)
        .map(|(after, before)| after.since(&before));
    for producer in producers {
        producer.await.ok();
    }
    shutdown.cancel();
    running.await.ok();

    let metrics = engine.metrics().snapshot();
    let steps = metrics.steps_ok;
    let steps_per_sec = steps as f64 / elapsed.as_secs_f64();
    println!("store: {} ({})", store.backend(), location);
    println!("intake: {senders} concurrent senders");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!(
        "runtime worker threads: {} ({cores} cores)",
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    println!(
        "orders: {orders} in {:.2}s = {:.0} orders/s",
        elapsed.as_secs_f64(),
        f64::from(orders) / elapsed.as_secs_f64()
    );
    println!(
        "steps: {steps} = {steps_per_sec:.0} steps/s ({:.1} per order)",
        steps as f64 / f64::from(orders)
    );
    let p50 = engine
        .metrics()
        .step_latency_quantile(0.5)
        .unwrap_or_default();
    let p99 = engine
        .metrics()
        .step_latency_quantile(0.99)
        .unwrap_or_default();
    println!(
        "chained steps: {} ({:.0}% of steps leased with the commit of the step before)",
        metrics.steps_chained,
        metrics.steps_chained as f64 * 100.0 / steps.max(1) as f64
    );
    println!(
        "step latency: p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "ratio: lifecycle steps/s ÷ baseline commits/s = {:.2}",
        steps_per_sec / baseline.1.max(1.0)
    );
    if let Some(writer) = writer_during {
        print_writer(&writer, steps, elapsed);
    }
    if !erp_latency.is_zero() || !sf_latency.is_zero() {
        println!(
            "per step, with every ERP call taking {} ms and every Salesforce call {} ms:",
            args.erp_latency_ms, args.salesforce_latency_ms
        );
        println!(
            "  {:<16} {:>9} {:>9} {:>9}   hub-added p50 / p99 (above the fastest instance, ≈ the downstream's own time)",
            "step", "fastest", "p50", "p99"
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for (step, (fastest, q)) in engine.metrics().step_latencies(&[0.5, 0.99]) {
            println!(
                "  {step:<16} {:>7.1}ms {:>7.1}ms {:>7.1}ms   {:>7.1}ms / {:>7.1}ms",
                ms(fastest),
                ms(q[0]),
                ms(q[1]),
                ms(q[0].saturating_sub(fastest)),
                ms(q[1].saturating_sub(fastest)),
            );
        }
    }
    let marks: Vec<String> = rss_marks
        .iter()
        .map(|(closed, kib)| format!("{closed} orders: {} MiB", kib / 1024))
        .collect();
    println!(
        "peak RSS: {} MiB at the end; along the run: {}",
        peak_rss_kib() / 1024,
        marks.join(", ")
    );
    println!(
        "loopback ERP change feed: at most {} changes waiting to be read",
        erp.feed_peak()
    );
    println!(
        "downstream calls: ERP {} ({} bookings), Salesforce {} calls for {} records",
        erp.calls.load(std::sync::atomic::Ordering::Relaxed),
        erp.bookings_created
            .load(std::sync::atomic::Ordering::Relaxed),
        salesforce.calls.load(std::sync::atomic::Ordering::Relaxed),
        salesforce
            .records
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    store.close().await;
    Ok(())
}

/// Where the store's single writer spent the run: the figure that bounds steps/s.
fn print_writer(writer: &crossdock_store::WriterStats, steps: u64, elapsed: Duration) {
    let share = |d: Duration| 100.0 * d.as_secs_f64() / elapsed.as_secs_f64();
    println!(
        "store writer: {} group commits carrying {} requests ({:.1} per commit, {:.2} per step); \
         {} failed ({} batches run again); busy {:.0}% of the run, {:.0}% committing (log \
         write and fsync); {:.0} µs per step",
        writer.commits,
        writer.requests,
        writer.requests as f64 / writer.commits.max(1) as f64,
        writer.requests as f64 / steps.max(1) as f64,
        writer.failed,
        writer.reruns,
        share(writer.busy),
        share(writer.committing),
        writer.busy.as_secs_f64() * 1e6 / steps.max(1) as f64,
    );
}

async fn closed_orders(store: &SharedStore) -> Result<u64> {
    let counts = store.order_counts().await?;
    Ok(counts
        .iter()
        .filter(|(status, _)| status == "Closed")
        .map(|(_, n)| *n)
        .sum())
}

/// A synthetic Salesforce order: 1–3 lines at the loopback ERP's prices, one of 500 accounts.
fn order_message(n: u32, now: time::OffsetDateTime) -> InboundMessage {
    let id = OrderId::new(format!("BENCH-{n:07}"));
    let lines = (0..(1 + n % 3))
        .map(|i| {
            let sku = Sku::new(format!("SKU-{:04}", (n * 7 + i * 13) % 100));
            DraftLine {
                line: LineNo(i + 1),
                unit_price: list_price(&sku),
                sku,
                quantity: 1 + (n + i) % 4,
                sf_id: None,
            }
        })
        .collect();
    let draft = OrderDraft {
        id: id.clone(),
        refs: ExternalRefs {
            sf_number: Some(format!("{n:08}")),
            ..ExternalRefs::default()
        },
        account: AccountId::new(format!("ACC-{:04}", n % 500)),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines,
        region: None,
        source: System::Salesforce,
        captured_at: now,
    };
    let body = Inbound::Order {
        order: id,
        command: Command::CaptureOrder(draft),
    };
    InboundMessage {
        source: System::Salesforce,
        message_id: format!("bench-{n}"),
        received_at: now,
        raw: serde_json::to_string(&body).unwrap_or_default(),
        body,
    }
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The run's scratch directory (the default store and the baseline's file): empty when the
/// run starts — a directory left by an earlier process with the same id would otherwise hand
/// this run a finished database — and removed when the run ends.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> Result<Self> {
        Self::at(std::env::temp_dir().join(format!("crossdock-bench-{}", std::process::id())))
    }

    fn at(dir: PathBuf) -> Result<Self> {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("emptying {}", dir.display()));
            }
            _ => {}
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::BenchDir;

    #[test]
    fn the_scratch_directory_starts_empty_and_is_removed() {
        let dir = std::env::temp_dir().join(format!("crossdock-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bench.sqlite"), b"an earlier run's database").unwrap();
        let scratch = BenchDir::at(dir.clone()).unwrap();
        assert_eq!(std::fs::read_dir(&scratch.0).unwrap().count(), 0);
        drop(scratch);
        assert!(!dir.exists());
    }
}
