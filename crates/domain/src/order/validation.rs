//! Synchronous validation: price, inventory, credit and fulfilment checks as a pure function
//! of what the ERP answered. The engine fetches the facts; this module judges them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::state::{Check, CheckResult, OrderDraft};
use crate::catalog::FulfilmentOption;
use crate::ids::{LineNo, Sku};

/// The ERP's answer to a credit check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAnswer {
    /// Whether the order amount fits the customer's credit.
    pub approved: bool,
    /// Credit still available before this order.
    pub available: Option<Decimal>,
    /// The ERP's explanation when refused.
    pub reason: Option<String>,
}

/// Everything the ERP said that validation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationFacts {
    /// The ERP's unit price for this customer, per line.
    pub prices: BTreeMap<LineNo, Decimal>,
    /// Units available to promise per SKU, over every location that can serve the order.
    pub available: BTreeMap<Sku, i64>,
    /// Credit check.
    pub credit: CreditAnswer,
    /// Fulfilment options, best first.
    pub options: Vec<FulfilmentOption>,
}

/// How strict validation is; configured per flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationPolicy {
    /// Largest accepted difference per unit between the agreed price and the ERP's price.
    pub price_tolerance: Decimal,
    /// Accept lines without enough stock and let the ERP backorder them.
    pub allow_backorder: bool,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        Self {
            price_tolerance: Decimal::new(1, 2),
            allow_backorder: true,
        }
    }
}

/// Result of validation: the checks, the chosen option, and whether a backorder is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every check with its outcome.
    pub checks: Vec<CheckResult>,
    /// Best fulfilment option, when there is one.
    pub fulfilment: Option<FulfilmentOption>,
    /// Some lines lack stock but backorders are allowed.
    pub backorder_expected: bool,
}

impl Verdict {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed) && self.fulfilment.is_some()
    }

    /// Explanations of the failed checks.
    pub fn reasons(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.detail.clone())
            .collect()
    }
}

/// Judges an order against the ERP's answers.
pub fn judge(draft: &OrderDraft, facts: &ValidationFacts, policy: &ValidationPolicy) -> Verdict {
    let mut checks = Vec::with_capacity(4);

    let mut price_problems = Vec::new();
    for line in &draft.lines {
        match facts.prices.get(&line.line) {
            None => price_problems.push(format!(
                "line {} ({}): the ERP has no price for this customer",
                line.line, line.sku
            )),
            Some(erp) if (line.unit_price - erp).abs() > policy.price_tolerance => {
                price_problems.push(format!(
                    "line {} ({}): agreed price {} differs from the ERP price {} {}",
                    line.line, line.sku, line.unit_price, erp, draft.currency
                ));
            }
            Some(_) => {}
        }
    }
    checks.push(CheckResult {
        check: Check::Price,
        passed: price_problems.is_empty(),
        detail: if price_problems.is_empty() {
            "every line matches the ERP price".to_owned()
        } else {
            price_problems.join("; ")
        },
    });

    let mut needed: BTreeMap<&Sku, i64> = BTreeMap::new();
    for line in &draft.lines {
        *needed.entry(&line.sku).or_default() += i64::from(line.quantity);
    }
    let short: Vec<String> = needed
        .iter()
        .filter_map(|(sku, qty)| {
            let available = facts.available.get(*sku).copied().unwrap_or(0);
            (available < *qty).then(|| format!("{sku}: {qty} ordered, {available} available"))
        })
        .collect();
    let backorder_expected = !short.is_empty() && policy.allow_backorder;
    checks.push(CheckResult {
        check: Check::Inventory,
        passed: short.is_empty() || policy.allow_backorder,
        detail: if short.is_empty() {
            "enough stock for every line".to_owned()
        } else if policy.allow_backorder {
            format!("backorder expected: {}", short.join("; "))
        } else {
            format!("not enough stock: {}", short.join("; "))
        },
    });

    checks.push(CheckResult {
        check: Check::Credit,
        passed: facts.credit.approved,
        detail: if facts.credit.approved {
            "credit approved".to_owned()
        } else {
            facts
                .credit
                .reason
                .clone()
                .unwrap_or_else(|| "credit refused by the ERP".to_owned())
        },
    });

    let fulfilment = facts.options.first().cloned();
    checks.push(CheckResult {
        check: Check::Fulfilment,
        passed: fulfilment.is_some(),
        detail: match &fulfilment {
            Some(option) => format!(
                "{:?} from {} location(s)",
                option.method,
                option.locations.len()
            ),
            None => "the ERP offers no way to fulfil this order".to_owned(),
        },
    });

    Verdict {
        checks,
        fulfilment,
        backorder_expected,
    }
}
