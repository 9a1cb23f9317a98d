//! The simulator's JSON answers, as far as the adapter reads them. Money is a decimal string
//! (a JSON number is refused, so a rounding float never slips in); times are RFC 3339.
//! Unknown fields are ignored so that a newer simulator does not break the adapter.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// `{"error": {"code", "message"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error member.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// `GET /api/v1/items`.
#[derive(Debug, Deserialize)]
pub(crate) struct Items {
    pub items: Vec<Item>,
}

/// A catalog item.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Item {
    pub sku: String,
    pub name: String,
    pub uom: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub list_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub tax_rate: Decimal,
}

/// `GET /api/v1/locations`.
#[derive(Debug, Deserialize)]
pub(crate) struct Locations {
    pub locations: Vec<Location>,
}

/// A stock location.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Location {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub region: String,
}

/// `POST /api/v1/price-quotes`.
#[derive(Debug, Deserialize)]
pub(crate) struct Quote {
    pub sku: String,
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub list_price: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub customer_price: Option<Decimal>,
    pub promotion: Option<PromotionRef>,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
}

/// The promotion a quote applied.
#[derive(Debug, Deserialize)]
pub(crate) struct PromotionRef {
    pub id: String,
}

/// `GET /api/v1/availability/{sku}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Availability {
    pub sku: String,
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub locations: Vec<StockRow>,
}

/// Stock at one location.
#[derive(Debug, Deserialize)]
pub(crate) struct StockRow {
    pub location: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// `POST /api/v1/credit-checks` and `GET /api/v1/customers/{key}/credit` (without the
/// decision fields).
#[derive(Debug, Deserialize)]
pub(crate) struct Credit {
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub credit_limit: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub open_balance: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub available_credit: Decimal,
    pub status: String,
    #[serde(default)]
    pub approved: Option<bool>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/fulfilment-options`.
#[derive(Debug, Deserialize)]
pub(crate) struct FulfilmentOptions {
    pub options: Vec<FulfilmentOption>,
}

/// One option.
#[derive(Debug, Deserialize)]
pub(crate) struct FulfilmentOption {
    pub kind: String,
    pub locations: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub promised_delivery_at: Option<OffsetDateTime>,
}

/// An order (`POST /api/v1/orders`, `GET /api/v1/orders/{key}`, cancel).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Order {
    pub number: String,
    pub external_ref: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    pub lines: Vec<OrderLine>,
}

/// An order line.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrderLine {
    pub line: u32,
    #[serde(default)]
    pub line_ref: Option<String>,
    pub sku: String,
    pub quantity: u32,
    pub allocated: u32,
    pub backordered: u32,
    /// Read by the conformance driver.
    #[serde(default)]
    #[cfg_attr(not(any(test, feature = "conformance")), allow(dead_code))]
    pub backordered_at: BTreeMap<String, u32>,
    pub shipped: u32,
    pub delivered: u32,
}

/// `GET /api/v1/orders/{number}/shipments`.
#[derive(Debug, Deserialize)]
pub(crate) struct Shipments {
    pub shipments: Vec<Shipment>,
}

/// A shipment.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Shipment {
    pub id: String,
    pub location: String,
    pub status: String,
    pub lines: Vec<LineQty>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub milestones: Vec<MilestoneAt>,
}

/// A milestone reached.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MilestoneAt {
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A quantity of one order line.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LineQty {
    pub line: u32,
    pub quantity: u32,
}

/// `GET /api/v1/orders/{number}/invoices`.
#[derive(Debug, Deserialize)]
pub(crate) struct Invoices {
    pub invoices: Vec<Invoice>,
}

/// An invoice.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Invoice {
    pub number: String,
    pub lines: Vec<LineQty>,
    #[serde(with = "rust_decimal::serde::str")]
    pub untaxed_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub tax_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount_paid: Decimal,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// A return authorisation.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Rma {
    pub number: String,
    pub order: String,
    pub lines: Vec<RmaLine>,
}

/// An RMA line.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RmaLine {
    pub received: u32,
}

impl Rma {
    /// The receipt id the adapter gives the latest receipt: the RMA number and the units
    /// received so far. Units only grow, so every receipt gets its own id, and the change
    /// feed (which carries the same totals) names it the same way.
    pub fn receipt_id(&self) -> String {
        receipt_id(&self.number, &self.lines)
    }
}

/// See [`Rma::receipt_id`].
pub(crate) fn receipt_id(rma: &str, lines: &[RmaLine]) -> String {
    let units: u64 = lines.iter().map(|l| u64::from(l.received)).sum();
    format!("{rma}/R{units}")
}

/// A credit memo.
#[derive(Debug, Deserialize)]
pub(crate) struct CreditMemo {
    pub number: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
}

/// A refund.
#[derive(Debug, Deserialize)]
pub(crate) struct Refund {
    pub id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// A customer (`PUT`/`GET /api/v1/customers/{key}`, `GET /admin/customers`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Customer {
    pub number: String,
    pub external_ref: String,
    pub name: String,
    pub tier: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub credit_limit: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub open_balance: Decimal,
    pub payment_terms: String,
    pub region: String,
    pub on_hold: bool,
}

/// `GET /admin/customers`.
#[derive(Debug, Deserialize)]
pub(crate) struct Customers {
    pub customers: Vec<Customer>,
}

/// `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct Feed {
    pub events: Vec<FeedEvent>,
    pub next_after: u64,
}

/// One delivery of the change feed.
#[derive(Debug, Deserialize)]
pub(crate) struct FeedEvent {
    pub position: u64,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: Value,
}

/// `data` of `order.booked`.
#[derive(Debug, Deserialize)]
pub(crate) struct BookedData {
    pub order: String,
    pub external_ref: String,
    pub lines: Vec<BookedLine>,
}

/// A line of `order.booked`.
#[derive(Debug, Deserialize)]
pub(crate) struct BookedLine {
    pub line: u32,
    #[serde(default)]
    pub line_ref: Option<String>,
}

/// `data` of `order.backordered`.
#[derive(Debug, Deserialize)]
pub(crate) struct BackorderedData {
    pub order: String,
    pub external_ref: String,
    pub lines: Vec<LineQty>,
}

/// `data` of `order.allocated`.
#[derive(Debug, Deserialize)]
pub(crate) struct AllocatedData {
    pub order: String,
    pub external_ref: String,
    pub location: String,
    pub backorder: bool,
    pub lines: Vec<LineQty>,
}

/// `data` of `order.cancelled`.
#[derive(Debug, Deserialize)]
pub(crate) struct CancelledData {
    pub external_ref: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `data` of `shipment.picked|packed|shipped|delivered`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShipmentData {
    pub shipment: String,
    pub order: String,
    pub external_ref: String,
    pub location: String,
    pub lines: Vec<LineQty>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

/// `data` of `inventory.changed`.
#[derive(Debug, Deserialize)]
pub(crate) struct InventoryData {
    pub sku: String,
    pub location: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

/// `data` of `invoice.issued`.
#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceData {
    pub invoice: String,
    pub order: String,
    pub external_ref: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub untaxed_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub tax_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
    pub lines: Vec<LineQty>,
}

/// `data` of `payment.received`.
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentData {
    pub payment: String,
    pub invoice: Option<String>,
    pub external_ref: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// `data` of `rma.authorised` and `rma.received`.
#[derive(Debug, Deserialize)]
pub(crate) struct RmaData {
    pub rma: String,
    pub external_ref: String,
    pub order: String,
    pub lines: Vec<RmaLine>,
    #[serde(default)]
    pub received: Option<Vec<LineQty>>,
}

/// `data` of `credit_memo.issued`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreditMemoData {
    pub credit_memo: String,
    pub rma: String,
    pub rma_external_ref: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
}

/// `data` of `refund.issued`.
#[derive(Debug, Deserialize)]
pub(crate) struct RefundData {
    pub refund: String,
    pub credit_memo: String,
    pub rma: String,
    pub rma_external_ref: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// `data` of `customer.credit_status_changed`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreditStatusData {
    pub external_ref: String,
    pub status: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub credit_limit: Decimal,
}
