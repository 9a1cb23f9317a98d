//! Starting and stopping the simulator: listeners, TLS, shared state, and the [`Handle`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cdc::EventLog;
use crate::clock::Clock;
use crate::config::{Config, Credentials, Faults};
use crate::http::{self, App};
use crate::persist::{self, Persister};
use crate::state::{AuthState, Cursors, FaultState, Shared, Usage, lock};
use crate::store::{Org, Txn};
use crate::{auth, ids, meta, pubsub, soql, tls};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS material could not be produced.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The gRPC server could not be configured.
    #[error("cannot configure the Pub/Sub API server: {0}")]
    Grpc(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The saved org in the data folder cannot be restored.
    #[error(transparent)]
    State(#[from] persist::PersistError),
}

/// Entry point.
pub struct Simulator;

static INSTANCE: AtomicU64 = AtomicU64::new(0);

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

impl Simulator {
    /// Starts the simulator: binds the listeners, generates TLS material, seeds the org.
    ///
    /// With a configured data folder the TLS material found there is reused and the org saved
    /// in `org.json` is restored (then saved again every few seconds and on shutdown), so a
    /// restarted simulator continues where it stopped.
    ///
    /// # Errors
    /// [`Error`] when a port is taken, the data folder is not writable, the saved org is
    /// damaged or the config is invalid.
    pub async fn start(config: Config) -> Result<Handle, Error> {
        config.faults.validate().map_err(Error::Config)?;
        if config.max_api_version < 40 {
            return Err(Error::Config("max_api_version must be at least 40".into()));
        }
        let (data_dir, owned_dir) = match &config.data_dir {
            Some(d) => (d.clone(), false),
            None => {
                let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
                (
                    std::env::temp_dir()
                        .join(format!("crossdock-sfsim-{}-{n}", std::process::id())),
                    true,
                )
            }
        };
        let material = if owned_dir {
            tls::generate(&data_dir)?
        } else {
            tls::load_or_generate(&data_dir)?
        };
        let persister = (!owned_dir).then(|| Arc::new(Persister::new(&data_dir, &config)));
        let restored = match &persister {
            Some(p) => p.load(&config)?,
            None => None,
        };
        let rest_listener = bind(SocketAddr::new(config.host, config.port)).await?;
        let grpc_listener = bind(SocketAddr::new(config.host, config.grpc_port)).await?;
        let http_listener = match config.http_port {
            Some(p) => Some(bind(SocketAddr::new(config.host, p)).await?),
            None => None,
        };
        let local = |l: &TcpListener| {
            l.local_addr().map_err(|source| Error::Bind {
                addr: SocketAddr::new(config.host, 0),
                source,
            })
        };
        let rest_addr = local(&rest_listener)?;
        let grpc_addr = local(&grpc_listener)?;
        let http_addr = match &http_listener {
            Some(l) => Some(local(l)?),
            None => None,
        };
        let base_url = format!("https://{rest_addr}");

        let restored_org = restored.is_some();
        let (org, auth_state, usage, clock) = match restored {
            Some(r) => {
                if !r.clean {
                    tracing::warn!(
                        "The simulator did not stop cleanly: ids, numbers and replay ids skip ahead (every acknowledged change was saved)"
                    );
                }
                (r.org, r.auth, r.usage, r.clock)
            }
            None => {
                let clock = Clock::default();
                let retention_ms =
                    i64::try_from(config.retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
                let events = EventLog::new(config.seed, retention_ms);
                let org = Org::new(
                    meta::standard(),
                    &config.org_name,
                    &config.credentials.username,
                    clock.now_ms(),
                    events,
                );
                let auth_state = AuthState {
                    jwt_keys: config.jwt_keys.clone(),
                    ..AuthState::default()
                };
                let usage = Usage {
                    max: config.daily_api_limit,
                    ..Usage::default()
                };
                (org, auth_state, usage, clock)
            }
        };
        let org_id18 = ids::to18(&org.org_id);
        let user_id18 = ids::to18(&org.user_id);
        let shared = Arc::new(Shared {
            faults: Mutex::new(FaultState::new(config.faults.clone(), config.seed)),
            usage: Mutex::new(usage),
            auth: Mutex::new(auth_state),
            cursors: Mutex::new(Cursors::default()),
            org: Mutex::new(org),
            clock,
            base_url: base_url.clone(),
            org_id18,
            user_id18,
            persister: persister.clone(),
            config,
        });
        if let Some(p) = &persister {
            // Mark the file as in use at once: a crash from now on is detected at the next start.
            p.save(&shared, false).await?;
        }
        let token = auth::issue_token(&shared);

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let acceptor = TlsAcceptor::from(tls::server_config(&material)?);
        let app = App {
            shared: shared.clone(),
            base: Arc::from(base_url.as_str()),
        };
        tracker.spawn(http::serve(
            rest_listener,
            Some(acceptor),
            app,
            shutdown.clone(),
            tracker.clone(),
        ));
        let http_url = match (http_listener, http_addr) {
            (Some(listener), Some(addr)) => {
                let url = format!("http://{addr}");
                let app = App {
                    shared: shared.clone(),
                    base: Arc::from(url.as_str()),
                };
                tracker.spawn(http::serve(
                    listener,
                    None,
                    app,
                    shutdown.clone(),
                    tracker.clone(),
                ));
                Some(url)
            }
            _ => None,
        };

        let identity = tonic::transport::Identity::from_pem(&material.cert_pem, &material.key_pem);
        let mut grpc = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| Error::Grpc(e.to_string()))?;
        let router = grpc.add_service(crate::proto::pub_sub_server::PubSubServer::new(
            pubsub::Service::new(shared.clone(), shutdown.clone()),
        ));
        let stop = shutdown.clone();
        let grpc_task = tracker.spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
            if let Err(error) = router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
            {
                tracing::error!(%error, "Pub/Sub API server stopped");
            }
        });
        if let Some(p) = &persister {
            tracker.spawn(persist::run(
                Arc::clone(p),
                shared.clone(),
                shutdown.clone(),
            ));
        }
        tracker.close();
        tracing::info!(base_url = %base_url, grpc = %grpc_addr, restored = restored_org, "Salesforce simulator started");
        Ok(Handle {
            shared,
            base_url,
            http_url,
            grpc_addr,
            ca_path: material.ca_path,
            grpc_task,
            data_dir: owned_dir.then_some(data_dir),
            persister,
            restored: restored_org,
            token,
            shutdown,
            tracker,
        })
    }
}

/// A running simulator.
pub struct Handle {
    shared: Arc<Shared>,
    base_url: String,
    http_url: Option<String>,
    grpc_addr: SocketAddr,
    ca_path: PathBuf,
    grpc_task: tokio::task::JoinHandle<()>,
    /// A temporary folder to remove at the end (none when the data folder was configured).
    data_dir: Option<PathBuf>,
    /// Saves the org when a data folder was configured.
    persister: Option<Arc<Persister>>,
    restored: bool,
    token: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Handle {
    /// HTTPS base URL (instance and login URL), e.g. `https://127.0.0.1:8443`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Plain-HTTP base URL, when enabled.
    pub fn http_url(&self) -> Option<&str> {
        self.http_url.as_deref()
    }

    /// Pub/Sub endpoint as clients name it: `localhost:<port>` (TLS).
    pub fn grpc_endpoint(&self) -> String {
        format!("localhost:{}", self.grpc_addr.port())
    }

    /// Socket address of the Pub/Sub listener.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// CA certificate file clients must trust.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_path
    }

    /// Accepted credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.shared.config.credentials
    }

    /// An access token issued at start.
    pub fn access_token(&self) -> &str {
        &self.token
    }

    /// Issues a fresh access token of the integration user.
    pub fn issue_token(&self) -> String {
        auth::issue_token(&self.shared)
    }

    /// Issues an access token acting as another user, e.g. a sales rep, so that the changes
    /// it makes carry that user in `CreatedById`/`LastModifiedById` and in the change events'
    /// `commitUser`. The User record is created (active, holding the same permissions as the
    /// integration user) when the org has no user with this username.
    ///
    /// # Errors
    /// A message when `username` is not shaped like an e-mail address.
    pub fn issue_token_for(&self, username: &str) -> Result<String, String> {
        auth::issue_token_for(&self.shared, username).map(|(token, _)| token)
    }

    /// The 18-character id of the user with this username, when the org has one.
    pub fn user_id_for(&self, username: &str) -> Option<String> {
        lock(&self.shared.org)
            .find_user(username)
            .map(|id| ids::to18(&id))
    }

    /// The file the org is saved to, when a data folder was configured.
    pub fn state_file(&self) -> Option<&Path> {
        self.persister.as_deref().map(Persister::path)
    }

    /// Whether the org was restored from a saved state at start.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Issues a refresh token (as an interactive authorization of the connected app would).
    pub fn issue_refresh_token(&self) -> String {
        auth::issue_refresh_token(&self.shared)
    }

    /// Org id (18 chars).
    pub fn org_id(&self) -> &str {
        &self.shared.org_id18
    }

    /// Integration user id (18 chars).
    pub fn user_id(&self) -> &str {
        &self.shared.user_id18
    }

    /// Read access to the org's state, for tests.
    pub fn state(&self) -> StateView<'_> {
        StateView {
            shared: &self.shared,
        }
    }

    /// Replaces the fault knobs.
    ///
    /// # Errors
    /// A message when a rate is not a probability.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        lock(&self.shared.faults).faults = faults;
        Ok(())
    }

    /// Sets the daily API limit.
    pub fn set_daily_limit(&self, max: u64) {
        lock(&self.shared.usage).max = max;
    }

    /// Resets API usage to zero.
    pub fn reset_usage(&self) {
        let mut u = lock(&self.shared.usage);
        u.used = 0;
        u.by_kind.clear();
        u.refused = 0;
    }

    /// Expires every access token.
    pub fn expire_tokens(&self) -> usize {
        auth::expire_all(&self.shared)
    }

    /// Moves the simulator clock forward.
    pub fn advance_clock(&self, secs: u64) {
        self.shared
            .clock
            .advance(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        let now = self.shared.clock.now_ms();
        lock(&self.shared.org).events.expire(now);
    }

    /// Drops retained events up to `upto` (all when `None`), invalidating their replay ids.
    pub fn trim_events(&self, upto: Option<u64>) -> usize {
        lock(&self.shared.org).events.trim(upto)
    }

    /// Adds a PEM certificate or public key for JWT bearer verification.
    pub fn add_jwt_key(&self, pem: &str) {
        lock(&self.shared.auth).jwt_keys.push(pem.to_string());
    }

    /// Stops the listeners, waits for connections to close and, with a data folder, saves the
    /// org (failures are logged).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        // Clients that keep HTTP/2 connections open would hold a graceful gRPC shutdown
        // forever: give them a moment, then cut them off.
        if tokio::time::timeout(std::time::Duration::from_secs(3), self.tracker.wait())
            .await
            .is_err()
        {
            self.grpc_task.abort();
            self.tracker.wait().await;
        }
        if let Some(p) = &self.persister
            && let Err(error) = p.save(&self.shared, true).await
        {
            tracing::error!(%error, "Could not save the simulated org at shutdown");
        }
        // Drop removes a temporary data folder.
    }
}

impl Drop for Handle {
    /// Dropping a handle without [`Handle::shutdown`] stops the listeners and the saver at
    /// once, without a final save — as a crash would (the last periodic save survives).
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Test accessors over the org.
pub struct StateView<'a> {
    shared: &'a Shared,
}

impl StateView<'_> {
    /// A record as JSON (all fields), by any-form id; `None` when absent.
    pub fn record(&self, id: &str) -> Option<Json> {
        let org = lock(&self.shared.org);
        let (obj, id15) = org.locate(id)?;
        let rec = org.tables[obj].rows.get(&id15)?;
        Some(org.record_json(obj, rec, None, "65.0"))
    }

    /// Number of live records of an object.
    pub fn count(&self, object: &str) -> usize {
        lock(&self.shared.org)
            .counts()
            .get(object)
            .copied()
            .unwrap_or(0)
    }

    /// Runs a SOQL query (all rows, no paging).
    ///
    /// # Errors
    /// The query error code and message.
    pub fn query(&self, soql_text: &str) -> Result<Vec<Json>, (String, String)> {
        let org = lock(&self.shared.org);
        let plan = soql::compile_at(&org, soql_text, self.shared.clock.now_ms())
            .map_err(|e| (e.code.to_string(), e.message))?;
        Ok(soql::run(&org, &plan, false, "65.0").records)
    }

    /// `(used, max)` API requests.
    pub fn api_usage(&self) -> (u64, u64) {
        let u = lock(&self.shared.usage);
        (u.used, u.max)
    }

    /// Calls per endpoint kind.
    pub fn calls_by_kind(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.shared.usage).by_kind.clone()
    }

    /// Latest replay id issued.
    pub fn latest_replay_id(&self) -> u64 {
        lock(&self.shared.org).events.latest()
    }

    /// Retained events as `(replay id, entity, is change event)`.
    pub fn events(&self) -> Vec<(u64, String, bool)> {
        lock(&self.shared.org)
            .events
            .events()
            .iter()
            .map(|e| (e.replay_id, e.entity.clone(), e.change))
            .collect()
    }

    /// Creates a record directly (no API call counted), returning its id.
    ///
    /// # Errors
    /// The DML error code and message.
    pub fn insert(&self, object: &str, fields: Json) -> Result<String, (String, String)> {
        let now = self.shared.clock.now_ms();
        let mut org = lock(&self.shared.org);
        let obj = org
            .meta
            .object_index(object)
            .ok_or_else(|| ("INVALID_TYPE".to_string(), object.to_string()))?;
        let Json::Object(map) = fields else {
            return Err((
                "JSON_PARSER_ERROR".into(),
                "fields must be an object".into(),
            ));
        };
        let mut txn = Txn::begin(&mut org, now, String::new());
        match txn.insert(obj, &map) {
            Ok(id) => {
                txn.commit();
                Ok(id)
            }
            Err(e) => {
                txn.rollback();
                Err((e.code.to_string(), e.message))
            }
        }
    }
}
