//! A projection of the event log that the order rows do not carry: where each return is and
//! since when, each order's unpaid or overpaid balance and since when, and the time each order
//! took per stage (for the ROI view).
//!
//! It reads the global log from its position onwards ([`Follower::catch_up`]) within a time
//! budget, so a hub with a long history becomes complete over a few calls instead of stalling
//! one request. It keeps only open work in memory: closed returns, settled balances and closed
//! orders are dropped; cycle-time samples are bounded per stage.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use crossdock_domain::order::{Event, Milestone};
use crossdock_store::{SharedStore, StoredAuditEntry, StoredEvent};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

/// Most events read per store call.
const BATCH: usize = 2_000;
/// Most cycle-time samples kept per stage (the newest win).
const MAX_SAMPLES: usize = 50_000;

/// Where a return is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStage {
    /// Requested, waiting for the ERP's authorisation.
    Requested,
    /// Authorised, waiting for the goods.
    Authorised,
    /// Goods received, waiting for the credit memo.
    Received,
    /// Credit memo issued, waiting for the refund.
    Credited,
    /// Refunded, waiting to be closed.
    Refunded,
}

/// An open return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenReturn {
    /// Order.
    pub order_id: String,
    /// Return id.
    pub rma: String,
    /// Where it is.
    pub stage: ReturnStage,
    /// Since when (the time of the event that moved it there).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Units requested per line number.
    pub lines: BTreeMap<u32, u32>,
    /// Amount credited so far.
    pub credited: Decimal,
}

/// An order whose invoices and payments do not balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Order.
    pub order_id: String,
    /// Invoiced minus paid (negative: overpaid).
    pub outstanding: Decimal,
    /// Issue time of the oldest invoice not fully paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_unpaid: Option<OffsetDateTime>,
    /// When the balance last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

/// Stages measured for cycle times.
pub const STAGES: [(&str, &str); 5] = [
    ("capture_to_booking", "Captured → booked in the ERP"),
    ("booking_to_shipment", "Booked → first shipment"),
    ("shipment_to_delivery", "First shipment → delivered"),
    ("invoice_to_payment", "Invoiced → paid"),
    ("order_to_close", "Captured → closed (end to end)"),
];

#[derive(Debug, Clone, Default)]
struct Marks {
    captured: Option<OffsetDateTime>,
    booked: Option<OffsetDateTime>,
    shipped: Option<OffsetDateTime>,
    delivered: Option<OffsetDateTime>,
    invoiced: Option<OffsetDateTime>,
    paid: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
struct Money {
    /// Unpaid remainder of each invoice, oldest first.
    invoices: VecDeque<(OffsetDateTime, Decimal)>,
    /// Payments not matched to an invoice yet (overpayment).
    credit: Decimal,
    changed_at: Option<OffsetDateTime>,
}

/// The projection. See the module documentation.
#[derive(Debug, Default)]
pub struct Follower {
    position: i64,
    caught_up: bool,
    returns: BTreeMap<(String, String), OpenReturn>,
    money: HashMap<String, Money>,
    marks: HashMap<String, Marks>,
    samples: Vec<VecDeque<u32>>,
    events_read: u64,
    audit_position: i64,
    interventions: BTreeMap<String, u64>,
    recent_interventions: VecDeque<StoredAuditEntry>,
}

/// Audit actions that are manual interventions on business processes.
pub fn is_intervention(action: &str) -> bool {
    action.starts_with("dlq.") || action.starts_with("replay.")
}

impl Follower {
    /// Global position of the last event read.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Whether the last read reached the end of the log.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Events read since start.
    pub fn events_read(&self) -> u64 {
        self.events_read
    }

    /// Reads new events for at most `budget`. Returns whether more remain.
    ///
    /// # Errors
    /// When the store fails (what was read so far is kept).
    pub async fn catch_up(
        &mut self,
        store: &SharedStore,
        budget: Duration,
    ) -> crossdock_store::Result<bool> {
        let started = std::time::Instant::now();
        loop {
            let events = store.read_all(self.position, BATCH).await?;
            let mut full = events.len() == BATCH;
            for event in &events {
                self.apply(event);
            }
            let audit = store.audit_log(self.audit_position, BATCH).await?;
            full |= audit.len() == BATCH;
            for entry in audit {
                self.audit_position = self.audit_position.max(entry.id);
                if is_intervention(&entry.entry.action) {
                    *self
                        .interventions
                        .entry(entry.entry.action.clone())
                        .or_default() += 1;
                    if self.recent_interventions.len() == 20 {
                        self.recent_interventions.pop_front();
                    }
                    self.recent_interventions.push_back(entry);
                }
            }
            if !full {
                self.caught_up = true;
                return Ok(false);
            }
            if started.elapsed() >= budget {
                self.caught_up = false;
                return Ok(true);
            }
        }
    }

    /// Manual interventions (audit actions `dlq.*`, `replay.*`) counted per action.
    pub fn interventions(&self) -> &BTreeMap<String, u64> {
        &self.interventions
    }

    /// The latest manual interventions, newest first.
    pub fn recent_interventions(&self) -> impl Iterator<Item = &StoredAuditEntry> {
        self.recent_interventions.iter().rev()
    }

    /// Applies one stored event.
    pub fn apply(&mut self, stored: &StoredEvent) {
        self.position = self.position.max(stored.global_seq);
        self.events_read += 1;
        let Some(order) = stored.stream.strip_prefix("order:") else {
            return;
        };
        let at = stored.occurred_at;
        let interesting = matches!(
            stored.kind.as_str(),
            "OrderCaptured"
                | "OrderBooked"
                | "ShipmentProgressed"
                | "InvoiceIssued"
                | "PaymentReceived"
                | "OrderClosed"
                | "OrderCancelled"
                | "OrderRejected"
                | "ReturnRequested"
                | "ReturnAuthorised"
                | "ReturnRefused"
                | "ReturnReceived"
                | "CreditMemoIssued"
                | "RefundIssued"
                | "ReturnClosed"
        );
        if !interesting {
            return;
        }
        // An event this version cannot read is skipped: the projection is advisory.
        let Ok(event) = serde_json::from_value::<Event>(stored.payload.clone()) else {
            return;
        };
        match event {
            Event::OrderCaptured(_) => {
                self.marks.entry(order.to_owned()).or_default().captured = Some(at);
            }
            Event::OrderBooked(_) => {
                let marks = self.marks.entry(order.to_owned()).or_default();
                if marks.booked.is_none() {
                    marks.booked = Some(at);
                    let sample = between(marks.captured, at);
                    self.sample(0, sample);
                }
            }
            Event::ShipmentProgressed { milestone, .. } => {
                let marks = self.marks.entry(order.to_owned()).or_default();
                match milestone {
                    Milestone::Shipped | Milestone::Delivered if marks.shipped.is_none() => {
                        marks.shipped = Some(at);
                        let sample = between(marks.booked, at);
                        self.sample(1, sample);
                    }
                    _ => {}
                }
                let marks = self.marks.entry(order.to_owned()).or_default();
                if milestone == Milestone::Delivered && marks.delivered.is_none() {
                    marks.delivered = Some(at);
                    let sample = between(marks.shipped, at);
                    self.sample(2, sample);
                }
            }
            Event::InvoiceIssued { facts, .. } => {
                let marks = self.marks.entry(order.to_owned()).or_default();
                marks.invoiced.get_or_insert(at);
                let money = self.money.entry(order.to_owned()).or_default();
                let mut amount = facts.total;
                let used = amount.min(money.credit);
                money.credit -= used;
                amount -= used;
                if amount > Decimal::ZERO {
                    money.invoices.push_back((facts.issued_at, amount));
                }
                money.changed_at = Some(at);
                self.settle(order);
            }
            Event::PaymentReceived { facts, .. } => {
                let marks = self.marks.entry(order.to_owned()).or_default();
                if marks.paid.is_none() {
                    marks.paid = Some(at);
                    let sample = between(marks.invoiced, at);
                    self.sample(3, sample);
                }
                let money = self.money.entry(order.to_owned()).or_default();
                let mut amount = facts.amount;
                while amount > Decimal::ZERO {
                    let Some(front) = money.invoices.front_mut() else {
                        break;
                    };
                    let used = amount.min(front.1);
                    front.1 -= used;
                    amount -= used;
                    if front.1 <= Decimal::ZERO {
                        money.invoices.pop_front();
                    }
                }
                money.credit += amount;
                money.changed_at = Some(at);
                self.settle(order);
            }
            Event::OrderClosed { .. } => {
                if let Some(marks) = self.marks.remove(order) {
                    let sample = between(marks.captured, at);
                    self.sample(4, sample);
                }
            }
            Event::OrderCancelled(_) | Event::OrderRejected(_) => {
                self.marks.remove(order);
            }
            Event::ReturnRequested { rma, request } => {
                self.returns.insert(
                    (order.to_owned(), rma.to_string()),
                    OpenReturn {
                        order_id: order.to_owned(),
                        rma: rma.to_string(),
                        stage: ReturnStage::Requested,
                        since: at,
                        lines: request.lines.iter().map(|(l, q)| (l.0, *q)).collect(),
                        credited: Decimal::ZERO,
                    },
                );
            }
            Event::ReturnAuthorised { rma, .. } => {
                self.move_return(order, rma.as_str(), ReturnStage::Authorised, at)
            }
            Event::ReturnReceived { rma, .. } => {
                self.move_return(order, rma.as_str(), ReturnStage::Received, at)
            }
            Event::CreditMemoIssued { rma, facts, .. } => {
                self.move_return(order, rma.as_str(), ReturnStage::Credited, at);
                if let Some(open) = self.returns.get_mut(&(order.to_owned(), rma.to_string())) {
                    open.credited += facts.amount;
                }
            }
            Event::RefundIssued { rma, .. } => {
                self.move_return(order, rma.as_str(), ReturnStage::Refunded, at)
            }
            Event::ReturnClosed { rma, .. } | Event::ReturnRefused { rma, .. } => {
                self.returns.remove(&(order.to_owned(), rma.to_string()));
            }
            _ => {}
        }
    }

    fn move_return(&mut self, order: &str, rma: &str, stage: ReturnStage, at: OffsetDateTime) {
        let open = self
            .returns
            .entry((order.to_owned(), rma.to_owned()))
            .or_insert_with(|| OpenReturn {
                order_id: order.to_owned(),
                rma: rma.to_owned(),
                stage,
                since: at,
                lines: BTreeMap::new(),
                credited: Decimal::ZERO,
            });
        // Stages only move forward (a second partial receipt does not restart the clock).
        if stage > open.stage {
            open.stage = stage;
            open.since = at;
        }
    }

    fn settle(&mut self, order: &str) {
        if let Some(money) = self.money.get(order)
            && money.invoices.is_empty()
            && money.credit.is_zero()
        {
            self.money.remove(order);
        }
    }

    fn sample(&mut self, stage: usize, secs: Option<u32>) {
        let Some(secs) = secs else { return };
        if self.samples.len() < STAGES.len() {
            self.samples.resize_with(STAGES.len(), VecDeque::new);
        }
        let samples = &mut self.samples[stage];
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(secs);
    }

    /// Open returns.
    pub fn open_returns(&self) -> impl Iterator<Item = &OpenReturn> {
        self.returns.values()
    }

    /// Orders whose invoices and payments do not balance.
    pub fn balances(&self) -> Vec<Balance> {
        let mut out: Vec<Balance> = self
            .money
            .iter()
            .filter_map(|(order, money)| {
                let unpaid: Decimal = money.invoices.iter().map(|(_, a)| *a).sum();
                let outstanding = unpaid - money.credit;
                (!outstanding.is_zero() || !money.credit.is_zero()).then(|| Balance {
                    order_id: order.clone(),
                    outstanding,
                    oldest_unpaid: money.invoices.front().map(|(at, _)| *at),
                    changed_at: money.changed_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                })
            })
            .collect();
        out.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        out
    }

    /// Cycle time percentiles per stage: (stage key, label, samples, p50 secs, p95 secs).
    pub fn cycle_times(&self) -> Vec<CycleTime> {
        STAGES
            .iter()
            .enumerate()
            .map(|(i, (key, label))| {
                let mut values: Vec<u32> = self
                    .samples
                    .get(i)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                values.sort_unstable();
                CycleTime {
                    stage: (*key).to_owned(),
                    label: (*label).to_owned(),
                    samples: values.len(),
                    p50_secs: percentile(&values, 0.50),
                    p95_secs: percentile(&values, 0.95),
                }
            })
            .collect()
    }
}

/// Cycle time figures of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleTime {
    /// Stage key.
    pub stage: String,
    /// Stage in words.
    pub label: String,
    /// Orders measured.
    pub samples: usize,
    /// Median (seconds).
    pub p50_secs: Option<u32>,
    /// 95th percentile (seconds).
    pub p95_secs: Option<u32>,
}

fn between(from: Option<OffsetDateTime>, to: OffsetDateTime) -> Option<u32> {
    let secs = (to - from?).whole_seconds();
    u32::try_from(secs.max(0)).ok()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn event(seq: i64, order: &str, payload: serde_json::Value, at: OffsetDateTime) -> StoredEvent {
        StoredEvent {
            global_seq: seq,
            stream: format!("order:{order}"),
            version: seq,
            kind: payload["type"].as_str().unwrap_or_default().to_owned(),
            payload,
            occurred_at: at,
            recorded_at: at,
            causation: None,
            correlation: None,
        }
    }

    #[test]
    fn payments_settle_invoices_oldest_first_and_overpayments_show() {
        let mut f = Follower::default();
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let invoice = |n: &str, total: &str, at: OffsetDateTime| {
            json!({"type": "InvoiceIssued", "data": {"invoice": n, "facts": {
                "number": n, "lines": {}, "net": total, "tax": "0", "total": total,
                "issued_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}}})
        };
        let payment = |n: &str, amount: &str, at: OffsetDateTime| {
            json!({"type": "PaymentReceived", "data": {"payment": n, "facts": {
                "invoice": null, "amount": amount,
                "received_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}}})
        };
        f.apply(&event(1, "A", invoice("I1", "100", t0), t0));
        f.apply(&event(
            2,
            "A",
            invoice("I2", "50", t0 + time::Duration::days(2)),
            t0 + time::Duration::days(2),
        ));
        f.apply(&event(
            3,
            "A",
            payment("P1", "100", t0 + time::Duration::days(3)),
            t0 + time::Duration::days(3),
        ));
        let balances = f.balances();
        assert_eq!(balances.len(), 1);
        assert_eq!(balances[0].outstanding, Decimal::from(50));
        assert_eq!(
            balances[0].oldest_unpaid,
            Some(t0 + time::Duration::days(2))
        );
        f.apply(&event(
            4,
            "A",
            payment("P2", "50", t0 + time::Duration::days(4)),
            t0 + time::Duration::days(4),
        ));
        assert!(f.balances().is_empty(), "settled balances are dropped");
        f.apply(&event(5, "B", invoice("I3", "10", t0), t0));
        f.apply(&event(6, "B", payment("P3", "15", t0), t0));
        let balances = f.balances();
        assert_eq!(balances[0].outstanding, Decimal::from(-5));
        assert_eq!(balances[0].oldest_unpaid, None);
        // The invoice-to-payment stage was measured once per order.
        let cycles = f.cycle_times();
        assert_eq!(cycles[3].samples, 2);
        assert_eq!(cycles[3].p95_secs, Some(3 * 86_400));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.95), Some(95));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
