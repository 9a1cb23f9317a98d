//! The `[ops]` block of `crossdock.toml`: health views, dashboard access and alerting.

use serde::{Deserialize, Serialize};

use super::alerts::AlertsConfig;

/// Who may open the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DashboardAccess {
    /// Sign in with an API key holding `ops:read` (actions need `ops:write`); the browser
    /// keeps a random session id in an HTTP-only, strictly same-site cookie.
    #[default]
    ApiKey,
    /// Anyone who can reach the port (a hub bound to localhost, the demo). Actions are audited
    /// as `dashboard`. `config check` refuses it with a `hub.listen` that is not a loopback
    /// address.
    Open,
}

/// Settings of the operations views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Days after an invoice is issued before an unpaid balance counts as overdue.
    pub payment_terms_days: u64,
    /// A health report younger than this (milliseconds) is served from memory.
    pub health_cache_ms: u64,
    /// Serve an older report at once and recompute it in the background, so no page waits for
    /// a computation (only the very first one does). Off: a request past `health_cache_ms`
    /// waits for a fresh report.
    pub serve_stale_health: bool,
    /// Most time (milliseconds) one health computation spends reading new history; the rest
    /// is read by the next one (the report says how far behind it is).
    pub catch_up_budget_ms: u64,
    /// Value added to every exception's value at risk before ranking, so problems without an
    /// order value (stock levels) still rank by criticality and lateness.
    pub base_value: rust_decimal::Decimal,
    /// Who may open the dashboard.
    pub dashboard_access: DashboardAccess,
    /// How often the dashboard's live view refreshes (milliseconds).
    pub live_refresh_ms: u64,
    /// Host names (optionally with `:port`) under which the dashboard is reached, besides
    /// `localhost` and IP addresses, which are always accepted. A dashboard request with any
    /// other `Host` is refused, so a DNS name rebound to the hub cannot drive it.
    pub dashboard_hosts: Vec<String>,
    /// Mark the dashboard's session cookie `Secure`, so browsers send it over HTTPS only: set
    /// it when people reach the dashboard over HTTPS (the hub itself serves plain HTTP, a
    /// proxy in front of it ends TLS).
    pub secure_cookies: bool,
    /// Alerting.
    pub alerts: AlertsConfig,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            payment_terms_days: 30,
            health_cache_ms: 1_000,
            serve_stale_health: false,
            catch_up_budget_ms: 150,
            base_value: rust_decimal::Decimal::from(100),
            dashboard_access: DashboardAccess::ApiKey,
            live_refresh_ms: 2_000,
            dashboard_hosts: Vec::new(),
            secure_cookies: false,
            alerts: AlertsConfig::default(),
        }
    }
}

impl OpsConfig {
    /// Checks the settings without side effects; every problem at once.
    ///
    /// # Errors
    /// The list of problems.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.payment_terms_days == 0 {
            problems.push("ops.payment_terms_days must be at least 1".to_owned());
        }
        if self.live_refresh_ms < 250 {
            problems.push("ops.live_refresh_ms must be at least 250".to_owned());
        }
        if self.base_value.is_sign_negative() {
            problems.push("ops.base_value must not be negative".to_owned());
        }
        for host in &self.dashboard_hosts {
            if !valid_host(host) {
                problems.push(format!(
                    "ops.dashboard_hosts: `{host}` is not a host name like `hub.example.com` or `hub.example.com:8443` (no scheme, path or spaces)"
                ));
            }
        }
        if let Err(mut more) = self.alerts.validate() {
            problems.append(&mut more);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Whether `host` is a host name with an optional port, as a `Host` header carries it.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_is_valid_and_unknown_keys_are_refused() {
        let config: OpsConfig = toml::from_str("").expect("empty block");
        assert_eq!(config, OpsConfig::default());
        assert!(config.validate().is_ok());
        let error = toml::from_str::<OpsConfig>("payment_terms = 3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("payment_terms"), "{error}");
        let config: OpsConfig = toml::from_str(
            "payment_terms_days = 0\ndashboard_access = \"open\"\n[alerts]\ninterval_secs = 0\n",
        )
        .expect("parses");
        let problems = config.validate().err().unwrap_or_default();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(config.dashboard_access, DashboardAccess::Open);
    }

    #[test]
    fn dashboard_hosts_must_be_host_names() {
        let config: OpsConfig = toml::from_str(
            "dashboard_hosts = [\"hub.example.com\", \"ops.example.com:8443\", \"https://x.example.com\", \"a b\", \"x.example.com/path\"]",
        )
        .expect("parses");
        let problems = config.validate().err().unwrap_or_default();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("`https://x.example.com`"),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("ops.dashboard_hosts"))
        );
    }
}
