//! ERP entities: master data (locations, items, stock, prices, promotions, customers) and
//! transactions (orders, shipments, invoices, payments, RMAs, credit memos, refunds).
//!
//! They serialize as the API shows them: times as RFC 3339, money as decimal strings; the same
//! form is read back when a persisted state is restored.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::clock::{de_opt_time, de_time, ser_opt_time, ser_time};

/// Rounds a money amount to cents (half away from zero) and shows two decimals.
pub fn cents(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

/// Rounds a unit price to 4 decimals, showing at least 2.
pub fn unit_price(amount: Decimal) -> Decimal {
    let mut rounded = amount
        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    if rounded.scale() < 2 {
        rounded.rescale(2);
    }
    rounded
}

/// Warehouse or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    /// Distribution centre.
    Warehouse,
    /// Store that can ship to customers (ship-from-store).
    Store,
}

/// A stock location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    /// Code, e.g. `WH-01`, `ST-03`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Warehouse or store.
    pub kind: LocationKind,
    /// Sales region.
    pub region: String,
}

/// A sellable item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit of measure (`EA`, `BOX`, `PK`).
    pub uom: String,
    /// Base price list price.
    pub list_price: Decimal,
    /// Sales tax rate (0.20 = 20 %).
    pub tax_rate: Decimal,
}

/// Stock of one item at one location.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// Physically in the building.
    pub on_hand: u64,
    /// Promised to open orders.
    pub reserved: u64,
}

impl Stock {
    /// On hand minus reserved.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// Customer tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    /// Best customers: negotiated prices, high limits.
    Gold,
    /// Regular accounts.
    Silver,
    /// Small accounts.
    Bronze,
}

/// Credit standing derived from exposure against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditStatus {
    /// Exposure below 80 % of the limit.
    Good,
    /// Exposure between 80 % and 100 % of the limit.
    NearLimit,
    /// Exposure above the limit.
    OverLimit,
    /// Put on hold by credit control: no new orders.
    OnHold,
}

/// A customer account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    /// ERP customer number, e.g. `C-10001`.
    pub number: String,
    /// External reference (the Salesforce account reference).
    pub external_ref: String,
    /// Name.
    pub name: String,
    /// Tier.
    pub tier: Tier,
    /// Credit limit.
    pub credit_limit: Decimal,
    /// Receivable balance: invoices − payments − credit memos + refunds.
    pub open_balance: Decimal,
    /// Payment terms code (`NET30`, ...).
    pub payment_terms: String,
    /// Sales region.
    pub region: String,
    /// Credit hold set by credit control.
    pub on_hold: bool,
    /// Last credit status published.
    pub credit_status: CreditStatus,
}

impl Customer {
    /// Days to pay under the customer's terms (`NET30` → 30; unknown → 30).
    pub fn terms_days(&self) -> i64 {
        self.payment_terms
            .strip_prefix("NET")
            .and_then(|d| d.parse().ok())
            .unwrap_or(30)
    }
}

/// Promotion discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// `value` percent off the list price.
    Percent,
    /// `value` off the list price per unit.
    Fixed,
}

/// A time-boxed promotion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotion {
    /// Identifier, e.g. `PROMO-001`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Item it applies to; `None` = every item.
    pub sku: Option<String>,
    /// First moment it applies.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub starts_at: i64,
    /// First moment it no longer applies.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub ends_at: i64,
    /// Percent or fixed.
    pub kind: DiscountKind,
    /// Percent (e.g. `15`) or amount per unit.
    pub value: Decimal,
}

impl Promotion {
    /// Whether it applies to `sku` at `at`.
    pub fn applies(&self, sku: &str, at: i64) -> bool {
        self.starts_at <= at && at < self.ends_at && self.sku.as_deref().is_none_or(|s| s == sku)
    }

    /// Promotional unit price from a list price (never below zero).
    pub fn price_from(&self, list: Decimal) -> Decimal {
        let price = match self.kind {
            DiscountKind::Percent => {
                list * (Decimal::ONE_HUNDRED - self.value) / Decimal::ONE_HUNDRED
            }
            DiscountKind::Fixed => list - self.value,
        };
        unit_price(price.max(Decimal::ZERO))
    }
}

/// One order line with its quantities through the lifecycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderLine {
    /// Line number (1-based).
    pub line: u32,
    /// The hub's line reference, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ref: Option<String>,
    /// Item.
    pub sku: String,
    /// Ordered quantity.
    pub quantity: u64,
    /// Unit price charged (before tax).
    pub unit_price: Decimal,
    /// List price at booking.
    pub list_price: Decimal,
    /// Promotion applied, if any.
    pub promotion: Option<String>,
    /// Tax rate.
    pub tax_rate: Decimal,
    /// Untaxed amount.
    pub amount: Decimal,
    /// Tax amount.
    pub tax: Decimal,
    /// Amount including tax.
    pub total: Decimal,
    /// Reserved from stock so far (including what has shipped since).
    pub allocated: u64,
    /// Waiting for stock, per location.
    pub backordered_at: BTreeMap<String, u64>,
    /// Waiting for stock, in total.
    pub backordered: u64,
    /// Handed to carriers.
    pub shipped: u64,
    /// Delivered to the customer.
    pub delivered: u64,
    /// Invoiced.
    pub invoiced: u64,
    /// Authorised for return.
    pub return_authorised: u64,
    /// Received back.
    pub returned: u64,
    /// Credited.
    pub credited: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl OrderLine {
    /// Unit price including tax, exact.
    pub fn unit_price_incl_tax(&self) -> Decimal {
        self.unit_price * (Decimal::ONE + self.tax_rate)
    }
}

/// A sales order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// ERP order number, e.g. `SO-000001`.
    pub number: String,
    /// External reference (the Salesforce order number): unique.
    pub external_ref: String,
    /// Customer number.
    pub customer: String,
    /// Derived lifecycle status (see the README).
    pub status: String,
    /// `none`, `waiting`, `partially_shipped`, `shipped`, `delivered`.
    pub shipment_status: String,
    /// `none`, `awaiting_payment`, `partially_paid`, `paid`.
    pub invoice_status: String,
    /// Currency.
    pub currency: String,
    /// Region shipped to.
    pub ship_to_region: String,
    /// Booked at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub booked_at: i64,
    /// Cancelled at.
    #[serde(serialize_with = "ser_opt_time", deserialize_with = "de_opt_time")]
    pub cancelled_at: Option<i64>,
    /// Lines.
    pub lines: Vec<OrderLine>,
    /// Untaxed total.
    pub untaxed_amount: Decimal,
    /// Tax total.
    pub tax_amount: Decimal,
    /// Total including tax.
    pub total_amount: Decimal,
    /// Shipment ids.
    pub shipments: Vec<String>,
    /// Invoice numbers.
    pub invoices: Vec<String>,
    /// RMA numbers.
    pub rmas: Vec<String>,
}

/// Shipment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentState {
    /// Stock reserved, waiting to be picked.
    Allocated,
    /// Picked from the shelves.
    Picked,
    /// Packed.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered.
    Delivered,
    /// Cancelled with its order.
    Cancelled,
}

impl ShipmentState {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentState::Allocated => "allocated",
            ShipmentState::Picked => "picked",
            ShipmentState::Packed => "packed",
            ShipmentState::Shipped => "shipped",
            ShipmentState::Delivered => "delivered",
            ShipmentState::Cancelled => "cancelled",
        }
    }
}

/// A quantity of one order line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineQty {
    /// Order line number.
    pub line: u32,
    /// Item.
    pub sku: String,
    /// Quantity.
    pub quantity: u64,
}

/// A milestone reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Milestone {
    /// State reached.
    pub status: ShipmentState,
    /// When.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub at: i64,
}

/// A customer shipment from one location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shipment {
    /// Identifier, e.g. `SH-000001`.
    pub id: String,
    /// Order number.
    pub order: String,
    /// Order external reference.
    pub order_external_ref: String,
    /// Shipping location.
    pub location: String,
    /// State.
    pub status: ShipmentState,
    /// Lines.
    pub lines: Vec<LineQty>,
    /// Carrier, from shipping on.
    pub carrier: Option<String>,
    /// Tracking number, from shipping on.
    pub tracking_number: Option<String>,
    /// Whether it ships stock that had been backordered.
    pub backorder: bool,
    /// Milestones reached, in order.
    pub milestones: Vec<Milestone>,
    /// Expected delivery, once shipped.
    #[serde(serialize_with = "ser_opt_time", deserialize_with = "de_opt_time")]
    pub expected_delivery_at: Option<i64>,
}

/// Invoice status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Nothing paid yet.
    Open,
    /// Part paid.
    PartiallyPaid,
    /// Fully paid.
    Paid,
}

/// One invoice line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvoiceLine {
    /// Order line number.
    pub line: u32,
    /// Item.
    pub sku: String,
    /// Quantity.
    pub quantity: u64,
    /// Unit price before tax.
    pub unit_price: Decimal,
    /// Tax rate.
    pub tax_rate: Decimal,
    /// Unit price including tax, exact.
    pub unit_price_incl_tax: Decimal,
    /// Untaxed amount (cents).
    pub amount: Decimal,
    /// Tax (cents).
    pub tax: Decimal,
    /// Total including tax (cents) = round(quantity × unit price incl. tax).
    pub total: Decimal,
}

/// A customer invoice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invoice {
    /// Number, e.g. `INV-000001`.
    pub number: String,
    /// Order number.
    pub order: String,
    /// Order external reference.
    pub order_external_ref: String,
    /// Customer number.
    pub customer: String,
    /// Shipment invoiced, when invoicing per shipment.
    pub shipment: Option<String>,
    /// Status.
    pub status: InvoiceStatus,
    /// Currency.
    pub currency: String,
    /// Lines.
    pub lines: Vec<InvoiceLine>,
    /// Untaxed total.
    pub untaxed_amount: Decimal,
    /// Tax total.
    pub tax_amount: Decimal,
    /// Total including tax.
    pub total_amount: Decimal,
    /// Paid so far.
    pub amount_paid: Decimal,
    /// Still due.
    pub amount_due: Decimal,
    /// Issued at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub issued_at: i64,
    /// Due date under the customer's terms.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub due_at: i64,
    /// Payment ids.
    pub payments: Vec<String>,
}

/// A payment received against an invoice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    /// Identifier, e.g. `PAY-000001`.
    pub id: String,
    /// Invoice number.
    pub invoice: String,
    /// Customer number.
    pub customer: String,
    /// Amount.
    pub amount: Decimal,
    /// Method (`bank_transfer`, `card`, ...).
    pub method: String,
    /// External reference, if recorded through the API.
    pub external_ref: Option<String>,
    /// Received at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub received_at: i64,
}

/// RMA line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RmaLine {
    /// Order line number.
    pub line: u32,
    /// Item.
    pub sku: String,
    /// Authorised for return.
    pub authorised: u64,
    /// Received so far.
    pub received: u64,
    /// Credited so far.
    pub credited: u64,
}

/// A goods receipt against an RMA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// Location the goods went back to.
    pub location: String,
    /// Quantities received.
    pub lines: Vec<LineQty>,
    /// Received at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub received_at: i64,
}

/// A return merchandise authorisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rma {
    /// Number, e.g. `RMA-000001`.
    pub number: String,
    /// External reference (the Salesforce case number): unique.
    pub external_ref: String,
    /// Order number.
    pub order: String,
    /// Customer number.
    pub customer: String,
    /// Reason given.
    pub reason: String,
    /// `authorised`, `partially_received`, `received`, `credited`, `refunded`.
    pub status: String,
    /// Lines.
    pub lines: Vec<RmaLine>,
    /// Receipts.
    pub receipts: Vec<Receipt>,
    /// Credit memo numbers.
    pub credit_memos: Vec<String>,
    /// Authorised at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub authorised_at: i64,
}

/// A credit memo line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditMemoLine {
    /// Order line number.
    pub line: u32,
    /// Item.
    pub sku: String,
    /// Quantity credited.
    pub quantity: u64,
    /// Invoiced unit price including tax.
    pub unit_price_incl_tax: Decimal,
    /// Amount credited = round(quantity × unit price incl. tax).
    pub amount: Decimal,
}

/// A credit memo for returned goods.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditMemo {
    /// Number, e.g. `CM-000001`.
    pub number: String,
    /// RMA number.
    pub rma: String,
    /// Order number.
    pub order: String,
    /// Customer number.
    pub customer: String,
    /// `open` or `refunded`.
    pub status: String,
    /// Currency.
    pub currency: String,
    /// Lines.
    pub lines: Vec<CreditMemoLine>,
    /// Total credited.
    pub total_amount: Decimal,
    /// Issued at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub issued_at: i64,
    /// Refund id once refunded.
    pub refund: Option<String>,
}

/// A refund paid out for a credit memo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    /// Identifier, e.g. `RF-000001`.
    pub id: String,
    /// Credit memo number.
    pub credit_memo: String,
    /// Customer number.
    pub customer: String,
    /// Amount.
    pub amount: Decimal,
    /// Method.
    pub method: String,
    /// Issued at.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub issued_at: i64,
}

/// Stock on its way to a location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replenishment {
    /// Identifier, e.g. `PO-000001`.
    pub id: String,
    /// Item.
    pub sku: String,
    /// Destination.
    pub location: String,
    /// Quantity.
    pub quantity: u64,
    /// Arrival.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub arrives_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_rounded_half_away_from_zero_to_cents() {
        assert_eq!(cents(Decimal::new(23_985, 3)).to_string(), "23.99");
        assert_eq!(cents(Decimal::new(20, 0)).to_string(), "20.00");
        assert_eq!(unit_price(Decimal::new(169_915, 4)).to_string(), "16.9915");
        assert_eq!(unit_price(Decimal::new(18, 0)).to_string(), "18.00");
    }
}
