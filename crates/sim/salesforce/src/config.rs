//! Simulator configuration: listeners, credentials, limits, retention and fault knobs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Credentials the simulated org accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    /// Connected-app consumer key (`client_id`, JWT `iss`).
    pub client_id: String,
    /// Connected-app consumer secret.
    pub client_secret: String,
    /// Integration user's username (JWT `sub`).
    pub username: String,
    /// Integration user's password.
    pub password: String,
    /// Security token appended to the password (may also be omitted by clients).
    pub security_token: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            client_id: "3MVG9crossdockSimulatorConsumerKey".into(),
            client_secret: "crossdock-sim-secret".into(),
            username: "integration@crossdock.sim".into(),
            password: "crossdock-password".into(),
            security_token: "SIMTOKEN123".into(),
        }
    }
}

/// Fault knobs (also settable at run time through `PUT /__sim/faults`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency on every REST call, milliseconds.
    pub latency_ms: u64,
    /// Extra random latency up to this many milliseconds.
    pub latency_jitter_ms: u64,
    /// Probability (0–1) that a data call fails with 503 `SERVER_UNAVAILABLE` or 500 `UNKNOWN_EXCEPTION`.
    pub server_error_rate: f64,
    /// Probability (0–1) that a write (per record in collections) fails with `UNABLE_TO_LOCK_ROW`.
    pub lock_row_rate: f64,
    /// Probability (0–1) that a data call is answered 429 with `Retry-After`.
    pub throttle_rate: f64,
    /// `Retry-After` seconds on 429 answers.
    pub retry_after_secs: u64,
}

impl Faults {
    /// Checks the rates are probabilities.
    ///
    /// # Errors
    /// A message naming the bad knob.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("server_error_rate", self.server_error_rate),
            ("lock_row_rate", self.lock_row_rate),
            ("throttle_rate", self.throttle_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if self.latency_ms.saturating_add(self.latency_jitter_ms) > 600_000 {
            return Err(
                "latency_ms + latency_jitter_ms must not exceed 600000 (10 minutes)".into(),
            );
        }
        Ok(())
    }
}

/// Everything the simulator needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (loopback by default).
    pub host: IpAddr,
    /// HTTPS port of the REST/OAuth/SOAP listener (0 = any free port).
    pub port: u16,
    /// TLS gRPC port of the Pub/Sub API (0 = any free port).
    pub grpc_port: u16,
    /// Also serve REST over plain HTTP on this port (0 = any free port) when set.
    pub http_port: Option<u16>,
    /// Where the CA certificate and server key are written (a fresh temporary folder when unset).
    pub data_dir: Option<PathBuf>,
    /// Seed of every random choice (faults, replay-id steps), so runs repeat.
    pub seed: u64,
    /// Daily API request limit (`DailyApiRequests.Max`).
    pub daily_api_limit: u64,
    /// Access-token lifetime, seconds.
    pub token_ttl_secs: u64,
    /// Event retention, seconds (72 h like Salesforce).
    pub retention_secs: u64,
    /// Interval of keepalive `FetchResponse`s on idle subscriptions, seconds (Salesforce: 270).
    pub keepalive_secs: u64,
    /// Highest API version served (`NN.0`); every version from 31.0 up is served.
    pub max_api_version: u32,
    /// Org name (the `Organization` row).
    pub org_name: String,
    /// Accepted credentials.
    pub credentials: Credentials,
    /// PEM certificates or public keys that verify JWT bearer assertions.
    pub jwt_keys: Vec<String>,
    /// Fault knobs at start.
    pub faults: Faults,
    /// How long the REST listener waits for a request's headers, or for the next part of its
    /// body, before it gives up on the connection, milliseconds.
    pub read_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            grpc_port: 0,
            http_port: None,
            data_dir: None,
            seed: 42,
            daily_api_limit: 15_000,
            token_ttl_secs: 7_200,
            retention_secs: 72 * 3600,
            keepalive_secs: 270,
            max_api_version: 65,
            org_name: "crossdock Simulated Org".into(),
            credentials: Credentials::default(),
            jwt_keys: Vec::new(),
            faults: Faults::default(),
            read_timeout_ms: 30_000,
        }
    }
}
