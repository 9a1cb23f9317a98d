//! Everything about a set of sales in a fixed number of calls: the sales, their lines,
//! shipments, return shipments, stock moves, invoices and invoice lines. The order read,
//! cancellation, returns and the change feed all work on these snapshots, and the
//! mapping of Tryton states to the port's types lives here.

use std::collections::{BTreeMap, HashMap};

use crossdock_domain::ids::{LineNo, OrderId, Sku};
use crossdock_domain::order::Milestone;
use crossdock_ports::Failure;
use crossdock_ports::erp::{ErpInvoice, ErpLine, ErpOrder, ErpShipment, ReturnReceipt};
use crossdock_ports::failure::Result;
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;

use super::{Adapter, line_no, to_u32};
use crate::tryton::value::Record;

/// A sale line.
#[derive(Debug, Clone)]
pub(super) struct SaleLine {
    pub id: i64,
    pub line: LineNo,
    pub product: i64,
    pub sku: Sku,
    /// Negative on returns.
    pub quantity: i64,
    pub unit: i64,
    pub unit_price: Decimal,
    pub taxes: Vec<i64>,
}

/// A stock move of a shipment.
#[derive(Debug, Clone)]
pub(super) struct Move {
    pub id: i64,
    /// The sale line it fulfils (outgoing and incoming moves).
    pub sale_line: Option<i64>,
    /// The move it feeds (inventory moves point at their outgoing move).
    pub feeds: Option<i64>,
    pub quantity: i64,
    pub state: String,
}

/// A customer shipment (`stock.shipment.out`).
#[derive(Debug, Clone)]
pub(super) struct Shipment {
    pub id: i64,
    pub number: String,
    pub state: String,
    pub warehouse: Option<i64>,
    pub partially_assigned: bool,
    pub outgoing: Vec<Move>,
    pub inventory: Vec<Move>,
    pub modified: OffsetDateTime,
}

/// A customer return shipment (`stock.shipment.out.return`).
#[derive(Debug, Clone)]
pub(super) struct ReturnShipment {
    pub id: i64,
    pub number: String,
    pub state: String,
    pub reference: Option<String>,
    pub incoming: Vec<Move>,
    pub modified: OffsetDateTime,
}

/// An invoice or credit note.
#[derive(Debug, Clone)]
pub(super) struct Invoice {
    pub id: i64,
    pub number: Option<String>,
    pub state: String,
    pub reference: Option<String>,
    pub untaxed: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub amount_to_pay: Decimal,
    pub payment_lines: Vec<i64>,
    pub invoice_date: Option<time::Date>,
    /// (sale line id, quantity).
    pub lines: Vec<(Option<i64>, i64)>,
    pub modified: OffsetDateTime,
}

/// A sale with everything attached.
#[derive(Debug, Clone)]
pub(super) struct Sale {
    pub id: i64,
    pub number: Option<String>,
    pub reference: Option<String>,
    pub state: String,
    pub shipment_state: String,
    pub invoice_state: String,
    pub party: i64,
    pub warehouse: Option<i64>,
    pub invoice_address: Option<i64>,
    pub shipment_address: Option<i64>,
    pub payment_term: Option<i64>,
    pub origin: Option<(String, i64)>,
    pub modified: OffsetDateTime,
    pub lines: Vec<SaleLine>,
    pub shipments: Vec<Shipment>,
    pub returns: Vec<ReturnShipment>,
    pub invoices: Vec<Invoice>,
}

const SALE_FIELDS: [&str; 16] = [
    "number",
    "reference",
    "state",
    "shipment_state",
    "invoice_state",
    "party",
    "warehouse",
    "invoice_address",
    "shipment_address",
    "payment_term",
    "origin",
    "last_modified_at",
    "lines",
    "shipments",
    "shipment_returns",
    "invoices",
];

/// Milestone a shipment state has reached, if any.
pub(super) fn milestone(state: &str) -> Option<Milestone> {
    match state {
        "picked" => Some(Milestone::Picked),
        "packed" => Some(Milestone::Packed),
        "shipped" => Some(Milestone::Shipped),
        // Tryton's last step: the goods left and the shipment is closed.
        "done" => Some(Milestone::Delivered),
        _ => None,
    }
}

/// Shipment states in which the goods are reserved or beyond.
fn allocated_state(state: &str) -> bool {
    matches!(state, "assigned" | "picked" | "packed" | "shipped" | "done")
}

impl Sale {
    /// A return: a sale created from another sale (or from a complaint).
    pub fn is_return(&self) -> bool {
        self.origin
            .as_ref()
            .is_some_and(|(model, _)| model == "sale.sale" || model == "sale.complaint")
    }

    /// Cancelled: before confirmation (`cancelled`), or after it by cancelling every
    /// shipment and invoice (the sale then ends `done` with nothing shipped or invoiced).
    pub fn is_cancelled(&self) -> bool {
        self.state == "cancelled"
            || (self.state == "done"
                && self.shipment_state == "none"
                && self.invoice_state == "none")
    }

    /// Booked: confirmed and processed.
    pub fn is_booked(&self) -> bool {
        matches!(self.state.as_str(), "processing" | "done") && !self.is_cancelled()
    }

    pub fn number_or_id(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| format!("sale-{}", self.id))
    }

    pub fn order_id(&self) -> OrderId {
        OrderId::new(
            self.reference
                .clone()
                .unwrap_or_else(|| self.number_or_id()),
        )
    }

    fn line_of(&self, sale_line: Option<i64>) -> Option<&SaleLine> {
        sale_line.and_then(|id| self.lines.iter().find(|l| l.id == id))
    }

    /// Units per line on a shipment's outgoing moves (cancelled moves excluded).
    pub fn shipment_lines(&self, shipment: &Shipment) -> Vec<(LineNo, u32)> {
        let mut lines: BTreeMap<LineNo, i64> = BTreeMap::new();
        for mv in shipment.outgoing.iter().filter(|m| m.state != "cancelled") {
            if let Some(line) = self.line_of(mv.sale_line) {
                *lines.entry(line.line).or_default() += mv.quantity;
            }
        }
        lines.into_iter().map(|(l, q)| (l, to_u32(q))).collect()
    }

    /// Units per line waiting for stock on a waiting shipment: what an assignment attempt
    /// could not reserve, or everything on a backorder shipment (one Tryton opened for the
    /// rest after an earlier shipment of the order left with less).
    pub fn unassigned_lines(&self, shipment: &Shipment) -> Vec<(LineNo, u32)> {
        if shipment.state != "waiting" {
            return Vec::new();
        }
        let mut lines: BTreeMap<LineNo, i64> = BTreeMap::new();
        if shipment.partially_assigned {
            for mv in shipment.inventory.iter().filter(|m| m.state == "draft") {
                let outgoing = shipment.outgoing.iter().find(|o| Some(o.id) == mv.feeds);
                if let Some(line) = outgoing.and_then(|o| self.line_of(o.sale_line)) {
                    *lines.entry(line.line).or_default() += mv.quantity;
                }
            }
        } else if self
            .shipments
            .iter()
            .any(|s| s.id != shipment.id && matches!(s.state.as_str(), "shipped" | "done"))
        {
            for (line, quantity) in self.shipment_lines(shipment) {
                *lines.entry(line).or_default() += i64::from(quantity);
            }
        }
        lines
            .into_iter()
            .filter(|(_, q)| *q > 0)
            .map(|(l, q)| (l, to_u32(q)))
            .collect()
    }

    /// Units per line received on a return shipment.
    pub fn receipt(&self, shipment: &ReturnShipment) -> ReturnReceipt {
        let mut lines: BTreeMap<LineNo, i64> = BTreeMap::new();
        for mv in shipment.incoming.iter().filter(|m| m.state != "cancelled") {
            if let Some(line) = self.line_of(mv.sale_line) {
                *lines.entry(line.line).or_default() += mv.quantity.abs();
            }
        }
        ReturnReceipt {
            id: shipment.number.clone(),
            lines: lines.into_iter().map(|(l, q)| (l, to_u32(q))).collect(),
        }
    }

    /// Units per line invoiced (absolute values, for credit notes too).
    pub fn invoice_lines(&self, invoice: &Invoice) -> Vec<(LineNo, u32)> {
        let mut lines: BTreeMap<LineNo, i64> = BTreeMap::new();
        for (sale_line, quantity) in &invoice.lines {
            if let Some(line) = self.line_of(*sale_line) {
                *lines.entry(line.line).or_default() += quantity.abs();
            }
        }
        lines.into_iter().map(|(l, q)| (l, to_u32(q))).collect()
    }
}

impl Invoice {
    /// Posted or paid: issued to the customer.
    pub fn is_issued(&self) -> bool {
        matches!(self.state.as_str(), "posted" | "paid")
    }

    /// A credit note (negative total).
    pub fn is_credit_note(&self) -> bool {
        self.total < Decimal::ZERO
    }

    pub fn number_or_id(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| format!("invoice-{}", self.id))
    }

    /// Id of the payment, from its first payment line.
    pub fn payment_id(&self) -> String {
        self.payment_lines.iter().min().map_or_else(
            || format!("payment-of-{}", self.number_or_id()),
            |line| format!("payment-{line}"),
        )
    }
}

fn moves_by_id(records: &[Record]) -> Result<HashMap<i64, Move>> {
    let mut moves = HashMap::new();
    for record in records {
        let origin = record.opt_reference("origin")?;
        let (sale_line, feeds) = match origin {
            Some((model, id)) if model == "sale.line" => (Some(id), None),
            Some((model, id)) if model == "stock.move" => (None, Some(id)),
            _ => (None, None),
        };
        let id = record.id()?;
        moves.insert(
            id,
            Move {
                id,
                sale_line,
                feeds,
                quantity: Adapter::units("stock move", record.float("quantity")?)?,
                state: record.str("state")?.to_owned(),
            },
        );
    }
    Ok(moves)
}

fn pick(moves: &HashMap<i64, Move>, ids: &[i64]) -> Vec<Move> {
    ids.iter().filter_map(|id| moves.get(id).cloned()).collect()
}

impl Adapter {
    /// Snapshots of the sales `ids` (unknown ids are an error from Tryton).
    pub(super) async fn load_sales(&self, ids: &[i64]) -> Result<Vec<Sale>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = &self.client;
        let sales = client.read("sale.sale", ids, &SALE_FIELDS, None).await?;
        let mut line_ids = Vec::new();
        let mut shipment_ids = Vec::new();
        let mut return_ids = Vec::new();
        let mut invoice_ids = Vec::new();
        for sale in &sales {
            line_ids.extend(sale.ids("lines")?);
            shipment_ids.extend(sale.ids("shipments")?);
            return_ids.extend(sale.ids("shipment_returns")?);
            invoice_ids.extend(sale.ids("invoices")?);
        }
        for list in [&mut shipment_ids, &mut return_ids, &mut invoice_ids] {
            list.sort_unstable();
            list.dedup();
        }
        let lines = client
            .read(
                "sale.line",
                &line_ids,
                &[
                    "sale",
                    "sequence",
                    "type",
                    "product",
                    "quantity",
                    "unit",
                    "unit_price",
                    "taxes",
                ],
                None,
            )
            .await?;
        let shipments = client
            .read(
                "stock.shipment.out",
                &shipment_ids,
                &[
                    "number",
                    "state",
                    "warehouse",
                    "partially_assigned",
                    "outgoing_moves",
                    "inventory_moves",
                    "last_modified_at",
                ],
                None,
            )
            .await?;
        let returns = client
            .read(
                "stock.shipment.out.return",
                &return_ids,
                &[
                    "number",
                    "state",
                    "reference",
                    "incoming_moves",
                    "last_modified_at",
                ],
                None,
            )
            .await?;
        let mut move_ids = Vec::new();
        for shipment in &shipments {
            move_ids.extend(shipment.ids("outgoing_moves")?);
            move_ids.extend(shipment.ids("inventory_moves")?);
        }
        for shipment in &returns {
            move_ids.extend(shipment.ids("incoming_moves")?);
        }
        move_ids.sort_unstable();
        move_ids.dedup();
        let moves = client
            .read(
                "stock.move",
                &move_ids,
                &["origin", "quantity", "state"],
                None,
            )
            .await?;
        let moves = moves_by_id(&moves)?;
        let invoices = client
            .read(
                "account.invoice",
                &invoice_ids,
                &[
                    "number",
                    "state",
                    "reference",
                    "untaxed_amount",
                    "tax_amount",
                    "total_amount",
                    "amount_to_pay",
                    "payment_lines",
                    "invoice_date",
                    "lines",
                    "last_modified_at",
                ],
                None,
            )
            .await?;
        let mut invoice_line_ids = Vec::new();
        for invoice in &invoices {
            invoice_line_ids.extend(invoice.ids("lines")?);
        }
        let invoice_lines = client
            .read(
                "account.invoice.line",
                &invoice_line_ids,
                &["origin", "quantity"],
                None,
            )
            .await?;
        let mut invoice_line_map = HashMap::new();
        for line in &invoice_lines {
            let sale_line = match line.opt_reference("origin")? {
                Some((model, id)) if model == "sale.line" => Some(id),
                _ => None,
            };
            let quantity = Adapter::units("invoice line", line.float("quantity")?)?;
            invoice_line_map.insert(line.id()?, (sale_line, quantity));
        }

        let product_ids: Vec<i64> = lines
            .iter()
            .filter_map(|l| l.opt_int("product").ok().flatten())
            .collect();
        let skus = self.skus_of(&product_ids).await?;

        let mut lines_by_sale: HashMap<i64, Vec<SaleLine>> = HashMap::new();
        for (position, line) in lines.iter().enumerate() {
            if line.opt_str("type")?.unwrap_or("line") != "line" {
                continue;
            }
            let Some(product) = line.opt_int("product")? else {
                continue;
            };
            let sale = line.int("sale")?;
            let siblings = lines_by_sale.entry(sale).or_default();
            siblings.push(SaleLine {
                id: line.id()?,
                line: line_no(line.opt_int("sequence")?, position),
                product,
                sku: skus
                    .get(&product)
                    .cloned()
                    .unwrap_or_else(|| Sku::new(format!("tryton-product-{product}"))),
                quantity: Adapter::units("sale line", line.float("quantity")?)?,
                unit: line.int("unit")?,
                unit_price: line.opt_decimal("unit_price")?.unwrap_or_default(),
                taxes: line.ids("taxes")?,
            });
        }

        let mut shipment_map = HashMap::new();
        for record in &shipments {
            let id = record.id()?;
            shipment_map.insert(
                id,
                Shipment {
                    id,
                    number: record
                        .opt_str("number")?
                        .map_or_else(|| format!("shipment-{id}"), str::to_owned),
                    state: record.str("state")?.to_owned(),
                    warehouse: record.opt_int("warehouse")?,
                    partially_assigned: record.bool("partially_assigned")?,
                    outgoing: pick(&moves, &record.ids("outgoing_moves")?),
                    inventory: pick(&moves, &record.ids("inventory_moves")?),
                    modified: record.datetime("last_modified_at")?,
                },
            );
        }
        let mut return_map = HashMap::new();
        for record in &returns {
            let id = record.id()?;
            return_map.insert(
                id,
                ReturnShipment {
                    id,
                    number: record
                        .opt_str("number")?
                        .map_or_else(|| format!("return-shipment-{id}"), str::to_owned),
                    state: record.str("state")?.to_owned(),
                    reference: record.opt_str("reference")?.map(str::to_owned),
                    incoming: pick(&moves, &record.ids("incoming_moves")?),
                    modified: record.datetime("last_modified_at")?,
                },
            );
        }
        let mut invoice_map = HashMap::new();
        for record in &invoices {
            let id = record.id()?;
            invoice_map.insert(
                id,
                Invoice {
                    id,
                    number: record.opt_str("number")?.map(str::to_owned),
                    state: record.str("state")?.to_owned(),
                    reference: record.opt_str("reference")?.map(str::to_owned),
                    untaxed: record.decimal("untaxed_amount")?,
                    tax: record.decimal("tax_amount")?,
                    total: record.decimal("total_amount")?,
                    amount_to_pay: record.opt_decimal("amount_to_pay")?.unwrap_or_default(),
                    payment_lines: record.ids("payment_lines")?,
                    invoice_date: record.opt_date("invoice_date")?,
                    lines: record
                        .ids("lines")?
                        .iter()
                        .filter_map(|l| invoice_line_map.get(l).copied())
                        .collect(),
                    modified: record.datetime("last_modified_at")?,
                },
            );
        }

        let mut result = Vec::with_capacity(sales.len());
        for record in &sales {
            let id = record.id()?;
            let mut sale_lines = lines_by_sale.remove(&id).unwrap_or_default();
            sale_lines.sort_by_key(|l| l.line);
            result.push(Sale {
                id,
                number: record.opt_str("number")?.map(str::to_owned),
                reference: record.opt_str("reference")?.map(str::to_owned),
                state: record.str("state")?.to_owned(),
                shipment_state: record.str("shipment_state")?.to_owned(),
                invoice_state: record.str("invoice_state")?.to_owned(),
                party: record.int("party")?,
                warehouse: record.opt_int("warehouse")?,
                invoice_address: record.opt_int("invoice_address")?,
                shipment_address: record.opt_int("shipment_address")?,
                payment_term: record.opt_int("payment_term")?,
                origin: record.opt_reference("origin")?,
                modified: record.datetime("last_modified_at")?,
                lines: sale_lines,
                shipments: record
                    .ids("shipments")?
                    .iter()
                    .filter_map(|s| shipment_map.get(s).cloned())
                    .collect(),
                returns: record
                    .ids("shipment_returns")?
                    .iter()
                    .filter_map(|s| return_map.get(s).cloned())
                    .collect(),
                invoices: record
                    .ids("invoices")?
                    .iter()
                    .filter_map(|i| invoice_map.get(i).cloned())
                    .collect(),
            });
        }
        Ok(result)
    }

    /// The sale numbered `number`.
    pub(super) async fn sale_by_number(&self, number: &str) -> Result<Sale> {
        let ids = self
            .client
            .search(
                "sale.sale",
                json!([["number", "=", number]]),
                0,
                Some(2),
                None,
                None,
            )
            .await?;
        let id = match ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(
                    Failure::permanent(format!("Tryton has no sale numbered {number}"))
                        .with_code("UnknownOrder"),
                );
            }
            _ => {
                return Err(Failure::permanent(format!(
                    "Tryton has several sales numbered {number}"
                )));
            }
        };
        self.load_sales(&[id])
            .await?
            .pop()
            .ok_or_else(|| Failure::unknown(format!("sale {number} vanished while reading it")))
    }

    pub(super) fn shipment_view(&self, sale: &Sale, shipment: &Shipment) -> Option<ErpShipment> {
        Some(ErpShipment {
            id: shipment.number.clone(),
            location: shipment.warehouse.map(|w| self.location_of(w)),
            lines: sale.shipment_lines(shipment),
            milestone: milestone(&shipment.state)?,
            carrier: None,
            tracking: None,
            at: shipment.modified,
        })
    }

    pub(super) fn invoice_view(sale: &Sale, invoice: &Invoice) -> ErpInvoice {
        ErpInvoice {
            id: invoice.number_or_id(),
            number: invoice.number_or_id(),
            lines: sale.invoice_lines(invoice),
            net: invoice.untaxed,
            tax: invoice.tax,
            total: invoice.total,
            paid: invoice.total - invoice.amount_to_pay,
            // Tryton's invoice date is a day; posted that same day, the moment of posting
            // (its last change) says when it was issued more precisely than midnight.
            issued_at: match invoice.invoice_date {
                Some(day) if day != invoice.modified.date() => day.midnight().assume_utc(),
                _ => invoice.modified,
            },
        }
    }

    /// The order as the port describes it.
    pub(super) fn order_view(&self, sale: &Sale) -> ErpOrder {
        let lines = sale
            .lines
            .iter()
            .map(|line| {
                let mut allocated = 0;
                let mut shipped = 0;
                let mut delivered = 0;
                for shipment in &sale.shipments {
                    let units: i64 = shipment
                        .outgoing
                        .iter()
                        .filter(|m| m.sale_line == Some(line.id) && m.state != "cancelled")
                        .map(|m| m.quantity)
                        .sum();
                    if allocated_state(&shipment.state) {
                        allocated += units;
                    }
                    if matches!(shipment.state.as_str(), "shipped" | "done") {
                        shipped += units;
                    }
                    if shipment.state == "done" {
                        delivered += units;
                    }
                }
                let backordered: u32 = sale
                    .shipments
                    .iter()
                    .flat_map(|s| sale.unassigned_lines(s))
                    .filter(|(l, _)| *l == line.line)
                    .map(|(_, q)| q)
                    .sum();
                ErpLine {
                    line: line.line,
                    sku: line.sku.clone(),
                    ordered: to_u32(line.quantity),
                    allocated: to_u32(allocated),
                    backordered,
                    shipped: to_u32(shipped),
                    delivered: to_u32(delivered),
                }
            })
            .collect();
        ErpOrder {
            erp_ref: sale.number_or_id(),
            reference: sale.order_id(),
            cancelled: sale.is_cancelled(),
            lines,
            shipments: sale
                .shipments
                .iter()
                .filter_map(|s| self.shipment_view(sale, s))
                .collect(),
            invoices: sale
                .invoices
                .iter()
                .filter(|i| i.is_issued() && !i.is_credit_note())
                .map(|i| Self::invoice_view(sale, i))
                .collect(),
        }
    }

    pub(super) async fn read_order(&self, erp_ref: &str) -> Result<ErpOrder> {
        let sale = self.sale_by_number(erp_ref).await?;
        if sale.is_return() {
            return Err(Failure::permanent(format!(
                "Tryton sale {erp_ref} is a return, not an order"
            )));
        }
        Ok(self.order_view(&sale))
    }
}
