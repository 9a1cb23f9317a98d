//! Reference conflicts: an answer or event that names an external reference (an ERP order
//! number, shipment, invoice, return or credit memo id, a Salesforce record id) already
//! bound to another order. The store refuses the decision whole
//! ([`crossdock_store::Error::ReferenceTaken`]), so nothing is overwritten; then both
//! orders are flagged: the refused task goes to the dead letters with class
//! [`KIND`], and a task of the same kind for the order holding the reference goes there
//! too once it has asked the issuing system what it knows of the reference (an ERP that
//! names another order, or none, for it has forgotten that order's booking). Both
//! timelines tell the story.

use crossdock_domain::ids::System;
use crossdock_ports::{Failure, FailureClass};
use crossdock_store::{
    Decision, Error, InboundStatus, Lease, NewDeadLetter, NewTask, TimelineEntry,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::Outcome;
use crate::engine::Engine;

/// Task kind, dead letter class and failure code of a reference conflict.
pub(crate) const KIND: &str = "reference-conflict";

/// A reference two orders claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Conflict {
    /// System that issued the reference.
    pub(crate) system: String,
    /// What it names there (`order`, `shipment`…).
    pub(crate) kind: String,
    /// The reference.
    pub(crate) reference: String,
    /// The order it is bound to.
    pub(crate) held_by: String,
    /// The order the refused answer named it for.
    pub(crate) claimed_by: String,
}

impl Conflict {
    /// The conflict a store error reports, if it is one.
    pub(crate) fn of(error: &Error) -> Option<Self> {
        match error {
            Error::ReferenceTaken {
                system,
                kind,
                reference,
                held_by,
                claimed_by,
            } => Some(Self {
                system: system.clone(),
                kind: kind.clone(),
                reference: reference.clone(),
                held_by: held_by.clone(),
                claimed_by: claimed_by.clone(),
            }),
            _ => None,
        }
    }

    /// The reference in words: "the ERP's order number SO-1".
    fn words(&self) -> String {
        let system = match self.system.as_str() {
            "erp" => "the ERP's",
            "salesforce" => "Salesforce's",
            other => other,
        };
        let what = match self.kind.as_str() {
            "order" if self.system == "salesforce" => "order record id",
            "order" => "order number",
            "shipment" => "shipment id",
            "invoice" => "invoice id",
            "return" => "return number",
            "credit-memo" => "credit memo id",
            other => other,
        };
        format!("{system} {what} {}", self.reference)
    }

    /// The lane of the issuing system (the owner of the exception).
    pub(crate) fn lane(&self) -> &'static str {
        if self.system == System::Salesforce.as_str() {
            "salesforce"
        } else {
            "erp"
        }
    }
}

/// What is written when `lease`'s decision named a reference another order holds: the dead
/// letter of the refused task, and a decision (`now`) that notes the conflict on both
/// orders' timelines, marks a refused inbound message, and queues the flag of the holding
/// order.
pub(crate) fn refused(
    lease: &Lease,
    conflict: &Conflict,
    now: OffsetDateTime,
) -> (NewDeadLetter, Decision) {
    let words = conflict.words();
    let (held_by, claimed_by) = (&conflict.held_by, &conflict.claimed_by);
    let summary = format!(
        "Refused: {words} belongs to order {held_by}; nothing recorded, both orders flagged \
         ({KIND})"
    );
    let detail = json!({ "conflict": conflict, "task": lease.task.id });
    let mut decision = Decision {
        timeline: vec![
            entry(claimed_by, now, conflict, summary.clone(), detail.clone()),
            entry(
                held_by,
                now,
                conflict,
                format!(
                    "{} named {words}, bound to this order, for order {claimed_by} too: \
                     refused there; this order is flagged ({KIND})",
                    capitalised(&words)
                ),
                detail,
            ),
        ],
        tasks: vec![flag_task(conflict, now)],
        ..Decision::default()
    };
    if lease.task.kind == "inbound"
        && let Some(inbox_id) = lease
            .task
            .payload
            .get("inbox_id")
            .and_then(serde_json::Value::as_i64)
    {
        decision.inbound = Some((inbox_id, InboundStatus::Refused, Some(summary)));
    }
    let letter = NewDeadLetter {
        class: KIND.to_owned(),
        error: Error::ReferenceTaken {
            system: conflict.system.clone(),
            kind: conflict.kind.clone(),
            reference: conflict.reference.clone(),
            held_by: held_by.clone(),
            claimed_by: claimed_by.clone(),
        }
        .to_string(),
        reason: "reference held by another order".to_owned(),
    };
    (letter, decision)
}

/// The task that flags the holding order.
fn flag_task(conflict: &Conflict, now: OffsetDateTime) -> NewTask {
    let held_by = &conflict.held_by;
    let key = format!(
        "{KIND}:{held_by}:{}:{}:{}:{}",
        conflict.system, conflict.kind, conflict.reference, conflict.claimed_by
    );
    NewTask {
        lane: conflict.lane().to_owned(),
        kind: KIND.to_owned(),
        key: format!("{KIND}:{held_by}"),
        dedupe: Some(key.clone()),
        idempotency_key: key,
        payload: json!({ "order": held_by, "conflict": conflict }),
        due_at: now,
        blocking: false,
        order_id: Some(held_by.clone()),
    }
}

/// Runs the flag of a holding order: asks the ERP what its order number names now (one
/// that names another order, or none, has forgotten this order's booking), notes it on the
/// timeline and dead-letters the task as a [`KIND`] exception.
pub(super) async fn flag(engine: &Engine, lease: &Lease) -> Outcome {
    let conflict = match lease
        .task
        .payload
        .get("conflict")
        .map(Conflict::deserialize)
    {
        Some(Ok(conflict)) => conflict,
        Some(Err(e)) => {
            return Outcome::Failed(Failure::permanent(format!(
                "{KIND} task has no valid `conflict`: {e}"
            )));
        }
        None => {
            return Outcome::Failed(Failure::permanent(format!("{KIND} task has no `conflict`")));
        }
    };
    let words = conflict.words();
    let (held_by, claimed_by) = (&conflict.held_by, &conflict.claimed_by);
    let mut finding = None;
    if conflict.system == System::Erp.as_str() && conflict.kind == "order" {
        finding = Some(match engine.erp.order(&conflict.reference).await {
            Ok(read) if read.reference.as_str() == held_by => {
                format!("the ERP's order {} still names this order", read.erp_ref)
            }
            Ok(read) => format!(
                "the ERP has forgotten this order's booking: its order {} names order {}",
                read.erp_ref, read.reference
            ),
            Err(f) if f.class == FailureClass::Permanent => format!(
                "the ERP has forgotten this order's booking: it does not know {} ({})",
                conflict.reference, f.message
            ),
            Err(f) if f.class == FailureClass::Transient && lease.task.attempts < 3 => {
                return Outcome::Failed(f);
            }
            Err(f) => format!(
                "the ERP could not be asked about {}: {f}",
                conflict.reference
            ),
        });
    }
    let mut message =
        format!("{words} is bound to this order and was named for order {claimed_by} too");
    if let Some(finding) = &finding {
        message.push_str("; ");
        message.push_str(finding);
    }
    let now = engine.clock.now();
    let decision = Decision {
        timeline: vec![entry(
            held_by,
            now,
            &conflict,
            format!("Flagged ({KIND}): {message}"),
            json!({ "conflict": conflict, "finding": finding, "task": lease.task.id }),
        )],
        ..Decision::default()
    };
    Outcome::FailedWith(Failure::permanent(message).with_code(KIND), decision)
}

fn entry(
    order: &str,
    at: OffsetDateTime,
    conflict: &Conflict,
    summary: String,
    detail: serde_json::Value,
) -> TimelineEntry {
    TimelineEntry {
        order_id: order.to_owned(),
        at,
        kind: "exception".to_owned(),
        summary,
        detail,
        system: Some(conflict.system.clone()),
        outcome: Some(KIND.to_owned()),
        latency_ms: None,
        correlation: None,
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
