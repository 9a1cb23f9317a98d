//! Redaction of secrets before anything is logged, put on a timeline, audited or shown in a
//! dead-letter view.
//!
//! A JSON member is secret when its name, lower-cased with `-` read as `_`, contains one of
//! [`SECRET_KEYS`] (so `Authorization`, `x-api-key`, `client_secret`, `access_token` and
//! `password_hash` are all caught). Its value is replaced by [`REDACTED`], whatever its type.

use axum::http::HeaderMap;
use serde_json::Value;

/// Name fragments that mark a member as secret.
pub const SECRET_KEYS: [&str; 5] = ["authorization", "api_key", "password", "secret", "token"];

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Whether a member or header name names a secret.
pub fn is_secret_key(name: &str) -> bool {
    let normalized = name.to_ascii_lowercase().replace('-', "_");
    SECRET_KEYS.iter().any(|k| normalized.contains(k)) || normalized == "apikey"
}

/// A copy of `value` with every secret member's value replaced, at any depth.
pub fn redact_json(value: &Value) -> Value {
    let mut copy = value.clone();
    redact_in_place(&mut copy);
    copy
}

/// Replaces every secret member's value in place, at any depth.
pub fn redact_in_place(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if is_secret_key(name) {
                    *member = Value::from(REDACTED);
                } else {
                    redact_in_place(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// Headers as one log-friendly line, secret headers (and cookies) redacted.
pub fn redact_headers(headers: &HeaderMap) -> String {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let shown = if is_secret_key(name) || name == "cookie" || name == "x-erp-signature" {
                REDACTED
            } else {
                value.to_str().unwrap_or("[binary]")
            };
            format!("{name}: {shown}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_members_are_redacted_at_any_depth() {
        let value = json!({
            "order": "SF-1",
            "Authorization": "Bearer abc",
            "nested": [{"api_key": "cdk_1"}, {"client_secret": {"x": 1}}],
            "credentials": {"password": "hunter2", "user": "ann", "access-token": "t"},
        });
        let redacted = redact_json(&value);
        let text = redacted.to_string();
        for secret in ["Bearer abc", "cdk_1", "hunter2", "\"x\":1", "\"t\""] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert_eq!(redacted["order"], "SF-1");
        assert_eq!(redacted["credentials"]["user"], "ann");
        assert_eq!(redacted["nested"][0]["api_key"], REDACTED);
    }

    #[test]
    fn secret_headers_are_redacted() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer cdk_abc"));
        headers.insert("x-api-key", HeaderValue::from_static("cdk_def"));
        headers.insert("x-correlation-id", HeaderValue::from_static("c-1"));
        let line = redact_headers(&headers);
        assert!(!line.contains("cdk_"), "{line}");
        assert!(line.contains("x-correlation-id: c-1"), "{line}");
    }
}
