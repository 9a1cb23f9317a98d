//! Failures inside a PostgreSQL transaction: a store error, or a conflict between
//! transactions (deadlock, serialization failure) after which the whole transaction is run
//! again.

use crate::error::Error;

/// How often a transaction is run again after a deadlock or serialization failure.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Why a transaction body failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Give up with this error.
    Store(Error),
    /// PostgreSQL aborted the transaction because of another one; run it again.
    Retry(String),
}

/// Result inside a transaction body.
pub(crate) type PgResult<T> = std::result::Result<T, Failure>;

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Store(error)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && matches!(db.code().as_deref(), Some("40001" | "40P01"))
        {
            return Failure::Retry(db.message().to_owned());
        }
        Failure::Store(db(error))
    }
}

/// A database error as a store error.
pub(crate) fn db(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::Io(e) => Error::Database(format!("PostgreSQL connection failed: {e}")),
        sqlx::Error::PoolTimedOut => {
            Error::Database("no PostgreSQL connection became free in time".into())
        }
        other => Error::Database(other.to_string()),
    }
}

/// Runs `$body` (an expression using `$conn: &mut PgConnection`, with `?` on store and
/// sqlx errors) in a transaction, committing on success and running it again after a
/// deadlock or serialization failure.
///
/// With `locks = ids`, the transaction starts by taking those per-key advisory locks in
/// ascending order, in the same round trip as `BEGIN`.
macro_rules! transaction {
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::postgres::failure::transaction!($store, locks = Vec::new(), $conn => $body)
    };
    ($store:expr, locks = $locks:expr, $conn:ident => $body:expr) => {{
        let begin = $crate::postgres::locks::Locks::begin_statement($locks);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome: $crate::postgres::failure::PgResult<_> = async {
                let mut tx = match &begin {
                    Some(statement) => $store.pool.begin_with(statement.clone()).await?,
                    None => $store.pool.begin().await?,
                };
                let value = {
                    let $conn: &mut sqlx::PgConnection = &mut tx;
                    $body
                };
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Ok(value) => break Ok(value),
                Err($crate::postgres::failure::Failure::Retry(message))
                    if attempt < $crate::postgres::failure::MAX_ATTEMPTS =>
                {
                    tracing::debug!(attempt, %message, "PostgreSQL transaction conflict; running it again");
                }
                Err($crate::postgres::failure::Failure::Retry(message)) => {
                    break Err($crate::error::Error::Database(format!(
                        "gave up after {attempt} conflicting attempts: {message}"
                    )));
                }
                Err($crate::postgres::failure::Failure::Store(error)) => break Err(error),
            }
        }
    }};
}

pub(crate) use transaction;
