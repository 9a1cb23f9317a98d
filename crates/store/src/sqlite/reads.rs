//! Read queries on SQLite (run on the read-only pool).

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use time::OffsetDateTime;

use super::rows::{
    self, ACCOUNT_COLUMNS, AUDIT_COLUMNS, DEAD_LETTER_COLUMNS, EVENT_COLUMNS, INBOX_COLUMNS,
    INVENTORY_COLUMNS, ORDER_COLUMNS, TASK_COLUMNS, db, first, get,
};
use crate::codec::{from_micros, micros};
use crate::error::Result;
use crate::{
    AccountRow, DeadLetter, DeadLetterFilter, InboundRecord, InboundStatus, InventoryRow,
    LaneDepth, OrderQuery, OrderRow, StoredAuditEntry, StoredEvent, Task,
};

/// Default page size of list queries.
pub(crate) const DEFAULT_LIMIT: usize = 100;

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn inbound(conn: &Connection, id: i64) -> Result<Option<InboundRecord>> {
    first(
        &mut *conn
            .prepare_cached(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE id = ?1"))
            .map_err(db)?,
        [id],
        rows::inbound,
    )
}

pub(crate) fn inbound_by_status(
    conn: &Connection,
    status: InboundStatus,
    after: i64,
    n: usize,
) -> Result<Vec<InboundRecord>> {
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {INBOX_COLUMNS} FROM inbox WHERE status = ?1 AND id > ?2
                 ORDER BY id LIMIT ?3"
            ))
            .map_err(db)?,
        params![status.as_str(), after, limit(n)],
        rows::inbound,
    )
}

pub(crate) fn read_stream(conn: &Connection, stream: &str) -> Result<Vec<StoredEvent>> {
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream = ?1 ORDER BY version"
            ))
            .map_err(db)?,
        [stream],
        rows::event,
    )
}

pub(crate) fn read_all(conn: &Connection, after: i64, n: usize) -> Result<Vec<StoredEvent>> {
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE global_seq > ?1
                 ORDER BY global_seq LIMIT ?2"
            ))
            .map_err(db)?,
        params![after, limit(n)],
        rows::event,
    )
}

pub(crate) fn read_since(
    conn: &Connection,
    since: OffsetDateTime,
    n: usize,
) -> Result<Vec<StoredEvent>> {
    // Start the ordered scan at the first event recorded since then (found by index), so a
    // recent `since` does not scan the whole log.
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE global_seq >= (SELECT min(global_seq) FROM events WHERE recorded_at >= ?1)
                   AND recorded_at >= ?1
                 ORDER BY global_seq LIMIT ?2"
            ))
            .map_err(db)?,
        params![micros(since), limit(n)],
        rows::event,
    )
}

pub(crate) fn lane_depths(conn: &Connection, now: OffsetDateTime) -> Result<Vec<LaneDepth>> {
    // An expired lease counts as released: such a task is pending and due.
    rows::all(
        &mut *conn
            .prepare_cached(
                "SELECT lane,
                        sum(state = 'pending' OR (state = 'leased' AND ready_at <= ?1)),
                        sum(state IN ('pending', 'leased') AND ready_at <= ?1),
                        sum(state = 'leased' AND ready_at > ?1),
                        sum(state = 'dead'),
                        min(CASE WHEN state = 'pending' OR (state = 'leased' AND ready_at <= ?1)
                                 THEN created_at END)
                 FROM tasks GROUP BY lane ORDER BY lane",
            )
            .map_err(db)?,
        [micros(now)],
        |row| {
            let count = |i| -> Result<u64> { Ok(u64::try_from(get::<i64>(row, i)?).unwrap_or(0)) };
            Ok(LaneDepth {
                lane: get(row, 0)?,
                pending: count(1)?,
                due: count(2)?,
                leased: count(3)?,
                blocked: count(4)?,
                oldest_pending: get::<Option<i64>>(row, 5)?.map(from_micros).transpose()?,
            })
        },
    )
}

pub(crate) fn tasks_for_order(conn: &Connection, order_id: &str) -> Result<Vec<Task>> {
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE order_id = ?1 ORDER BY id"
            ))
            .map_err(db)?,
        [order_id],
        rows::task,
    )
}

pub(crate) fn dead_letters(conn: &Connection, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
    let mut sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id > ?1");
    let mut values: Vec<Value> = vec![Value::Integer(f.after_id.unwrap_or(0))];
    let mut filter = |column: &str, value: Option<String>| {
        if let Some(value) = value {
            values.push(Value::Text(value));
            sql.push_str(&format!(" AND {column} = ?{}", values.len()));
        }
    };
    filter("status", f.status.map(|s| s.as_str().to_owned()));
    filter("lane", f.lane.clone());
    filter("kind", f.kind.clone());
    filter("order_id", f.order_id.clone());
    filter("class", f.class.clone());
    values.push(Value::Integer(limit(f.limit.unwrap_or(DEFAULT_LIMIT))));
    sql.push_str(&format!(" ORDER BY id LIMIT ?{}", values.len()));
    rows::all(
        &mut *conn.prepare_cached(&sql).map_err(db)?,
        params_from_iter(values),
        rows::dead_letter,
    )
}

pub(crate) fn dead_letter_by_id(conn: &Connection, id: i64) -> Result<Option<DeadLetter>> {
    first(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?1"
            ))
            .map_err(db)?,
        [id],
        rows::dead_letter,
    )
}

pub(crate) fn cursor(conn: &Connection, name: &str) -> Result<Option<String>> {
    first(
        &mut *conn
            .prepare_cached("SELECT position FROM cursors WHERE name = ?1")
            .map_err(db)?,
        [name],
        |row| get(row, 0),
    )
}

pub(crate) fn cursors(conn: &Connection) -> Result<Vec<(String, String, OffsetDateTime)>> {
    rows::all(
        &mut *conn
            .prepare_cached("SELECT name, position, updated_at FROM cursors ORDER BY name")
            .map_err(db)?,
        [],
        |row| Ok((get(row, 0)?, get(row, 1)?, from_micros(get(row, 2)?)?)),
    )
}

pub(crate) fn order(conn: &Connection, order_id: &str) -> Result<Option<OrderRow>> {
    first(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ?1"
            ))
            .map_err(db)?,
        [order_id],
        rows::order,
    )
}

pub(crate) fn orders(conn: &Connection, q: &OrderQuery) -> Result<Vec<OrderRow>> {
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    if !q.statuses.is_empty() {
        let mut marks = Vec::with_capacity(q.statuses.len());
        for status in &q.statuses {
            values.push(Value::Text(status.clone()));
            marks.push(format!("?{}", values.len()));
        }
        sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
    }
    if let Some(account) = &q.account {
        values.push(Value::Text(account.clone()));
        sql.push_str(&format!(" AND account = ?{}", values.len()));
    }
    if let Some(before) = q.updated_before {
        values.push(Value::Integer(micros(before)));
        sql.push_str(&format!(" AND updated_at < ?{}", values.len()));
    }
    if q.sf_behind {
        // Written exactly as the partial index `orders_sf_behind` so the planner can use it.
        sql.push_str(" AND (sf_synced_version IS NULL OR sf_synced_version < version)");
    }
    if let Some(after) = &q.after {
        values.push(Value::Text(after.clone()));
        sql.push_str(&format!(" AND order_id > ?{}", values.len()));
    }
    values.push(Value::Integer(limit(q.limit.unwrap_or(DEFAULT_LIMIT))));
    sql.push_str(&format!(" ORDER BY order_id LIMIT ?{}", values.len()));
    rows::all(
        &mut *conn.prepare_cached(&sql).map_err(db)?,
        params_from_iter(values),
        rows::order,
    )
}

pub(crate) fn order_counts(conn: &Connection) -> Result<Vec<(String, u64)>> {
    rows::all(
        &mut *conn
            .prepare_cached("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
            .map_err(db)?,
        [],
        |row| {
            Ok((
                get(row, 0)?,
                u64::try_from(get::<i64>(row, 1)?).unwrap_or(0),
            ))
        },
    )
}

pub(crate) fn resolve(conn: &Connection, any_id: &str) -> Result<Option<String>> {
    first(
        &mut *conn
            .prepare_cached(
                "SELECT order_id FROM orders WHERE order_id = ?1
                 UNION ALL
                 SELECT order_id FROM (SELECT order_id FROM refs WHERE value = ?1
                                       ORDER BY namespace)
                 LIMIT 1",
            )
            .map_err(db)?,
        [any_id],
        |row| get(row, 0),
    )
}

pub(crate) fn inventory(conn: &Connection, skus: &[String]) -> Result<Vec<InventoryRow>> {
    if skus.is_empty() {
        return rows::all(
            &mut *conn
                .prepare_cached(&format!(
                    "SELECT {INVENTORY_COLUMNS} FROM inventory ORDER BY sku, location"
                ))
                .map_err(db)?,
            [],
            rows::inventory,
        );
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INVENTORY_COLUMNS} FROM inventory WHERE sku = ?1 ORDER BY location"
        ))
        .map_err(db)?;
    let mut skus: Vec<&String> = skus.iter().collect();
    skus.sort();
    skus.dedup();
    let mut out = Vec::new();
    for sku in skus {
        out.extend(rows::all(&mut stmt, [sku], rows::inventory)?);
    }
    Ok(out)
}

pub(crate) fn account(conn: &Connection, account_id: &str) -> Result<Option<AccountRow>> {
    first(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?1"
            ))
            .map_err(db)?,
        [account_id],
        rows::account,
    )
}

pub(crate) fn audit_log(conn: &Connection, after: i64, n: usize) -> Result<Vec<StoredAuditEntry>> {
    rows::all(
        &mut *conn
            .prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(db)?,
        params![after, limit(n)],
        rows::audit,
    )
}
