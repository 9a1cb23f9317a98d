//! Dead letters: work that failed for good, with its payload, error class and message, and
//! the actions taken on it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::tasks::Task;

/// Why a task is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeadLetter {
    /// Failure class (`permanent`, `unknown`, `transient`…).
    pub class: String,
    /// Error message.
    pub error: String,
    /// Short reason (e.g. `retry limit reached`, `permanent failure`).
    pub reason: String,
}

/// State of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    /// Waiting for someone.
    Open,
    /// Sent back to the queue.
    Retried,
    /// Closed by an operator with a reason.
    Resolved,
    /// Closed because a later attempt of the same order and step succeeded.
    AutoResolved,
}

impl DeadLetterStatus {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStatus::Open => "open",
            DeadLetterStatus::Retried => "retried",
            DeadLetterStatus::Resolved => "resolved",
            DeadLetterStatus::AutoResolved => "auto_resolved",
        }
    }

    /// Parses [`DeadLetterStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Retried,
            Self::Resolved,
            Self::AutoResolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// The task as it was when it died.
    pub task: Task,
    /// Failure class.
    pub class: String,
    /// Error message.
    pub error: String,
    /// Short reason.
    pub reason: String,
    /// When it died.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// State.
    pub status: DeadLetterStatus,
    /// Who resolved or retried it, and why.
    pub resolution: Option<String>,
    /// When it left the `open` state.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this status.
    pub status: Option<DeadLetterStatus>,
    /// Only this lane.
    pub lane: Option<String>,
    /// Only this task kind.
    pub kind: Option<String>,
    /// Only this order.
    pub order_id: Option<String>,
    /// Only this failure class.
    pub class: Option<String>,
    /// Ids greater than this (cursor).
    pub after_id: Option<i64>,
    /// Most rows (default 100).
    pub limit: Option<usize>,
}
