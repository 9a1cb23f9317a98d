//! `crossdock sim erp` command-line entry point.

use std::path::PathBuf;

use crate::config::{ClockMode, Config, InvoiceMode, Scenario};
use crate::faults::{ErrorRates, Faults, Latency};
use crate::{Handle, Simulator};

/// Command-line arguments of the simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Also serve on this port, never cut by connection-level outages (0 picks a free one).
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Seed of every random choice (master data, warehouse, faults, feed delivery).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of warehouses.
    #[arg(long, default_value_t = 3)]
    pub warehouses: usize,
    /// Number of stores.
    #[arg(long, default_value_t = 4)]
    pub stores: usize,
    /// Number of items.
    #[arg(long, default_value_t = 40)]
    pub items: usize,
    /// Number of customers.
    #[arg(long, default_value_t = 25)]
    pub customers: usize,
    /// Number of promotions.
    #[arg(long, default_value_t = 4)]
    pub promotions: usize,
    /// Clock mode: `real` (scaled wall clock) or `manual` (advanced through the admin API).
    #[arg(long, default_value = "real", value_parser = ["real", "manual"])]
    pub clock: String,
    /// Real clock speed: simulated ms per real ms (600 = one simulated minute per 100 ms)
    /// [default: 600, or 1 with `--start now`].
    #[arg(long)]
    pub speed: Option<f64>,
    /// Simulated start time: `now` (the wall clock, so timestamps line up with the hub's; the
    /// real clock then runs at speed 1 unless `--speed` says otherwise) or an RFC 3339 time
    /// [default: 2025-03-03T08:00:00Z]. Ignored when resuming from `--data-dir`.
    #[arg(long)]
    pub start: Option<String>,
    /// Keep the whole state in this directory (`erp-state.json`) and resume from it on the
    /// next start.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Short process durations for demos: pick 1 s, pack 1 s, ship 2 s, transit 5–10 s,
    /// payments 5–30 s, replenishment 15 s, returns arrive 10 s after authorisation.
    #[arg(long)]
    pub demo_timings: bool,
    /// Issue invoices per shipment or at order completion.
    #[arg(long, default_value = "per-shipment", value_parser = ["per-shipment", "on-completion"])]
    pub invoicing: String,
    /// Latency: `none`, `fixed:MS`, `uniform:MIN:MAX` or `lognormal:P50:P99` (real ms).
    #[arg(long, default_value = "none")]
    pub latency: String,
    /// Multiplies added latency.
    #[arg(long, default_value_t = 1.0)]
    pub slowdown: f64,
    /// Share of calls answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_500: f64,
    /// Share of calls answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub error_503: f64,
    /// Share of calls answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub error_429: f64,
    /// Share of calls processed but answered only after a long delay (504).
    #[arg(long, default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Share of events delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Share of events delivered out of order.
    #[arg(long, default_value_t = 0.0)]
    pub reorder_rate: f64,
    /// Most later events an out-of-order event can be delivered after.
    #[arg(long, default_value_t = 5)]
    pub reorder_window: u32,
}

impl Args {
    /// Builds the simulator configuration.
    ///
    /// # Errors
    /// A message naming the invalid flag.
    pub fn to_config(&self) -> Result<Config, String> {
        let defaults = Config::default();
        let (start_time_ms, default_speed) = match self.start.as_deref() {
            None => (defaults.start_time_ms, 600.0),
            Some("now") => (crate::clock::wall_clock_ms(), 1.0),
            Some(text) => (
                crate::clock::parse_time(text).ok_or_else(|| {
                    format!("--start must be `now` or an RFC 3339 time, got {text:?}")
                })?,
                600.0,
            ),
        };
        let clock = match self.clock.as_str() {
            "manual" => ClockMode::Manual,
            _ => ClockMode::Real {
                speed: self.speed.unwrap_or(default_speed),
            },
        };
        let invoicing = if self.invoicing == "on-completion" {
            InvoiceMode::OnCompletion
        } else {
            InvoiceMode::PerShipment
        };
        let mut faults = Faults {
            latency: Latency::parse(&self.latency)?,
            slowdown: self.slowdown,
            duplicate_rate: self.duplicate_rate,
            reorder_rate: self.reorder_rate,
            reorder_window: self.reorder_window,
            ..Faults::default()
        };
        let rates = ErrorRates {
            http_500: self.error_500,
            http_503: self.error_503,
            http_429: self.error_429,
            timeout: self.timeout_rate,
        };
        if rates != ErrorRates::default() {
            faults.errors.insert("*".to_owned(), rates);
        }
        faults.validate()?;
        let mut config = Config {
            port: self.port,
            admin_port: self.admin_port,
            seed: self.seed,
            scenario: Scenario {
                warehouses: self.warehouses,
                stores: self.stores,
                items: self.items,
                customers: self.customers,
                promotions: self.promotions,
                ..Scenario::default()
            },
            clock,
            start_time_ms,
            invoicing,
            faults,
            data_dir: self.data_dir.clone(),
            ..defaults
        };
        if self.demo_timings {
            config = config.with_demo_timings();
        }
        config.validate().map_err(|problems| problems.join("; "))?;
        Ok(config)
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM, printing its base URL first (and, with a data
/// directory, whether the state was resumed, on stderr).
///
/// # Errors
/// Invalid flags, a port that cannot be bound, or a failure to wait for Ctrl-C.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = args.to_config()?;
    let handle: Handle = Simulator::start(config).await?;
    if let Some(dir) = handle.data_dir() {
        let how = if handle.restored() {
            "resumed from"
        } else {
            "persisted to"
        };
        eprintln!("state {how} {}", dir.display());
    }
    println!("{}", handle.base_url());
    if let Some(admin) = handle.admin_url() {
        println!("admin: {admin}");
    }
    stop_requested().await?;
    handle.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (what process managers send), so both end with a
/// final write of the state.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_become_the_configuration() {
        let cli = Cli::parse_from([
            "erp",
            "--port",
            "7070",
            "--seed",
            "9",
            "--clock",
            "manual",
            "--items",
            "5",
            "--latency",
            "uniform:1:5",
            "--error-503",
            "0.1",
            "--duplicate-rate",
            "0.2",
            "--invoicing",
            "on-completion",
        ]);
        let config = cli.args.to_config().expect("valid flags");
        assert_eq!(
            (config.port, config.seed, config.scenario.items),
            (7070, 9, 5)
        );
        assert_eq!(config.clock, ClockMode::Manual);
        assert_eq!(config.invoicing, InvoiceMode::OnCompletion);
        assert_eq!(
            config.faults.latency,
            Latency::Uniform {
                min_ms: 1.0,
                max_ms: 5.0
            }
        );
        assert!((config.faults.rates_for("book_order").http_503 - 0.1).abs() < f64::EPSILON);
        let real = Cli::parse_from(["erp", "--speed", "60"])
            .args
            .to_config()
            .expect("valid");
        assert_eq!(real.clock, ClockMode::Real { speed: 60.0 });
        assert!(
            Cli::parse_from(["erp", "--error-500", "1.5"])
                .args
                .to_config()
                .is_err()
        );
    }

    #[test]
    fn start_now_runs_the_real_clock_at_speed_one_from_the_wall_clock() {
        let before = crate::clock::wall_clock_ms();
        let config = Cli::parse_from(["erp", "--start", "now", "--data-dir", "/tmp/erp-x"])
            .args
            .to_config()
            .expect("valid");
        let after = crate::clock::wall_clock_ms();
        assert_eq!(config.clock, ClockMode::Real { speed: 1.0 });
        assert!((before..=after).contains(&config.start_time_ms));
        assert_eq!(config.data_dir, Some(PathBuf::from("/tmp/erp-x")));
        let faster = Cli::parse_from(["erp", "--start", "now", "--speed", "10"])
            .args
            .to_config()
            .expect("valid");
        assert_eq!(faster.clock, ClockMode::Real { speed: 10.0 });
        let fixed = Cli::parse_from(["erp", "--start", "2025-06-01T00:00:00Z", "--demo-timings"])
            .args
            .to_config()
            .expect("valid");
        assert_eq!(fixed.start_time_ms, 1_748_736_000_000);
        assert_eq!(fixed.clock, ClockMode::Real { speed: 600.0 });
        assert_eq!(fixed.warehouse.pick_ms, 1_000);
        assert_eq!(fixed.auto_receive_returns_after_ms, Some(10_000));
        let error = Cli::parse_from(["erp", "--start", "tomorrow"])
            .args
            .to_config()
            .expect_err("not a time");
        assert!(error.contains("--start"), "{error}");
    }
}
