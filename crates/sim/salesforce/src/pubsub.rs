//! The Pub/Sub API (`eventbus.v1.PubSub`) over TLS gRPC: GetTopic, GetSchema, Subscribe with
//! pull-based flow control and keepalives, Publish and PublishStream for platform events.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::cdc::{Topic, change_schema, parse_topic, platform_schema};
use crate::proto::pub_sub_server::PubSub;
use crate::proto::{
    ConsumerEvent, Error as PsError, ErrorCode, FetchRequest, FetchResponse, ManagedFetchRequest,
    ManagedFetchResponse, ProducerEvent, PublishRequest, PublishResponse, PublishResult,
    ReplayPreset, SchemaInfo, SchemaRequest, TopicInfo, TopicRequest,
};
use crate::state::{Shared, lock};

/// Most events a single `FetchRequest` may ask for.
const MAX_REQUESTED: i32 = 100;

/// Error code trailer for an invalid or expired replay id.
pub const REPLAY_CORRUPTED: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
/// Error code trailer for authentication failures.
pub const AUTH_ERROR: &str = "sfdc.platform.eventbus.grpc.service.auth.error";

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Pub/Sub service.
pub struct Service {
    shared: Arc<Shared>,
    rpc: Arc<AtomicU64>,
    /// Ends open streams when the simulator stops.
    shutdown: CancellationToken,
}

impl Service {
    /// A service over the shared org; its streams end when `shutdown` is cancelled.
    pub fn new(shared: Arc<Shared>, shutdown: CancellationToken) -> Service {
        Service {
            shared,
            rpc: Arc::new(AtomicU64::new(1)),
            shutdown,
        }
    }
}

fn rpc_id(counter: &AtomicU64) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        n & 0xffff,
        n & 0xfff,
        (n >> 12) & 0xfff,
        n
    )
}

fn status(code: tonic::Code, error_code: &str, message: &str, rpc: &str) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(error_code) {
        md.insert("error-code", v);
    }
    if let Ok(v) = MetadataValue::try_from(rpc) {
        md.insert("rpc-id", v);
    }
    Status::with_metadata(code, format!("{message} rpcId: {rpc}"), md)
}

fn replay_bytes(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

impl Service {
    fn authenticate(&self, md: &MetadataMap, rpc: &str) -> Result<(), Status> {
        let get = |k: &str| {
            md.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let token = get("accesstoken");
        let tenant = get("tenantid");
        let instance = get("instanceurl");
        let org15 = self.shared.org_id15();
        let tenant_ok = tenant.len() >= 15
            && tenant.get(..15) == Some(org15)
            && matches!(tenant.len(), 15 | 18);
        if token.is_empty()
            || instance.is_empty()
            || !tenant_ok
            || !auth::token_valid(&self.shared, &token)
        {
            return Err(status(
                tonic::Code::Unauthenticated,
                AUTH_ERROR,
                "An error occurred while trying to authenticate. Check that the access token, instance URL and tenant id are valid.",
                rpc,
            ));
        }
        Ok(())
    }

    fn topic(&self, name: &str, rpc: &str) -> Result<Topic, Status> {
        let org = lock(&self.shared.org);
        parse_topic(&org.meta, name).ok_or_else(|| {
            status(
                tonic::Code::NotFound,
                "sfdc.platform.eventbus.grpc.service.topic.not.found",
                &format!("Topic {name} does not exist or you don't have access to it."),
                rpc,
            )
        })
    }

    fn publish_batch(&self, req: &PublishRequest, rpc: &str) -> Result<PublishResponse, Status> {
        let topic = self.topic(&req.topic_name, rpc)?;
        let Topic::Platform(name) = topic else {
            return Err(status(
                tonic::Code::PermissionDenied,
                "sfdc.platform.eventbus.grpc.service.publish.not.allowed",
                &format!("Publishing to {} is not allowed.", req.topic_name),
                rpc,
            ));
        };
        let now = self.shared.clock.now_ms();
        let mut org = lock(&self.shared.org);
        let Some(obj) = org.meta.object_index(&name) else {
            return Err(status(
                tonic::Code::NotFound,
                "sfdc.platform.eventbus.grpc.service.topic.not.found",
                "Unknown topic",
                rpc,
            ));
        };
        let def = org.meta.objects[obj].clone();
        let current = org.events.register_schema(platform_schema(&def).0);
        let results = req
            .events
            .iter()
            .map(|ev| {
                match org
                    .events
                    .publish_platform(&def, &ev.schema_id, ev.payload.clone(), now)
                {
                    Ok(replay) => PublishResult {
                        replay_id: replay_bytes(replay),
                        error: None,
                        correlation_key: ev.id.clone(),
                    },
                    Err(msg) => PublishResult {
                        replay_id: Vec::new(),
                        error: Some(PsError {
                            code: ErrorCode::Publish as i32,
                            msg,
                        }),
                        correlation_key: ev.id.clone(),
                    },
                }
            })
            .collect();
        Ok(PublishResponse {
            results,
            schema_id: current,
            rpc_id: rpc.to_string(),
        })
    }
}

#[tonic::async_trait]
impl PubSub for Service {
    type SubscribeStream = BoxStream<FetchResponse>;
    type PublishStreamStream = BoxStream<PublishResponse>;
    type ManagedSubscribeStream = BoxStream<ManagedFetchResponse>;

    async fn get_topic(
        &self,
        request: Request<TopicRequest>,
    ) -> Result<Response<TopicInfo>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        let name = request.into_inner().topic_name;
        let topic = self.topic(&name, &rpc)?;
        let mut org = lock(&self.shared.org);
        let (schema_id, can_publish) = match &topic {
            Topic::AllChanges => (String::new(), false),
            Topic::Changes(entity) => {
                let schema = org
                    .meta
                    .object(entity)
                    .map(|d| change_schema(d).0)
                    .unwrap_or_default();
                (org.events.register_schema(schema), false)
            }
            Topic::Platform(event) => {
                let schema = org
                    .meta
                    .object(event)
                    .map(|d| platform_schema(d).0)
                    .unwrap_or_default();
                (org.events.register_schema(schema), true)
            }
        };
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: self.shared.org_id18.clone(),
            can_publish,
            can_subscribe: true,
            schema_id,
            rpc_id: rpc,
        }))
    }

    async fn get_schema(
        &self,
        request: Request<SchemaRequest>,
    ) -> Result<Response<SchemaInfo>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        let id = request.into_inner().schema_id;
        let org = lock(&self.shared.org);
        match org.events.schema(&id) {
            Some(json) => Ok(Response::new(SchemaInfo {
                schema_json: json.to_string(),
                schema_id: id,
                rpc_id: rpc,
            })),
            None => Err(status(
                tonic::Code::NotFound,
                "sfdc.platform.eventbus.grpc.schema.not.found",
                &format!("Schema {id} was not found."),
                &rpc,
            )),
        }
    }

    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        self.publish_batch(&request.into_inner(), &rpc)
            .map(Response::new)
    }

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let svc = Service {
            shared: self.shared.clone(),
            rpc: self.rpc.clone(),
            shutdown: self.shutdown.clone(),
        };
        let stop_on = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let req = tokio::select! {
                    () = stop_on.cancelled() => return,
                    m = inbound.message() => match m {
                        Ok(Some(req)) => req,
                        _ => return,
                    },
                };
                let reply = svc.publish_batch(&req, &rpc);
                let stop = reply.is_err();
                if tx.send(reply).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn subscribe(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let shared = self.shared.clone();
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = run_subscription(shared, inbound, tx, rpc) => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn managed_subscribe(
        &self,
        request: Request<Streaming<ManagedFetchRequest>>,
    ) -> Result<Response<Self::ManagedSubscribeStream>, Status> {
        let rpc = rpc_id(&self.rpc);
        self.authenticate(request.metadata(), &rpc)?;
        Err(status(
            tonic::Code::Unimplemented,
            "sfdc.platform.eventbus.grpc.service.unimplemented",
            "Managed subscriptions are not available in this org.",
            &rpc,
        ))
    }
}

fn credit(n: i32) -> usize {
    usize::try_from(n.clamp(0, MAX_REQUESTED)).unwrap_or(0)
}

/// Drives one Subscribe stream until the client leaves or an error ends it.
async fn run_subscription(
    shared: Arc<Shared>,
    mut inbound: Streaming<FetchRequest>,
    tx: mpsc::Sender<Result<FetchResponse, Status>>,
    rpc: String,
) {
    let Ok(Some(first)) = inbound.message().await else {
        return;
    };
    let fail = |s: Status| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Err(s)).await;
        }
    };
    let topic = {
        let org = lock(&shared.org);
        parse_topic(&org.meta, &first.topic_name)
    };
    let Some(topic) = topic else {
        fail(status(
            tonic::Code::NotFound,
            "sfdc.platform.eventbus.grpc.service.topic.not.found",
            &format!(
                "Topic {} does not exist or you don't have access to it.",
                first.topic_name
            ),
            &rpc,
        ))
        .await;
        return;
    };
    let (mut cursor, mut notify) = {
        let mut org = lock(&shared.org);
        let now = shared.clock.now_ms();
        org.events.expire(now);
        let preset = ReplayPreset::try_from(first.replay_preset).unwrap_or(ReplayPreset::Latest);
        let cursor = match preset {
            ReplayPreset::Latest => Some(org.events.latest()),
            ReplayPreset::Earliest => Some(
                org.events
                    .events()
                    .front()
                    .map_or(org.events.latest(), |e| e.replay_id - 1),
            ),
            ReplayPreset::Custom => <[u8; 8]>::try_from(first.replay_id.as_slice())
                .ok()
                .map(u64::from_be_bytes)
                .filter(|&r| org.events.replay_valid(r)),
        };
        (cursor, org.events.subscribe_notify())
    };
    let Some(mut position) = cursor.take() else {
        fail(status(tonic::Code::InvalidArgument, REPLAY_CORRUPTED, "The Replay ID validation failed. Ensure that the Replay ID is valid and within the retention window.", &rpc)).await;
        return;
    };
    let mut outstanding = credit(first.num_requested);
    let keepalive = Duration::from_secs(shared.config.keepalive_secs.max(1));
    loop {
        if outstanding > 0 {
            let batch = lock(&shared.org)
                .events
                .after(&topic, position, outstanding);
            if !batch.is_empty() {
                outstanding -= batch.len();
                position = batch.last().map_or(position, |e| e.replay_id);
                let events = batch
                    .into_iter()
                    .map(|e| ConsumerEvent {
                        event: Some(ProducerEvent {
                            id: e.event_id.clone(),
                            schema_id: e.schema_id.clone(),
                            payload: e.payload.clone(),
                            headers: Vec::new(),
                        }),
                        replay_id: replay_bytes(e.replay_id),
                    })
                    .collect();
                let resp = FetchResponse {
                    events,
                    latest_replay_id: replay_bytes(position),
                    rpc_id: rpc.clone(),
                    pending_num_requested: i32::try_from(outstanding).unwrap_or(0),
                };
                // Events (and replay ids) go out only once they are saved.
                if let Some(p) = &shared.persister
                    && !p.wait_durable(&shared).await
                {
                    return;
                }
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
                continue;
            }
        }
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => {
                    if !req.topic_name.is_empty() && req.topic_name != first.topic_name {
                        fail(status(tonic::Code::InvalidArgument, "sfdc.platform.eventbus.grpc.subscription.topic.mismatch", "A subscription stream can't change its topic.", &rpc)).await;
                        return;
                    }
                    outstanding = (outstanding + credit(req.num_requested)).min(usize::try_from(i32::MAX).unwrap_or(usize::MAX));
                }
                _ => return,
            },
            changed = notify.changed(), if outstanding > 0 => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(keepalive), if outstanding > 0 => {
                // Nothing for this topic up to the log's latest id: the client may resume from it.
                let latest = lock(&shared.org).events.latest();
                if lock(&shared.org).events.after(&topic, position, 1).is_empty() {
                    position = position.max(latest);
                }
                let resp = FetchResponse {
                    events: Vec::new(),
                    latest_replay_id: replay_bytes(position),
                    rpc_id: rpc.clone(),
                    pending_num_requested: i32::try_from(outstanding).unwrap_or(0),
                };
                // Events (and replay ids) go out only once they are saved.
                if let Some(p) = &shared.persister
                    && !p.wait_durable(&shared).await
                {
                    return;
                }
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}
