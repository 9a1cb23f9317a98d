//! Alerting: rules derived from flow classifications, evaluated periodically, sent to the log
//! and to a webhook (JSON `POST`), one alert per rule and subject while it holds, and a
//! resolve notification when it stops holding.
//!
//! | rule | subject | fires when | severity |
//! |---|---|---|---|
//! | `flow_backlog_late` | flow | a critical or high flow has work older than its latency target | critical for critical flows, else warning |
//! | `recovery_objective_breached` | flow | a flow's oldest exception is older than its recovery objective | critical |
//! | `breaker_open_too_long` | lane | a lane's circuit breaker stayed open longer than the shortest recovery objective of the flows it serves | critical |
//! | `financial_dead_letters` | flow | a flow with financial data has open dead letters | warning |
//!
//! [`Alerting`] is a component: build it from [`AlertsConfig`] and an [`Ops`], then
//! `run(shutdown)`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crossdock_domain::flow::{Criticality, Sensitivity};
use crossdock_domain::order::Lane as LaneName;
use crossdock_engine::BreakerState;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Ops;
use super::format;

/// Alerting settings (`[ops.alerts]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether rules are evaluated at all.
    pub enabled: bool,
    /// Seconds between evaluations.
    pub interval_secs: u64,
    /// Where to `POST` alert notifications (JSON). Only the log when absent.
    pub webhook_url: Option<String>,
    /// Timeout of one webhook call, seconds.
    pub webhook_timeout_secs: u64,
    /// Attempts per notification before it is given up (logged).
    pub webhook_attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 30,
            webhook_url: None,
            webhook_timeout_secs: 5,
            webhook_attempts: 3,
        }
    }
}

impl AlertsConfig {
    /// Checks the settings; every problem at once.
    ///
    /// # Errors
    /// The problems.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.interval_secs == 0 {
            problems.push("ops.alerts.interval_secs must be at least 1".to_owned());
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!(
                "ops.alerts.webhook_url `{url}` must be an http:// or https:// URL"
            ));
        }
        if self.webhook_attempts == 0 {
            problems.push("ops.alerts.webhook_attempts must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// An alert that holds now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Rule name.
    pub rule: String,
    /// What it is about (a flow or a lane).
    pub subject: String,
    /// `critical` or `warning`.
    pub severity: String,
    /// One line for people.
    pub summary: String,
    /// Since when it holds.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Figures behind it.
    pub details: Value,
}

/// A notification sent (or to send).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `firing` or `resolved`.
    pub status: String,
    /// The alert.
    #[serde(flatten)]
    pub alert: ActiveAlert,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The lane a task kind runs on.
pub fn lane_of_step(kind: &str) -> LaneName {
    match kind {
        "inbound" | "close" | "rma-close" => LaneName::Hub,
        k if k.starts_with("sf-") => LaneName::Salesforce,
        _ => LaneName::Erp,
    }
}

/// The alerting component.
pub struct Alerting {
    config: AlertsConfig,
    ops: Ops,
    client: reqwest::Client,
    active: BTreeMap<(String, String), ActiveAlert>,
    breaker_open_since: HashMap<&'static str, OffsetDateTime>,
}

impl Alerting {
    /// Builds the component.
    ///
    /// # Errors
    /// Invalid settings, or an HTTP client that cannot be built.
    pub fn new(config: AlertsConfig, ops: Ops) -> Result<Self, String> {
        config.validate().map_err(|p| p.join("; "))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.webhook_timeout_secs.max(1)))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            config,
            ops,
            client,
            active: BTreeMap::new(),
            breaker_open_since: HashMap::new(),
        })
    }

    /// Alerts holding now.
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.active.values().cloned().collect()
    }

    /// Evaluates every rule once, sends a notification for each alert that starts or stops
    /// holding, and returns those notifications.
    ///
    /// # Errors
    /// When the store fails (nothing is sent then).
    pub async fn evaluate(&mut self) -> Result<Vec<Notification>, crossdock_store::Error> {
        let now = self.ops.state().engine.clock().now();
        let holding = self.rules(now).await?;
        let mut notifications = Vec::new();
        let keys: Vec<(String, String)> = self.active.keys().cloned().collect();
        for key in keys {
            if !holding.contains_key(&key)
                && let Some(alert) = self.active.remove(&key)
            {
                notifications.push(Notification {
                    status: "resolved".to_owned(),
                    alert,
                    at: now,
                });
            }
        }
        for (key, mut alert) in holding {
            match self.active.get_mut(&key) {
                Some(existing) => {
                    // Still holding: keep its start, refresh the figures, say nothing.
                    alert.since = existing.since;
                    *existing = alert;
                }
                None => {
                    notifications.push(Notification {
                        status: "firing".to_owned(),
                        alert: alert.clone(),
                        at: now,
                    });
                    self.active.insert(key, alert);
                }
            }
        }
        self.ops.set_active_alerts(self.active());
        for notification in &notifications {
            self.send(notification).await;
        }
        Ok(notifications)
    }

    async fn rules(
        &mut self,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<(String, String), ActiveAlert>, crossdock_store::Error> {
        let mut out = BTreeMap::new();
        let mut add =
            |rule: &str, subject: &str, severity: &str, summary: String, details: Value| {
                out.insert(
                    (rule.to_owned(), subject.to_owned()),
                    ActiveAlert {
                        rule: rule.to_owned(),
                        subject: subject.to_owned(),
                        severity: severity.to_owned(),
                        summary,
                        since: now,
                        details,
                    },
                );
            };
        let report = self.ops.compute_health().await?;
        let flows = self.ops.settings().flows.clone();
        for flow in &report.flows {
            if flow.exceptions == 0 {
                continue;
            }
            let money: Vec<String> = report
                .exceptions
                .iter()
                .filter(|e| e.flow == flow.flow && !e.value_at_risk.is_zero())
                .fold(
                    BTreeMap::<String, rust_decimal::Decimal>::new(),
                    |mut m, e| {
                        *m.entry(e.currency.clone()).or_default() += e.value_at_risk;
                        m
                    },
                )
                .into_iter()
                .map(|(c, v)| format::money(v, &c))
                .collect();
            let details = json!({
                "exceptions": flow.exceptions,
                "worst_late_by_secs": flow.worst_late_by_secs,
                "value_at_risk": money,
            });
            if flow.criticality <= Criticality::High {
                let severity = if flow.criticality == Criticality::Critical {
                    "critical"
                } else {
                    "warning"
                };
                add(
                    "flow_backlog_late",
                    &flow.flow,
                    severity,
                    format!(
                        "{}: {} item(s) past the {} target, worst {}{}",
                        flow.flow,
                        flow.exceptions,
                        format::duration(
                            i64::try_from(flow.latency_target_secs).unwrap_or(i64::MAX)
                        ),
                        format::late(flow.worst_late_by_secs),
                        if money.is_empty() {
                            String::new()
                        } else {
                            format!(", {} at risk", money.join(" + "))
                        }
                    ),
                    details.clone(),
                );
            }
            if flow.status == "failing" {
                add(
                    "recovery_objective_breached",
                    &flow.flow,
                    "critical",
                    format!(
                        "{}: work has waited longer than the {} recovery objective",
                        flow.flow,
                        format::duration(
                            i64::try_from(flow.recovery_objective_secs).unwrap_or(i64::MAX)
                        )
                    ),
                    details,
                );
            }
        }
        let engine = &self.ops.state().engine;
        for lane in LaneName::ALL {
            let state = engine.lane(lane).breaker();
            let name = lane.as_str();
            if state == BreakerState::Closed {
                self.breaker_open_since.remove(name);
                continue;
            }
            let since = *self.breaker_open_since.entry(name).or_insert(now);
            let objective = flows
                .iter()
                .filter(|f| f.steps.iter().any(|s| lane_of_step(s) == lane))
                .map(|f| f.classification.recovery_objective_secs)
                .min()
                .unwrap_or(900);
            let open_for = (now - since).whole_seconds();
            if open_for > i64::try_from(objective).unwrap_or(i64::MAX) {
                let mut alert_since = since;
                if let Some(existing) = self
                    .active
                    .get(&("breaker_open_too_long".to_owned(), name.to_owned()))
                {
                    alert_since = existing.since;
                }
                out.insert(
                    ("breaker_open_too_long".to_owned(), name.to_owned()),
                    ActiveAlert {
                        rule: "breaker_open_too_long".to_owned(),
                        subject: name.to_owned(),
                        severity: "critical".to_owned(),
                        summary: format!(
                            "The {name} connection has been failing for {} (recovery objective {})",
                            format::duration(open_for),
                            format::duration(i64::try_from(objective).unwrap_or(i64::MAX))
                        ),
                        since: alert_since,
                        details: json!({ "breaker": state, "open_for_secs": open_for, "recovery_objective_secs": objective }),
                    },
                );
            }
        }
        let store = self.ops.state().store();
        for flow in flows
            .iter()
            .filter(|f| f.classification.sensitivity == Sensitivity::Financial)
        {
            let mut open = 0usize;
            for step in &flow.steps {
                open += store
                    .dead_letters(DeadLetterFilter {
                        status: Some(DeadLetterStatus::Open),
                        kind: Some(step.clone()),
                        limit: Some(1_000),
                        ..DeadLetterFilter::default()
                    })
                    .await?
                    .len();
            }
            if open > 0 {
                out.insert(
                    ("financial_dead_letters".to_owned(), flow.name.clone()),
                    ActiveAlert {
                        rule: "financial_dead_letters".to_owned(),
                        subject: flow.name.clone(),
                        severity: "warning".to_owned(),
                        summary: format!(
                            "{}: {open} failed step(s) with financial records wait for someone",
                            flow.name
                        ),
                        since: now,
                        details: json!({ "open_dead_letters": open }),
                    },
                );
            }
        }
        Ok(out)
    }

    async fn send(&self, notification: &Notification) {
        let alert = &notification.alert;
        if notification.status == "firing" {
            warn!(rule = %alert.rule, subject = %alert.subject, severity = %alert.severity, "Alert firing: {}", alert.summary);
        } else {
            info!(rule = %alert.rule, subject = %alert.subject, "Alert resolved: {}", alert.summary);
        }
        let Some(url) = &self.config.webhook_url else {
            return;
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=self.config.webhook_attempts {
            match self.client.post(url).json(notification).send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    warn!(rule = %alert.rule, attempt, status = response.status().as_u16(), "Alert webhook refused the notification");
                }
                Err(error) => {
                    warn!(rule = %alert.rule, attempt, %error, "Alert webhook unreachable")
                }
            }
            if attempt < self.config.webhook_attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }

    /// Evaluates every `interval_secs` until `shutdown`. A failed evaluation is logged and
    /// retried at the next tick.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if !self.config.enabled {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.interval_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.evaluate().await {
                warn!(%error, "Alert evaluation failed");
            }
        }
    }
}
