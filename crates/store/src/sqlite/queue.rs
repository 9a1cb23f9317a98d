//! Task queue writes on SQLite (run on the writer thread, inside a group commit).
//!
//! Each task row carries `head` (it is the oldest task of its key) and `ready_at` (when the
//! head can be leased: `due_at` if pending, the lease expiry if leased, NULL if dead). Leasing
//! is then one range scan of the partial index `tasks_ready (lane, ready_at) WHERE head = 1`,
//! whatever the number of blocked tasks behind the heads.

use std::sync::LazyLock;

use rusqlite::{OptionalExtension, params};

use super::rows::{self, TASK_COLUMNS, db, first, get};
use super::writer::Ctx;
use crate::codec::{expiry, from_micros, micros};
use crate::error::{Error, Result};
use crate::{Lease, LeaseRequest, NewDeadLetter, NewTask, Task, TaskState};

/// What the writer needs of a lease to settle it: the task's id and key and the lease's
/// token (a copy of a few fields instead of the whole lease with its payload).
pub(crate) struct Held {
    id: i64,
    key: String,
    token: i64,
}

impl Held {
    /// The parts of `lease` that settle it.
    pub(crate) fn of(lease: &Lease) -> Self {
        Self {
            id: lease.task.id,
            key: lease.task.key.clone(),
            token: lease.token,
        }
    }
}

/// What enqueuing a task did.
pub(crate) enum Enqueued {
    /// It collapsed into a pending task with the same `dedupe`.
    Collapsed,
    /// Queued, with this id.
    Queued(i64),
    /// Inserted already leased for the claim (its payload left `null` for the caller).
    Leased(Box<Lease>),
}

/// Enqueues one task (its payload already rendered as JSON) unless a pending, not leased
/// task of its lane has the same `dedupe`. Returns its id, or `None` when it collapsed into
/// the pending one.
pub(crate) fn enqueue(ctx: &Ctx<'_, '_>, task: &NewTask, payload: &str) -> Result<Option<i64>> {
    Ok(match enqueue_claiming(ctx, task, payload, None)? {
        Enqueued::Collapsed => None,
        Enqueued::Queued(id) => Some(id),
        Enqueued::Leased(lease) => Some(lease.task.id),
    })
}

/// [`enqueue`], and for a `claim` on the task's lane: when the task would be ready at once
/// (due by the claim's time, no other task of its key), it is inserted leased — the claim's
/// lease without a second write of the row.
pub(crate) fn enqueue_claiming(
    ctx: &Ctx<'_, '_>,
    task: &NewTask,
    payload: &str,
    claim: Option<&LeaseRequest>,
) -> Result<Enqueued> {
    if let Some(dedupe) = &task.dedupe {
        let twin = ctx
            .prepare(
                "SELECT 1 FROM tasks WHERE lane = ?1 AND dedupe = ?2 AND state = 'pending' LIMIT 1",
            )
            .map_err(db)?
            .exists(params![task.lane, dedupe])
            .map_err(db)?;
        if twin {
            return Ok(Enqueued::Collapsed);
        }
    }
    let claim = claim.filter(|c| c.limit > 0 && c.lane == task.lane && task.due_at <= c.now);
    // A claimed task must be its key's head at once: no other task of its key. Known, that
    // answer is the new row's `head` too (else the insert looks it up).
    let mut alone = None;
    let claim = match claim {
        Some(claim) => {
            let none_queued = !ctx
                .prepare("SELECT 1 FROM tasks WHERE key = ?1 LIMIT 1")
                .map_err(db)?
                .exists([&task.key])
                .map_err(db)?;
            alone = Some(none_queued);
            none_queued.then_some(claim)
        }
        None => None,
    };
    let lease = match claim {
        Some(claim) => {
            let expires_at = expiry(claim.now, claim.lease_for)?;
            Some((
                ctx.sequences.lease_tokens(1),
                claim.owner.as_str(),
                expires_at,
            ))
        }
        None => None,
    };
    // A new task has the highest id: it is the head only when its key has no other task.
    // Leased, it is ready again at its lease's expiry; pending, at its due time.
    let due = micros(task.due_at);
    let id = ctx.sequences.next_task_id();
    ctx.prepare(
        "INSERT INTO tasks (id, lane, kind, key, dedupe, idempotency_key, payload, due_at, attempts,
                            blocking, order_id, created_at, state, head, ready_at,
                            lease_token, lease_owner, lease_expires_at)
         VALUES (?15, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?11 IS NOT NULL, ?8, ?9, ?10,
                 iif(?11 IS NULL, 'pending', 'leased'),
                 coalesce(?14, NOT EXISTS (SELECT 1 FROM tasks WHERE key = ?3)),
                 coalesce(?13, ?7), ?11, ?12, ?13)",
    )
    .map_err(db)?
    .execute(params![
        task.lane,
        task.kind,
        task.key,
        task.dedupe,
        task.idempotency_key,
        payload,
        due,
        task.blocking,
        task.order_id,
        ctx.now_us,
        lease.map(|(token, _, _)| token),
        lease.map(|(_, owner, _)| owner),
        lease.map(|(_, _, expires_at)| micros(expires_at)),
        alone,
        id,
    ])
    .map_err(db)?;
    let Some((token, owner, expires_at)) = lease else {
        return Ok(Enqueued::Queued(id));
    };
    Ok(Enqueued::Leased(Box::new(Lease {
        task: Task {
            id,
            lane: task.lane.clone(),
            kind: task.kind.clone(),
            key: task.key.clone(),
            dedupe: task.dedupe.clone(),
            idempotency_key: task.idempotency_key.clone(),
            payload: serde_json::Value::Null,
            due_at: from_micros(due)?,
            attempts: 1,
            blocking: task.blocking,
            order_id: task.order_id.clone(),
            created_at: from_micros(ctx.now_us)?,
            last_error: None,
            state: TaskState::Leased,
        },
        token,
        owner: owner.to_owned(),
        expires_at,
    })))
}

/// Enqueues tasks in order, with their rendered payloads; returns the ids of those enqueued.
pub(crate) fn enqueue_all(
    ctx: &Ctx<'_, '_>,
    tasks: &[NewTask],
    payloads: &[String],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(tasks.len());
    for (task, payload) in tasks.iter().zip(payloads) {
        if let Some(id) = enqueue(ctx, task, payload)? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Makes the oldest task of `key` its head (after the head left the queue).
fn promote_next(ctx: &Ctx<'_, '_>, key: &str) -> Result<()> {
    ctx.prepare(
        "UPDATE tasks SET head = 1
             WHERE id = (SELECT min(id) FROM tasks WHERE key = ?1) AND head = 0",
    )
    .map_err(db)?
    .execute([key])
    .map_err(db)?;
    Ok(())
}

/// Recomputes the head of `key` from scratch (after a task came back with an old id).
pub(crate) fn fix_head(ctx: &Ctx<'_, '_>, key: &str) -> Result<()> {
    ctx.prepare(
        "UPDATE tasks SET head = (id = (SELECT min(id) FROM tasks WHERE key = ?1))
             WHERE key = ?1 AND head <> (id = (SELECT min(id) FROM tasks WHERE key = ?1))",
    )
    .map_err(db)?
    .execute([key])
    .map_err(db)?;
    Ok(())
}

/// Deletes a task and hands its key's head to the next task.
pub(crate) fn remove(ctx: &Ctx<'_, '_>, id: i64) -> Result<()> {
    let removed: Option<(String, bool)> = ctx
        .prepare("SELECT key, head FROM tasks WHERE id = ?1")
        .map_err(db)?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(db)?;
    ctx.prepare("DELETE FROM tasks WHERE id = ?1")
        .map_err(db)?
        .execute([id])
        .map_err(db)?;
    if let Some((key, true)) = removed {
        promote_next(ctx, &key)?;
    }
    Ok(())
}

/// Leases up to `limit` ready heads of a lane, oldest `ready_at` first. Each lease comes
/// with its task's payload as text, for the caller to parse (the lease's payload is `null`).
pub(crate) fn lease(ctx: &Ctx<'_, '_>, request: &LeaseRequest) -> Result<Vec<(Lease, String)>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let now = micros(request.now);
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let ids: Vec<i64> = rows::all(
        &mut *ctx
            .prepare(
                "SELECT t.id FROM tasks AS t
                 WHERE t.lane = ?1 AND t.head = 1 AND t.ready_at <= ?2
                   AND NOT EXISTS (SELECT 1 FROM tasks AS o
                                   WHERE o.key = t.key AND o.id <> t.id
                                     AND o.state = 'leased' AND o.ready_at > ?2)
                 ORDER BY t.ready_at, t.id
                 LIMIT ?3",
            )
            .map_err(db)?,
        params![request.lane, now, limit],
        |row| get(row, 0),
    )?;
    take(ctx, request, &ids)
}

/// Leases the tasks `ids` (known to be ready): counts an attempt, issues fresh tokens.
fn take(ctx: &Ctx<'_, '_>, request: &LeaseRequest, ids: &[i64]) -> Result<Vec<(Lease, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let expires_at = expiry(request.now, request.lease_for)?;
    let expires = micros(expires_at);
    let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let mut token = ctx.sequences.lease_tokens(count) - count;
    static READ: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"));
    let mut take = ctx
        .prepare(
            "UPDATE tasks SET state = 'leased', attempts = attempts + 1, lease_token = ?2,
                    lease_owner = ?3, lease_expires_at = ?4, ready_at = ?4
             WHERE id = ?1",
        )
        .map_err(db)?;
    let mut read = ctx.prepare(READ.as_str()).map_err(db)?;
    let mut leases = Vec::with_capacity(ids.len());
    for &id in ids {
        token += 1;
        take.execute(params![id, token, request.owner, expires])
            .map_err(db)?;
        let (task, payload) = first(&mut read, [id], |row| rows::task_unparsed(row, 0))?
            .ok_or_else(|| Error::Database(format!("task {id} vanished while leasing")))?;
        leases.push((
            Lease {
                task,
                token,
                owner: request.owner.clone(),
                expires_at,
            },
            payload,
        ));
    }
    Ok(leases)
}

/// Checks that `lease` still holds its task; returns the task's key and whether it blocks.
fn held(ctx: &Ctx<'_, '_>, lease: &Held) -> Result<(String, bool)> {
    ctx.prepare(
        "SELECT key, blocking FROM tasks WHERE id = ?1 AND state = 'leased' AND lease_token = ?2",
    )
    .map_err(db)?
    .query_row(params![lease.id, lease.token], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
    .map_err(db)?
    .ok_or(Error::LeaseLost { task: lease.id })
}

/// Removes a leased task (the decision is applied by the caller in the same savepoint).
pub(crate) fn complete(ctx: &Ctx<'_, '_>, lease: &Held) -> Result<()> {
    let removed = ctx
        .prepare("DELETE FROM tasks WHERE id = ?1 AND state = 'leased' AND lease_token = ?2")
        .map_err(db)?
        .execute(params![lease.id, lease.token])
        .map_err(db)?;
    if removed == 0 {
        return Err(Error::LeaseLost { task: lease.id });
    }
    // The lease's token proves the row was this task, so its key is the lease's. Whether it
    // was the head does not matter: when it was not, the oldest task left is the head
    // already and nothing changes.
    promote_next(ctx, &lease.key)
}

/// Puts a leased task back, due at `due_at`, with the error.
pub(crate) fn retry(
    ctx: &Ctx<'_, '_>,
    lease: &Held,
    due_at: time::OffsetDateTime,
    error: &str,
) -> Result<()> {
    let due = micros(due_at);
    let changed = ctx
        .prepare(
            "UPDATE tasks SET state = 'pending', due_at = ?3, ready_at = ?3, last_error = ?4,
                    lease_owner = NULL, lease_expires_at = NULL
             WHERE id = ?1 AND state = 'leased' AND lease_token = ?2",
        )
        .map_err(db)?
        .execute(params![lease.id, lease.token, due, error])
        .map_err(db)?;
    if changed == 0 {
        return Err(Error::LeaseLost { task: lease.id });
    }
    Ok(())
}

/// Moves a leased task to the dead letters; a blocking one stays in the queue as `dead`.
pub(crate) fn dead_letter(ctx: &Ctx<'_, '_>, lease: &Held, entry: &NewDeadLetter) -> Result<i64> {
    let conn = ctx.conn;
    let (_, blocking) = held(ctx, lease)?;
    ctx.prepare(
        "INSERT INTO dead_letters (task_id, lane, kind, key, dedupe, idempotency_key, payload,
                                   due_at, attempts, blocking, order_id, task_created_at,
                                   last_error, class, error, reason, created_at, status)
         SELECT id, lane, kind, key, dedupe, idempotency_key, payload, due_at, attempts,
                blocking, order_id, created_at, ?2, ?3, ?2, ?4, ?5, 'open'
         FROM tasks WHERE id = ?1",
    )
    .map_err(db)?
    .execute(params![
        lease.id,
        entry.error,
        entry.class,
        entry.reason,
        ctx.now_us
    ])
    .map_err(db)?;
    let id = conn.last_insert_rowid();
    if blocking {
        ctx.prepare(
            "UPDATE tasks SET state = 'dead', ready_at = NULL, last_error = ?2,
                    lease_owner = NULL, lease_expires_at = NULL, dead_letter_id = ?3
             WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![lease.id, entry.error, id])
        .map_err(db)?;
    } else {
        remove(ctx, lease.id)?;
    }
    Ok(id)
}

/// Releases the leases of `owner` without counting the attempt.
pub(crate) fn release_all(ctx: &Ctx<'_, '_>, owner: &str) -> Result<u64> {
    let changed = ctx
        .prepare(
            "UPDATE tasks SET state = 'pending', ready_at = due_at,
                    attempts = max(attempts - 1, 0), lease_owner = NULL, lease_expires_at = NULL
             WHERE state = 'leased' AND lease_owner = ?1",
        )
        .map_err(db)?
        .execute([owner])
        .map_err(db)?;
    Ok(changed as u64)
}
