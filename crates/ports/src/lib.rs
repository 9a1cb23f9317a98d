//! Ports: the interfaces the engine calls and connectors implement.
