//! `TestApp`: a real hub on 127.0.0.1 (temp SQLite store, engine with loopback downstreams,
//! the API router) and intent-named helpers. Logs of the whole test process are captured in
//! memory so tests can search them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::auth::scope::Scope;
use crossdock_api::{ApiConfig, AppState};
use crossdock_domain::account::Account;
use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_domain::money::Currency;
use crossdock_domain::order::CreditAnswer;
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::erp::{
    BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
    CustomerRef, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
    ReturnAuthorisation, ReturnReceipt, ReturnRequest,
};
use crossdock_ports::failure::Result as ErpResult;
use crossdock_ports::{Clock, Erp, SeededRng, SystemClock};
use crossdock_store::SharedStore;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Everything logged by this test process.
pub fn logs() -> String {
    let buffer = log_buffer();
    let bytes = buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let writer = Capture(Arc::clone(log_buffer()));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// An ERP that answers like the loopback ERP after a delay.
pub struct SlowErp {
    /// The ERP behind.
    pub inner: Arc<LoopbackErp>,
    /// Delay of every lookup (price, stock, credit, options).
    pub delay: Mutex<Duration>,
    /// Accounts and SKUs this ERP does not know: its lookups refuse them for good, as a real
    /// ERP does (`unknown_customer`, `unknown_item`).
    pub unknown: Mutex<Vec<String>>,
}

impl SlowErp {
    /// Makes the ERP forget an account or a SKU.
    pub fn forget(&self, id: &str) {
        self.unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id.to_owned());
    }

    fn knows(&self, account: &AccountId, skus: &[&Sku]) -> ErpResult<()> {
        let unknown = self
            .unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if unknown.iter().any(|u| u == account.as_str()) {
            return Err(crossdock_ports::Failure::permanent(format!(
                "unknown customer {:?}",
                account.as_str()
            ))
            .with_code("unknown_customer"));
        }
        if let Some(sku) = skus
            .iter()
            .find(|s| unknown.iter().any(|u| u == s.as_str()))
        {
            return Err(crossdock_ports::Failure::permanent(format!(
                "unknown item {:?}",
                sku.as_str()
            ))
            .with_code("unknown_item"));
        }
        Ok(())
    }

    async fn wait(&self) {
        let delay = *self
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokio::time::sleep(delay).await;
    }
}

#[async_trait]
impl Erp for SlowErp {
    fn name(&self) -> &str {
        "slow-loopback"
    }
    async fn prices(
        &self,
        a: &AccountId,
        i: &[PriceRequest],
        on: time::Date,
    ) -> ErpResult<Vec<PriceQuote>> {
        self.wait().await;
        self.knows(a, &i.iter().map(|r| &r.sku).collect::<Vec<_>>())?;
        self.inner.prices(a, i, on).await
    }
    async fn availability(
        &self,
        s: &[Sku],
        l: Option<&LocationId>,
    ) -> ErpResult<Vec<InventoryLevel>> {
        self.wait().await;
        self.inner.availability(s, l).await
    }
    async fn credit_check(
        &self,
        a: &AccountId,
        amount: Decimal,
        c: Currency,
    ) -> ErpResult<CreditAnswer> {
        self.wait().await;
        self.knows(a, &[])?;
        self.inner.credit_check(a, amount, c).await
    }
    async fn fulfilment_options(&self, r: &FulfilmentRequest) -> ErpResult<Vec<FulfilmentOption>> {
        self.wait().await;
        self.inner.fulfilment_options(r).await
    }
    async fn book_order(&self, o: &BookingRequest, k: &str) -> ErpResult<BookingConfirmation> {
        self.knows(
            &o.account,
            &o.lines.iter().map(|l| &l.sku).collect::<Vec<_>>(),
        )?;
        self.inner.book_order(o, k).await
    }
    async fn cancel_order(&self, e: &str, r: &str, k: &str) -> ErpResult<CancelOutcome> {
        self.inner.cancel_order(e, r, k).await
    }
    async fn order(&self, e: &str) -> ErpResult<ErpOrder> {
        self.inner.order(e).await
    }
    async fn changes(&self, c: Option<&str>, l: usize) -> ErpResult<ChangeBatch> {
        self.inner.changes(c, l).await
    }
    async fn upsert_customer(&self, a: &Account, k: &str) -> ErpResult<CustomerRef> {
        self.inner.upsert_customer(a, k).await
    }
    async fn credit_status(&self, a: &AccountId) -> ErpResult<CreditReport> {
        self.inner.credit_status(a).await
    }
    async fn create_return(&self, r: &ReturnRequest, k: &str) -> ErpResult<ReturnAuthorisation> {
        self.inner.create_return(r, k).await
    }
    async fn receive_return(
        &self,
        e: &str,
        l: &[(LineNo, u32)],
        k: &str,
    ) -> ErpResult<ReturnReceipt> {
        self.inner.receive_return(e, l, k).await
    }
    async fn issue_credit_memo(&self, e: &str, k: &str) -> ErpResult<CreditMemo> {
        self.inner.issue_credit_memo(e, k).await
    }
    async fn issue_refund(&self, c: &str, k: &str) -> ErpResult<Refund> {
        self.inner.issue_refund(c, k).await
    }
}

/// How to build a test hub.
pub struct Options {
    /// API settings.
    pub config: ApiConfig,
    /// Run the engine (so submitted orders flow).
    pub run_engine: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: ApiConfig::default(),
            run_engine: true,
        }
    }
}

/// A running hub.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The API state (engine, store).
    pub state: AppState,
    /// The ERP behind the engine.
    pub erp: Arc<SlowErp>,
    /// An API key with every scope.
    pub key: String,
    shutdown: CancellationToken,
    dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Webhook secret of test hubs with webhooks on.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

impl TestApp {
    /// A hub with default settings and a running engine.
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    /// A hub with options.
    pub async fn with(options: Options) -> Self {
        capture_logs();
        let dir = std::env::temp_dir().join(format!("crossdock-api-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store: SharedStore =
            crossdock_store::open(dir.join("hub.sqlite").to_str().expect("utf-8 path"))
                .await
                .expect("store opens");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let erp = Arc::new(SlowErp {
            inner: Arc::new(LoopbackErp::new(clock.clone())),
            delay: Mutex::new(Duration::ZERO),
            unknown: Mutex::new(Vec::new()),
        });
        let engine = Engine::new(Parts {
            store: store.clone(),
            erp: erp.clone(),
            salesforce: Arc::new(LoopbackSalesforce::default()),
            clock: clock.clone(),
            rng: Arc::new(SeededRng::new(7)),
            config: EngineConfig {
                owner: "api-test".to_owned(),
                idle_poll: Duration::from_millis(20),
                erp_poll: Duration::from_millis(20),
                inventory_coalesce: Duration::from_millis(50),
                shutdown_grace: Duration::from_secs(1),
                ..EngineConfig::default()
            },
        });
        let shutdown = CancellationToken::new();
        if options.run_engine {
            tokio::spawn(Arc::clone(&engine).run(shutdown.clone()));
        }
        let state = AppState::with_config(engine, options.config).expect("valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(crossdock_api::serve(
            listener,
            state.clone(),
            shutdown.clone(),
        ));
        let key = keys::create(
            &store,
            NewKey {
                client: "all-scopes".to_owned(),
                scopes: Scope::ALL.to_vec(),
                accounts: Vec::new(),
                channels: Vec::new(),
                rate_per_second: Some(100_000),
            },
            clock.now(),
        )
        .await
        .expect("key")
        .key;
        Self {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            state,
            erp,
            key,
            shutdown,
            dir,
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        self.state.store()
    }

    /// The loopback ERP.
    pub fn loopback(&self) -> &LoopbackErp {
        &self.erp.inner
    }

    /// Creates a key.
    pub async fn key_with(
        &self,
        client: &str,
        scopes: &[Scope],
        accounts: &[&str],
        rate: Option<u32>,
    ) -> String {
        keys::create(
            self.store(),
            NewKey {
                client: client.to_owned(),
                scopes: scopes.to_vec(),
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                channels: Vec::new(),
                rate_per_second: rate.or(Some(100_000)),
            },
            self.state.engine.clock().now(),
        )
        .await
        .expect("key")
        .key
    }

    /// Sends a request with a bearer credential (none when `auth` is empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !auth.is_empty() {
            request = request.header("authorization", format!("Bearer {auth}"));
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Submits an order with the all-scopes key.
    pub async fn submit(&self, order: &Value, idempotency_key: &str) -> reqwest::Response {
        self.send(
            "POST",
            "/v1/orders",
            &self.key.clone(),
            Some(order),
            Some(idempotency_key),
        )
        .await
    }

    /// GET with the all-scopes key, as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.send("GET", path, &self.key.clone(), None, None).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until `path` answers 200 with a body satisfying `done` (at most 20 s).
    pub async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get_json(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never got there; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An order the loopback ERP validates (its prices).
pub fn order(external_id: &str, account: &str) -> Value {
    json!({
        "external_order_id": external_id,
        "account": account,
        "channel": "web",
        "currency": "USD",
        "lines": [
            { "sku": "SKU-1", "quantity": 2, "unit_price": price("SKU-1") },
            { "sku": "SKU-2", "quantity": 1, "unit_price": price("SKU-2") },
        ]
    })
}

/// The loopback ERP's price of a SKU.
pub fn price(sku: &str) -> String {
    crossdock_engine::loopback::list_price(&Sku::new(sku)).to_string()
}

/// JWT signing material for tests: an RSA key (fixture) and a fresh P-256 key, with the JWKS.
pub struct Issuer {
    rsa: jsonwebtoken::EncodingKey,
    ec: jsonwebtoken::EncodingKey,
    /// JWKS document with both public keys.
    pub jwks: Value,
}

/// Issuer and audience the test hubs expect.
pub const ISSUER: &str = "https://id.crossdock.test";
/// Audience.
pub const AUDIENCE: &str = "crossdock-api";

impl Issuer {
    /// Loads the RSA fixture and generates a P-256 key.
    pub fn new() -> Self {
        let rsa_pem = include_bytes!("fixtures/rsa-test-key.pem");
        let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(rsa_pem).expect("RSA fixture");
        let rsa_jwk: Value =
            serde_json::from_str(include_str!("fixtures/rsa-test-jwk.json")).expect("JWK fixture");
        let random = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &random,
        )
        .expect("P-256 key");
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &random,
        )
        .expect("P-256 pair");
        use ring::signature::KeyPair;
        let point = pair.public_key().as_ref();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let ec_jwk = json!({ "kty": "EC", "crv": "P-256", "kid": "ec-test", "alg": "ES256", "use": "sig",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]) });
        Self {
            rsa,
            ec: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwks: json!({ "keys": [rsa_jwk, ec_jwk] }),
        }
    }

    /// A token; `expires_in` may be negative (expired).
    pub fn token(
        &self,
        es256: bool,
        subject: &str,
        audience: &str,
        scope: &str,
        expires_in: i64,
    ) -> String {
        let now =
            i64::try_from(std::time::UNIX_EPOCH.elapsed().expect("clock").as_secs()).expect("time");
        let claims = json!({ "iss": ISSUER, "aud": audience, "sub": subject, "scope": scope,
            "iat": now, "exp": now + expires_in });
        let (alg, kid, key) = if es256 {
            (jsonwebtoken::Algorithm::ES256, "ec-test", &self.ec)
        } else {
            (jsonwebtoken::Algorithm::RS256, "rsa-test", &self.rsa)
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).expect("token")
    }

    /// API settings that trust this issuer (JWKS written to `dir`).
    pub fn config(&self, dir: &std::path::Path) -> ApiConfig {
        std::fs::create_dir_all(dir).expect("dir");
        let path = dir.join("jwks.json");
        std::fs::write(&path, self.jwks.to_string()).expect("jwks");
        let mut clients = std::collections::BTreeMap::new();
        clients.insert(
            "partner-1".to_owned(),
            crossdock_api::config::JwtClient {
                name: "partner".to_owned(),
                scopes: Scope::ALL.map(|s| s.as_str().to_owned()).to_vec(),
                accounts: Vec::new(),
                channels: Vec::new(),
            },
        );
        ApiConfig {
            jwt: Some(crossdock_api::config::JwtConfig {
                jwks_file: path,
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                leeway_secs: 0,
                clients,
            }),
            webhooks: Some(crossdock_api::config::WebhookConfig {
                secret: crossdock_api::config::Secret::new(WEBHOOK_SECRET),
                tolerance_secs: 300,
            }),
            ..ApiConfig::default()
        }
    }
}
