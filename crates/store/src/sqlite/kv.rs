//! Small keyed records on SQLite.

use rusqlite::{Connection, params};

use super::rows::{self, db, first, get};
use super::writer::Ctx;
use crate::codec::{json, micros, text};
use crate::error::Result;

pub(crate) fn get_value(
    conn: &Connection,
    namespace: &str,
    key: &str,
) -> Result<Option<serde_json::Value>> {
    first(
        &mut *conn
            .prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
            .map_err(db)?,
        params![namespace, key],
        |row| json(&get::<String>(row, 0)?, "record"),
    )
}

pub(crate) fn insert(
    ctx: &Ctx<'_, '_>,
    namespace: &str,
    key: &str,
    value: &serde_json::Value,
    now: time::OffsetDateTime,
) -> Result<bool> {
    let changed = ctx
        .prepare(
            "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, key) DO NOTHING",
        )
        .map_err(db)?
        .execute(params![namespace, key, text(value), micros(now)])
        .map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn put(
    ctx: &Ctx<'_, '_>,
    namespace: &str,
    key: &str,
    value: &serde_json::Value,
    now: time::OffsetDateTime,
) -> Result<()> {
    ctx.prepare(
        "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                                                        updated_at = excluded.updated_at",
    )
    .map_err(db)?
    .execute(params![namespace, key, text(value), micros(now)])
    .map_err(db)?;
    Ok(())
}

pub(crate) fn list(
    conn: &Connection,
    namespace: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, serde_json::Value)>> {
    // Keys with the prefix are contiguous from the first key >= prefix (binary order), so
    // one index range scan finds them; the first key without it ends the list.
    let found = rows::all(
        &mut *conn
            .prepare_cached(
                "SELECT key, value FROM kv WHERE namespace = ?1 AND key >= ?2
                 ORDER BY key LIMIT ?3",
            )
            .map_err(db)?,
        params![namespace, prefix, super::reads::limit(limit)],
        |row| Ok((get::<String>(row, 0)?, get::<String>(row, 1)?)),
    )?;
    found
        .into_iter()
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(key, value)| Ok((key, json(&value, "record")?)))
        .collect()
}

pub(crate) fn delete(ctx: &Ctx<'_, '_>, namespace: &str, key: &str) -> Result<bool> {
    let changed = ctx
        .prepare("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
        .map_err(db)?
        .execute(params![namespace, key])
        .map_err(db)?;
    Ok(changed == 1)
}
