//! The single writer: one thread owns the write connection and group-commits.
//!
//! Requests arrive on a bounded channel, each a closure plus a reply. The thread takes one
//! request, drains whatever else is already queued (up to [`MAX_BATCH`]), and runs them all
//! in **one** `BEGIN IMMEDIATE` transaction. It then commits once — one fsync for the whole
//! batch (`synchronous=FULL`) — and only then answers every request: a reply always means
//! "durable" (or "failed, nothing written"), and a commit is visible to the read
//! connections only once it is durable. While a commit waits for the disk, new requests
//! queue, and the next batch takes them all in: the batch size grows with the load by
//! itself (no timer, no added latency when the store is idle).
//!
//! A failing request (a version conflict, a lost lease) must roll back alone. Savepoints
//! would do that, but copying every page a request touches into the savepoint journal costs
//! about a tenth of the writer's time, for failures that are rare. So a batch first runs
//! without them. Requests make their checks before their writes (a decision claims its
//! stream version first), so most failures have written nothing — SQLite's count of changed
//! rows did not move — and are simply left out. Only if a request fails after writing is
//! the whole transaction rolled back and the batch run again with each request in its own
//! `SAVEPOINT` (requests are closures over their data, so they can run twice; the first run
//! left nothing behind).
//!
//! One exception: the WAL. Checkpoints run on their own thread, but under steady load they
//! never find the log fully copied, so SQLite never starts it over and it grows without
//! bound (half a gigabyte within a benchmark of a few thousand orders). Between two batches,
//! when the WAL file has passed [`WAL_LIMIT`], the writer runs a `RESTART` checkpoint: it
//! copies what the checkpoint thread has not copied yet and starts the log over at the
//! beginning of the file, which keeps its size (see `empty_wal`). A checkpoint
//! thread cannot do this itself: it would wait for a write lock the writer takes back after
//! every commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::sequences::Sequences;
use super::statements::{Cached, Statements};
use crate::WriterStats;
use crate::error::{Error, Result};

/// Most requests committed in one transaction. Bounds the latency a request can add to the
/// others of its batch and the work lost to one failed commit.
pub(crate) const MAX_BATCH: usize = 512;

/// Requests waiting for the writer. When full, callers wait (back-pressure).
pub(crate) const QUEUE_DEPTH: usize = 4096;

/// WAL size above which the writer empties the log between two batches; also the size
/// SQLite trims the file to when it starts the log over by itself (`journal_size_limit`).
pub(crate) const WAL_LIMIT: u64 = 64 * 1024 * 1024;

/// What a request runs on: the connection inside the open transaction, and the store's
/// clock reading for the batch (microseconds since the Unix epoch).
pub(crate) struct Ctx<'c, 'k> {
    /// The write connection.
    pub(crate) conn: &'k Connection,
    statements: &'c Statements<'k>,
    /// Task ids and lease tokens.
    pub(crate) sequences: &'c Sequences,
    /// Wall-clock time of the batch, read from SQLite (`recorded_at`, `created_at`).
    pub(crate) now_us: i64,
}

impl<'k> Ctx<'_, 'k> {
    /// The write connection's statement for `sql` (see [`Statements`]).
    pub(crate) fn prepare(&self, sql: &'static str) -> rusqlite::Result<Cached<'_, 'k>> {
        self.statements.prepare(sql)
    }
}

/// A request as the writer thread sees it.
trait Request: Send {
    /// Runs the request's writes; `false` when it failed (its writes must not stay).
    fn run(&mut self, ctx: &Ctx<'_, '_>) -> bool;
    /// Whether the last run failed.
    fn failed(&self) -> bool;
    /// Answers the caller once the batch committed, or failed with `commit_error`.
    fn answer(self: Box<Self>, commit_error: Option<&str>);
}

type Job = Box<dyn Request>;

/// One caller's request: its data, its work, the result of the last run, and the reply.
struct Pending<D, T, F> {
    data: D,
    work: F,
    result: Option<Result<T>>,
    /// The outcome, with the data: the caller drops it on its own thread (an allocation
    /// freed by another thread than the one that made it costs that one a collection).
    reply: oneshot::Sender<(Result<T>, D)>,
}

impl<D, T, F> Request for Pending<D, T, F>
where
    D: Send,
    T: Send,
    F: Fn(&Ctx<'_, '_>, &D) -> Result<T> + Send,
{
    fn run(&mut self, ctx: &Ctx<'_, '_>) -> bool {
        let result = (self.work)(ctx, &self.data);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)) | None)
    }

    fn answer(self: Box<Self>, commit_error: Option<&str>) {
        let Self {
            data,
            result,
            reply,
            ..
        } = *self;
        let outcome = match (commit_error, result) {
            (_, Some(Err(e))) => Err(e),
            // Committed nothing, or never ran (the batch was refused as a whole).
            (Some(message), _) => Err(Error::Database(message.to_owned())),
            (None, Some(Ok(value))) => Ok(value),
            (None, None) => Err(Error::Database(
                "the SQLite writer could not run the request (it panicked)".into(),
            )),
        };
        // The caller may have gone away (cancelled); the data is dropped here then.
        let _ = reply.send((outcome, data));
    }
}

/// The writer thread's counters (nanoseconds for times).
#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    requests: AtomicU64,
    failed: AtomicU64,
    reruns: AtomicU64,
    busy_ns: AtomicU64,
    committing_ns: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    // `None` once closed. Cloned per request; the thread stops when every clone is gone.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it starts the WAL over whenever the file passes
    /// `wal_limit` bytes.
    pub(crate) fn start(conn: Connection, sequences: Sequences, wal_limit: u64) -> Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let wal = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(format!("{p}-wal")));
        let counters = Arc::new(Counters::default());
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name("crossdock-sqlite-writer".to_owned())
                .spawn(move || {
                    let log = Log {
                        wal,
                        limit: wal_limit,
                    };
                    run(conn, receiver, &counters, &sequences, &log);
                })
                .map_err(|e| Error::Database(format!("cannot start the SQLite writer: {e}")))?
        };
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// What the writer has done so far.
    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            reruns: c.reruns.load(Ordering::Relaxed),
            busy: Duration::from_nanos(c.busy_ns.load(Ordering::Relaxed)),
            committing: Duration::from_nanos(c.committing_ns.load(Ordering::Relaxed)),
        }
    }

    /// Runs `work` in the next group commit and returns its result once durable. `work`
    /// may run twice (see the module documentation); only the last run's writes stay.
    ///
    /// # Errors
    /// The error of `work` (nothing of it written), a commit failure, or [`Error::Closed`].
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Ctx<'_, '_>) -> Result<T> + Send + 'static,
    {
        self.write_with((), move |ctx, ()| work(ctx)).await
    }

    /// Like [`Writer::write`], for requests that carry data: `data` comes back with the
    /// answer and is dropped by the caller, on the thread that most likely allocated it.
    ///
    /// # Errors
    /// As [`Writer::write`].
    pub(crate) async fn write_with<D, T, F>(&self, data: D, work: F) -> Result<T>
    where
        D: Send + 'static,
        T: Send + 'static,
        F: Fn(&Ctx<'_, '_>, &D) -> Result<T> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| Error::Closed)?
            .clone()
            .ok_or(Error::Closed)?;
        let (reply, answer) = oneshot::channel::<(Result<T>, D)>();
        let job: Job = Box::new(Pending {
            data,
            work,
            result: None,
            reply,
        });
        sender.send(job).await.map_err(|_| Error::Closed)?;
        let (outcome, data) = answer.await.map_err(|_| {
            Error::Database("the SQLite writer stopped before answering the request".into())
        })?;
        drop(data);
        outcome
    }

    /// Stops accepting requests, lets the queued ones commit, and waits for the thread.
    pub(crate) async fn close(&self) {
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                error!("The SQLite writer thread ended abnormally");
            }
        }
    }
}

/// The WAL file and the size past which the writer starts it over.
struct Log {
    wal: Option<PathBuf>,
    limit: u64,
}

fn run(
    conn: Connection,
    mut receiver: mpsc::Receiver<Job>,
    counters: &Counters,
    sequences: &Sequences,
    log: &Log,
) {
    let statements = Statements::new(&conn);
    while let Some(first) = receiver.blocking_recv() {
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH.min(64));
        batch.push(first);
        take_queued(&mut receiver, &mut batch);
        let started = Instant::now();
        let error = commit(&statements, sequences, counters, &mut batch);
        Counters::add(&counters.busy_ns, started.elapsed());
        if error.is_none() {
            counters.commits.fetch_add(1, Ordering::Relaxed);
        }
        counters
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for job in batch {
            job.answer(error.as_deref());
        }
        // After the replies went out: the batch's callers do not wait for this.
        if let Some(wal) = &log.wal
            && std::fs::metadata(wal).is_ok_and(|m| m.len() > log.limit)
        {
            let started = Instant::now();
            empty_wal(&conn);
            Counters::add(&counters.busy_ns, started.elapsed());
        }
    }
    // Every sender is gone: leave the database tidy for the next open.
    if let Err(e) = conn.execute_batch("PRAGMA optimize") {
        warn!(error = %e, "SQLite optimize on close failed");
    }
}

/// Moves the queued requests into `batch` (up to [`MAX_BATCH`]).
fn take_queued(receiver: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Runs and commits `batch` in one transaction; returns why the batch failed as a whole
/// (nothing of it was written), if it did.
fn commit(
    statements: &Statements<'_>,
    sequences: &Sequences,
    counters: &Counters,
    batch: &mut [Job],
) -> Option<String> {
    let commit_now = || {
        // The ids and tokens the batch issued commit with it.
        sequences.save(statements)?;
        let started = Instant::now();
        let done = statements.prepare("COMMIT")?.execute([]);
        Counters::add(&counters.committing_ns, started.elapsed());
        done.map(|_| ())
    };
    let outcome = match run_all(statements, sequences, batch, false) {
        Ok(true) => commit_now(),
        Ok(false) => {
            // A request failed after writing: nothing of the batch may stay. Run it again,
            // each request in its own savepoint, so that only the failing ones roll back.
            counters.reruns.fetch_add(1, Ordering::Relaxed);
            rollback(statements.conn());
            run_all(statements, sequences, batch, true).and_then(|_| commit_now())
        }
        Err(e) => Err(e),
    };
    let failed = batch.iter().filter(|job| job.failed()).count();
    counters.failed.fetch_add(failed as u64, Ordering::Relaxed);
    match outcome {
        Ok(()) => None,
        Err(e) => {
            error!(error = %e, requests = batch.len(), "SQLite group commit failed");
            rollback(statements.conn());
            Some(format!("commit failed: {e}"))
        }
    }
}

/// Runs every request in one open transaction. Without savepoints (`isolated` false), a
/// request that fails before writing anything (SQLite counted no changed row: a version
/// check or a lost lease found first) is simply left out; one that fails after writing
/// stops the run, which returns `false`.
fn run_all(
    statements: &Statements<'_>,
    sequences: &Sequences,
    batch: &mut [Job],
    isolated: bool,
) -> rusqlite::Result<bool> {
    let ctx = Ctx {
        conn: statements.conn(),
        statements,
        sequences,
        now_us: begin(statements)?,
    };
    run_jobs(&ctx, batch, isolated)
}

/// Opens the batch's transaction; returns the batch's clock reading.
fn begin(statements: &Statements<'_>) -> rusqlite::Result<i64> {
    statements.prepare("BEGIN IMMEDIATE")?.execute([])?;
    statements
        .prepare("SELECT CAST(unixepoch('subsec') * 1000000 AS INTEGER)")?
        .query_row([], |row| row.get(0))
}

/// Runs `jobs` in the open transaction (see [`run_all`]).
fn run_jobs(ctx: &Ctx<'_, '_>, jobs: &mut [Job], isolated: bool) -> rusqlite::Result<bool> {
    let conn = ctx.conn;
    for job in jobs.iter_mut() {
        if isolated {
            ctx.prepare("SAVEPOINT request")?.execute([])?;
        }
        let changes = conn.total_changes();
        let ok = catch_unwind(AssertUnwindSafe(|| job.run(ctx))).unwrap_or_else(|_| {
            error!("A store write panicked; its changes are rolled back");
            false
        });
        if isolated {
            if !ok {
                ctx.prepare("ROLLBACK TO request")?.execute([])?;
            }
            ctx.prepare("RELEASE request")?.execute([])?;
        } else if !ok && conn.total_changes() != changes {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies the WAL into the database and starts it over from its first byte. The file keeps
/// its size (`RESTART`, not `TRUNCATE`): the next commits overwrite blocks the file system
/// has already allocated, so their syncs write data only, where a truncated log made every
/// commit extend the file and sync its metadata too. Readers get a moment to finish; a
/// checkpoint they block is retried after the next batch, never waited for.
fn empty_wal(conn: &Connection) {
    let emptied = conn
        .busy_timeout(Duration::from_millis(50))
        .and_then(|()| conn.execute_batch("PRAGMA wal_checkpoint(RESTART)"));
    let restored = conn.busy_timeout(super::connect::BUSY_TIMEOUT);
    if let Err(e) = emptied.and(restored) {
        warn!(error = %e, "Emptying the SQLite WAL failed; the next batch retries");
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        error!(error = %e, "SQLite rollback failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Receiver = oneshot::Receiver<(Result<()>, ())>;

    /// A request that inserts `id`, then fails if `fail` (after writing if `id` is set).
    fn job(id: Option<i64>, fail: bool) -> (Job, Receiver) {
        let (reply, answer) = oneshot::channel();
        let work = move |ctx: &Ctx<'_, '_>, (): &()| {
            if let Some(id) = id {
                ctx.conn
                    .execute("INSERT INTO t (id) VALUES (?1)", [id])
                    .map_err(super::super::rows::db)?;
            }
            if fail {
                return Err(Error::Database("refused".into()));
            }
            Ok(())
        };
        let job: Job = Box::new(Pending {
            data: (),
            work,
            result: None,
            reply,
        });
        (job, answer)
    }

    /// Commits `requests` as one batch; returns which of them succeeded.
    fn run(conn: &Connection, counters: &Counters, requests: [(Job, Receiver); 3]) -> Vec<bool> {
        let (jobs, receivers): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
        let mut jobs = jobs;
        let statements = Statements::new(conn);
        let error = commit(&statements, &Sequences::new(0, 0), counters, &mut jobs);
        assert_eq!(error, None);
        for job in jobs {
            job.answer(None);
        }
        receivers
            .into_iter()
            .map(|mut r| r.try_recv().expect("answered").0.is_ok())
            .collect()
    }

    fn ids(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT id FROM t ORDER BY id").unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_failure_without_writes_is_left_out_and_one_after_writes_reruns_the_batch() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .unwrap();
        let counters = Counters::default();

        // Fails before writing: the batch commits in one run without it.
        let requests = [job(Some(1), false), job(None, true), job(Some(2), false)];
        assert_eq!(run(&conn, &counters, requests), [true, false, true]);
        assert_eq!(counters.reruns.load(Ordering::Relaxed), 0);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 1);
        assert_eq!(ids(&conn), [1, 2]);

        // Fails after writing: its row must not stay, the others' must.
        let requests = [
            job(Some(3), false),
            job(Some(99), true),
            job(Some(4), false),
        ];
        assert_eq!(run(&conn, &counters, requests), [true, false, true]);
        assert_eq!(counters.reruns.load(Ordering::Relaxed), 1);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 2);
        assert_eq!(ids(&conn), [1, 2, 3, 4]);
    }
}
