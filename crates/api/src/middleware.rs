//! Request middleware: correlation ids, body size limits, request logging with redacted
//! headers, and problem+json for every error the router itself produces.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
