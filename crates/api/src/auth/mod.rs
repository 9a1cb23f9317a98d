//! Authentication and authorisation.
//!
//! - [`keys`]: API keys (`Authorization: Bearer cdk_…` or `X-Api-Key`), stored as salted hashes.
//! - [`jwt`]: OAuth2 bearer JWTs (RS256, ES256) against a JWKS.
//! - [`refs`]: identifiers in Salesforce's namespace sent by clients, checked against the
//!   hub's records before anything is written.
//! - [`scope`]: scopes per service; [`Authorized`] extracts the caller of a route and checks
//!   its scope and rate limit before anything else runs.
//!
//! Object-level rules live on [`Principal`]: a client limited to accounts or channels gets 404
//! (never 403) for anything outside them, so it cannot learn what exists.

pub mod jwt;
pub mod keys;
pub mod refs;
pub mod scope;

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::config::RateLimit;
use crate::problem::Problem;
use crate::state::AppState;
pub use scope::{RequiredScope, Scope};

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Credential id (`key:<id>` or `jwt:<subject>`), for audit records and rate limits.
    pub id: String,
    /// Client name.
    pub client: String,
    /// Granted scopes.
    pub scopes: BTreeSet<Scope>,
    /// Accounts it may see; empty: every account.
    pub accounts: Vec<String>,
    /// Channels it may see (lower case); empty: every channel.
    pub channels: Vec<String>,
    /// Own rate limit (requests per second).
    pub rate_per_second: Option<u32>,
}

impl Principal {
    /// Whether the client may see an account's data.
    pub fn may_see_account(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|a| a == account)
    }

    /// Whether the client may use a channel (compared without case: `B2B` = `b2b`).
    pub fn may_see_channel(&self, channel: &str) -> bool {
        self.channels.is_empty()
            || self
                .channels
                .iter()
                .any(|c| c.eq_ignore_ascii_case(channel))
    }

    /// Whether the client may see an order of `account` on `channel`.
    pub fn may_see(&self, account: &str, channel: &str) -> bool {
        self.may_see_account(account) && self.may_see_channel(channel)
    }

    /// Whether the client has a scope.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The rate limit that applies to the client.
    pub fn rate_limit(&self, default: RateLimit) -> RateLimit {
        match self.rate_per_second {
            Some(rate) => RateLimit {
                per_second: rate,
                burst: rate.saturating_mul(2),
            },
            None => default,
        }
    }
}

/// The caller of a route that needs scope `S`: authenticated, within its rate limit, holding
/// the scope. Refusals: 401 (no or bad credentials), 429 (rate, or too many failed
/// authentications from the client's address: [`crate::ratelimit`]), 403 (scope).
#[derive(Debug, Clone)]
pub struct Authorized<S> {
    /// The caller.
    pub principal: Principal,
    scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let principal = throttled(state, address, authenticate(parts, state)).await?;
        let limit = principal.rate_limit(state.config().rate_limit);
        if let Err(retry_after) = state.limiter().check(&principal.id, limit) {
            return Err(Problem::rate_limited(
                "rate-limited",
                format!(
                    "the client `{}` is over its rate limit of {} requests per second",
                    principal.client, limit.per_second
                ),
                retry_after,
            ));
        }
        if !principal.has(S::SCOPE) {
            return Err(Problem::forbidden(S::SCOPE.as_str()));
        }
        Ok(Self {
            principal,
            scope: PhantomData,
        })
    }
}

/// Runs an authentication `attempt` under the address's budget of failed authentications
/// (`auth_failures_per_minute`): an address already past it gets 429 without the attempt
/// running, and a failed attempt (401) counts against it, answering 429 once it is spent.
/// Without an address (no peer information) the attempt runs unthrottled.
pub(crate) async fn throttled<T>(
    state: &AppState,
    address: Option<IpAddr>,
    attempt: impl Future<Output = Result<T, Problem>>,
) -> Result<T, Problem> {
    let per_minute = state.config().auth_failures_per_minute;
    if let Some(address) = address
        && let Err(retry_after) = state.limiter().auth_blocked(address, per_minute)
    {
        return Err(too_many_failures(per_minute, retry_after));
    }
    match attempt.await {
        Err(problem) if problem.status == 401 => {
            if let Some(address) = address
                && let Err(retry_after) = state.limiter().auth_failed(address, per_minute)
            {
                return Err(too_many_failures(per_minute, retry_after));
            }
            Err(problem)
        }
        answer => answer,
    }
}

/// 429 for an address past its budget of failed authentications.
fn too_many_failures(per_minute: u32, retry_after: u64) -> Problem {
    Problem::rate_limited(
        "rate-limited",
        format!(
            "more than {per_minute} failed authentications a minute came from this address; \
             retry after {retry_after} s"
        ),
        retry_after,
    )
}

/// The credentials a request presents.
fn credentials(parts: &Parts) -> Option<&str> {
    if let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Identifies the caller of a request.
///
/// # Errors
/// 401 when there are no credentials or they are not valid.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, Problem> {
    let Some(presented) = credentials(parts) else {
        return Err(Problem::unauthorized(
            "send an API key (Authorization: Bearer cdk_…, or X-Api-Key) or an OAuth2 bearer token",
        ));
    };
    if presented.starts_with(keys::PREFIX) {
        let Some((id, secret)) = keys::split(presented) else {
            return Err(Problem::unauthorized("the API key is malformed"));
        };
        return match state.key_record(id).await? {
            Some(record) if keys::matches(&record, secret) => Ok(Principal {
                id: format!("key:{}", record.id),
                client: record.client,
                scopes: record.scopes.into_iter().collect(),
                accounts: record.accounts,
                channels: record.channels,
                rate_per_second: record.rate_per_second,
            }),
            _ => Err(Problem::unauthorized("the API key is unknown or revoked")),
        };
    }
    match state.jwt() {
        Some(verifier) => verifier.verify(presented).map_err(Problem::unauthorized),
        None => Err(Problem::unauthorized(
            "bearer tokens are not accepted here (no identity provider is configured)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(accounts: &[&str], channels: &[&str]) -> Principal {
        Principal {
            id: "key:1".to_owned(),
            client: "c".to_owned(),
            scopes: BTreeSet::new(),
            accounts: accounts.iter().map(|s| (*s).to_owned()).collect(),
            channels: channels.iter().map(|s| (*s).to_owned()).collect(),
            rate_per_second: None,
        }
    }

    #[test]
    fn object_rules_limit_accounts_and_channels() {
        let open = principal(&[], &[]);
        assert!(open.may_see("ACC-1", "B2B"));
        let limited = principal(&["ACC-1"], &["web"]);
        assert!(limited.may_see("ACC-1", "Web"));
        assert!(!limited.may_see("ACC-2", "Web"));
        assert!(!limited.may_see("ACC-1", "B2B"));
    }
}
