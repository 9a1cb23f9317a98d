//! Durable store for the hub.
