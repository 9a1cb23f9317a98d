//! One test (at least) per default flow of `crossdock_domain::flow::defaults()`: each shows the
//! flow doing its job and absorbing duplicate and out-of-order deliveries.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crossdock_domain::account::{Account, CreditStatus, CustomerTier};
use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{
    AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, PaymentId, RmaId, ShipmentId, Sku,
    System,
};
use crossdock_domain::money::{Currency, round_cents};
use crossdock_domain::order::{
    Command, CreditAnswer, InvoiceFacts, Milestone, OrderDraft, PaymentFacts, ReturnRequest,
    ReturnStatus,
};
use crossdock_domain::summary::OrderSummary;
use crossdock_engine::EngineConfig;
use crossdock_engine::loopback::{LoopbackErp, list_price};
use crossdock_ports::erp::{
    BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
    CustomerRef, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
    ReturnAuthorisation, ReturnReceipt,
};
use crossdock_ports::failure::Result as PortResult;
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::salesforce::ApiUsage;
use crossdock_ports::{Clock, Erp, Failure, Salesforce, SystemClock};
use crossdock_store::{DeadLetterFilter, InboundStatus};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::harness::{Hub, draft, message, test_config};

const WAIT: Duration = Duration::from_secs(30);

// --- downstreams that record what the hub asked of them ------------------------------------

/// The loopback ERP, recording every command-style call with its idempotency key, and able to
/// keep answering "busy" to bookings and to refuse cancellations as already shipped.
struct RecordingErp {
    inner: LoopbackErp,
    hold_bookings: AtomicBool,
    refuse_cancels: AtomicBool,
    calls: Mutex<Vec<(&'static str, String)>>,
}

impl RecordingErp {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: LoopbackErp::new(Arc::new(SystemClock)),
            hold_bookings: AtomicBool::new(false),
            refuse_cancels: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, call: &'static str, key: &str) {
        self.calls.lock().unwrap().push((call, key.to_owned()));
    }

    /// Idempotency keys (or subjects) of every call of a kind, in call order.
    fn keys(&self, call: &str) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == call)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn distinct(&self, call: &str) -> BTreeSet<String> {
        self.keys(call).into_iter().collect()
    }

    fn bookings_created(&self) -> u64 {
        self.inner.bookings_created.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Erp for RecordingErp {
    fn name(&self) -> &str {
        "recording"
    }
    async fn prices(
        &self,
        a: &AccountId,
        i: &[PriceRequest],
        on: time::Date,
    ) -> PortResult<Vec<PriceQuote>> {
        self.record("prices", a.as_str());
        self.inner.prices(a, i, on).await
    }
    async fn availability(
        &self,
        s: &[Sku],
        l: Option<&LocationId>,
    ) -> PortResult<Vec<InventoryLevel>> {
        self.inner.availability(s, l).await
    }
    async fn credit_check(
        &self,
        a: &AccountId,
        amount: Decimal,
        c: Currency,
    ) -> PortResult<CreditAnswer> {
        self.inner.credit_check(a, amount, c).await
    }
    async fn fulfilment_options(&self, r: &FulfilmentRequest) -> PortResult<Vec<FulfilmentOption>> {
        self.inner.fulfilment_options(r).await
    }
    async fn book_order(&self, o: &BookingRequest, k: &str) -> PortResult<BookingConfirmation> {
        self.record("book", k);
        if self.hold_bookings.load(Ordering::SeqCst) {
            return Err(Failure::transient("the ERP is busy"));
        }
        self.inner.book_order(o, k).await
    }
    async fn cancel_order(&self, e: &str, r: &str, k: &str) -> PortResult<CancelOutcome> {
        self.record("cancel", k);
        if self.refuse_cancels.load(Ordering::SeqCst) {
            // What the ERP simulator's adapter answers once the goods have left.
            return Err(Failure::permanent(format!(
                "order {e} cannot be cancelled: already shipped"
            ))
            .with_code("cancel_after_shipment"));
        }
        self.inner.cancel_order(e, r, k).await
    }
    async fn order(&self, e: &str) -> PortResult<ErpOrder> {
        self.inner.order(e).await
    }
    async fn changes(&self, c: Option<&str>, l: usize) -> PortResult<ChangeBatch> {
        self.inner.changes(c, l).await
    }
    async fn upsert_customer(&self, a: &Account, k: &str) -> PortResult<CustomerRef> {
        self.record("upsert_customer", k);
        self.inner.upsert_customer(a, k).await
    }
    async fn credit_status(&self, a: &AccountId) -> PortResult<CreditReport> {
        self.inner.credit_status(a).await
    }
    async fn create_return(
        &self,
        r: &crossdock_ports::erp::ReturnRequest,
        k: &str,
    ) -> PortResult<ReturnAuthorisation> {
        self.record("create_return", k);
        self.inner.create_return(r, k).await
    }
    async fn receive_return(
        &self,
        e: &str,
        l: &[(LineNo, u32)],
        k: &str,
    ) -> PortResult<ReturnReceipt> {
        self.inner.receive_return(e, l, k).await
    }
    async fn issue_credit_memo(&self, e: &str, k: &str) -> PortResult<CreditMemo> {
        self.record("credit_memo", k);
        self.inner.issue_credit_memo(e, k).await
    }
    async fn issue_refund(&self, c: &str, k: &str) -> PortResult<Refund> {
        self.record("refund", k);
        self.inner.issue_refund(c, k).await
    }
}

/// A Salesforce that keeps every record written, and can be switched off.
#[derive(Default)]
struct RecordingSalesforce {
    down: AtomicBool,
    orders: Mutex<Vec<OrderSummary>>,
    returns: Mutex<Vec<(OrderSummary, RmaId)>>,
    inventory: Mutex<Vec<InventoryLevel>>,
    credit: Mutex<Vec<CreditReport>>,
}

impl RecordingSalesforce {
    fn keep<T: Clone>(&self, into: &Mutex<Vec<T>>, records: &[T]) -> Vec<PortResult<()>> {
        if self.down.load(Ordering::SeqCst) {
            return records
                .iter()
                .map(|_| Err(Failure::transient("Salesforce is unavailable")))
                .collect();
        }
        into.lock().unwrap().extend(records.iter().cloned());
        records.iter().map(|_| Ok(())).collect()
    }

    fn order_writes(&self, order: &str) -> Vec<OrderSummary> {
        self.orders
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.id.as_str() == order)
            .cloned()
            .collect()
    }

    fn inventory_writes(&self, sku: &str) -> Vec<InventoryLevel> {
        self.inventory
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.sku.as_str() == sku)
            .cloned()
            .collect()
    }

    fn credit_writes(&self, account: &str) -> Vec<CreditReport> {
        self.credit
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.account.as_str() == account)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Salesforce for RecordingSalesforce {
    async fn write_orders(&self, orders: &[OrderSummary]) -> Vec<PortResult<()>> {
        self.keep(&self.orders, orders)
    }
    async fn write_returns(&self, returns: &[(OrderSummary, RmaId)]) -> Vec<PortResult<()>> {
        self.keep(&self.returns, returns)
    }
    async fn write_inventory(&self, levels: &[InventoryLevel]) -> Vec<PortResult<()>> {
        self.keep(&self.inventory, levels)
    }
    async fn write_credit(&self, reports: &[CreditReport]) -> Vec<PortResult<()>> {
        self.keep(&self.credit, reports)
    }
    async fn read_order(&self, sf_id: &str) -> PortResult<OrderDraft> {
        Err(Failure::permanent(format!("no order {sf_id}")))
    }
    fn usage(&self) -> Option<ApiUsage> {
        None
    }
}

// --- set-up and observation helpers -------------------------------------------------------

/// A hub on recording downstreams. Without `polling`, the loopback ERP's own change feed is
/// not read: the test reports the ERP's changes itself, in the order it chooses.
async fn start(
    name: &str,
    polling: bool,
    tune: impl FnOnce(&mut EngineConfig),
) -> (Hub, Arc<RecordingErp>, Arc<RecordingSalesforce>) {
    let erp = RecordingErp::new();
    let sf = Arc::new(RecordingSalesforce::default());
    let mut config = test_config();
    config.erp_polling = polling;
    tune(&mut config);
    let hub = Hub::start(name, erp.clone(), sf.clone(), config).await;
    (hub, erp, sf)
}

fn now() -> OffsetDateTime {
    SystemClock.now()
}

fn from_erp(id: &str, order: &str, command: Command) -> InboundMessage {
    message(System::Erp, id, order, command)
}

fn from_salesforce(id: &str, order: &str, command: Command) -> InboundMessage {
    message(System::Salesforce, id, order, command)
}

fn other(source: System, id: &str, body: Inbound) -> InboundMessage {
    InboundMessage {
        source,
        message_id: id.to_owned(),
        received_at: now(),
        raw: serde_json::to_string(&body).expect("json"),
        body,
    }
}

fn ship(shipment: &str, lines: &[(u32, u32)], milestone: Milestone, at: OffsetDateTime) -> Command {
    Command::RecordShipment {
        shipment: ShipmentId::new(shipment),
        location: Some(LocationId::new("WH-LOOP")),
        lines: lines.iter().map(|(l, q)| (LineNo(*l), *q)).collect(),
        milestone,
        carrier: Some("UPS".to_owned()),
        tracking: Some(format!("1Z-{shipment}")),
        at,
    }
}

/// Waits until the order's summary row satisfies `check`.
async fn until_order(
    hub: &Hub,
    order: &str,
    what: &str,
    check: fn(&crossdock_store::OrderRow) -> bool,
) {
    let store = hub.store.clone();
    let order = order.to_owned();
    hub.wait_for(WAIT, &format!("{order}: {what}"), move || {
        let store = store.clone();
        let order = order.clone();
        async move {
            store
                .order(&order)
                .await
                .unwrap()
                .is_some_and(|row| check(&row))
        }
    })
    .await;
}

/// Waits until the order has `status` in the hub and Salesforce was told so.
async fn until_synced(hub: &Hub, order: &str, status: &'static str) {
    let store = hub.store.clone();
    let order = order.to_owned();
    hub.wait_for(
        WAIT,
        &format!("{order} {status} in the hub and in Salesforce"),
        move || {
            let store = store.clone();
            let order = order.clone();
            async move {
                store.order(&order).await.unwrap().is_some_and(|row| {
                    row.status == status && row.sf_synced_status.as_deref() == Some(status)
                })
            }
        },
    )
    .await;
}

/// Waits until no task is pending or leased on any lane.
async fn until_quiet(hub: &Hub) {
    let store = hub.store.clone();
    hub.wait_for(WAIT, "every lane idle", move || {
        let store = store.clone();
        async move {
            store
                .lane_depths(now())
                .await
                .unwrap()
                .iter()
                .all(|d| d.pending == 0 && d.leased == 0)
        }
    })
    .await;
}

async fn summary(hub: &Hub, order: &str) -> OrderSummary {
    let row = hub.store.order(order).await.unwrap().expect("order row");
    row.body.parse().expect("summary")
}

/// How many events of `kind` the order's stream holds.
async fn events(hub: &Hub, order: &str, kind: &str) -> usize {
    hub.store
        .read_stream(&format!("order:{order}"))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

async fn dead_letters(hub: &Hub) -> Vec<crossdock_store::DeadLetter> {
    hub.store
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap()
}

async fn inbound_ids(hub: &Hub, status: InboundStatus) -> Vec<String> {
    hub.store
        .inbound_by_status(status, 0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message_id)
        .collect()
}

fn line_totals(summary: &OrderSummary) -> Vec<(u32, u32, u32)> {
    summary
        .lines
        .iter()
        .map(|l| {
            (
                l.quantities.ordered,
                l.quantities.shipped,
                l.quantities.delivered,
            )
        })
        .collect()
}

// --- order capture ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_delivered_twice_while_the_erp_is_busy_is_booked_once_with_its_number_in_salesforce()
 {
    let (hub, erp, sf) = start("flow-capture", false, |_| {}).await;
    erp.hold_bookings.store(true, Ordering::SeqCst);
    let d = draft("CAP-1", "ACC-CAP", &[("SKU-1", 2), ("SKU-2", 1)]);
    // Change Data Capture delivers the activation, replays it, and a retry resends the first.
    hub.submit(from_salesforce(
        "cdc-1",
        "CAP-1",
        Command::CaptureOrder(d.clone()),
    ))
    .await;
    hub.submit(from_salesforce(
        "cdc-2",
        "CAP-1",
        Command::CaptureOrder(d.clone()),
    ))
    .await;
    hub.submit(from_salesforce("cdc-1", "CAP-1", Command::CaptureOrder(d)))
        .await;

    let erp_probe = erp.clone();
    hub.wait_for(WAIT, "booking attempts against the busy ERP", move || {
        let erp = erp_probe.clone();
        async move { erp.keys("book").len() >= 2 }
    })
    .await;
    assert_eq!(
        hub.status("CAP-1").await.as_deref(),
        Some("Validated"),
        "accepted and awaiting booking while the ERP is busy"
    );
    erp.hold_bookings.store(false, Ordering::SeqCst);

    until_synced(&hub, "CAP-1", "Allocated").await;
    until_quiet(&hub).await;
    assert_eq!(erp.bookings_created(), 1, "booked exactly once");
    assert_eq!(
        erp.distinct("book"),
        BTreeSet::from(["CAP-1/book".to_owned()]),
        "every booking attempt carries the same idempotency key"
    );
    assert_eq!(events(&hub, "CAP-1", "OrderCaptured").await, 1);
    assert_eq!(events(&hub, "CAP-1", "OrderValidated").await, 1);
    assert_eq!(events(&hub, "CAP-1", "OrderBooked").await, 1);
    let processed = inbound_ids(&hub, InboundStatus::Processed).await;
    assert_eq!(
        processed.iter().filter(|id| id.starts_with("cdc-")).count(),
        2,
        "the resent message is dropped at the inbox: {processed:?}"
    );
    let row = hub.store.order("CAP-1").await.unwrap().unwrap();
    let erp_ref = row.erp_ref.clone().expect("ERP order number");
    assert!(erp_ref.starts_with("LB-"), "{erp_ref}");
    let last = sf.order_writes("CAP-1").pop().expect("a Salesforce write");
    assert_eq!(last.refs.erp_ref.as_deref(), Some(erp_ref.as_str()));
    assert_eq!(last.status.name(), "Allocated");
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- inventory visibility ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_repeated_and_stale_stock_changes_reaches_salesforce_as_the_latest_level() {
    let (hub, _, sf) = start("flow-inventory", false, |c| {
        c.inventory_coalesce = Duration::from_secs(1);
    })
    .await;
    let base = now() - time::Duration::minutes(10);
    let level = |sku: &str, available: i64, minutes: i64| InventoryLevel {
        sku: Sku::new(sku),
        location: LocationId::new("WH-1"),
        on_hand: available + 5,
        reserved: 5,
        available,
        as_of: base + time::Duration::minutes(minutes),
    };
    let stock =
        |id: &str, level: InventoryLevel| other(System::Erp, id, Inbound::Inventory { level });
    for n in 0..10 {
        hub.submit(stock(&format!("stock-{n}"), level("SKU-A", 100 - n, n)))
            .await;
    }
    // The last change again, then an old one redelivered under a new id after the newer ones.
    hub.submit(stock("stock-9", level("SKU-A", 91, 9))).await;
    hub.submit(stock("stock-4-again", level("SKU-A", 96, 4)))
        .await;
    hub.submit(stock("stock-b", level("SKU-B", 7, 1))).await;
    // Salesforce does not own inventory: its "update" is refused.
    hub.submit(other(
        System::Salesforce,
        "sf-forged",
        Inbound::Inventory {
            level: level("SKU-A", 0, 20),
        },
    ))
    .await;

    let probe = sf.clone();
    hub.wait_for(WAIT, "SKU-A and SKU-B written to Salesforce", move || {
        let sf = probe.clone();
        async move {
            !sf.inventory_writes("SKU-A").is_empty() && !sf.inventory_writes("SKU-B").is_empty()
        }
    })
    .await;
    until_quiet(&hub).await;

    let writes = sf.inventory_writes("SKU-A");
    let levels: Vec<i64> = writes.iter().map(|l| l.available).collect();
    assert!(
        !levels.is_empty() && levels.len() <= 2,
        "12 changes coalesce into one or two writes: {levels:?}"
    );
    // The write waiting out the coalescing window must not hold back the stock changes of its
    // SKU: the whole burst lands in the first write.
    assert!(
        levels.iter().all(|a| *a == 91),
        "only the latest level is ever written: {levels:?}"
    );
    let cached = hub.store.inventory(&["SKU-A".to_owned()]).await.unwrap();
    assert_eq!(cached.len(), 1);
    assert_eq!(
        cached[0].available, 91,
        "neither the stale nor the forged change won"
    );
    assert_eq!(sf.inventory_writes("SKU-B").len(), 1);
    assert_eq!(
        inbound_ids(&hub, InboundStatus::Refused).await,
        vec!["sf-forged".to_owned()]
    );
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- pricing ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_whose_price_no_longer_matches_the_erp_is_rejected_once_with_the_reason() {
    let (hub, erp, sf) = start("flow-pricing", false, |_| {}).await;
    let mut stale = draft("PRC-1", "ACC-PRC1", &[("SKU-1", 2), ("SKU-2", 1)]);
    let erp_price = list_price(&Sku::new("SKU-1"));
    let quoted = erp_price + Decimal::new(150, 2);
    stale.lines[0].unit_price = quoted;
    // Within the one-cent tolerance: accepted.
    let mut close = draft("PRC-2", "ACC-PRC2", &[("SKU-1", 1)]);
    close.lines[0].unit_price = erp_price + Decimal::new(1, 2);
    hub.submit(from_salesforce(
        "prc-1",
        "PRC-1",
        Command::CaptureOrder(stale.clone()),
    ))
    .await;
    hub.submit(from_salesforce(
        "prc-1-replayed",
        "PRC-1",
        Command::CaptureOrder(stale),
    ))
    .await;
    hub.submit(from_salesforce(
        "prc-2",
        "PRC-2",
        Command::CaptureOrder(close),
    ))
    .await;

    until_synced(&hub, "PRC-1", "Rejected").await;
    until_synced(&hub, "PRC-2", "Allocated").await;
    until_quiet(&hub).await;

    let rejected = summary(&hub, "PRC-1").await;
    let expected = format!("agreed price {quoted} differs from the ERP price {erp_price}");
    let reason = rejected.reason.clone().unwrap_or_default();
    assert!(reason.contains(&expected), "{reason}");
    assert!(
        !reason.contains("SKU-2"),
        "only the mismatched line is reported: {reason}"
    );
    assert_eq!(events(&hub, "PRC-1", "OrderCaptured").await, 1);
    assert_eq!(events(&hub, "PRC-1", "OrderRejected").await, 1);
    assert_eq!(events(&hub, "PRC-1", "OrderBooked").await, 0);
    assert_eq!(
        erp.distinct("book"),
        BTreeSet::from(["PRC-2/book".to_owned()]),
        "the mismatched quote is never booked"
    );
    let told = sf.order_writes("PRC-1").pop().expect("Salesforce told");
    assert_eq!(told.status.name(), "Rejected");
    assert!(told.reason.unwrap_or_default().contains(&expected));
    assert!(
        dead_letters(&hub).await.is_empty(),
        "a rejection is an answer, not a failure"
    );
    hub.stop().await;
}

// --- fulfilment -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipments_reported_early_twice_and_out_of_order_reach_salesforce_once_per_batch() {
    let (hub, erp, sf) = start("flow-fulfilment", false, |c| {
        c.sf_sync_delay = Duration::from_millis(600);
    })
    .await;
    let t = now();
    // The warehouse reports a shipment before the hub has even captured the order.
    hub.submit(from_erp(
        "s1-shipped",
        "FUL-1",
        ship("S1", &[(1, 2)], Milestone::Shipped, t),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        hub.status("FUL-1").await,
        None,
        "nothing to apply it to yet"
    );
    hub.submit(from_salesforce(
        "ful-capture",
        "FUL-1",
        Command::CaptureOrder(draft("FUL-1", "ACC-FUL", &[("SKU-1", 2), ("SKU-2", 1)])),
    ))
    .await;
    until_order(&hub, "FUL-1", "booked, with the early shipment", |row| {
        row.booked_at.is_some()
            && row.status == "PartiallyShipped"
            && row.sf_synced_status.as_deref() == Some("PartiallyShipped")
    })
    .await;
    until_quiet(&hub).await;
    let before = sf.order_writes("FUL-1").len();

    // One batch: the second shipment delivered before it shipped, the first delivered, the
    // first's "shipped" redelivered under a new change id, and a resent message.
    let batch = [
        (
            "s2-delivered",
            ship(
                "S2",
                &[(2, 1)],
                Milestone::Delivered,
                t + time::Duration::hours(30),
            ),
        ),
        (
            "s1-delivered",
            ship(
                "S1",
                &[(1, 2)],
                Milestone::Delivered,
                t + time::Duration::hours(26),
            ),
        ),
        (
            "s2-shipped",
            ship(
                "S2",
                &[(2, 1)],
                Milestone::Shipped,
                t + time::Duration::hours(2),
            ),
        ),
        (
            "s1-shipped-again",
            ship("S1", &[(1, 2)], Milestone::Shipped, t),
        ),
        (
            "s2-delivered",
            ship(
                "S2",
                &[(2, 1)],
                Milestone::Delivered,
                t + time::Duration::hours(30),
            ),
        ),
    ];
    for (id, command) in batch {
        hub.submit(from_erp(id, "FUL-1", command)).await;
    }
    until_synced(&hub, "FUL-1", "Delivered").await;
    until_quiet(&hub).await;

    let written = sf.order_writes("FUL-1");
    assert_eq!(
        written.len() - before,
        1,
        "one Salesforce write for the batch: {:?}",
        written.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    let last = written.last().unwrap();
    assert_eq!(line_totals(last), vec![(2, 2, 2), (1, 1, 1)]);
    assert!(
        last.shipments
            .iter()
            .all(|s| s.milestone == Some(Milestone::Delivered)),
        "a late \"shipped\" does not move a delivered shipment back: {:?}",
        last.shipments
    );
    assert_eq!(last.fulfilment_status(), "Delivered");
    let stored = summary(&hub, "FUL-1").await;
    assert_eq!(line_totals(&stored), vec![(2, 2, 2), (1, 1, 1)]);
    // S1 shipped, S2 delivered, S1 delivered, S2 shipped: the repeats added nothing.
    assert_eq!(events(&hub, "FUL-1", "ShipmentProgressed").await, 4);
    let row = hub.store.order("FUL-1").await.unwrap().unwrap();
    let delivered_at = row.delivered_at.expect("delivered at");
    assert!(
        (delivered_at - (t + time::Duration::hours(30))).abs() < time::Duration::seconds(1),
        "delivered when the last unit was: {delivered_at}"
    );
    assert_eq!(erp.bookings_created(), 1);
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- invoicing and payment --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_and_payments_reported_twice_or_early_count_once_and_the_order_closes() {
    let (hub, _, sf) = start("flow-invoicing", false, |_| {}).await;
    let d = draft("INV-1", "ACC-INV", &[("SKU-1", 2), ("SKU-2", 1)]);
    let net: Decimal = d
        .lines
        .iter()
        .map(|l| Decimal::from(l.quantity) * l.unit_price)
        .sum();
    let tax = round_cents(net * Decimal::new(1, 1));
    let total = net + tax;
    let first = round_cents(total / Decimal::from(2));
    let rest = total - first;
    hub.submit(from_salesforce(
        "inv-capture",
        "INV-1",
        Command::CaptureOrder(d),
    ))
    .await;
    until_synced(&hub, "INV-1", "Allocated").await;

    let t = now();
    let invoice = Command::RecordInvoice {
        invoice: InvoiceId::new("I1"),
        facts: InvoiceFacts {
            number: "INV-0001".to_owned(),
            lines: [(LineNo(1), 2), (LineNo(2), 1)].into(),
            net,
            tax,
            total,
            issued_at: t,
        },
    };
    let payment = |id: &str, amount| Command::RecordPayment {
        payment: PaymentId::new(id),
        facts: PaymentFacts {
            invoice: Some(InvoiceId::new("I1")),
            amount,
            received_at: t,
        },
    };
    // The first payment overtakes the delivery and the invoice; everything else comes twice.
    let messages = [
        ("p1", payment("P1", first)),
        (
            "delivered",
            ship("S1", &[(1, 2), (2, 1)], Milestone::Delivered, t),
        ),
        ("i1", invoice.clone()),
        ("i1-replayed", invoice),
        ("p1", payment("P1", first)),
        ("p2", payment("P2", rest)),
        ("p2-replayed", payment("P2", rest)),
    ];
    for (id, command) in messages {
        hub.submit(from_erp(id, "INV-1", command)).await;
    }
    until_synced(&hub, "INV-1", "Closed").await;
    until_quiet(&hub).await;

    let stored = summary(&hub, "INV-1").await;
    assert_eq!(stored.invoiced, total, "the invoice counted once");
    assert_eq!(stored.paid, total, "each payment counted once");
    assert_eq!(stored.invoices.len(), 1);
    assert_eq!(events(&hub, "INV-1", "InvoiceIssued").await, 1);
    assert_eq!(events(&hub, "INV-1", "PaymentReceived").await, 2);
    assert_eq!(events(&hub, "INV-1", "OrderClosed").await, 1);
    let row = hub.store.order("INV-1").await.unwrap().unwrap();
    assert!(row.invoiced_at.is_some() && row.paid_at.is_some() && row.ended_at.is_some());
    let last = sf.order_writes("INV-1").pop().unwrap();
    assert_eq!((last.invoiced, last.paid), (total, total));
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- returns ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_requested_twice_gets_one_rma_one_credit_memo_and_one_refund() {
    // The loopback ERP ships, invoices, gets paid and receives returned goods by itself.
    let (hub, erp, sf) = start("flow-returns", true, |_| {}).await;
    hub.submit(from_salesforce(
        "ret-capture",
        "RET-1",
        Command::CaptureOrder(draft("RET-1", "ACC-RET", &[("SKU-1", 2), ("SKU-2", 1)])),
    ))
    .await;
    until_synced(&hub, "RET-1", "Closed").await;

    let request = Command::RequestReturn {
        rma: RmaId::new("RMA-1"),
        request: ReturnRequest {
            case: ExternalRefs {
                sf_id: Some("500RET1".to_owned()),
                sf_number: Some("00001001".to_owned()),
                erp_ref: None,
            },
            lines: [(LineNo(1), 1)].into(),
            reason: "arrived damaged".to_owned(),
            at: now(),
        },
    };
    hub.submit(from_salesforce("case-1", "RET-1", request.clone()))
        .await;
    hub.submit(from_salesforce("case-1", "RET-1", request.clone()))
        .await;
    hub.submit(from_salesforce("case-1-replayed", "RET-1", request))
        .await;

    let store = hub.store.clone();
    hub.wait_for(WAIT, "the return closed", move || {
        let store = store.clone();
        async move {
            let Some(row) = store.order("RET-1").await.unwrap() else {
                return false;
            };
            let summary: OrderSummary = row.body.parse().unwrap();
            summary
                .returns
                .iter()
                .any(|r| r.status == ReturnStatus::Closed)
        }
    })
    .await;
    until_quiet(&hub).await;

    for (call, key) in [
        ("create_return", "RET-1/rma/RMA-1/authorise"),
        ("credit_memo", "RET-1/rma/RMA-1/credit-memo"),
        ("refund", "RET-1/rma/RMA-1/refund/LRMA-RMA-1-CM"),
    ] {
        assert_eq!(
            erp.distinct(call),
            BTreeSet::from([key.to_owned()]),
            "one {call} asked of the ERP"
        );
    }
    let stored = summary(&hub, "RET-1").await;
    assert_eq!(stored.returns.len(), 1);
    let ret = &stored.returns[0];
    let credit = round_cents(list_price(&Sku::new("SKU-1")) * Decimal::new(11, 1));
    assert_eq!(ret.erp_ref.as_deref(), Some("LRMA-RMA-1"));
    assert_eq!(ret.credit_memos.len(), 1);
    assert_eq!((ret.credited, ret.refunded), (credit, credit));
    assert_eq!((stored.credited, stored.refunded), (credit, credit));
    assert_eq!(stored.lines[0].quantities.returned, 1);
    for kind in [
        "ReturnRequested",
        "ReturnAuthorised",
        "ReturnReceived",
        "CreditMemoIssued",
        "RefundIssued",
        "ReturnClosed",
    ] {
        assert_eq!(events(&hub, "RET-1", kind).await, 1, "{kind}");
    }
    let case = sf
        .returns
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(_, rma)| rma.as_str() == "RMA-1")
        .map(|(s, _)| s.returns[0].status)
        .expect("the case was updated");
    assert_eq!(case, ReturnStatus::Closed);
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- customer accounts ------------------------------------------------------------------

fn account(id: &str, name: &str, credit: Option<CreditStatus>) -> Account {
    Account {
        id: AccountId::new(id),
        refs: ExternalRefs {
            sf_id: Some(format!("001{id}")),
            sf_number: None,
            erp_ref: None,
        },
        name: name.to_owned(),
        tier: CustomerTier::Gold,
        region: Some("EU".to_owned()),
        billing: None,
        shipping: None,
        currency: Currency::USD,
        credit_limit: None,
        open_balance: None,
        credit_status: credit,
    }
}

fn credit(account: &str, status: CreditStatus) -> Inbound {
    Inbound::Credit {
        report: CreditReport {
            account: AccountId::new(account),
            status,
            limit: Some(Decimal::from(50_000)),
            balance: Some(Decimal::from(61_000)),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_change_delivered_twice_reaches_the_erp_and_credit_standing_flows_back() {
    let (hub, erp, sf) = start("flow-accounts", false, |_| {}).await;
    let changed = Inbound::Account {
        account: account("ACC-CUST", "Northwind Retail", None),
    };
    hub.submit(other(System::Salesforce, "acct-1", changed.clone()))
        .await;
    hub.submit(other(System::Salesforce, "acct-1", changed.clone()))
        .await;
    hub.submit(other(System::Salesforce, "acct-1-replayed", changed))
        .await;
    until_quiet(&hub).await;
    let row = hub
        .store
        .account("ACC-CUST")
        .await
        .unwrap()
        .expect("account row");
    assert_eq!(row.name, "Northwind Retail");
    assert_eq!(
        row.erp_ref.as_deref(),
        Some("ACC-CUST"),
        "linked to the ERP customer"
    );
    let upserts = erp.keys("upsert_customer");
    assert!(
        !upserts.is_empty() && upserts.len() <= 2,
        "the resent message is not sent again: {upserts:?}"
    );

    // The ERP puts the customer on hold (reported twice); Salesforce tries to say otherwise.
    hub.submit(other(
        System::Erp,
        "credit-1",
        credit("ACC-CUST", CreditStatus::OnHold),
    ))
    .await;
    hub.submit(other(
        System::Erp,
        "credit-1",
        credit("ACC-CUST", CreditStatus::OnHold),
    ))
    .await;
    hub.submit(other(
        System::Salesforce,
        "sf-credit",
        credit("ACC-CUST", CreditStatus::Good),
    ))
    .await;
    hub.submit(other(
        System::Salesforce,
        "acct-2",
        Inbound::Account {
            account: account("ACC-CUST", "Northwind Retail Ltd", Some(CreditStatus::Good)),
        },
    ))
    .await;
    // The ERP does not own accounts: its rename is refused, never written through.
    hub.submit(other(
        System::Erp,
        "erp-acct",
        Inbound::Account {
            account: account("ACC-CUST", "Renamed By The ERP", None),
        },
    ))
    .await;
    let probe = sf.clone();
    hub.wait_for(WAIT, "the credit standing in Salesforce", move || {
        let sf = probe.clone();
        async move { !sf.credit_writes("ACC-CUST").is_empty() }
    })
    .await;
    until_quiet(&hub).await;

    let written: Vec<CreditStatus> = sf
        .credit_writes("ACC-CUST")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(written, vec![CreditStatus::OnHold]);
    let row = hub.store.account("ACC-CUST").await.unwrap().unwrap();
    assert_eq!(row.name, "Northwind Retail Ltd", "Salesforce owns the name");
    assert_eq!(
        row.body["credit_status"], "on_hold",
        "the ERP owns the credit status: {}",
        row.body
    );
    let mut refused = inbound_ids(&hub, InboundStatus::Refused).await;
    refused.sort();
    assert_eq!(refused, vec!["erp-acct".to_owned(), "sf-credit".to_owned()]);
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_changes_queued_while_salesforce_is_down_reach_it_as_the_latest_standing() {
    let (hub, _, sf) = start("flow-credit-burst", false, |_| {}).await;
    sf.down.store(true, Ordering::SeqCst);
    hub.submit(other(
        System::Erp,
        "credit-a",
        credit("ACC-BURST", CreditStatus::Good),
    ))
    .await;
    hub.submit(other(
        System::Erp,
        "credit-b",
        credit("ACC-BURST", CreditStatus::OverLimit),
    ))
    .await;
    let store = hub.store.clone();
    hub.wait_for(WAIT, "both credit changes recorded", move || {
        let store = store.clone();
        async move {
            store
                .account("ACC-BURST")
                .await
                .unwrap()
                .is_some_and(|row| row.body["credit_status"] == "over_limit")
        }
    })
    .await;
    sf.down.store(false, Ordering::SeqCst);
    let probe = sf.clone();
    hub.wait_for(WAIT, "a credit write to Salesforce", move || {
        let sf = probe.clone();
        async move { !sf.credit_writes("ACC-BURST").is_empty() }
    })
    .await;
    until_quiet(&hub).await;
    let written: Vec<CreditStatus> = sf
        .credit_writes("ACC-BURST")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        written.last(),
        Some(&CreditStatus::OverLimit),
        "Salesforce ends with the ERP's latest standing: {written:?}"
    );
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

// --- cancellation -----------------------------------------------------------------------

fn cancel(at: OffsetDateTime) -> Command {
    Command::CancelOrder {
        by: System::Salesforce,
        reason: "customer changed their mind".to_owned(),
        at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_delivered_twice_cancels_once_and_a_cancel_after_shipment_is_refused_visibly() {
    let (hub, erp, sf) = start("flow-cancel", false, |_| {}).await;
    for (order, account) in [("CAN-1", "ACC-CAN1"), ("CAN-2", "ACC-CAN2")] {
        hub.submit(from_salesforce(
            &format!("{order}-capture"),
            order,
            Command::CaptureOrder(draft(order, account, &[("SKU-1", 2), ("SKU-2", 1)])),
        ))
        .await;
    }
    until_synced(&hub, "CAN-1", "Allocated").await;
    until_synced(&hub, "CAN-2", "Allocated").await;
    hub.submit(from_erp(
        "can2-shipped",
        "CAN-2",
        ship("S1", &[(1, 1)], Milestone::Shipped, now()),
    ))
    .await;
    until_synced(&hub, "CAN-2", "PartiallyShipped").await;

    let t = now();
    hub.submit(from_salesforce("cancel-1", "CAN-1", cancel(t)))
        .await;
    hub.submit(from_salesforce("cancel-1", "CAN-1", cancel(t)))
        .await;
    hub.submit(from_salesforce(
        "cancel-1-replayed",
        "CAN-1",
        cancel(t + time::Duration::seconds(5)),
    ))
    .await;
    hub.submit(from_salesforce("cancel-2", "CAN-2", cancel(t)))
        .await;

    until_synced(&hub, "CAN-1", "Cancelled").await;
    hub.wait_for_timeline(WAIT, "CAN-2", "refusal").await;
    until_quiet(&hub).await;

    assert_eq!(events(&hub, "CAN-1", "OrderCancelled").await, 1);
    assert_eq!(
        erp.distinct("cancel"),
        BTreeSet::from(["CAN-1/erp-cancel".to_owned()]),
        "CAN-1 cancelled in the ERP once, CAN-2 never"
    );
    let told = sf.order_writes("CAN-1").pop().unwrap();
    assert_eq!(told.status.name(), "Cancelled");
    assert_eq!(told.reason.as_deref(), Some("customer changed their mind"));

    assert_eq!(events(&hub, "CAN-2", "OrderCancelled").await, 0);
    assert_eq!(
        hub.status("CAN-2").await.as_deref(),
        Some("PartiallyShipped")
    );
    assert_ne!(
        sf.order_writes("CAN-2").pop().unwrap().status.name(),
        "Cancelled",
        "the refused cancel is not written through"
    );
    let refusal = hub
        .store
        .timeline("CAN-2")
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entry.kind == "refusal")
        .unwrap();
    assert!(
        refusal.entry.summary.contains("already shipped"),
        "{}",
        refusal.entry.summary
    );
    assert!(
        inbound_ids(&hub, InboundStatus::Refused)
            .await
            .contains(&"cancel-2".to_owned())
    );
    let letters = dead_letters(&hub).await;
    assert_eq!(
        letters.len(),
        1,
        "the refused cancel waits for an operator: {letters:?}"
    );
    assert_eq!(letters[0].task.order_id.as_deref(), Some("CAN-2"));
    assert_eq!(letters[0].class, "permanent");
    assert!(
        letters[0].error.contains("already shipped"),
        "{}",
        letters[0].error
    );
    // The refused cancel does not hold the order: the rest of its fulfilment still flows.
    for (id, command) in [
        (
            "can2-s1-delivered",
            ship("S1", &[(1, 1)], Milestone::Delivered, now()),
        ),
        (
            "can2-s2-delivered",
            ship("S2", &[(1, 1), (2, 1)], Milestone::Delivered, now()),
        ),
    ] {
        hub.submit(from_erp(id, "CAN-2", command)).await;
    }
    until_synced(&hub, "CAN-2", "Delivered").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_the_erp_refuses_as_already_shipped_is_recorded_and_the_order_still_closes() {
    let (hub, erp, sf) = start("flow-cancel-refused", false, |_| {}).await;
    erp.refuse_cancels.store(true, Ordering::SeqCst);
    hub.submit(from_salesforce(
        "can4-capture",
        "CAN-4",
        Command::CaptureOrder(draft("CAN-4", "ACC-CAN4", &[("SKU-1", 2)])),
    ))
    .await;
    until_synced(&hub, "CAN-4", "Allocated").await;
    // The ERP shipped meanwhile, but the hub has not heard of it yet when the cancel comes.
    hub.submit(from_salesforce("cancel-4", "CAN-4", cancel(now())))
        .await;
    hub.wait_for_timeline(WAIT, "CAN-4", "refusal").await;
    assert!(
        dead_letters(&hub).await.is_empty(),
        "the refusal is an answer, not a failure"
    );

    let total = summary(&hub, "CAN-4").await.total;
    let t = now();
    for (id, command) in [
        (
            "can4-delivered",
            ship("S1", &[(1, 2)], Milestone::Delivered, t),
        ),
        (
            "can4-invoiced",
            Command::RecordInvoice {
                invoice: InvoiceId::new("I4"),
                facts: InvoiceFacts {
                    number: "INV-0004".to_owned(),
                    lines: [(LineNo(1), 2)].into(),
                    net: total,
                    tax: Decimal::ZERO,
                    total,
                    issued_at: t,
                },
            },
        ),
        (
            "can4-paid",
            Command::RecordPayment {
                payment: PaymentId::new("P4"),
                facts: PaymentFacts {
                    invoice: Some(InvoiceId::new("I4")),
                    amount: total,
                    received_at: t,
                },
            },
        ),
    ] {
        hub.submit(from_erp(id, "CAN-4", command)).await;
    }
    until_synced(&hub, "CAN-4", "Closed").await;
    until_quiet(&hub).await;

    assert_eq!(events(&hub, "CAN-4", "OrderCancelled").await, 1);
    assert_eq!(events(&hub, "CAN-4", "OrderClosed").await, 1);
    assert_eq!(
        erp.distinct("cancel"),
        BTreeSet::from(["CAN-4/erp-cancel".to_owned()]),
        "asked once, and not again once refused"
    );
    let refusal = hub
        .store
        .timeline("CAN-4")
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entry.kind == "refusal")
        .unwrap();
    assert!(
        refusal.entry.summary.contains("refused the cancellation"),
        "{}",
        refusal.entry.summary
    );
    let told = sf.order_writes("CAN-4").pop().unwrap();
    assert_eq!(told.status.name(), "Closed");
    assert_eq!(
        told.reason.as_deref(),
        Some("Cancellation refused, the order had already shipped: customer changed their mind"),
        "Salesforce reads that the cancellation was refused, not that it is pending"
    );
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_overtakes_the_booking_stops_it() {
    let (hub, erp, _) = start("flow-cancel-early", false, |_| {}).await;
    erp.hold_bookings.store(true, Ordering::SeqCst);
    hub.submit(from_salesforce(
        "can3-capture",
        "CAN-3",
        Command::CaptureOrder(draft("CAN-3", "ACC-CAN3", &[("SKU-1", 1)])),
    ))
    .await;
    let probe = erp.clone();
    hub.wait_for(WAIT, "a booking attempt", move || {
        let erp = probe.clone();
        async move { !erp.keys("book").is_empty() }
    })
    .await;
    hub.submit(from_salesforce("cancel-3", "CAN-3", cancel(now())))
        .await;
    until_synced(&hub, "CAN-3", "Cancelled").await;
    erp.hold_bookings.store(false, Ordering::SeqCst);
    until_quiet(&hub).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(erp.bookings_created(), 0, "never booked");
    assert!(
        erp.keys("cancel").is_empty(),
        "nothing to cancel in the ERP"
    );
    assert_eq!(hub.status("CAN-3").await.as_deref(), Some("Cancelled"));
    assert!(dead_letters(&hub).await.is_empty());
    hub.stop().await;
}
