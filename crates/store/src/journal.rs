//! Timeline and audit: what happened to each order (inbound messages, decisions, every
//! attempt, effects, refusals) and who changed what.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One entry on an order's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Order.
    pub order_id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Kind: `inbound`, `event`, `attempt`, `effect`, `refusal`, `dead_letter`, `action`.
    pub kind: String,
    /// One line for humans.
    pub summary: String,
    /// Details (redacted of secrets by the writer).
    pub detail: serde_json::Value,
    /// System involved (`salesforce`, `erp`, `hub`, `api`).
    pub system: Option<String>,
    /// Outcome (`ok`, `transient`, `permanent`…), for attempts.
    pub outcome: Option<String>,
    /// Duration of the call, for attempts.
    pub latency_ms: Option<i64>,
    /// Correlation id.
    pub correlation: Option<String>,
}

/// A stored timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTimelineEntry {
    /// Row id (increasing).
    pub id: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: TimelineEntry,
}

/// One audit record: who did what to what. Append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who (API client, operator, `system`).
    pub actor: String,
    /// What (`order.submit`, `dlq.retry`, `config.reload`…).
    pub action: String,
    /// On what (an order id, a dead letter id…).
    pub target: String,
    /// Details (redacted).
    pub detail: serde_json::Value,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAuditEntry {
    /// Row id (increasing).
    pub id: i64,
    /// The record.
    #[serde(flatten)]
    pub entry: AuditEntry,
}
