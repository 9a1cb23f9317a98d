//! `crossdock.toml`: one file for the whole hub. Layers, later wins: built-in defaults → the
//! file (`--config`) → environment variables `CROSSDOCK_<SECTION>__<KEY>` (`__` nests). Then a pure check ([`Config::check`], what `crossdock config check` runs) reports
//! every problem at once, before anything connects anywhere.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use crossdock_domain::flow::{self, Flow};
use crossdock_domain::order::ValidationPolicy;
use crossdock_domain::ownership::{Entity, Registry, Rule};
use crossdock_engine::bus::nats::NatsConfig;
use crossdock_engine::{BookingOrder, EngineConfig, LaneConfig, RetryPolicy};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the hub keeps its state.
    #[serde(default)]
    pub store: StoreSection,
    /// This hub process.
    #[serde(default)]
    pub hub: HubSection,
    /// The Salesforce org.
    #[serde(default)]
    pub salesforce: Option<crossdock_salesforce::Config>,
    /// The ERP.
    #[serde(default)]
    pub erp: Option<ErpSection>,
    /// Validation, ordering and timing of the engine.
    #[serde(default)]
    pub engine: EngineSection,
    /// One block per downstream lane: concurrency, rate, timeout, breaker.
    #[serde(default)]
    pub lanes: LanesSection,
    /// Retry policy per lane and failure class.
    #[serde(default)]
    pub retry: RetrySection,
    /// System-of-record ownership rules (replace the defaults when given).
    #[serde(default)]
    pub ownership: Option<Vec<Rule>>,
    /// Flows with their classification (replace the defaults when given).
    #[serde(default)]
    pub flows: Option<Vec<Flow>>,
    /// Event fan-out to NATS JetStream.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// The HTTP API: body limits, rate limits, JWT, signed ERP webhooks.
    #[serde(default)]
    pub api: crossdock_api::ApiConfig,
    /// Operations views: health thresholds, dashboard access, alerting.
    #[serde(default)]
    pub ops: crossdock_api::ops::OpsConfig,
    /// Logs and OpenTelemetry export (`serve` only; other commands log to stderr as
    /// `--log` says).
    #[serde(default)]
    pub telemetry: Option<crossdock_api::telemetry::TelemetryConfig>,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// A SQLite file path (embedded default) or a `postgres://` URL.
    #[serde(default = "default_store")]
    pub url: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: default_store(),
        }
    }
}

fn default_store() -> String {
    "crossdock.sqlite".to_owned()
}

/// `[hub]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// HTTP listen address of the API, operations endpoints and dashboard.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// This instance's name (task leases carry it); unique per process sharing a store.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// How long shutdown waits for calls in flight, seconds.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// How long a process's claim on `instance` lasts without a heartbeat, seconds: a
    /// second process with the same name refuses to start while the claim's heartbeat is
    /// younger, and takes an older (stale) claim over. Heartbeats come every third of it.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            instance: default_instance(),
            shutdown_grace_secs: default_grace(),
            lease_seconds: default_lease(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_instance() -> String {
    "hub-1".to_owned()
}
fn default_grace() -> u64 {
    10
}
fn default_lease() -> u64 {
    15
}

/// `[erp]`: which ERP adapter, with its settings (`type = "sim"`, `"tryton"` or `"rest"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ErpSection {
    /// The built-in ERP simulator (`crossdock sim erp`).
    Sim(crossdock_erp::sim::Config),
    /// A Tryton server over JSON-RPC.
    Tryton(crossdock_erp::tryton::Config),
    /// Any REST ERP, mapped by calls and jq filters per port operation
    /// (`crates/erp/examples/rest-erp-sim.toml` maps the ERP simulator).
    Rest(Box<crossdock_erp::rest::Config>),
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// `per_account`: an account's orders are validated and booked in capture order.
    pub booking_order: BookingOrder,
    /// Largest accepted difference per unit between the agreed price and the ERP's.
    pub price_tolerance: Decimal,
    /// Accept orders without enough stock and let the ERP backorder them.
    pub allow_backorder: bool,
    /// Stock changes of one SKU collected before one Salesforce write, milliseconds.
    pub inventory_coalesce_ms: u64,
    /// Pause between ERP change-feed polls when nothing was new, milliseconds.
    pub erp_poll_ms: u64,
    /// Poll the ERP change feed (turn off when the ERP pushes webhooks to `/webhooks/erp`).
    pub erp_polling: bool,
    /// Share of the Salesforce daily API limit kept in reserve: below it the lane slows down.
    pub salesforce_budget_reserve: f64,
    /// How long a Salesforce write-back waits so that the next changes collapse into it,
    /// milliseconds.
    pub salesforce_sync_delay_ms: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            booking_order: engine.booking_order,
            price_tolerance: engine.validation.price_tolerance,
            allow_backorder: engine.validation.allow_backorder,
            inventory_coalesce_ms: millis(engine.inventory_coalesce),
            erp_poll_ms: millis(engine.erp_poll),
            erp_polling: engine.erp_polling,
            salesforce_budget_reserve: engine.sf_budget_reserve,
            salesforce_sync_delay_ms: millis(engine.sf_sync_delay),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `[lanes.*]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanesSection {
    /// Calls to the ERP.
    pub erp: LaneConfig,
    /// Writes to Salesforce.
    pub salesforce: LaneConfig,
    /// Processing inside the hub.
    pub hub: LaneConfig,
}

impl Default for LanesSection {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            erp: engine.erp_lane,
            salesforce: engine.salesforce_lane,
            hub: engine.hub_lane,
        }
    }
}

/// `[retry.*]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// ERP lane.
    pub erp: RetryPolicy,
    /// Salesforce lane.
    pub salesforce: RetryPolicy,
    /// Internal lane.
    pub hub: RetryPolicy,
}

impl Config {
    /// Reads a file, overlays `CROSSDOCK_…` environment variables, and parses the result.
    ///
    /// # Errors
    /// Unreadable file, invalid TOML, or values of the wrong shape (with the key's path).
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, std::env::vars()).with_context(|| format!("in {}", path.display()))
    }

    /// Parses TOML text with environment overrides (`CROSSDOCK_STORE__URL=…`).
    ///
    /// # Errors
    /// Invalid TOML or values of the wrong shape.
    pub fn parse(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut root: toml::Table = text.parse().context("not valid TOML")?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix("CROSSDOCK_") else {
                continue;
            };
            if path == "LOG" || !path.contains("__") {
                continue;
            }
            let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            set(&mut root, &keys, parsed);
        }
        Config::deserialize(toml::Value::Table(root)).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Every problem with the configuration, without touching the network.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.store.url.trim().is_empty() {
            problems.push("store.url is empty".to_owned());
        }
        if self.hub.instance.trim().is_empty() {
            problems.push("hub.instance is empty".to_owned());
        }
        if self.hub.lease_seconds == 0 || self.hub.lease_seconds > 3_600 {
            problems.push(format!(
                "hub.lease_seconds must be between 1 and 3600 (seconds), not {}",
                self.hub.lease_seconds
            ));
        }
        if self.hub.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "hub.listen `{}` is not an address like 127.0.0.1:8080",
                self.hub.listen
            ));
        }
        if let Some(salesforce) = &self.salesforce
            && let Err(errors) = salesforce.validate()
        {
            problems.extend(errors.into_iter().map(|e| format!("salesforce: {e}")));
        }
        match &self.erp {
            Some(ErpSection::Sim(c)) => {
                if let Err(errors) = c.validate() {
                    problems.extend(errors.into_iter().map(|e| format!("erp: {e}")));
                }
            }
            Some(ErpSection::Tryton(c)) => {
                if let Err(errors) = c.validate() {
                    problems.extend(errors.into_iter().map(|e| format!("erp: {e}")));
                }
            }
            Some(ErpSection::Rest(c)) => {
                if let Err(errors) = c.validate() {
                    problems.extend(errors.into_iter().map(|e| format!("erp: {e}")));
                }
            }
            None => {}
        }
        for (name, lane) in [
            ("erp", &self.lanes.erp),
            ("salesforce", &self.lanes.salesforce),
            ("hub", &self.lanes.hub),
        ] {
            if lane.concurrency == 0 {
                problems.push(format!("lanes.{name}.concurrency must be at least 1"));
            }
            if lane.batch == 0 || lane.batch > 200 {
                problems.push(format!("lanes.{name}.batch must be between 1 and 200"));
            }
            if lane.rate_per_sec < 0.0 {
                problems.push(format!("lanes.{name}.rate_per_sec must not be negative"));
            }
            if lane.timeout_ms == 0 || lane.lease_ms <= lane.timeout_ms {
                problems.push(format!(
                    "lanes.{name}: lease_ms ({}) must be longer than timeout_ms ({}) so a call never outlives its lease",
                    lane.lease_ms, lane.timeout_ms
                ));
            }
        }
        let adapter_timeout_secs = match &self.erp {
            Some(ErpSection::Sim(c)) => Some(c.timeout_secs),
            Some(ErpSection::Tryton(c)) => Some(c.timeout_secs),
            Some(ErpSection::Rest(c)) => Some(c.timeout_secs),
            None => None,
        };
        if let Some(secs) = adapter_timeout_secs
            && self.lanes.erp.timeout_ms <= secs.saturating_mul(1_000)
        {
            problems.push(format!(
                "lanes.erp.timeout_ms ({}) must be longer than erp.timeout_secs ({secs} s): a call the hub gives up on may still complete in the ERP",
                self.lanes.erp.timeout_ms
            ));
        }
        if self.engine.price_tolerance.is_sign_negative() {
            problems.push("engine.price_tolerance must not be negative".to_owned());
        }
        if !(0.0..1.0).contains(&self.engine.salesforce_budget_reserve) {
            problems.push("engine.salesforce_budget_reserve must be in [0, 1)".to_owned());
        }
        if let Err(errors) = self.api.validate() {
            problems.extend(errors);
        }
        if let Err(errors) = self.ops.validate() {
            problems.extend(errors);
        }
        if self.ops.dashboard_access == crossdock_api::ops::config::DashboardAccess::Open
            && let Ok(address) = self.hub.listen.parse::<std::net::SocketAddr>()
            && !address.ip().is_loopback()
        {
            problems.push(format!(
                "ops.dashboard_access = \"open\" needs a loopback hub.listen (127.0.0.1 or [::1]), not `{}`: anyone who reaches that address could act on the dashboard; use dashboard_access = \"api_key\" or listen on a loopback address",
                self.hub.listen
            ));
        }
        if let Some(telemetry) = &self.telemetry
            && let Err(errors) = telemetry.validate()
        {
            problems.extend(errors);
        }
        let flows = self.flows();
        let mut names = BTreeSet::new();
        for flow in &flows {
            if !names.insert(flow.name.as_str()) {
                problems.push(format!("flows: `{}` is declared twice", flow.name));
            }
            if flow.steps.is_empty() {
                problems.push(format!("flows.{}: no steps", flow.name));
            }
            if flow.classification.latency_target_secs == 0 {
                problems.push(format!(
                    "flows.{}: latency_target_secs must be at least 1",
                    flow.name
                ));
            }
        }
        let registry = self.ownership();
        for entity in [
            Entity::Account,
            Entity::Order,
            Entity::Fulfilment,
            Entity::Inventory,
            Entity::Invoice,
            Entity::Payment,
            Entity::Return,
            Entity::CreditMemo,
            Entity::Refund,
        ] {
            if registry.owners(entity, None).is_empty() {
                problems.push(format!(
                    "ownership: nobody owns `{entity}`; every update to it would be refused"
                ));
            }
        }
        problems
    }

    /// Flows in force.
    pub fn flows(&self) -> Vec<Flow> {
        self.flows.clone().unwrap_or_else(flow::defaults)
    }

    /// Ownership rules in force.
    pub fn ownership(&self) -> Registry {
        self.ownership
            .clone()
            .map_or_else(Registry::defaults, Registry::new)
    }

    /// The engine settings this configuration describes.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            owner: self.hub.instance.clone(),
            erp_lane: self.lanes.erp,
            salesforce_lane: self.lanes.salesforce,
            hub_lane: self.lanes.hub,
            erp_retry: self.retry.erp,
            salesforce_retry: self.retry.salesforce,
            hub_retry: self.retry.hub,
            validation: ValidationPolicy {
                price_tolerance: self.engine.price_tolerance,
                allow_backorder: self.engine.allow_backorder,
            },
            booking_order: self.engine.booking_order,
            ownership: self.ownership(),
            inventory_coalesce: Duration::from_millis(self.engine.inventory_coalesce_ms),
            erp_poll: Duration::from_millis(self.engine.erp_poll_ms),
            erp_polling: self.engine.erp_polling,
            sf_budget_reserve: self.engine.salesforce_budget_reserve,
            sf_sync_delay: Duration::from_millis(self.engine.salesforce_sync_delay_ms),
            shutdown_grace: Duration::from_secs(self.hub.shutdown_grace_secs),
            ..EngineConfig::default()
        }
    }
}

fn set(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_valid() {
        let text = include_str!("../crossdock.toml");
        let config = Config::parse(text, Vec::new()).expect("crossdock.toml parses");
        assert_eq!(config.check(), Vec::<String>::new());
        assert_eq!(config.flows().len(), 8);
    }

    #[test]
    fn environment_variables_override_the_file() {
        let config = Config::parse(
            "[store]\nurl = \"a.sqlite\"\n",
            vec![
                (
                    "CROSSDOCK_STORE__URL".to_owned(),
                    "postgres://x/y".to_owned(),
                ),
                (
                    "CROSSDOCK_LANES__ERP__CONCURRENCY".to_owned(),
                    "3".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(config.store.url, "postgres://x/y");
        assert_eq!(config.lanes.erp.concurrency, 3);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = Config::parse(
            "[hub]\nlisten = \"nowhere\"\n[lanes.erp]\nconcurrency = 0\n[engine]\nsalesforce_budget_reserve = 2.0\n",
            Vec::new(),
        )
        .unwrap();
        let problems = config.check();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("hub.listen"));
    }

    #[test]
    fn the_instance_lease_defaults_to_15_seconds_and_must_be_positive() {
        let config = Config::parse("", Vec::new()).unwrap();
        assert_eq!(config.hub.lease_seconds, 15);
        for lease in [0, 3_601] {
            let text = format!("[hub]\nlease_seconds = {lease}\n");
            let problems = Config::parse(&text, Vec::new()).unwrap().check();
            assert_eq!(
                problems,
                [format!(
                    "hub.lease_seconds must be between 1 and 3600 (seconds), not {lease}"
                )]
            );
        }
        let problems = Config::parse("[hub]\ninstance = \" \"\n", Vec::new())
            .unwrap()
            .check();
        assert_eq!(problems, ["hub.instance is empty"]);
    }

    #[test]
    fn an_open_dashboard_is_refused_on_a_non_loopback_address() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080"] {
            let text =
                format!("[hub]\nlisten = \"{listen}\"\n[ops]\ndashboard_access = \"open\"\n");
            let problems = Config::parse(&text, Vec::new()).unwrap().check();
            assert_eq!(problems.len(), 1, "{problems:#?}");
            assert!(
                problems[0]
                    .starts_with("ops.dashboard_access = \"open\" needs a loopback hub.listen")
                    && problems[0].contains(&format!("`{listen}`")),
                "{problems:#?}"
            );
            let signed_in = text.replace("\"open\"", "\"api_key\"");
            assert!(
                Config::parse(&signed_in, Vec::new())
                    .unwrap()
                    .check()
                    .is_empty()
            );
        }
        for listen in ["127.0.0.1:8080", "[::1]:8080"] {
            let text =
                format!("[hub]\nlisten = \"{listen}\"\n[ops]\ndashboard_access = \"open\"\n");
            let problems = Config::parse(&text, Vec::new()).unwrap().check();
            assert!(problems.is_empty(), "{listen}: {problems:#?}");
        }
    }

    #[test]
    fn an_erp_lane_that_gives_up_before_the_adapter_is_refused() {
        let text = "[erp]\ntype = \"sim\"\nbase_url = \"http://127.0.0.1:7070\"\ntimeout_secs = 10\n[lanes.erp]\ntimeout_ms = 10000\nlease_ms = 20000\n";
        let problems = Config::parse(text, Vec::new()).unwrap().check();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("lanes.erp.timeout_ms (10000)"));
        let longer = text.replace("timeout_ms = 10000", "timeout_ms = 15000");
        assert_eq!(
            Config::parse(&longer, Vec::new()).unwrap().check(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let error = Config::parse("[store]\nurll = \"x\"\n", Vec::new()).unwrap_err();
        assert!(error.to_string().contains("urll"), "{error}");
    }
}
