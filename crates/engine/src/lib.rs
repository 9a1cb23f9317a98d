//! The engine: workers, lanes, retries around the pure lifecycle logic.
