//! Errors as RFC 9457 problem details (`application/problem+json`), with a stable `type` per
//! error class and the request's correlation id.
//!
//! Every error class has a code ([`CODES`]); its `type` URI ends with the code and
//! `docs/errors/<code>.md` explains it. The correlation middleware adds the request's
//! correlation id to every problem body on the way out.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// Every error class: code, HTTP status, title. Each has a page `docs/errors/<code>.md`.
pub const CODES: &[(&str, u16, &str)] = &[
    ("bad-request", 400, "Bad request"),
    ("invalid-body", 400, "Invalid request body"),
    ("unauthorized", 401, "Authentication required"),
    ("forbidden", 403, "Missing scope"),
    ("not-found", 404, "Not found"),
    ("method-not-allowed", 405, "Method not allowed"),
    ("conflict", 409, "Conflict"),
    ("order-conflict", 409, "Order conflict"),
    ("idempotency-in-progress", 409, "Request in progress"),
    ("webhook-replayed", 409, "Webhook replayed"),
    ("payload-too-large", 413, "Payload too large"),
    ("unsupported-media-type", 415, "Unsupported media type"),
    ("validation", 422, "Invalid request"),
    ("idempotency-key-required", 422, "Idempotency key required"),
    ("idempotency-key-reused", 422, "Idempotency key reused"),
    ("order-rejected", 422, "Order rejected"),
    ("invalid-state", 422, "Invalid state"),
    ("rate-limited", 429, "Too many requests"),
    ("backlog-full", 429, "Backlog full"),
    ("internal", 500, "Internal error"),
    ("erp-unavailable", 503, "ERP unavailable"),
    ("unavailable", 503, "Service unavailable"),
];

/// Base of every problem `type` URI; the last segment is the stable error code, documented in
/// `docs/errors/<code>.md`.
pub const TYPE_BASE: &str = "https://crossdock.dev/problems/";

/// A problem detail.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// URI identifying the error class.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the class.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Correlation id of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Field-level errors, when the request body was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members of this class (e.g. `order_id`, `checks`).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    /// Seconds to wait before retrying (429, 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    /// JSON pointer or field name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem of class `code` with an HTTP status.
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            correlation_id: None,
            errors: Vec::new(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// A problem of a class listed in [`CODES`] (its status and title).
    pub fn of(code: &str, detail: impl Into<String>) -> Self {
        let (status, title) = CODES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map_or((500, "Internal error"), |(_, s, t)| (*s, *t));
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            title,
            detail,
        )
    }

    /// The stable code (last segment of `type`).
    pub fn code(&self) -> &str {
        self.kind.strip_prefix(TYPE_BASE).unwrap_or(&self.kind)
    }

    /// 401: no usable credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::of("unauthorized", detail)
    }

    /// 403: authenticated, but the credentials lack the scope.
    pub fn forbidden(scope: &str) -> Self {
        Self::of(
            "forbidden",
            format!("this operation needs the scope `{scope}`"),
        )
        .with_extension("required_scope", Value::from(scope))
    }

    /// 422: invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Self::of("validation", detail);
        problem.errors = errors;
        problem
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(code: &str, detail: impl Into<String>, retry_after: u64) -> Self {
        let mut problem = Self::of(code, detail);
        problem.retry_after = Some(retry_after.max(1));
        problem
    }

    /// Adds an extension member.
    #[must_use]
    pub fn with_extension(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 404: the resource does not exist (or the caller may not know it exists).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 422: the request is well-formed but violates the contract or a business rule.
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            "Unprocessable request",
            detail,
        )
    }

    /// 500: something unexpected; the detail says what without leaking internals.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    /// 503: a dependency (the store) is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        problem.retry_after = Some(5);
        problem
    }

    /// Adds the correlation id.
    #[must_use]
    pub fn with_correlation(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

impl FieldError {
    /// An invalid field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<crossdock_store::Error> for Problem {
    fn from(error: crossdock_store::Error) -> Self {
        match error.kind() {
            crossdock_store::ErrorKind::NotFound => Problem::not_found(error.to_string()),
            crossdock_store::ErrorKind::Invalid => {
                Problem::unprocessable("invalid-state", error.to_string())
            }
            crossdock_store::ErrorKind::Conflict => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                error.to_string(),
            ),
            _ => Problem::unavailable("the store is unavailable; try again shortly"),
        }
    }
}
