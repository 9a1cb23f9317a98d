//! Checkpoints off the writer thread. The write connection does not checkpoint on commit
//! (`wal_autocheckpoint = 0`); this thread copies the WAL back into the database file on its
//! own connection every [`INTERVAL`] with a `PASSIVE` checkpoint, which never blocks the
//! writer or the readers. The writer's group commits then only append to the WAL.
//!
//! Under steady load a `PASSIVE` checkpoint never finds the log fully copied (the writer
//! appends while it runs), so SQLite never starts the log over. The writer thread bounds it:
//! see [`super::writer::WAL_LIMIT`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

use super::connect;
use crate::error::{Error, Result};

/// Time between checkpoints.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint thread.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(crate) fn start(path: &Path) -> Result<Self> {
        let conn = connect::writer(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("crossdock-sqlite-checkpoint".to_owned())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(INTERVAL);
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        warn!(error = %e, "SQLite checkpoint failed; the next one retries");
                    }
                }
            })
            .map_err(|e| Error::Database(format!("cannot start the SQLite checkpoint: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (after its current checkpoint) and waits for it.
    pub(crate) fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // A store dropped without `close` still ends the thread (within one interval).
        self.stop.store(true, Ordering::Relaxed);
    }
}
