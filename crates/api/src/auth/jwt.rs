//! OAuth2 bearer tokens: JWTs signed with RS256 or ES256, verified against the identity
//! provider's JSON Web Key Set; issuer, audience and expiry checked; the subject mapped to a
//! configured client with scopes and account/channel limits.

use std::collections::BTreeSet;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use super::Principal;
use super::scope::Scope;
use crate::config::JwtConfig;

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    keys: Vec<Key>,
    config: JwtConfig,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

impl JwtVerifier {
    /// Reads the JWKS file named in the config.
    ///
    /// # Errors
    /// The file cannot be read or holds no usable key.
    pub fn load(config: &JwtConfig) -> Result<Self, String> {
        let text = std::fs::read_to_string(&config.jwks_file).map_err(|e| {
            format!(
                "cannot read the JWKS file {}: {e}",
                config.jwks_file.display()
            )
        })?;
        Self::from_jwks(&text, config.clone())
    }

    /// Builds a verifier from a JWKS document.
    ///
    /// # Errors
    /// The document is not a JWKS or holds no RSA or P-256 key.
    pub fn from_jwks(jwks: &str, config: JwtConfig) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("invalid JWK: {e}"))?;
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err("the JWKS holds no RSA or P-256 key".to_owned());
        }
        Ok(Self { keys, config })
    }

    /// Verifies a token and maps it to a client.
    ///
    /// # Errors
    /// Why the token is refused (bad signature, expired, wrong issuer or audience, unknown
    /// subject, unsupported algorithm).
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!(
                "algorithm {:?} is not accepted (RS256, ES256)",
                header.alg
            ));
        }
        let key = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .find(|k| header.kid.is_none() || k.kid == header.kid)
            .ok_or_else(|| "no key of the JWKS matches the token's kid and algorithm".to_owned())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.config.issuer.as_str()]);
        validation.set_audience(&[self.config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.leeway_secs;
        let data = decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::InvalidAudience => "the token is for another audience".to_owned(),
                ErrorKind::InvalidIssuer => "the token is from another issuer".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature is invalid".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
                _ => format!("the token is invalid: {e}"),
            }
        })?;
        let claims = data.claims;
        let subject = claims.client_id.clone().unwrap_or(claims.sub);
        let client = self
            .config
            .clients
            .get(&subject)
            .ok_or_else(|| format!("the token's subject `{subject}` is not a known client"))?;
        let mut granted: BTreeSet<Scope> = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .chain(claims.scp.iter().flatten().map(String::as_str))
            .filter_map(Scope::parse)
            .collect();
        if !client.scopes.is_empty() {
            granted.retain(|s| client.scopes.iter().any(|c| c == s.as_str()));
        }
        Ok(Principal {
            id: format!("jwt:{subject}"),
            client: client.name.clone(),
            scopes: granted,
            accounts: client.accounts.clone(),
            channels: client
                .channels
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
            rate_per_second: None,
        })
    }
}
