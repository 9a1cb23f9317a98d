//! The single writer: one thread owns the write connection and group-commits.
//!
//! Requests arrive on a bounded channel, each a closure plus a reply. The thread takes one
//! request, drains whatever else is already queued (up to [`MAX_BATCH`]), and runs them all
//! in **one** `BEGIN IMMEDIATE` transaction, each inside its own `SAVEPOINT` so that a failing
//! request (a version conflict, a lost lease) rolls back alone. It then commits once — one
//! fsync for the whole batch — and only then answers every request: a reply always means
//! "durable" (or "failed, nothing written").
//!
//! While one batch is being fsynced the next requests queue up, so the batch size grows with
//! the load by itself: no timer, no added latency when the store is idle.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::error::{Error, Result};

/// Most requests committed in one transaction. Bounds the latency a request can add to the
/// others of its batch and the work lost to one failed commit.
pub(crate) const MAX_BATCH: usize = 512;

/// Requests waiting for the writer. When full, callers wait (back-pressure).
pub(crate) const QUEUE_DEPTH: usize = 4096;

/// What a request runs on: the connection inside the open transaction, and the store's
/// clock reading for the batch (microseconds since the Unix epoch).
pub(crate) struct Ctx<'c> {
    /// The write connection.
    pub(crate) conn: &'c Connection,
    /// Wall-clock time of the batch, read from SQLite (`recorded_at`, `created_at`).
    pub(crate) now_us: i64,
}

/// Called after the batch's commit with the commit error, if any.
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
/// A request: runs, says whether it succeeded, and hands back how to reply.
type Job = Box<dyn FnOnce(&Ctx<'_>) -> (bool, Finish) + Send>;

/// Handle to the writer thread.
pub(crate) struct Writer {
    // `None` once closed. Cloned per request; the thread stops when every clone is gone.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection) -> Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("crossdock-sqlite-writer".to_owned())
            .spawn(move || run(conn, receiver))
            .map_err(|e| Error::Database(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `work` in the next group commit and returns its result once durable.
    ///
    /// # Errors
    /// The error of `work` (nothing of it written), a commit failure, or [`Error::Closed`].
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Ctx<'_>) -> Result<T> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| Error::Closed)?
            .clone()
            .ok_or(Error::Closed)?;
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx| {
            let result = work(ctx);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error| {
                let outcome = match (commit_error, result) {
                    (Some(message), Ok(_)) => Err(Error::Database(message.to_owned())),
                    (_, result) => result,
                };
                // The caller may have gone away (cancelled); nothing to do then.
                let _ = reply.send(outcome);
            });
            (ok, finish)
        });
        sender.send(job).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| {
            Error::Database(
                "the SQLite writer dropped the request (it failed while running it)".into(),
            )
        })?
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

fn run(conn: Connection, mut receiver: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut batch);
    }
    // Every sender is gone: leave the database tidy for the next open.
    if let Err(e) = conn.execute_batch("PRAGMA optimize") {
        warn!(error = %e, "SQLite optimize on close failed");
    }
}

/// Runs and commits one batch, then replies to every request in it.
fn commit_batch(conn: &Connection, batch: &mut Vec<Job>) {
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    let outcome = (|| -> rusqlite::Result<()> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let now_us: i64 = conn
            .prepare_cached("SELECT CAST(unixepoch('subsec') * 1000000 AS INTEGER)")?
            .query_row([], |row| row.get(0))?;
        let ctx = Ctx { conn, now_us };
        for job in batch.drain(..) {
            conn.prepare_cached("SAVEPOINT request")?.execute([])?;
            match catch_unwind(AssertUnwindSafe(|| job(&ctx))) {
                Ok((true, finish)) => {
                    conn.prepare_cached("RELEASE request")?.execute([])?;
                    finishes.push(finish);
                }
                Ok((false, finish)) => {
                    conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
                    conn.prepare_cached("RELEASE request")?.execute([])?;
                    finishes.push(finish);
                }
                Err(_) => {
                    // The reply was dropped while unwinding: the caller gets an error.
                    error!("A store write panicked; its changes are rolled back");
                    conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
                    conn.prepare_cached("RELEASE request")?.execute([])?;
                }
            }
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    match outcome {
        Ok(()) => {
            for finish in finishes {
                finish(None);
            }
        }
        Err(e) => {
            error!(error = %e, requests = finishes.len() + batch.len(), "SQLite group commit failed");
            if !conn.is_autocommit()
                && let Err(e) = conn.execute_batch("ROLLBACK")
            {
                error!(error = %e, "SQLite rollback failed");
            }
            let message = format!("commit failed: {e}");
            for finish in finishes {
                finish(Some(&message));
            }
            // Requests not reached yet are dropped: their callers get an error.
            batch.clear();
        }
    }
}
