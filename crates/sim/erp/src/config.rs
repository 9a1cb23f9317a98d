//! Simulator configuration: scenario size, clock, warehouse timings, billing behaviour and the
//! fault knobs in force at start. Every field has a default, so tests set only what they need.

use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// One simulated minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One simulated hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One simulated day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

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
    /// Simulated start time in milliseconds since the Unix epoch (default 2025-03-03T08:00:00Z).
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
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            warehouses: 3,
            stores: 4,
            items: 40,
            customers: 25,
            promotions: 4,
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
