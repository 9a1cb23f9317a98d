//! Failure classes: how a connector tells the engine what kind of failure it met. Only the
//! engine decides whether and when to retry.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Retry class of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum FailureClass {
    /// Timeouts, 5xx, connection resets: retry with exponential backoff and full jitter.
    Transient,
    /// Rate limited (429, `REQUEST_LIMIT_EXCEEDED`): wait at least `retry_after` and slow the lane.
    Throttled {
        /// The downstream's requested wait, when it gave one.
        #[serde(default, with = "opt_millis", skip_serializing_if = "Option::is_none")]
        retry_after: Option<Duration>,
    },
    /// Lock contention or optimistic concurrency (`UNABLE_TO_LOCK_ROW`): short retries.
    Conflict,
    /// Validation or business refusal: never retried; goes to the exception queue at once.
    Permanent,
    /// Anything unexpected (unparseable answers, unknown errors): bounded retries, then dead letter.
    Unknown,
}

impl FailureClass {
    /// Short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Throttled { .. } => "throttled",
            FailureClass::Conflict => "conflict",
            FailureClass::Permanent => "permanent",
            FailureClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to a downstream system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{class}: {message}")]
pub struct Failure {
    /// Retry class.
    pub class: FailureClass,
    /// What went wrong, in the downstream's words when it gave any.
    pub message: String,
    /// The downstream's error code (e.g. `UNABLE_TO_LOCK_ROW`, `UserError`, HTTP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Failure {
    /// A failure of the given class.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            code: None,
        }
    }

    /// Adds the downstream's error code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Transient, message)
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Permanent, message)
    }

    /// A conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Conflict, message)
    }

    /// A throttled call.
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::new(FailureClass::Throttled { retry_after }, message)
    }

    /// An unexpected failure (e.g. an answer of the wrong shape).
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Unknown, message)
    }
}

/// Result of a call to a downstream system.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
