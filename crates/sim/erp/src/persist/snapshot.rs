//! The persisted form of the whole [`State`]: master data, stock, transactions, the task queue,
//! the change feed with every consumer stream, webhook subscriptions, outages, statistics,
//! idempotency records, id counters, the simulated time and the positions of the random
//! streams.
//!
//! A [`Snapshot`] is taken under the state lock by cloning (events are shared, not copied) and
//! serialized outside it. Events are stored once, by sequence number; streams refer to them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Scenario};
use crate::faults::Outage;
use crate::feed::{Event, Stream, StreamSnapshot};
use crate::model::{
    CreditMemo, Customer, Invoice, Item, Location, Order, Payment, Promotion, Refund,
    Replenishment, Rma, Shipment, Stock,
};
use crate::state::{
    Counters, STREAM_BUSINESS, STREAM_FAULTS, STREAM_FEED, Saved, State, Stats, Task, Webhook,
    rng_stream,
};

/// Version of the file layout; a file with another version is refused, never misread.
pub(crate) const FORMAT: u32 = 1;

/// Positions (in 32-bit words) of the random streams, so a restored simulator draws exactly
/// what the stopped one would have drawn next.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RngPositions {
    business: u128,
    faults: u128,
    feed: u128,
}

/// A webhook subscription as persisted (its secret included: it signs future deliveries).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookSnapshot {
    id: u64,
    url: String,
    secret: String,
    event_types: Option<Vec<String>>,
    stream: StreamSnapshot,
    next_position: u64,
    delivered: u64,
    failed_attempts: u64,
    dead_lettered: u64,
    last_error: Option<String>,
    active: bool,
}

/// The whole simulator state as written to `erp-state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Snapshot {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Wall-clock time of the snapshot, ms since the Unix epoch: a real clock resumes at
    /// `now_ms` plus the time that has passed since.
    pub saved_at_wall_ms: i64,
    /// Seed the state was generated from (event ids derive from it).
    pub seed: u64,
    /// Size of the generated master data.
    pub scenario: Scenario,
    /// Currency of every amount.
    pub currency: String,
    /// Simulated time.
    pub now_ms: i64,
    rng: RngPositions,
    locations: BTreeMap<String, Location>,
    items: BTreeMap<String, Item>,
    /// `(sku, location, stock)`.
    stock: Vec<(String, String, Stock)>,
    /// `(sku, location, quantity waiting)`.
    backorder_totals: Vec<(String, String, u64)>,
    /// `(customer, sku, negotiated price)`.
    customer_prices: Vec<(String, String, Decimal)>,
    promotions: BTreeMap<String, Promotion>,
    customers: BTreeMap<String, Customer>,
    customer_by_ref: BTreeMap<String, String>,
    uninvoiced: BTreeMap<String, BTreeMap<String, Decimal>>,
    orders: BTreeMap<String, Order>,
    order_by_ref: BTreeMap<String, String>,
    shipments: BTreeMap<String, Shipment>,
    invoices: BTreeMap<String, Invoice>,
    payments: BTreeMap<String, Payment>,
    payment_by_ref: BTreeMap<String, String>,
    rmas: BTreeMap<String, Rma>,
    rma_by_ref: BTreeMap<String, String>,
    credit_memos: BTreeMap<String, CreditMemo>,
    refunds: BTreeMap<String, Refund>,
    replenishments: BTreeMap<String, Replenishment>,
    counters: Counters,
    /// Pending time-driven work: `(due ms, sequence, task)`.
    tasks: Vec<(i64, u64, Task)>,
    task_seq: u64,
    /// Sequence number the next event gets.
    next_seq: u64,
    /// Sequence number of the oldest event in the retained history.
    history_first_seq: u64,
    /// The retained history plus any older event a stream still refers to, by sequence.
    #[serde(with = "shared_events")]
    events: Vec<Arc<Event>>,
    poll: StreamSnapshot,
    webhooks: Vec<WebhookSnapshot>,
    outages: Vec<Outage>,
    stats: Stats,
    /// Remembered answers by `Idempotency-Key`, oldest first.
    idempotency: Vec<(String, Saved)>,
}

/// Serializes shared events by value.
mod shared_events {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::feed::Event;

    pub(super) fn serialize<S: Serializer>(
        events: &[Arc<Event>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(events.iter().map(AsRef::as_ref))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Arc<Event>>, D::Error> {
        Ok(Vec::<Event>::deserialize(deserializer)?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}

fn rows<V: Clone>(map: &BTreeMap<(String, String), V>) -> Vec<(String, String, V)> {
    map.iter()
        .map(|((a, b), value)| (a.clone(), b.clone(), value.clone()))
        .collect()
}

fn from_rows<V>(rows: Vec<(String, String, V)>) -> BTreeMap<(String, String), V> {
    rows.into_iter()
        .map(|(a, b, value)| ((a, b), value))
        .collect()
}

impl State {
    /// Copies the whole state for persistence (cheap clones; events are shared).
    pub(crate) fn snapshot(&self, saved_at_wall_ms: i64) -> Snapshot {
        let history_first_seq = self.events.front().map_or(self.next_seq, |e| e.seq);
        // Streams may still hold events older than the retained history (a small retention
        // with held-back events): store those too, once each.
        let mut older: BTreeMap<u64, Arc<Event>> = BTreeMap::new();
        let streams = std::iter::once(&self.poll).chain(self.webhooks.values().map(|w| &w.stream));
        for stream in streams {
            for event in stream.referenced() {
                if event.seq < history_first_seq {
                    older.entry(event.seq).or_insert_with(|| event.clone());
                }
            }
        }
        let mut events: Vec<Arc<Event>> = older.into_values().collect();
        events.extend(self.events.iter().cloned());
        Snapshot {
            format: FORMAT,
            saved_at_wall_ms,
            seed: self.config.seed,
            scenario: self.config.scenario.clone(),
            currency: self.config.currency.clone(),
            now_ms: self.now,
            rng: RngPositions {
                business: self.rng.get_word_pos(),
                faults: self.fault_rng.get_word_pos(),
                feed: self.feed_rng.get_word_pos(),
            },
            locations: self.locations.clone(),
            items: self.items.clone(),
            stock: rows(&self.stock),
            backorder_totals: rows(&self.backorder_totals),
            customer_prices: rows(&self.customer_prices),
            promotions: self.promotions.clone(),
            customers: self.customers.clone(),
            customer_by_ref: self.customer_by_ref.clone(),
            uninvoiced: self.uninvoiced.clone(),
            orders: self.orders.clone(),
            order_by_ref: self.order_by_ref.clone(),
            shipments: self.shipments.clone(),
            invoices: self.invoices.clone(),
            payments: self.payments.clone(),
            payment_by_ref: self.payment_by_ref.clone(),
            rmas: self.rmas.clone(),
            rma_by_ref: self.rma_by_ref.clone(),
            credit_memos: self.credit_memos.clone(),
            refunds: self.refunds.clone(),
            replenishments: self.replenishments.clone(),
            counters: self.counters.clone(),
            tasks: self
                .tasks
                .iter()
                .map(|(&(due, seq), task)| (due, seq, task.clone()))
                .collect(),
            task_seq: self.task_seq,
            next_seq: self.next_seq,
            history_first_seq,
            events,
            poll: self.poll.snapshot(),
            webhooks: self
                .webhooks
                .values()
                .map(|w| WebhookSnapshot {
                    id: w.id,
                    url: w.url.clone(),
                    secret: w.secret.clone(),
                    event_types: w.event_types.clone(),
                    stream: w.stream.snapshot(),
                    next_position: w.next_position,
                    delivered: w.delivered,
                    failed_attempts: w.failed_attempts,
                    dead_lettered: w.dead_lettered,
                    last_error: w.last_error.clone(),
                    active: w.active,
                })
                .collect(),
            outages: self.outages.clone(),
            stats: self.stats.clone(),
            idempotency: self
                .idempotency_order
                .iter()
                .filter_map(|key| Some((key.clone(), self.idempotency.get(key)?.clone())))
                .collect(),
        }
    }

    /// Rebuilds a state from a snapshot. The snapshot's seed, scenario and currency win over
    /// `config` (they define the restored data); everything else — clock mode, timings,
    /// invoicing, payment behaviour, fault knobs, retention — comes from `config`. Master data
    /// is not generated again.
    ///
    /// # Errors
    /// A message when the snapshot is inconsistent (a stream refers to a missing event, the
    /// retained history has gaps).
    pub(crate) fn restore(mut config: Config, snapshot: Snapshot) -> Result<Self, String> {
        config.seed = snapshot.seed;
        config.scenario = snapshot.scenario;
        config.currency = snapshot.currency;
        let seed = config.seed;
        let stream_at = |n: u64, position: u128| {
            let mut rng = rng_stream(seed, n);
            rng.set_word_pos(position);
            rng
        };

        let by_seq: BTreeMap<u64, Arc<Event>> =
            snapshot.events.iter().map(|e| (e.seq, e.clone())).collect();
        if snapshot.next_seq == 0 || snapshot.history_first_seq > snapshot.next_seq {
            return Err(format!(
                "the history starts at event {} but the next event is {}",
                snapshot.history_first_seq, snapshot.next_seq
            ));
        }
        let mut events = VecDeque::new();
        for seq in snapshot.history_first_seq..snapshot.next_seq {
            let event = by_seq
                .get(&seq)
                .ok_or_else(|| format!("event {seq} of the retained history is missing"))?;
            events.push_back(event.clone());
        }
        let retention = config.feed_retention;
        while events.len() > retention.max(1) {
            events.pop_front();
        }
        let poll = Stream::restore(snapshot.poll, retention, &by_seq)?;
        let mut webhooks = BTreeMap::new();
        for w in snapshot.webhooks {
            let stream = Stream::restore(w.stream, retention, &by_seq)
                .map_err(|e| format!("webhook {}: {e}", w.id))?;
            webhooks.insert(
                w.id,
                Webhook {
                    id: w.id,
                    url: w.url,
                    secret: w.secret,
                    event_types: w.event_types,
                    stream,
                    next_position: w.next_position,
                    delivered: w.delivered,
                    failed_attempts: w.failed_attempts,
                    dead_lettered: w.dead_lettered,
                    last_error: w.last_error,
                    notify: Arc::new(tokio::sync::Notify::new()),
                    active: w.active,
                },
            );
        }
        let mut idempotency = BTreeMap::new();
        let mut idempotency_order = VecDeque::new();
        for (key, saved) in snapshot.idempotency {
            if idempotency.insert(key.clone(), saved).is_none() {
                idempotency_order.push_back(key);
            }
        }
        Ok(Self {
            now: snapshot.now_ms,
            rng: stream_at(STREAM_BUSINESS, snapshot.rng.business),
            fault_rng: stream_at(STREAM_FAULTS, snapshot.rng.faults),
            feed_rng: stream_at(STREAM_FEED, snapshot.rng.feed),
            locations: snapshot.locations,
            items: snapshot.items,
            stock: from_rows(snapshot.stock),
            backorder_totals: from_rows(snapshot.backorder_totals),
            customer_prices: from_rows(snapshot.customer_prices),
            promotions: snapshot.promotions,
            customers: snapshot.customers,
            customer_by_ref: snapshot.customer_by_ref,
            uninvoiced: snapshot.uninvoiced,
            orders: snapshot.orders,
            order_by_ref: snapshot.order_by_ref,
            shipments: snapshot.shipments,
            invoices: snapshot.invoices,
            payments: snapshot.payments,
            payment_by_ref: snapshot.payment_by_ref,
            rmas: snapshot.rmas,
            rma_by_ref: snapshot.rma_by_ref,
            credit_memos: snapshot.credit_memos,
            refunds: snapshot.refunds,
            replenishments: snapshot.replenishments,
            counters: snapshot.counters,
            tasks: snapshot
                .tasks
                .into_iter()
                .map(|(due, seq, task)| ((due, seq), task))
                .collect(),
            task_seq: snapshot.task_seq,
            events,
            next_seq: snapshot.next_seq,
            poll,
            webhooks,
            faults: config.faults.clone(),
            outages: snapshot.outages,
            stats: snapshot.stats,
            idempotency,
            idempotency_order,
            revision: 0,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::HOUR_MS;

    fn busy_state() -> State {
        let mut state = State::new(Config {
            seed: 3,
            ..Config::default()
        });
        let customer = state.customers().next().map(|c| c.number.clone());
        let sku = state.items().next().map(|i| i.sku.clone());
        let (Some(customer), Some(sku)) = (customer, sku) else {
            panic!("generated master data has customers and items");
        };
        state
            .set_hold(&customer, false)
            .expect("the customer exists");
        let booked = state.book_order(&json!({
            "external_ref": "SF-1", "customer": customer,
            "lines": [{ "sku": sku, "quantity": 2 }],
        }));
        assert!(booked.is_ok(), "{booked:?}");
        // Long enough to ship: carriers and payment dates are drawn.
        state.run_until(state.now_ms() + 3 * HOUR_MS);
        state
    }

    #[test]
    fn a_restored_state_writes_the_same_snapshot_and_draws_the_same_numbers() {
        let mut state = busy_state();
        assert!(state.rng.get_word_pos() > 0, "the business stream was used");
        let snapshot = state.snapshot(1);
        let text = serde_json::to_string(&snapshot).expect("serializes");
        let back: Snapshot = serde_json::from_str(&text).expect("reads back");
        let mut restored = State::restore(Config::default(), back).expect("restores");
        let again = serde_json::to_string(&restored.snapshot(1)).expect("serializes");
        assert_eq!(text, again, "restore then snapshot is the identity");
        use rand::Rng;
        let next: Vec<u32> = (0..5).map(|_| state.rng.random()).collect();
        let restored_next: Vec<u32> = (0..5).map(|_| restored.rng.random()).collect();
        assert_eq!(next, restored_next);
        assert_eq!(
            restored.config.seed, 3,
            "the saved seed wins over the config"
        );
    }

    #[test]
    fn a_gap_in_the_history_is_refused() {
        let state = busy_state();
        let mut snapshot = state.snapshot(1);
        snapshot.events.retain(|e| e.seq != 2);
        let error = State::restore(Config::default(), snapshot).expect_err("gap");
        assert!(error.contains("event 2"), "{error}");
    }
}
