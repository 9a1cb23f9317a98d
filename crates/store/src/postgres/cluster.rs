//! Instance membership on PostgreSQL (see [`crate::cluster`]).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::failure::db;
use super::rows::get;
use crate::cluster::{Claim, Member, stale_before};
use crate::error::Result;

const COLUMNS: &str = "name, incarnation, started_at, heartbeat_at";

fn member(row: &PgRow) -> Result<Member> {
    Ok(Member {
        name: get(row, 0)?,
        incarnation: get(row, 1)?,
        started_at: get(row, 2)?,
        heartbeat_at: get(row, 3)?,
    })
}

pub(crate) async fn claim(
    pool: &PgPool,
    name: &str,
    incarnation: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Claim> {
    let mut tx = pool.begin().await.map_err(db)?;
    // The row lock keeps the holder seen here the one replaced below.
    let current = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM instances WHERE name = $1 FOR UPDATE"
    ))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?
    .as_ref()
    .map(member)
    .transpose()?;
    // The conditional upsert decides, also against a concurrent first claim of the name
    // (which the SELECT above could not lock).
    let claimed = sqlx::query(
        "INSERT INTO instances (name, incarnation, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation,
                                          started_at = excluded.started_at,
                                          heartbeat_at = excluded.heartbeat_at
         WHERE instances.incarnation = excluded.incarnation OR instances.heartbeat_at <= $4
         RETURNING name",
    )
    .bind(name)
    .bind(incarnation)
    .bind(now)
    .bind(stale_before(now, lease))
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?
    .is_some();
    if claimed {
        tx.commit().await.map_err(db)?;
        return Ok(Claim::Claimed {
            replaced: current.filter(|c| c.incarnation != incarnation),
        });
    }
    let holder = sqlx::query(&format!("SELECT {COLUMNS} FROM instances WHERE name = $1"))
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let holder = member(&holder)?;
    tx.rollback().await.map_err(db)?;
    Ok(Claim::Held(holder))
}

pub(crate) async fn heartbeat(
    pool: &PgPool,
    name: &str,
    incarnation: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed =
        sqlx::query("UPDATE instances SET heartbeat_at = $3 WHERE name = $1 AND incarnation = $2")
            .bind(name)
            .bind(incarnation)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected();
    Ok(changed == 1)
}

pub(crate) async fn release(pool: &PgPool, name: &str, incarnation: &str) -> Result<bool> {
    let changed = sqlx::query("DELETE FROM instances WHERE name = $1 AND incarnation = $2")
        .bind(name)
        .bind(incarnation)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(changed == 1)
}

pub(crate) async fn list(pool: &PgPool) -> Result<Vec<Member>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM instances ORDER BY name"))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(member)
        .collect()
}
