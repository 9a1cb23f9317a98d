//! Salesforce errors → failure classes (spec §5.1). Only the engine decides to retry; this
//! module only says what kind of failure Salesforce reported.
//!
//! | Salesforce says | Class |
//! |---|---|
//! | `UNABLE_TO_LOCK_ROW` | conflict |
//! | `REQUEST_LIMIT_EXCEEDED` (403), HTTP 429 | throttled (`Retry-After` honoured) |
//! | `SERVER_UNAVAILABLE`, `UNKNOWN_EXCEPTION`, any 5xx, timeouts, connection errors | transient |
//! | validation and addressing codes (`INVALID_FIELD`, `REQUIRED_FIELD_MISSING`, `FIELD_INTEGRITY_EXCEPTION`, `MALFORMED_ID`, `NOT_FOUND`, …) | permanent |
//! | an answer that cannot be parsed, or a code not listed here | unknown |

use std::time::Duration;

use crossdock_ports::{Failure, FailureClass};
use serde_json::Value as Json;

/// Codes that describe the request itself: sending it again cannot succeed.
const PERMANENT: &[&str] = &[
    "INVALID_FIELD",
    "INVALID_FIELD_FOR_INSERT_UPDATE",
    "REQUIRED_FIELD_MISSING",
    "FIELD_INTEGRITY_EXCEPTION",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "FIELD_FILTER_VALIDATION_EXCEPTION",
    "MALFORMED_ID",
    "NOT_FOUND",
    "ENTITY_IS_DELETED",
    "DUPLICATE_VALUE",
    "DUPLICATE_EXTERNAL_ID",
    "DUPLICATES_DETECTED",
    "INVALID_CROSS_REFERENCE_KEY",
    "INVALID_ID_FIELD",
    "INVALID_TYPE",
    "INVALID_TYPE_ON_FIELD_IN_RECORD",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "STRING_TOO_LONG",
    "NUMBER_OUTSIDE_VALID_RANGE",
    "JSON_PARSER_ERROR",
    "MALFORMED_QUERY",
    "INVALID_QUERY_LOCATOR",
    "INVALID_QUERY_FILTER_OPERATOR",
    "MISSING_ARGUMENT",
    "EXCEEDED_ID_LIMIT",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    "ENTITY_IS_LOCKED",
    "STANDARD_PRICE_NOT_DEFINED",
    "METHOD_NOT_ALLOWED",
    "API_DISABLED_FOR_ORG",
    "API_CURRENTLY_DISABLED",
    "INVALID_SESSION_ID",
];

/// Codes of temporary server trouble.
const TRANSIENT: &[&str] = &[
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "PROCESSING_HALTED",
    "QUERY_TIMEOUT",
];

/// The class of a Salesforce error code on its own (no HTTP status), e.g. a per-record
/// `statusCode` in a collections answer. `None` for a code this table does not know.
pub fn class_of_code(code: &str) -> Option<FailureClass> {
    if code == "UNABLE_TO_LOCK_ROW" {
        Some(FailureClass::Conflict)
    } else if code == "REQUEST_LIMIT_EXCEEDED" {
        Some(FailureClass::Throttled { retry_after: None })
    } else if TRANSIENT.contains(&code) {
        Some(FailureClass::Transient)
    } else if PERMANENT.contains(&code) {
        Some(FailureClass::Permanent)
    } else {
        None
    }
}

/// The failure for one record of a collections answer (`{"statusCode","message","fields"}`).
pub fn record_failure(code: &str, message: &str, fields: &[String]) -> Failure {
    let text = if fields.is_empty() {
        message.to_owned()
    } else {
        format!("{message} (fields: {})", fields.join(", "))
    };
    match class_of_code(code) {
        Some(class) => Failure::new(class, text).with_code(code),
        None => Failure::unknown(format!("unrecognised Salesforce error code {code}: {text}"))
            .with_code(code),
    }
}

/// The first `{errorCode, message, fields}` of a REST error body (a JSON array), if any.
pub fn first_error(body: &str) -> Option<(String, String, Vec<String>)> {
    let json: Json = serde_json::from_str(body).ok()?;
    let first = match &json {
        Json::Array(items) => items.first()?,
        Json::Object(_) => &json,
        _ => return None,
    };
    let code = first
        .get("errorCode")
        .or_else(|| first.get("statusCode"))
        .and_then(Json::as_str)?
        .to_owned();
    let message = first
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let fields = first
        .get("fields")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some((code, message, fields))
}

/// Parses a `Retry-After` header given in seconds.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .map(str::trim)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The failure for a non-2xx REST answer. `retry_after` is the parsed `Retry-After` header.
pub fn http_failure(status: u16, body: &str, retry_after: Option<Duration>) -> Failure {
    let parsed = first_error(body);
    if status == 429 {
        let text = parsed
            .as_ref()
            .map_or_else(|| "too many requests".to_owned(), |(_, m, _)| m.clone());
        return Failure::throttled(format!("HTTP 429: {text}"), retry_after).with_code("429");
    }
    if status == 300 {
        return Failure::permanent(format!(
            "several records match the external id: {}",
            truncate(body, 300)
        ))
        .with_code("300");
    }
    match parsed {
        Some((code, message, fields)) => {
            let mut failure = record_failure(&code, &message, &fields);
            if let FailureClass::Throttled { .. } = failure.class {
                failure.class = FailureClass::Throttled { retry_after };
            }
            if failure.class == FailureClass::Unknown && status >= 500 {
                failure.class = FailureClass::Transient;
            }
            failure.message = format!("HTTP {status}: {}", failure.message);
            failure
        }
        None if status >= 500 => Failure::transient(format!(
            "HTTP {status} without a Salesforce error body: {}",
            truncate(body, 300)
        ))
        .with_code(status.to_string()),
        None => Failure::unknown(format!(
            "HTTP {status} with an unreadable error body: {}",
            truncate(body, 300)
        ))
        .with_code(status.to_string()),
    }
}

/// The failure for a request that got no answer.
pub fn transport_failure(error: &reqwest::Error) -> Failure {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    Failure::transient(format!("request to Salesforce {what}: {}", chain(error)))
}

/// An error with its sources, for messages.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How bad a failure is for the order it belongs to: an order fails with its worst record.
pub fn severity(class: FailureClass) -> u8 {
    match class {
        FailureClass::Permanent => 5,
        FailureClass::Unknown => 4,
        FailureClass::Throttled { .. } => 3,
        FailureClass::Transient => 2,
        FailureClass::Conflict => 1,
    }
}

/// Keeps the more severe of two failures (the first on a tie).
pub fn worst(current: Option<Failure>, next: Failure) -> Failure {
    match current {
        Some(c) if severity(c.class) >= severity(next.class) => c,
        _ => next,
    }
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
