//! OAuth 2.0 access tokens: JWT bearer (RS256 assertion signed with the connected app's key),
//! client credentials, or a fixed token. One token is cached and shared by every call; when
//! Salesforce rejects it (`401 INVALID_SESSION_ID`, gRPC `UNAUTHENTICATED`) the caller asks
//! for a refresh naming the token it used, so many callers that saw the same stale token cause
//! one token request between them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crossdock_ports::{Clock, Failure};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value as Json, json};

use crate::config::{Auth, Secret};
use crate::errors::{chain, parse_retry_after, truncate};

/// Seconds a JWT assertion stays valid (Salesforce accepts a few minutes at most).
const ASSERTION_LIFETIME_SECS: i64 = 180;

/// An access token and where to use it.
#[derive(Debug)]
pub struct Token {
    /// Bearer token.
    pub access_token: Secret,
    /// Instance URL (no trailing slash).
    pub instance_url: String,
    /// Org id (the part of the token before `!`), sent as the Pub/Sub `tenantid`.
    pub org_id: String,
    /// Which issue this is: a refresh replaces only the generation it was asked about.
    pub generation: u64,
}

enum Method {
    Jwt {
        client_id: String,
        username: String,
        audience: String,
        key: Box<RsaKeyPair>,
    },
    ClientCredentials {
        client_id: String,
        client_secret: Secret,
    },
    Fixed {
        token: Secret,
        instance_url: String,
    },
}

/// The shared token source of one connector.
pub struct Tokens {
    http: reqwest::Client,
    login_url: String,
    instance_override: Option<String>,
    method: Method,
    clock: Arc<dyn Clock>,
    // A tokio mutex on purpose: it is held across the token request so concurrent callers
    // wait for that one request instead of sending their own.
    current: tokio::sync::Mutex<Option<Arc<Token>>>,
    generation: AtomicU64,
    requests: AtomicU64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("login_url", &self.login_url)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Reads a PEM RSA private key (PKCS#8 or PKCS#1).
///
/// # Errors
/// A message saying why the key cannot be used.
pub fn load_private_key(path: &Path) -> Result<RsaKeyPair, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_private_key(&text)
}

/// Parses a PEM RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
///
/// # Errors
/// A message saying why the key cannot be used.
pub fn parse_private_key(pem: &str) -> Result<RsaKeyPair, String> {
    for (label, pkcs8) in [("PRIVATE KEY", true), ("RSA PRIVATE KEY", false)] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = pem.find(&begin) else {
            continue;
        };
        let body = &pem[start + begin.len()..];
        let Some(stop) = body.find(&end) else {
            return Err(format!("`{begin}` has no matching `{end}`"));
        };
        let b64: String = body[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| format!("the key is not valid base64: {e}"))?;
        let key = if pkcs8 {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        };
        return key.map_err(|e| format!("not a usable RSA private key: {e}"));
    }
    Err("no `-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----` block".to_owned())
}

impl Tokens {
    /// A token source for `auth`. `key` is the loaded private key for JWT bearer.
    pub(crate) fn new(
        http: reqwest::Client,
        login_url: &str,
        instance_override: Option<String>,
        auth: &Auth,
        key: Option<RsaKeyPair>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let login_url = login_url.trim_end_matches('/').to_owned();
        let method = match auth {
            Auth::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => Method::Jwt {
                client_id: client_id.clone(),
                username: username.clone(),
                audience: audience.clone().unwrap_or_else(|| login_url.clone()),
                key: Box::new(key.ok_or("the JWT bearer flow needs a private key")?),
            },
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => Method::ClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            Auth::AccessToken {
                token,
                instance_url,
            } => Method::Fixed {
                token: token.clone(),
                instance_url: instance_url.trim_end_matches('/').to_owned(),
            },
        };
        Ok(Self {
            http,
            login_url,
            instance_override: instance_override.map(|u| u.trim_end_matches('/').to_owned()),
            method,
            clock,
            current: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// Token requests sent to Salesforce so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The current token, fetching one when there is none yet.
    ///
    /// # Errors
    /// The token endpoint's refusal or a transport failure.
    pub async fn get(&self) -> Result<Arc<Token>, Failure> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            return Ok(token.clone());
        }
        let token = Arc::new(self.fetch().await?);
        *current = Some(token.clone());
        Ok(token)
    }

    /// Replaces `stale` with a fresh token. When another caller already replaced it, returns
    /// that one without a new request.
    ///
    /// # Errors
    /// The token endpoint's refusal, a transport failure, or a fixed token that was rejected.
    pub async fn refresh(&self, stale: &Token) -> Result<Arc<Token>, Failure> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.generation != stale.generation
        {
            return Ok(token.clone());
        }
        if let Method::Fixed { .. } = self.method {
            return Err(Failure::permanent(
                "Salesforce rejected the configured access token and a fixed token cannot be refreshed",
            )
            .with_code("INVALID_SESSION_ID"));
        }
        tracing::info!("Refreshing the Salesforce access token");
        let token = Arc::new(self.fetch().await?);
        *current = Some(token.clone());
        Ok(token)
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn assertion(&self) -> Result<Option<String>, Failure> {
        let Method::Jwt {
            client_id,
            username,
            audience,
            key,
        } = &self.method
        else {
            return Ok(None);
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let exp = self.clock.now().unix_timestamp() + ASSERTION_LIFETIME_SECS;
        let claims = json!({"iss": client_id, "sub": username, "aud": audience, "exp": exp});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| Failure::permanent("signing the JWT assertion failed"))?;
        Ok(Some(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }

    async fn fetch(&self) -> Result<Token, Failure> {
        let form: Vec<(&str, String)> = match &self.method {
            Method::Fixed {
                token,
                instance_url,
            } => {
                return Ok(Token {
                    org_id: org_of(token.expose()),
                    access_token: token.clone(),
                    instance_url: self
                        .instance_override
                        .clone()
                        .unwrap_or_else(|| instance_url.clone()),
                    generation: self.next_generation(),
                });
            }
            Method::Jwt { .. } => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", self.assertion()?.unwrap_or_default()),
            ],
            Method::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose().to_owned()),
            ],
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/services/oauth2/token", self.login_url);
        let response = self.http.post(&url).form(&form).send().await.map_err(|e| {
            Failure::transient(format!("token request to {url} failed: {}", chain(&e)))
        })?;
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        let body = response.text().await.map_err(|e| {
            Failure::transient(format!("token answer could not be read: {}", chain(&e)))
        })?;
        if status != 200 {
            return Err(token_failure(status, &body, retry_after));
        }
        let json: Json = serde_json::from_str(&body).map_err(|e| {
            Failure::unknown(format!(
                "token answer is not JSON ({e}): {}",
                truncate(&body, 200)
            ))
        })?;
        let access = json
            .get("access_token")
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::unknown("token answer has no access_token"))?;
        let instance = match &self.instance_override {
            Some(url) => url.clone(),
            None => json
                .get("instance_url")
                .and_then(Json::as_str)
                .filter(|u| u.starts_with("http"))
                .ok_or_else(|| Failure::unknown("token answer has no instance_url"))?
                .trim_end_matches('/')
                .to_owned(),
        };
        Ok(Token {
            org_id: org_of(access),
            access_token: Secret::new(access),
            instance_url: instance,
            generation: self.next_generation(),
        })
    }
}

/// The org id a token names (`<org id>!…`), or empty.
fn org_of(token: &str) -> String {
    token
        .split_once('!')
        .map(|(org, _)| org)
        .filter(|org| matches!(org.len(), 15 | 18))
        .unwrap_or_default()
        .to_owned()
}

/// The failure for a refused token request (`{"error","error_description"}`).
pub fn token_failure(status: u16, body: &str, retry_after: Option<std::time::Duration>) -> Failure {
    let json: Option<Json> = serde_json::from_str(body).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Json::as_str);
    let description = json
        .as_ref()
        .and_then(|j| j.get("error_description"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    match (status, error) {
        (429, _) => Failure::throttled(
            format!("token endpoint throttled: {description}"),
            retry_after,
        ),
        (s, _) if s >= 500 => Failure::transient(format!(
            "token endpoint answered HTTP {s}: {}",
            truncate(body, 200)
        )),
        (_, Some(code)) => Failure::permanent(format!(
            "Salesforce refused the login ({code}): {description}"
        ))
        .with_code(code),
        (s, None) => Failure::unknown(format!(
            "token endpoint answered HTTP {s}: {}",
            truncate(body, 200)
        )),
    }
}
