//! Events: facts about an order, in the past tense. The order's event stream is its timeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{
    Booking, Cancellation, CreditMemoFacts, InvoiceFacts, Milestone, OrderDraft, PaymentFacts,
    ReceiptFacts, RefundFacts, Rejection, ReturnAuthorisation, ReturnRefusal, ReturnRequest,
    Validation,
};
use crate::ids::{
    CreditMemoId, InvoiceId, LineNo, LocationId, PaymentId, ReceiptId, RefundId, RmaId, ShipmentId,
};

/// Something that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// The hub received the order.
    OrderCaptured(OrderDraft),
    /// The order passed validation.
    OrderValidated(Validation),
    /// The order was refused (validation or ERP).
    OrderRejected(Rejection),
    /// The ERP booked the order.
    OrderBooked(Booking),
    /// Units of a line were allocated at a location (the figure is the total at that location).
    LineAllocated {
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
    /// The ERP reported a line as backordered.
    LineBackordered {
        /// Line.
        line: LineNo,
        /// Units waiting for stock when reported.
        quantity: u32,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A shipment reached a milestone.
    ShipmentProgressed {
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
    /// The ERP issued an invoice.
    InvoiceIssued {
        /// Invoice.
        invoice: InvoiceId,
        /// Its content.
        facts: InvoiceFacts,
    },
    /// A payment was received.
    PaymentReceived {
        /// Payment.
        payment: PaymentId,
        /// Its content.
        facts: PaymentFacts,
    },
    /// The order was cancelled.
    OrderCancelled(Cancellation),
    /// Nothing is left to do.
    OrderClosed {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A return was requested.
    ReturnRequested {
        /// Return.
        rma: RmaId,
        /// The request.
        request: ReturnRequest,
    },
    /// The ERP authorised a return.
    ReturnAuthorised {
        /// Return.
        rma: RmaId,
        /// The authorisation.
        authorisation: ReturnAuthorisation,
    },
    /// The ERP refused a return.
    ReturnRefused {
        /// Return.
        rma: RmaId,
        /// The refusal.
        refusal: ReturnRefusal,
    },
    /// Returned goods were received.
    ReturnReceived {
        /// Return.
        rma: RmaId,
        /// Receipt.
        receipt: ReceiptId,
        /// What was received.
        facts: ReceiptFacts,
    },
    /// A credit memo was issued for a return.
    CreditMemoIssued {
        /// Return.
        rma: RmaId,
        /// Credit memo.
        credit_memo: CreditMemoId,
        /// Its content.
        facts: CreditMemoFacts,
    },
    /// A refund was paid.
    RefundIssued {
        /// Return.
        rma: RmaId,
        /// Refund.
        refund: RefundId,
        /// Its content.
        facts: RefundFacts,
    },
    /// The return is complete.
    ReturnClosed {
        /// Return.
        rma: RmaId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl Event {
    /// Stable type name (used in the store, on the timeline and in event contracts).
    pub fn name(&self) -> &'static str {
        match self {
            Event::OrderCaptured(_) => "OrderCaptured",
            Event::OrderValidated(_) => "OrderValidated",
            Event::OrderRejected(_) => "OrderRejected",
            Event::OrderBooked(_) => "OrderBooked",
            Event::LineAllocated { .. } => "LineAllocated",
            Event::LineBackordered { .. } => "LineBackordered",
            Event::ShipmentProgressed { .. } => "ShipmentProgressed",
            Event::InvoiceIssued { .. } => "InvoiceIssued",
            Event::PaymentReceived { .. } => "PaymentReceived",
            Event::OrderCancelled(_) => "OrderCancelled",
            Event::OrderClosed { .. } => "OrderClosed",
            Event::ReturnRequested { .. } => "ReturnRequested",
            Event::ReturnAuthorised { .. } => "ReturnAuthorised",
            Event::ReturnRefused { .. } => "ReturnRefused",
            Event::ReturnReceived { .. } => "ReturnReceived",
            Event::CreditMemoIssued { .. } => "CreditMemoIssued",
            Event::RefundIssued { .. } => "RefundIssued",
            Event::ReturnClosed { .. } => "ReturnClosed",
        }
    }

    /// Every event type name, for contracts and schemas.
    pub const NAMES: [&'static str; 18] = [
        "OrderCaptured",
        "OrderValidated",
        "OrderRejected",
        "OrderBooked",
        "LineAllocated",
        "LineBackordered",
        "ShipmentProgressed",
        "InvoiceIssued",
        "PaymentReceived",
        "OrderCancelled",
        "OrderClosed",
        "ReturnRequested",
        "ReturnAuthorised",
        "ReturnRefused",
        "ReturnReceived",
        "CreditMemoIssued",
        "RefundIssued",
        "ReturnClosed",
    ];

    /// When the event happened (as reported by its source).
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Event::OrderCaptured(d) => d.captured_at,
            Event::OrderValidated(v) => v.at,
            Event::OrderRejected(r) => r.at,
            Event::OrderBooked(b) => b.at,
            Event::LineAllocated { at, .. }
            | Event::LineBackordered { at, .. }
            | Event::ShipmentProgressed { at, .. }
            | Event::OrderClosed { at }
            | Event::ReturnClosed { at, .. } => *at,
            Event::InvoiceIssued { facts, .. } => facts.issued_at,
            Event::PaymentReceived { facts, .. } => facts.received_at,
            Event::OrderCancelled(c) => c.at,
            Event::ReturnRequested { request, .. } => request.at,
            Event::ReturnAuthorised { authorisation, .. } => authorisation.at,
            Event::ReturnRefused { refusal, .. } => refusal.at,
            Event::ReturnReceived { facts, .. } => facts.at,
            Event::CreditMemoIssued { facts, .. } => facts.at,
            Event::RefundIssued { facts, .. } => facts.at,
        }
    }
}
