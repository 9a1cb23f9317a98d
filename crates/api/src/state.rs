//! Shared state of every handler.

use std::sync::Arc;

use crossdock_engine::Engine;
use crossdock_store::SharedStore;

/// What handlers need: the engine (and through it the store, ports, clock and metrics).
#[derive(Clone)]
pub struct AppState {
    /// The running engine.
    pub engine: Arc<Engine>,
}

impl AppState {
    /// State around an engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        self.engine.store()
    }
}
