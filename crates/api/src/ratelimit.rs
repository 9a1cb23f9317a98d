//! Per-client token buckets: `burst` requests at once, refilled at the client's rate. A client
//! past its budget gets 429 with the seconds until its next token in `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;

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
