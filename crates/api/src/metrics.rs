//! `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crossdock_flow_steps_total` | counter | `flow`, `step` — successful steps (flow throughput) |
//! | `crossdock_inbound_messages_total` | counter | `outcome` (`new`, `duplicate`, `refused`) |
//! | `crossdock_events_total` | counter | `type` |
//! | `crossdock_step_duration_seconds` | histogram | `lane`, `step` — downstream call latency |
//! | `crossdock_order_stage_duration_seconds` | gauge | `stage`, `quantile` (0.5, 0.95) — business cycle times |
//! | `crossdock_retries_total` | counter | `lane`, `class` |
//! | `crossdock_dead_lettered_total` | counter | — |
//! | `crossdock_steps_chained_total` | counter | — (tasks leased with the commit of the step before) |
//! | `crossdock_dead_letters_open` | gauge | — (DLQ size) |
//! | `crossdock_lane_queue_depth` | gauge | `lane`, `state` (`pending`, `due`, `leased`, `blocked`) |
//! | `crossdock_lane_oldest_pending_seconds` | gauge | `lane` |
//! | `crossdock_circuit_state` | gauge | `lane` — 0 closed, 1 half-open, 2 open |
//! | `crossdock_lane_paused` | gauge | `lane` — 1 while throttled |
//! | `crossdock_salesforce_api_calls_remaining`, `crossdock_salesforce_api_calls_limit` | gauge | — |
//! | `crossdock_orders` | gauge | `status` |
//! | `crossdock_health_exceptions`, `crossdock_health_value_at_risk` | gauge | `flow` (value also `currency`) |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crossdock_domain::order::Lane as LaneName;
use crossdock_engine::metrics::LATENCY_BUCKETS;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus};

use crate::ops::Ops;
use crate::problem::Problem;

/// Content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A text exposition under construction.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.text,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let escaped = val
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{key}=\"{escaped}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn le(bound: f64) -> String {
    number(bound)
}

/// Renders every metric.
///
/// # Errors
/// When the store fails.
pub async fn render(ops: &Ops) -> Result<String, crossdock_store::Error> {
    let state = ops.state();
    let engine = &state.engine;
    let store = state.store();
    let now = engine.clock().now();
    let snapshot = engine.metrics().snapshot();
    let flows = &ops.settings().flows;
    let mut out = Exposition::default();

    out.family(
        "crossdock_flow_steps_total",
        "counter",
        "Successful steps by flow and step (flow throughput).",
    );
    for (step, count) in &snapshot.steps {
        let flow =
            crossdock_domain::flow::flow_of(flows, step).map_or("other", |f| f.name.as_str());
        out.sample(
            "crossdock_flow_steps_total",
            &[("flow", flow), ("step", step)],
            *count as f64,
        );
    }

    out.family(
        "crossdock_inbound_messages_total",
        "counter",
        "Inbound messages by outcome.",
    );
    for (outcome, count) in [
        ("new", snapshot.inbound_new),
        ("duplicate", snapshot.inbound_duplicate),
        ("refused", snapshot.inbound_refused),
    ] {
        out.sample(
            "crossdock_inbound_messages_total",
            &[("outcome", outcome)],
            count as f64,
        );
    }

    out.family(
        "crossdock_events_total",
        "counter",
        "Order events recorded by type.",
    );
    for (kind, count) in &snapshot.events {
        out.sample("crossdock_events_total", &[("type", kind)], *count as f64);
    }

    out.family(
        "crossdock_step_duration_seconds",
        "histogram",
        "Duration of downstream calls by lane and step.",
    );
    for ((lane, step), histogram) in &snapshot.latency {
        let labels = [("lane", lane.as_str()), ("step", step.as_str())];
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
            let bound = le(*bound);
            out.sample(
                "crossdock_step_duration_seconds_bucket",
                &[labels[0], labels[1], ("le", bound.as_str())],
                count as f64,
            );
        }
        out.sample(
            "crossdock_step_duration_seconds_bucket",
            &[labels[0], labels[1], ("le", "+Inf")],
            histogram.count as f64,
        );
        out.sample(
            "crossdock_step_duration_seconds_sum",
            &labels,
            histogram.sum,
        );
        out.sample(
            "crossdock_step_duration_seconds_count",
            &labels,
            histogram.count as f64,
        );
    }

    out.family(
        "crossdock_order_stage_duration_seconds",
        "gauge",
        "Business cycle time per order stage (median and 95th percentile).",
    );
    {
        let follower = ops.follower().lock().await;
        for cycle in follower.cycle_times() {
            for (quantile, value) in [("0.5", cycle.p50_secs), ("0.95", cycle.p95_secs)] {
                if let Some(value) = value {
                    out.sample(
                        "crossdock_order_stage_duration_seconds",
                        &[("stage", cycle.stage.as_str()), ("quantile", quantile)],
                        f64::from(value),
                    );
                }
            }
        }
    }

    out.family(
        "crossdock_retries_total",
        "counter",
        "Retries by lane and failure class.",
    );
    for ((lane, class), count) in &snapshot.retries {
        out.sample(
            "crossdock_retries_total",
            &[("lane", lane), ("class", class)],
            *count as f64,
        );
    }

    out.family(
        "crossdock_dead_lettered_total",
        "counter",
        "Tasks dead-lettered by this process.",
    );
    out.sample(
        "crossdock_dead_lettered_total",
        &[],
        snapshot.dead_lettered as f64,
    );

    out.family(
        "crossdock_steps_chained_total",
        "counter",
        "Tasks leased with the commit of the step before them (no separate lease).",
    );
    out.sample(
        "crossdock_steps_chained_total",
        &[],
        snapshot.steps_chained as f64,
    );

    out.family(
        "crossdock_dead_letters_open",
        "gauge",
        "Open dead letters (the exception queue's size).",
    );
    out.sample(
        "crossdock_dead_letters_open",
        &[],
        open_dead_letters(store).await? as f64,
    );

    let depths = store.lane_depths(now).await?;
    out.family(
        "crossdock_lane_queue_depth",
        "gauge",
        "Queued tasks per lane and state.",
    );
    for depth in &depths {
        for (state_name, value) in [
            ("pending", depth.pending),
            ("due", depth.due),
            ("leased", depth.leased),
            ("blocked", depth.blocked),
        ] {
            out.sample(
                "crossdock_lane_queue_depth",
                &[("lane", &depth.lane), ("state", state_name)],
                value as f64,
            );
        }
    }
    out.family(
        "crossdock_lane_oldest_pending_seconds",
        "gauge",
        "Age of the oldest pending task per lane.",
    );
    for depth in &depths {
        let age = depth
            .oldest_pending
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        out.sample(
            "crossdock_lane_oldest_pending_seconds",
            &[("lane", &depth.lane)],
            age,
        );
    }

    out.family(
        "crossdock_circuit_state",
        "gauge",
        "Circuit breaker per lane: 0 closed, 1 half-open, 2 open.",
    );
    for lane in LaneName::ALL {
        out.sample(
            "crossdock_circuit_state",
            &[("lane", lane.as_str())],
            f64::from(engine.lane(lane).breaker().gauge()),
        );
    }
    out.family(
        "crossdock_lane_paused",
        "gauge",
        "1 while a lane is paused because its downstream throttles.",
    );
    for lane in LaneName::ALL {
        out.sample(
            "crossdock_lane_paused",
            &[("lane", lane.as_str())],
            if engine.lane(lane).is_paused() {
                1.0
            } else {
                0.0
            },
        );
    }

    if let Some(usage) = engine.salesforce().usage() {
        out.family(
            "crossdock_salesforce_api_calls_remaining",
            "gauge",
            "Salesforce API calls left in the current 24-hour window.",
        );
        out.sample(
            "crossdock_salesforce_api_calls_remaining",
            &[],
            usage.remaining() as f64,
        );
        out.family(
            "crossdock_salesforce_api_calls_limit",
            "gauge",
            "Salesforce API call limit of the 24-hour window.",
        );
        out.sample(
            "crossdock_salesforce_api_calls_limit",
            &[],
            usage.limit as f64,
        );
    }

    out.family("crossdock_orders", "gauge", "Orders per status.");
    for (status, count) in store.order_counts().await? {
        out.sample("crossdock_orders", &[("status", &status)], count as f64);
    }

    let report = ops.health().await?;
    out.family(
        "crossdock_health_exceptions",
        "gauge",
        "Business exceptions per flow (work past its latency target).",
    );
    for flow in &report.flows {
        out.sample(
            "crossdock_health_exceptions",
            &[("flow", &flow.flow)],
            flow.exceptions as f64,
        );
    }
    out.family(
        "crossdock_health_value_at_risk",
        "gauge",
        "Order value at risk per flow and currency.",
    );
    let mut at_risk: BTreeMap<(String, String), rust_decimal::Decimal> = BTreeMap::new();
    for e in &report.exceptions {
        if !e.value_at_risk.is_zero() {
            *at_risk
                .entry((e.flow.clone(), e.currency.clone()))
                .or_default() += e.value_at_risk;
        }
    }
    for ((flow, currency), value) in at_risk {
        let value: f64 = value.to_string().parse().unwrap_or(0.0);
        out.sample(
            "crossdock_health_value_at_risk",
            &[("flow", &flow), ("currency", &currency)],
            value,
        );
    }
    Ok(out.finish())
}

async fn open_dead_letters(store: &crossdock_store::SharedStore) -> crossdock_store::Result<u64> {
    let mut filter = DeadLetterFilter {
        status: Some(DeadLetterStatus::Open),
        limit: Some(10_000),
        ..DeadLetterFilter::default()
    };
    let mut total = 0u64;
    for _ in 0..100 {
        let page = store.dead_letters(filter.clone()).await?;
        total += page.len() as u64;
        if page.len() < 10_000 {
            break;
        }
        filter.after_id = page.last().map(|d| d.id);
    }
    Ok(total)
}

/// `GET /metrics`.
pub async fn serve(Extension(ops): Extension<Ops>) -> Response {
    match render(&ops).await {
        Ok(text) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values_and_format_numbers() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "An \"x\".\nSecond line");
        out.sample(
            "x_total",
            &[("a", "q\"uote"), ("b", "back\\slash\nnl")],
            3.0,
        );
        out.sample("x_total", &[], 0.25);
        out.sample("x_total", &[], f64::INFINITY);
        let text = out.finish();
        assert_eq!(
            text,
            "# HELP x_total An \"x\".\\nSecond line\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 3\nx_total 0.25\nx_total +Inf\n"
        );
    }
}
