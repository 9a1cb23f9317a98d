//! ERP adapters.

pub mod tryton;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod rest;
pub mod sim;
