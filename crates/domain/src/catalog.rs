//! Products, prices, inventory levels and fulfilment options.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::ids::{AccountId, ExternalRefs, LocationId, Sku};
use crate::money::Currency;

/// A sellable product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stock keeping unit.
    pub sku: Sku,
    /// Ids in Salesforce and the ERP.
    pub refs: ExternalRefs,
    /// Display name.
    pub name: String,
    /// Whether it can be sold.
    pub active: bool,
}

/// A price for one product, possibly specific to one customer and to a promotion window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Product.
    pub sku: Sku,
    /// Customer the price is negotiated for; `None` for the list price.
    pub account: Option<AccountId>,
    /// The price the customer pays per unit.
    pub unit_price: Decimal,
    /// The list price per unit.
    pub list_price: Decimal,
    /// Currency of both prices.
    pub currency: Currency,
    /// Promotion that produced the price, if any.
    pub promotion: Option<String>,
    /// First day the price applies.
    pub valid_from: Option<Date>,
    /// Last day the price applies.
    pub valid_to: Option<Date>,
}

/// Stock of one product at one location, as the ERP (the inventory master) knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InventoryLevel {
    /// Product.
    pub sku: Sku,
    /// Warehouse or store.
    pub location: LocationId,
    /// Physically in the building.
    pub on_hand: i64,
    /// Promised to orders not yet shipped.
    pub reserved: i64,
    /// Available to promise.
    pub available: i64,
    /// When the ERP measured it.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

/// How an order can be fulfilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentMethod {
    /// Everything from one warehouse.
    ShipFromWarehouse,
    /// Lines split across several locations.
    SplitShipment,
    /// From a store near the customer.
    ShipFromStore,
    /// Customer collects in store.
    PickupInStore,
}

/// One way to fulfil an order, offered by the ERP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FulfilmentOption {
    /// Method.
    pub method: FulfilmentMethod,
    /// Locations that would ship.
    pub locations: Vec<LocationId>,
    /// Date promised to the customer.
    pub promised_date: Option<Date>,
}
