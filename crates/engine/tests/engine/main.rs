//! Engine tests against the real SQLite store and the loopback downstreams.

mod cache;
mod chain;
mod flows;
mod harness;
mod lifecycle;
mod nats;
mod references;
mod rejections;
mod resilience;
