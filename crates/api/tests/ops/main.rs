//! Operations: business health, order trace, exception handling, alerting, metrics and
//! telemetry, against a real engine on a fresh SQLite store.

mod account_limits;
mod alerts;
mod dashboard_security;
mod exceptions;
mod harness;
mod health;
mod metrics;
mod prometheus;
mod telemetry;
