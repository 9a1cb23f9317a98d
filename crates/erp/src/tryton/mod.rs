//! Tryton ERP adapter: a JSON-RPC client for Tryton 8.0 and the ERP port implemented on it.
//!
//! - [`client::Client`]: login and session, the call context, typed ORM and wizard calls,
//!   Tryton's value encoding ([`value`]) and error mapping ([`error::Error`] → failure class).
//! - [`config::Config`]: server, user, warehouse mapping, taxes, payment method, timeouts.
//! - [`adapter::Adapter`]: [`crossdock_ports::Erp`] over Tryton's sales, stock, invoicing and
//!   returns, plus warehouse-side helpers for tests and demos.
//!
//! The facts this relies on (URL `/<db>/rpc/`, context last, fresh session for posting,
//! the credit-limit group, partial shipments as new shipments, `forecast_quantity`) are
//! listed in the project's Tryton specification; `scripts/setup/tryton.sh` runs a seeded
//! local server for the tests.

pub mod adapter;
pub mod client;
pub mod config;
pub mod error;
pub mod value;

#[cfg(test)]
mod tests;

pub use adapter::{Adapter, ShipmentStep, ShipmentView};
pub use client::{Client, ClientConfig, Secret};
pub use config::{Config, Warehouse};
pub use error::{Error, ErrorKind, Result};
