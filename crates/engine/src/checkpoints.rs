//! Subscriber checkpoints (e.g. Pub/Sub replay ids) kept in the store's cursor table.

use std::sync::Arc;

use async_trait::async_trait;
use crossdock_ports::Clock;
use crossdock_ports::inbound::{Checkpoints, SinkError};
use crossdock_store::SharedStore;

/// [`Checkpoints`] backed by the store.
pub struct StoreCheckpoints {
    store: SharedStore,
    clock: Arc<dyn Clock>,
}

impl StoreCheckpoints {
    /// Checkpoints in `store`, stamped with `clock`.
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

#[async_trait]
impl Checkpoints for StoreCheckpoints {
    async fn load(&self, subscriber: &str) -> Result<Option<String>, SinkError> {
        self.store
            .cursor(subscriber)
            .await
            .map_err(|e| SinkError(e.to_string()))
    }

    async fn save(&self, subscriber: &str, position: &str) -> Result<(), SinkError> {
        self.store
            .save_cursor(subscriber, position, self.clock.now())
            .await
            .map_err(|e| SinkError(e.to_string()))
    }
}
