//! The order-state cache: the folded state of recently active orders, so that a step does not
//! read and decode the order's whole event stream again.
//!
//! Rules that keep it from ever deciding on old state:
//! - A task's new state is *staged* before its decision goes to the store; while any
//!   decision of an order is in flight the cache answers nothing for it (a step then reads
//!   the store), and the staged state enters the cache only once its commit succeeded.
//! - The engine remembers which version of the order each lease read, and every decision of
//!   that lease asserts it when it commits (an append with no events is a pure check). With
//!   other writers (a second hub on the same store, `reconcile --heal`) a stale entry
//!   therefore ends in a version conflict.
//! - A failure or deferral decided on cached state is not trusted: the order is evicted and
//!   the task retried at once on state read from the store.
//!
//! Bounded: the oldest entries go first, so memory does not grow with the number of orders.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::apply::Loaded;

/// What a lease read: the order, its version, and whether it came from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// Order id.
    pub(crate) order: String,
    /// Stream version the task's decisions assert.
    pub(crate) version: i64,
    /// Whether the state came from the cache (not from the store).
    pub(crate) cached: bool,
}

/// Recent orders' state by order id, plus what in-flight leases read and staged. Leases are
/// named by their token: unique, unlike task ids, which a new task may reuse.
pub(crate) struct OrderCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    states: HashMap<String, Arc<Loaded>>,
    // Insertion order, for eviction; may hold ids already evicted.
    age: VecDeque<String>,
    // Orders with staged decisions in flight, and how many.
    busy: HashMap<String, usize>,
    // Per lease token: what it read.
    reads: HashMap<i64, Read>,
    // Per lease token: the state its decision leads to, once committed.
    staged: HashMap<i64, (String, Arc<Loaded>)>,
}

impl OrderCache {
    /// A cache of at most `capacity` orders (0: never keeps a state).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached state of `order` at `at_least` or later, noting that `lease` read it; `None`
    /// when it is not cached, older, or a decision of it is in flight.
    pub(crate) fn get(&self, lease: i64, order: &str, at_least: i64) -> Option<Arc<Loaded>> {
        let mut inner = self.lock();
        if inner.busy.contains_key(order) {
            return None;
        }
        let loaded = inner
            .states
            .get(order)
            .filter(|loaded| loaded.version >= at_least)
            .cloned()?;
        inner.reads.entry(lease).or_insert_with(|| Read {
            order: order.to_owned(),
            version: loaded.version,
            cached: true,
        });
        Some(loaded)
    }

    /// Keeps a state read from the store, noting that `lease` read it.
    pub(crate) fn put_read(&self, lease: i64, order: &str, loaded: Arc<Loaded>) {
        let mut inner = self.lock();
        inner.reads.entry(lease).or_insert_with(|| Read {
            order: order.to_owned(),
            version: loaded.version,
            cached: false,
        });
        self.insert(&mut inner, order, loaded);
    }

    /// Stages the state `lease`'s decision leads to; the order is busy until the lease ends.
    pub(crate) fn stage(&self, lease: i64, order: &str, loaded: Loaded) {
        let mut inner = self.lock();
        let previous = inner
            .staged
            .insert(lease, (order.to_owned(), Arc::new(loaded)));
        if previous.is_none() {
            *inner.busy.entry(order.to_owned()).or_default() += 1;
        }
    }

    /// What `lease` read, if it read an order.
    pub(crate) fn read_by(&self, lease: i64) -> Option<Read> {
        self.lock().reads.get(&lease).cloned()
    }

    /// Ends `lease`: its staged state enters the cache if its decision committed; otherwise
    /// the order it touched is evicted, so the next attempt reads the store.
    pub(crate) fn finish(&self, lease: i64, committed: bool) {
        let mut inner = self.lock();
        let read = inner.reads.remove(&lease);
        let staged = inner.staged.remove(&lease);
        if let Some((order, _)) = &staged
            && let Some(count) = inner.busy.get_mut(order)
        {
            *count -= 1;
            if *count == 0 {
                inner.busy.remove(order);
            }
        }
        if committed {
            if let Some((order, loaded)) = staged {
                self.insert(&mut inner, &order, loaded);
            }
        } else {
            for order in read.map(|r| r.order).into_iter().chain(staged.map(|s| s.0)) {
                inner.states.remove(&order);
            }
        }
    }

    fn insert(&self, inner: &mut Inner, order: &str, loaded: Arc<Loaded>) {
        if self.capacity == 0 {
            return;
        }
        match inner.states.get_mut(order) {
            Some(current) => {
                if loaded.version >= current.version {
                    *current = loaded;
                }
            }
            None => {
                inner.states.insert(order.to_owned(), loaded);
                inner.age.push_back(order.to_owned());
            }
        }
        while inner.states.len() > self.capacity {
            let Some(oldest) = inner.age.pop_front() else {
                break;
            };
            inner.states.remove(&oldest);
        }
        if inner.age.len() > self.capacity.saturating_mul(2) {
            let Inner { states, age, .. } = inner;
            age.retain(|id| states.contains_key(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossdock_domain::order::Order;

    fn at(version: i64) -> Loaded {
        Loaded {
            state: Order::default(),
            version,
        }
    }

    #[test]
    fn a_staged_state_is_kept_only_after_its_commit() {
        let cache = OrderCache::new(10);
        cache.put_read(1, "o1", Arc::new(at(3)));
        cache.stage(1, "o1", at(5));
        assert_eq!(
            cache.read_by(1).map(|r| (r.version, r.cached)),
            Some((3, false))
        );
        // While the decision is in flight, nothing is answered for the order.
        assert!(cache.get(2, "o1", 0).is_none());
        cache.finish(1, true);
        assert_eq!(cache.read_by(1), None);
        assert_eq!(cache.get(2, "o1", 0).map(|l| l.version), Some(5));
    }

    #[test]
    fn a_failed_task_evicts_what_it_read_and_drops_what_it_staged() {
        let cache = OrderCache::new(10);
        cache.put_read(1, "o1", Arc::new(at(3)));
        cache.stage(1, "o1", at(4));
        cache.finish(1, false);
        assert!(cache.get(2, "o1", 0).is_none());
    }

    #[test]
    fn an_order_stays_busy_until_every_staged_decision_ended() {
        let cache = OrderCache::new(10);
        cache.put_read(1, "o1", Arc::new(at(1)));
        cache.finish(1, true);
        cache.stage(2, "o1", at(2));
        cache.stage(3, "o1", at(2));
        cache.finish(2, true);
        assert!(cache.get(4, "o1", 0).is_none());
        cache.finish(3, false);
        // The loser evicts the order: the next step reads the store.
        assert!(cache.get(4, "o1", 0).is_none());
        assert!(cache.lock().busy.is_empty());
    }

    #[test]
    fn a_state_older_than_the_task_asks_for_is_not_answered() {
        let cache = OrderCache::new(10);
        cache.put_read(1, "o1", Arc::new(at(3)));
        cache.finish(1, true);
        // A task created at version 5 (by another writer) must not start from version 3.
        assert!(cache.get(2, "o1", 5).is_none());
        assert_eq!(cache.get(2, "o1", 3).map(|l| l.version), Some(3));
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let cache = OrderCache::new(10);
        cache.put_read(1, "o1", Arc::new(at(7)));
        cache.put_read(2, "o1", Arc::new(at(4)));
        assert_eq!(cache.get(3, "o1", 0).map(|l| l.version), Some(7));
        // The first read of a task is the one its decision asserts.
        assert_eq!(cache.read_by(2).map(|r| r.version), Some(4));
        assert_eq!(
            cache.read_by(3).map(|r| (r.version, r.cached)),
            Some((7, true))
        );
    }

    #[test]
    fn the_oldest_orders_leave_first_and_the_size_stays_bounded() {
        let cache = OrderCache::new(3);
        for n in 0..1_000 {
            cache.put_read(n, &format!("o{n}"), Arc::new(at(1)));
            cache.finish(n, true);
        }
        let inner = cache.lock();
        assert_eq!(inner.states.len(), 3);
        assert!(inner.age.len() <= 6);
        assert!(inner.reads.is_empty() && inner.staged.is_empty() && inner.busy.is_empty());
        assert!(inner.states.contains_key("o999") && !inner.states.contains_key("o996"));
    }

    #[test]
    fn capacity_zero_keeps_nothing_but_still_tracks_reads() {
        let cache = OrderCache::new(0);
        cache.put_read(1, "o1", Arc::new(at(2)));
        assert!(cache.get(2, "o1", 0).is_none());
        assert_eq!(cache.read_by(1).map(|r| r.version), Some(2));
    }
}
