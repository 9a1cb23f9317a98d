//! Errors as RFC 9457 problem details (`application/problem+json`), with a stable `type` per
//! error class and the request's correlation id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
            retry_after: None,
        }
    }

    /// 404: the resource does not exist (or the caller may not know it exists).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// 422: the request is well-formed but violates the contract or a business rule.
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Unprocessable request", detail)
    }

    /// 500: something unexpected; the detail says what without leaking internals.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    /// 503: a dependency (the store) is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail);
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
            crossdock_store::ErrorKind::Invalid => Problem::unprocessable("invalid-state", error.to_string()),
            crossdock_store::ErrorKind::Conflict => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", error.to_string())
            }
            _ => Problem::unavailable("the store is unavailable; try again shortly"),
        }
    }
}
