//! A decision: everything one step of the engine writes, committed in one transaction.

use serde::{Deserialize, Serialize};

use crate::events::StreamAppend;
use crate::inbox::InboundStatus;
use crate::journal::{AuditEntry, TimelineEntry};
use crate::projections::{AccountRow, ExternalRef, InventoryRow, OrderRow, SyncMark};
use crate::tasks::{Lease, LeaseRequest, NewTask};

/// Writes that succeed or fail together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Events to append (fails the whole decision on a version conflict).
    pub append: Option<StreamAppend>,
    /// Tasks to enqueue.
    pub tasks: Vec<NewTask>,
    /// Order summary to upsert (ignored when the stored row has a higher version; an equal
    /// version replaces it). Its `sf_synced_*` columns only ever move forward: a row without
    /// them keeps the stored confirmation.
    pub order: Option<OrderRow>,
    /// Salesforce write confirmations (a mark for an order without a row is ignored).
    pub synced: Vec<SyncMark>,
    /// Inventory levels to cache (older `as_of` than stored is ignored; equal replaces).
    pub inventory: Vec<InventoryRow>,
    /// Accounts to upsert.
    pub accounts: Vec<AccountRow>,
    /// External ids to index (a known `(namespace, value)` is pointed at the new order).
    pub refs: Vec<ExternalRef>,
    /// External references to bind to their order for good: a reference already bound to
    /// the same order is kept; one bound to another order fails the whole decision with
    /// [`crate::Error::ReferenceTaken`] (nothing is written, the binding is not moved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<Binding>,
    /// Timeline entries.
    pub timeline: Vec<TimelineEntry>,
    /// Audit records.
    pub audit: Vec<AuditEntry>,
    /// Inbound message to mark (row id, new status, reason).
    pub inbound: Option<(i64, InboundStatus, Option<String>)>,
    /// Open dead letters of this order and task kind become `auto_resolved` (a later attempt
    /// of the same step succeeded); the dead tasks of blocking ones leave the queue.
    pub auto_resolve: Option<(String, String)>,
    /// Leases to take, after the other writes and in the same transaction, on the tasks
    /// this decision enqueues: per request, up to `limit` of its lane's new tasks that are
    /// then ready (their key's head, due by `now`, no lease of their key in flight), oldest
    /// first, leased as [`crate::Store::lease`] would lease them. The engine uses it to run an
    /// order's next step without a separate lease round trip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim: Vec<LeaseRequest>,
    /// On completion ([`crate::Store::complete`]; other writes ignore it): after the claims,
    /// leases ready tasks of this request's lane, of any key, as [`crate::Store::lease`]
    /// would (oldest ready first, skipping keys with a lease in flight), until the decision's
    /// leases on that lane number `limit`. The engine uses it to hand a finished call's slot
    /// to the lane's next task in the same commit, instead of a dispatcher's lease later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_ready: Option<LeaseRequest>,
}

impl Decision {
    /// The lease request `claim_ready` makes once `leased` are the decision's other leases:
    /// its limit less those on its lane; `None` when nothing is left to lease.
    pub fn ready_request(&self, leased: &[Lease]) -> Option<LeaseRequest> {
        let request = self.claim_ready.as_ref()?;
        let taken = leased
            .iter()
            .filter(|lease| lease.task.lane == request.lane)
            .count();
        let limit = request.limit.checked_sub(taken).filter(|left| *left > 0)?;
        Some(LeaseRequest {
            limit,
            ..request.clone()
        })
    }

    /// Whether the decision writes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Decision::default()
    }
}

/// An external reference (an ERP order number, shipment, invoice or credit memo id, a
/// Salesforce record id) and the one order it names. Kept in `external_refs`, whose key is
/// `(system, kind, reference)`: a reference never names two orders.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Binding {
    /// System that issued the reference (`erp`, `salesforce`).
    pub system: String,
    /// What it names there (`order`, `shipment`, `invoice`, `credit-memo`, `return`).
    pub kind: String,
    /// The reference.
    pub reference: String,
    /// The hub order it names.
    pub order_id: String,
}

/// What a committed decision produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    /// New stream version (when events were appended).
    pub version: Option<i64>,
    /// Global sequence numbers of the appended events.
    pub event_seqs: Vec<i64>,
    /// Ids of the tasks enqueued (deduplicated ones excluded).
    pub task_ids: Vec<i64>,
    /// Dead letters auto-resolved.
    pub auto_resolved: u64,
    /// Leases taken by the decision's `claim`, oldest task first.
    pub leased: Vec<Lease>,
}
