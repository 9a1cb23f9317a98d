//! ERP adapters.

pub mod tryton;
