//! Advisory locks. Keys are 64-bit stable hashes seeded with the schema name, so hubs that
//! use different schemas of one database never wait on each other.
//!
//! - Per task key (and per lane + dedupe value): transaction-scoped, taken in ascending order
//!   at the start of every transaction that adds or removes tasks, so the per-key `head` flag
//!   and dedupe checks see one writer at a time per key.
//! - The event log barrier (two-key form, its own key space): appenders hold it shared from
//!   their event insert to commit; `read_all` takes it exclusively for an instant.
//! - Migrations (two-key form): session-scoped around applying migrations.

use sqlx::PgConnection;

use crate::codec::stable_hash;

/// First key of the two-key advisory locks of the event log barrier.
const EVENTS_CLASS: i32 = 0x6364_0001;
/// First key of the two-key advisory lock around migrations.
const MIGRATIONS_CLASS: i32 = 0x6364_0002;

/// Lock names of one schema.
#[derive(Debug, Clone)]
pub(crate) struct Locks {
    seed: String,
}

impl Locks {
    /// Locks of the schema named `seed`.
    pub(crate) fn new(seed: &str) -> Self {
        Self {
            seed: seed.to_owned(),
        }
    }

    fn seed32(&self) -> i32 {
        let wide = stable_hash(&self.seed, "schema");
        i32::from_ne_bytes(wide.to_ne_bytes()[..4].try_into().unwrap_or([0; 4]))
    }

    /// Lock id of a task key.
    pub(crate) fn key(&self, key: &str) -> i64 {
        stable_hash(&self.seed, &format!("key\0{key}"))
    }

    /// Lock id of a dedupe value in a lane.
    pub(crate) fn dedupe(&self, lane: &str, dedupe: &str) -> i64 {
        stable_hash(&self.seed, &format!("dedupe\0{lane}\0{dedupe}"))
    }

    /// A `BEGIN` that also takes the given locks (any order, duplicates allowed) in
    /// ascending order until the end of the transaction; `None` without locks. The ids are
    /// integers written as literals, so this is one simple query: one round trip.
    pub(crate) fn begin_statement(mut ids: Vec<i64>) -> Option<String> {
        if ids.is_empty() {
            return None;
        }
        ids.sort_unstable();
        ids.dedup();
        let mut sql = String::from("BEGIN");
        for id in ids {
            sql.push_str(&format!("; SELECT pg_advisory_xact_lock(({id})::bigint)"));
        }
        Some(sql)
    }

    /// Takes the given locks (any order, duplicates allowed) in ascending order, until the
    /// end of the transaction.
    pub(crate) async fn take(
        &self,
        conn: &mut PgConnection,
        mut ids: Vec<i64>,
    ) -> sqlx::Result<()> {
        ids.sort_unstable();
        ids.dedup();
        match ids.len() {
            0 => Ok(()),
            1 => sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ids[0])
                .execute(conn)
                .await
                .map(|_| ()),
            // unnest yields the array in order, and the locks are taken row by row.
            _ => sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k")
                .bind(ids)
                .execute(conn)
                .await
                .map(|_| ()),
        }
    }

    /// The two keys of the event log barrier (appenders take it shared, with
    /// `pg_advisory_xact_lock_shared`, in their event insert).
    pub(crate) fn event_log(&self) -> (i32, i32) {
        (EVENTS_CLASS, self.seed32())
    }

    /// Waits until no transaction holds the event log barrier, holding it exclusively
    /// until the end of the transaction.
    pub(crate) async fn seal_event_log(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(EVENTS_CLASS)
            .bind(self.seed32())
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Session lock around migrations.
    pub(crate) async fn lock_migrations(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(MIGRATIONS_CLASS)
            .bind(self.seed32())
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Releases [`Locks::lock_migrations`].
    pub(crate) async fn unlock_migrations(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(MIGRATIONS_CLASS)
            .bind(self.seed32())
            .execute(conn)
            .await
            .map(|_| ())
    }
}
