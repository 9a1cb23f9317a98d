//! Credit control: exposure = open receivable balance + value booked but not yet invoiced;
//! available credit = limit − exposure. Checks, status, and status-change events.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Result;
use crate::model::{CreditStatus, cents};
use crate::ops::{parse_money, required_str};
use crate::state::State;

/// Credit position of a customer.
#[derive(Debug, Clone, Serialize)]
pub struct CreditView {
    /// Customer number.
    pub customer: String,
    /// External reference.
    pub external_ref: String,
    /// Currency.
    pub currency: String,
    /// Credit limit.
    pub credit_limit: Decimal,
    /// Receivable balance.
    pub open_balance: Decimal,
    /// Booked, not yet invoiced.
    pub open_orders: Decimal,
    /// Balance + open orders.
    pub exposure: Decimal,
    /// Limit − exposure (negative when over the limit).
    pub available_credit: Decimal,
    /// Status.
    pub status: CreditStatus,
    /// On credit hold.
    pub on_hold: bool,
}

impl State {
    /// Credit position of a customer (number); `None` if unknown.
    pub fn credit_view(&self, number: &str) -> Option<CreditView> {
        let customer = self.customers.get(number)?;
        let open_orders: Decimal = self
            .uninvoiced
            .get(number)
            .map(|orders| orders.values().copied().sum())
            .unwrap_or_default();
        let exposure = cents(customer.open_balance + open_orders);
        Some(CreditView {
            customer: customer.number.clone(),
            external_ref: customer.external_ref.clone(),
            currency: self.config.currency.clone(),
            credit_limit: cents(customer.credit_limit),
            open_balance: cents(customer.open_balance),
            open_orders: cents(open_orders),
            exposure,
            available_credit: cents(customer.credit_limit - exposure),
            status: Self::status_of(customer.on_hold, customer.credit_limit, exposure),
            on_hold: customer.on_hold,
        })
    }

    fn status_of(on_hold: bool, limit: Decimal, exposure: Decimal) -> CreditStatus {
        if on_hold {
            CreditStatus::OnHold
        } else if exposure > limit {
            CreditStatus::OverLimit
        } else if exposure * Decimal::ONE_HUNDRED >= limit * Decimal::from(80)
            && exposure > Decimal::ZERO
        {
            CreditStatus::NearLimit
        } else {
            CreditStatus::Good
        }
    }

    /// Records the uninvoiced value of an order (zero removes it).
    pub(crate) fn set_uninvoiced(&mut self, customer: &str, order: &str, value: Decimal) {
        let orders = self.uninvoiced.entry(customer.to_owned()).or_default();
        if value.is_zero() {
            orders.remove(order);
        } else {
            orders.insert(order.to_owned(), value);
        }
    }

    /// Recomputes a customer's credit status and publishes a change.
    pub(crate) fn refresh_credit(&mut self, number: &str) {
        let Some(view) = self.credit_view(number) else {
            return;
        };
        let Some(customer) = self.customers.get_mut(number) else {
            return;
        };
        if customer.credit_status == view.status {
            return;
        }
        let previous = customer.credit_status;
        customer.credit_status = view.status;
        let data = json!({
            "customer": view.customer,
            "external_ref": view.external_ref,
            "status": view.status,
            "previous_status": previous,
            "credit_limit": view.credit_limit,
            "exposure": view.exposure,
            "available_credit": view.available_credit,
        });
        self.emit("customer.credit_status_changed", data);
    }

    /// `POST /api/v1/credit-checks`: would `amount` more fit in the customer's credit?
    ///
    /// # Errors
    /// `unknown_customer`, `invalid_money`, `negative_money`.
    pub fn credit_check(&mut self, body: &Value) -> Result<Value> {
        let number = self.require_customer(required_str(body, "customer")?)?;
        let amount = parse_money(body.get("amount").unwrap_or(&Value::Null), "amount")?;
        let Some(view) = self.credit_view(&number) else {
            return Err(crate::error::ApiError::unprocessable(
                crate::error::Code::UnknownCustomer,
                format!("unknown customer {number:?}"),
            ));
        };
        let (approved, reason) = if view.on_hold {
            (false, Some("customer_on_hold"))
        } else if amount > view.available_credit {
            (false, Some("credit_limit_exceeded"))
        } else {
            (true, None)
        };
        let mut answer = serde_json::to_value(&view).unwrap_or_default();
        answer["amount"] = json!(cents(amount));
        answer["approved"] = json!(approved);
        answer["reason"] = json!(reason);
        Ok(answer)
    }
}
