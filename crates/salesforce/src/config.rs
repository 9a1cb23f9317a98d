//! Configuration of the Salesforce connector (the `[salesforce]` block of `crossdock.toml`).
//!
//! Two phases, like every component: [`Config::validate`] is a pure check that reports every
//! problem at once (what `crossdock config check` runs); [`crate::Adapter::build`] then reads
//! the files it names and sets up the clients.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mapping::{
    CaseValue, CreditValue, InventoryValue, LineValue, OrderValue, ProductValue, ShipmentValue,
};

/// A secret (client secret, access token). Printing it shows `***`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the connector gets its access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// OAuth 2.0 JWT bearer flow: an RS256 assertion signed with the connected app's key.
    JwtBearer {
        /// Connected-app consumer key (the JWT `iss`).
        client_id: String,
        /// Integration user's username (the JWT `sub`).
        username: String,
        /// PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
        private_key_file: PathBuf,
        /// JWT `aud`; defaults to the login URL.
        #[serde(default)]
        audience: Option<String>,
    },
    /// OAuth 2.0 client credentials flow (the connected app's run-as user).
    ClientCredentials {
        /// Connected-app consumer key.
        client_id: String,
        /// Connected-app consumer secret.
        client_secret: Secret,
    },
    /// A fixed access token (tests and short-lived tools); it cannot be refreshed.
    AccessToken {
        /// The token.
        token: Secret,
        /// Instance URL the token belongs to.
        instance_url: String,
    },
}

/// Where a new subscription starts when no checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Only events published from now on.
    #[default]
    Latest,
    /// Every retained event (up to 72 hours).
    Earliest,
}

/// The Pub/Sub API subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubConfig {
    /// gRPC endpoint `host:port` (TLS).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Topics to subscribe to.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// Events requested per `FetchRequest` (1–100): the flow-control window.
    #[serde(default = "default_num_requested")]
    pub num_requested: i32,
    /// Where to start when no checkpoint is stored.
    #[serde(default)]
    pub start: Start,
    /// Name under which replay-id checkpoints are stored (`<name>:<topic>`).
    #[serde(default = "default_subscriber")]
    pub subscriber: String,
    /// Longest wait between reconnect attempts, seconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: u64,
    /// How far back to re-read records when a stored replay id is no longer valid and no
    /// checkpoint time is known, seconds (Salesforce retains events for 72 hours).
    #[serde(default = "default_resync_window")]
    pub resync_window_secs: u64,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        Self {
            endpoint: default_endpoint(),
            topics: default_topics(),
            num_requested: default_num_requested(),
            start: Start::default(),
            subscriber: default_subscriber(),
            reconnect_max_secs: default_reconnect_max(),
            resync_window_secs: default_resync_window(),
        }
    }
}

/// Overrides of the default field mapping: Salesforce field → canonical value (`"omit"`
/// removes a default field). See [`crate::mapping`] for the value names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// `Order` fields.
    pub order: BTreeMap<String, OrderValue>,
    /// `OrderItem` fields (per line).
    pub order_item: BTreeMap<String, LineValue>,
    /// `Shipment` fields.
    pub shipment: BTreeMap<String, ShipmentValue>,
    /// `Case` fields written for returns.
    pub case: BTreeMap<String, CaseValue>,
    /// `Inventory_Level__c` fields.
    pub inventory_level: BTreeMap<String, InventoryValue>,
    /// `Product2` availability fields.
    pub product: BTreeMap<String, ProductValue>,
    /// `Account` credit fields.
    pub account_credit: BTreeMap<String, CreditValue>,
    /// Product fields that give an order line's SKU, first non-empty wins.
    pub sku_fields: Option<Vec<String>>,
    /// Order fields that give the shipping region, first non-empty wins.
    pub region_fields: Option<Vec<String>>,
}

/// The Salesforce connector's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Login URL that serves `/services/oauth2/token` (`https://login.salesforce.com`,
    /// `https://test.salesforce.com` or a My Domain URL).
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// Instance URL; when unset, the one the token endpoint returns.
    #[serde(default)]
    pub instance_url: Option<String>,
    /// REST API version, e.g. `60.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// How to authenticate.
    pub auth: Auth,
    /// Extra CA certificate (PEM) to trust, e.g. the simulator's self-signed CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Sent as `Sforce-Call-Options: client=<name>`; change events carrying it in their
    /// `changeOrigin` are the hub's own writes and are not delivered back.
    #[serde(default = "default_client_name")]
    pub client_name: String,
    /// The integration user's id: change events committed by it are suppressed too. Leave
    /// unset when people share that user.
    #[serde(default)]
    pub integration_user_id: Option<String>,
    /// API calls kept in reserve: when fewer remain in the 24-hour window, writes answer
    /// `Throttled` instead of spending them.
    #[serde(default = "default_reserve")]
    pub daily_limit_reserve: u64,
    /// How long writes wait before probing again once the reserve is reached, seconds.
    #[serde(default = "default_reserve_backoff")]
    pub reserve_backoff_secs: u64,
    /// Whole-request timeout, seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// TCP/TLS connect timeout, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Records per collections call (1–200).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The Pub/Sub API subscriber.
    #[serde(default)]
    pub pubsub: PubSubConfig,
    /// Overrides of the default field mapping.
    #[serde(default)]
    pub mapping: MappingConfig,
}

fn default_login_url() -> String {
    "https://login.salesforce.com".to_owned()
}
fn default_api_version() -> String {
    "60.0".to_owned()
}
fn default_client_name() -> String {
    "crossdock".to_owned()
}
fn default_reserve() -> u64 {
    500
}
fn default_reserve_backoff() -> u64 {
    60
}
fn default_request_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_batch_size() -> usize {
    crossdock_ports::salesforce::MAX_BATCH
}
fn default_endpoint() -> String {
    "api.pubsub.salesforce.com:7443".to_owned()
}
fn default_topics() -> Vec<String> {
    vec![
        "/data/OrderChangeEvent".to_owned(),
        "/data/CaseChangeEvent".to_owned(),
        "/data/AccountChangeEvent".to_owned(),
    ]
}
fn default_num_requested() -> i32 {
    100
}
fn default_subscriber() -> String {
    "salesforce".to_owned()
}
fn default_reconnect_max() -> u64 {
    60
}
fn default_resync_window() -> u64 {
    72 * 3600
}

impl Config {
    /// A configuration with every default and the given login URL and auth.
    pub fn new(login_url: impl Into<String>, auth: Auth) -> Self {
        Self {
            login_url: login_url.into(),
            instance_url: None,
            api_version: default_api_version(),
            auth,
            ca_file: None,
            client_name: default_client_name(),
            integration_user_id: None,
            daily_limit_reserve: default_reserve(),
            reserve_backoff_secs: default_reserve_backoff(),
            request_timeout_secs: default_request_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            batch_size: default_batch_size(),
            pubsub: PubSubConfig::default(),
            mapping: MappingConfig::default(),
        }
    }

    /// Checks the configuration without touching files or the network.
    ///
    /// # Errors
    /// Every problem found, one message each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut url = |name: &str, value: &str| {
            if !(value.starts_with("https://") || value.starts_with("http://"))
                || value.len() <= "https://".len()
            {
                problems.push(format!(
                    "{name} must be an http(s) URL such as https://login.salesforce.com, got `{value}`"
                ));
            }
        };
        url("login_url", &self.login_url);
        if let Some(instance) = &self.instance_url {
            url("instance_url", instance);
        }
        if let Auth::AccessToken { instance_url, .. } = &self.auth {
            url("auth.instance_url", instance_url);
        }
        let version_ok = self
            .api_version
            .split_once('.')
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !version_ok {
            problems.push(format!(
                "api_version must look like `60.0`, got `{}`",
                self.api_version
            ));
        }
        match &self.auth {
            Auth::JwtBearer {
                client_id,
                username,
                ..
            } => {
                if client_id.is_empty() {
                    problems.push("auth.client_id must not be empty".to_owned());
                }
                if username.is_empty() {
                    problems.push("auth.username must not be empty".to_owned());
                }
            }
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => {
                if client_id.is_empty() {
                    problems.push("auth.client_id must not be empty".to_owned());
                }
                if client_secret.expose().is_empty() {
                    problems.push("auth.client_secret must not be empty".to_owned());
                }
            }
            Auth::AccessToken { token, .. } => {
                if token.expose().is_empty() {
                    problems.push("auth.token must not be empty".to_owned());
                }
            }
        }
        if self.client_name.is_empty()
            || self
                .client_name
                .chars()
                .any(|c| c == ',' || c == ';' || c.is_control())
        {
            problems.push(format!(
                "client_name must be non-empty without `,` or `;`, got `{}`",
                self.client_name
            ));
        }
        if !(1..=crossdock_ports::salesforce::MAX_BATCH).contains(&self.batch_size) {
            problems.push(format!(
                "batch_size must be between 1 and {}, got {}",
                crossdock_ports::salesforce::MAX_BATCH,
                self.batch_size
            ));
        }
        if self.request_timeout_secs == 0 {
            problems.push("request_timeout_secs must be at least 1".to_owned());
        }
        if self.connect_timeout_secs == 0 {
            problems.push("connect_timeout_secs must be at least 1".to_owned());
        }
        if self.reserve_backoff_secs == 0 {
            problems.push("reserve_backoff_secs must be at least 1".to_owned());
        }
        let ps = &self.pubsub;
        if !(1..=100).contains(&ps.num_requested) {
            problems.push(format!(
                "pubsub.num_requested must be between 1 and 100, got {}",
                ps.num_requested
            ));
        }
        if ps
            .endpoint
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            problems.push(format!(
                "pubsub.endpoint must be host:port, got `{}`",
                ps.endpoint
            ));
        }
        for topic in &ps.topics {
            if !(topic.starts_with("/data/") || topic.starts_with("/event/")) {
                problems.push(format!(
                    "pubsub.topics: `{topic}` is not a /data/… or /event/… channel"
                ));
            }
        }
        if ps.subscriber.is_empty() {
            problems.push("pubsub.subscriber must not be empty".to_owned());
        }
        if ps.reconnect_max_secs == 0 {
            problems.push("pubsub.reconnect_max_secs must be at least 1".to_owned());
        }
        for (name, list) in [
            ("mapping.sku_fields", &self.mapping.sku_fields),
            ("mapping.region_fields", &self.mapping.region_fields),
        ] {
            if let Some(fields) = list {
                for f in fields {
                    if !is_field_name(f) {
                        problems.push(format!("{name}: `{f}` is not a field API name"));
                    }
                }
            }
        }
        let maps: [(&str, Vec<&String>); 7] = [
            ("order", self.mapping.order.keys().collect()),
            ("order_item", self.mapping.order_item.keys().collect()),
            ("shipment", self.mapping.shipment.keys().collect()),
            ("case", self.mapping.case.keys().collect()),
            (
                "inventory_level",
                self.mapping.inventory_level.keys().collect(),
            ),
            ("product", self.mapping.product.keys().collect()),
            (
                "account_credit",
                self.mapping.account_credit.keys().collect(),
            ),
        ];
        for (table, keys) in maps {
            for k in keys {
                if !is_field_name(k) {
                    problems.push(format!("mapping.{table}: `{k}` is not a field API name"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whole-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// Whether `name` looks like a Salesforce field API name (letters, digits, `_`; starts with a
/// letter). Also keeps names safe to put into SOQL.
pub(crate) fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}
