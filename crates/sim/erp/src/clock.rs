//! Simulated time: milliseconds since the Unix epoch, moved either by hand (manual mode) or by
//! the wall clock times a speed factor (real mode), plus RFC 3339 rendering and parsing.

use std::time::Instant;

use serde::Serializer;
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
}
