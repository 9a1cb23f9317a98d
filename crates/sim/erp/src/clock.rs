//! Simulated time: milliseconds since the Unix epoch, moved either by hand (manual mode) or by
//! the wall clock times a speed factor (real mode), plus RFC 3339 rendering and parsing.

use std::time::Instant;

use serde::{Deserialize, Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::ClockMode;

/// Source of the simulated "now" in real mode; manual mode keeps its time in the state.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    mode: ClockMode,
    started: Instant,
    start_ms: i64,
}

impl SimClock {
    /// A clock starting at `start_ms` in the given mode.
    pub fn new(mode: ClockMode, start_ms: i64) -> Self {
        Self {
            mode,
            started: Instant::now(),
            start_ms,
        }
    }

    /// The clock mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Simulated time the wall clock has reached (real mode), or `None` in manual mode.
    pub fn real_now(&self) -> Option<i64> {
        match self.mode {
            ClockMode::Manual => None,
            ClockMode::Real { speed } => {
                let elapsed = self.started.elapsed().as_secs_f64() * 1000.0 * speed;
                // Truncation is intended: simulated time has millisecond resolution.
                #[allow(clippy::cast_possible_truncation)]
                let elapsed = elapsed as i64;
                Some(self.start_ms.saturating_add(elapsed))
            }
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// The simulator stands in for an external system, so it owns its clock rather than taking the
/// hub's `Clock` port; this is the one place it reads the wall clock (for "start now" and for
/// the time that passed while a persisted simulator was stopped).
pub fn wall_clock_ms() -> i64 {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Renders simulated milliseconds as RFC 3339 UTC (`2025-03-03T08:00:00.000Z`).
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(at) => {
            let millis = at.millisecond();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        }
        Err(_) => ms.to_string(),
    }
}

/// Parses RFC 3339 (or a bare `YYYY-MM-DD`, read as midnight UTC) into milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let full;
    let text = if text.len() == 10 {
        full = format!("{text}T00:00:00Z");
        full.as_str()
    } else {
        text
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Serde helper: milliseconds as RFC 3339.
pub fn ser_time<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_ms(*ms))
}

/// Serde helper: optional milliseconds as RFC 3339 or null.
// Serde's `serialize_with` hands the field by reference.
#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
pub fn ser_opt_time<S: Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&format_ms(*ms)),
        None => serializer.serialize_none(),
    }
}

/// Serde helper: reads a time written by [`ser_time`] (RFC 3339, or whole milliseconds for
/// times outside the RFC 3339 range).
///
/// # Errors
/// When the value is neither.
pub fn de_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Millis(i64),
        Text(String),
    }
    match Wire::deserialize(deserializer)? {
        Wire::Millis(ms) => Ok(ms),
        Wire::Text(text) => parse_time(&text)
            .or_else(|| text.parse().ok())
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}"))),
    }
}

/// Serde helper: reads an optional time written by [`ser_opt_time`].
///
/// # Errors
/// When the value is neither null nor a time.
pub fn de_opt_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "de_time")] i64);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(ms)| ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        let ms = 1_740_988_800_123;
        assert_eq!(format_ms(ms), "2025-03-03T08:00:00.123Z");
        assert_eq!(parse_time("2025-03-03T08:00:00.123Z"), Some(ms));
        assert_eq!(parse_time("2025-03-03"), Some(1_740_960_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn times_written_for_the_api_are_read_back_exactly() {
        #[derive(serde::Serialize, Deserialize, PartialEq, Debug)]
        struct At {
            #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
            at: i64,
            #[serde(serialize_with = "ser_opt_time", deserialize_with = "de_opt_time")]
            until: Option<i64>,
        }
        // The last one is past year 9999: written as plain milliseconds.
        for (at, until) in [
            (1_740_988_800_123, None),
            (0, Some(1)),
            (-86_400_001, Some(300_000_000_000_000)),
        ] {
            let value = At { at, until };
            let text = serde_json::to_string(&value).expect("serializes");
            let back: At = serde_json::from_str(&text).expect("reads back");
            assert_eq!(back, value, "{text}");
        }
        assert!(serde_json::from_str::<At>(r#"{"at":"soon","until":null}"#).is_err());
    }
}
