//! The engine: durable, ordered, rate-limited execution of the lifecycle's effects.
//!
//! - [`engine::Engine`]: lane dispatchers lease tasks from the store, run them, and record
//!   success, retry (with backoff and full jitter by failure class) or dead letter — every
//!   attempt on the order's timeline.
//! - [`lane`]: concurrency limit, token bucket, circuit breaker and throttle pause per
//!   downstream.
//! - [`retry`]: retry policies as data.
//! - `chain`: an order's next step leased with the commit of the step before, and run at once.
//! - [`apply`]: commands → decide → events → follow-up tasks, summary and timeline, in one
//!   store decision.
//! - [`poller`]: the ERP change-feed subscriber.
//! - `loopback` (feature `test-util`): zero-latency in-process downstreams for benchmarks
//!   and tests.
//!
//! Time and randomness come through the `Clock` and `Rng` ports.
#![forbid(unsafe_code)]

pub mod apply;
pub mod bus;
mod cache;
mod chain;
pub mod checkpoints;
pub mod config;
pub mod describe;
pub mod engine;
mod handlers;
pub mod lane;
#[cfg(feature = "test-util")]
pub mod loopback;
pub mod metrics;
pub mod poller;
pub mod retry;

pub use config::{BookingOrder, EngineConfig};
pub use engine::{Engine, Parts};
pub use lane::{BreakerState, Lane, LaneConfig};
pub use retry::{Backoff, RetryPolicy};
