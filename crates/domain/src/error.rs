//! Lifecycle violations: why a command was refused. Each has a stable code.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{CreditMemoId, LineNo, RmaId};
use crate::order::OrderStatus;

/// Result of deciding a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A command that violates the order lifecycle. The order's state is unchanged.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Error {
    /// The order has not been captured, so nothing can be recorded against it yet.
    #[error("the order has not been captured yet")]
    NotCaptured,
    /// A second capture with different content.
    #[error("the order was already captured with different content")]
    CapturedDifferently,
    /// An order without lines.
    #[error("an order needs at least one line")]
    NoLines,
    /// Two lines with the same number.
    #[error("line {line} appears twice")]
    DuplicateLine {
        /// Line.
        line: LineNo,
    },
    /// A line that orders nothing.
    #[error("line {line} orders 0 units")]
    ZeroQuantity {
        /// Line.
        line: LineNo,
    },
    /// A line number the order does not have.
    #[error("line {line} does not exist on this order")]
    UnknownLine {
        /// Line.
        line: LineNo,
    },
    /// More units than allowed (e.g. shipping more than ordered).
    #[error("line {line}: {what} would reach {attempted} units, more than the {limit} allowed")]
    QuantityExceeded {
        /// Line.
        line: LineNo,
        /// What would be exceeded (`shipped`, `allocated`, `invoiced`, `returned`, `received`).
        what: String,
        /// Most units allowed.
        limit: u32,
        /// Units the command would lead to.
        attempted: u32,
    },
    /// A negative amount of money.
    #[error("{field} must not be negative (got {amount})")]
    NegativeAmount {
        /// Which amount.
        field: String,
        /// The amount.
        amount: Decimal,
    },
    /// A return id the order does not have.
    #[error("return {rma} does not exist on this order")]
    UnknownRma {
        /// Return.
        rma: RmaId,
    },
    /// A credit memo id the return does not have.
    #[error("credit memo {credit_memo} does not exist on return {rma}")]
    UnknownCreditMemo {
        /// Return.
        rma: RmaId,
        /// Credit memo.
        credit_memo: CreditMemoId,
    },
    /// Refunds would pay out more than was credited.
    #[error(
        "refunds on credit memo {credit_memo} would total {total}, more than the {credited} credited"
    )]
    RefundExceedsCredit {
        /// Credit memo.
        credit_memo: CreditMemoId,
        /// Amount credited.
        credited: Decimal,
        /// Refund total the command would lead to.
        total: Decimal,
    },
    /// Cancelling after something shipped.
    #[error("the order cannot be cancelled: {shipped} units have already shipped")]
    CancelAfterShipment {
        /// Units shipped.
        shipped: u32,
    },
    /// The ERP reported a second, different booking of the same order.
    #[error("the order is booked as {existing} but the ERP reported another booking {reported}")]
    ConflictingBooking {
        /// Booking on record.
        existing: String,
        /// New, different booking.
        reported: String,
    },
    /// A command that the order's status does not allow.
    #[error("{command} is not allowed while the order is {status:?}")]
    NotAllowed {
        /// Command name.
        command: String,
        /// Current status.
        status: OrderStatus,
    },
}

impl Error {
    /// Stable machine-readable code (used in problem+json types and dead-letter reasons).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotCaptured => "not_captured",
            Error::CapturedDifferently => "captured_differently",
            Error::NoLines => "no_lines",
            Error::DuplicateLine { .. } => "duplicate_line",
            Error::ZeroQuantity { .. } => "zero_quantity",
            Error::UnknownLine { .. } => "unknown_line",
            Error::QuantityExceeded { .. } => "quantity_exceeded",
            Error::NegativeAmount { .. } => "negative_amount",
            Error::UnknownRma { .. } => "unknown_rma",
            Error::UnknownCreditMemo { .. } => "unknown_credit_memo",
            Error::RefundExceedsCredit { .. } => "refund_exceeds_credit",
            Error::CancelAfterShipment { .. } => "cancel_after_shipment",
            Error::ConflictingBooking { .. } => "conflicting_booking",
            Error::NotAllowed { .. } => "not_allowed",
        }
    }

    /// Whether the command may succeed later without change (the order has not caught up
    /// yet, e.g. a shipment reported before the order's capture was recorded).
    pub fn may_succeed_later(&self) -> bool {
        matches!(
            self,
            Error::NotCaptured | Error::UnknownRma { .. } | Error::UnknownCreditMemo { .. }
        )
    }
}
