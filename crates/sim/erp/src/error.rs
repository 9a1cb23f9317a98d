//! API errors: one type, a stable machine-readable `code`, a human message and optional
//! details, rendered as `{"error": {"code", "message", "details"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Stable error codes (documented in the crate README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// The body is not valid JSON.
    MalformedJson,
    /// Valid JSON of the wrong shape (missing field, wrong type, unknown field).
    InvalidRequest,
    /// A quantity that is not a whole number between 1 and 1,000,000.
    InvalidQuantity,
    /// A money amount that is not a decimal string.
    InvalidMoney,
    /// A money amount below zero.
    NegativeMoney,
    /// A date or time that is not RFC 3339.
    InvalidDate,
    /// No such customer.
    UnknownCustomer,
    /// No such item (SKU).
    UnknownItem,
    /// No such location.
    UnknownLocation,
    /// No such order.
    UnknownOrder,
    /// No such order line.
    UnknownLine,
    /// No such shipment.
    UnknownShipment,
    /// No such invoice.
    UnknownInvoice,
    /// No such RMA.
    UnknownRma,
    /// No such credit memo.
    UnknownCreditMemo,
    /// No such promotion.
    UnknownPromotion,
    /// No such webhook subscription.
    UnknownWebhook,
    /// The order would take the customer past the credit limit.
    CreditLimitExceeded,
    /// The customer's account is on credit hold.
    CustomerOnHold,
    /// Returning more than was shipped (or receiving more than was authorised).
    OverReturn,
    /// Cancelling an order of which something has already shipped.
    CancelAfterShipment,
    /// The operation needs an order that is not cancelled.
    OrderCancelled,
    /// Nothing received that is not already credited.
    NothingToCredit,
    /// A payment larger than the amount due.
    Overpayment,
    /// The same `Idempotency-Key` was already used for another operation.
    IdempotencyKeyReused,
    /// The feed cursor points before the oldest retained event.
    CursorExpired,
    /// Invalid fault configuration.
    InvalidFaults,
    /// Route not found.
    NotFound,
    /// Injected internal error.
    InternalError,
    /// Injected transient unavailability.
    ServiceUnavailable,
    /// Injected throttling.
    RateLimited,
    /// An outage window is active.
    Outage,
    /// Injected timeout: the call was processed but its answer came too late.
    GatewayTimeout,
}

impl Code {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MalformedJson => "malformed_json",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidQuantity => "invalid_quantity",
            Code::InvalidMoney => "invalid_money",
            Code::NegativeMoney => "negative_money",
            Code::InvalidDate => "invalid_date",
            Code::UnknownCustomer => "unknown_customer",
            Code::UnknownItem => "unknown_item",
            Code::UnknownLocation => "unknown_location",
            Code::UnknownOrder => "unknown_order",
            Code::UnknownLine => "unknown_line",
            Code::UnknownShipment => "unknown_shipment",
            Code::UnknownInvoice => "unknown_invoice",
            Code::UnknownRma => "unknown_rma",
            Code::UnknownCreditMemo => "unknown_credit_memo",
            Code::UnknownPromotion => "unknown_promotion",
            Code::UnknownWebhook => "unknown_webhook",
            Code::CreditLimitExceeded => "credit_limit_exceeded",
            Code::CustomerOnHold => "customer_on_hold",
            Code::OverReturn => "over_return",
            Code::CancelAfterShipment => "cancel_after_shipment",
            Code::OrderCancelled => "order_cancelled",
            Code::NothingToCredit => "nothing_to_credit",
            Code::Overpayment => "overpayment",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::CursorExpired => "cursor_expired",
            Code::InvalidFaults => "invalid_faults",
            Code::NotFound => "not_found",
            Code::InternalError => "internal_error",
            Code::ServiceUnavailable => "service_unavailable",
            Code::RateLimited => "rate_limited",
            Code::Outage => "outage",
            Code::GatewayTimeout => "gateway_timeout",
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}", code = self.code.as_str())]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: Code,
    /// Human-readable explanation.
    pub message: String,
    /// Structured facts (available credit, shipped quantity, ...).
    pub details: Value,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    /// 422 business or validation error.
    pub fn unprocessable(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404 for an entity named in the path.
    pub fn not_found(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 400 for a body of the wrong shape.
    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 409 for an operation the entity's state forbids.
    pub fn conflict(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Adds structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Adds a `Retry-After` header.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code.as_str(), "message": self.message });
        if !self.details.is_null() {
            error["details"] = self.details.clone();
        }
        json!({ "error": error })
    }

    /// Classifies a body parse failure: syntax errors are `malformed_json`, shape errors
    /// `invalid_request`.
    pub fn from_json(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                Self::bad_request(Code::MalformedJson, format!("malformed JSON body: {error}"))
            }
            Category::Data => Self::bad_request(
                Code::InvalidRequest,
                format!("invalid request body: {error}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Result of an operation.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
