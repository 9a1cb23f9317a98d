//! Return-on-investment evidence: how long orders take per stage (p50/p95), how many
//! exceptions were raised and how many resolved themselves, how often people had to step in,
//! and how accurately Salesforce shows stock.

use std::collections::BTreeMap;

use crossdock_store::{DeadLetterFilter, SharedStore};
use rust_decimal::Decimal;
use serde::Serialize;

use super::follower::{CycleTime, Follower};
use super::health::{ExceptionKind, HealthReport};

/// The ROI figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Roi {
    /// Cycle time per stage.
    pub cycle_times: Vec<CycleTime>,
    /// Exceptions (dead letters) raised.
    pub exceptions_raised: u64,
    /// Resolved by a later successful attempt, without anyone.
    pub auto_resolved: u64,
    /// Resolved or retried by someone.
    pub handled_by_people: u64,
    /// Still open.
    pub open: u64,
    /// Manual interventions per audit action.
    pub interventions: BTreeMap<String, u64>,
    /// Σ interventions.
    pub interventions_total: u64,
    /// Stock levels cached (product × location).
    pub stock_levels: usize,
    /// Of which Salesforce is known to lag behind the ERP.
    pub stock_levels_drifted: usize,
    /// Share of stock levels Salesforce shows as the ERP last reported them (percent, two
    /// decimals); `None` with nothing cached.
    pub inventory_accuracy_pct: Option<Decimal>,
}

/// Computes the ROI figures from the store, the follower and a health report.
///
/// # Errors
/// When the store fails.
pub async fn compute(
    store: &SharedStore,
    follower: &Follower,
    health: &HealthReport,
) -> crossdock_store::Result<Roi> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut filter = DeadLetterFilter {
        limit: Some(5_000),
        ..DeadLetterFilter::default()
    };
    // Bounded: a hub with more dead letters than this shows the first ones' figures.
    for _ in 0..40 {
        let page = store.dead_letters(filter.clone()).await?;
        let full = page.len() == 5_000;
        filter.after_id = page.last().map(|d| d.id);
        for d in page {
            *counts.entry(d.status.as_str().to_owned()).or_default() += 1;
        }
        if !full {
            break;
        }
    }
    let count = |s: &str| counts.get(s).copied().unwrap_or(0);
    let stock_levels = store.inventory(&[]).await?.len();
    let drifted = health
        .of_kind(ExceptionKind::InventoryNotInSalesforce)
        .count();
    let accuracy = (stock_levels > 0).then(|| {
        (Decimal::from(stock_levels.saturating_sub(drifted)) * Decimal::from(100)
            / Decimal::from(stock_levels))
        .round_dp(2)
    });
    let interventions = follower.interventions().clone();
    Ok(Roi {
        cycle_times: follower.cycle_times(),
        exceptions_raised: counts.values().sum(),
        auto_resolved: count("auto_resolved"),
        handled_by_people: count("resolved") + count("retried"),
        open: count("open"),
        interventions_total: interventions.values().sum(),
        interventions,
        stock_levels,
        stock_levels_drifted: drifted,
        inventory_accuracy_pct: accuracy,
    })
}
