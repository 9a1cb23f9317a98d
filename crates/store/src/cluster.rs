//! Instance membership: one live process per hub instance name.
//!
//! A process claims its name (`hub.instance`) with a fresh incarnation id when it starts,
//! heartbeats while it runs and releases the claim when it stops. A claim whose heartbeat is
//! younger than the lease belongs to a live process and is refused to anyone else; an older
//! one is stale (its process died or froze) and is taken over. Times come from the caller.

use std::time::Duration;

use time::OffsetDateTime;

/// A claimed instance name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The instance name (`hub.instance`).
    pub name: String,
    /// The process holding it: a fresh id per start.
    pub incarnation: String,
    /// When this incarnation claimed the name.
    pub started_at: OffsetDateTime,
    /// Its latest heartbeat.
    pub heartbeat_at: OffsetDateTime,
}

impl Member {
    /// How long ago its latest heartbeat was, at `now` (zero for a heartbeat in the future).
    #[must_use]
    pub fn heartbeat_age(&self, now: OffsetDateTime) -> Duration {
        Duration::try_from(now - self.heartbeat_at).unwrap_or(Duration::ZERO)
    }
}

/// The outcome of [`Store::claim_instance`](crate::Store::claim_instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The name is ours; `replaced` is the stale claim taken over, if there was one.
    Claimed {
        /// The former holder, whose heartbeat was at least a lease old.
        replaced: Option<Member>,
    },
    /// Another live incarnation holds the name (heartbeat younger than the lease): nothing
    /// was written.
    Held(Member),
}

/// The time before which a heartbeat is stale, for a lease of `lease` at `now`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stale_before(now: OffsetDateTime, lease: Duration) -> OffsetDateTime {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
