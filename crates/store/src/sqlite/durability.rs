//! How far the writer's commits are durable.
//!
//! The writer hands each commit's log sync to its reply thread and goes on with the next
//! transaction (see [`super::writer`]). Between the `COMMIT` and that sync, the commit is
//! visible to the read connections but not yet on disk. Nothing may report it before it is:
//! the writer's callers get their reply after the sync, and a read waits, before it returns,
//! for the syncs of every commit it could have seen.
//!
//! Commits are numbered from 1. A commit takes its number just before its `COMMIT` runs, so
//! a read that saw it finds that number (or a later one) when it ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// Commit numbers taken and made durable, and the failure that stopped them, if any.
pub(crate) struct Durability {
    committed: AtomicU64,
    /// The highest durable commit number: reads wait on it (async), the writer thread
    /// through `changed` (changes are made holding `lock`, so a wake-up is not missed).
    synced: watch::Sender<u64>,
    lock: Mutex<()>,
    changed: Condvar,
    /// Why a log sync failed: no commit after it can be reported durable.
    failure: Mutex<Option<String>>,
}

impl Durability {
    pub(crate) fn new() -> Self {
        Self {
            committed: AtomicU64::new(0),
            synced: watch::Sender::new(0),
            lock: Mutex::new(()),
            changed: Condvar::new(),
            failure: Mutex::new(None),
        }
    }

    /// The number of the commit about to run (call it just before `COMMIT`).
    pub(crate) fn next_commit(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Records that every commit up to `commit` is durable (or failed: made nothing visible).
    pub(crate) fn synced(&self, commit: u64) {
        let guard = self.lock.lock();
        self.synced.send_if_modified(|synced| {
            let moved = commit > *synced;
            *synced = (*synced).max(commit);
            moved
        });
        drop(guard);
        self.changed.notify_all();
    }

    /// Records that a log sync failed, and wakes every wait (they then fail).
    pub(crate) fn fail(&self, reason: &str) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert_with(|| reason.to_owned());
        }
        self.synced(u64::MAX);
    }

    /// Why a log sync failed, if one did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// What a request or a read is told once a log sync has failed.
    pub(crate) fn failure_message(&self) -> Option<String> {
        self.failure().map(|reason| {
            format!("the SQLite log could not be made durable ({reason}); restart the hub")
        })
    }

    /// Whether commit `commit` is durable (or failed).
    pub(crate) fn is_synced(&self, commit: u64) -> bool {
        *self.synced.borrow() >= commit
    }

    /// Whether every commit taken so far is durable (a read would not wait).
    #[cfg(test)]
    pub(crate) fn is_settled(&self) -> bool {
        self.is_synced(self.committed.load(Ordering::SeqCst))
    }

    /// Waits at most `limit` for commit `commit` to be durable (writer thread).
    pub(crate) fn wait_synced(&self, commit: u64, limit: Duration) {
        if let Ok(guard) = self.lock.lock() {
            let _ = self
                .changed
                .wait_timeout_while(guard, limit, |()| !self.is_synced(commit));
        }
    }

    /// Waits until every commit taken so far is durable (call it after a read, before
    /// returning what it found).
    ///
    /// # Errors
    /// A log sync failed: what the read saw may not be durable.
    pub(crate) async fn settled(&self) -> Result<()> {
        let commit = self.committed.load(Ordering::SeqCst);
        if !self.is_synced(commit) {
            let mut synced = self.synced.subscribe();
            // The sender lives as long as `self`.
            let _ = synced.wait_for(|synced| *synced >= commit).await;
        }
        match self.failure_message() {
            Some(message) => Err(Error::Database(message)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Durability;

    #[tokio::test]
    async fn a_read_settles_once_the_commits_it_could_see_are_durable() {
        let durability = Arc::new(Durability::new());
        durability.settled().await.expect("nothing committed yet");
        let first = durability.next_commit();
        let second = durability.next_commit();
        assert_eq!((first, second), (1, 2));
        let waiting = tokio::spawn({
            let durability = Arc::clone(&durability);
            async move { durability.settled().await }
        });
        durability.synced(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "commit 2 is not durable yet");
        assert!(durability.is_synced(first) && !durability.is_synced(second));
        durability.synced(second);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("settled once commit 2 is durable")
            .unwrap()
            .expect("no failure");
        // An older number never moves it back.
        durability.synced(1);
        assert!(durability.is_synced(second), "never goes back");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_the_reads_that_wait_and_every_later_one() {
        let durability = Arc::new(Durability::new());
        durability.next_commit();
        let waiting = tokio::spawn({
            let durability = Arc::clone(&durability);
            async move { durability.settled().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        durability.fail("disk on fire");
        let error = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the failure")
            .unwrap()
            .expect_err("what it saw may not be durable");
        assert!(error.to_string().contains("disk on fire"), "{error}");
        assert!(durability.settled().await.is_err());
        assert_eq!(durability.failure().as_deref(), Some("disk on fire"));
    }

    #[test]
    fn the_writer_waits_for_a_sync_at_most_its_limit() {
        let durability = Durability::new();
        let commit = durability.next_commit();
        let started = std::time::Instant::now();
        durability.wait_synced(commit, Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(20));
        durability.synced(commit);
        let started = std::time::Instant::now();
        durability.wait_synced(commit, Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "already durable"
        );
    }
}
