//! Fault knobs: latency distributions, injected errors per operation, outage windows, slow-down,
//! and the duplicate / out-of-order delivery of the change feed and webhooks.
//!
//! Every draw comes from the simulator's seeded fault stream, so a run under the manual clock
//! with the same seed and calls injects the same faults.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// All fault knobs. `PUT /admin/faults` replaces them as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Latency added to every API call before it is processed.
    pub latency: Latency,
    /// Multiplies every added latency (2.0 = twice as slow).
    pub slowdown: f64,
    /// Injected error rates per operation name; the key `"*"` applies to operations without
    /// their own entry.
    pub errors: BTreeMap<String, ErrorRates>,
    /// How long an injected timeout holds the response (the request is still processed).
    pub timeout_ms: u64,
    /// `Retry-After` seconds sent with injected 429 and outage 503 answers.
    pub retry_after_secs: u64,
    /// Probability that an event is delivered a second time (feed and webhooks).
    pub duplicate_rate: f64,
    /// Probability that an event is held back and delivered after later events.
    pub reorder_rate: f64,
    /// Most later events a held-back event can be delivered after.
    pub reorder_window: u32,
    /// A held-back event is released at the latest after this much simulated time.
    pub reorder_max_hold_ms: i64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency: Latency::None,
            slowdown: 1.0,
            errors: BTreeMap::new(),
            timeout_ms: 30_000,
            retry_after_secs: 1,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            reorder_window: 5,
            reorder_max_hold_ms: 60_000,
        }
    }
}

impl Faults {
    /// Checks ranges: rates in [0, 1], positive slow-down, ordered latency bounds.
    ///
    /// # Errors
    /// A message naming the first invalid knob.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |name: &str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, got {value}"))
            }
        };
        rate("duplicate_rate", self.duplicate_rate)?;
        rate("reorder_rate", self.reorder_rate)?;
        if !(self.slowdown.is_finite() && self.slowdown > 0.0) {
            return Err(format!(
                "slowdown must be a positive number, got {}",
                self.slowdown
            ));
        }
        if self.reorder_max_hold_ms < 0 {
            return Err("reorder_max_hold_ms must not be negative".to_owned());
        }
        for (op, rates) in &self.errors {
            rate(&format!("errors.{op}.http_500"), rates.http_500)?;
            rate(&format!("errors.{op}.http_503"), rates.http_503)?;
            rate(&format!("errors.{op}.http_429"), rates.http_429)?;
            rate(&format!("errors.{op}.timeout"), rates.timeout)?;
            if rates.total() > 1.0 {
                return Err(format!("errors.{op}: the rates add up to more than 1"));
            }
        }
        self.latency.validate()
    }

    /// Error rates in force for an operation.
    pub fn rates_for(&self, op: &str) -> ErrorRates {
        self.errors
            .get(op)
            .or_else(|| self.errors.get("*"))
            .copied()
            .unwrap_or_default()
    }
}

/// Latency distribution, in real milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// No added latency.
    #[default]
    None,
    /// Always the same delay.
    Fixed {
        /// Delay in milliseconds.
        ms: f64,
    },
    /// Uniformly drawn between two bounds.
    Uniform {
        /// Lower bound in milliseconds.
        min_ms: f64,
        /// Upper bound in milliseconds.
        max_ms: f64,
    },
    /// Log-normal with the given median and 99th percentile (a long right tail).
    LogNormal {
        /// Median in milliseconds.
        p50_ms: f64,
        /// 99th percentile in milliseconds.
        p99_ms: f64,
    },
}

/// Longest latency a knob may ask for (one hour), so no draw can overflow a timer.
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;

/// z-score of the 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874;

impl Latency {
    fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&v);
        match *self {
            Latency::None => Ok(()),
            Latency::Fixed { ms } if ok(ms) => Ok(()),
            Latency::Uniform { min_ms, max_ms } if ok(min_ms) && ok(max_ms) && min_ms <= max_ms => {
                Ok(())
            }
            Latency::LogNormal { p50_ms, p99_ms }
                if ok(p50_ms) && p50_ms > 0.0 && p99_ms >= p50_ms =>
            {
                Ok(())
            }
            other => Err(format!("invalid latency {other:?}")),
        }
    }

    /// Draws one latency in milliseconds.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Latency::None => 0.0,
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => {
                if max_ms > min_ms {
                    rng.random_range(min_ms..=max_ms)
                } else {
                    min_ms
                }
            }
            Latency::LogNormal { p50_ms, p99_ms } => {
                let mu = p50_ms.ln();
                let sigma = (p99_ms.ln() - mu) / Z_99;
                (mu + sigma * standard_normal(rng))
                    .exp()
                    .min(MAX_LATENCY_MS)
            }
        }
    }

    /// Parses the command-line form: `none`, `fixed:MS`, `uniform:MIN:MAX`, `lognormal:P50:P99`.
    ///
    /// # Errors
    /// A message describing the expected form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |s: &str| s.parse::<f64>().map_err(|_| format!("not a number: {s}"));
        let latency = match parts.as_slice() {
            ["none"] => Latency::None,
            ["fixed", ms] => Latency::Fixed { ms: num(ms)? },
            ["uniform", a, b] => Latency::Uniform {
                min_ms: num(a)?,
                max_ms: num(b)?,
            },
            ["lognormal", a, b] => Latency::LogNormal {
                p50_ms: num(a)?,
                p99_ms: num(b)?,
            },
            _ => {
                return Err(format!(
                    "latency must be none, fixed:MS, uniform:MIN:MAX or lognormal:P50:P99, got {text}"
                ));
            }
        };
        latency.validate()?;
        Ok(latency)
    }
}

/// Box–Muller transform: one standard normal draw from two uniform draws.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Injected error probabilities for one operation (they must add up to at most 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorRates {
    /// HTTP 500 `internal_error`.
    pub http_500: f64,
    /// HTTP 503 `service_unavailable`.
    pub http_503: f64,
    /// HTTP 429 `rate_limited` with `Retry-After`.
    pub http_429: f64,
    /// The call is processed but its answer is held for `timeout_ms` and then 504.
    pub timeout: f64,
}

impl ErrorRates {
    fn total(&self) -> f64 {
        self.http_500 + self.http_503 + self.http_429 + self.timeout
    }
}

/// What the fault gate decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Injected {
    /// Process normally.
    None,
    /// Answer 500 without processing.
    Http500,
    /// Answer 503 without processing.
    Http503,
    /// Answer 429 without processing.
    Http429,
    /// Process, then hold the answer and send 504.
    Timeout,
}

impl ErrorRates {
    /// Draws the injected outcome of one call.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> Injected {
        if self.total() <= 0.0 {
            return Injected::None;
        }
        let x: f64 = rng.random();
        let mut edge = self.http_500;
        if x < edge {
            return Injected::Http500;
        }
        edge += self.http_503;
        if x < edge {
            return Injected::Http503;
        }
        edge += self.http_429;
        if x < edge {
            return Injected::Http429;
        }
        edge += self.timeout;
        if x < edge {
            return Injected::Timeout;
        }
        Injected::None
    }
}

/// How an outage refuses calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Every API call is answered 503 `outage` with `Retry-After`.
    #[default]
    #[serde(rename = "http_503")]
    Http503,
    /// New connections are dropped and open ones reset: clients see connection errors.
    Connection,
}

/// A full outage window on the simulated clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// Identifier for stopping it.
    pub id: u64,
    /// How calls are refused.
    pub mode: OutageMode,
    /// Start, simulated milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// End (exclusive), or `None` until stopped.
    pub end_ms: Option<i64>,
}

impl Outage {
    /// Whether the window covers `now`.
    pub fn active_at(&self, now: i64) -> bool {
        self.start_ms <= now && self.end_ms.is_none_or(|end| now < end)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn log_normal_samples_have_the_requested_median_and_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let latency = Latency::LogNormal {
            p50_ms: 20.0,
            p99_ms: 200.0,
        };
        let mut samples: Vec<f64> = (0..20_000).map(|_| latency.sample(&mut rng)).collect();
        samples.sort_by(f64::total_cmp);
        let p50 = samples[10_000];
        let p99 = samples[19_800];
        assert!((18.0..22.0).contains(&p50), "p50 {p50}");
        assert!((170.0..235.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn error_rates_adding_up_to_more_than_one_are_refused() {
        let mut faults = Faults::default();
        faults.errors.insert(
            "*".into(),
            ErrorRates {
                http_500: 0.6,
                http_503: 0.6,
                ..Default::default()
            },
        );
        assert!(faults.validate().is_err());
    }

    #[test]
    fn latency_is_parsed_from_the_command_line_form() {
        assert_eq!(Latency::parse("fixed:5"), Ok(Latency::Fixed { ms: 5.0 }));
        assert_eq!(
            Latency::parse("lognormal:10:90"),
            Ok(Latency::LogNormal {
                p50_ms: 10.0,
                p99_ms: 90.0
            })
        );
        assert!(Latency::parse("uniform:9:1").is_err());
        assert!(Latency::parse("gamma:1").is_err());
    }
}
