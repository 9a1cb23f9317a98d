//! Integration tests of the governed API against a real hub on 127.0.0.1 (temp SQLite store,
//! engine with loopback downstreams).

mod edge;
mod helpers;
mod idempotency;
mod limits;
mod orders;
mod security;
mod security_writes;
mod services;
mod webhooks;
