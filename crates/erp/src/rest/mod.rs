//! Generic REST ERP adapter.

pub(crate) mod http;
