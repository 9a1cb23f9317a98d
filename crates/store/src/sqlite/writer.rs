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
//!
//! The writer thread is the store's one serial resource, so it does nothing else: replies
//! are delivered (waking the callers) and the requests' data dropped on a second thread.

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

/// A committed (or failed) batch on its way to the reply thread.
type Replies = (Vec<Finish>, Option<String>);

/// Handle to the writer thread.
pub(crate) struct Writer {
    // `None` once closed. Cloned per request; the thread stops when every clone is gone.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn` (and the thread that delivers its replies).
    pub(crate) fn start(conn: Connection) -> Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let (replies, delivery) = std::sync::mpsc::channel::<Replies>();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(body)
                .map_err(|e| Error::Database(format!("cannot start the SQLite {name}: {e}")))
        };
        let deliverer = spawn(
            "crossdock-sqlite-replies",
            Box::new(move || {
                for (finishes, commit_error) in delivery {
                    for finish in finishes {
                        finish(commit_error.as_deref());
                    }
                }
            }),
        )?;
        let writer = spawn(
            "crossdock-sqlite-writer",
            Box::new(move || run(conn, receiver, replies)),
        )?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(vec![writer, deliverer]),
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
        self.write_with((), move |ctx, ()| work(ctx)).await
    }

    /// Like [`Writer::write`], for requests that carry data: `data` is dropped off the writer
    /// thread, once the request is answered.
    ///
    /// # Errors
    /// As [`Writer::write`].
    pub(crate) async fn write_with<D, T, F>(&self, data: D, work: F) -> Result<T>
    where
        D: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&Ctx<'_>, &D) -> Result<T> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| Error::Closed)?
            .clone()
            .ok_or(Error::Closed)?;
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx| {
            let result = work(ctx, &data);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error| {
                let outcome = match (commit_error, result) {
                    (Some(message), Ok(_)) => Err(Error::Database(message.to_owned())),
                    (_, result) => result,
                };
                // The caller may have gone away (cancelled); nothing to do then.
                let _ = reply.send(outcome);
                drop(data);
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

    /// Stops accepting requests, lets the queued ones commit, and waits for the threads.
    pub(crate) async fn close(&self) {
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for thread in threads {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                error!("A SQLite writer thread ended abnormally");
            }
        }
    }
}

fn run(
    conn: Connection,
    mut receiver: mpsc::Receiver<Job>,
    replies: std::sync::mpsc::Sender<Replies>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let answered = commit_batch(&conn, &mut batch);
        if let Err(std::sync::mpsc::SendError((finishes, commit_error))) = replies.send(answered) {
            // The reply thread is gone (it panicked): answer from here.
            for finish in finishes {
                finish(commit_error.as_deref());
            }
        }
    }
    // Every sender is gone: leave the database tidy for the next open.
    if let Err(e) = conn.execute_batch("PRAGMA optimize") {
        warn!(error = %e, "SQLite optimize on close failed");
    }
}

/// Runs and commits one batch; returns the replies to deliver, with the commit error if any.
fn commit_batch(conn: &Connection, batch: &mut Vec<Job>) -> Replies {
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
        Ok(()) => (finishes, None),
        Err(e) => {
            error!(error = %e, requests = finishes.len() + batch.len(), "SQLite group commit failed");
            if !conn.is_autocommit()
                && let Err(e) = conn.execute_batch("ROLLBACK")
            {
                error!(error = %e, "SQLite rollback failed");
            }
            // Requests not reached yet are dropped: their callers get an error.
            batch.clear();
            (finishes, Some(format!("commit failed: {e}")))
        }
    }
}
