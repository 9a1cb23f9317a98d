//! PostgreSQL backend: the production store, shared by several hub processes.
//!
//! - A connection pool; every write operation is **one transaction** (rerun automatically
//!   after a deadlock or serialization failure), reads go straight to the pool.
//! - **Leasing** is one statement: the ready heads of a lane are picked
//!   `FOR UPDATE SKIP LOCKED`, ordered by `ready_at`, and updated in place. Concurrent
//!   leasers (threads or processes) never wait for each other and never take the same row.
//! - **Per-key rules under concurrency.** Each task row carries `head` (it is the oldest task
//!   of its key) and `ready_at`; only heads are leased, and a lease also checks that no other
//!   task of the key holds an unexpired lease. Leasing changes no head. The `head` flags
//!   change only when a key gains or loses tasks (enqueue, complete, dead-letter, dead letter
//!   retry or resolve), and every transaction doing that first takes a transaction-scoped
//!   **advisory lock per key** (and per lane + dedupe value), all at once in ascending order.
//!   So two writers of one key take turns — the second sees the first's tasks when it
//!   decides heads and dedupe — while writers of other keys and all leasers go on.
//!   Advisory locks were chosen over a per-key head table locked with `SKIP LOCKED`: they
//!   need no rows to create and clean up per key, and they never touch the lease path.
//!   Lock ids are stable 64-bit hashes seeded with the schema name.
//! - **Event log order.** Sequence values are handed out in insert order but become visible
//!   in commit order, so a subscriber reading "everything after position N" could skip an
//!   event that commits late with a lower position. Appenders therefore hold a shared
//!   advisory lock from their event insert (the last statement of a decision) to commit;
//!   `read_all` takes it exclusively for an instant to learn the highest position no
//!   transaction in flight can undercut, and reads up to it.
//! - `?schema=NAME` keeps every table in that schema (created if missing; each pooled
//!   connection starts with `search_path` set to it). Times are `timestamptz` (microseconds),
//!   JSON is `jsonb`; identifiers use `COLLATE "C"` so orderings match SQLite.

mod cluster;
mod dead;
mod decision;
pub(crate) mod failure;
mod location;
pub(crate) mod locks;
mod migrate;
mod queue;
mod reads;
mod rows;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::{
    Accepted, AccountRow, AuditEntry, Committed, CursorMove, DeadLetter, DeadLetterFilter,
    Decision, InboundRecord, InboundStatus, InventoryRow, LaneDepth, Lease, LeaseRequest,
    NewDeadLetter, NewInbound, NewTask, OrderQuery, OrderRow, Store, StoredAuditEntry, StoredEvent,
    StoredTimelineEntry, Task, TimelineEntry,
};

use failure::{db, transaction};
pub use location::DEFAULT_POOL_SIZE;
use locks::Locks;

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    locks: Locks,
    schema: String,
}

/// Connect options for a parsed location, with `search_path` set to its schema.
fn connect_options(location: &location::Location) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(&location.url)
        .map_err(|e| Error::Invalid(format!("not a PostgreSQL URL: {e}")))?;
    Ok(match &location.schema {
        Some(schema) => options.options([("search_path", schema.as_str())]),
        None => options,
    })
}

impl PgStore {
    /// Connects to `location` (`postgres://…[?schema=NAME][&pool_size=N]`), creates the
    /// schema if needed and migrates it.
    ///
    /// # Errors
    /// A malformed location ([`Error::Invalid`]), an unreachable server, or a failed
    /// migration.
    pub async fn connect(location: &str) -> Result<Self> {
        let location = location::parse(location)?;
        let options = connect_options(&location)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| Error::Database(format!("cannot connect to PostgreSQL: {}", db(e))))?;
        let schema = match &location.schema {
            Some(schema) => schema.clone(),
            None => sqlx::query_scalar::<_, Option<String>>("SELECT current_schema()")
                .fetch_one(&mut conn)
                .await
                .map_err(db)?
                .ok_or_else(|| {
                    Error::Invalid("no schema on the search path: add ?schema=NAME".into())
                })?,
        };
        let locks = Locks::new(&schema);
        let migrated = migrate::migrate(&mut conn, location.schema.as_deref(), &locks).await;
        let _ = conn.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(location.pool_size)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| Error::Database(format!("cannot connect to PostgreSQL: {}", db(e))))?;
        Ok(Self {
            pool,
            locks,
            schema,
        })
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn accept_inbound_leasing(
        &self,
        message: NewInbound,
        claim: Option<LeaseRequest>,
    ) -> Result<(Accepted, Option<Lease>)> {
        let locks = queue::locks_for(&self.locks, message.task.as_slice());
        transaction!(self, locks = locks, conn => {
            decision::accept_inbound(conn, &message, claim.as_ref()).await?
        })
    }

    async fn accept_inbound_page(
        &self,
        messages: Vec<NewInbound>,
        cursor: Option<CursorMove>,
        claim: Option<LeaseRequest>,
    ) -> Result<(Vec<Accepted>, Vec<Lease>)> {
        let tasks: Vec<NewTask> = messages.iter().filter_map(|m| m.task.clone()).collect();
        let locks = queue::locks_for(&self.locks, &tasks);
        transaction!(self, locks = locks, conn => {
            let mut accepted = Vec::with_capacity(messages.len());
            for message in &messages {
                accepted.push(decision::accept_inbound(conn, message, None).await?.0);
            }
            if let Some(cursor) = &cursor {
                decision::save_cursor(conn, &cursor.name, &cursor.position, cursor.at).await?;
            }
            let leased = match &claim {
                Some(claim) => queue::lease(conn, claim).await?,
                None => Vec::new(),
            };
            (accepted, leased)
        })
    }

    async fn inbound(&self, id: i64) -> Result<Option<InboundRecord>> {
        reads::inbound(&self.pool, id).await
    }

    async fn inbound_by_status(
        &self,
        status: InboundStatus,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboundRecord>> {
        reads::inbound_by_status(&self.pool, status, after, limit).await
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>> {
        reads::read_stream(&self.pool, stream).await
    }

    async fn read_all(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        reads::read_all(&self.pool, &self.locks, after, limit).await
    }

    async fn read_since(&self, since: OffsetDateTime, limit: usize) -> Result<Vec<StoredEvent>> {
        reads::read_since(&self.pool, since, limit).await
    }

    async fn commit(&self, decision: Decision) -> Result<Committed> {
        if decision.is_empty() {
            return Ok(Committed::default());
        }
        let locks = queue::locks_for(&self.locks, &decision.tasks);
        transaction!(self, locks = locks, conn => {
            decision::apply(conn, &self.locks, &decision).await?
        })
    }

    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<i64>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let locks = queue::locks_for(&self.locks, &tasks);
        transaction!(self, locks = locks, conn => {
            queue::enqueue_all(conn, &tasks).await?
        })
    }

    async fn lease(&self, request: LeaseRequest) -> Result<Vec<Lease>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        transaction!(self, conn => queue::lease(conn, &request).await?)
    }

    async fn complete(&self, lease: &Lease, decision: Decision) -> Result<Committed> {
        let mut locks = queue::locks_for(&self.locks, &decision.tasks);
        locks.push(self.locks.key(&lease.task.key));
        transaction!(self, locks = locks, conn => {
            queue::complete(conn, lease).await?;
            let mut committed = decision::apply(conn, &self.locks, &decision).await?;
            if let Some(request) = decision.ready_request(&committed.leased) {
                committed.leased.extend(queue::lease(conn, &request).await?);
            }
            committed
        })
    }

    async fn retry(
        &self,
        lease: &Lease,
        due_at: OffsetDateTime,
        error: &str,
        decision: Decision,
    ) -> Result<()> {
        let locks = queue::locks_for(&self.locks, &decision.tasks);
        transaction!(self, locks = locks, conn => {
            queue::retry(conn, lease, due_at, error).await?;
            decision::apply(conn, &self.locks, &decision).await?;
        })
    }

    async fn dead_letter(
        &self,
        lease: &Lease,
        entry: NewDeadLetter,
        decision: Decision,
    ) -> Result<i64> {
        let mut locks = queue::locks_for(&self.locks, &decision.tasks);
        locks.push(self.locks.key(&lease.task.key));
        transaction!(self, locks = locks, conn => {
            let id = queue::dead_letter(conn, lease, &entry).await?;
            decision::apply(conn, &self.locks, &decision).await?;
            id
        })
    }

    async fn release_all(&self, owner: &str) -> Result<u64> {
        transaction!(self, conn => queue::release_all(conn, owner).await?)
    }

    async fn lane_depths(&self, now: OffsetDateTime) -> Result<Vec<LaneDepth>> {
        reads::lane_depths(&self.pool, now).await
    }

    async fn tasks_for_order(&self, order_id: &str) -> Result<Vec<Task>> {
        reads::tasks_for_order(&self.pool, order_id).await
    }

    async fn dead_letters(&self, filter: DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        reads::dead_letters(&self.pool, &filter).await
    }

    async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>> {
        reads::dead_letter_by_id(&self.pool, id).await
    }

    async fn retry_dead_letter(
        &self,
        id: i64,
        payload: Option<serde_json::Value>,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<i64> {
        transaction!(self, conn => {
            dead::retry(conn, &self.locks, id, payload.as_ref(), by, now).await?
        })
    }

    async fn resolve_dead_letter(
        &self,
        id: i64,
        reason: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        transaction!(self, conn => dead::resolve(conn, &self.locks, id, reason, by, now).await?)
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>> {
        reads::cursor(&self.pool, name).await
    }

    async fn save_cursor(&self, name: &str, position: &str, now: OffsetDateTime) -> Result<()> {
        transaction!(self, conn => decision::save_cursor(conn, name, position, now).await?)
    }

    async fn cursors(&self) -> Result<Vec<(String, String, OffsetDateTime)>> {
        reads::cursors(&self.pool).await
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRow>> {
        reads::order(&self.pool, order_id).await
    }

    async fn orders(&self, query: OrderQuery) -> Result<Vec<OrderRow>> {
        reads::orders(&self.pool, &query).await
    }

    async fn order_counts(&self) -> Result<Vec<(String, u64)>> {
        reads::order_counts(&self.pool).await
    }

    async fn resolve(&self, any_id: &str) -> Result<Option<String>> {
        reads::resolve(&self.pool, any_id).await
    }

    async fn bound(&self, system: &str, kind: &str, reference: &str) -> Result<Option<String>> {
        decision::bound(&self.pool, system, kind, reference)
            .await
            .map_err(|failure| match failure {
                failure::Failure::Store(error) => error,
                failure::Failure::Retry(message) => Error::Database(message),
            })
    }

    async fn inventory(&self, skus: &[String]) -> Result<Vec<InventoryRow>> {
        reads::inventory(&self.pool, skus).await
    }

    async fn account(&self, account_id: &str) -> Result<Option<AccountRow>> {
        reads::account(&self.pool, account_id).await
    }

    async fn append_timeline(&self, entries: Vec<TimelineEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        transaction!(self, conn => decision::append_timeline(conn, &entries).await?)
    }

    async fn timeline(&self, order_id: &str) -> Result<Vec<StoredTimelineEntry>> {
        reads::timeline(&self.pool, order_id).await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<i64> {
        transaction!(self, conn => decision::audit(conn, &entry).await?)
    }

    async fn audit_log(&self, after: i64, limit: usize) -> Result<Vec<StoredAuditEntry>> {
        reads::audit_log(&self.pool, after, limit).await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<serde_json::Value>> {
        reads::kv_get(&self.pool, namespace, key).await
    }

    async fn kv_insert(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, key) DO NOTHING",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO kv (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                                                        updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        reads::kv_list(&self.pool, namespace, prefix, limit).await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM kv WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn claim_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<crate::Claim> {
        cluster::claim(&self.pool, name, incarnation, now, lease).await
    }

    async fn heartbeat_instance(
        &self,
        name: &str,
        incarnation: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        cluster::heartbeat(&self.pool, name, incarnation, now).await
    }

    async fn release_instance(&self, name: &str, incarnation: &str) -> Result<bool> {
        cluster::release(&self.pool, name, incarnation).await
    }

    async fn instances(&self) -> Result<Vec<crate::Member>> {
        cluster::list(&self.pool).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Drops `schema` (and everything in it) from the database at `url` (tests and benchmarks
/// clean up with it).
///
/// # Errors
/// An invalid schema name, an unreachable server.
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let location = location::parse(&format!(
        "{url}{}schema={schema}",
        if url.contains('?') { '&' } else { '?' }
    ))?;
    let mut conn = PgConnection::connect_with(&connect_options(&location::Location {
        schema: None,
        ..location
    })?)
    .await
    .map_err(db)?;
    let dropped = migrate::batch(
        &mut conn,
        &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
    )
    .await
    .map_err(db);
    let _ = conn.close().await;
    dropped
}

/// Baseline for the benchmark: `n` single-row INSERTs, each its own transaction, spread over
/// `concurrency` connections, into a scratch table (in the `schema=` of `url` if given,
/// dropped afterwards). Returns commits per second.
///
/// # Errors
/// An invalid URL, an unreachable server.
pub async fn baseline_commit_rate(url: &str, n: usize, concurrency: usize) -> Result<f64> {
    let location = location::parse(url)?;
    let concurrency = concurrency.clamp(1, 256);
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(256))
        .connect_with(connect_options(&location)?)
        .await
        .map_err(db)?;
    let table = format!("crossdock_baseline_{}", crate::random_suffix());
    if let Some(schema) = &location.schema {
        sqlx::Executor::execute(&pool, &*format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(db)?;
    }
    sqlx::Executor::execute(
        &pool,
        &*format!(
            "CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             body text NOT NULL)"
        ),
    )
    .await
    .map_err(db)?;
    let pool = Arc::new(pool);
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let pool = Arc::clone(&pool);
        let insert = format!("INSERT INTO {table} (body) VALUES ($1)");
        let rows = n / concurrency + usize::from(w < n % concurrency);
        writers.spawn(async move {
            for i in 0..rows {
                sqlx::query(&insert)
                    .bind(format!("row {w}/{i}"))
                    .execute(&*pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        });
    }
    let mut outcome = Ok(());
    while let Some(joined) = writers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => outcome = Err(db(e)),
            Err(e) => outcome = Err(Error::Database(format!("baseline writer failed: {e}"))),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let dropped = sqlx::Executor::execute(&*pool, &*format!("DROP TABLE IF EXISTS {table}"))
        .await
        .map_err(db);
    pool.close().await;
    outcome?;
    dropped?;
    Ok(if elapsed > 0.0 {
        n as f64 / elapsed
    } else {
        0.0
    })
}
