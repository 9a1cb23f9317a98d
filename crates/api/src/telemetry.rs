//! Logs and traces: structured logs (JSON lines or text) with correlation ids, and
//! OpenTelemetry traces exported over OTLP (HTTP/protobuf) when an endpoint is configured.
//!
//! The binary calls [`install`] once at start and keeps the returned [`TelemetryGuard`] until
//! exit (dropping it flushes the spans still buffered). Every `tracing` span of the process —
//! an order stage ([`order_stage`]) and the connector calls made inside it — becomes an
//! OpenTelemetry span of one trace; log lines carry the fields of their spans (order id,
//! stage, correlation id).

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::{Deserialize, Serialize};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line, with the fields of the current span and its parents.
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// Telemetry settings (`[telemetry]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Log filter (`EnvFilter` syntax), e.g. `info` or `crossdock_engine=debug,info`.
    pub log_filter: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. No export when absent.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Timeout of one export call, seconds.
    pub otlp_timeout_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".to_owned(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
            service_name: "crossdock".to_owned(),
            otlp_timeout_secs: 5,
        }
    }
}

impl TelemetryConfig {
    /// Checks the settings; every problem at once.
    ///
    /// # Errors
    /// The problems.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if EnvFilter::try_new(&self.log_filter).is_err() {
            problems.push(format!(
                "telemetry.log_filter `{}` is not a valid filter",
                self.log_filter
            ));
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(format!(
                "telemetry.otlp_endpoint `{endpoint}` must be an http:// or https:// URL"
            ));
        }
        if self.service_name.trim().is_empty() {
            problems.push("telemetry.service_name must not be empty".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Keeps the trace exporter alive; dropping it flushes buffered spans and stops the exporter.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Sends every buffered span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            eprintln!("crossdock: could not flush traces: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("crossdock: could not stop the trace exporter: {error}");
        }
    }
}

/// The OTLP tracer provider for `config`, when an endpoint is set.
///
/// # Errors
/// When the exporter cannot be built.
fn provider(config: &TelemetryConfig) -> Result<Option<SdkTracerProvider>, String> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(config.otlp_timeout_secs.max(1)))
        .build()
        .map_err(|e| format!("cannot build the OTLP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(endpoint.clone())
        .with_timeout(Duration::from_secs(config.otlp_timeout_secs.max(1)))
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter for {endpoint}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// The subscriber `config` describes (logs to stderr, plus the OTLP layer when configured),
/// without installing it.
///
/// # Errors
/// Invalid settings or an exporter that cannot be built.
pub fn subscriber(
    config: &TelemetryConfig,
) -> Result<(Box<dyn Subscriber + Send + Sync>, TelemetryGuard), String> {
    config.validate().map_err(|p| p.join("; "))?;
    let provider = provider(config)?;
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("crossdock")));
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| e.to_string())?;
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let subscriber: Box<dyn Subscriber + Send + Sync> = match config.log_format {
        LogFormat::Json => Box::new(registry.with(json_layer())),
        LogFormat::Text => {
            Box::new(registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
        }
    };
    Ok((subscriber, TelemetryGuard { provider }))
}

fn json_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(std::io::stderr)
}

/// Installs the subscriber for the whole process.
///
/// # Errors
/// Invalid settings, an exporter that cannot be built, or a subscriber already installed.
pub fn install(config: &TelemetryConfig) -> Result<TelemetryGuard, String> {
    let (subscriber, guard) = subscriber(config)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("a log subscriber is already installed: {e}"))?;
    Ok(guard)
}

/// The span of one order stage (e.g. `book`, `sf-sync`): the root of that stage's trace, with
/// the order id and correlation id that log lines inside it carry.
pub fn order_stage(order_id: &str, stage: &str, correlation: Option<&str>) -> tracing::Span {
    tracing::info_span!(
        "order.stage",
        otel.name = format!("{stage} {order_id}"),
        order.id = order_id,
        stage,
        correlation = correlation.unwrap_or(""),
    )
}

/// The span of one call to a connected system, inside the current order stage.
pub fn connector_call(system: &str, operation: &str) -> tracing::Span {
    tracing::info_span!(
        "connector.call",
        otel.name = format!("{system} {operation}"),
        system,
        operation,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_anything_starts() {
        assert!(TelemetryConfig::default().validate().is_ok());
        let bad = TelemetryConfig {
            log_filter: "info,[".to_owned(),
            otlp_endpoint: Some("udp://collector".to_owned()),
            service_name: " ".to_owned(),
            ..TelemetryConfig::default()
        };
        assert_eq!(bad.validate().err().map(|p| p.len()), Some(3));
        assert!(subscriber(&bad).is_err());
    }
}
