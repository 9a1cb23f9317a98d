//! Scopes: what a client may do, one per service and direction.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A permission granted to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Submit orders.
    #[serde(rename = "orders:write")]
    OrdersWrite,
    /// Read order status, timelines and shipments.
    #[serde(rename = "orders:read")]
    OrdersRead,
    /// Inventory inquiry.
    #[serde(rename = "inventory:read")]
    InventoryRead,
    /// Pricing retrieval.
    #[serde(rename = "prices:read")]
    PricesRead,
    /// Request returns.
    #[serde(rename = "returns:write")]
    ReturnsWrite,
    /// Read returns.
    #[serde(rename = "returns:read")]
    ReturnsRead,
    /// Sync customer accounts.
    #[serde(rename = "accounts:write")]
    AccountsWrite,
    /// Read operations views.
    #[serde(rename = "ops:read")]
    OpsRead,
    /// Act on operations (retry, resolve, replay).
    #[serde(rename = "ops:write")]
    OpsWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 9] = [
        Scope::OrdersWrite,
        Scope::OrdersRead,
        Scope::InventoryRead,
        Scope::PricesRead,
        Scope::ReturnsWrite,
        Scope::ReturnsRead,
        Scope::AccountsWrite,
        Scope::OpsRead,
        Scope::OpsWrite,
    ];

    /// Name as written in keys, tokens and the contract (`orders:write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersWrite => "orders:write",
            Scope::OrdersRead => "orders:read",
            Scope::InventoryRead => "inventory:read",
            Scope::PricesRead => "prices:read",
            Scope::ReturnsWrite => "returns:write",
            Scope::ReturnsRead => "returns:read",
            Scope::AccountsWrite => "accounts:write",
            Scope::OpsRead => "ops:read",
            Scope::OpsWrite => "ops:write",
        }
    }

    /// Parses [`Scope::as_str`].
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }

    /// Parses a comma- or space-separated list, refusing unknown names.
    ///
    /// # Errors
    /// The first unknown name.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in text.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!(
                    "unknown scope `{name}` (known: {})",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route's required scope, as a type (`Authorized<OrdersWrite>`).
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

macro_rules! scope_markers {
    ($($(#[$doc:meta])* $name:ident => $scope:expr),* $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Scope = $scope;
            }
        )*
    };
}

scope_markers!(
    /// Needs `orders:write`.
    OrdersWrite => Scope::OrdersWrite,
    /// Needs `orders:read`.
    OrdersRead => Scope::OrdersRead,
    /// Needs `inventory:read`.
    InventoryRead => Scope::InventoryRead,
    /// Needs `prices:read`.
    PricesRead => Scope::PricesRead,
    /// Needs `returns:write`.
    ReturnsWrite => Scope::ReturnsWrite,
    /// Needs `returns:read`.
    ReturnsRead => Scope::ReturnsRead,
    /// Needs `accounts:write`.
    AccountsWrite => Scope::AccountsWrite,
    /// Needs `ops:read`.
    OpsRead => Scope::OpsRead,
    /// Needs `ops:write`.
    OpsWrite => Scope::OpsWrite,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_parse_and_refuse_unknown_names() {
        assert_eq!(
            Scope::parse_list("orders:write,inventory:read orders:write"),
            Ok(vec![Scope::OrdersWrite, Scope::InventoryRead])
        );
        let error = Scope::parse_list("orders:write,orders:delete")
            .err()
            .unwrap_or_default();
        assert!(error.contains("orders:delete"), "{error}");
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
    }
}
