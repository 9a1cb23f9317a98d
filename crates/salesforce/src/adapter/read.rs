//! Reading an order back: an `Order` row and its `OrderItem` rows become an `OrderDraft`.

use std::collections::HashSet;
use std::str::FromStr;

use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, DraftLine, OrderDraft};
use crossdock_ports::Failure;
use rust_decimal::Decimal;
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::Adapter;
use crate::client::{is_record_id, soql_quote};

impl Adapter {
    /// Reads an order with its items and turns it into a draft.
    pub(super) async fn read(&self, sf_id: &str) -> Result<OrderDraft, Failure> {
        if !is_record_id(sf_id) {
            return Err(
                Failure::permanent(format!("`{sf_id}` is not a Salesforce record id"))
                    .with_code("MALFORMED_ID"),
            );
        }
        let order_fields = self.fields_of("Order").await?;
        let account_fields = self.fields_of("Account").await?;
        let product_fields = self.fields_of("Product2").await?;
        let has = |set: &HashSet<String>, f: &str| set.contains(&f.to_ascii_lowercase());

        let mut select = vec![
            "Id".to_owned(),
            "OrderNumber".to_owned(),
            "Status".to_owned(),
            "EffectiveDate".to_owned(),
            "ActivatedDate".to_owned(),
            "AccountId".to_owned(),
        ];
        for f in ["CurrencyIsoCode", "Sales_Channel__c", "Hub_Order_Id__c"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.mapping.region_fields.iter().cloned())
        {
            if has(&order_fields, &f) && !select.contains(&f) {
                select.push(f);
            }
        }
        for f in ["ERP_Customer_Number__c", "AccountNumber"] {
            if has(&account_fields, f) {
                select.push(format!("Account.{f}"));
            }
        }
        let soql = format!(
            "SELECT {} FROM Order WHERE Id = {}",
            select.join(", "),
            soql_quote(sf_id)
        );
        let order = self
            .client
            .query(&soql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Failure::permanent(format!("no order has id {sf_id}")).with_code("NOT_FOUND")
            })?;

        let sku_fields: Vec<&String> = self
            .mapping
            .sku_fields
            .iter()
            .filter(|f| has(&product_fields, f))
            .collect();
        let mut item_select = vec![
            "Id".to_owned(),
            "OrderItemNumber".to_owned(),
            "Quantity".to_owned(),
            "UnitPrice".to_owned(),
        ];
        item_select.extend(sku_fields.iter().map(|f| format!("Product2.{f}")));
        let soql = format!(
            "SELECT {} FROM OrderItem WHERE OrderId = {} ORDER BY OrderItemNumber",
            item_select.join(", "),
            soql_quote(sf_id)
        );
        let items = self.client.query(&soql).await?;
        draft_from(
            &order,
            &items,
            &sku_fields,
            &self.mapping.region_fields,
            self.clock.now(),
        )
    }
}

/// The string at a dotted path (`Account.AccountNumber`) of a record; `None` when absent,
/// null or empty.
pub fn str_at<'a>(record: &'a Json, path: &str) -> Option<&'a str> {
    let mut cur = record;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Parses a Salesforce datetime (`2026-11-26T22:33:00.000+0000`, also with `Z` or `+00:00`).
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    // `+0000` → `+00:00`.
    let (main, offset) = text.split_at(text.len().checked_sub(5)?);
    if (offset.starts_with('+') || offset.starts_with('-'))
        && offset[1..].bytes().all(|b| b.is_ascii_digit())
    {
        let fixed = format!("{main}{}:{}", &offset[..3], &offset[3..]);
        return OffsetDateTime::parse(&fixed, &Rfc3339).ok();
    }
    None
}

/// A decimal from a JSON number or numeric string, exactly as written.
pub fn decimal(value: &Json) -> Option<Decimal> {
    let text = match value {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
}

/// A sales channel as stored in `Sales_Channel__c`.
pub fn parse_channel(text: Option<&str>) -> Result<Channel, Failure> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Channel::B2b);
    };
    [
        Channel::B2b,
        Channel::Web,
        Channel::Marketplace,
        Channel::Store,
    ]
    .into_iter()
    .find(|c| c.as_str().eq_ignore_ascii_case(text))
    .ok_or_else(|| {
        Failure::permanent(format!(
            "Sales_Channel__c `{text}` is not one of B2B, Web, Marketplace, Store"
        ))
    })
}

/// Builds a draft from an `Order` row and its `OrderItem` rows.
///
/// # Errors
/// A permanent failure naming the first field that cannot be understood.
pub fn draft_from(
    order: &Json,
    items: &[Json],
    sku_fields: &[&String],
    region_fields: &[String],
    now: OffsetDateTime,
) -> Result<OrderDraft, Failure> {
    let sf_id = str_at(order, "Id").ok_or_else(|| Failure::unknown("order row has no Id"))?;
    let number = str_at(order, "OrderNumber")
        .ok_or_else(|| Failure::permanent(format!("order {sf_id} has no OrderNumber")))?;
    let id = str_at(order, "Hub_Order_Id__c").map_or_else(|| format!("SF-{number}"), str::to_owned);
    let account = str_at(order, "Account.ERP_Customer_Number__c")
        .or_else(|| str_at(order, "Account.AccountNumber"))
        .ok_or_else(|| {
            Failure::permanent(format!(
                "the account of order {number} has neither ERP_Customer_Number__c nor AccountNumber"
            ))
        })?;
    let currency = match str_at(order, "CurrencyIsoCode") {
        Some(code) => Currency::from_str(code)
            .map_err(|e| Failure::permanent(format!("order {number}: {e}")))?,
        None => Currency::USD,
    };
    let channel = parse_channel(str_at(order, "Sales_Channel__c"))
        .map_err(|f| Failure::permanent(format!("order {number}: {}", f.message)))?;
    let region = region_fields
        .iter()
        .find_map(|f| str_at(order, f))
        .map(str::to_owned);
    let captured_at = str_at(order, "ActivatedDate")
        .and_then(parse_datetime)
        .unwrap_or(now);
    let mut rows: Vec<&Json> = items.iter().collect();
    rows.sort_by(|a, b| str_at(a, "OrderItemNumber").cmp(&str_at(b, "OrderItemNumber")));
    let mut lines = Vec::with_capacity(rows.len());
    for (n, row) in rows.iter().enumerate() {
        let item_id = str_at(row, "Id").unwrap_or("?");
        let quantity = row
            .get("Quantity")
            .and_then(Json::as_f64)
            .ok_or_else(|| Failure::permanent(format!("order item {item_id} has no Quantity")))?;
        if quantity.fract() != 0.0 || quantity <= 0.0 || quantity > f64::from(u32::MAX) {
            return Err(Failure::permanent(format!(
                "order item {item_id} has quantity {quantity}; only whole positive units are supported"
            )));
        }
        let unit_price = row.get("UnitPrice").and_then(decimal).ok_or_else(|| {
            Failure::permanent(format!("order item {item_id} has no readable UnitPrice"))
        })?;
        let sku = sku_fields
            .iter()
            .find_map(|f| str_at(row, &format!("Product2.{f}")))
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "the product of order item {item_id} has no SKU in {}",
                    sku_fields
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        lines.push(DraftLine {
            line: LineNo(u32::try_from(n + 1).unwrap_or(u32::MAX)),
            sku: Sku::new(sku),
            quantity: quantity as u32,
            unit_price,
            sf_id: Some(item_id.to_owned()),
        });
    }
    if lines.is_empty() {
        return Err(Failure::permanent(format!("order {number} has no items")));
    }
    Ok(OrderDraft {
        id: OrderId::new(id),
        refs: ExternalRefs {
            sf_id: Some(sf_id.to_owned()),
            sf_number: Some(number.to_owned()),
            erp_ref: None,
        },
        account: AccountId::new(account),
        channel,
        currency,
        lines,
        region,
        source: System::Salesforce,
        captured_at,
    })
}
