//! Conversions shared by both backends: times, attempt counts, lease expiry, task payloads,
//! and the stable hash used to name per-key locks.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Microseconds since the Unix epoch. Both backends keep times to the microsecond.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    // OffsetDateTime spans ±9999 years, about ±3.2e17 µs: always inside i64.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

/// The time `us` microseconds after the Unix epoch.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| Error::Corrupt(format!("time {us} µs is out of range: {e}")))
}

/// `now + lease_for`.
pub(crate) fn expiry(now: OffsetDateTime, lease_for: Duration) -> Result<OffsetDateTime> {
    time::Duration::try_from(lease_for)
        .ok()
        .and_then(|d| now.checked_add(d))
        .ok_or_else(|| Error::Invalid(format!("lease duration {lease_for:?} is out of range")))
}

/// A stored attempt counter.
pub(crate) fn attempts(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("attempt count {value}")))
}

/// `value` as compact JSON text. Faster than `value.to_string()`, whose `Display` path
/// hands every token to a `fmt::Formatter` one call at a time.
pub(crate) fn text(value: &serde_json::Value) -> String {
    // Serializing a `Value` cannot fail: its map keys are strings.
    serde_json::to_string(value).unwrap_or_default()
}

/// The payload of an inbound message's task, with `"inbox_id"` set to the inbox row.
pub(crate) fn with_inbox_id(payload: serde_json::Value, id: i64) -> Result<serde_json::Value> {
    match payload {
        serde_json::Value::Object(mut map) => {
            map.insert("inbox_id".to_owned(), id.into());
            Ok(serde_json::Value::Object(map))
        }
        serde_json::Value::Null => Ok(serde_json::json!({ "inbox_id": id })),
        other => Err(Error::Invalid(format!(
            "the task of an inbound message needs a JSON object payload, not {other}"
        ))),
    }
}

/// A task payload rendered as JSON text without its inbox id, so that the id (known only
/// once the inbox row is inserted) is spliced in without touching the JSON tree again.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct PayloadAwaitingInboxId(String);

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
impl PayloadAwaitingInboxId {
    /// Renders `payload` (a JSON object, or null for an empty one).
    ///
    /// # Errors
    /// [`Error::Invalid`] as [`with_inbox_id`].
    pub(crate) fn new(payload: &serde_json::Value) -> Result<Self> {
        match payload {
            serde_json::Value::Object(map) if map.contains_key("inbox_id") => {
                let mut map = map.clone();
                map.remove("inbox_id");
                Ok(Self(text(&serde_json::Value::Object(map))))
            }
            serde_json::Value::Object(_) => Ok(Self(text(payload))),
            serde_json::Value::Null => Ok(Self("{}".to_owned())),
            other => Err(Error::Invalid(format!(
                "the task of an inbound message needs a JSON object payload, not {other}"
            ))),
        }
    }

    /// The payload's text with `"inbox_id": id` added.
    pub(crate) fn with(&self, id: i64) -> String {
        match self.0.strip_prefix('{') {
            Some("}") | None => format!("{{\"inbox_id\":{id}}}"),
            Some(rest) => format!("{{\"inbox_id\":{id},{rest}"),
        }
    }
}

/// Parses stored JSON text.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn json(text: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what} is not JSON: {e}")))
}

/// 64-bit FNV-1a of `seed`, a zero byte and `text`: a stable hash (the same in every process
/// and build) used to name PostgreSQL advisory locks.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn stable_hash(seed: &str, text: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in seed.bytes().chain([0]).chain(text.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_round_trip_to_the_microsecond() {
        let at = datetime!(2025-03-01 12:34:56.123456789 UTC);
        let back = from_micros(micros(at)).unwrap();
        assert_eq!(back, datetime!(2025-03-01 12:34:56.123456 UTC));
        let before_epoch = datetime!(1969-12-31 23:59:59.9999995 UTC);
        assert_eq!(micros(before_epoch), -1);
    }

    #[test]
    fn inbox_id_is_added_to_object_payloads_only() {
        let payload = serde_json::json!({ "correlation": "c" });
        assert_eq!(
            with_inbox_id(payload, 7).unwrap(),
            serde_json::json!({ "correlation": "c", "inbox_id": 7 })
        );
        assert_eq!(
            with_inbox_id(serde_json::Value::Null, 3).unwrap(),
            serde_json::json!({ "inbox_id": 3 })
        );
        assert!(matches!(
            with_inbox_id(serde_json::json!([1]), 3),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn a_rendered_payload_takes_its_inbox_id_as_the_tree_would() {
        for payload in [
            serde_json::json!({ "correlation": "c", "body": { "lines": [1, 2] } }),
            serde_json::json!({ "inbox_id": -1, "correlation": "c" }),
            serde_json::json!({}),
            serde_json::Value::Null,
        ] {
            let rendered = PayloadAwaitingInboxId::new(&payload).unwrap().with(42);
            let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
            assert_eq!(
                parsed,
                with_inbox_id(payload.clone(), 42).unwrap(),
                "{payload}"
            );
        }
        assert!(matches!(
            PayloadAwaitingInboxId::new(&serde_json::json!("text")),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn stable_hash_depends_on_seed_and_text() {
        assert_eq!(stable_hash("s", "order:1"), stable_hash("s", "order:1"));
        assert_ne!(stable_hash("s", "order:1"), stable_hash("s", "order:2"));
        assert_ne!(stable_hash("a", "order:1"), stable_hash("b", "order:1"));
        // Fixed value: the hash must not change between builds (processes share locks).
        assert_eq!(stable_hash("", ""), 0xaf63_bd4c_8601_b7df_u64 as i64);
    }

    #[test]
    fn lease_expiry_rejects_overflow() {
        let now = datetime!(2025-01-01 00:00 UTC);
        assert_eq!(
            expiry(now, Duration::from_secs(30)).unwrap(),
            datetime!(2025-01-01 00:00:30 UTC)
        );
        assert!(matches!(
            expiry(now, Duration::from_secs(u64::MAX)),
            Err(Error::Invalid(_))
        ));
    }
}
