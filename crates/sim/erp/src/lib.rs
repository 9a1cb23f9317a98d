//! ERP simulator.

pub mod cli;
