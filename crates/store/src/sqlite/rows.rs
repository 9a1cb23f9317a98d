//! Mapping between SQLite rows and the store's value types.

use rusqlite::types::FromSql;
use rusqlite::{Params, Row, Statement};
use time::OffsetDateTime;

use crate::codec::{attempts, from_micros, json};
use crate::error::{Error, Result};
use crate::journal::AuditEntry;
use crate::{
    AccountRow, DeadLetter, DeadLetterStatus, InboundRecord, InboundStatus, InventoryRow, JsonText,
    OrderRow, StoredAuditEntry, StoredEvent, Task, TaskState,
};

/// Database error.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::Database(e.to_string())
}

/// Column `i` of `row`.
pub(crate) fn get<T: FromSql>(row: &Row<'_>, i: usize) -> Result<T> {
    row.get(i).map_err(db)
}

fn time(row: &Row<'_>, i: usize) -> Result<OffsetDateTime> {
    from_micros(get(row, i)?)
}

fn time_opt(row: &Row<'_>, i: usize) -> Result<Option<OffsetDateTime>> {
    get::<Option<i64>>(row, i)?.map(from_micros).transpose()
}

/// Runs `stmt` and maps every row.
pub(crate) fn all<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = stmt.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Runs `stmt` and maps the first row, if any.
pub(crate) fn first<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut rows = stmt.query(params).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Task columns, in the order [`task`] reads them.
pub(crate) const TASK_COLUMNS: &str = "id, lane, kind, key, dedupe, idempotency_key, payload, \
     due_at, attempts, blocking, order_id, created_at, last_error, state";

/// Number of columns in [`TASK_COLUMNS`].
pub(crate) const TASK_WIDTH: usize = 14;

fn task_state(text: &str) -> Result<TaskState> {
    match text {
        "pending" => Ok(TaskState::Pending),
        "leased" => Ok(TaskState::Leased),
        "dead" => Ok(TaskState::Dead),
        other => Err(Error::Corrupt(format!("task state {other:?}"))),
    }
}

/// A task from [`TASK_COLUMNS`] starting at column `at`.
pub(crate) fn task_at(row: &Row<'_>, at: usize) -> Result<Task> {
    let (mut task, payload) = task_unparsed(row, at)?;
    task.payload = json(&payload, "task payload")?;
    Ok(task)
}

/// A task from [`TASK_COLUMNS`] starting at column `at`, with its payload still as text (the
/// payload is `null` until the caller parses the text, off the writer thread).
pub(crate) fn task_unparsed(row: &Row<'_>, at: usize) -> Result<(Task, String)> {
    let payload: String = get(row, at + 6)?;
    let task = Task {
        id: get(row, at)?,
        lane: get(row, at + 1)?,
        kind: get(row, at + 2)?,
        key: get(row, at + 3)?,
        dedupe: get(row, at + 4)?,
        idempotency_key: get(row, at + 5)?,
        payload: serde_json::Value::Null,
        due_at: time(row, at + 7)?,
        attempts: attempts(get(row, at + 8)?)?,
        blocking: get(row, at + 9)?,
        order_id: get(row, at + 10)?,
        created_at: time(row, at + 11)?,
        last_error: get(row, at + 12)?,
        state: task_state(&get::<String>(row, at + 13)?)?,
    };
    Ok((task, payload))
}

/// A task from [`TASK_COLUMNS`].
pub(crate) fn task(row: &Row<'_>) -> Result<Task> {
    task_at(row, 0)
}

/// Inbox columns, in the order [`inbound`] reads them.
pub(crate) const INBOX_COLUMNS: &str =
    "id, source, message_id, kind, key, received_at, raw, body, status, error";

/// An inbound message from [`INBOX_COLUMNS`].
pub(crate) fn inbound(row: &Row<'_>) -> Result<InboundRecord> {
    let status: String = get(row, 8)?;
    Ok(InboundRecord {
        id: get(row, 0)?,
        source: get(row, 1)?,
        message_id: get(row, 2)?,
        kind: get(row, 3)?,
        key: get(row, 4)?,
        received_at: time(row, 5)?,
        raw: get(row, 6)?,
        body: json(&get::<String>(row, 7)?, "inbound body")?,
        status: InboundStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("inbound status {status:?}")))?,
        error: get(row, 9)?,
    })
}

/// Event columns, in the order [`event`] reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "global_seq, stream, version, kind, payload, occurred_at, recorded_at, causation, correlation";

/// A stored event from [`EVENT_COLUMNS`].
pub(crate) fn event(row: &Row<'_>) -> Result<StoredEvent> {
    Ok(StoredEvent {
        global_seq: get(row, 0)?,
        stream: get(row, 1)?,
        version: get(row, 2)?,
        kind: get(row, 3)?,
        payload: json(&get::<String>(row, 4)?, "event payload")?,
        occurred_at: time(row, 5)?,
        recorded_at: time(row, 6)?,
        causation: get(row, 7)?,
        correlation: get(row, 8)?,
    })
}

/// Dead letter columns, in the order [`dead_letter`] reads them.
pub(crate) const DEAD_LETTER_COLUMNS: &str = "task_id, lane, kind, key, dedupe, idempotency_key, \
     payload, due_at, attempts, blocking, order_id, task_created_at, last_error, 'dead', \
     id, class, error, reason, created_at, status, resolution, closed_at";

/// A dead letter from [`DEAD_LETTER_COLUMNS`].
pub(crate) fn dead_letter(row: &Row<'_>) -> Result<DeadLetter> {
    let task = task_at(row, 0)?;
    let at = TASK_WIDTH;
    let status: String = get(row, at + 5)?;
    Ok(DeadLetter {
        id: get(row, at)?,
        task,
        class: get(row, at + 1)?,
        error: get(row, at + 2)?,
        reason: get(row, at + 3)?,
        created_at: time(row, at + 4)?,
        status: DeadLetterStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("dead letter status {status:?}")))?,
        resolution: get(row, at + 6)?,
        closed_at: time_opt(row, at + 7)?,
    })
}

/// Order columns, in the order [`order`] reads them.
pub(crate) const ORDER_COLUMNS: &str = "order_id, sf_id, sf_number, erp_ref, account, channel, \
     status, total, currency, captured_at, booked_at, shipped_at, delivered_at, invoiced_at, \
     paid_at, ended_at, updated_at, version, body, sf_synced_status, sf_synced_version, \
     sf_synced_at";

/// An order row from [`ORDER_COLUMNS`].
pub(crate) fn order(row: &Row<'_>) -> Result<OrderRow> {
    Ok(OrderRow {
        order_id: get(row, 0)?,
        sf_id: get(row, 1)?,
        sf_number: get(row, 2)?,
        erp_ref: get(row, 3)?,
        account: get(row, 4)?,
        channel: get(row, 5)?,
        status: get(row, 6)?,
        total: get(row, 7)?,
        currency: get(row, 8)?,
        captured_at: time_opt(row, 9)?,
        booked_at: time_opt(row, 10)?,
        shipped_at: time_opt(row, 11)?,
        delivered_at: time_opt(row, 12)?,
        invoiced_at: time_opt(row, 13)?,
        paid_at: time_opt(row, 14)?,
        ended_at: time_opt(row, 15)?,
        updated_at: time(row, 16)?,
        version: get(row, 17)?,
        body: JsonText::from_text(get(row, 18)?)
            .map_err(|e| Error::Corrupt(format!("order body is not JSON: {e}")))?,
        sf_synced_status: get(row, 19)?,
        sf_synced_version: get(row, 20)?,
        sf_synced_at: time_opt(row, 21)?,
    })
}

/// Inventory columns, in the order [`inventory`] reads them.
pub(crate) const INVENTORY_COLUMNS: &str =
    "sku, location, on_hand, reserved, available, as_of, updated_at";

/// An inventory row from [`INVENTORY_COLUMNS`].
pub(crate) fn inventory(row: &Row<'_>) -> Result<InventoryRow> {
    Ok(InventoryRow {
        sku: get(row, 0)?,
        location: get(row, 1)?,
        on_hand: get(row, 2)?,
        reserved: get(row, 3)?,
        available: get(row, 4)?,
        as_of: time(row, 5)?,
        updated_at: time(row, 6)?,
    })
}

/// Account columns, in the order [`account`] reads them.
pub(crate) const ACCOUNT_COLUMNS: &str = "account_id, sf_id, erp_ref, name, tier, body, updated_at";

/// An account from [`ACCOUNT_COLUMNS`].
pub(crate) fn account(row: &Row<'_>) -> Result<AccountRow> {
    Ok(AccountRow {
        account_id: get(row, 0)?,
        sf_id: get(row, 1)?,
        erp_ref: get(row, 2)?,
        name: get(row, 3)?,
        tier: get(row, 4)?,
        body: json(&get::<String>(row, 5)?, "account body")?,
        updated_at: time(row, 6)?,
    })
}

/// Audit columns, in the order [`audit`] reads them.
pub(crate) const AUDIT_COLUMNS: &str = "id, at, actor, action, target, detail";

/// An audit record from [`AUDIT_COLUMNS`].
pub(crate) fn audit(row: &Row<'_>) -> Result<StoredAuditEntry> {
    Ok(StoredAuditEntry {
        id: get(row, 0)?,
        entry: AuditEntry {
            at: time(row, 1)?,
            actor: get(row, 2)?,
            action: get(row, 3)?,
            target: get(row, 4)?,
            detail: json(&get::<String>(row, 5)?, "audit detail")?,
        },
    })
}
