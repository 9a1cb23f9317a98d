//! System-of-record ownership: which system may change which entity (and field).
//!
//! The hub refuses, and records, an update from a system that does not own what it touches,
//! so two systems can never both write the same data (no dual-write drift).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::System;
use crate::order::Command;

/// A kind of business entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// Customer account.
    Account,
    /// Product master.
    Product,
    /// Prices and promotions.
    Price,
    /// Stock levels.
    Inventory,
    /// Order header and lines.
    Order,
    /// Allocation, backorders, shipments.
    Fulfilment,
    /// Invoices.
    Invoice,
    /// Payments.
    Payment,
    /// Return authorisations.
    Return,
    /// Credit memos.
    CreditMemo,
    /// Refunds.
    Refund,
    /// Service cases.
    Case,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// One ownership rule: an entity, optionally one of its fields, and the systems that may
/// change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Entity.
    pub entity: Entity,
    /// Field; a field rule overrides the entity rule for that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Systems allowed to change it.
    pub owners: Vec<System>,
}

/// An update refused because its source does not own what it touches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{source_system} does not own {entity}{}; owners: {owners:?}", field.as_ref().map(|f| format!(".{f}")).unwrap_or_default())]
pub struct Violation {
    /// Entity touched.
    pub entity: Entity,
    /// Field touched.
    pub field: Option<String>,
    /// System that tried.
    pub source_system: System,
    /// Systems that own it.
    pub owners: Vec<System>,
}

/// The ownership rules in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    rules: Vec<Rule>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Registry {
    /// A registry made of the given rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Retail defaults: Salesforce owns accounts, order intake, return requests and cases;
    /// the ERP owns credit, products, prices, stock, booking, fulfilment and finance; the hub
    /// owns its own decisions; either side may cancel.
    pub fn defaults() -> Self {
        use Entity::*;
        use System::{Api, Erp, Hub, Salesforce};
        let rule = |entity, field: Option<&str>, owners: &[System]| Rule {
            entity,
            field: field.map(str::to_owned),
            owners: owners.to_vec(),
        };
        Self::new(vec![
            rule(Account, None, &[Salesforce, Api]),
            rule(Account, Some("credit_limit"), &[Erp]),
            rule(Account, Some("credit_status"), &[Erp]),
            rule(Account, Some("open_balance"), &[Erp]),
            rule(Product, None, &[Erp]),
            rule(Price, None, &[Erp]),
            rule(Inventory, None, &[Erp]),
            rule(Order, None, &[Salesforce, Api]),
            rule(Order, Some("validation"), &[Hub]),
            rule(Order, Some("booking"), &[Erp]),
            rule(Order, Some("cancellation"), &[Salesforce, Erp, Api]),
            rule(Order, Some("closure"), &[Hub]),
            rule(Fulfilment, None, &[Erp]),
            rule(Invoice, None, &[Erp]),
            rule(Payment, None, &[Erp]),
            rule(Return, None, &[Erp]),
            rule(Return, Some("request"), &[Salesforce, Api]),
            rule(Return, Some("closure"), &[Hub]),
            rule(CreditMemo, None, &[Erp]),
            rule(Refund, None, &[Erp]),
            rule(Case, None, &[Salesforce]),
        ])
    }

    /// Systems that own `entity` (or its `field`).
    pub fn owners(&self, entity: Entity, field: Option<&str>) -> &[System] {
        let field_rule = field.and_then(|f| {
            self.rules
                .iter()
                .find(|r| r.entity == entity && r.field.as_deref() == Some(f))
        });
        field_rule
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| r.entity == entity && r.field.is_none())
            })
            .map_or(&[], |r| r.owners.as_slice())
    }

    /// Checks that `source` may change `entity` (or its `field`).
    ///
    /// # Errors
    /// The violation when it may not.
    pub fn check(
        &self,
        entity: Entity,
        field: Option<&str>,
        source: System,
    ) -> Result<(), Violation> {
        let owners = self.owners(entity, field);
        if owners.contains(&source) {
            Ok(())
        } else {
            Err(Violation {
                entity,
                field: field.map(str::to_owned),
                source_system: source,
                owners: owners.to_vec(),
            })
        }
    }

    /// Checks that `source` may issue `command`.
    ///
    /// # Errors
    /// The violation when it may not.
    pub fn check_command(&self, command: &Command, source: System) -> Result<(), Violation> {
        let (entity, field) = touches(command);
        self.check(entity, field, source)
    }
}

/// The entity (and field) a command changes.
pub fn touches(command: &Command) -> (Entity, Option<&'static str>) {
    match command {
        Command::CaptureOrder(_) => (Entity::Order, None),
        Command::ValidateOrder { .. } => (Entity::Order, Some("validation")),
        Command::RecordBooking { .. } | Command::RefuseBooking { .. } => {
            (Entity::Order, Some("booking"))
        }
        Command::RecordAllocation { .. }
        | Command::RecordBackorder { .. }
        | Command::RecordShipment { .. } => (Entity::Fulfilment, None),
        Command::RecordInvoice { .. } => (Entity::Invoice, None),
        Command::RecordPayment { .. } => (Entity::Payment, None),
        Command::CancelOrder { .. } => (Entity::Order, Some("cancellation")),
        Command::CloseOrder { .. } => (Entity::Order, Some("closure")),
        Command::RequestReturn { .. } => (Entity::Return, Some("request")),
        Command::RecordReturnAuthorisation { .. }
        | Command::RefuseReturn { .. }
        | Command::RecordReturnReceipt { .. } => (Entity::Return, None),
        Command::RecordCreditMemo { .. } => (Entity::CreditMemo, None),
        Command::RecordRefund { .. } => (Entity::Refund, None),
        Command::CloseReturn { .. } => (Entity::Return, Some("closure")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules_override_entity_rules() {
        let registry = Registry::defaults();
        assert!(
            registry
                .check(Entity::Account, Some("name"), System::Salesforce)
                .is_ok()
        );
        let refused = registry
            .check(Entity::Account, Some("credit_limit"), System::Salesforce)
            .unwrap_err();
        assert_eq!(refused.owners, vec![System::Erp]);
        assert!(refused.to_string().contains("credit_limit"));
    }

    #[test]
    fn salesforce_cannot_record_shipments() {
        let registry = Registry::defaults();
        assert!(
            registry
                .check(Entity::Fulfilment, None, System::Salesforce)
                .is_err()
        );
        assert!(
            registry
                .check(Entity::Fulfilment, None, System::Erp)
                .is_ok()
        );
    }

    #[test]
    fn an_entity_without_rules_has_no_owner() {
        let registry = Registry::new(Vec::new());
        assert!(registry.owners(Entity::Order, None).is_empty());
        assert!(registry.check(Entity::Order, None, System::Hub).is_err());
    }
}
