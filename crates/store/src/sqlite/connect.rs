//! Opening connections with the settings the store relies on.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// How long a connection waits for a lock held by another connection before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn db(e: rusqlite::Error) -> Error {
    Error::Database(e.to_string())
}

/// The store's write connection: WAL, `synchronous=FULL` (a commit is on disk when it
/// returns, and only then visible to the read connections), foreign keys on, an 8 MiB page
/// cache and a larger statement cache.
///
/// The page cache is kept moderate on purpose: a B-tree split briefly renumbers a page to
/// the lock-byte page (page 262,145 with 4 KiB pages), and a commit after that scans the
/// cache's whole hash table, whose size follows the cache size. With 64 MiB that scan was
/// about 7% of the writer's time; the pages it would keep are in the OS cache anyway.
pub(crate) fn writer(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Database(format!(
            "{} cannot use WAL mode (journal mode is {mode})",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;",
    )
    .map_err(db)?;
    let wal_limit = i64::try_from(super::writer::WAL_LIMIT).unwrap_or(i64::MAX);
    conn.pragma_update(None, "journal_size_limit", wal_limit)
        .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Page cache of each read connection, KiB. A read that scans a large table (the order
/// counts, a dashboard page) fills its connection's cache, so the readers together hold at
/// most [`super::DEFAULT_READERS`] times this, however large the file grows; the pages they
/// drop stay in the OS cache.
pub(crate) const READER_CACHE_KIB: i64 = 4 * 1024;

/// A read-only connection with a page cache of [`READER_CACHE_KIB`].
pub(crate) fn reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(db)?;
    conn.execute_batch("PRAGMA temp_store = MEMORY;")
        .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
