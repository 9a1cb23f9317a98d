//! Everything the demo runs in one process: the ERP simulator (or a real Tryton), the
//! Salesforce simulator, the store, and the hub with its API and dashboard.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossdock_engine::Engine;
use crossdock_ports::{Clock, Erp, SystemClock};
use crossdock_sim_erp::config::{InvoiceMode, PaymentBehaviour, Scenario};
use crossdock_store::SharedStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ErpSection};
use crate::hub::{self, Hub};

/// The running world.
pub struct World {
    /// The ERP simulator (absent when the demo runs against Tryton).
    pub erp_sim: Option<crossdock_sim_erp::Handle>,
    /// The ERP adapter the hub uses.
    pub erp: Arc<dyn Erp>,
    /// The ERP settings the hub uses.
    pub erp_section: ErpSection,
    /// The Salesforce simulator.
    pub salesforce: crossdock_sim_salesforce::Handle,
    /// The hub's store.
    pub store: SharedStore,
    /// The hub's engine.
    pub engine: Arc<Engine>,
    /// The hub's HTTP address.
    pub hub_url: String,
    /// Stops the hub.
    pub shutdown: CancellationToken,
    hub: tokio::task::JoinHandle<Result<()>>,
}

/// Where the demo keeps its state.
pub fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join("crossdock.sqlite"),
        dir.join("erp"),
        dir.join("salesforce"),
    )
}

/// Creates `dir` and its missing parents readable by their owner only (0700 on Unix): the
/// demo's folders hold the store, the simulators' data and the Salesforce simulator's TLS key.
/// A folder that exists already keeps its mode.
///
/// # Errors
/// The folder cannot be created.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl World {
    /// Starts everything; `erp_kind` is `sim` or `tryton`.
    pub async fn start(dir: &Path, seed: u64, erp_kind: &str, port: u16) -> Result<World> {
        let (store_path, erp_dir, sf_dir) = paths(dir);
        create_private_dir(&erp_dir)?;
        create_private_dir(&sf_dir)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);

        let (erp_sim, erp_section) = match erp_kind {
            "sim" => {
                let mut config = crossdock_sim_erp::Config::default()
                    .starting_now()
                    .with_demo_timings();
                config.seed = seed;
                config.scenario = Scenario {
                    warehouses: 3,
                    stores: 4,
                    items: 40,
                    customers: 25,
                    promotions: 4,
                    // Twenty orders per customer within a minute, paid 5–30 s after delivery.
                    credit_limit_scale: 20,
                };
                config.invoicing = InvoiceMode::OnCompletion;
                // Every customer pays within the day (late payers would pay only after their
                // terms, days later, and their orders could not close during the demo).
                config.payments = PaymentBehaviour {
                    on_time_share: 1.0,
                    late_share: 0.0,
                    ..PaymentBehaviour::demo()
                };
                config.data_dir = Some(erp_dir);
                let handle = crossdock_sim_erp::Simulator::start(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("starting the ERP simulator: {e}"))?;
                let section = ErpSection::Sim(crossdock_erp::sim::Config::new(handle.base_url()));
                (Some(handle), section)
            }
            "tryton" => (None, ErpSection::Tryton(super::tryton::config()?)),
            other => bail!("--erp must be `sim` or `tryton`, not `{other}`"),
        };
        let erp = hub::erp(&erp_section, Arc::clone(&clock)).await?;

        let sf_config = crossdock_sim_salesforce::Config {
            seed,
            data_dir: Some(sf_dir),
            daily_api_limit: 1_000_000,
            token_ttl_secs: 7_200,
            ..crossdock_sim_salesforce::Config::default()
        };
        let salesforce = crossdock_sim_salesforce::Simulator::start(sf_config)
            .await
            .map_err(|e| anyhow::anyhow!("starting the Salesforce simulator: {e}"))?;

        let store = crossdock_store::open(&store_path.display().to_string())
            .await
            .context("opening the store")?;
        let config = hub_config(&salesforce, &erp_section)?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("the hub's port {port} is taken; pass --port"))?;
        let hub_url = format!("http://{}", listener.local_addr()?);
        let hub = Hub::build(config, store.clone(), Arc::clone(&clock), Arc::clone(&erp)).await?;
        let engine = hub.engine.clone();
        let shutdown = CancellationToken::new();
        let hub = tokio::spawn(hub.run(listener, shutdown.clone()));
        Ok(World {
            erp_sim,
            erp,
            erp_section,
            salesforce,
            store,
            engine,
            hub_url,
            shutdown,
            hub,
        })
    }

    /// Stops the hub, then the simulators (which save their state).
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(30), self.hub).await {
            Ok(result) => result??,
            Err(_) => eprintln!("the hub did not stop within 30 s"),
        }
        self.salesforce.shutdown().await;
        if let Some(erp) = self.erp_sim {
            erp.shutdown().await;
        }
        Ok(())
    }
}

/// The hub's configuration for the demo: the simulators' addresses and credentials, and
/// lanes tuned for a laptop.
fn hub_config(salesforce: &crossdock_sim_salesforce::Handle, erp: &ErpSection) -> Result<Config> {
    let credentials = salesforce.credentials();
    // Tryton books about one sale a second and works hard for every poll of its changes.
    let (adapter_timeout_secs, erp_poll_ms) = match erp {
        ErpSection::Sim(c) => (c.timeout_secs, 200),
        ErpSection::Tryton(c) => (c.timeout_secs, 1_000),
        ErpSection::Rest(c) => (c.timeout_secs, 200),
    };
    let erp_timeout_ms = (adapter_timeout_secs + 5) * 1_000;
    let text = format!(
        r#"
[store]
url = "unused: the demo opens its own store"

[salesforce]
login_url = "{base}"
instance_url = "{base}"
ca_file = "{ca}"
client_name = "crossdock"
daily_limit_reserve = 100

[salesforce.auth]
type = "client_credentials"
client_id = "{client_id}"
client_secret = "{client_secret}"

[salesforce.pubsub]
endpoint = "{grpc}"
start = "earliest"
num_requested = 100

[engine]
erp_poll_ms = {erp_poll_ms}
inventory_coalesce_ms = 1000

# An ERP call outlives the adapter's own timeout: a call the hub gave up on could still
# complete in the ERP while a retry runs.
[lanes.erp]
concurrency = 16
timeout_ms = {erp_timeout_ms}
breaker_failures = 5
breaker_open_ms = 2000
lease_ms = {erp_lease_ms}

[lanes.salesforce]
concurrency = 4
batch = 200
timeout_ms = 20000
lease_ms = 40000

[lanes.hub]
concurrency = 256
timeout_ms = 10000
lease_ms = 20000

# The demo's hub listens on 127.0.0.1 only: its dashboard opens without signing in.
[ops]
dashboard_access = "open"
serve_stale_health = true

[retry.erp.transient]
initial = 200
max = 5000
factor = 2.0
max_attempts = 200
"#,
        base = salesforce.base_url(),
        ca = salesforce.ca_pem_path().display(),
        client_id = credentials.client_id,
        client_secret = credentials.client_secret,
        grpc = salesforce.grpc_endpoint(),
        erp_poll_ms = erp_poll_ms,
        erp_timeout_ms = erp_timeout_ms,
        erp_lease_ms = erp_timeout_ms * 2,
    );
    let mut config = Config::parse(&text, Vec::new())?;
    config.erp = Some(erp.clone());
    let problems = config.check();
    if !problems.is_empty() {
        bail!("the demo's hub configuration: {}", problems.join("; "));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_demo_s_folders_are_the_owner_s_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = std::env::temp_dir().join(format!("crossdock-demo-dirs-{}", std::process::id()));
        let (_, erp, salesforce) = paths(&root.join("data"));
        create_private_dir(&erp).expect("created");
        create_private_dir(&salesforce).expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        for dir in [&root, &root.join("data"), &erp, &salesforce] {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
        }
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
