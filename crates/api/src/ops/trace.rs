//! One order's trace: everything that happened to it across systems, found by any of its ids.
//!
//! The trace merges the order's timeline (inbound messages, decisions and their events, every
//! task attempt with outcome and latency, effects, ownership refusals, operator actions) with
//! its dead letters and the work still queued for it. Details are redacted of secrets.

use crossdock_store::{DeadLetterFilter, OrderRow, SharedStore};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::redact::redact_json;

/// One line of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `inbound`, `event`, `attempt`, `effect`, `refusal`, `dead_letter`, `action`…
    pub kind: String,
    /// System involved.
    pub system: Option<String>,
    /// What happened, in words.
    pub summary: String,
    /// Outcome of an attempt (`ok`, `transient`, `permanent`…).
    pub outcome: Option<String>,
    /// Call duration of an attempt.
    pub latency_ms: Option<i64>,
    /// Correlation id.
    pub correlation: Option<String>,
    /// Details (redacted).
    pub detail: Value,
}

/// A dead letter of the order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceDeadLetter {
    /// Dead letter id.
    pub id: i64,
    /// Task kind.
    pub kind: String,
    /// Failure class.
    pub class: String,
    /// Error.
    pub error: String,
    /// `open`, `retried`, `resolved`, `auto_resolved`.
    pub status: String,
    /// Who closed it and why.
    pub resolution: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Work still queued for the order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedWork {
    /// Task id.
    pub task: i64,
    /// Lane.
    pub lane: String,
    /// Kind.
    pub kind: String,
    /// `pending`, `leased`, `dead` (dead and holding the order's later work).
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Last error.
    pub last_error: Option<String>,
}

/// An order's trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Hub order id.
    pub order_id: String,
    /// The id asked for.
    pub asked: String,
    /// Salesforce id.
    pub sf_id: Option<String>,
    /// Salesforce order number.
    pub sf_number: Option<String>,
    /// ERP order number.
    pub erp_ref: Option<String>,
    /// Customer account.
    pub account: Option<String>,
    /// Status name.
    pub status: Option<String>,
    /// Order value.
    pub total: Option<String>,
    /// Currency.
    pub currency: Option<String>,
    /// Status Salesforce last confirmed.
    pub sf_synced_status: Option<String>,
    /// Timeline and dead letters, oldest first.
    pub entries: Vec<TraceEntry>,
    /// Dead letters.
    pub dead_letters: Vec<TraceDeadLetter>,
    /// Queued work, oldest first.
    pub queued: Vec<QueuedWork>,
}

/// The trace of the order `any_id` names (hub id, Salesforce id or number, ERP number,
/// correlation id, return id…); `None` when no order matches.
///
/// # Errors
/// When the store fails.
pub async fn trace(store: &SharedStore, any_id: &str) -> crossdock_store::Result<Option<Trace>> {
    let any_id = any_id.trim();
    if any_id.is_empty() {
        return Ok(None);
    }
    let Some(order_id) = store.resolve(any_id).await? else {
        return Ok(None);
    };
    let row: Option<OrderRow> = store.order(&order_id).await?;
    let timeline = store.timeline(&order_id).await?;
    if row.is_none() && timeline.is_empty() {
        return Ok(None);
    }
    let dead = store
        .dead_letters(DeadLetterFilter {
            order_id: Some(order_id.clone()),
            limit: Some(1_000),
            ..DeadLetterFilter::default()
        })
        .await?;
    let queued = store.tasks_for_order(&order_id).await?;
    let mut entries: Vec<TraceEntry> = timeline
        .into_iter()
        .map(|e| TraceEntry {
            at: e.entry.at,
            kind: e.entry.kind,
            system: e.entry.system,
            summary: e.entry.summary,
            outcome: e.entry.outcome,
            latency_ms: e.entry.latency_ms,
            correlation: e.entry.correlation,
            detail: redact_json(&e.entry.detail),
        })
        .collect();
    for d in &dead {
        entries.push(TraceEntry {
            at: d.created_at,
            kind: "dead_letter".to_owned(),
            system: Some(d.task.lane.clone()),
            summary: format!(
                "{} set aside after {} attempt(s) ({}): {}",
                super::health::step_words(&d.task.kind),
                d.task.attempts,
                d.reason,
                d.error
            ),
            outcome: Some(d.status.as_str().to_owned()),
            latency_ms: None,
            correlation: d
                .task
                .payload
                .get("correlation")
                .and_then(Value::as_str)
                .map(str::to_owned),
            detail: serde_json::json!({ "dead_letter": d.id, "task": d.task.id, "class": d.class }),
        });
    }
    // Stable: equal times keep timeline order, dead letters after the attempt that caused them.
    entries.sort_by_key(|e| e.at);
    Ok(Some(Trace {
        order_id: order_id.clone(),
        asked: any_id.to_owned(),
        sf_id: row.as_ref().and_then(|r| r.sf_id.clone()),
        sf_number: row.as_ref().and_then(|r| r.sf_number.clone()),
        erp_ref: row.as_ref().and_then(|r| r.erp_ref.clone()),
        account: row.as_ref().map(|r| r.account.clone()),
        status: row.as_ref().map(|r| r.status.clone()),
        total: row.as_ref().map(|r| r.total.clone()),
        currency: row.as_ref().map(|r| r.currency.clone()),
        sf_synced_status: row.as_ref().and_then(|r| r.sf_synced_status.clone()),
        entries,
        dead_letters: dead
            .iter()
            .map(|d| TraceDeadLetter {
                id: d.id,
                kind: d.task.kind.clone(),
                class: d.class.clone(),
                error: d.error.clone(),
                status: d.status.as_str().to_owned(),
                resolution: d.resolution.clone(),
                attempts: d.task.attempts,
                created_at: d.created_at,
            })
            .collect(),
        queued: queued
            .into_iter()
            .map(|t| QueuedWork {
                task: t.id,
                lane: t.lane,
                kind: t.kind,
                state: match t.state {
                    crossdock_store::TaskState::Pending => "pending",
                    crossdock_store::TaskState::Leased => "leased",
                    crossdock_store::TaskState::Dead => "dead",
                }
                .to_owned(),
                attempts: t.attempts,
                due_at: t.due_at,
                last_error: t.last_error,
            })
            .collect(),
    }))
}
