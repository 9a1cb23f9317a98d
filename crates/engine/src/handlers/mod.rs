//! Task handlers, one module per lane: what each kind of task does and which commands its
//! result turns into.

pub(crate) mod conflict;
mod erp;
mod hub;
mod inbound;
mod salesforce;

use crossdock_domain::ids::OrderId;
use crossdock_domain::order::{Command, Effect, Lane as LaneName};
use crossdock_ports::Failure;
use crossdock_store::{Decision, Lease};
use serde::Deserialize;

use crate::apply::{Cause, Loaded, apply};
use crate::engine::Engine;

/// What became of one task.
#[derive(Debug)]
pub enum Outcome {
    /// Done: complete the task with this decision.
    Done(Decision),
    /// Failed: retry or dead-letter by the failure's class.
    Failed(Failure),
    /// Failed, and this decision is written whatever happens next (e.g. the inbound message
    /// marked refused).
    FailedWith(Failure, Decision),
    /// Not yet: the message arrived before what it depends on (e.g. a shipment before the
    /// order's capture). It goes to the back of its key's queue so younger messages of the
    /// same key — possibly the one it waits for — can pass; after too many deferrals it is
    /// dead-lettered with the reason.
    Defer(String),
}

/// Runs a group of leased tasks (one task, or a batch of one kind on batched lanes).
pub async fn run(engine: &Engine, lane: LaneName, leases: &[Lease]) -> Vec<Outcome> {
    let kind = leases[0].task.kind.as_str();
    match (lane, kind) {
        (LaneName::Hub, "inbound") => vec![inbound::run(engine, &leases[0]).await],
        (_, conflict::KIND) => {
            let mut outcomes = Vec::with_capacity(leases.len());
            for lease in leases {
                outcomes.push(conflict::flag(engine, lease).await);
            }
            outcomes
        }
        (LaneName::Salesforce, "sf-sync") => salesforce::orders(engine, leases).await,
        (LaneName::Salesforce, "sf-return") => salesforce::returns(engine, leases).await,
        (LaneName::Salesforce, "sf-inventory") => salesforce::inventory(engine, leases).await,
        (LaneName::Salesforce, "sf-credit") => salesforce::credit(engine, leases).await,
        (LaneName::Erp, "erp-customer") => vec![erp::customer(engine, &leases[0]).await],
        (LaneName::Erp, _) => {
            let mut outcomes = Vec::with_capacity(leases.len());
            for lease in leases {
                outcomes.push(erp::run(engine, lease).await);
            }
            outcomes
        }
        (LaneName::Hub, _) => {
            let mut outcomes = Vec::with_capacity(leases.len());
            for lease in leases {
                outcomes.push(hub::run(engine, lease).await);
            }
            outcomes
        }
        (LaneName::Salesforce, other) => leases
            .iter()
            .map(|_| {
                Outcome::Failed(Failure::permanent(format!(
                    "unknown Salesforce task kind `{other}`"
                )))
            })
            .collect(),
    }
}

/// The order and effect an effect task carries.
pub(crate) fn effect_of(lease: &Lease) -> Result<(OrderId, Effect), Failure> {
    let payload = &lease.task.payload;
    let order = payload
        .get("order")
        .and_then(|o| o.as_str())
        .ok_or_else(|| Failure::permanent("task payload has no `order`"))?;
    // Read in place: no copy of the effect's tree.
    let effect = payload
        .get("effect")
        .map_or_else(
            || Effect::deserialize(&serde_json::Value::Null),
            Effect::deserialize,
        )
        .map_err(|e| Failure::permanent(format!("task payload has no valid `effect`: {e}")))?;
    Ok((OrderId::new(order), effect))
}

/// Correlation id a task carries.
pub(crate) fn correlation(lease: &Lease) -> Option<String> {
    lease
        .task
        .payload
        .get("correlation")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
}

/// Applies commands to an order (as the leased task sees it) and merges `extra` into the
/// resulting decision; the new state is staged for the cache.
///
/// A lifecycle violation becomes a failure of class `invalid` (answers from a downstream that
/// the order cannot accept are not retried blindly: they are bounded `unknown` failures).
pub(crate) async fn apply_order(
    engine: &Engine,
    lease: &Lease,
    order: &OrderId,
    commands: &[Command],
    cause: &Cause,
    extra: Decision,
) -> Result<Decision, ApplyError> {
    let loaded = engine
        .load_order(lease, order)
        .await
        .map_err(|e| ApplyError::Unavailable(Failure::transient(e.to_string())))?;
    let applied = apply(
        order,
        &loaded,
        commands,
        cause,
        &engine.config,
        engine.clock.now(),
    )
    .map_err(ApplyError::Refused)?;
    engine
        .metrics
        .events(applied.events.iter().map(|e| e.name()));
    if !applied.events.is_empty() {
        engine.cache.stage(
            lease.token,
            order.as_str(),
            Loaded {
                state: applied.state,
                version: applied.version,
            },
        );
    }
    Ok(merge(applied.decision, extra))
}

/// Why applying commands failed.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// The store could not be read.
    Unavailable(Failure),
    /// The order refused a command.
    Refused(crossdock_domain::Error),
}

/// Combines two decisions (the second's single-valued fields win when set; its timeline
/// entries come first, as they describe what led to the first's).
pub(crate) fn merge(mut a: Decision, b: Decision) -> Decision {
    if b.append.is_some() {
        a.append = b.append;
    }
    a.tasks.extend(b.tasks);
    if b.order.is_some() {
        a.order = b.order;
    }
    a.synced.extend(b.synced);
    a.inventory.extend(b.inventory);
    a.accounts.extend(b.accounts);
    a.refs.extend(b.refs);
    a.bind.extend(b.bind);
    let mut timeline = b.timeline;
    timeline.append(&mut a.timeline);
    a.timeline = timeline;
    a.audit.extend(b.audit);
    if b.inbound.is_some() {
        a.inbound = b.inbound;
    }
    if b.auto_resolve.is_some() {
        a.auto_resolve = b.auto_resolve;
    }
    a
}
