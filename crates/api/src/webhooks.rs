//! Inbound ERP webhooks at `POST /webhooks/erp`.
//!
//! A delivery is accepted only when:
//! 1. `X-Erp-Signature` is `sha256=` + hex HMAC-SHA256(secret,
//!    `"{X-Erp-Event-Id}.{X-Erp-Timestamp}.{body}"`), compared in constant time: the delivery
//!    id is signed too, so a captured delivery cannot be replayed under a new id;
//! 2. `X-Erp-Timestamp` (Unix seconds) is within `tolerance_secs` of the hub's clock;
//! 3. its delivery id (`X-Erp-Event-Id`, 1-200 characters) was never accepted before
//!    (remembered in the store's `webhook_deliveries` records): a replay gets 409.
//!
//! The body is decoded into ERP changes by a [`WebhookDecoder`] (by default the canonical
//! [`ErpChange`] JSON, one object or an array; an ERP adapter can plug in its own format), and
//! each change goes to the engine through `poller::to_message` and `Engine::accept_message`,
//! exactly like a polled change.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use crossdock_ports::erp::ErpChange;
use crossdock_ports::inbound::Accepted;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::audit::record_as;
use crate::dto::WebhookAccepted;
use crate::extract::read_body;
use crate::problem::Problem;
use crate::state::AppState;

/// Store namespace of accepted delivery ids.
pub const DELIVERIES: &str = "webhook_deliveries";

/// Turns a webhook body into ERP changes. Asynchronous, so an adapter's decoder may look
/// things up (e.g. its line numbering) while mapping its own event format.
#[async_trait::async_trait]
pub trait WebhookDecoder: Send + Sync + 'static {
    /// The changes a body carries.
    ///
    /// # Errors
    /// Why the body is not understood.
    async fn decode(&self, body: &[u8]) -> Result<Vec<ErpChange>, String>;
}

/// Bodies in the hub's canonical change format: one [`ErpChange`] or an array of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct CanonicalChanges;

#[async_trait::async_trait]
impl WebhookDecoder for CanonicalChanges {
    async fn decode(&self, body: &[u8]) -> Result<Vec<ErpChange>, String> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<ErpChange>),
            One(Box<ErpChange>),
        }
        match serde_json::from_slice::<OneOrMany>(body) {
            Ok(OneOrMany::Many(changes)) => Ok(changes),
            Ok(OneOrMany::One(change)) => Ok(vec![*change]),
            Err(error) => Err(format!("not an ERP change: {error}")),
        }
    }
}

/// The webhook routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/erp", post(erp))
}

/// The MAC of a delivery: HMAC-SHA256(secret, `"{delivery}.{timestamp}.{body}"`).
fn mac(secret: &str, delivery: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: `new_from_slice` does not fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(delivery.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `X-Erp-Signature` of a delivery (`sha256=<hex>` over its id, timestamp and body), as a
/// sender computes it (for senders and tests).
pub fn sign(secret: &str, delivery: &str, timestamp: i64, body: &[u8]) -> String {
    mac(secret, delivery, timestamp, body).map_or_else(String::new, |mac| {
        format!(
            "sha256={}",
            crate::auth::keys::hex(&mac.finalize().into_bytes())
        )
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks signature (over delivery id, timestamp and body) and timestamp.
fn verify(
    secret: &str,
    tolerance: u64,
    now: i64,
    headers: &HeaderMap,
    delivery: &str,
    body: &[u8],
) -> Result<(), Problem> {
    let refuse = |why: &str| Problem::unauthorized(format!("webhook refused: {why}"));
    let timestamp: i64 = header(headers, "x-erp-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| refuse("X-Erp-Timestamp is missing or not Unix seconds"))?;
    let signature = header(headers, "x-erp-signature")
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(|hex| {
            (hex.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
        })
        .ok_or_else(|| refuse("X-Erp-Signature is missing or not sha256=<64 hex digits>"))?;
    mac(secret, delivery, timestamp, body)
        .ok_or_else(|| refuse("no secret"))?
        .verify_slice(&signature)
        .map_err(|_| refuse("the signature does not match"))?;
    if now.abs_diff(timestamp) > tolerance {
        return Err(refuse("the timestamp is outside the accepted window"));
    }
    Ok(())
}

/// `POST /webhooks/erp`: signed change notifications from the ERP.
#[utoipa::path(
    post,
    path = "/webhooks/erp",
    operation_id = "receiveErpWebhook",
    tag = "webhooks",
    request_body(content = Object, description = "One ERP change or an array of them", content_type = "application/json"),
    params(
        ("X-Erp-Timestamp" = String, Header, description = "Unix seconds when signed"),
        ("X-Erp-Signature" = String, Header, description = "sha256= + hex HMAC-SHA256(secret, event_id.timestamp.body): the delivery id is signed"),
        ("X-Erp-Event-Id" = String, Header, description = "Delivery id (1-200 characters), covered by the signature; a repeat is refused"),
    ),
    responses(
        (status = 202, description = "Stored for processing", body = WebhookAccepted),
        (status = 409, description = "This delivery id was accepted before", body = crate::dto::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn erp(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<WebhookAccepted>), Problem> {
    let Some(config) = state.config().webhooks.clone() else {
        return Err(Problem::not_found("webhooks are not enabled"));
    };
    let body = read_body(body).await?;
    let now = state.engine.clock().now();
    let delivery = header(&headers, "x-erp-event-id")
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or_else(|| Problem::bad_request("X-Erp-Event-Id is missing"))?
        .to_owned();
    verify(
        config.secret.expose(),
        config.tolerance_secs,
        now.unix_timestamp(),
        &headers,
        &delivery,
        &body,
    )?;
    let changes = state
        .webhook_decoder()
        .decode(&body)
        .await
        .map_err(|reason| Problem::of("invalid-body", reason))?;
    let first = state
        .store()
        .kv_insert(
            DELIVERIES,
            &delivery,
            json!({ "at": now.unix_timestamp() }),
            now,
        )
        .await?;
    if !first {
        return Err(Problem::of(
            "webhook-replayed",
            format!("delivery {delivery} was accepted before"),
        ));
    }
    let mut result = WebhookAccepted {
        accepted: 0,
        duplicates: 0,
    };
    for change in changes {
        let message = match crossdock_engine::poller::to_message(&state.engine, change).await {
            Ok(message) => message,
            Err(error) => {
                let _ = state.store().kv_delete(DELIVERIES, &delivery).await;
                return Err(Problem::unavailable(error));
            }
        };
        match state.engine.accept_message(message).await {
            Ok(Accepted::New) => result.accepted += 1,
            Ok(Accepted::Duplicate) => result.duplicates += 1,
            Err(error) => {
                // Let the sender retry the whole delivery: the inbox dedupes what got in.
                let _ = state.store().kv_delete(DELIVERIES, &delivery).await;
                return Err(Problem::unavailable(error.to_string()));
            }
        }
    }
    record_as(
        &state,
        "erp-webhook",
        "webhook.erp",
        &delivery,
        json!({ "accepted": result.accepted, "duplicates": result.duplicates }),
    )
    .await;
    Ok((StatusCode::ACCEPTED, axum::Json(result)))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-erp-timestamp",
            HeaderValue::from_str(&timestamp.to_string()).expect("ascii"),
        );
        headers.insert(
            "x-erp-signature",
            HeaderValue::from_str(signature).expect("ascii"),
        );
        headers
    }

    const SECRET: &str = "whsec_0123456789abcdef";

    #[test]
    fn a_correct_signature_within_the_window_passes() {
        let body = br#"{"id":"1"}"#;
        let signature = sign(SECRET, "delivery-1", 1_000, body);
        assert!(
            verify(
                SECRET,
                300,
                1_100,
                &headers(1_000, &signature),
                "delivery-1",
                body
            )
            .is_ok()
        );
    }

    #[test]
    fn the_signed_content_is_the_delivery_id_timestamp_and_body() {
        let body = br#"{"id":"1"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(br#"delivery-1.1000.{"id":"1"}"#);
        let expected = format!(
            "sha256={}",
            crate::auth::keys::hex(&mac.finalize().into_bytes())
        );
        assert_eq!(sign(SECRET, "delivery-1", 1_000, body), expected);
    }

    #[test]
    fn a_wrong_secret_body_delivery_id_or_stale_timestamp_is_refused() {
        let body = br#"{"id":"1"}"#;
        let signature = sign(SECRET, "delivery-1", 1_000, body);
        for (secret, now, sent_body, ts, delivery) in [
            (
                "whsec_other_secret_value",
                1_000,
                &body[..],
                1_000,
                "delivery-1",
            ),
            (SECRET, 1_000, &br#"{"id":"2"}"#[..], 1_000, "delivery-1"),
            (SECRET, 1_301, &body[..], 1_000, "delivery-1"),
            (SECRET, 1_000, &body[..], 1_001, "delivery-1"),
            // The same signed content replayed under a new delivery id.
            (SECRET, 1_000, &body[..], 1_000, "delivery-2"),
        ] {
            let result = verify(
                secret,
                300,
                now,
                &headers(ts, &signature),
                delivery,
                sent_body,
            );
            assert_eq!(result.err().map(|p| p.status), Some(401), "{delivery}");
        }
    }

    #[tokio::test]
    async fn canonical_bodies_decode_one_or_many() {
        let change = r#"{"id":"c1","at":"2025-03-03T08:00:00Z","kind":{"type":"order_booked","reference":"SF-1","erp_ref":"SO-1"}}"#;
        let one = CanonicalChanges.decode(change.as_bytes()).await;
        assert_eq!(one.map(|c| c.len()), Ok(1));
        let many = format!("[{change},{change}]");
        let two = CanonicalChanges.decode(many.as_bytes()).await;
        assert_eq!(two.map(|c| c.len()), Ok(2));
        assert!(CanonicalChanges.decode(b"{\"nope\":1}").await.is_err());
    }
}
