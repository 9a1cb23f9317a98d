//! [`SimWarehouse`]: the conformance driver for the ERP simulator, over its admin API and
//! manual clock. The simulator's warehouse ships whole allocations on its own as simulated
//! time passes, so "ship N units now" means: receive the missing units (a stock count, which
//! allocates waiting backorders), check that exactly N units wait to ship, and move the clock
//! until they have shipped.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_ports::Failure;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::json;

use super::{Seeds, Warehouse};
use crate::rest::http::encode;
use crate::sim::client::hub_line;
use crate::sim::{Admin, Config, wire};

/// Simulated minutes per clock step while waiting for the warehouse.
const STEP_MS: i64 = 30 * 60_000;
/// Most clock steps for one shipment (two simulated days).
const MAX_STEPS: usize = 96;

/// Units of the plenty item put at the seeds' location.
const PLENTY: u64 = 100_000;
/// Units of the scarce item put at the seeds' location.
const SCARCE: u64 = 5;

/// The simulator's warehouse staff.
#[derive(Debug)]
pub struct SimWarehouse {
    admin: Admin,
    seeds: Seeds,
}

impl SimWarehouse {
    /// Prepares the seed records in a simulator (customers with a large and a tight credit
    /// limit and one with a negotiated price, stock of a plenty and a scarce item at the
    /// first warehouse) and returns the driver. The simulator must run on the manual clock.
    ///
    /// # Errors
    /// The simulator could not be reached or refused a step.
    pub async fn prepare(config: &Config) -> Result<Self, Failure> {
        let admin = Admin::new(config)?;
        let api = admin.api();
        for (reference, name, limit) in [
            ("CONF-GOOD", "Conformance Good Standing Co.", "1000000.00"),
            ("CONF-TIGHT", "Conformance Tight Credit Boutique", "100.00"),
            (
                "CONF-NEGOTIATED",
                "Conformance Partner Retail",
                "1000000.00",
            ),
        ] {
            let body = json!({ "name": name, "tier": "Gold", "credit_limit": limit, "payment_terms": "NET30" });
            api.call(
                "upsert_customer",
                Method::PUT,
                &format!("/api/v1/customers/{reference}"),
                Some(&body),
                None,
            )
            .await?;
        }
        let locations: wire::Locations = api.get("catalog", "/api/v1/locations").await?;
        let location = locations
            .locations
            .iter()
            .find(|l| l.kind == "warehouse")
            .map(|l| l.code.clone())
            .ok_or_else(|| Failure::permanent("the simulator has no warehouse"))?;
        let items: wire::Items = api.get("catalog", "/api/v1/items").await?;
        let [plenty, scarce, negotiated, ..] = items.items.as_slice() else {
            return Err(Failure::permanent(
                "the simulator needs at least three items",
            ));
        };
        admin.set_stock(&plenty.sku, &location, PLENTY).await?;
        admin.set_stock(&scarce.sku, &location, SCARCE).await?;
        let price = (negotiated.list_price * Decimal::new(85, 2)).round_dp(2);
        admin
            .set_customer_price("CONF-NEGOTIATED", &negotiated.sku, price)
            .await?;
        let quote: wire::Quote = api
            .fetch(
                "price_quote",
                Method::POST,
                "/api/v1/price-quotes",
                Some(&json!({ "customer": "CONF-GOOD", "sku": plenty.sku, "quantity": 1 })),
                None,
            )
            .await?
            .value;
        let currency = quote
            .currency
            .parse()
            .map_err(|e| Failure::unknown(format!("price_quote: answer field `currency`: {e}")))?;
        let seeds = Seeds {
            good_customer: AccountId::new("CONF-GOOD"),
            tight_customer: AccountId::new("CONF-TIGHT"),
            negotiated_customer: AccountId::new("CONF-NEGOTIATED"),
            negotiated_item: Sku::new(negotiated.sku.clone()),
            plenty_item: Sku::new(plenty.sku.clone()),
            scarce_item: Sku::new(scarce.sku.clone()),
            location: LocationId::new(location),
            currency,
        };
        Ok(Self { admin, seeds })
    }

    /// The admin client.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    async fn order(&self, erp_ref: &str) -> Result<wire::Order, String> {
        self.admin
            .api()
            .get("get_order", &format!("/api/v1/orders/{}", encode(erp_ref)))
            .await
            .map_err(|f| f.to_string())
    }

    async fn on_hand(&self, sku: &str, location: &str) -> Result<u64, String> {
        let page: wire::Availability = self
            .admin
            .api()
            .get(
                "availability",
                &format!(
                    "/api/v1/availability/{}?location={}",
                    encode(sku),
                    encode(location)
                ),
            )
            .await
            .map_err(|f| f.to_string())?;
        Ok(page
            .locations
            .iter()
            .map(|row| u64::try_from(row.on_hand).unwrap_or(0))
            .sum())
    }
}

fn find_line(order: &wire::Order, line: LineNo) -> Result<&wire::OrderLine, String> {
    order
        .lines
        .iter()
        .find(|l| hub_line(l.line, l.line_ref.as_deref()) == line.0)
        .ok_or_else(|| format!("order {} has no line {line}", order.number))
}

#[async_trait]
impl Warehouse for SimWarehouse {
    fn seeds(&self) -> &Seeds {
        &self.seeds
    }

    async fn ship(&self, erp_ref: &str, line: LineNo, quantity: u32) -> Result<(), String> {
        let order = self.order(erp_ref).await?;
        let current = find_line(&order, line)?;
        let shipped_before = current.shipped;
        let waiting = current.allocated - current.shipped;
        if quantity > waiting {
            // Receive what is missing where the line waits for it; the stock count
            // allocates the backorder and the simulator opens a new shipment.
            let missing = quantity - waiting;
            let (location, backordered) = current
                .backordered_at
                .iter()
                .next()
                .map(|(l, q)| (l.clone(), *q))
                .ok_or_else(|| {
                    format!("line {line} of {erp_ref} has only {waiting} units to ship and none backordered")
                })?;
            if backordered < missing {
                return Err(format!(
                    "line {line} of {erp_ref}: {quantity} units asked, {waiting} allocated and {backordered} backordered"
                ));
            }
            let on_hand = self.on_hand(&current.sku, &location).await?;
            self.admin
                .set_stock(&current.sku, &location, on_hand + u64::from(missing))
                .await
                .map_err(|f| f.to_string())?;
        }
        let order = self.order(erp_ref).await?;
        let current = find_line(&order, line)?;
        let waiting = current.allocated - current.shipped;
        if waiting != quantity {
            return Err(format!(
                "the simulator ships whole allocations: {waiting} units of line {line} of {erp_ref} wait to ship, not {quantity}"
            ));
        }
        for _ in 0..MAX_STEPS {
            self.admin
                .advance_clock(STEP_MS)
                .await
                .map_err(|f| f.to_string())?;
            let order = self.order(erp_ref).await?;
            if find_line(&order, line)?.shipped >= shipped_before + quantity {
                return Ok(());
            }
        }
        Err(format!(
            "line {line} of {erp_ref} did not ship within two simulated days"
        ))
    }

    async fn deliver(&self, erp_ref: &str) -> Result<(), String> {
        for _ in 0..MAX_STEPS * 4 {
            let order = self.order(erp_ref).await?;
            if order.lines.iter().all(|l| l.delivered >= l.shipped) {
                return Ok(());
            }
            self.admin
                .advance_clock(STEP_MS)
                .await
                .map_err(|f| f.to_string())?;
        }
        Err(format!(
            "{erp_ref} was not delivered within eight simulated days"
        ))
    }

    async fn receive_return(&self, erp_rma: &str, lines: &[(LineNo, u32)]) -> Result<(), String> {
        let api = self.admin.api();
        let rma: wire::Rma = api
            .get("get_rma", &format!("/api/v1/rmas/{}", encode(erp_rma)))
            .await
            .map_err(|f| f.to_string())?;
        let order = self.order(&rma.order).await?;
        let to_sim: BTreeMap<u32, u32> = order
            .lines
            .iter()
            .map(|l| (hub_line(l.line, l.line_ref.as_deref()), l.line))
            .collect();
        let body_lines = lines
            .iter()
            .map(|(line, quantity)| {
                to_sim
                    .get(&line.0)
                    .map(|sim| json!({ "line": sim, "quantity": quantity }))
                    .ok_or_else(|| format!("order {} has no line {line}", order.number))
            })
            .collect::<Result<Vec<_>, String>>()?;
        api.call(
            "receive_return",
            Method::POST,
            &format!("/api/v1/rmas/{}/receipts", encode(erp_rma)),
            Some(&json!({ "lines": body_lines })),
            None,
        )
        .await
        .map_err(|f| f.to_string())?;
        Ok(())
    }

    async fn sales_with_reference(&self, reference: &str) -> Result<usize, String> {
        let stats = self.admin.stats().await.map_err(|f| f.to_string())?;
        Ok(stats.bookings.get(reference).map_or(0, |b| {
            usize::try_from(b.orders_created).unwrap_or(usize::MAX)
        }))
    }
}
