//! The order aggregate's state: a set of keyed facts merged with [`Join`].
//!
//! Nothing here is a counter that events add to. Quantities are reported per key (per line and
//! location, per shipment, per invoice...) and merged by taking the larger report, so duplicate
//! and out-of-order events cannot double-count. Everything else (per-line totals, status, stage
//! times) is derived on read.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::catalog::FulfilmentOption;
use crate::ids::{
    AccountId, CreditMemoId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, PaymentId,
    ReceiptId, RefundId, RmaId, ShipmentId, Sku, System,
};
use crate::lattice::{Earliest, Join};
use crate::money::Currency;

/// Joins the listed fields of `$other` into `$self`, each with its own [`Join`]; whether any
/// of them grew (every field is joined, none skipped once one grew).
macro_rules! join_fields {
    ($self:ident, $other:ident: $($field:ident),+ $(,)?) => {{
        let mut grew = false;
        $(grew |= $self.$field.join($other.$field);)+
        grew
    }};
}

/// Implements [`Join`] as "the larger value wins" for a totally ordered fact.
macro_rules! join_by_max {
    ($($ty:ty),* $(,)?) => {
        $(impl Join for $ty {
            fn join(&mut self, other: Self) -> bool {
                let grew = other > *self;
                if grew {
                    *self = other;
                }
                grew
            }
        })*
    };
}

/// Sales channel an order came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Sales rep orders for business customers (negotiated prices, terms).
    B2b,
    /// Web shop.
    Web,
    /// Third-party marketplace.
    Marketplace,
    /// Point of sale.
    Store,
}

impl Channel {
    /// Name as stored in Salesforce.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::B2b => "B2B",
            Channel::Web => "Web",
            Channel::Marketplace => "Marketplace",
            Channel::Store => "Store",
        }
    }
}

/// One line of a captured order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DraftLine {
    /// Line number (1-based).
    pub line: LineNo,
    /// Product.
    pub sku: Sku,
    /// Units ordered.
    pub quantity: u32,
    /// Agreed price per unit (net of tax).
    pub unit_price: Decimal,
    /// Salesforce `OrderItem` id, when captured from Salesforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sf_id: Option<String>,
}

/// An order as captured: what the customer asked for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderDraft {
    /// Hub id.
    pub id: OrderId,
    /// Ids in Salesforce (record id and order number) and, once booked, the ERP.
    pub refs: ExternalRefs,
    /// Customer.
    pub account: AccountId,
    /// Channel.
    pub channel: Channel,
    /// Currency of every amount on the order.
    pub currency: Currency,
    /// Lines.
    pub lines: Vec<DraftLine>,
    /// Shipping region (routing, fulfilment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// System the order came from.
    pub source: System,
    /// When it was captured.
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
}

/// A validation check the hub runs before booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Agreed prices match the ERP's price for this customer.
    Price,
    /// Enough stock, or a backorder is acceptable.
    Inventory,
    /// The customer's credit covers the order.
    Credit,
    /// The ERP offers a way to fulfil it.
    Fulfilment,
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Whether it passed.
    pub passed: bool,
    /// Human-readable explanation.
    pub detail: String,
}

/// The order passed validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Validation {
    /// Chosen fulfilment option.
    pub fulfilment: FulfilmentOption,
    /// Every check with its outcome.
    pub checks: Vec<CheckResult>,
    /// Some lines will be backordered.
    pub backorder_expected: bool,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The order was refused, by validation or by the ERP at booking.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rejection {
    /// Who refused it.
    pub by: System,
    /// Why, one entry per failed check or ERP message.
    pub reasons: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The ERP booked the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Booking {
    /// ERP order number.
    pub erp_ref: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Fulfilment milestones of a shipment, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// Picked from storage.
    Picked,
    /// Packed for the carrier.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered to the customer.
    Delivered,
}

impl Milestone {
    /// All milestones in order.
    pub const ALL: [Milestone; 4] = [
        Milestone::Picked,
        Milestone::Packed,
        Milestone::Shipped,
        Milestone::Delivered,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Picked => "picked",
            Milestone::Packed => "packed",
            Milestone::Shipped => "shipped",
            Milestone::Delivered => "delivered",
        }
    }
}

/// What is known about one shipment. Milestones only advance; a "delivered" report that
/// arrives before "shipped" is kept, and the late "shipped" cannot move it back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentFacts {
    /// Shipping location.
    pub location: Option<LocationId>,
    /// Units per line in this shipment.
    pub lines: BTreeMap<LineNo, u32>,
    /// Furthest milestone reached.
    pub milestone: Option<Milestone>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Carrier tracking number.
    pub tracking: Option<String>,
    /// Earliest time each milestone was reported.
    pub times: BTreeMap<Milestone, Earliest<Timestamp>>,
}

impl Join for ShipmentFacts {
    fn join(&mut self, other: Self) -> bool {
        join_fields!(self, other: location, lines, milestone, carrier, tracking, times)
    }
}

/// A point in time, serialized as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

/// An invoice for (part of) the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InvoiceFacts {
    /// Invoice number.
    pub number: String,
    /// Units invoiced per line.
    pub lines: BTreeMap<LineNo, u32>,
    /// Net amount.
    pub net: Decimal,
    /// Tax.
    pub tax: Decimal,
    /// Net + tax.
    pub total: Decimal,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// A payment received.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PaymentFacts {
    /// Invoice paid, when known.
    pub invoice: Option<InvoiceId>,
    /// Amount.
    pub amount: Decimal,
    /// When received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// The order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cancellation {
    /// System where the cancellation happened.
    pub by: System,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A return request (from a service case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReturnRequest {
    /// The Salesforce case (id and number).
    pub case: ExternalRefs,
    /// Units to return per line.
    pub lines: BTreeMap<LineNo, u32>,
    /// Customer's reason.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The ERP authorised the return.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReturnAuthorisation {
    /// ERP RMA number.
    pub erp_ref: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The ERP refused the return.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReturnRefusal {
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Returned goods received at the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReceiptFacts {
    /// Units received per line.
    pub lines: BTreeMap<LineNo, u32>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A credit memo issued for a return.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CreditMemoFacts {
    /// Document number.
    pub number: String,
    /// Amount credited (tax included).
    pub amount: Decimal,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A refund paid against a credit memo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RefundFacts {
    /// Credit memo refunded.
    pub credit_memo: CreditMemoId,
    /// Amount paid out.
    pub amount: Decimal,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

join_by_max!(
    OrderDraft,
    Validation,
    Rejection,
    Booking,
    InvoiceFacts,
    PaymentFacts,
    Cancellation,
    ReturnRequest,
    ReturnAuthorisation,
    ReturnRefusal,
    ReceiptFacts,
    CreditMemoFacts,
    RefundFacts,
    Timestamp,
);

/// Everything known about one return authorisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnFacts {
    /// The request.
    pub request: Option<ReturnRequest>,
    /// The ERP's authorisation.
    pub authorisation: Option<ReturnAuthorisation>,
    /// The ERP's refusal.
    pub refusal: Option<ReturnRefusal>,
    /// Goods receipts.
    pub receipts: BTreeMap<ReceiptId, ReceiptFacts>,
    /// Credit memos.
    pub credit_memos: BTreeMap<CreditMemoId, CreditMemoFacts>,
    /// Refunds.
    pub refunds: BTreeMap<RefundId, RefundFacts>,
    /// When the return was closed.
    pub closed: Option<Earliest<Timestamp>>,
}

impl Join for ReturnFacts {
    fn join(&mut self, other: Self) -> bool {
        join_fields!(self, other: request, authorisation, refusal, receipts, credit_memos, refunds)
            | join_earliest(&mut self.closed, other.closed)
    }
}

/// Everything known about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// What was ordered.
    pub draft: Option<OrderDraft>,
    /// Validation passed.
    pub validation: Option<Validation>,
    /// Refused by validation or by the ERP.
    pub rejection: Option<Rejection>,
    /// Booked in the ERP.
    pub booking: Option<Booking>,
    /// Units allocated per line and location.
    pub allocations: BTreeMap<LineNo, BTreeMap<LocationId, u32>>,
    /// Lines the ERP reported as backordered (units reported).
    pub backorders: BTreeMap<LineNo, u32>,
    /// Shipments.
    pub shipments: BTreeMap<ShipmentId, ShipmentFacts>,
    /// Invoices.
    pub invoices: BTreeMap<InvoiceId, InvoiceFacts>,
    /// Payments.
    pub payments: BTreeMap<PaymentId, PaymentFacts>,
    /// Cancelled.
    pub cancellation: Option<Cancellation>,
    /// When the order was closed.
    pub closed: Option<Earliest<Timestamp>>,
    /// Returns.
    pub returns: BTreeMap<RmaId, ReturnFacts>,
}

impl Join for Order {
    fn join(&mut self, other: Self) -> bool {
        join_fields!(
            self, other: draft, validation, rejection, booking, allocations, backorders,
            shipments, invoices, payments, cancellation, returns,
        ) | join_earliest(&mut self.closed, other.closed)
    }
}

/// Joins optional "first time seen" facts: the earliest wins.
pub(crate) fn join_earliest<T: Ord>(
    current: &mut Option<Earliest<T>>,
    other: Option<Earliest<T>>,
) -> bool {
    match (current.as_mut(), other) {
        (_, None) => false,
        (None, Some(value)) => {
            *current = Some(value);
            true
        }
        (Some(existing), Some(value)) => existing.join(value),
    }
}
