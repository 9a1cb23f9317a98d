//! Canonical order-lifecycle model and its pure logic.
//!
//! - [`ids`], [`money`]: stable identifiers and exact money.
//! - [`account`], [`catalog`]: accounts, cases, products, prices, inventory, fulfilment options.
//! - [`order`]: the order aggregate — `decide(command, state) -> events`,
//!   `evolve(state, event)`, and the process manager `react(event, state) -> effects`.
//! - [`ownership`]: which system owns which entity and field.
//!
//! No I/O, no clock, no randomness: time comes in as data on commands. This crate depends on
//! no async runtime or database, so the compiler keeps it pure.
#![forbid(unsafe_code)]

pub mod account;
pub mod catalog;
pub mod error;
pub mod flow;
pub mod ids;
pub mod lattice;
pub mod money;
pub mod order;
pub mod ownership;
pub mod summary;

pub use error::Error;
