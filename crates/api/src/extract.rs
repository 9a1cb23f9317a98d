//! Extractors whose rejections are problems: strict JSON bodies (unknown fields refused by the
//! request types), query strings and path parameters.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// A JSON request body. Refuses a missing or wrong `Content-Type` (415), a body past the size
/// limit (413) and a body that does not match the contract (400 with the field and reason).
#[derive(Debug, Clone)]
pub struct ApiJson<T> {
    /// The parsed body.
    pub value: T,
    /// The body as received (for idempotency fingerprints and the inbox).
    pub raw: bytes::Bytes,
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::of(
                "unsupported-media-type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let raw = read_body(request.into_body()).await?;
        let value = parse(&raw)?;
        Ok(Self { value, raw })
    }
}

/// Reads a whole body, mapping the size limit to 413.
///
/// # Errors
/// 413 past the limit, 400 when the connection broke.
pub async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, Problem> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(current) = source {
                if current.is::<http_body_util::LengthLimitError>() {
                    return Err(Problem::of(
                        "payload-too-large",
                        "the body is larger than the accepted limit",
                    ));
                }
                source = current.source();
            }
            Err(Problem::bad_request(format!(
                "the body could not be read: {error}"
            )))
        }
    }
}

/// Parses JSON into a request type, describing the first mismatch.
///
/// # Errors
/// 400 `invalid-body` naming the line, column and reason.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(raw).map_err(|error| {
        let field = if error.is_eof() || error.is_syntax() {
            "body".to_owned()
        } else {
            format!("body (line {}, column {})", error.line(), error.column())
        };
        let mut problem = Problem::of(
            "invalid-body",
            format!("the body does not match the contract: {error}"),
        );
        problem.errors = vec![FieldError::new(field, error.to_string())];
        problem
    })
}

/// A query string, refused with 400 when it does not match.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|rejection| {
                Problem::bad_request(format!("invalid query string: {}", rejection.body_text()))
            })
    }
}

/// Path parameters, refused with 400 when they do not match.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|rejection| {
                Problem::bad_request(format!("invalid path: {}", rejection.body_text()))
            })
    }
}
