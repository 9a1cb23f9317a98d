//! Simulator configuration: scenario size, clock, warehouse timings, billing behaviour, the
//! fault knobs in force at start and the data directory that makes a run resumable. Every field
//! has a default, so tests set only what they need.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// One simulated minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One simulated hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One simulated day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One simulated second in milliseconds.
pub const SECOND_MS: i64 = 1_000;

/// Everything the simulator needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Port of the API listener on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// Optional second listener that serves the same routes but is never cut by a
    /// connection-level outage, so operators can end one (0 picks a free one).
    pub admin_port: Option<u16>,
    /// Seed of every random choice: master data, warehouse process, faults, feed delivery.
    pub seed: u64,
    /// Size of the generated master data.
    pub scenario: Scenario,
    /// How simulated time moves.
    pub clock: ClockMode,
    /// Simulated start time in milliseconds since the Unix epoch (default 2025-03-03T08:00:00Z;
    /// see [`Config::starting_now`]). Ignored when resuming from `data_dir`: the clock resumes
    /// from the saved time.
    pub start_time_ms: i64,
    /// ISO currency of every price and amount.
    pub currency: String,
    /// Warehouse process durations.
    pub warehouse: WarehouseTimings,
    /// When invoices are issued.
    pub invoicing: InvoiceMode,
    /// How customers pay their invoices.
    pub payments: PaymentBehaviour,
    /// Simulated delay before ordered replenishment stock arrives at a location.
    pub replenishment_delay_ms: i64,
    /// If set, authorised returns arrive at the warehouse by themselves after this simulated
    /// delay and are received in full; otherwise receipts are posted through the API.
    pub auto_receive_returns_after_ms: Option<i64>,
    /// Fault knobs in force at start (they can be changed at run time).
    pub faults: Faults,
    /// Webhook delivery settings.
    pub webhooks: WebhookSettings,
    /// Oldest events are dropped past this many (pollers behind it get `cursor_expired`).
    pub feed_retention: usize,
    /// Directory holding the persisted state (`erp-state.json`). When set, a start resumes from
    /// the state found there (the seed-generated master data is not generated again), and the
    /// state is written back atomically every `persist_interval_ms` when it changed and on
    /// shutdown. `None` keeps everything in memory only.
    pub data_dir: Option<PathBuf>,
    /// Real milliseconds between periodic writes of a changed state: at most this much work is
    /// lost when the process is killed.
    pub persist_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            admin_port: None,
            seed: 1,
            scenario: Scenario::default(),
            clock: ClockMode::Manual,
            start_time_ms: 1_740_988_800_000,
            currency: "USD".to_owned(),
            warehouse: WarehouseTimings::default(),
            invoicing: InvoiceMode::PerShipment,
            payments: PaymentBehaviour::default(),
            replenishment_delay_ms: 2 * DAY_MS,
            auto_receive_returns_after_ms: None,
            faults: Faults::default(),
            webhooks: WebhookSettings::default(),
            feed_retention: 1_000_000,
            data_dir: None,
            persist_interval_ms: 2_000,
        }
    }
}

impl Config {
    /// Starts the simulated clock at the current wall-clock time and runs it in real mode at
    /// speed 1, so the simulator's timestamps line up with the hub's wall clock (demos).
    #[must_use]
    pub fn starting_now(mut self) -> Self {
        self.clock = ClockMode::Real { speed: 1.0 };
        self.start_time_ms = crate::clock::wall_clock_ms();
        self
    }

    /// Uses the short process durations of [`WarehouseTimings::demo`] and
    /// [`PaymentBehaviour::demo`], replenishment after 15 s and returns that arrive by
    /// themselves 10 s after authorisation: with [`Config::starting_now`] an order goes from
    /// booking to delivery in seconds of wall-clock time.
    #[must_use]
    pub fn with_demo_timings(mut self) -> Self {
        self.warehouse = WarehouseTimings::demo();
        self.payments = PaymentBehaviour::demo();
        self.replenishment_delay_ms = 15 * SECOND_MS;
        self.auto_receive_returns_after_ms = Some(10 * SECOND_MS);
        self
    }

    /// Checks the configuration without doing any I/O and reports every problem at once.
    ///
    /// # Errors
    /// The list of problems, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Err(problem) = self.faults.validate() {
            problems.push(format!("faults: {problem}"));
        }
        if let ClockMode::Real { speed } = self.clock
            && !(speed.is_finite() && speed > 0.0)
        {
            problems.push(format!("clock speed must be positive, got {speed}"));
        }
        let mut duration = |name: &str, ms: i64| {
            if ms < 0 {
                problems.push(format!("{name} must not be negative, got {ms}"));
            }
        };
        let w = &self.warehouse;
        duration("warehouse.pick_ms", w.pick_ms);
        duration("warehouse.pack_ms", w.pack_ms);
        duration("warehouse.ship_ms", w.ship_ms);
        duration("warehouse.transit_same_region_ms", w.transit_same_region_ms);
        duration(
            "warehouse.transit_other_region_ms",
            w.transit_other_region_ms,
        );
        let p = &self.payments;
        duration("payments.delay_min_ms", p.delay_min_ms);
        duration("payments.delay_max_ms", p.delay_max_ms);
        duration("payments.late_extra_ms", p.late_extra_ms);
        duration("replenishment_delay_ms", self.replenishment_delay_ms);
        if let Some(ms) = self.auto_receive_returns_after_ms {
            duration("auto_receive_returns_after_ms", ms);
        }
        let share = |value: f64| value.is_finite() && (0.0..=1.0).contains(&value);
        if !share(p.on_time_share) || !share(p.late_share) || p.on_time_share + p.late_share > 1.0 {
            problems.push(format!(
                "payments.on_time_share ({}) and payments.late_share ({}) must be between 0 and 1 and add up to at most 1",
                p.on_time_share, p.late_share
            ));
        }
        if p.delay_min_ms > p.delay_max_ms {
            problems.push(format!(
                "payments.delay_min_ms ({}) must not exceed payments.delay_max_ms ({})",
                p.delay_min_ms, p.delay_max_ms
            ));
        }
        if self.feed_retention == 0 {
            problems.push("feed_retention must be at least 1".to_owned());
        }
        if self.persist_interval_ms == 0 {
            problems.push("persist_interval_ms must be at least 1".to_owned());
        }
        if self.webhooks.max_attempts == 0 {
            problems.push("webhooks.max_attempts must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Size of the master data generated from the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Number of warehouses (at least 1).
    pub warehouses: usize,
    /// Number of stores that can ship to customers.
    pub stores: usize,
    /// Number of items in the catalog.
    pub items: usize,
    /// Number of customers.
    pub customers: usize,
    /// Number of time-boxed promotions.
    pub promotions: usize,
    /// Multiplier of the generated credit limits (1 = as generated; a short, busy day with slow
    /// payments needs more headroom).
    pub credit_limit_scale: u32,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            warehouses: 3,
            stores: 4,
            items: 40,
            customers: 25,
            promotions: 4,
            credit_limit_scale: 1,
        }
    }
}

/// How simulated time moves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClockMode {
    /// Time stands still until `POST /admin/clock/advance` (or `Handle::advance`) moves it:
    /// with the same seed and calls, every run is identical.
    Manual,
    /// Wall-clock time multiplied by `speed` (600 = one simulated minute per 100 ms).
    Real {
        /// Simulated milliseconds per real millisecond.
        speed: f64,
    },
}

/// Durations of the warehouse process, in simulated milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarehouseTimings {
    /// From allocation to picked.
    pub pick_ms: i64,
    /// From picked to packed.
    pub pack_ms: i64,
    /// From packed to handed to the carrier.
    pub ship_ms: i64,
    /// Carrier transit when the location and the customer share a region.
    pub transit_same_region_ms: i64,
    /// Carrier transit across regions.
    pub transit_other_region_ms: i64,
}

impl Default for WarehouseTimings {
    fn default() -> Self {
        Self {
            pick_ms: 30 * MINUTE_MS,
            pack_ms: 20 * MINUTE_MS,
            ship_ms: HOUR_MS,
            transit_same_region_ms: DAY_MS,
            transit_other_region_ms: 3 * DAY_MS,
        }
    }
}

impl WarehouseTimings {
    /// Durations short enough to watch on a wall clock: pick 1 s, pack 1 s, ship 2 s, transit
    /// 5 s in region and 10 s across regions.
    pub fn demo() -> Self {
        Self {
            pick_ms: SECOND_MS,
            pack_ms: SECOND_MS,
            ship_ms: 2 * SECOND_MS,
            transit_same_region_ms: 5 * SECOND_MS,
            transit_other_region_ms: 10 * SECOND_MS,
        }
    }
}

/// When invoices are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceMode {
    /// One invoice per shipment, issued when it ships.
    PerShipment,
    /// One invoice per order, issued when its last quantity ships.
    OnCompletion,
}

/// How customers pay: most on time, some late, some never (reconciliation exceptions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentBehaviour {
    /// Share of invoices paid between `delay_min_ms` and `delay_max_ms` after issue.
    pub on_time_share: f64,
    /// Share paid `late_extra_ms` after the due date; the rest is never paid.
    pub late_share: f64,
    /// Earliest on-time payment after issue.
    pub delay_min_ms: i64,
    /// Latest on-time payment after issue.
    pub delay_max_ms: i64,
    /// How long after the due date late payers pay.
    pub late_extra_ms: i64,
}

impl Default for PaymentBehaviour {
    fn default() -> Self {
        Self {
            on_time_share: 0.85,
            late_share: 0.10,
            delay_min_ms: 2 * DAY_MS,
            delay_max_ms: 20 * DAY_MS,
            late_extra_ms: 15 * DAY_MS,
        }
    }
}

impl PaymentBehaviour {
    /// The default shares with on-time payments 5–30 s after issue. Late payers still pay only
    /// after the due date (the customer's terms, in days), so within a short demo their
    /// invoices stay open, as do the ones never paid.
    pub fn demo() -> Self {
        Self {
            delay_min_ms: 5 * SECOND_MS,
            delay_max_ms: 30 * SECOND_MS,
            late_extra_ms: 15 * SECOND_MS,
            ..Self::default()
        }
    }
}

/// Webhook delivery settings (real time, not simulated time).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// First retry delay; each further retry doubles it.
    pub retry_base_ms: u64,
    /// Longest delay between retries.
    pub retry_max_ms: u64,
    /// Attempts per event before it is dead-lettered for that subscription.
    pub max_attempts: u32,
    /// Time allowed for the receiver to answer.
    pub timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_base_ms: 200,
            retry_max_ms: 30_000,
            max_attempts: 10,
            timeout_ms: 5_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_and_the_demo_settings_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
        let demo = Config::default().starting_now().with_demo_timings();
        assert_eq!(demo.validate(), Ok(()));
        assert_eq!(demo.clock, ClockMode::Real { speed: 1.0 });
        assert_eq!(
            (
                demo.warehouse.pick_ms,
                demo.warehouse.transit_other_region_ms
            ),
            (1_000, 10_000)
        );
    }

    #[test]
    fn every_invalid_setting_is_reported_at_once() {
        let mut config = Config::default();
        config.warehouse.pick_ms = -1;
        config.payments.on_time_share = 0.9;
        config.payments.late_share = 0.2;
        config.payments.delay_min_ms = 10;
        config.payments.delay_max_ms = 5;
        config.auto_receive_returns_after_ms = Some(-5);
        config.persist_interval_ms = 0;
        config.clock = ClockMode::Real { speed: 0.0 };
        let problems = config.validate().expect_err("invalid");
        let text = problems.join("\n");
        for field in [
            "warehouse.pick_ms",
            "payments.on_time_share",
            "payments.delay_min_ms",
            "auto_receive_returns_after_ms",
            "persist_interval_ms",
            "clock speed",
        ] {
            assert!(text.contains(field), "{field} missing from {text}");
        }
        assert_eq!(problems.len(), 6, "{text}");
    }
}
