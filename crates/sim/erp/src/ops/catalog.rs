//! Master data edits through the admin API: items and prices, locations, negotiated customer
//! prices, promotions, replenishments.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiError, Code, Result};
use crate::model::{
    DiscountKind, Item, Location, LocationKind, Promotion, Replenishment, unit_price,
};
use crate::ops::{optional_str, parse_date, parse_money, parse_qty, required_str};
use crate::state::State;

fn money_field(body: &Value, field: &str) -> Result<Option<Decimal>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_money(value, field).map(Some),
    }
}

impl State {
    /// `PUT /admin/items/{sku}`: creates (needs `name` and `list_price`) or updates an item.
    ///
    /// # Errors
    /// `invalid_request`, money errors.
    pub fn upsert_item(&mut self, sku: &str, body: &Value) -> Result<Item> {
        let name = optional_str(body, "name")?;
        let uom = optional_str(body, "uom")?;
        let list_price = money_field(body, "list_price")?;
        let tax_rate = money_field(body, "tax_rate")?;
        if tax_rate.is_some_and(|rate| rate > Decimal::ONE) {
            return Err(ApiError::unprocessable(
                Code::InvalidMoney,
                "tax_rate is a fraction between 0 and 1",
            ));
        }
        if let Some(item) = self.items.get_mut(sku) {
            if let Some(name) = name {
                name.clone_into(&mut item.name);
            }
            if let Some(uom) = uom {
                uom.clone_into(&mut item.uom);
            }
            if let Some(price) = list_price {
                item.list_price = unit_price(price);
            }
            if let Some(rate) = tax_rate {
                item.tax_rate = rate;
            }
            return Ok(item.clone());
        }
        let (Some(name), Some(price)) = (name, list_price) else {
            return Err(ApiError::bad_request(
                Code::InvalidRequest,
                "name and list_price are required to create an item",
            ));
        };
        let item = Item {
            sku: sku.to_owned(),
            name: name.to_owned(),
            uom: uom.unwrap_or("EA").to_owned(),
            list_price: unit_price(price),
            tax_rate: tax_rate.unwrap_or(Decimal::new(20, 2)),
        };
        self.items.insert(sku.to_owned(), item.clone());
        Ok(item)
    }

    /// `PUT /admin/locations/{code}`: creates or updates a location.
    ///
    /// # Errors
    /// `invalid_request` (missing fields on create, bad kind).
    pub fn upsert_location(&mut self, code: &str, body: &Value) -> Result<Location> {
        let kind = match optional_str(body, "kind")? {
            None => None,
            Some("warehouse") => Some(LocationKind::Warehouse),
            Some("store") => Some(LocationKind::Store),
            Some(other) => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    format!("kind must be warehouse or store, got {other:?}"),
                ));
            }
        };
        let name = optional_str(body, "name")?;
        let region = optional_str(body, "region")?.map(str::to_ascii_uppercase);
        if let Some(location) = self.locations.get_mut(code) {
            if let Some(name) = name {
                name.clone_into(&mut location.name);
            }
            if let Some(kind) = kind {
                location.kind = kind;
            }
            if let Some(region) = region {
                location.region = region;
            }
            return Ok(location.clone());
        }
        let (Some(name), Some(region)) = (name, region) else {
            return Err(ApiError::bad_request(
                Code::InvalidRequest,
                "name and region are required to create a location",
            ));
        };
        let location = Location {
            code: code.to_owned(),
            name: name.to_owned(),
            kind: kind.unwrap_or(LocationKind::Warehouse),
            region,
        };
        self.locations.insert(code.to_owned(), location.clone());
        Ok(location)
    }

    /// `PUT /admin/customer-prices/{customer}/{sku}` (`{"price": "12.00"}`) or, with `None`,
    /// `DELETE`: sets or removes a negotiated price.
    ///
    /// # Errors
    /// `unknown_customer`, `unknown_item`, money errors.
    pub fn set_customer_price(
        &mut self,
        customer: &str,
        sku: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let number = self.customer_number(customer).ok_or_else(|| {
            ApiError::not_found(
                Code::UnknownCustomer,
                format!("unknown customer {customer:?}"),
            )
        })?;
        self.require_item(sku)?;
        let key = (number.clone(), sku.to_owned());
        let price = match body {
            Some(body) => {
                let price = unit_price(parse_money(
                    body.get("price").unwrap_or(&Value::Null),
                    "price",
                )?);
                self.customer_prices.insert(key, price);
                Some(price)
            }
            None => {
                self.customer_prices.remove(&key);
                None
            }
        };
        Ok(json!({ "customer": number, "sku": sku, "price": price }))
    }

    /// `POST /admin/promotions`.
    ///
    /// # Errors
    /// `invalid_request`, `invalid_date`, `unknown_item`, money errors.
    pub fn add_promotion(&mut self, body: &Value) -> Result<Promotion> {
        let name = required_str(body, "name")?.to_owned();
        let sku = optional_str(body, "sku")?.map(str::to_owned);
        if let Some(sku) = &sku {
            self.require_item(sku)?;
        }
        let starts_at =
            parse_date(optional_str(body, "starts_at")?, "starts_at")?.unwrap_or(self.now);
        let ends_at =
            parse_date(Some(required_str(body, "ends_at")?), "ends_at")?.unwrap_or(self.now);
        if ends_at <= starts_at {
            return Err(ApiError::bad_request(
                Code::InvalidDate,
                "ends_at must be after starts_at",
            ));
        }
        let kind = match required_str(body, "kind")? {
            "percent" => DiscountKind::Percent,
            "fixed" => DiscountKind::Fixed,
            other => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    format!("kind must be percent or fixed, got {other:?}"),
                ));
            }
        };
        let value = parse_money(body.get("value").unwrap_or(&Value::Null), "value")?;
        if kind == DiscountKind::Percent && value > Decimal::ONE_HUNDRED {
            return Err(ApiError::unprocessable(
                Code::InvalidMoney,
                "a percentage cannot exceed 100",
            ));
        }
        self.counters.promotion += 1;
        let id = format!("PROMO-{:03}", self.counters.promotion);
        let promotion = Promotion {
            id: id.clone(),
            name,
            sku,
            starts_at,
            ends_at,
            kind,
            value,
        };
        self.promotions.insert(id, promotion.clone());
        Ok(promotion)
    }

    /// `DELETE /admin/promotions/{id}`.
    ///
    /// # Errors
    /// `unknown_promotion`.
    pub fn delete_promotion(&mut self, id: &str) -> Result<Promotion> {
        self.promotions.remove(id).ok_or_else(|| {
            ApiError::not_found(Code::UnknownPromotion, format!("unknown promotion {id:?}"))
        })
    }

    /// `POST /admin/replenishments`: stock arriving at a location after a delay.
    ///
    /// # Errors
    /// `unknown_item`, `unknown_location`, `invalid_quantity`.
    pub fn order_replenishment(&mut self, body: &Value) -> Result<Replenishment> {
        let sku = required_str(body, "sku")?.to_owned();
        self.require_item(&sku)?;
        let location = required_str(body, "location")?.to_owned();
        self.require_location(&location)?;
        let quantity = parse_qty(body.get("quantity").unwrap_or(&Value::Null), "quantity")?;
        let delay = body
            .get("arrives_in_ms")
            .and_then(Value::as_i64)
            .unwrap_or(self.config.replenishment_delay_ms)
            .max(0);
        Ok(self.add_replenishment(&sku, &location, quantity, self.now + delay))
    }
}
