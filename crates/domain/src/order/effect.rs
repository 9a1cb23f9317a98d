//! Effects: work the process manager asks the engine to do outside the order (ERP calls,
//! Salesforce write-backs, internal follow-ups). Each carries a stable idempotency key derived
//! from the order and the step, never from the attempt.

use serde::{Deserialize, Serialize};

use super::state::Order;
use super::status::{OrderStatus, ReturnStatus};
use crate::ids::{CreditMemoId, OrderId, RmaId};

/// Which downstream an effect goes to. Each lane has its own concurrency, rate limit and
/// circuit breaker, so a slow ERP cannot slow Salesforce write-backs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Calls to the ERP.
    Erp,
    /// Writes to Salesforce.
    Salesforce,
    /// Follow-ups inside the hub (no I/O).
    Hub,
}

impl Lane {
    /// Every lane.
    pub const ALL: [Lane; 3] = [Lane::Erp, Lane::Salesforce, Lane::Hub];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Erp => "erp",
            Lane::Salesforce => "salesforce",
            Lane::Hub => "hub",
        }
    }

    /// Parses [`Lane::as_str`].
    pub fn parse(text: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

/// Work to do outside the order aggregate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Ask the ERP for prices, stock, credit and fulfilment options, then validate.
    ValidateOrder,
    /// Book the order in the ERP (idempotent by the order's reference).
    BookOrder,
    /// Cancel the booked order in the ERP.
    CancelInErp,
    /// Write the order's current state to Salesforce (state-based, coalesced).
    SyncOrder,
    /// Close the order.
    CloseOrder,
    /// Create the return authorisation in the ERP.
    AuthoriseReturn {
        /// Return.
        rma: RmaId,
    },
    /// Ask the ERP for the credit memo of what was received.
    IssueCreditMemo {
        /// Return.
        rma: RmaId,
    },
    /// Ask the ERP to refund a credit memo.
    IssueRefund {
        /// Return.
        rma: RmaId,
        /// Credit memo.
        credit_memo: CreditMemoId,
    },
    /// Write the return's state to its Salesforce case (state-based, coalesced).
    SyncReturn {
        /// Return.
        rma: RmaId,
    },
    /// Close the return.
    CloseReturn {
        /// Return.
        rma: RmaId,
    },
}

impl Effect {
    /// Downstream lane.
    pub fn lane(&self) -> Lane {
        match self {
            Effect::ValidateOrder
            | Effect::BookOrder
            | Effect::CancelInErp
            | Effect::AuthoriseReturn { .. }
            | Effect::IssueCreditMemo { .. }
            | Effect::IssueRefund { .. } => Lane::Erp,
            Effect::SyncOrder | Effect::SyncReturn { .. } => Lane::Salesforce,
            Effect::CloseOrder | Effect::CloseReturn { .. } => Lane::Hub,
        }
    }

    /// The step name, unique within an order.
    pub fn step(&self) -> String {
        match self {
            Effect::ValidateOrder => "validate".to_owned(),
            Effect::BookOrder => "book".to_owned(),
            Effect::CancelInErp => "erp-cancel".to_owned(),
            Effect::SyncOrder => "sf-sync".to_owned(),
            Effect::CloseOrder => "close".to_owned(),
            Effect::AuthoriseReturn { rma } => format!("rma/{rma}/authorise"),
            Effect::IssueCreditMemo { rma } => format!("rma/{rma}/credit-memo"),
            Effect::IssueRefund { rma, credit_memo } => format!("rma/{rma}/refund/{credit_memo}"),
            Effect::SyncReturn { rma } => format!("rma/{rma}/sf-sync"),
            Effect::CloseReturn { rma } => format!("rma/{rma}/close"),
        }
    }

    /// Idempotency key sent with the effect: the same for every attempt.
    pub fn idempotency_key(&self, order: &OrderId) -> String {
        format!("{order}/{}", self.step())
    }

    /// State-based effects send the current state, so a later success supersedes an earlier
    /// failure and several pending ones collapse into one. Command-style effects hold the
    /// order's later commands of the same lane until they succeed or are resolved.
    pub fn is_state_based(&self) -> bool {
        matches!(self, Effect::SyncOrder | Effect::SyncReturn { .. })
    }

    /// Whether the effect still has a purpose given the order's current state (checked just
    /// before it runs, so a cancelled order is not booked and a booked one is not re-booked).
    pub fn is_still_needed(&self, order: &Order) -> bool {
        match self {
            Effect::ValidateOrder => {
                order.validation.is_none()
                    && order.rejection.is_none()
                    && order.cancellation.is_none()
            }
            Effect::BookOrder => {
                order.validation.is_some()
                    && order.booking.is_none()
                    && order.rejection.is_none()
                    && order.cancellation.is_none()
            }
            Effect::CancelInErp => order.cancellation_in_force() && order.booking.is_some(),
            Effect::SyncOrder | Effect::SyncReturn { .. } => true,
            Effect::CloseOrder => order.is_closable(),
            Effect::AuthoriseReturn { rma } => order.returns.get(rma).is_some_and(|r| {
                r.request.is_some() && r.authorisation.is_none() && r.refusal.is_none()
            }),
            Effect::IssueCreditMemo { rma } => order
                .returns
                .get(rma)
                .is_some_and(|r| !r.receipts.is_empty() && r.credit_memos.is_empty()),
            Effect::IssueRefund { rma, credit_memo } => order.returns.get(rma).is_some_and(|r| {
                r.credit_memos.contains_key(credit_memo)
                    && !r.refunds.values().any(|f| &f.credit_memo == credit_memo)
            }),
            Effect::CloseReturn { rma } => order
                .returns
                .get(rma)
                .is_some_and(|r| r.closed.is_none() && r.status() == ReturnStatus::Refunded),
        }
    }
}

/// Whether the order waits on the ERP to book it (used by health views and degradation).
pub fn awaiting_booking(order: &Order) -> bool {
    order.status() == OrderStatus::Validated
}
