//! Tryton's JSON-RPC value encoding and typed access to the records it returns.
//!
//! Tryton extends JSON with tagged objects: `{"__class__": "Decimal", "decimal": "9.90"}`,
//! `{"__class__": "date", "year": …, "month": …, "day": …}` and `datetime` (naive UTC, with
//! `hour`, `minute`, `second`, `microsecond`). Quantities are JSON floats and booleans come
//! back as `true`/`false` or, on SQLite, as `1`/`0`. [`Record`] reads fields of a returned
//! record and turns every surprise into [`Error::Malformed`] naming the method and field.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::error::{Error, Result};

/// Encodes a decimal as Tryton's `Decimal` object.
pub fn decimal(value: Decimal) -> Value {
    json!({"__class__": "Decimal", "decimal": value.to_string()})
}

/// Encodes a date.
pub fn date(value: Date) -> Value {
    json!({
        "__class__": "date",
        "year": value.year(),
        "month": u8::from(value.month()),
        "day": value.day(),
    })
}

/// Encodes a UTC instant as Tryton's naive (UTC) `datetime`.
pub fn datetime(value: OffsetDateTime) -> Value {
    let utc = value.to_offset(time::UtcOffset::UTC);
    json!({
        "__class__": "datetime",
        "year": utc.year(),
        "month": u8::from(utc.month()),
        "day": utc.day(),
        "hour": utc.hour(),
        "minute": utc.minute(),
        "second": utc.second(),
        "microsecond": utc.microsecond(),
    })
}

/// A reference field value: `"model,id"`.
pub fn reference(model: &str, id: i64) -> String {
    format!("{model},{id}")
}

/// Splits a reference field value `"model,id"`; `None` for anything else.
pub fn parse_reference(value: &str) -> Option<(&str, i64)> {
    let (model, id) = value.rsplit_once(',')?;
    if model.is_empty() {
        return None;
    }
    Some((model, id.trim().parse().ok()?))
}

fn class_of(value: &Value) -> Option<&str> {
    value.get("__class__").and_then(Value::as_str)
}

/// Decodes a decimal: Tryton's `Decimal` object, a JSON number or a numeric string.
pub fn parse_decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Object(_) if class_of(value) == Some("Decimal") => {
            value.get("decimal")?.as_str()?.parse().ok()
        }
        // JSON floats are parsed from their shortest text, so 0.1 stays 0.1.
        Value::Number(n) => n.to_string().parse().ok().or_else(|| {
            n.as_f64()
                .and_then(|f| Decimal::from_scientific(&format!("{f:e}")).ok())
        }),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn int_member(value: &Value, key: &str) -> Option<i64> {
    value.get(key)?.as_i64()
}

/// Decodes Tryton's `date` object.
pub fn parse_date(value: &Value) -> Option<Date> {
    if class_of(value) != Some("date") {
        return None;
    }
    let month = Month::try_from(u8::try_from(int_member(value, "month")?).ok()?).ok()?;
    Date::from_calendar_date(
        i32::try_from(int_member(value, "year")?).ok()?,
        month,
        u8::try_from(int_member(value, "day")?).ok()?,
    )
    .ok()
}

/// Decodes Tryton's naive `datetime` object as a UTC instant (Tryton stores UTC).
pub fn parse_datetime(value: &Value) -> Option<OffsetDateTime> {
    if class_of(value) != Some("datetime") {
        return None;
    }
    let month = Month::try_from(u8::try_from(int_member(value, "month")?).ok()?).ok()?;
    let date = Date::from_calendar_date(
        i32::try_from(int_member(value, "year")?).ok()?,
        month,
        u8::try_from(int_member(value, "day")?).ok()?,
    )
    .ok()?;
    let part = |key| int_member(value, key).and_then(|v| u8::try_from(v).ok());
    let time = Time::from_hms_micro(
        part("hour")?,
        part("minute")?,
        part("second")?,
        u32::try_from(int_member(value, "microsecond").unwrap_or(0)).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Decodes a boolean: `true`/`false` or `1`/`0` (SQLite).
pub fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// Converts a Tryton quantity (a float) to whole units; `None` when it is not a whole,
/// finite number in range.
pub fn whole_units(quantity: f64) -> Option<i64> {
    if !quantity.is_finite() || quantity.abs() > 1e15 {
        return None;
    }
    let rounded = quantity.round();
    // Quantities are whole units in this integration; allow float noise only.
    if (quantity - rounded).abs() > 1e-6 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // range checked above
    Some(rounded as i64)
}

fn describe(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 80 {
        let mut end = 77;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// One record returned by `read` or `search_read`, with the method that returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    method: Arc<str>,
    fields: Map<String, Value>,
}

impl Record {
    /// Wraps the fields of a record returned by `method`.
    pub fn new(method: Arc<str>, fields: Map<String, Value>) -> Self {
        Self { method, fields }
    }

    /// The method that returned the record.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// A raw field value, if present.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    fn label(&self) -> String {
        match self.fields.get("id").and_then(Value::as_i64) {
            Some(id) => format!("record {id}"),
            None => "record".to_owned(),
        }
    }

    fn wrong(&self, field: &str, expected: &str, found: Option<&Value>) -> Error {
        let detail = match found {
            None => format!("{}: field `{field}` is missing", self.label()),
            Some(value) => format!(
                "{}: field `{field}` should be {expected}, got {}",
                self.label(),
                describe(value)
            ),
        };
        Error::malformed(&self.method, detail)
    }

    fn present(&self, field: &str, expected: &str) -> Result<&Value> {
        self.fields
            .get(field)
            .ok_or_else(|| self.wrong(field, expected, None))
    }

    /// The record id.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `id` is missing or not an integer.
    pub fn id(&self) -> Result<i64> {
        self.int("id")
    }

    /// An integer field (ids, Many2One).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, null or not an integer.
    pub fn int(&self, field: &str) -> Result<i64> {
        let value = self.present(field, "an integer")?;
        value
            .as_i64()
            .ok_or_else(|| self.wrong(field, "an integer", Some(value)))
    }

    /// An integer field that may be null (an empty Many2One).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or neither null nor an integer.
    pub fn opt_int(&self, field: &str) -> Result<Option<i64>> {
        match self.present(field, "an integer or null")? {
            Value::Null => Ok(None),
            value => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "an integer or null", Some(value))),
        }
    }

    /// A text field.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, null or not text.
    pub fn str(&self, field: &str) -> Result<&str> {
        let value = self.present(field, "text")?;
        value
            .as_str()
            .ok_or_else(|| self.wrong(field, "text", Some(value)))
    }

    /// A text field that may be empty (null).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or neither null nor text.
    pub fn opt_str(&self, field: &str) -> Result<Option<&str>> {
        match self.present(field, "text or null")? {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            value => Err(self.wrong(field, "text or null", Some(value))),
        }
    }

    /// A money or numeric field.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, null or not a number.
    pub fn decimal(&self, field: &str) -> Result<Decimal> {
        let value = self.present(field, "a Decimal")?;
        parse_decimal(value).ok_or_else(|| self.wrong(field, "a Decimal", Some(value)))
    }

    /// A money or numeric field that may be null.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or neither null nor a number.
    pub fn opt_decimal(&self, field: &str) -> Result<Option<Decimal>> {
        match self.present(field, "a Decimal or null")? {
            Value::Null => Ok(None),
            value => parse_decimal(value)
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a Decimal or null", Some(value))),
        }
    }

    /// A float field (quantities).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, null or not a number.
    pub fn float(&self, field: &str) -> Result<f64> {
        let value = self.present(field, "a number")?;
        value
            .as_f64()
            .ok_or_else(|| self.wrong(field, "a number", Some(value)))
    }

    /// A quantity in whole units.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, not a number or not whole.
    pub fn units(&self, field: &str) -> Result<i64> {
        let value = self.present(field, "a whole quantity")?;
        value
            .as_f64()
            .and_then(whole_units)
            .ok_or_else(|| self.wrong(field, "a whole quantity", Some(value)))
    }

    /// A boolean (`true`/`false` or `1`/`0`); null reads as `false`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or not a boolean.
    pub fn bool(&self, field: &str) -> Result<bool> {
        match self.present(field, "a boolean")? {
            Value::Null => Ok(false),
            value => parse_bool(value).ok_or_else(|| self.wrong(field, "a boolean", Some(value))),
        }
    }

    /// A list of ids (One2Many, Many2Many).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or not a list of integers.
    pub fn ids(&self, field: &str) -> Result<Vec<i64>> {
        let value = self.present(field, "a list of ids")?;
        let list = value
            .as_array()
            .ok_or_else(|| self.wrong(field, "a list of ids", Some(value)))?;
        list.iter()
            .map(|item| {
                item.as_i64()
                    .ok_or_else(|| self.wrong(field, "a list of ids", Some(value)))
            })
            .collect()
    }

    /// A date field that may be null.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or neither null nor a date.
    pub fn opt_date(&self, field: &str) -> Result<Option<Date>> {
        match self.present(field, "a date or null")? {
            Value::Null => Ok(None),
            value => parse_date(value)
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a date or null", Some(value))),
        }
    }

    /// A datetime field (naive UTC).
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing, null or not a datetime.
    pub fn datetime(&self, field: &str) -> Result<OffsetDateTime> {
        let value = self.present(field, "a datetime")?;
        parse_datetime(value).ok_or_else(|| self.wrong(field, "a datetime", Some(value)))
    }

    /// A reference field (`"model,id"`) that may be null.
    ///
    /// # Errors
    /// [`Error::Malformed`] when missing or neither null nor `"model,id"` text.
    pub fn opt_reference(&self, field: &str) -> Result<Option<(String, i64)>> {
        match self.present(field, "a reference or null")? {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => parse_reference(s)
                .map(|(model, id)| Some((model.to_owned(), id)))
                .ok_or_else(|| self.wrong(field, "a reference \"model,id\"", Some(&json!(s)))),
            value => Err(self.wrong(field, "a reference or null", Some(value))),
        }
    }
}
