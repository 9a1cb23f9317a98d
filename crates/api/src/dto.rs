//! The wire types of the governed services: strict requests (unknown fields refused) and the
//! responses, each with its OpenAPI schema. Money is a decimal string (`"12.50"`), times are
//! RFC 3339.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Ids the API accepts for accounts, SKUs, order numbers and the like.
pub const ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
/// Decimal money amount with at most 4 decimals.
pub const MONEY_PATTERN: &str = r"^[0-9]{1,12}(\.[0-9]{1,4})?$";
/// ISO 4217 currency code.
pub const CURRENCY_PATTERN: &str = r"^[A-Z]{3}$";

/// Whether a text matches [`ID_PATTERN`].
pub fn is_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

/// Sales channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelName {
    /// Sales rep orders for business customers.
    B2b,
    /// Web shop.
    Web,
    /// Third-party marketplace.
    Marketplace,
    /// Point of sale.
    Store,
}

/// An order to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitOrder {
    /// Salesforce order number; when given, the order id is `SF-<number>`.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub salesforce_order_number: Option<String>,
    /// Salesforce record id of the order.
    #[schema(pattern = r"^[A-Za-z0-9]{15,18}$")]
    #[serde(default)]
    pub salesforce_id: Option<String>,
    /// The client's own order id; names the order when there is no Salesforce number.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub external_order_id: Option<String>,
    /// Customer account number.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub account: String,
    /// Channel.
    pub channel: ChannelName,
    /// Currency of every price.
    #[schema(pattern = r"^[A-Z]{3}$")]
    pub currency: String,
    /// Shipping region.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub region: Option<String>,
    /// Lines, numbered 1, 2, … in this order.
    #[schema(min_items = 1, max_items = 200)]
    pub lines: Vec<SubmitLine>,
}

/// One line to order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitLine {
    /// Product.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub sku: String,
    /// Units.
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: u32,
    /// Agreed price per unit, net of tax (decimal string).
    #[schema(pattern = r"^[0-9]{1,12}(\.[0-9]{1,4})?$", example = "12.50")]
    pub unit_price: String,
}

/// Outcome of synchronous validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationState {
    /// Every check passed; booking follows.
    Passed,
    /// A check failed; the order is rejected.
    Failed,
    /// The ERP did not answer in time (or its circuit is open): the order is accepted and
    /// validated before booking.
    Pending,
}

/// One validation check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckReport {
    /// `price`, `inventory`, `credit` or `fulfilment`.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// Explanation.
    pub detail: String,
}

/// How the order will be fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FulfilmentReport {
    /// Method (`ship_from_warehouse`, `split_shipment`, `ship_from_store`, `pickup_in_store`).
    pub method: String,
    /// Locations that would ship.
    pub locations: Vec<String>,
    /// Promised date (`YYYY-MM-DD`).
    pub promised_date: Option<String>,
}

/// The validation part of a submission's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidationReport {
    /// Outcome.
    pub state: ValidationState,
    /// Checks (empty when pending).
    pub checks: Vec<CheckReport>,
    /// Some lines will be backordered.
    pub backorder_expected: bool,
    /// Chosen fulfilment option.
    pub fulfilment: Option<FulfilmentReport>,
}

/// Links to an order's resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLinks {
    /// Status.
    #[serde(rename = "self")]
    pub status: String,
    /// Timeline.
    pub timeline: String,
    /// Shipments.
    pub shipments: String,
}

/// Answer to an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderAccepted {
    /// Hub order id (stable: from the Salesforce number or the client's order id).
    pub order_id: String,
    /// Status label (`Awaiting Booking` until the ERP books it).
    pub status: String,
    /// Status name (`Captured`, `Validated`, `Booked`, …).
    pub status_code: String,
    /// Synchronous validation.
    pub validation: ValidationReport,
    /// Links.
    pub links: OrderLinks,
}

/// An order's status (v1 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderStatusV1 {
    /// Hub order id.
    pub order_id: String,
    /// Salesforce record id.
    pub salesforce_id: Option<String>,
    /// Salesforce order number.
    pub salesforce_order_number: Option<String>,
    /// ERP order number, once booked.
    pub erp_order_number: Option<String>,
    /// Account.
    pub account: String,
    /// Channel (`B2B`, `Web`, `Marketplace`, `Store`).
    pub channel: String,
    /// Status label.
    pub status: String,
    /// Status name.
    pub status_code: String,
    /// Order value (decimal string).
    pub total: String,
    /// Currency.
    pub currency: String,
    /// E.g. `2 of 5 shipped, 0 delivered`.
    pub fulfilment_status: String,
    /// When captured.
    #[schema(format = DateTime)]
    pub captured_at: Option<String>,
    /// When booked.
    #[schema(format = DateTime)]
    pub booked_at: Option<String>,
    /// When fully shipped.
    #[schema(format = DateTime)]
    pub shipped_at: Option<String>,
    /// When fully delivered.
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// Last change.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A page of orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    /// Orders, by id.
    pub items: Vec<OrderStatusV1>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineItem {
    /// Entry id (increasing).
    pub id: i64,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// `inbound`, `event`, `attempt`, `effect`, `refusal`, `dead_letter`, `action`.
    pub kind: String,
    /// One line for humans.
    pub summary: String,
    /// System involved.
    pub system: Option<String>,
    /// Outcome of an attempt.
    pub outcome: Option<String>,
    /// Duration of the call.
    pub latency_ms: Option<i64>,
    /// Correlation id.
    pub correlation: Option<String>,
    /// Details (secrets redacted).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// A page of an order's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelinePage {
    /// Order.
    pub order_id: String,
    /// Entries, oldest first.
    pub entries: Vec<TimelineItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Units of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineQuantity {
    /// Line number.
    pub line: u32,
    /// Units.
    pub quantity: u32,
}

/// One shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShipmentView {
    /// Shipment id.
    pub id: String,
    /// Shipping location.
    pub location: Option<String>,
    /// Furthest milestone (`picked`, `packed`, `shipped`, `delivered`).
    pub milestone: Option<String>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Tracking number.
    pub tracking: Option<String>,
    /// Units per line.
    pub lines: Vec<LineQuantity>,
}

/// An order's shipments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShipmentsView {
    /// Order.
    pub order_id: String,
    /// E.g. `2 of 5 shipped, 0 delivered`.
    pub fulfilment_status: String,
    /// Shipments.
    pub shipments: Vec<ShipmentView>,
}

/// Where inventory figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InventorySource {
    /// The hub's cache (fresh enough, or the ERP did not answer).
    Cache,
    /// The ERP, just now (the cache was refreshed).
    Erp,
}

/// Stock at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockLevel {
    /// Location.
    pub location: String,
    /// Physically there.
    pub on_hand: i64,
    /// Promised to open orders.
    pub reserved: i64,
    /// Available to promise.
    pub available: i64,
    /// When the ERP measured it.
    #[schema(format = DateTime)]
    pub as_of: String,
    /// Age of the figure in seconds.
    pub age_seconds: i64,
}

/// Answer to an inventory inquiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InventoryView {
    /// Product.
    pub sku: String,
    /// Location asked for (all when absent).
    pub location: Option<String>,
    /// Where the figures come from.
    pub source: InventorySource,
    /// Some figure is older than the freshness threshold (the ERP could not be asked).
    pub stale: bool,
    /// The freshness threshold in seconds.
    pub max_age_seconds: u64,
    /// Stock per location.
    pub levels: Vec<StockLevel>,
}

/// A product to price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceItem {
    /// Product.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub sku: String,
    /// Units (quantity breaks may apply).
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: u32,
}

/// A pricing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceQuery {
    /// Customer account.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub account: String,
    /// Products.
    #[schema(min_items = 1, max_items = 200)]
    pub items: Vec<PriceItem>,
    /// Pricing date (`YYYY-MM-DD`); today when absent.
    #[schema(format = Date)]
    #[serde(default)]
    pub on: Option<String>,
}

/// One price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceQuote {
    /// Product.
    pub sku: String,
    /// Price the customer pays per unit (decimal string).
    pub unit_price: String,
    /// List price per unit (decimal string).
    pub list_price: String,
    /// Currency.
    pub currency: String,
    /// Promotion applied.
    pub promotion: Option<String>,
}

/// Account-specific prices from the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceList {
    /// Account.
    pub account: String,
    /// Pricing date.
    #[schema(format = Date)]
    pub on: String,
    /// Prices.
    pub quotes: Vec<PriceQuote>,
}

/// Units of an order line to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLine {
    /// Order line number.
    #[schema(minimum = 1, maximum = 10000)]
    pub line: u32,
    /// Units.
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: u32,
}

/// A return authorisation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnSubmission {
    /// The order (any of its ids).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub order: String,
    /// Salesforce case number; when given, the return id is `RMA-<case number>`.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub case_number: Option<String>,
    /// Salesforce case record id.
    #[schema(pattern = r"^[A-Za-z0-9]{15,18}$")]
    #[serde(default)]
    pub case_id: Option<String>,
    /// The client's own return id, when there is no case number.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub return_id: Option<String>,
    /// Lines and units to return.
    #[schema(min_items = 1, max_items = 200)]
    pub lines: Vec<ReturnLine>,
    /// Customer's reason.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Answer to an accepted return request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnAccepted {
    /// Return id.
    pub rma: String,
    /// Order.
    pub order_id: String,
    /// Status (`Requested` until the ERP authorises it).
    pub status: String,
}

/// A return's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnView {
    /// Return id.
    pub rma: String,
    /// Order.
    pub order_id: String,
    /// `Requested`, `Authorised`, `Received`, `Credited`, `Refunded`, `Closed`, `Rejected`.
    pub status: String,
    /// ERP RMA number.
    pub erp_rma: Option<String>,
    /// Salesforce case number.
    pub case_number: Option<String>,
    /// Units requested per line.
    pub lines: Vec<LineQuantity>,
    /// Credit memo numbers.
    pub credit_memos: Vec<String>,
    /// Amount credited (decimal string).
    pub credited: String,
    /// Amount refunded (decimal string).
    pub refunded: String,
    /// Why the ERP refused it.
    pub refusal: Option<String>,
}

/// Customer tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TierName {
    /// Key account.
    Gold,
    /// Regular B2B account.
    Silver,
    /// Small or occasional customer.
    Bronze,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// Street and number.
    #[schema(max_length = 200)]
    pub street: String,
    /// City.
    #[schema(max_length = 100)]
    pub city: String,
    /// Postal code.
    #[schema(max_length = 20)]
    pub postal_code: String,
    /// ISO country code.
    #[schema(pattern = r"^[A-Z]{2}$")]
    pub country: String,
}

/// A customer account from the account master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    /// Legal or trading name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Tier.
    pub tier: TierName,
    /// Currency.
    #[schema(pattern = r"^[A-Z]{3}$")]
    pub currency: String,
    /// Region.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #[serde(default)]
    pub region: Option<String>,
    /// Salesforce record id.
    #[schema(pattern = r"^[A-Za-z0-9]{15,18}$")]
    #[serde(default)]
    pub salesforce_id: Option<String>,
    /// Billing address.
    #[serde(default)]
    pub billing: Option<AddressBody>,
    /// Shipping address.
    #[serde(default)]
    pub shipping: Option<AddressBody>,
}

/// Answer to an accepted account sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountAccepted {
    /// Account id.
    pub account_id: String,
    /// `accepted`: stored, syncing to the ERP.
    pub status: String,
}

/// Answer to an accepted webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAccepted {
    /// Changes handed to the engine.
    pub accepted: u32,
    /// Changes the hub had already.
    pub duplicates: u32,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemDoc {
    /// URI of the error class; its last segment is the stable code.
    #[serde(rename = "type")]
    pub kind: String,
    /// Summary of the class.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
    /// Correlation id of the request.
    pub correlation_id: Option<String>,
    /// Invalid fields.
    pub errors: Option<Vec<FieldErrorDoc>>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldErrorDoc {
    /// Field.
    pub field: String,
    /// Reason.
    pub message: String,
}

/// Line quantities (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineView {
    /// Line number.
    pub line: u32,
    /// Product.
    pub sku: String,
    /// Price per unit (decimal string).
    pub unit_price: String,
    /// Units ordered.
    pub ordered: u32,
    /// Units allocated.
    pub allocated: u32,
    /// Units backordered.
    pub backordered: u32,
    /// Units shipped.
    pub shipped: u32,
    /// Units delivered.
    pub delivered: u32,
    /// Units invoiced.
    pub invoiced: u32,
    /// Units returned.
    pub returned: u32,
}

/// An invoice (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceView {
    /// Invoice id.
    pub id: String,
    /// Document number.
    pub number: String,
    /// Total with tax (decimal string).
    pub total: String,
}

/// Money figures of an order (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AmountsView {
    /// Currency.
    pub currency: String,
    /// Order value.
    pub total: String,
    /// Σ invoices.
    pub invoiced: String,
    /// Σ payments.
    pub paid: String,
    /// Σ credit memos.
    pub credited: String,
    /// Σ refunds.
    pub refunded: String,
}

/// The order's ids in every system (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderIds {
    /// Hub id.
    pub hub: String,
    /// Salesforce record id.
    pub salesforce_id: Option<String>,
    /// Salesforce order number.
    pub salesforce_order_number: Option<String>,
    /// ERP order number.
    pub erp_order_number: Option<String>,
}

/// Status and progress (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// Status name.
    pub code: String,
    /// Label shown in Salesforce.
    pub label: String,
    /// Fulfilment summary.
    pub fulfilment: String,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    /// Status last confirmed written to Salesforce.
    pub salesforce_synced_status: Option<String>,
    /// Whether Salesforce shows the latest state.
    pub salesforce_in_sync: bool,
}

/// An order's status (v2 shape: ids, amounts, lines, shipments, invoices, returns, stage times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderStatusV2 {
    /// Ids.
    pub ids: OrderIds,
    /// Account.
    pub account: String,
    /// Channel.
    pub channel: String,
    /// Status.
    pub status: StatusView,
    /// Money.
    pub amounts: AmountsView,
    /// Lines.
    pub lines: Vec<LineView>,
    /// Shipments.
    pub shipments: Vec<ShipmentView>,
    /// Invoices.
    pub invoices: Vec<InvoiceView>,
    /// Returns.
    pub returns: Vec<ReturnView>,
    /// When each stage was reached (stage name → RFC 3339 time).
    #[schema(value_type = Object)]
    pub stage_times: Value,
    /// Stream version the view reflects.
    pub version: i64,
    /// Last change.
    #[schema(format = DateTime)]
    pub updated_at: String,
}
