//! Price quotes: list price, negotiated customer price, best active promotion, tax.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::clock::ser_time;
use crate::error::Result;
use crate::model::{DiscountKind, cents};
use crate::ops::{optional_str, parse_date, required_qty, required_str};
use crate::state::State;

/// The promotion a price came from.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedPromotion {
    /// Promotion id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Percent or fixed.
    pub kind: DiscountKind,
    /// Discount value.
    pub value: Decimal,
}

/// A priced line.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// Customer number.
    pub customer: String,
    /// Item.
    pub sku: String,
    /// Quantity.
    pub quantity: u64,
    /// Pricing date.
    #[serde(serialize_with = "ser_time")]
    pub date: i64,
    /// Currency.
    pub currency: String,
    /// Base price list price.
    pub list_price: Decimal,
    /// Negotiated price for this customer, if any.
    pub customer_price: Option<Decimal>,
    /// Promotion applied, if it gave the best price.
    pub promotion: Option<AppliedPromotion>,
    /// Unit price charged: the lowest of list, negotiated and promotional.
    pub unit_price: Decimal,
    /// `list`, `customer_price` or `promotion`.
    pub price_source: &'static str,
    /// Tax rate.
    pub tax_rate: Decimal,
    /// Untaxed line amount.
    pub amount: Decimal,
    /// Tax.
    pub tax: Decimal,
    /// Line total including tax.
    pub total: Decimal,
}

impl State {
    /// Prices `quantity` of `sku` for a customer (number) at a time.
    ///
    /// # Errors
    /// `unknown_item`.
    pub fn price(&self, customer: &str, sku: &str, quantity: u64, at: i64) -> Result<Quote> {
        let item = self.require_item(sku)?;
        let list_price = item.list_price;
        let customer_price = self
            .customer_prices
            .get(&(customer.to_owned(), sku.to_owned()))
            .copied();
        let mut unit = list_price;
        let mut source = "list";
        if let Some(price) = customer_price.filter(|p| *p < unit) {
            unit = price;
            source = "customer_price";
        }
        let mut promotion = None;
        for promo in self.promotions.values().filter(|p| p.applies(sku, at)) {
            let price = promo.price_from(list_price);
            if price < unit {
                unit = price;
                source = "promotion";
                promotion = Some(AppliedPromotion {
                    id: promo.id.clone(),
                    name: promo.name.clone(),
                    kind: promo.kind,
                    value: promo.value,
                });
            }
        }
        if source != "promotion" {
            promotion = None;
        }
        let qty = Decimal::from(quantity);
        let amount = cents(qty * unit);
        let total = cents(qty * unit * (Decimal::ONE + item.tax_rate));
        Ok(Quote {
            customer: customer.to_owned(),
            sku: sku.to_owned(),
            quantity,
            date: at,
            currency: self.config.currency.clone(),
            list_price,
            customer_price,
            promotion,
            unit_price: unit,
            price_source: source,
            tax_rate: item.tax_rate,
            amount,
            tax: total - amount,
            total,
        })
    }

    /// `POST /api/v1/price-quotes`.
    ///
    /// # Errors
    /// `unknown_customer`, `unknown_item`, `invalid_quantity`, `invalid_date`.
    pub fn quote_request(&mut self, body: &Value) -> Result<Quote> {
        let customer = self.require_customer(required_str(body, "customer")?)?;
        let sku = required_str(body, "sku")?;
        let quantity = required_qty(body, "quantity")?;
        let at = parse_date(optional_str(body, "date")?, "date")?.unwrap_or(self.now);
        self.price(&customer, sku, quantity, at)
    }
}
