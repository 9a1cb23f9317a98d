//! `crossdock dlq list|show|retry|resolve|report`: the exception queue from the command line.
//! Every action is audited under `cli:<user>` (or `--actor`).

use std::path::Path;

use anyhow::Context;
use crossdock_api::ops::exceptions::{self, ActionError, ExceptionView, Filter};
use crossdock_api::ops::format::table;
use crossdock_domain::flow::Flow;

use super::trace::{Style, open_store, when};
use crate::cli::DlqCommand;

fn explain(error: ActionError) -> anyhow::Error {
    match error {
        ActionError::Contract(errors) => anyhow::anyhow!(
            "refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

fn actor(explicit: Option<&str>) -> String {
    explicit.map_or_else(
        || {
            format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
            )
        },
        str::to_owned,
    )
}

fn now() -> time::OffsetDateTime {
    crossdock_ports::Clock::now(&crossdock_ports::SystemClock)
}

fn list_table(items: &[ExceptionView]) -> String {
    let mut rows = vec![
        [
            "ID", "FAILED", "ORDER", "STEP", "CLASS", "ATTEMPTS", "STATE", "ERROR",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for d in items {
        rows.push(vec![
            d.id.to_string(),
            when(d.created_at),
            d.order_id.clone().unwrap_or_else(|| "—".to_owned()),
            d.kind.clone(),
            d.class.clone(),
            d.attempts.to_string(),
            d.status.clone(),
            d.error.chars().take(100).collect(),
        ]);
    }
    table(&rows)
}

fn parse_id(text: &str) -> anyhow::Result<i64> {
    text.trim_start_matches('#')
        .parse()
        .with_context(|| format!("{text:?} is not a dead letter id (a number)"))
}

/// Runs a `crossdock dlq` subcommand.
pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    let flows: Vec<Flow> = crossdock_domain::flow::defaults();
    let style = Style::detect();
    match command {
        DlqCommand::List {
            store,
            filter,
            json,
        } => {
            let mut filter = match filter {
                Some(text) => Filter::parse(&text).map_err(|e| anyhow::anyhow!(e))?,
                None => Filter::default(),
            };
            if filter.status.as_deref() == Some("any") {
                filter.status = None;
            } else if filter.status.is_none() {
                filter.status = Some("open".to_owned());
            }
            let store = open_store(&store).await?;
            let items = exceptions::list(&store, &flows, &filter)
                .await
                .map_err(explain)?;
            store.close().await;
            let views: Vec<ExceptionView> =
                items.iter().map(|d| ExceptionView::of(d, &flows)).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                println!("No dead letters match.");
            } else {
                print!("{}", list_table(&views));
            }
        }
        DlqCommand::Show { id, store } => {
            let store = open_store(&store).await?;
            let dead = exceptions::get(&store, parse_id(&id)?)
                .await
                .map_err(explain)?;
            store.close().await;
            let d = ExceptionView::of(&dead, &flows);
            println!(
                "{}",
                style.bold(&format!("Dead letter #{} ({})", d.id, d.status))
            );
            println!("Order:     {}", d.order_id.as_deref().unwrap_or("—"));
            println!(
                "Step:      {} ({}, flow {})",
                d.step,
                d.kind,
                d.flow.as_deref().unwrap_or("—")
            );
            println!(
                "Failed:    {} after {} attempt(s), class {}",
                when(d.created_at),
                d.attempts,
                d.class
            );
            println!("Error:     {}", d.error);
            println!("Reason:    {}", d.reason);
            println!(
                "Blocking:  {}",
                if d.blocking {
                    "yes (later steps of the order wait)"
                } else {
                    "no"
                }
            );
            if let Some(resolution) = &d.resolution {
                println!("Closed:    {resolution}");
            }
            println!(
                "Payload (secrets redacted):\n{}",
                serde_json::to_string_pretty(&d.payload)?
            );
        }
        DlqCommand::Retry {
            id,
            edit,
            filter,
            dry_run,
            store,
            actor: who,
        } => {
            let who = actor(who.as_deref());
            let store = open_store(&store).await?;
            let result = retry(
                &store,
                &flows,
                id.as_deref(),
                edit.as_deref(),
                filter.as_deref(),
                dry_run,
                &who,
                &style,
            )
            .await;
            store.close().await;
            result?;
        }
        DlqCommand::Resolve {
            id,
            reason,
            store,
            actor: who,
        } => {
            let store = open_store(&store).await?;
            let result = exceptions::resolve(
                &store,
                parse_id(&id)?,
                &reason,
                &actor(who.as_deref()),
                now(),
            )
            .await;
            store.close().await;
            result.map_err(explain)?;
            println!("Dead letter #{id} resolved.");
        }
        DlqCommand::Report { batch, store } => {
            let store = open_store(&store).await?;
            let report = exceptions::report(&store, &batch).await.map_err(explain)?;
            store.close().await;
            let Some(report) = report else {
                anyhow::bail!("no replay {batch}");
            };
            println!(
                "Replay {}: {} succeeded, {} waiting, {} failed again",
                report.id, report.succeeded, report.waiting, report.failed_again
            );
            let mut rows = vec![
                ["DEAD LETTER", "ORDER", "STEP", "OUTCOME", "DETAIL"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for i in &report.items {
                rows.push(vec![
                    format!("#{}", i.item.dead_letter),
                    i.item.order_id.clone().unwrap_or_else(|| "—".to_owned()),
                    i.item.kind.clone(),
                    i.outcome.clone(),
                    i.error.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", table(&rows));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn retry(
    store: &crossdock_store::SharedStore,
    flows: &[Flow],
    id: Option<&str>,
    edit: Option<&Path>,
    filter: Option<&str>,
    dry_run: bool,
    who: &str,
    style: &Style,
) -> anyhow::Result<()> {
    match (id, filter) {
        (Some(id), None) => {
            let id = parse_id(id)?;
            let edited = match edit {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .with_context(|| format!("{} is not JSON", path.display()))?,
                    )
                }
                None => None,
            };
            if dry_run {
                let dead = exceptions::get(store, id).await.map_err(explain)?;
                if let Some(edited) = &edited {
                    crossdock_api::ops::contract::validate(
                        &dead.task.kind,
                        &dead.task.payload,
                        edited,
                    )
                    .map_err(|e| explain(ActionError::Contract(e)))?;
                }
                println!(
                    "Would send dead letter #{id} ({}) again{}.",
                    dead.task.kind,
                    if edited.is_some() {
                        " with the edited payload"
                    } else {
                        ""
                    }
                );
                return Ok(());
            }
            let task = exceptions::retry(store, id, edited, who, now())
                .await
                .map_err(explain)?;
            println!(
                "Dead letter #{id} is back in the queue as task {task}; a running hub picks it up."
            );
        }
        (None, Some(filter)) => {
            if edit.is_some() {
                anyhow::bail!("--edit applies to one dead letter; give its id instead of --filter");
            }
            let filter = Filter::parse(filter).map_err(|e| anyhow::anyhow!(e))?;
            if dry_run {
                let plan = exceptions::plan(store, flows, &filter)
                    .await
                    .map_err(explain)?;
                println!(
                    "{}",
                    style.bold(&format!(
                        "Would send {} dead letter(s) again, oldest first:",
                        plan.items.len()
                    ))
                );
                print!("{}", list_table(&plan.items));
                println!("Run again without --dry-run to send them.");
                return Ok(());
            }
            let batch = exceptions::replay(store, flows, &filter, who, now())
                .await
                .map_err(explain)?;
            let sent = batch.items.iter().filter(|i| i.task.is_some()).count();
            println!(
                "Replay {}: {sent} of {} sent again.",
                batch.id,
                batch.items.len()
            );
            for item in batch.items.iter().filter(|i| i.refused.is_some()) {
                println!(
                    "  #{} not sent: {}",
                    item.dead_letter,
                    item.refused.as_deref().unwrap_or_default()
                );
            }
            println!("See what happened with: crossdock dlq report {}", batch.id);
        }
        (Some(_), Some(_)) => anyhow::bail!("give a dead letter id or --filter, not both"),
        (None, None) => anyhow::bail!(
            "give a dead letter id, or --filter for a bulk replay (try --dry-run first)"
        ),
    }
    Ok(())
}
