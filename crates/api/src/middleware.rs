//! Request middleware: correlation ids, body size limits and read deadlines, request logging
//! with redacted headers, problem+json for every error the router itself produces, and the
//! answer of the overload layers (503 with `Retry-After`).

use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http_body_util::BodyExt;
use tracing::{debug, info, warn};

use crate::problem::Problem;
use crate::redact::redact_headers;

/// Header carrying the correlation id in both directions.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id (from `X-Correlation-Id`, or generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

/// Largest problem body the correlation middleware rewrites.
const PROBLEM_BODY_MAX: usize = 64 * 1024;

/// Accepts or generates the correlation id, echoes it in the response header, adds it to
/// problem bodies, and logs the request (headers redacted) and its outcome.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let correlation = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_correlation(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    request
        .extensions_mut()
        .insert(CorrelationId(correlation.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    debug!(
        %method,
        %path,
        correlation = %correlation,
        headers = %redact_headers(request.headers()),
        "Request received"
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let status = response.status();
    let elapsed_ms = started.elapsed().as_millis();
    if status.is_server_error() {
        warn!(%method, %path, status = status.as_u16(), elapsed_ms, correlation = %correlation, "Request failed");
    } else {
        info!(%method, %path, status = status.as_u16(), elapsed_ms, correlation = %correlation, "Request served");
    }
    if is_problem(response.headers()) {
        response = add_correlation(response, &correlation).await;
    }
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

fn is_valid_correlation(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

async fn add_correlation(response: Response, correlation: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::Limited::new(body, PROBLEM_BODY_MAX)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Problem::internal("the error could not be rendered").into_response(),
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut value) => {
            if let Some(object) = value.as_object_mut() {
                object
                    .entry("correlation_id")
                    .or_insert_with(|| serde_json::Value::from(correlation));
            }
            serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Refuses bodies larger than `limit` bytes: a declared `Content-Length` over the limit is
/// answered at once (nothing is read), and any other body is cut off once it passes the limit
/// (the JSON extractor then answers 413).
pub async fn limit_body(limit: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()));
    match declared {
        Some(None) => {
            return Problem::bad_request("the Content-Length header is not a number")
                .into_response();
        }
        Some(Some(length)) if length > limit as u64 => {
            return Problem::of(
                "payload-too-large",
                format!("the body is {length} bytes; at most {limit} are accepted"),
            )
            .with_extension("limit_bytes", serde_json::Value::from(limit))
            .into_response();
        }
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, limited)).await
}

/// Gives a request's body `timeout` to arrive in full, counted from when its headers were
/// read. Past it, reading the body fails (the JSON extractor answers 400) and the connection,
/// whose body was not read to its end, is closed. A body sent a byte at a time cannot hold a
/// connection longer than this.
pub async fn body_deadline(timeout: Duration, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let frames = futures::stream::unfold(Some(body.into_data_stream()), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimedOut(timeout))), None)),
        }
    });
    next.run(Request::from_parts(parts, Body::from_stream(frames)))
        .await
}

/// A body that did not arrive within its time.
#[derive(Debug)]
struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the body did not arrive within {} ms",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// Answer of the load-shedding, concurrency-limit and timeout layers: 503 with `Retry-After`
/// when the hub handles as many requests as it may, or a request ran past its time.
pub fn overloaded(
    error: &tower::BoxError,
    retry_after: u64,
    request_timeout: Duration,
) -> Response {
    let problem = if error.is::<tower::load_shed::error::Overloaded>() {
        Problem::unavailable(
            "the hub is handling as many requests as it may at once; retry shortly",
        )
    } else if error.is::<tower::timeout::error::Elapsed>() {
        Problem::unavailable(format!(
            "the request was not handled within {} ms",
            request_timeout.as_millis()
        ))
    } else {
        return Problem::internal(format!("the request failed: {error}")).into_response();
    };
    problem.with_retry_after(retry_after).into_response()
}

/// Answer for unknown paths.
pub async fn not_found(request: Request) -> Response {
    Problem::not_found(format!("no resource at {}", request.uri().path())).into_response()
}

/// Answer for a known path with an unsupported method.
pub async fn method_not_allowed(request: Request) -> Response {
    Problem::of(
        "method-not-allowed",
        format!(
            "{} is not supported on {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CorrelationId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(|| CorrelationId(uuid::Uuid::now_v7().to_string())))
    }
}
