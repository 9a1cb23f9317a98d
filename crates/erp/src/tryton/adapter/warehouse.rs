//! Warehouse-side helpers for tests and demos: what a warehouse clerk does in Tryton to a
//! customer shipment (assign, pick, pack, ship, done), including shipping part of it.
//!
//! Tryton never splits a shipment in place: when a shipment leaves with less than ordered,
//! re-processing the sale creates a new waiting shipment for the rest (the backorder).

use std::collections::BTreeMap;

use crossdock_domain::ids::{LineNo, LocationId};
use crossdock_ports::Failure;
use crossdock_ports::failure::Result;
use serde_json::{Value, json};

use super::snapshot::{Sale, Shipment};
use super::{Adapter, active};

/// A step of a customer shipment, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShipmentStep {
    /// Reserve the stock (`assign_try`); fails when stock is short.
    Assign,
    /// Move the goods from storage to the output zone.
    Pick,
    /// Pack.
    Pack,
    /// Hand over to the carrier.
    Ship,
    /// Close the shipment (Tryton's `done`).
    Done,
}

impl ShipmentStep {
    fn rank(self) -> u8 {
        match self {
            ShipmentStep::Assign => 2,
            ShipmentStep::Pick => 3,
            ShipmentStep::Pack => 4,
            ShipmentStep::Ship => 5,
            ShipmentStep::Done => 6,
        }
    }
}

fn state_rank(state: &str) -> Option<u8> {
    Some(match state {
        "draft" => 0,
        "waiting" => 1,
        "assigned" => 2,
        "picked" => 3,
        "packed" => 4,
        "shipped" => 5,
        "done" => 6,
        _ => return None,
    })
}

/// A customer shipment as the helpers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentView {
    /// Shipment number.
    pub number: String,
    /// Tryton state (`waiting`, `assigned`, `picked`, `packed`, `shipped`, `done`, `cancelled`).
    pub state: String,
    /// Shipping warehouse.
    pub location: Option<LocationId>,
    /// Units per order line.
    pub lines: Vec<(LineNo, u32)>,
    /// Whether an assignment attempt reserved only part of the goods.
    pub partially_assigned: bool,
}

impl Adapter {
    fn view(&self, sale: &Sale, shipment: &Shipment) -> ShipmentView {
        ShipmentView {
            number: shipment.number.clone(),
            state: shipment.state.clone(),
            location: shipment.warehouse.map(|w| self.location_of(w)),
            lines: sale.shipment_lines(shipment),
            partially_assigned: shipment.partially_assigned,
        }
    }

    /// The customer shipments of an order, oldest first.
    ///
    /// # Errors
    /// A permanent failure for an unknown order; client failures.
    pub async fn shipments_of(&self, erp_ref: &str) -> Result<Vec<ShipmentView>> {
        let sale = self.sale_by_number(erp_ref).await?;
        Ok(sale.shipments.iter().map(|s| self.view(&sale, s)).collect())
    }

    async fn shipment_numbered(&self, number: &str) -> Result<(Sale, Shipment)> {
        let ids = self
            .client
            .search(
                "stock.shipment.out",
                json!([["number", "=", number]]),
                0,
                Some(1),
                None,
                None,
            )
            .await?;
        let id = ids.first().copied().ok_or_else(|| {
            Failure::permanent(format!("Tryton has no customer shipment numbered {number}"))
        })?;
        let sales = self
            .client
            .search(
                "sale.sale",
                json!([["shipments", "in", [id]]]),
                0,
                Some(1),
                None,
                None,
            )
            .await?;
        let sale =
            self.load_sales(&sales).await?.pop().ok_or_else(|| {
                Failure::permanent(format!("shipment {number} belongs to no sale"))
            })?;
        let shipment = sale
            .shipments
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| Failure::unknown(format!("shipment {number} vanished")))?;
        Ok((sale, shipment))
    }

    /// Moves a shipment forward through the steps up to `to` (steps already passed are
    /// skipped) and returns it.
    ///
    /// # Errors
    /// A permanent failure when the stock cannot be reserved or the shipment is cancelled;
    /// Tryton's refusals; client failures.
    pub async fn advance_shipment(&self, number: &str, to: ShipmentStep) -> Result<ShipmentView> {
        let (_, shipment) = self.shipment_numbered(number).await?;
        let mut state = shipment.state.clone();
        for _ in 0..8 {
            let rank = state_rank(&state).ok_or_else(|| {
                Failure::permanent(format!("shipment {number} is {state}; it cannot move on"))
            })?;
            if rank >= to.rank() {
                break;
            }
            let button = match state.as_str() {
                "draft" => "wait",
                "waiting" => "assign_try",
                "assigned" => "pick",
                "picked" => "pack",
                "packed" => "ship",
                _ => "do",
            };
            self.client
                .button("stock.shipment.out", button, &[shipment.id], None)
                .await?;
            let records = self
                .client
                .read("stock.shipment.out", &[shipment.id], &["state"], None)
                .await?;
            let next = records
                .first()
                .ok_or_else(|| Failure::unknown(format!("shipment {number} vanished")))?
                .str("state")?
                .to_owned();
            if next == state {
                return Err(Failure::permanent(format!(
                    "shipment {number} stays {state} after `{button}`{}",
                    if button == "assign_try" {
                        ": not enough stock to reserve it all"
                    } else {
                        ""
                    }
                )));
            }
            state = next;
        }
        let (sale, shipment) = self.shipment_numbered(number).await?;
        Ok(self.view(&sale, &shipment))
    }

    /// Ships only `lines` (units per order line; lines not listed ship nothing) of a
    /// waiting shipment and closes it; Tryton then opens a new shipment for the rest.
    ///
    /// # Errors
    /// A permanent failure when the shipment is not waiting or a line asks for more than it
    /// holds; as [`Adapter::advance_shipment`].
    pub async fn ship_partial(
        &self,
        number: &str,
        lines: &[(LineNo, u32)],
    ) -> Result<ShipmentView> {
        let (sale, shipment) = self.shipment_numbered(number).await?;
        if shipment.state != "waiting" {
            return Err(Failure::permanent(format!(
                "shipment {number} is {}; only a waiting shipment can be shipped in part",
                shipment.state
            )));
        }
        let wanted: BTreeMap<LineNo, u32> = lines.iter().copied().collect();
        for mv in shipment.inventory.iter().filter(|m| m.state != "cancelled") {
            let line = shipment
                .outgoing
                .iter()
                .find(|o| Some(o.id) == mv.feeds)
                .and_then(|o| sale.lines.iter().find(|l| Some(l.id) == o.sale_line));
            let Some(line) = line else { continue };
            let units = wanted.get(&line.line).copied().unwrap_or(0);
            if i64::from(units) > mv.quantity {
                return Err(Failure::permanent(format!(
                    "shipment {number} line {}: cannot ship {units}, it holds {}",
                    line.line, mv.quantity
                )));
            }
            if i64::from(units) != mv.quantity {
                self.client
                    .write(
                        "stock.move",
                        &[mv.id],
                        json!({"quantity": f64::from(units)}),
                        None,
                    )
                    .await?;
            }
        }
        self.advance_shipment(number, ShipmentStep::Done).await
    }

    /// Reserves what the stock allows, leaves the rest for a later shipment (Tryton's
    /// assignment wizard, "ignore") and ships it to the end.
    ///
    /// # Errors
    /// As [`Adapter::advance_shipment`].
    pub async fn ship_available(&self, number: &str) -> Result<ShipmentView> {
        const WIZARD: &str = "stock.shipment.assign";
        let (_, shipment) = self.shipment_numbered(number).await?;
        if shipment.state == "waiting" {
            self.client
                .button("stock.shipment.out", "assign_try", &[shipment.id], None)
                .await?;
            let (_, after) = self.shipment_numbered(number).await?;
            if after.state == "waiting" {
                let context = active("stock.shipment.out", shipment.id);
                let session = self.client.wizard_create(WIZARD, Some(&context)).await?;
                let outcome = async {
                    let start = self
                        .client
                        .wizard_execute(
                            WIZARD,
                            &session,
                            json!({}),
                            &session.start_state,
                            Some(&context),
                        )
                        .await?;
                    let view = start.get("view").ok_or_else(|| {
                        Failure::unknown(format!(
                            "the assignment wizard of {number} opened no form"
                        ))
                    })?;
                    let form_name = view
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("partial")
                        .to_owned();
                    let form: serde_json::Map<String, Value> = view
                        .get("defaults")
                        .and_then(Value::as_object)
                        .map(|d| {
                            d.iter()
                                .filter(|(k, _)| !k.ends_with('.'))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    self.client
                        .wizard_execute(
                            WIZARD,
                            &session,
                            json!({ form_name: form }),
                            "ignore",
                            Some(&context),
                        )
                        .await?;
                    Ok::<(), Failure>(())
                }
                .await;
                if let Err(error) = self
                    .client
                    .wizard_delete(WIZARD, &session, Some(&context))
                    .await
                {
                    tracing::debug!(%error, "Could not delete a finished Tryton wizard session.");
                }
                outcome?;
            }
        }
        self.advance_shipment(number, ShipmentStep::Done).await
    }
}

/// Customer shipment states a warehouse still has work on.
const OPEN_STATES: [&str; 5] = ["waiting", "assigned", "picked", "packed", "shipped"];

/// A customer shipment on the warehouse's work list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenShipment {
    /// Tryton id.
    pub id: i64,
    /// Shipment number.
    pub number: String,
    /// Tryton state (`waiting`, `assigned`, `picked`, `packed` or `shipped`).
    pub state: String,
    /// Whether an assignment attempt reserved only part of the goods.
    pub partially_assigned: bool,
}

/// A customer invoice of an order whose goods have all left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueInvoice {
    /// Tryton id.
    pub id: i64,
    /// Number, once posted.
    pub number: Option<String>,
    /// `draft`, `validated` or `posted`.
    pub state: String,
    /// What the customer still owes on it.
    pub amount_to_pay: rust_decimal::Decimal,
}

/// Units a warehouse restocked for a shipment: (Tryton product id, units).
pub type Restocked = Vec<(i64, i64)>;

impl Adapter {
    /// The customer shipments with work left (waiting to shipped) of the sales whose
    /// reference matches `reference_like` (an SQL `LIKE` pattern), oldest first.
    ///
    /// # Errors
    /// Client failures.
    pub async fn open_shipments(&self, reference_like: &str) -> Result<Vec<OpenShipment>> {
        let records = self
            .client
            .search_read(
                "stock.shipment.out",
                json!([
                    ["state", "in", OPEN_STATES],
                    ["moves.sale.reference", "like", reference_like],
                ]),
                0,
                None,
                Some(json!([["id", "ASC"]])),
                &["number", "state", "partially_assigned"],
                None,
            )
            .await?;
        let mut open = Vec::with_capacity(records.len());
        for record in &records {
            let id = record.id()?;
            open.push(OpenShipment {
                id,
                number: record
                    .opt_str("number")?
                    .map_or_else(|| format!("shipment-{id}"), str::to_owned),
                state: record.str("state")?.to_owned(),
                partially_assigned: record.bool("partially_assigned")?,
            });
        }
        Ok(open)
    }

    /// Takes one step on several customer shipments at once, as a clerk working through a
    /// wave: `Assign` tries to reserve waiting shipments (those short of stock stay
    /// waiting), the other steps press their button on shipments in the state before it.
    /// One Tryton transaction: if Tryton refuses one shipment, none moves.
    ///
    /// # Errors
    /// Tryton's refusals; client failures.
    pub async fn step_shipments(&self, ids: &[i64], step: ShipmentStep) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let button = match step {
            ShipmentStep::Assign => "assign_try",
            ShipmentStep::Pick => "pick",
            ShipmentStep::Pack => "pack",
            ShipmentStep::Ship => "ship",
            ShipmentStep::Done => "do",
        };
        self.client
            .button("stock.shipment.out", button, ids, None)
            .await
            .map(drop)
            .map_err(Failure::from)
    }

    /// Receives a supplier delivery covering what a waiting shipment cannot reserve: for
    /// each of its inventory moves not reserved yet, the storage location's count goes up
    /// by the move's units (a confirmed `stock.inventory`, as in a stock count). Returns
    /// what was added.
    ///
    /// # Errors
    /// A permanent failure when the shipment is not waiting; client failures.
    pub async fn restock_for(&self, shipment: i64) -> Result<Restocked> {
        let records = self
            .client
            .read(
                "stock.shipment.out",
                &[shipment],
                &["state", "inventory_moves"],
                None,
            )
            .await?;
        let record = records
            .first()
            .ok_or_else(|| Failure::unknown(format!("shipment {shipment} vanished")))?;
        let state = record.str("state")?;
        if state != "waiting" {
            return Err(Failure::permanent(format!(
                "shipment {shipment} is {state}; only a waiting shipment lacks stock"
            )));
        }
        let moves = self
            .client
            .read(
                "stock.move",
                &record.ids("inventory_moves")?,
                &["product", "quantity", "state", "from_location"],
                None,
            )
            .await?;
        // (location, product) → units missing.
        let mut missing: BTreeMap<(i64, i64), i64> = BTreeMap::new();
        for mv in &moves {
            if mv.str("state")? != "draft" {
                continue;
            }
            let units = Self::units("stock move", mv.float("quantity")?)?;
            *missing
                .entry((mv.int("from_location")?, mv.int("product")?))
                .or_default() += units;
        }
        let mut added = Vec::new();
        let locations: std::collections::BTreeSet<i64> = missing.keys().map(|(l, _)| *l).collect();
        for location in locations {
            let wanted: Vec<(i64, i64)> = missing
                .iter()
                .filter(|((l, _), units)| *l == location && **units > 0)
                .map(|((_, p), units)| (*p, *units))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let products: Vec<i64> = wanted.iter().map(|(p, _)| *p).collect();
            let context = super::ctx([
                ("locations", json!([location])),
                (
                    "stock_date_end",
                    crate::tryton::value::date(self.clock.now().date()),
                ),
            ]);
            let on_hand = self
                .client
                .read("product.product", &products, &["quantity"], Some(&context))
                .await?;
            let mut lines = Vec::new();
            for ((product, units), record) in wanted.iter().zip(&on_hand) {
                let now = Self::units("on-hand stock", record.float("quantity")?)?;
                lines.push(json!({"product": product, "quantity": (now + units) as f64}));
                added.push((*product, *units));
            }
            let inventory = self
                .client
                .create(
                    "stock.inventory",
                    vec![json!({"location": location, "lines": [["create", lines]]})],
                    None,
                )
                .await?;
            self.client
                .button("stock.inventory", "confirm", &inventory, None)
                .await?;
        }
        Ok(added)
    }

    /// The customer invoices (not credit notes) still to post or to be paid of the sales
    /// whose reference matches `reference_like` and whose goods have all left.
    ///
    /// # Errors
    /// Client failures.
    pub async fn invoices_due(&self, reference_like: &str) -> Result<Vec<DueInvoice>> {
        let ids = self
            .ids_of_sales(
                json!([
                    ["reference", "like", reference_like],
                    ["shipment_state", "=", "sent"],
                    [
                        "invoice_state",
                        "in",
                        ["pending", "awaiting payment", "partially paid"]
                    ],
                ]),
                "invoices",
            )
            .await?;
        let invoices = self
            .client
            .read(
                "account.invoice",
                &ids,
                &["number", "state", "total_amount", "amount_to_pay"],
                None,
            )
            .await?;
        let mut due = Vec::new();
        for invoice in &invoices {
            let state = invoice.str("state")?;
            if !matches!(state, "draft" | "validated" | "posted")
                || invoice.decimal("total_amount")? <= rust_decimal::Decimal::ZERO
            {
                continue;
            }
            due.push(DueInvoice {
                id: invoice.id()?,
                number: invoice.opt_str("number")?.map(str::to_owned),
                state: state.to_owned(),
                amount_to_pay: invoice.opt_decimal("amount_to_pay")?.unwrap_or_default(),
            });
        }
        Ok(due)
    }

    /// Posts invoices (Tryton numbers them and the customer owes them).
    ///
    /// # Errors
    /// Tryton's refusals; client failures.
    pub async fn post_invoices(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Posting needs a fresh session; the client logs in again on the 401.
        self.client
            .button("account.invoice", "post", ids, None)
            .await
            .map(drop)
            .map_err(Failure::from)
    }

    /// Records the customer's payment of a posted invoice's full amount due with the
    /// configured payment method (Tryton's `account.invoice.pay` wizard).
    ///
    /// # Errors
    /// An unknown failure when the wizard does not settle the invoice; Tryton's refusals;
    /// client failures.
    pub async fn record_payment(&self, invoice: i64, description: &str) -> Result<()> {
        self.pay(invoice, description, &format!("invoice {invoice}"))
            .await
    }

    /// Receives and puts away the goods of every return shipment not done yet of the
    /// return sales whose reference matches `reference_like`; returns their numbers.
    ///
    /// # Errors
    /// Tryton's refusals; client failures.
    pub async fn receive_returns(&self, reference_like: &str) -> Result<Vec<String>> {
        let ids = self
            .ids_of_sales(
                json!([
                    ["reference", "like", reference_like],
                    ["shipment_returns.state", "in", ["draft", "received"]],
                ]),
                "shipment_returns",
            )
            .await?;
        let shipments = self
            .client
            .read(
                "stock.shipment.out.return",
                &ids,
                &["number", "state"],
                None,
            )
            .await?;
        let mut received = Vec::new();
        for shipment in &shipments {
            let id = shipment.id()?;
            let mut state = shipment.str("state")?.to_owned();
            if state == "draft" {
                self.client
                    .button("stock.shipment.out.return", "receive", &[id], None)
                    .await?;
                state = "received".to_owned();
            }
            if state == "received" {
                self.client
                    .button("stock.shipment.out.return", "do", &[id], None)
                    .await?;
                received.push(
                    shipment
                        .opt_str("number")?
                        .map_or_else(|| format!("return-shipment-{id}"), str::to_owned),
                );
            }
        }
        Ok(received)
    }

    /// Sales per reference among the sales whose reference matches `reference_like`:
    /// (reference, Tryton ids oldest first). More than one id means the order was booked
    /// more than once.
    ///
    /// # Errors
    /// Client failures.
    pub async fn sales_by_reference(
        &self,
        reference_like: &str,
    ) -> Result<BTreeMap<String, Vec<i64>>> {
        let records = self
            .client
            .search_read(
                "sale.sale",
                json!([["reference", "like", reference_like]]),
                0,
                None,
                Some(json!([["id", "ASC"]])),
                &["reference"],
                None,
            )
            .await?;
        let mut by_reference: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for record in &records {
            if let Some(reference) = record.opt_str("reference")? {
                by_reference
                    .entry(reference.to_owned())
                    .or_default()
                    .push(record.id()?);
            }
        }
        Ok(by_reference)
    }

    /// The records a one-to-many `field` of the sales matching `domain` points to (oldest
    /// sale first).
    async fn ids_of_sales(&self, domain: Value, field: &str) -> Result<Vec<i64>> {
        let sales = self
            .client
            .search_read(
                "sale.sale",
                domain,
                0,
                None,
                Some(json!([["id", "ASC"]])),
                &[field],
                None,
            )
            .await?;
        let mut ids = Vec::new();
        for sale in &sales {
            ids.extend(sale.ids(field)?);
        }
        Ok(ids)
    }
}
