//! Commands: what someone asks the order to do or record, in the imperative.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{
    CreditMemoFacts, InvoiceFacts, Milestone, OrderDraft, PaymentFacts, ReceiptFacts, ReturnRequest,
};
use super::validation::{ValidationFacts, ValidationPolicy};
use crate::ids::{
    CreditMemoId, InvoiceId, LineNo, LocationId, PaymentId, ReceiptId, RefundId, RmaId, ShipmentId,
    System,
};

/// A request to change an order, decided against its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Command {
    /// Capture a new order.
    CaptureOrder(OrderDraft),
    /// Validate the order against what the ERP answered.
    ValidateOrder {
        /// ERP prices, availability, credit and fulfilment options.
        facts: ValidationFacts,
        /// How strict to be.
        policy: ValidationPolicy,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record the ERP's booking.
    RecordBooking {
        /// ERP order number.
        erp_ref: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record that the ERP refused the booking for good.
    RefuseBooking {
        /// The ERP's message.
        reason: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record an allocation (total units of the line at the location).
    RecordAllocation {
        /// Line.
        line: LineNo,
        /// Location.
        location: LocationId,
        /// Units allocated there in total.
        quantity: u32,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record a backorder.
    RecordBackorder {
        /// Line.
        line: LineNo,
        /// Units waiting for stock.
        quantity: u32,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record a shipment milestone.
    RecordShipment {
        /// Shipment.
        shipment: ShipmentId,
        /// Shipping location.
        location: Option<LocationId>,
        /// Units per line in the shipment.
        lines: BTreeMap<LineNo, u32>,
        /// Milestone reached.
        milestone: Milestone,
        /// Carrier.
        carrier: Option<String>,
        /// Tracking number.
        tracking: Option<String>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record an invoice.
    RecordInvoice {
        /// Invoice.
        invoice: InvoiceId,
        /// Its content.
        facts: InvoiceFacts,
    },
    /// Record a payment.
    RecordPayment {
        /// Payment.
        payment: PaymentId,
        /// Its content.
        facts: PaymentFacts,
    },
    /// Cancel the order (only before anything shipped).
    CancelOrder {
        /// Where the cancellation comes from.
        by: System,
        /// Why.
        reason: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Close the order once everything is done.
    CloseOrder {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Open a return.
    RequestReturn {
        /// Return id.
        rma: RmaId,
        /// The request.
        request: ReturnRequest,
    },
    /// Record the ERP's return authorisation.
    RecordReturnAuthorisation {
        /// Return.
        rma: RmaId,
        /// ERP RMA number.
        erp_ref: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record the ERP's refusal of a return.
    RefuseReturn {
        /// Return.
        rma: RmaId,
        /// Why.
        reason: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Record returned goods received.
    RecordReturnReceipt {
        /// Return.
        rma: RmaId,
        /// Receipt.
        receipt: ReceiptId,
        /// What arrived.
        facts: ReceiptFacts,
    },
    /// Record a credit memo for a return.
    RecordCreditMemo {
        /// Return.
        rma: RmaId,
        /// Credit memo.
        credit_memo: CreditMemoId,
        /// Its content.
        facts: CreditMemoFacts,
    },
    /// Record a refund for a credit memo.
    RecordRefund {
        /// Return.
        rma: RmaId,
        /// Refund.
        refund: RefundId,
        /// Credit memo refunded.
        credit_memo: CreditMemoId,
        /// Amount.
        amount: Decimal,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Close a completed return.
    CloseReturn {
        /// Return.
        rma: RmaId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl Command {
    /// Stable type name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CaptureOrder(_) => "CaptureOrder",
            Command::ValidateOrder { .. } => "ValidateOrder",
            Command::RecordBooking { .. } => "RecordBooking",
            Command::RefuseBooking { .. } => "RefuseBooking",
            Command::RecordAllocation { .. } => "RecordAllocation",
            Command::RecordBackorder { .. } => "RecordBackorder",
            Command::RecordShipment { .. } => "RecordShipment",
            Command::RecordInvoice { .. } => "RecordInvoice",
            Command::RecordPayment { .. } => "RecordPayment",
            Command::CancelOrder { .. } => "CancelOrder",
            Command::CloseOrder { .. } => "CloseOrder",
            Command::RequestReturn { .. } => "RequestReturn",
            Command::RecordReturnAuthorisation { .. } => "RecordReturnAuthorisation",
            Command::RefuseReturn { .. } => "RefuseReturn",
            Command::RecordReturnReceipt { .. } => "RecordReturnReceipt",
            Command::RecordCreditMemo { .. } => "RecordCreditMemo",
            Command::RecordRefund { .. } => "RecordRefund",
            Command::CloseReturn { .. } => "CloseReturn",
        }
    }
}
