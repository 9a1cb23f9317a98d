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
    (
        9,
        "instance membership",
        include_str!("../../migrations/sqlite/0009_instances.sql"),
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

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::{MIGRATIONS, migrate};

    /// Migration 8 binds the ERP numbers and Salesforce ids the order rows hold already; of
    /// two rows sharing a number (as an ERP that issued it again left them), the one booked
    /// first keeps it.
    #[test]
    fn bindings_are_taken_from_the_order_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                             applied_at INTEGER NOT NULL) STRICT",
        )
        .unwrap();
        for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 < 8) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
                params![version, name],
            )
            .unwrap();
        }
        for (order, sf_id, erp_ref, booked_at) in [
            ("LATER", Some("801B"), Some("SO-1"), Some(20)),
            ("FIRST", Some("801A"), Some("SO-1"), Some(10)),
            ("OTHER", None, Some("SO-2"), Some(30)),
            ("NEW", Some("801C"), None, None),
        ] {
            conn.execute(
                "INSERT INTO orders (order_id, sf_id, erp_ref, account, channel, status, total,
                                     currency, booked_at, updated_at, version, body)
                 VALUES (?1, ?2, ?3, 'ACC', 'B2B', 'Booked', '1', 'EUR', ?4, 40, 1, '{}')",
                params![order, sf_id, erp_ref, booked_at],
            )
            .unwrap();
        }
        migrate(&conn).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT system, kind, reference, order_id FROM external_refs
                 ORDER BY system, kind, reference",
            )
            .unwrap();
        let rows: Vec<(String, String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            ("erp", "order", "SO-1", "FIRST"),
            ("erp", "order", "SO-2", "OTHER"),
            ("salesforce", "order", "801A", "FIRST"),
            ("salesforce", "order", "801B", "LATER"),
            ("salesforce", "order", "801C", "NEW"),
        ];
        let rows: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        assert_eq!(rows, expected);
    }
}
