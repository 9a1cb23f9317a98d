//! The process manager: given an event and the state after it, which effects follow.

use super::effect::Effect;
use super::event::Event;
use super::state::Order;
use crate::ids::System;

/// Effects that follow an event. `state` is the order's state with the event applied.
pub fn react(event: &Event, state: &Order) -> Vec<Effect> {
    let mut effects = Vec::new();
    match event {
        Event::OrderCaptured(_) => {
            effects.push(Effect::ValidateOrder);
            effects.push(Effect::SyncOrder);
        }
        Event::OrderValidated(_) => {
            effects.push(Effect::BookOrder);
            effects.push(Effect::SyncOrder);
        }
        Event::OrderRejected(_) => effects.push(Effect::SyncOrder),
        Event::OrderBooked(_) => {
            if state
                .cancellation
                .as_ref()
                .is_some_and(|c| c.by != System::Erp)
            {
                effects.push(Effect::CancelInErp);
            }
            effects.push(Effect::SyncOrder);
        }
        Event::LineAllocated { .. }
        | Event::LineBackordered { .. }
        | Event::ShipmentProgressed { .. }
        | Event::InvoiceIssued { .. }
        | Event::PaymentReceived { .. } => {
            effects.push(Effect::SyncOrder);
            if state.is_closable() {
                effects.push(Effect::CloseOrder);
            }
        }
        Event::OrderCancelled(cancellation) => {
            if cancellation.by != System::Erp && state.booking.is_some() {
                effects.push(Effect::CancelInErp);
            }
            effects.push(Effect::SyncOrder);
        }
        Event::OrderClosed { .. } => effects.push(Effect::SyncOrder),
        Event::ReturnRequested { rma, .. } => {
            effects.push(Effect::AuthoriseReturn { rma: rma.clone() });
            effects.push(Effect::SyncReturn { rma: rma.clone() });
        }
        Event::ReturnAuthorised { rma, .. } | Event::ReturnRefused { rma, .. } => {
            effects.push(Effect::SyncReturn { rma: rma.clone() });
        }
        Event::ReturnReceived { rma, .. } => {
            effects.push(Effect::IssueCreditMemo { rma: rma.clone() });
            effects.push(Effect::SyncReturn { rma: rma.clone() });
            effects.push(Effect::SyncOrder);
        }
        Event::CreditMemoIssued {
            rma, credit_memo, ..
        } => {
            effects.push(Effect::IssueRefund {
                rma: rma.clone(),
                credit_memo: credit_memo.clone(),
            });
            effects.push(Effect::SyncReturn { rma: rma.clone() });
            effects.push(Effect::SyncOrder);
        }
        Event::RefundIssued { rma, .. } => {
            effects.push(Effect::CloseReturn { rma: rma.clone() });
            effects.push(Effect::SyncReturn { rma: rma.clone() });
        }
        Event::ReturnClosed { rma, .. } => effects.push(Effect::SyncReturn { rma: rma.clone() }),
    }
    effects.retain(|effect| effect.is_still_needed(state));
    effects
}
