//! Decisions, inbound messages, cursors, timeline and audit writes on PostgreSQL (inside a
//! transaction; the caller holds the key locks of the decision's tasks).

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::failure::PgResult;
use super::locks::Locks;
use super::queue::{claim, enqueue};
use crate::codec::with_inbox_id;
use crate::error::Error;
use crate::{
    Accepted, AccountRow, AuditEntry, Binding, Committed, Decision, ExternalRef, InboundStatus,
    InventoryRow, Lease, LeaseRequest, NewInbound, OrderRow, StreamAppend, SyncMark, TimelineEntry,
};

/// Applies every write of `decision`. Events are appended last, in one statement that
/// also claims the stream version and takes the event log barrier: the stream row and the
/// barrier are held only from then to commit, and a version conflict rolls back the rest.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    locks: &Locks,
    decision: &Decision,
) -> PgResult<Committed> {
    let mut committed = Committed::default();
    if let Some(append) = decision.append.as_ref().filter(|a| a.events.is_empty()) {
        committed.version = Some(claim_versions(conn, append).await?);
    }
    let mut lanes = Vec::with_capacity(decision.tasks.len());
    for task in &decision.tasks {
        if let Some(id) = enqueue(&mut *conn, task).await? {
            committed.task_ids.push(id);
            lanes.push(task.lane.as_str());
        }
    }
    if let Some(order) = &decision.order {
        upsert_order(conn, order).await?;
    }
    for mark in &decision.synced {
        mark_synced(conn, mark).await?;
    }
    // Sorted, so two decisions touching the same rows lock them in the same order.
    let mut inventory: Vec<&InventoryRow> = decision.inventory.iter().collect();
    inventory.sort_by(|a, b| (&a.sku, &a.location).cmp(&(&b.sku, &b.location)));
    for row in inventory {
        upsert_inventory(conn, row).await?;
    }
    let mut accounts: Vec<&AccountRow> = decision.accounts.iter().collect();
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    for account in accounts {
        upsert_account(conn, account).await?;
    }
    let mut refs: Vec<&ExternalRef> = decision.refs.iter().collect();
    refs.sort_by(|a, b| (&a.value, &a.namespace).cmp(&(&b.value, &b.namespace)));
    for reference in refs {
        upsert_ref(conn, reference).await?;
    }
    let mut bind: Vec<&Binding> = decision.bind.iter().collect();
    bind.sort();
    for binding in bind {
        bind_reference(conn, binding).await?;
    }
    append_timeline(conn, &decision.timeline).await?;
    for entry in &decision.audit {
        audit(conn, entry).await?;
    }
    if let Some((id, status, error)) = &decision.inbound {
        mark_inbound(conn, *id, *status, error.as_deref()).await?;
    }
    if let Some((order_id, kind)) = &decision.auto_resolve {
        committed.auto_resolved = super::dead::auto_resolve(conn, locks, order_id, kind).await?;
    }
    if let Some(append) = decision.append.as_ref().filter(|a| !a.events.is_empty()) {
        let (version, seqs) = append_events(conn, locks, append).await?;
        committed.version = Some(version);
        committed.event_seqs = seqs;
    }
    for request in &decision.claim {
        let ids: Vec<i64> = committed
            .task_ids
            .iter()
            .zip(&lanes)
            .filter(|&(_, lane)| *lane == request.lane)
            .map(|(&id, _)| id)
            .collect();
        let leased = claim(conn, request, &ids).await?;
        committed.leased.extend(leased);
    }
    Ok(committed)
}

/// Checks the stream's version for an append without events, locking the stream row (if
/// any) until commit.
async fn claim_versions(conn: &mut PgConnection, append: &StreamAppend) -> PgResult<i64> {
    let actual: Option<i64> =
        sqlx::query_scalar("SELECT version FROM streams WHERE stream = $1 FOR UPDATE")
            .bind(&append.stream)
            .fetch_optional(&mut *conn)
            .await?;
    let actual = actual.unwrap_or(0);
    if actual != append.expected_version {
        return Err(Error::VersionConflict {
            stream: append.stream.clone(),
            expected: append.expected_version,
            actual,
        }
        .into());
    }
    Ok(actual)
}

/// Claims versions `expected + 1 ..= expected + n` of the stream and inserts the events, in
/// one statement. The claim updates (or creates) the `streams` row only if it is still at
/// the expected version, locking it until commit: a concurrent writer at the same version
/// waits, then finds the version moved and inserts nothing. The shared event log barrier is
/// taken before any position is drawn (the rows to insert come from the join with it).
async fn append_events(
    conn: &mut PgConnection,
    locks: &Locks,
    append: &StreamAppend,
) -> PgResult<(i64, Vec<i64>)> {
    let n = i64::try_from(append.events.len()).unwrap_or(i64::MAX);
    let target = append.expected_version.saturating_add(n);
    let barrier = locks.event_log();
    let claim = if append.expected_version == 0 {
        "INSERT INTO streams (stream, version) VALUES ($1, $10)
         ON CONFLICT (stream) DO NOTHING RETURNING version"
    } else {
        "UPDATE streams SET version = $10 WHERE stream = $1 AND version = $2 RETURNING version"
    };
    let kinds: Vec<&str> = append.events.iter().map(|e| e.kind.as_str()).collect();
    let payloads: Vec<&str> = append.events.iter().map(|e| e.payload.as_str()).collect();
    let occurred: Vec<OffsetDateTime> = append.events.iter().map(|e| e.occurred_at).collect();
    let causations: Vec<Option<&str>> = append
        .events
        .iter()
        .map(|e| e.causation.as_deref())
        .collect();
    let correlations: Vec<Option<&str>> = append
        .events
        .iter()
        .map(|e| e.correlation.as_deref())
        .collect();
    let mut rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "WITH claim AS ({claim})
         INSERT INTO events (stream, version, kind, payload, occurred_at, recorded_at,
                             causation, correlation)
         SELECT $1, $2 + u.n, u.kind, u.payload::jsonb, u.occurred_at, now(), u.causation,
                u.correlation
         FROM claim,
              (SELECT pg_advisory_xact_lock_shared($8, $9)) AS barrier,
              unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])
              WITH ORDINALITY AS u(kind, payload, occurred_at, causation, correlation, n)
         ORDER BY u.n
         RETURNING version, global_seq"
    ))
    .bind(&append.stream)
    .bind(append.expected_version)
    .bind(kinds)
    .bind(payloads)
    .bind(occurred)
    .bind(causations)
    .bind(correlations)
    .bind(barrier.0)
    .bind(barrier.1)
    .bind(target)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        let actual: Option<i64> =
            sqlx::query_scalar("SELECT version FROM streams WHERE stream = $1")
                .bind(&append.stream)
                .fetch_optional(conn)
                .await?;
        return Err(Error::VersionConflict {
            stream: append.stream.clone(),
            expected: append.expected_version,
            actual: actual.unwrap_or(0),
        }
        .into());
    }
    rows.sort_unstable();
    Ok((target, rows.into_iter().map(|(_, seq)| seq).collect()))
}

async fn upsert_order(conn: &mut PgConnection, o: &OrderRow) -> PgResult<()> {
    // A row never goes back to an older version; the Salesforce confirmation columns only
    // move forward (they are normally set by sync marks).
    sqlx::query(
        "INSERT INTO orders AS o (order_id, sf_id, sf_number, erp_ref, account, channel, status,
                                  total, currency, captured_at, booked_at, shipped_at,
                                  delivered_at, invoiced_at, paid_at, ended_at, updated_at,
                                  version, body, sf_synced_status, sf_synced_version,
                                  sf_synced_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22)
         ON CONFLICT (order_id) DO UPDATE SET
             sf_id = excluded.sf_id, sf_number = excluded.sf_number, erp_ref = excluded.erp_ref,
             account = excluded.account, channel = excluded.channel, status = excluded.status,
             total = excluded.total, currency = excluded.currency,
             captured_at = excluded.captured_at, booked_at = excluded.booked_at,
             shipped_at = excluded.shipped_at, delivered_at = excluded.delivered_at,
             invoiced_at = excluded.invoiced_at, paid_at = excluded.paid_at,
             ended_at = excluded.ended_at, updated_at = excluded.updated_at,
             version = excluded.version, body = excluded.body,
             sf_synced_status = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                          > coalesce(o.sf_synced_version, -1)
                                     THEN excluded.sf_synced_status ELSE o.sf_synced_status END,
             sf_synced_at = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                      > coalesce(o.sf_synced_version, -1)
                                 THEN excluded.sf_synced_at ELSE o.sf_synced_at END,
             sf_synced_version = CASE WHEN coalesce(excluded.sf_synced_version, -1)
                                           > coalesce(o.sf_synced_version, -1)
                                      THEN excluded.sf_synced_version
                                      ELSE o.sf_synced_version END
         WHERE excluded.version >= o.version",
    )
    .bind(&o.order_id)
    .bind(&o.sf_id)
    .bind(&o.sf_number)
    .bind(&o.erp_ref)
    .bind(&o.account)
    .bind(&o.channel)
    .bind(&o.status)
    .bind(&o.total)
    .bind(&o.currency)
    .bind(o.captured_at)
    .bind(o.booked_at)
    .bind(o.shipped_at)
    .bind(o.delivered_at)
    .bind(o.invoiced_at)
    .bind(o.paid_at)
    .bind(o.ended_at)
    .bind(o.updated_at)
    .bind(o.version)
    .bind(sqlx::types::Json(&o.body))
    .bind(&o.sf_synced_status)
    .bind(o.sf_synced_version)
    .bind(o.sf_synced_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn mark_synced(conn: &mut PgConnection, mark: &SyncMark) -> PgResult<()> {
    sqlx::query(
        "UPDATE orders SET sf_synced_status = $2, sf_synced_version = $3, sf_synced_at = $4
         WHERE order_id = $1 AND (sf_synced_version IS NULL OR sf_synced_version <= $3)",
    )
    .bind(&mark.order_id)
    .bind(&mark.status)
    .bind(mark.version)
    .bind(mark.at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_inventory(conn: &mut PgConnection, row: &InventoryRow) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO inventory AS i (sku, location, on_hand, reserved, available, as_of, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (sku, location) DO UPDATE SET
             on_hand = excluded.on_hand, reserved = excluded.reserved,
             available = excluded.available, as_of = excluded.as_of,
             updated_at = excluded.updated_at
         WHERE excluded.as_of >= i.as_of",
    )
    .bind(&row.sku)
    .bind(&row.location)
    .bind(row.on_hand)
    .bind(row.reserved)
    .bind(row.available)
    .bind(row.as_of)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_account(conn: &mut PgConnection, a: &AccountRow) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO accounts (account_id, sf_id, erp_ref, name, tier, body, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id) DO UPDATE SET
             sf_id = excluded.sf_id, erp_ref = excluded.erp_ref, name = excluded.name,
             tier = excluded.tier, body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(&a.account_id)
    .bind(&a.sf_id)
    .bind(&a.erp_ref)
    .bind(&a.name)
    .bind(&a.tier)
    .bind(&a.body)
    .bind(a.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_ref(conn: &mut PgConnection, r: &ExternalRef) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO refs AS r (value, namespace, order_id) VALUES ($1, $2, $3)
         ON CONFLICT (value, namespace) DO UPDATE SET order_id = excluded.order_id
         WHERE r.order_id <> excluded.order_id",
    )
    .bind(&r.value)
    .bind(&r.namespace)
    .bind(&r.order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Binds a reference to its order, or fails with [`Error::ReferenceTaken`] when another
/// order holds it (the transaction then rolls back). A concurrent binding of the same
/// reference waits on the key until the other transaction ends, and then sees its row.
async fn bind_reference(conn: &mut PgConnection, b: &Binding) -> PgResult<()> {
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO external_refs (system, kind, reference, order_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (system, kind, reference) DO NOTHING RETURNING 1",
    )
    .bind(&b.system)
    .bind(&b.kind)
    .bind(&b.reference)
    .bind(&b.order_id)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(());
    }
    let held = bound(&mut *conn, &b.system, &b.kind, &b.reference).await?;
    match held {
        Some(held_by) if held_by != b.order_id => Err(Error::ReferenceTaken {
            system: b.system.clone(),
            kind: b.kind.clone(),
            reference: b.reference.clone(),
            held_by,
            claimed_by: b.order_id.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The order a reference is bound to.
pub(crate) async fn bound<'c, E: sqlx::PgExecutor<'c>>(
    conn: E,
    system: &str,
    kind: &str,
    reference: &str,
) -> PgResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT order_id FROM external_refs WHERE system = $1 AND kind = $2 AND reference = $3",
    )
    .bind(system)
    .bind(kind)
    .bind(reference)
    .fetch_optional(conn)
    .await?)
}

/// Appends timeline entries (one statement, in order).
pub(crate) async fn append_timeline(
    conn: &mut PgConnection,
    entries: &[TimelineEntry],
) -> PgResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&TimelineEntry) -> Option<&str>| -> Vec<Option<&str>> {
        entries.iter().map(f).collect()
    };
    sqlx::query(
        "INSERT INTO timeline (order_id, at, kind, summary, detail, system, outcome, latency_ms,
                               correlation)
         SELECT order_id, at, kind, summary, detail, system, outcome, latency_ms, correlation
         FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[],
                              $5::jsonb[], $6::text[], $7::text[], $8::int8[], $9::text[])
              WITH ORDINALITY AS u(order_id, at, kind, summary, detail, system, outcome,
                                   latency_ms, correlation, n)
         ORDER BY n",
    )
    .bind(column(|e| Some(e.order_id.as_str())))
    .bind(entries.iter().map(|e| e.at).collect::<Vec<_>>())
    .bind(column(|e| Some(e.kind.as_str())))
    .bind(column(|e| Some(e.summary.as_str())))
    .bind(entries.iter().map(|e| &e.detail).collect::<Vec<_>>())
    .bind(column(|e| e.system.as_deref()))
    .bind(column(|e| e.outcome.as_deref()))
    .bind(entries.iter().map(|e| e.latency_ms).collect::<Vec<_>>())
    .bind(column(|e| e.correlation.as_deref()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends an audit record; returns its id.
pub(crate) async fn audit(conn: &mut PgConnection, e: &AuditEntry) -> PgResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.detail)
    .fetch_one(conn)
    .await?)
}

async fn mark_inbound(
    conn: &mut PgConnection,
    id: i64,
    status: InboundStatus,
    error: Option<&str>,
) -> PgResult<()> {
    let changed = sqlx::query("UPDATE inbox SET status = $2, error = $3 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .execute(conn)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(Error::NotFound {
            what: "inbound message",
            id: id.to_string(),
        }
        .into());
    }
    Ok(())
}

/// Stores an inbound message and its task unless `(source, message_id)` is known. The
/// caller holds the locks of the task's key and dedupe value.
/// Then leases the task for `claim` if it is ready.
pub(crate) async fn accept_inbound(
    conn: &mut PgConnection,
    m: &NewInbound,
    claim: Option<&LeaseRequest>,
) -> PgResult<(Accepted, Option<Lease>)> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO inbox (source, message_id, kind, key, received_at, raw, body, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')
         ON CONFLICT (source, message_id) DO NOTHING
         RETURNING id",
    )
    .bind(&m.source)
    .bind(&m.message_id)
    .bind(&m.kind)
    .bind(&m.key)
    .bind(m.received_at)
    .bind(&m.raw)
    .bind(&m.body)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = inserted else {
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM inbox WHERE source = $1 AND message_id = $2")
                .bind(&m.source)
                .bind(&m.message_id)
                .fetch_optional(&mut *conn)
                .await?;
        // Not visible only if the row that blocked the insert was rolled back meanwhile:
        // run the transaction again.
        return match existing {
            Some(existing) => Ok((Accepted::Duplicate(existing), None)),
            None => Err(super::failure::Failure::Retry(
                "the conflicting inbound row disappeared".into(),
            )),
        };
    };
    let mut leased = None;
    if let Some(task) = &m.task {
        let mut task = task.clone();
        task.payload = with_inbox_id(std::mem::take(&mut task.payload), id)?;
        let task_id = enqueue(&mut *conn, &task).await?;
        if let (Some(task_id), Some(claim)) = (task_id, claim) {
            leased = super::queue::claim(conn, claim, &[task_id]).await?.pop();
        }
    }
    Ok((Accepted::New(id), leased))
}

/// Saves a subscriber position.
pub(crate) async fn save_cursor(
    conn: &mut PgConnection,
    name: &str,
    position: &str,
    now: OffsetDateTime,
) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO cursors (name, position, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                                          updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(position)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
