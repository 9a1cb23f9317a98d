//! Task ids and lease tokens, issued by the writer thread from counters in memory.
//!
//! One process owns a database file and only its writer thread writes, so the next task id
//! and lease token need not be read from the database for every enqueue and lease (SQLite's
//! AUTOINCREMENT reads and rewrites `sqlite_sequence` for every insert; the token counter was
//! an update and a read per lease). They are loaded from `counters` when the writer starts
//! and saved there by every commit that issued some, in the same transaction. A batch that
//! rolls back leaves its numbers unused: the counters only move forward, so no id or token
//! is ever issued twice.

use std::cell::Cell;

use rusqlite::{Connection, params};

use super::statements::Statements;

/// The writer's counters: the last task id and lease token issued, and those saved.
pub(crate) struct Sequences {
    task_id: Cell<i64>,
    lease_token: Cell<i64>,
    saved: Cell<(i64, i64)>,
}

impl Sequences {
    /// Reads the counters (after the migrations). Task ids also start above every id in the
    /// queue and the dead letters, whatever the counter says.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let counter = |name: &str| -> rusqlite::Result<i64> {
            conn.query_row(
                "SELECT coalesce((SELECT value FROM counters WHERE name = ?1), 0)",
                [name],
                |row| row.get(0),
            )
        };
        let highest: i64 = conn.query_row(
            "SELECT max(coalesce((SELECT max(id) FROM tasks), 0),
                        coalesce((SELECT max(task_id) FROM dead_letters), 0))",
            [],
            |row| row.get(0),
        )?;
        Ok(Self::new(
            counter("task_id")?.max(highest),
            counter("lease_token")?,
        ))
    }

    /// Counters whose last issued (and saved) values are `task_id` and `lease_token`.
    pub(crate) fn new(task_id: i64, lease_token: i64) -> Self {
        Self {
            task_id: Cell::new(task_id),
            lease_token: Cell::new(lease_token),
            saved: Cell::new((task_id, lease_token)),
        }
    }

    /// A task id never issued before.
    pub(crate) fn next_task_id(&self) -> i64 {
        self.task_id.set(self.task_id.get() + 1);
        self.task_id.get()
    }

    /// Issues `count` lease tokens never issued before; returns the last (the first is
    /// `last - count + 1`).
    pub(crate) fn lease_tokens(&self, count: i64) -> i64 {
        self.lease_token.set(self.lease_token.get() + count);
        self.lease_token.get()
    }

    /// Writes the counters into the open transaction if they moved since the last save;
    /// call it just before the commit. A save whose commit then fails needs no second one:
    /// nothing its batch issued was committed.
    pub(crate) fn save(&self, statements: &Statements<'_>) -> rusqlite::Result<()> {
        let now = (self.task_id.get(), self.lease_token.get());
        if now == self.saved.get() {
            return Ok(());
        }
        let mut update = statements.prepare(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
        )?;
        update.execute(params!["task_id", now.0])?;
        update.execute(params!["lease_token", now.1])?;
        self.saved.set(now);
        Ok(())
    }
}
