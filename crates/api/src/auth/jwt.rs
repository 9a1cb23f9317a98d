//! OAuth2 bearer tokens: JWTs signed with RS256 or ES256, verified against the identity
//! provider's JSON Web Key Set; issuer, audience, expiry and not-before checked (with the
//! configured leeway); tokens with critical header extensions (`crit`) refused; the subject
//! mapped to a configured client whose configured scopes cap the token's (none configured:
//! none granted) and whose account/channel limits apply.

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

/// Refuses a token whose header lists critical extensions (`crit`, RFC 7515 §4.1.11): the hub
/// understands none, so such a token must not be accepted.
fn refuse_critical_extensions(token: &str) -> Result<(), String> {
    use base64::Engine as _;
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| "malformed token: the header is not base64url".to_owned())?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|_| "malformed token: the header is not a JSON object".to_owned())?;
    if header.contains_key("crit") {
        return Err(
            "the token names critical header extensions (`crit`), which are not supported"
                .to_owned(),
        );
    }
    Ok(())
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
        refuse_critical_extensions(token)?;
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
        validation.validate_nbf = true;
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
        // The configuration caps the token: a scope the client is not configured for is never
        // granted, and no configured scopes means none.
        granted.retain(|s| client.scopes.iter().any(|c| c == s.as_str()));
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    use super::*;
    use crate::config::JwtClient;

    const ISSUER: &str = "https://id.crossdock.test";
    const AUDIENCE: &str = "crossdock-api";

    fn now() -> i64 {
        i64::try_from(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs())).unwrap_or(0)
    }

    fn signing_key() -> EncodingKey {
        EncodingKey::from_rsa_pem(include_bytes!("../../tests/api/fixtures/rsa-test-key.pem"))
            .expect("RSA fixture")
    }

    /// A verifier trusting the RSA fixture, with clients `all` (every scope), `none`
    /// (`scopes = []`) and `reader` (`orders:read` only).
    fn verifier(leeway_secs: u64) -> JwtVerifier {
        let client = |name: &str, scopes: &[&str]| JwtClient {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            accounts: Vec::new(),
            channels: Vec::new(),
        };
        let mut clients = BTreeMap::new();
        let every: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        clients.insert("all".to_owned(), client("all", &every));
        clients.insert("none".to_owned(), client("none", &[]));
        clients.insert("reader".to_owned(), client("reader", &["orders:read"]));
        let config = JwtConfig {
            jwks_file: std::path::PathBuf::new(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway_secs,
            clients,
        };
        let jwks = format!(
            r#"{{"keys":[{}]}}"#,
            include_str!("../../tests/api/fixtures/rsa-test-jwk.json")
        );
        JwtVerifier::from_jwks(&jwks, config).expect("verifier")
    }

    fn claims(subject: &str, scope: &str) -> Value {
        json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "scope": scope,
            "iat": now(), "exp": now() + 600 })
    }

    fn token(claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-test".to_owned());
        encode(&header, claims, &signing_key()).expect("token")
    }

    /// A token with a hand-written header (the library's `Header` has no `crit`).
    fn token_with_header(header: &Value, claims: &Value) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &signing_key(), Algorithm::RS256)
                .expect("signature");
        format!("{message}.{signature}")
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
        let verifier = verifier(30);
        let mut future = claims("all", "orders:read");
        future["nbf"] = json!(now() + 3600);
        let error = verifier
            .verify(&token(&future))
            .expect_err("nbf in an hour");
        assert_eq!(error, "the token is not valid yet");
        let mut within_leeway = claims("all", "orders:read");
        within_leeway["nbf"] = json!(now() + 5);
        assert!(verifier.verify(&token(&within_leeway)).is_ok());
        let mut past = claims("all", "orders:read");
        past["nbf"] = json!(now() - 60);
        assert!(verifier.verify(&token(&past)).is_ok());
    }

    #[test]
    fn a_token_with_critical_extensions_is_refused() {
        let verifier = verifier(0);
        let plain = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-test" });
        let body = claims("all", "orders:read");
        assert!(
            verifier.verify(&token_with_header(&plain, &body)).is_ok(),
            "the hand-written token is valid without `crit`"
        );
        let critical = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-test",
            "crit": ["https://example.com/must-understand"],
            "https://example.com/must-understand": true });
        let error = verifier
            .verify(&token_with_header(&critical, &body))
            .expect_err("crit");
        assert!(error.contains("crit"), "{error}");
    }

    #[test]
    fn configured_scopes_cap_the_token_and_none_configured_means_none() {
        let verifier = verifier(0);
        let every = Scope::ALL.map(Scope::as_str).join(" ");
        let none = verifier
            .verify(&token(&claims("none", &every)))
            .expect("valid");
        assert!(none.scopes.is_empty(), "{:?}", none.scopes);
        let reader = verifier
            .verify(&token(&claims("reader", "orders:read ops:write")))
            .expect("valid");
        assert_eq!(reader.scopes, BTreeSet::from([Scope::OrdersRead]));
        let all = verifier
            .verify(&token(&claims("all", "orders:write")))
            .expect("valid");
        assert_eq!(
            all.scopes,
            BTreeSet::from([Scope::OrdersWrite]),
            "a token grants no more than it claims"
        );
    }
}
