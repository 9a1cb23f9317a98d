//! Salesforce connector: how the hub writes order state to Salesforce and hears what changes
//! there.
//!
//! - [`config`]: the `[salesforce]` block — login, instance, API version, auth (JWT bearer,
//!   client credentials or a fixed token), trusted CA, limits, batch size, Pub/Sub topics and
//!   the declarative field mapping. Secrets print as `***`.
//! - [`auth`]: OAuth 2.0 tokens, cached and shared; one refresh for many callers.
//! - [`client`]: the REST client — sObject Collections (≤ 200 records per call,
//!   `allOrNone: false`), SOQL with `nextRecordsUrl` paging, single-record reads, limit
//!   tracking from `Sforce-Limit-Info` and the reserve that slows writes down before the daily
//!   limit is spent.
//! - [`errors`]: Salesforce error codes → [`FailureClass`](crossdock_ports::FailureClass).
//! - [`mapping`]: which Salesforce field gets which canonical value (a table, overridable
//!   from config).
//! - [`adapter`]: [`Adapter`] implements [`crossdock_ports::Salesforce`]: batched, state-based
//!   write-backs with one result per order, and `read_order`.
//! - [`pubsub`]: the Pub/Sub API subscriber: Change Data Capture events decoded (Avro, by
//!   schema id) and mapped to canonical inbound messages, with durable replay-id checkpoints,
//!   gap/overflow re-reads and echo suppression.
//!
//! Build an [`Adapter`] with [`Adapter::build`], and a [`pubsub::Subscriber`] with
//! [`pubsub::Subscriber::build`] on top of it.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod auth;
pub mod client;
pub mod config;
pub mod errors;
pub mod limits;
pub mod mapping;
pub mod pubsub;

#[cfg(test)]
mod tests;

pub use adapter::Adapter;
pub use config::{Auth, Config, Secret};
pub use pubsub::{Counters, Subscriber};

/// Why the connector could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (every problem, one per line).
    #[error("invalid Salesforce configuration:\n{}", .0.join("\n"))]
    Config(Vec<String>),
    /// A file named in the configuration could not be read or parsed.
    #[error("cannot use {path}: {reason}")]
    File {
        /// File.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP or gRPC client could not be set up.
    #[error("cannot set up the Salesforce client: {0}")]
    Setup(String),
}

/// What kind of [`Error`] happened, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Invalid configuration.
    Config,
    /// Unreadable file.
    File,
    /// Client setup.
    Setup,
}

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::File { .. } => ErrorKind::File,
            Error::Setup(_) => ErrorKind::Setup,
        }
    }
}

/// Result of building the connector.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Generated Pub/Sub API types (`eventbus.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("eventbus.v1");
}
