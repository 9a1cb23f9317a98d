//! The declarative field mapping: for each Salesforce object the hub writes, a table from
//! Salesforce field to canonical value. The defaults below are the product's contract with the
//! org's custom fields; `[salesforce.mapping.<object>]` in the config adds fields, points a
//! field at another value, or removes it with `"omit"`.
//!
//! Values render to JSON; `None` means "leave the field alone" (for example the case `Status`,
//! written only once the return is closed), JSON `null` clears it (state-based writes send the
//! current state, including what is not known yet).

use std::collections::BTreeMap;

use crossdock_domain::account::CreditStatus;
use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::order::{Milestone, ReturnStatus};
use crossdock_domain::summary::{LineSummary, OrderSummary, ReturnSummary, ShipmentSummary};
use crossdock_ports::erp::CreditReport;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use crate::config::MappingConfig;

/// Canonical values of an order (written to `Order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderValue {
    /// The hub's order id.
    HubOrderId,
    /// ERP order number (null until booked).
    ErpOrderNumber,
    /// Status label (`OrderStatus::as_str`, e.g. `Awaiting Booking`, `Partially Shipped`).
    Status,
    /// Why the order was rejected or cancelled.
    StatusReason,
    /// Fulfilment summary (`2 of 5 shipped, 0 delivered`).
    FulfilmentStatus,
    /// Tracking numbers of every shipment, comma separated.
    TrackingNumbers,
    /// Invoice numbers, comma separated.
    InvoiceNumbers,
    /// `Not Invoiced`, `Partially Invoiced` or `Invoiced`.
    InvoiceStatus,
    /// `Unpaid`, `Partially Paid` or `Paid`.
    PaymentStatus,
    /// Σ invoices.
    AmountInvoiced,
    /// Σ payments.
    AmountPaid,
    /// Σ credit memos.
    AmountCredited,
    /// Σ refunds.
    AmountRefunded,
    /// Order value.
    Total,
    /// Credit memo numbers of every return, comma separated.
    CreditMemoNumbers,
    /// When the hub wrote this state.
    SyncedAt,
    /// Sales channel (`B2B`, `Web`, …).
    Channel,
    /// Leave the field out.
    Omit,
}

/// Canonical values of an order line (written to `OrderItem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineValue {
    /// Units ordered.
    Ordered,
    /// Units allocated.
    Allocated,
    /// Units backordered.
    Backordered,
    /// Units picked.
    Picked,
    /// Units shipped.
    Shipped,
    /// Units delivered.
    Delivered,
    /// Units invoiced.
    Invoiced,
    /// Units returned.
    Returned,
    /// Leave the field out.
    Omit,
}

/// Canonical values of a shipment (written to `Shipment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentValue {
    /// Carrier tracking number.
    TrackingNumber,
    /// Carrier.
    Carrier,
    /// `Shipped` or `Delivered`.
    Status,
    /// Shipping location.
    Location,
    /// Leave the field out.
    Omit,
}

/// Canonical values of a return (written to its `Case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseValue {
    /// ERP RMA number.
    RmaNumber,
    /// Return status (`Requested`, `Authorised`, …).
    ReturnStatus,
    /// Credit memo numbers, comma separated.
    CreditMemoNumbers,
    /// `Not Refunded`, `Partially Refunded` or `Refunded`.
    RefundStatus,
    /// Amount refunded.
    RefundAmount,
    /// Amount credited.
    CreditedAmount,
    /// `Closed` once the return is closed; otherwise the field is left alone.
    CaseStatus,
    /// Leave the field out.
    Omit,
}

/// Canonical values of a stock level (written to `Inventory_Level__c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryValue {
    /// `SKU@LOCATION`.
    Key,
    /// Location.
    Location,
    /// Available to promise.
    Available,
    /// On hand.
    OnHand,
    /// Reserved.
    Reserved,
    /// When the ERP measured it.
    AsOf,
    /// Leave the field out.
    Omit,
}

/// Canonical values of a product's availability (written to `Product2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductValue {
    /// Available units over every location.
    AvailableTotal,
    /// Latest measurement time over every location.
    AsOf,
    /// Leave the field out.
    Omit,
}

/// Canonical values of a credit report (written to `Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditValue {
    /// `Good`, `Over Limit` or `On Hold`.
    Status,
    /// Credit limit.
    Limit,
    /// Open balance.
    Balance,
    /// Leave the field out.
    Omit,
}

/// Default `Order` fields.
pub const ORDER_FIELDS: &[(&str, OrderValue)] = &[
    ("Hub_Order_Id__c", OrderValue::HubOrderId),
    ("ERP_Order_Number__c", OrderValue::ErpOrderNumber),
    ("Hub_Status__c", OrderValue::Status),
    ("Hub_Status_Reason__c", OrderValue::StatusReason),
    ("Fulfillment_Status__c", OrderValue::FulfilmentStatus),
    ("Tracking_Numbers__c", OrderValue::TrackingNumbers),
    ("Invoice_Number__c", OrderValue::InvoiceNumbers),
    ("Invoice_Status__c", OrderValue::InvoiceStatus),
    ("Payment_Status__c", OrderValue::PaymentStatus),
    ("Amount_Invoiced__c", OrderValue::AmountInvoiced),
    ("Amount_Paid__c", OrderValue::AmountPaid),
    ("Credit_Memo_Number__c", OrderValue::CreditMemoNumbers),
    ("Hub_Synced_At__c", OrderValue::SyncedAt),
];

/// Default `OrderItem` fields.
pub const ORDER_ITEM_FIELDS: &[(&str, LineValue)] = &[
    ("Quantity_Allocated__c", LineValue::Allocated),
    ("Quantity_Backordered__c", LineValue::Backordered),
    ("Quantity_Shipped__c", LineValue::Shipped),
    ("Quantity_Delivered__c", LineValue::Delivered),
    ("Quantity_Invoiced__c", LineValue::Invoiced),
    ("Quantity_Returned__c", LineValue::Returned),
];

/// Default `Shipment` fields (besides `Hub_Key__c` and `OrderId`).
pub const SHIPMENT_FIELDS: &[(&str, ShipmentValue)] = &[
    ("TrackingNumber", ShipmentValue::TrackingNumber),
    ("Provider", ShipmentValue::Carrier),
    ("Status", ShipmentValue::Status),
];

/// Default `Case` fields.
pub const CASE_FIELDS: &[(&str, CaseValue)] = &[
    ("RMA_Number__c", CaseValue::RmaNumber),
    ("Return_Status__c", CaseValue::ReturnStatus),
    ("Credit_Memo_Number__c", CaseValue::CreditMemoNumbers),
    ("Refund_Status__c", CaseValue::RefundStatus),
    ("Refund_Amount__c", CaseValue::RefundAmount),
    ("Status", CaseValue::CaseStatus),
];

/// Default `Inventory_Level__c` fields (besides `Hub_Key__c` and `Product__c`).
pub const INVENTORY_FIELDS: &[(&str, InventoryValue)] = &[
    ("Name", InventoryValue::Key),
    ("Location__c", InventoryValue::Location),
    ("Available__c", InventoryValue::Available),
    ("On_Hand__c", InventoryValue::OnHand),
    ("As_Of__c", InventoryValue::AsOf),
];

/// Default `Product2` availability fields.
pub const PRODUCT_FIELDS: &[(&str, ProductValue)] = &[
    ("Available_Quantity__c", ProductValue::AvailableTotal),
    ("Availability_As_Of__c", ProductValue::AsOf),
];

/// Default `Account` credit fields.
pub const CREDIT_FIELDS: &[(&str, CreditValue)] = &[
    ("Credit_Status__c", CreditValue::Status),
    ("Credit_Limit__c", CreditValue::Limit),
    ("Open_Balance__c", CreditValue::Balance),
];

/// Product fields giving a line's SKU, first non-empty wins.
pub const SKU_FIELDS: &[&str] = &["StockKeepingUnit", "ProductCode", "ERP_Item_Code__c"];

/// Order fields giving the shipping region, first non-empty wins.
pub const REGION_FIELDS: &[&str] = &["ShippingState", "ShippingCountry"];

/// Values that can mean "leave the field out".
pub trait Omittable: Copy + PartialEq {
    /// The `omit` value.
    const OMIT: Self;
}

macro_rules! omittable {
    ($($t:ty),*) => { $(impl Omittable for $t { const OMIT: Self = <$t>::Omit; })* };
}
omittable!(
    OrderValue,
    LineValue,
    ShipmentValue,
    CaseValue,
    InventoryValue,
    ProductValue,
    CreditValue
);

/// One object's table: Salesforce field → canonical value, in write order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<V> {
    fields: Vec<(String, V)>,
}

impl<V: Omittable> Table<V> {
    /// The defaults with the overrides applied (`omit` removes a field).
    pub fn new(defaults: &[(&str, V)], overrides: &BTreeMap<String, V>) -> Self {
        let mut fields: Vec<(String, V)> = defaults
            .iter()
            .map(|(f, v)| ((*f).to_owned(), *v))
            .collect();
        for (field, value) in overrides {
            let existing = fields
                .iter()
                .position(|(f, _)| f.eq_ignore_ascii_case(field));
            match (existing, *value == V::OMIT) {
                (Some(i), true) => {
                    fields.remove(i);
                }
                (Some(i), false) => fields[i].1 = *value,
                (None, true) => {}
                (None, false) => fields.push((field.clone(), *value)),
            }
        }
        Self { fields }
    }

    /// Whether no field is written.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields in write order.
    pub fn fields(&self) -> impl Iterator<Item = &(String, V)> {
        self.fields.iter()
    }

    /// Renders into `record`: each field gets its value; `None` leaves it out.
    pub fn render(&self, record: &mut Map<String, Json>, value: impl Fn(V) -> Option<Json>) {
        for (field, v) in &self.fields {
            if let Some(json) = value(*v) {
                record.insert(field.clone(), json);
            }
        }
    }
}

/// Every table of the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `Order`.
    pub order: Table<OrderValue>,
    /// `OrderItem`.
    pub order_item: Table<LineValue>,
    /// `Shipment`.
    pub shipment: Table<ShipmentValue>,
    /// `Case`.
    pub case: Table<CaseValue>,
    /// `Inventory_Level__c`.
    pub inventory_level: Table<InventoryValue>,
    /// `Product2`.
    pub product: Table<ProductValue>,
    /// `Account` credit.
    pub account_credit: Table<CreditValue>,
    /// SKU fields on `Product2`.
    pub sku_fields: Vec<String>,
    /// Region fields on `Order`.
    pub region_fields: Vec<String>,
}

impl Mapping {
    /// The defaults with `config`'s overrides.
    pub fn new(config: &MappingConfig) -> Self {
        let list = |given: &Option<Vec<String>>, default: &[&str]| {
            given
                .clone()
                .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
        };
        Self {
            order: Table::new(ORDER_FIELDS, &config.order),
            order_item: Table::new(ORDER_ITEM_FIELDS, &config.order_item),
            shipment: Table::new(SHIPMENT_FIELDS, &config.shipment),
            case: Table::new(CASE_FIELDS, &config.case),
            inventory_level: Table::new(INVENTORY_FIELDS, &config.inventory_level),
            product: Table::new(PRODUCT_FIELDS, &config.product),
            account_credit: Table::new(CREDIT_FIELDS, &config.account_credit),
            sku_fields: list(&config.sku_fields, SKU_FIELDS),
            region_fields: list(&config.region_fields, REGION_FIELDS),
        }
    }
}

impl Default for Mapping {
    fn default() -> Self {
        Self::new(&MappingConfig::default())
    }
}

/// A money amount as a JSON number (Salesforce currency fields are doubles on the wire).
pub fn money(amount: Decimal) -> Json {
    amount.to_f64().map_or(Json::Null, Json::from)
}

/// Optional text as JSON (`null` when absent or empty).
fn text(value: Option<&str>) -> Json {
    value
        .filter(|s| !s.is_empty())
        .map_or(Json::Null, |s| Json::String(s.to_owned()))
}

fn joined<'a>(items: impl Iterator<Item = &'a str>) -> Json {
    let list: Vec<&str> = items.filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        Json::Null
    } else {
        Json::String(list.join(", "))
    }
}

/// Formats a time as Salesforce writes datetimes: `2026-11-26T22:33:00.000+0000` (UTC).
pub fn datetime(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    )
}

fn status_of(done: Decimal, of: Decimal, none: &str, part: &str, full: &str) -> Json {
    let label = if done <= Decimal::ZERO {
        none
    } else if done < of {
        part
    } else {
        full
    };
    Json::String(label.to_owned())
}

impl OrderValue {
    /// The value for `summary`, written at `now`.
    pub fn of(self, summary: &OrderSummary, now: OffsetDateTime) -> Option<Json> {
        Some(match self {
            OrderValue::HubOrderId => Json::String(summary.id.to_string()),
            OrderValue::ErpOrderNumber => text(summary.refs.erp_ref.as_deref()),
            OrderValue::Status => Json::String(summary.status.as_str().to_owned()),
            OrderValue::StatusReason => text(summary.reason.as_deref()),
            OrderValue::FulfilmentStatus => Json::String(summary.fulfilment_status()),
            OrderValue::TrackingNumbers => text(Some(&summary.tracking_numbers())),
            OrderValue::InvoiceNumbers => {
                joined(summary.invoices.iter().map(|i| i.number.as_str()))
            }
            OrderValue::InvoiceStatus => status_of(
                summary.invoiced,
                summary.total,
                "Not Invoiced",
                "Partially Invoiced",
                "Invoiced",
            ),
            OrderValue::PaymentStatus => {
                let due = if summary.invoiced > Decimal::ZERO {
                    summary.invoiced
                } else {
                    summary.total
                };
                status_of(summary.paid, due, "Unpaid", "Partially Paid", "Paid")
            }
            OrderValue::AmountInvoiced => money(summary.invoiced),
            OrderValue::AmountPaid => money(summary.paid),
            OrderValue::AmountCredited => money(summary.credited),
            OrderValue::AmountRefunded => money(summary.refunded),
            OrderValue::Total => money(summary.total),
            OrderValue::CreditMemoNumbers => joined(
                summary
                    .returns
                    .iter()
                    .flat_map(|r| r.credit_memos.iter().map(String::as_str)),
            ),
            OrderValue::SyncedAt => Json::String(datetime(now)),
            OrderValue::Channel => Json::String(summary.channel.as_str().to_owned()),
            OrderValue::Omit => return None,
        })
    }
}

impl LineValue {
    /// The value for `line`.
    pub fn of(self, line: &LineSummary) -> Option<Json> {
        let q = &line.quantities;
        Some(Json::from(match self {
            LineValue::Ordered => q.ordered,
            LineValue::Allocated => q.allocated,
            LineValue::Backordered => q.backordered,
            LineValue::Picked => q.picked,
            LineValue::Shipped => q.shipped,
            LineValue::Delivered => q.delivered,
            LineValue::Invoiced => q.invoiced,
            LineValue::Returned => q.returned,
            LineValue::Omit => return None,
        }))
    }
}

/// The Salesforce `Shipment.Status` of a milestone; `None` before the goods left.
pub fn shipment_status(milestone: Option<Milestone>) -> Option<&'static str> {
    match milestone? {
        Milestone::Picked | Milestone::Packed => None,
        Milestone::Shipped => Some("Shipped"),
        Milestone::Delivered => Some("Delivered"),
    }
}

impl ShipmentValue {
    /// The value for `shipment`.
    pub fn of(self, shipment: &ShipmentSummary) -> Option<Json> {
        Some(match self {
            ShipmentValue::TrackingNumber => text(shipment.tracking.as_deref()),
            ShipmentValue::Carrier => text(shipment.carrier.as_deref()),
            ShipmentValue::Status => shipment_status(shipment.milestone)
                .map_or(Json::Null, |s| Json::String(s.to_owned())),
            ShipmentValue::Location => text(shipment.location.as_ref().map(|l| l.as_str())),
            ShipmentValue::Omit => return None,
        })
    }
}

impl CaseValue {
    /// The value for `ret`.
    pub fn of(self, ret: &ReturnSummary) -> Option<Json> {
        Some(match self {
            CaseValue::RmaNumber => text(ret.erp_ref.as_deref()),
            CaseValue::ReturnStatus => Json::String(ret.status.as_str().to_owned()),
            CaseValue::CreditMemoNumbers => joined(ret.credit_memos.iter().map(String::as_str)),
            CaseValue::RefundStatus => status_of(
                ret.refunded,
                ret.credited,
                "Not Refunded",
                "Partially Refunded",
                "Refunded",
            ),
            CaseValue::RefundAmount => money(ret.refunded),
            CaseValue::CreditedAmount => money(ret.credited),
            CaseValue::CaseStatus => {
                return (ret.status == ReturnStatus::Closed)
                    .then(|| Json::String("Closed".to_owned()));
            }
            CaseValue::Omit => return None,
        })
    }
}

/// `SKU@LOCATION`, the key of a stock level.
pub fn inventory_key(level: &InventoryLevel) -> String {
    format!("{}@{}", level.sku, level.location)
}

impl InventoryValue {
    /// The value for `level`.
    pub fn of(self, level: &InventoryLevel) -> Option<Json> {
        Some(match self {
            InventoryValue::Key => {
                let key = inventory_key(level);
                Json::String(key.chars().take(80).collect())
            }
            InventoryValue::Location => Json::String(level.location.to_string()),
            InventoryValue::Available => Json::from(level.available),
            InventoryValue::OnHand => Json::from(level.on_hand),
            InventoryValue::Reserved => Json::from(level.reserved),
            InventoryValue::AsOf => Json::String(datetime(level.as_of)),
            InventoryValue::Omit => return None,
        })
    }
}

impl ProductValue {
    /// The value for a product's total availability and latest measurement.
    pub fn of(self, available: i64, as_of: Option<OffsetDateTime>) -> Option<Json> {
        Some(match self {
            ProductValue::AvailableTotal => Json::from(available),
            ProductValue::AsOf => as_of.map_or(Json::Null, |t| Json::String(datetime(t))),
            ProductValue::Omit => return None,
        })
    }
}

/// The Salesforce label of a credit status.
pub fn credit_status(status: CreditStatus) -> &'static str {
    match status {
        CreditStatus::Good => "Good",
        CreditStatus::OverLimit => "Over Limit",
        CreditStatus::OnHold => "On Hold",
    }
}

impl CreditValue {
    /// The value for `report`.
    pub fn of(self, report: &CreditReport) -> Option<Json> {
        Some(match self {
            CreditValue::Status => Json::String(credit_status(report.status).to_owned()),
            CreditValue::Limit => report.limit.map_or(Json::Null, money),
            CreditValue::Balance => report.balance.map_or(Json::Null, money),
            CreditValue::Omit => return None,
        })
    }
}
