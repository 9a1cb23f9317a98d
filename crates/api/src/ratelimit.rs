//! Per-client token buckets: `burst` requests at once, refilled at the client's rate. A client
//! past its budget gets 429 with the seconds until its next token in `Retry-After`.
//!
//! Failed authentications are budgeted per client address (`governor`'s keyed GCRA limiter):
//! past `auth_failures_per_minute`, the address gets 429 with `Retry-After` for every request,
//! valid credentials or not, until its budget refills.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};

use governor::Quota;
use governor::clock::Clock as _;
use tokio::time::Instant;

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Token buckets by client id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    failures: OnceLock<AuthFailures>,
}

impl RateLimiter {
    /// Takes one token from `client`'s bucket; `Err(seconds)` to wait when it is empty.
    pub fn check(&self, client: &str, limit: RateLimit) -> Result<(), u64> {
        let now = Instant::now();
        let rate = f64::from(limit.per_second.max(1));
        let burst = f64::from(limit.burst.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: burst,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            // `wait` is at least 0 and at most 1 / rate (≤ 1 s): the cast cannot truncate.
            Err((wait as u64).max(1))
        }
    }
}

/// Keyed GCRA limiter of failed authentications by client address.
type AddressLimiter = governor::RateLimiter<
    IpAddr,
    governor::state::keyed::HashMapStateStore<IpAddr>,
    governor::clock::DefaultClock,
>;

/// Failed authentications per client address: a budget of `per_minute` failures (refilled
/// evenly over the minute), and the addresses that spent it, with when they may try again.
struct AuthFailures {
    limiter: AddressLimiter,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for AuthFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailures")
            .field("addresses", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

/// Most addresses tracked before forgotten ones (a full budget again) are dropped.
const ADDRESSES_KEPT: usize = 10_000;

impl RateLimiter {
    fn failures(&self, per_minute: u32) -> &AuthFailures {
        self.failures.get_or_init(|| {
            let budget = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            AuthFailures {
                limiter: governor::RateLimiter::hashmap(Quota::per_minute(budget)),
                blocked: Mutex::new(HashMap::new()),
            }
        })
    }

    /// `Err(seconds)` while `address` must wait after too many failed authentications: its
    /// requests are then refused before their credentials are checked, so guessing goes no
    /// faster with a right guess among wrong ones.
    pub fn auth_blocked(&self, address: IpAddr, per_minute: u32) -> Result<(), u64> {
        let failures = self.failures(per_minute);
        let mut blocked = failures
            .blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match blocked.get(&address) {
            Some(until) if *until > now => Err(seconds_until(*until, now)),
            Some(_) => {
                blocked.remove(&address);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`; `Err(seconds)` when it is past its budget
    /// of `per_minute` failures (the address then waits that long).
    pub fn auth_failed(&self, address: IpAddr, per_minute: u32) -> Result<(), u64> {
        let failures = self.failures(per_minute);
        if failures.limiter.len() > ADDRESSES_KEPT {
            failures.limiter.retain_recent();
        }
        let Err(not_until) = failures.limiter.check_key(&address) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(failures.limiter.clock().now());
        let now = Instant::now();
        let until = now + wait;
        let mut blocked = failures
            .blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.len() > ADDRESSES_KEPT {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(address, until);
        Err(seconds_until(until, now))
    }
}

/// Whole seconds from `now` until `until`, at least 1 (for `Retry-After`).
fn seconds_until(until: Instant, now: Instant) -> u64 {
    let wait = until.duration_since(now);
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_past_its_burst_waits_and_others_do_not() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            per_second: 2,
            burst: 3,
        };
        for _ in 0..3 {
            assert_eq!(limiter.check("a", limit), Ok(()));
        }
        assert_eq!(limiter.check("a", limit), Err(1));
        assert_eq!(limiter.check("b", limit), Ok(()), "buckets are per client");
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            limiter.check("a", limit),
            Ok(()),
            "one token after half a second"
        );
        assert_eq!(limiter.check("a", limit), Err(1));
    }
}
