//! ERP adapters.
