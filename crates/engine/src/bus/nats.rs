//! Publishes the event log to NATS JetStream: one CloudEvent per event on
//! `<prefix>.<stream kind>.<event type>` (e.g. `crossdock.order.OrderBooked`), with
//! `Nats-Msg-Id` set to the global sequence so a re-delivery after a crash is dropped by
//! JetStream's duplicate window. Each publish waits for the stream's acknowledgement before
//! the cursor moves.

use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use crossdock_ports::Failure;
use crossdock_store::StoredEvent;
use serde::{Deserialize, Serialize};

use super::{Subscriber, cloud_event};

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// JetStream stream name (created when missing).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subject prefix.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
}

fn default_stream() -> String {
    "CROSSDOCK".to_owned()
}

fn default_prefix() -> String {
    "crossdock".to_owned()
}

/// The JetStream publisher.
pub struct NatsPublisher {
    name: String,
    context: Context,
    prefix: String,
}

impl NatsPublisher {
    /// Connects and makes sure the stream exists.
    ///
    /// # Errors
    /// The server cannot be reached or the stream cannot be created.
    pub async fn connect(config: &NatsConfig) -> Result<Self, Failure> {
        let client = async_nats::connect(&config.url).await.map_err(|e| {
            Failure::transient(format!("cannot connect to NATS at {}: {e}", config.url))
        })?;
        let context = jetstream::new(client);
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Failure::transient(format!(
                    "cannot create JetStream stream {}: {e}",
                    config.stream
                ))
            })?;
        Ok(Self {
            name: format!("nats:{}", config.stream),
            context,
            prefix: config.subject_prefix.clone(),
        })
    }

    /// Subject of an event.
    pub fn subject(&self, event: &StoredEvent) -> String {
        let kind = event.stream.split(':').next().unwrap_or("stream");
        format!("{}.{kind}.{}", self.prefix, event.kind)
    }
}

#[async_trait]
impl Subscriber for NatsPublisher {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[StoredEvent]) -> Result<(), Failure> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.global_seq.to_string().as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            let body = serde_json::to_vec(&cloud_event(event)).map_err(|e| {
                Failure::permanent(format!("event {} cannot be encoded: {e}", event.global_seq))
            })?;
            let ack = self
                .context
                .publish_with_headers(self.subject(event), headers, body.into())
                .await
                .map_err(|e| Failure::transient(format!("publish to NATS failed: {e}")))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| Failure::transient(format!("NATS did not acknowledge: {e}")))?;
        }
        Ok(())
    }
}
