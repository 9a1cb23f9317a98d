//! Schema migrations: SQL files embedded in the binary, applied in order at open, each in
//! its own `BEGIN IMMEDIATE` transaction (which also serialises two processes opening the
//! same file), and recorded in `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// `(version, name, SQL)`, in order.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "fewer task indexes",
        include_str!("../../migrations/sqlite/0002_fewer_task_indexes.sql"),
    ),
    (
        3,
        "no lane index",
        include_str!("../../migrations/sqlite/0003_no_lane_index.sql"),
    ),
    (
        4,
        "timeline groups",
        include_str!("../../migrations/sqlite/0004_timeline_groups.sql"),
    ),
    (
        5,
        "task state check without a temporary b-tree",
        include_str!("../../migrations/sqlite/0005_task_state_check.sql"),
    ),
    (
        6,
        "task ids and lease tokens from the writer's counters",
        include_str!("../../migrations/sqlite/0006_writer_sequences.sql"),
    ),
    (
        7,
        "stream versions from the events",
        include_str!("../../migrations/sqlite/0007_stream_versions_from_events.sql"),
    ),
    (
        8,
        "external reference bindings",
        include_str!("../../migrations/sqlite/0008_external_refs.sql"),
    ),
];

fn db(e: rusqlite::Error) -> Error {
    Error::Database(format!("migration: {e}"))
}

/// Brings the schema up to date.
///
/// # Errors
/// A failing migration (rolled back), or a database migrated by a newer build.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .map_err(db)?;
    let latest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, name, sql) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let applied = (|| {
            let newest: Option<i64> = conn
                .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            if newest.unwrap_or(0) > latest_known {
                return Err(Error::Invalid(format!(
                    "the database schema is at version {} but this build knows only up to {latest_known}",
                    newest.unwrap_or(0)
                )));
            }
            let done = conn
                .query_row(
                    "SELECT 1 FROM schema_migrations WHERE version = ?1",
                    [version],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db)?
                .is_some();
            if !done {
                conn.execute_batch(sql).map_err(|e| {
                    Error::Database(format!("migration {version} ({name}) failed: {e}"))
                })?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)
                     VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000000 AS INTEGER))",
                    params![version, name],
                )
                .map_err(db)?;
            }
            Ok(())
        })();
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").map_err(db)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
