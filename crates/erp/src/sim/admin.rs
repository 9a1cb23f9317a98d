//! [`Admin`]: the simulator's admin side, which is not part of the ERP port — what demos,
//! benchmarks and tests need to steer it: outages, fault knobs, call statistics, the manual
//! clock, stock and price edits, and a listing of the seed data (customers with tiers and
//! negotiated prices, items, locations and stock) so a scenario can mirror it elsewhere.
//!
//! Everything goes over HTTP to `admin_url` (or `base_url`); catalog and stock listings use
//! the business API, so they count in the simulator's call statistics.

use std::collections::BTreeMap;

use crossdock_domain::account::CustomerTier;
use crossdock_ports::{Failure, failure::Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::Client;
use super::config::Config;
use super::wire;
use crate::rest::http::{Http, encode};

/// How an outage refuses calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Every business call answers `503 outage`.
    #[serde(rename = "http_503")]
    Http503,
    /// New connections are dropped and open ones reset.
    Connection,
}

/// An outage window on the simulated clock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Outage {
    /// Id.
    pub id: u64,
    /// Mode.
    pub mode: OutageMode,
    /// Start, simulated ms since the Unix epoch.
    pub start_ms: i64,
    /// End (exclusive), or `None` until stopped.
    pub end_ms: Option<i64>,
}

/// Latency the simulator adds before a business call (real milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Latency {
    /// None.
    #[default]
    None,
    /// Always `ms`.
    Fixed {
        /// Delay.
        ms: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound.
        min_ms: f64,
        /// Upper bound.
        max_ms: f64,
    },
    /// Log-normal with a median and a 99th percentile.
    LogNormal {
        /// Median.
        p50_ms: f64,
        /// 99th percentile.
        p99_ms: f64,
    },
}

/// Injected error shares for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ErrorRates {
    /// Share answered `500 internal_error`.
    pub http_500: f64,
    /// Share answered `503 service_unavailable`.
    pub http_503: f64,
    /// Share answered `429 rate_limited`.
    pub http_429: f64,
    /// Share processed and then answered `504` after `timeout_ms` (the lost answer).
    pub timeout: f64,
}

/// The fault knobs (`PUT /admin/faults` replaces them all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added latency.
    pub latency: Latency,
    /// Multiplies the added latency.
    pub slowdown: f64,
    /// Error shares per operation name (`"*"` for the others).
    pub errors: BTreeMap<String, ErrorRates>,
    /// How long an injected timeout holds the answer.
    pub timeout_ms: u64,
    /// `Retry-After` of injected 429 and outage 503 answers.
    pub retry_after_secs: u64,
    /// Share of feed deliveries repeated.
    pub duplicate_rate: f64,
    /// Share of feed deliveries held back behind later ones.
    pub reorder_rate: f64,
    /// Most later events a held-back event waits for.
    pub reorder_window: u32,
    /// Longest hold, simulated ms.
    pub reorder_max_hold_ms: i64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency: Latency::None,
            slowdown: 1.0,
            errors: BTreeMap::new(),
            timeout_ms: 30_000,
            retry_after_secs: 1,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            reorder_window: 5,
            reorder_max_hold_ms: 60_000,
        }
    }
}

/// Calls of one operation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CallStats {
    /// Calls received.
    pub calls: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered 4xx.
    pub client_errors: u64,
    /// Answered 5xx.
    pub server_errors: u64,
    /// Answers replayed for a repeated idempotency key.
    pub replayed: u64,
    /// Refused by an outage.
    pub outage_refused: u64,
}

/// Bookings of one external reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BookingStats {
    /// Booking requests that reached the order logic.
    pub requests: u64,
    /// Orders created (1 when idempotency holds).
    pub orders_created: u64,
    /// ERP order number.
    pub order: Option<String>,
}

/// `GET /admin/stats`, the parts the hub reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Stats {
    /// Simulated now (RFC 3339).
    pub now: String,
    /// Calls per operation.
    #[serde(default)]
    pub calls: BTreeMap<String, CallStats>,
    /// Bookings per external reference.
    #[serde(default)]
    pub bookings: BTreeMap<String, BookingStats>,
    /// Orders in the simulator.
    #[serde(default)]
    pub orders: u64,
}

impl Stats {
    /// Calls of every operation added up.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().map(|c| c.calls).sum()
    }
}

/// The simulated clock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClockReading {
    /// Now, RFC 3339.
    pub now: String,
    /// Now, ms since the Unix epoch.
    pub now_ms: i64,
}

/// A customer of the seed data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedCustomer {
    /// ERP number (`C-10001`).
    pub number: String,
    /// The shared account number (`ACC-00001`).
    pub account: String,
    /// Name.
    pub name: String,
    /// Tier.
    pub tier: CustomerTier,
    /// Credit limit.
    pub credit_limit: Decimal,
    /// Open receivables.
    pub open_balance: Decimal,
    /// Payment terms (`NET30`).
    pub payment_terms: String,
    /// Region.
    pub region: String,
    /// On credit hold.
    pub on_hold: bool,
    /// Negotiated unit price per SKU.
    pub negotiated_prices: BTreeMap<String, Decimal>,
}

/// An item of the seed data with its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedItem {
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Unit of measure.
    pub uom: String,
    /// List price.
    pub list_price: Decimal,
    /// Tax rate (0.20 = 20 %).
    pub tax_rate: Decimal,
    /// Units available to promise per location.
    pub available: BTreeMap<String, i64>,
    /// Units on hand per location.
    pub on_hand: BTreeMap<String, i64>,
}

/// A location of the seed data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedLocation {
    /// Code (`WH-01`).
    pub code: String,
    /// Name.
    pub name: String,
    /// `warehouse` or `store`.
    pub kind: String,
    /// Region.
    pub region: String,
}

/// Everything a scenario mirrors from the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedData {
    /// Customers.
    pub customers: Vec<SeedCustomer>,
    /// Items with stock.
    pub items: Vec<SeedItem>,
    /// Locations.
    pub locations: Vec<SeedLocation>,
}

/// The simulator's admin side.
#[derive(Debug)]
pub struct Admin {
    admin: Client,
    api: Client,
    fan_out: usize,
}

fn tier(text: &str) -> Result<CustomerTier> {
    match text {
        "Gold" => Ok(CustomerTier::Gold),
        "Silver" => Ok(CustomerTier::Silver),
        "Bronze" => Ok(CustomerTier::Bronze),
        other => Err(Failure::unknown(format!(
            "admin_customers: answer field `customers[].tier`: unknown tier {other:?}"
        ))
        .with_code("malformed_answer")),
    }
}

impl Admin {
    /// Builds the admin client (no I/O).
    ///
    /// # Errors
    /// Permanent when the configuration is invalid.
    pub fn new(config: &Config) -> Result<Self> {
        config
            .validate()
            .map_err(|problems| Failure::permanent(problems.join("; ")).with_code("config"))?;
        let admin_url = config.admin_url.as_deref().unwrap_or(&config.base_url);
        Ok(Self {
            admin: Client::new(Http::new(
                admin_url,
                config.timeout(),
                config.connect_timeout(),
            )?),
            api: Client::new(Http::new(
                &config.base_url,
                config.timeout(),
                config.connect_timeout(),
            )?),
            fan_out: config.fan_out,
        })
    }

    /// The client of the business API (for drivers in this crate).
    #[cfg(any(test, feature = "conformance"))]
    pub(crate) fn api(&self) -> &Client {
        &self.api
    }

    async fn admin<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        Ok(self.admin.fetch(op, method, path, body, None).await?.value)
    }

    /// Starts an outage now, for `duration_ms` of simulated time or until stopped.
    ///
    /// # Errors
    /// The simulator refused or could not be reached.
    pub async fn start_outage(&self, mode: OutageMode, duration_ms: Option<i64>) -> Result<Outage> {
        let mut body = json!({ "mode": mode });
        if let Some(ms) = duration_ms {
            body["duration_ms"] = json!(ms);
        }
        self.admin("admin_outage", Method::POST, "/admin/outages", Some(&body))
            .await
    }

    /// Ends active outages and cancels scheduled ones; returns how many.
    ///
    /// # Errors
    /// The simulator could not be reached.
    pub async fn stop_outages(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Stopped {
            stopped: u64,
        }
        let stopped: Stopped = self
            .admin("admin_outage", Method::DELETE, "/admin/outages", None)
            .await?;
        Ok(stopped.stopped)
    }

    /// The fault knobs in force.
    ///
    /// # Errors
    /// The simulator could not be reached.
    pub async fn faults(&self) -> Result<Faults> {
        self.admin("admin_faults", Method::GET, "/admin/faults", None)
            .await
    }

    /// Replaces the fault knobs.
    ///
    /// # Errors
    /// Permanent when a knob is out of range (the simulator's message).
    pub async fn set_faults(&self, faults: &Faults) -> Result<Faults> {
        let body = serde_json::to_value(faults)
            .map_err(|e| Failure::permanent(format!("cannot encode the fault knobs: {e}")))?;
        self.admin("admin_faults", Method::PUT, "/admin/faults", Some(&body))
            .await
    }

    /// Call statistics and bookings per reference.
    ///
    /// # Errors
    /// The simulator could not be reached.
    pub async fn stats(&self) -> Result<Stats> {
        self.admin("admin_stats", Method::GET, "/admin/stats", None)
            .await
    }

    /// The simulated clock.
    ///
    /// # Errors
    /// The simulator could not be reached.
    pub async fn clock(&self) -> Result<ClockReading> {
        self.admin("admin_clock", Method::GET, "/admin/clock", None)
            .await
    }

    /// Moves the manual clock forward, running everything due on the way.
    ///
    /// # Errors
    /// Permanent when the simulator runs on the real clock.
    pub async fn advance_clock(&self, ms: i64) -> Result<ClockReading> {
        let body = json!({ "ms": ms.max(0) });
        self.admin(
            "admin_clock",
            Method::POST,
            "/admin/clock/advance",
            Some(&body),
        )
        .await
    }

    /// Counts stock: sets the units on hand of `sku` at `location` (fills waiting backorders).
    ///
    /// # Errors
    /// Permanent for an unknown item or location, or below what is reserved.
    pub async fn set_stock(&self, sku: &str, location: &str, on_hand: u64) -> Result<()> {
        let body = json!({ "on_hand": on_hand });
        let _: Value = self
            .admin(
                "admin_stock",
                Method::PUT,
                &format!("/admin/stock/{}/{}", encode(sku), encode(location)),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Sets a customer's negotiated price for an item.
    ///
    /// # Errors
    /// Permanent for an unknown customer or item.
    pub async fn set_customer_price(
        &self,
        customer: &str,
        sku: &str,
        price: Decimal,
    ) -> Result<()> {
        let body = json!({ "price": price.to_string() });
        let _: Value = self
            .admin(
                "admin_customer_price",
                Method::PUT,
                &format!(
                    "/admin/customer-prices/{}/{}",
                    encode(customer),
                    encode(sku)
                ),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Puts a customer on credit hold or releases it.
    ///
    /// # Errors
    /// Permanent for an unknown customer.
    pub async fn set_hold(&self, customer: &str, on_hold: bool) -> Result<()> {
        let body = json!({ "on_hold": on_hold });
        let _: Value = self
            .admin(
                "admin_hold",
                Method::PUT,
                &format!("/admin/customers/{}/hold", encode(customer)),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Lists the seed data: customers (with negotiated prices), items with stock per
    /// location, and locations.
    ///
    /// The simulator has no listing of negotiated prices, so they are found by quoting each
    /// item for each Gold and Silver customer (the tiers the simulator negotiates prices for)
    /// and keeping the quotes that show a customer price: about 40 × 10 calls for the default
    /// scenario.
    ///
    /// # Errors
    /// The simulator could not be reached or answered something unexpected.
    pub async fn seed(&self) -> Result<SeedData> {
        let customers: wire::Customers = self
            .admin("admin_customers", Method::GET, "/admin/customers", None)
            .await?;
        let items: wire::Items = self.api.get("catalog", "/api/v1/items").await?;
        let locations: wire::Locations = self.api.get("catalog", "/api/v1/locations").await?;
        let calls: Vec<_> = items
            .items
            .iter()
            .map(|item| self.stock_of(format!("/api/v1/availability/{}", encode(&item.sku))))
            .collect();
        let stock: Vec<wire::Availability> = stream::iter(calls)
            .buffered(self.fan_out)
            .try_collect()
            .await?;
        let mut seed_customers = Vec::new();
        for customer in customers.customers {
            let tier = tier(&customer.tier)?;
            let negotiated = if matches!(tier, CustomerTier::Gold | CustomerTier::Silver) {
                self.negotiated_prices(&customer.external_ref, &items.items)
                    .await?
            } else {
                BTreeMap::new()
            };
            seed_customers.push(SeedCustomer {
                number: customer.number,
                account: customer.external_ref,
                name: customer.name,
                tier,
                credit_limit: customer.credit_limit,
                open_balance: customer.open_balance,
                payment_terms: customer.payment_terms,
                region: customer.region,
                on_hold: customer.on_hold,
                negotiated_prices: negotiated,
            });
        }
        let seed_items = items
            .items
            .into_iter()
            .zip(stock)
            .map(|(item, stock)| SeedItem {
                available: stock
                    .locations
                    .iter()
                    .map(|row| (row.location.clone(), row.available))
                    .collect(),
                on_hand: stock
                    .locations
                    .iter()
                    .map(|row| (row.location.clone(), row.on_hand))
                    .collect(),
                sku: item.sku,
                name: item.name,
                uom: item.uom,
                list_price: item.list_price,
                tax_rate: item.tax_rate,
            })
            .collect();
        Ok(SeedData {
            customers: seed_customers,
            items: seed_items,
            locations: locations
                .locations
                .into_iter()
                .map(|l| SeedLocation {
                    code: l.code,
                    name: l.name,
                    kind: l.kind,
                    region: l.region,
                })
                .collect(),
        })
    }

    async fn negotiated_prices(
        &self,
        customer: &str,
        items: &[wire::Item],
    ) -> Result<BTreeMap<String, Decimal>> {
        let calls: Vec<_> = items
            .iter()
            .map(|item| self.quote(json!({ "customer": customer, "sku": item.sku, "quantity": 1 })))
            .collect();
        let quotes: Vec<wire::Quote> = stream::iter(calls)
            .buffered(self.fan_out)
            .try_collect()
            .await?;
        Ok(quotes
            .into_iter()
            .filter_map(|q| q.customer_price.map(|price| (q.sku, price)))
            .collect())
    }

    async fn stock_of(&self, path: String) -> Result<wire::Availability> {
        self.api.get("availability", &path).await
    }

    async fn quote(&self, body: Value) -> Result<wire::Quote> {
        Ok(self
            .api
            .fetch(
                "price_quote",
                Method::POST,
                "/api/v1/price-quotes",
                Some(&body),
                None,
            )
            .await?
            .value)
    }
}
