//! Engine settings: lanes, retry policies, validation and ordering rules.

use std::time::Duration;

use crossdock_domain::order::{Lane as LaneName, ValidationPolicy};
use crossdock_domain::ownership::Registry;
use serde::{Deserialize, Serialize};

use crate::lane::LaneConfig;
use crate::retry::RetryPolicy;

/// Which orders the ERP books strictly one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingOrder {
    /// Orders of one account are validated and booked in capture order (after an ERP outage
    /// too); different accounts proceed in parallel.
    PerAccount,
    /// Only each order's own steps are ordered.
    PerOrder,
}

/// Everything the engine needs to know besides its ports.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This process's id; leases carry it so shutdown can release them.
    pub owner: String,
    /// ERP lane.
    pub erp_lane: LaneConfig,
    /// Salesforce lane.
    pub salesforce_lane: LaneConfig,
    /// Internal lane (inbound processing, follow-ups).
    pub hub_lane: LaneConfig,
    /// Retries on the ERP lane.
    pub erp_retry: RetryPolicy,
    /// Retries on the Salesforce lane.
    pub salesforce_retry: RetryPolicy,
    /// Retries on the internal lane.
    pub hub_retry: RetryPolicy,
    /// How strict validation is.
    pub validation: ValidationPolicy,
    /// Ordering of validation and booking.
    pub booking_order: BookingOrder,
    /// System-of-record ownership.
    pub ownership: Registry,
    /// How often an idle lane looks for work (new local work wakes it at once).
    pub idle_poll: Duration,
    /// How long stock changes of one SKU are collected before one Salesforce write.
    pub inventory_coalesce: Duration,
    /// How often the ERP change feed is polled when it had nothing new.
    pub erp_poll: Duration,
    /// Whether to poll the ERP change feed at all (off when the ERP pushes webhooks).
    pub erp_polling: bool,
    /// How long a Salesforce write-back waits before it goes out, so that the changes of the
    /// next moments collapse into it and it travels in a fuller batch (state-based writes
    /// carry the latest state, so nothing is lost by waiting).
    pub sf_sync_delay: Duration,
    /// Remaining Salesforce API calls (fraction of the daily limit) below which the
    /// Salesforce lane slows down.
    pub sf_budget_reserve: f64,
    /// How long shutdown waits for calls in flight before releasing their leases.
    pub shutdown_grace: Duration,
    /// Orders whose folded state is kept in memory between steps (0: read every step's
    /// order from its stream). Bounded; safe beside other writers (see the engine's cache).
    pub order_cache: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            owner: "crossdock".to_owned(),
            erp_lane: LaneConfig {
                concurrency: 8,
                ..LaneConfig::default()
            },
            salesforce_lane: LaneConfig {
                concurrency: 4,
                batch: 200,
                ..LaneConfig::default()
            },
            // The hub lane calls nothing outside the hub: a step holds its slot mostly while
            // its decision waits for the durable commit, so the group commit needs many in
            // flight (with 64, thousands of ready hub tasks waited while the store's writer
            // idled a third of the time).
            hub_lane: LaneConfig {
                concurrency: 256,
                batch: 1,
                timeout_ms: 10_000,
                ..LaneConfig::default()
            },
            erp_retry: RetryPolicy::default(),
            salesforce_retry: RetryPolicy::default(),
            hub_retry: RetryPolicy::default(),
            validation: ValidationPolicy::default(),
            booking_order: BookingOrder::PerAccount,
            ownership: Registry::defaults(),
            idle_poll: Duration::from_millis(200),
            inventory_coalesce: Duration::from_secs(2),
            erp_poll: Duration::from_millis(500),
            erp_polling: true,
            sf_sync_delay: Duration::from_millis(1_000),
            sf_budget_reserve: 0.1,
            shutdown_grace: Duration::from_secs(10),
            order_cache: 4_096,
        }
    }
}

impl EngineConfig {
    /// Limits of a lane.
    pub fn lane(&self, lane: LaneName) -> LaneConfig {
        match lane {
            LaneName::Erp => self.erp_lane,
            LaneName::Salesforce => self.salesforce_lane,
            LaneName::Hub => self.hub_lane,
        }
    }

    /// Retry policy of a lane.
    pub fn retry(&self, lane: LaneName) -> RetryPolicy {
        match lane {
            LaneName::Erp => self.erp_retry,
            LaneName::Salesforce => self.salesforce_retry,
            LaneName::Hub => self.hub_retry,
        }
    }
}
