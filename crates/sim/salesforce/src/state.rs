//! Shared simulator state: the org behind one mutex, plus small independent locks for faults,
//! API usage, sessions and query cursors. No lock is ever held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value as Json;

use crate::clock::Clock;
use crate::config::{Config, Faults};
use crate::store::Org;

/// Locks a mutex, recovering the data when a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fault knobs and the seeded generator that draws them.
pub struct FaultState {
    /// Current knobs.
    pub faults: Faults,
    rng: ChaCha8Rng,
}

impl FaultState {
    /// Knobs with a generator seeded by `seed`.
    pub fn new(faults: Faults, seed: u64) -> FaultState {
        FaultState {
            faults,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Draws whether an event of probability `rate` happens.
    pub fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    /// Draws a number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }
}

/// API usage counters.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    /// Calls counted against the daily limit.
    pub used: u64,
    /// Daily limit.
    pub max: u64,
    /// Calls per endpoint kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Calls refused by the daily limit.
    pub refused: u64,
    /// Faults injected per kind.
    pub faults: BTreeMap<String, u64>,
}

impl Usage {
    /// A value that changes whenever the counters or the limit change.
    pub fn fingerprint(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.used,
            self.max,
            self.refused,
            self.by_kind.values().sum(),
            self.faults.values().sum(),
        )
    }
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Expiry on the simulator clock, ms.
    pub expires_ms: i64,
    /// 15-character id of the user the token acts as.
    pub user_id: String,
}

/// Sessions, refresh tokens and JWT verification keys.
#[derive(Debug, Default, Clone)]
pub struct AuthState {
    /// Access token → session.
    pub sessions: HashMap<String, Session>,
    /// Valid refresh token → 15-character id of its user.
    pub refresh_tokens: HashMap<String, String>,
    /// PEM certificates / public keys for JWT bearer.
    pub jwt_keys: Vec<String>,
    /// Moves on every change, so a saver can tell whether to write.
    pub revision: u64,
}

/// A server-side query cursor behind a `nextRecordsUrl`.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// Every row of the result.
    pub rows: std::sync::Arc<Vec<Json>>,
    /// Page size.
    pub batch: usize,
}

/// Open query cursors (bounded: the oldest are dropped).
#[derive(Debug, Default)]
pub struct Cursors {
    /// Locator id → cursor.
    pub open: HashMap<String, Cursor>,
    order: VecDeque<String>,
    next: u64,
}

impl Cursors {
    const MAX_OPEN: usize = 200;

    /// Stores a cursor and returns its locator id.
    pub fn open(&mut self, cursor: Cursor) -> String {
        self.next += 1;
        let id = crate::ids::to18(&crate::ids::make15("01g", self.next));
        self.open.insert(id.clone(), cursor);
        self.order.push_back(id.clone());
        while self.order.len() > Self::MAX_OPEN {
            if let Some(old) = self.order.pop_front() {
                self.open.remove(&old);
            }
        }
        id
    }
}

/// Everything the listeners share.
pub struct Shared {
    /// Start-time configuration.
    pub config: Config,
    /// Org data and events.
    pub org: Mutex<Org>,
    /// Fault knobs.
    pub faults: Mutex<FaultState>,
    /// API usage.
    pub usage: Mutex<Usage>,
    /// Sessions.
    pub auth: Mutex<AuthState>,
    /// Query cursors.
    pub cursors: Mutex<Cursors>,
    /// Simulator clock.
    pub clock: Clock,
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// Org id, 18 chars.
    pub org_id18: String,
    /// Integration user id, 18 chars.
    pub user_id18: String,
    /// Saves the org, with a data folder: answers wait for it ([`crate::persist`]).
    pub persister: Option<std::sync::Arc<crate::persist::Persister>>,
}

impl Shared {
    /// The identity URL of the integration user.
    pub fn identity_url(&self, base: &str) -> String {
        self.identity_url_of(base, &self.user_id18)
    }

    /// The identity URL of a user (18-character id).
    pub fn identity_url_of(&self, base: &str, user18: &str) -> String {
        format!("{base}/id/{}/{user18}", self.org_id18)
    }

    /// The 15-character id of the integration user.
    pub fn user_id15(&self) -> &str {
        &self.user_id18[..15]
    }

    /// The 15-character org id (the token prefix).
    pub fn org_id15(&self) -> &str {
        &self.org_id18[..15]
    }

    /// Current `Sforce-Limit-Info` value.
    pub fn limit_info(&self) -> String {
        let u = lock(&self.usage);
        format!("api-usage={}/{}", u.used, u.max)
    }
}
