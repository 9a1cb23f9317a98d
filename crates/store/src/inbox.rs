//! Inbox: every inbound message, stored raw before anything else, deduplicated by
//! `(source, message_id)`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::tasks::NewTask;

/// A message to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInbound {
    /// Source system (`salesforce`, `erp`, `api`…).
    pub source: String,
    /// The source's id of the message; `(source, message_id)` is unique.
    pub message_id: String,
    /// Kind (e.g. `order.CaptureOrder`, `inventory`).
    pub kind: String,
    /// Ordering key (e.g. `order:ORD-1`).
    pub key: String,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Payload exactly as received.
    pub raw: String,
    /// Canonical meaning (JSON of the inbound body).
    pub body: serde_json::Value,
    /// Task that will process it, enqueued in the same transaction. Its payload gets
    /// `"inbox_id"` set to the new row's id.
    pub task: Option<NewTask>,
}

/// A feed subscriber's new position, saved in the transaction that stores the messages read
/// up to it ([`crate::Store::accept_inbound_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorMove {
    /// Cursor name (e.g. `erp-changes`).
    pub name: String,
    /// Position after the page.
    pub position: String,
    /// When it was saved.
    pub at: OffsetDateTime,
}

/// Processing state of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Stored, not processed yet.
    Pending,
    /// Processed.
    Processed,
    /// Refused (ownership, lifecycle violation); kept with the reason.
    Refused,
    /// Failed (unreadable); kept with the reason, can be replayed.
    Failed,
}

impl InboundStatus {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Pending => "pending",
            InboundStatus::Processed => "processed",
            InboundStatus::Refused => "refused",
            InboundStatus::Failed => "failed",
        }
    }

    /// Parses [`InboundStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Processed, Self::Refused, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A stored inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// Row id.
    pub id: i64,
    /// Source system.
    pub source: String,
    /// Source message id.
    pub message_id: String,
    /// Kind.
    pub kind: String,
    /// Ordering key.
    pub key: String,
    /// When received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Raw payload.
    pub raw: String,
    /// Canonical body.
    pub body: serde_json::Value,
    /// Processing state.
    pub status: InboundStatus,
    /// Why it was refused or failed.
    pub error: Option<String>,
}

/// Whether the message was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "id")]
pub enum Accepted {
    /// Stored now, with this row id.
    New(i64),
    /// Already stored under this row id; nothing changed.
    Duplicate(i64),
}

impl Accepted {
    /// The row id of a message stored now.
    #[must_use]
    pub fn new_id(self) -> Option<i64> {
        match self {
            Accepted::New(id) => Some(id),
            Accepted::Duplicate(_) => None,
        }
    }
}
