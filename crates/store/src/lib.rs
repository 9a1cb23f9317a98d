//! Durable store for the hub: inbox, event streams, task queue (outbox), dead letters,
//! subscriber cursors, read models, timeline and audit.
//!
//! One [`Store`] interface, two backends:
//! - [`sqlite`] (embedded default): WAL, `synchronous=FULL`, one writer thread that
//!   group-commits every queued write in one transaction (one fsync for many steps).
//! - [`postgres`] (production): a connection pool, leases with `FOR UPDATE SKIP LOCKED`, so
//!   several hub processes share one database.
//!
//! Operations are coarse and named after intentions (`accept_inbound`, `lease`, `complete`,
//! `commit`), never raw transactions, so each backend can batch and lock its own way.
//! `conformance` (feature `conformance`) holds the backend-independent test cases.
//!
//! Open a store with [`open`]. Both backends keep times to the microsecond; `recorded_at`
//! and `created_at` come from the database's clock, every other time from the caller.
#![forbid(unsafe_code)]

pub mod cluster;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod dead_letters;
pub mod decision;
pub mod error;
pub mod events;
pub mod inbox;
pub mod journal;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod projections;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tasks;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use cluster::{Claim, Member};
pub use dead_letters::{DeadLetter, DeadLetterFilter, DeadLetterStatus, NewDeadLetter};
pub use decision::{Binding, Committed, Decision};
pub use error::{Error, ErrorKind, Result};
pub use events::{NewEvent, StoredEvent, StreamAppend};
pub use inbox::{Accepted, CursorMove, InboundRecord, InboundStatus, NewInbound};
pub use journal::{AuditEntry, StoredAuditEntry, StoredTimelineEntry, TimelineEntry};
pub use projections::{
    AccountRow, ExternalRef, InventoryRow, JsonText, OrderQuery, OrderRow, SyncMark,
};
pub use tasks::{LaneDepth, Lease, LeaseRequest, NewTask, Task, TaskState};

/// What a store's single writer has done since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Group commits run: transactions, each one durable write (log append and flush).
    pub commits: u64,
    /// Write requests those transactions carried.
    pub requests: u64,
    /// Requests that failed (a version conflict, a lost lease): nothing of them was kept.
    pub failed: u64,
    /// Batches run a second time with a savepoint per request, because a failing request
    /// had written before it failed.
    pub reruns: u64,
    /// Time spent running requests and committing them.
    pub busy: std::time::Duration,
    /// Of `busy`, the time spent committing (writing the log and waiting for the disk).
    pub committing: std::time::Duration,
}

impl WriterStats {
    /// What the writer did between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            commits: self.commits.saturating_sub(earlier.commits),
            requests: self.requests.saturating_sub(earlier.requests),
            failed: self.failed.saturating_sub(earlier.failed),
            reruns: self.reruns.saturating_sub(earlier.reruns),
            busy: self.busy.saturating_sub(earlier.busy),
            committing: self.committing.saturating_sub(earlier.committing),
        }
    }
}

/// Everything the hub keeps durably.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Counters of the backend's single writer, for backends that have one (SQLite).
    fn writer_stats(&self) -> Option<WriterStats> {
        None
    }

    // --- inbox ---------------------------------------------------------------------------

    /// Stores an inbound message (and its processing task) unless `(source, message_id)` was
    /// seen before. Returns once durable. Of concurrent accepts of one message exactly one
    /// is [`Accepted::New`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when the task payload is neither a JSON object nor null (it must
    /// take `"inbox_id"`).
    async fn accept_inbound(&self, message: NewInbound) -> Result<Accepted> {
        Ok(self.accept_inbound_leasing(message, None).await?.0)
    }

    /// [`Store::accept_inbound`], and when the message is new and its task is ready on
    /// `claim`'s lane, leases the task in the same transaction (as a decision's
    /// [`Decision::claim`] does), so that the caller runs it at once.
    ///
    /// # Errors
    /// As [`Store::accept_inbound`].
    async fn accept_inbound_leasing(
        &self,
        message: NewInbound,
        claim: Option<LeaseRequest>,
    ) -> Result<(Accepted, Option<Lease>)>;

    /// Stores a page of messages read from a feed, in order, each as
    /// [`Store::accept_inbound`] (a known `(source, message_id)`, also one earlier in the
    /// page, is a duplicate), and saves `cursor` in the same transaction: the page and the
    /// position after it become durable together, in one commit. With `claim`, the same
    /// transaction then leases up to `claim.limit` ready tasks of its lane, oldest ready
    /// first, as a dispatcher would.
    ///
    /// # Errors
    /// As [`Store::accept_inbound`]; on error nothing of the page is stored and the cursor
    /// does not move.
    async fn accept_inbound_page(
        &self,
        messages: Vec<NewInbound>,
        cursor: Option<CursorMove>,
        claim: Option<LeaseRequest>,
    ) -> Result<(Vec<Accepted>, Vec<Lease>)>;

    /// One inbound message.
    async fn inbound(&self, id: i64) -> Result<Option<InboundRecord>>;

    /// Inbound messages in a state, oldest first, ids greater than `after`.
    async fn inbound_by_status(
        &self,
        status: InboundStatus,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboundRecord>>;

    // --- events and decisions ------------------------------------------------------------

    /// Every event of a stream, in version order.
    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>>;

    /// Events of every stream with `global_seq > after`, in global order (for subscribers).
    /// Never returns an event while an event with a lower position may still commit, so a
    /// subscriber that resumes after the last position it saw misses nothing.
    async fn read_all(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Events of every stream recorded at or after `since` (the store's clock), in global
    /// order.
    async fn read_since(&self, since: OffsetDateTime, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Commits a decision atomically (an empty decision is a no-op).
    ///
    /// # Errors
    /// [`Error::VersionConflict`] when the stream is not at the expected version (nothing is
    /// written); [`Error::NotFound`] when `inbound` names no message.
    async fn commit(&self, decision: Decision) -> Result<Committed>;

    // --- task queue ------------------------------------------------------------------------

    /// Enqueues tasks (respecting `dedupe`); returns the ids of those actually enqueued.
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<i64>>;

    /// Leases up to `limit` ready tasks of a lane (see [`tasks`] for the rules), oldest
    /// ready time first (due time, or expiry of a lapsed lease), then oldest task. Each lease
    /// counts an attempt, expires at `now + lease_for` and carries a token never issued before.
    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>>;

    /// Removes a leased task and commits `decision` with it, atomically. A lease that
    /// expired but was not taken over still completes.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease expired and was taken over, or the task was
    /// already completed, retried or dead-lettered (nothing is written); the errors of
    /// [`Store::commit`] (nothing is written, the task stays leased).
    async fn complete(&self, lease: &Lease, decision: Decision) -> Result<Committed>;

    /// Puts a leased task back for another attempt at `due_at`, recording the error
    /// (`last_error`) and committing `decision` with it. The attempt stays counted.
    ///
    /// # Errors
    /// As [`Store::complete`].
    async fn retry(
        &self,
        lease: &Lease,
        due_at: OffsetDateTime,
        error: &str,
        decision: Decision,
    ) -> Result<()>;

    /// Moves a leased task to the dead letters (see [`tasks`] for blocking), committing
    /// `decision` with it. Returns the dead letter id. The letter keeps the task as it died
    /// (state `dead`, `last_error` = the entry's error).
    ///
    /// # Errors
    /// As [`Store::complete`].
    async fn dead_letter(
        &self,
        lease: &Lease,
        entry: NewDeadLetter,
        decision: Decision,
    ) -> Result<i64>;

    /// Releases every lease held by `owner` (lapsed ones not yet taken over included)
    /// without consuming an attempt (graceful shutdown). Returns how many; their tokens no
    /// longer hold.
    async fn release_all(&self, owner: &str) -> Result<u64>;

    /// Queue depth per lane that has tasks, by lane name. A lapsed lease counts as pending
    /// and due, not as leased.
    async fn lane_depths(&self, now: OffsetDateTime) -> Result<Vec<LaneDepth>>;

    /// Tasks queued for an order, oldest first.
    async fn tasks_for_order(&self, order_id: &str) -> Result<Vec<Task>>;

    // --- dead letters --------------------------------------------------------------------

    /// Dead letters matching a filter, by id.
    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>>;

    /// One dead letter.
    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>>;

    /// Sends an open dead letter back to the queue (optionally with an edited payload), due
    /// now, attempts reset, in its key's original place: the task keeps its id, so it runs
    /// before younger tasks of its key (once none of them holds a lease). Returns the task id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id, [`Error::Invalid`] unless the letter is open.
    async fn retry_dead_letter(
        &self,
        id: i64,
        payload: Option<serde_json::Value>,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<i64>;

    /// Closes an open dead letter with a reason; a blocking task leaves the queue and no
    /// longer blocks its key.
    ///
    /// # Errors
    /// As [`Store::retry_dead_letter`].
    async fn resolve_dead_letter(
        &self,
        id: i64,
        reason: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<()>;

    // --- cursors ---------------------------------------------------------------------------

    /// A subscriber's saved position.
    async fn cursor(&self, name: &str) -> Result<Option<String>>;

    /// Saves a subscriber's position.
    async fn save_cursor(&self, name: &str, position: &str, now: OffsetDateTime) -> Result<()>;

    /// Every subscriber with its position and when it was saved.
    async fn cursors(&self) -> Result<Vec<(String, String, OffsetDateTime)>>;

    // --- read models -----------------------------------------------------------------------

    /// One order's summary row.
    async fn order(&self, order_id: &str) -> Result<Option<OrderRow>>;

    /// Order rows matching a query, by order id (bytewise).
    async fn orders(&self, query: OrderQuery) -> Result<Vec<OrderRow>>;

    /// Number of orders per status.
    async fn order_counts(&self) -> Result<Vec<(String, u64)>>;

    /// The order an external id names (any namespace), or the id itself when it is an order id.
    /// An order id wins over a reference; among references, the first namespace by name.
    async fn resolve(&self, any_id: &str) -> Result<Option<String>>;

    /// The order an external reference is bound to ([`Decision::bind`]).
    async fn bound(&self, system: &str, kind: &str, reference: &str) -> Result<Option<String>>;

    /// Cached stock for products (every location), or every product when `skus` is empty;
    /// by product, then location.
    async fn inventory(&self, skus: &[String]) -> Result<Vec<InventoryRow>>;

    /// One account.
    async fn account(&self, account_id: &str) -> Result<Option<AccountRow>>;

    // --- timeline and audit ----------------------------------------------------------------

    /// Appends timeline entries outside a decision (e.g. a refused inbound message).
    async fn append_timeline(&self, entries: Vec<TimelineEntry>) -> Result<()>;

    /// An order's timeline, oldest first.
    async fn timeline(&self, order_id: &str) -> Result<Vec<StoredTimelineEntry>>;

    /// Appends an audit record.
    async fn audit(&self, entry: AuditEntry) -> Result<i64>;

    /// Audit records with id greater than `after`, oldest first.
    async fn audit_log(&self, after: i64, limit: usize) -> Result<Vec<StoredAuditEntry>>;

    // --- small keyed records (API keys, idempotency records, settings) ---------------------

    /// A record of `namespace` by key.
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>>;

    /// Inserts a record unless one exists with that key: `true` when inserted. Exactly one of
    /// several concurrent inserts of the same key wins (idempotency claims rely on it).
    async fn kv_insert(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Inserts or replaces a record.
    async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Records of a namespace whose key starts with `prefix`, by key, at most `limit`.
    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, serde_json::Value)>>;

    /// Deletes a record; `true` when it existed.
    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool>;

    // --- instance membership ---------------------------------------------------------------

    /// Claims the instance name `name` for `incarnation` at `now`: taken when free, held by
    /// `incarnation` already, or held by an incarnation whose heartbeat is at least `lease`
    /// old (stale); otherwise [`Claim::Held`] names the live holder and nothing is written.
    /// Of concurrent claims of a free name exactly one wins.
    async fn claim_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<Claim>;

    /// Records a heartbeat of `incarnation`'s claim on `name`; `false` when it no longer
    /// holds the name (released, or taken over as stale), and nothing is written.
    async fn heartbeat_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Gives up `incarnation`'s claim on `name`; `false` when it did not hold it.
    async fn release_instance(&self, name: &str, incarnation: &str) -> Result<bool>;

    /// Every claimed instance name, by name.
    async fn instances(&self) -> Result<Vec<Member>>;

    // --- lifecycle -------------------------------------------------------------------------

    /// Flushes pending writes and closes connections.
    async fn close(&self);
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;

/// Whether `location` names a PostgreSQL store (`postgres://…`, `postgresql://…`); any other
/// location is a SQLite file, whose store runs its writer on a thread of this process.
pub fn is_postgres(location: &str) -> bool {
    let location = location.trim();
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Opens the store at `location` (creating and migrating it as needed):
///
/// - a plain path, or `sqlite://PATH` (also `sqlite:PATH`): SQLite; the file and its parent
///   directories are created;
/// - `postgres://…` or `postgresql://…`: PostgreSQL. An extra query parameter
///   `schema=NAME` keeps every table in that schema (created if missing; every pooled
///   connection sets `search_path` to it), so several hubs, tests or benchmarks can share
///   one database. `pool_size=N` sets the connection pool size (default
///   [`postgres::DEFAULT_POOL_SIZE`]).
///
/// # Errors
/// [`Error::Invalid`] for a malformed location or a backend this build lacks; otherwise the
/// backend's error (cannot connect, cannot migrate).
pub async fn open(location: &str) -> Result<SharedStore> {
    let location = location.trim();
    if location.is_empty() {
        return Err(Error::Invalid("the store location is empty".into()));
    }
    if is_postgres(location) {
        #[cfg(feature = "postgres")]
        {
            let store = postgres::PgStore::connect(location).await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Invalid(
            "this build has no PostgreSQL store (feature `postgres`)".into(),
        ));
    }
    let path = location
        .strip_prefix("sqlite://")
        .or_else(|| location.strip_prefix("sqlite:"))
        .unwrap_or(location);
    if path.is_empty() || path == ":memory:" || path.contains("://") {
        return Err(Error::Invalid(format!(
            "{location:?} is not a store location: use a file path, sqlite://PATH or postgres://…"
        )));
    }
    #[cfg(feature = "sqlite")]
    {
        let store = sqlite::SqliteStore::open(path).await?;
        Ok(Arc::new(store))
    }
    #[cfg(not(feature = "sqlite"))]
    Err(Error::Invalid(
        "this build has no SQLite store (feature `sqlite`)".into(),
    ))
}

/// A random lower-case hex string (16 digits) for names of scratch files, tables and schemas.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS once per process and varied per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    /// `open` can run on a spawned task (its future is `Send`).
    #[test]
    fn open_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let future = super::open("crossdock.db");
        assert_send(&future);
        drop(future);
    }
}
