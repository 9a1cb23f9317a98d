//! `evolve`: apply one event to the state. Each event is one fact joined into the state, so
//! evolve is commutative and idempotent (see [`crate::lattice`]).

use std::collections::BTreeMap;

use super::event::Event;
use super::state::{Order, ReceiptFacts, ReturnFacts, ShipmentFacts, Timestamp, join_earliest};
use crate::lattice::{Earliest, Join};

/// Applies an event to an order's state; returns whether the state changed (an event
/// already folded in, or one older than what the state knows, changes nothing).
pub fn evolve(state: &mut Order, event: &Event) -> bool {
    state.join(fact(event))
}

/// The single fact an event contributes, as a state holding only that fact.
fn fact(event: &Event) -> Order {
    let mut order = Order::default();
    match event.clone() {
        Event::OrderCaptured(draft) => order.draft = Some(draft),
        Event::OrderValidated(validation) => order.validation = Some(validation),
        Event::OrderRejected(rejection) => order.rejection = Some(rejection),
        Event::OrderBooked(booking) => order.booking = Some(booking),
        Event::LineAllocated {
            line,
            location,
            quantity,
            ..
        } => {
            order
                .allocations
                .insert(line, BTreeMap::from([(location, quantity)]));
        }
        Event::LineBackordered { line, quantity, .. } => {
            order.backorders.insert(line, quantity);
        }
        Event::ShipmentProgressed {
            shipment,
            location,
            lines,
            milestone,
            carrier,
            tracking,
            at,
        } => {
            let facts = ShipmentFacts {
                location,
                lines,
                milestone: Some(milestone),
                carrier,
                tracking,
                times: BTreeMap::from([(milestone, Earliest(Timestamp(at)))]),
            };
            order.shipments.insert(shipment, facts);
        }
        Event::InvoiceIssued { invoice, facts } => {
            order.invoices.insert(invoice, facts);
        }
        Event::PaymentReceived { payment, facts } => {
            order.payments.insert(payment, facts);
        }
        Event::OrderCancelled(cancellation) => order.cancellation = Some(cancellation),
        Event::OrderClosed { at } => order.closed = Some(Earliest(Timestamp(at))),
        Event::ReturnRequested { rma, request } => {
            order.returns.insert(
                rma,
                ReturnFacts {
                    request: Some(request),
                    ..ReturnFacts::default()
                },
            );
        }
        Event::ReturnAuthorised { rma, authorisation } => {
            order.returns.insert(
                rma,
                ReturnFacts {
                    authorisation: Some(authorisation),
                    ..ReturnFacts::default()
                },
            );
        }
        Event::ReturnRefused { rma, refusal } => {
            order.returns.insert(
                rma,
                ReturnFacts {
                    refusal: Some(refusal),
                    ..ReturnFacts::default()
                },
            );
        }
        Event::ReturnReceived {
            rma,
            receipt,
            facts,
        } => {
            let receipts: BTreeMap<_, ReceiptFacts> = BTreeMap::from([(receipt, facts)]);
            order.returns.insert(
                rma,
                ReturnFacts {
                    receipts,
                    ..ReturnFacts::default()
                },
            );
        }
        Event::CreditMemoIssued {
            rma,
            credit_memo,
            facts,
        } => {
            order.returns.insert(
                rma,
                ReturnFacts {
                    credit_memos: BTreeMap::from([(credit_memo, facts)]),
                    ..ReturnFacts::default()
                },
            );
        }
        Event::RefundIssued { rma, refund, facts } => {
            order.returns.insert(
                rma,
                ReturnFacts {
                    refunds: BTreeMap::from([(refund, facts)]),
                    ..ReturnFacts::default()
                },
            );
        }
        Event::ReturnClosed { rma, at } => {
            let mut facts = ReturnFacts::default();
            join_earliest(&mut facts.closed, Some(Earliest(Timestamp(at))));
            order.returns.insert(rma, facts);
        }
    }
    order
}

/// Folds a sequence of events into a state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Order {
    let mut state = Order::default();
    for event in events {
        evolve(&mut state, event);
    }
    state
}
