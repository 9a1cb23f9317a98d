//! The simulator's whole state behind one `std::sync::Mutex`: master data, transactions, the
//! time-driven task queue, the change feed, fault knobs and call statistics.
//!
//! Operations live in `ops/` as `impl State` blocks; they are synchronous and short, so the
//! lock is never held across an `.await`. Simulated time moves only through
//! [`State::run_until`], which runs due tasks (warehouse steps, replenishments, payments) in
//! time order, so every event carries the simulated time at which it happened.
//!
//! Every change bumps a revision counter (not persisted) that tells the periodic writer of
//! `persist` whether there is anything new to write.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{ApiError, Code, Result};
use crate::faults::{Faults, Outage, OutageMode};
use crate::feed::{Event, Stream};
use crate::model::{
    CreditMemo, Customer, Invoice, Item, Location, Order, Payment, Promotion, Refund,
    Replenishment, Rma, Shipment, Stock,
};

/// Random streams derived from the one seed, so that, for example, turning on latency does not
/// change which carrier ships an order.
pub(crate) const STREAM_BUSINESS: u64 = 0;
pub(crate) const STREAM_FAULTS: u64 = 1;
pub(crate) const STREAM_FEED: u64 = 2;
/// Stream used once to generate master data.
pub(crate) const STREAM_MASTER_DATA: u64 = 3;

/// Most idempotency keys remembered; the oldest are forgotten first.
const IDEMPOTENCY_CAPACITY: usize = 200_000;

/// The random stream `n` of a seed.
pub(crate) fn rng_stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// A time-driven step of the simulated ERP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub(crate) enum Task {
    /// Move a shipment to its next warehouse state.
    AdvanceShipment(String),
    /// Replenishment stock arrives.
    Replenish(String),
    /// The customer pays an invoice in full.
    Pay(String),
    /// An RMA's goods arrive and are received in full.
    ReceiveReturn(String),
}

/// Call counters of one operation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpStats {
    /// Calls received (including refused ones).
    pub calls: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered 4xx.
    pub client_errors: u64,
    /// Answered 5xx (injected or outage).
    pub server_errors: u64,
    /// Injected 500s.
    pub injected_500: u64,
    /// Injected 503s.
    pub injected_503: u64,
    /// Injected 429s.
    pub injected_429: u64,
    /// Injected timeouts.
    pub injected_timeouts: u64,
    /// Refused by an outage window.
    pub outage_refused: u64,
    /// Answers replayed for a repeated `Idempotency-Key`.
    pub replayed: u64,
    /// Latency added by the fault knobs, in milliseconds.
    pub added_latency_ms: f64,
}

/// Booking activity for one external reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BookingStats {
    /// Booking requests that reached the order logic.
    pub requests: u64,
    /// Orders created (1 when idempotency holds).
    pub orders_created: u64,
    /// The ERP order number.
    pub order: Option<String>,
}

/// Counters kept for `GET /admin/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Per operation.
    pub calls: BTreeMap<String, OpStats>,
    /// Per booking external reference.
    pub bookings: BTreeMap<String, BookingStats>,
    /// Connections dropped by connection-level outages.
    pub connections_refused: u64,
}

/// A webhook subscription and its delivery state.
#[derive(Debug)]
pub struct Webhook {
    /// Identifier.
    pub id: u64,
    /// Receiver URL (`http://127.0.0.1:...`).
    pub url: String,
    pub(crate) secret: String,
    /// Event types delivered (`None` = all).
    pub event_types: Option<Vec<String>>,
    pub(crate) stream: Stream,
    /// Next position to deliver.
    pub next_position: u64,
    /// Deliveries acknowledged with 2xx.
    pub delivered: u64,
    /// Failed attempts (non-2xx answers, connection errors, timeouts).
    pub failed_attempts: u64,
    /// Events given up after the last attempt.
    pub dead_lettered: u64,
    /// Last failure.
    pub last_error: Option<String>,
    pub(crate) notify: Arc<Notify>,
    pub(crate) active: bool,
}

impl Webhook {
    /// Deliveries not yet acknowledged or dead-lettered.
    pub fn pending(&self) -> u64 {
        (self.stream.last_position() + 1).saturating_sub(self.next_position)
    }
}

/// An answer remembered for its `Idempotency-Key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub op: String,
    pub status: u16,
    pub body: Value,
}

/// Sequence counters for document numbers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Counters {
    pub order: u64,
    pub shipment: u64,
    pub invoice: u64,
    pub payment: u64,
    pub rma: u64,
    pub credit_memo: u64,
    pub refund: u64,
    pub replenishment: u64,
    pub customer: u64,
    pub promotion: u64,
    pub outage: u64,
    pub webhook: u64,
}

/// The simulated ERP.
#[derive(Debug)]
pub struct State {
    pub(crate) config: Config,
    pub(crate) now: i64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) fault_rng: ChaCha8Rng,
    pub(crate) feed_rng: ChaCha8Rng,
    pub(crate) locations: BTreeMap<String, Location>,
    pub(crate) items: BTreeMap<String, Item>,
    pub(crate) stock: BTreeMap<(String, String), Stock>,
    /// (sku, location) → quantity waiting for stock there (index over order lines).
    pub(crate) backorder_totals: BTreeMap<(String, String), u64>,
    /// (customer number, sku) → negotiated unit price.
    pub(crate) customer_prices: BTreeMap<(String, String), Decimal>,
    pub(crate) promotions: BTreeMap<String, Promotion>,
    pub(crate) customers: BTreeMap<String, Customer>,
    pub(crate) customer_by_ref: BTreeMap<String, String>,
    /// customer number → order number → value booked but not yet invoiced.
    pub(crate) uninvoiced: BTreeMap<String, BTreeMap<String, Decimal>>,
    pub(crate) orders: BTreeMap<String, Order>,
    pub(crate) order_by_ref: BTreeMap<String, String>,
    pub(crate) shipments: BTreeMap<String, Shipment>,
    pub(crate) invoices: BTreeMap<String, Invoice>,
    pub(crate) payments: BTreeMap<String, Payment>,
    pub(crate) payment_by_ref: BTreeMap<String, String>,
    pub(crate) rmas: BTreeMap<String, Rma>,
    pub(crate) rma_by_ref: BTreeMap<String, String>,
    pub(crate) credit_memos: BTreeMap<String, CreditMemo>,
    pub(crate) refunds: BTreeMap<String, Refund>,
    pub(crate) replenishments: BTreeMap<String, Replenishment>,
    pub(crate) counters: Counters,
    pub(crate) tasks: BTreeMap<(i64, u64), Task>,
    pub(crate) task_seq: u64,
    pub(crate) events: VecDeque<Arc<Event>>,
    pub(crate) next_seq: u64,
    pub(crate) poll: Stream,
    pub(crate) webhooks: BTreeMap<u64, Webhook>,
    pub(crate) faults: Faults,
    pub(crate) outages: Vec<Outage>,
    pub(crate) stats: Stats,
    pub(crate) idempotency: BTreeMap<String, Saved>,
    pub(crate) idempotency_order: VecDeque<String>,
    /// Bumped by every change; compared by the periodic writer (never persisted).
    pub(crate) revision: u64,
}

impl State {
    /// A fresh ERP with master data generated from the config's seed.
    pub fn new(config: Config) -> Self {
        let seed = config.seed;
        let stream = move |n| rng_stream(seed, n);
        let mut state = Self {
            now: config.start_time_ms,
            rng: stream(STREAM_BUSINESS),
            fault_rng: stream(STREAM_FAULTS),
            feed_rng: stream(STREAM_FEED),
            locations: BTreeMap::new(),
            items: BTreeMap::new(),
            stock: BTreeMap::new(),
            backorder_totals: BTreeMap::new(),
            customer_prices: BTreeMap::new(),
            promotions: BTreeMap::new(),
            customers: BTreeMap::new(),
            customer_by_ref: BTreeMap::new(),
            uninvoiced: BTreeMap::new(),
            orders: BTreeMap::new(),
            order_by_ref: BTreeMap::new(),
            shipments: BTreeMap::new(),
            invoices: BTreeMap::new(),
            payments: BTreeMap::new(),
            payment_by_ref: BTreeMap::new(),
            rmas: BTreeMap::new(),
            rma_by_ref: BTreeMap::new(),
            credit_memos: BTreeMap::new(),
            refunds: BTreeMap::new(),
            replenishments: BTreeMap::new(),
            counters: Counters::default(),
            tasks: BTreeMap::new(),
            task_seq: 0,
            events: VecDeque::new(),
            next_seq: 1,
            poll: Stream::new(config.feed_retention),
            webhooks: BTreeMap::new(),
            faults: config.faults.clone(),
            outages: Vec::new(),
            stats: Stats::default(),
            idempotency: BTreeMap::new(),
            idempotency_order: VecDeque::new(),
            revision: 0,
            config,
        };
        let mut master_rng = stream(STREAM_MASTER_DATA);
        crate::masterdata::generate(&mut state, &mut master_rng);
        state
    }

    // ----- time -------------------------------------------------------------------------

    /// Current simulated time (ms since the Unix epoch).
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// Marks the state as changed for the periodic writer.
    pub(crate) fn touch(&mut self) {
        self.revision = self.revision.wrapping_add(1);
    }

    /// Moves simulated time forward to `target`, running every task due on the way at its own
    /// time. Time never moves backwards.
    pub fn run_until(&mut self, target: i64) {
        while let Some((&(due, seq), _)) = self.tasks.first_key_value() {
            if due > target {
                break;
            }
            let Some(task) = self.tasks.remove(&(due, seq)) else {
                break;
            };
            self.now = self.now.max(due);
            self.run_task(task);
            self.touch();
        }
        self.now = self.now.max(target);
        self.release_held();
    }

    /// Delivers held-back feed events whose longest hold has passed.
    pub(crate) fn release_held(&mut self) {
        let now = self.now;
        let before = self.poll.last_position();
        self.poll.release_due(now);
        let mut released = self.poll.last_position() != before;
        for webhook in self.webhooks.values_mut() {
            let before = webhook.stream.last_position();
            webhook.stream.release_due(now);
            if webhook.stream.last_position() != before {
                webhook.notify.notify_one();
                released = true;
            }
        }
        if released {
            self.touch();
        }
    }

    pub(crate) fn schedule(&mut self, at: i64, task: Task) {
        self.task_seq += 1;
        self.tasks.insert((at.max(self.now), self.task_seq), task);
        self.touch();
    }

    fn run_task(&mut self, task: Task) {
        match task {
            Task::AdvanceShipment(id) => self.advance_shipment(&id),
            Task::Replenish(id) => self.receive_replenishment(&id),
            Task::Pay(invoice) => self.auto_pay(&invoice),
            Task::ReceiveReturn(rma) => self.auto_receive(&rma),
        }
    }

    // ----- events -----------------------------------------------------------------------

    /// Records a state change and offers it to every consumer stream.
    pub(crate) fn emit(&mut self, kind: &str, data: Value) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.touch();
        let name = format!("crossdock-sim-erp:{}:{seq}", self.config.seed);
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string();
        let event = Arc::new(Event {
            seq,
            id,
            kind: kind.to_owned(),
            occurred_at: self.now,
            data,
        });
        self.events.push_back(event.clone());
        while self.events.len() > self.config.feed_retention.max(1) {
            self.events.pop_front();
        }
        self.poll
            .push(&event, self.now, &self.faults, &mut self.feed_rng);
        for webhook in self.webhooks.values_mut() {
            let wanted = webhook
                .event_types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == kind));
            if wanted && webhook.active {
                webhook
                    .stream
                    .push(&event, self.now, &self.faults, &mut self.feed_rng);
                webhook.notify.notify_one();
            }
        }
    }

    /// Every retained event in sequence order (without delivery faults).
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(AsRef::as_ref)
    }

    /// Sequence number of the last event (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    // ----- idempotency ------------------------------------------------------------------

    pub(crate) fn saved_answer(&self, key: &str) -> Option<&Saved> {
        self.idempotency.get(key)
    }

    pub(crate) fn save_answer(&mut self, key: String, saved: Saved) {
        self.touch();
        if self.idempotency.insert(key.clone(), saved).is_none() {
            self.idempotency_order.push_back(key);
            while self.idempotency_order.len() > IDEMPOTENCY_CAPACITY {
                if let Some(old) = self.idempotency_order.pop_front() {
                    self.idempotency.remove(&old);
                }
            }
        }
    }

    // ----- outages ----------------------------------------------------------------------

    /// The outage window active now, if any (connection mode wins over 503 mode).
    pub fn active_outage(&self) -> Option<&Outage> {
        let now = self.now;
        let mut active = self.outages.iter().filter(|o| o.active_at(now));
        let first = active.next()?;
        if first.mode == OutageMode::Connection {
            return Some(first);
        }
        Some(
            active
                .find(|o| o.mode == OutageMode::Connection)
                .unwrap_or(first),
        )
    }

    /// Adds an outage window and returns its id.
    pub fn add_outage(&mut self, mode: OutageMode, start_ms: i64, end_ms: Option<i64>) -> u64 {
        self.counters.outage += 1;
        self.touch();
        let id = self.counters.outage;
        self.outages.push(Outage {
            id,
            mode,
            start_ms,
            end_ms,
        });
        id
    }

    /// Ends every window active now and cancels those scheduled later. Returns how many.
    pub fn stop_outages(&mut self) -> usize {
        self.touch();
        let now = self.now;
        let mut stopped = 0;
        self.outages.retain_mut(|outage| {
            if outage.start_ms > now {
                stopped += 1;
                return false;
            }
            if outage.active_at(now) {
                outage.end_ms = Some(now);
                stopped += 1;
            }
            true
        });
        stopped
    }

    // ----- look-ups ---------------------------------------------------------------------

    pub(crate) fn next_id(counter: &mut u64, prefix: &str) -> String {
        *counter += 1;
        format!("{prefix}-{:06}", *counter)
    }

    /// Resolves a customer by ERP number or external reference.
    pub fn customer_number(&self, key: &str) -> Option<String> {
        if self.customers.contains_key(key) {
            return Some(key.to_owned());
        }
        self.customer_by_ref.get(key).cloned()
    }

    pub(crate) fn require_customer(&self, key: &str) -> Result<String> {
        self.customer_number(key).ok_or_else(|| {
            ApiError::unprocessable(Code::UnknownCustomer, format!("unknown customer {key:?}"))
        })
    }

    pub(crate) fn require_item(&self, sku: &str) -> Result<&Item> {
        self.items.get(sku).ok_or_else(|| {
            ApiError::unprocessable(Code::UnknownItem, format!("unknown item {sku:?}"))
        })
    }

    pub(crate) fn require_location(&self, code: &str) -> Result<&Location> {
        self.locations.get(code).ok_or_else(|| {
            ApiError::unprocessable(Code::UnknownLocation, format!("unknown location {code:?}"))
        })
    }

    /// Resolves an order by ERP number or external reference.
    pub fn order_number(&self, key: &str) -> Option<String> {
        if self.orders.contains_key(key) {
            return Some(key.to_owned());
        }
        self.order_by_ref.get(key).cloned()
    }

    pub(crate) fn stock_mut(&mut self, sku: &str, location: &str) -> &mut Stock {
        self.stock
            .entry((sku.to_owned(), location.to_owned()))
            .or_default()
    }

    /// Stock of an item at a location.
    pub fn stock(&self, sku: &str, location: &str) -> Stock {
        self.stock
            .get(&(sku.to_owned(), location.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Publishes the current stock figures of one item at one location.
    pub(crate) fn emit_inventory(&mut self, sku: &str, location: &str, reason: &str) {
        let stock = self.stock(sku, location);
        let data = serde_json::json!({
            "sku": sku,
            "location": location,
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "available": stock.available(),
            "as_of": crate::clock::format_ms(self.now),
            "reason": reason,
        });
        self.emit("inventory.changed", data);
    }

    // ----- read access for tests and the admin API --------------------------------------

    /// An order by ERP number or external reference.
    pub fn order(&self, key: &str) -> Option<&Order> {
        self.orders.get(&self.order_number(key)?)
    }

    /// A customer by ERP number or external reference.
    pub fn customer(&self, key: &str) -> Option<&Customer> {
        self.customers.get(&self.customer_number(key)?)
    }

    /// All customers by number.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.values()
    }

    /// All items by SKU.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// All locations by code.
    pub fn locations(&self) -> impl Iterator<Item = &Location> {
        self.locations.values()
    }

    /// A shipment.
    pub fn shipment(&self, id: &str) -> Option<&Shipment> {
        self.shipments.get(id)
    }

    /// An invoice.
    pub fn invoice(&self, number: &str) -> Option<&Invoice> {
        self.invoices.get(number)
    }

    /// An RMA by number or external reference.
    pub fn rma(&self, key: &str) -> Option<&Rma> {
        self.rmas
            .get(key)
            .or_else(|| self.rmas.get(self.rma_by_ref.get(key)?))
    }

    /// A credit memo.
    pub fn credit_memo(&self, number: &str) -> Option<&CreditMemo> {
        self.credit_memos.get(number)
    }

    /// Pending replenishments.
    pub fn replenishments(&self) -> impl Iterator<Item = &Replenishment> {
        self.replenishments.values()
    }

    /// Call statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Fault knobs in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Webhook subscriptions.
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values()
    }

    /// Every sales order, by number.
    pub fn sales_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Number of orders created for an external reference.
    pub fn orders_created_for(&self, external_ref: &str) -> u64 {
        self.stats
            .bookings
            .get(external_ref)
            .map_or(0, |b| b.orders_created)
    }
}
