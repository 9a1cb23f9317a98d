//! [`TrytonWarehouse`]: the conformance driver for a real Tryton server, with the Tryton
//! adapter's warehouse helpers (shipments moved through assign, pick, pack, ship and done;
//! part of a shipment shipped, the rest left to the backorder Tryton opens) and its return
//! receipt. Missing stock is received with a confirmed stock inventory, as a clerk would.
//!
//! The seeds are those `scripts/setup/tryton.sh` loads: `ACC-0001` (good standing),
//! `ACC-0003` (100.00 credit limit), `ACC-0002` (a -10 % price list), `SKU-0010` (500 in the
//! first warehouse), `SKU-0002` (5 in the first warehouse).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_ports::{Clock, Erp, Failure, SystemClock};
use serde_json::json;

use super::{Seeds, Warehouse};
use crate::tryton::{Adapter, Config, ShipmentStep};

/// The command that starts the local Tryton server the tests use.
pub const SETUP_SCRIPT: &str = "scripts/setup/tryton.sh";

/// Tryton's warehouse staff.
pub struct TrytonWarehouse {
    adapter: Arc<Adapter>,
    seeds: Seeds,
}

impl std::fmt::Debug for TrytonWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrytonWarehouse")
            .field("seeds", &self.seeds)
            .finish_non_exhaustive()
    }
}

impl TrytonWarehouse {
    /// Connects the Tryton adapter with the server named in `env_file` (the `.tryton/env`
    /// that the setup script writes) and returns it with the driver.
    ///
    /// # Errors
    /// A message naming the setup script when the file is missing, or why the connection
    /// failed.
    pub async fn connect(env_file: &Path) -> Result<(Arc<Adapter>, Self), String> {
        if !env_file.is_file() {
            return Err(format!(
                "{} is missing: run {SETUP_SCRIPT} to install and start the local Tryton server",
                env_file.display()
            ));
        }
        let config = Config::from_env_file(env_file)
            .map_err(|e| format!("{}: {e} (run {SETUP_SCRIPT})", env_file.display()))?;
        let location = config
            .warehouses
            .first()
            .map(|w| w.location.clone())
            .ok_or_else(|| format!("{}: no warehouse configured", env_file.display()))?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let adapter = Arc::new(Adapter::connect(config, clock).await.map_err(|e| {
            format!("cannot connect to Tryton: {e} (is it running? {SETUP_SCRIPT} starts it)")
        })?);
        let seeds = Seeds {
            good_customer: AccountId::new("ACC-0001"),
            tight_customer: AccountId::new("ACC-0003"),
            negotiated_customer: AccountId::new("ACC-0002"),
            negotiated_item: Sku::new("SKU-0010"),
            plenty_item: Sku::new("SKU-0010"),
            scarce_item: Sku::new("SKU-0002"),
            location: LocationId::new(location),
            currency: adapter.currency(),
        };
        let driver = Self {
            adapter: adapter.clone(),
            seeds,
        };
        Ok((adapter, driver))
    }

    /// Receives `units` more of `sku` into the storage of the seeds' warehouse with a
    /// confirmed stock inventory.
    async fn receive_stock(&self, sku: &Sku, units: u32) -> Result<(), Failure> {
        let client = self.adapter.client();
        let warehouse = self
            .adapter
            .config()
            .warehouse_named(self.seeds.location.as_str())
            .map(|w| w.id)
            .ok_or_else(|| Failure::permanent(format!("no warehouse {}", self.seeds.location)))?;
        let storage = client
            .read("stock.location", &[warehouse], &["storage_location"], None)
            .await?
            .first()
            .ok_or_else(|| Failure::unknown(format!("warehouse {warehouse} vanished")))?
            .int("storage_location")?;
        let product = client
            .search(
                "product.product",
                json!([["code", "=", sku.as_str()]]),
                0,
                Some(1),
                None,
                None,
            )
            .await?
            .first()
            .copied()
            .ok_or_else(|| Failure::permanent(format!("Tryton has no product {sku}")))?;
        let mut context = serde_json::Map::new();
        context.insert("locations".to_owned(), json!([storage]));
        let on_hand = client
            .read("product.product", &[product], &["quantity"], Some(&context))
            .await?
            .first()
            .ok_or_else(|| Failure::unknown(format!("product {sku} vanished")))?
            .float("quantity")?;
        let counted = on_hand.max(0.0) + f64::from(units);
        let inventory = client
            .create(
                "stock.inventory",
                vec![json!({
                    "location": storage,
                    "lines": [["create", [{ "product": product, "quantity": counted }]]],
                })],
                None,
            )
            .await?;
        client
            .button("stock.inventory", "confirm", &inventory, None)
            .await?;
        Ok(())
    }

    async fn ship_now(&self, erp_ref: &str, line: LineNo, quantity: u32) -> Result<(), String> {
        match self.ship_once(erp_ref, line, quantity).await {
            Ok(()) => Ok(()),
            Err(first) if first.message.contains("not enough stock") => {
                // A clerk receives the missing goods and tries again.
                let read = self
                    .adapter
                    .order(erp_ref)
                    .await
                    .map_err(|f| f.to_string())?;
                let sku = read
                    .lines
                    .iter()
                    .find(|l| l.line == line)
                    .map(|l| l.sku.clone())
                    .ok_or_else(|| format!("{erp_ref} has no line {line}"))?;
                self.receive_stock(&sku, quantity)
                    .await
                    .map_err(|f| format!("receiving {quantity} of {sku}: {f}"))?;
                self.ship_once(erp_ref, line, quantity)
                    .await
                    .map_err(|f| format!("{f} (after receiving stock; first try: {first})"))
            }
            Err(failure) => Err(failure.to_string()),
        }
    }

    /// Posts the order's draft invoices, as accounting does once goods have left.
    async fn post_invoices(&self, erp_ref: &str) -> Result<(), Failure> {
        let client = self.adapter.client();
        let sales = client
            .search(
                "sale.sale",
                json!([["number", "=", erp_ref]]),
                0,
                Some(1),
                None,
                None,
            )
            .await?;
        let invoices = client
            .read("sale.sale", &sales, &["invoices"], None)
            .await?;
        let ids: Vec<i64> = match invoices.first() {
            Some(sale) => sale.ids("invoices")?,
            None => return Err(Failure::permanent(format!("Tryton has no sale {erp_ref}"))),
        };
        let states = client
            .read("account.invoice", &ids, &["state"], None)
            .await?;
        let mut drafts = Vec::new();
        for invoice in &states {
            if invoice.str("state")? == "draft" {
                drafts.push(invoice.id()?);
            }
        }
        if !drafts.is_empty() {
            client
                .button("account.invoice", "post", &drafts, None)
                .await?;
        }
        Ok(())
    }

    async fn ship_once(&self, erp_ref: &str, line: LineNo, quantity: u32) -> Result<(), Failure> {
        let shipments = self.adapter.shipments_of(erp_ref).await?;
        let waiting = shipments
            .iter()
            .find(|s| {
                s.state == "waiting"
                    && s.lines.iter().any(|(l, units)| *l == line && *units >= quantity)
            })
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "{erp_ref} has no waiting shipment holding {quantity} units of line {line}: {shipments:?}"
                ))
            })?;
        let holds = waiting
            .lines
            .iter()
            .filter(|(l, _)| *l == line)
            .map(|(_, units)| *units)
            .sum::<u32>();
        let others: Vec<(LineNo, u32)> = waiting
            .lines
            .iter()
            .filter(|(l, _)| *l != line)
            .map(|(l, _)| (*l, 0))
            .collect();
        if holds == quantity && others.is_empty() {
            self.adapter
                .advance_shipment(&waiting.number, ShipmentStep::Done)
                .await?;
        } else {
            let mut lines = vec![(line, quantity)];
            lines.extend(others);
            self.adapter.ship_partial(&waiting.number, &lines).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Warehouse for TrytonWarehouse {
    fn seeds(&self) -> &Seeds {
        &self.seeds
    }

    async fn ship(&self, erp_ref: &str, line: LineNo, quantity: u32) -> Result<(), String> {
        self.ship_now(erp_ref, line, quantity).await?;
        self.post_invoices(erp_ref)
            .await
            .map_err(|f| format!("posting the invoices of {erp_ref}: {f}"))
    }

    async fn deliver(&self, erp_ref: &str) -> Result<(), String> {
        let shipments = self
            .adapter
            .shipments_of(erp_ref)
            .await
            .map_err(|f| f.to_string())?;
        for shipment in shipments
            .iter()
            .filter(|s| matches!(s.state.as_str(), "packed" | "shipped"))
        {
            self.adapter
                .advance_shipment(&shipment.number, ShipmentStep::Done)
                .await
                .map_err(|f| f.to_string())?;
        }
        Ok(())
    }

    async fn receive_return(&self, erp_rma: &str, lines: &[(LineNo, u32)]) -> Result<(), String> {
        let key = format!("{erp_rma}/warehouse-receipt");
        self.adapter
            .receive_return(erp_rma, lines, &key)
            .await
            .map(drop)
            .map_err(|f| f.to_string())
    }

    async fn sales_with_reference(&self, reference: &str) -> Result<usize, String> {
        let ids = self
            .adapter
            .client()
            .search(
                "sale.sale",
                json!([["reference", "=", reference]]),
                0,
                None,
                None,
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(ids.len())
    }
}
