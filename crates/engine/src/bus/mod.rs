//! Event fan-out. Every event the hub stores is also delivered, in global order, to
//! subscribers (NATS JetStream, partner webhooks…). Each subscriber keeps a durable cursor in
//! the store, so it resumes after a crash and can be **replayed** from a position or a time
//! (`crossdock replay`). Delivery is at-least-once; subscribers dedupe on the event's
//! global sequence number (JetStream does it through `Nats-Msg-Id`).

#[cfg(feature = "nats")]
pub mod nats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crossdock_ports::{Clock, Failure};
use crossdock_store::{SharedStore, StoredEvent};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The CloudEvents 1.0 envelope of a stored event.
pub fn cloud_event(event: &StoredEvent) -> Value {
    let subject = event
        .stream
        .split_once(':')
        .map_or(event.stream.as_str(), |(_, id)| id);
    json!({
        "specversion": "1.0",
        "id": event.global_seq.to_string(),
        "source": format!("crossdock/{}", event.stream.split(':').next().unwrap_or("stream")),
        "type": format!("crossdock.{}", event.kind),
        "subject": subject,
        "time": event.occurred_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "datacontenttype": "application/json",
        "sequence": event.version,
        "correlationid": event.correlation,
        "data": event.payload,
    })
}

/// A consumer of the event log.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Name; its cursor is stored as `bus:<name>`.
    fn name(&self) -> &str;

    /// Delivers a batch of events in global order. On error nothing of the batch counts as
    /// delivered and the batch is offered again.
    async fn deliver(&self, events: &[StoredEvent]) -> Result<(), Failure>;
}

/// Cursor name of a subscriber.
pub fn cursor_name(subscriber: &str) -> String {
    format!("bus:{subscriber}")
}

/// Feeds one subscriber from its cursor until `shutdown`.
pub async fn run(
    store: SharedStore,
    clock: Arc<dyn Clock>,
    subscriber: Arc<dyn Subscriber>,
    shutdown: CancellationToken,
) {
    let cursor = cursor_name(subscriber.name());
    let mut backoff = Duration::from_millis(100);
    info!(subscriber = subscriber.name(), "Event subscriber started");
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let wait = match step(&store, clock.as_ref(), subscriber.as_ref(), &cursor).await {
            Ok(0) => Duration::from_millis(250),
            Ok(_) => {
                backoff = Duration::from_millis(100);
                Duration::ZERO
            }
            Err(error) => {
                warn!(subscriber = subscriber.name(), %error, "Event delivery failed; will retry");
                backoff = (backoff * 2).min(Duration::from_secs(30));
                backoff
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Delivers the next batch after the subscriber's cursor and moves the cursor. Returns how
/// many events were delivered.
///
/// # Errors
/// The store or the subscriber failed; the cursor did not move.
pub async fn step(
    store: &SharedStore,
    clock: &dyn Clock,
    subscriber: &dyn Subscriber,
    cursor: &str,
) -> Result<usize, String> {
    let after: i64 = store
        .cursor(cursor)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let events = store
        .read_all(after, 500)
        .await
        .map_err(|e| e.to_string())?;
    let Some(last) = events.last().map(|e| e.global_seq) else {
        return Ok(0);
    };
    subscriber
        .deliver(&events)
        .await
        .map_err(|e| e.to_string())?;
    store
        .save_cursor(cursor, &last.to_string(), clock.now())
        .await
        .map_err(|e| e.to_string())?;
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_a_cloud_event() {
        let event = StoredEvent {
            global_seq: 42,
            stream: "order:ORD-1".to_owned(),
            version: 3,
            kind: "OrderBooked".to_owned(),
            payload: json!({"type": "OrderBooked", "data": {"erp_ref": "SO-1"}}),
            occurred_at: time::macros::datetime!(2026-11-27 10:00 UTC),
            recorded_at: time::macros::datetime!(2026-11-27 10:00:01 UTC),
            causation: None,
            correlation: Some("salesforce:1".to_owned()),
        };
        let envelope = cloud_event(&event);
        assert_eq!(envelope["specversion"], "1.0");
        assert_eq!(envelope["id"], "42");
        assert_eq!(envelope["type"], "crossdock.OrderBooked");
        assert_eq!(envelope["subject"], "ORD-1");
        assert_eq!(envelope["source"], "crossdock/order");
        assert_eq!(envelope["time"], "2026-11-27T10:00:00Z");
        assert_eq!(envelope["data"]["data"]["erp_ref"], "SO-1");
    }
}
