//! Ports: the interfaces the engine calls and connectors implement.
//!
//! - [`erp::Erp`]: prices, stock, credit, fulfilment options, booking, returns, change feed.
//! - [`salesforce::Salesforce`]: batched, state-based write-backs and re-reads.
//! - [`inbound`]: canonical inbound messages, the sink connectors deliver them to, and
//!   subscriber checkpoints.
//! - [`failure`]: the failure classes that drive retry segmentation.
//! - [`clock`], [`rng`]: time and randomness, replaceable in tests.
//!
//! This crate depends only on the domain, so connectors build without the store or engine.
#![forbid(unsafe_code)]

pub mod clock;
pub mod erp;
pub mod failure;
pub mod inbound;
pub mod rng;
pub mod salesforce;

pub use clock::{Clock, ManualClock, SystemClock};
pub use erp::Erp;
pub use failure::{Failure, FailureClass};
pub use rng::{Rng, SeededRng};
pub use salesforce::Salesforce;
