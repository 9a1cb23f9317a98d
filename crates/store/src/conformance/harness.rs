//! Fresh stores for tests: a temporary SQLite file, or a temporary PostgreSQL schema.

use std::future::Future;
use std::path::PathBuf;

use crate::SharedStore;

/// PostgreSQL the tests use unless `CROSSDOCK_TEST_POSTGRES` names another.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL tests use.
pub fn postgres_url() -> String {
    std::env::var("CROSSDOCK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

enum Scratch {
    Dir(PathBuf),
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Schema(String),
}

/// A store that exists for one test; [`TestStore::finish`] closes and deletes it.
pub struct TestStore {
    /// The store.
    pub store: SharedStore,
    scratch: Scratch,
}

impl TestStore {
    /// A migrated SQLite store in a fresh temporary directory.
    ///
    /// # Panics
    /// When the file cannot be created.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("crossdock-store-{}", crate::random_suffix()));
        let path = dir.join("nested").join("store.db");
        let store = crate::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap_or_else(|e| panic!("cannot open a SQLite store at {}: {e}", path.display()));
        Self {
            store,
            scratch: Scratch::Dir(dir),
        }
    }

    /// A migrated PostgreSQL store in a fresh schema `t_<random>`.
    ///
    /// # Panics
    /// When PostgreSQL does not answer (start it with `scripts/setup/services.sh`) or the
    /// build lacks the `postgres` feature.
    pub async fn postgres() -> Self {
        #[cfg(feature = "postgres")]
        {
            let schema = format!("t_{}", crate::random_suffix());
            let url = postgres_url();
            let separator = if url.contains('?') { '&' } else { '?' };
            let location = format!("{url}{separator}schema={schema}&pool_size=8");
            let store = crate::open(&location).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {url} is not usable: {e}. \
                     Start it with scripts/setup/services.sh (or set CROSSDOCK_TEST_POSTGRES)"
                )
            });
            Self {
                store,
                scratch: Scratch::Schema(schema),
            }
        }
        #[cfg(not(feature = "postgres"))]
        panic!("this build has no PostgreSQL store: enable the `postgres` feature")
    }

    /// Closes the store and deletes its file or schema.
    pub async fn finish(self) {
        self.store.close().await;
        match self.scratch {
            Scratch::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Scratch::Schema(schema) => {
                #[cfg(feature = "postgres")]
                if let Err(e) = crate::postgres::drop_schema(&postgres_url(), &schema).await {
                    eprintln!("could not drop test schema {schema}: {e}");
                }
                #[cfg(not(feature = "postgres"))]
                let _ = schema;
            }
        }
    }
}

async fn run<F, Fut>(store: TestStore, case: F)
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(case(store.store.clone())).await;
    store.finish().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the case did not finish: {e}"),
        }
    }
}

/// Runs `case` on a fresh SQLite store, then deletes it (also when the case fails).
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run(TestStore::sqlite().await, case).await;
}

/// Runs `case` on a fresh PostgreSQL schema, then drops it (also when the case fails).
pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run(TestStore::postgres().await, case).await;
}
