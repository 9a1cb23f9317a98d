//! Inbound messages: what connectors and the API hand to the hub. Every message is stored
//! in the inbox with its raw payload before anything else happens, and deduplicated by its
//! source message id.

use async_trait::async_trait;
use crossdock_domain::account::Account;
use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::{OrderId, System};
use crossdock_domain::order::Command;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::erp::CreditReport;

/// A message as received, with its canonical meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// System it came from.
    pub source: System,
    /// The source's own id for the message (replay id, change id, idempotency key…).
    pub message_id: String,
    /// When the hub received it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The payload exactly as received.
    pub raw: String,
    /// Its meaning in the canonical model.
    pub body: Inbound,
}

/// The canonical meaning of an inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Inbound {
    /// A command for one order.
    Order {
        /// Order.
        order: OrderId,
        /// Command.
        command: Command,
    },
    /// A stock level changed.
    Inventory {
        /// New level.
        level: InventoryLevel,
    },
    /// An account changed in the account master.
    Account {
        /// Account.
        account: Account,
    },
    /// A customer's credit standing changed in the credit master.
    Credit {
        /// Report.
        report: CreditReport,
    },
    /// The payload could not be understood; kept so it can be fixed and replayed.
    Unreadable {
        /// What was wrong with it.
        reason: String,
    },
}

impl Inbound {
    /// Key that orders processing: messages with the same key are handled one at a time,
    /// in arrival order.
    pub fn key(&self) -> String {
        match self {
            Inbound::Order { order, .. } => format!("order:{order}"),
            Inbound::Inventory { level } => format!("sku:{}", level.sku),
            Inbound::Account { account } => format!("account:{}", account.id),
            Inbound::Credit { report } => format!("account:{}", report.account),
            Inbound::Unreadable { .. } => "unreadable".to_owned(),
        }
    }

    /// Short kind name for logs, metrics and the inbox.
    pub fn kind(&self) -> String {
        match self {
            Inbound::Order { command, .. } => format!("order.{}", command.name()),
            Inbound::Inventory { .. } => "inventory".to_owned(),
            Inbound::Account { .. } => "account".to_owned(),
            Inbound::Credit { .. } => "credit".to_owned(),
            Inbound::Unreadable { .. } => "unreadable".to_owned(),
        }
    }
}

/// Whether the inbox had the message already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accepted {
    /// Stored now.
    New,
    /// Seen before (same source and message id); nothing was stored.
    Duplicate,
}

/// A failure to store an inbound message durably. The sender must not acknowledge or
/// checkpoint the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the inbox could not store the message: {0}")]
pub struct SinkError(pub String);

/// Where connectors deliver inbound messages. Returns only once the message is durable.
#[async_trait]
pub trait InboundSink: Send + Sync + 'static {
    /// Stores the message (deduplicated by source and message id).
    async fn accept(&self, message: InboundMessage) -> Result<Accepted, SinkError>;

    /// Stores `messages` in order (each as [`InboundSink::accept`]) and, where the sink keeps
    /// subscriber positions itself, `checkpoint` (`(subscriber, position)`, as
    /// [`Checkpoints::save`] would) in the same durable write, so that the position never
    /// runs ahead of the inbox. Returns whether it saved the checkpoint; when not, the
    /// caller saves it. The default stores the messages one by one and saves nothing.
    async fn accept_page(
        &self,
        messages: Vec<InboundMessage>,
        checkpoint: Option<(String, String)>,
    ) -> Result<bool, SinkError> {
        let _ = checkpoint;
        for message in messages {
            self.accept(message).await?;
        }
        Ok(false)
    }
}

/// Durable positions of subscribers (e.g. a Pub/Sub replay id, an ERP change cursor).
#[async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// The saved position of `subscriber`.
    async fn load(&self, subscriber: &str) -> Result<Option<String>, SinkError>;

    /// Saves the position of `subscriber`. Call only after every message up to it was accepted.
    async fn save(&self, subscriber: &str, position: &str) -> Result<(), SinkError>;
}
