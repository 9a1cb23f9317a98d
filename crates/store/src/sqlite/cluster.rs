//! Instance membership on SQLite (see [`crate::cluster`]).

use std::time::Duration;

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use super::rows::{self, db, first, get};
use super::writer::Ctx;
use crate::cluster::{Claim, Member, stale_before};
use crate::codec::{from_micros, micros};
use crate::error::Result;

fn member(row: &Row<'_>) -> Result<Member> {
    Ok(Member {
        name: get(row, 0)?,
        incarnation: get(row, 1)?,
        started_at: from_micros(get(row, 2)?)?,
        heartbeat_at: from_micros(get(row, 3)?)?,
    })
}

pub(crate) fn claim(
    ctx: &Ctx<'_, '_>,
    name: &str,
    incarnation: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Claim> {
    // The writer's transaction holds the database's write lock: no other process claims
    // between the read and the write.
    let current = first(
        &mut *ctx
            .prepare(
                "SELECT name, incarnation, started_at, heartbeat_at FROM instances
                 WHERE name = ?1",
            )
            .map_err(db)?,
        params![name],
        member,
    )?;
    if let Some(holder) = &current
        && holder.incarnation != incarnation
        && holder.heartbeat_at > stale_before(now, lease)
    {
        return Ok(Claim::Held(holder.clone()));
    }
    ctx.prepare(
        "INSERT INTO instances (name, incarnation, started_at, heartbeat_at)
         VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation,
                                          started_at = excluded.started_at,
                                          heartbeat_at = excluded.heartbeat_at",
    )
    .map_err(db)?
    .execute(params![name, incarnation, micros(now)])
    .map_err(db)?;
    Ok(Claim::Claimed {
        replaced: current.filter(|c| c.incarnation != incarnation),
    })
}

pub(crate) fn heartbeat(
    ctx: &Ctx<'_, '_>,
    name: &str,
    incarnation: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = ctx
        .prepare("UPDATE instances SET heartbeat_at = ?3 WHERE name = ?1 AND incarnation = ?2")
        .map_err(db)?
        .execute(params![name, incarnation, micros(now)])
        .map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn release(ctx: &Ctx<'_, '_>, name: &str, incarnation: &str) -> Result<bool> {
    let changed = ctx
        .prepare("DELETE FROM instances WHERE name = ?1 AND incarnation = ?2")
        .map_err(db)?
        .execute(params![name, incarnation])
        .map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Member>> {
    rows::all(
        &mut *conn
            .prepare_cached(
                "SELECT name, incarnation, started_at, heartbeat_at FROM instances ORDER BY name",
            )
            .map_err(db)?,
        [],
        member,
    )
}
