//! Booking (idempotent by `sale.reference`) and cancellation.
//!
//! Booking looks the reference up first and only creates when nothing (not cancelled)
//! carries it; a sale left half-way by an earlier attempt (draft, quotation, confirmed)
//! is driven on from where it stopped. Bookings of one reference are serialised inside
//! the adapter because Tryton does not make `reference` unique.
//!
//! `confirm` runs the credit-limit check (a `UserError` for the integration user) and,
//! with no queue worker, processes the sale in the same request; a sale still
//! `confirmed` afterwards failed processing, and `process` returns the real error.

use std::collections::{BTreeMap, HashSet};

use crossdock_domain::ids::LineNo;
use crossdock_ports::Failure;
use crossdock_ports::erp::{Allocation, BookingConfirmation, BookingRequest, CancelOutcome};
use crossdock_ports::failure::Result;
use serde_json::{Value, json};

use super::snapshot::{Sale, milestone};
use super::{Adapter, active, ctx, line_no, to_u32};
use crate::tryton::value;

/// A freshly booked sale: number, whether it is cancelled, warehouse, (line, product, units).
struct Booked {
    number: String,
    cancelled: bool,
    warehouse: Option<i64>,
    lines: Vec<(LineNo, i64, i64)>,
}

/// Calls that move a sale forward are bounded: draft → quotation → confirmed → processing.
const MAX_STEPS: usize = 4;

impl Adapter {
    fn validate_booking(&self, order: &BookingRequest) -> Result<()> {
        if order.lines.is_empty() {
            return Err(Failure::permanent(format!(
                "order {} has no lines",
                order.reference
            )));
        }
        let mut seen = HashSet::new();
        for line in &order.lines {
            if line.quantity == 0 {
                return Err(Failure::permanent(format!(
                    "order {} line {}: quantity is zero",
                    order.reference, line.line
                )));
            }
            if line.line.0 == 0 || !seen.insert(line.line) {
                return Err(Failure::permanent(format!(
                    "order {} line number {} is zero or repeated",
                    order.reference, line.line
                )));
            }
            if line.unit_price.is_sign_negative() {
                return Err(Failure::permanent(format!(
                    "order {} line {}: negative unit price",
                    order.reference, line.line
                )));
            }
        }
        self.check_currency(order.currency)
    }

    /// The Tryton warehouse for a booking: the chosen fulfilment location, else the default.
    fn booking_warehouse(&self, order: &BookingRequest) -> Result<i64> {
        match order
            .fulfilment
            .as_ref()
            .and_then(|option| option.locations.first())
        {
            Some(location) => self.warehouse_named(location),
            None => self.default_warehouse(),
        }
    }

    /// The invoice and delivery addresses of a party.
    async fn party_addresses(&self, account: &str, addresses: &[i64]) -> Result<(i64, i64)> {
        let records = self
            .client
            .read("party.address", addresses, &["invoice", "delivery"], None)
            .await?;
        let mut usable = Vec::new();
        for record in &records {
            usable.push((
                record.id()?,
                record.bool("invoice")?,
                record.bool("delivery")?,
            ));
        }
        let first = usable.first().map(|a| a.0).ok_or_else(|| {
            Failure::permanent(format!(
                "customer {account} has no address in Tryton; Tryton needs one to quote"
            ))
        })?;
        let invoice = usable.iter().find(|a| a.1).map_or(first, |a| a.0);
        let delivery = usable.iter().find(|a| a.2).map_or(first, |a| a.0);
        Ok((invoice, delivery))
    }

    async fn create_sale(&self, order: &BookingRequest, key: &str) -> Result<i64> {
        let party = self.party(&order.account).await?;
        let warehouse = self.booking_warehouse(order)?;
        let (invoice_address, shipment_address) = self
            .party_addresses(order.account.as_str(), &party.addresses)
            .await?;
        let payment_term = party
            .payment_term
            .or(self.config.payment_term)
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "customer {} has no payment term in Tryton and none is configured",
                    order.account
                ))
            })?;
        let skus: Vec<_> = order.lines.iter().map(|l| l.sku.clone()).collect();
        let products = self.products(&skus).await?;
        let mut lines = Vec::new();
        for line in &order.lines {
            let product = &products[&line.sku];
            let mut values = json!({
                "type": "line",
                "sequence": line.line.0,
                "product": product.id,
                "quantity": f64::from(line.quantity),
                "unit": product.uom,
                "unit_price": value::decimal(line.unit_price),
            });
            if !self.config.taxes.is_empty() {
                values["taxes"] = json!([["add", self.config.taxes]]);
            }
            lines.push(values);
        }
        let description = order.sf_number.as_ref().map_or_else(
            || order.reference.to_string(),
            |n| format!("Salesforce order {n}"),
        );
        let values = json!({
            "party": party.id,
            "reference": order.reference.as_str(),
            "description": description,
            "comment": format!("Booked by crossdock (key {key})"),
            "warehouse": warehouse,
            "invoice_address": invoice_address,
            "shipment_address": shipment_address,
            "payment_term": payment_term,
            "price_list": party.price_list,
            "lines": [["create", lines]],
        });
        let ids = self.client.create("sale.sale", vec![values], None).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Failure::unknown("sale.sale.create returned no id"))
    }

    async fn sale_state(&self, id: i64) -> Result<String> {
        let records = self
            .client
            .read("sale.sale", &[id], &["state"], None)
            .await?;
        let record = records
            .first()
            .ok_or_else(|| Failure::unknown(format!("sale {id} vanished")))?;
        Ok(record.str("state")?.to_owned())
    }

    /// The state of a sale found by a repeated booking, once an earlier attempt that may
    /// still be running in Tryton has had time to finish: a caller that gave up on `confirm`
    /// does not stop Tryton processing the sale, and pressing `process` meanwhile would
    /// process it twice (two shipments, two invoices). Waits at most the client's timeout.
    async fn settled_state(&self, id: i64, mut state: String) -> Result<String> {
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.config.timeout_secs.max(1));
        while state == "confirmed" && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            state = self.sale_state(id).await?;
        }
        Ok(state)
    }

    /// Moves a sale on until it is processed (shipment and invoice created).
    pub(super) async fn drive_to_processing(&self, id: i64, mut state: String) -> Result<()> {
        for _ in 0..MAX_STEPS {
            match state.as_str() {
                "draft" => {
                    // `quote` either succeeds (quotation) or raises: no need to read back.
                    self.client
                        .button("sale.sale", "quote", &[id], None)
                        .await?;
                    state = "quotation".to_owned();
                    continue;
                }
                "quotation" => {
                    self.client
                        .button("sale.sale", "confirm", &[id], None)
                        .await?;
                }
                "confirmed" => {
                    // Processing runs inside `confirm`; a sale still here failed it, and
                    // `process` raises the real error.
                    self.client
                        .button("sale.sale", "process", &[id], None)
                        .await?;
                    if self.sale_state(id).await? == "confirmed" {
                        return Err(Failure::permanent(format!(
                            "Tryton could not process sale {id} (no shipment or invoice was \
                             created); see the Tryton server log"
                        )));
                    }
                }
                "processing" | "done" => return Ok(()),
                "cancelled" => {
                    return Err(Failure::permanent(format!(
                        "sale {id} was cancelled in Tryton"
                    )));
                }
                other => {
                    return Err(Failure::unknown(format!(
                        "sale {id} is in an unknown state `{other}`"
                    )));
                }
            }
            state = self.sale_state(id).await?;
        }
        Err(Failure::unknown(format!(
            "sale {id} did not reach processing (state `{state}`)"
        )))
    }

    /// Books an order; see the module docs.
    pub(super) async fn book(
        &self,
        order: &BookingRequest,
        key: &str,
    ) -> Result<BookingConfirmation> {
        self.validate_booking(order)?;
        let lock = self.locks.get(&format!("sale:{}", order.reference));
        let _guard = lock.lock().await;
        let existing = self
            .client
            .search_read(
                "sale.sale",
                json!([
                    ["reference", "=", order.reference.as_str()],
                    ["state", "!=", "cancelled"],
                ]),
                0,
                None,
                Some(json!([["id", "ASC"]])),
                &["state"],
                None,
            )
            .await?;
        if existing.len() > 1 {
            tracing::warn!(
                reference = %order.reference,
                count = existing.len(),
                "Several Tryton sales carry the same reference; using the oldest."
            );
        }
        let (id, created, state) = match existing.first() {
            Some(sale) => (sale.id()?, false, sale.str("state")?.to_owned()),
            None => (
                self.create_sale(order, key).await?,
                true,
                "draft".to_owned(),
            ),
        };
        let state = if created {
            state
        } else {
            self.settled_state(id, state).await?
        };
        self.drive_to_processing(id, state).await?;
        let booked = self.booked_sale(id).await?;
        if booked.cancelled {
            return Err(Failure::permanent(format!(
                "order {} was booked as Tryton sale {} and cancelled since",
                order.reference, booked.number
            )));
        }
        let (allocations, backorders) = self.allocation_at_booking(&booked).await?;
        tracing::info!(
            reference = %order.reference,
            erp_ref = %booked.number,
            created,
            "Order booked in Tryton."
        );
        Ok(BookingConfirmation {
            erp_ref: booked.number,
            created,
            allocations,
            backorders,
        })
    }

    /// What the booking answer needs, in two reads (a full snapshot takes eight).
    async fn booked_sale(&self, id: i64) -> Result<Booked> {
        let records = self
            .client
            .read(
                "sale.sale",
                &[id],
                &[
                    "number",
                    "state",
                    "shipment_state",
                    "invoice_state",
                    "warehouse",
                    "lines",
                ],
                None,
            )
            .await?;
        let sale = records
            .first()
            .ok_or_else(|| Failure::unknown(format!("sale {id} vanished after booking")))?;
        let lines = self
            .client
            .read(
                "sale.line",
                &sale.ids("lines")?,
                &["type", "sequence", "product", "quantity"],
                None,
            )
            .await?;
        let mut booked_lines = Vec::new();
        for (position, line) in lines.iter().enumerate() {
            if line.opt_str("type")?.unwrap_or("line") != "line" {
                continue;
            }
            let Some(product) = line.opt_int("product")? else {
                continue;
            };
            booked_lines.push((
                line_no(line.opt_int("sequence")?, position),
                product,
                Self::units("sale line", line.float("quantity")?)?,
            ));
        }
        booked_lines.sort_by_key(|(line, _, _)| *line);
        let state = sale.str("state")?;
        Ok(Booked {
            number: sale
                .opt_str("number")?
                .map_or_else(|| format!("sale-{id}"), str::to_owned),
            cancelled: state == "cancelled"
                || (state == "done"
                    && sale.str("shipment_state")? == "none"
                    && sale.str("invoice_state")? == "none"),
            warehouse: sale.opt_int("warehouse")?,
            lines: booked_lines,
        })
    }

    /// What the warehouse can promise right after booking: when the product's forecast at
    /// the warehouse went below zero, the shortfall is this order's backorder (taken from
    /// its last lines first).
    async fn allocation_at_booking(
        &self,
        sale: &Booked,
    ) -> Result<(Vec<Allocation>, Vec<(LineNo, u32)>)> {
        let Some(warehouse) = sale.warehouse else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut product_ids: Vec<i64> = sale.lines.iter().map(|(_, product, _)| *product).collect();
        product_ids.sort_unstable();
        product_ids.dedup();
        let records = self
            .client
            .read(
                "product.product",
                &product_ids,
                &["forecast_quantity"],
                Some(&ctx([("locations", json!([warehouse]))])),
            )
            .await?;
        let mut shortfall: BTreeMap<i64, i64> = BTreeMap::new();
        for record in &records {
            let forecast = Self::units("forecast quantity", record.float("forecast_quantity")?)?;
            shortfall.insert(record.id()?, (-forecast).max(0));
        }
        let location = self.location_of(warehouse);
        let mut allocations = Vec::new();
        let mut backorders = Vec::new();
        for (line, product, quantity) in sale.lines.iter().rev() {
            let missing = shortfall.entry(*product).or_default();
            let backordered = (*quantity).min(*missing).max(0);
            *missing -= backordered;
            if backordered > 0 {
                backorders.push((*line, to_u32(backordered)));
            }
            if *quantity > backordered {
                allocations.push(Allocation {
                    line: *line,
                    location: location.clone(),
                    quantity: to_u32(quantity - backordered),
                });
            }
        }
        allocations.reverse();
        backorders.reverse();
        Ok((allocations, backorders))
    }

    /// Runs one of the sale exception wizards, ignoring every cancelled document.
    async fn ignore_exceptions(
        &self,
        wizard: &str,
        sale: i64,
        domain: &str,
        ignore: &str,
    ) -> Result<()> {
        let context = active("sale.sale", sale);
        let session = self.client.wizard_create(wizard, Some(&context)).await?;
        let start = self
            .client
            .wizard_execute(
                wizard,
                &session,
                json!({}),
                &session.start_state,
                Some(&context),
            )
            .await?;
        let defaults = start
            .get("view")
            .and_then(|v| v.get("defaults"))
            .and_then(Value::as_object)
            .ok_or_else(|| Failure::unknown(format!("wizard {wizard} did not open its form")))?;
        let mut form: serde_json::Map<String, Value> = defaults
            .iter()
            .filter(|(k, _)| !k.ends_with('.'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let candidates = form.get(domain).cloned().unwrap_or_else(|| json!([]));
        form.insert(ignore.to_owned(), candidates);
        let form_name = session.start_state.clone();
        let result = self
            .client
            .wizard_execute(
                wizard,
                &session,
                json!({ form_name: form }),
                "handle",
                Some(&context),
            )
            .await;
        if let Err(error) = self
            .client
            .wizard_delete(wizard, &session, Some(&context))
            .await
        {
            tracing::debug!(wizard, %error, "Could not delete a finished Tryton wizard session.");
        }
        result.map(drop).map_err(Failure::from)
    }

    /// Cancels an order; see [`crossdock_ports::Erp::cancel_order`].
    pub(super) async fn cancel(&self, erp_ref: &str, reason: &str) -> Result<CancelOutcome> {
        let lock = self.locks.get(&format!("sale-number:{erp_ref}"));
        let _guard = lock.lock().await;
        let sale = self.sale_by_number(erp_ref).await?;
        if sale.is_return() {
            return Err(Failure::permanent(format!(
                "Tryton sale {erp_ref} is a return; returns are not cancelled this way"
            )));
        }
        if sale.is_cancelled() {
            return Ok(CancelOutcome::AlreadyCancelled);
        }
        let note = format!("Cancelled by crossdock: {reason}");
        match sale.state.as_str() {
            "draft" | "quotation" => {
                self.client
                    .write("sale.sale", &[sale.id], json!({"comment": note}), None)
                    .await?;
                self.client
                    .button("sale.sale", "cancel", &[sale.id], None)
                    .await?;
            }
            "confirmed" | "processing" | "done" => self.cancel_after_confirm(&sale, &note).await?,
            other => {
                return Err(Failure::unknown(format!(
                    "sale {erp_ref} is in an unknown state `{other}`"
                )));
            }
        }
        let after = self.sale_by_number(erp_ref).await?;
        if after.is_cancelled() {
            tracing::info!(erp_ref, reason, "Order cancelled in Tryton.");
            Ok(CancelOutcome::Cancelled)
        } else {
            Err(Failure::unknown(format!(
                "sale {erp_ref} is not cancelled after the cancellation procedure (state `{}`, \
                 shipments `{}`, invoices `{}`)",
                after.state, after.shipment_state, after.invoice_state
            )))
        }
    }

    /// Cancels the waiting shipments and draft invoices of a processed sale, then tells
    /// Tryton to ignore them (the exception wizards), which closes the sale.
    async fn cancel_after_confirm(&self, sale: &Sale, note: &str) -> Result<()> {
        let number = sale.number_or_id();
        if let Some(moving) = sale
            .shipments
            .iter()
            .find(|s| milestone(&s.state).is_some())
        {
            return Err(Failure::permanent(format!(
                "order {number} cannot be cancelled: shipment {} is already {}",
                moving.number, moving.state
            ))
            .with_code("AlreadyShipped"));
        }
        if let Some(posted) = sale.invoices.iter().find(|i| i.is_issued()) {
            return Err(Failure::permanent(format!(
                "order {number} cannot be cancelled: invoice {} is posted; credit it instead",
                posted.number_or_id()
            ))
            .with_code("AlreadyInvoiced"));
        }
        self.client
            .write("sale.sale", &[sale.id], json!({"comment": note}), None)
            .await?;
        let shipments: Vec<i64> = sale
            .shipments
            .iter()
            .filter(|s| s.state != "cancelled")
            .map(|s| s.id)
            .collect();
        if !shipments.is_empty() {
            self.client
                .button("stock.shipment.out", "cancel", &shipments, None)
                .await?;
        }
        let invoices: Vec<i64> = sale
            .invoices
            .iter()
            .filter(|i| i.state != "cancelled")
            .map(|i| i.id)
            .collect();
        if !invoices.is_empty() {
            self.client
                .button("account.invoice", "cancel", &invoices, None)
                .await?;
        }
        let states = self
            .client
            .read(
                "sale.sale",
                &[sale.id],
                &["shipment_state", "invoice_state"],
                None,
            )
            .await?;
        let states = states
            .first()
            .ok_or_else(|| Failure::unknown(format!("sale {number} vanished")))?;
        if states.str("shipment_state")? == "exception" {
            self.ignore_exceptions(
                "sale.handle.shipment.exception",
                sale.id,
                "domain_moves",
                "ignore_moves",
            )
            .await?;
        }
        if states.str("invoice_state")? == "exception" {
            self.ignore_exceptions(
                "sale.handle.invoice.exception",
                sale.id,
                "domain_invoices",
                "ignore_invoices",
            )
            .await?;
        }
        Ok(())
    }
}
