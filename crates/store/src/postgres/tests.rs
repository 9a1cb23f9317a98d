//! PostgreSQL-specific checks: schemas, concurrent opening, several processes sharing one
//! database, unreachable servers, and the lease plan.

use std::sync::Arc;

use sqlx::{Connection, PgConnection};

use super::{PgStore, drop_schema, migrate};
use crate::conformance::harness::postgres_url;
use crate::conformance::queue::workers_never_overlap_on_a_key;
use crate::{SharedStore, Store};

fn location(schema: &str) -> String {
    format!("{}?schema={schema}&pool_size=4", postgres_url())
}

fn fresh_schema() -> String {
    format!("t_{}", crate::random_suffix())
}

/// Runs `check` with a fresh schema name, then drops the schema (also when `check` fails).
async fn with_schema<F, Fut>(check: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let schema = fresh_schema();
    let outcome = tokio::spawn(check(schema.clone())).await;
    drop_schema(&postgres_url(), &schema).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn admin() -> PgConnection {
    PgConnection::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} does not answer ({e}); start it with scripts/setup/services.sh",
                postgres_url()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_opening_one_schema_at_once_migrate_it_once() {
    with_schema(opening_at_once).await;
}

async fn opening_at_once(schema: String) {
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let location = location(&schema);
        opens.spawn(async move { PgStore::connect(&location).await });
    }
    let mut stores = Vec::new();
    while let Some(opened) = opens.join_next().await {
        stores.push(opened.unwrap().expect("every open succeeds"));
    }
    let mut conn = admin().await;
    let versions: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        versions,
        migrate::MIGRATIONS.iter().map(|m| m.0).collect::<Vec<_>>()
    );
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1
         ORDER BY table_name",
    )
    .bind(&schema)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "accounts",
            "audit",
            "cursors",
            "dead_letters",
            "events",
            "external_refs",
            "inbox",
            "instances",
            "inventory",
            "kv",
            "orders",
            "refs",
            "schema_migrations",
            "streams",
            "tasks",
            "timeline"
        ],
        "every table lives in the schema"
    );
    for store in &stores {
        assert_eq!(store.schema(), schema);
        store.close().await;
    }
    drop_schema(&postgres_url(), &schema).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(&schema)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hub_processes_never_lease_one_key_twice() {
    with_schema(two_processes).await;
}

async fn two_processes(schema: String) {
    let first: SharedStore = Arc::new(PgStore::connect(&location(&schema)).await.unwrap());
    let second: SharedStore = Arc::new(PgStore::connect(&location(&schema)).await.unwrap());
    workers_never_overlap_on_a_key(vec![first.clone(), second.clone()]).await;
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn unreachable_servers_and_bad_schemas_give_errors() {
    let err = crate::open("postgres://postgres@127.0.0.1:1/test?schema=t_x")
        .await
        .err()
        .expect("no server on port 1");
    assert_eq!(err.kind(), crate::ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let err = crate::open(&format!("{}?schema=drop;table", postgres_url()))
        .await
        .err()
        .expect("bad schema name");
    assert_eq!(err.kind(), crate::ErrorKind::Invalid);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    with_schema(newer_schema_refused).await;
}

async fn newer_schema_refused(schema: String) {
    let store = PgStore::connect(&location(&schema)).await.unwrap();
    store.close().await;
    let mut conn = admin().await;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".schema_migrations (version, name) VALUES (999, 'future')"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let err = PgStore::connect(&location(&schema))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{err}");
}

#[tokio::test]
async fn lease_scans_only_ready_heads() {
    with_schema(lease_plan).await;
}

async fn lease_plan(schema: String) {
    let store = PgStore::connect(&location(&schema)).await.unwrap();
    let mut conn = admin().await;
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    // Enough rows that an index beats a sequential scan.
    sqlx::query(
        "INSERT INTO tasks (lane, kind, key, idempotency_key, payload, due_at, attempts, blocking,
                            created_at, state, head, ready_at)
         SELECT 'erp', 'book', 'k' || (n % 1000), 'i' || n, '{}', now(), 0, true, now(),
                'pending', n < 1000, now()
         FROM generate_series(0, 49999) AS n",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE tasks")
        .execute(&mut conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT t.id FROM tasks AS t
         WHERE t.lane = 'erp' AND t.head AND t.ready_at <= now()
           AND NOT EXISTS (SELECT 1 FROM tasks AS o WHERE o.key = t.key AND o.state = 'leased'
                             AND o.ready_at > now() AND o.id <> t.id)
         ORDER BY t.ready_at, t.id LIMIT 64 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("tasks_ready"), "{plan}");
    assert!(plan.contains("tasks_leased_by_key"), "{plan}");
    store.close().await;
}
