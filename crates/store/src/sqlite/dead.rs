//! Dead letter actions on SQLite: retry (optionally edited), resolve, auto-resolve.

use rusqlite::{OptionalExtension, params};

use super::queue::{fix_head, remove};
use super::rows::db;
use super::writer::Ctx;
use crate::DeadLetterStatus;
use crate::codec::micros;
use crate::error::{Error, Result};

/// The state and task of a dead letter; `Invalid` unless it is open.
fn open_letter(ctx: &Ctx<'_, '_>, id: i64, action: &str) -> Result<(i64, bool, String)> {
    let found: Option<(String, i64, bool, String)> = ctx
        .prepare("SELECT status, task_id, blocking, key FROM dead_letters WHERE id = ?1")
        .map_err(db)?
        .query_row([id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
        .map_err(db)?;
    let (status, task_id, blocking, key) = found.ok_or_else(|| Error::NotFound {
        what: "dead letter",
        id: id.to_string(),
    })?;
    if status != DeadLetterStatus::Open.as_str() {
        return Err(Error::Invalid(format!(
            "dead letter {id} is {status}; only an open dead letter can be {action}"
        )));
    }
    Ok((task_id, blocking, key))
}

/// Whether the queue still holds the dead task of a blocking dead letter.
fn dead_task_queued(ctx: &Ctx<'_, '_>, task_id: i64, letter: i64) -> Result<bool> {
    ctx.prepare("SELECT 1 FROM tasks WHERE id = ?1 AND state = 'dead' AND dead_letter_id = ?2")
        .map_err(db)?
        .exists(params![task_id, letter])
        .map_err(db)
}

/// Sends an open dead letter's task back to the queue under its original id.
pub(crate) fn retry(
    ctx: &Ctx<'_, '_>,
    id: i64,
    payload: Option<&serde_json::Value>,
    by: &str,
    now: time::OffsetDateTime,
) -> Result<i64> {
    let (task_id, blocking, key) = open_letter(ctx, id, "retried")?;
    let now_us = micros(now);
    let resolution = match payload {
        Some(_) => format!("retried with an edited payload by {by}"),
        None => format!("retried by {by}"),
    };
    ctx.prepare(
        "UPDATE dead_letters SET status = 'retried', resolution = ?2, closed_at = ?3 WHERE id = ?1",
    )
    .map_err(db)?
    .execute(params![id, resolution, now_us])
    .map_err(db)?;
    let payload = payload.map(ToString::to_string);
    if blocking && dead_task_queued(ctx, task_id, id)? {
        ctx.prepare(
            "UPDATE tasks SET state = 'pending', due_at = ?2, ready_at = ?2, attempts = 0,
                    payload = coalesce(?3, payload), dead_letter_id = NULL
             WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![task_id, now_us, payload])
        .map_err(db)?;
    } else {
        ctx.prepare(
            "INSERT INTO tasks (id, lane, kind, key, dedupe, idempotency_key, payload, due_at,
                                attempts, blocking, order_id, created_at, last_error, state,
                                head, ready_at)
             SELECT task_id, lane, kind, key, dedupe, idempotency_key, coalesce(?2, payload),
                    ?3, 0, blocking, order_id, task_created_at, error, 'pending', 0, ?3
             FROM dead_letters WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![id, payload, now_us])
        .map_err(db)?;
        fix_head(ctx, &key)?;
    }
    Ok(task_id)
}

/// Closes an open dead letter; its dead task (if blocking) leaves the queue.
pub(crate) fn resolve(
    ctx: &Ctx<'_, '_>,
    id: i64,
    reason: &str,
    by: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    let (task_id, blocking, _) = open_letter(ctx, id, "resolved")?;
    ctx.prepare(
        "UPDATE dead_letters SET status = 'resolved', resolution = ?2, closed_at = ?3
             WHERE id = ?1",
    )
    .map_err(db)?
    .execute(params![
        id,
        format!("resolved by {by}: {reason}"),
        micros(now)
    ])
    .map_err(db)?;
    if blocking && dead_task_queued(ctx, task_id, id)? {
        remove(ctx, task_id)?;
    }
    Ok(())
}

/// Auto-resolves the open dead letters of an order and task kind; returns how many.
pub(crate) fn auto_resolve(ctx: &Ctx<'_, '_>, order_id: &str, kind: &str) -> Result<u64> {
    // Looked up first (most steps find none), then updated by id: an UPDATE with RETURNING
    // would buffer its rows in a temporary table on every step.
    let closed: Vec<(i64, i64, bool)> = super::rows::all(
        &mut *ctx
            .prepare(
                "SELECT id, task_id, blocking FROM dead_letters
                 WHERE order_id = ?1 AND kind = ?2 AND status = 'open'",
            )
            .map_err(db)?,
        params![order_id, kind],
        |row| {
            Ok((
                super::rows::get(row, 0)?,
                super::rows::get(row, 1)?,
                super::rows::get(row, 2)?,
            ))
        },
    )?;
    for &(letter, _, _) in &closed {
        ctx.prepare(
            "UPDATE dead_letters
             SET status = 'auto_resolved', closed_at = ?2,
                 resolution = 'a later attempt of the same step succeeded'
             WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![letter, ctx.now_us])
        .map_err(db)?;
    }
    for &(letter, task_id, blocking) in &closed {
        if blocking && dead_task_queued(ctx, task_id, letter)? {
            remove(ctx, task_id)?;
        }
    }
    Ok(closed.len() as u64)
}
