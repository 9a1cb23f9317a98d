//! Errors of the Tryton JSON-RPC client and their failure classes.
//!
//! Tryton answers business refusals as HTTP 200 with an `error` member
//! (`UserError`, `UserWarning`, `ConcurrencyException`, or any other server
//! exception), and transport or authentication problems as HTTP status codes.
//! [`Error::failure_class`] turns each into the class the engine retries by.

use std::time::Duration;

use crossdock_ports::{Failure, FailureClass};

/// Result of a Tryton call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to Tryton. Every variant names the JSON-RPC method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `UserError`: a business refusal or validation error (Tryton's own words).
    #[error("{method}: {message}")]
    User {
        /// JSON-RPC method.
        method: String,
        /// Tryton's message.
        message: String,
        /// Tryton's longer description (often empty).
        description: String,
    },
    /// `UserWarning` that is not on the accepted list: needs a person to confirm.
    #[error("{method}: warning {name}: {message}")]
    Warning {
        /// JSON-RPC method.
        method: String,
        /// Warning name (the key `res.user.warning.skip` takes).
        name: String,
        /// Tryton's message.
        message: String,
    },
    /// `ConcurrencyException`: the records changed under the call.
    #[error("{method}: records were modified concurrently: {message}")]
    Concurrency {
        /// JSON-RPC method.
        method: String,
        /// Tryton's message.
        message: String,
    },
    /// Any other exception raised by the server (unknown field, bad argument, database error).
    #[error("{method}: server error: {message}")]
    Server {
        /// JSON-RPC method.
        method: String,
        /// The exception text.
        message: String,
    },
    /// Login refused, or the session was refused again right after a fresh login.
    #[error("{method}: authentication failed: {message}")]
    Auth {
        /// JSON-RPC method.
        method: String,
        /// What the server said.
        message: String,
    },
    /// An HTTP status other than 200 (except a 401 that a fresh login cured).
    #[error("{method}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http {
        /// JSON-RPC method.
        method: String,
        /// HTTP status code.
        status: u16,
        /// `Retry-After` of a 429 or 503, when given in seconds.
        retry_after: Option<Duration>,
        /// Start of the response body.
        body: String,
    },
    /// The request did not get an answer: connection refused or reset, timeout.
    #[error("{method}: {message}")]
    Transport {
        /// JSON-RPC method.
        method: String,
        /// Whether the configured timeout expired.
        timeout: bool,
        /// What failed.
        message: String,
    },
    /// The answer was not what the method returns (not JSON, wrong shape, missing field).
    #[error("{method}: malformed answer: {detail}")]
    Malformed {
        /// JSON-RPC method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// The client or adapter configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// The kind of an [`Error`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `UserError`.
    User,
    /// `UserWarning` not accepted automatically.
    Warning,
    /// `ConcurrencyException`.
    Concurrency,
    /// Other server exception.
    Server,
    /// Authentication.
    Auth,
    /// HTTP 429.
    Throttled,
    /// HTTP 5xx or 408.
    Unavailable,
    /// Other HTTP 4xx (e.g. 403 method not exposed, 422 missing context).
    Rejected,
    /// No answer (connection, timeout).
    Transport,
    /// Answer of the wrong shape.
    Malformed,
    /// Configuration.
    Config,
}

/// Server exception texts that mean "try again": SQLite busy, PostgreSQL serialisation.
const TRANSIENT_SERVER_ERRORS: [&str; 4] = [
    "database is locked",
    "could not serialize access",
    "deadlock detected",
    "OperationalError",
];

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::User { .. } => ErrorKind::User,
            Error::Warning { .. } => ErrorKind::Warning,
            Error::Concurrency { .. } => ErrorKind::Concurrency,
            Error::Server { .. } => ErrorKind::Server,
            Error::Auth { .. } => ErrorKind::Auth,
            Error::Http { status: 429, .. } => ErrorKind::Throttled,
            Error::Http { status, .. } if *status >= 500 || *status == 408 => {
                ErrorKind::Unavailable
            }
            Error::Http { .. } => ErrorKind::Rejected,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Malformed { .. } => ErrorKind::Malformed,
            Error::Config(_) => ErrorKind::Config,
        }
    }

    /// How the engine should treat the failure.
    pub fn failure_class(&self) -> FailureClass {
        match self {
            Error::User { .. } | Error::Warning { .. } | Error::Auth { .. } | Error::Config(_) => {
                FailureClass::Permanent
            }
            Error::Concurrency { .. } => FailureClass::Conflict,
            Error::Server { message, .. } => {
                if TRANSIENT_SERVER_ERRORS.iter().any(|t| message.contains(t)) {
                    FailureClass::Transient
                } else {
                    FailureClass::Permanent
                }
            }
            Error::Http { retry_after, .. } => match self.kind() {
                ErrorKind::Throttled => FailureClass::Throttled {
                    retry_after: *retry_after,
                },
                ErrorKind::Unavailable => FailureClass::Transient,
                _ => FailureClass::Permanent,
            },
            Error::Transport { .. } => FailureClass::Transient,
            Error::Malformed { .. } => FailureClass::Unknown,
        }
    }

    /// The error code reported with the failure (Tryton's exception name or the HTTP status).
    pub fn code(&self) -> String {
        match self {
            Error::User { .. } => "UserError".to_owned(),
            Error::Warning { .. } => "UserWarning".to_owned(),
            Error::Concurrency { .. } => "ConcurrencyException".to_owned(),
            Error::Server { .. } => "ServerException".to_owned(),
            Error::Auth { .. } => "Unauthorized".to_owned(),
            Error::Http { status, .. } => format!("HTTP {status}"),
            Error::Transport { timeout: true, .. } => "Timeout".to_owned(),
            Error::Transport { .. } => "Connection".to_owned(),
            Error::Malformed { .. } => "MalformedResponse".to_owned(),
            Error::Config(_) => "Config".to_owned(),
        }
    }

    /// Tryton's message for a `UserError`, `UserWarning` or server exception.
    pub fn tryton_message(&self) -> Option<&str> {
        match self {
            Error::User { message, .. }
            | Error::Warning { message, .. }
            | Error::Concurrency { message, .. }
            | Error::Server { message, .. } => Some(message),
            _ => None,
        }
    }

    pub(crate) fn malformed(method: &str, detail: impl Into<String>) -> Self {
        Error::Malformed {
            method: method.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let class = error.failure_class();
        let code = error.code();
        let message = match &error {
            // The engine shows this to people: Tryton's own words first.
            Error::User {
                message,
                description,
                ..
            } if !description.is_empty() => format!("{message} ({description})"),
            Error::User { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Failure::new(class, message).with_code(code)
    }
}
