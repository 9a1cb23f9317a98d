//! Integration tests of the ERP simulator over real HTTP on 127.0.0.1.

mod demo;
mod determinism;
mod errors;
mod faults;
mod lifecycle;
mod load;
mod persistence;
mod support;
mod webhooks;
