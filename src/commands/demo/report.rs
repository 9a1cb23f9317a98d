//! The end of the day: waits for every order to settle, then measures (orders per final
//! state, cycle times per stage, exceptions, Salesforce API calls) and reconciles Salesforce,
//! the ERP and the hub order by order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use crossdock_domain::summary::OrderSummary;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus, OrderRow, SharedStore};
use time::OffsetDateTime;

use super::scenario::{Plan, Twist};

/// What the day produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Orders per status.
    pub by_status: BTreeMap<String, u64>,
    /// (stage, p50 s, p95 s, samples).
    pub cycle_times: Vec<(String, f64, f64, usize)>,
    /// Dead letters by status.
    pub dead_letters: BTreeMap<String, u64>,
    /// Retries by failure class.
    pub retries: BTreeMap<String, u64>,
    /// Salesforce API calls the hub used.
    pub salesforce_calls: u64,
    /// Calls per order.
    pub salesforce_calls_per_order: f64,
    /// Calls by kind, as the org counted them (the demo's own calls included).
    pub salesforce_calls_by_kind: BTreeMap<String, u64>,
    /// Orders whose final state is not the planned one.
    pub unexpected: Vec<String>,
    /// Disagreements between Salesforce, the ERP and the hub.
    pub disagreements: Vec<String>,
    /// Orders checked by reconciliation.
    pub reconciled: usize,
    /// External references with more than one sales order in the ERP's data.
    pub duplicate_bookings: Vec<String>,
    /// References (ERP order, shipment, invoice, return numbers, Salesforce ids) that the
    /// hub's store binds to more than one order.
    pub bound_twice: Vec<String>,
    /// Orders captured during the ERP outage, and how many of them were booked after it.
    pub outage: (usize, usize),
    /// Returns closed / requested.
    pub returns: (usize, usize),
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.unexpected.is_empty()
            && self.disagreements.is_empty()
            && self.duplicate_bookings.is_empty()
            && self.bound_twice.is_empty()
    }

    /// The summary, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n── crossdock demo summary ──────────────────────────────────────"
        );
        let total: u64 = self.by_status.values().sum();
        let _ = writeln!(out, "orders: {total}");
        for (status, n) in &self.by_status {
            let _ = writeln!(out, "  {status:<18} {n:>6}");
        }
        let _ = writeln!(out, "cycle time from capture to each stage (p50 / p95):");
        for (stage, p50, p95, samples) in &self.cycle_times {
            let _ = writeln!(
                out,
                "  capture → {stage:<12} {p50:>7.1}s / {p95:>7.1}s   ({samples} orders)"
            );
        }
        let raised: u64 = self.dead_letters.values().sum();
        let auto = self.dead_letters.get("auto_resolved").copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "exceptions: {raised} raised, {auto} auto-resolved, {} retried by an operator, {} still open",
            self.dead_letters.get("retried").copied().unwrap_or(0),
            self.dead_letters.get("open").copied().unwrap_or(0),
        );
        let retries: Vec<String> = self
            .retries
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "retries by class: {}",
            if retries.is_empty() {
                "none".to_owned()
            } else {
                retries.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "Salesforce API calls used by the hub: {} ({:.2} per order)",
            self.salesforce_calls, self.salesforce_calls_per_order
        );
        let kinds: Vec<String> = self
            .salesforce_calls_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  org-wide calls by kind (incl. the demo's users): {}",
            kinds.join(", ")
        );
        let _ = writeln!(
            out,
            "ERP outage: {} orders arrived during it; {} of them were booked after it, in capture order per account",
            self.outage.0, self.outage.1
        );
        let _ = writeln!(
            out,
            "returns: {} of {} closed with credit memo and refund",
            self.returns.0, self.returns.1
        );
        let _ = writeln!(
            out,
            "duplicate bookings in the ERP: {}",
            self.duplicate_bookings.len()
        );
        for line in self.duplicate_bookings.iter().take(20) {
            let _ = writeln!(out, "  ✗ booked twice: {line}");
        }
        let _ = writeln!(
            out,
            "references bound to two hub orders: {}",
            self.bound_twice.len()
        );
        for line in self.bound_twice.iter().take(20) {
            let _ = writeln!(out, "  ✗ bound twice: {line}");
        }
        let _ = writeln!(
            out,
            "reconciliation: {} orders checked, {} disagreements between Salesforce, the ERP and the hub",
            self.reconciled,
            self.disagreements.len()
        );
        for line in self.disagreements.iter().take(20) {
            let _ = writeln!(out, "  ✗ {line}");
        }
        for line in self.unexpected.iter().take(20) {
            let _ = writeln!(out, "  ✗ unexpected final state: {line}");
        }
        let _ = writeln!(
            out,
            "result: {}",
            if self.ok() {
                "every check passed"
            } else {
                "CHECKS FAILED"
            }
        );
        out
    }
}

/// Statuses after which the demo stops waiting for an order.
pub fn is_settled(status: &str) -> bool {
    matches!(status, "Closed" | "Rejected" | "Cancelled")
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index]
}

fn seconds(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Option<f64> {
    let (from, to) = (from?, to?);
    let d = (to - from).as_seconds_f64();
    (d >= 0.0).then_some(d)
}

/// Cycle times per stage from the order rows.
pub fn cycle_times(rows: &[OrderRow]) -> Vec<(String, f64, f64, usize)> {
    type Stage = fn(&OrderRow) -> Option<f64>;
    let stages: [(&str, Stage); 6] = [
        ("booked", |r| seconds(r.captured_at, r.booked_at)),
        ("shipped", |r| seconds(r.captured_at, r.shipped_at)),
        ("delivered", |r| seconds(r.captured_at, r.delivered_at)),
        ("invoiced", |r| seconds(r.captured_at, r.invoiced_at)),
        ("paid", |r| seconds(r.captured_at, r.paid_at)),
        ("closed", |r| {
            seconds(r.captured_at, r.ended_at.filter(|_| r.status == "Closed"))
        }),
    ];
    stages
        .iter()
        .map(|(name, f)| {
            let mut values: Vec<f64> = rows.iter().filter_map(f).collect();
            let n = values.len();
            let p50 = percentile(&mut values, 0.5);
            let p95 = percentile(&mut values, 0.95);
            ((*name).to_owned(), p50, p95, n)
        })
        .collect()
}

/// Dead letters by status.
pub async fn dead_letters(store: &SharedStore) -> Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .dead_letters(DeadLetterFilter {
                after_id: after,
                limit: Some(500),
                ..DeadLetterFilter::default()
            })
            .await?;
        let Some(last) = page.last().map(|d| d.id) else {
            break;
        };
        for letter in &page {
            let key = match letter.status {
                DeadLetterStatus::Open => "open",
                DeadLetterStatus::Retried => "retried",
                DeadLetterStatus::Resolved => "resolved",
                DeadLetterStatus::AutoResolved => "auto_resolved",
            };
            *counts.entry(key.to_owned()).or_default() += 1;
        }
        after = Some(last);
    }
    Ok(counts)
}

/// External references with more than one sales order, from the ERP's own data (pairs of
/// ERP order number and external reference): `"SF-00000137: SO-000037, SO-000112"`.
pub fn duplicate_bookings<'a>(orders: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut by_ref: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (number, external_ref) in orders {
        by_ref.entry(external_ref).or_default().push(number);
    }
    by_ref
        .into_iter()
        .filter(|(_, numbers)| numbers.len() > 1)
        .map(|(external_ref, numbers)| format!("{external_ref}: {}", numbers.join(", ")))
        .collect()
}

/// References the hub's store binds to more than one order — an ERP order number, shipment,
/// invoice or return number, a Salesforce id: `"ERP order SO-000037: SF-00000137,
/// SF-00200137"`.
///
/// # Errors
/// An order row whose summary cannot be read.
pub fn references_bound_twice(rows: &[OrderRow]) -> Result<Vec<String>> {
    let mut bindings = Vec::with_capacity(rows.len());
    for row in rows {
        let summary: OrderSummary = row.body.parse()?;
        let mut refs: Vec<(&'static str, String)> = Vec::new();
        refs.extend(row.erp_ref.clone().map(|r| ("ERP order", r)));
        refs.extend(row.sf_id.clone().map(|r| ("Salesforce order", r)));
        refs.extend(
            summary
                .shipments
                .iter()
                .map(|s| ("shipment", s.id.to_string())),
        );
        refs.extend(
            summary
                .invoices
                .iter()
                .map(|i| ("invoice", i.number.clone())),
        );
        refs.extend(
            summary
                .returns
                .iter()
                .filter_map(|r| r.erp_ref.clone().map(|e| ("return", e))),
        );
        bindings.push((row.order_id.clone(), refs));
    }
    Ok(bound_twice(bindings))
}

/// The references held by more than one order, from `(order, [(kind, reference)])`.
fn bound_twice(bindings: Vec<(String, Vec<(&'static str, String)>)>) -> Vec<String> {
    let mut holders: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
    for (order, mut refs) in bindings {
        refs.sort();
        refs.dedup();
        for key in refs {
            holders.entry(key).or_default().push(order.clone());
        }
    }
    holders
        .into_iter()
        .filter(|(_, orders)| orders.len() > 1)
        .map(|((kind, reference), orders)| format!("{kind} {reference}: {}", orders.join(", ")))
        .collect()
}

/// The planned final state of an order, by its twist.
pub fn expected(plan: &Plan, n: u32) -> &'static str {
    match plan.orders.iter().find(|o| o.n == n).map(|o| o.twist) {
        Some(Twist::PriceMismatch) => "Rejected",
        Some(Twist::Cancel) => "Cancelled",
        _ => "Closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_with_two_sales_orders_is_a_duplicate_booking() {
        let orders = [
            ("SO-000001", "00000001"),
            ("SO-000002", "00000002"),
            ("SO-000003", "00000001"),
        ];
        assert_eq!(
            duplicate_bookings(orders),
            vec!["00000001: SO-000001, SO-000003".to_owned()]
        );
        assert!(duplicate_bookings([("SO-000001", "00000001")]).is_empty());
    }

    #[test]
    fn a_reference_held_by_two_orders_is_reported_once_per_reference() {
        let bindings = vec![
            (
                "SF-1".to_owned(),
                vec![
                    ("ERP order", "SO-000037".to_owned()),
                    ("shipment", "SH-1".to_owned()),
                    ("shipment", "SH-1".to_owned()),
                ],
            ),
            (
                "SF-2".to_owned(),
                vec![
                    ("ERP order", "SO-000037".to_owned()),
                    ("shipment", "SH-2".to_owned()),
                ],
            ),
            ("SF-3".to_owned(), vec![("invoice", "SO-000037".to_owned())]),
        ];
        assert_eq!(
            bound_twice(bindings),
            vec!["ERP order SO-000037: SF-1, SF-2".to_owned()],
            "one order naming a shipment twice, or another kind of reference with the same text, is not a double binding"
        );
    }
}
