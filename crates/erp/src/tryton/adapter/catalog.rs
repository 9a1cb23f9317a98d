//! Prices, availability per warehouse and fulfilment options.
//!
//! - Customer prices come from `product.product.sale_price_uom` read with the party's
//!   price list (and the quantity) in the context; Tryton ignores a `customer` key alone.
//! - Availability to promise is `forecast_quantity` at the warehouse (it drops when a
//!   sale is confirmed); `quantity` is the physical stock (it drops when goods leave).
//! - A Tryton sale ships from one warehouse, so the options are the warehouses that can
//!   serve every line, those of the order's region first.

use std::collections::BTreeMap;

use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LocationId, Sku};
use crossdock_ports::erp::{FulfilmentRequest, PriceQuote, PriceRequest};
use crossdock_ports::failure::Result;
use serde_json::json;

use super::{Adapter, ctx};
use crate::tryton::value;

/// Stock of products at one warehouse: (on hand, forecast) per product id.
type Stock = BTreeMap<i64, (i64, i64)>;

impl Adapter {
    pub(super) async fn quote_prices(
        &self,
        account: &AccountId,
        items: &[PriceRequest],
        on: time::Date,
    ) -> Result<Vec<PriceQuote>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let party = self.party(account).await?;
        let skus: Vec<Sku> = items.iter().map(|i| i.sku.clone()).collect();
        let products = self.products(&skus).await?;
        // One read per distinct quantity (price lists may have quantity breaks).
        let mut customer_prices = BTreeMap::new();
        if let Some(price_list) = party.price_list {
            let mut by_quantity: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for item in items {
                by_quantity
                    .entry(item.quantity.max(1))
                    .or_default()
                    .push(products[&item.sku].id);
            }
            for (quantity, mut ids) in by_quantity {
                ids.sort_unstable();
                ids.dedup();
                let context = ctx([
                    ("price_list", json!(price_list)),
                    ("customer", json!(party.id)),
                    ("quantity", json!(f64::from(quantity))),
                    ("currency", json!(self.ready().await?)),
                    ("sale_date", value::date(on)),
                ]);
                let records = self
                    .client
                    .read("product.product", &ids, &["sale_price_uom"], Some(&context))
                    .await?;
                for record in &records {
                    if let Some(price) = record.opt_decimal("sale_price_uom")? {
                        customer_prices.insert((record.id()?, quantity), price);
                    }
                }
            }
        }
        Ok(items
            .iter()
            .map(|item| {
                let product = &products[&item.sku];
                let unit_price = customer_prices
                    .get(&(product.id, item.quantity.max(1)))
                    .copied()
                    .unwrap_or(product.list_price);
                PriceQuote {
                    sku: item.sku.clone(),
                    unit_price: unit_price.normalize(),
                    list_price: product.list_price.normalize(),
                    currency: self.currency,
                    promotion: None,
                }
            })
            .collect())
    }

    /// On-hand and forecast quantities of `products` at `warehouse`.
    async fn stock_at(&self, warehouse: i64, products: &[i64]) -> Result<Stock> {
        let records = self
            .client
            .read(
                "product.product",
                products,
                &["quantity", "forecast_quantity"],
                Some(&ctx([("locations", json!([warehouse]))])),
            )
            .await?;
        let mut stock = Stock::new();
        for record in &records {
            stock.insert(
                record.id()?,
                (
                    Self::units("on-hand quantity", record.float("quantity")?)?,
                    Self::units("forecast quantity", record.float("forecast_quantity")?)?,
                ),
            );
        }
        Ok(stock)
    }

    pub(super) async fn stock_levels(
        &self,
        skus: &[Sku],
        location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>> {
        let warehouses: Vec<i64> = match location {
            Some(location) => vec![self.warehouse_named(location)?],
            None => self.config.warehouses.iter().map(|w| w.id).collect(),
        };
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let products = self.products(skus).await?;
        let mut ids: Vec<i64> = products.values().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let as_of = self.clock.now();
        let mut levels = Vec::new();
        for warehouse in warehouses {
            let stock = self.stock_at(warehouse, &ids).await?;
            let location = self.location_of(warehouse);
            for sku in skus {
                let product = &products[sku];
                let (on_hand, forecast) = stock.get(&product.id).copied().unwrap_or((0, 0));
                levels.push(InventoryLevel {
                    sku: sku.clone(),
                    location: location.clone(),
                    on_hand,
                    reserved: (on_hand - forecast).max(0),
                    available: forecast,
                    as_of,
                });
            }
        }
        Ok(levels)
    }

    pub(super) async fn options_for(
        &self,
        request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>> {
        if request.lines.is_empty() {
            return Ok(Vec::new());
        }
        let skus: Vec<Sku> = request.lines.iter().map(|(s, _)| s.clone()).collect();
        let products = self.products(&skus).await?;
        let mut wanted: BTreeMap<i64, i64> = BTreeMap::new();
        for (sku, quantity) in &request.lines {
            *wanted.entry(products[sku].id).or_default() += i64::from(*quantity);
        }
        let ids: Vec<i64> = wanted.keys().copied().collect();
        let mut options = Vec::new();
        for (rank, warehouse) in self.config.warehouses.iter().enumerate() {
            let stock = self.stock_at(warehouse.id, &ids).await?;
            let serves = wanted
                .iter()
                .all(|(id, qty)| stock.get(id).is_some_and(|(_, forecast)| forecast >= qty));
            if serves {
                let in_region = request.region.is_some() && warehouse.region == request.region;
                options.push((
                    !in_region,
                    rank,
                    FulfilmentOption {
                        method: FulfilmentMethod::ShipFromWarehouse,
                        locations: vec![LocationId::new(warehouse.location.clone())],
                        promised_date: None,
                    },
                ));
            }
        }
        if options.is_empty() {
            // No warehouse has it all: the sale still ships from one (the customer's region's
            // first), and Tryton backorders what is short until stock arrives.
            let fallback = self
                .config
                .warehouses
                .iter()
                .enumerate()
                .min_by_key(|(rank, w)| {
                    (
                        request.region.is_none() || w.region != request.region,
                        *rank,
                    )
                });
            if let Some((rank, warehouse)) = fallback {
                options.push((
                    false,
                    rank,
                    FulfilmentOption {
                        method: FulfilmentMethod::ShipFromWarehouse,
                        locations: vec![LocationId::new(warehouse.location.clone())],
                        promised_date: None,
                    },
                ));
            }
        }
        options.sort_by_key(|(out_of_region, rank, _)| (*out_of_region, *rank));
        Ok(options.into_iter().map(|(_, _, option)| option).collect())
    }
}
