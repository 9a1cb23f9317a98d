//! HTTP client of the simulator's API: calls named by operation, the simulator's error body
//! (`{"error": {"code", "message"}}`) turned into failure classes, typed answers, and the
//! line-number map between the simulator's lines and the hub's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crossdock_ports::{Failure, FailureClass};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire;
use crate::rest::http::{self, Answer, Http};

/// Most orders whose line map is kept; past it the cache starts afresh (a miss costs one read).
const LINE_MAP_CAPACITY: usize = 10_000;

/// The simulator's line number → the hub's line number, for one order.
pub(crate) type LineMap = BTreeMap<u32, u32>;

/// A decoded answer and what the transport said about it.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    /// The answer.
    pub value: T,
    /// HTTP status.
    pub status: u16,
    /// Whether the simulator replayed an earlier answer for the same idempotency key.
    pub replayed: bool,
}

/// Client of one simulator.
#[derive(Debug)]
pub(crate) struct Client {
    http: Http,
    /// Order number → line map. Filled by bookings, order reads and `order.booked` events.
    lines: Mutex<HashMap<String, Arc<LineMap>>>,
    /// RMA number → order number.
    rmas: Mutex<HashMap<String, String>>,
}

impl Client {
    pub fn new(http: Http) -> Self {
        Self {
            http,
            lines: Mutex::new(HashMap::new()),
            rmas: Mutex::new(HashMap::new()),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// One call; a non-2xx answer becomes a failure of its class with the simulator's message.
    pub async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Failure> {
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| ("idempotency-key", key))
            .into_iter()
            .collect();
        let answer = self.http.send(op, method, path, body, &headers).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(failure_of(op, &answer))
        }
    }

    /// One call with a typed answer.
    pub async fn fetch<T: DeserializeOwned>(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<T>, Failure> {
        let answer = self.call(op, method, path, body, idempotency_key).await?;
        Ok(Reply {
            value: http::decode(op, &answer.body)?,
            status: answer.status,
            replayed: answer.header("idempotent-replayed") == Some("true"),
        })
    }

    /// `GET` with a typed answer.
    pub async fn get<T: DeserializeOwned>(&self, op: &str, path: &str) -> Result<T, Failure> {
        Ok(self.fetch(op, Method::GET, path, None, None).await?.value)
    }

    /// Remembers an order's line map.
    pub fn remember_lines(&self, order: &str, map: LineMap) -> Arc<LineMap> {
        let map = Arc::new(map);
        let mut cache = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= LINE_MAP_CAPACITY && !cache.contains_key(order) {
            cache.clear();
        }
        cache.insert(order.to_owned(), map.clone());
        map
    }

    /// Remembers the line map of an order the simulator returned.
    pub fn remember_order(&self, order: &wire::Order) -> Arc<LineMap> {
        self.remember_lines(
            &order.number,
            order
                .lines
                .iter()
                .map(|l| (l.line, hub_line(l.line, l.line_ref.as_deref())))
                .collect(),
        )
    }

    /// The line map of an order: from the cache, else read from the simulator.
    pub async fn line_map(&self, order: &str) -> Result<Arc<LineMap>, Failure> {
        let cached = self
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(order)
            .cloned();
        if let Some(map) = cached {
            return Ok(map);
        }
        let read: wire::Order = self
            .get(
                "get_order",
                &format!("/api/v1/orders/{}", http::encode(order)),
            )
            .await?;
        Ok(self.remember_order(&read))
    }

    /// Remembers which order an RMA belongs to.
    pub fn remember_rma(&self, rma: &str, order: &str) {
        let mut cache = self.rmas.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= LINE_MAP_CAPACITY && !cache.contains_key(rma) {
            cache.clear();
        }
        cache.insert(rma.to_owned(), order.to_owned());
    }

    /// The order number of an RMA: from the cache, else read from the simulator.
    pub async fn rma_order(&self, rma: &str) -> Result<String, Failure> {
        let cached = self
            .rmas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(rma)
            .cloned();
        if let Some(order) = cached {
            return Ok(order);
        }
        let read: wire::Rma = self
            .get("get_rma", &format!("/api/v1/rmas/{}", http::encode(rma)))
            .await?;
        self.remember_rma(&read.number, &read.order);
        Ok(read.order)
    }
}

/// The hub's line number of a simulator line: the `line_ref` the booking sent, else the
/// simulator's own number (lines booked by someone else).
pub(crate) fn hub_line(line: u32, line_ref: Option<&str>) -> u32 {
    line_ref
        .and_then(|r| r.trim().parse::<u32>().ok())
        .unwrap_or(line)
}

/// The failure a non-2xx answer stands for: class by status, message and code from the
/// simulator's error body when it has one.
pub(crate) fn failure_of(op: &str, answer: &Answer) -> Failure {
    let retry_after = http::retry_after(answer);
    let class = http::class_of_status(answer.status, retry_after);
    let (message, code) = match serde_json::from_slice::<wire::ErrorBody>(&answer.body) {
        Ok(body) => (body.error.message, body.error.code),
        Err(_) => (
            format!("HTTP {}: {}", answer.status, http::snippet(&answer.body)),
            answer.status.to_string(),
        ),
    };
    let message = match class {
        FailureClass::Permanent => message,
        _ => format!("{op}: {message}"),
    };
    Failure::new(class, message).with_code(code)
}
