//! A decision: everything one step of the engine writes, committed in one transaction.

use serde::{Deserialize, Serialize};

use crate::events::StreamAppend;
use crate::inbox::InboundStatus;
use crate::journal::{AuditEntry, TimelineEntry};
use crate::projections::{AccountRow, ExternalRef, InventoryRow, OrderRow, SyncMark};
use crate::tasks::NewTask;

/// Writes that succeed or fail together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Events to append (fails the whole decision on a version conflict).
    pub append: Option<StreamAppend>,
    /// Tasks to enqueue.
    pub tasks: Vec<NewTask>,
    /// Order summary to upsert (ignored when the stored row has a higher version).
    pub order: Option<OrderRow>,
    /// Salesforce write confirmations.
    pub synced: Vec<SyncMark>,
    /// Inventory levels to cache (older `as_of` than stored is ignored).
    pub inventory: Vec<InventoryRow>,
    /// Accounts to upsert.
    pub accounts: Vec<AccountRow>,
    /// External ids to index.
    pub refs: Vec<ExternalRef>,
    /// Timeline entries.
    pub timeline: Vec<TimelineEntry>,
    /// Audit records.
    pub audit: Vec<AuditEntry>,
    /// Inbound message to mark (row id, new status, reason).
    pub inbound: Option<(i64, InboundStatus, Option<String>)>,
    /// Open dead letters of this order and task kind become `auto_resolved` (a later attempt
    /// of the same step succeeded).
    pub auto_resolve: Option<(String, String)>,
}

impl Decision {
    /// Whether the decision writes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Decision::default()
    }
}

/// What a committed decision produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// New stream version (when events were appended).
    pub version: Option<i64>,
    /// Global sequence numbers of the appended events.
    pub event_seqs: Vec<i64>,
    /// Ids of the tasks enqueued (deduplicated ones excluded).
    pub task_ids: Vec<i64>,
    /// Dead letters auto-resolved.
    pub auto_resolved: u64,
}
