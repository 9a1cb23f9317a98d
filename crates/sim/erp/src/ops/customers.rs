//! Customer master: upsert by external reference (the Salesforce account), read, credit hold.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiError, Code, Result};
use crate::masterdata::REGIONS;
use crate::model::{CreditStatus, Customer, Tier};
use crate::ops::{optional_str, parse_money};
use crate::state::State;

fn parse_tier(text: &str) -> Result<Tier> {
    match text.to_ascii_lowercase().as_str() {
        "gold" => Ok(Tier::Gold),
        "silver" => Ok(Tier::Silver),
        "bronze" => Ok(Tier::Bronze),
        _ => Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("tier must be Gold, Silver or Bronze, got {text:?}"),
        )),
    }
}

fn default_limit(tier: Tier) -> Decimal {
    match tier {
        Tier::Gold => Decimal::from(100_000),
        Tier::Silver => Decimal::from(40_000),
        Tier::Bronze => Decimal::from(10_000),
    }
}

impl State {
    /// `PUT /api/v1/customers/{external_ref}`: creates or updates a customer. Returns whether it
    /// was created and the customer.
    ///
    /// # Errors
    /// `invalid_request` (missing name on create, bad tier or terms), money errors.
    pub fn upsert_customer(
        &mut self,
        external_ref: &str,
        body: &Value,
    ) -> Result<(bool, Customer)> {
        let name = optional_str(body, "name")?;
        let tier = optional_str(body, "tier")?.map(parse_tier).transpose()?;
        let credit_limit = match body.get("credit_limit") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_money(value, "credit_limit")?),
        };
        let terms = optional_str(body, "payment_terms")?;
        if let Some(terms) = terms {
            let ok = terms
                .strip_prefix("NET")
                .is_some_and(|d| d.parse::<u16>().is_ok());
            if !ok {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    format!("payment_terms must look like NET30, got {terms:?}"),
                ));
            }
        }
        let region = optional_str(body, "region")?.map(str::to_ascii_uppercase);
        let created = match self.customer_by_ref.get(external_ref).cloned() {
            Some(number) => {
                let Some(customer) = self.customers.get_mut(&number) else {
                    return Err(ApiError::unprocessable(
                        Code::UnknownCustomer,
                        "customer index out of step",
                    ));
                };
                if let Some(name) = name {
                    name.clone_into(&mut customer.name);
                }
                if let Some(tier) = tier {
                    customer.tier = tier;
                }
                if let Some(limit) = credit_limit {
                    customer.credit_limit = crate::model::cents(limit);
                }
                if let Some(terms) = terms {
                    terms.clone_into(&mut customer.payment_terms);
                }
                if let Some(region) = region {
                    customer.region = region;
                }
                false
            }
            None => {
                let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                    return Err(ApiError::bad_request(
                        Code::InvalidRequest,
                        "name is required to create a customer",
                    ));
                };
                self.counters.customer += 1;
                let number = format!("C-{}", 10_000 + self.counters.customer);
                let tier = tier.unwrap_or(Tier::Bronze);
                let customer = Customer {
                    number: number.clone(),
                    external_ref: external_ref.to_owned(),
                    name: name.to_owned(),
                    tier,
                    credit_limit: crate::model::cents(
                        credit_limit.unwrap_or_else(|| default_limit(tier)),
                    ),
                    open_balance: crate::model::cents(Decimal::ZERO),
                    payment_terms: terms.unwrap_or("NET30").to_owned(),
                    region: region.unwrap_or_else(|| REGIONS[0].to_owned()),
                    on_hold: false,
                    credit_status: CreditStatus::Good,
                };
                self.customer_by_ref
                    .insert(external_ref.to_owned(), number.clone());
                self.customers.insert(number, customer);
                true
            }
        };
        let number = self.customer_by_ref[external_ref].clone();
        let customer = self.customers[&number].clone();
        self.emit(
            "customer.upserted",
            json!({
                "customer": customer.number,
                "external_ref": customer.external_ref,
                "created": created,
                "name": customer.name,
                "tier": customer.tier,
                "credit_limit": customer.credit_limit,
                "payment_terms": customer.payment_terms,
                "region": customer.region,
            }),
        );
        self.refresh_credit(&number);
        Ok((created, self.customers[&number].clone()))
    }

    /// Puts a customer on credit hold or releases it.
    ///
    /// # Errors
    /// `unknown_customer`.
    pub fn set_hold(&mut self, key: &str, on_hold: bool) -> Result<Customer> {
        let number = self.customer_number(key).ok_or_else(|| {
            ApiError::not_found(Code::UnknownCustomer, format!("unknown customer {key:?}"))
        })?;
        if let Some(customer) = self.customers.get_mut(&number) {
            customer.on_hold = on_hold;
        }
        self.refresh_credit(&number);
        Ok(self.customers[&number].clone())
    }
}
