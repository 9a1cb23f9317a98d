//! Read queries on PostgreSQL (straight on the pool, no transaction, except `read_all`).

use sqlx::{PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::failure::db;
use super::locks::Locks;
use super::rows::{
    self, ACCOUNT_COLUMNS, AUDIT_COLUMNS, DEAD_LETTER_COLUMNS, EVENT_COLUMNS, INBOX_COLUMNS,
    INVENTORY_COLUMNS, ORDER_COLUMNS, TASK_COLUMNS, TIMELINE_COLUMNS, get,
};
use crate::error::Result;
use crate::{
    AccountRow, DeadLetter, DeadLetterFilter, InboundRecord, InboundStatus, InventoryRow,
    LaneDepth, OrderQuery, OrderRow, StoredAuditEntry, StoredEvent, StoredTimelineEntry, Task,
};

/// Default page size of list queries.
const DEFAULT_LIMIT: usize = 100;

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) async fn inbound(pool: &PgPool, id: i64) -> Result<Option<InboundRecord>> {
    sqlx::query(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(rows::inbound)
        .transpose()
}

pub(crate) async fn inbound_by_status(
    pool: &PgPool,
    status: InboundStatus,
    after: i64,
    n: usize,
) -> Result<Vec<InboundRecord>> {
    let found = sqlx::query(&format!(
        "SELECT {INBOX_COLUMNS} FROM inbox WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(status.as_str())
    .bind(after)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::inbound)
}

pub(crate) async fn read_stream(pool: &PgPool, stream: &str) -> Result<Vec<StoredEvent>> {
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream = $1 ORDER BY version"
    ))
    .bind(stream)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::event)
}

/// Events after `after`, never past a position that a transaction in flight could still
/// fill: the horizon is the last position once every appender in flight has finished.
pub(crate) async fn read_all(
    pool: &PgPool,
    locks: &Locks,
    after: i64,
    n: usize,
) -> Result<Vec<StoredEvent>> {
    let mut tx = pool.begin().await.map_err(db)?;
    locks.seal_event_log(&mut tx).await.map_err(db)?;
    let horizon: i64 = sqlx::query_scalar("SELECT coalesce(max(global_seq), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    if horizon <= after {
        return Ok(Vec::new());
    }
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE global_seq > $1 AND global_seq <= $2
         ORDER BY global_seq LIMIT $3"
    ))
    .bind(after)
    .bind(horizon)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::event)
}

pub(crate) async fn read_since(
    pool: &PgPool,
    since: OffsetDateTime,
    n: usize,
) -> Result<Vec<StoredEvent>> {
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE global_seq >= (SELECT min(global_seq) FROM events WHERE recorded_at >= $1)
           AND recorded_at >= $1
         ORDER BY global_seq LIMIT $2"
    ))
    .bind(since)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::event)
}

pub(crate) async fn lane_depths(pool: &PgPool, now: OffsetDateTime) -> Result<Vec<LaneDepth>> {
    // An expired lease counts as released: such a task is pending and due.
    let found = sqlx::query(
        "SELECT lane,
                count(*) FILTER (WHERE state = 'pending' OR (state = 'leased' AND ready_at <= $1)),
                count(*) FILTER (WHERE state IN ('pending', 'leased') AND ready_at <= $1),
                count(*) FILTER (WHERE state = 'leased' AND ready_at > $1),
                count(*) FILTER (WHERE state = 'dead'),
                min(created_at) FILTER (WHERE state = 'pending'
                                           OR (state = 'leased' AND ready_at <= $1))
         FROM tasks GROUP BY lane ORDER BY lane",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, |row| {
        let count = |i| -> Result<u64> { Ok(u64::try_from(get::<i64>(row, i)?).unwrap_or(0)) };
        Ok(LaneDepth {
            lane: get(row, 0)?,
            pending: count(1)?,
            due: count(2)?,
            leased: count(3)?,
            blocked: count(4)?,
            oldest_pending: get(row, 5)?,
        })
    })
}

pub(crate) async fn tasks_for_order(pool: &PgPool, order_id: &str) -> Result<Vec<Task>> {
    let found = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::task)
}

pub(crate) async fn dead_letters(pool: &PgPool, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id > "
    ));
    q.push_bind(f.after_id.unwrap_or(0));
    if let Some(status) = f.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    for (column, value) in [
        ("lane", &f.lane),
        ("kind", &f.kind),
        ("order_id", &f.order_id),
        ("class", &f.class),
    ] {
        if let Some(value) = value {
            q.push(format!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    q.push(" ORDER BY id LIMIT ")
        .push_bind(limit(f.limit.unwrap_or(DEFAULT_LIMIT)));
    let found = q.build().fetch_all(pool).await.map_err(db)?;
    rows::all(&found, rows::dead_letter)
}

pub(crate) async fn dead_letter_by_id(pool: &PgPool, id: i64) -> Result<Option<DeadLetter>> {
    sqlx::query(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(rows::dead_letter)
    .transpose()
}

pub(crate) async fn cursor(pool: &PgPool, name: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT position FROM cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(db)
}

pub(crate) async fn cursors(pool: &PgPool) -> Result<Vec<(String, String, OffsetDateTime)>> {
    sqlx::query_as("SELECT name, position, updated_at FROM cursors ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(db)
}

pub(crate) async fn order(pool: &PgPool, order_id: &str) -> Result<Option<OrderRow>> {
    sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(rows::order)
    .transpose()
}

pub(crate) async fn orders(pool: &PgPool, query: &OrderQuery) -> Result<Vec<OrderRow>> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {ORDER_COLUMNS} FROM orders WHERE true"));
    if !query.statuses.is_empty() {
        q.push(" AND status = ANY(")
            .push_bind(query.statuses.clone())
            .push(")");
    }
    if let Some(account) = &query.account {
        q.push(" AND account = ").push_bind(account.clone());
    }
    if let Some(before) = query.updated_before {
        q.push(" AND updated_at < ").push_bind(before);
    }
    if query.sf_behind {
        // Written exactly as the partial index `orders_sf_behind`.
        q.push(" AND (sf_synced_version IS NULL OR sf_synced_version < version)");
    }
    if let Some(after) = &query.after {
        q.push(" AND order_id > ").push_bind(after.clone());
    }
    q.push(" ORDER BY order_id LIMIT ")
        .push_bind(limit(query.limit.unwrap_or(DEFAULT_LIMIT)));
    let found = q.build().fetch_all(pool).await.map_err(db)?;
    rows::all(&found, rows::order)
}

pub(crate) async fn order_counts(pool: &PgPool) -> Result<Vec<(String, u64)>> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await
            .map_err(db)?;
    Ok(counts
        .into_iter()
        .map(|(status, n)| (status, u64::try_from(n).unwrap_or(0)))
        .collect())
}

pub(crate) async fn resolve(pool: &PgPool, any_id: &str) -> Result<Option<String>> {
    sqlx::query_scalar(
        "(SELECT order_id FROM orders WHERE order_id = $1)
         UNION ALL
         (SELECT order_id FROM refs WHERE value = $1 ORDER BY namespace)
         LIMIT 1",
    )
    .bind(any_id)
    .fetch_optional(pool)
    .await
    .map_err(db)
}

pub(crate) async fn inventory(pool: &PgPool, skus: &[String]) -> Result<Vec<InventoryRow>> {
    let found = if skus.is_empty() {
        sqlx::query(&format!(
            "SELECT {INVENTORY_COLUMNS} FROM inventory ORDER BY sku, location"
        ))
        .fetch_all(pool)
        .await
    } else {
        sqlx::query(&format!(
            "SELECT {INVENTORY_COLUMNS} FROM inventory WHERE sku = ANY($1) ORDER BY sku, location"
        ))
        .bind(skus)
        .fetch_all(pool)
        .await
    }
    .map_err(db)?;
    rows::all(&found, rows::inventory)
}

pub(crate) async fn account(pool: &PgPool, account_id: &str) -> Result<Option<AccountRow>> {
    sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(rows::account)
    .transpose()
}

pub(crate) async fn timeline(pool: &PgPool, order_id: &str) -> Result<Vec<StoredTimelineEntry>> {
    let found = sqlx::query(&format!(
        "SELECT {TIMELINE_COLUMNS} FROM timeline WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::timeline)
}

pub(crate) async fn audit_log(
    pool: &PgPool,
    after: i64,
    n: usize,
) -> Result<Vec<StoredAuditEntry>> {
    let found = sqlx::query(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows::all(&found, rows::audit)
}

pub(crate) async fn kv_get(
    pool: &PgPool,
    namespace: &str,
    key: &str,
) -> Result<Option<serde_json::Value>> {
    sqlx::query_scalar("SELECT value FROM kv WHERE namespace = $1 AND key = $2")
        .bind(namespace)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db)
}

pub(crate) async fn kv_list(
    pool: &PgPool,
    namespace: &str,
    prefix: &str,
    n: usize,
) -> Result<Vec<(String, serde_json::Value)>> {
    // Keys compare bytewise (COLLATE "C"): those with the prefix are contiguous from the
    // first key >= prefix, so one index range scan finds them.
    let found: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT key, value FROM kv WHERE namespace = $1 AND key >= $2 ORDER BY key LIMIT $3",
    )
    .bind(namespace)
    .bind(prefix)
    .bind(limit(n))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(found
        .into_iter()
        .take_while(|(key, _)| key.starts_with(prefix))
        .collect())
}
