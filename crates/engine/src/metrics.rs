//! In-process counters the engine keeps; the API renders them for Prometheus and the
//! dashboard reads them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds (seconds) of latency histograms.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    pub buckets: [u64; 12],
    /// Observations.
    pub count: u64,
    /// Sum of observations (seconds).
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Engine counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Steps (task executions) that succeeded.
    pub steps_ok: AtomicU64,
    /// Inbound messages accepted (new).
    pub inbound_new: AtomicU64,
    /// Inbound messages that were duplicates.
    pub inbound_duplicate: AtomicU64,
    /// Inbound messages refused (ownership or lifecycle).
    pub inbound_refused: AtomicU64,
    /// Tasks dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Tasks leased with the commit of the step before them (chained, no separate lease).
    pub steps_chained: AtomicU64,
    labelled: Mutex<Labelled>,
    samples: Mutex<Vec<u32>>,
    step_samples: Mutex<BTreeMap<String, Vec<u32>>>,
}

/// Most exact latency samples kept (for percentiles in benchmarks); older ones are dropped
/// by overwriting, so memory stays flat however long the hub runs.
const MAX_SAMPLES: usize = 200_000;

/// Most exact latency samples kept per step.
const MAX_STEP_SAMPLES: usize = 50_000;

#[derive(Debug, Default)]
struct Labelled {
    retries: BTreeMap<(String, String), u64>,
    steps: BTreeMap<String, u64>,
    events: BTreeMap<String, u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

/// A copy of every counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Successful steps.
    pub steps_ok: u64,
    /// New inbound messages.
    pub inbound_new: u64,
    /// Duplicate inbound messages.
    pub inbound_duplicate: u64,
    /// Refused inbound messages.
    pub inbound_refused: u64,
    /// Dead-lettered tasks.
    pub dead_lettered: u64,
    /// Tasks leased with the commit of the step before them.
    pub steps_chained: u64,
    /// Retries by (lane, failure class).
    pub retries: BTreeMap<(String, String), u64>,
    /// Successful steps by task step name.
    pub steps: BTreeMap<String, u64>,
    /// Events recorded by event type.
    pub events: BTreeMap<String, u64>,
    /// Call latency by (lane, step).
    pub latency: BTreeMap<(String, String), Histogram>,
}

impl Metrics {
    fn labelled(&self) -> std::sync::MutexGuard<'_, Labelled> {
        self.labelled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a retry.
    pub fn retry(&self, lane: &str, class: &str) {
        *self
            .labelled()
            .retries
            .entry((lane.to_owned(), class.to_owned()))
            .or_default() += 1;
    }

    /// Counts a successful step and its latency.
    pub fn step(&self, lane: &str, step: &str, latency: Duration) {
        let count = self.steps_ok.fetch_add(1, Ordering::Relaxed);
        {
            let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
            let mut samples = self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if samples.len() < MAX_SAMPLES {
                samples.push(micros);
            } else {
                let slot = usize::try_from(count).unwrap_or(0) % MAX_SAMPLES;
                samples[slot] = micros;
            }
        }
        {
            let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
            let mut by_step = self
                .step_samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let samples = by_step.entry(step.to_owned()).or_default();
            if samples.len() < MAX_STEP_SAMPLES {
                samples.push(micros);
            } else {
                let slot = usize::try_from(count).unwrap_or(0) % MAX_STEP_SAMPLES;
                samples[slot] = micros;
            }
        }
        let mut labelled = self.labelled();
        *labelled.steps.entry(step.to_owned()).or_default() += 1;
        labelled
            .latency
            .entry((lane.to_owned(), step.to_owned()))
            .or_default()
            .observe(latency.as_secs_f64());
    }

    /// Counts recorded events.
    pub fn events<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut labelled = self.labelled();
        for name in names {
            *labelled.events.entry(name.to_owned()).or_default() += 1;
        }
    }

    /// Exact step latency percentile (0.0–1.0) over the kept samples.
    pub fn step_latency_quantile(&self, q: f64) -> Option<Duration> {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let index = ((samples.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(Duration::from_micros(u64::from(samples[index])))
    }

    /// Exact latency of each step over its kept samples: the fastest, and each quantile of
    /// `quantiles` (0.0–1.0), by step name.
    pub fn step_latencies(&self, quantiles: &[f64]) -> BTreeMap<String, (Duration, Vec<Duration>)> {
        let by_step = self
            .step_samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        by_step
            .into_iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(step, mut samples)| {
                samples.sort_unstable();
                let at = |q: f64| {
                    let index = ((samples.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
                    Duration::from_micros(u64::from(samples[index]))
                };
                let fastest = at(0.0);
                (step, (fastest, quantiles.iter().map(|q| at(*q)).collect()))
            })
            .collect()
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> Snapshot {
        let labelled = self.labelled();
        Snapshot {
            steps_ok: self.steps_ok.load(Ordering::Relaxed),
            inbound_new: self.inbound_new.load(Ordering::Relaxed),
            inbound_duplicate: self.inbound_duplicate.load(Ordering::Relaxed),
            inbound_refused: self.inbound_refused.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            steps_chained: self.steps_chained.load(Ordering::Relaxed),
            retries: labelled.retries.clone(),
            steps: labelled.steps.clone(),
            events: labelled.events.clone(),
            latency: labelled.latency.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_latencies_are_exact_per_step() {
        let metrics = Metrics::default();
        for ms in 1..=100 {
            metrics.step("erp", "book", Duration::from_millis(ms));
        }
        metrics.step("salesforce", "sf-sync", Duration::from_millis(7));
        let latencies = metrics.step_latencies(&[0.5, 0.99]);
        let (fastest, book) = &latencies["book"];
        assert_eq!(*fastest, Duration::from_millis(1));
        assert_eq!(book[0], Duration::from_millis(51));
        assert_eq!(book[1], Duration::from_millis(99));
        assert_eq!(latencies["sf-sync"].1, vec![Duration::from_millis(7); 2]);
        assert_eq!(metrics.snapshot().steps_ok, 101);
    }
}
