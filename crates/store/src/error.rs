//! Store errors.

/// Result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Optimistic concurrency: the stream moved on since it was read.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    VersionConflict {
        /// Stream.
        stream: String,
        /// Version the writer read.
        expected: i64,
        /// Version in the store.
        actual: i64,
    },
    /// The lease expired and the task was leased again by someone else (or is gone).
    #[error("the lease on task {task} is no longer held")]
    LeaseLost {
        /// Task id.
        task: i64,
    },
    /// A decision bound an external reference that another order holds already.
    #[error(
        "the {system} {kind} {reference} belongs to order {held_by}, not to order {claimed_by}"
    )]
    ReferenceTaken {
        /// System that issued the reference.
        system: String,
        /// What it names there.
        kind: String,
        /// The reference.
        reference: String,
        /// The order it is bound to.
        held_by: String,
        /// The order the refused decision would have bound it to.
        claimed_by: String,
    },
    /// A referenced row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// An operation that the row's state does not allow (e.g. retrying a resolved dead letter).
    #[error("{0}")]
    Invalid(String),
    /// The database failed (I/O, constraint, connection).
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

impl Error {
    /// Coarse kind, for callers that branch on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::VersionConflict { .. } => ErrorKind::Conflict,
            Error::LeaseLost { .. } => ErrorKind::LeaseLost,
            Error::ReferenceTaken { .. } => ErrorKind::ReferenceTaken,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Database(_) | Error::Corrupt(_) | Error::Closed => ErrorKind::Unavailable,
        }
    }
}

/// Coarse error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retry after re-reading.
    Conflict,
    /// Drop the work: someone else owns it now.
    LeaseLost,
    /// No such row.
    NotFound,
    /// An external reference belongs to another order: retrying cannot help.
    ReferenceTaken,
    /// Not allowed in the row's state.
    Invalid,
    /// The database is failing; retry later.
    Unavailable,
}
