//! Join-semilattices: the reason the order state does not depend on event order.
//!
//! Every fact the order state holds is merged with [`Join::join`], which is commutative,
//! associative and idempotent. Applying the same events in any order, any number of times,
//! therefore yields the same state; `evolve` is nothing more than a join of one fact.

use std::collections::BTreeMap;

/// A value that can absorb another value of its kind.
pub trait Join {
    /// Merges `other` into `self`. Must be commutative, associative and idempotent.
    /// Returns whether `self` changed (`other` held something `self` did not), so that a
    /// caller can tell a new fact from a repeated one without comparing whole states.
    fn join(&mut self, other: Self) -> bool;
}

/// Quantities only grow: the larger report wins.
impl Join for u32 {
    fn join(&mut self, other: Self) -> bool {
        let grew = other > *self;
        if grew {
            *self = other;
        }
        grew
    }
}

/// A fact that is either unknown or known. When two different values are reported for the
/// same fact the larger one (by `Ord`) wins, so the choice is deterministic.
impl<T: Ord> Join for Option<T> {
    fn join(&mut self, other: Self) -> bool {
        match (self.as_mut(), other) {
            (_, None) => false,
            (None, Some(value)) => {
                *self = Some(value);
                true
            }
            (Some(current), Some(value)) => {
                let grew = value > *current;
                if grew {
                    *current = value;
                }
                grew
            }
        }
    }
}

/// Keyed facts: merged key by key.
impl<K: Ord, V: Join> Join for BTreeMap<K, V> {
    fn join(&mut self, other: Self) -> bool {
        let mut grew = false;
        for (key, value) in other {
            match self.get_mut(&key) {
                Some(current) => grew |= current.join(value),
                None => {
                    self.insert(key, value);
                    grew = true;
                }
            }
        }
        grew
    }
}

/// Earliest time a milestone was seen: the smaller value wins.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Earliest<T>(pub T);

impl<T: Ord> Join for Earliest<T> {
    fn join(&mut self, other: Self) -> bool {
        let grew = other.0 < self.0;
        if grew {
            *self = other;
        }
        grew
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_join_is_order_independent_and_idempotent() {
        let mut a = Some(3);
        assert!(a.join(Some(5)));
        assert!(!a.join(Some(5)));
        assert!(!a.join(None));
        let mut b = Some(5);
        b.join(Some(3));
        assert_eq!(a, b);
        assert_eq!(a, Some(5));
    }

    #[test]
    fn map_join_merges_per_key() {
        let mut left: BTreeMap<&str, u32> = [("a", 1), ("b", 4)].into();
        assert!(left.join([("a", 3), ("c", 2)].into()));
        assert!(!left.join([("a", 2), ("c", 2)].into()));
        assert_eq!(left, [("a", 3), ("b", 4), ("c", 2)].into());
    }

    #[test]
    fn earliest_keeps_the_smaller_value() {
        let mut t = Earliest(10);
        assert!(t.join(Earliest(7)));
        assert!(!t.join(Earliest(9)));
        assert_eq!(t, Earliest(7));
    }
}
