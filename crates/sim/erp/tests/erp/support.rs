//! Test helpers: start a simulator, call it over real HTTP, read the feed.

use std::time::Duration;

use bytes::Bytes;
use crossdock_sim_erp::{Config, Handle, Simulator};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A running simulator with an HTTP client pointed at it.
pub struct TestErp {
    pub handle: Handle,
    pub base: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub fn client(pool: bool) -> Client<HttpConnector, Full<Bytes>> {
    let mut builder = Client::builder(TokioExecutor::new());
    if !pool {
        builder.pool_max_idle_per_host(0);
    }
    builder.build_http()
}

/// Sends one request; `Err` for connection-level failures.
pub async fn send(
    http: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .map_err(|e| e.to_string())?;
    let response = http.request(request).await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        headers,
        body,
        raw,
    })
}

impl TestErp {
    pub async fn start(config: Config) -> Self {
        let handle = Simulator::start(config).await.expect("simulator starts");
        let base = handle.base_url();
        Self {
            handle,
            base,
            http: client(true),
        }
    }

    /// Default test configuration: manual clock, everyone pays on time.
    pub fn config(seed: u64) -> Config {
        let mut config = Config {
            seed,
            ..Config::default()
        };
        config.payments.on_time_share = 1.0;
        config.payments.late_share = 0.0;
        config
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let text = body.map(|b| b.to_string());
        send(
            &self.http,
            method,
            &format!("{}{path}", self.base),
            text.as_deref(),
            headers,
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn raw_post(&self, path: &str, body: &str) -> Reply {
        send(
            &self.http,
            Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
            &[],
        )
        .await
        .expect("answer")
    }

    /// Advances the manual clock through the admin API.
    pub async fn advance(&self, ms: i64) {
        let reply = self.post("/admin/clock/advance", json!({ "ms": ms })).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    pub async fn set_stock(&self, sku: &str, location: &str, on_hand: u64) {
        let reply = self
            .put(
                &format!("/admin/stock/{sku}/{location}"),
                json!({ "on_hand": on_hand }),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    pub async fn rich_customer(&self, external_ref: &str) {
        let reply = self
            .put(
                &format!("/api/v1/customers/{external_ref}"),
                json!({ "name": "Test Buyer", "credit_limit": "10000000.00", "region": "NORTH", "tier": "Gold" }),
            )
            .await;
        assert!(
            reply.status == 200 || reply.status == 201,
            "{:?}",
            reply.body
        );
    }

    /// Every delivery of the poll feed, page by page, and the raw page bodies.
    pub async fn whole_feed(&self) -> (Vec<Value>, Vec<u8>) {
        let mut after = 0u64;
        let mut all = Vec::new();
        let mut raw = Vec::new();
        loop {
            let reply = self
                .get(&format!("/api/v1/events?after={after}&limit=7"))
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            raw.extend_from_slice(&reply.raw);
            let events = reply.body["events"].as_array().cloned().unwrap_or_default();
            all.extend(events);
            after = reply.body["next_after"].as_u64().expect("next_after");
            if !reply.body["has_more"].as_bool().unwrap_or(false) {
                return (all, raw);
            }
        }
    }

    pub async fn events_of_type(&self, kind: &str) -> Vec<Value> {
        let (all, _) = self.whole_feed().await;
        all.into_iter().filter(|e| e["type"] == kind).collect()
    }
}

/// A decimal from a JSON string field.
pub fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {value}"))
}

/// Rounds to cents, half away from zero, as an accountant would.
pub fn round_cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// A fresh directory under the system temp dir, removed when dropped (kept when the test
/// panicked, for a look at what was left).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "crossdock-sim-erp-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.0.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Polls a condition until it holds or the time is up.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut condition: F) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
