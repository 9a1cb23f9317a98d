//! ERP adapters.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod rest;
pub mod sim;
pub mod tryton;
