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
