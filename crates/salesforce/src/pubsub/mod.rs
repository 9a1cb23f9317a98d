//! The Pub/Sub API subscriber: Change Data Capture over gRPC (`eventbus.v1`, TLS), decoded and
//! delivered to the hub's inbox as canonical messages.
//!
//! One `Subscribe` stream per topic, pull-based: `num_requested` events are asked for and more
//! are asked for once half are used. Each event is decoded in its writer schema (`GetSchema`
//! once per schema id), mapped ([`events`]); a response's messages are delivered as one page
//! to [`InboundSink::accept_page`] (which returns once they are durable) with the checkpoint
//! `("<subscriber>:<topic>", <replay id hex>)` of its last event — in the same durable write
//! where the sink keeps checkpoints, else saved after it with [`Checkpoints::save`]. A restart resumes
//! `CUSTOM` from that id, so nothing is lost; the inbox deduplicates by message id
//! (`<topic>/<replay id hex>`), so nothing is delivered twice.
//!
//! - Echoes of the hub's own writes (`changeOrigin` naming `client=<client_name>`, or the
//!   configured integration user as `commitUser`) are not delivered, but are checkpointed.
//! - `GAP_*` events: the named records are re-read and what they imply is delivered;
//!   `GAP_OVERFLOW`: the entity's records changed since the last commit seen are re-read.
//! - A stored replay id Salesforce no longer accepts (`…replayid.corrupted`): the gap is
//!   reported once as an `Unreadable` message, the records changed since the checkpoint's time
//!   are re-read, and the subscription restarts from `EARLIEST`.
//! - Stream errors reconnect with capped exponential backoff; `UNAUTHENTICATED` refreshes the
//!   token first.
//!
//! [`Subscriber`] is a component: `Subscriber::build(…)` then `run(shutdown)`; its
//! [`Counters`] can be read while it runs.

pub mod avro;
pub mod events;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crossdock_domain::ids::System;
use crossdock_ports::inbound::{Checkpoints, Inbound, InboundMessage, InboundSink};
use crossdock_ports::{Failure, FailureClass};
use serde_json::json;
use time::OffsetDateTime;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use self::avro::Schema;
use self::events::{ChangeEvent, Decoded, Interpreter, Meaning, entity_of_topic, origin_is};
use crate::adapter::Adapter;
use crate::auth::Token;
use crate::config::Start;
use crate::proto::pub_sub_client::PubSubClient;
use crate::proto::{FetchRequest, ReplayPreset, SchemaRequest};
use crate::{Error, Result};

/// Error code Salesforce puts in the `error-code` trailer for an invalid or expired replay id.
pub const REPLAY_CORRUPTED: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";

/// How often the checkpoint's commit time is saved at most (it may lag: re-reading from an
/// older time only re-reads more).
const TIME_CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
/// Attempts for a failure of unknown kind before the event is delivered as unreadable.
const UNKNOWN_ATTEMPTS: u32 = 5;

/// What the subscriber has done so far. Read it while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events received.
    pub received: AtomicU64,
    /// Events that were the hub's own writes (not delivered).
    pub suppressed: AtomicU64,
    /// Messages delivered to the inbox.
    pub delivered: AtomicU64,
    /// Gaps handled: `GAP_*` events and replay ids that were no longer valid.
    pub gaps: AtomicU64,
    /// Messages delivered as unreadable.
    pub unreadable: AtomicU64,
    /// Events with no canonical meaning (checkpointed, nothing delivered).
    pub ignored: AtomicU64,
    /// Stream (re)connections after an error.
    pub reconnects: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A plain copy of every counter.
    pub fn snapshot(&self) -> CounterValues {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterValues {
            received: get(&self.received),
            suppressed: get(&self.suppressed),
            delivered: get(&self.delivered),
            gaps: get(&self.gaps),
            unreadable: get(&self.unreadable),
            ignored: get(&self.ignored),
            reconnects: get(&self.reconnects),
        }
    }
}

/// A copy of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValues {
    /// Events received.
    pub received: u64,
    /// Events suppressed as the hub's own writes.
    pub suppressed: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Gaps handled.
    pub gaps: u64,
    /// Unreadable messages delivered.
    pub unreadable: u64,
    /// Events without meaning.
    pub ignored: u64,
    /// Reconnections.
    pub reconnects: u64,
}

/// How a subscription stream ended.
#[derive(Debug)]
enum End {
    /// The stored replay id is no longer valid.
    ReplayInvalid(String),
    /// The token was refused.
    Unauthenticated(Arc<Token>),
    /// Anything else; reconnect after a pause.
    Other(String),
    /// The stream closed normally.
    Closed,
}

/// Capped exponential backoff (200 ms doubling up to the configured maximum).
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Self {
            next: Duration::from_millis(200),
            max,
        }
    }

    fn reset(&mut self) {
        self.next = Duration::from_millis(200);
    }

    fn step(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// Where a topic's subscription starts.
#[derive(Debug, Clone)]
enum From {
    Latest,
    Earliest,
    After(Vec<u8>),
}

/// The Pub/Sub subscriber component.
pub struct Subscriber {
    adapter: Arc<Adapter>,
    sink: Arc<dyn InboundSink>,
    checkpoints: Arc<dyn Checkpoints>,
    endpoint: Endpoint,
    counters: Arc<Counters>,
    schemas: Mutex<HashMap<String, Arc<Schema>>>,
    /// Per checkpoint key: commit times of checkpointed events.
    times: Mutex<HashMap<String, Times>>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topics", &self.adapter.config().pubsub.topics)
            .field("counters", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Replay id bytes as lower-case hex (the checkpoint form).
pub fn replay_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a hex checkpoint back to bytes.
pub fn parse_replay_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Subscriber {
    /// A subscriber for the adapter's configured topics, delivering to `sink` and keeping its
    /// positions in `checkpoints`. Connects only when run.
    ///
    /// # Errors
    /// [`Error::File`] for an unreadable CA file, [`Error::Setup`] for a bad endpoint.
    pub fn build(
        adapter: Arc<Adapter>,
        sink: Arc<dyn InboundSink>,
        checkpoints: Arc<dyn Checkpoints>,
    ) -> Result<Self> {
        let config = adapter.config();
        let ps = &config.pubsub;
        let host = ps
            .endpoint
            .rsplit_once(':')
            .map_or(ps.endpoint.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut tls = ClientTlsConfig::new().with_webpki_roots().domain_name(host);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        let endpoint = Endpoint::from_shared(format!("https://{}", ps.endpoint))
            .map_err(|e| Error::Setup(format!("pubsub.endpoint `{}`: {e}", ps.endpoint)))?
            .connect_timeout(config.connect_timeout())
            .http2_keep_alive_interval(Duration::from_secs(60))
            .keep_alive_while_idle(true)
            .tls_config(tls)
            .map_err(|e| Error::Setup(format!("Pub/Sub TLS: {e}")))?;
        Ok(Self {
            adapter,
            sink,
            checkpoints,
            endpoint,
            counters: Arc::new(Counters::default()),
            schemas: Mutex::new(HashMap::new()),
            times: Mutex::new(HashMap::new()),
        })
    }

    /// The counters (a cheap handle; keep it to watch the subscriber while it runs).
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn key(&self, topic: &str) -> String {
        format!("{}:{topic}", self.adapter.config().pubsub.subscriber)
    }

    /// Subscribes to every configured topic until `shutdown` completes. Progress is
    /// checkpointed as it goes; on shutdown the commit-time checkpoints are flushed.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let topics = self.adapter.config().pubsub.topics.clone();
        let loops = futures::future::join_all(topics.iter().map(|t| self.run_topic(t)));
        tokio::select! {
            () = shutdown => {}
            _ = loops => {}
        }
        self.flush_times().await;
        tracing::info!(counters = ?self.counters.snapshot(), "Salesforce subscriber stopped");
    }

    async fn run_topic(&self, topic: &str) {
        let key = self.key(topic);
        let max = Duration::from_secs(self.adapter.config().pubsub.reconnect_max_secs);
        let mut backoff = Backoff::new(max);
        let mut from_earliest = false;
        loop {
            let from = if from_earliest {
                From::Earliest
            } else {
                match self.checkpoints.load(&key).await {
                    Ok(Some(hex)) => match parse_replay_hex(&hex) {
                        Some(bytes) => From::After(bytes),
                        None => {
                            tracing::warn!(topic, position = %hex, "Stored replay id is not hex; starting from the configured start");
                            self.configured_start()
                        }
                    },
                    Ok(None) => self.configured_start(),
                    Err(error) => {
                        tracing::warn!(topic, %error, "Cannot load the Pub/Sub checkpoint");
                        tokio::time::sleep(backoff.step()).await;
                        continue;
                    }
                }
            };
            let mut progressed = false;
            let end = self
                .stream(topic, &key, from.clone(), &mut progressed)
                .await;
            self.flush_time(&key).await;
            if progressed {
                backoff.reset();
                from_earliest = false;
            }
            match end {
                End::ReplayInvalid(message) => {
                    if let From::After(bytes) = &from {
                        self.replay_reset(topic, &key, bytes, &message).await;
                        from_earliest = true;
                    } else {
                        tracing::warn!(topic, %message, "Pub/Sub refused a replay position");
                    }
                    tokio::time::sleep(backoff.step()).await;
                }
                End::Unauthenticated(stale) => {
                    tracing::info!(topic, "Pub/Sub refused the access token; refreshing it");
                    if let Err(error) = self.adapter.client().tokens().refresh(&stale).await {
                        tracing::warn!(topic, %error, "Token refresh failed");
                    }
                    Counters::add(&self.counters.reconnects);
                    tokio::time::sleep(backoff.step()).await;
                }
                End::Other(message) => {
                    Counters::add(&self.counters.reconnects);
                    let wait = backoff.step();
                    tracing::warn!(topic, error = %message, wait_ms = wait.as_millis() as u64, "Pub/Sub stream failed; reconnecting");
                    tokio::time::sleep(wait).await;
                }
                End::Closed => {
                    Counters::add(&self.counters.reconnects);
                    tokio::time::sleep(backoff.step()).await;
                }
            }
        }
    }

    fn configured_start(&self) -> From {
        match self.adapter.config().pubsub.start {
            Start::Latest => From::Latest,
            Start::Earliest => From::Earliest,
        }
    }

    fn request<T>(&self, message: T, token: &Token) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let md = request.metadata_mut();
        for (key, value) in [
            ("accesstoken", token.access_token.expose()),
            ("instanceurl", token.instance_url.as_str()),
            ("tenantid", token.org_id.as_str()),
        ] {
            if let Ok(v) = MetadataValue::try_from(value) {
                md.insert(key, v);
            }
        }
        request
    }

    fn classify(status: &tonic::Status, token: &Arc<Token>) -> End {
        let code = status
            .metadata()
            .get("error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match status.code() {
            tonic::Code::Unauthenticated => End::Unauthenticated(token.clone()),
            tonic::Code::InvalidArgument
                if code == REPLAY_CORRUPTED || code.contains("replayid") =>
            {
                End::ReplayInvalid(status.message().to_owned())
            }
            _ => End::Other(format!(
                "{:?}: {} {}",
                status.code(),
                status.message(),
                code
            )),
        }
    }

    /// The writer schema of `id` (fetched once, then cached). The inner error is a schema
    /// that can never be used (unknown to Salesforce, or not valid Avro); the outer one a
    /// stream problem worth reconnecting for.
    async fn schema(
        &self,
        client: &mut PubSubClient<Channel>,
        token: &Arc<Token>,
        id: &str,
    ) -> std::result::Result<std::result::Result<Arc<Schema>, String>, End> {
        if let Some(s) = lock(&self.schemas).get(id) {
            return Ok(Ok(s.clone()));
        }
        let answer = client
            .get_schema(self.request(
                SchemaRequest {
                    schema_id: id.to_owned(),
                },
                token,
            ))
            .await;
        let info = match answer {
            Ok(info) => info.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Ok(Err(format!(
                    "Salesforce does not know schema {id}: {}",
                    status.message()
                )));
            }
            Err(status) => return Err(Self::classify(&status, token)),
        };
        let schema = match avro::parse_schema(&info.schema_json) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("schema {id}: {e}"))),
        };
        // A new schema may mean new fields: read the object's describe again when needed.
        if let Schema::Record { name, .. } = &schema {
            let short = name.rsplit('.').next().unwrap_or(name);
            if let Some(entity) = entity_of_topic(&format!("/data/{short}")) {
                self.adapter.forget_fields(&entity);
            }
        }
        let schema = Arc::new(schema);
        lock(&self.schemas).insert(id.to_owned(), schema.clone());
        Ok(Ok(schema))
    }

    async fn stream(&self, topic: &str, key: &str, from: From, progressed: &mut bool) -> End {
        let token = match self.adapter.client().tokens().get().await {
            Ok(t) => t,
            Err(f) => return End::Other(format!("no access token: {f}")),
        };
        let channel = match self.endpoint.connect().await {
            Ok(c) => c,
            Err(e) => return End::Other(format!("cannot connect: {}", crate::errors::chain(&e))),
        };
        let mut client = PubSubClient::new(channel);
        let window = self.adapter.config().pubsub.num_requested;
        let (preset, replay_id) = match &from {
            From::Latest => (ReplayPreset::Latest, Vec::new()),
            From::Earliest => (ReplayPreset::Earliest, Vec::new()),
            From::After(bytes) => (ReplayPreset::Custom, bytes.clone()),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let first = FetchRequest {
            topic_name: topic.to_owned(),
            replay_preset: preset as i32,
            replay_id,
            num_requested: window,
            auth_refresh: String::new(),
        };
        if tx.send(first).await.is_err() {
            return End::Other("request stream closed".into());
        }
        let mut events = match client
            .subscribe(self.request(ReceiverStream::new(rx), &token))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return Self::classify(&s, &token),
        };
        tracing::info!(topic, from = ?preset, "Subscribed to Salesforce events");
        let mut credit = window;
        let mut last_saved: Option<Vec<u8>> = match &from {
            From::After(b) => Some(b.clone()),
            _ => None,
        };
        loop {
            let response = match events.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return End::Closed,
                Err(s) => return Self::classify(&s, &token),
            };
            let count = i32::try_from(response.events.len()).unwrap_or(i32::MAX);
            credit = credit.saturating_sub(count);
            // The response's events are interpreted first, then delivered as one page with
            // the checkpoint of the last one (one durable write where the sink keeps
            // checkpoints). An event that ends the stream ends the page before it.
            let mut page = Vec::new();
            let mut last = None;
            let mut commit = None;
            let mut ended = None;
            for consumer in response.events {
                let replay = consumer.replay_id.clone();
                let Some(event) = consumer.event else {
                    continue;
                };
                match self
                    .interpret(&mut client, &token, topic, &replay, &event)
                    .await
                {
                    Ok((messages, at)) => {
                        page.extend(messages);
                        commit = commit.max(at);
                        last = Some(replay);
                    }
                    Err(end) => {
                        ended = Some(end);
                        break;
                    }
                }
            }
            if let Some(replay) = last {
                self.deliver_page(Some((key, &replay_hex(&replay))), page)
                    .await;
                if let Some(ms) = commit {
                    self.note_time(key, ms).await;
                }
                last_saved = Some(replay);
                *progressed = true;
            }
            if let Some(end) = ended {
                return end;
            }
            if count == 0 && !response.latest_replay_id.is_empty() {
                // Keepalive: nothing for this topic up to here, so resume after it.
                if last_saved.as_ref() != Some(&response.latest_replay_id) {
                    let hex = replay_hex(&response.latest_replay_id);
                    if self.checkpoints.save(key, &hex).await.is_ok() {
                        last_saved = Some(response.latest_replay_id.clone());
                        *progressed = true;
                    }
                }
            }
            if credit <= window / 2 {
                let more = FetchRequest {
                    topic_name: topic.to_owned(),
                    replay_preset: ReplayPreset::Latest as i32,
                    replay_id: Vec::new(),
                    num_requested: window - credit,
                    auth_refresh: String::new(),
                };
                if tx.send(more).await.is_err() {
                    return End::Other("request stream closed".into());
                }
                credit = window;
            }
        }
    }

    /// Decodes and interprets one event: the messages it means (none for an echo of the
    /// hub's own write or an event of no interest) and its commit time.
    async fn interpret(
        &self,
        client: &mut PubSubClient<Channel>,
        token: &Arc<Token>,
        topic: &str,
        replay: &[u8],
        event: &crate::proto::ProducerEvent,
    ) -> std::result::Result<(Vec<(String, String, Inbound)>, Option<i64>), End> {
        Counters::add(&self.counters.received);
        let hex = replay_hex(replay);
        let base_id = format!("{topic}/{hex}");
        let schema = self.schema(client, token, &event.schema_id).await?;
        let raw_undecoded = || {
            json!({
                "topic": topic,
                "replayId": hex,
                "schemaId": event.schema_id,
                "eventId": event.id,
                "payload": STANDARD.encode(&event.payload),
            })
            .to_string()
        };
        let decoded = match &schema {
            Ok(schema) => events::decode_event(schema, &event.payload),
            Err(reason) => Err(reason.clone()),
        };
        let mut commit = None;
        let messages: Vec<(String, String, Inbound)> = match &decoded {
            Err(reason) => vec![(
                base_id.clone(),
                raw_undecoded(),
                Inbound::Unreadable {
                    reason: format!("{topic} event {hex} cannot be decoded: {reason}"),
                },
            )],
            Ok(Decoded::Other(_)) => {
                Counters::add(&self.counters.ignored);
                Vec::new()
            }
            Ok(Decoded::Change(ev)) => {
                commit = Some(ev.commit_timestamp);
                if self.suppressed(ev) {
                    Counters::add(&self.counters.suppressed);
                    Vec::new()
                } else {
                    let messages = self.meanings(topic, &hex, ev).await;
                    if messages.is_empty() {
                        Counters::add(&self.counters.ignored);
                    }
                    messages
                }
            }
        };
        Ok((messages, commit))
    }

    /// Hands a page of messages to the inbox with the checkpoint `(key, replay id hex)` after
    /// them, if any, retrying until it is durable (only shutdown stops it); saves the
    /// checkpoint itself when the sink does not keep checkpoints.
    async fn deliver_page(
        &self,
        checkpoint: Option<(&str, &str)>,
        messages: Vec<(String, String, Inbound)>,
    ) {
        let now = self.adapter.clock().now();
        let unreadable = messages
            .iter()
            .filter(|(_, _, body)| matches!(body, Inbound::Unreadable { .. }))
            .count();
        let page: Vec<InboundMessage> = messages
            .into_iter()
            .map(|(message_id, raw, body)| InboundMessage {
                source: System::Salesforce,
                message_id,
                received_at: now,
                raw,
                body,
            })
            .collect();
        let delivered = page.len();
        let max = Duration::from_secs(self.adapter.config().pubsub.reconnect_max_secs);
        let mut backoff = Backoff::new(max);
        let owned = checkpoint.map(|(key, hex)| (key.to_owned(), hex.to_owned()));
        let saved = loop {
            match self.sink.accept_page(page.clone(), owned.clone()).await {
                Ok(saved) => break saved,
                Err(error) => {
                    let wait = backoff.step();
                    tracing::warn!(%error, checkpoint = ?checkpoint, "Inbox refused a page of Salesforce messages; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.counters
            .delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
        self.counters
            .unreadable
            .fetch_add(unreadable as u64, Ordering::Relaxed);
        if let (Some((key, hex)), false) = (checkpoint, saved) {
            self.save(key, hex).await;
        }
    }

    fn suppressed(&self, ev: &ChangeEvent) -> bool {
        let config = self.adapter.config();
        if ev.is_gap() {
            return false;
        }
        origin_is(&ev.change_origin, &config.client_name)
            || config
                .integration_user_id
                .as_deref()
                .is_some_and(|u| !u.is_empty() && same_id(u, &ev.commit_user))
    }

    /// The messages of one decoded, non-suppressed event, retrying Salesforce reads.
    async fn meanings(
        &self,
        topic: &str,
        hex: &str,
        ev: &ChangeEvent,
    ) -> Vec<(String, String, Inbound)> {
        let raw = ev.json.to_string();
        let interpreter = Interpreter {
            adapter: &self.adapter,
        };
        let max = Duration::from_secs(self.adapter.config().pubsub.reconnect_max_secs);
        let mut backoff = Backoff::new(max);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = if ev.is_gap() {
                self.gap(&interpreter, topic, ev).await
            } else {
                interpreter.event(ev).await
            };
            match result {
                Ok(meanings) => {
                    if ev.is_gap() {
                        Counters::add(&self.counters.gaps);
                        let id = |m: &Meaning| format!("{topic}/{hex}/{}/{}", m.record_id, m.kind);
                        return meanings
                            .into_iter()
                            .map(|m| (id(&m), raw.clone(), m.body))
                            .collect();
                    }
                    let single = meanings.len() == 1;
                    return meanings
                        .into_iter()
                        .enumerate()
                        .map(|(i, m)| {
                            let id = if single {
                                format!("{topic}/{hex}")
                            } else {
                                format!("{topic}/{hex}/{}", i + 1)
                            };
                            (id, raw.clone(), m.body)
                        })
                        .collect();
                }
                Err(f)
                    if f.class == FailureClass::Permanent
                        || (f.class == FailureClass::Unknown && attempts >= UNKNOWN_ATTEMPTS) =>
                {
                    return vec![(
                        format!("{topic}/{hex}"),
                        raw,
                        Inbound::Unreadable {
                            reason: format!(
                                "{} {} event cannot be interpreted: {f}",
                                ev.entity, ev.change_type
                            ),
                        },
                    )];
                }
                Err(f) => {
                    let wait = backoff.step();
                    tracing::warn!(topic, error = %f, wait_ms = wait.as_millis() as u64, "Reading from Salesforce for an event failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Re-reads what a gap event names.
    async fn gap(
        &self,
        interpreter: &Interpreter<'_>,
        topic: &str,
        ev: &ChangeEvent,
    ) -> std::result::Result<Vec<Meaning>, Failure> {
        tracing::warn!(topic, change = %ev.change_type, records = ev.record_ids.len(), "Salesforce sent a gap event; re-reading");
        match ev.change_type.as_str() {
            "GAP_DELETE" => Ok(Vec::new()),
            "GAP_OVERFLOW" => {
                // Changes of the overflowing transaction carry its commit time; a minute of
                // slack covers clock differences between Salesforce's servers.
                let since_ms = self
                    .last_time(&self.key(topic))
                    .unwrap_or(ev.commit_timestamp)
                    .saturating_sub(60_000);
                let since = ms_to_time(since_ms).unwrap_or_else(|| self.adapter.clock().now());
                let ids = interpreter.changed_since(&ev.entity, since).await?;
                interpreter.reread(&ev.entity, &ids).await
            }
            _ => interpreter.reread(&ev.entity, &ev.record_ids).await,
        }
    }

    /// Handles a stored replay id that Salesforce refused: reports the gap once, re-reads
    /// what changed since the checkpoint's time.
    async fn replay_reset(&self, topic: &str, key: &str, stored: &[u8], message: &str) {
        Counters::add(&self.counters.gaps);
        let hex = replay_hex(stored);
        let window = self.adapter.config().pubsub.resync_window_secs;
        let now = self.adapter.clock().now();
        let since = match self.checkpoints.load(&format!("{key}#time")).await {
            Ok(Some(ms)) => ms.parse::<i64>().ok().and_then(ms_to_time),
            _ => None,
        }
        .unwrap_or_else(|| now - Duration::from_secs(window));
        tracing::warn!(topic, replay_id = %hex, since = %since, "Stored replay id is no longer valid; resubscribing from the earliest event and re-reading changed records");
        let raw = json!({
            "topic": topic,
            "storedReplayId": hex,
            "error": message,
            "rereadSince": crate::mapping::datetime(since),
        })
        .to_string();
        let reason = format!(
            "Salesforce no longer accepts replay id {hex} stored for {topic} ({message}); events after it may be missing. Resubscribed from the earliest retained event and re-read records changed since {}.",
            crate::mapping::datetime(since)
        );
        let notice = (
            format!("{topic}/replay-reset/{hex}"),
            raw.clone(),
            Inbound::Unreadable { reason },
        );
        let mut messages = vec![notice];
        if let Some(entity) = entity_of_topic(topic) {
            let interpreter = Interpreter {
                adapter: &self.adapter,
            };
            let max = Duration::from_secs(self.adapter.config().pubsub.reconnect_max_secs);
            let mut backoff = Backoff::new(max);
            for attempt in 1..=UNKNOWN_ATTEMPTS {
                let result = async {
                    let ids = interpreter.changed_since(&entity, since).await?;
                    interpreter.reread(&entity, &ids).await
                }
                .await;
                match result {
                    Ok(meanings) => {
                        messages.extend(meanings.into_iter().map(|m| {
                            (
                                format!("{topic}/resync/{hex}/{}/{}", m.record_id, m.kind),
                                raw.clone(),
                                m.body,
                            )
                        }));
                        break;
                    }
                    Err(f) if attempt == UNKNOWN_ATTEMPTS || !events::retryable(&f) => {
                        messages.push((
                            format!("{topic}/resync/{hex}/failed"),
                            raw.clone(),
                            Inbound::Unreadable {
                                reason: format!(
                                    "Re-reading {entity} records changed since {} failed: {f}",
                                    crate::mapping::datetime(since)
                                ),
                            },
                        ));
                        break;
                    }
                    Err(f) => {
                        tracing::warn!(topic, error = %f, "Re-read after a replay reset failed; retrying");
                        tokio::time::sleep(backoff.step()).await;
                    }
                }
            }
        }
        self.deliver_page(None, messages).await;
    }

    /// Saves a replay-id checkpoint, retrying until the store takes it.
    async fn save(&self, key: &str, hex: &str) {
        let max = Duration::from_secs(self.adapter.config().pubsub.reconnect_max_secs);
        let mut backoff = Backoff::new(max);
        loop {
            match self.checkpoints.save(key, hex).await {
                Ok(()) => return,
                Err(error) => {
                    let wait = backoff.step();
                    tracing::warn!(%error, key, "Cannot save the Pub/Sub checkpoint; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn last_time(&self, key: &str) -> Option<i64> {
        lock(&self.times).get(key).map(|t| t.last)
    }

    /// Remembers the commit time of a checkpointed event; persists it every
    /// [`TIME_CHECKPOINT_EVERY`].
    async fn note_time(&self, key: &str, ms: i64) {
        let due = {
            let mut times = lock(&self.times);
            let t = times.entry(key.to_owned()).or_insert(Times {
                last: ms,
                saved: None,
            });
            t.last = t.last.max(ms);
            t.saved
                .is_none_or(|saved| t.last - saved >= TIME_CHECKPOINT_EVERY.as_millis() as i64)
        };
        if due {
            self.flush_time(key).await;
        }
    }

    async fn flush_time(&self, key: &str) {
        let pending = lock(&self.times)
            .get(key)
            .filter(|t| t.saved != Some(t.last))
            .map(|t| t.last);
        let Some(ms) = pending else {
            return;
        };
        if self
            .checkpoints
            .save(&format!("{key}#time"), &ms.to_string())
            .await
            .is_ok()
            && let Some(t) = lock(&self.times).get_mut(key)
        {
            t.saved = Some(ms);
        }
    }

    async fn flush_times(&self) {
        let keys: Vec<String> = lock(&self.times).keys().cloned().collect();
        for key in keys {
            self.flush_time(&key).await;
        }
    }
}

/// Commit times of one topic: the latest checkpointed and the one last persisted.
#[derive(Debug, Clone, Copy)]
struct Times {
    last: i64,
    saved: Option<i64>,
}

/// Compares record ids in their 15- or 18-character forms.
fn same_id(a: &str, b: &str) -> bool {
    let cut = |s: &str| s.get(..15).unwrap_or(s).to_owned();
    !a.is_empty() && !b.is_empty() && cut(a) == cut(b)
}

fn ms_to_time(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
