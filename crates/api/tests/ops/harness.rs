//! A hub for operations tests: an engine on a fresh SQLite store with in-process downstreams
//! (an ERP that can be switched off), the HTTP router on a port-0 listener, an API key with
//! the operations scopes, and helpers that seed orders through the engine's own decisions.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossdock_api::AppState;
use crossdock_api::auth::Scope;
use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::ops::{Ops, Settings};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, Command, DraftLine, OrderDraft};
use crossdock_engine::apply::{Cause, apply, load};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_engine::{Backoff, Engine, EngineConfig, Parts, RetryPolicy};
use crossdock_ports::{Clock, Erp, Failure, Salesforce, SeededRng};
use crossdock_store::{Decision, SharedStore};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "crossdock-ops-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// Retries fast enough for tests; unknown failures give up after 2 attempts.
pub fn fast_retries() -> RetryPolicy {
    let quick = |max_attempts| Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        factor: 2.0,
        max_attempts,
    };
    RetryPolicy {
        transient: quick(10_000),
        throttled: quick(10_000),
        conflict: quick(50),
        unknown: quick(2),
    }
}

pub fn test_config() -> EngineConfig {
    let mut config = EngineConfig {
        owner: "ops-test".to_owned(),
        erp_poll: Duration::from_millis(10),
        idle_poll: Duration::from_millis(20),
        inventory_coalesce: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    config.erp_retry = fast_retries();
    config.salesforce_retry = fast_retries();
    config.hub_retry = fast_retries();
    config.erp_lane.breaker_open_ms = 100;
    config.erp_lane.breaker_failures = 1_000;
    config
}

/// An ERP that refuses to answer while `down`, and answers bookings of one order with an
/// unusable reply while `broken_booking` names it.
pub struct SwitchableErp {
    pub inner: LoopbackErp,
    pub down: AtomicBool,
    pub broken_booking: std::sync::Mutex<Vec<String>>,
    /// `(order, ERP number)`: that order's booking is answered with that number (an ERP
    /// restored from an old backup issuing a number again), and a read of the number names
    /// that order; the wrapped ERP never sees the booking.
    pub reissue: std::sync::Mutex<Option<(String, String)>>,
}

impl SwitchableErp {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            inner: LoopbackErp::new(clock),
            down: AtomicBool::new(false),
            broken_booking: std::sync::Mutex::new(Vec::new()),
            reissue: std::sync::Mutex::new(None),
        })
    }

    fn check(&self) -> crossdock_ports::failure::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Failure::transient("connection refused (ERP down)"))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl Erp for SwitchableErp {
    fn name(&self) -> &str {
        "test ERP"
    }

    async fn book_order(
        &self,
        order: &crossdock_ports::erp::BookingRequest,
        key: &str,
    ) -> crossdock_ports::failure::Result<crossdock_ports::erp::BookingConfirmation> {
        self.check()?;
        let broken = self
            .broken_booking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&order.reference.to_string());
        if broken {
            return Err(Failure::unknown("the ERP answered 200 with an empty body"));
        }
        let reissued = self.reissue.lock().unwrap().clone();
        if let Some((_, erp_ref)) =
            reissued.filter(|(reissued, _)| reissued == order.reference.as_str())
        {
            return Ok(crossdock_ports::erp::BookingConfirmation {
                erp_ref,
                created: true,
                allocations: Vec::new(),
                backorders: Vec::new(),
            });
        }
        self.inner.book_order(order, key).await
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
        amount: Decimal,
        c: Currency,
    ) -> crossdock_ports::failure::Result<crossdock_domain::order::CreditAnswer> {
        self.check()?;
        self.inner.credit_check(a, amount, c).await
    }

    async fn fulfilment_options(
        &self,
        r: &crossdock_ports::erp::FulfilmentRequest,
    ) -> crossdock_ports::failure::Result<Vec<crossdock_domain::catalog::FulfilmentOption>> {
        self.check()?;
        self.inner.fulfilment_options(r).await
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

#[allow(dead_code)] // Not every test binary uses every handle.
pub struct Hub {
    pub engine: Arc<Engine>,
    pub store: SharedStore,
    pub ops: Ops,
    pub state: AppState,
    pub erp: Arc<SwitchableErp>,
    pub salesforce: Arc<LoopbackSalesforce>,
    pub clock: Arc<dyn Clock>,
    pub shutdown: CancellationToken,
    pub running: Option<tokio::task::JoinHandle<()>>,
    pub base: String,
    pub key: String,
    _dir: TempDir,
}

impl Hub {
    /// A hub; the engine runs only when `run` is set (seeded scenarios keep it still).
    pub async fn start(name: &str, clock: Arc<dyn Clock>, settings: Settings, run: bool) -> Hub {
        let dir = temp_dir(name);
        let store = crossdock_store::open(dir.0.join("hub.sqlite").to_str().expect("utf-8 path"))
            .await
            .expect("store opens");
        let erp = SwitchableErp::new(Arc::clone(&clock));
        let salesforce = Arc::new(LoopbackSalesforce::default());
        let engine = Engine::new(Parts {
            store: Arc::clone(&store),
            erp: erp.clone() as Arc<dyn Erp>,
            salesforce: salesforce.clone() as Arc<dyn Salesforce>,
            clock: Arc::clone(&clock),
            rng: Arc::new(SeededRng::new(11)),
            config: test_config(),
        });
        let state = AppState::new(Arc::clone(&engine));
        let ops = Ops::new(state.clone(), settings);
        let shutdown = CancellationToken::new();
        let running = run.then(|| tokio::spawn(Arc::clone(&engine).run(shutdown.clone())));
        let app = crossdock_api::router(state.clone()).layer(axum::Extension(ops.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = shutdown.clone();
        tokio::spawn(crossdock_api::serve_router(listener, app, stop));
        let created = keys::create(
            &store,
            NewKey {
                client: "ops-team".to_owned(),
                scopes: vec![Scope::OpsRead, Scope::OpsWrite],
                accounts: Vec::new(),
                channels: Vec::new(),
                rate_per_second: Some(10_000),
            },
            clock.now(),
        )
        .await
        .expect("key");
        Hub {
            engine,
            store,
            ops,
            state,
            erp,
            salesforce,
            clock,
            shutdown,
            running,
            base,
            key: created.key,
            _dir: dir,
        }
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .client()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Applies commands to an order the way the engine does and commits the result
    /// (without the follow-up tasks unless `with_tasks`).
    pub async fn apply(
        &self,
        order: &str,
        commands: Vec<Command>,
        system: System,
        with_tasks: bool,
    ) -> Decision {
        let id = OrderId::new(order);
        let loaded = load(&self.store, &id).await.expect("load");
        let cause = Cause {
            system,
            causation: format!("test:{order}"),
            correlation: Some(format!("corr-{order}")),
        };
        let mut applied = apply(
            &id,
            &loaded,
            &commands,
            &cause,
            self.engine.config(),
            self.clock.now(),
        )
        .expect("commands apply")
        .decision;
        if !with_tasks {
            applied.tasks.clear();
        }
        self.store.commit(applied.clone()).await.expect("commit");
        applied
    }

    pub async fn wait_for<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls `check` until it yields a value, or panics after `limit` with `what`.
    pub async fn until<T, F, Fut>(&self, limit: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.await.expect("engine stops");
        }
    }
}

/// A draft whose value is exactly `value` (one line, one unit).
pub fn draft(order: &str, account: &str, value: i64, captured_at: OffsetDateTime) -> OrderDraft {
    OrderDraft {
        id: OrderId::new(order),
        refs: ExternalRefs {
            sf_id: Some(format!("801{order}")),
            sf_number: Some(format!("SO-{order}")),
            erp_ref: None,
        },
        account: AccountId::new(account),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: vec![DraftLine {
            line: LineNo(1),
            sku: Sku::new("SKU-1"),
            quantity: 1,
            unit_price: Decimal::from(value),
            sf_id: None,
        }],
        region: None,
        source: System::Salesforce,
        captured_at,
    }
}

impl SwitchableErp {
    /// Bookings of these orders get an unusable answer.
    pub fn break_bookings(&self, orders: &[&str]) {
        *self
            .broken_booking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            orders.iter().map(|o| (*o).to_owned()).collect();
    }
}

/// A capture message from Salesforce for an order worth `value`.
pub fn capture_message(
    order: &str,
    account: &str,
    value: i64,
) -> crossdock_ports::inbound::InboundMessage {
    use crossdock_ports::inbound::{Inbound, InboundMessage};
    let now = crossdock_ports::SystemClock.now();
    let body = Inbound::Order {
        order: OrderId::new(order),
        command: Command::CaptureOrder(draft_priced(order, account, value, now)),
    };
    InboundMessage {
        source: System::Salesforce,
        message_id: format!("capture-{order}"),
        received_at: now,
        raw: serde_json::to_string(&body).expect("json"),
        body,
    }
}

/// Like [`draft`], at the loopback ERP's list price so validation passes: `value` units of
/// one SKU priced by the ERP (the order value is `value × list price`).
pub fn draft_priced(
    order: &str,
    account: &str,
    units: i64,
    captured_at: OffsetDateTime,
) -> OrderDraft {
    let sku = Sku::new("SKU-1");
    let mut d = draft(order, account, 1, captured_at);
    d.lines[0].unit_price = crossdock_engine::loopback::list_price(&sku);
    d.lines[0].quantity = u32::try_from(units).unwrap_or(1);
    d
}

/// Settings whose flows all have a one-second latency target, so tests need not wait long.
pub fn quick_settings() -> Settings {
    let mut settings = Settings::default();
    for flow in &mut settings.flows {
        flow.classification.latency_target_secs = 1;
    }
    settings
}

/// The (kind, subject) pairs of a health report, sorted.
pub fn found(report: &crossdock_api::ops::HealthReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report
        .exceptions
        .iter()
        .map(|e| {
            (
                serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                e.subject.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = items
        .iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
        .collect();
    out.sort();
    out
}
