//! Order lifecycle tests: examples (given commands → expected events) and properties.

mod cancellation;
mod examples;
mod fixtures;
mod properties;
