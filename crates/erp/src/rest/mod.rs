//! Generic REST ERP adapter: points the hub at a custom ERP's JSON API without writing Rust.
//!
//! A [`Config`] (TOML-friendly) declares, per port operation, the HTTP calls to make — method,
//! path template with `{placeholders}`, query and body as jq filters, a `when` condition (for
//! look-up-first), statuses that count as answers — and a jq `response` filter mapping the
//! answers to the port's JSON. [`Adapter`] runs it. jq comes from `jaq` (a jq implementation
//! in Rust): one known language for every template and mapping, rather than a new one.
//!
//! `examples/rest-erp-sim.toml` maps the whole port onto the ERP simulator's API; the
//! conformance suite runs through it in `tests/rest.rs`.

mod adapter;
mod config;
pub(crate) mod http;
mod jq;
mod template;

#[cfg(test)]
mod tests;

pub use adapter::Adapter;
pub use config::{Call, Config, Errors, Operation, Operations};
