//! `decide`: judge a command against the current state and return the events it produces.
//!
//! A command whose facts are already known produces no events (idempotent). A command that
//! violates the lifecycle returns an [`Error`] and leaves the state untouched.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::command::Command;
use super::event::Event;
use super::evolve::evolve;
use super::state::{
    Booking, Cancellation, CreditMemoFacts, Order, OrderDraft, ReceiptFacts, RefundFacts,
    Rejection, ReturnAuthorisation, ReturnRefusal, Validation,
};
use super::status::OrderStatus;
use super::validation::judge;
use crate::error::{Error, Result};
use crate::ids::{LineNo, RmaId, ShipmentId, System};

/// Decides a command against the order's state.
///
/// # Errors
/// The lifecycle violation, with the details needed to explain it.
pub fn decide(command: &Command, state: &Order) -> Result<Vec<Event>> {
    let events = match command {
        Command::CaptureOrder(draft) => capture(draft, state)?,
        Command::ValidateOrder { facts, policy, at } => {
            let draft = captured(state)?;
            if state.validation.is_some() || state.rejection.is_some() {
                return Ok(Vec::new());
            }
            if state.cancellation.is_some() {
                return Ok(Vec::new());
            }
            let verdict = judge(draft, facts, policy);
            match (verdict.passed(), verdict.fulfilment.clone()) {
                (true, Some(fulfilment)) => vec![Event::OrderValidated(Validation {
                    fulfilment,
                    backorder_expected: verdict.backorder_expected,
                    checks: verdict.checks,
                    at: *at,
                })],
                _ => vec![Event::OrderRejected(Rejection {
                    by: System::Hub,
                    reasons: verdict.reasons(),
                    at: *at,
                })],
            }
        }
        Command::RecordBooking { erp_ref, at } => {
            captured(state)?;
            if let Some(existing) = &state.booking {
                if &existing.erp_ref != erp_ref {
                    return Err(Error::ConflictingBooking {
                        existing: existing.erp_ref.clone(),
                        reported: erp_ref.clone(),
                    });
                }
                return Ok(Vec::new());
            }
            vec![Event::OrderBooked(Booking {
                erp_ref: erp_ref.clone(),
                at: *at,
            })]
        }
        Command::RefuseBooking { reason, at } => {
            captured(state)?;
            if state.booking.is_some() || state.rejection.is_some() {
                return Ok(Vec::new());
            }
            vec![Event::OrderRejected(Rejection {
                by: System::Erp,
                reasons: vec![reason.clone()],
                at: *at,
            })]
        }
        Command::RecordAllocation {
            line,
            location,
            quantity,
            at,
        } => {
            captured(state)?;
            let ordered = known_line(state, *line)?;
            let elsewhere: u32 = state
                .allocations
                .get(line)
                .map(|by_location| {
                    by_location
                        .iter()
                        .filter(|(l, _)| *l != location)
                        .map(|(_, q)| q)
                        .sum()
                })
                .unwrap_or(0);
            let here = state
                .allocations
                .get(line)
                .and_then(|m| m.get(location))
                .copied()
                .unwrap_or(0)
                .max(*quantity);
            within(*line, "allocated", ordered, elsewhere + here)?;
            vec![Event::LineAllocated {
                line: *line,
                location: location.clone(),
                quantity: *quantity,
                at: *at,
            }]
        }
        Command::RecordBackorder { line, quantity, at } => {
            captured(state)?;
            let ordered = known_line(state, *line)?;
            within(*line, "backordered", ordered, *quantity)?;
            vec![Event::LineBackordered {
                line: *line,
                quantity: *quantity,
                at: *at,
            }]
        }
        Command::RecordShipment {
            shipment,
            location,
            lines,
            milestone,
            carrier,
            tracking,
            at,
        } => {
            captured(state)?;
            check_shipment(state, shipment, lines)?;
            vec![Event::ShipmentProgressed {
                shipment: shipment.clone(),
                location: location.clone(),
                lines: lines.clone(),
                milestone: *milestone,
                carrier: carrier.clone(),
                tracking: tracking.clone(),
                at: *at,
            }]
        }
        Command::RecordInvoice { invoice, facts } => {
            captured(state)?;
            non_negative("invoice net amount", facts.net)?;
            non_negative("invoice tax", facts.tax)?;
            non_negative("invoice total", facts.total)?;
            for (line, quantity) in &facts.lines {
                let ordered = known_line(state, *line)?;
                let others: u32 = state
                    .invoices
                    .iter()
                    .filter(|(id, _)| *id != invoice)
                    .filter_map(|(_, i)| i.lines.get(line))
                    .sum();
                let this = state
                    .invoices
                    .get(invoice)
                    .and_then(|i| i.lines.get(line))
                    .copied()
                    .unwrap_or(0)
                    .max(*quantity);
                within(*line, "invoiced", ordered, others + this)?;
            }
            vec![Event::InvoiceIssued {
                invoice: invoice.clone(),
                facts: facts.clone(),
            }]
        }
        Command::RecordPayment { payment, facts } => {
            captured(state)?;
            non_negative("payment amount", facts.amount)?;
            vec![Event::PaymentReceived {
                payment: payment.clone(),
                facts: facts.clone(),
            }]
        }
        Command::CancelOrder { by, reason, at } => {
            captured(state)?;
            if state.cancellation.is_some() {
                return Ok(Vec::new());
            }
            let shipped: u32 = state.lines().map(|l| state.shipped(l)).sum();
            if shipped > 0 {
                return Err(Error::CancelAfterShipment { shipped });
            }
            let status = state.status();
            if status == OrderStatus::Rejected {
                // Never booked and never will be: what the cancellation asks for already holds.
                return Ok(Vec::new());
            }
            if status == OrderStatus::Closed {
                return Err(Error::NotAllowed {
                    command: command.name().to_owned(),
                    status,
                });
            }
            vec![Event::OrderCancelled(Cancellation {
                by: *by,
                reason: reason.clone(),
                at: *at,
            })]
        }
        Command::CloseOrder { at } => {
            captured(state)?;
            if state.closed.is_some() {
                return Ok(Vec::new());
            }
            if !state.is_closable() {
                return Err(Error::NotAllowed {
                    command: command.name().to_owned(),
                    status: state.status(),
                });
            }
            vec![Event::OrderClosed { at: *at }]
        }
        Command::RequestReturn { rma, request } => {
            captured(state)?;
            if let Some(existing) = state.returns.get(rma).and_then(|r| r.request.as_ref())
                && existing.lines == request.lines
            {
                return Ok(Vec::new());
            }
            if request.lines.is_empty() || request.lines.values().all(|q| *q == 0) {
                return Err(Error::NoLines);
            }
            for (line, quantity) in &request.lines {
                known_line(state, *line)?;
                let other_requests: u32 = state
                    .returns
                    .iter()
                    .filter(|(id, r)| *id != rma && r.refusal.is_none())
                    .map(|(_, r)| r.requested(*line))
                    .sum();
                within(
                    *line,
                    "requested for return",
                    state.delivered(*line).max(state.shipped(*line)),
                    other_requests + quantity,
                )?;
            }
            vec![Event::ReturnRequested {
                rma: rma.clone(),
                request: request.clone(),
            }]
        }
        Command::RecordReturnAuthorisation { rma, erp_ref, at } => {
            known_rma(state, rma)?;
            vec![Event::ReturnAuthorised {
                rma: rma.clone(),
                authorisation: ReturnAuthorisation {
                    erp_ref: erp_ref.clone(),
                    at: *at,
                },
            }]
        }
        Command::RefuseReturn { rma, reason, at } => {
            known_rma(state, rma)?;
            vec![Event::ReturnRefused {
                rma: rma.clone(),
                refusal: ReturnRefusal {
                    reason: reason.clone(),
                    at: *at,
                },
            }]
        }
        Command::RecordReturnReceipt {
            rma,
            receipt,
            facts,
        } => {
            let facts_so_far = known_rma(state, rma)?;
            for (line, quantity) in &facts.lines {
                known_line(state, *line)?;
                let others: u32 = facts_so_far
                    .receipts
                    .iter()
                    .filter(|(id, _)| *id != receipt)
                    .filter_map(|(_, r)| r.lines.get(line))
                    .sum();
                within(
                    *line,
                    "received back",
                    facts_so_far.requested(*line),
                    others + quantity,
                )?;
            }
            vec![Event::ReturnReceived {
                rma: rma.clone(),
                receipt: receipt.clone(),
                facts: ReceiptFacts {
                    lines: facts.lines.clone(),
                    at: facts.at,
                },
            }]
        }
        Command::RecordCreditMemo {
            rma,
            credit_memo,
            facts,
        } => {
            known_rma(state, rma)?;
            non_negative("credit memo amount", facts.amount)?;
            vec![Event::CreditMemoIssued {
                rma: rma.clone(),
                credit_memo: credit_memo.clone(),
                facts: CreditMemoFacts {
                    number: facts.number.clone(),
                    amount: facts.amount,
                    at: facts.at,
                },
            }]
        }
        Command::RecordRefund {
            rma,
            refund,
            credit_memo,
            amount,
            at,
        } => {
            let facts = known_rma(state, rma)?;
            non_negative("refund amount", *amount)?;
            let credited = facts
                .credit_memos
                .get(credit_memo)
                .ok_or_else(|| Error::UnknownCreditMemo {
                    rma: rma.clone(),
                    credit_memo: credit_memo.clone(),
                })?
                .amount;
            let others: Decimal = facts
                .refunds
                .iter()
                .filter(|(id, r)| *id != refund && &r.credit_memo == credit_memo)
                .map(|(_, r)| r.amount)
                .sum();
            let this = facts
                .refunds
                .get(refund)
                .map_or(*amount, |r| r.amount.max(*amount));
            if others + this > credited {
                return Err(Error::RefundExceedsCredit {
                    credit_memo: credit_memo.clone(),
                    credited,
                    total: others + this,
                });
            }
            vec![Event::RefundIssued {
                rma: rma.clone(),
                refund: refund.clone(),
                facts: RefundFacts {
                    credit_memo: credit_memo.clone(),
                    amount: *amount,
                    at: *at,
                },
            }]
        }
        Command::CloseReturn { rma, at } => {
            known_rma(state, rma)?;
            vec![Event::ReturnClosed {
                rma: rma.clone(),
                at: *at,
            }]
        }
    };
    Ok(changing(state, events))
}

/// Keeps only the events that add something to the state (idempotence).
fn changing(state: &Order, events: Vec<Event>) -> Vec<Event> {
    let mut next = state.clone();
    events
        .into_iter()
        .filter(|event| evolve(&mut next, event))
        .collect()
}

fn capture(draft: &OrderDraft, state: &Order) -> Result<Vec<Event>> {
    if let Some(existing) = &state.draft {
        return if existing == draft {
            Ok(Vec::new())
        } else {
            Err(Error::CapturedDifferently)
        };
    }
    if draft.lines.is_empty() {
        return Err(Error::NoLines);
    }
    let mut seen = BTreeSet::new();
    for line in &draft.lines {
        if !seen.insert(line.line) {
            return Err(Error::DuplicateLine { line: line.line });
        }
        if line.quantity == 0 {
            return Err(Error::ZeroQuantity { line: line.line });
        }
        non_negative("unit price", line.unit_price)?;
    }
    Ok(vec![Event::OrderCaptured(draft.clone())])
}

fn captured(state: &Order) -> Result<&OrderDraft> {
    state.draft.as_ref().ok_or(Error::NotCaptured)
}

fn known_line(state: &Order, line: LineNo) -> Result<u32> {
    match state.ordered(line) {
        0 => Err(Error::UnknownLine { line }),
        ordered => Ok(ordered),
    }
}

fn known_rma<'a>(state: &'a Order, rma: &RmaId) -> Result<&'a super::state::ReturnFacts> {
    captured(state)?;
    state
        .returns
        .get(rma)
        .filter(|r| r.request.is_some())
        .ok_or_else(|| Error::UnknownRma { rma: rma.clone() })
}

fn within(line: LineNo, what: &str, limit: u32, attempted: u32) -> Result<()> {
    if attempted > limit {
        return Err(Error::QuantityExceeded {
            line,
            what: what.to_owned(),
            limit,
            attempted,
        });
    }
    Ok(())
}

fn non_negative(field: &str, amount: Decimal) -> Result<()> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(Error::NegativeAmount {
            field: field.to_owned(),
            amount,
        });
    }
    Ok(())
}

/// Units per line across every shipment once `shipment` carries `lines` must not exceed
/// what was ordered.
fn check_shipment(
    state: &Order,
    shipment: &ShipmentId,
    lines: &BTreeMap<LineNo, u32>,
) -> Result<()> {
    for (line, quantity) in lines {
        let ordered = known_line(state, *line)?;
        let others: u32 = state
            .shipments
            .iter()
            .filter(|(id, _)| *id != shipment)
            .filter_map(|(_, s)| s.lines.get(line))
            .sum();
        let this = state
            .shipments
            .get(shipment)
            .and_then(|s| s.lines.get(line))
            .copied()
            .unwrap_or(0)
            .max(*quantity);
        within(*line, "shipped", ordered, others + this)?;
    }
    Ok(())
}
