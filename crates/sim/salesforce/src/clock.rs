//! The simulator's clock: wall time plus an offset that the admin API can move forward, so
//! token expiry and event retention can be tested without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Shared simulator clock (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch, as the simulated org sees it.
    pub fn now_ms(&self) -> i64 {
        // The simulator is a stand-alone fake of an external system: it owns its own clock
        // instead of the hub's Clock port, and adds the admin-controlled offset.
        #[allow(clippy::disallowed_methods)]
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        wall.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// How far the clock runs ahead of wall time, ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// A clock running `offset_ms` ahead of wall time, never behind `not_before_ms` (a restored
    /// org's clock must not go back when the machine's clock did).
    pub fn resumed(offset_ms: i64, not_before_ms: i64) -> Clock {
        let clock = Clock::default();
        clock.advance(offset_ms);
        let behind = not_before_ms.saturating_sub(clock.now_ms());
        if behind > 0 {
            clock.advance(behind);
        }
        clock
    }
}
