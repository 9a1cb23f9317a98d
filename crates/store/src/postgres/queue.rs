//! Task queue writes on PostgreSQL. Callers hold the advisory locks of every key whose set
//! of tasks they change (see [`super::locks`]); leasing itself locks rows with
//! `FOR UPDATE SKIP LOCKED` and never waits.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::failure::PgResult;
use super::locks::Locks;
use super::rows::{self, TASK_COLUMNS, get};
use crate::codec::expiry;
use crate::error::Error;
use crate::{Lease, LeaseRequest, NewDeadLetter, NewTask};

/// Lock ids a batch of new tasks needs (their keys and dedupe values).
pub(crate) fn locks_for(locks: &Locks, tasks: &[NewTask]) -> Vec<i64> {
    let mut ids = Vec::with_capacity(tasks.len() * 2);
    for task in tasks {
        ids.push(locks.key(&task.key));
        if let Some(dedupe) = &task.dedupe {
            ids.push(locks.dedupe(&task.lane, dedupe));
        }
    }
    ids
}

/// Enqueues one task unless a pending task of its lane has the same `dedupe`; the caller
/// holds the key and dedupe locks.
pub(crate) async fn enqueue(conn: &mut PgConnection, task: &NewTask) -> PgResult<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO tasks (lane, kind, key, dedupe, idempotency_key, payload, due_at, attempts,
                            blocking, order_id, created_at, state, head, ready_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, 0, $8, $9, now(), 'pending',
                NOT EXISTS (SELECT 1 FROM tasks WHERE key = $3), $7
         WHERE $4::text IS NULL
            OR NOT EXISTS (SELECT 1 FROM tasks
                           WHERE lane = $1 AND dedupe = $4 AND state = 'pending')
         RETURNING id",
    )
    .bind(&task.lane)
    .bind(&task.kind)
    .bind(&task.key)
    .bind(&task.dedupe)
    .bind(&task.idempotency_key)
    .bind(&task.payload)
    .bind(task.due_at)
    .bind(task.blocking)
    .bind(&task.order_id)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// Enqueues tasks in order; returns the ids of those enqueued.
pub(crate) async fn enqueue_all(conn: &mut PgConnection, tasks: &[NewTask]) -> PgResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Some(id) = enqueue(&mut *conn, task).await? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Makes the oldest task of `key` its head (after the head left the queue).
async fn promote_next(conn: &mut PgConnection, key: &str) -> PgResult<()> {
    sqlx::query(
        "UPDATE tasks SET head = true
         WHERE id = (SELECT min(id) FROM tasks WHERE key = $1) AND NOT head",
    )
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Recomputes the head of `key` (after a task came back with an old id).
pub(crate) async fn fix_head(conn: &mut PgConnection, key: &str) -> PgResult<()> {
    sqlx::query(
        "UPDATE tasks SET head = (tasks.id = m.first_id)
         FROM (SELECT min(id) AS first_id FROM tasks WHERE key = $1) AS m
         WHERE tasks.key = $1 AND tasks.head <> (tasks.id = m.first_id)",
    )
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a task and hands its key's head to the next task; the caller holds the key lock.
pub(crate) async fn remove(conn: &mut PgConnection, id: i64) -> PgResult<()> {
    let removed: Option<(String, bool)> =
        sqlx::query_as("DELETE FROM tasks WHERE id = $1 RETURNING key, head")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((key, true)) = removed {
        promote_next(conn, &key).await?;
    }
    Ok(())
}

/// A task `t` that can be leased now on lane `$1` at time `$2` (see [`crate::tasks`]).
const READY: &str = "t.lane = $1 AND t.head AND t.ready_at <= $2
    AND NOT EXISTS (SELECT 1 FROM tasks AS o
                    WHERE o.key = t.key AND o.state = 'leased'
                      AND o.ready_at > $2 AND o.id <> t.id)";

/// Leases up to `limit` ready heads of a lane, oldest `ready_at` first. Rows another
/// transaction has locked are skipped, so concurrent leasers never wait on each other or
/// take the same task.
pub(crate) async fn lease(conn: &mut PgConnection, request: &LeaseRequest) -> PgResult<Vec<Lease>> {
    let picked = format!(
        "SELECT t.id FROM tasks AS t WHERE {READY}
         ORDER BY t.ready_at, t.id LIMIT $3 FOR UPDATE SKIP LOCKED"
    );
    take(conn, request, &picked, None).await
}

/// Leases, for a decision's `claim`, up to `request.limit` of `ids` (tasks the decision just
/// enqueued) that are on the request's lane and ready now, oldest first. The rows are the
/// transaction's own, so nothing else can hold them.
pub(crate) async fn claim(
    conn: &mut PgConnection,
    request: &LeaseRequest,
    ids: &[i64],
) -> PgResult<Vec<Lease>> {
    if ids.is_empty() || request.limit == 0 {
        return Ok(Vec::new());
    }
    let picked = format!(
        "SELECT t.id FROM tasks AS t WHERE t.id = ANY($6) AND {READY} ORDER BY t.id LIMIT $3"
    );
    take(conn, request, &picked, Some(ids)).await
}

/// Leases the tasks the query `picked` selects (`$1` lane, `$2` now, `$3` limit, `$6` the
/// `ids` when given): counts an attempt, issues fresh tokens.
async fn take(
    conn: &mut PgConnection,
    request: &LeaseRequest,
    picked: &str,
    ids: Option<&[i64]>,
) -> PgResult<Vec<Lease>> {
    let expires_at = expiry(request.now, request.lease_for)?;
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let sql = format!(
        "WITH picked AS ({picked})
         UPDATE tasks SET state = 'leased', attempts = tasks.attempts + 1,
                lease_token = nextval('lease_tokens'), lease_owner = $4,
                lease_expires_at = $5, ready_at = $5
         FROM picked WHERE tasks.id = picked.id
         RETURNING {}, tasks.lease_token",
        qualified(TASK_COLUMNS)
    );
    let mut query = sqlx::query(&sql)
        .bind(&request.lane)
        .bind(request.now)
        .bind(limit)
        .bind(&request.owner)
        .bind(expires_at);
    if let Some(ids) = ids {
        query = query.bind(ids);
    }
    let found = query.fetch_all(conn).await?;
    let mut leases = Vec::with_capacity(found.len());
    for row in &found {
        leases.push(Lease {
            task: rows::task(row)?,
            token: get(row, rows::TASK_WIDTH)?,
            owner: request.owner.clone(),
            expires_at,
        });
    }
    leases.sort_by_key(|l| l.task.id);
    Ok(leases)
}

/// `tasks.`-qualified column list.
fn qualified(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("tasks.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Removes a leased task and hands its key's head to the next task, in one statement; the
/// caller holds the lock of `lease.task.key`.
pub(crate) async fn complete(conn: &mut PgConnection, lease: &Lease) -> PgResult<()> {
    // The promotion reads the snapshot from before the delete, so it skips the deleted id.
    let removed: Option<(String,)> = sqlx::query_as(
        "WITH gone AS (
             DELETE FROM tasks WHERE id = $1 AND state = 'leased' AND lease_token = $2
                 AND key = $3
             RETURNING key, head
         ), promoted AS (
             UPDATE tasks SET head = true
             WHERE id = (SELECT min(t.id) FROM tasks AS t JOIN gone ON t.key = gone.key
                         WHERE gone.head AND t.id <> $1)
             RETURNING id
         )
         SELECT key FROM gone",
    )
    .bind(lease.task.id)
    .bind(lease.token)
    .bind(&lease.task.key)
    .fetch_optional(conn)
    .await?;
    match removed {
        Some(_) => Ok(()),
        None => Err(Error::LeaseLost {
            task: lease.task.id,
        }
        .into()),
    }
}

/// Puts a leased task back, due at `due_at`, with the error.
pub(crate) async fn retry(
    conn: &mut PgConnection,
    lease: &Lease,
    due_at: OffsetDateTime,
    error: &str,
) -> PgResult<()> {
    let changed = sqlx::query(
        "UPDATE tasks SET state = 'pending', due_at = $3, ready_at = $3, last_error = $4,
                lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND state = 'leased' AND lease_token = $2",
    )
    .bind(lease.task.id)
    .bind(lease.token)
    .bind(due_at)
    .bind(error)
    .execute(conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::LeaseLost {
            task: lease.task.id,
        }
        .into());
    }
    Ok(())
}

/// Moves a leased task to the dead letters; a blocking one stays queued as `dead`. The
/// caller holds its key lock.
pub(crate) async fn dead_letter(
    conn: &mut PgConnection,
    lease: &Lease,
    entry: &NewDeadLetter,
) -> PgResult<i64> {
    let blocking: Option<bool> = sqlx::query_scalar(
        "SELECT blocking FROM tasks
         WHERE id = $1 AND state = 'leased' AND lease_token = $2 AND key = $3
         FOR UPDATE",
    )
    .bind(lease.task.id)
    .bind(lease.token)
    .bind(&lease.task.key)
    .fetch_optional(&mut *conn)
    .await?;
    let blocking = blocking.ok_or(Error::LeaseLost {
        task: lease.task.id,
    })?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dead_letters (task_id, lane, kind, key, dedupe, idempotency_key, payload,
                                   due_at, attempts, blocking, order_id, task_created_at,
                                   last_error, class, error, reason, created_at, status)
         SELECT id, lane, kind, key, dedupe, idempotency_key, payload, due_at, attempts,
                blocking, order_id, created_at, $2, $3, $2, $4, now(), 'open'
         FROM tasks WHERE id = $1
         RETURNING id",
    )
    .bind(lease.task.id)
    .bind(&entry.error)
    .bind(&entry.class)
    .bind(&entry.reason)
    .fetch_one(&mut *conn)
    .await?;
    if blocking {
        sqlx::query(
            "UPDATE tasks SET state = 'dead', ready_at = NULL, last_error = $2,
                    lease_owner = NULL, lease_expires_at = NULL, dead_letter_id = $3
             WHERE id = $1",
        )
        .bind(lease.task.id)
        .bind(&entry.error)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    } else {
        remove(conn, lease.task.id).await?;
    }
    Ok(id)
}

/// Releases the leases of `owner` without counting the attempt.
pub(crate) async fn release_all(conn: &mut PgConnection, owner: &str) -> PgResult<u64> {
    Ok(sqlx::query(
        "UPDATE tasks SET state = 'pending', ready_at = due_at,
                attempts = greatest(attempts - 1, 0), lease_owner = NULL, lease_expires_at = NULL
         WHERE state = 'leased' AND lease_owner = $1",
    )
    .bind(owner)
    .execute(conn)
    .await?
    .rows_affected())
}
