//! Authentication: the OAuth 2.0 token endpoint (client credentials, JWT bearer, password,
//! refresh token), userinfo, the identity URL and the partner SOAP `login` call. Access tokens
//! are `<org15>!<opaque>` and expire after the configured TTL.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use serde_json::{Value as Json, json};

use crate::ids;
use crate::state::{Session, Shared, lock};
use crate::store::UserProfile;
use crate::util::{Reply, param, parse_form, xml_element, xml_escape};

const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";

fn random_text(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    // SystemRandom only fails when the OS has no entropy source; fall back to a fixed fill.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes
        .iter()
        .map(|b| TOKEN_CHARS[usize::from(*b) % TOKEN_CHARS.len()] as char)
        .collect()
}

/// Issues a new access token of the integration user, valid for the configured TTL.
pub fn issue_token(shared: &Shared) -> String {
    issue_token_as(shared, shared.user_id15())
}

/// Issues a new access token acting as the user `user15` (15-character id of a User record).
pub fn issue_token_as(shared: &Shared, user15: &str) -> String {
    let token = format!("{}!AQ{}", shared.org_id15(), random_text(96));
    let ttl_ms =
        i64::try_from(shared.config.token_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let now = shared.clock.now_ms();
    let expires_ms = now.saturating_add(ttl_ms);
    let mut auth = lock(&shared.auth);
    // Long runs log in many times: forget expired sessions now and then.
    if auth.sessions.len() >= 1_000 {
        auth.sessions.retain(|_, s| s.expires_ms > now);
    }
    auth.sessions.insert(
        token.clone(),
        Session {
            expires_ms,
            user_id: user15.to_string(),
        },
    );
    auth.revision += 1;
    token
}

/// Issues an access token acting as the user `username`, creating that User (active, with the
/// integration user's permissions) when the org has none. Returns the token and the user's
/// 18-character id.
///
/// # Errors
/// A message when `username` is not shaped like an e-mail address.
pub fn issue_token_for(shared: &Shared, username: &str) -> Result<(String, String), String> {
    let now = shared.clock.now_ms();
    let user15 = lock(&shared.org).ensure_user(username, now)?;
    Ok((issue_token_as(shared, &user15), ids::to18(&user15)))
}

/// Issues a refresh token of the integration user, as an interactive (web-server)
/// authorization would.
pub fn issue_refresh_token(shared: &Shared) -> String {
    issue_refresh_token_as(shared, shared.user_id15())
}

/// Issues a refresh token acting as the user `user15`.
pub fn issue_refresh_token_as(shared: &Shared, user15: &str) -> String {
    let refresh = format!("5Aep{}", random_text(80));
    let mut auth = lock(&shared.auth);
    auth.refresh_tokens
        .insert(refresh.clone(), user15.to_string());
    auth.revision += 1;
    refresh
}

/// The 15-character id of the user a live session acts as; `None` when `token` is unknown
/// or expired.
pub fn session_user(shared: &Shared, token: &str) -> Option<String> {
    let now = shared.clock.now_ms();
    lock(&shared.auth)
        .sessions
        .get(token)
        .filter(|s| s.expires_ms > now)
        .map(|s| s.user_id.clone())
}

/// Whether `token` is a live session.
pub fn token_valid(shared: &Shared, token: &str) -> bool {
    session_user(shared, token).is_some()
}

/// Expires every access token (refresh tokens stay valid).
pub fn expire_all(shared: &Shared) -> usize {
    let mut auth = lock(&shared.auth);
    let n = auth.sessions.len();
    auth.sessions.clear();
    auth.revision += 1;
    n
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn token_reply(shared: &Shared, base: &str, user15: &str, refresh: Option<String>) -> Reply {
    let token = issue_token_as(shared, user15);
    let id = shared.identity_url_of(base, &ids::to18(user15));
    let issued_at = shared.clock.now_ms().to_string();
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        shared.config.credentials.client_secret.as_bytes(),
    );
    let signature =
        STANDARD.encode(ring::hmac::sign(&key, format!("{id}{issued_at}").as_bytes()).as_ref());
    let mut body = json!({
        "access_token": token,
        "instance_url": base,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
        "scope": if refresh.is_some() { "api refresh_token" } else { "api" },
    });
    if let (Some(r), Some(obj)) = (refresh, body.as_object_mut()) {
        obj.insert("refresh_token".into(), Json::String(r));
    }
    Reply::json(200, &body)
}

/// `POST /services/oauth2/token`.
pub fn token_endpoint(
    shared: &Shared,
    base: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Reply {
    let form = parse_form(&String::from_utf8_lossy(body));
    let creds = &shared.config.credentials;
    let basic = authorization
        .and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let client_id = param(&form, "client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let client_secret = param(&form, "client_secret")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|b| b.1.clone()));
    let check_client = |secret_required: bool| -> Result<(), Reply> {
        match client_id.as_deref() {
            Some(id) if id == creds.client_id => {}
            _ => {
                return Err(oauth_error(
                    400,
                    "invalid_client_id",
                    "client identifier invalid",
                ));
            }
        }
        match client_secret.as_deref() {
            Some(s) if s == creds.client_secret => Ok(()),
            None if !secret_required => Ok(()),
            _ => Err(oauth_error(
                400,
                "invalid_client",
                "invalid client credentials",
            )),
        }
    };
    match param(&form, "grant_type") {
        Some("client_credentials") => match check_client(true) {
            Ok(()) => token_reply(shared, base, shared.user_id15(), None),
            Err(e) => e,
        },
        Some("password") => {
            if let Err(e) = check_client(true) {
                return e;
            }
            let user_ok = param(&form, "username") == Some(creds.username.as_str());
            let pw = param(&form, "password").unwrap_or_default();
            let pw_ok =
                pw == creds.password || pw == format!("{}{}", creds.password, creds.security_token);
            if !(user_ok && pw_ok) {
                return oauth_error(400, "invalid_grant", "authentication failure");
            }
            // Salesforce's username-password flow never returns a refresh token.
            token_reply(shared, base, shared.user_id15(), None)
        }
        Some("refresh_token") => {
            if let Err(e) = check_client(false) {
                return e;
            }
            let user = param(&form, "refresh_token")
                .and_then(|r| lock(&shared.auth).refresh_tokens.get(r).cloned());
            let Some(user) = user else {
                return oauth_error(400, "invalid_grant", "expired access/refresh token");
            };
            token_reply(shared, base, &user, None)
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let assertion = param(&form, "assertion").unwrap_or_default();
            match verify_jwt(shared, base, assertion) {
                Ok(user) => token_reply(shared, base, &user, None),
                Err((error, description)) => oauth_error(400, error, &description),
            }
        }
        _ => oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    }
}

fn b64url(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// Verifies an RS256 JWT bearer assertion against the configured keys and the credentials.
/// The subject is the integration user or any other user of the org, by username. Returns
/// the 15-character id of that user.
///
/// # Errors
/// `(error, description)` as the token endpoint reports them.
pub fn verify_jwt(
    shared: &Shared,
    base: &str,
    assertion: &str,
) -> Result<String, (&'static str, String)> {
    let bad = |d: &str| ("invalid_grant", d.to_string());
    let parts: Vec<&str> = assertion.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err(bad("invalid assertion"));
    };
    let header: Json = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("invalid assertion"))?;
    if header.get("alg").and_then(Json::as_str) != Some("RS256") {
        return Err(bad("invalid assertion: algorithm must be RS256"));
    }
    let claims: Json = b64url(c)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("invalid assertion"))?;
    let signature = b64url(s).ok_or_else(|| bad("invalid assertion"))?;
    let message = format!("{h}.{c}");
    let keys = lock(&shared.auth).jwt_keys.clone();
    if !keys
        .iter()
        .any(|pem| verify_rs256(pem, message.as_bytes(), &signature))
    {
        return Err(bad("invalid assertion"));
    }
    let creds = &shared.config.credentials;
    if claims.get("iss").and_then(Json::as_str) != Some(creds.client_id.as_str()) {
        return Err(("invalid_client_id", "client identifier invalid".into()));
    }
    let sub = claims.get("sub").and_then(Json::as_str).unwrap_or_default();
    let user = if sub == creds.username {
        Some(shared.user_id15().to_string())
    } else if sub.is_empty() {
        None
    } else {
        lock(&shared.org).find_user(sub)
    };
    let Some(user) = user else {
        return Err(bad("user hasn't approved this consumer"));
    };
    let aud_ok = |a: &str| {
        let a = a.trim_end_matches('/');
        a == base
            || a == shared.base_url
            || a == "https://login.salesforce.com"
            || a == "https://test.salesforce.com"
    };
    let aud_valid = match claims.get("aud") {
        Some(Json::String(a)) => aud_ok(a),
        Some(Json::Array(list)) => list.iter().filter_map(Json::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_valid {
        return Err(bad("audience is invalid"));
    }
    let exp = match claims.get("exp") {
        Some(Json::Number(n)) => n.as_f64(),
        Some(Json::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("invalid assertion: exp is required"))?;
    // Some clients send milliseconds.
    let exp_ms = if exp > 1e12 { exp } else { exp * 1000.0 };
    #[allow(clippy::cast_precision_loss)]
    let now = shared.clock.now_ms() as f64;
    if exp_ms < now {
        return Err(bad("expired authorization code"));
    }
    Ok(user)
}

/// Checks an RS256 signature with a PEM certificate or public key.
pub fn verify_rs256(pem: &str, message: &[u8], signature: &[u8]) -> bool {
    let alg = webpki::ring::RSA_PKCS1_2048_8192_SHA256;
    if let Ok(cert) = CertificateDer::from_pem_slice(pem.as_bytes())
        && let Ok(ee) = webpki::EndEntityCert::try_from(&cert)
    {
        return ee.verify_signature(alg, message, signature).is_ok();
    }
    if let Ok(spki) = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        && let Ok(rpk) = webpki::RawPublicKeyEntity::try_from(&spki)
    {
        return rpk.verify_signature(alg, message, signature).is_ok();
    }
    false
}

fn profile(shared: &Shared, user15: &str) -> Option<UserProfile> {
    lock(&shared.org).user_profile(user15)
}

fn bad_token() -> Reply {
    Reply::json(403, &json!({"error": "Bad_OAuth_Token"}))
}

/// `GET /services/oauth2/userinfo` for the token's user `user15`.
pub fn userinfo(shared: &Shared, base: &str, user15: &str) -> Reply {
    let Some(p) = profile(shared, user15) else {
        return bad_token();
    };
    Reply::json(
        200,
        &json!({
            "sub": shared.identity_url_of(base, &p.id),
            "user_id": p.id,
            "organization_id": shared.org_id18,
            "preferred_username": p.username,
            "nickname": p.alias,
            "name": p.name,
            "email": p.email,
            "email_verified": true,
            "given_name": p.first_name,
            "family_name": p.last_name,
            "zoneinfo": "GMT",
            "locale": "en_US",
            "language": "en_US",
            "user_type": "STANDARD",
            "active": true,
            "is_app_installed": true,
            "urls": urls(shared, base, &p.id),
        }),
    )
}

fn urls(shared: &Shared, base: &str, user18: &str) -> Json {
    let v = format!("{}.0", shared.config.max_api_version);
    json!({
        "enterprise": format!("{base}/services/Soap/c/{v}/{}", shared.org_id18),
        "partner": format!("{base}/services/Soap/u/{v}/{}", shared.org_id18),
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "search": format!("{base}/services/data/v{{version}}/search/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "recent": format!("{base}/services/data/v{{version}}/recent/"),
        "profile": format!("{base}/{user18}"),
    })
}

/// `GET /id/<org>/<user>`: the identity service, for the token's user `user15`.
pub fn identity(shared: &Shared, base: &str, user15: &str) -> Reply {
    let Some(p) = profile(shared, user15) else {
        return bad_token();
    };
    Reply::json(
        200,
        &json!({
            "id": shared.identity_url_of(base, &p.id),
            "asserted_user": true,
            "user_id": p.id,
            "organization_id": shared.org_id18,
            "username": p.username,
            "nick_name": p.alias,
            "display_name": p.name,
            "email": p.email,
            "email_verified": true,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "timezone": "GMT",
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": urls(shared, base, &p.id),
        }),
    )
}

/// `POST /services/Soap/u/<version>`: partner API `login`.
pub fn soap_login(shared: &Shared, base: &str, version: &str, body: &[u8]) -> Reply {
    let doc = String::from_utf8_lossy(body);
    let creds = &shared.config.credentials;
    let user = xml_element(&doc, "username").unwrap_or_default();
    let pw = xml_element(&doc, "password").unwrap_or_default();
    let pw_ok = pw == creds.password || pw == format!("{}{}", creds.password, creds.security_token);
    if xml_element(&doc, "login").is_none() || user != creds.username || !pw_ok {
        let msg = "INVALID_LOGIN: Invalid username, password, security token; or user locked out.";
        return Reply::xml(
            500,
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>{msg}</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
            ),
        );
    }
    let token = issue_token(shared);
    let org = &shared.org_id18;
    let user_id = &shared.user_id18;
    let ttl = shared.config.token_ttl_secs;
    Reply::xml(
        200,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result><metadataServerUrl>{base}/services/Soap/m/{version}/{org}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox><serverUrl>{base}/services/Soap/u/{version}/{org}</serverUrl><sessionId>{token}</sessionId><userId>{user_id}</userId><userInfo><accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode><orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false</orgHasPersonAccounts><organizationId>{org}</organizationId><organizationMultiCurrency>false</organizationMultiCurrency><organizationName>{name}</organizationName><profileId>00eDd0000000001AAA</profileId><roleId xsi:nil="true"/><sessionSecondsValid>{ttl}</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil="true"/><userEmail>{email}</userEmail><userFullName>Integration User</userFullName><userId>{user_id}</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale><userName>{email}</userName><userTimeZone>GMT</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"#,
            name = xml_escape(&shared.config.org_name),
            email = xml_escape(&creds.username),
        ),
    )
}
