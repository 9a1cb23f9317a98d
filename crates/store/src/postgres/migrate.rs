//! Schema migrations: SQL files embedded in the binary, applied in order at open, each in
//! its own transaction, recorded in `schema_migrations`. A session advisory lock makes
//! processes that open the same schema at once take turns.

use sqlx::{Connection, Executor, PgConnection};

use super::failure::db;
use super::locks::Locks;
use crate::error::{Error, Result};

/// `(version, name, SQL)`, in order.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "external reference bindings",
        include_str!("../../migrations/postgres/0002_external_refs.sql"),
    ),
    (
        3,
        "instance membership",
        include_str!("../../migrations/postgres/0003_instances.sql"),
    ),
];

/// Runs SQL text (several statements allowed: no parameters, simple query protocol).
pub(crate) async fn batch(conn: &mut PgConnection, sql: &str) -> sqlx::Result<()> {
    conn.execute(sql).await.map(|_| ())
}

/// Creates the schema if needed and brings it up to date.
///
/// # Errors
/// A failing migration (rolled back), or a schema migrated by a newer build.
pub(crate) async fn migrate(
    conn: &mut PgConnection,
    schema: Option<&str>,
    locks: &Locks,
) -> Result<()> {
    locks.lock_migrations(conn).await.map_err(db)?;
    let outcome = apply(conn, schema).await;
    let unlocked = locks.unlock_migrations(conn).await.map_err(db);
    outcome.and(unlocked)
}

async fn apply(conn: &mut PgConnection, schema: Option<&str>) -> Result<()> {
    if let Some(schema) = schema {
        // The name was checked to be a plain identifier.
        batch(conn, &format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(db)?;
    }
    batch(
        conn,
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    bigint PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let latest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    let newest: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if newest.unwrap_or(0) > latest_known {
        return Err(Error::Invalid(format!(
            "the database schema is at version {} but this build knows only up to {latest_known}",
            newest.unwrap_or(0)
        )));
    }
    for &(version, name, sql) in MIGRATIONS {
        if newest.is_some_and(|n| n >= version) {
            continue;
        }
        let mut tx = conn.begin().await.map_err(db)?;
        batch(&mut tx, sql)
            .await
            .map_err(|e| Error::Database(format!("migration {version} ({name}) failed: {e}")))?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    Ok(())
}
