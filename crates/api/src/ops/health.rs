//! Business process health: which business processes are stuck, for which orders, how much
//! money is at risk and why — computed from the read models and ranked by business impact.
//!
//! Every exception belongs to a flow, and its threshold is that flow's latency target
//! (payments: the payment terms). What is looked at:
//!
//! | exception | flow | late when |
//! |---|---|---|
//! | order awaiting ERP booking | `order-capture` | captured or validated, captured longer ago than the target |
//! | booking / rejection not in Salesforce | `order-capture` | Salesforce's confirmed copy is behind, since the change |
//! | shipment not in Salesforce | `fulfilment` | same, for allocation, shipment and delivery changes |
//! | invoice or payment not in Salesforce | `invoicing-payment` | same, for billing changes |
//! | cancellation not in Salesforce | `cancellation` | same, for a cancellation |
//! | return awaiting authorisation, credit memo, refund | `returns` | the return sits in that stage longer than the target |
//! | stock level not sent to Salesforce | `inventory-visibility` | a stock change is older than the target and no older than the Salesforce lane's oldest waiting task (so its write may still wait), or its write failed for good |
//! | stock feed from the ERP late | `inventory-visibility` | the ERP measured the level longer before the hub received it than the target |
//! | payment overdue | `invoicing-payment` | an invoice is unpaid longer than the payment terms |
//! | payment does not match invoices | `invoicing-payment` | more was paid than invoiced, for longer than the target |
//!
//! **Ranking.** Each exception gets an impact score:
//!
//! ```text
//! impact = (value_at_risk + base_value) × tier_weight × criticality_weight × lateness_factor
//! lateness_factor = 1 + min(time_past_target / latency_target, 10)
//! ```
//!
//! `value_at_risk` is the order value (returns: the returned units' value; payments: the
//! unpaid or overpaid amount; stock: 0), `base_value` ([`OpsConfig::base_value`], default 100)
//! keeps items without a value in the ranking, the tier weight is Gold 3, Silver 2, Bronze 1
//! (1 when the account is unknown) and the criticality weight is critical 4, high 3, medium 2,
//! low 1. Amounts of different currencies are compared at face value. The list is sorted by
//! impact, highest first; ties by value, then by lateness.
//!
//! [`OpsConfig::base_value`]: super::config::OpsConfig::base_value

use std::collections::{BTreeMap, HashMap};

use crossdock_domain::account::CustomerTier;
use crossdock_domain::flow::{Criticality, Flow};
use crossdock_domain::order::OrderStatus;
use crossdock_domain::summary::OrderSummary;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus, OrderQuery, OrderRow, SharedStore};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::Settings;
use super::follower::{Follower, ReturnStage};

/// Rows read per store call.
const PAGE: usize = 1_000;
/// Exceptions whose "why" is looked up (dead letters, queued work), highest impact first.
const EXPLAINED: usize = 200;

/// What kind of problem an exception is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// Captured or validated, not booked in the ERP in time.
    AwaitingBooking,
    /// Booked, but Salesforce does not show the booking yet.
    BookingNotInSalesforce,
    /// Rejected, but Salesforce does not show the rejection yet.
    RejectionNotInSalesforce,
    /// Allocation, shipment or delivery not in Salesforce yet.
    ShipmentNotInSalesforce,
    /// Invoice or payment not in Salesforce yet.
    BillingNotInSalesforce,
    /// Cancelled, but Salesforce does not show it yet.
    CancellationNotInSalesforce,
    /// Return requested, not authorised by the ERP in time.
    ReturnAwaitingAuthorisation,
    /// Goods received back, no credit memo yet.
    ReturnPendingCreditMemo,
    /// Credit memo issued, no refund yet.
    RefundPending,
    /// A stock change has not reached Salesforce.
    InventoryNotInSalesforce,
    /// The ERP's stock feed arrives late.
    InventoryFeedLate,
    /// An invoice is unpaid past the payment terms.
    PaymentOverdue,
    /// Payments exceed the invoices.
    PaymentMismatch,
}

impl ExceptionKind {
    /// Every kind, in the order the dashboard lists them.
    pub const ALL: [ExceptionKind; 13] = [
        ExceptionKind::AwaitingBooking,
        ExceptionKind::BookingNotInSalesforce,
        ExceptionKind::RejectionNotInSalesforce,
        ExceptionKind::ShipmentNotInSalesforce,
        ExceptionKind::BillingNotInSalesforce,
        ExceptionKind::CancellationNotInSalesforce,
        ExceptionKind::ReturnAwaitingAuthorisation,
        ExceptionKind::ReturnPendingCreditMemo,
        ExceptionKind::RefundPending,
        ExceptionKind::InventoryNotInSalesforce,
        ExceptionKind::InventoryFeedLate,
        ExceptionKind::PaymentOverdue,
        ExceptionKind::PaymentMismatch,
    ];

    /// Plain-words title.
    pub fn title(self) -> &'static str {
        match self {
            ExceptionKind::AwaitingBooking => "Order not booked in the ERP",
            ExceptionKind::BookingNotInSalesforce => "Booking not shown in Salesforce",
            ExceptionKind::RejectionNotInSalesforce => "Rejection not shown in Salesforce",
            ExceptionKind::ShipmentNotInSalesforce => "Shipment not shown in Salesforce",
            ExceptionKind::BillingNotInSalesforce => "Invoice or payment not shown in Salesforce",
            ExceptionKind::CancellationNotInSalesforce => "Cancellation not shown in Salesforce",
            ExceptionKind::ReturnAwaitingAuthorisation => "Return not authorised",
            ExceptionKind::ReturnPendingCreditMemo => "Return waiting for its credit memo",
            ExceptionKind::RefundPending => "Refund not paid",
            ExceptionKind::InventoryNotInSalesforce => "Stock level not sent to Salesforce",
            ExceptionKind::InventoryFeedLate => "Stock update from the ERP arrived late",
            ExceptionKind::PaymentOverdue => "Invoice unpaid past terms",
            ExceptionKind::PaymentMismatch => "Payments do not match invoices",
        }
    }

    /// The flow it belongs to.
    pub fn flow(self) -> &'static str {
        match self {
            ExceptionKind::AwaitingBooking
            | ExceptionKind::BookingNotInSalesforce
            | ExceptionKind::RejectionNotInSalesforce => "order-capture",
            ExceptionKind::ShipmentNotInSalesforce => "fulfilment",
            ExceptionKind::BillingNotInSalesforce
            | ExceptionKind::PaymentOverdue
            | ExceptionKind::PaymentMismatch => "invoicing-payment",
            ExceptionKind::CancellationNotInSalesforce => "cancellation",
            ExceptionKind::ReturnAwaitingAuthorisation
            | ExceptionKind::ReturnPendingCreditMemo
            | ExceptionKind::RefundPending => "returns",
            ExceptionKind::InventoryNotInSalesforce | ExceptionKind::InventoryFeedLate => {
                "inventory-visibility"
            }
        }
    }
}

/// One stuck piece of business.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthException {
    /// Position in the ranking (1 = most impact).
    pub rank: usize,
    /// What is wrong.
    pub kind: ExceptionKind,
    /// What is wrong, in words.
    pub title: String,
    /// Flow.
    pub flow: String,
    /// The flow's criticality.
    pub criticality: Criticality,
    /// What is stuck: an order id, `ORDER/RMA`, or `SKU@LOCATION`.
    pub subject: String,
    /// Order, when the exception is about one.
    pub order_id: Option<String>,
    /// Salesforce order number.
    pub sf_number: Option<String>,
    /// ERP order number.
    pub erp_ref: Option<String>,
    /// Customer account.
    pub account: Option<String>,
    /// Customer name, when known.
    pub account_name: Option<String>,
    /// Customer tier, when known.
    pub tier: Option<CustomerTier>,
    /// Money at risk.
    pub value_at_risk: Decimal,
    /// Its currency.
    pub currency: String,
    /// Since when the work waits.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Threshold (the flow's latency target or the payment terms), seconds.
    pub target_secs: u64,
    /// Time past the threshold, seconds.
    pub late_by_secs: i64,
    /// Impact score (see the module documentation).
    pub impact: Decimal,
    /// Why, when known (the failing step and its last error).
    pub why: Option<String>,
    /// Open dead letters of the order.
    pub dead_letters: Vec<i64>,
}

/// Health of one flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowHealth {
    /// Flow name.
    pub flow: String,
    /// Criticality.
    pub criticality: Criticality,
    /// Latency target, seconds.
    pub latency_target_secs: u64,
    /// Recovery objective, seconds.
    pub recovery_objective_secs: u64,
    /// `ok`, `late` (exceptions past the latency target) or `failing` (past the recovery
    /// objective).
    pub status: String,
    /// Exceptions.
    pub exceptions: usize,
    /// Money at risk.
    pub value_at_risk: Decimal,
    /// Longest lateness, seconds.
    pub worst_late_by_secs: i64,
}

/// The health report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// When computed (hub clock).
    #[serde(with = "time::serde::rfc3339")]
    pub computed_at: OffsetDateTime,
    /// Every exception, ranked by impact.
    pub exceptions: Vec<HealthException>,
    /// Per flow.
    pub flows: Vec<FlowHealth>,
    /// Σ value at risk per currency.
    pub value_at_risk: BTreeMap<String, Decimal>,
    /// Whether the history behind the return, payment and cycle views is read completely.
    pub complete: bool,
    /// Time taken (milliseconds).
    pub took_ms: u64,
}

impl HealthReport {
    /// Exceptions of one kind.
    pub fn of_kind(&self, kind: ExceptionKind) -> impl Iterator<Item = &HealthException> {
        self.exceptions.iter().filter(move |e| e.kind == kind)
    }
}

struct Draft {
    kind: ExceptionKind,
    subject: String,
    row: Option<OrderRow>,
    value: Decimal,
    currency: String,
    since: OffsetDateTime,
    target_secs: u64,
    why: Option<String>,
}

/// The flow named `name`: from the settings, else the shipped default.
fn flow<'a>(flows: &'a [Flow], defaults: &'a [Flow], name: &str) -> Option<&'a Flow> {
    flows
        .iter()
        .find(|f| f.name == name)
        .or_else(|| defaults.iter().find(|f| f.name == name))
}

fn target(flows: &[Flow], defaults: &[Flow], name: &str) -> u64 {
    flow(flows, defaults, name).map_or(600, |f| f.classification.latency_target_secs)
}

async fn all_orders(
    store: &SharedStore,
    mut query: OrderQuery,
) -> crossdock_store::Result<Vec<OrderRow>> {
    let mut out = Vec::new();
    query.limit = Some(PAGE);
    loop {
        let page = store.orders(query.clone()).await?;
        let full = page.len() == PAGE;
        query.after = page.last().map(|r| r.order_id.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

fn parse_total(row: &OrderRow) -> Decimal {
    row.total.parse().unwrap_or(Decimal::ZERO)
}

fn progress(status: &str) -> Option<u8> {
    OrderStatus::parse(status).and_then(OrderStatus::progress)
}

/// What health needs from the event-log follower, copied out so the computation does not hold
/// the follower (the results page and `/metrics` read it too).
#[derive(Debug, Clone, Default)]
pub struct FollowerView {
    /// Returns not closed yet.
    pub open_returns: Vec<crate::ops::follower::OpenReturn>,
    /// Orders whose invoices and payments do not balance.
    pub balances: Vec<crate::ops::follower::Balance>,
    /// Whether the follower has read the whole history.
    pub caught_up: bool,
}

impl FollowerView {
    /// Copies what health needs.
    pub fn of(follower: &Follower) -> Self {
        Self {
            open_returns: follower.open_returns().cloned().collect(),
            balances: follower.balances(),
            caught_up: follower.caught_up(),
        }
    }
}

/// Computes the health report.
///
/// # Errors
/// When the store fails.
pub async fn compute(
    store: &SharedStore,
    settings: &Settings,
    follower: &FollowerView,
    now: OffsetDateTime,
) -> crossdock_store::Result<HealthReport> {
    let started = std::time::Instant::now();
    let defaults = crossdock_domain::flow::defaults();
    let flows = &settings.flows;
    let tgt = |name: &str| target(flows, &defaults, name);
    let late = |since: OffsetDateTime, target_secs: u64| {
        (now - since).whole_seconds() - i64::try_from(target_secs).unwrap_or(i64::MAX)
    };
    let mut drafts: Vec<Draft> = Vec::new();
    let push_order =
        |drafts: &mut Vec<Draft>, kind: ExceptionKind, row: &OrderRow, since: OffsetDateTime| {
            let target_secs = tgt(kind.flow());
            if late(since, target_secs) > 0 {
                drafts.push(Draft {
                    kind,
                    subject: row.order_id.clone(),
                    value: parse_total(row),
                    currency: row.currency.clone(),
                    row: Some(row.clone()),
                    since,
                    target_secs,
                    why: None,
                });
            }
        };

    // 1. Orders awaiting ERP booking.
    let waiting = all_orders(
        store,
        OrderQuery {
            statuses: vec!["Captured".to_owned(), "Validated".to_owned()],
            ..OrderQuery::default()
        },
    )
    .await?;
    for row in &waiting {
        let since = row.captured_at.unwrap_or(row.updated_at);
        push_order(&mut drafts, ExceptionKind::AwaitingBooking, row, since);
    }

    // 2. Salesforce behind.
    let behind = all_orders(
        store,
        OrderQuery {
            sf_behind: true,
            ..OrderQuery::default()
        },
    )
    .await?;
    for row in &behind {
        let Some(status) = OrderStatus::parse(&row.status) else {
            continue;
        };
        let synced = row.sf_synced_status.as_deref().and_then(progress);
        let kind = match status {
            OrderStatus::Captured | OrderStatus::Validated => continue,
            OrderStatus::Rejected => ExceptionKind::RejectionNotInSalesforce,
            OrderStatus::Cancelled => ExceptionKind::CancellationNotInSalesforce,
            _ if synced.is_none_or(|p| p < 2) => ExceptionKind::BookingNotInSalesforce,
            OrderStatus::Booked
            | OrderStatus::Backordered
            | OrderStatus::Allocated
            | OrderStatus::PartiallyShipped
            | OrderStatus::Shipped
            | OrderStatus::Delivered => ExceptionKind::ShipmentNotInSalesforce,
            OrderStatus::Invoiced | OrderStatus::Paid | OrderStatus::Closed => {
                if synced.is_some_and(|p| p < 7) {
                    ExceptionKind::ShipmentNotInSalesforce
                } else {
                    ExceptionKind::BillingNotInSalesforce
                }
            }
        };
        push_order(&mut drafts, kind, row, unsynced_since(row));
    }

    // 3. Returns.
    for open in &follower.open_returns {
        let kind = match open.stage {
            ReturnStage::Requested => ExceptionKind::ReturnAwaitingAuthorisation,
            ReturnStage::Received => ExceptionKind::ReturnPendingCreditMemo,
            ReturnStage::Credited => ExceptionKind::RefundPending,
            ReturnStage::Authorised | ReturnStage::Refunded => continue,
        };
        let target_secs = tgt(kind.flow());
        if late(open.since, target_secs) <= 0 {
            continue;
        }
        let row = store.order(&open.order_id).await?;
        let (value, currency) = match (&row, kind) {
            (Some(row), ExceptionKind::RefundPending) if !open.credited.is_zero() => {
                (open.credited, row.currency.clone())
            }
            (Some(row), _) => (return_value(row, &open.lines), row.currency.clone()),
            (None, _) => (open.credited, String::new()),
        };
        drafts.push(Draft {
            kind,
            subject: format!("{}/{}", open.order_id, open.rma),
            row,
            value,
            currency,
            since: open.since,
            target_secs,
            why: None,
        });
    }

    // 4. Payments.
    let terms = settings.config.payment_terms_days.saturating_mul(86_400);
    for balance in &follower.balances {
        let (kind, since, target_secs, value) = if balance.outstanding > Decimal::ZERO {
            let Some(since) = balance.oldest_unpaid else {
                continue;
            };
            (
                ExceptionKind::PaymentOverdue,
                since,
                terms,
                balance.outstanding,
            )
        } else {
            (
                ExceptionKind::PaymentMismatch,
                balance.changed_at,
                tgt("invoicing-payment"),
                -balance.outstanding,
            )
        };
        if late(since, target_secs) <= 0 {
            continue;
        }
        let row = store.order(&balance.order_id).await?;
        drafts.push(Draft {
            kind,
            subject: balance.order_id.clone(),
            currency: row.as_ref().map(|r| r.currency.clone()).unwrap_or_default(),
            row,
            value,
            since,
            target_secs,
            why: None,
        });
    }

    // 5. Stock levels.
    let inventory_target = tgt("inventory-visibility");
    let depths = store.lane_depths(now).await?;
    let sf_oldest = depths
        .iter()
        .find(|d| d.lane == "salesforce")
        .and_then(|d| d.oldest_pending);
    let failed_skus: HashMap<String, (i64, String)> = store
        .dead_letters(DeadLetterFilter {
            status: Some(DeadLetterStatus::Open),
            kind: Some("sf-inventory".to_owned()),
            limit: Some(10_000),
            ..DeadLetterFilter::default()
        })
        .await?
        .into_iter()
        .filter_map(|d| {
            let sku = d.task.payload.get("sku")?.as_str()?.to_owned();
            Some((sku, (d.id, d.error)))
        })
        .collect();
    for level in store.inventory(&[]).await? {
        let subject = format!("{}@{}", level.sku, level.location);
        let failed = failed_skus.get(&level.sku);
        // Every Salesforce task enqueued before the lane's oldest pending one is done, so a
        // level changed before it has been sent; one changed after it may still wait (its
        // write is enqueued in the same commit, a moment after the change is stamped).
        let waiting =
            sf_oldest.is_some_and(|oldest| oldest <= level.updated_at + time::Duration::seconds(5));
        if (failed.is_some() || waiting) && late(level.updated_at, inventory_target) > 0 {
            drafts.push(Draft {
                kind: ExceptionKind::InventoryNotInSalesforce,
                subject,
                row: None,
                value: Decimal::ZERO,
                currency: String::new(),
                since: level.updated_at,
                target_secs: inventory_target,
                why: failed.map(|(id, error)| {
                    format!("Salesforce write failed (dead letter {id}): {error}")
                }),
            });
        } else if (level.updated_at - level.as_of).whole_seconds()
            > i64::try_from(inventory_target).unwrap_or(i64::MAX)
        {
            drafts.push(Draft {
                kind: ExceptionKind::InventoryFeedLate,
                subject,
                row: None,
                value: Decimal::ZERO,
                currency: String::new(),
                // Late by how long the ERP's measurement took to arrive.
                since: now - (level.updated_at - level.as_of),
                target_secs: inventory_target,
                why: Some(format!(
                    "measured by the ERP {} before the hub received it",
                    super::format::duration((level.updated_at - level.as_of).whole_seconds())
                )),
            });
        }
    }

    // Rank.
    let mut tiers: HashMap<String, Option<(CustomerTier, String)>> = HashMap::new();
    let mut exceptions = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let account = draft.row.as_ref().map(|r| r.account.clone());
        let tier = match &account {
            Some(account) => {
                if !tiers.contains_key(account) {
                    let found = store.account(account).await?.map(|a| {
                        let tier = match a.tier.as_str() {
                            "Gold" => CustomerTier::Gold,
                            "Silver" => CustomerTier::Silver,
                            _ => CustomerTier::Bronze,
                        };
                        (tier, a.name)
                    });
                    tiers.insert(account.clone(), found);
                }
                tiers.get(account).cloned().flatten()
            }
            None => None,
        };
        let flow_def = flow(flows, &defaults, draft.kind.flow());
        let criticality = flow_def.map_or(Criticality::Medium, |f| f.classification.criticality);
        let late_by = late(draft.since, draft.target_secs);
        let impact = impact(
            draft.value,
            settings.config.base_value,
            tier.as_ref().map(|(t, _)| *t),
            criticality,
            late_by,
            draft.target_secs,
        );
        exceptions.push(HealthException {
            rank: 0,
            kind: draft.kind,
            title: draft.kind.title().to_owned(),
            flow: draft.kind.flow().to_owned(),
            criticality,
            subject: draft.subject,
            order_id: draft.row.as_ref().map(|r| r.order_id.clone()),
            sf_number: draft.row.as_ref().and_then(|r| r.sf_number.clone()),
            erp_ref: draft.row.as_ref().and_then(|r| r.erp_ref.clone()),
            account,
            account_name: tier.as_ref().map(|(_, n)| n.clone()),
            tier: tier.map(|(t, _)| t),
            value_at_risk: draft.value,
            currency: draft.currency,
            since: draft.since,
            target_secs: draft.target_secs,
            late_by_secs: late_by,
            impact,
            why: draft.why,
            dead_letters: Vec::new(),
        });
    }
    rank(&mut exceptions);
    explain(store, &mut exceptions).await?;

    let mut value_at_risk: BTreeMap<String, Decimal> = BTreeMap::new();
    for e in &exceptions {
        if !e.value_at_risk.is_zero() {
            *value_at_risk.entry(e.currency.clone()).or_default() += e.value_at_risk;
        }
    }
    let mut names: Vec<&Flow> = flows.iter().collect();
    for d in &defaults {
        if !names.iter().any(|f| f.name == d.name) {
            names.push(d);
        }
    }
    let flow_health = names
        .into_iter()
        .map(|f| {
            let mine: Vec<&HealthException> =
                exceptions.iter().filter(|e| e.flow == f.name).collect();
            let worst = mine.iter().map(|e| e.late_by_secs).max().unwrap_or(0);
            let recovery =
                i64::try_from(f.classification.recovery_objective_secs).unwrap_or(i64::MAX);
            let latency = i64::try_from(f.classification.latency_target_secs).unwrap_or(i64::MAX);
            let status = if mine.is_empty() {
                "ok"
            } else if worst + latency > recovery {
                "failing"
            } else {
                "late"
            };
            FlowHealth {
                flow: f.name.clone(),
                criticality: f.classification.criticality,
                latency_target_secs: f.classification.latency_target_secs,
                recovery_objective_secs: f.classification.recovery_objective_secs,
                status: status.to_owned(),
                exceptions: mine.len(),
                value_at_risk: mine.iter().map(|e| e.value_at_risk).sum(),
                worst_late_by_secs: worst,
            }
        })
        .collect();
    Ok(HealthReport {
        computed_at: now,
        exceptions,
        flows: flow_health,
        value_at_risk,
        complete: follower.caught_up,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// The impact score (see the module documentation).
pub fn impact(
    value: Decimal,
    base_value: Decimal,
    tier: Option<CustomerTier>,
    criticality: Criticality,
    late_by_secs: i64,
    target_secs: u64,
) -> Decimal {
    let tier_weight = tier.map_or(Decimal::ONE, CustomerTier::weight);
    let criticality_weight = Decimal::from(criticality.weight());
    let ratio = if target_secs == 0 {
        Decimal::from(10)
    } else {
        (Decimal::from(late_by_secs.max(0)) / Decimal::from(target_secs)).min(Decimal::from(10))
    };
    ((value.max(Decimal::ZERO) + base_value)
        * tier_weight
        * criticality_weight
        * (Decimal::ONE + ratio))
        .round_dp(2)
}

/// Sorts by impact (then value, then lateness) and numbers the ranks.
pub fn rank(exceptions: &mut [HealthException]) {
    exceptions.sort_by(|a, b| {
        b.impact
            .cmp(&a.impact)
            .then(b.value_at_risk.cmp(&a.value_at_risk))
            .then(b.late_by_secs.cmp(&a.late_by_secs))
            .then(a.subject.cmp(&b.subject))
    });
    for (i, e) in exceptions.iter_mut().enumerate() {
        e.rank = i + 1;
    }
}

/// When Salesforce's copy started lagging: the first stage the order reached after the last
/// confirmed write (or after capture when never written); the last change otherwise.
fn unsynced_since(row: &OrderRow) -> OffsetDateTime {
    let floor = row.sf_synced_at.or(row.captured_at);
    [
        row.booked_at,
        row.shipped_at,
        row.delivered_at,
        row.invoiced_at,
        row.paid_at,
        row.ended_at,
    ]
    .into_iter()
    .flatten()
    .filter(|at| floor.is_none_or(|f| *at > f))
    .min()
    .unwrap_or(row.updated_at)
}

/// Value of returned units at the order's prices.
fn return_value(row: &OrderRow, lines: &BTreeMap<u32, u32>) -> Decimal {
    let Ok(summary) = row.body.parse::<OrderSummary>() else {
        return Decimal::ZERO;
    };
    lines
        .iter()
        .map(|(line, qty)| {
            summary
                .lines
                .iter()
                .find(|l| l.line.0 == *line)
                .map_or(Decimal::ZERO, |l| l.unit_price * Decimal::from(*qty))
        })
        .sum()
}

/// Adds the "why" (open dead letters, waiting work) to the highest-ranked order exceptions.
async fn explain(
    store: &SharedStore,
    exceptions: &mut [HealthException],
) -> crossdock_store::Result<()> {
    for e in exceptions.iter_mut().take(EXPLAINED) {
        let Some(order) = e.order_id.clone() else {
            continue;
        };
        let dead = store
            .dead_letters(DeadLetterFilter {
                status: Some(DeadLetterStatus::Open),
                order_id: Some(order.clone()),
                limit: Some(20),
                ..DeadLetterFilter::default()
            })
            .await?;
        e.dead_letters = dead.iter().map(|d| d.id).collect();
        if e.why.is_some() {
            continue;
        }
        if let Some(d) = dead.first() {
            e.why = Some(format!(
                "{} failed after {} attempt(s): {}",
                step_words(&d.task.kind),
                d.task.attempts,
                d.error
            ));
            continue;
        }
        let queued = store.tasks_for_order(&order).await?;
        if let Some(task) = queued.iter().find(|t| t.last_error.is_some()) {
            e.why = Some(format!(
                "{} retrying (attempt {}): {}",
                step_words(&task.kind),
                task.attempts,
                task.last_error.clone().unwrap_or_default()
            ));
        } else if let Some(task) = queued.first() {
            e.why = Some(format!(
                "{} waiting in the {} queue",
                step_words(&task.kind),
                task.lane
            ));
        }
    }
    Ok(())
}

/// A task kind in plain words.
pub fn step_words(kind: &str) -> String {
    match kind {
        "inbound" => "Processing the incoming message".to_owned(),
        "validate" => "ERP validation".to_owned(),
        "book" => "ERP booking".to_owned(),
        "erp-cancel" => "Cancellation in the ERP".to_owned(),
        "sf-sync" => "Salesforce update".to_owned(),
        "sf-return" => "Salesforce case update".to_owned(),
        "sf-inventory" => "Salesforce stock update".to_owned(),
        "sf-credit" => "Salesforce credit update".to_owned(),
        "erp-customer" => "ERP customer update".to_owned(),
        "close" => "Closing the order".to_owned(),
        "rma-authorise" => "Return authorisation".to_owned(),
        "rma-credit-memo" => "Credit memo".to_owned(),
        "rma-refund" => "Refund".to_owned(),
        "rma-close" => "Closing the return".to_owned(),
        "reference-conflict" => "External reference held by another order".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_weighs_value_tier_criticality_and_lateness() {
        let base = Decimal::from(100);
        let small = impact(
            Decimal::from(100),
            base,
            Some(CustomerTier::Bronze),
            Criticality::Critical,
            60,
            120,
        );
        // (100 + 100) × 1 × 4 × 1.5
        assert_eq!(small, Decimal::from(1_200));
        let gold = impact(
            Decimal::from(100),
            base,
            Some(CustomerTier::Gold),
            Criticality::Critical,
            60,
            120,
        );
        assert_eq!(gold, Decimal::from(3_600));
        // Lateness counts at most eleven times.
        let ancient = impact(Decimal::ZERO, base, None, Criticality::Low, 1_000_000, 10);
        assert_eq!(ancient, Decimal::from(1_100));
        let bigger = impact(Decimal::from(5_000), base, None, Criticality::High, 10, 900);
        assert!(
            bigger > small,
            "value dominates a small lateness difference"
        );
    }

    #[test]
    fn salesforce_lag_starts_at_the_first_stage_after_the_last_write() {
        let t = time::macros::datetime!(2026-11-27 10:00 UTC);
        let row = OrderRow {
            order_id: "O".to_owned(),
            sf_id: None,
            sf_number: None,
            erp_ref: None,
            account: "A".to_owned(),
            channel: "B2B".to_owned(),
            status: "Delivered".to_owned(),
            total: "10".to_owned(),
            currency: "USD".to_owned(),
            captured_at: Some(t),
            booked_at: Some(t + time::Duration::minutes(1)),
            shipped_at: Some(t + time::Duration::minutes(30)),
            delivered_at: Some(t + time::Duration::minutes(90)),
            invoiced_at: None,
            paid_at: None,
            ended_at: None,
            updated_at: t + time::Duration::minutes(95),
            version: 7,
            body: crossdock_store::JsonText::default(),
            sf_synced_status: Some("Booked".to_owned()),
            sf_synced_version: Some(3),
            sf_synced_at: Some(t + time::Duration::minutes(2)),
        };
        assert_eq!(unsynced_since(&row), t + time::Duration::minutes(30));
        let never = OrderRow {
            sf_synced_status: None,
            sf_synced_version: None,
            sf_synced_at: None,
            ..row.clone()
        };
        assert_eq!(unsynced_since(&never), t + time::Duration::minutes(1));
        let nothing_new = OrderRow {
            sf_synced_at: Some(t + time::Duration::minutes(91)),
            ..row
        };
        assert_eq!(
            unsynced_since(&nothing_new),
            t + time::Duration::minutes(95)
        );
    }
}
