//! `crossdock replay SUBSCRIBER --from POSITION | --since TIME`: moves an event subscriber's
//! cursor back so it receives events again. Audited.

use anyhow::Context;
use crossdock_api::ops::replay::{self, From};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::trace::open_store;

/// Runs `crossdock replay`.
pub async fn run(
    subscriber: &str,
    from: Option<i64>,
    since: Option<&str>,
    store: &str,
    actor: Option<&str>,
) -> anyhow::Result<()> {
    let from = match (from, since) {
        (Some(position), None) => From::Position(position),
        (None, Some(since)) => {
            From::Since(OffsetDateTime::parse(since, &Rfc3339).with_context(|| {
                format!("{since:?} is not an RFC 3339 time (e.g. 2026-11-27T09:00:00Z)")
            })?)
        }
        _ => anyhow::bail!("give exactly one of --from POSITION or --since TIME"),
    };
    let actor = actor.map_or_else(
        || {
            format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
            )
        },
        str::to_owned,
    );
    let store = open_store(store).await?;
    let now = crossdock_ports::Clock::now(&crossdock_ports::SystemClock);
    let moved = replay::replay(&store, subscriber, from, &actor, now).await;
    store.close().await;
    let moved = moved.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} moves from {} to {}: it receives event {} and everything after it again.",
        moved.cursor,
        moved.before.as_deref().unwrap_or("the start"),
        moved.after,
        moved.first_event
    );
    Ok(())
}
