//! End-to-end tests: the real `crossdock` binary as separate processes.

mod crash;
mod demo;
mod demo_tryton;
mod resume;
