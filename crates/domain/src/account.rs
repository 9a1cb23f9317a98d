//! Customer accounts, contacts and service cases.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ExternalRefs, OrderId};
use crate::money::Currency;

/// How much a customer matters; drives the business impact of a stuck order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CustomerTier {
    /// Key accounts.
    Gold,
    /// Regular B2B accounts.
    Silver,
    /// Small or occasional customers.
    Bronze,
}

impl CustomerTier {
    /// Weight used when ranking exceptions by impact (Gold counts three times Bronze).
    pub fn weight(self) -> Decimal {
        match self {
            CustomerTier::Gold => Decimal::from(3),
            CustomerTier::Silver => Decimal::from(2),
            CustomerTier::Bronze => Decimal::ONE,
        }
    }

    /// Name as shown in Salesforce picklists.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerTier::Gold => "Gold",
            CustomerTier::Silver => "Silver",
            CustomerTier::Bronze => "Bronze",
        }
    }
}

/// Credit standing as the ERP (the credit master) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditStatus {
    /// Orders within the limit are accepted.
    Good,
    /// Open balance is at or above the limit.
    OverLimit,
    /// Blocked by credit control.
    OnHold,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO country code.
    pub country: String,
}

/// A customer account. Salesforce owns the master data (name, addresses, tier);
/// the ERP owns credit (limit, balance, status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Hub id (the shared account number).
    pub id: AccountId,
    /// Ids in Salesforce and the ERP.
    pub refs: ExternalRefs,
    /// Legal or trading name.
    pub name: String,
    /// Commercial tier.
    pub tier: CustomerTier,
    /// Region used for routing and fulfilment.
    pub region: Option<String>,
    /// Billing address.
    pub billing: Option<Address>,
    /// Default shipping address.
    pub shipping: Option<Address>,
    /// Account currency.
    pub currency: Currency,
    /// Credit limit granted by the ERP.
    pub credit_limit: Option<Decimal>,
    /// Open receivables in the ERP.
    pub open_balance: Option<Decimal>,
    /// Credit standing in the ERP.
    pub credit_status: Option<CreditStatus>,
}

/// A person at a customer account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Ids in external systems.
    pub refs: ExternalRefs,
    /// Account the contact works for.
    pub account: AccountId,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// A service case; returns start as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Ids in Salesforce (id and case number).
    pub refs: ExternalRefs,
    /// Customer.
    pub account: AccountId,
    /// Order the case is about.
    pub order: Option<OrderId>,
    /// Short description.
    pub subject: String,
    /// Salesforce status (New, Working, Escalated, Closed).
    pub status: String,
}
