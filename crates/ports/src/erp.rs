//! The ERP port: everything the hub asks of an ERP. No ERP-specific type crosses it, so an
//! ERP can be replaced (simulator, Tryton, a REST ERP, a legacy batch ERP) without touching
//! the Salesforce side.
//!
//! Every write takes an idempotency key that is the same for every attempt of the same step;
//! adapters must make writes effectively-once (look up by reference before creating, or pass
//! the key to an ERP that dedupes).

use async_trait::async_trait;
use crossdock_domain::account::{Account, CreditStatus};
use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, OrderId, RmaId, Sku};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{CreditAnswer, Milestone};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::failure::Result;

/// A product and quantity to price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRequest {
    /// Product.
    pub sku: Sku,
    /// Units (quantity breaks may apply).
    pub quantity: u32,
}

/// The ERP's price for one customer, product and quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceQuote {
    /// Product.
    pub sku: Sku,
    /// Price the customer pays per unit.
    pub unit_price: Decimal,
    /// List price per unit.
    pub list_price: Decimal,
    /// Currency.
    pub currency: Currency,
    /// Promotion applied, if any.
    pub promotion: Option<String>,
}

/// What to fulfil, for fulfilment options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentRequest {
    /// Customer.
    pub account: AccountId,
    /// Shipping region.
    pub region: Option<String>,
    /// Products and units.
    pub lines: Vec<(Sku, u32)>,
}

/// One line of an order to book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingLine {
    /// Line number; the ERP must report later events with it.
    pub line: LineNo,
    /// Product.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// Agreed price per unit.
    pub unit_price: Decimal,
}

/// An order to book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    /// The order's external reference in the ERP (the hub order id). Booking is idempotent on it.
    pub reference: OrderId,
    /// Salesforce order number, for people reading the ERP.
    pub sf_number: Option<String>,
    /// Customer.
    pub account: AccountId,
    /// Currency.
    pub currency: Currency,
    /// Lines.
    pub lines: Vec<BookingLine>,
    /// Fulfilment option chosen at validation.
    pub fulfilment: Option<FulfilmentOption>,
    /// Shipping region.
    pub region: Option<String>,
}

/// Units of a line allocated at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Line.
    pub line: LineNo,
    /// Location.
    pub location: LocationId,
    /// Units.
    pub quantity: u32,
}

/// The ERP's answer to a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingConfirmation {
    /// ERP order number.
    pub erp_ref: String,
    /// `false` when the order already existed (an earlier attempt got through).
    pub created: bool,
    /// Allocations made at booking.
    pub allocations: Vec<Allocation>,
    /// Units per line waiting for stock.
    pub backorders: Vec<(LineNo, u32)>,
}

/// The outcome of a cancellation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CancelOutcome {
    /// Cancelled now.
    Cancelled,
    /// It was already cancelled.
    AlreadyCancelled,
}

/// A shipment as the ERP reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpShipment {
    /// Shipment id.
    pub id: String,
    /// Shipping location.
    pub location: Option<LocationId>,
    /// Units per line.
    pub lines: Vec<(LineNo, u32)>,
    /// Furthest milestone.
    pub milestone: Milestone,
    /// Carrier.
    pub carrier: Option<String>,
    /// Tracking number.
    pub tracking: Option<String>,
    /// When the milestone was reached.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An invoice as the ERP reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpInvoice {
    /// Invoice id.
    pub id: String,
    /// Document number.
    pub number: String,
    /// Units per line.
    pub lines: Vec<(LineNo, u32)>,
    /// Net amount.
    pub net: Decimal,
    /// Tax.
    pub tax: Decimal,
    /// Net + tax.
    pub total: Decimal,
    /// Amount paid so far.
    pub paid: Decimal,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// Quantities of one line as the ERP knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpLine {
    /// Line.
    pub line: LineNo,
    /// Product.
    pub sku: Sku,
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
}

/// An order as the ERP knows it (for reconciliation and re-reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpOrder {
    /// ERP order number.
    pub erp_ref: String,
    /// The hub's reference.
    pub reference: OrderId,
    /// Whether it is cancelled.
    pub cancelled: bool,
    /// Lines.
    pub lines: Vec<ErpLine>,
    /// Shipments.
    pub shipments: Vec<ErpShipment>,
    /// Invoices.
    pub invoices: Vec<ErpInvoice>,
}

/// A return to authorise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRequest {
    /// The hub's return id; return creation is idempotent on it.
    pub rma: RmaId,
    /// The order's reference.
    pub order: OrderId,
    /// The order's ERP number.
    pub order_erp_ref: Option<String>,
    /// Customer.
    pub account: AccountId,
    /// Units per line, with the product.
    pub lines: Vec<(LineNo, Sku, u32)>,
    /// Customer's reason.
    pub reason: String,
}

/// The ERP's return authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnAuthorisation {
    /// ERP RMA number.
    pub erp_ref: String,
}

/// Goods received back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnReceipt {
    /// Receipt id.
    pub id: String,
    /// Units per line.
    pub lines: Vec<(LineNo, u32)>,
}

/// A credit memo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMemo {
    /// Credit memo id.
    pub id: String,
    /// Document number.
    pub number: String,
    /// Amount credited (tax included).
    pub amount: Decimal,
}

/// A refund paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Refund id.
    pub id: String,
    /// Amount.
    pub amount: Decimal,
}

/// A customer as synced to the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    /// ERP customer code.
    pub erp_ref: String,
    /// Whether it was created now.
    pub created: bool,
}

/// Credit standing of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditReport {
    /// Customer.
    pub account: AccountId,
    /// Status.
    pub status: CreditStatus,
    /// Credit limit.
    pub limit: Option<Decimal>,
    /// Open balance.
    pub balance: Option<Decimal>,
}

/// Something that changed in the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpChange {
    /// Unique id of the change (the inbox dedupes on it).
    pub id: String,
    /// When it happened in the ERP.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What changed.
    pub kind: ChangeKind,
}

/// Kinds of ERP changes the hub follows. Order-level changes name the order by the hub's
/// reference, returns by the hub's return id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeKind {
    /// An order was booked.
    OrderBooked {
        /// Hub reference.
        reference: OrderId,
        /// ERP order number.
        erp_ref: String,
    },
    /// Units were allocated (total at the location).
    LineAllocated {
        /// Hub reference.
        reference: OrderId,
        /// Allocation.
        allocation: Allocation,
    },
    /// A line waits for stock.
    LineBackordered {
        /// Hub reference.
        reference: OrderId,
        /// Line.
        line: LineNo,
        /// Units.
        quantity: u32,
    },
    /// The ERP cancelled the order.
    OrderCancelled {
        /// Hub reference.
        reference: OrderId,
        /// Why.
        reason: String,
    },
    /// A shipment reached a milestone.
    Shipment {
        /// Hub reference.
        reference: OrderId,
        /// Shipment.
        shipment: ErpShipment,
    },
    /// An invoice was issued.
    InvoiceIssued {
        /// Hub reference.
        reference: OrderId,
        /// Invoice.
        invoice: ErpInvoice,
    },
    /// A payment was received.
    PaymentReceived {
        /// Hub reference.
        reference: OrderId,
        /// Payment id.
        payment: String,
        /// Invoice paid.
        invoice: Option<String>,
        /// Amount.
        amount: Decimal,
    },
    /// Stock changed.
    Inventory {
        /// New level.
        level: InventoryLevel,
    },
    /// A return was authorised.
    ReturnAuthorised {
        /// Hub return id.
        rma: RmaId,
        /// ERP RMA number.
        erp_ref: String,
    },
    /// Returned goods were received.
    ReturnReceived {
        /// Hub return id.
        rma: RmaId,
        /// Receipt.
        receipt: ReturnReceipt,
    },
    /// A credit memo was issued.
    CreditMemoIssued {
        /// Hub return id.
        rma: RmaId,
        /// Credit memo.
        credit_memo: CreditMemo,
    },
    /// A refund was paid.
    RefundIssued {
        /// Hub return id.
        rma: RmaId,
        /// Credit memo refunded.
        credit_memo: String,
        /// Refund.
        refund: Refund,
    },
    /// A customer's credit standing changed.
    CreditChanged {
        /// Report.
        report: CreditReport,
    },
}

/// A page of changes and the cursor to continue from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// Changes, oldest first (may contain duplicates: the inbox dedupes).
    pub changes: Vec<ErpChange>,
    /// Opaque position to pass to the next call.
    pub cursor: String,
}

/// Everything the hub asks of an ERP.
#[async_trait]
pub trait Erp: Send + Sync + 'static {
    /// Adapter name for logs and metrics (e.g. `sim`, `tryton`).
    fn name(&self) -> &str;

    /// Customer-specific prices (negotiated prices, promotions) on a date.
    async fn prices(
        &self,
        account: &AccountId,
        items: &[PriceRequest],
        on: Date,
    ) -> Result<Vec<PriceQuote>>;

    /// Stock per location for the given products (every location when `location` is `None`).
    async fn availability(
        &self,
        skus: &[Sku],
        location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>>;

    /// Whether `amount` fits the customer's credit.
    async fn credit_check(
        &self,
        account: &AccountId,
        amount: Decimal,
        currency: Currency,
    ) -> Result<CreditAnswer>;

    /// Ways to fulfil the order, best first.
    async fn fulfilment_options(
        &self,
        request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>>;

    /// Books the order; a second call with the same reference returns the first booking.
    async fn book_order(
        &self,
        order: &BookingRequest,
        idempotency_key: &str,
    ) -> Result<BookingConfirmation>;

    /// Cancels a booked order (refused with a permanent failure once anything shipped).
    async fn cancel_order(
        &self,
        erp_ref: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<CancelOutcome>;

    /// The order as the ERP knows it.
    async fn order(&self, erp_ref: &str) -> Result<ErpOrder>;

    /// Changes after `cursor` (from the start when `None`), at most `limit`.
    async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch>;

    /// Creates or updates a customer from the account master.
    async fn upsert_customer(
        &self,
        account: &Account,
        idempotency_key: &str,
    ) -> Result<CustomerRef>;

    /// A customer's credit standing.
    async fn credit_status(&self, account: &AccountId) -> Result<CreditReport>;

    /// Authorises a return; a second call with the same return id returns the first answer.
    async fn create_return(
        &self,
        request: &ReturnRequest,
        idempotency_key: &str,
    ) -> Result<ReturnAuthorisation>;

    /// Records returned goods arriving at the warehouse.
    async fn receive_return(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        idempotency_key: &str,
    ) -> Result<ReturnReceipt>;

    /// Issues the credit memo for what was received on a return.
    async fn issue_credit_memo(&self, erp_rma: &str, idempotency_key: &str) -> Result<CreditMemo>;

    /// Refunds a credit memo.
    async fn issue_refund(&self, credit_memo: &str, idempotency_key: &str) -> Result<Refund>;
}
