//! Dashboard sessions: a sign-in gets a random session id (the cookie's value; never the API
//! key), kept in memory with its expiry. Sign-out removes it; a session whose API key was
//! revoked ends at its next request (the key is looked up by id each time).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::auth::Principal;

/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Most sessions kept at once; past it the oldest is dropped.
pub const CAPACITY: usize = 10_000;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub principal: Principal,
    /// When the session ends.
    pub expires: Instant,
}

impl Session {
    /// The API key's id when the session was opened with a hub API key (`key:<id>`).
    pub fn key_id(&self) -> Option<&str> {
        self.principal.id.strip_prefix("key:")
    }
}

/// The open sessions, by the SHA-256 of their id (the id itself is not kept).
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session for `principal`; returns its id (32 random bytes from the operating
    /// system, hex), or `None` when the system has no randomness to give.
    pub fn open(&self, principal: Principal, now: Instant) -> Option<String> {
        let mut bytes = [0_u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).ok()?;
        let id = crate::auth::keys::hex(&bytes);
        let mut open = self.lock();
        if open.len() >= CAPACITY {
            open.retain(|_, s| s.expires > now);
        }
        if open.len() >= CAPACITY
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(
            digest(&id),
            Session {
                principal,
                expires: now + LIFETIME,
            },
        );
        Some(id)
    }

    /// The live session `id` names; an expired one is removed.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let key = digest(id);
        let mut open = self.lock();
        match open.get(&key) {
            Some(session) if session.expires > now => Some(session.clone()),
            Some(_) => {
                open.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Replaces the principal of a live session (scopes or accounts changed).
    pub fn update(&self, id: &str, principal: Principal) {
        if let Some(session) = self.lock().get_mut(&digest(id)) {
            session.principal = principal;
        }
    }

    /// Ends a session; whether it was open.
    pub fn close(&self, id: &str) -> bool {
        self.lock().remove(&digest(id)).is_some()
    }

    /// How many sessions are open (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(id: &str) -> Principal {
        Principal {
            id: id.to_owned(),
            client: "ops".to_owned(),
            scopes: std::collections::BTreeSet::new(),
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: None,
        }
    }

    #[test]
    fn sessions_are_random_expire_and_close() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let a = sessions.open(principal("key:a"), now).expect("random");
        let b = sessions.open(principal("key:a"), now).expect("random");
        assert_ne!(a, b, "every sign-in gets a new id");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("key:a"));
        assert_eq!(
            sessions
                .get(&a, now)
                .and_then(|s| s.key_id().map(str::to_owned)),
            Some("a".to_owned())
        );
        assert!(sessions.get("not-a-session", now).is_none());
        assert!(sessions.close(&a));
        assert!(sessions.get(&a, now).is_none(), "a closed session is gone");
        assert!(sessions.get(&b, now + LIFETIME).is_none(), "expired");
        assert!(sessions.is_empty(), "the expired session was removed");
    }

    #[test]
    fn the_oldest_session_makes_room_at_capacity() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let first = sessions
            .open(principal("key:first"), start)
            .expect("random");
        let later = start + Duration::from_secs(1);
        for _ in 1..CAPACITY {
            sessions.open(principal("key:other"), later);
        }
        assert_eq!(sessions.len(), CAPACITY);
        let newest = sessions
            .open(principal("key:newest"), later)
            .expect("random");
        assert_eq!(sessions.len(), CAPACITY);
        assert!(sessions.get(&first, later).is_none(), "the oldest went");
        assert!(sessions.get(&newest, later).is_some());
    }
}
