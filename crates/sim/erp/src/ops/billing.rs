//! Invoices and payments: invoices are issued from shipped quantities (per shipment or at order
//! completion); customers pay most on time, some late, some never; payments can also be
//! recorded through the API (idempotent by external reference).

use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::DAY_MS;
use crate::error::{ApiError, Code, Result};
use crate::model::{Invoice, InvoiceLine, InvoiceStatus, Payment, cents};
use crate::ops::{optional_str, parse_money, required_str};
use crate::state::{State, Task};

impl State {
    /// Issues an invoice for `(line, quantity)` pairs of an order.
    pub(crate) fn issue_invoice(
        &mut self,
        number: &str,
        shipment: Option<&str>,
        quantities: Vec<(u32, u64)>,
    ) {
        let Some(order) = self.orders.get_mut(number) else {
            return;
        };
        let mut lines = Vec::new();
        for (line_no, quantity) in quantities {
            let Some(line) = order.lines.iter_mut().find(|l| l.line == line_no) else {
                continue;
            };
            if quantity == 0 {
                continue;
            }
            line.invoiced += quantity;
            let qty = Decimal::from(quantity);
            let incl = line.unit_price_incl_tax();
            let amount = cents(qty * line.unit_price);
            let total = cents(qty * incl);
            lines.push(InvoiceLine {
                line: line.line,
                sku: line.sku.clone(),
                quantity,
                unit_price: line.unit_price,
                tax_rate: line.tax_rate,
                unit_price_incl_tax: incl.normalize(),
                amount,
                tax: total - amount,
                total,
            });
        }
        if lines.is_empty() {
            return;
        }
        let invoice_number = Self::next_id(&mut self.counters.invoice, "INV");
        order.invoices.push(invoice_number.clone());
        let customer_number = order.customer.clone();
        let order_ref = order.external_ref.clone();
        let untaxed: Decimal = lines.iter().map(|l| l.amount).sum();
        let total: Decimal = lines.iter().map(|l| l.total).sum();
        let terms_days = self
            .customers
            .get(&customer_number)
            .map_or(30, |c| c.terms_days());
        let invoice = Invoice {
            number: invoice_number.clone(),
            order: number.to_owned(),
            order_external_ref: order_ref,
            customer: customer_number.clone(),
            shipment: shipment.map(str::to_owned),
            status: InvoiceStatus::Open,
            currency: self.config.currency.clone(),
            lines,
            untaxed_amount: cents(untaxed),
            tax_amount: cents(total - untaxed),
            total_amount: cents(total),
            amount_paid: cents(Decimal::ZERO),
            amount_due: cents(total),
            issued_at: self.now,
            due_at: self.now + terms_days * DAY_MS,
            payments: Vec::new(),
        };
        if let Some(customer) = self.customers.get_mut(&customer_number) {
            customer.open_balance += invoice.total_amount;
        }
        let due_at = invoice.due_at;
        let data = json!({
            "invoice": invoice.number,
            "order": invoice.order,
            "external_ref": invoice.order_external_ref,
            "customer": invoice.customer,
            "shipment": invoice.shipment,
            "currency": invoice.currency,
            "untaxed_amount": invoice.untaxed_amount,
            "tax_amount": invoice.tax_amount,
            "total_amount": invoice.total_amount,
            "due_at": crate::clock::format_ms(invoice.due_at),
            "lines": invoice.lines,
        });
        self.invoices.insert(invoice_number.clone(), invoice);
        self.refresh_order(number);
        self.recompute_uninvoiced(number);
        self.emit("invoice.issued", data);
        self.refresh_credit(&customer_number);
        // Payment behaviour: on time, late, or never.
        let behaviour = self.config.payments.clone();
        let draw: f64 = self.rng.random();
        let when = if draw < behaviour.on_time_share {
            let (low, high) = (
                behaviour.delay_min_ms,
                behaviour.delay_max_ms.max(behaviour.delay_min_ms),
            );
            Some(self.now + self.rng.random_range(low..=high))
        } else if draw < behaviour.on_time_share + behaviour.late_share {
            Some(due_at + behaviour.late_extra_ms)
        } else {
            None
        };
        if let Some(at) = when {
            self.schedule(at, Task::Pay(invoice_number));
        }
    }

    /// Invoices the whole order once everything not cancelled has shipped.
    pub(crate) fn invoice_if_complete(&mut self, number: &str) {
        let Some(order) = self.orders.get(number) else {
            return;
        };
        let complete = order
            .lines
            .iter()
            .all(|l| l.shipped >= l.quantity - l.cancelled);
        if !complete {
            return;
        }
        let quantities = order
            .lines
            .iter()
            .map(|l| (l.line, l.shipped.saturating_sub(l.invoiced)))
            .collect();
        self.issue_invoice(number, None, quantities);
    }

    /// The customer pays what is still due on an invoice.
    pub(crate) fn auto_pay(&mut self, number: &str) {
        let Some(invoice) = self.invoices.get(number) else {
            return;
        };
        if invoice.amount_due <= Decimal::ZERO {
            return;
        }
        let amount = invoice.amount_due;
        self.apply_payment(number, amount, "bank_transfer", None);
    }

    fn apply_payment(
        &mut self,
        number: &str,
        amount: Decimal,
        method: &str,
        external_ref: Option<String>,
    ) -> Payment {
        let id = Self::next_id(&mut self.counters.payment, "PAY");
        let Some(invoice) = self.invoices.get_mut(number) else {
            return Payment {
                id,
                invoice: number.to_owned(),
                customer: String::new(),
                amount,
                method: method.to_owned(),
                external_ref,
                received_at: self.now,
            };
        };
        invoice.amount_paid = cents(invoice.amount_paid + amount);
        invoice.amount_due = cents(invoice.total_amount - invoice.amount_paid);
        invoice.status = if invoice.amount_due.is_zero() {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::PartiallyPaid
        };
        invoice.payments.push(id.clone());
        let payment = Payment {
            id: id.clone(),
            invoice: number.to_owned(),
            customer: invoice.customer.clone(),
            amount: cents(amount),
            method: method.to_owned(),
            external_ref: external_ref.clone(),
            received_at: self.now,
        };
        let data = json!({
            "payment": id,
            "invoice": invoice.number,
            "order": invoice.order,
            "external_ref": invoice.order_external_ref,
            "customer": invoice.customer,
            "amount": payment.amount,
            "method": method,
            "invoice_status": invoice.status,
            "amount_due": invoice.amount_due,
        });
        let order = invoice.order.clone();
        if let Some(customer) = self.customers.get_mut(&payment.customer) {
            customer.open_balance -= payment.amount;
        }
        if let Some(reference) = external_ref {
            self.payment_by_ref.insert(reference, id.clone());
        }
        self.payments.insert(id, payment.clone());
        self.refresh_order(&order);
        self.emit("payment.received", data);
        self.refresh_credit(&payment.customer);
        payment
    }

    /// `POST /api/v1/payments`: records a payment against an invoice. A repeated
    /// `external_ref` answers the payment already recorded.
    ///
    /// # Errors
    /// `unknown_invoice`, `invalid_money`, `negative_money`, `overpayment`.
    pub fn record_payment(&mut self, body: &Value) -> Result<(bool, Payment)> {
        let external_ref = optional_str(body, "external_ref")?.map(str::to_owned);
        if let Some(payment) = external_ref
            .as_ref()
            .and_then(|r| self.payment_by_ref.get(r))
            .and_then(|id| self.payments.get(id))
        {
            return Ok((false, payment.clone()));
        }
        let number = required_str(body, "invoice")?;
        let amount = parse_money(body.get("amount").unwrap_or(&Value::Null), "amount")?;
        let method = optional_str(body, "method")?
            .unwrap_or("bank_transfer")
            .to_owned();
        let invoice = self.invoices.get(number).ok_or_else(|| {
            ApiError::unprocessable(Code::UnknownInvoice, format!("unknown invoice {number:?}"))
        })?;
        if amount.is_zero() {
            return Err(ApiError::unprocessable(
                Code::InvalidMoney,
                "amount must be more than zero",
            ));
        }
        if amount > invoice.amount_due {
            return Err(ApiError::unprocessable(
                Code::Overpayment,
                format!(
                    "payment {amount} exceeds the {} due on invoice {number}",
                    invoice.amount_due
                ),
            )
            .with_details(json!({ "invoice": number, "amount_due": invoice.amount_due })));
        }
        let number = number.to_owned();
        Ok((
            true,
            self.apply_payment(&number, amount, &method, external_ref),
        ))
    }

    /// Invoices of an order.
    ///
    /// # Errors
    /// `unknown_order` (404).
    pub fn order_invoices(&self, key: &str) -> Result<Vec<Invoice>> {
        let order = self.order(key).ok_or_else(|| {
            ApiError::not_found(Code::UnknownOrder, format!("unknown order {key:?}"))
        })?;
        Ok(order
            .invoices
            .iter()
            .filter_map(|n| self.invoices.get(n))
            .cloned()
            .collect())
    }
}
