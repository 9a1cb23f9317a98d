//! SQLite backend: the embedded default.
//!
//! - One file in WAL mode with `synchronous=FULL`: a write is on disk when its call returns.
//! - **One writer thread** owns the only write connection and **group-commits** (module `writer`):
//!   every write operation is a closure sent over a bounded channel; the thread runs all the
//!   queued ones in one transaction, each in its own savepoint, and commits once. Many
//!   concurrent `complete` calls therefore share one fsync.
//! - Reads run on a small pool of read-only connections on the blocking thread pool; WAL lets
//!   them proceed while the writer commits.
//! - Times are stored as microseconds since the Unix epoch, JSON as TEXT. `recorded_at` and
//!   `created_at` come from SQLite's clock at commit.
//!
//! One process owns a database file (SQLite is the single-node store); several processes
//! sharing work use [`crate::postgres`].

mod checkpoint;
mod cluster;
mod connect;
mod dead;
mod decision;
mod files;
mod kv;
mod migrate;
mod queue;
mod readers;
mod reads;
mod rows;
mod sequences;
mod statements;
#[cfg(test)]
mod tests;
mod timeline;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::{
    Accepted, AccountRow, AuditEntry, Committed, CursorMove, DeadLetter, DeadLetterFilter,
    Decision, InboundRecord, InboundStatus, InventoryRow, LaneDepth, Lease, LeaseRequest,
    NewDeadLetter, NewInbound, NewTask, OrderQuery, OrderRow, Store, StoredAuditEntry, StoredEvent,
    StoredTimelineEntry, Task, TimelineEntry,
};

use crate::codec::PayloadAwaitingInboxId;
use decision::Prepared;
use queue::Held;
use readers::Readers;
use writer::Writer;

/// Read-only connections kept by default.
pub const DEFAULT_READERS: usize = 4;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    checkpointer: std::sync::Mutex<checkpoint::Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directories if needed) and migrates the
    /// database at `path`.
    ///
    /// # Errors
    /// The file cannot be created or opened, WAL cannot be enabled, or a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let for_open = path.clone();
        let conn = tokio::task::spawn_blocking(move || {
            files::prepare(&for_open)?;
            let conn = connect::writer(&for_open)?;
            migrate::migrate(&conn)?;
            let sequences = sequences::Sequences::load(&conn).map_err(rows::db)?;
            // Checkpoints run on their own thread (see `checkpoint`).
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
                .map_err(rows::db)?;
            let checkpointer = checkpoint::Checkpointer::start(&for_open)?;
            Ok::<_, Error>((conn, sequences, checkpointer))
        })
        .await
        .map_err(|e| Error::Database(format!("opening SQLite failed: {e}")))??;
        let (conn, sequences, checkpointer) = conn;
        let writer = Writer::start(conn, sequences, writer::WAL_LIMIT)?;
        Ok(Self {
            readers: Readers::new(path.clone(), DEFAULT_READERS),
            writer,
            checkpointer: std::sync::Mutex::new(checkpointer),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn writer_stats(&self) -> Option<crate::WriterStats> {
        Some(self.writer.stats())
    }

    async fn accept_inbound_leasing(
        &self,
        mut message: NewInbound,
        claim: Option<LeaseRequest>,
    ) -> Result<(Accepted, Option<Lease>)> {
        let (body, payload) = rendered(&message)?;
        // The writer needs only the rendered payload; the tree becomes the lease's.
        let tree = message
            .task
            .as_mut()
            .map(|t| std::mem::take(&mut t.payload));
        let decision::Stored {
            accepted, leased, ..
        } = self
            .writer
            .write_with(
                (body, payload, message, claim),
                |ctx, (body, payload, message, claim)| {
                    decision::accept_inbound(ctx, message, body, payload.as_ref(), claim.as_ref())
                },
            )
            .await?;
        // A lease here is always of the message's own task.
        let own = tree.zip(accepted.new_id());
        Ok((accepted, leased.map(|leased| with_payload(leased, own))))
    }

    async fn accept_inbound_page(
        &self,
        mut messages: Vec<NewInbound>,
        cursor: Option<CursorMove>,
        claim: Option<LeaseRequest>,
    ) -> Result<(Vec<Accepted>, Vec<Lease>)> {
        let rendered = messages.iter().map(rendered).collect::<Result<Vec<_>>>()?;
        // The writer needs only the rendered payloads; the trees go to the leases of the
        // messages' own tasks.
        let mut trees: Vec<Option<serde_json::Value>> = messages
            .iter_mut()
            .map(|m| m.task.as_mut().map(|t| std::mem::take(&mut t.payload)))
            .collect();
        let (accepted, task_ids, leased) = self
            .writer
            .write_with(
                (messages, rendered, cursor, claim),
                |ctx, (messages, rendered, cursor, claim)| {
                    let mut accepted = Vec::with_capacity(messages.len());
                    let mut task_ids = Vec::with_capacity(messages.len());
                    for (message, (body, payload)) in messages.iter().zip(rendered) {
                        let stored =
                            decision::accept_inbound(ctx, message, body, payload.as_ref(), None)?;
                        accepted.push(stored.accepted);
                        task_ids.push(stored.task_id);
                    }
                    if let Some(cursor) = cursor {
                        decision::save_cursor(ctx, &cursor.name, &cursor.position, cursor.at)?;
                    }
                    let leased = match claim {
                        Some(claim) => queue::lease(ctx, claim)?,
                        None => Vec::new(),
                    };
                    Ok((accepted, task_ids, leased))
                },
            )
            .await?;
        let leases = leased
            .into_iter()
            .map(|leased| {
                // The lease of a task a message of the page enqueued takes that message's
                // tree; one of an older task parses its stored text.
                let own = task_ids
                    .iter()
                    .position(|id| *id == Some(leased.0.task.id))
                    .and_then(|at| trees[at].take().zip(accepted[at].new_id()));
                with_payload(leased, own)
            })
            .collect();
        Ok((accepted, leases))
    }

    async fn inbound(&self, id: i64) -> Result<Option<InboundRecord>> {
        self.readers.read(move |c| reads::inbound(c, id)).await
    }

    async fn inbound_by_status(
        &self,
        status: InboundStatus,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboundRecord>> {
        self.readers
            .read(move |c| reads::inbound_by_status(c, status, after, limit))
            .await
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>> {
        let stream = stream.to_owned();
        self.readers
            .read(move |c| reads::read_stream(c, &stream))
            .await
    }

    async fn read_all(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.readers
            .read(move |c| reads::read_all(c, after, limit))
            .await
    }

    async fn read_since(&self, since: OffsetDateTime, limit: usize) -> Result<Vec<StoredEvent>> {
        self.readers
            .read(move |c| reads::read_since(c, since, limit))
            .await
    }

    async fn commit(&self, decision: Decision) -> Result<Committed> {
        if decision.is_empty() {
            return Ok(Committed::default());
        }
        self.writer
            .write_with(Prepared::new(decision), |ctx, decision| {
                decision::apply(ctx, decision, || Ok(())).map(|((), committed)| committed)
            })
            .await
    }

    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<i64>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        self.writer
            .write_with(
                (decision::render_tasks(&tasks), tasks),
                |ctx, (payloads, tasks)| queue::enqueue_all(ctx, tasks, payloads),
            )
            .await
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let leased = self
            .writer
            .write(move |ctx| queue::lease(ctx, &request))
            .await?;
        Ok(leased.into_iter().map(parsed).collect())
    }

    async fn complete(&self, lease: &Lease, decision: Decision) -> Result<Committed> {
        let (mut committed, ready) = self
            .writer
            .write_with(
                (Held::of(lease), Prepared::new(decision)),
                |ctx, (lease, prepared)| decision::complete(ctx, prepared, lease),
            )
            .await?;
        // Payloads are parsed here, off the writer thread.
        committed.leased.extend(ready.into_iter().map(parsed));
        Ok(committed)
    }

    async fn retry(
        &self,
        lease: &Lease,
        due_at: OffsetDateTime,
        error: &str,
        decision: Decision,
    ) -> Result<()> {
        let data = (Held::of(lease), error.to_owned(), Prepared::new(decision));
        self.writer
            .write_with(data, move |ctx, (lease, error, decision)| {
                decision::apply(ctx, decision, || queue::retry(ctx, lease, due_at, error))
                    .map(|_| ())
            })
            .await
    }

    async fn dead_letter(
        &self,
        lease: &Lease,
        entry: NewDeadLetter,
        decision: Decision,
    ) -> Result<i64> {
        self.writer
            .write_with(
                (Held::of(lease), entry, Prepared::new(decision)),
                |ctx, (lease, entry, decision)| {
                    decision::apply(ctx, decision, || queue::dead_letter(ctx, lease, entry))
                        .map(|(id, _)| id)
                },
            )
            .await
    }

    async fn release_all(&self, owner: &str) -> Result<u64> {
        let owner = owner.to_owned();
        self.writer
            .write(move |ctx| queue::release_all(ctx, &owner))
            .await
    }

    async fn lane_depths(&self, now: OffsetDateTime) -> Result<Vec<LaneDepth>> {
        self.readers.read(move |c| reads::lane_depths(c, now)).await
    }

    async fn tasks_for_order(&self, order_id: &str) -> Result<Vec<Task>> {
        let order_id = order_id.to_owned();
        self.readers
            .read(move |c| reads::tasks_for_order(c, &order_id))
            .await
    }

    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        self.readers
            .read(move |c| reads::dead_letters(c, &filter))
            .await
    }

    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>> {
        self.readers
            .read(move |c| reads::dead_letter_by_id(c, id))
            .await
    }

    async fn retry_dead_letter(
        &self,
        id: i64,
        payload: Option<serde_json::Value>,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let by = by.to_owned();
        self.writer
            .write(move |ctx| dead::retry(ctx, id, payload.as_ref(), &by, now))
            .await
    }

    async fn resolve_dead_letter(
        &self,
        id: i64,
        reason: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let reason = reason.to_owned();
        let by = by.to_owned();
        self.writer
            .write(move |ctx| dead::resolve(ctx, id, &reason, &by, now))
            .await
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.readers.read(move |c| reads::cursor(c, &name)).await
    }

    async fn save_cursor(&self, name: &str, position: &str, now: OffsetDateTime) -> Result<()> {
        let name = name.to_owned();
        let position = position.to_owned();
        self.writer
            .write(move |ctx| decision::save_cursor(ctx, &name, &position, now))
            .await
    }

    async fn cursors(&self) -> Result<Vec<(String, String, OffsetDateTime)>> {
        self.readers.read(reads::cursors).await
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRow>> {
        let order_id = order_id.to_owned();
        self.readers.read(move |c| reads::order(c, &order_id)).await
    }

    async fn orders(&self, query: OrderQuery) -> Result<Vec<OrderRow>> {
        self.readers.read(move |c| reads::orders(c, &query)).await
    }

    async fn order_counts(&self) -> Result<Vec<(String, u64)>> {
        self.readers.read(reads::order_counts).await
    }

    async fn resolve(&self, any_id: &str) -> Result<Option<String>> {
        let any_id = any_id.to_owned();
        self.readers.read(move |c| reads::resolve(c, &any_id)).await
    }

    async fn bound(&self, system: &str, kind: &str, reference: &str) -> Result<Option<String>> {
        let key = (system.to_owned(), kind.to_owned(), reference.to_owned());
        self.readers
            .read(move |c| decision::bound(c, &key.0, &key.1, &key.2))
            .await
    }

    async fn inventory(&self, skus: &[String]) -> Result<Vec<InventoryRow>> {
        let skus = skus.to_vec();
        self.readers.read(move |c| reads::inventory(c, &skus)).await
    }

    async fn account(&self, account_id: &str) -> Result<Option<AccountRow>> {
        let account_id = account_id.to_owned();
        self.readers
            .read(move |c| reads::account(c, &account_id))
            .await
    }

    async fn append_timeline(&self, entries: Vec<TimelineEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.writer
            .write_with(
                (timeline::render(&entries), entries),
                |ctx, (groups, entries)| timeline::append(ctx, entries, groups),
            )
            .await
    }

    async fn timeline(&self, order_id: &str) -> Result<Vec<StoredTimelineEntry>> {
        let order_id = order_id.to_owned();
        self.readers
            .read(move |c| timeline::read(c, &order_id))
            .await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<i64> {
        self.writer
            .write(move |ctx| decision::audit(ctx, &entry))
            .await
    }

    async fn audit_log(&self, after: i64, limit: usize) -> Result<Vec<StoredAuditEntry>> {
        self.readers
            .read(move |c| reads::audit_log(c, after, limit))
            .await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.readers
            .read(move |c| kv::get_value(c, &namespace, &key))
            .await
    }

    async fn kv_insert(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.writer
            .write(move |ctx| kv::insert(ctx, &namespace, &key, &value, now))
            .await
    }

    async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.writer
            .write(move |ctx| kv::put(ctx, &namespace, &key, &value, now))
            .await
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        self.readers
            .read(move |c| kv::list(c, &namespace, &prefix, limit))
            .await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.writer
            .write(move |ctx| kv::delete(ctx, &namespace, &key))
            .await
    }

    async fn claim_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<crate::Claim> {
        let (name, incarnation) = (name.to_owned(), incarnation.to_owned());
        self.writer
            .write(move |ctx| cluster::claim(ctx, &name, &incarnation, now, lease))
            .await
    }

    async fn heartbeat_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (name, incarnation) = (name.to_owned(), incarnation.to_owned());
        self.writer
            .write(move |ctx| cluster::heartbeat(ctx, &name, &incarnation, now))
            .await
    }

    async fn release_instance(&self, name: &str, incarnation: &str) -> Result<bool> {
        let (name, incarnation) = (name.to_owned(), incarnation.to_owned());
        self.writer
            .write(move |ctx| cluster::release(ctx, &name, &incarnation))
            .await
    }

    async fn instances(&self) -> Result<Vec<crate::Member>> {
        self.readers.read(cluster::list).await
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
        let thread = self
            .checkpointer
            .lock()
            .ok()
            .and_then(|mut checkpointer| checkpointer.stop());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Baseline for the benchmark: in a fresh SQLite file in `dir` (WAL, `synchronous=FULL`),
/// `n` single-row INSERTs, each in its own transaction, one after the other. Returns
/// commits per second. The file is removed afterwards.
///
/// Blocking: call it from a blocking context (e.g. `spawn_blocking`).
///
/// # Errors
/// The file cannot be created or written.
pub fn baseline_commit_rate(dir: &Path, n: usize) -> Result<f64> {
    let name = format!("crossdock-baseline-{}.db", crate::random_suffix());
    let path = dir.join(name);
    let result = (|| {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Database(format!("cannot create {}: {e}", dir.display())))?;
        let conn = connect::writer(&path)?;
        conn.execute_batch("CREATE TABLE baseline (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .map_err(rows::db)?;
        let mut insert = conn
            .prepare("INSERT INTO baseline (body) VALUES (?1)")
            .map_err(rows::db)?;
        let started = Instant::now();
        for i in 0..n {
            insert.execute([format!("row {i}")]).map_err(rows::db)?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        Ok(if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        })
    })();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    result
}

/// A lease with its task's payload parsed from the stored text. A payload that is not JSON
/// (it cannot be, unless the file was edited) reaches its handler as text, which refuses it:
/// the task is dead-lettered, the lane goes on.
/// An inbound message's body text and its task's payload awaiting the inbox id, rendered by
/// the caller, off the writer thread.
fn rendered(message: &NewInbound) -> Result<(String, Option<PayloadAwaitingInboxId>)> {
    let payload = message
        .task
        .as_ref()
        .map(|task| PayloadAwaitingInboxId::new(&task.payload))
        .transpose()?;
    Ok((crate::codec::text(&message.body), payload))
}

/// A lease with its payload: `own` (the enqueued tree and the message's inbox id) when the
/// caller still has it — the same tree the stored text parses into, without parsing it —
/// else the stored text parsed.
fn with_payload(leased: (Lease, String), own: Option<(serde_json::Value, i64)>) -> Lease {
    match own.map(|(tree, inbox_id)| crate::codec::with_inbox_id(tree, inbox_id)) {
        Some(Ok(payload)) => {
            let (mut lease, _) = leased;
            lease.task.payload = payload;
            lease
        }
        _ => parsed(leased),
    }
}

fn parsed((mut lease, payload): (Lease, String)) -> Lease {
    lease.task.payload =
        crate::codec::json(&payload, "task payload").unwrap_or(serde_json::Value::String(payload));
    lease
}
