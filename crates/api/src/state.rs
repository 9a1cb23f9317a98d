//! Shared state of every handler: the engine (and through it the store, ports and clock), the
//! API settings, credential verifiers, rate limiter and small caches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_engine::Engine;
use crossdock_store::SharedStore;
use tokio::time::Instant;

use crate::auth::jwt::JwtVerifier;
use crate::auth::keys::{self, ApiKeyRecord};
use crate::config::ApiConfig;
use crate::problem::Problem;
use crate::ratelimit::RateLimiter;
use crate::webhooks::{CanonicalChanges, WebhookDecoder};

/// What handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The running engine.
    pub engine: Arc<Engine>,
    shared: Arc<Shared>,
}

struct Shared {
    config: ApiConfig,
    jwt: Option<Arc<JwtVerifier>>,
    limiter: RateLimiter,
    /// Verified key records by id, with when they were read (see `key_cache_secs`).
    keys: Mutex<HashMap<String, (Instant, Option<ApiKeyRecord>)>>,
    /// Last measured durable backlog and when (measured at most every 250 ms).
    backlog: Mutex<Option<(Instant, u64)>>,
    decoder: Arc<dyn WebhookDecoder>,
}

impl AppState {
    /// State around an engine with the default settings (no JWT, no webhooks).
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::build(
            engine,
            ApiConfig::default(),
            None,
            Arc::new(CanonicalChanges),
        )
    }

    /// State with settings; reads the JWKS file when JWT is configured.
    ///
    /// # Errors
    /// Invalid settings or an unreadable JWKS.
    pub fn with_config(engine: Arc<Engine>, config: ApiConfig) -> Result<Self, String> {
        config.validate().map_err(|problems| problems.join("; "))?;
        let jwt = config
            .jwt
            .as_ref()
            .map(JwtVerifier::load)
            .transpose()?
            .map(Arc::new);
        Ok(Self::build(engine, config, jwt, Arc::new(CanonicalChanges)))
    }

    /// Replaces the decoder of webhook bodies (an ERP adapter's own format).
    #[must_use]
    pub fn with_webhook_decoder(self, decoder: Arc<dyn WebhookDecoder>) -> Self {
        let config = self.shared.config.clone();
        let jwt = self.shared.jwt.clone();
        Self::build(self.engine, config, jwt, decoder)
    }

    fn build(
        engine: Arc<Engine>,
        config: ApiConfig,
        jwt: Option<Arc<JwtVerifier>>,
        decoder: Arc<dyn WebhookDecoder>,
    ) -> Self {
        Self {
            engine,
            shared: Arc::new(Shared {
                config,
                jwt,
                limiter: RateLimiter::default(),
                keys: Mutex::new(HashMap::new()),
                backlog: Mutex::new(None),
                decoder,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        self.engine.store()
    }

    /// API settings.
    pub fn config(&self) -> &ApiConfig {
        &self.shared.config
    }

    /// The JWT verifier, when configured.
    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.shared.jwt.as_deref()
    }

    /// Rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.shared.limiter
    }

    /// Webhook body decoder.
    pub fn webhook_decoder(&self) -> &Arc<dyn WebhookDecoder> {
        &self.shared.decoder
    }

    /// The key record of an id, from memory when read recently.
    ///
    /// # Errors
    /// 503 when the store fails.
    pub async fn key_record(&self, id: &str) -> Result<Option<ApiKeyRecord>, Problem> {
        let ttl = Duration::from_secs(self.config().key_cache_secs);
        let now = Instant::now();
        {
            let cache = self
                .shared
                .keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((read_at, record)) = cache.get(id)
                && now.duration_since(*read_at) < ttl
            {
                return Ok(record.clone());
            }
        }
        let record = match self.store().kv_get(keys::NAMESPACE, id).await? {
            Some(value) => serde_json::from_value::<ApiKeyRecord>(value).ok(),
            None => None,
        };
        let mut cache = self
            .shared
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id.to_owned(), (now, record.clone()));
        Ok(record)
    }

    /// Queued tasks over every lane (pending, due or not), measured at most every 250 ms.
    ///
    /// # Errors
    /// 503 when the store fails.
    pub async fn backlog(&self) -> Result<u64, Problem> {
        let now = Instant::now();
        {
            let cached = self
                .shared
                .backlog
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, depth)) = *cached
                && now.duration_since(at) < Duration::from_millis(250)
            {
                return Ok(depth);
            }
        }
        let depths = self.store().lane_depths(self.engine.clock().now()).await?;
        let depth = depths.iter().map(|d| d.pending).sum();
        *self
            .shared
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, depth));
        Ok(depth)
    }
}
