//! Decisions, inbound messages, cursors, timeline and audit writes on SQLite (run on the
//! writer thread, inside a group commit).

use rusqlite::{OptionalExtension, params};

use super::queue::{Enqueued, Held, enqueue_claiming};
use super::rows::db;
use super::writer::Ctx;
use crate::codec::{PayloadAwaitingInboxId, micros, text};
use crate::error::{Error, Result};
use crate::{
    Accepted, AccountRow, AuditEntry, Binding, Committed, Decision, ExternalRef, InboundStatus,
    InventoryRow, Lease, LeaseRequest, NewInbound, NewTask, OrderRow, StreamAppend, SyncMark,
};

/// A decision with its JSON documents rendered, so that the writer thread only writes (event
/// payloads come rendered already).
pub(crate) struct Prepared {
    decision: Decision,
    tasks: Vec<String>,
    timeline: Vec<super::timeline::Group>,
}

impl Prepared {
    /// Renders the documents of `decision` (call it off the writer thread).
    pub(crate) fn new(decision: Decision) -> Self {
        Self {
            tasks: render_tasks(&decision.tasks),
            timeline: super::timeline::render(&decision.timeline),
            decision,
        }
    }
}

/// Task payloads as JSON text.
pub(crate) fn render_tasks(tasks: &[NewTask]) -> Vec<String> {
    tasks.iter().map(|t| text(&t.payload)).collect()
}

/// Applies every write of a decision, with `queue_change` (the lease's completion, retry
/// or dead letter) in between: the stream version is checked first — the check that
/// commonly fails — so that a conflict has written nothing (see the writer's module
/// documentation). Fails as a whole (the writer rolls it back).
pub(crate) fn apply<T>(
    ctx: &Ctx<'_, '_>,
    prepared: &Prepared,
    queue_change: impl FnOnce() -> Result<T>,
) -> Result<(T, Committed)> {
    if let Some(append) = &prepared.decision.append {
        check_version(ctx, append)?;
    }
    check_bindings(ctx, &prepared.decision.bind)?;
    let changed = queue_change()?;
    Ok((changed, apply_checked(ctx, prepared)?))
}

/// Completes `lease` with its decision ([`apply`]), then leases what the decision's
/// `claim_ready` asks for; those leases come with their payloads as text, to be parsed off
/// the writer thread.
pub(crate) fn complete(
    ctx: &Ctx<'_, '_>,
    prepared: &Prepared,
    lease: &Held,
) -> Result<(Committed, Vec<(Lease, String)>)> {
    let ((), committed) = apply(ctx, prepared, || super::queue::complete(ctx, lease))?;
    let ready = match prepared.decision.ready_request(&committed.leased) {
        Some(request) => super::queue::lease(ctx, &request)?,
        None => Vec::new(),
    };
    Ok((committed, ready))
}

fn apply_checked(ctx: &Ctx<'_, '_>, prepared: &Prepared) -> Result<Committed> {
    let decision = &prepared.decision;
    let mut committed = Committed::default();
    if let Some(append) = &decision.append {
        let (version, seqs) = insert_events(ctx, append)?;
        committed.version = Some(version);
        committed.event_seqs = seqs;
    }
    // Tasks per claimed lane still to lease.
    let mut left: Vec<usize> = decision.claim.iter().map(|c| c.limit).collect();
    for (task, payload) in decision.tasks.iter().zip(&prepared.tasks) {
        let claim = decision
            .claim
            .iter()
            .zip(&left)
            .position(|(c, left)| c.lane == task.lane && *left > 0);
        match enqueue_claiming(ctx, task, payload, claim.map(|at| &decision.claim[at]))? {
            Enqueued::Collapsed => {}
            Enqueued::Queued(id) => committed.task_ids.push(id),
            Enqueued::Leased(mut lease) => {
                if let Some(at) = claim {
                    left[at] -= 1;
                }
                committed.task_ids.push(lease.task.id);
                // The decision holds the payload: no need to parse the stored text.
                lease.task.payload = task.payload.clone();
                committed.leased.push(*lease);
            }
        }
    }
    if let Some(order) = &decision.order {
        upsert_order(ctx, order)?;
    }
    for mark in &decision.synced {
        mark_synced(ctx, mark)?;
    }
    for row in &decision.inventory {
        upsert_inventory(ctx, row)?;
    }
    for account in &decision.accounts {
        upsert_account(ctx, account)?;
    }
    for reference in &decision.refs {
        upsert_ref(ctx, reference)?;
    }
    for binding in &decision.bind {
        bind(ctx, binding)?;
    }
    super::timeline::append(ctx, &decision.timeline, &prepared.timeline)?;
    for entry in &decision.audit {
        audit(ctx, entry)?;
    }
    if let Some((id, status, error)) = &decision.inbound {
        mark_inbound(ctx, *id, *status, error.as_deref())?;
    }
    if let Some((order_id, kind)) = &decision.auto_resolve {
        committed.auto_resolved = super::dead::auto_resolve(ctx, order_id, kind)?;
    }
    Ok(committed)
}

/// Checks that the stream is still at the append's expected version. A stream's version is
/// its newest event's (events are never deleted), read from the `(stream, version)` index;
/// only this thread writes, so nothing can append between this check and the inserts.
fn check_version(ctx: &Ctx<'_, '_>, append: &StreamAppend) -> Result<()> {
    let actual = stream_version(ctx, &append.stream)?;
    if actual != append.expected_version {
        return Err(Error::VersionConflict {
            stream: append.stream.clone(),
            expected: append.expected_version,
            actual,
        });
    }
    Ok(())
}

/// Checks that no reference of `bind` is bound to another order (before anything is
/// written, as the version check); only this thread writes, so the bindings cannot change
/// between this check and their inserts.
fn check_bindings(ctx: &Ctx<'_, '_>, bind: &[Binding]) -> Result<()> {
    for binding in bind {
        let held: Option<String> = ctx
            .prepare(
                "SELECT order_id FROM external_refs
                 WHERE system = ?1 AND kind = ?2 AND reference = ?3",
            )
            .map_err(db)?
            .query_row(
                params![binding.system, binding.kind, binding.reference],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(held_by) = held.filter(|held| *held != binding.order_id) {
            return Err(Error::ReferenceTaken {
                system: binding.system.clone(),
                kind: binding.kind.clone(),
                reference: binding.reference.clone(),
                held_by,
                claimed_by: binding.order_id.clone(),
            });
        }
    }
    Ok(())
}

/// The order a reference is bound to (a read, on a reader's connection).
pub(crate) fn bound(
    conn: &rusqlite::Connection,
    system: &str,
    kind: &str,
    reference: &str,
) -> Result<Option<String>> {
    conn.prepare_cached(
        "SELECT order_id FROM external_refs WHERE system = ?1 AND kind = ?2 AND reference = ?3",
    )
    .map_err(db)?
    .query_row(params![system, kind, reference], |row| row.get(0))
    .optional()
    .map_err(db)
}

/// Binds a checked reference (a known binding of the same order is kept as it is; one the
/// same decision bound to another order fails it).
fn bind(ctx: &Ctx<'_, '_>, b: &Binding) -> Result<()> {
    let inserted = ctx
        .prepare(
            "INSERT INTO external_refs (system, kind, reference, order_id)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (system, kind, reference) DO NOTHING",
        )
        .map_err(db)?
        .execute(params![b.system, b.kind, b.reference, b.order_id])
        .map_err(db)?;
    if inserted == 0 {
        check_bindings(ctx, std::slice::from_ref(b))?;
    }
    Ok(())
}

/// Inserts the events of a checked append; returns the stream's new version and the
/// events' global sequence numbers.
fn insert_events(ctx: &Ctx<'_, '_>, append: &StreamAppend) -> Result<(i64, Vec<i64>)> {
    let conn = ctx.conn;
    let expected = append.expected_version;
    let mut seqs = Vec::with_capacity(append.events.len());
    let mut stmt = ctx
        .prepare(
            "INSERT INTO events (stream, version, kind, payload, occurred_at, recorded_at,
                                 causation, correlation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(db)?;
    let mut version = expected;
    for event in &append.events {
        version += 1;
        stmt.execute(params![
            append.stream,
            version,
            event.kind,
            event.payload.as_str(),
            micros(event.occurred_at),
            ctx.now_us,
            event.causation,
            event.correlation,
        ])
        .map_err(db)?;
        seqs.push(conn.last_insert_rowid());
    }
    Ok((version, seqs))
}

fn stream_version(ctx: &Ctx<'_, '_>, stream: &str) -> Result<i64> {
    ctx.prepare("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1")
        .map_err(db)?
        .query_row([stream], |row| row.get(0))
        .map_err(db)
}

fn upsert_order(ctx: &Ctx<'_, '_>, o: &OrderRow) -> Result<()> {
    // `account` is not in the upsert's SET: naming a column there rewrites every index on
    // it, even to the same value, and an order's account practically never changes. The
    // upsert only updates a row of the same account; when it changed nothing and the row is
    // not newer, the account moved: move it, then upsert again.
    if write_order(ctx, o)? == 0 && move_account(ctx, o)? {
        write_order(ctx, o)?;
    }
    Ok(())
}

/// The summary upsert; returns the rows it changed (0 when the stored row is newer or of
/// another account).
fn write_order(ctx: &Ctx<'_, '_>, o: &OrderRow) -> Result<usize> {
    // A row never goes back to an older version; the Salesforce confirmation columns only
    // move forward (they are normally set by sync marks).
    ctx.prepare(
        "INSERT INTO orders (order_id, sf_id, sf_number, erp_ref, account, channel, status,
                             total, currency, captured_at, booked_at, shipped_at,
                             delivered_at, invoiced_at, paid_at, ended_at, updated_at,
                             version, body, sf_synced_status, sf_synced_version,
                             sf_synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22)
         ON CONFLICT (order_id) DO UPDATE SET
             sf_id = excluded.sf_id, sf_number = excluded.sf_number,
             erp_ref = excluded.erp_ref, channel = excluded.channel,
             status = excluded.status, total = excluded.total,
             currency = excluded.currency, captured_at = excluded.captured_at,
             booked_at = excluded.booked_at, shipped_at = excluded.shipped_at,
             delivered_at = excluded.delivered_at, invoiced_at = excluded.invoiced_at,
             paid_at = excluded.paid_at, ended_at = excluded.ended_at,
             updated_at = excluded.updated_at, version = excluded.version,
             body = excluded.body,
             sf_synced_status = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                          > coalesce(orders.sf_synced_version, -1)
                                     THEN excluded.sf_synced_status
                                     ELSE orders.sf_synced_status END,
             sf_synced_at = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                      > coalesce(orders.sf_synced_version, -1)
                                 THEN excluded.sf_synced_at
                                 ELSE orders.sf_synced_at END,
             sf_synced_version = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                           > coalesce(orders.sf_synced_version, -1)
                                      THEN excluded.sf_synced_version
                                      ELSE orders.sf_synced_version END
         WHERE excluded.version >= orders.version AND excluded.account = orders.account",
    )
    .map_err(db)?
    .execute(params![
        o.order_id,
        o.sf_id,
        o.sf_number,
        o.erp_ref,
        o.account,
        o.channel,
        o.status,
        o.total,
        o.currency,
        o.captured_at.map(micros),
        o.booked_at.map(micros),
        o.shipped_at.map(micros),
        o.delivered_at.map(micros),
        o.invoiced_at.map(micros),
        o.paid_at.map(micros),
        o.ended_at.map(micros),
        micros(o.updated_at),
        o.version,
        o.body.as_str(),
        o.sf_synced_status,
        o.sf_synced_version,
        o.sf_synced_at.map(micros),
    ])
    .map_err(db)
}

/// Gives the stored row `o`'s account unless the stored row is newer; `true` if it moved.
fn move_account(ctx: &Ctx<'_, '_>, o: &OrderRow) -> Result<bool> {
    let moved = ctx
        .prepare(
            "UPDATE orders SET account = ?2
             WHERE order_id = ?1 AND account <> ?2 AND version <= ?3",
        )
        .map_err(db)?
        .execute(params![o.order_id, o.account, o.version])
        .map_err(db)?;
    Ok(moved == 1)
}

fn mark_synced(ctx: &Ctx<'_, '_>, mark: &SyncMark) -> Result<()> {
    ctx.prepare(
        "UPDATE orders SET sf_synced_status = ?2, sf_synced_version = ?3, sf_synced_at = ?4
             WHERE order_id = ?1 AND (sf_synced_version IS NULL OR sf_synced_version <= ?3)",
    )
    .map_err(db)?
    .execute(params![
        mark.order_id,
        mark.status,
        mark.version,
        micros(mark.at)
    ])
    .map_err(db)?;
    Ok(())
}

fn upsert_inventory(ctx: &Ctx<'_, '_>, row: &InventoryRow) -> Result<()> {
    ctx.prepare(
        "INSERT INTO inventory (sku, location, on_hand, reserved, available, as_of, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (sku, location) DO UPDATE SET
                 on_hand = excluded.on_hand, reserved = excluded.reserved,
                 available = excluded.available, as_of = excluded.as_of,
                 updated_at = excluded.updated_at
             WHERE excluded.as_of >= inventory.as_of",
    )
    .map_err(db)?
    .execute(params![
        row.sku,
        row.location,
        row.on_hand,
        row.reserved,
        row.available,
        micros(row.as_of),
        micros(row.updated_at),
    ])
    .map_err(db)?;
    Ok(())
}

fn upsert_account(ctx: &Ctx<'_, '_>, a: &AccountRow) -> Result<()> {
    ctx.prepare(
        "INSERT INTO accounts (account_id, sf_id, erp_ref, name, tier, body, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (account_id) DO UPDATE SET
                 sf_id = excluded.sf_id, erp_ref = excluded.erp_ref, name = excluded.name,
                 tier = excluded.tier, body = excluded.body, updated_at = excluded.updated_at",
    )
    .map_err(db)?
    .execute(params![
        a.account_id,
        a.sf_id,
        a.erp_ref,
        a.name,
        a.tier,
        text(&a.body),
        micros(a.updated_at),
    ])
    .map_err(db)?;
    Ok(())
}

fn upsert_ref(ctx: &Ctx<'_, '_>, r: &ExternalRef) -> Result<()> {
    ctx.prepare(
        "INSERT INTO refs (value, namespace, order_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (value, namespace) DO UPDATE SET order_id = excluded.order_id
             WHERE refs.order_id <> excluded.order_id",
    )
    .map_err(db)?
    .execute(params![r.value, r.namespace, r.order_id])
    .map_err(db)?;
    Ok(())
}

/// Appends an audit record; returns its id.
pub(crate) fn audit(ctx: &Ctx<'_, '_>, e: &AuditEntry) -> Result<i64> {
    ctx.prepare(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db)?
    .execute(params![
        micros(e.at),
        e.actor,
        e.action,
        e.target,
        text(&e.detail)
    ])
    .map_err(db)?;
    Ok(ctx.conn.last_insert_rowid())
}

fn mark_inbound(
    ctx: &Ctx<'_, '_>,
    id: i64,
    status: InboundStatus,
    error: Option<&str>,
) -> Result<()> {
    let changed = ctx
        .prepare("UPDATE inbox SET status = ?2, error = ?3 WHERE id = ?1")
        .map_err(db)?
        .execute(params![id, status.as_str(), error])
        .map_err(db)?;
    if changed == 0 {
        return Err(Error::NotFound {
            what: "inbound message",
            id: id.to_string(),
        });
    }
    Ok(())
}

/// What accepting an inbound message did.
pub(crate) struct Stored {
    /// The inbox row, new or known.
    pub(crate) accepted: Accepted,
    /// The task it enqueued, if any.
    pub(crate) task_id: Option<i64>,
    /// That task leased for the claim, with its payload as text.
    pub(crate) leased: Option<(Lease, String)>,
}

/// Stores an inbound message and its task (its payload rendered, awaiting the inbox id)
/// unless `(source, message_id)` is known; then leases the task for `claim` if it is ready.
pub(crate) fn accept_inbound(
    ctx: &Ctx<'_, '_>,
    m: &NewInbound,
    body: &str,
    payload: Option<&PayloadAwaitingInboxId>,
    claim: Option<&LeaseRequest>,
) -> Result<Stored> {
    let inserted = ctx
        .prepare(
            "INSERT INTO inbox (source, message_id, kind, key, received_at, raw, body, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')
             ON CONFLICT (source, message_id) DO NOTHING",
        )
        .map_err(db)?
        .execute(params![
            m.source,
            m.message_id,
            m.kind,
            m.key,
            micros(m.received_at),
            m.raw,
            body,
        ])
        .map_err(db)?;
    // Not RETURNING: SQLite buffers its rows in a temporary table, dearer than this.
    let inserted = (inserted == 1).then(|| ctx.conn.last_insert_rowid());
    let Some(id) = inserted else {
        let existing: i64 = ctx
            .prepare("SELECT id FROM inbox WHERE source = ?1 AND message_id = ?2")
            .map_err(db)?
            .query_row(params![m.source, m.message_id], |row| row.get(0))
            .map_err(db)?;
        return Ok(Stored {
            accepted: Accepted::Duplicate(existing),
            task_id: None,
            leased: None,
        });
    };
    let (mut task_id, mut leased) = (None, None);
    if let (Some(task), Some(payload)) = (&m.task, payload) {
        let payload = payload.with(id);
        match enqueue_claiming(ctx, task, &payload, claim)? {
            Enqueued::Collapsed => {}
            Enqueued::Queued(queued) => task_id = Some(queued),
            Enqueued::Leased(lease) => {
                task_id = Some(lease.task.id);
                leased = Some((*lease, payload));
            }
        }
    }
    Ok(Stored {
        accepted: Accepted::New(id),
        task_id,
        leased,
    })
}

/// Saves a subscriber position.
pub(crate) fn save_cursor(
    ctx: &Ctx<'_, '_>,
    name: &str,
    position: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    ctx.prepare(
        "INSERT INTO cursors (name, position, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                                              updated_at = excluded.updated_at",
    )
    .map_err(db)?
    .execute(params![name, position, micros(now)])
    .map_err(db)?;
    Ok(())
}
