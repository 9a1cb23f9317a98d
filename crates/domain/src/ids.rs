//! Identifiers. Every id is a stable string newtype: the hub never derives an id from an
//! attempt, a clock or a random source, so the same input always names the same thing.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this id.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// The hub's id of an order; also the key of its event stream and of its task ordering.
    OrderId
);
string_id!(
    /// The hub's id of a customer account (the account number shared by Salesforce and the ERP).
    AccountId
);
string_id!(
    /// Stock keeping unit: the product key shared by every system.
    Sku
);
string_id!(
    /// A warehouse or store that holds stock and ships orders.
    LocationId
);
string_id!(
    /// A shipment, as numbered by the system that ships it.
    ShipmentId
);
string_id!(
    /// An invoice, as numbered by the ERP.
    InvoiceId
);
string_id!(
    /// A payment received against an order's invoices.
    PaymentId
);
string_id!(
    /// A return authorisation (RMA), keyed by the hub (usually from the Salesforce case).
    RmaId
);
string_id!(
    /// A goods receipt of returned items.
    ReceiptId
);
string_id!(
    /// A credit memo issued for a return.
    CreditMemoId
);
string_id!(
    /// A refund paid out against a credit memo.
    RefundId
);

/// Line number within an order (1-based, stable across systems).
///
/// Serialized as a number; also read back from a string, because line numbers are map keys
/// in JSON objects (`{"1": 3}`) and some JSON readers hand keys over as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LineNo(pub u32);

impl<'de> Deserialize<'de> for LineNo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = LineNo;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a line number (a positive integer)")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LineNo, E> {
                u32::try_from(v)
                    .map(LineNo)
                    .map_err(|_| E::custom(format!("line number {v} is too large")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LineNo, E> {
                u32::try_from(v)
                    .map(LineNo)
                    .map_err(|_| E::custom(format!("line number {v} is out of range")))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LineNo, E> {
                v.parse::<u32>()
                    .map(LineNo)
                    .map_err(|_| E::custom(format!("`{v}` is not a line number")))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl fmt::Display for LineNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A system the hub talks to; used for external references and ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// Salesforce (front office: accounts, order intake, service cases).
    Salesforce,
    /// The ERP (system of record for stock, prices, credit, fulfilment, finance).
    Erp,
    /// The hub itself (decisions it takes, e.g. validation).
    Hub,
    /// A partner or channel calling the hub's API.
    Api,
}

impl System {
    /// Lower-case name, as used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            System::Salesforce => "salesforce",
            System::Erp => "erp",
            System::Hub => "hub",
            System::Api => "api",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ids an entity carries in each external system.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExternalRefs {
    /// Salesforce record id (18 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sf_id: Option<String>,
    /// Salesforce human-readable number (e.g. `OrderNumber`, `CaseNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sf_number: Option<String>,
    /// The ERP's reference (order number, customer code, RMA number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_ref: Option<String>,
}
