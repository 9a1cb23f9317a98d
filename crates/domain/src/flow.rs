//! Flows and their classification: which business process a piece of work belongs to, how
//! critical it is, how fast it must complete, how quickly it must recover, and how sensitive
//! its data is. Health thresholds and alert priorities derive from the classification.

use serde::{Deserialize, Serialize};

/// Business criticality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Revenue stops when it stops (order capture and booking).
    Critical,
    /// Customers notice within hours (fulfilment, returns, stock).
    High,
    /// Back-office visibility (invoices, accounts).
    Medium,
    /// Nice to have.
    Low,
}

impl Criticality {
    /// Weight used when ranking exceptions (critical counts four times low).
    pub fn weight(self) -> u32 {
        match self {
            Criticality::Critical => 4,
            Criticality::High => 3,
            Criticality::Medium => 2,
            Criticality::Low => 1,
        }
    }
}

/// Compliance sensitivity of the data a flow moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Nothing special.
    None,
    /// Personal data (names, addresses, contacts).
    Personal,
    /// Financial records (invoices, credit notes, refunds): audit trail required.
    Financial,
}

/// How a flow is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Business criticality.
    pub criticality: Criticality,
    /// Work older than this is late (seconds).
    pub latency_target_secs: u64,
    /// The flow must be back within this after an outage (seconds).
    pub recovery_objective_secs: u64,
    /// Data sensitivity.
    pub sensitivity: Sensitivity,
}

/// How a flow connects systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// A bounded, governed API call.
    DirectApi,
    /// A multi-step workflow the hub orchestrates.
    Orchestration,
    /// Events fanned out to subscribers.
    EventDriven,
    /// APIs plus events plus scheduled batch.
    Hybrid,
}

/// One flow: a trigger, its steps, its retry policy name and its classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Stable name (e.g. `order-capture`).
    pub name: String,
    /// What starts it, in words.
    pub trigger: String,
    /// How it connects systems.
    pub connectivity: Connectivity,
    /// Task kinds that belong to it, in order.
    pub steps: Vec<String>,
    /// Retry policy (the lane's by default).
    #[serde(default)]
    pub retry: Option<String>,
    /// Classification.
    pub classification: Classification,
}

impl Flow {
    /// Whether a task kind belongs to this flow.
    pub fn owns_step(&self, kind: &str) -> bool {
        self.steps.iter().any(|s| s == kind)
    }
}

/// The flows shipped as defaults: one per row of the retail lifecycle.
pub fn defaults() -> Vec<Flow> {
    let flow = |name: &str,
                trigger: &str,
                connectivity,
                steps: &[&str],
                criticality,
                latency: u64,
                recovery: u64,
                sensitivity| Flow {
        name: name.to_owned(),
        trigger: trigger.to_owned(),
        connectivity,
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        retry: None,
        classification: Classification {
            criticality,
            latency_target_secs: latency,
            recovery_objective_secs: recovery,
            sensitivity,
        },
    };
    use Connectivity::*;
    use Criticality::*;
    use Sensitivity as S;
    vec![
        flow(
            "order-capture",
            "Order activated in Salesforce (Change Data Capture) or submitted to POST /v1/orders",
            Orchestration,
            &["inbound", "validate", "book", "sf-sync"],
            Critical,
            120,
            900,
            S::Personal,
        ),
        flow(
            "inventory-visibility",
            "Stock change in the ERP (change feed or webhook)",
            EventDriven,
            &["sf-inventory"],
            High,
            300,
            1_800,
            S::None,
        ),
        flow(
            "pricing",
            "GET/POST /v1/prices, and the periodic check of open orders against ERP prices",
            DirectApi,
            &["price-check"],
            Medium,
            5,
            3_600,
            S::None,
        ),
        flow(
            "fulfilment",
            "Allocation, backorder, pick, pack, ship and deliver milestones from the ERP",
            EventDriven,
            &["sf-sync"],
            High,
            900,
            3_600,
            S::Personal,
        ),
        flow(
            "invoicing-payment",
            "Invoice issued or payment received in the ERP",
            EventDriven,
            &["sf-sync", "close"],
            Medium,
            3_600,
            14_400,
            S::Financial,
        ),
        flow(
            "returns",
            "Return requested on a Salesforce case (or POST /v1/returns)",
            Orchestration,
            &[
                "rma-authorise",
                "rma-credit-memo",
                "rma-refund",
                "rma-close",
                "sf-return",
            ],
            High,
            3_600,
            14_400,
            S::Financial,
        ),
        flow(
            "customer-accounts",
            "Account changed in Salesforce; credit standing changed in the ERP",
            Hybrid,
            &["erp-customer", "sf-credit"],
            Medium,
            900,
            14_400,
            S::Personal,
        ),
        flow(
            "cancellation",
            "Order cancelled in Salesforce or in the ERP before shipment",
            Orchestration,
            &["erp-cancel"],
            High,
            600,
            3_600,
            S::None,
        ),
    ]
}

/// The flow a task kind belongs to (first match in `flows`).
pub fn flow_of<'a>(flows: &'a [Flow], kind: &str) -> Option<&'a Flow> {
    flows.iter().find(|f| f.owns_step(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lifecycle_row_has_a_default_flow() {
        let names: Vec<_> = defaults().into_iter().map(|f| f.name).collect();
        for expected in [
            "order-capture",
            "inventory-visibility",
            "pricing",
            "fulfilment",
            "invoicing-payment",
            "returns",
            "customer-accounts",
            "cancellation",
        ] {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
    }

    #[test]
    fn booking_belongs_to_order_capture() {
        let flows = defaults();
        assert_eq!(
            flow_of(&flows, "book").map(|f| f.name.as_str()),
            Some("order-capture")
        );
        assert_eq!(
            flow_of(&flows, "rma-refund").map(|f| f.name.as_str()),
            Some("returns")
        );
        assert!(flow_of(&flows, "no-such-step").is_none());
    }
}
