//! Randomness as a port (retry jitter, sampling), so tests can use a seeded generator.

use std::sync::Mutex;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Source of random numbers.
pub trait Rng: Send + Sync + 'static {
    /// A uniformly random `u64`.
    fn next_u64(&self) -> u64;

    /// A uniformly random number in `[0, 1)`.
    fn unit(&self) -> f64 {
        // 53 random bits give every representable value in [0, 1) with equal spacing.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A deterministic generator from a seed.
#[derive(Debug)]
pub struct SeededRng(Mutex<ChaCha8Rng>);

impl SeededRng {
    /// A generator that always yields the same sequence for the same seed.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    /// A generator seeded from the operating system.
    pub fn from_entropy() -> Self {
        Self(Mutex::new(ChaCha8Rng::from_os_rng()))
    }
}

impl Rng for SeededRng {
    fn next_u64(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_u64()
    }
}
