//! Task queue (outbox): work for the engine, ordered per key, leased with expiry.
//!
//! Rules every backend implements (the conformance suite checks them):
//! - A task is leasable when it is `pending`, due (`due_at <= now`), it is the **oldest**
//!   unfinished task of its key (no older task of the key is pending, leased or blocking-dead),
//!   and no task of its key holds an unexpired lease. So a key never has two tasks in flight,
//!   and a retry never lets a younger task of the same key jump ahead.
//! - A lease whose `expires_at` has passed counts as released: the task can be leased again
//!   (by anyone), and the old lease's token no longer completes it (`LeaseLost`).
//! - Leasing increments `attempts` (a crash mid-attempt counts as an attempt).
//! - `dedupe`: enqueuing a task whose `dedupe` value equals that of a **pending, not leased**
//!   task of the same lane is a no-op (state-based work collapses); a leased one does not count.
//! - A dead-lettered task with `blocking = true` stays in the queue in state `dead` and blocks
//!   its key until its dead letter is replayed or resolved; a non-blocking one leaves the queue.
//! - Keys are global: tasks of one key in two lanes still run one at a time, in enqueue order.
//! - A lease whose task was completed, retried, dead-lettered or released no longer holds
//!   (`LeaseLost`); an expired lease nobody took over still completes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A task to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Lane (`erp`, `salesforce`, `hub`).
    pub lane: String,
    /// Kind of work (e.g. `book`, `sf-sync`, `inbound`).
    pub kind: String,
    /// Ordering key: tasks with the same key run one at a time, oldest first.
    pub key: String,
    /// Collapse with an identical pending task (see the module rules).
    pub dedupe: Option<String>,
    /// Key sent downstream with the effect; the same on every attempt.
    pub idempotency_key: String,
    /// Work description.
    pub payload: serde_json::Value,
    /// Not before.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Whether, once dead-lettered, it holds back later tasks of its key.
    pub blocking: bool,
    /// Order concerned, for timelines and filters.
    pub order_id: Option<String>,
}

/// Lifecycle state of a queued task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting (possibly for its due time).
    Pending,
    /// Leased by a worker.
    Leased,
    /// Dead-lettered and blocking its key.
    Dead,
}

/// A queued task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Row id (increases with enqueue order).
    pub id: i64,
    /// Lane.
    pub lane: String,
    /// Kind.
    pub kind: String,
    /// Ordering key.
    pub key: String,
    /// Dedupe value.
    pub dedupe: Option<String>,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Not before.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Attempts so far (including the current one when leased).
    pub attempts: u32,
    /// Blocks its key when dead.
    pub blocking: bool,
    /// Order concerned.
    pub order_id: Option<String>,
    /// When enqueued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last failure message.
    pub last_error: Option<String>,
    /// State.
    pub state: TaskState,
}

/// What to lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// Lane to lease from.
    pub lane: String,
    /// Worker (process) id; used to release on shutdown.
    pub owner: String,
    /// Most tasks to return.
    pub limit: usize,
    /// Lease duration.
    pub lease_for: Duration,
    /// Current time (from the engine's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// A leased task. The token proves ownership when completing, retrying or dead-lettering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The task (attempts already incremented).
    pub task: Task,
    /// Lease token.
    pub token: i64,
    /// Lease owner.
    pub owner: String,
    /// Lease expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Queue depth of one lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneDepth {
    /// Lane.
    pub lane: String,
    /// Pending tasks (due or not).
    pub pending: u64,
    /// Pending tasks already due.
    pub due: u64,
    /// Leased tasks.
    pub leased: u64,
    /// Dead tasks blocking keys.
    pub blocked: u64,
    /// Enqueue time of the oldest pending task.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_pending: Option<OffsetDateTime>,
}
