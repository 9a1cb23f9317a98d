//! API keys: created, listed and revoked by the CLI, stored only as salted SHA-256 hashes in
//! the store's `api_keys` records.
//!
//! A key reads `cdk_<id>_<secret>`: the id (12 hex digits) names the record and is safe to show;
//! the secret (32 random bytes, base64url) is printed once at creation and never stored. A
//! presented key is checked by hashing its secret with the record's salt and comparing in
//! constant time.

use base64::Engine as _;
use crossdock_store::SharedStore;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::scope::Scope;

/// Store namespace of API key records.
pub const NAMESPACE: &str = "api_keys";

/// Every key starts with this.
pub const PREFIX: &str = "cdk_";

/// A stored key: who it belongs to, what it may do, and the salted hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Key id (the visible part of the key).
    pub id: String,
    /// Client name.
    pub client: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Accounts the client may see; empty: every account.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Channels the client may see; empty: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The client's own rate limit (requests per second), instead of the default.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Per-key salt (hex).
    pub salt: String,
    /// SHA-256 of salt and secret (hex).
    pub hash: String,
    /// When created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKeyRecord {
    /// The shown form of the key (`cdk_<id>_…`).
    pub fn prefix(&self) -> String {
        format!("{PREFIX}{}_…", self.id)
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Client name.
    pub client: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Accounts; empty for all.
    pub accounts: Vec<String>,
    /// Channels; empty for all.
    pub channels: Vec<String>,
    /// Own rate limit.
    pub rate_per_second: Option<u32>,
}

/// A key just created: the record and the full key, shown once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored record.
    pub record: ApiKeyRecord,
    /// The full key. It is not stored anywhere.
    pub key: String,
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
    /// The operating system gave no randomness.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crossdock_store::Error),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0_u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

fn valid_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Creates a key and stores its record.
///
/// # Errors
/// Invalid client name or empty scopes, no randomness, or the store failed.
pub async fn create(
    store: &SharedStore,
    new: NewKey,
    now: OffsetDateTime,
) -> Result<CreatedKey, KeyError> {
    if !valid_name(&new.client) {
        return Err(KeyError::Invalid(format!(
            "client name `{}` must be 1-64 letters, digits, `-`, `_` or `.`",
            new.client
        )));
    }
    if new.scopes.is_empty() {
        return Err(KeyError::Invalid(
            "a key needs at least one scope".to_owned(),
        ));
    }
    if new.rate_per_second == Some(0) {
        return Err(KeyError::Invalid(
            "the rate limit must be at least 1 per second".to_owned(),
        ));
    }
    let id = hex(&random_bytes::<6>()?);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let salt = random_bytes::<16>()?;
    let record = ApiKeyRecord {
        id: id.clone(),
        client: new.client,
        scopes: new.scopes,
        accounts: new.accounts,
        channels: new
            .channels
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect(),
        rate_per_second: new.rate_per_second,
        salt: hex(&salt),
        hash: hex(&digest(&salt, &secret)),
        created_at: now,
        revoked_at: None,
    };
    let value = serde_json::to_value(&record).map_err(|e| KeyError::Invalid(e.to_string()))?;
    if !store.kv_insert(NAMESPACE, &id, value, now).await? {
        return Err(KeyError::Invalid(format!(
            "key id {id} exists already; try again"
        )));
    }
    Ok(CreatedKey {
        key: format!("{PREFIX}{id}_{secret}"),
        record,
    })
}

/// Every key record, by id.
///
/// # Errors
/// The store failed or a record is unreadable.
pub async fn list(store: &SharedStore) -> Result<Vec<ApiKeyRecord>, KeyError> {
    store
        .kv_list(NAMESPACE, "", 100_000)
        .await?
        .into_iter()
        .map(|(id, value)| {
            serde_json::from_value(value)
                .map_err(|e| KeyError::Invalid(format!("key record {id} is unreadable: {e}")))
        })
        .collect()
}

/// Revokes a key (the record stays, marked). `false` when no such key exists.
///
/// # Errors
/// The store failed or the record is unreadable.
pub async fn revoke(store: &SharedStore, id: &str, now: OffsetDateTime) -> Result<bool, KeyError> {
    let id = id.strip_prefix(PREFIX).unwrap_or(id);
    let id = id.split('_').next().unwrap_or(id);
    let Some(value) = store.kv_get(NAMESPACE, id).await? else {
        return Ok(false);
    };
    let mut record: ApiKeyRecord = serde_json::from_value(value)
        .map_err(|e| KeyError::Invalid(format!("key record {id} is unreadable: {e}")))?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(now);
        let value = serde_json::to_value(&record).map_err(|e| KeyError::Invalid(e.to_string()))?;
        store.kv_put(NAMESPACE, id, value, now).await?;
    }
    Ok(true)
}

/// Splits a presented key into id and secret; `None` when it is not shaped like a key.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == 12
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty()
        && secret.len() <= 128;
    well_formed.then_some((id, secret))
}

/// Whether `secret` is the secret of `record` (constant-time comparison) and the key is live.
pub fn matches(record: &ApiKeyRecord, secret: &str) -> bool {
    let (Some(salt), Some(expected)) = (unhex(&record.salt), unhex(&record.hash)) else {
        return false;
    };
    let actual = digest(&salt, secret);
    let equal: bool = actual.ct_eq(expected.as_slice()).into();
    equal && record.revoked_at.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secret: &str) -> ApiKeyRecord {
        let salt = [7_u8; 16];
        ApiKeyRecord {
            id: "0123456789ab".to_owned(),
            client: "web".to_owned(),
            scopes: vec![Scope::OrdersRead],
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: None,
            salt: hex(&salt),
            hash: hex(&digest(&salt, secret)),
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn only_the_right_secret_matches() {
        let stored = record("s3cret");
        assert!(matches(&stored, "s3cret"));
        assert!(!matches(&stored, "s3cres"));
        assert!(!matches(&stored, ""));
    }

    #[test]
    fn a_revoked_key_never_matches() {
        let mut stored = record("s3cret");
        stored.revoked_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert!(!matches(&stored, "s3cret"));
    }

    #[test]
    fn the_record_never_holds_the_secret() {
        let stored = record("s3cret-value");
        let json = serde_json::to_string(&stored).unwrap_or_default();
        assert!(!json.contains("s3cret-value"));
        assert_eq!(stored.prefix(), "cdk_0123456789ab_…");
    }

    #[test]
    fn keys_split_into_id_and_secret() {
        assert_eq!(
            split("cdk_0123456789ab_abc_def-1"),
            Some(("0123456789ab", "abc_def-1"))
        );
        assert_eq!(split("cdk_0123_abc"), None);
        assert_eq!(split("Bearer cdk_0123456789ab_abc"), None);
        assert_eq!(split("cdk_0123456789ab_"), None);
    }
}
