//! Lanes: one per downstream. A lane bounds concurrency (bulkhead), paces calls with a token
//! bucket matching the downstream's limits, opens a circuit breaker when the downstream keeps
//! failing, and pauses entirely when the downstream says it is throttling us. A slow ERP fills
//! its own lane's queue; nothing else slows down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crossdock_ports::FailureClass;

/// Calls per second of an unlimited lane at full speed, for scaling it down.
const SLOWED_UNLIMITED_RATE: f64 = 10.0;

/// Limits and breaker settings of one lane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneConfig {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Sustained calls per second (0 = unlimited).
    pub rate_per_sec: f64,
    /// Calls allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Most tasks one call may carry (batched lanes, e.g. Salesforce collections).
    pub batch: usize,
    /// Per-call timeout.
    pub timeout_ms: u64,
    /// Consecutive failures (transient/unknown) that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before letting one probe through.
    pub breaker_open_ms: u64,
    /// How long a task lease lasts (a crashed worker's tasks come back after it).
    pub lease_ms: u64,
}

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            rate_per_sec: 0.0,
            burst: 50,
            batch: 1,
            timeout_ms: 30_000,
            breaker_failures: 10,
            breaker_open_ms: 5_000,
            lease_ms: 60_000,
        }
    }
}

/// Circuit breaker state, for health views and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are held back until the open period ends.
    Open,
    /// One probe call is allowed; its outcome closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// Gauge value (closed 0, half-open 1, open 2).
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    tokens: f64,
    refilled: Instant,
    consecutive_failures: u32,
    breaker: BreakerState,
    open_until: Option<Instant>,
    probing: bool,
    paused_until: Option<Instant>,
    rate_factor: f64,
}

/// A concurrency slot of a lane, held for one call; dropping it frees the slot and wakes the
/// lane's dispatcher.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Free the slot first, so the woken dispatcher sees it free.
        drop(self.permit.take());
        self.freed.notify_one();
    }
}

/// Runtime state of a lane, shared by its workers.
#[derive(Debug, Clone)]
pub struct Lane {
    name: String,
    config: LaneConfig,
    permits: Arc<Semaphore>,
    slot: Arc<Notify>,
    inner: Arc<Mutex<Inner>>,
}

/// Why a lane cannot take a call right now, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Go ahead.
    Ready,
    /// Try again at this instant.
    Until(Instant),
}

impl Lane {
    /// A lane with the given limits.
    pub fn new(name: impl Into<String>, config: LaneConfig) -> Self {
        Self {
            name: name.into(),
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            slot: Arc::new(Notify::new()),
            inner: Arc::new(Mutex::new(Inner {
                tokens: f64::from(config.burst.max(1)),
                refilled: Instant::now(),
                consecutive_failures: 0,
                breaker: BreakerState::Closed,
                open_until: None,
                probing: false,
                paused_until: None,
                rate_factor: 1.0,
            })),
            config,
        }
    }

    /// Lane name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lane limits.
    pub fn config(&self) -> &LaneConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Free concurrency slots.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Waits for a concurrency slot.
    pub async fn permit(&self) -> Slot {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("lane semaphores are never closed"));
        self.slot(permit)
    }

    /// A concurrency slot if one is free now.
    pub fn try_permit(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        Some(self.slot(permit))
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit: Some(permit),
            freed: Arc::clone(&self.slot),
        }
    }

    /// Waits until a concurrency slot is released.
    pub async fn slot_freed(&self) {
        self.slot.notified().await;
    }

    /// When the lane takes no new work (throttle pause, open breaker, probe in flight), until when.
    pub fn blocked_until(&self) -> Option<Instant> {
        let now = Instant::now();
        let inner = self.lock();
        if let Some(until) = inner.paused_until.filter(|until| now < *until) {
            return Some(until);
        }
        match inner.breaker {
            BreakerState::Open => match inner.open_until {
                Some(until) if now < until => Some(until),
                _ => None,
            },
            BreakerState::HalfOpen if inner.probing => Some(now + Duration::from_millis(50)),
            _ => None,
        }
    }

    /// Waits until the lane admits one more call (breaker, pause, token bucket), then takes it.
    pub async fn wait_for_token(&self) {
        loop {
            match self.try_call() {
                Wait::Ready => return,
                Wait::Until(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Checks the breaker, the throttle pause and the token bucket; consumes a token when ready.
    pub fn try_call(&self) -> Wait {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(until) = inner.paused_until {
            if now < until {
                return Wait::Until(until);
            }
            inner.paused_until = None;
        }
        match inner.breaker {
            BreakerState::Open => {
                let until = inner.open_until.unwrap_or(now);
                if now < until {
                    return Wait::Until(until);
                }
                inner.breaker = BreakerState::HalfOpen;
                inner.probing = false;
            }
            BreakerState::HalfOpen | BreakerState::Closed => {}
        }
        if inner.breaker == BreakerState::HalfOpen {
            if inner.probing {
                return Wait::Until(now + Duration::from_millis(50));
            }
            inner.probing = true;
        }
        let rate = if self.config.rate_per_sec > 0.0 {
            self.config.rate_per_sec * inner.rate_factor
        } else if inner.rate_factor < 1.0 {
            // An unlimited lane that must slow down (a nearly spent API budget) gets a
            // modest rate rather than staying unlimited.
            SLOWED_UNLIMITED_RATE * inner.rate_factor
        } else {
            0.0
        };
        if rate > 0.0 {
            let elapsed = now.duration_since(inner.refilled).as_secs_f64();
            inner.tokens = (inner.tokens + elapsed * rate).min(f64::from(self.config.burst.max(1)));
            inner.refilled = now;
            if inner.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - inner.tokens) / rate);
                if inner.breaker == BreakerState::HalfOpen {
                    inner.probing = false;
                }
                return Wait::Until(now + wait);
            }
            inner.tokens -= 1.0;
        }
        Wait::Ready
    }

    /// Whether a call may start at once (breaker closed, not paused) and, if so, takes a
    /// token as [`Lane::try_call`] does. For work the lane did not queue for (an order's
    /// next step claimed at commit): it never probes a half-open breaker.
    pub fn try_call_now(&self) -> bool {
        {
            let inner = self.lock();
            if inner.breaker != BreakerState::Closed
                || inner
                    .paused_until
                    .is_some_and(|until| Instant::now() < until)
            {
                return false;
            }
        }
        self.try_call() == Wait::Ready
    }

    /// Returns a token taken for a call that did not happen.
    pub fn refund_token(&self) {
        let mut inner = self.lock();
        inner.tokens = (inner.tokens + 1.0).min(f64::from(self.config.burst.max(1)));
    }

    /// Records the outcome of a call: failures open the breaker, throttling pauses the lane.
    pub fn record(&self, outcome: Result<(), FailureClass>) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.probing = false;
        match outcome {
            Ok(()) | Err(FailureClass::Permanent) | Err(FailureClass::Conflict) => {
                // The downstream answered: it is up.
                inner.consecutive_failures = 0;
                inner.breaker = BreakerState::Closed;
                inner.open_until = None;
            }
            Err(FailureClass::Throttled { retry_after }) => {
                let pause = retry_after.unwrap_or(Duration::from_secs(1));
                inner.paused_until = Some(now + pause);
            }
            Err(FailureClass::Transient) | Err(FailureClass::Unknown) => {
                inner.consecutive_failures += 1;
                if inner.breaker == BreakerState::HalfOpen
                    || inner.consecutive_failures >= self.config.breaker_failures.max(1)
                {
                    inner.breaker = BreakerState::Open;
                    inner.open_until =
                        Some(now + Duration::from_millis(self.config.breaker_open_ms));
                }
            }
        }
    }

    /// Scales the sustained rate (e.g. 0.1 when an API budget is nearly spent; 1.0 restores it).
    /// An unlimited lane scaled below 1.0 runs at that share of ten calls per second.
    pub fn set_rate_factor(&self, factor: f64) {
        self.lock().rate_factor = factor.clamp(0.01, 1.0);
    }

    /// Current rate factor.
    pub fn rate_factor(&self) -> f64 {
        self.lock().rate_factor
    }

    /// Breaker state.
    pub fn breaker(&self) -> BreakerState {
        let inner = self.lock();
        match (inner.breaker, inner.open_until) {
            (BreakerState::Open, Some(until)) if Instant::now() >= until => BreakerState::HalfOpen,
            (state, _) => state,
        }
    }

    /// Whether the lane is paused by throttling.
    pub fn is_paused(&self) -> bool {
        self.lock()
            .paused_until
            .is_some_and(|until| Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(config: LaneConfig) -> Lane {
        Lane::new("test", config)
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_consecutive_failures_and_probes_once() {
        let lane = lane(LaneConfig {
            breaker_failures: 3,
            breaker_open_ms: 1_000,
            ..LaneConfig::default()
        });
        for _ in 0..3 {
            assert_eq!(lane.try_call(), Wait::Ready);
            lane.record(Err(FailureClass::Transient));
        }
        assert_eq!(lane.breaker(), BreakerState::Open);
        assert!(matches!(lane.try_call(), Wait::Until(_)));
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(lane.try_call(), Wait::Ready, "one probe goes through");
        assert!(matches!(lane.try_call(), Wait::Until(_)), "only one probe");
        lane.record(Ok(()));
        assert_eq!(lane.breaker(), BreakerState::Closed);
        assert_eq!(lane.try_call(), Wait::Ready);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_takes_a_token_only_while_calls_flow_and_can_give_it_back() {
        let lane = lane(LaneConfig {
            rate_per_sec: 1.0,
            burst: 1,
            breaker_failures: 1,
            breaker_open_ms: 1_000,
            ..LaneConfig::default()
        });
        assert!(lane.try_call_now(), "a token is there");
        assert!(!lane.try_call_now(), "the bucket is empty");
        lane.refund_token();
        assert!(lane.try_call_now(), "the unused token came back");
        lane.refund_token();
        lane.record(Err(FailureClass::Transient));
        assert!(!lane.try_call_now(), "an open breaker takes no claim");
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert!(
            !lane.try_call_now(),
            "a half-open breaker is not probed by a claim"
        );
        assert_eq!(
            lane.try_call(),
            Wait::Ready,
            "the dispatcher's probe is still there"
        );
    }

    #[tokio::test]
    async fn dropping_a_slot_frees_it_and_wakes_the_dispatcher() {
        let lane = lane(LaneConfig {
            concurrency: 1,
            ..LaneConfig::default()
        });
        let slot = lane.try_permit().expect("one slot");
        assert!(lane.try_permit().is_none(), "only one");
        let waiter = {
            let lane = lane.clone();
            tokio::spawn(async move {
                lane.slot_freed().await;
                lane.available()
            })
        };
        tokio::task::yield_now().await;
        drop(slot);
        let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(woken.expect("the dispatcher is woken").unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_the_breaker() {
        let lane = lane(LaneConfig {
            breaker_failures: 1,
            breaker_open_ms: 500,
            ..LaneConfig::default()
        });
        lane.record(Err(FailureClass::Unknown));
        tokio::time::advance(Duration::from_millis(501)).await;
        assert_eq!(lane.try_call(), Wait::Ready);
        lane.record(Err(FailureClass::Transient));
        assert_eq!(lane.breaker(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlimited_lane_slows_down_when_scaled_and_recovers() {
        let lane = lane(LaneConfig {
            rate_per_sec: 0.0,
            burst: 1,
            ..LaneConfig::default()
        });
        for _ in 0..100 {
            assert_eq!(lane.try_call(), Wait::Ready, "unlimited");
        }
        lane.set_rate_factor(0.1);
        let ready = (0..10).filter(|_| lane.try_call() == Wait::Ready).count();
        assert!(
            ready <= 1,
            "{ready} calls went through a slowed lane at once"
        );
        let Wait::Until(at) = lane.try_call() else {
            panic!("a slowed lane paces calls");
        };
        assert!(at - Instant::now() <= Duration::from_secs(1));
        lane.set_rate_factor(1.0);
        for _ in 0..100 {
            assert_eq!(lane.try_call(), Wait::Ready, "unlimited again");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_bucket_paces_calls() {
        let lane = lane(LaneConfig {
            rate_per_sec: 10.0,
            burst: 2,
            ..LaneConfig::default()
        });
        assert_eq!(lane.try_call(), Wait::Ready);
        assert_eq!(lane.try_call(), Wait::Ready);
        let Wait::Until(at) = lane.try_call() else {
            panic!("the bucket should be empty");
        };
        let wait = at - Instant::now();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::from_millis(50),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(lane.try_call(), Wait::Ready);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_pauses_the_whole_lane() {
        let lane = lane(LaneConfig::default());
        lane.record(Err(FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(30)),
        }));
        assert!(lane.is_paused());
        assert!(matches!(lane.try_call(), Wait::Until(_)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(lane.try_call(), Wait::Ready);
    }

    #[tokio::test(start_paused = true)]
    async fn business_refusals_do_not_open_the_breaker() {
        let lane = lane(LaneConfig {
            breaker_failures: 2,
            ..LaneConfig::default()
        });
        for _ in 0..5 {
            lane.record(Err(FailureClass::Permanent));
        }
        assert_eq!(lane.breaker(), BreakerState::Closed);
    }
}
