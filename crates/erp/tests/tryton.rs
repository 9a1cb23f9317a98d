//! The Tryton client and adapter against the real Tryton server started by
//! `scripts/setup/tryton.sh` (read from `.tryton/env`), and against a small local HTTP stub
//! for answers a healthy server never gives.
//!
//! Every test books its own orders (unique references) on its own products, so the tests
//! run in any order and in parallel against one server. Products whose stock the tests
//! measure are not the ones the ERP conformance suite uses (`SKU-0010`, `SKU-0002`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossdock_domain::account::{Account, Address, CustomerTier};
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, LocationId, OrderId, RmaId, Sku};
use crossdock_domain::money::Currency;
use crossdock_domain::order::Milestone;
use crossdock_erp::tryton::{
    Adapter, Client, ClientConfig, Config, Error, ErrorKind, Secret, ShipmentStep,
};
use crossdock_ports::erp::{
    BookingLine, BookingRequest, CancelOutcome, ChangeKind, FulfilmentRequest, PriceRequest,
    ReturnRequest,
};
use crossdock_ports::{Clock, Erp, FailureClass, SystemClock};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------
// Real server helpers
// ---------------------------------------------------------------------------------------

const SETUP: &str = "run scripts/setup/tryton.sh to install and start the Tryton test server";

fn env_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tryton/env")
}

fn config() -> Config {
    let path = env_file();
    assert!(
        path.exists(),
        "Tryton is not set up: {} is missing; {SETUP}",
        path.display()
    );
    let mut config = Config::from_env_file(&path).unwrap_or_else(|e| panic!("{e}; {SETUP}"));
    // The whole workspace's tests share two cores: allow slow answers rather than flake.
    config.timeout_secs = 120;
    config
}

async fn tryton() -> Adapter {
    Adapter::connect(config(), Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("cannot use the Tryton test server ({e}); {SETUP}"))
}

/// A reference no other test (or earlier run against the same server) uses.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemClock.now().unix_timestamp_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn order(reference: &str, account: &str, lines: &[(&str, u32, &str)]) -> BookingRequest {
    BookingRequest {
        reference: OrderId::new(reference),
        sf_number: Some(format!("SF-{reference}")),
        account: AccountId::new(account),
        currency: Currency::USD,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (sku, quantity, price))| BookingLine {
                line: LineNo(u32::try_from(i).unwrap() + 1),
                sku: Sku::new(*sku),
                quantity: *quantity,
                unit_price: dec(price),
            })
            .collect(),
        fulfilment: None,
        region: None,
    }
}

async fn available(erp: &Adapter, sku: &str, location: &str) -> (i64, i64) {
    let levels = erp
        .availability(&[Sku::new(sku)], Some(&LocationId::new(location)))
        .await
        .unwrap();
    assert_eq!(levels.len(), 1, "{levels:?}");
    (levels[0].on_hand, levels[0].available)
}

async fn sales_with_reference(erp: &Adapter, reference: &str) -> Vec<i64> {
    erp.client()
        .search(
            "sale.sale",
            json!([["reference", "=", reference]]),
            0,
            None,
            None,
            None,
        )
        .await
        .unwrap()
}

/// Every change from `cursor` on, following pages until the feed is empty.
async fn drain_feed(erp: &Adapter, mut cursor: String) -> Vec<crossdock_ports::erp::ErpChange> {
    let mut all = Vec::new();
    for _ in 0..200 {
        let batch = erp.changes(Some(&cursor), 50).await.unwrap();
        // An empty batch means caught up (pages of quiet records are skipped inside).
        if batch.changes.is_empty() {
            return all;
        }
        all.extend(batch.changes);
        cursor = batch.cursor;
    }
    panic!("the change feed did not run dry after 200 pages");
}

// ---------------------------------------------------------------------------------------
// Stub server for malformed and failing answers
// ---------------------------------------------------------------------------------------

/// What the stub answers to one JSON-RPC call.
enum Reply {
    /// `{"id": …, "result": value}`.
    Result(Value),
    /// `{"id": …, "error": value}`.
    Error(Value),
    /// A raw HTTP answer: status, extra headers, body.
    Raw(u16, Vec<(&'static str, String)>, String),
}

type Handler = Arc<dyn Fn(&str, &[Value], Option<&str>) -> Reply + Send + Sync>;

/// Serves `handler` on a local port (one request per connection) and returns the base URL.
async fn stub(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0_u8; 4096];
                let (head_end, length) = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..pos]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (pos + 4, length);
                    }
                };
                while buffer.len() < head_end + length {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                let auth = head.lines().find_map(|l| {
                    l.to_lowercase()
                        .starts_with("authorization:")
                        .then(|| l["authorization:".len()..].trim().to_owned())
                });
                let body: Value = serde_json::from_slice(&buffer[head_end..head_end + length])
                    .unwrap_or(Value::Null);
                let id = body["id"].clone();
                let method = body["method"].as_str().unwrap_or_default().to_owned();
                let params = body["params"].as_array().cloned().unwrap_or_default();
                let (status, headers, text) = match handler(&method, &params, auth.as_deref()) {
                    Reply::Result(v) => {
                        (200, Vec::new(), json!({"id": id, "result": v}).to_string())
                    }
                    Reply::Error(e) => (200, Vec::new(), json!({"id": id, "error": e}).to_string()),
                    Reply::Raw(status, headers, text) => (status, headers, text),
                };
                let mut answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    text.len()
                );
                for (name, value) in headers {
                    answer.push_str(&format!("{name}: {value}\r\n"));
                }
                answer.push_str("\r\n");
                answer.push_str(&text);
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

/// An adapter configuration for a stub at `url`, with its password file in a fresh
/// directory (returned for clean-up).
fn stub_adapter_config(url: &str) -> (Config, PathBuf) {
    let dir = std::env::temp_dir().join(unique("tryton-stub"));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "pw\n").unwrap();
    let config = Config::from_env_text(&format!(
        "TRYTON_URL={url}\nTRYTON_DB=stubdb\nTRYTON_USER=crossdock\nTRYTON_PASSWORD_FILE={}\n\
         TRYTON_WAREHOUSES=WH=5\nTRYTON_PAYMENT_METHOD=1\n",
        password.display()
    ))
    .unwrap();
    (config, dir)
}

fn stub_client_config(url: &str) -> ClientConfig {
    ClientConfig {
        url: url.to_owned(),
        database: "stubdb".to_owned(),
        login: "crossdock".to_owned(),
        password: Secret::new("pw"),
        language: "en".to_owned(),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        accepted_warnings: Vec::new(),
    }
}

/// Answers login and preferences like Tryton; everything else through `rest`.
fn tryton_like(
    logins: Arc<AtomicU64>,
    rest: impl Fn(&str, &[Value], Option<&str>) -> Reply + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |method, params, auth| match method {
        "common.db.login" => {
            let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::Result(json!([2, format!("session{n}"), null]))
        }
        "model.res.user.get_preferences" => {
            Reply::Result(json!({"company": 1, "employee": 1, "language": "en", "locale": {}}))
        }
        _ => rest(method, params, auth),
    })
}

fn session_number(auth: Option<&str>) -> Option<u64> {
    use base64::Engine as _;
    let encoded = auth?.strip_prefix("Session ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.rsplit_once(":session")?.1.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Stub tests (no Tryton needed)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_answers_become_precise_errors_not_panics() {
    let logins = Arc::new(AtomicU64::new(0));
    let url = stub(tryton_like(logins, |method, _, _| match method {
        "model.sale.sale.search_read" => Reply::Result(json!({"not": "a list"})),
        "model.sale.sale.search" => Reply::Result(json!([7])),
        "model.sale.sale.read" => Reply::Result(json!([{
            "id": 7, "number": "7", "reference": "R", "state": 42, "shipment_state": "none",
            "invoice_state": "none", "party": 1, "warehouse": 5, "invoice_address": 1,
            "shipment_address": 1, "payment_term": 1, "origin": null,
            "last_modified_at": {"__class__": "datetime", "year": 2026, "month": 1, "day": 2,
                                 "hour": 3, "minute": 4, "second": 5, "microsecond": 0},
            "lines": [], "shipments": [], "shipment_returns": [], "invoices": []
        }])),
        "model.company.company.read" => Reply::Result(json!([{"id": 1, "currency": 1}])),
        "model.currency.currency.read" => Reply::Result(json!([{"id": 1, "code": "USD"}])),
        "model.stock.location.search_read" => Reply::Result(json!([{"id": 5}])),
        "model.party.party.search" => {
            Reply::Raw(200, Vec::new(), "<html>proxy error</html>".to_owned())
        }
        "model.party.party.read" => Reply::Raw(
            200,
            Vec::new(),
            json!({"id": 999, "result": []}).to_string(),
        ),
        "model.party.party.write" => Reply::Raw(200, Vec::new(), json!({"id": null}).to_string()),
        _ => Reply::Result(json!(null)),
    }))
    .await;
    let client = Client::connect(stub_client_config(&url)).await.unwrap();

    let error = client
        .search_read("sale.sale", json!([]), 0, None, None, &["state"], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed);
    assert_eq!(
        error.to_string(),
        r#"model.sale.sale.search_read: malformed answer: expected a list of records, got {"not":"a list"}"#
    );

    let error = client
        .search("party.party", json!([]), 0, None, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Malformed { method, detail } if method == "model.party.party.search" && detail.starts_with("not JSON")),
        "{error}"
    );
    let error = client
        .read("party.party", &[1], &["name"], None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("does not match request id"),
        "{error}"
    );
    let error = client
        .write("party.party", &[1], json!({"name": "x"}), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");

    // Through the adapter: a sale whose state is a number is an `unknown` failure that
    // names the method and the field.
    let (config, dir) = stub_adapter_config(&url);
    let erp = Adapter::connect(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let failure = erp.order("7").await.unwrap_err();
    assert_eq!(failure.class, FailureClass::Unknown);
    assert_eq!(failure.code.as_deref(), Some("MalformedResponse"));
    assert!(
        failure.message.contains("model.sale.sale.read")
            && failure
                .message
                .contains("field `state` should be text, got 42"),
        "{failure}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn server_errors_are_transient_and_throttling_carries_retry_after() {
    let logins = Arc::new(AtomicU64::new(0));
    let url = stub(tryton_like(logins, |method, _, _| match method {
        "model.sale.sale.search" => Reply::Raw(503, Vec::new(), "Service Unavailable".to_owned()),
        "model.sale.sale.read" => {
            Reply::Raw(429, vec![("Retry-After", "7".to_owned())], String::new())
        }
        "model.sale.sale.quote" => Reply::Error(json!([
            "UserError",
            ["You can not call \"quote\".", "", null]
        ])),
        _ => Reply::Raw(500, Vec::new(), "Internal Server Error".to_owned()),
    }))
    .await;
    let client = Client::connect(stub_client_config(&url)).await.unwrap();

    let error = client
        .search("sale.sale", json!([]), 0, None, None, None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.failure_class(), FailureClass::Transient);
    assert_eq!(
        error.to_string(),
        "model.sale.sale.search: HTTP 503: Service Unavailable"
    );

    let error = client
        .read("sale.sale", &[1], &["state"], None)
        .await
        .unwrap_err();
    assert_eq!(
        error.failure_class(),
        FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    let error = client
        .button("sale.sale", "quote", &[1], None)
        .await
        .unwrap_err();
    assert_eq!(error.failure_class(), FailureClass::Permanent);
    assert_eq!(error.tryton_message(), Some("You can not call \"quote\"."));

    // Nothing listening: a connection failure is transient too.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = format!("http://127.0.0.1:{port}");
    let error = Client::connect(stub_client_config(&down))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert_eq!(error.failure_class(), FailureClass::Transient);

    // An adapter can be built while Tryton is down; its calls fail as transient meanwhile.
    let (config, dir) = stub_adapter_config(&down);
    let erp = Adapter::new(config, Arc::new(SystemClock)).unwrap();
    let failure = erp.order("1").await.unwrap_err();
    assert_eq!(failure.class, FailureClass::Transient, "{failure}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_company_in_another_currency_is_a_configuration_error() {
    let logins = Arc::new(AtomicU64::new(0));
    let url = stub(tryton_like(logins, |method, _, _| match method {
        "model.company.company.read" => Reply::Result(json!([{"id": 1, "currency": 2}])),
        "model.currency.currency.read" => Reply::Result(json!([{"id": 2, "code": "EUR"}])),
        _ => Reply::Result(json!([])),
    }))
    .await;
    let (config, dir) = stub_adapter_config(&url);
    let error = Adapter::connect(config.clone(), Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("EUR"), "{error}");
    let erp = Adapter::new(config, Arc::new(SystemClock)).unwrap();
    let failure = erp
        .availability(&[Sku::new("SKU-0001")], None)
        .await
        .unwrap_err();
    assert_eq!(failure.class, FailureClass::Permanent);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_call_repeated() {
    let logins = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let url = stub(tryton_like(logins.clone(), move |method, _, auth| {
        let session = session_number(auth);
        seen.lock().unwrap().push((method.to_owned(), session));
        match (method, session) {
            // The first session expires on its first business call.
            ("model.sale.sale.search", Some(1)) => Reply::Raw(401, Vec::new(), String::new()),
            ("model.sale.sale.search", _) => Reply::Result(json!([1, 2])),
            // This one is refused whatever the session.
            _ => Reply::Raw(401, Vec::new(), String::new()),
        }
    }))
    .await;
    let client = Client::connect(stub_client_config(&url)).await.unwrap();
    assert_eq!(client.login_count(), 1);
    let ids = client
        .search("sale.sale", json!([]), 0, None, None, None)
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(client.login_count(), 2);
    assert_eq!(
        calls.lock().unwrap().clone(),
        vec![
            ("model.sale.sale.search".to_owned(), Some(1)),
            ("model.sale.sale.search".to_owned(), Some(2)),
        ]
    );
    let error = client
        .button("account.invoice", "post", &[1], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(
        client.login_count(),
        3,
        "exactly one re-login per refused call"
    );

    // A refused login (wrong password: HTTP 401) is permanent, not retried. (Not tried on
    // the real server: Tryton slows down and then rate-limits repeated failed logins.)
    let url = stub(Arc::new(|_: &str, _: &[Value], _: Option<&str>| {
        Reply::Raw(401, Vec::new(), String::new())
    }))
    .await;
    let error = Client::connect(stub_client_config(&url)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(error.failure_class(), FailureClass::Permanent);
    assert_eq!(
        error.to_string(),
        "common.db.login: authentication failed: Tryton refused the login `crossdock`"
    );
}

#[tokio::test]
async fn only_accepted_warnings_are_skipped() {
    let logins = Arc::new(AtomicU64::new(0));
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let seen = skipped.clone();
    let url = stub(tryton_like(logins, move |method, params, _| match method {
        "model.res.user.warning.skip" => {
            seen.lock()
                .unwrap()
                .push(params[0].as_str().unwrap_or_default().to_owned());
            Reply::Result(Value::Null)
        }
        "model.sale.sale.confirm" if seen.lock().unwrap().is_empty() => Reply::Error(json!([
            "UserWarning",
            [
                "5f1c.credit_limit_amount",
                "The party will exceed its credit limit.",
                ""
            ]
        ])),
        _ => Reply::Result(Value::Null),
    }))
    .await;
    let strict = Client::connect(stub_client_config(&url)).await.unwrap();
    let error = strict
        .button("sale.sale", "confirm", &[1], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Warning);
    assert_eq!(error.failure_class(), FailureClass::Permanent);
    assert!(skipped.lock().unwrap().is_empty());

    let mut config = stub_client_config(&url);
    config.accepted_warnings = vec!["credit_limit_amount".to_owned()];
    let lenient = Client::connect(config).await.unwrap();
    lenient
        .button("sale.sale", "confirm", &[1], None)
        .await
        .unwrap();
    assert_eq!(
        skipped.lock().unwrap().clone(),
        vec!["5f1c.credit_limit_amount".to_owned()]
    );
}

// ---------------------------------------------------------------------------------------
// Real Tryton
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn logs_in_and_logs_in_again_after_the_server_drops_the_session() {
    let erp = tryton().await;
    let client = erp.client();
    assert_eq!(client.server_version().await.unwrap(), "8.0");
    let context = client.context().unwrap();
    assert!(
        context.get("company").and_then(Value::as_i64).is_some(),
        "{context:?}"
    );
    let before = client.login_count();
    // End the session on the server while the client still holds it: the next call gets
    // HTTP 401, logs in again and is repeated.
    client.call("common.db.logout", Vec::new()).await.unwrap();
    let ids = client
        .search(
            "party.party",
            json!([["code", "=", "ACC-0001"]]),
            0,
            None,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(client.login_count(), before + 1);
}

#[tokio::test]
async fn a_tryton_user_error_is_a_permanent_failure_with_its_message() {
    let erp = tryton().await;
    let error = erp
        .client()
        .read("sale.sale", &[987_654_321], &["state"], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::User);
    let failure = crossdock_ports::Failure::from(error);
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("UserError"));
    assert!(failure.message.contains("987654321"), "{failure}");

    // A field that does not exist is a server exception: permanent as well.
    let error = erp
        .client()
        .read("party.party", &[1], &["no_such_field"], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(error.failure_class(), FailureClass::Permanent);

    let failure = erp.order("no-such-order").await.unwrap_err();
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("UnknownOrder"));
}

#[tokio::test]
async fn booking_the_same_reference_twice_creates_one_sale() {
    let erp = tryton().await;
    let reference = unique("IDEM");
    let request = order(
        &reference,
        "ACC-0001",
        &[("SKU-0011", 2, "25.00"), ("SKU-0021", 1, "9.90")],
    );
    let first = erp.book_order(&request, "key-1").await.unwrap();
    assert!(first.created);
    let second = erp.book_order(&request, "key-1").await.unwrap();
    assert!(!second.created);
    assert_eq!(first.erp_ref, second.erp_ref);
    assert_eq!(sales_with_reference(&erp, &reference).await.len(), 1);

    // Two attempts racing: still one sale, both answers name it.
    let racing = unique("RACE");
    let request = order(&racing, "ACC-0001", &[("SKU-0011", 1, "25.00")]);
    let (a, b) = tokio::join!(erp.book_order(&request, "k"), erp.book_order(&request, "k"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.erp_ref, b.erp_ref);
    assert_eq!(u8::from(a.created) + u8::from(b.created), 1);
    assert_eq!(sales_with_reference(&erp, &racing).await.len(), 1);

    let read = erp.order(&first.erp_ref).await.unwrap();
    assert_eq!(read.reference.as_str(), reference);
    assert!(!read.cancelled);
    let quantities: Vec<(u32, &str, u32)> = read
        .lines
        .iter()
        .map(|l| (l.line.0, l.sku.as_str(), l.ordered))
        .collect();
    assert_eq!(quantities, vec![(1, "SKU-0011", 2), (2, "SKU-0021", 1)]);
}

#[tokio::test]
async fn booking_lowers_the_forecast_but_not_the_stock_on_hand() {
    let erp = tryton().await;
    let (on_hand, forecast) = available(&erp, "SKU-0024", "WH").await;
    let booked = erp
        .book_order(
            &order(&unique("ATP"), "ACC-0005", &[("SKU-0024", 3, "40.00")]),
            "k",
        )
        .await
        .unwrap();
    assert_eq!(booked.backorders, vec![]);
    assert_eq!(booked.allocations.len(), 1);
    assert_eq!(booked.allocations[0].quantity, 3);
    assert_eq!(booked.allocations[0].location.as_str(), "WH");
    let (on_hand_after, forecast_after) = available(&erp, "SKU-0024", "WH").await;
    assert_eq!(forecast_after, forecast - 3);
    assert_eq!(on_hand_after, on_hand);
    // The other warehouse is untouched.
    let levels = erp
        .availability(&[Sku::new("SKU-0024")], None)
        .await
        .unwrap();
    let locations: Vec<&str> = levels.iter().map(|l| l.location.as_str()).collect();
    assert_eq!(locations, vec!["WH", "WH2"]);
}

#[tokio::test]
async fn a_shortage_at_booking_is_reported_as_backorder() {
    let erp = tryton().await;
    let (_, forecast) = available(&erp, "SKU-0025", "WH").await;
    let wanted = u32::try_from(forecast.max(0)).unwrap() + 4;
    let booked = erp
        .book_order(
            &order(
                &unique("BACK"),
                "ACC-0006",
                &[("SKU-0025", wanted, "10.00")],
            ),
            "k",
        )
        .await
        .unwrap();
    assert_eq!(booked.backorders, vec![(LineNo(1), 4)]);
    assert_eq!(
        booked.allocations.iter().map(|a| a.quantity).sum::<u32>(),
        wanted - 4
    );
}

/// Sets the on-hand stock of `sku` in the storage zone of warehouse `location` with a
/// confirmed inventory, as a clerk counting the shelf would.
async fn count_stock(erp: &Adapter, sku: &str, location: &str, units: u32) {
    let client = erp.client();
    let warehouse = erp.config().warehouse_named(location).unwrap().id;
    let storage = client
        .read("stock.location", &[warehouse], &["storage_location"], None)
        .await
        .unwrap()[0]
        .int("storage_location")
        .unwrap();
    let product = client
        .search(
            "product.product",
            json!([["code", "=", sku]]),
            0,
            Some(1),
            None,
            None,
        )
        .await
        .unwrap()[0];
    let inventory = client
        .create(
            "stock.inventory",
            vec![json!({"location": storage, "lines": [["create", [{"product": product, "quantity": f64::from(units)}]]]})],
            None,
        )
        .await
        .unwrap();
    client
        .button("stock.inventory", "confirm", &inventory, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn shipping_what_is_in_stock_leaves_the_rest_backordered() {
    let erp = tryton().await;
    count_stock(&erp, "SKU-0029", "WH", 3).await;
    let booked = erp
        .book_order(
            &order(&unique("SHORT"), "ACC-0011", &[("SKU-0029", 7, "15.00")]),
            "k",
        )
        .await
        .unwrap();
    let shipment = erp.shipments_of(&booked.erp_ref).await.unwrap().remove(0);
    // Not enough to reserve it all: assigning alone is refused...
    let refused = erp
        .advance_shipment(&shipment.number, ShipmentStep::Assign)
        .await
        .unwrap_err();
    assert_eq!(refused.class, FailureClass::Permanent);
    assert!(refused.message.contains("not enough stock"), "{refused}");
    let partly = erp.order(&booked.erp_ref).await.unwrap();
    assert_eq!(partly.lines[0].backordered, 4, "{partly:?}");
    // ...shipping what is there sends 3 and leaves 4 on a backorder shipment.
    let sent = erp.ship_available(&shipment.number).await.unwrap();
    assert_eq!(sent.state, "done");
    assert_eq!(sent.lines, vec![(LineNo(1), 3)]);
    let read = erp.order(&booked.erp_ref).await.unwrap();
    assert_eq!(
        (read.lines[0].shipped, read.lines[0].backordered),
        (3, 4),
        "{read:?}"
    );
    let waiting: Vec<_> = erp
        .shipments_of(&booked.erp_ref)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.state == "waiting")
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].lines, vec![(LineNo(1), 4)]);
}

#[tokio::test]
async fn a_credit_limit_breach_is_permanent_with_trytons_message() {
    let erp = tryton().await;
    let account = AccountId::new("ACC-0003");
    let answer = erp
        .credit_check(&account, dec("150.00"), Currency::USD)
        .await
        .unwrap();
    assert!(!answer.approved);
    assert!(
        answer.available.is_some_and(|a| a <= dec("100.00")),
        "{answer:?}"
    );
    let report = erp.credit_status(&account).await.unwrap();
    assert_eq!(report.limit, Some(dec("100.00")));

    let reference = unique("CREDIT");
    let request = order(&reference, "ACC-0003", &[("SKU-0012", 3, "50.00")]);
    let failure = erp.book_order(&request, "k").await.unwrap_err();
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("UserError"));
    assert!(
        failure.message.contains("Tight Credit Boutique")
            && failure.message.contains("credit limit"),
        "{failure}"
    );
    // Retrying finds the quotation instead of creating another sale, and fails the same way.
    let again = erp.book_order(&request, "k").await.unwrap_err();
    assert_eq!(again.message, failure.message);
    assert_eq!(sales_with_reference(&erp, &reference).await.len(), 1);

    // The refused sale waits as a quotation: cancelling it is the before-confirmation path.
    let quotation = erp
        .client()
        .search_read(
            "sale.sale",
            json!([["reference", "=", reference.as_str()]]),
            0,
            None,
            None,
            &["number", "state"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(quotation[0].str("state").unwrap(), "quotation");
    let number = quotation[0].str("number").unwrap().to_owned();
    assert_eq!(
        erp.cancel_order(&number, "credit refused", "k")
            .await
            .unwrap(),
        CancelOutcome::Cancelled
    );
    assert!(erp.order(&number).await.unwrap().cancelled);
}

#[tokio::test]
async fn a_partial_shipment_then_the_rest_reach_the_feed_as_two_shipments() {
    let erp = tryton().await;
    let start = erp.feed_cursor_at(SystemClock.now() - time::Duration::seconds(1));
    let reference = unique("PARTIAL");
    let booked = erp
        .book_order(
            &order(
                &reference,
                "ACC-0007",
                &[("SKU-0013", 10, "12.50"), ("SKU-0023", 2, "3.00")],
            ),
            "k",
        )
        .await
        .unwrap();
    let shipments = erp.shipments_of(&booked.erp_ref).await.unwrap();
    assert_eq!(shipments.len(), 1);
    assert_eq!(shipments[0].state, "waiting");
    let first = erp
        .ship_partial(&shipments[0].number, &[(LineNo(1), 6), (LineNo(2), 2)])
        .await
        .unwrap();
    assert_eq!(first.state, "done");
    assert_eq!(first.lines, vec![(LineNo(1), 6), (LineNo(2), 2)]);

    let midway = erp.order(&booked.erp_ref).await.unwrap();
    assert_eq!(midway.lines[0].shipped, 6);
    assert_eq!(midway.lines[1].shipped, 2);
    let rest = erp.shipments_of(&booked.erp_ref).await.unwrap();
    let backorder = rest
        .iter()
        .find(|s| s.state == "waiting")
        .expect("a backorder shipment");
    assert_eq!(backorder.lines, vec![(LineNo(1), 4)]);
    let second = erp
        .advance_shipment(&backorder.number, ShipmentStep::Done)
        .await
        .unwrap();
    assert_eq!(second.state, "done");

    let done = erp.order(&booked.erp_ref).await.unwrap();
    assert_eq!(done.lines[0].shipped, 10);
    assert_eq!(done.lines[0].delivered, 10);
    assert_eq!(done.shipments.len(), 2);

    let changes = drain_feed(&erp, start).await;
    let mut shipped: BTreeMap<String, (Milestone, Vec<(LineNo, u32)>)> = BTreeMap::new();
    let mut booked_seen = false;
    for change in &changes {
        match &change.kind {
            ChangeKind::Shipment {
                reference: r,
                shipment,
            } if r.as_str() == reference => {
                let entry = shipped
                    .entry(shipment.id.clone())
                    .or_insert((shipment.milestone, shipment.lines.clone()));
                if shipment.milestone > entry.0 {
                    *entry = (shipment.milestone, shipment.lines.clone());
                }
            }
            ChangeKind::OrderBooked {
                reference: r,
                erp_ref,
            } if r.as_str() == reference => {
                assert_eq!(erp_ref, &booked.erp_ref);
                booked_seen = true;
            }
            _ => {}
        }
    }
    assert!(booked_seen, "the booking is in the feed");
    let mut quantities: Vec<Vec<(LineNo, u32)>> =
        shipped.values().map(|(_, l)| l.clone()).collect();
    quantities.sort();
    assert_eq!(
        quantities,
        vec![vec![(LineNo(1), 4)], vec![(LineNo(1), 6), (LineNo(2), 2)]],
        "{shipped:?}"
    );
    assert!(
        shipped.values().all(|(m, _)| *m == Milestone::Delivered),
        "{shipped:?}"
    );
    // A change may come twice (the inbox drops repeats), but always with the same content.
    let mut by_id: BTreeMap<&str, &ChangeKind> = BTreeMap::new();
    for change in &changes {
        if let Some(earlier) = by_id.insert(change.id.as_str(), &change.kind) {
            assert_eq!(
                earlier, &change.kind,
                "change {} differs between repeats",
                change.id
            );
        }
    }
}

#[tokio::test]
async fn a_return_gives_a_credit_note_with_tax_and_a_refund() {
    let erp = tryton().await;
    let start = erp.feed_cursor_at(SystemClock.now() - time::Duration::seconds(1));
    let reference = unique("RET");
    let unit_price = dec("20.00");
    let booked = erp
        .book_order(
            &order(&reference, "ACC-0004", &[("SKU-0014", 2, "20.00")]),
            "k",
        )
        .await
        .unwrap();
    let shipment = erp.shipments_of(&booked.erp_ref).await.unwrap().remove(0);
    erp.advance_shipment(&shipment.number, ShipmentStep::Done)
        .await
        .unwrap();
    let (on_hand_before, _) = available(&erp, "SKU-0014", "WH").await;

    let rma = unique("RMA");
    let request = ReturnRequest {
        rma: RmaId::new(rma.as_str()),
        order: OrderId::new(reference.as_str()),
        order_erp_ref: Some(booked.erp_ref.clone()),
        account: AccountId::new("ACC-0004"),
        lines: vec![(LineNo(1), Sku::new("SKU-0014"), 1)],
        reason: "Damaged".to_owned(),
    };
    let authorised = erp.create_return(&request, "rma-key").await.unwrap();
    let again = erp.create_return(&request, "rma-key").await.unwrap();
    assert_eq!(authorised, again, "authorising twice gives the same return");

    // More than shipped is refused.
    let mut too_many = request.clone();
    too_many.rma = RmaId::new(unique("RMA-BIG"));
    too_many.lines = vec![(LineNo(1), Sku::new("SKU-0014"), 5)];
    assert_eq!(
        erp.create_return(&too_many, "k").await.unwrap_err().class,
        FailureClass::Permanent
    );

    let receipt = erp
        .receive_return(&authorised.erp_ref, &[(LineNo(1), 1)], "receive-1")
        .await
        .unwrap();
    assert_eq!(receipt.lines, vec![(LineNo(1), 1)]);
    let repeated = erp
        .receive_return(&authorised.erp_ref, &[(LineNo(1), 1)], "receive-1")
        .await
        .unwrap();
    assert_eq!(repeated, receipt);
    let (on_hand_after, _) = available(&erp, "SKU-0014", "WH").await;
    assert_eq!(
        on_hand_after,
        on_hand_before + 1,
        "returned goods are back in stock"
    );

    let memo = erp
        .issue_credit_memo(&authorised.erp_ref, "memo-1")
        .await
        .unwrap();
    let expected = (unit_price * Decimal::ONE * dec("1.10")).round_dp(2);
    assert_eq!(memo.amount, expected);
    assert!(memo.number.starts_with("CN"), "{memo:?}");
    assert_eq!(
        erp.issue_credit_memo(&authorised.erp_ref, "memo-1")
            .await
            .unwrap(),
        memo
    );

    let refund = erp.issue_refund(&memo.id, "refund-1").await.unwrap();
    assert_eq!(refund.amount, expected);
    let repeated = erp.issue_refund(&memo.id, "refund-1").await.unwrap();
    assert_eq!(repeated, refund, "a paid credit note is not paid twice");

    let changes = drain_feed(&erp, start).await;
    let mine = |c: &&crossdock_ports::erp::ErpChange| match &c.kind {
        ChangeKind::ReturnAuthorised { rma: r, .. }
        | ChangeKind::ReturnReceived { rma: r, .. }
        | ChangeKind::CreditMemoIssued { rma: r, .. }
        | ChangeKind::RefundIssued { rma: r, .. } => r.as_str() == rma,
        _ => false,
    };
    let kinds: Vec<&str> = changes
        .iter()
        .filter(mine)
        .map(|c| match &c.kind {
            ChangeKind::ReturnAuthorised { .. } => "authorised",
            ChangeKind::ReturnReceived { .. } => "received",
            ChangeKind::CreditMemoIssued { credit_memo, .. } => {
                assert_eq!(credit_memo.amount, expected);
                "credit memo"
            }
            ChangeKind::RefundIssued { refund: r, .. } => {
                assert_eq!(r, &refund);
                "refund"
            }
            _ => "other",
        })
        .collect();
    for kind in ["authorised", "received", "credit memo", "refund"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn cancelling_after_confirmation_releases_the_stock() {
    let erp = tryton().await;
    let (_, forecast) = available(&erp, "SKU-0017", "WH").await;
    let booked = erp
        .book_order(
            &order(&unique("CANCEL"), "ACC-0008", &[("SKU-0017", 5, "8.00")]),
            "k",
        )
        .await
        .unwrap();
    assert_eq!(available(&erp, "SKU-0017", "WH").await.1, forecast - 5);
    let outcome = erp
        .cancel_order(&booked.erp_ref, "customer changed mind", "k")
        .await
        .unwrap();
    assert_eq!(outcome, CancelOutcome::Cancelled);
    assert_eq!(
        erp.cancel_order(&booked.erp_ref, "again", "k")
            .await
            .unwrap(),
        CancelOutcome::AlreadyCancelled
    );
    assert!(erp.order(&booked.erp_ref).await.unwrap().cancelled);
    assert_eq!(available(&erp, "SKU-0017", "WH").await.1, forecast);

    // Once goods left, cancelling is refused.
    let shipped = erp
        .book_order(
            &order(
                &unique("CANCEL-LATE"),
                "ACC-0008",
                &[("SKU-0017", 1, "8.00")],
            ),
            "k",
        )
        .await
        .unwrap();
    let shipment = erp.shipments_of(&shipped.erp_ref).await.unwrap().remove(0);
    erp.advance_shipment(&shipment.number, ShipmentStep::Ship)
        .await
        .unwrap();
    let refused = erp
        .cancel_order(&shipped.erp_ref, "too late", "k")
        .await
        .unwrap_err();
    assert_eq!(refused.class, FailureClass::Permanent);
    assert_eq!(refused.code.as_deref(), Some("AlreadyShipped"));
}

#[tokio::test]
async fn customer_prices_follow_the_party_price_list() {
    let erp = tryton().await;
    let items = [
        PriceRequest {
            sku: Sku::new("SKU-0001"),
            quantity: 1,
        },
        PriceRequest {
            sku: Sku::new("SKU-0009"),
            quantity: 5,
        },
    ];
    let today = SystemClock.now().date();
    let list = erp
        .prices(&AccountId::new("ACC-0001"), &items, today)
        .await
        .unwrap();
    let partner = erp
        .prices(&AccountId::new("ACC-0002"), &items, today)
        .await
        .unwrap();
    for (plain, discounted) in list.iter().zip(&partner) {
        assert_eq!(plain.unit_price, plain.list_price);
        assert_eq!(discounted.list_price, plain.list_price);
        assert_eq!(
            discounted.unit_price,
            (plain.list_price * dec("0.9")).round_dp(4)
        );
        assert!(discounted.unit_price < plain.unit_price);
        assert_eq!(discounted.currency, Currency::USD);
    }
    let unknown = erp
        .prices(
            &AccountId::new("ACC-0001"),
            &[PriceRequest {
                sku: Sku::new("NOPE-1"),
                quantity: 1,
            }],
            today,
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.class, FailureClass::Permanent);
    assert!(unknown.message.contains("NOPE-1"), "{unknown}");
}

#[tokio::test]
async fn customers_are_created_then_updated_by_code() {
    let erp = tryton().await;
    let code = unique("ACCT");
    let address = Address {
        street: "5 Pier Road".to_owned(),
        city: "Portland".to_owned(),
        postal_code: "97201".to_owned(),
        country: "US".to_owned(),
    };
    let mut account = Account {
        id: AccountId::new(code.as_str()),
        refs: ExternalRefs::default(),
        name: "Pier Road Traders".to_owned(),
        tier: CustomerTier::Silver,
        region: None,
        billing: Some(address.clone()),
        shipping: Some(address),
        currency: Currency::USD,
        credit_limit: None,
        open_balance: None,
        credit_status: None,
    };
    let created = erp.upsert_customer(&account, "k").await.unwrap();
    assert!(created.created);
    assert_eq!(created.erp_ref, code);
    account.name = "Pier Road Traders Ltd".to_owned();
    let updated = erp.upsert_customer(&account, "k").await.unwrap();
    assert!(!updated.created);
    let records = erp
        .client()
        .search_read(
            "party.party",
            json!([["code", "=", code]]),
            0,
            None,
            None,
            &["name", "addresses"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].str("name").unwrap(), "Pier Road Traders Ltd");
    assert_eq!(records[0].ids("addresses").unwrap().len(), 1);
    // The new customer can order at once.
    let booked = erp
        .book_order(
            &order(&unique("NEWCUST"), &code, &[("SKU-0022", 1, "7.00")]),
            "k",
        )
        .await;
    assert!(booked.is_ok(), "{booked:?}");
}

#[tokio::test]
async fn fulfilment_options_are_the_warehouses_that_can_serve() {
    let erp = tryton().await;
    let request = |sku: &str, quantity| FulfilmentRequest {
        account: AccountId::new("ACC-0009"),
        region: None,
        lines: vec![(Sku::new(sku), quantity)],
    };
    let both = erp
        .fulfilment_options(&request("SKU-0018", 2))
        .await
        .unwrap();
    let locations: Vec<&str> = both
        .iter()
        .flat_map(|o| o.locations.iter().map(LocationId::as_str))
        .collect();
    assert_eq!(locations, vec!["WH", "WH2"]);
    assert!(
        both.iter()
            .all(|o| o.method == FulfilmentMethod::ShipFromWarehouse)
    );
    // SKU-0030 is stocked only in WH.
    let only_wh = erp
        .fulfilment_options(&request("SKU-0030", 2))
        .await
        .unwrap();
    assert_eq!(
        only_wh,
        vec![FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![LocationId::new("WH")],
            promised_date: None,
        }]
    );
    // Nobody has that many: the first warehouse ships, and Tryton backorders the rest.
    assert_eq!(
        erp.fulfilment_options(&request("SKU-0018", 1_000_000))
            .await
            .unwrap(),
        vec![FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![LocationId::new("WH")],
            promised_date: None,
        }]
    );

    // Booking on the chosen option ships from that warehouse.
    let mut booking = order(&unique("WH2"), "ACC-0009", &[("SKU-0018", 2, "11.00")]);
    booking.fulfilment = Some(both[1].clone());
    let booked = erp.book_order(&booking, "k").await.unwrap();
    assert_eq!(booked.allocations[0].location.as_str(), "WH2");
    let shipments = erp.shipments_of(&booked.erp_ref).await.unwrap();
    assert_eq!(
        shipments[0].location.as_ref().map(LocationId::as_str),
        Some("WH2")
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * (sorted.len() as f64 - 1.0)).round();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    sorted[rank as usize]
}

async fn timed<T>(future: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let value = future.await;
    (value, started.elapsed())
}

#[tokio::test]
async fn booking_latency_over_twenty_orders() {
    let erp = tryton().await;
    // Warm the product cache and the server.
    for _ in 0..2 {
        erp.book_order(
            &order(
                &unique("WARM"),
                "ACC-0010",
                &[("SKU-0015", 1, "4.00"), ("SKU-0016", 1, "6.00")],
            ),
            "k",
        )
        .await
        .unwrap();
    }
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..20 {
        let request = order(
            &unique("LAT"),
            "ACC-0010",
            &[("SKU-0015", 2, "4.00"), ("SKU-0016", 1, "6.00")],
        );
        let (result, elapsed) = timed(erp.book_order(&request, "k")).await;
        assert!(result.unwrap().created);
        latencies.push(elapsed);
    }
    let total = started.elapsed();
    latencies.sort();
    println!(
        "Tryton booking latency over {} orders: p50 {:?}, p99 {:?}, max {:?}; {:.2} bookings/s",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len() as f64 / total.as_secs_f64()
    );
    assert_eq!(latencies.len(), 20);
}
