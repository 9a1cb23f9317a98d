//! Retry segmentation: how long to wait before the next attempt, by failure class, and when
//! to give up. A policy is data that yields delays.

use std::time::Duration;

use crossdock_ports::FailureClass;
use serde::{Deserialize, Serialize};

use crossdock_ports::Rng;

/// Backoff for one failure class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay before the second attempt (before jitter).
    #[serde(with = "millis")]
    pub initial: Duration,
    /// Longest delay.
    #[serde(with = "millis")]
    pub max: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Give up (dead letter) after this many attempts.
    pub max_attempts: u32,
}

impl Backoff {
    /// Delay after `attempt` failed attempts (1-based): exponential, capped, with **full jitter**
    /// (uniform between zero and the capped exponential value), so retries of many orders spread out.
    pub fn delay(&self, attempt: u32, rng: &dyn Rng) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let ceiling = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let ceiling = ceiling.min(self.max.as_secs_f64());
        Duration::from_secs_f64(ceiling * rng.unit())
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after the delay.
    RetryAfter(Duration),
    /// Stop: move to the dead letters / exception queue.
    DeadLetter,
}

/// Per-class retry policy of a lane (classes left out keep their defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Timeouts, 5xx, resets.
    pub transient: Backoff,
    /// Rate limited (the downstream's `Retry-After` wins when longer).
    pub throttled: Backoff,
    /// Lock contention, optimistic concurrency.
    pub conflict: Backoff,
    /// Unexpected failures.
    pub unknown: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            transient: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(300),
                factor: 2.0,
                max_attempts: 12,
            },
            throttled: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(600),
                factor: 2.0,
                max_attempts: 50,
            },
            conflict: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(2),
                factor: 2.0,
                max_attempts: 20,
            },
            unknown: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                factor: 2.0,
                max_attempts: 3,
            },
        }
    }
}

impl RetryPolicy {
    /// Decides what follows the `attempt`-th failed attempt of class `class`.
    pub fn next(&self, class: FailureClass, attempt: u32, rng: &dyn Rng) -> Next {
        let backoff = match class {
            FailureClass::Permanent => return Next::DeadLetter,
            FailureClass::Transient => &self.transient,
            FailureClass::Throttled { .. } => &self.throttled,
            FailureClass::Conflict => &self.conflict,
            FailureClass::Unknown => &self.unknown,
        };
        if attempt >= backoff.max_attempts {
            return Next::DeadLetter;
        }
        let mut delay = backoff.delay(attempt, rng);
        if let FailureClass::Throttled {
            retry_after: Some(wait),
        } = class
        {
            delay = delay.max(wait);
        }
        Next::RetryAfter(delay)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use crossdock_ports::SeededRng;

    use super::*;

    #[test]
    fn permanent_failures_go_straight_to_the_dead_letters() {
        let rng = SeededRng::new(1);
        assert_eq!(
            RetryPolicy::default().next(FailureClass::Permanent, 1, &rng),
            Next::DeadLetter
        );
    }

    #[test]
    fn delays_grow_but_stay_under_the_cap_with_full_jitter() {
        let rng = SeededRng::new(7);
        let backoff = RetryPolicy::default().transient;
        let mut ceilings_hit = 0;
        for attempt in 1..=11 {
            let ceiling = (0.5 * 2f64.powi(attempt as i32 - 1)).min(300.0);
            for _ in 0..200 {
                let d = backoff.delay(attempt, &rng).as_secs_f64();
                assert!(d <= ceiling + 1e-9, "attempt {attempt}: {d} > {ceiling}");
                if d > ceiling * 0.9 {
                    ceilings_hit += 1;
                }
            }
        }
        // Full jitter spreads delays over [0, ceiling]: some land near the top.
        assert!(ceilings_hit > 50);
    }

    #[test]
    fn retries_stop_at_the_class_limit() {
        let rng = SeededRng::new(3);
        let policy = RetryPolicy::default();
        assert!(matches!(
            policy.next(FailureClass::Unknown, 2, &rng),
            Next::RetryAfter(_)
        ));
        assert_eq!(
            policy.next(FailureClass::Unknown, 3, &rng),
            Next::DeadLetter
        );
    }

    #[test]
    fn throttling_honours_retry_after() {
        let rng = SeededRng::new(3);
        let class = FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(90)),
        };
        let Next::RetryAfter(delay) = RetryPolicy::default().next(class, 1, &rng) else {
            panic!("expected a retry");
        };
        assert!(delay >= Duration::from_secs(90));
    }
}
