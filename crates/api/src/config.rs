//! API settings: the `[api]` block of `crossdock.toml`.
//!
//! Every field has a default, so an empty `[api]` block is valid. Secrets (the webhook secret)
//! are held in [`Secret`], which never prints its value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes. A larger `Content-Length` is refused with 413
    /// before the body is read; a streamed body is cut off at this size.
    pub body_limit_bytes: usize,
    /// Durable backlog bound: when more tasks than this are queued (every lane, pending), order
    /// submissions are answered with 429 and `Retry-After`. Reads are never refused for it.
    pub backlog_limit: u64,
    /// `Retry-After` (seconds) sent with a backlog refusal.
    pub backlog_retry_after_secs: u64,
    /// Time budget (milliseconds) for the ERP lookups of synchronous order validation and of
    /// inventory and price inquiries. Past it, an order is accepted with validation pending.
    pub erp_budget_ms: u64,
    /// Cached inventory older than this (seconds) is refreshed from the ERP on inquiry. Default:
    /// the latency target of the `inventory-visibility` flow.
    pub inventory_max_age_secs: Option<u64>,
    /// How long a request with an `Idempotency-Key` that is still being processed by another
    /// request waits for the first answer before getting 409 (milliseconds).
    pub idempotency_wait_ms: u64,
    /// A claim on an idempotency key older than this (seconds) without an answer is taken over
    /// (its request died).
    pub idempotency_claim_secs: u64,
    /// How long a verified API key is trusted from memory before it is read again (seconds);
    /// bounds how long a revoked key keeps working in a running hub.
    pub key_cache_secs: u64,
    /// Per-client rate limit applied unless the client's key sets its own.
    pub rate_limit: RateLimit,
    /// Failed authentications (401) accepted from one client address per minute; past them the
    /// address gets 429 with `Retry-After` (even with a valid key) until its budget refills.
    pub auth_failures_per_minute: u32,
    /// Connection and request limits of the HTTP server.
    pub server: ServerConfig,
    /// OAuth2 bearer tokens (JWT). Off when absent.
    pub jwt: Option<JwtConfig>,
    /// Signed ERP webhooks at `POST /webhooks/erp`. Off (404) when absent.
    pub webhooks: Option<WebhookConfig>,
    /// When `/v1/orders/{id}` stops being served (RFC 3339 date-time, announced in `Sunset`).
    pub v1_order_status_sunset: String,
    /// When `/v1/orders/{id}` was deprecated (Unix seconds, announced in `Deprecation`).
    pub v1_order_status_deprecated_at: i64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 256 * 1024,
            backlog_limit: 100_000,
            backlog_retry_after_secs: 5,
            erp_budget_ms: 800,
            inventory_max_age_secs: None,
            idempotency_wait_ms: 5_000,
            idempotency_claim_secs: 30,
            key_cache_secs: 5,
            rate_limit: RateLimit::default(),
            auth_failures_per_minute: 60,
            server: ServerConfig::default(),
            jwt: None,
            webhooks: None,
            v1_order_status_sunset: "2027-06-30T00:00:00Z".to_owned(),
            v1_order_status_deprecated_at: 1_767_225_600,
        }
    }
}

impl ApiConfig {
    /// The inventory freshness threshold in seconds.
    pub fn inventory_max_age(&self) -> u64 {
        self.inventory_max_age_secs.unwrap_or_else(|| {
            crossdock_domain::flow::defaults()
                .iter()
                .find(|f| f.name == "inventory-visibility")
                .map_or(300, |f| f.classification.latency_target_secs)
        })
    }

    /// Checks the settings without I/O; returns every problem found.
    ///
    /// # Errors
    /// One message per invalid field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.body_limit_bytes < 1024 {
            problems.push("api.body_limit_bytes must be at least 1024".to_owned());
        }
        if self.rate_limit.per_second == 0 || self.rate_limit.burst == 0 {
            problems.push("api.rate_limit.per_second and burst must be at least 1".to_owned());
        }
        if self.auth_failures_per_minute == 0 {
            problems.push("api.auth_failures_per_minute must be at least 1".to_owned());
        }
        problems.extend(self.server.validate());
        if time::OffsetDateTime::parse(
            &self.v1_order_status_sunset,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            problems.push("api.v1_order_status_sunset must be an RFC 3339 date-time".to_owned());
        }
        if let Some(jwt) = &self.jwt {
            if jwt.issuer.is_empty() || jwt.audience.is_empty() {
                problems.push("api.jwt.issuer and api.jwt.audience must not be empty".to_owned());
            }
            for (subject, client) in &jwt.clients {
                if client.name.is_empty() {
                    problems.push(format!("api.jwt.clients.{subject}.name must not be empty"));
                }
            }
        }
        if let Some(hooks) = &self.webhooks
            && hooks.secret.expose().len() < 16
        {
            problems.push("api.webhooks.secret must be at least 16 characters".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Limits of the HTTP server (`[api.server]`): how long a client may take to send a request,
/// how many connections and requests are served at once, and how long a request may run.
/// Connections past `max_connections` and requests past `max_concurrent_requests` are refused at
/// once with 503, `Retry-After` and a problem body, so the hub stays responsive when overloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time a client has to send a request's headers (milliseconds), counted from when the
    /// server starts waiting for the request (the connection opened or the previous answer
    /// was sent). An idle keep-alive connection is therefore closed after this long too.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body once its headers arrived
    /// (milliseconds); past it the request is answered 400 and the connection closed.
    pub body_read_timeout_ms: u64,
    /// A connection on which nothing is read or written for this long while no request is
    /// being handled (the client neither sends nor reads) is closed (milliseconds).
    pub idle_timeout_ms: u64,
    /// Most connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Most requests handled at once (the health probes are not counted); more are answered 503
    /// at once (load shedding).
    pub max_concurrent_requests: usize,
    /// Time a request may take to be handled (milliseconds); past it, 503.
    pub request_timeout_ms: u64,
    /// `Retry-After` (seconds) of an overload refusal.
    pub overload_retry_after_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 1_024,
            max_concurrent_requests: 256,
            request_timeout_ms: 30_000,
            overload_retry_after_secs: 1,
        }
    }
}

impl ServerConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("overload_retry_after_secs", self.overload_retry_after_secs),
        ] {
            if value == 0 {
                problems.push(format!("api.server.{name} must be at least 1"));
            }
        }
        if self.max_connections == 0 || self.max_concurrent_requests == 0 {
            problems.push(
                "api.server.max_connections and max_concurrent_requests must be at least 1"
                    .to_owned(),
            );
        }
        problems
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second per client.
    pub per_second: u32,
    /// Bucket size: requests a client may send at once after a quiet period.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 200,
            burst: 400,
        }
    }
}

/// OAuth2 bearer tokens issued by an identity provider, verified against its JWKS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// JSON Web Key Set file with the provider's public keys (RSA for RS256, P-256 for ES256).
    pub jwks_file: PathBuf,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf` (seconds).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Clients by token subject (`sub`, or `client_id` when present). Tokens of other subjects
    /// are refused.
    #[serde(default)]
    pub clients: BTreeMap<String, JwtClient>,
}

fn default_leeway() -> u64 {
    30
}

/// What a token subject may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtClient {
    /// Client name (audit records, rate limits).
    pub name: String,
    /// Most scopes the client gets; the token's `scope` claim is intersected with it. Empty:
    /// no scope at all (every request of the client is refused with 403).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Accounts the client may see; empty: every account.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Channels (`b2b`, `web`, `marketplace`, `store`) the client may see; empty: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Signed webhooks from the ERP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Shared secret of the HMAC-SHA256 signature.
    pub secret: Secret,
    /// Largest accepted difference between the signature timestamp and the hub's clock
    /// (seconds).
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    300
}

/// A secret string: deserialized from config, never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<ApiConfig>(r#"{"body_limit": 10}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("unknown field `body_limit`"), "{error}");
    }

    #[test]
    fn an_empty_block_takes_the_defaults() {
        let config: ApiConfig = serde_json::from_str("{}").expect("empty block");
        assert_eq!(config, ApiConfig::default());
        assert_eq!(config.inventory_max_age(), 300);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let hooks = WebhookConfig {
            secret: Secret::new("whsec_do_not_print_me"),
            tolerance_secs: 300,
        };
        assert!(!format!("{hooks:?}").contains("do_not_print"));
    }

    #[test]
    fn validation_reports_every_problem() {
        let config = ApiConfig {
            body_limit_bytes: 10,
            server: ServerConfig {
                max_connections: 0,
                ..ServerConfig::default()
            },
            rate_limit: RateLimit {
                per_second: 0,
                burst: 1,
            },
            v1_order_status_sunset: "soon".to_owned(),
            ..ApiConfig::default()
        };
        let problems = config.validate().err().unwrap_or_default();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
