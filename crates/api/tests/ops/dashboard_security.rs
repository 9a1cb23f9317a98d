//! The dashboard's defences over HTTP: the sign-in page renders a hostile `next` inert, every
//! response carries the security headers, sessions are random ids ended at sign-out and when
//! their key is revoked, and a foreign `Host` is refused in every access mode.

use std::sync::Arc;
use std::time::Duration;

use crossdock_api::auth::Scope;
use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::dashboard::{CONTENT_SECURITY_POLICY, COOKIE};
use crossdock_api::ops::config::DashboardAccess;
use crossdock_ports::SystemClock;
use reqwest::header::{self, HeaderMap};

use crate::harness::{Hub, quick_settings};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn hub(name: &str, access: DashboardAccess, hosts: &[&str]) -> Hub {
    let mut settings = quick_settings();
    settings.config.dashboard_access = access;
    settings.config.dashboard_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    Hub::start(name, Arc::new(SystemClock), settings, false).await
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        get("content-security-policy"),
        CONTENT_SECURITY_POLICY,
        "{what}"
    );
    assert!(
        !CONTENT_SECURITY_POLICY.contains("unsafe-inline")
            && CONTENT_SECURITY_POLICY.contains("script-src 'self'")
            && CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"),
        "{CONTENT_SECURITY_POLICY}"
    );
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
}

/// Signs in with `key`; returns the session cookie's value and the whole `Set-Cookie`.
async fn sign_in(hub: &Hub, key: &str, origin: Option<&str>) -> (String, String) {
    let mut request = client()
        .post(format!("{}/dashboard/login", hub.base))
        .header("x-crossdock-action", "1")
        .json(&serde_json::json!({ "key": key }));
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let response = request.send().await.expect("sign in");
    assert_eq!(response.status().as_u16(), 204, "signed in");
    assert_security_headers(response.headers(), "sign-in answer");
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    let value = set_cookie
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|rest| rest.split(';').next())
        .expect("the cookie is the session cookie")
        .to_owned();
    (value, set_cookie)
}

async fn get_with_cookie(hub: &Hub, path: &str, session: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", hub.base))
        .header(header::COOKIE, format!("{COOKIE}={session}"))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_script_breaking_next_is_rendered_inert_with_the_security_headers() {
    let hub = hub("dash-xss", DashboardAccess::ApiKey, &[]).await;
    let hostile = "/dashboard</script><script>window.pwned=1</script>";
    let response = client()
        .get(format!("{}/dashboard/login", hub.base))
        .query(&[("next", hostile)])
        .send()
        .await
        .expect("sign-in page");
    assert_eq!(response.status().as_u16(), 200);
    assert_security_headers(response.headers(), "sign-in page");
    let html = response.text().await.expect("body");
    assert!(!html.contains("window.pwned"), "{html}");
    assert!(html.contains("data-next=\"/dashboard\""), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");

    // A `next` that is a dashboard path but carries markup is escaped in its attribute.
    let marked = "/dashboard/x\"><script>window.pwned=1</script>";
    let html = client()
        .get(format!("{}/dashboard/login", hub.base))
        .query(&[("next", marked)])
        .send()
        .await
        .expect("sign-in page")
        .text()
        .await
        .expect("body");
    assert!(!html.contains("<script>window"), "{html}");
    assert!(
        html.contains(
            "data-next=\"/dashboard/x&quot;&gt;&lt;script&gt;window.pwned=1&lt;/script&gt;\""
        ),
        "{html}"
    );

    // Every other kind of dashboard answer carries the headers too.
    let redirect = client()
        .get(format!("{}/dashboard/exceptions", hub.base))
        .send()
        .await
        .expect("page");
    assert_eq!(redirect.status().as_u16(), 303);
    assert_eq!(
        redirect
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/dashboard/login?next=%2Fdashboard%2Fexceptions")
    );
    assert_security_headers(redirect.headers(), "redirect to sign-in");
    for (path, kind) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/signin.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let asset = client()
            .get(format!("{}{path}", hub.base))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert_security_headers(asset.headers(), path);
        let content_type = asset
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
    let refused = client()
        .post(format!("{}/dashboard/actions/replays", hub.base))
        .header("x-crossdock-action", "1")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("action");
    assert_eq!(refused.status().as_u16(), 401);
    assert_security_headers(refused.headers(), "refused action");
    hub.stop().await;
}

#[tokio::test]
async fn sessions_are_random_ids_that_sign_out_revokes() {
    let hub = hub("dash-session", DashboardAccess::ApiKey, &[]).await;
    let (session, set_cookie) = sign_in(&hub, &hub.key, None).await;
    assert_eq!(session.len(), 64, "{set_cookie}");
    assert!(
        session.bytes().all(|b| b.is_ascii_hexdigit()),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(&hub.key), "the key is not the cookie");
    let (_, secret) = hub.key.rsplit_once('_').expect("key shape");
    assert!(!set_cookie.contains(secret), "no part of the key's secret");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let (again, _) = sign_in(&hub, &hub.key, None).await;
    assert_ne!(again, session, "each sign-in gets a new id");

    // Signed in from a page served over HTTPS, the cookie is Secure.
    let (_, over_tls) = sign_in(&hub, &hub.key, Some("https://hub.example.com")).await;
    assert!(over_tls.contains("; Secure"), "{over_tls}");

    // The raw key no longer works as a cookie.
    let as_key = get_with_cookie(&hub, "/dashboard/live", &hub.key).await;
    assert_eq!(as_key.status().as_u16(), 401);

    let page = get_with_cookie(&hub, "/dashboard", &session).await;
    assert_eq!(page.status().as_u16(), 200);
    assert_security_headers(page.headers(), "overview");
    let html = page.text().await.expect("body");
    assert!(html.contains("Business health"), "{html}");
    assert!(html.contains("Sign out"), "{html}");

    let out = client()
        .post(format!("{}/dashboard/logout", hub.base))
        .header(header::COOKIE, format!("{COOKIE}={session}"))
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status().as_u16(), 303);
    let cleared = out
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cleared.starts_with(&format!("{COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // A copy of the old cookie is worthless now; the other session still works.
    let page = get_with_cookie(&hub, "/dashboard", &session).await;
    assert_eq!(page.status().as_u16(), 303, "sent to sign in again");
    let live = get_with_cookie(&hub, "/dashboard/live", &session).await;
    assert_eq!(live.status().as_u16(), 401);
    let problem: serde_json::Value = live.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("session has ended"),
        "{problem}"
    );
    let other = get_with_cookie(&hub, "/dashboard/flows", &again).await;
    assert_eq!(other.status().as_u16(), 200);
    hub.stop().await;
}

#[tokio::test]
async fn revoking_the_key_ends_its_dashboard_sessions() {
    let hub = hub("dash-revoke", DashboardAccess::ApiKey, &[]).await;
    let created = keys::create(
        &hub.store,
        NewKey {
            client: "night-shift".to_owned(),
            scopes: vec![Scope::OpsRead],
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: None,
        },
        hub.clock.now(),
    )
    .await
    .expect("key");
    let (session, _) = sign_in(&hub, &created.key, None).await;
    let (kept, _) = sign_in(&hub, &hub.key, None).await;
    assert_eq!(
        get_with_cookie(&hub, "/dashboard/systems", &session)
            .await
            .status()
            .as_u16(),
        200
    );
    assert!(
        keys::revoke(&hub.store, &created.record.id, hub.clock.now())
            .await
            .expect("revoke")
    );
    // The hub reads keys again after its key cache's lifetime (seconds).
    hub.wait_for(Duration::from_secs(20), "the session to end", || async {
        get_with_cookie(&hub, "/dashboard/live", &session)
            .await
            .status()
            .as_u16()
            == 401
    })
    .await;
    assert_eq!(
        get_with_cookie(&hub, "/dashboard/systems", &session)
            .await
            .status()
            .as_u16(),
        303,
        "the ended session stays ended"
    );
    assert_eq!(
        get_with_cookie(&hub, "/dashboard/systems", &kept)
            .await
            .status()
            .as_u16(),
        200,
        "another key's session goes on"
    );
    hub.stop().await;
}

async fn with_host(hub: &Hub, path: &str, host: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", hub.base))
        .header(header::HOST, host)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_foreign_host_is_refused_in_every_access_mode() {
    for access in [DashboardAccess::Open, DashboardAccess::ApiKey] {
        let hub = hub("dash-host", access, &["hub.example.com"]).await;
        let port = hub.base.rsplit(':').next().expect("port").to_owned();
        for host in [
            "evil.example",
            &format!("evil.example:{port}"),
            "localhost.evil.example",
        ] {
            for path in [
                "/dashboard",
                "/dashboard/login",
                "/dashboard/live",
                "/dashboard/app.js",
            ] {
                let response = with_host(&hub, path, host).await;
                assert_eq!(response.status().as_u16(), 403, "{access:?} {host} {path}");
                assert_security_headers(response.headers(), "refused host");
                let kind = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(kind, "application/problem+json");
                let problem: serde_json::Value = response.json().await.expect("problem");
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(
                    detail.contains(&format!("`{host}`")) && detail.contains("ops.dashboard_hosts"),
                    "{problem}"
                );
            }
        }
        let refused = client()
            .post(format!("{}/dashboard/actions/replays", hub.base))
            .header(header::HOST, "evil.example")
            .header("x-crossdock-action", "1")
            .json(&serde_json::json!({ "dry_run": true }))
            .send()
            .await
            .expect("action");
        assert_eq!(
            refused.status().as_u16(),
            403,
            "{access:?}: an action by a rebound name"
        );

        let expected = if access == DashboardAccess::Open {
            200
        } else {
            303
        };
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            "hub.example.com".to_owned(),
            format!("HUB.example.com:{port}"),
        ] {
            let response = with_host(&hub, "/dashboard", &host).await;
            assert_eq!(response.status().as_u16(), expected, "{access:?} {host}");
        }
        // The API itself is not the dashboard: its own authentication applies, not this check.
        let health = with_host(&hub, "/healthz", "evil.example").await;
        assert_ne!(health.status().as_u16(), 403);
        hub.stop().await;
    }
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let hub = hub("dash-throttle", DashboardAccess::ApiKey, &[]).await;
    let per_minute = hub.state.config().auth_failures_per_minute;
    let attempt = |key: String| {
        let base = hub.base.clone();
        async move {
            client()
                .post(format!("{base}/dashboard/login"))
                .header("x-crossdock-action", "1")
                .json(&serde_json::json!({ "key": key }))
                .send()
                .await
                .expect("sign in")
        }
    };
    let mut statuses = Vec::new();
    for n in 0..=per_minute {
        statuses.push(
            attempt(format!("cdk_0123456789ab_wrong{n}"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(
        statuses[..usize::try_from(per_minute).expect("small")]
            .iter()
            .all(|s| *s == 401),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Blocked: even the right key waits now.
    let right = attempt(hub.key.clone()).await;
    assert_eq!(right.status().as_u16(), 429);
    assert!(right.headers().get(header::RETRY_AFTER).is_some());
    hub.stop().await;
}
