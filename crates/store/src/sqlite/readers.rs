//! Read-only connections. WAL lets readers run beside the writer, each on a snapshot of the
//! last commit; queries run on the blocking thread pool so the async runtime never waits on
//! SQLite. A commit becomes visible to them once it is durable (see [`super::writer`]).

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// A small pool of read-only connections.
pub(crate) struct Readers {
    path: PathBuf,
    // Idle connections. A connection is taken out while a query runs; one lost to a panic is
    // replaced by opening a new one.
    idle: Mutex<Vec<Connection>>,
    // Bounds concurrent reads to the pool size; closed when the store closes.
    permits: Semaphore,
}

impl Readers {
    /// A pool of at most `size` connections to `path`, opened lazily.
    pub(crate) fn new(path: PathBuf, size: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// Runs `query` on a read connection.
    ///
    /// # Errors
    /// The query's error, [`Error::Closed`] after close.
    pub(crate) async fn read<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Closed)?;
        let idle = self.idle.lock().map_err(|_| Error::Closed)?.pop();
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match idle {
                Some(conn) => conn,
                None => super::connect::reader(&path)?,
            };
            let result = query(&conn);
            Ok::<_, Error>((conn, result))
        })
        .await
        .map_err(|e| Error::Database(format!("a read on SQLite failed: {e}")))??;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }

    /// Refuses new reads and drops idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
