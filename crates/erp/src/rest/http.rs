//! HTTP plumbing shared by the HTTP-based ERP adapters: one `reqwest` client per adapter,
//! calls that name their port operation, failure classes from transport errors and status
//! codes, `Retry-After`, and decoding that names the field an answer got wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use crossdock_ports::{Failure, FailureClass};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Longest piece of an unexpected body quoted in a failure message.
const SNIPPET: usize = 200;

/// A connection pool to one base URL.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case (the last value of a repeated header wins).
    pub headers: BTreeMap<String, String>,
    /// Raw body.
    pub body: Bytes,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

impl Http {
    /// A client for `base` (no trailing slash needed) with the given limits.
    ///
    /// # Errors
    /// A permanent failure when the TLS backend cannot start.
    pub fn new(base: &str, timeout: Duration, connect_timeout: Duration) -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| Failure::permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// Base URL without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request. Only transport problems are failures here; the caller classifies
    /// the status.
    ///
    /// # Errors
    /// Transient for timeouts, refused or reset connections and cut bodies; permanent for a
    /// request that cannot be built (a bad URL).
    pub async fn send(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.request(method.clone(), &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_failure(op, &method, &url, self.timeout, &e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_failure(op, &method, &url, self.timeout, &e))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

fn transport_failure(
    op: &str,
    method: &Method,
    url: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> Failure {
    if error.is_builder() {
        return Failure::permanent(format!("{op}: cannot build {method} {url}: {error}"))
            .with_code("bad_request_url");
    }
    let (what, code) = if error.is_timeout() {
        (
            format!("no answer within {} s", timeout.as_secs_f64()),
            "timeout",
        )
    } else if error.is_connect() {
        ("cannot connect".to_owned(), "connect")
    } else {
        ("the connection failed".to_owned(), "transport")
    };
    Failure::transient(format!("{op}: {what} ({method} {url}): {error}")).with_code(code)
}

/// The wait a `Retry-After` header asks for (delta-seconds; an HTTP date is not honoured).
pub(crate) fn retry_after(answer: &Answer) -> Option<Duration> {
    answer
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The failure class of a non-2xx status when the ERP's body says nothing more:
/// 429 throttled (with `Retry-After`), 408/425/5xx transient, other 4xx permanent (a business
/// refusal or a request the ERP will never accept), anything else unknown.
pub(crate) fn class_of_status(status: u16, retry_after: Option<Duration>) -> FailureClass {
    match status {
        429 => FailureClass::Throttled { retry_after },
        408 | 425 | 500..=599 => FailureClass::Transient,
        400..=499 => FailureClass::Permanent,
        _ => FailureClass::Unknown,
    }
}

/// Up to [`SNIPPET`] characters of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut cut: String = text.chars().take(SNIPPET).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Decodes a JSON body into `T`; a body of the wrong shape is an unknown failure that names
/// the operation and the offending field.
///
/// # Errors
/// Unknown: not JSON, or a field missing or of the wrong type.
pub(crate) fn decode<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, Failure> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| shape_failure(op, "answer", &e))?;
    deserializer.end().map_err(|e| {
        Failure::unknown(format!(
            "{op}: the answer has trailing data after the JSON: {e}"
        ))
        .with_code("malformed_answer")
    })?;
    Ok(value)
}

/// Decodes a JSON value (part of an answer) into `T`; `what` names the part in messages.
///
/// # Errors
/// Unknown: a field missing or of the wrong type.
pub(crate) fn decode_value<T: DeserializeOwned>(
    op: &str,
    what: &str,
    value: &Value,
) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|e| shape_failure(op, what, &e))
}

fn shape_failure(
    op: &str,
    what: &str,
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> Failure {
    let path = error.path().to_string();
    let inner = error.inner();
    let message = if inner.is_syntax() || inner.is_eof() {
        format!("{op}: the {what} is not valid JSON: {inner}")
    } else if path == "." {
        format!("{op}: the {what} has the wrong shape: {inner}")
    } else {
        format!("{op}: {what} field `{path}`: {inner}")
    };
    Failure::unknown(message).with_code("malformed_answer")
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved
/// characters).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
