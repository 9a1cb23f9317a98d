//! ERP adapters.
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod rest;
pub mod sim;
pub mod tryton;
