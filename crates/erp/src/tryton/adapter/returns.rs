//! Returns: authorisation, receipt, credit note and refund.
//!
//! A return is a Tryton sale with negative quantities, `origin` = the original sale and
//! `reference` = the hub's return id (the idempotency key of the authorisation). It is
//! invoiced "on fulfilment", so its credit note covers exactly what was received: the
//! return shipment is received and done, then the credit note is posted (fresh session)
//! and paid back through the `account.invoice.pay` wizard.
//!
//! Each step is idempotent: the receipt carries the step's key as its `reference`, the
//! credit note carries its key as its `reference`, and a paid credit note is reported as
//! refunded without paying again.

use std::collections::BTreeMap;

use crossdock_domain::ids::LineNo;
use crossdock_ports::Failure;
use crossdock_ports::erp::{CreditMemo, Refund, ReturnAuthorisation, ReturnReceipt, ReturnRequest};
use crossdock_ports::failure::Result;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::snapshot::{Invoice, Sale};
use super::{Adapter, active};
use crate::tryton::value;

impl Adapter {
    /// The original order of a return request.
    async fn original_sale(&self, request: &ReturnRequest) -> Result<Sale> {
        if let Some(number) = &request.order_erp_ref {
            return self.sale_by_number(number).await;
        }
        let ids = self
            .client
            .search(
                "sale.sale",
                json!([
                    ["reference", "=", request.order.as_str()],
                    ["state", "!=", "cancelled"],
                ]),
                0,
                Some(1),
                Some(json!([["id", "ASC"]])),
                None,
            )
            .await?;
        let id = ids.first().copied().ok_or_else(|| {
            Failure::permanent(format!("Tryton has no sale for order {}", request.order))
                .with_code("UnknownOrder")
        })?;
        self.load_sales(&[id])
            .await?
            .pop()
            .ok_or_else(|| Failure::unknown(format!("sale {id} vanished")))
    }

    /// The return sale carrying the hub's return id, if any.
    async fn return_sale_for(&self, rma: &str) -> Result<Option<Sale>> {
        let ids = self
            .client
            .search(
                "sale.sale",
                json!([["reference", "=", rma], ["state", "!=", "cancelled"]]),
                0,
                None,
                Some(json!([["id", "ASC"]])),
                None,
            )
            .await?;
        Ok(self
            .load_sales(&ids)
            .await?
            .into_iter()
            .find(Sale::is_return))
    }

    pub(super) async fn authorise_return(
        &self,
        request: &ReturnRequest,
    ) -> Result<ReturnAuthorisation> {
        let lock = self.locks.get(&format!("sale:{}", request.rma));
        let _guard = lock.lock().await;
        if let Some(existing) = self.return_sale_for(request.rma.as_str()).await? {
            self.drive_to_processing(existing.id, existing.state.clone())
                .await?;
            return Ok(ReturnAuthorisation {
                erp_ref: existing.number_or_id(),
            });
        }
        if request.lines.is_empty() {
            return Err(Failure::permanent(format!(
                "return {} has no lines",
                request.rma
            )));
        }
        let original = self.original_sale(request).await?;
        if original.is_return() || !original.is_booked() {
            return Err(Failure::permanent(format!(
                "return {}: Tryton sale {} is not a booked order",
                request.rma,
                original.number_or_id()
            )));
        }
        let order = self.order_view(&original);
        let mut lines = Vec::new();
        for (line_no, sku, quantity) in &request.lines {
            let line = original
                .lines
                .iter()
                .find(|l| l.line == *line_no)
                .ok_or_else(|| {
                    Failure::permanent(format!(
                        "return {}: order {} has no line {line_no}",
                        request.rma, request.order
                    ))
                })?;
            if line.sku != *sku {
                return Err(Failure::permanent(format!(
                    "return {}: line {line_no} is {}, not {sku}",
                    request.rma, line.sku
                )));
            }
            let shipped = order
                .lines
                .iter()
                .find(|l| l.line == *line_no)
                .map_or(0, |l| l.shipped);
            if *quantity == 0 || *quantity > shipped {
                return Err(Failure::permanent(format!(
                    "return {}: line {line_no} returns {quantity} but {shipped} were shipped",
                    request.rma
                )));
            }
            let mut values = json!({
                "type": "line",
                "sequence": line_no.0,
                "product": line.product,
                "quantity": -f64::from(*quantity),
                "unit": line.unit,
                "unit_price": value::decimal(line.unit_price),
            });
            if !line.taxes.is_empty() {
                values["taxes"] = json!([["add", line.taxes]]);
            }
            lines.push(values);
        }
        let values = json!({
            "party": original.party,
            "reference": request.rma.as_str(),
            "description": format!("Return of order {}: {}", request.order, request.reason),
            "origin": value::reference("sale.sale", original.id),
            "invoice_method": "fulfillment",
            "warehouse": original.warehouse,
            "invoice_address": original.invoice_address,
            "shipment_address": original.shipment_address,
            "payment_term": original.payment_term,
            "lines": [["create", lines]],
        });
        let ids = self.client.create("sale.sale", vec![values], None).await?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| Failure::unknown("sale.sale.create returned no id"))?;
        self.drive_to_processing(id, "draft".to_owned()).await?;
        let sale = self
            .load_sales(&[id])
            .await?
            .pop()
            .ok_or_else(|| Failure::unknown(format!("return sale {id} vanished")))?;
        tracing::info!(rma = %request.rma, erp_ref = %sale.number_or_id(), "Return authorised in Tryton.");
        Ok(ReturnAuthorisation {
            erp_ref: sale.number_or_id(),
        })
    }

    async fn return_sale(&self, erp_rma: &str) -> Result<Sale> {
        let sale = self.sale_by_number(erp_rma).await?;
        if sale.is_return() {
            Ok(sale)
        } else {
            Err(Failure::permanent(format!(
                "Tryton sale {erp_rma} is not a return"
            )))
        }
    }

    pub(super) async fn receive(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        key: &str,
    ) -> Result<ReturnReceipt> {
        let lock = self.locks.get(&format!("return:{erp_rma}"));
        let _guard = lock.lock().await;
        let sale = self.return_sale(erp_rma).await?;
        let shipment = match sale
            .returns
            .iter()
            .find(|s| s.reference.as_deref() == Some(key))
        {
            Some(done) if done.state == "done" => return Ok(sale.receipt(done)),
            Some(started) => started.clone(),
            None => {
                let open = sale
                    .returns
                    .iter()
                    .find(|s| s.state == "draft")
                    .cloned()
                    .ok_or_else(|| {
                        Failure::permanent(format!("return {erp_rma} has nothing left to receive"))
                    })?;
                let wanted: BTreeMap<LineNo, u32> = lines.iter().copied().collect();
                if !wanted.is_empty() {
                    for mv in open.incoming.iter().filter(|m| m.state != "cancelled") {
                        let Some(line) = sale.lines.iter().find(|l| Some(l.id) == mv.sale_line)
                        else {
                            continue;
                        };
                        let wanted_units = wanted.get(&line.line).copied().unwrap_or(0);
                        let expected = i64::from(wanted_units);
                        if expected > mv.quantity {
                            return Err(Failure::permanent(format!(
                                "return {erp_rma} line {}: receiving {expected} but only {} \
                                 are expected",
                                line.line, mv.quantity
                            )));
                        }
                        if expected != mv.quantity {
                            self.client
                                .write(
                                    "stock.move",
                                    &[mv.id],
                                    json!({"quantity": f64::from(wanted_units)}),
                                    None,
                                )
                                .await?;
                        }
                    }
                }
                self.client
                    .write(
                        "stock.shipment.out.return",
                        &[open.id],
                        json!({"reference": key}),
                        None,
                    )
                    .await?;
                open
            }
        };
        let mut state = shipment.state.clone();
        if state == "draft" {
            self.client
                .button("stock.shipment.out.return", "receive", &[shipment.id], None)
                .await?;
            state = "received".to_owned();
        }
        if state == "received" {
            self.client
                .button("stock.shipment.out.return", "do", &[shipment.id], None)
                .await?;
        }
        let sale = self.return_sale(erp_rma).await?;
        let done = sale
            .returns
            .iter()
            .find(|s| s.id == shipment.id)
            .ok_or_else(|| {
                Failure::unknown(format!("return shipment {} vanished", shipment.number))
            })?;
        Ok(sale.receipt(done))
    }

    fn memo(invoice: &Invoice) -> CreditMemo {
        CreditMemo {
            id: invoice.number_or_id(),
            number: invoice.number_or_id(),
            amount: -invoice.total,
        }
    }

    pub(super) async fn post_credit_note(&self, erp_rma: &str, key: &str) -> Result<CreditMemo> {
        let lock = self.locks.get(&format!("return:{erp_rma}"));
        let _guard = lock.lock().await;
        let sale = self.return_sale(erp_rma).await?;
        let notes: Vec<&Invoice> = sale
            .invoices
            .iter()
            .filter(|i| i.is_credit_note() && i.state != "cancelled")
            .collect();
        let target = match notes.iter().find(|i| i.reference.as_deref() == Some(key)) {
            Some(keyed) => (*keyed).clone(),
            None => match notes.iter().find(|i| i.state == "draft") {
                Some(draft) => {
                    self.client
                        .write(
                            "account.invoice",
                            &[draft.id],
                            json!({"reference": key}),
                            None,
                        )
                        .await?;
                    (*draft).clone()
                }
                None => {
                    return match notes.iter().filter(|i| i.is_issued()).max_by_key(|i| i.id) {
                        Some(issued) => Ok(Self::memo(issued)),
                        None => Err(Failure::permanent(format!(
                            "return {erp_rma} has no credit note yet: receive the goods first"
                        ))),
                    };
                }
            },
        };
        if target.state == "draft" || target.state == "validated" {
            // Needs a fresh session; the client logs in again on the 401.
            self.client
                .button("account.invoice", "post", &[target.id], None)
                .await?;
        }
        let sale = self.return_sale(erp_rma).await?;
        let posted = sale
            .invoices
            .iter()
            .find(|i| i.id == target.id)
            .ok_or_else(|| Failure::unknown(format!("credit note {} vanished", target.id)))?;
        if !posted.is_issued() {
            return Err(Failure::unknown(format!(
                "credit note {} is `{}` after posting",
                posted.number_or_id(),
                posted.state
            )));
        }
        tracing::info!(erp_rma, number = %posted.number_or_id(), "Credit note posted in Tryton.");
        Ok(Self::memo(posted))
    }

    async fn credit_note(&self, number: &str) -> Result<CreditNoteState> {
        let records = self
            .client
            .search_read(
                "account.invoice",
                json!([["number", "=", number], ["type", "=", "out"]]),
                0,
                Some(1),
                None,
                &["state", "total_amount", "payment_lines"],
                None,
            )
            .await?;
        let record = records.first().ok_or_else(|| {
            Failure::permanent(format!("Tryton has no credit note numbered {number}"))
        })?;
        Ok(CreditNoteState {
            id: record.id()?,
            state: record.str("state")?.to_owned(),
            total: record.decimal("total_amount")?,
            payment_lines: record.ids("payment_lines")?,
        })
    }

    pub(super) async fn refund(&self, number: &str, _key: &str) -> Result<Refund> {
        let lock = self.locks.get(&format!("invoice:{number}"));
        let _guard = lock.lock().await;
        let note = self.credit_note(number).await?;
        if note.total >= Decimal::ZERO {
            return Err(Failure::permanent(format!(
                "{number} is an invoice, not a credit note"
            )));
        }
        match note.state.as_str() {
            "paid" => return Ok(note.refund(number)),
            "posted" => {}
            other => {
                return Err(Failure::permanent(format!(
                    "credit note {number} is `{other}`; only a posted credit note is refunded"
                )));
            }
        }
        self.pay(note.id, &format!("Refund of {number}"), number)
            .await?;
        let paid = self.credit_note(number).await?;
        if paid.state != "paid" {
            return Err(Failure::unknown(format!(
                "credit note {number} is `{}` after the refund",
                paid.state
            )));
        }
        tracing::info!(number, "Credit note refunded in Tryton.");
        Ok(paid.refund(number))
    }

    /// Pays an invoice's (or credit note's) full amount due with the configured payment
    /// method through Tryton's `account.invoice.pay` wizard; `what` names it in the error
    /// when the wizard does not settle it.
    pub(super) async fn pay(&self, invoice: i64, description: &str, what: &str) -> Result<()> {
        const WIZARD: &str = "account.invoice.pay";
        let context = active("account.invoice", invoice);
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
            let defaults = start
                .get("view")
                .and_then(|v| v.get("defaults"))
                .and_then(Value::as_object)
                .ok_or_else(|| Failure::unknown("the pay wizard did not open its form"))?;
            let mut form: serde_json::Map<String, Value> = defaults
                .iter()
                .filter(|(k, _)| !k.ends_with('.'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            form.insert(
                "payment_method".to_owned(),
                json!(self.config.payment_method),
            );
            form.insert("description".to_owned(), json!(description));
            if !form.contains_key("date") {
                form.insert("date".to_owned(), value::date(self.clock.now().date()));
            }
            let form_name = session.start_state.clone();
            let answer = self
                .client
                .wizard_execute(
                    WIZARD,
                    &session,
                    json!({ form_name: form }),
                    "choice",
                    Some(&context),
                )
                .await?;
            if let Some(state) = answer
                .get("view")
                .and_then(|v| v.get("state"))
                .and_then(Value::as_str)
            {
                return Err(Failure::unknown(format!(
                    "the pay wizard stopped on `{state}`: the amount did not settle {what}"
                )));
            }
            Ok(())
        }
        .await;
        if let Err(error) = self
            .client
            .wizard_delete(WIZARD, &session, Some(&context))
            .await
        {
            tracing::debug!(%error, "Could not delete a finished Tryton wizard session.");
        }
        outcome
    }
}

/// A credit note's payment state.
struct CreditNoteState {
    id: i64,
    state: String,
    total: Decimal,
    payment_lines: Vec<i64>,
}

impl CreditNoteState {
    fn refund(&self, number: &str) -> Refund {
        Refund {
            id: self.payment_lines.iter().min().map_or_else(
                || format!("payment-of-{number}"),
                |line| format!("payment-{line}"),
            ),
            amount: -self.total,
        }
    }
}
