//! `crossdock reconcile`: reads every order the hub knows (or those with the given statuses),
//! asks Salesforce (two queries per 200 orders) and the ERP (one read per booked order) what
//! they show, and reports each disagreement. With `--heal`, the orders Salesforce shows wrongly
//! are written back from the hub's state (the same idempotent write-back the engine makes),
//! audited, and checked again. Disagreements with the ERP are reported, not healed: they mean a
//! missed ERP change, which the ERP owns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::{Clock, Erp, Salesforce, SystemClock};
use crossdock_salesforce::mapping::{LineValue, OrderValue};
use crossdock_store::{AuditEntry, OrderQuery, OrderRow, SharedStore};

use crate::cli::ReconcileArgs;
use crate::config::Config;
use crate::hub;
use crate::reconcile::{Disagreement, SalesforceView, Side, compare};

/// Records per Salesforce query (`IN` list length).
const CHUNK: usize = 200;

/// Runs the command.
pub async fn run(args: ReconcileArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let problems = config.check();
    if !problems.is_empty() {
        bail!(
            "{} has problems:\n  {}",
            args.config.display(),
            problems.join("\n  ")
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = crossdock_store::open(&config.store.url)
        .await
        .with_context(|| format!("opening the store at {}", config.store.url))?;
    let erp = match &config.erp {
        Some(section) => Some(hub::erp(section, Arc::clone(&clock)).await?),
        None => None,
    };
    let salesforce = match &config.salesforce {
        Some(sf) => Some(
            crossdock_salesforce::Adapter::build(sf, Arc::clone(&clock))
                .context("Salesforce connector")?,
        ),
        None => None,
    };
    let rows = orders(&store, &args).await?;
    let orders: Vec<(OrderRow, OrderSummary)> = rows
        .into_iter()
        .filter_map(|row| {
            let summary = row.body.parse().ok()?;
            Some((row, summary))
        })
        .collect();
    let mut found = check(&orders, erp.as_deref(), salesforce.as_ref()).await?;
    println!(
        "{} orders checked against {}{}: {} disagreements",
        orders.len(),
        if salesforce.is_some() {
            "Salesforce"
        } else {
            "no Salesforce"
        },
        if erp.is_some() { " and the ERP" } else { "" },
        found.len()
    );
    print(&found);

    if args.heal
        && let Some(salesforce) = &salesforce
    {
        let stale: BTreeSet<&str> = found
            .iter()
            .filter(|d| d.side == Side::Salesforce)
            .map(|d| d.order_id.as_str())
            .collect();
        let targets: Vec<&(OrderRow, OrderSummary)> = orders
            .iter()
            .filter(|(row, _)| stale.contains(row.order_id.as_str()))
            .collect();
        let mut written = 0;
        for chunk in targets.chunks(CHUNK) {
            let summaries: Vec<OrderSummary> = chunk.iter().map(|(_, s)| s.clone()).collect();
            for ((row, _), result) in chunk.iter().zip(salesforce.write_orders(&summaries).await) {
                match result {
                    Ok(()) => {
                        written += 1;
                        store
                            .audit(AuditEntry {
                                at: clock.now(),
                                actor: "reconcile".to_owned(),
                                action: "salesforce.rewrite".to_owned(),
                                target: row.order_id.clone(),
                                detail: serde_json::json!({"status": row.status}),
                            })
                            .await?;
                    }
                    Err(error) => eprintln!("{}: the write-back failed: {error}", row.order_id),
                }
            }
        }
        let healed: Vec<(OrderRow, OrderSummary)> = targets.into_iter().cloned().collect();
        let again = check(&healed, None, Some(salesforce)).await?;
        println!(
            "healed: {written} of {} orders rewritten to Salesforce; {} disagreements remain there",
            healed.len(),
            again.len()
        );
        print(&again);
        found.retain(|d| d.side == Side::Erp);
        found.extend(again);
    }
    store.close().await;
    if found.is_empty() {
        Ok(())
    } else {
        bail!("{} disagreements remain", found.len())
    }
}

fn print(found: &[Disagreement]) {
    for d in found {
        let side = match d.side {
            Side::Salesforce => "salesforce",
            Side::Erp => "erp",
        };
        println!("  {:<24} {side:<10} {}", d.order_id, d.what);
    }
}

/// The orders to check, oldest id first.
async fn orders(store: &SharedStore, args: &ReconcileArgs) -> Result<Vec<OrderRow>> {
    let mut rows = Vec::new();
    let mut after = None;
    let limit = args.limit.unwrap_or(usize::MAX);
    while rows.len() < limit {
        let page = store
            .orders(OrderQuery {
                statuses: args.status.clone(),
                after: after.clone(),
                limit: Some(1_000.min(limit - rows.len())),
                ..OrderQuery::default()
            })
            .await?;
        let Some(last) = page.last().map(|r| r.order_id.clone()) else {
            break;
        };
        rows.extend(page);
        after = Some(last);
    }
    Ok(rows)
}

/// Compares each order with what Salesforce and the ERP show.
async fn check(
    orders: &[(OrderRow, OrderSummary)],
    erp: Option<&dyn Erp>,
    salesforce: Option<&crossdock_salesforce::Adapter>,
) -> Result<Vec<Disagreement>> {
    let views = match salesforce {
        Some(sf) => salesforce_views(sf, orders).await?,
        None => BTreeMap::new(),
    };
    let mut found = Vec::new();
    for (row, summary) in orders {
        let view = row.sf_id.as_ref().and_then(|id| views.get(id));
        if salesforce.is_some() && row.sf_id.is_some() && view.is_none() {
            found.push(Disagreement {
                order_id: row.order_id.clone(),
                side: Side::Salesforce,
                what: format!("Salesforce has no order {:?}", row.sf_id),
            });
        }
        let erp_order = match (erp, &row.erp_ref) {
            (Some(erp), Some(erp_ref)) => Some(erp.order(erp_ref).await.map_err(|e| e.to_string())),
            _ => None,
        };
        let erp_answer = erp_order
            .as_ref()
            .map(|answer| answer.as_ref().map_err(Clone::clone));
        let mut disagreements = compare(&row.status, summary, view, erp_answer);
        if erp.is_none() {
            disagreements.retain(|d| d.side == Side::Salesforce);
        }
        found.extend(disagreements);
    }
    Ok(found)
}

/// What Salesforce shows of the orders, by Salesforce id.
async fn salesforce_views(
    sf: &crossdock_salesforce::Adapter,
    orders: &[(OrderRow, OrderSummary)],
) -> Result<BTreeMap<String, SalesforceView>> {
    let mapping = sf.mapping();
    let order_field = |value: OrderValue| {
        mapping
            .order
            .fields()
            .find(|(_, v)| *v == value)
            .map(|(f, _)| f.clone())
    };
    let status_field = order_field(OrderValue::Status);
    let erp_field = order_field(OrderValue::ErpOrderNumber);
    let shipped_field = mapping
        .order_item
        .fields()
        .find(|(_, v)| *v == LineValue::Shipped)
        .map(|(f, _)| f.clone());
    let sku_field = mapping.sku_fields.first().cloned();
    let ids: Vec<&str> = orders
        .iter()
        .filter_map(|(row, _)| row.sf_id.as_deref())
        .collect();
    let mut views: BTreeMap<String, SalesforceView> = BTreeMap::new();
    for chunk in ids.chunks(CHUNK) {
        let list = chunk
            .iter()
            .map(|id| crossdock_salesforce::client::soql_quote(id))
            .collect::<Vec<_>>()
            .join(", ");
        let fields: Vec<&str> = ["Id"]
            .into_iter()
            .chain(status_field.as_deref())
            .chain(erp_field.as_deref())
            .collect();
        let records = sf
            .client()
            .query(&format!(
                "SELECT {} FROM Order WHERE Id IN ({list})",
                fields.join(", ")
            ))
            .await
            .map_err(|e| anyhow::anyhow!("querying Salesforce orders: {e}"))?;
        for record in records {
            let text = |field: &Option<String>| {
                field
                    .as_ref()
                    .and_then(|f| record[f.as_str()].as_str())
                    .map(str::to_owned)
            };
            if let Some(id) = record["Id"].as_str() {
                views.insert(
                    id.to_owned(),
                    SalesforceView {
                        status: text(&status_field),
                        erp_number: text(&erp_field),
                        shipped: BTreeMap::new(),
                    },
                );
            }
        }
        if let (Some(shipped), Some(sku)) = (&shipped_field, &sku_field) {
            let items = sf
                .client()
                .query(&format!(
                    "SELECT OrderId, {shipped}, Product2.{sku} FROM OrderItem WHERE OrderId IN ({list})"
                ))
                .await
                .map_err(|e| anyhow::anyhow!("querying Salesforce order items: {e}"))?;
            for item in items {
                let (Some(order), Some(code)) = (
                    item["OrderId"].as_str(),
                    item["Product2"][sku.as_str()].as_str(),
                ) else {
                    continue;
                };
                if let Some(view) = views.get_mut(order) {
                    *view.shipped.entry(code.to_owned()).or_default() +=
                        item[shipped.as_str()].as_f64().unwrap_or(0.0);
                }
            }
        }
    }
    Ok(views)
}
