//! Configuration of the ERP simulator adapter: where the simulator listens and how long a call
//! may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

fn default_timeout_secs() -> u64 {
    10
}

fn default_connect_timeout_secs() -> u64 {
    2
}

fn default_page_concurrency() -> usize {
    4
}

/// How to reach the ERP simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the simulator's API listener, e.g. `http://127.0.0.1:7070`.
    pub base_url: String,
    /// Base URL of the admin listener when it runs on its own port (it is never cut by
    /// connection-level outages); the API listener otherwise.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// Limit for one call, from connecting to the end of the answer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Limit for opening a connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Most calls in flight at once when one port operation needs one call per item
    /// (prices, availability).
    #[serde(default = "default_page_concurrency")]
    pub fan_out: usize,
}

impl Config {
    /// A configuration with default limits for a simulator at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            admin_url: None,
            timeout_secs: default_timeout_secs(),
            connect_timeout_secs: default_connect_timeout_secs(),
            fan_out: default_page_concurrency(),
        }
    }

    /// Pure check of the values (no I/O); every problem at once.
    ///
    /// # Errors
    /// One message per invalid field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("base_url", Some(&self.base_url)),
            ("admin_url", self.admin_url.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                problems.push(format!(
                    "{name} must be an http:// or https:// URL, got {url:?}"
                ));
            }
        }
        if self.timeout_secs == 0 {
            problems.push("timeout_secs must be at least 1".to_owned());
        }
        if self.connect_timeout_secs == 0 {
            problems.push("connect_timeout_secs must be at least 1".to_owned());
        }
        if self.fan_out == 0 {
            problems.push("fan_out must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Limit for one call.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Limit for connecting.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}
