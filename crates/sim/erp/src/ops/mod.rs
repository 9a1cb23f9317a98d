//! Operations of the simulated ERP, one file per business area, each an `impl State` block of
//! short synchronous methods that validate input, change state and emit events.
//!
//! Inputs arrive as loosely typed JSON so that a bad quantity or amount gets its own stable
//! error code (`invalid_quantity`, `negative_money`, ...) rather than a generic parse error.

pub mod billing;
pub mod catalog;
pub mod credit;
pub mod customers;
pub mod fulfilment;
pub mod inventory;
pub mod orders;
pub mod pricing;
pub mod returns;
pub mod warehouse;

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{ApiError, Code, Result};

/// Largest money amount accepted (keeps every product and sum far from decimal overflow).
pub const MAX_MONEY: i64 = 1_000_000_000_000;

/// Largest quantity accepted on one line.
pub const MAX_QUANTITY: u64 = 1_000_000;

/// Parses a quantity: a whole JSON number between 1 and [`MAX_QUANTITY`].
///
/// # Errors
/// `invalid_quantity` naming the field.
pub fn parse_qty(value: &Value, field: &str) -> Result<u64> {
    match value.as_u64() {
        Some(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(q),
        _ => Err(ApiError::unprocessable(
            Code::InvalidQuantity,
            format!("{field} must be a whole number between 1 and {MAX_QUANTITY}, got {value}"),
        )
        .with_details(serde_json::json!({ "field": field }))),
    }
}

/// Parses a money amount: a decimal string, zero or more, at most 4 decimals, at most
/// [`MAX_MONEY`].
///
/// # Errors
/// `invalid_money` (not a decimal string) or `negative_money`.
pub fn parse_money(value: &Value, field: &str) -> Result<Decimal> {
    let invalid = || {
        ApiError::unprocessable(
            Code::InvalidMoney,
            format!("{field} must be a decimal string such as \"12.50\", got {value}"),
        )
        .with_details(serde_json::json!({ "field": field }))
    };
    let text = value.as_str().ok_or_else(invalid)?;
    let amount = Decimal::from_str_exact(text.trim()).or_else(|_| Decimal::from_str(text.trim()));
    let amount = amount.map_err(|_| invalid())?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(ApiError::unprocessable(
            Code::NegativeMoney,
            format!("{field} must not be negative, got {text}"),
        )
        .with_details(serde_json::json!({ "field": field })));
    }
    if amount.scale() > 4 || amount > Decimal::from(MAX_MONEY) {
        return Err(invalid());
    }
    Ok(amount)
}

/// Parses an optional RFC 3339 time or `YYYY-MM-DD` date.
///
/// # Errors
/// `invalid_date` naming the field.
pub fn parse_date(value: Option<&str>, field: &str) -> Result<Option<i64>> {
    match value {
        None => Ok(None),
        Some(text) => crate::clock::parse_time(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                Code::InvalidDate,
                format!("{field} must be an RFC 3339 time or a YYYY-MM-DD date, got {text:?}"),
            )
        }),
    }
}

/// Reads a required string field.
///
/// # Errors
/// `invalid_request` naming the field.
pub fn required_str<'a>(value: &'a Value, field: &str) -> Result<&'a str> {
    match value.get(field).and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("{field} is required and must be a non-empty string"),
        )),
    }
}

/// Reads an optional string field.
///
/// # Errors
/// `invalid_request` when present but not a string.
pub fn optional_str<'a>(value: &'a Value, field: &str) -> Result<Option<&'a str>> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("{field} must be a string"),
        )),
    }
}

/// Reads a required array field.
///
/// # Errors
/// `invalid_request` naming the field.
pub fn required_array<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    match value.get(field).and_then(Value::as_array) {
        Some(items) if !items.is_empty() => Ok(items),
        _ => Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("{field} is required and must be a non-empty array"),
        )),
    }
}

/// Reads a required quantity field.
///
/// # Errors
/// `invalid_quantity` naming the field.
pub fn required_qty(value: &Value, field: &str) -> Result<u64> {
    parse_qty(value.get(field).unwrap_or(&Value::Null), field)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_must_be_whole_and_positive() {
        assert_eq!(parse_qty(&json!(3), "q").ok(), Some(3));
        for bad in [
            json!(0),
            json!(-2),
            json!(1.5),
            json!("3"),
            json!(null),
            json!(2_000_000),
        ] {
            assert_eq!(
                parse_qty(&bad, "q").map_err(|e| e.code),
                Err(Code::InvalidQuantity)
            );
        }
    }

    #[test]
    fn money_must_be_a_non_negative_decimal_string() {
        assert_eq!(
            parse_money(&json!("12.50"), "a").ok(),
            Some(Decimal::new(1250, 2))
        );
        assert_eq!(
            parse_money(&json!("-1.00"), "a").map_err(|e| e.code),
            Err(Code::NegativeMoney)
        );
        assert_eq!(
            parse_money(&json!(12.5), "a").map_err(|e| e.code),
            Err(Code::InvalidMoney)
        );
        assert_eq!(
            parse_money(&json!("12,5"), "a").map_err(|e| e.code),
            Err(Code::InvalidMoney)
        );
    }
}
