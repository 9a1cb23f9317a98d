//! Idempotent writes: the first request with an `Idempotency-Key` claims it (an atomic
//! `kv_insert`), does the work and records its answer; a repeat with the same key and body gets
//! that answer again (`Idempotent-Replayed: true`), a repeat with another body gets 422, and a
//! repeat while the first is still working waits for its answer.
//!
//! Bodies are compared in canonical form (object keys sorted, no insignificant whitespace), so
//! the same order serialized differently — indented, keys in another order — is the same
//! request; any difference in a value is another.
//!
//! Keys are scoped per client, so two clients cannot collide or read each other's answers.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::keys::hex;
use crate::problem::Problem;
use crate::state::AppState;

/// Store namespace of idempotency records.
pub const NAMESPACE: &str = "idempotency";

/// Header naming the key.
pub const HEADER: &str = "idempotency-key";

/// Header set on replayed answers.
pub const REPLAYED: &str = "idempotent-replayed";

/// A stored claim or answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// A request is working on it.
    Claimed {
        /// Fingerprint of the request body.
        fingerprint: String,
        /// When claimed (Unix seconds on the hub's clock).
        at: i64,
    },
    /// The first answer.
    Answered {
        /// Fingerprint of the request body.
        fingerprint: String,
        /// HTTP status.
        status: u16,
        /// Body (JSON).
        body: Value,
        /// Content type.
        content_type: String,
    },
}

/// What to do with a request.
#[derive(Debug)]
pub enum Claim {
    /// This request owns the key: do the work, then [`finish`] (or [`release`] on failure).
    Owned(String),
    /// The answer to send (a replay or a refusal).
    Answer(Response),
}

/// The key of a request; 422 when missing or malformed.
///
/// # Errors
/// 422 `idempotency-key-required`.
pub fn key_of(headers: &HeaderMap) -> Result<String, Problem> {
    let key = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::of(
            "idempotency-key-required",
            "send an Idempotency-Key header (1-200 visible ASCII characters) with every submission",
        ));
    }
    Ok(key.to_owned())
}

/// SHA-256 of the body's canonical JSON form, hex (of the bytes as received when the body is
/// not JSON).
pub fn fingerprint(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut text = Vec::with_capacity(body.len());
            write_canonical(&value, &mut text);
            hex(&Sha256::digest(&text))
        }
        Err(_) => hex(&Sha256::digest(body)),
    }
}

/// Writes `value` with object keys sorted bytewise at every level and no whitespace; strings
/// and numbers as `serde_json` renders them.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Rendering a scalar `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Claims `key` for `client`, or answers from an earlier request with it.
///
/// # Errors
/// 503 when the store fails.
pub async fn claim(
    state: &AppState,
    client: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Claim, Problem> {
    let record_key = format!("{client}/{key}");
    let store = state.store();
    let now = state.engine.clock().now();
    let claimed = serde_json::to_value(Record::Claimed {
        fingerprint: fingerprint.to_owned(),
        at: now.unix_timestamp(),
    })
    .map_err(|e| Problem::internal(e.to_string()))?;
    if store
        .kv_insert(NAMESPACE, &record_key, claimed.clone(), now)
        .await?
    {
        return Ok(Claim::Owned(record_key));
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(state.config().idempotency_wait_ms);
    let mut pause = Duration::from_millis(5);
    loop {
        let record = store
            .kv_get(NAMESPACE, &record_key)
            .await?
            .and_then(|v| serde_json::from_value::<Record>(v).ok());
        match record {
            None => {
                // The first request gave up its claim: try to take it.
                if store
                    .kv_insert(NAMESPACE, &record_key, claimed.clone(), now)
                    .await?
                {
                    return Ok(Claim::Owned(record_key));
                }
            }
            Some(
                Record::Claimed { fingerprint: f, .. } | Record::Answered { fingerprint: f, .. },
            ) if f != fingerprint => {
                return Ok(Claim::Answer(reused(key)));
            }
            Some(Record::Answered {
                status,
                body,
                content_type,
                ..
            }) => return Ok(Claim::Answer(replay(status, &body, &content_type))),
            Some(Record::Claimed { at, .. }) => {
                let age = state.engine.clock().now().unix_timestamp() - at;
                if age > i64::try_from(state.config().idempotency_claim_secs).unwrap_or(i64::MAX) {
                    store
                        .kv_put(NAMESPACE, &record_key, claimed.clone(), now)
                        .await?;
                    return Ok(Claim::Owned(record_key));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Claim::Answer(
                Problem::of(
                    "idempotency-in-progress",
                    format!("a request with the Idempotency-Key `{key}` is still being processed"),
                )
                .with_retry_after(1)
                .into_response(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Records the answer of an owned key. Answers of class 5xx are not recorded (the key is
/// released so the client can retry).
///
/// # Errors
/// 503 when the store fails.
pub async fn finish(
    state: &AppState,
    record_key: &str,
    fingerprint: &str,
    status: StatusCode,
    body: &Value,
    content_type: &str,
) -> Result<(), Problem> {
    let store = state.store();
    if status.is_server_error() {
        store.kv_delete(NAMESPACE, record_key).await?;
        return Ok(());
    }
    let record = serde_json::to_value(Record::Answered {
        fingerprint: fingerprint.to_owned(),
        status: status.as_u16(),
        body: body.clone(),
        content_type: content_type.to_owned(),
    })
    .map_err(|e| Problem::internal(e.to_string()))?;
    store
        .kv_put(NAMESPACE, record_key, record, state.engine.clock().now())
        .await?;
    Ok(())
}

/// Gives up an owned key without an answer.
pub async fn release(state: &AppState, record_key: &str) {
    if let Err(error) = state.store().kv_delete(NAMESPACE, record_key).await {
        tracing::warn!(%error, "Could not release an idempotency claim; it expires");
    }
}

fn reused(key: &str) -> Response {
    Problem::of(
        "idempotency-key-reused",
        format!("the Idempotency-Key `{key}` was used for a different request body"),
    )
    .into_response()
}

fn replay(status: u16, body: &Value, content_type: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_required_and_bounded() {
        let mut headers = HeaderMap::new();
        assert!(key_of(&headers).is_err());
        headers.insert(HEADER, HeaderValue::from_static("order-1"));
        assert_eq!(key_of(&headers).ok().as_deref(), Some("order-1"));
        headers.insert(HEADER, HeaderValue::from_static("has space"));
        assert!(key_of(&headers).is_err());
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        assert_eq!(fingerprint(b"{}"), fingerprint(b"{}"));
        assert_ne!(fingerprint(b"{\"a\":1}"), fingerprint(b"{\"a\":2}"));
        assert_ne!(fingerprint(b"[1,2]"), fingerprint(b"[2,1]"));
        assert_ne!(fingerprint(b"{\"a\":\"1\"}"), fingerprint(b"{\"a\":1}"));
    }

    #[test]
    fn fingerprints_ignore_whitespace_and_key_order_at_every_level() {
        let compact = br#"{"account":"ACC-1","lines":[{"sku":"S-1","quantity":2}],"meta":{"a":1,"b":[true,null]}}"#;
        let pretty = b"{\n  \"meta\": { \"b\": [ true, null ], \"a\": 1 },\n  \"lines\": [ { \"quantity\": 2, \"sku\": \"S-1\" } ],\n  \"account\": \"ACC-1\"\n}\n";
        assert_eq!(fingerprint(compact), fingerprint(pretty));
        let escaped = br#"{"account":"ACC\u002d1","lines":[{"sku":"S-1","quantity":2}],"meta":{"a":1,"b":[true,null]}}"#;
        assert_eq!(fingerprint(compact), fingerprint(escaped));
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": { "d": 1, "c": [ 2 , "x y" ] }, "a": null }"#)
                .expect("json");
        let mut text = Vec::new();
        write_canonical(&value, &mut text);
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            r#"{"a":null,"b":{"c":[2,"x y"],"d":1}}"#
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_fingerprinted_as_received() {
        assert_eq!(fingerprint(b"not json"), hex(&Sha256::digest(b"not json")));
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not  json"));
    }
}
