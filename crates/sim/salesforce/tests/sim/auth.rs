//! OAuth grants, token expiry, userinfo, identity and SOAP login.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crossdock_sim_salesforce::Config;
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::Sim;

const KEY_PK8: &[u8] = include_bytes!("../fixtures/jwt_test_key.pk8");
pub const CERT_PEM: &str = include_str!("../fixtures/jwt_test_cert.pem");

pub fn jwt(claims: &Json) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let key = ring::signature::RsaKeyPair::from_pkcs8(KEY_PK8).expect("test key parses");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .expect("signs");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub async fn token(sim: &Sim, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Json) {
    let mut req = sim.http.post(sim.url("/services/oauth2/token")).form(form);
    if let Some((u, p)) = basic {
        req = req.header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))),
        );
    }
    let r = sim.send(req).await;
    (r.status, r.body)
}

pub fn now_secs() -> u64 {
    // The simulator's own wall clock (the tests run without an advanced offset here).
    u64::try_from(crossdock_sim_salesforce::clock::Clock::default().now_ms() / 1000).unwrap_or(0)
}

#[tokio::test]
async fn oauth_grants_issue_usable_tokens() {
    let sim = Sim::with(Config {
        jwt_keys: vec![CERT_PEM.to_string()],
        ..Config::default()
    })
    .await;
    let c = sim.handle.credentials().clone();
    let base = sim.handle.base_url().to_string();

    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().expect("token");
    assert_eq!(access.split('!').next(), Some(&sim.handle.org_id()[..15]));
    assert_eq!(body["instance_url"], json!(base));
    assert_eq!(
        body["id"],
        json!(format!(
            "{base}/id/{}/{}",
            sim.handle.org_id(),
            sim.handle.user_id()
        ))
    );
    assert_eq!(body["token_type"], json!("Bearer"));
    assert!(
        body["issued_at"]
            .as_str()
            .is_some_and(|s| s.len() >= 13 && s.chars().all(|c| c.is_ascii_digit()))
    );
    assert!(body.get("refresh_token").is_none());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, c.client_secret.as_bytes());
    let expected = STANDARD.encode(
        ring::hmac::sign(
            &key,
            format!(
                "{}{}",
                body["id"].as_str().unwrap_or_default(),
                body["issued_at"].as_str().unwrap_or_default()
            )
            .as_bytes(),
        )
        .as_ref(),
    );
    assert_eq!(body["signature"], json!(expected));
    let used = sim
        .send(sim.http.get(sim.data("limits")).bearer_auth(access))
        .await;
    assert_eq!(used.status, 200);

    let (status, _) = token(
        &sim,
        &[("grant_type", "client_credentials")],
        Some((&c.client_id, &c.client_secret)),
    )
    .await;
    assert_eq!(status, 200, "Basic client authentication");
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_client_id"))
    );
    let (_, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(body["error"], json!("invalid_client"));
    let (_, body) = token(&sim, &[("grant_type", "magic")], None).await;
    assert_eq!(body["error"], json!("unsupported_grant_type"));

    let pw = format!("{}{}", c.password, c.security_token);
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("username", &c.username),
            ("password", &pw),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "the password flow issues no refresh token"
    );
    let refresh = sim.admin(Method::POST, "tokens/refresh", None).await.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let (_, body) = token(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("username", &c.username),
            ("password", "wrong"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (body["error"].clone(), body["error_description"].clone()),
        (json!("invalid_grant"), json!("authentication failure"))
    );
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "bogus"),
            ("client_id", &c.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(body["error"], json!("invalid_grant"));

    let exp = now_secs() + 300;
    for (label, claims) in [
        (
            "numeric exp",
            json!({"iss": c.client_id, "sub": c.username, "aud": "https://login.salesforce.com", "exp": exp}),
        ),
        (
            "string exp",
            json!({"iss": c.client_id, "sub": c.username, "aud": "https://test.salesforce.com", "exp": exp.to_string()}),
        ),
        (
            "ms exp, aud with slash",
            json!({"iss": c.client_id, "sub": c.username, "aud": format!("{base}/"), "exp": exp * 1000}),
        ),
    ] {
        let assertion = jwt(&claims);
        let (status, body) = token(
            &sim,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ],
            None,
        )
        .await;
        assert_eq!(status, 200, "{label}: {body}");
        assert!(body.get("refresh_token").is_none());
    }
    for (label, claims) in [
        (
            "expired",
            json!({"iss": c.client_id, "sub": c.username, "aud": "https://login.salesforce.com", "exp": now_secs() - 10}),
        ),
        (
            "wrong aud",
            json!({"iss": c.client_id, "sub": c.username, "aud": "https://evil.example", "exp": exp}),
        ),
        (
            "wrong sub",
            json!({"iss": c.client_id, "sub": "someone@else", "aud": "https://login.salesforce.com", "exp": exp}),
        ),
    ] {
        let (status, body) = token(
            &sim,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &jwt(&claims)),
            ],
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("invalid_grant")),
            "{label}: {body}"
        );
    }
    let good = jwt(
        &json!({"iss": c.client_id, "sub": c.username, "aud": "https://login.salesforce.com", "exp": exp}),
    );
    let tampered = format!("{}x", &good[..good.len() - 1]);
    let (_, body) = token(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &tampered),
        ],
        None,
    )
    .await;
    assert_eq!(body["error"], json!("invalid_grant"));
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_and_identity_endpoints_answer() {
    let sim = Sim::with(Config {
        token_ttl_secs: 60,
        ..Config::default()
    })
    .await;
    let info = sim
        .send(
            sim.http
                .get(sim.url("/services/oauth2/userinfo"))
                .bearer_auth(&sim.token),
        )
        .await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["organization_id"], json!(sim.handle.org_id()));
    assert_eq!(
        info.body["preferred_username"],
        json!(sim.handle.credentials().username)
    );
    let root = sim.get("").await;
    let identity_url = root.body["identity"]
        .as_str()
        .expect("identity")
        .to_string();
    let identity = sim
        .send(sim.http.get(format!(
            "{identity_url}?format=json&oauth_token={}",
            sim.token
        )))
        .await;
    assert_eq!(identity.status, 200);
    assert_eq!(identity.body["user_id"], json!(sim.handle.user_id()));
    assert!(
        identity.body["urls"]["rest"]
            .as_str()
            .is_some_and(|u| u.contains("/services/data/v{version}/"))
    );
    let user = sim
        .get(&format!("sobjects/User/{}", sim.handle.user_id()))
        .await;
    assert_eq!(
        user.body["Username"],
        json!(sim.handle.credentials().username)
    );

    sim.admin(Method::POST, "clock/advance", Some(json!({"secs": 61})))
        .await;
    let expired = sim.get("limits").await;
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, Some("INVALID_SESSION_ID"))
    );
    let fresh = sim.admin(Method::POST, "tokens", None).await;
    let t = fresh.body["access_token"].as_str().expect("token");
    assert_eq!(
        sim.send(sim.http.get(sim.data("limits")).bearer_auth(t))
            .await
            .status,
        200
    );
    sim.admin(Method::POST, "tokens/expire", None).await;
    assert_eq!(
        sim.send(sim.http.get(sim.data("limits")).bearer_auth(t))
            .await
            .status,
        401
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn soap_login_answers_with_unprefixed_session_elements() {
    let sim = Sim::start().await;
    let c = sim.handle.credentials().clone();
    let envelope = format!(
        r#"<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions><urn:client>simple-salesforce</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{}</n1:username><n1:password>{}{}</n1:password></n1:login></env:Body></env:Envelope>"#,
        c.username, c.password, c.security_token
    );
    let r = sim
        .send(
            sim.http
                .post(sim.url("/services/Soap/u/59.0"))
                .header("SOAPAction", "login")
                .header("content-type", "text/xml")
                .body(envelope),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let session = r
        .text
        .split("<sessionId>")
        .nth(1)
        .and_then(|s| s.split("</sessionId>").next())
        .expect("sessionId")
        .to_string();
    assert!(r.text.contains(&format!(
        "<serverUrl>{}/services/Soap/u/59.0/{}</serverUrl>",
        sim.handle.base_url(),
        sim.handle.org_id()
    )));
    assert!(r.text.contains(&format!(
        "<organizationId>{}</organizationId>",
        sim.handle.org_id()
    )));
    assert_eq!(
        sim.send(sim.http.get(sim.data("limits")).bearer_auth(&session))
            .await
            .status,
        200
    );

    let bad = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body><login xmlns="urn:partner.soap.sforce.com"><username>x</username><password>y</password></login></se:Body></se:Envelope>"#;
    let r = sim
        .send(
            sim.http
                .post(sim.url("/services/Soap/u/50.0"))
                .header("SOAPAction", "\"\"")
                .body(bad),
        )
        .await;
    assert_eq!(r.status, 500);
    assert!(
        r.text.contains("<faultcode>sf:INVALID_LOGIN</faultcode>")
            && r.text
                .contains("<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"),
        "{}",
        r.text
    );
    sim.shutdown().await;
}
