//! Engine tests against the real SQLite store and the loopback downstreams.

mod flows;
mod harness;
mod lifecycle;
mod nats;
mod resilience;
