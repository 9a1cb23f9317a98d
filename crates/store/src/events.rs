//! Event streams: one per order (or per other aggregate), append-only, with optimistic
//! versioning.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::JsonText;

/// Events to append to a stream if it is still at `expected_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamAppend {
    /// Stream id (e.g. `order:ORD-1`).
    pub stream: String,
    /// Number of events the writer saw in the stream (0 for a new stream).
    pub expected_version: i64,
    /// Events, in order.
    pub events: Vec<NewEvent>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Event type name.
    pub kind: String,
    /// Event payload, rendered once by whoever builds the event (see [`JsonText`]).
    pub payload: JsonText,
    /// When it happened (as reported by its source).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// What caused it (inbox row, task idempotency key).
    pub causation: Option<String>,
    /// Correlation id shared by everything about one business transaction.
    pub correlation: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the global log (increasing, gaps allowed).
    pub global_seq: i64,
    /// Stream.
    pub stream: String,
    /// 1-based version within the stream.
    pub version: i64,
    /// Event type name.
    pub kind: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Cause.
    pub causation: Option<String>,
    /// Correlation id.
    pub correlation: Option<String>,
}
