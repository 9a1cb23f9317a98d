//! ERP simulator adapter: the ERP port over the simulator's JSON API (`crates/sim/erp`),
//! spoken over HTTP only.
//!
//! - [`Config`] → [`Adapter::new`]: the [`crossdock_ports::Erp`] implementation.
//! - [`Admin`]: the simulator's admin side for demos, benchmarks and tests (outages, faults,
//!   statistics, clock, stock and price edits, seed data listing). Not part of the port.
//!
//! Failure classes: 503/500/504, timeouts and connection errors are transient; 429 is
//! throttled with the simulator's `Retry-After`; business refusals (credit, unknown item,
//! over-return, cancel after shipment, …) are permanent with the simulator's message; an
//! answer of the wrong shape is unknown, naming the operation and the field.

mod adapter;
mod admin;
pub(crate) mod client;
mod config;
mod feed;
pub(crate) mod wire;

#[cfg(test)]
pub(crate) mod tests;

pub use adapter::Adapter;
pub use admin::{
    Admin, BookingStats, CallStats, ClockReading, ErrorRates, Faults, Latency, Outage, OutageMode,
    SeedCustomer, SeedData, SeedItem, SeedLocation, Stats,
};
pub use config::Config;
