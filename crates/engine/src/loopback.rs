//! In-process downstreams with zero latency: an ERP that books, ships, invoices and gets paid
//! at once, and a Salesforce that accepts every write. They let the benchmark (and engine
//! tests) measure the hub itself, without any network or simulator in the way.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

use async_trait::async_trait;
use crossdock_domain::account::{Account, CreditStatus};
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::RmaId;
use crossdock_domain::ids::{AccountId, LineNo, LocationId, OrderId, Sku};
use crossdock_domain::money::{Currency, round_cents};
use crossdock_domain::order::{CreditAnswer, Milestone, OrderDraft};
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::erp::{
    Allocation, BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, ChangeKind,
    CreditMemo, CreditReport, CustomerRef, ErpChange, ErpInvoice, ErpOrder, ErpShipment,
    FulfilmentRequest, PriceQuote, PriceRequest, Refund, ReturnAuthorisation, ReturnReceipt,
    ReturnRequest,
};
use crossdock_ports::failure::Result;
use crossdock_ports::salesforce::ApiUsage;
use crossdock_ports::{Clock, Erp, Failure, Salesforce};
use rust_decimal::Decimal;
use std::sync::Arc;

/// The loopback ERP's price of a SKU: 10.00 plus a stable amount derived from its name.
pub fn list_price(sku: &Sku) -> Decimal {
    let sum: u32 = sku.as_str().bytes().map(u32::from).sum();
    Decimal::new(1_000 + i64::from(sum % 9_000), 2)
}

const LOCATION: &str = "WH-LOOP";

/// A booked order: ERP number and (line, units, unit price).
type Booked = (String, Vec<(LineNo, u32, Decimal)>);
/// An authorised return: hub id, (line, units), order.
type Authorised = (RmaId, Vec<(LineNo, u32)>, OrderId);

/// Bookings the loopback ERP remembers by default (see [`LoopbackErp::remembering`]).
pub const REMEMBERED_BOOKINGS: usize = 10_000;

#[derive(Default)]
struct ErpState {
    bookings: Bookings,
    returns: BTreeMap<String, Authorised>,
    memos: BTreeMap<String, Decimal>,
    changes: Feed,
}

/// The newest bookings by order, at most `limit`: the oldest is forgotten when a new one
/// would pass it, which keeps long runs' memory flat. ERP numbers count every booking ever.
#[derive(Default)]
struct Bookings {
    limit: usize,
    by_order: BTreeMap<OrderId, Booked>,
    /// Orders in booking order, for forgetting the oldest.
    age: std::collections::VecDeque<OrderId>,
    created: u64,
}

impl Bookings {
    fn get(&self, order: &OrderId) -> Option<&Booked> {
        self.by_order.get(order)
    }

    /// Books `order`; returns its new ERP number.
    fn insert(&mut self, order: &OrderId, lines: Vec<(LineNo, u32, Decimal)>) -> String {
        self.created += 1;
        let erp_ref = format!("LB-{}", self.created);
        self.by_order
            .insert(order.clone(), (erp_ref.clone(), lines));
        self.age.push_back(order.clone());
        while self.by_order.len() > self.limit.max(1) {
            let Some(oldest) = self.age.pop_front() else {
                break;
            };
            self.by_order.remove(&oldest);
        }
        erp_ref
    }

    fn iter(&self) -> impl Iterator<Item = (&OrderId, &Booked)> {
        self.by_order.iter()
    }
}

/// The change feed: positions count from the first change ever; changes before the
/// position last asked for are dropped (the hub asks from its durable cursor, so it never
/// asks for them again), which keeps long runs' memory flat.
#[derive(Default)]
struct Feed {
    /// Position of `kept[0]`.
    dropped: usize,
    kept: std::collections::VecDeque<ErpChange>,
    /// Most changes kept at once (made, not yet asked past).
    peak: usize,
}

impl Feed {
    fn push(&mut self, at: OffsetDateTime, kind: ChangeKind) {
        let id = format!("loop-{}", self.dropped + self.kept.len() + 1);
        self.kept.push_back(ErpChange { id, at, kind });
        self.peak = self.peak.max(self.kept.len());
    }

    /// Up to `limit` changes from position `start`, and the position after them; what
    /// lies before `start` is dropped.
    fn read(&mut self, start: usize, limit: usize) -> (Vec<ErpChange>, usize) {
        let start = start.min(self.dropped + self.kept.len()).max(self.dropped);
        self.kept.drain(..start - self.dropped);
        self.dropped = start;
        let changes: Vec<ErpChange> = self.kept.iter().take(limit).cloned().collect();
        let end = start + changes.len();
        (changes, end)
    }
}

/// An ERP that completes every order's lifecycle the moment it is booked.
pub struct LoopbackErp {
    clock: Arc<dyn Clock>,
    state: Mutex<ErpState>,
    /// Calls received, for figures.
    pub calls: AtomicU64,
    /// Bookings created (not counting idempotent repeats).
    pub bookings_created: AtomicU64,
    latency: Duration,
}

impl LoopbackErp {
    /// A loopback ERP on a clock, remembering the newest [`REMEMBERED_BOOKINGS`] bookings.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let state = ErpState {
            bookings: Bookings {
                limit: REMEMBERED_BOOKINGS,
                ..Bookings::default()
            },
            ..ErpState::default()
        };
        Self {
            clock,
            state: Mutex::new(state),
            calls: AtomicU64::new(0),
            bookings_created: AtomicU64::new(0),
            latency: Duration::ZERO,
        }
    }

    /// The same ERP remembering only the newest `bookings` bookings (at least one): an
    /// older order booked again gets a new ERP number, and its look-up and credit memos
    /// find nothing. Its memory then stays flat however many orders a run books.
    pub fn remembering(self, bookings: usize) -> Self {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .bookings
            .limit = bookings;
        self
    }

    /// The same ERP answering each call after `latency` (benchmarks of the hub's own latency).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Most changes its feed held at once: made, not yet read past by the hub.
    pub fn feed_peak(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .changes
            .peak
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ErpState> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Erp for LoopbackErp {
    fn name(&self) -> &str {
        "loopback"
    }

    async fn prices(
        &self,
        _account: &AccountId,
        items: &[PriceRequest],
        _on: time::Date,
    ) -> Result<Vec<PriceQuote>> {
        pause(self.latency).await;
        drop(self.state());
        Ok(items
            .iter()
            .map(|item| PriceQuote {
                sku: item.sku.clone(),
                unit_price: list_price(&item.sku),
                list_price: list_price(&item.sku),
                currency: Currency::USD,
                promotion: None,
            })
            .collect())
    }

    async fn availability(
        &self,
        skus: &[Sku],
        _location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>> {
        pause(self.latency).await;
        drop(self.state());
        let now = self.clock.now();
        Ok(skus
            .iter()
            .map(|sku| InventoryLevel {
                sku: sku.clone(),
                location: LocationId::new(LOCATION),
                on_hand: 1_000_000,
                reserved: 0,
                available: 1_000_000,
                as_of: now,
            })
            .collect())
    }

    async fn credit_check(
        &self,
        _account: &AccountId,
        amount: Decimal,
        _currency: Currency,
    ) -> Result<CreditAnswer> {
        pause(self.latency).await;
        drop(self.state());
        Ok(CreditAnswer {
            approved: true,
            available: Some(amount * Decimal::from(10)),
            reason: None,
        })
    }

    async fn fulfilment_options(
        &self,
        _request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>> {
        pause(self.latency).await;
        drop(self.state());
        Ok(vec![FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![LocationId::new(LOCATION)],
            promised_date: None,
        }])
    }

    async fn book_order(&self, order: &BookingRequest, _key: &str) -> Result<BookingConfirmation> {
        pause(self.latency).await;
        let now = self.clock.now();
        let mut state = self.state();
        if let Some((erp_ref, _)) = state.bookings.get(&order.reference) {
            return Ok(BookingConfirmation {
                erp_ref: erp_ref.clone(),
                created: false,
                allocations: Vec::new(),
                backorders: Vec::new(),
            });
        }
        self.bookings_created.fetch_add(1, Ordering::Relaxed);
        let lines: Vec<(LineNo, u32, Decimal)> = order
            .lines
            .iter()
            .map(|l| (l.line, l.quantity, l.unit_price))
            .collect();
        let erp_ref = state.bookings.insert(&order.reference, lines.clone());
        let reference = order.reference.clone();
        let shipped: Vec<(LineNo, u32)> = lines.iter().map(|(l, q, _)| (*l, *q)).collect();
        let net: Decimal = lines.iter().map(|(_, q, p)| Decimal::from(*q) * p).sum();
        let tax = round_cents(net * Decimal::new(1, 1));
        let shipment = |milestone| ErpShipment {
            id: format!("{erp_ref}-S1"),
            location: Some(LocationId::new(LOCATION)),
            lines: shipped.clone(),
            milestone,
            carrier: Some("LOOP".to_owned()),
            tracking: Some(format!("T{erp_ref}")),
            at: now,
        };
        let kinds = vec![
            ChangeKind::Shipment {
                reference: reference.clone(),
                shipment: shipment(Milestone::Shipped),
            },
            ChangeKind::Shipment {
                reference: reference.clone(),
                shipment: shipment(Milestone::Delivered),
            },
            ChangeKind::InvoiceIssued {
                reference: reference.clone(),
                invoice: ErpInvoice {
                    id: format!("{erp_ref}-I1"),
                    number: format!("INV-{erp_ref}"),
                    lines: shipped.clone(),
                    net,
                    tax,
                    total: net + tax,
                    paid: Decimal::ZERO,
                    issued_at: now,
                },
            },
            ChangeKind::PaymentReceived {
                reference,
                payment: format!("{erp_ref}-P1"),
                invoice: Some(format!("{erp_ref}-I1")),
                amount: net + tax,
            },
        ];
        for kind in kinds {
            state.changes.push(now, kind);
        }
        Ok(BookingConfirmation {
            erp_ref,
            created: true,
            allocations: order
                .lines
                .iter()
                .map(|l| Allocation {
                    line: l.line,
                    location: LocationId::new(LOCATION),
                    quantity: l.quantity,
                })
                .collect(),
            backorders: Vec::new(),
        })
    }

    async fn cancel_order(
        &self,
        _erp_ref: &str,
        _reason: &str,
        _key: &str,
    ) -> Result<CancelOutcome> {
        pause(self.latency).await;
        drop(self.state());
        Ok(CancelOutcome::Cancelled)
    }

    async fn order(&self, erp_ref: &str) -> Result<ErpOrder> {
        pause(self.latency).await;
        let state = self.state();
        let (reference, _) = state
            .bookings
            .iter()
            .find(|(_, (r, _))| r == erp_ref)
            .ok_or_else(|| Failure::permanent(format!("no order {erp_ref}")))?;
        Ok(ErpOrder {
            erp_ref: erp_ref.to_owned(),
            reference: reference.clone(),
            cancelled: false,
            lines: Vec::new(),
            shipments: Vec::new(),
            invoices: Vec::new(),
        })
    }

    async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch> {
        pause(self.latency).await;
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let (changes, end) = self.state().changes.read(start, limit);
        Ok(ChangeBatch {
            changes,
            cursor: end.to_string(),
        })
    }

    async fn upsert_customer(&self, account: &Account, _key: &str) -> Result<CustomerRef> {
        pause(self.latency).await;
        drop(self.state());
        Ok(CustomerRef {
            erp_ref: account.id.to_string(),
            created: false,
        })
    }

    async fn credit_status(&self, account: &AccountId) -> Result<CreditReport> {
        pause(self.latency).await;
        drop(self.state());
        Ok(CreditReport {
            account: account.clone(),
            status: CreditStatus::Good,
            limit: None,
            balance: None,
        })
    }

    async fn create_return(
        &self,
        request: &ReturnRequest,
        _key: &str,
    ) -> Result<ReturnAuthorisation> {
        pause(self.latency).await;
        let now = self.clock.now();
        let mut state = self.state();
        let erp_ref = format!("LRMA-{}", request.rma);
        if !state.returns.contains_key(&erp_ref) {
            let lines: Vec<(LineNo, u32)> =
                request.lines.iter().map(|(l, _, q)| (*l, *q)).collect();
            state.returns.insert(
                erp_ref.clone(),
                (request.rma.clone(), lines.clone(), request.order.clone()),
            );
            state.changes.push(
                now,
                ChangeKind::ReturnReceived {
                    rma: request.rma.clone(),
                    receipt: ReturnReceipt {
                        id: format!("{erp_ref}-R1"),
                        lines,
                    },
                },
            );
        }
        Ok(ReturnAuthorisation { erp_ref })
    }

    async fn receive_return(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        _key: &str,
    ) -> Result<ReturnReceipt> {
        pause(self.latency).await;
        drop(self.state());
        Ok(ReturnReceipt {
            id: format!("{erp_rma}-R1"),
            lines: lines.to_vec(),
        })
    }

    async fn issue_credit_memo(&self, erp_rma: &str, _key: &str) -> Result<CreditMemo> {
        pause(self.latency).await;
        let mut state = self.state();
        let (_, lines, order) = state
            .returns
            .get(erp_rma)
            .cloned()
            .ok_or_else(|| Failure::permanent(format!("no return {erp_rma}")))?;
        let prices = state
            .bookings
            .get(&order)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let net: Decimal = lines
            .iter()
            .map(|(line, qty)| {
                let price = prices
                    .iter()
                    .find(|(l, _, _)| l == line)
                    .map_or(Decimal::ZERO, |(_, _, p)| *p);
                Decimal::from(*qty) * price
            })
            .sum();
        let amount = round_cents(net * Decimal::new(11, 1));
        let id = format!("{erp_rma}-CM");
        state.memos.insert(id.clone(), amount);
        Ok(CreditMemo {
            number: format!("CN-{erp_rma}"),
            id,
            amount,
        })
    }

    async fn issue_refund(&self, credit_memo: &str, _key: &str) -> Result<Refund> {
        pause(self.latency).await;
        let state = self.state();
        let amount = *state
            .memos
            .get(credit_memo)
            .ok_or_else(|| Failure::permanent(format!("no credit memo {credit_memo}")))?;
        Ok(Refund {
            id: format!("{credit_memo}-RF"),
            amount,
        })
    }
}

/// A Salesforce that accepts every write, counting calls and records.
#[derive(Debug, Default)]
pub struct LoopbackSalesforce {
    /// Write calls received.
    pub calls: AtomicU64,
    /// Records written.
    pub records: AtomicU64,
    latency: Duration,
}

impl LoopbackSalesforce {
    /// The same org answering each call after `latency` (benchmarks of the hub's own latency).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    fn count<T>(&self, records: &[T]) -> Vec<Result<()>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        records.iter().map(|_| Ok(())).collect()
    }
}

#[async_trait]
impl Salesforce for LoopbackSalesforce {
    async fn write_orders(&self, orders: &[OrderSummary]) -> Vec<Result<()>> {
        pause(self.latency).await;
        self.count(orders)
    }

    async fn write_returns(&self, returns: &[(OrderSummary, RmaId)]) -> Vec<Result<()>> {
        pause(self.latency).await;
        self.count(returns)
    }

    async fn write_inventory(&self, levels: &[InventoryLevel]) -> Vec<Result<()>> {
        pause(self.latency).await;
        self.count(levels)
    }

    async fn write_credit(&self, reports: &[CreditReport]) -> Vec<Result<()>> {
        pause(self.latency).await;
        self.count(reports)
    }

    async fn read_order(&self, sf_id: &str) -> Result<OrderDraft> {
        pause(self.latency).await;
        Err(Failure::permanent(format!(
            "the loopback Salesforce holds no order {sf_id}"
        )))
    }

    fn usage(&self) -> Option<ApiUsage> {
        None
    }
}

/// Waits `latency` (nothing when zero).
async fn pause(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_past_the_limit_forget_the_oldest_and_numbers_go_on() {
        let mut bookings = Bookings {
            limit: 2,
            ..Bookings::default()
        };
        let order = |n: u32| OrderId::new(format!("ORD-{n}"));
        let refs: Vec<String> = (1..=3)
            .map(|n| bookings.insert(&order(n), vec![(LineNo(1), n, Decimal::ONE)]))
            .collect();
        assert_eq!(refs, ["LB-1", "LB-2", "LB-3"]);
        assert!(bookings.get(&order(1)).is_none(), "the oldest is forgotten");
        assert_eq!(bookings.get(&order(2)).map(|b| b.0.as_str()), Some("LB-2"));
        assert_eq!(bookings.get(&order(3)).map(|b| b.0.as_str()), Some("LB-3"));
        assert_eq!((bookings.by_order.len(), bookings.age.len()), (2, 2));
        // A forgotten order booked again gets a new number, never an old one.
        assert_eq!(bookings.insert(&order(1), Vec::new()), "LB-4");
    }

    #[test]
    fn the_feed_forgets_only_what_lies_before_the_position_asked_for() {
        let mut feed = Feed::default();
        for n in 0..5 {
            feed.push(
                OffsetDateTime::UNIX_EPOCH,
                ChangeKind::OrderCancelled {
                    reference: OrderId::new(format!("ORD-{n}")),
                    reason: "test".to_owned(),
                },
            );
        }
        let ids = |changes: &[ErpChange]| changes.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let (first, end) = feed.read(0, 2);
        assert_eq!(
            (ids(&first), end),
            (vec!["loop-1".into(), "loop-2".into()], 2)
        );
        // Asked again from the same position (a hub that crashed before storing the page).
        let (again, end) = feed.read(2, 10);
        assert_eq!(ids(&again), ["loop-3", "loop-4", "loop-5"]);
        assert_eq!(end, 5);
        assert_eq!(ids(&feed.read(2, 10).0), ["loop-3", "loop-4", "loop-5"]);
        assert_eq!(feed.kept.len(), 3, "the first two are dropped");
        let (none, end) = feed.read(5, 10);
        assert!(none.is_empty());
        assert_eq!((end, feed.kept.len()), (5, 0));
        feed.push(
            OffsetDateTime::UNIX_EPOCH,
            ChangeKind::OrderCancelled {
                reference: OrderId::new("ORD-5"),
                reason: "test".to_owned(),
            },
        );
        assert_eq!(
            ids(&feed.read(5, 10).0),
            ["loop-6"],
            "positions go on counting"
        );
    }
}
