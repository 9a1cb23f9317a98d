//! Internal follow-ups: closing orders and returns once everything is done.

use crossdock_domain::ids::System;
use crossdock_domain::order::{Command, Effect};
use crossdock_ports::Failure;
use crossdock_store::Decision;
use crossdock_store::Lease;

use super::{ApplyError, Outcome, apply_order, correlation, effect_of};
use crate::apply::Cause;
use crate::engine::Engine;

pub(super) async fn run(engine: &Engine, lease: &Lease) -> Outcome {
    let (order, effect) = match effect_of(lease) {
        Ok(parts) => parts,
        Err(failure) => return Outcome::Failed(failure),
    };
    let now = engine.clock.now();
    let command = match &effect {
        Effect::CloseOrder => Command::CloseOrder { at: now },
        Effect::CloseReturn { rma } => Command::CloseReturn {
            rma: rma.clone(),
            at: now,
        },
        other => {
            return Outcome::Failed(Failure::permanent(format!(
                "{} is not an internal step",
                other.step()
            )));
        }
    };
    let cause = Cause {
        system: System::Hub,
        causation: lease.task.idempotency_key.clone(),
        correlation: correlation(lease),
    };
    match apply_order(
        engine,
        lease,
        &order,
        &[command],
        &cause,
        Decision::default(),
    )
    .await
    {
        Ok(decision) => Outcome::Done(decision),
        Err(ApplyError::Unavailable(failure)) => Outcome::Failed(failure),
        // Closing is re-checked at run time: if something reopened the order, there is
        // nothing to close now and a later event will ask again.
        Err(ApplyError::Refused(error)) if error.code() == "not_allowed" => {
            Outcome::Done(Decision::default())
        }
        Err(ApplyError::Refused(error)) => Outcome::Failed(Failure::unknown(error.to_string())),
    }
}
