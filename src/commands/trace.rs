//! `crossdock trace ID`: one order's whole timeline across systems, read from the store.

use std::io::IsTerminal;

use anyhow::Context;
use crossdock_api::ops::format::{money, table};
use crossdock_api::ops::health::step_words;
use crossdock_api::ops::trace::{self, Trace};
use time::format_description::well_known::Rfc3339;

/// Terminal styles, empty when output is not a terminal or `NO_COLOR` is set.
pub struct Style {
    on: bool,
}

impl Style {
    /// Styles for standard output.
    pub fn detect() -> Self {
        Self {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold.
    pub fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// Dim.
    pub fn dim(&self, text: &str) -> String {
        self.wrap("2", text)
    }

    /// Green, yellow or red by outcome.
    pub fn outcome(&self, outcome: &str) -> String {
        let code = match outcome {
            "ok" | "auto_resolved" | "succeeded" => "32",
            "transient" | "throttled" | "conflict" | "deferred" | "retried" | "waiting" => "33",
            "permanent" | "unknown" | "refused" | "open" | "failed_again" => "31",
            _ => "0",
        };
        self.wrap(code, outcome)
    }
}

/// Opens the store the commands act on.
pub async fn open_store(location: &str) -> anyhow::Result<crossdock_store::SharedStore> {
    crossdock_store::open(location)
        .await
        .with_context(|| format!("cannot open the store at {location}"))
}

/// Time as `2026-11-27 12:00:01`.
pub fn when(at: time::OffsetDateTime) -> String {
    let text = at.format(&Rfc3339).unwrap_or_default();
    text.replace('T', " ").chars().take(19).collect()
}

/// Renders a trace as aligned text.
pub fn render(t: &Trace, style: &Style) -> String {
    let mut out = String::new();
    let value = match (&t.total, &t.currency) {
        (Some(total), Some(currency)) => money(total.parse().unwrap_or_default(), currency),
        _ => "—".to_owned(),
    };
    out.push_str(&style.bold(&format!(
        "Order {} (hub {})",
        t.sf_number.as_deref().unwrap_or(&t.order_id),
        t.order_id
    )));
    out.push('\n');
    out.push_str(&format!(
        "Status {} · value {} · ERP {} · customer {} · Salesforce shows {}\n\n",
        t.status.as_deref().unwrap_or("—"),
        value,
        t.erp_ref.as_deref().unwrap_or("not booked"),
        t.account.as_deref().unwrap_or("—"),
        t.sf_synced_status.as_deref().unwrap_or("nothing yet"),
    ));
    let mut rows = vec![vec![
        "WHEN".to_owned(),
        "SYSTEM".to_owned(),
        "RESULT".to_owned(),
        "TOOK".to_owned(),
        "WHAT".to_owned(),
    ]];
    let mut outcomes = Vec::new();
    for e in &t.entries {
        outcomes.push(e.outcome.clone().unwrap_or_default());
        rows.push(vec![
            when(e.at),
            e.system.clone().unwrap_or_else(|| "—".to_owned()),
            e.outcome.clone().unwrap_or_default(),
            e.latency_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            e.summary.clone(),
        ]);
    }
    // Colour after aligning, so escape codes do not count as width.
    for (i, line) in table(&rows).lines().enumerate() {
        let line = if i == 0 {
            style.dim(line)
        } else {
            let outcome = &outcomes[i - 1];
            if outcome.is_empty() {
                line.to_owned()
            } else {
                line.replacen(
                    &format!("  {outcome}  "),
                    &format!("  {}  ", style.outcome(outcome)),
                    1,
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    if !t.dead_letters.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("Failed steps")));
        for d in &t.dead_letters {
            out.push_str(&format!(
                "  #{} {} — {} after {} attempt(s): {} [{}]\n",
                d.id,
                step_words(&d.kind),
                d.class,
                d.attempts,
                d.error,
                style.outcome(&d.status)
            ));
        }
    }
    if !t.queued.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("Waiting to run")));
        for q in &t.queued {
            out.push_str(&format!(
                "  {} on {}: {}, attempt {}{}\n",
                step_words(&q.kind),
                q.lane,
                q.state,
                q.attempts,
                q.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// Runs `crossdock trace`.
pub async fn run(id: &str, store: &str, json: bool) -> anyhow::Result<()> {
    let store = open_store(store).await?;
    let found = trace::trace(&store, id)
        .await
        .context("reading the trace")?;
    store.close().await;
    let Some(t) = found else {
        anyhow::bail!(
            "no order is known by {id:?} (try its Salesforce number, ERP number, hub id or a correlation id)"
        );
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", render(&t, &Style::detect()));
    }
    Ok(())
}
