//! Salesforce lane: state-based write-backs, batched. One call carries up to a collections
//! call's worth of tasks; each task succeeds or fails on its own record's result.

use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::{LocationId, RmaId, Sku};
use crossdock_domain::order::{Effect, OrderStatus};
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::Failure;
use crossdock_ports::erp::CreditReport;
use crossdock_store::{Decision, Lease, OrderRow, SyncMark, TimelineEntry};
use futures::future::join_all;
use time::OffsetDateTime;

use super::{Outcome, correlation, effect_of};
use crate::engine::Engine;

/// Summary rows of a batch's orders, in the batch's order. Read side by side (a batch holds
/// up to a collections call's worth of orders; one after the other, on PostgreSQL, that was
/// seconds of round trips).
async fn rows(engine: &Engine, leases: &[Lease]) -> Vec<Result<OrderRow, Failure>> {
    let mut out = Vec::with_capacity(leases.len());
    for chunk in leases.chunks(READS_AT_ONCE) {
        out.extend(join_all(chunk.iter().map(|lease| row(engine, lease))).await);
    }
    out
}

async fn row(engine: &Engine, lease: &Lease) -> Result<OrderRow, Failure> {
    let (order, _) = effect_of(lease)?;
    match engine.store.order(order.as_str()).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(Failure::transient(format!(
            "order {order} has no summary yet"
        ))),
        Err(e) => Err(Failure::transient(e.to_string())),
    }
}

/// Order rows a batch reads at once.
const READS_AT_ONCE: usize = 16;

fn summary(row: &OrderRow) -> Result<OrderSummary, Failure> {
    row.body.parse().map_err(|e| {
        Failure::permanent(format!(
            "stored summary of {} is unreadable: {e}",
            row.order_id
        ))
    })
}

/// Writes orders' current state.
pub(super) async fn orders(engine: &Engine, leases: &[Lease]) -> Vec<Outcome> {
    let rows = rows(engine, leases).await;
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(leases.len());
    let mut batch = Vec::new();
    let mut slots = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        match row.as_ref().map_err(Clone::clone).and_then(summary) {
            Ok(summary) => {
                batch.push(summary);
                slots.push(index);
                outcomes.push(None);
            }
            Err(f) => outcomes.push(Some(Outcome::Failed(f))),
        }
    }
    if !batch.is_empty() {
        let results = engine.salesforce.write_orders(&batch).await;
        let now = engine.clock.now();
        for ((index, result), summary) in
            slots.into_iter().zip(pad(results, batch.len())).zip(&batch)
        {
            let row = rows[index].as_ref().ok();
            outcomes[index] = Some(match result {
                Ok(()) => Outcome::Done(Decision {
                    synced: synced(row, summary, now),
                    ..Decision::default()
                }),
                Err(f) if nothing_to_write_back(summary, &f) => Outcome::Done(Decision {
                    // Salesforce shows all it can of this order (nothing): the rejection is
                    // the order's outcome, kept in the hub, not a failure for someone to fix.
                    synced: synced(row, summary, now),
                    timeline: vec![TimelineEntry {
                        order_id: summary.id.to_string(),
                        at: now,
                        kind: "effect".to_owned(),
                        summary: "Rejection not written to Salesforce: it has no such account"
                            .to_owned(),
                        detail: serde_json::json!({ "reason": f.message }),
                        system: Some("salesforce".to_owned()),
                        outcome: Some("skipped".to_owned()),
                        latency_ms: None,
                        correlation: leases.get(index).and_then(correlation),
                    }],
                    ..Decision::default()
                }),
                Err(f) => Outcome::Failed(f),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed(Failure::unknown("no result"))))
        .collect()
}

/// The mark that Salesforce now shows `summary`, the state of `row` (none without a row).
fn synced(row: Option<&OrderRow>, summary: &OrderSummary, now: OffsetDateTime) -> Vec<SyncMark> {
    row.map(|row| SyncMark {
        order_id: row.order_id.clone(),
        version: row.version,
        status: summary.status.name().to_owned(),
        at: now,
    })
    .into_iter()
    .collect()
}

/// Whether a write-back refusal only says that Salesforce cannot hold the order at all: a
/// rejected order submitted outside Salesforce (no Salesforce id) for an account Salesforce
/// does not have. Writing it would create an order under no account; there is nothing to
/// write, and a dead letter would page someone over a client's bad order.
fn nothing_to_write_back(summary: &OrderSummary, failure: &Failure) -> bool {
    summary.status == OrderStatus::Rejected
        && summary.refs.sf_id.is_none()
        && failure.class == crossdock_ports::FailureClass::Permanent
        && failure.code.as_deref() == Some("NOT_FOUND")
        && failure.message.contains("account")
}

/// Writes returns' state to their cases.
pub(super) async fn returns(engine: &Engine, leases: &[Lease]) -> Vec<Outcome> {
    let rows = rows(engine, leases).await;
    let mut outcomes: Vec<Option<Outcome>> = Vec::new();
    let mut batch: Vec<(OrderSummary, RmaId)> = Vec::new();
    let mut slots = Vec::new();
    for (index, (row, lease)) in rows.iter().zip(leases).enumerate() {
        let entry = row
            .as_ref()
            .map_err(Clone::clone)
            .and_then(summary)
            .and_then(|s| match effect_of(lease)? {
                (_, Effect::SyncReturn { rma }) => Ok((s, rma)),
                (_, other) => Err(Failure::permanent(format!(
                    "{} is not a return sync",
                    other.step()
                ))),
            });
        match entry {
            Ok(entry) => {
                batch.push(entry);
                slots.push(index);
                outcomes.push(None);
            }
            Err(f) => outcomes.push(Some(Outcome::Failed(f))),
        }
    }
    if !batch.is_empty() {
        let results = engine.salesforce.write_returns(&batch).await;
        for (index, result) in slots.into_iter().zip(pad(results, batch.len())) {
            outcomes[index] = Some(match result {
                Ok(()) => Outcome::Done(Decision::default()),
                Err(f) => Outcome::Failed(f),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed(Failure::unknown("no result"))))
        .collect()
}

/// Writes availability of the SKUs in the batch (every location, from the cache).
pub(super) async fn inventory(engine: &Engine, leases: &[Lease]) -> Vec<Outcome> {
    let skus: Vec<String> = leases
        .iter()
        .map(|l| {
            l.task
                .payload
                .get("sku")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let rows = match engine.store.inventory(&skus).await {
        Ok(rows) => rows,
        Err(e) => {
            return leases
                .iter()
                .map(|_| Outcome::Failed(Failure::transient(e.to_string())))
                .collect();
        }
    };
    let levels: Vec<InventoryLevel> = rows
        .iter()
        .map(|r| InventoryLevel {
            sku: Sku::new(r.sku.clone()),
            location: LocationId::new(r.location.clone()),
            on_hand: r.on_hand,
            reserved: r.reserved,
            available: r.available,
            as_of: r.as_of,
        })
        .collect();
    let results = if levels.is_empty() {
        Vec::new()
    } else {
        engine.salesforce.write_inventory(&levels).await
    };
    let results = pad(results, levels.len());
    skus.iter()
        .map(|sku| {
            let failure = levels
                .iter()
                .zip(&results)
                .filter(|(level, _)| level.sku.as_str() == sku)
                .find_map(|(_, r)| r.as_ref().err().cloned());
            match failure {
                None => Outcome::Done(Decision::default()),
                Some(f) => Outcome::Failed(f),
            }
        })
        .collect()
}

/// Writes customers' credit standing.
pub(super) async fn credit(engine: &Engine, leases: &[Lease]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = Vec::new();
    let mut batch = Vec::new();
    let mut slots = Vec::new();
    for (index, lease) in leases.iter().enumerate() {
        match serde_json::from_value::<CreditReport>(
            lease
                .task
                .payload
                .get("report")
                .cloned()
                .unwrap_or_default(),
        ) {
            Ok(report) => {
                batch.push(current_standing(engine, report).await);
                slots.push(index);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Outcome::Failed(Failure::permanent(format!(
                "credit task payload: {e}"
            ))))),
        }
    }
    if !batch.is_empty() {
        let results = engine.salesforce.write_credit(&batch).await;
        for (index, result) in slots.into_iter().zip(pad(results, batch.len())) {
            outcomes[index] = Some(match result {
                Ok(()) => Outcome::Done(Decision::default()),
                Err(f) => Outcome::Failed(f),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed(Failure::unknown("no result"))))
        .collect()
}

/// The account's credit standing as the hub knows it now. A later credit change collapses into
/// a pending task of the same account (dedupe), so the report queued with the task may be
/// stale: like the order and inventory write-backs, send the current state.
async fn current_standing(engine: &Engine, queued: CreditReport) -> CreditReport {
    let Ok(Some(row)) = engine.store.account(queued.account.as_str()).await else {
        return queued;
    };
    let field = |name: &str| row.body.get(name).cloned().unwrap_or_default();
    match serde_json::from_value(field("credit_status")) {
        Ok(status) => CreditReport {
            status,
            limit: serde_json::from_value(field("credit_limit")).unwrap_or(queued.limit),
            balance: serde_json::from_value(field("open_balance")).unwrap_or(queued.balance),
            account: queued.account,
        },
        Err(_) => queued,
    }
}

/// An adapter that answers fewer results than records sent is broken: the missing ones fail.
fn pad(mut results: Vec<Result<(), Failure>>, len: usize) -> Vec<Result<(), Failure>> {
    while results.len() < len {
        results.push(Err(Failure::unknown(
            "the Salesforce adapter returned no result for this record",
        )));
    }
    results.truncate(len);
    results
}
