//! Order timelines on SQLite, grouped: the entries one write adds to one order's timeline
//! share a row (see `migrations/sqlite/0004_timeline_groups.sql`). A lifecycle step adds
//! two or three entries (the message received, the events, the attempt); one row and one
//! index entry per step instead of one per entry is less work for the single writer, and
//! the entries keep the ids, and the order, that one row each would have given them.

use std::borrow::Cow;

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use super::rows::{db, get};
use super::writer::Ctx;
use crate::codec::{from_micros, json, micros, text};
use crate::error::{Error, Result};
use crate::{StoredTimelineEntry, TimelineEntry};

/// Consecutive entries of one order, rendered off the writer thread: the first entry's
/// detail, and the others as the row's `more` document.
pub(crate) struct Group {
    start: usize,
    len: usize,
    detail: String,
    more: Option<String>,
}

/// An entry after the first of its row, as `more` holds it.
#[derive(Serialize, Deserialize)]
struct Packed<'a> {
    at: i64,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    summary: Cow<'a, str>,
    detail: Cow<'a, serde_json::Value>,
    #[serde(borrow)]
    system: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Option<Cow<'a, str>>,
    latency_ms: Option<i64>,
    #[serde(borrow)]
    correlation: Option<Cow<'a, str>>,
}

/// Groups `entries` (runs of the same order) and renders their documents.
pub(crate) fn render(entries: &[TimelineEntry]) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let order = &entries[start].order_id;
        let len = entries[start..]
            .iter()
            .take_while(|e| &e.order_id == order)
            .count();
        let rest = &entries[start + 1..start + len];
        let more = (!rest.is_empty()).then(|| {
            let packed: Vec<Packed<'_>> = rest.iter().map(packed).collect();
            serde_json::to_string(&packed).unwrap_or_default()
        });
        groups.push(Group {
            start,
            len,
            detail: text(&entries[start].detail),
            more,
        });
        start += len;
    }
    groups
}

fn packed(e: &TimelineEntry) -> Packed<'_> {
    Packed {
        at: micros(e.at),
        kind: e.kind.as_str().into(),
        summary: e.summary.as_str().into(),
        detail: Cow::Borrowed(&e.detail),
        system: e.system.as_deref().map(Into::into),
        outcome: e.outcome.as_deref().map(Into::into),
        latency_ms: e.latency_ms,
        correlation: e.correlation.as_deref().map(Into::into),
    }
}

/// Appends `entries`, rendered as `groups` by [`render`].
pub(crate) fn append(ctx: &Ctx<'_, '_>, entries: &[TimelineEntry], groups: &[Group]) -> Result<()> {
    for group in groups {
        let e = &entries[group.start];
        // A group of n entries takes the id the last of n single rows would have had.
        let n = i64::try_from(group.len).unwrap_or(i64::MAX);
        ctx.prepare(
            "INSERT INTO timeline (id, order_id, at, kind, summary, detail, system, outcome,
                                       latency_ms, correlation, more)
                 VALUES ((SELECT coalesce(max(id), 0) FROM timeline) + ?1,
                         ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(db)?
        .execute(params![
            n,
            e.order_id,
            micros(e.at),
            e.kind,
            e.summary,
            group.detail,
            e.system,
            e.outcome,
            e.latency_ms,
            e.correlation,
            group.more,
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// An order's timeline, oldest first.
pub(crate) fn read(conn: &Connection, order_id: &str) -> Result<Vec<StoredTimelineEntry>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, order_id, at, kind, summary, detail, system, outcome, latency_ms,
                    correlation, more
             FROM timeline WHERE order_id = ?1 ORDER BY id",
        )
        .map_err(db)?;
    let mut rows = stmt.query([order_id]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        expand(row, &mut out)?;
    }
    Ok(out)
}

/// The entries of one row, in order, with their ids.
fn expand(row: &Row<'_>, out: &mut Vec<StoredTimelineEntry>) -> Result<()> {
    let last_id: i64 = get(row, 0)?;
    let order_id: String = get(row, 1)?;
    let more: Option<String> = get(row, 10)?;
    let more: Vec<Packed<'_>> = match &more {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Error::Corrupt(format!("timeline row {last_id}: {e}")))?,
        None => Vec::new(),
    };
    let first_id = last_id - i64::try_from(more.len()).unwrap_or(i64::MAX);
    out.push(StoredTimelineEntry {
        id: first_id,
        entry: TimelineEntry {
            order_id: order_id.clone(),
            at: from_micros(get(row, 2)?)?,
            kind: get(row, 3)?,
            summary: get(row, 4)?,
            detail: json(&get::<String>(row, 5)?, "timeline detail")?,
            system: get(row, 6)?,
            outcome: get(row, 7)?,
            latency_ms: get(row, 8)?,
            correlation: get(row, 9)?,
        },
    });
    for (id, p) in (first_id + 1..).zip(more) {
        out.push(StoredTimelineEntry {
            id,
            entry: TimelineEntry {
                order_id: order_id.clone(),
                at: from_micros(p.at)?,
                kind: p.kind.into_owned(),
                summary: p.summary.into_owned(),
                detail: p.detail.into_owned(),
                system: p.system.map(Cow::into_owned),
                outcome: p.outcome.map(Cow::into_owned),
                latency_ms: p.latency_ms,
                correlation: p.correlation.map(Cow::into_owned),
            },
        });
    }
    Ok(())
}
