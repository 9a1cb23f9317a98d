//! Salesforce org simulator.

pub mod cli;
