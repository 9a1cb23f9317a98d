//! SQLite-specific checks: file creation, durability settings, migrations, reopening, and
//! that the hot queries use their indexes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{SqliteStore, connect, migrate};
use crate::conformance::fixtures::{T0, append, lease_request, order, task};
use crate::{Decision, Error, OrderQuery, Store};

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("crossdock-sqlite-{}", crate::random_suffix())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The first column of every row `sql` returns.
fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A new database at `path` migrated to `schema` only, as an older build left it.
fn at_schema(path: &Path, schema: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                         applied_at INTEGER NOT NULL) STRICT",
    )
    .unwrap();
    for &(version, name, sql) in &migrate::MIGRATIONS[..schema] {
        conn.execute_batch(sql).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
            rusqlite::params![version, name],
        )
        .unwrap();
    }
    conn
}

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn open_creates_the_file_and_its_parents_in_wal_mode() {
    let scratch = Scratch::new();
    let path = scratch.0.join("a").join("b").join("hub.db");
    let store = crate::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.close().await;
    assert!(path.exists());
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: Vec<i64> = column(
        &conn,
        "SELECT version FROM schema_migrations ORDER BY version",
    );
    assert_eq!(
        versions,
        migrate::MIGRATIONS.iter().map(|m| m.0).collect::<Vec<_>>()
    );
    // The write connection commits durably.
    let writer = connect::writer(&path).unwrap();
    let synchronous: i64 = writer
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(synchronous, 2, "synchronous=FULL");
}

#[tokio::test]
async fn data_and_lease_tokens_survive_reopening() {
    let scratch = Scratch::new();
    let path = scratch.0.join("hub.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .commit(Decision {
            order: Some(order("R1", "Booked", 1, T0)),
            tasks: vec![task("erp", "erp:R1", "book"), task("erp", "erp:R2", "book")],
            ..Decision::default()
        })
        .await
        .unwrap();
    let first = store.lease(lease_request("erp", "w", 1, T0)).await.unwrap();
    store.close().await;
    assert!(matches!(store.order("R1").await, Err(Error::Closed)));
    assert!(matches!(
        store.enqueue(vec![task("erp", "k", "x")]).await,
        Err(Error::Closed)
    ));

    let reopened = crate::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(
        reopened.order("R1").await.unwrap().unwrap().status,
        "Booked"
    );
    let second = reopened
        .lease(lease_request("erp", "w", 1, T0))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(second[0].token > first[0].token, "tokens never repeat");
    // The lease taken before the restart is still held (not expired, not taken over).
    reopened
        .complete(&first[0], Decision::default())
        .await
        .unwrap();
    reopened.close().await;
}

#[tokio::test]
async fn task_ids_are_never_issued_twice_even_after_the_newest_task_left() {
    let scratch = Scratch::new();
    let path = scratch.0.join("hub.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let first = store
        .enqueue(vec![task("erp", "erp:N1", "book")])
        .await
        .unwrap();
    let lease = store.lease(lease_request("erp", "w", 1, T0)).await.unwrap();
    // The newest task leaves the queue: a plain rowid would hand its id out again.
    store
        .complete(&lease[0], Decision::default())
        .await
        .unwrap();
    let second = store
        .enqueue(vec![task("erp", "erp:N2", "book")])
        .await
        .unwrap();
    assert!(second[0] > first[0], "{second:?} after {first:?}");
    let lease = store.lease(lease_request("erp", "w", 1, T0)).await.unwrap();
    store
        .complete(&lease[0], Decision::default())
        .await
        .unwrap();
    store.close().await;

    let reopened = SqliteStore::open(&path).await.unwrap();
    let third = reopened
        .enqueue(vec![task("erp", "erp:N3", "book")])
        .await
        .unwrap();
    assert!(
        third[0] > second[0],
        "{third:?} after reopening, {second:?} before"
    );
    let again = reopened
        .lease(lease_request("erp", "w", 1, T0))
        .await
        .unwrap();
    assert!(again[0].token > lease[0].token, "tokens never repeat");
    reopened.close().await;
}

#[tokio::test]
async fn the_task_table_rebuild_keeps_ids_and_continues_the_sequence() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(&scratch.0).unwrap();
    let path = scratch.0.join("hub.db");
    // A database at schema 5, whose tasks took ids from AUTOINCREMENT: ids 1 to 9 issued,
    // only 3 still queued (a plain rowid would issue 4 next).
    let conn = at_schema(&path, 5);
    for id in 1..=9 {
        conn.execute(
            "INSERT INTO tasks (id, lane, kind, key, idempotency_key, payload, due_at, attempts,
                                blocking, created_at, state, head, ready_at)
             VALUES (?1, 'erp', 'book', 'erp:K' || ?1, 'i' || ?1, '{}', 0, 0, 1, 0,
                     'pending', 1, 0)",
            [id],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM tasks WHERE id <> 3", []).unwrap();
    let seq: i64 = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seq, 9);
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let ids = store
        .enqueue(vec![task("erp", "erp:K10", "book")])
        .await
        .unwrap();
    assert_eq!(
        ids,
        [10],
        "the sequence continues past AUTOINCREMENT's last id"
    );
    store.close().await;
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        column::<i64>(&conn, "SELECT id FROM tasks ORDER BY id"),
        [3, 10]
    );
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
    let indexes: Vec<String> = column(
        &conn,
        "SELECT name FROM sqlite_master WHERE tbl_name = 'tasks' AND type = 'index' ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            "tasks_by_key",
            "tasks_by_order",
            "tasks_pending_dedupe",
            "tasks_ready"
        ]
    );
}

#[tokio::test]
async fn stream_versions_continue_from_the_events_once_the_streams_table_is_gone() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(&scratch.0).unwrap();
    let path = scratch.0.join("hub.db");
    // A database at schema 6 with one stream of two events.
    let conn = at_schema(&path, 6);
    conn.execute_batch(
        "INSERT INTO streams (stream, version) VALUES ('order:A', 2);
         INSERT INTO events (stream, version, kind, payload, occurred_at, recorded_at)
         VALUES ('order:A', 1, 'Captured', '{}', 0, 0), ('order:A', 2, 'Booked', '{}', 0, 0);",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let stale = store
        .commit(Decision {
            append: Some(append("order:A", 1, &["Shipped"])),
            ..Decision::default()
        })
        .await
        .expect_err("a stale version conflicts");
    assert!(
        matches!(
            stale,
            Error::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{stale}"
    );
    let next = store
        .commit(Decision {
            append: Some(append("order:A", 2, &["Shipped"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(next.version, Some(3));
    let fresh = store
        .commit(Decision {
            append: Some(append("order:B", 0, &["Captured"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(fresh.version, Some(1));
    store.close().await;
    let conn = Connection::open(&path).unwrap();
    assert!(
        column::<String>(
            &conn,
            "SELECT name FROM sqlite_master WHERE name = 'streams'"
        )
        .is_empty()
    );
}

#[tokio::test]
async fn bad_locations_and_newer_schemas_are_refused() {
    for location in ["", "  ", ":memory:", "sqlite://", "mysql://localhost/db"] {
        let err = crate::open(location).await.err().expect(location);
        assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{location}: {err}");
    }
    let scratch = Scratch::new();
    let path = scratch.0.join("hub.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
            [],
        )
        .unwrap();
    let err = SqliteStore::open(&path).await.err().expect("refused");
    assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{err}");
}

#[test]
fn hot_queries_use_their_indexes() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(&scratch.0).unwrap();
    let conn = connect::writer(&scratch.0.join("plan.db")).unwrap();
    migrate::migrate(&conn).unwrap();
    let lease = plan(
        &conn,
        "SELECT t.id FROM tasks AS t
         WHERE t.lane = 'erp' AND t.head = 1 AND t.ready_at <= 5
           AND NOT EXISTS (SELECT 1 FROM tasks AS o WHERE o.key = t.key AND o.id <> t.id
                             AND o.state = 'leased' AND o.ready_at > 5)
         ORDER BY t.ready_at, t.id LIMIT 10",
    );
    assert!(lease.contains("USING INDEX tasks_ready"), "{lease}");
    assert!(lease.contains("tasks_by_key"), "{lease}");
    assert!(!lease.contains("TEMP B-TREE"), "no sort: {lease}");
    let behind = plan(
        &conn,
        "SELECT order_id FROM orders
         WHERE (sf_synced_version IS NULL OR sf_synced_version < version) ORDER BY order_id LIMIT 5",
    );
    assert!(behind.contains("orders_sf_behind"), "{behind}");
    let by_status = plan(
        &conn,
        "SELECT order_id FROM orders WHERE status IN ('Booked') AND updated_at < 5 ORDER BY order_id",
    );
    assert!(by_status.contains("orders_by_status"), "{by_status}");
    let version = plan(
        &conn,
        "SELECT coalesce(max(version), 0) FROM events WHERE stream = 'order:O'",
    );
    assert!(
        version.contains("COVERING INDEX sqlite_autoindex_events_1"),
        "{version}"
    );
    let auto_resolve = plan(
        &conn,
        "UPDATE dead_letters SET status = 'auto_resolved'
         WHERE order_id = 'O' AND kind = 'book' AND status = 'open'",
    );
    assert!(
        auto_resolve.contains("dead_letters_by_order"),
        "{auto_resolve}"
    );
}

/// 100,000 queued tasks (1,000 keys × 100) and 100,000 orders: leasing stays a short range
/// scan over the heads. Prints the time of one lease of 256; the plan test asserts the shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_stays_fast_with_100k_tasks_and_orders() {
    let scratch = Scratch::new();
    let path: &Path = &scratch.0.join("big.db");
    let store = Arc::new(SqliteStore::open(path).await.unwrap());
    let started = Instant::now();
    for round in 0..100 {
        let tasks = (0..1000)
            .map(|k| task("erp", &format!("erp:K{k}"), &format!("step-{round}")))
            .collect();
        store.enqueue(tasks).await.unwrap();
        // Concurrent commits: the writer group-commits them.
        let mut commits = tokio::task::JoinSet::new();
        for n in 0..1000 {
            let store = Arc::clone(&store);
            let row = order(&format!("O{round:03}-{n:04}"), "Booked", 1, T0);
            commits.spawn(async move {
                store
                    .commit(Decision {
                        order: Some(row),
                        ..Decision::default()
                    })
                    .await
            });
        }
        while let Some(done) = commits.join_next().await {
            done.unwrap().unwrap();
        }
    }
    let filled = started.elapsed();
    let started = Instant::now();
    let leases = store
        .lease(lease_request("erp", "w", 256, T0))
        .await
        .unwrap();
    let lease_time = started.elapsed();
    assert_eq!(leases.len(), 256);
    assert!(leases.iter().all(|l| l.task.kind == "step-0"), "heads only");
    let started = Instant::now();
    let behind = store
        .orders(OrderQuery {
            statuses: vec!["Booked".into()],
            sf_behind: true,
            limit: Some(100),
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    let query_time = started.elapsed();
    assert_eq!(behind.len(), 100);
    println!(
        "100k tasks + 100k orders written in {filled:?}; lease of 256 took {lease_time:?}; \
         100 orders behind Salesforce listed in {query_time:?}"
    );
    store.close().await;
}

/// Task writes build no temporary b-tree: a check or a RETURNING clause can make SQLite
/// build one per statement, which costs more than the write itself.
#[test]
fn task_writes_build_no_temporary_b_tree() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(&scratch.0).unwrap();
    let conn = connect::writer(&scratch.0.join("ops.db")).unwrap();
    migrate::migrate(&conn).unwrap();
    for sql in [
        "INSERT INTO tasks (lane, kind, key, idempotency_key, payload, due_at, attempts,
                            blocking, created_at, state, head, ready_at)
         VALUES ('erp', 'book', 'erp:O', 'k', '{}', 1, 0, 1, 1, 'pending', 1, 1)",
        "UPDATE tasks SET state = 'leased', attempts = attempts + 1, lease_token = 7 WHERE id = 1",
        "UPDATE tasks SET state = 'pending', ready_at = due_at WHERE id = 1",
        "DELETE FROM tasks WHERE id = 1 AND state = 'leased' AND lease_token = 7",
    ] {
        let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let opcodes: Vec<String> = explain
            .query_map([], |row| row.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(opcodes.iter().any(|op| op == "Insert" || op == "Delete"));
        assert!(
            !opcodes.iter().any(|op| op == "OpenEphemeral"),
            "{sql}: {opcodes:?}"
        );
    }
}

/// A writer alone (no checkpoint thread) on `hub.db` in `scratch`, after `schema`, starting
/// the WAL over past `limit` bytes.
fn lone_writer(scratch: &Scratch, schema: &str, limit: u64) -> super::writer::Writer {
    std::fs::create_dir_all(&scratch.0).unwrap();
    let conn = connect::writer(&scratch.0.join("hub.db")).unwrap();
    conn.execute_batch(schema).unwrap();
    super::writer::Writer::start(conn, super::sequences::Sequences::new(0, 0), limit).unwrap()
}

#[tokio::test]
async fn the_writer_starts_over_a_wal_that_passes_its_limit_keeping_the_file() {
    let scratch = Scratch::new();
    let path = scratch.0.join("hub.db");
    let wal = scratch.0.join("hub.db-wal");
    let limit = 512 * 1024;
    let writer = lone_writer(
        &scratch,
        "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB NOT NULL)",
        limit,
    );
    // 2 MiB in 128 commits, with no checkpoint thread: only the writer can empty the log.
    let mut largest = 0;
    // Sizes of the file once it has passed the limit: the log starts over inside it.
    let mut after_restart = Vec::new();
    for _ in 0..128 {
        writer
            .write(|ctx| {
                ctx.conn
                    .execute("INSERT INTO t (x) VALUES (zeroblob(16384))", [])
                    .map_err(super::rows::db)
            })
            .await
            .unwrap();
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if largest > limit {
            after_restart.push(size);
        }
        largest = largest.max(size);
    }
    writer.close().await;
    // The log starts over at the file's beginning; the file is not cut back (its blocks are
    // reused, so a commit's sync does not have to extend it).
    assert!(!after_restart.is_empty(), "the WAL never passed its limit");
    assert!(
        after_restart.iter().all(|&size| size >= limit),
        "the WAL file was cut back after a restart: sizes {after_restart:?}"
    );
    // One batch may pass the limit before the writer empties the log (5 pages of 4 KiB
    // with their frame headers).
    assert!(
        largest <= limit + 5 * 4120,
        "the WAL reached {largest} bytes with a limit of {limit}"
    );
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 128, "nothing written was lost");
}

#[test]
fn sqlite_is_built_without_shared_page_cache_or_memory_statistics() {
    // Set by the workspace's `.cargo/config.toml` (`LIBSQLITE3_FLAGS`): both would put a
    // global mutex on every page fetch or allocation of the writer and the readers.
    let conn = Connection::open_in_memory().unwrap();
    let options: Vec<String> = column(&conn, "PRAGMA compile_options");
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

#[tokio::test]
async fn the_writer_counts_its_group_commits() {
    let scratch = Scratch::new();
    let store = SqliteStore::open(&scratch.0.join("hub.db")).await.unwrap();
    let before = store.writer_stats().unwrap();
    store.enqueue(vec![task("hub", "k", "step")]).await.unwrap();
    store.enqueue(vec![task("hub", "k", "step")]).await.unwrap();
    let after = store.writer_stats().unwrap();
    assert_eq!(after.requests - before.requests, 2);
    assert!(after.commits - before.commits >= 1 && after.commits - before.commits <= 2);
    assert!(after.busy >= after.committing && after.committing > before.committing);
    store.close().await;
}

#[tokio::test]
async fn a_reply_comes_once_the_commit_is_durable_and_visible_to_readers() {
    let scratch = Scratch::new();
    let writer = lone_writer(&scratch, "CREATE TABLE t (x INTEGER NOT NULL)", u64::MAX);
    let synchronous: Vec<i64> = column(
        &connect::writer(&scratch.0.join("hub.db")).unwrap(),
        "PRAGMA synchronous",
    );
    assert_eq!(
        synchronous,
        [2],
        "FULL: a commit syncs the log before it returns"
    );
    let reader = connect::reader(&scratch.0.join("hub.db")).unwrap();
    for n in 0..20_i64 {
        writer
            .write(move |ctx| {
                ctx.conn
                    .execute("INSERT INTO t (x) VALUES (?1)", [n])
                    .map_err(super::rows::db)
            })
            .await
            .unwrap();
        let seen: Vec<i64> = column(&reader, "SELECT count(*) FROM t");
        assert_eq!(seen, [n + 1], "a reader sees write {n} once it is answered");
    }
    let stats = writer.stats();
    assert!(stats.commits >= 1 && stats.requests == 20);
    assert!(stats.busy >= stats.committing && stats.committing > Duration::ZERO);
    writer.close().await;
}

#[test]
fn read_connections_keep_a_bounded_page_cache() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(&scratch.0).unwrap();
    let path = scratch.0.join("hub.db");
    drop(connect::writer(&path).unwrap());
    let reader = connect::reader(&path).unwrap();
    let size: Vec<i64> = column(&reader, "PRAGMA cache_size");
    // Negative: KiB, not pages.
    assert_eq!(size, [-4 * 1024], "4 MiB per reader");
}
