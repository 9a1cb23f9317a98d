//! Webhook delivery: each subscription has its own delivery stream (with the duplicate and
//! reorder knobs) and one worker that POSTs deliveries in stream order, signed with
//! HMAC-SHA256 over `"{timestamp}.{body}"`, retrying failures with exponential backoff and
//! dead-lettering an event after the last attempt.
//!
//! Headers: `X-Erp-Timestamp` (simulated Unix seconds), `X-Erp-Signature: sha256=<hex>`,
//! `X-Erp-Event-Id`, `X-Erp-Event-Type`, `X-Erp-Webhook-Id`, `X-Erp-Delivery-Attempt`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Uri};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::error::{ApiError, Code, Result};
use crate::feed::Stream;
use crate::server::Shared;
use crate::state::Webhook;

/// Signature of a delivery: hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed by the secret.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a signature header value (`sha256=<hex>`) in constant time.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let expected = sign(secret, timestamp, body);
    expected.len() == hex.len()
        && expected
            .bytes()
            .zip(hex.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Public description of a subscription (the secret is never shown).
pub(crate) fn describe(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "event_types": webhook.event_types,
        "next_position": webhook.next_position,
        "last_position": webhook.stream.last_position(),
        "pending": webhook.pending(),
        "held": webhook.stream.held(),
        "delivered": webhook.delivered,
        "failed_attempts": webhook.failed_attempts,
        "dead_lettered": webhook.dead_lettered,
        "last_error": webhook.last_error,
    })
}

/// Registers a subscription (local URLs only) and starts its worker.
///
/// # Errors
/// `invalid_request` for a URL that is not `http://` on the loopback interface.
pub(crate) fn register(
    shared: &Arc<Shared>,
    url: String,
    secret: String,
    event_types: Option<Vec<String>>,
) -> Result<u64> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ApiError::bad_request(Code::InvalidRequest, format!("not a URL: {url:?}")))?;
    let local = matches!(uri.host(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if uri.scheme_str() != Some("http") || !local {
        return Err(ApiError::bad_request(
            Code::InvalidRequest,
            "webhook URLs must be http:// on 127.0.0.1 or localhost",
        ));
    }
    let notify = Arc::new(Notify::new());
    let id = {
        let mut state = shared.lock();
        state.counters.webhook += 1;
        let id = state.counters.webhook;
        let retention = state.config.feed_retention;
        state.webhooks.insert(
            id,
            Webhook {
                id,
                url,
                secret,
                event_types,
                stream: Stream::new(retention),
                next_position: 1,
                delivered: 0,
                failed_attempts: 0,
                dead_lettered: 0,
                last_error: None,
                notify: notify.clone(),
                active: true,
            },
        );
        id
    };
    spawn_worker(shared, id, notify);
    Ok(id)
}

/// Starts the delivery workers of subscriptions restored from a data directory.
pub(crate) fn resume(shared: &Arc<Shared>) {
    let restored: Vec<(u64, Arc<Notify>)> = shared
        .lock()
        .webhooks
        .values()
        .map(|w| (w.id, w.notify.clone()))
        .collect();
    for (id, notify) in restored {
        spawn_worker(shared, id, notify);
    }
}

fn spawn_worker(shared: &Arc<Shared>, id: u64, notify: Arc<Notify>) {
    let worker_shared = shared.clone();
    shared
        .tracker
        .spawn(async move { deliver_forever(worker_shared, id, notify).await });
}

enum Next {
    Gone,
    Wait,
    Send {
        position: u64,
        body: Vec<u8>,
        event_id: String,
        kind: String,
        url: String,
        secret: String,
    },
}

fn next_delivery(shared: &Shared, id: u64) -> Next {
    let mut state = shared.lock();
    let Some(webhook) = state.webhooks.get_mut(&id) else {
        return Next::Gone;
    };
    if webhook.next_position < webhook.stream.first_position() {
        webhook.next_position = webhook.stream.first_position();
    }
    let Some(delivery) = webhook.stream.get(webhook.next_position) else {
        return Next::Wait;
    };
    Next::Send {
        position: delivery.position,
        body: serde_json::to_vec(&delivery).unwrap_or_default(),
        event_id: delivery.event.id.clone(),
        kind: delivery.event.kind.clone(),
        url: webhook.url.clone(),
        secret: webhook.secret.clone(),
    }
}

/// The worker of one subscription: runs until it is deleted or the simulator shuts down.
async fn deliver_forever(shared: Arc<Shared>, id: u64, notify: Arc<Notify>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let settings = shared.webhook_settings.clone();
    loop {
        let (position, body, event_id, kind, url, secret) = match next_delivery(&shared, id) {
            Next::Gone => return,
            Next::Wait => {
                tokio::select! {
                    () = notify.notified() => continue,
                    () = shared.cancel.cancelled() => return,
                }
            }
            Next::Send {
                position,
                body,
                event_id,
                kind,
                url,
                secret,
            } => (position, body, event_id, kind, url, secret),
        };
        // An event is announced only once it is on disk: a kill cannot take it back.
        if !shared.wait_durable(false).await {
            return;
        }
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let timestamp = (shared.lock().now_ms() / 1000).to_string();
            let signature = format!("sha256={}", sign(&secret, &timestamp, &body));
            let request = Request::post(url.as_str())
                .header("content-type", "application/json")
                .header("x-erp-timestamp", &timestamp)
                .header("x-erp-signature", &signature)
                .header("x-erp-event-id", &event_id)
                .header("x-erp-event-type", &kind)
                .header("x-erp-webhook-id", id.to_string())
                .header("x-erp-delivery-attempt", attempt.to_string())
                .body(Full::new(Bytes::from(body.clone())));
            let outcome = match request {
                Err(error) => Err(format!("invalid request: {error}")),
                Ok(request) => {
                    let call = async {
                        let response = client
                            .request(request)
                            .await
                            .map_err(|e| format!("connection error: {e}"))?;
                        let status = response.status();
                        // Drain the body so the connection can be reused.
                        let _ = response.into_body().collect().await;
                        if status.is_success() {
                            Ok(())
                        } else {
                            Err(format!("receiver answered {status}"))
                        }
                    };
                    match tokio::time::timeout(Duration::from_millis(settings.timeout_ms), call)
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(format!("no answer within {} ms", settings.timeout_ms)),
                    }
                }
            };
            let done = {
                let mut state = shared.lock();
                state.touch();
                let Some(webhook) = state.webhooks.get_mut(&id) else {
                    return;
                };
                match outcome {
                    Ok(()) => {
                        webhook.delivered += 1;
                        webhook.next_position = position + 1;
                        true
                    }
                    Err(error) => {
                        webhook.failed_attempts += 1;
                        webhook.last_error = Some(error);
                        if attempt >= settings.max_attempts.max(1) {
                            webhook.dead_lettered += 1;
                            webhook.next_position = position + 1;
                            true
                        } else {
                            false
                        }
                    }
                }
            };
            if done {
                break;
            }
            let exponent = attempt.saturating_sub(1).min(20);
            let delay = settings
                .retry_base_ms
                .saturating_mul(1u64 << exponent)
                .min(settings.retry_max_ms);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(delay)) => {}
                () = shared.cancel.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let header = format!("sha256={}", sign("s3cret", "1740988800", b"{\"a\":1}"));
        assert!(verify("s3cret", "1740988800", b"{\"a\":1}", &header));
        assert!(!verify("other", "1740988800", b"{\"a\":1}", &header));
        assert!(!verify("s3cret", "1740988801", b"{\"a\":1}", &header));
        assert!(!verify("s3cret", "1740988800", b"{\"a\":2}", &header));
    }
}
