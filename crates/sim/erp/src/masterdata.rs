//! Master data generated from the seed: locations with regions, items with list prices and tax
//! rates, stock per item × location, customers with tiers, limits and terms, negotiated prices
//! for the better tiers, and time-boxed promotions around the start time.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::config::{DAY_MS, HOUR_MS};
use crate::model::{
    CreditStatus, Customer, DiscountKind, Item, Location, LocationKind, Promotion, Stock, Tier,
    cents, unit_price,
};
use crate::state::State;

/// Sales regions.
pub const REGIONS: [&str; 4] = ["NORTH", "SOUTH", "EAST", "WEST"];
const CITIES: [&str; 12] = [
    "Aurora",
    "Bayside",
    "Cedar Falls",
    "Dunmore",
    "Eastgate",
    "Fairview",
    "Glenwood",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Kingsport",
    "Lakeside",
];
const ADJECTIVES: [&str; 12] = [
    "Classic", "Organic", "Premium", "Compact", "Deluxe", "Everyday", "Rugged", "Smart", "Vintage",
    "Eco", "Pro", "Family",
];
const NOUNS: [&str; 16] = [
    "Coffee Beans",
    "Desk Lamp",
    "Water Bottle",
    "Backpack",
    "Running Shoe",
    "Blender",
    "Notebook",
    "Headphones",
    "Yoga Mat",
    "Cast Iron Pan",
    "Rain Jacket",
    "Throw Pillow",
    "Garden Hose",
    "Toolkit",
    "Board Game",
    "Tea Kettle",
];
const COMPANY_WORDS: [&str; 12] = [
    "Outfitters",
    "Market",
    "Supply Co",
    "Boutique",
    "Traders",
    "Goods",
    "Emporium",
    "Stores",
    "Mercantile",
    "Depot",
    "Collective",
    "Retail",
];
const TERMS: [&str; 3] = ["NET30", "NET45", "NET60"];

/// Fills an empty state with master data.
pub(crate) fn generate(state: &mut State, rng: &mut ChaCha8Rng) {
    let scenario = state.config.scenario.clone();
    for n in 1..=scenario.warehouses.max(1) {
        let region = REGIONS[(n - 1) % REGIONS.len()];
        let code = format!("WH-{n:02}");
        let name = format!("{} Distribution Center", CITIES[(n * 5) % CITIES.len()]);
        state.locations.insert(
            code.clone(),
            Location {
                code,
                name,
                kind: LocationKind::Warehouse,
                region: region.to_owned(),
            },
        );
    }
    for n in 1..=scenario.stores {
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        let code = format!("ST-{n:02}");
        let name = format!("{} Store", CITIES[(n * 7 + 3) % CITIES.len()]);
        state.locations.insert(
            code.clone(),
            Location {
                code,
                name,
                kind: LocationKind::Store,
                region: region.to_owned(),
            },
        );
    }
    for n in 1..=scenario.items {
        let sku = format!("SKU-{n:05}");
        let name = format!(
            "{} {}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            NOUNS[rng.random_range(0..NOUNS.len())]
        );
        let uom = match rng.random_range(0..10) {
            0 => "BOX",
            1 => "PK",
            _ => "EA",
        };
        // List prices between 4.99 and 499.99, ending in .99 or .49 like a real price list.
        let whole: i64 = rng.random_range(4..500);
        let fraction: i64 = if rng.random_bool(0.7) { 99 } else { 49 };
        let list_price = Decimal::new(whole * 100 + fraction, 2);
        // Most items carry the standard rate; some a reduced one.
        let tax_rate = if rng.random_bool(0.8) {
            Decimal::new(20, 2)
        } else {
            Decimal::new(55, 3)
        };
        state.items.insert(
            sku.clone(),
            Item {
                sku,
                name,
                uom: uom.to_owned(),
                list_price,
                tax_rate,
            },
        );
    }
    let skus: Vec<String> = state.items.keys().cloned().collect();
    let locations: Vec<(String, LocationKind)> = state
        .locations
        .values()
        .map(|l| (l.code.clone(), l.kind))
        .collect();
    for sku in &skus {
        for (code, kind) in &locations {
            // About one item in eight is out of stock at a location: backorders happen.
            let on_hand = if rng.random_bool(0.125) {
                0
            } else {
                match kind {
                    LocationKind::Warehouse => rng.random_range(20..=300),
                    LocationKind::Store => rng.random_range(2..=25),
                }
            };
            state.stock.insert(
                (sku.clone(), code.clone()),
                Stock {
                    on_hand,
                    reserved: 0,
                },
            );
        }
    }
    for n in 1..=scenario.customers {
        state.counters.customer += 1;
        let number = format!("C-{}", 10_000 + state.counters.customer);
        let tier = match rng.random_range(0..10) {
            0..=1 => Tier::Gold,
            2..=5 => Tier::Silver,
            _ => Tier::Bronze,
        };
        let base: i64 = match tier {
            Tier::Gold => 100_000,
            Tier::Silver => 40_000,
            Tier::Bronze => 10_000,
        };
        let credit_limit = cents(
            Decimal::from(base / 2 + rng.random_range(0..=base) / 1000 * 1000)
                * Decimal::from(scenario.credit_limit_scale.max(1)),
        );
        let customer = Customer {
            number: number.clone(),
            external_ref: format!("ACC-{n:05}"),
            name: format!(
                "{} {}",
                CITIES[rng.random_range(0..CITIES.len())],
                COMPANY_WORDS[rng.random_range(0..COMPANY_WORDS.len())]
            ),
            tier,
            credit_limit,
            open_balance: cents(Decimal::ZERO),
            payment_terms: TERMS[rng.random_range(0..TERMS.len())].to_owned(),
            region: REGIONS[rng.random_range(0..REGIONS.len())].to_owned(),
            on_hold: false,
            credit_status: CreditStatus::Good,
        };
        state
            .customer_by_ref
            .insert(customer.external_ref.clone(), number.clone());
        // Negotiated prices: Gold on a quarter of the catalog, Silver on a tenth.
        let (share, discount) = match tier {
            Tier::Gold => (0.25, 12),
            Tier::Silver => (0.10, 6),
            Tier::Bronze => (0.0, 0),
        };
        if share > 0.0 {
            for sku in &skus {
                if rng.random_bool(share) {
                    let list = state.items[sku].list_price;
                    let price = list * Decimal::from(100 - discount) / Decimal::ONE_HUNDRED;
                    state
                        .customer_prices
                        .insert((number.clone(), sku.clone()), unit_price(price));
                }
            }
        }
        state.customers.insert(number, customer);
    }
    let start = state.config.start_time_ms;
    for _ in 0..scenario.promotions {
        if skus.is_empty() {
            break;
        }
        state.counters.promotion += 1;
        let id = format!("PROMO-{:03}", state.counters.promotion);
        let sku = skus[rng.random_range(0..skus.len())].clone();
        let starts_at =
            start + rng.random_range(-2..=2) * DAY_MS + rng.random_range(0..24) * HOUR_MS;
        let ends_at = starts_at + rng.random_range(1..=5) * DAY_MS;
        let (kind, value) = if rng.random_bool(0.7) {
            (
                DiscountKind::Percent,
                Decimal::from(rng.random_range(1..=6) * 5),
            )
        } else {
            (DiscountKind::Fixed, Decimal::from(rng.random_range(1..=5)))
        };
        let name = match kind {
            DiscountKind::Percent => format!("{value}% off {}", state.items[&sku].name),
            DiscountKind::Fixed => format!("{value} off {}", state.items[&sku].name),
        };
        state.promotions.insert(
            id.clone(),
            Promotion {
                id,
                name,
                sku: Some(sku),
                starts_at,
                ends_at,
                kind,
                value,
            },
        );
    }
}
