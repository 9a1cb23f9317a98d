//! The event log reaches NATS JetStream as CloudEvents, in order, once.

use std::sync::Arc;
use std::time::Duration;

use crossdock_engine::bus::nats::{NatsConfig, NatsPublisher};
use crossdock_engine::bus::{self, Subscriber};
use crossdock_ports::{Clock, SystemClock};
use futures::StreamExt;

use super::harness::{Hub, capture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_to_jetstream_once_even_when_replayed() {
    let (hub, _, _) = Hub::loopback("nats").await;
    let unique = format!("T{}", std::process::id());
    let config = NatsConfig {
        url: "nats://127.0.0.1:4222".to_owned(),
        stream: format!("CROSSDOCK_TEST_{unique}"),
        subject_prefix: format!("cdtest{unique}"),
    };
    let publisher =
        Arc::new(NatsPublisher::connect(&config).await.expect(
            "NATS with JetStream must answer on 127.0.0.1:4222 (scripts/setup/services.sh)",
        ));
    hub.submit(capture("NATS-1", "ACC-1")).await;
    let store = hub.store.clone();
    hub.wait_for_order(Duration::from_secs(30), "NATS-1", "NATS-1 closed", |r| {
        r.status == "Closed"
    })
    .await;
    let events = store.read_stream("order:NATS-1").await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cursor = bus::cursor_name(publisher.name());
    while bus::step(&store, clock.as_ref(), publisher.as_ref(), &cursor)
        .await
        .unwrap()
        > 0
    {}

    let client = async_nats::connect(&config.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(&config.stream).await.unwrap();
    let published = stream.info().await.unwrap().state.messages;
    let total = store.read_all(0, 100_000).await.unwrap().len() as u64;
    assert_eq!(published, total, "one message per stored event");

    // Replay from the start: JetStream drops the duplicates by Nats-Msg-Id.
    store.save_cursor(&cursor, "0", clock.now()).await.unwrap();
    while bus::step(&store, clock.as_ref(), publisher.as_ref(), &cursor)
        .await
        .unwrap()
        > 0
    {}
    assert_eq!(stream.info().await.unwrap().state.messages, total);

    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{}.order.>", config.subject_prefix),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(1_000)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut types = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let envelope: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        if envelope["subject"] == "NATS-1" {
            assert_eq!(envelope["specversion"], "1.0");
            types.push(envelope["type"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = events
        .iter()
        .map(|e| format!("crossdock.{}", e.kind))
        .collect();
    assert_eq!(types, expected, "every event of the order, in order");
    js.delete_stream(&config.stream).await.unwrap();
    hub.stop().await;
}
