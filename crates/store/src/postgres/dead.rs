//! Dead letter actions on PostgreSQL: retry (optionally edited), resolve, auto-resolve.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::failure::PgResult;
use super::locks::Locks;
use super::queue::{fix_head, remove};
use crate::DeadLetterStatus;
use crate::error::Error;

/// Locks an open dead letter's row and its task key; `Invalid` unless it is open.
async fn open_letter(
    conn: &mut PgConnection,
    locks: &Locks,
    id: i64,
    action: &str,
) -> PgResult<(i64, bool, String)> {
    let found: Option<(String, i64, bool, String)> = sqlx::query_as(
        "SELECT status, task_id, blocking, key FROM dead_letters WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let (status, task_id, blocking, key) = found.ok_or_else(|| Error::NotFound {
        what: "dead letter",
        id: id.to_string(),
    })?;
    if status != DeadLetterStatus::Open.as_str() {
        return Err(Error::Invalid(format!(
            "dead letter {id} is {status}; only an open dead letter can be {action}"
        ))
        .into());
    }
    locks.take(conn, vec![locks.key(&key)]).await?;
    Ok((task_id, blocking, key))
}

async fn dead_task_queued(conn: &mut PgConnection, task_id: i64, letter: i64) -> PgResult<bool> {
    Ok(sqlx::query_scalar::<_, i32>(
        "SELECT 1 FROM tasks WHERE id = $1 AND state = 'dead' AND dead_letter_id = $2",
    )
    .bind(task_id)
    .bind(letter)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// Sends an open dead letter's task back to the queue under its original id.
pub(crate) async fn retry(
    conn: &mut PgConnection,
    locks: &Locks,
    id: i64,
    payload: Option<&serde_json::Value>,
    by: &str,
    now: OffsetDateTime,
) -> PgResult<i64> {
    let (task_id, blocking, key) = open_letter(conn, locks, id, "retried").await?;
    let resolution = match payload {
        Some(_) => format!("retried with an edited payload by {by}"),
        None => format!("retried by {by}"),
    };
    sqlx::query(
        "UPDATE dead_letters SET status = 'retried', resolution = $2, closed_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(resolution)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if blocking && dead_task_queued(conn, task_id, id).await? {
        sqlx::query(
            "UPDATE tasks SET state = 'pending', due_at = $2, ready_at = $2, attempts = 0,
                    payload = coalesce($3, payload), dead_letter_id = NULL
             WHERE id = $1",
        )
        .bind(task_id)
        .bind(now)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO tasks (id, lane, kind, key, dedupe, idempotency_key, payload, due_at,
                                attempts, blocking, order_id, created_at, last_error, state,
                                head, ready_at)
             SELECT task_id, lane, kind, key, dedupe, idempotency_key, coalesce($2, payload),
                    $3, 0, blocking, order_id, task_created_at, error, 'pending', false, $3
             FROM dead_letters WHERE id = $1",
        )
        .bind(id)
        .bind(payload)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        fix_head(conn, &key).await?;
    }
    Ok(task_id)
}

/// Closes an open dead letter; its dead task (if blocking) leaves the queue.
pub(crate) async fn resolve(
    conn: &mut PgConnection,
    locks: &Locks,
    id: i64,
    reason: &str,
    by: &str,
    now: OffsetDateTime,
) -> PgResult<()> {
    let (task_id, blocking, _) = open_letter(conn, locks, id, "resolved").await?;
    sqlx::query(
        "UPDATE dead_letters SET status = 'resolved', resolution = $2, closed_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(format!("resolved by {by}: {reason}"))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if blocking && dead_task_queued(conn, task_id, id).await? {
        remove(conn, task_id).await?;
    }
    Ok(())
}

/// Auto-resolves the open dead letters of an order and task kind; returns how many.
pub(crate) async fn auto_resolve(
    conn: &mut PgConnection,
    locks: &Locks,
    order_id: &str,
    kind: &str,
) -> PgResult<u64> {
    let closed: Vec<(i64, i64, bool, String)> = sqlx::query_as(
        "UPDATE dead_letters
         SET status = 'auto_resolved', closed_at = now(),
             resolution = 'a later attempt of the same step succeeded'
         WHERE order_id = $1 AND kind = $2 AND status = 'open'
         RETURNING id, task_id, blocking, key",
    )
    .bind(order_id)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    let blocked: Vec<&(i64, i64, bool, String)> = closed.iter().filter(|c| c.2).collect();
    if !blocked.is_empty() {
        // Rare: a blocking letter closed by a later success. Its key's lock is taken late;
        // a deadlock this could cause is detected by PostgreSQL and the transaction rerun.
        locks
            .take(conn, blocked.iter().map(|c| locks.key(&c.3)).collect())
            .await?;
        for (letter, task_id, _, _) in blocked {
            if dead_task_queued(conn, *task_id, *letter).await? {
                remove(conn, *task_id).await?;
            }
        }
    }
    Ok(closed.len() as u64)
}
