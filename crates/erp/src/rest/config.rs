//! Configuration of the REST ERP adapter: the ERP's base URL and, per port operation, the
//! HTTP calls to make (method, path template, query and body as jq filters) and the jq
//! mapping of the answers to the port's JSON. TOML-friendly; unknown keys are refused.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::jq::Program;
use super::template::PathTemplate;

fn default_timeout_secs() -> u64 {
    10
}

fn default_connect_timeout_secs() -> u64 {
    2
}

fn default_idempotency_header() -> String {
    "Idempotency-Key".to_owned()
}

fn default_name() -> String {
    "rest".to_owned()
}

fn default_fan_out() -> usize {
    4
}

/// A REST ERP: where it is and how each port operation maps to its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Adapter name in logs and metrics.
    #[serde(default = "default_name")]
    pub name: String,
    /// Base URL every call path is appended to, e.g. `http://127.0.0.1:7070`.
    pub base_url: String,
    /// Limit for one call, from connecting to the end of the answer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Limit for opening a connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Most calls in flight at once for an operation with `each`.
    #[serde(default = "default_fan_out")]
    pub fan_out: usize,
    /// Headers sent with every call (e.g. an API key).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header carrying the engine's idempotency key on every non-GET call of a write
    /// operation; empty to send none.
    #[serde(default = "default_idempotency_header")]
    pub idempotency_header: String,
    /// How error answers (non-2xx) are read.
    #[serde(default)]
    pub errors: Errors,
    /// The port operations.
    pub operations: Operations,
}

/// How to read an error answer. Each filter gets `{status, headers, body}` (`body` is the
/// JSON answer, or its text when it is not JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// jq filter giving the ERP's message (default: a piece of the body).
    #[serde(default)]
    pub message: Option<String>,
    /// jq filter giving the ERP's error code (default: the status).
    #[serde(default)]
    pub code: Option<String>,
    /// jq filter giving the failure class — `transient`, `throttled`, `conflict`,
    /// `permanent` or `unknown` — or null for the default by status (429 throttled with
    /// `Retry-After`, 408/425/5xx transient, other 4xx permanent).
    #[serde(default)]
    pub class: Option<String>,
}

/// The port operations. One left out answers a permanent "not configured" failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    /// Input `{account, items: [{sku, quantity}], on: "YYYY-MM-DD"}` → `[PriceQuote]`.
    pub prices: Option<Operation>,
    /// Input `{skus: [sku], location}` → `[InventoryLevel]`.
    pub availability: Option<Operation>,
    /// Input `{account, amount, currency}` → `CreditAnswer`.
    pub credit_check: Option<Operation>,
    /// Input `{account, region, lines: [{sku, quantity}]}` →
    /// `[{method, locations, promised_date}]`.
    pub fulfilment_options: Option<Operation>,
    /// Input: the booking (`reference`, `sf_number`, `account`, `currency`,
    /// `lines: [{line, sku, quantity, unit_price}]`, `fulfilment: {method, locations,
    /// promised_date}`, `region`) → `BookingConfirmation`.
    pub book_order: Option<Operation>,
    /// Input `{erp_ref, reason}` → `{"outcome": "cancelled" | "already_cancelled"}`.
    pub cancel_order: Option<Operation>,
    /// Input `{erp_ref}` → `ErpOrder`.
    pub order: Option<Operation>,
    /// Input `{cursor, limit}` → `ChangeBatch`.
    pub changes: Option<Operation>,
    /// Input `{account: Account}` → `CustomerRef`.
    pub upsert_customer: Option<Operation>,
    /// Input `{account}` → `CreditReport`.
    pub credit_status: Option<Operation>,
    /// Input `{rma, order, order_erp_ref, account, lines: [{line, sku, quantity}], reason}`
    /// → `ReturnAuthorisation`.
    pub create_return: Option<Operation>,
    /// Input `{erp_rma, lines: [{line, quantity}]}` → `ReturnReceipt`.
    pub receive_return: Option<Operation>,
    /// Input `{erp_rma}` → `CreditMemo`.
    pub issue_credit_memo: Option<Operation>,
    /// Input `{credit_memo}` → `Refund`.
    pub issue_refund: Option<Operation>,
}

impl Operations {
    /// Every configured operation by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Operation)> {
        [
            ("prices", &self.prices),
            ("availability", &self.availability),
            ("credit_check", &self.credit_check),
            ("fulfilment_options", &self.fulfilment_options),
            ("book_order", &self.book_order),
            ("cancel_order", &self.cancel_order),
            ("order", &self.order),
            ("changes", &self.changes),
            ("upsert_customer", &self.upsert_customer),
            ("credit_status", &self.credit_status),
            ("create_return", &self.create_return),
            ("receive_return", &self.receive_return),
            ("issue_credit_memo", &self.issue_credit_memo),
            ("issue_refund", &self.issue_refund),
        ]
        .into_iter()
        .filter_map(|(name, op)| op.as_ref().map(|op| (name, op)))
    }
}

/// One port operation: calls made in order, then a mapping of what they answered.
///
/// Every filter and placeholder sees the *context*: the operation's input fields at the top
/// level, `idempotency_key` (writes), `item` (with `each`), and `calls.<name>` =
/// `{status, headers, body}` of each call made so far; the mapping also sees `status`,
/// `headers` and `body` of the last call made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// jq filter producing one value per repetition: the calls and the mapping run once per
    /// value (bound as `item`), and the mapped results are concatenated.
    #[serde(default)]
    pub each: Option<String>,
    /// The calls, in order.
    pub call: Vec<Call>,
    /// jq filter mapping the context to the port's JSON answer.
    pub response: String,
    /// jq filter that, when it gives a string, turns a 2xx answer into a permanent refusal
    /// with that message (for ERPs that refuse inside a 200).
    #[serde(default)]
    pub refusal: Option<String>,
}

/// One HTTP call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// Name under `calls` in the context (default `call<N>`, from 1).
    #[serde(default)]
    pub name: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path after the base URL; `{dotted.path}` placeholders take context values, encoded
    /// as one path segment.
    pub path: String,
    /// jq filter giving an object of query parameters (null values are left out).
    #[serde(default)]
    pub query: Option<String>,
    /// jq filter giving the JSON body.
    #[serde(default)]
    pub body: Option<String>,
    /// jq filter deciding whether to make the call at all (e.g. only when a look-up found
    /// nothing).
    #[serde(default)]
    pub when: Option<String>,
    /// Non-2xx statuses that are answers rather than failures (e.g. 404 of a look-up).
    #[serde(default)]
    pub accept: Vec<u16>,
}

impl Config {
    /// Reads a configuration from TOML.
    ///
    /// # Errors
    /// The TOML is malformed or has unknown or missing keys.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Pure check (no I/O): every filter compiles, every path template parses, methods are
    /// known; all problems at once.
    ///
    /// # Errors
    /// One message per problem, naming the operation and the key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            problems.push(format!(
                "base_url must be an http:// or https:// URL, got {:?}",
                self.base_url
            ));
        }
        if self.timeout_secs == 0 {
            problems.push("timeout_secs must be at least 1".to_owned());
        }
        if self.fan_out == 0 {
            problems.push("fan_out must be at least 1".to_owned());
        }
        let mut check = |what: String, code: Option<&String>| {
            if let Some(code) = code
                && let Err(e) = Program::compile(code)
            {
                problems.push(format!("{what}: {e}"));
            }
        };
        check("errors.message".to_owned(), self.errors.message.as_ref());
        check("errors.code".to_owned(), self.errors.code.as_ref());
        check("errors.class".to_owned(), self.errors.class.as_ref());
        for (name, op) in self.operations.iter() {
            check(format!("operations.{name}.each"), op.each.as_ref());
            check(format!("operations.{name}.response"), Some(&op.response));
            check(format!("operations.{name}.refusal"), op.refusal.as_ref());
            for (index, call) in op.call.iter().enumerate() {
                let at = format!("operations.{name}.call[{index}]");
                check(format!("{at}.query"), call.query.as_ref());
                check(format!("{at}.body"), call.body.as_ref());
                check(format!("{at}.when"), call.when.as_ref());
            }
        }
        for (name, op) in self.operations.iter() {
            if op.call.is_empty() {
                problems.push(format!("operations.{name}: at least one call is needed"));
            }
            for (index, call) in op.call.iter().enumerate() {
                let at = format!("operations.{name}.call[{index}]");
                if reqwest::Method::from_bytes(call.method.to_ascii_uppercase().as_bytes()).is_err()
                {
                    problems.push(format!(
                        "{at}.method: {:?} is not an HTTP method",
                        call.method
                    ));
                }
                if let Err(e) = PathTemplate::parse(&call.path) {
                    problems.push(format!("{at}.path: {e}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Limit for one call.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Limit for connecting.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
}
