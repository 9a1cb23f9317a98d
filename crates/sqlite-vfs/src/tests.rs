use rusqlite::{Connection, OpenFlags};

use super::{NAME, deferring_syncs, register, wal_syncs, wal_writes};

fn open(path: &std::path::Path, vfs: Option<&str>) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => Connection::open_with_flags(path, flags),
    }
    .expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
    )
    .expect("pragmas");
    conn
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crossdock-vfs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("test.db")
}

/// A fresh database named `name` opened through the VFS, with the table `t`; its path.
fn with_table(name: &str) -> (Connection, std::path::PathBuf) {
    let vfs = register().expect("register");
    assert_eq!(vfs, NAME);
    let path = scratch(name);
    let conn = open(&path, Some(vfs));
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .expect("create");
    (conn, path)
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .expect("count")
}

/// Inserts `rows` rows of ~1 KiB in one transaction.
fn insert(conn: &Connection, from: i64, rows: i64) {
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    let mut stmt = conn
        .prepare_cached("INSERT INTO t (id, body) VALUES (?1, ?2)")
        .expect("prepare");
    for id in from..from + rows {
        stmt.execute(rusqlite::params![id, format!("{id:01024}")])
            .expect("insert");
    }
    conn.execute_batch("COMMIT").expect("commit");
}

#[test]
fn a_commit_of_many_pages_reaches_the_wal_in_a_few_writes() {
    let (conn, path) = with_table("one-write");
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let before = wal_writes();
    // ~200 rows of 1 KiB: about 50 pages, so 100 frame writes without the buffer, and with
    // it the log's header (synced on its own) and the frames in pieces of at most
    // WRITE_AT_MOST bytes.
    insert(&conn, 0, 200);
    let writes = wal_writes() - before;
    let bytes = std::fs::metadata(&wal).expect("wal").len();
    assert!(
        bytes > 50 * 4096,
        "the WAL holds the commit ({bytes} bytes)"
    );
    let pieces = u64::try_from(super::WRITE_AT_MOST).expect("size");
    let expected = 1 + bytes.div_ceil(pieces);
    assert!(
        writes <= expected,
        "a commit of {bytes} WAL bytes took {writes} write calls (expected {expected})"
    );
    // A connection on the default VFS sees the commit at once.
    let other = open(&path, None);
    assert_eq!(count(&other), 200);
}

#[test]
fn commits_survive_reopening_and_the_log_stays_consistent() {
    let path = {
        let (conn, path) = with_table("reopen");
        for batch in 0..20 {
            insert(&conn, batch * 50, 50);
        }
        // A transaction bigger than the page cache spills frames before it commits; one
        // that rolls back leaves nothing.
        conn.execute_batch("PRAGMA cache_size = 10").expect("cache");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        conn.execute(
            "INSERT INTO t (id, body) SELECT id + 100000, body FROM t",
            [],
        )
        .expect("copy");
        conn.execute_batch("ROLLBACK").expect("rollback");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        conn.execute(
            "INSERT INTO t (id, body) SELECT id + 200000, body FROM t",
            [],
        )
        .expect("copy");
        conn.execute_batch("COMMIT").expect("commit");
        assert_eq!(count(&conn), 2000);
        // Checkpoint and start the log over through the buffered file.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        insert(&conn, 500_000, 10);
        path
    };
    // Reopened without the VFS (its buffers are gone): everything committed is there.
    let conn = open(&path, None);
    assert_eq!(count(&conn), 2010);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity");
    assert_eq!(check, "ok");
}

#[test]
fn a_deferred_commit_sync_is_left_to_the_caller_and_other_syncs_are_done() {
    let (conn, path) = with_table("deferred");
    // A commit outside `deferring_syncs` syncs in place.
    let before = wal_syncs();
    insert(&conn, 0, 10);
    assert!(wal_syncs() > before, "a plain commit syncs the log");
    // Inside: the commit's sync is recorded, not done; the rows are committed (visible to
    // another connection).
    let before = wal_syncs();
    let ((), deferred) = deferring_syncs(|| insert(&conn, 10, 10));
    assert!(deferred, "the commit's sync was handed to the caller");
    assert_eq!(wal_syncs(), before, "no sync was done in place");
    let other = open(&path, Some(NAME));
    assert_eq!(count(&other), 20);
    // A read-only transaction asks for no sync.
    let (n, deferred) = deferring_syncs(|| count(&conn));
    assert_eq!(n, 20);
    assert!(!deferred);
    // A new log's header is synced in place; the commit after it is still deferred.
    conn.execute_batch("PRAGMA wal_checkpoint(RESTART)")
        .expect("restart");
    drop(other);
    let before = wal_syncs();
    let ((), deferred) = deferring_syncs(|| insert(&conn, 20, 10));
    assert!(deferred);
    assert_eq!(
        wal_syncs(),
        before + 1,
        "the new log's header was synced in place"
    );
    // The caller's sync makes it durable: after reopening, everything is there.
    std::fs::File::open(format!("{}-wal", path.display()))
        .and_then(|wal| wal.sync_data())
        .expect("sync the log");
    drop(conn);
    let conn = open(&path, Some(NAME));
    assert_eq!(count(&conn), 30);
}
