//! Field values, their JSON wire form and the date/datetime formats Salesforce uses.

use std::cmp::Ordering;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value as Json;
use time::{Date, Month, OffsetDateTime};

use crate::meta::FieldType;

/// A stored field value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value.
    #[default]
    Null,
    /// Text of any textual type (string, picklist, id, reference, email, ...).
    Text(String),
    /// A number (currency, double, percent, int); exact decimal arithmetic.
    Number(Decimal),
    /// A checkbox.
    Bool(bool),
    /// A calendar date.
    Date(Date),
    /// An instant, milliseconds since the Unix epoch (UTC).
    DateTime(i64),
}

impl Value {
    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text, when the value is textual.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when numeric.
    pub fn as_number(&self) -> Option<Decimal> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The JSON wire form of this value for a field of type `ty`.
    pub fn to_json(&self, ty: FieldType) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Text(s) => Json::String(s.clone()),
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_json(*n, ty),
            Value::Date(d) => Json::String(format_date(*d)),
            Value::DateTime(ms) => Json::String(format_datetime(*ms)),
        }
    }

    /// Orders two values of the same field (nulls first); text compares case-insensitively.
    pub fn compare(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            (Value::Text(a), Value::Text(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
            (Value::Number(a), Value::Number(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
            (Value::Date(a), Value::DateTime(b)) => date_ms(*a).cmp(b),
            (Value::DateTime(a), Value::Date(b)) => a.cmp(&date_ms(*b)),
            _ => Ordering::Equal,
        }
    }
}

/// JSON number for a decimal: integers for `int` fields, doubles otherwise (the wire format).
pub fn number_json(n: Decimal, ty: FieldType) -> Json {
    if ty == FieldType::Int
        && let Some(i) = n.trunc().to_i64()
    {
        return Json::from(i);
    }
    n.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
        .unwrap_or(Json::Null)
}

/// Why a JSON value does not fit a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// Wrong JSON type or unparsable text (`INVALID_TYPE_ON_FIELD_IN_RECORD`).
    WrongType(String),
    /// Text longer than the field (`STRING_TOO_LONG`).
    TooLong(usize),
}

/// Converts an input JSON value to a stored value of type `ty` (text limited to `length`).
///
/// # Errors
/// [`ConvertError`] when the JSON type or text does not fit the field.
pub fn from_json(json: &Json, ty: FieldType, length: usize) -> Result<Value, ConvertError> {
    let shown = || match json {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let wrong = || ConvertError::WrongType(shown());
    if json.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        FieldType::Boolean => match json {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong()),
        },
        FieldType::Currency | FieldType::Double | FieldType::Percent | FieldType::Int => {
            let n = match json {
                Json::Number(n) => parse_decimal(&n.to_string()),
                Json::String(s) => parse_decimal(s.trim()),
                _ => None,
            }
            .ok_or_else(wrong)?;
            if ty == FieldType::Int && n.fract() != Decimal::ZERO {
                return Err(wrong());
            }
            Ok(Value::Number(n))
        }
        FieldType::Date => match json {
            Json::String(s) => parse_date(s)
                .or_else(|| parse_datetime(s).map(ms_date))
                .map(Value::Date)
                .ok_or_else(wrong),
            _ => Err(wrong()),
        },
        FieldType::DateTime => match json {
            Json::String(s) => parse_datetime(s)
                .or_else(|| parse_date(s).map(date_ms))
                .map(Value::DateTime)
                .ok_or_else(wrong),
            Json::Number(n) => n.as_i64().map(Value::DateTime).ok_or_else(wrong),
            _ => Err(wrong()),
        },
        _ => {
            let text = match json {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                _ => return Err(wrong()),
            };
            let chars = text.chars().count();
            if length > 0 && chars > length {
                return Err(ConvertError::TooLong(length));
            }
            if text.is_empty() {
                // Salesforce stores empty text as null.
                return Ok(Value::Null);
            }
            Ok(Value::Text(text))
        }
    }
}

/// Parses a decimal in plain or scientific notation.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    if s.is_empty() {
        return None;
    }
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Formats an instant as `2026-11-26T22:33:00.000+0000`.
pub fn format_datetime(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}+0000",
        format_date(t.date()),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds of midnight UTC of a date.
pub fn date_ms(d: Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp() * 1000
}

/// The UTC date of an instant.
pub fn ms_date(ms: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&s[0..4])?).ok()?;
    let month = Month::try_from(u8::try_from(digits(&s[5..7])?).ok()?).ok()?;
    let day = u8::try_from(digits(&s[8..10])?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Parses an ISO-8601 datetime: `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM]` (no zone = UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    // Byte slicing below relies on ASCII input.
    if !s.is_ascii() || s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let date = parse_date(&s[..10])?;
    let b = s.as_bytes();
    if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    let second = digits(&s[17..19])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        let mut ms_digits: String = frac[..end].chars().take(3).collect();
        while ms_digits.len() < 3 {
            ms_digits.push('0');
        }
        millis = i64::from(digits(&ms_digits)?);
        rest = &frac[end..];
    }
    let offset_secs: i64 = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = zone[1..].replace(':', "");
            if body.len() != 4 {
                return None;
            }
            let h = i64::from(digits(&body[..2])?);
            let m = i64::from(digits(&body[2..])?);
            sign * (h * 3600 + m * 60)
        }
    };
    let secs =
        date_ms(date) / 1000 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_secs;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip_in_the_salesforce_format() {
        let ms = parse_datetime("2026-11-26T22:33:00.000+0000").unwrap_or_default();
        assert_eq!(format_datetime(ms), "2026-11-26T22:33:00.000+0000");
        assert_eq!(parse_datetime("2026-11-26T23:33:00+01:00"), Some(ms));
        assert_eq!(parse_datetime("2026-11-26T22:33:00Z"), Some(ms));
        assert_eq!(parse_datetime("2026-11-26 nonsense"), None);
        assert_eq!(parse_datetime("2026-11-26T2é:00:00Z"), None);
        assert_eq!(parse_datetime("2026-11-26T22:33:00+aé1"), None);
    }

    #[test]
    fn wrong_json_types_are_refused() {
        assert!(from_json(&Json::Bool(true), FieldType::Double, 0).is_err());
        assert!(from_json(&Json::String("abc".into()), FieldType::Currency, 0).is_err());
        assert_eq!(
            from_json(&Json::String("2.5".into()), FieldType::Double, 0),
            Ok(Value::Number(Decimal::new(25, 1)))
        );
        assert_eq!(
            from_json(&Json::String("toolong".into()), FieldType::String, 3),
            Err(ConvertError::TooLong(3))
        );
    }
}
