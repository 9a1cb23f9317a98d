//! Salesforce org simulator: a faithful, in-memory stand-in for the parts of a Salesforce org
//! that crossdock talks to — OAuth 2.0 and SOAP login, the REST data API (sObjects, upsert by
//! external id, Collections, Composite, SOQL queries) and the Pub/Sub API (gRPC) with Change
//! Data Capture and platform events — plus fault knobs and an admin API for tests.
//!
//! Start one with [`Simulator::start`]; the returned [`Handle`] tells clients where to connect
//! and what to trust, exposes the org's state to tests and stops the simulator. With a
//! configured data folder the org survives restarts ([`persist`]).
//!
//! Modules: [`meta`] declares every object; [`store`] holds records and runs DML; [`soql`]
//! parses and runs queries; [`rest`] and [`auth`] serve HTTP; [`cdc`] and [`pubsub`] produce
//! and deliver events; [`admin`] is the `/__sim/` API; [`persist`] saves and restores the org.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod avro;
pub mod cdc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod ids;
pub mod meta;
pub mod persist;
pub mod pubsub;
pub mod rest;
pub mod soql;
pub mod state;
pub mod store;
pub mod tls;
pub mod util;
pub mod value;

mod server;

/// Generated Pub/Sub API types (`eventbus.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("eventbus.v1");
}

pub use config::{Config, Credentials, Faults};
pub use server::{Error, Handle, Simulator};
