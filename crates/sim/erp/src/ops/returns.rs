//! Returns: RMA authorisation (idempotent by external reference, never more than shipped),
//! goods receipt (full or partial, stock back on hand), credit memo for what was received
//! (returned quantity × invoiced unit price including tax), refund of the credit memo.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiError, Code, Result};
use crate::model::{CreditMemo, CreditMemoLine, LineQty, Receipt, Refund, Rma, RmaLine, cents};
use crate::ops::{optional_str, parse_qty, required_array, required_str};
use crate::state::{State, Task};

impl State {
    /// `POST /api/v1/rmas`: authorises a return. A repeated external reference answers the RMA
    /// already authorised. Returns whether it was created.
    ///
    /// # Errors
    /// `unknown_order`, `unknown_line`, `invalid_quantity`, `over_return`.
    pub fn create_rma(&mut self, body: &Value) -> Result<(bool, Rma)> {
        let external_ref = required_str(body, "external_ref")?.to_owned();
        if let Some(rma) = self
            .rma_by_ref
            .get(&external_ref)
            .and_then(|n| self.rmas.get(n))
        {
            return Ok((false, rma.clone()));
        }
        let key = required_str(body, "order")?;
        let number = self.order_number(key).ok_or_else(|| {
            ApiError::unprocessable(Code::UnknownOrder, format!("unknown order {key:?}"))
        })?;
        let reason = optional_str(body, "reason")?.unwrap_or("").to_owned();
        let order = &self.orders[&number];
        let mut wanted: Vec<(u32, String, u64)> = Vec::new();
        for (index, request) in required_array(body, "lines")?.iter().enumerate() {
            let line = match (
                request.get("line").and_then(Value::as_u64),
                optional_str(request, "sku")?,
            ) {
                (Some(n), _) => order.lines.iter().find(|l| u64::from(l.line) == n),
                (None, Some(sku)) => order.lines.iter().find(|l| l.sku == sku),
                (None, None) => None,
            }
            .ok_or_else(|| {
                ApiError::unprocessable(
                    Code::UnknownLine,
                    format!("lines[{index}] names no line of order {number} (give line or sku)"),
                )
            })?;
            let quantity = parse_qty(
                request.get("quantity").unwrap_or(&Value::Null),
                &format!("lines[{index}].quantity"),
            )?;
            let already: u64 = wanted
                .iter()
                .filter(|w| w.0 == line.line)
                .map(|w| w.2)
                .sum();
            let returnable = line
                .shipped
                .saturating_sub(line.return_authorised + already);
            if quantity > returnable {
                return Err(ApiError::unprocessable(
                    Code::OverReturn,
                    format!(
                        "cannot return {quantity} of line {} ({}): {} shipped, {} already authorised",
                        line.line, line.sku, line.shipped, line.return_authorised
                    ),
                )
                .with_details(json!({
                    "order": number,
                    "line": line.line,
                    "sku": line.sku,
                    "shipped": line.shipped,
                    "already_authorised": line.return_authorised + already,
                    "requested": quantity,
                })));
            }
            wanted.push((line.line, line.sku.clone(), quantity));
        }
        let rma_number = Self::next_id(&mut self.counters.rma, "RMA");
        let customer = order.customer.clone();
        let mut lines: Vec<RmaLine> = Vec::new();
        for (line, sku, quantity) in &wanted {
            match lines.iter_mut().find(|l| l.line == *line) {
                Some(existing) => existing.authorised += quantity,
                None => lines.push(RmaLine {
                    line: *line,
                    sku: sku.clone(),
                    authorised: *quantity,
                    received: 0,
                    credited: 0,
                }),
            }
        }
        if let Some(order) = self.orders.get_mut(&number) {
            for rma_line in &lines {
                if let Some(line) = order.lines.iter_mut().find(|l| l.line == rma_line.line) {
                    line.return_authorised += rma_line.authorised;
                }
            }
            order.rmas.push(rma_number.clone());
        }
        let rma = Rma {
            number: rma_number.clone(),
            external_ref: external_ref.clone(),
            order: number.clone(),
            customer,
            reason,
            status: "authorised".to_owned(),
            lines,
            receipts: Vec::new(),
            credit_memos: Vec::new(),
            authorised_at: self.now,
        };
        self.rmas.insert(rma_number.clone(), rma.clone());
        self.rma_by_ref.insert(external_ref, rma_number.clone());
        let data = self.rma_event(&rma_number);
        self.emit("rma.authorised", data);
        if let Some(delay) = self.config.auto_receive_returns_after_ms {
            self.schedule(self.now + delay, Task::ReceiveReturn(rma_number));
        }
        Ok((true, rma))
    }

    fn rma_event(&self, number: &str) -> Value {
        let Some(rma) = self.rmas.get(number) else {
            return Value::Null;
        };
        let order_ref = self.orders.get(&rma.order).map(|o| o.external_ref.clone());
        json!({
            "rma": rma.number,
            "external_ref": rma.external_ref,
            "order": rma.order,
            "order_external_ref": order_ref,
            "customer": rma.customer,
            "status": rma.status,
            "lines": rma.lines,
        })
    }

    fn require_rma(&self, key: &str) -> Result<String> {
        self.rma(key)
            .map(|r| r.number.clone())
            .ok_or_else(|| ApiError::not_found(Code::UnknownRma, format!("unknown RMA {key:?}")))
    }

    fn refresh_rma(&mut self, number: &str) {
        let refunded = {
            let Some(rma) = self.rmas.get(number) else {
                return;
            };
            !rma.credit_memos.is_empty()
                && rma
                    .credit_memos
                    .iter()
                    .all(|m| self.credit_memos.get(m).is_some_and(|m| m.refund.is_some()))
        };
        let Some(rma) = self.rmas.get_mut(number) else {
            return;
        };
        let authorised: u64 = rma.lines.iter().map(|l| l.authorised).sum();
        let received: u64 = rma.lines.iter().map(|l| l.received).sum();
        let credited: u64 = rma.lines.iter().map(|l| l.credited).sum();
        rma.status = if received == authorised && credited == authorised && refunded {
            "refunded"
        } else if received == authorised && credited == authorised {
            "credited"
        } else if received == authorised {
            "received"
        } else if received > 0 {
            "partially_received"
        } else {
            "authorised"
        }
        .to_owned();
    }

    /// `POST /api/v1/rmas/{number}/receipts`: the warehouse receives returned goods. Without
    /// `lines`, everything still outstanding is received.
    ///
    /// # Errors
    /// `unknown_rma`, `unknown_line`, `unknown_location`, `invalid_quantity`, `over_return`.
    pub fn receive_return(&mut self, key: &str, body: &Value) -> Result<Rma> {
        let number = self.require_rma(key)?;
        let rma = &self.rmas[&number];
        let mut receive: Vec<(u32, String, u64)> = Vec::new();
        match body.get("lines") {
            None | Some(Value::Null) => {
                for line in &rma.lines {
                    if line.authorised > line.received {
                        receive.push((
                            line.line,
                            line.sku.clone(),
                            line.authorised - line.received,
                        ));
                    }
                }
            }
            Some(_) => {
                for (index, request) in required_array(body, "lines")?.iter().enumerate() {
                    let line_no = request.get("line").and_then(Value::as_u64);
                    let sku = optional_str(request, "sku")?;
                    let line = rma
                        .lines
                        .iter()
                        .find(|l| {
                            line_no.is_some_and(|n| u64::from(l.line) == n)
                                || (line_no.is_none() && sku == Some(l.sku.as_str()))
                        })
                        .ok_or_else(|| {
                            ApiError::unprocessable(
                                Code::UnknownLine,
                                format!("lines[{index}] names no line of RMA {number}"),
                            )
                        })?;
                    let quantity = parse_qty(
                        request.get("quantity").unwrap_or(&Value::Null),
                        &format!("lines[{index}].quantity"),
                    )?;
                    let already: u64 = receive
                        .iter()
                        .filter(|r| r.0 == line.line)
                        .map(|r| r.2)
                        .sum();
                    if line.received + already + quantity > line.authorised {
                        return Err(ApiError::unprocessable(
                            Code::OverReturn,
                            format!(
                                "cannot receive {quantity} of line {}: {} authorised, {} already received",
                                line.line, line.authorised, line.received + already
                            ),
                        )
                        .with_details(json!({
                            "rma": number,
                            "line": line.line,
                            "authorised": line.authorised,
                            "received": line.received + already,
                            "requested": quantity,
                        })));
                    }
                    receive.push((line.line, line.sku.clone(), quantity));
                }
            }
        }
        if receive.is_empty() {
            return Ok(rma.clone());
        }
        let location = match optional_str(body, "location")? {
            Some(code) => {
                self.require_location(code)?;
                code.to_owned()
            }
            None => self.return_location(&rma.order),
        };
        let order_number = rma.order.clone();
        if let Some(rma) = self.rmas.get_mut(&number) {
            for (line_no, _, quantity) in &receive {
                if let Some(line) = rma.lines.iter_mut().find(|l| l.line == *line_no) {
                    line.received += quantity;
                }
            }
            rma.receipts.push(Receipt {
                location: location.clone(),
                lines: receive
                    .iter()
                    .map(|(line, sku, quantity)| LineQty {
                        line: *line,
                        sku: sku.clone(),
                        quantity: *quantity,
                    })
                    .collect(),
                received_at: self.now,
            });
        }
        if let Some(order) = self.orders.get_mut(&order_number) {
            for (line_no, _, quantity) in &receive {
                if let Some(line) = order.lines.iter_mut().find(|l| l.line == *line_no) {
                    line.returned += quantity;
                }
            }
        }
        let mut skus = BTreeSet::new();
        for (_, sku, quantity) in &receive {
            self.stock_mut(sku, &location).on_hand += quantity;
            skus.insert(sku.clone());
        }
        self.refresh_rma(&number);
        let mut data = self.rma_event(&number);
        data["location"] = json!(location);
        data["received"] = json!(
            receive
                .iter()
                .map(
                    |(line, sku, quantity)| json!({"line": line, "sku": sku, "quantity": quantity})
                )
                .collect::<Vec<_>>()
        );
        self.emit("rma.received", data);
        for sku in skus {
            self.emit_inventory(&sku, &location, "return_received");
            self.fill_backorders(&sku, &location);
        }
        Ok(self.rmas[&number].clone())
    }

    /// Returns go back to the location that shipped the order's first shipment.
    fn return_location(&self, order: &str) -> String {
        self.orders
            .get(order)
            .and_then(|o| o.shipments.first())
            .and_then(|s| self.shipments.get(s))
            .map(|s| s.location.clone())
            .or_else(|| self.locations.keys().next().cloned())
            .unwrap_or_default()
    }

    /// Scheduled arrival of returned goods (when configured).
    pub(crate) fn auto_receive(&mut self, number: &str) {
        // Errors cannot happen here: no lines given means "what is outstanding".
        let _ = self.receive_return(number, &json!({}));
    }

    /// `POST /api/v1/rmas/{number}/credit-memos`: credits what was received and not yet
    /// credited, at the invoiced unit price including tax.
    ///
    /// # Errors
    /// `unknown_rma`, `nothing_to_credit`.
    pub fn issue_credit_memo(&mut self, key: &str) -> Result<CreditMemo> {
        let number = self.require_rma(key)?;
        let rma = &self.rmas[&number];
        let order = &self.orders[&rma.order];
        let mut lines = Vec::new();
        for rma_line in &rma.lines {
            let quantity = rma_line.received - rma_line.credited;
            if quantity == 0 {
                continue;
            }
            let Some(line) = order.lines.iter().find(|l| l.line == rma_line.line) else {
                continue;
            };
            // The invoiced unit price incl. tax: taken from the invoice line when there is one.
            let incl = order
                .invoices
                .iter()
                .filter_map(|n| self.invoices.get(n))
                .flat_map(|i| i.lines.iter())
                .find(|l| l.line == rma_line.line)
                .map_or_else(
                    || line.unit_price_incl_tax().normalize(),
                    |l| l.unit_price_incl_tax,
                );
            lines.push(CreditMemoLine {
                line: rma_line.line,
                sku: rma_line.sku.clone(),
                quantity,
                unit_price_incl_tax: incl,
                amount: cents(Decimal::from(quantity) * incl),
            });
        }
        if lines.is_empty() {
            return Err(ApiError::conflict(
                Code::NothingToCredit,
                format!("RMA {number} has nothing received that is not already credited"),
            ));
        }
        let memo_number = Self::next_id(&mut self.counters.credit_memo, "CM");
        let total: Decimal = lines.iter().map(|l| l.amount).sum();
        let memo = CreditMemo {
            number: memo_number.clone(),
            rma: number.clone(),
            order: rma.order.clone(),
            customer: rma.customer.clone(),
            status: "open".to_owned(),
            currency: self.config.currency.clone(),
            lines,
            total_amount: cents(total),
            issued_at: self.now,
            refund: None,
        };
        let order_number = rma.order.clone();
        if let Some(rma) = self.rmas.get_mut(&number) {
            for line in &mut rma.lines {
                line.credited = line.received;
            }
            rma.credit_memos.push(memo_number.clone());
        }
        if let Some(order) = self.orders.get_mut(&order_number) {
            for memo_line in &memo.lines {
                if let Some(line) = order.lines.iter_mut().find(|l| l.line == memo_line.line) {
                    line.credited += memo_line.quantity;
                }
            }
        }
        if let Some(customer) = self.customers.get_mut(&memo.customer) {
            customer.open_balance -= memo.total_amount;
        }
        self.credit_memos.insert(memo_number.clone(), memo.clone());
        self.refresh_rma(&number);
        let external_ref = self.rmas.get(&number).map(|r| r.external_ref.clone());
        self.emit(
            "credit_memo.issued",
            json!({
                "credit_memo": memo.number,
                "rma": number,
                "rma_external_ref": external_ref,
                "order": memo.order,
                "customer": memo.customer,
                "currency": memo.currency,
                "total_amount": memo.total_amount,
                "lines": memo.lines,
            }),
        );
        self.refresh_credit(&memo.customer);
        Ok(memo)
    }

    /// `POST /api/v1/credit-memos/{number}/refunds`: pays the credit memo back. A second call
    /// answers the refund already made. Returns whether it was created.
    ///
    /// # Errors
    /// `unknown_credit_memo`.
    pub fn refund(&mut self, number: &str, body: &Value) -> Result<(bool, Refund)> {
        let memo = self.credit_memos.get(number).ok_or_else(|| {
            ApiError::not_found(
                Code::UnknownCreditMemo,
                format!("unknown credit memo {number:?}"),
            )
        })?;
        if let Some(refund) = memo.refund.as_ref().and_then(|id| self.refunds.get(id)) {
            return Ok((false, refund.clone()));
        }
        let method = optional_str(body, "method")?
            .unwrap_or("original_payment_method")
            .to_owned();
        let id = Self::next_id(&mut self.counters.refund, "RF");
        let refund = Refund {
            id: id.clone(),
            credit_memo: number.to_owned(),
            customer: memo.customer.clone(),
            amount: memo.total_amount,
            method,
            issued_at: self.now,
        };
        let rma = memo.rma.clone();
        if let Some(memo) = self.credit_memos.get_mut(number) {
            memo.refund = Some(id.clone());
            memo.status = "refunded".to_owned();
        }
        if let Some(customer) = self.customers.get_mut(&refund.customer) {
            customer.open_balance += refund.amount;
        }
        self.refunds.insert(id, refund.clone());
        self.refresh_rma(&rma);
        let external_ref = self.rmas.get(&rma).map(|r| r.external_ref.clone());
        self.emit(
            "refund.issued",
            json!({
                "refund": refund.id,
                "credit_memo": number,
                "rma": rma,
                "rma_external_ref": external_ref,
                "customer": refund.customer,
                "amount": refund.amount,
                "method": refund.method,
            }),
        );
        self.refresh_credit(&refund.customer);
        Ok((true, refund))
    }
}
