//! Configuration of the Tryton adapter: where the server is, who logs in, which Tryton
//! warehouses stand for which hub locations, and the accounting choices (taxes, payment
//! method, payment term) the adapter applies.
//!
//! [`Config::validate`] is the pure check (no I/O, every problem at once);
//! [`Config::client_config`] reads the password file.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossdock_domain::money::Currency;
use serde::Deserialize;

use super::client::{ClientConfig, Secret};
use super::error::{Error, Result};

fn default_timeout_secs() -> u64 {
    30
}
fn default_connect_timeout_secs() -> u64 {
    5
}
fn default_feed_overlap_secs() -> u64 {
    5
}
fn default_currency() -> Currency {
    Currency::USD
}
fn default_language() -> String {
    "en".to_owned()
}

/// A Tryton warehouse the hub ships from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    /// Id of the Tryton `stock.location` of type warehouse.
    pub id: i64,
    /// The hub's location name for it.
    pub location: String,
    /// Region it serves best; fulfilment options list it first for orders of that region.
    #[serde(default)]
    pub region: Option<String>,
}

/// Tryton adapter configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the Tryton server, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    /// Database name.
    pub database: String,
    /// Login of the integration user (must not be in the "Credit Limit" group, so that a
    /// credit-limit breach is an error rather than a warning).
    pub user: String,
    /// File holding the integration user's password.
    pub password_file: PathBuf,
    /// Warehouses, the default one for bookings first.
    pub warehouses: Vec<Warehouse>,
    /// Ids of the `account.tax` records put on every sale line.
    #[serde(default)]
    pub taxes: Vec<i64>,
    /// Id of the `account.invoice.payment.method` used to pay refunds.
    pub payment_method: i64,
    /// Id of the `account.invoice.payment_term` for customers the hub creates and for
    /// customers that have none.
    #[serde(default)]
    pub payment_term: Option<i64>,
    /// `UserWarning` names to skip automatically (exact, or the part after the last `.`).
    #[serde(default)]
    pub accepted_warnings: Vec<String>,
    /// Currency of the Tryton company (checked on first contact); every amount is in it.
    #[serde(default = "default_currency")]
    pub currency: Currency,
    /// Language of Tryton's messages.
    #[serde(default = "default_language")]
    pub language: String,
    /// Limit for one JSON-RPC call.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Limit for connecting.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// How far back each change-feed poll re-reads before its cursor, for writes that
    /// commit after later-stamped ones.
    #[serde(default = "default_feed_overlap_secs")]
    pub feed_overlap_secs: u64,
}

impl Config {
    /// Every problem with the configuration, without any I/O.
    ///
    /// # Errors
    /// The list of problems found.
    pub fn validate(&self) -> std::result::Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push(format!(
                "url `{}` must start with http:// or https://",
                self.url
            ));
        }
        if self.database.is_empty() || self.database.contains(['/', '?', '#']) {
            problems.push(format!("database `{}` is not a plain name", self.database));
        }
        if self.user.is_empty() {
            problems.push("user is empty".to_owned());
        }
        if self.warehouses.is_empty() {
            problems.push("warehouses: at least one warehouse is needed".to_owned());
        }
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for warehouse in &self.warehouses {
            if !ids.insert(warehouse.id) {
                problems.push(format!("warehouses: id {} is listed twice", warehouse.id));
            }
            if warehouse.location.is_empty() || !names.insert(warehouse.location.as_str()) {
                problems.push(format!(
                    "warehouses: location name `{}` is empty or listed twice",
                    warehouse.location
                ));
            }
        }
        if self.timeout_secs == 0 || self.connect_timeout_secs == 0 {
            problems.push("timeout_secs and connect_timeout_secs must be positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The JSON-RPC client configuration, reading the password file.
    ///
    /// # Errors
    /// [`Error::Config`] when the configuration is invalid or the password file unreadable.
    pub fn client_config(&self) -> Result<ClientConfig> {
        self.validate()
            .map_err(|problems| Error::Config(problems.join("; ")))?;
        let password = std::fs::read_to_string(&self.password_file).map_err(|e| {
            Error::Config(format!(
                "cannot read the password file {}: {e}",
                self.password_file.display()
            ))
        })?;
        let password = password.trim();
        if password.is_empty() {
            return Err(Error::Config(format!(
                "password file {} is empty",
                self.password_file.display()
            )));
        }
        Ok(ClientConfig {
            url: self.url.clone(),
            database: self.database.clone(),
            login: self.user.clone(),
            password: Secret::new(password),
            language: self.language.clone(),
            timeout: Duration::from_secs(self.timeout_secs),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            accepted_warnings: self.accepted_warnings.clone(),
        })
    }

    /// The warehouse the hub calls `location`.
    pub fn warehouse_named(&self, location: &str) -> Option<&Warehouse> {
        self.warehouses.iter().find(|w| w.location == location)
    }

    /// The warehouse with Tryton id `id`.
    pub fn warehouse_by_id(&self, id: i64) -> Option<&Warehouse> {
        self.warehouses.iter().find(|w| w.id == id)
    }

    /// Builds a configuration from `KEY=VALUE` lines as written by `scripts/setup/tryton.sh`
    /// into `.tryton/env`: `TRYTON_URL`, `TRYTON_DB`, `TRYTON_USER`, `TRYTON_PASSWORD_FILE`,
    /// `TRYTON_WAREHOUSES` (`NAME=ID,…`, default first), `TRYTON_TAX` (`ID,…`),
    /// `TRYTON_PAYMENT_METHOD`, optional `TRYTON_PAYMENT_TERM` and `TRYTON_CURRENCY` (default USD).
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or malformed key.
    pub fn from_env_text(text: &str) -> Result<Self> {
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |key: &str| {
            vars.get(key)
                .copied()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{key} is missing")))
        };
        let int = |key: &str, value: &str| {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| Error::Config(format!("{key}: `{value}` is not an id")))
        };
        let warehouses = get("TRYTON_WAREHOUSES")?
            .split(',')
            .map(|pair| {
                let (name, id) = pair.split_once('=').ok_or_else(|| {
                    Error::Config(format!("TRYTON_WAREHOUSES: `{pair}` is not NAME=ID"))
                })?;
                Ok(Warehouse {
                    id: int("TRYTON_WAREHOUSES", id)?,
                    location: name.trim().to_owned(),
                    region: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let taxes = match vars.get("TRYTON_TAX").copied().filter(|v| !v.is_empty()) {
            Some(list) => list
                .split(',')
                .map(|id| int("TRYTON_TAX", id))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let payment_term = match vars
            .get("TRYTON_PAYMENT_TERM")
            .copied()
            .filter(|v| !v.is_empty())
        {
            Some(id) => Some(int("TRYTON_PAYMENT_TERM", id)?),
            None => None,
        };
        let currency = match vars
            .get("TRYTON_CURRENCY")
            .copied()
            .filter(|v| !v.is_empty())
        {
            Some(code) => code
                .parse()
                .map_err(|e| Error::Config(format!("TRYTON_CURRENCY: {e}")))?,
            None => default_currency(),
        };
        Ok(Self {
            url: get("TRYTON_URL")?.to_owned(),
            database: get("TRYTON_DB")?.to_owned(),
            user: get("TRYTON_USER")?.to_owned(),
            password_file: PathBuf::from(get("TRYTON_PASSWORD_FILE")?),
            warehouses,
            taxes,
            payment_method: int("TRYTON_PAYMENT_METHOD", get("TRYTON_PAYMENT_METHOD")?)?,
            payment_term,
            accepted_warnings: Vec::new(),
            currency,
            language: default_language(),
            timeout_secs: default_timeout_secs(),
            connect_timeout_secs: default_connect_timeout_secs(),
            feed_overlap_secs: default_feed_overlap_secs(),
        })
    }

    /// [`Config::from_env_text`] on a file.
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be read or a key is wrong.
    pub fn from_env_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_env_text(&text)
    }
}
