//! Logs and traces: structured logs (JSON lines or text) with correlation ids, and
//! OpenTelemetry traces exported over OTLP (HTTP/protobuf) when an endpoint is configured.
//!
//! The binary calls [`install`] once at start and keeps the returned [`TelemetryGuard`] until
//! exit (dropping it flushes the spans still buffered). Every `tracing` span of the process —
//! an order stage ([`order_stage`]) and the connector calls made inside it — becomes an
//! OpenTelemetry span of one trace; log lines carry the fields of their spans (order id,
//! stage, correlation id). [`TracedErp`] and [`TracedSalesforce`] wrap the connectors so each
//! call is a span inside the span of the order stage its idempotency key names.

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
        records = tracing::field::Empty,
    )
}

/// The order and stage an idempotency key names (`ORDER/step`, e.g. `ORD-1/book`).
fn stage_of(key: &str) -> Option<(&str, &str)> {
    key.rsplit_once('/')
        .filter(|(order, step)| !order.is_empty() && !step.is_empty())
}

/// The spans of a keyed connector call: the order stage the key names (or none) and the call
/// inside it. The future runs in both, so the stage lasts as long as the call.
fn keyed_call(system: &str, operation: &str, key: &str) -> (tracing::Span, tracing::Span) {
    match stage_of(key) {
        Some((order, stage)) => {
            let stage_span = order_stage(order, stage, None);
            let call = stage_span.in_scope(|| connector_call(system, operation));
            (stage_span, call)
        }
        None => (tracing::Span::none(), connector_call(system, operation)),
    }
}

/// An ERP adapter whose every call is a span: keyed calls (booking, cancellation, returns,
/// credit memos, refunds, customer sync) inside the span of the order stage their
/// idempotency key names, so each order stage is one trace from the hub to the ERP.
pub struct TracedErp(pub std::sync::Arc<dyn crossdock_ports::Erp>);

/// A Salesforce adapter whose every call is a span; a write of one order's state is inside
/// that order's `sf-sync` stage span.
pub struct TracedSalesforce(pub std::sync::Arc<dyn crossdock_ports::Salesforce>);

mod traced {
    use crossdock_domain::account::Account;
    use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
    use crossdock_domain::ids::{AccountId, LineNo, LocationId, RmaId, Sku};
    use crossdock_domain::money::Currency;
    use crossdock_domain::order::{CreditAnswer, OrderDraft};
    use crossdock_domain::summary::OrderSummary;
    use crossdock_ports::erp::{
        BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
        CustomerRef, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
        ReturnAuthorisation, ReturnReceipt, ReturnRequest,
    };
    use crossdock_ports::failure::Result;
    use crossdock_ports::salesforce::ApiUsage;
    use rust_decimal::Decimal;
    use tracing::Instrument;

    use super::{TracedErp, TracedSalesforce, connector_call, keyed_call, order_stage};

    #[async_trait::async_trait]
    impl crossdock_ports::Erp for TracedErp {
        fn name(&self) -> &str {
            self.0.name()
        }
        async fn prices(
            &self,
            account: &AccountId,
            items: &[PriceRequest],
            on: time::Date,
        ) -> Result<Vec<PriceQuote>> {
            self.0
                .prices(account, items, on)
                .instrument(connector_call("erp", "prices"))
                .await
        }
        async fn availability(
            &self,
            skus: &[Sku],
            location: Option<&LocationId>,
        ) -> Result<Vec<InventoryLevel>> {
            self.0
                .availability(skus, location)
                .instrument(connector_call("erp", "availability"))
                .await
        }
        async fn credit_check(
            &self,
            account: &AccountId,
            amount: Decimal,
            currency: Currency,
        ) -> Result<CreditAnswer> {
            self.0
                .credit_check(account, amount, currency)
                .instrument(connector_call("erp", "credit_check"))
                .await
        }
        async fn fulfilment_options(
            &self,
            request: &FulfilmentRequest,
        ) -> Result<Vec<FulfilmentOption>> {
            self.0
                .fulfilment_options(request)
                .instrument(connector_call("erp", "fulfilment_options"))
                .await
        }
        async fn book_order(
            &self,
            order: &BookingRequest,
            key: &str,
        ) -> Result<BookingConfirmation> {
            let (stage, call) = keyed_call("erp", "book_order", key);
            self.0
                .book_order(order, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn cancel_order(
            &self,
            erp_ref: &str,
            reason: &str,
            key: &str,
        ) -> Result<CancelOutcome> {
            let (stage, call) = keyed_call("erp", "cancel_order", key);
            self.0
                .cancel_order(erp_ref, reason, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn order(&self, erp_ref: &str) -> Result<ErpOrder> {
            self.0
                .order(erp_ref)
                .instrument(connector_call("erp", "order"))
                .await
        }
        async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch> {
            self.0
                .changes(cursor, limit)
                .instrument(connector_call("erp", "changes"))
                .await
        }
        async fn upsert_customer(&self, account: &Account, key: &str) -> Result<CustomerRef> {
            let (stage, call) = keyed_call("erp", "upsert_customer", key);
            self.0
                .upsert_customer(account, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn credit_status(&self, account: &AccountId) -> Result<CreditReport> {
            self.0
                .credit_status(account)
                .instrument(connector_call("erp", "credit_status"))
                .await
        }
        async fn create_return(
            &self,
            request: &ReturnRequest,
            key: &str,
        ) -> Result<ReturnAuthorisation> {
            let (stage, call) = keyed_call("erp", "create_return", key);
            self.0
                .create_return(request, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn receive_return(
            &self,
            erp_rma: &str,
            lines: &[(LineNo, u32)],
            key: &str,
        ) -> Result<ReturnReceipt> {
            let (stage, call) = keyed_call("erp", "receive_return", key);
            self.0
                .receive_return(erp_rma, lines, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn issue_credit_memo(&self, erp_rma: &str, key: &str) -> Result<CreditMemo> {
            let (stage, call) = keyed_call("erp", "issue_credit_memo", key);
            self.0
                .issue_credit_memo(erp_rma, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn issue_refund(&self, credit_memo: &str, key: &str) -> Result<Refund> {
            let (stage, call) = keyed_call("erp", "issue_refund", key);
            self.0
                .issue_refund(credit_memo, key)
                .instrument(call)
                .instrument(stage)
                .await
        }
    }

    #[async_trait::async_trait]
    impl crossdock_ports::Salesforce for TracedSalesforce {
        async fn write_orders(&self, orders: &[OrderSummary]) -> Vec<Result<()>> {
            let (stage, call) = match orders {
                [one] => {
                    let stage = order_stage(one.id.as_str(), "sf-sync", None);
                    let call = stage.in_scope(|| connector_call("salesforce", "write_orders"));
                    (stage, call)
                }
                _ => (
                    tracing::Span::none(),
                    connector_call("salesforce", "write_orders"),
                ),
            };
            call.record("records", orders.len());
            self.0
                .write_orders(orders)
                .instrument(call)
                .instrument(stage)
                .await
        }
        async fn write_returns(&self, returns: &[(OrderSummary, RmaId)]) -> Vec<Result<()>> {
            self.0
                .write_returns(returns)
                .instrument(connector_call("salesforce", "write_returns"))
                .await
        }
        async fn write_inventory(&self, levels: &[InventoryLevel]) -> Vec<Result<()>> {
            self.0
                .write_inventory(levels)
                .instrument(connector_call("salesforce", "write_inventory"))
                .await
        }
        async fn write_credit(&self, reports: &[CreditReport]) -> Vec<Result<()>> {
            self.0
                .write_credit(reports)
                .instrument(connector_call("salesforce", "write_credit"))
                .await
        }
        async fn read_order(&self, sf_id: &str) -> Result<OrderDraft> {
            self.0
                .read_order(sf_id)
                .instrument(connector_call("salesforce", "read_order"))
                .await
        }
        fn usage(&self) -> Option<ApiUsage> {
            self.0.usage()
        }
    }
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
