//! A running engine on a temp SQLite store with loopback (or wrapped) downstreams.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, Command, DraftLine, OrderDraft};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce, list_price};
use crossdock_engine::{Backoff, RetryPolicy};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::{Clock, Erp, Salesforce, SeededRng, SystemClock};
use crossdock_store::SharedStore;
use tokio_util::sync::CancellationToken;

pub struct Hub {
    pub engine: Arc<Engine>,
    pub store: SharedStore,
    pub shutdown: CancellationToken,
    pub running: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "crossdock-engine-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// Retries fast enough for tests.
pub fn fast_retries() -> RetryPolicy {
    let quick = |max_attempts| Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        factor: 2.0,
        max_attempts,
    };
    RetryPolicy {
        transient: quick(50),
        throttled: quick(50),
        conflict: quick(50),
        unknown: quick(3),
    }
}

pub fn test_config() -> EngineConfig {
    let mut config = EngineConfig {
        owner: "test".to_owned(),
        erp_poll: Duration::from_millis(10),
        idle_poll: Duration::from_millis(20),
        inventory_coalesce: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
        sf_sync_delay: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    config.erp_retry = fast_retries();
    config.salesforce_retry = fast_retries();
    config.hub_retry = fast_retries();
    config.erp_lane.breaker_open_ms = 200;
    config.erp_lane.breaker_failures = 3;
    config
}

impl Hub {
    pub async fn start(
        name: &str,
        erp: Arc<dyn Erp>,
        salesforce: Arc<dyn Salesforce>,
        config: EngineConfig,
    ) -> Hub {
        let dir = temp_dir(name);
        let store = crossdock_store::open(dir.0.join("hub.sqlite").to_str().expect("utf-8 path"))
            .await
            .expect("store opens");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let engine = Engine::new(Parts {
            store: Arc::clone(&store),
            erp,
            salesforce,
            clock,
            rng: Arc::new(SeededRng::new(7)),
            config,
        });
        let shutdown = CancellationToken::new();
        let running = Some(tokio::spawn(Arc::clone(&engine).run(shutdown.clone())));
        Hub {
            engine,
            store,
            shutdown,
            running,
            _dir: dir,
        }
    }

    pub async fn loopback(name: &str) -> (Hub, Arc<LoopbackErp>, Arc<LoopbackSalesforce>) {
        let erp = Arc::new(LoopbackErp::new(Arc::new(SystemClock)));
        let sf = Arc::new(LoopbackSalesforce::default());
        let hub = Hub::start(name, erp.clone(), sf.clone(), test_config()).await;
        (hub, erp, sf)
    }

    pub async fn submit(&self, message: InboundMessage) {
        self.engine.accept_message(message).await.expect("accepted");
    }

    /// Waits until `check` holds, or panics after `limit` with `what`.
    pub async fn wait_for<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            if started.elapsed() >= limit {
                let now = SystemClock.now();
                let depths = self.store.lane_depths(now).await;
                let letters = self.store.dead_letters(Default::default()).await;
                let counts = self.store.order_counts().await;
                panic!(
                    "timed out waiting for {what}\nlanes: {depths:#?}\ndead letters: {letters:#?}\norders: {counts:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `order`'s timeline holds an entry of `kind`, or panics after `limit`.
    pub async fn wait_for_timeline(&self, limit: Duration, order: &str, kind: &str) {
        let store = self.store.clone();
        self.wait_for(limit, &format!("a {kind} on {order}'s timeline"), || {
            let store = store.clone();
            async move {
                store
                    .timeline(order)
                    .await
                    .unwrap()
                    .iter()
                    .any(|e| e.entry.kind == kind)
            }
        })
        .await;
    }

    /// Waits until `orders` orders are closed, or panics after `limit`.
    pub async fn wait_for_closed(&self, limit: Duration, orders: u64) {
        let store = self.store.clone();
        self.wait_for(limit, &format!("{orders} closed orders"), || {
            let store = store.clone();
            async move {
                store
                    .order_counts()
                    .await
                    .unwrap()
                    .iter()
                    .any(|(status, n)| status == "Closed" && *n == orders)
            }
        })
        .await;
    }

    /// Waits until `order`'s summary row satisfies `check`, or panics after `limit`.
    pub async fn wait_for_order(
        &self,
        limit: Duration,
        order: &str,
        what: &str,
        check: fn(&crossdock_store::OrderRow) -> bool,
    ) {
        let store = self.store.clone();
        self.wait_for(limit, what, || {
            let store = store.clone();
            async move {
                store
                    .order(order)
                    .await
                    .unwrap()
                    .is_some_and(|row| check(&row))
            }
        })
        .await;
    }

    pub async fn status(&self, order: &str) -> Option<String> {
        self.store
            .order(order)
            .await
            .expect("store")
            .map(|row| row.status)
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.await.expect("engine stops");
        }
    }
}

pub fn draft(order: &str, account: &str, lines: &[(&str, u32)]) -> OrderDraft {
    OrderDraft {
        id: OrderId::new(order),
        refs: ExternalRefs {
            sf_id: Some(format!("801{order}")),
            sf_number: Some(order.to_owned()),
            erp_ref: None,
        },
        account: AccountId::new(account),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (sku, quantity))| {
                let sku = Sku::new(*sku);
                DraftLine {
                    line: LineNo(i as u32 + 1),
                    unit_price: list_price(&sku),
                    sku,
                    quantity: *quantity,
                    sf_id: None,
                }
            })
            .collect(),
        region: None,
        source: System::Salesforce,
        captured_at: SystemClock.now(),
    }
}

pub fn message(source: System, id: &str, order: &str, command: Command) -> InboundMessage {
    let body = Inbound::Order {
        order: OrderId::new(order),
        command,
    };
    InboundMessage {
        source,
        message_id: id.to_owned(),
        received_at: SystemClock.now(),
        raw: serde_json::to_string(&body).expect("json"),
        body,
    }
}

pub fn capture(order: &str, account: &str) -> InboundMessage {
    message(
        System::Salesforce,
        &format!("capture-{order}"),
        order,
        Command::CaptureOrder(draft(order, account, &[("SKU-1", 2), ("SKU-2", 1)])),
    )
}

/// An ERP wrapper whose faults tests switch on and off.
pub struct FlakyErp {
    pub inner: Arc<LoopbackErp>,
    pub down: std::sync::atomic::AtomicBool,
    pub fail_booking_of: std::sync::Mutex<Option<String>>,
    pub refuse_credit_of: std::sync::Mutex<Option<String>>,
    pub booked: std::sync::Mutex<Vec<String>>,
    /// `(order, ERP number)`: the booking of that order is answered with that number (as an
    /// ERP restored from an old backup issues a number again) and a read of the number names
    /// that order; the wrapped ERP never sees the booking.
    pub reissue: std::sync::Mutex<Option<(String, String)>>,
}

impl FlakyErp {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(LoopbackErp::new(Arc::new(SystemClock))),
            down: std::sync::atomic::AtomicBool::new(false),
            fail_booking_of: std::sync::Mutex::new(None),
            refuse_credit_of: std::sync::Mutex::new(None),
            booked: std::sync::Mutex::new(Vec::new()),
            reissue: std::sync::Mutex::new(None),
        })
    }

    fn check(&self) -> Result<(), crossdock_ports::Failure> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(crossdock_ports::Failure::transient("connection refused"))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl Erp for FlakyErp {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn prices(
        &self,
        a: &AccountId,
        i: &[crossdock_ports::erp::PriceRequest],
        on: time::Date,
    ) -> crossdock_ports::failure::Result<Vec<crossdock_ports::erp::PriceQuote>> {
        self.check()?;
        self.inner.prices(a, i, on).await
    }
    async fn availability(
        &self,
        s: &[Sku],
        l: Option<&crossdock_domain::ids::LocationId>,
    ) -> crossdock_ports::failure::Result<Vec<crossdock_domain::catalog::InventoryLevel>> {
        self.check()?;
        self.inner.availability(s, l).await
    }
    async fn credit_check(
        &self,
        a: &AccountId,
        amount: rust_decimal::Decimal,
        c: Currency,
    ) -> crossdock_ports::failure::Result<crossdock_domain::order::CreditAnswer> {
        self.check()?;
        if self.refuse_credit_of.lock().unwrap().as_deref() == Some(a.as_str()) {
            return Ok(crossdock_domain::order::CreditAnswer {
                approved: false,
                available: Some(rust_decimal::Decimal::ZERO),
                reason: Some(format!("{a} would exceed the credit limit")),
            });
        }
        self.inner.credit_check(a, amount, c).await
    }
    async fn fulfilment_options(
        &self,
        r: &crossdock_ports::erp::FulfilmentRequest,
    ) -> crossdock_ports::failure::Result<Vec<crossdock_domain::catalog::FulfilmentOption>> {
        self.check()?;
        self.inner.fulfilment_options(r).await
    }
    async fn book_order(
        &self,
        o: &crossdock_ports::erp::BookingRequest,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::BookingConfirmation> {
        self.check()?;
        if self.fail_booking_of.lock().unwrap().as_deref() == Some(o.reference.as_str()) {
            return Err(crossdock_ports::Failure::unknown(
                "the ERP answered 200 with an empty body",
            ));
        }
        let reissued = self.reissue.lock().unwrap().clone();
        if let Some((_, erp_ref)) = reissued.filter(|(order, _)| order == o.reference.as_str()) {
            return Ok(crossdock_ports::erp::BookingConfirmation {
                erp_ref,
                created: true,
                allocations: Vec::new(),
                backorders: Vec::new(),
            });
        }
        let confirmation = self.inner.book_order(o, k).await?;
        if confirmation.created {
            self.booked.lock().unwrap().push(o.reference.to_string());
        }
        Ok(confirmation)
    }
    async fn cancel_order(
        &self,
        e: &str,
        r: &str,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::CancelOutcome> {
        self.check()?;
        self.inner.cancel_order(e, r, k).await
    }
    async fn order(
        &self,
        e: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::ErpOrder> {
        self.check()?;
        let reissued = self.reissue.lock().unwrap().clone();
        if let Some((order, erp_ref)) = reissued.filter(|(_, erp_ref)| erp_ref == e) {
            return Ok(crossdock_ports::erp::ErpOrder {
                erp_ref,
                reference: OrderId::new(order),
                cancelled: false,
                lines: Vec::new(),
                shipments: Vec::new(),
                invoices: Vec::new(),
            });
        }
        self.inner.order(e).await
    }
    async fn changes(
        &self,
        c: Option<&str>,
        l: usize,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::ChangeBatch> {
        self.check()?;
        self.inner.changes(c, l).await
    }
    async fn upsert_customer(
        &self,
        a: &crossdock_domain::account::Account,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::CustomerRef> {
        self.check()?;
        self.inner.upsert_customer(a, k).await
    }
    async fn credit_status(
        &self,
        a: &AccountId,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::CreditReport> {
        self.check()?;
        self.inner.credit_status(a).await
    }
    async fn create_return(
        &self,
        r: &crossdock_ports::erp::ReturnRequest,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::ReturnAuthorisation> {
        self.check()?;
        self.inner.create_return(r, k).await
    }
    async fn receive_return(
        &self,
        e: &str,
        l: &[(LineNo, u32)],
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::ReturnReceipt> {
        self.check()?;
        self.inner.receive_return(e, l, k).await
    }
    async fn issue_credit_memo(
        &self,
        e: &str,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::CreditMemo> {
        self.check()?;
        self.inner.issue_credit_memo(e, k).await
    }
    async fn issue_refund(
        &self,
        c: &str,
        k: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::Refund> {
        self.check()?;
        self.inner.issue_refund(c, k).await
    }
}
