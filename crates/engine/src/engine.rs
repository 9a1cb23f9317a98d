//! The engine: lane dispatchers lease tasks from the store, run them through handlers, and
//! record every outcome (success, retry with backoff, dead letter) with a timeline entry.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use crossdock_domain::ids::OrderId;
use crossdock_domain::order::Lane as LaneName;
use crossdock_ports::inbound::{Accepted, InboundMessage, InboundSink, SinkError};
use crossdock_ports::{Clock, Erp, Failure, FailureClass, Rng, Salesforce};
use crossdock_store::{
    CursorMove, Decision, Lease, LeaseRequest, NewDeadLetter, NewInbound, NewTask, SharedStore,
    StreamAppend, TimelineEntry,
};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::apply::{LoadError, Loaded, stream_id};
use crate::cache::OrderCache;
use crate::chain::{Call, Reservation, Reserved};
use crate::config::EngineConfig;
use crate::handlers::{self, Outcome, conflict};
use crate::lane::{BreakerState, Lane, Slot};
use crate::metrics::Metrics;
use crate::retry::Next;

/// The ports and settings an engine is built from.
pub struct Parts {
    /// Durable store.
    pub store: SharedStore,
    /// ERP adapter.
    pub erp: Arc<dyn Erp>,
    /// Salesforce adapter.
    pub salesforce: Arc<dyn Salesforce>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness (retry jitter).
    pub rng: Arc<dyn Rng>,
    /// Settings.
    pub config: EngineConfig,
}

/// The running hub core. Cheap to share (`Arc`).
pub struct Engine {
    pub(crate) store: SharedStore,
    pub(crate) erp: Arc<dyn Erp>,
    pub(crate) salesforce: Arc<dyn Salesforce>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) config: EngineConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cache: OrderCache,
    lanes: BTreeMap<LaneName, Lane>,
    wake: BTreeMap<LaneName, Arc<Notify>>,
    // This engine, for starting calls from `&self` (an accepted message's first step).
    me: Weak<Engine>,
    // While `run` runs: its calls and its shutdown signal.
    running: OnceLock<(TaskTracker, CancellationToken)>,
}

impl Engine {
    /// Builds an engine (nothing runs until [`Engine::run`]).
    pub fn new(parts: Parts) -> Arc<Self> {
        let lanes = LaneName::ALL
            .into_iter()
            .map(|lane| (lane, Lane::new(lane.as_str(), parts.config.lane(lane))))
            .collect();
        let wake = LaneName::ALL
            .into_iter()
            .map(|lane| (lane, Arc::new(Notify::new())))
            .collect();
        let cache = OrderCache::new(parts.config.order_cache);
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            running: OnceLock::new(),
            store: parts.store,
            erp: parts.erp,
            salesforce: parts.salesforce,
            clock: parts.clock,
            rng: parts.rng,
            config: parts.config,
            metrics: Arc::new(Metrics::default()),
            cache,
            lanes,
            wake,
        })
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The ERP adapter.
    pub fn erp(&self) -> &Arc<dyn Erp> {
        &self.erp
    }

    /// The Salesforce adapter.
    pub fn salesforce(&self) -> &Arc<dyn Salesforce> {
        &self.salesforce
    }

    /// Runtime state of a lane (breaker, pause, rate).
    pub fn lane(&self, lane: LaneName) -> &Lane {
        &self.lanes[&lane]
    }

    /// Wakes a lane's dispatcher (new work was enqueued by this process).
    pub fn wake(&self, lane: LaneName) {
        self.wake[&lane].notify_one();
    }

    /// The state of `order` as the leased task sees it: from the cache when the order was
    /// active lately (and the cache is at least at the version the task was created at), else
    /// folded from its stream. The task's decisions will assert this version.
    ///
    /// # Errors
    /// Store failures and undecodable events.
    pub(crate) async fn load_order(
        &self,
        lease: &Lease,
        order: &OrderId,
    ) -> Result<Arc<Loaded>, LoadError> {
        // Bookkeeping is per lease (a task id can come back for a new task once deleted).
        let task = lease.token;
        let at_least = lease
            .task
            .payload
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if let Some(loaded) = self.cache.get(task, order.as_str(), at_least) {
            return Ok(loaded);
        }
        let loaded = Arc::new(crate::apply::load(&self.store, order).await?);
        self.cache
            .put_read(task, order.as_str(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Makes `decision` assert the order version its lease read, when it appends nothing
    /// itself: a decision taken on state that has moved on then fails as a conflict.
    fn guard(&self, lease: i64, decision: &mut Decision) {
        if decision.append.is_none()
            && let Some(read) = self.cache.read_by(lease)
        {
            decision.append = Some(StreamAppend {
                stream: stream_id(&OrderId::new(read.order)),
                expected_version: read.version,
                events: Vec::new(),
            });
        }
    }

    /// A refusal or deferral decided on cached state is retried at once on state read from
    /// the store (the cache may be behind another writer); other outcomes stand.
    fn recheck(&self, lease: i64, outcome: Outcome) -> Outcome {
        let doubtful = match &outcome {
            Outcome::Failed(f) | Outcome::FailedWith(f, _) => {
                matches!(f.class, FailureClass::Permanent | FailureClass::Unknown)
            }
            Outcome::Defer(_) => true,
            Outcome::Done(_) => false,
        };
        match self.cache.read_by(lease) {
            Some(read) if doubtful && read.cached => Outcome::Failed(Failure::conflict(format!(
                "decided on the cached state of order {} at version {}; checking again on \
                 the stored state",
                read.order, read.version
            ))),
            _ => outcome,
        }
    }

    /// Stores an inbound message durably with its processing task.
    ///
    /// # Errors
    /// When the store cannot make it durable; the sender must not acknowledge the message.
    pub async fn accept_message(&self, message: InboundMessage) -> Result<Accepted, SinkError> {
        let inbound = new_inbound(message)?;
        // While the engine runs, the message's first step is leased with the message and run
        // at once when the hub lane has room (see `crate::chain`).
        let running = self.running.get().filter(|(_, stop)| !stop.is_cancelled());
        let reserved = running.and_then(|_| self.reserve_one(LaneName::Hub, None));
        let claim = reserved
            .as_ref()
            .map(|_| self.claim_request(LaneName::Hub, self.clock.now()));
        let (accepted, leased) = self
            .store
            .accept_inbound_leasing(inbound, claim)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        let wake = matches!(accepted, crossdock_store::Accepted::New(_)) && leased.is_none();
        let reserved: Vec<_> = reserved.into_iter().collect();
        let leased: Vec<_> = leased.into_iter().collect();
        Ok(self.accepted(&[accepted], reserved, leased, wake)[0])
    }

    /// Stores a page of messages read from a feed, in order, with the feed's new position
    /// (`cursor`), in one durable commit. While the engine runs, the commit also leases as
    /// many ready hub tasks as the hub lane has room for, and they run at once.
    ///
    /// # Errors
    /// When the store cannot make the page durable; nothing of it is stored and the cursor
    /// does not move.
    pub async fn accept_page(
        &self,
        messages: Vec<InboundMessage>,
        cursor: Option<CursorMove>,
    ) -> Result<Vec<Accepted>, SinkError> {
        let keys: std::collections::HashSet<String> =
            messages.iter().map(|m| m.body.key()).collect();
        let inbound = messages
            .into_iter()
            .map(new_inbound)
            .collect::<Result<Vec<_>, _>>()?;
        let running = self.running.get().filter(|(_, stop)| !stop.is_cancelled());
        let reserved: Vec<_> = match running {
            Some(_) => std::iter::from_fn(|| self.reserve_one(LaneName::Hub, None))
                .take(keys.len())
                .collect(),
            None => Vec::new(),
        };
        let claim = (!reserved.is_empty()).then(|| LeaseRequest {
            limit: reserved.len(),
            ..self.claim_request(LaneName::Hub, self.clock.now())
        });
        let (accepted, leased) = self
            .store
            .accept_inbound_page(inbound, cursor, claim)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        // Fewer leases than slots: the lane had nothing else ready.
        let wake = leased.len() == reserved.len()
            && accepted
                .iter()
                .any(|a| matches!(a, crossdock_store::Accepted::New(_)));
        Ok(self.accepted(&accepted, reserved, leased, wake))
    }

    /// Counts accepted messages, starts the calls of the tasks leased with them (on their
    /// reservations' slots; the rest go back) and wakes the hub lane when `wake`.
    fn accepted(
        &self,
        accepted: &[crossdock_store::Accepted],
        reserved: Vec<Reservation>,
        leased: Vec<Lease>,
        wake: bool,
    ) -> Vec<Accepted> {
        let outcomes: Vec<Accepted> = accepted
            .iter()
            .map(|accepted| match accepted {
                crossdock_store::Accepted::New(_) => {
                    self.metrics.inbound_new.fetch_add(1, Ordering::Relaxed);
                    Accepted::New
                }
                crossdock_store::Accepted::Duplicate(_) => {
                    self.metrics
                        .inbound_duplicate
                        .fetch_add(1, Ordering::Relaxed);
                    Accepted::Duplicate
                }
            })
            .collect();
        // Claims are only taken while the engine runs; a shutdown begun since still runs
        // what was leased (within its grace period), as any call in flight.
        let calls = self.claimed(Reserved(reserved), leased);
        if let (Some((tracker, stop)), Some(engine)) = (self.running.get(), self.me.upgrade()) {
            for call in calls {
                engine.start(call, tracker, stop);
            }
        }
        if wake {
            self.wake(LaneName::Hub);
        }
        outcomes
    }

    /// Runs the lane dispatchers (and the ERP change-feed poller when enabled) until
    /// `shutdown` is cancelled; then stops leasing, lets calls in flight finish for the grace
    /// period, and releases the leases of whatever is left.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let calls = TaskTracker::new();
        if self.running.set((calls.clone(), shutdown.clone())).is_err() {
            warn!("The engine runs already; this run starts no claimed calls");
        }
        let mut loops = Vec::new();
        for lane in LaneName::ALL {
            let engine = Arc::clone(&self);
            let stop = shutdown.clone();
            let tracker = calls.clone();
            loops.push(tokio::spawn(async move {
                engine.dispatch(lane, stop, tracker).await;
            }));
        }
        if self.config.erp_polling {
            let engine = Arc::clone(&self);
            let stop = shutdown.clone();
            loops.push(tokio::spawn(async move {
                crate::poller::run(engine, stop).await;
            }));
        }
        shutdown.cancelled().await;
        info!("Shutting down: intake stopped, waiting for calls in flight");
        for handle in loops {
            let _ = handle.await;
        }
        calls.close();
        if tokio::time::timeout(self.config.shutdown_grace, calls.wait())
            .await
            .is_err()
        {
            warn!(grace = ?self.config.shutdown_grace, "Calls still in flight after the grace period");
        }
        match self.store.release_all(&self.config.owner).await {
            Ok(released) if released > 0 => info!(released, "Released leases"),
            Ok(_) => {}
            Err(error) => warn!(%error, "Could not release leases; they will expire"),
        }
    }

    async fn dispatch(
        self: Arc<Self>,
        lane_name: LaneName,
        shutdown: CancellationToken,
        calls: TaskTracker,
    ) {
        let lane = self.lanes[&lane_name].clone();
        let wake = Arc::clone(&self.wake[&lane_name]);
        let batched = lane.config().batch > 1;
        let lease_for = Duration::from_millis(lane.config().lease_ms);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if let Some(until) = lane.blocked_until() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(until) => {}
                }
                continue;
            }
            let free = lane.available();
            if free == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = lane.slot_freed() => {}
                }
                continue;
            }
            let probing = lane.breaker() == BreakerState::HalfOpen;
            let limit = if probing {
                1
            } else if batched {
                lane.config().batch
            } else {
                free.min(256)
            };
            let leases = match self
                .store
                .lease(LeaseRequest {
                    lane: lane_name.as_str().to_owned(),
                    owner: self.config.owner.clone(),
                    limit,
                    lease_for,
                    now: self.clock.now(),
                })
                .await
            {
                Ok(leases) => leases,
                Err(error) => {
                    warn!(lane = lane_name.as_str(), %error, "Leasing failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            };
            if leases.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(self.config.idle_poll) => {}
                }
                continue;
            }
            debug!(
                lane = lane_name.as_str(),
                count = leases.len(),
                "Leased tasks"
            );
            let groups: Vec<Vec<Lease>> = if batched {
                group_by_kind(leases)
            } else {
                leases.into_iter().map(|l| vec![l]).collect()
            };
            for group in groups {
                let slot = lane.permit().await;
                lane.wait_for_token().await;
                self.start(
                    Call {
                        lane: lane_name,
                        leases: group,
                        slot,
                    },
                    &calls,
                    &shutdown,
                );
            }
        }
    }

    /// Runs `call` in its own task, then the calls its commits claimed (see [`crate::chain`]):
    /// the first in the same task, the others in tasks of their own.
    fn start(self: &Arc<Self>, call: Call, calls: &TaskTracker, shutdown: &CancellationToken) {
        let engine = Arc::clone(self);
        let tracker = calls.clone();
        let stop = shutdown.clone();
        calls.spawn(async move {
            let mut call = call;
            loop {
                let mut next = engine.execute(call, !stop.is_cancelled()).await;
                let Some(first) = next.pop() else { break };
                for other in next {
                    engine.start(other, &tracker, &stop);
                }
                call = first;
            }
        });
    }

    /// Runs one call and settles its leases; returns the calls their commits claimed.
    async fn execute(&self, call: Call, chain: bool) -> Vec<Call> {
        let Call {
            lane: lane_name,
            leases,
            slot,
        } = call;
        let lane = &self.lanes[&lane_name];
        let started = tokio::time::Instant::now();
        let timeout = Duration::from_millis(lane.config().timeout_ms);
        let kind = leases[0].task.kind.clone();
        let outcomes =
            match tokio::time::timeout(timeout, handlers::run(self, lane_name, &leases)).await {
                Ok(outcomes) => outcomes,
                Err(_) => leases
                    .iter()
                    .map(|_| {
                        Outcome::Failed(Failure::transient(format!(
                            "no answer within {} ms",
                            timeout.as_millis()
                        )))
                    })
                    .collect(),
            };
        let latency = started.elapsed();
        let lane_outcome = summarize(&outcomes);
        lane.record(lane_outcome);
        if lane_name == LaneName::Salesforce {
            self.pace_salesforce(lane);
        }
        // The call holds its slot until it ends, unless the slot carries the next step of a
        // lone lease's work.
        let mut own = Some(slot);
        if chain && leases.len() == 1 {
            let (lease, outcome) = (&leases[0], outcomes.into_iter().next());
            let outcome = outcome.map(|outcome| self.recheck(lease.token, outcome));
            let Some(outcome) = outcome else {
                return Vec::new();
            };
            let (committed, claimed) = self
                .settle(lane_name, lease, outcome, latency, &kind, Some(&mut own))
                .await;
            self.cache.finish(lease.token, committed);
            return claimed;
        }
        // A batch's leases are of different keys: they settle together, so that the store's
        // group commit takes them in one or two commits instead of one after the other.
        let settles = leases.iter().zip(outcomes).map(|(lease, outcome)| {
            let kind = &kind;
            async move {
                let outcome = self.recheck(lease.token, outcome);
                let (committed, _) = self
                    .settle(lane_name, lease, outcome, latency, kind, None)
                    .await;
                self.cache.finish(lease.token, committed);
            }
        });
        futures::future::join_all(settles).await;
        drop(own);
        Vec::new()
    }

    fn pace_salesforce(&self, lane: &Lane) {
        if let Some(usage) = self.salesforce.usage() {
            let limit = usage.limit.max(1) as f64;
            let left = usage.remaining() as f64 / limit;
            let factor = if left < self.config.sf_budget_reserve {
                0.1
            } else {
                1.0
            };
            if (lane.rate_factor() - factor).abs() > f64::EPSILON {
                warn!(
                    used = usage.used,
                    limit = usage.limit,
                    "Salesforce API budget {}: lane rate factor {factor}",
                    if factor < 1.0 {
                        "nearly spent"
                    } else {
                        "recovered"
                    }
                );
                lane.set_rate_factor(factor);
            }
        }
    }

    /// Records the outcome of one lease; returns whether its decision committed, and the
    /// calls its commit claimed (only with `own`, the call's slot for chaining, if any).
    async fn settle(
        &self,
        lane_name: LaneName,
        lease: &Lease,
        outcome: Outcome,
        latency: Duration,
        kind: &str,
        own: Option<&mut Option<Slot>>,
    ) -> (bool, Vec<Call>) {
        let task = &lease.task;
        let now = self.clock.now();
        let latency_ms = i64::try_from(latency.as_millis()).unwrap_or(i64::MAX);
        match outcome {
            Outcome::Done(mut decision) => {
                self.guard(lease.token, &mut decision);
                if let Some(order) = &task.order_id {
                    decision
                        .timeline
                        .push(attempt_entry(order, lease, now, "ok", latency_ms, "done"));
                    // A success supersedes earlier failures of the same step of the order.
                    // An inbound message is its own step: other messages do not resolve it.
                    if task.kind != "inbound" {
                        decision.auto_resolve = Some((order.clone(), task.kind.clone()));
                    }
                }
                let reserved = match own {
                    Some(own) => self.reserve(&mut decision, lane_name, own),
                    None => Reserved::default(),
                };
                // Lanes with new tasks left to their dispatchers.
                let mut unclaimed: Vec<LaneName> = decision
                    .tasks
                    .iter()
                    .filter_map(|t| LaneName::parse(&t.lane))
                    .collect();
                return match self.store.complete(lease, decision).await {
                    Ok(committed) => {
                        self.metrics.step(lane_name.as_str(), kind, latency);
                        // Only the decision's own tasks that were leased are claimed; a
                        // lease of the lane's next ready task leaves them to the dispatcher.
                        let own_tasks = committed
                            .leased
                            .iter()
                            .filter(|l| committed.task_ids.contains(&l.task.id));
                        for leased in own_tasks {
                            let lane = unclaimed
                                .iter()
                                .position(|l| l.as_str() == leased.task.lane);
                            if let Some(at) = lane {
                                unclaimed.swap_remove(at);
                            }
                        }
                        if !committed.task_ids.is_empty() {
                            for lane in LaneName::ALL {
                                if unclaimed.contains(&lane) {
                                    self.wake(lane);
                                }
                            }
                        }
                        (true, self.claimed(reserved, committed.leased))
                    }
                    Err(error) if error.kind() == crossdock_store::ErrorKind::ReferenceTaken => {
                        drop(reserved);
                        // The answer names a reference another order holds: refused whole,
                        // both orders flagged.
                        self.refuse_reference(lane_name, lease, &error, latency_ms)
                            .await;
                        (false, Vec::new())
                    }
                    Err(error) if error.kind() == crossdock_store::ErrorKind::Conflict => {
                        drop(reserved);
                        // Another step of the same order committed first: decide again.
                        let failure = Failure::conflict(error.to_string());
                        self.fail(lane_name, lease, failure, Decision::default(), latency_ms)
                            .await;
                        (false, Vec::new())
                    }
                    Err(error) => {
                        drop(reserved);
                        warn!(task = task.id, %error, "Could not complete task");
                        (false, Vec::new())
                    }
                };
            }
            Outcome::Failed(failure) => {
                self.fail(lane_name, lease, failure, Decision::default(), latency_ms)
                    .await;
            }
            Outcome::Defer(reason) => self.defer(lane_name, lease, reason, latency_ms).await,
            Outcome::FailedWith(failure, mut extra) => {
                self.guard(lease.token, &mut extra);
                self.fail(lane_name, lease, failure, extra, latency_ms)
                    .await;
            }
        }
        (false, Vec::new())
    }

    async fn defer(&self, lane_name: LaneName, lease: &Lease, reason: String, latency_ms: i64) {
        let task = &lease.task;
        let deferrals = task
            .payload
            .get("deferrals")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if deferrals >= MAX_DEFERRALS {
            let mut failure = Failure::unknown(format!("{reason} (deferred {deferrals} times)"));
            failure.class = FailureClass::Permanent;
            self.fail(lane_name, lease, failure, Decision::default(), latency_ms)
                .await;
            return;
        }
        let now = self.clock.now();
        let delay = Duration::from_millis(50u64.saturating_mul(1 << deferrals.min(10)));
        let mut payload = task.payload.clone();
        payload["deferrals"] = json!(deferrals + 1);
        let mut decision = Decision {
            tasks: vec![NewTask {
                lane: task.lane.clone(),
                kind: task.kind.clone(),
                key: task.key.clone(),
                dedupe: task.dedupe.clone(),
                idempotency_key: task.idempotency_key.clone(),
                payload,
                due_at: now + delay,
                blocking: task.blocking,
                order_id: task.order_id.clone(),
            }],
            ..Decision::default()
        };
        if let Some(order) = &task.order_id {
            decision.timeline.push(attempt_entry(
                order, lease, now, "deferred", latency_ms, &reason,
            ));
        }
        self.metrics.retry(lane_name.as_str(), "deferred");
        if let Err(error) = self.store.complete(lease, decision).await {
            warn!(task = task.id, %error, "Could not defer task");
        }
    }

    async fn fail(
        &self,
        lane_name: LaneName,
        lease: &Lease,
        failure: Failure,
        mut decision: Decision,
        latency_ms: i64,
    ) {
        let task = &lease.task;
        let now = self.clock.now();
        let policy = self.config.retry(lane_name);
        let next = policy.next(failure.class, task.attempts, self.rng.as_ref());
        // A reference conflict is its own kind of exception, whatever the failure's class.
        let class = if failure.code.as_deref() == Some(conflict::KIND) {
            conflict::KIND
        } else {
            failure.class.as_str()
        };
        if let Some(order) = &task.order_id {
            decision.timeline.push(attempt_entry(
                order,
                lease,
                now,
                class,
                latency_ms,
                &failure.to_string(),
            ));
        }
        match next {
            Next::RetryAfter(delay) => {
                self.metrics.retry(lane_name.as_str(), class);
                let due = now + delay;
                debug!(task = task.id, kind = %task.kind, %failure, ?delay, "Retrying");
                let message = failure.to_string();
                let retried = self.store.retry(lease, due, &message, decision).await;
                self.retry_plainly_on_conflict(lease, due, &message, retried)
                    .await;
            }
            Next::DeadLetter => {
                self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                let reason = if class == conflict::KIND {
                    "reference held by another order".to_owned()
                } else if failure.class == FailureClass::Permanent {
                    "permanent failure".to_owned()
                } else {
                    format!("gave up after {} attempts", task.attempts)
                };
                warn!(task = task.id, kind = %task.kind, %failure, %reason, "Dead-lettered");
                if let Err(error) = self
                    .store
                    .dead_letter(
                        lease,
                        NewDeadLetter {
                            class: class.to_owned(),
                            error: failure.to_string(),
                            reason,
                        },
                        decision,
                    )
                    .await
                {
                    if error.kind() == crossdock_store::ErrorKind::Conflict {
                        let message = error.to_string();
                        self.retry_plainly_on_conflict(lease, now, &message, Err(error))
                            .await;
                    } else {
                        warn!(task = task.id, %error, "Could not dead-letter the task");
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Dead-letters a task whose decision named a reference bound to another order (the
    /// store refused the decision whole), noting it on both orders' timelines and queueing
    /// the flag of the order that holds the reference.
    async fn refuse_reference(
        &self,
        lane_name: LaneName,
        lease: &Lease,
        error: &crossdock_store::Error,
        latency_ms: i64,
    ) {
        let Some(conflict) = conflict::Conflict::of(error) else {
            return;
        };
        let now = self.clock.now();
        let (letter, mut decision) = conflict::refused(lease, &conflict, now);
        if let Some(order) = &lease.task.order_id {
            decision.timeline.insert(
                0,
                attempt_entry(order, lease, now, conflict::KIND, latency_ms, &letter.error),
            );
        }
        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
        warn!(task = lease.task.id, kind = %lease.task.kind, error = %letter.error,
              lane = lane_name.as_str(), "Refused: reference held by another order");
        if let Err(error) = self.store.dead_letter(lease, letter, decision).await {
            warn!(task = lease.task.id, %error, "Could not dead-letter the task");
        }
        self.wake(LaneName::parse(conflict.lane()).unwrap_or(LaneName::Erp));
    }
}

impl Engine {
    /// After a failure's write (`written`): when it conflicted — what the failure wanted
    /// written was decided on state that moved on — the task is retried at `due` without it
    /// (with `message` as its last error), and the next attempt reads the order afresh.
    async fn retry_plainly_on_conflict(
        &self,
        lease: &Lease,
        due: time::OffsetDateTime,
        message: &str,
        written: Result<(), crossdock_store::Error>,
    ) {
        let outcome = match written {
            Err(error) if error.kind() == crossdock_store::ErrorKind::Conflict => {
                self.store
                    .retry(lease, due, message, Decision::default())
                    .await
            }
            other => other,
        };
        if let Err(error) = outcome {
            warn!(task = lease.task.id, %error, "Could not schedule the retry");
        }
    }
}

#[async_trait]
impl InboundSink for Engine {
    async fn accept(&self, message: InboundMessage) -> Result<Accepted, SinkError> {
        self.accept_message(message).await
    }

    /// One commit: the messages and the checkpoint, kept in the store's cursors (where
    /// [`crate::checkpoints::StoreCheckpoints`] keeps them).
    async fn accept_page(
        &self,
        messages: Vec<InboundMessage>,
        checkpoint: Option<(String, String)>,
    ) -> Result<bool, SinkError> {
        let cursor = checkpoint.map(|(name, position)| CursorMove {
            name,
            position,
            at: self.clock.now(),
        });
        self.accept_page(messages, cursor).await.map(|_| true)
    }
}

fn group_by_kind(leases: Vec<Lease>) -> Vec<Vec<Lease>> {
    let mut groups: BTreeMap<String, Vec<Lease>> = BTreeMap::new();
    for lease in leases {
        groups
            .entry(lease.task.kind.clone())
            .or_default()
            .push(lease);
    }
    groups.into_values().collect()
}

/// How often a message may be sent to the back of its queue before it is dead-lettered.
const MAX_DEFERRALS: u64 = 12;

/// The lane's view of a call: it failed only if nothing succeeded.
fn summarize(outcomes: &[Outcome]) -> Result<(), FailureClass> {
    let mut worst = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Done(_) | Outcome::Defer(_) => return Ok(()),
            Outcome::Failed(f) | Outcome::FailedWith(f, _) => worst = Some(f.class),
        }
    }
    worst.map_or(Ok(()), Err)
}

fn attempt_entry(
    order: &str,
    lease: &Lease,
    at: time::OffsetDateTime,
    outcome: &str,
    latency_ms: i64,
    detail: &str,
) -> TimelineEntry {
    let task = &lease.task;
    TimelineEntry {
        order_id: order.to_owned(),
        at,
        kind: "attempt".to_owned(),
        summary: format!("{} attempt {}: {}", task.kind, task.attempts, detail),
        detail: json!({
            "task": task.id,
            "lane": task.lane,
            "idempotency_key": task.idempotency_key,
            "attempt": task.attempts,
        }),
        system: Some(task.lane.clone()),
        outcome: Some(outcome.to_owned()),
        latency_ms: Some(latency_ms),
        correlation: task
            .payload
            .get("correlation")
            .and_then(|c| c.as_str())
            .map(str::to_owned),
    }
}

/// The inbox row of `message` with its `inbound` task on the hub lane; what the handler
/// needs of the message rides in the task, so that processing it does not read the inbox
/// row back.
fn new_inbound(message: InboundMessage) -> Result<NewInbound, SinkError> {
    let key = message.body.key();
    let kind = message.body.kind();
    let body = serde_json::to_value(&message.body).map_err(|e| SinkError(e.to_string()))?;
    let correlation = format!("{}:{}", message.source, message.message_id);
    let order_id = match &message.body {
        crossdock_ports::inbound::Inbound::Order { order, .. } => Some(order.to_string()),
        _ => None,
    };
    Ok(NewInbound {
        source: message.source.as_str().to_owned(),
        message_id: message.message_id.clone(),
        kind,
        key: key.clone(),
        received_at: message.received_at,
        raw: message.raw,
        body: body.clone(),
        task: Some(NewTask {
            lane: LaneName::Hub.as_str().to_owned(),
            kind: "inbound".to_owned(),
            key,
            dedupe: None,
            idempotency_key: correlation.clone(),
            payload: json!({
                "correlation": correlation,
                "source": message.source.as_str(),
                "message_id": message.message_id,
                "body": body,
            }),
            due_at: message.received_at,
            blocking: false,
            order_id,
        }),
    })
}
