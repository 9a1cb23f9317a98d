//! Builders for the values the cases write.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{
    Decision, JsonText, Lease, LeaseRequest, NewEvent, NewInbound, NewTask, OrderRow, SharedStore,
    StreamAppend, Task, TimelineEntry,
};

/// The time every case starts at (whole microseconds: both backends keep microseconds).
pub const T0: OffsetDateTime = datetime!(2025-06-02 08:00 UTC);

/// `T0` plus `seconds`.
pub fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

/// A task due at `T0`, blocking, without dedupe.
pub fn task(lane: &str, key: &str, kind: &str) -> NewTask {
    NewTask {
        lane: lane.to_owned(),
        kind: kind.to_owned(),
        key: key.to_owned(),
        dedupe: None,
        idempotency_key: format!("{key}/{kind}"),
        payload: json!({ "key": key, "kind": kind }),
        due_at: T0,
        blocking: true,
        order_id: Some(key.rsplit(':').next().unwrap_or(key).to_owned()),
    }
}

/// A lease request for `lane` by `owner` at `now`, leases of 30 s.
pub fn lease_request(lane: &str, owner: &str, limit: usize, now: OffsetDateTime) -> LeaseRequest {
    LeaseRequest {
        lane: lane.to_owned(),
        owner: owner.to_owned(),
        limit,
        lease_for: Duration::from_secs(30),
        now,
    }
}

/// Leases from `lane` at `now` (panics on a store error).
pub async fn lease(
    store: &SharedStore,
    lane: &str,
    limit: usize,
    now: OffsetDateTime,
) -> Vec<Lease> {
    store
        .lease(lease_request(lane, "worker-1", limit, now))
        .await
        .expect("lease")
}

/// Ids of leased tasks.
pub fn ids(leases: &[Lease]) -> Vec<i64> {
    leases.iter().map(|l| l.task.id).collect()
}

/// Every queued task (all tasks the fixtures build carry an order id per key; this lists
/// the given orders' tasks), by id.
pub async fn queued(store: &SharedStore, orders: &[&str]) -> Vec<Task> {
    let mut all = Vec::new();
    for order in orders {
        all.extend(store.tasks_for_order(order).await.expect("tasks_for_order"));
    }
    all.sort_by_key(|t| t.id);
    all
}

/// An inbound message from `source`.
pub fn inbound(source: &str, message_id: &str, key: &str) -> NewInbound {
    NewInbound {
        source: source.to_owned(),
        message_id: message_id.to_owned(),
        kind: "order.CaptureOrder".to_owned(),
        key: key.to_owned(),
        received_at: T0,
        raw: format!("{{\"id\":\"{message_id}\", \"raw\": true}}"),
        body: json!({ "message": message_id }),
        task: Some(NewTask {
            payload: json!({
                "correlation": format!("{source}:{message_id}"),
                "body": { "lines": [1, 2] },
            }),
            ..task("hub", key, "inbound")
        }),
    }
}

/// Events to append to `stream` at `expected`.
pub fn append(stream: &str, expected: i64, kinds: &[&str]) -> StreamAppend {
    StreamAppend {
        stream: stream.to_owned(),
        expected_version: expected,
        events: kinds
            .iter()
            .map(|kind| NewEvent {
                kind: (*kind).to_owned(),
                payload: JsonText::from(&json!({ "kind": kind, "amount": "12.50" })),
                occurred_at: T0,
                causation: Some("cause".to_owned()),
                correlation: Some("corr".to_owned()),
            })
            .collect(),
    }
}

/// An order row.
pub fn order(order_id: &str, status: &str, version: i64, updated_at: OffsetDateTime) -> OrderRow {
    OrderRow {
        order_id: order_id.to_owned(),
        sf_id: Some(format!("801{order_id}")),
        sf_number: Some(format!("SF-{order_id}")),
        erp_ref: None,
        account: "ACC-1".to_owned(),
        channel: "b2b".to_owned(),
        status: status.to_owned(),
        total: "1234.56".to_owned(),
        currency: "EUR".to_owned(),
        captured_at: Some(T0),
        booked_at: None,
        shipped_at: None,
        delivered_at: None,
        invoiced_at: None,
        paid_at: None,
        ended_at: None,
        updated_at,
        version,
        body: JsonText::from(&json!({ "order": order_id, "status": status, "version": version })),
        sf_synced_status: None,
        sf_synced_version: None,
        sf_synced_at: None,
    }
}

/// A timeline entry.
pub fn timeline(order_id: &str, summary: &str, at: OffsetDateTime) -> TimelineEntry {
    TimelineEntry {
        order_id: order_id.to_owned(),
        at,
        kind: "event".to_owned(),
        summary: summary.to_owned(),
        detail: json!({ "summary": summary }),
        system: Some("hub".to_owned()),
        outcome: None,
        latency_ms: Some(12),
        correlation: Some("corr".to_owned()),
    }
}

/// A decision that only appends a timeline entry.
pub fn note(order_id: &str, summary: &str) -> Decision {
    Decision {
        timeline: vec![timeline(order_id, summary, T0)],
        ..Decision::default()
    }
}

/// A small deterministic random generator (xorshift64*), so a failing case can be replayed
/// from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `true` with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Builder helpers on [`NewTask`].
pub trait NewTaskExt {
    /// The same task due at `due_at`.
    fn due(self, due_at: OffsetDateTime) -> Self;
}

impl NewTaskExt for NewTask {
    fn due(mut self, due_at: OffsetDateTime) -> Self {
        self.due_at = due_at;
        self
    }
}
