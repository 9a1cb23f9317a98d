//! Customers (`party.party`, keyed by `code` = the hub account id) and credit.
//!
//! Tryton's credit figures are `credit_limit_amount` (company-dependent, writable only by
//! the "Credit Limit" group) and `credit_amount` (receivable balance plus confirmed sales
//! not yet invoiced). The check here is advisory; the binding one is `confirm`, which
//! refuses a breach with a `UserError` for the integration user.

use crossdock_domain::account::{Account, Address, CreditStatus};
use crossdock_domain::ids::AccountId;
use crossdock_domain::money::Currency;
use crossdock_domain::order::CreditAnswer;
use crossdock_ports::Failure;
use crossdock_ports::erp::{CreditReport, CustomerRef};
use crossdock_ports::failure::Result;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::Adapter;
use crate::tryton::error::Error;

/// (limit, credit used) of a party; no limit means unlimited.
struct Credit {
    name: String,
    limit: Option<Decimal>,
    used: Decimal,
}

impl Adapter {
    async fn credit_of(&self, account: &AccountId) -> Result<Credit> {
        let party = self.party(account).await?;
        let records = self
            .client
            .read(
                "party.party",
                &[party.id],
                &["credit_limit_amount", "credit_amount"],
                None,
            )
            .await?;
        let record = records
            .first()
            .ok_or_else(|| Failure::unknown(format!("customer {account} vanished")))?;
        Ok(Credit {
            name: party.name,
            limit: record.opt_decimal("credit_limit_amount")?,
            used: record.opt_decimal("credit_amount")?.unwrap_or_default(),
        })
    }

    pub(super) async fn check_credit(
        &self,
        account: &AccountId,
        amount: Decimal,
        currency: Currency,
    ) -> Result<CreditAnswer> {
        self.check_currency(currency)?;
        let credit = self.credit_of(account).await?;
        let Some(limit) = credit.limit else {
            return Ok(CreditAnswer {
                approved: true,
                available: None,
                reason: None,
            });
        };
        let available = limit - credit.used;
        let approved = amount <= available;
        Ok(CreditAnswer {
            approved,
            available: Some(available),
            reason: (!approved).then(|| {
                format!(
                    "{} would exceed their {} {} credit limit by {} {}",
                    credit.name,
                    limit.round_dp(2),
                    self.currency,
                    (amount - available).round_dp(2),
                    self.currency
                )
            }),
        })
    }

    pub(super) async fn credit_report(&self, account: &AccountId) -> Result<CreditReport> {
        let credit = self.credit_of(account).await?;
        let status = match credit.limit {
            Some(limit) if credit.used >= limit => CreditStatus::OverLimit,
            _ => CreditStatus::Good,
        };
        Ok(CreditReport {
            account: account.clone(),
            status,
            limit: credit.limit,
            balance: Some(credit.used),
        })
    }

    async fn country_id(&self, code: &str) -> Result<Option<i64>> {
        if code.is_empty() {
            return Ok(None);
        }
        let ids = self
            .client
            .search(
                "country.country",
                json!([["code", "=", code.to_uppercase()]]),
                0,
                Some(1),
                None,
                None,
            )
            .await?;
        match ids.first() {
            Some(id) => Ok(Some(*id)),
            None => Err(Failure::permanent(format!(
                "country {code} does not exist in Tryton"
            ))),
        }
    }

    async fn address_values(
        &self,
        address: &Address,
        invoice: bool,
        delivery: bool,
    ) -> Result<Value> {
        Ok(json!({
            "street": address.street,
            "city": address.city,
            "postal_code": address.postal_code,
            "country": self.country_id(&address.country).await?,
            "invoice": invoice,
            "delivery": delivery,
        }))
    }

    /// Address records to create for an account: one when billing and shipping agree.
    async fn new_addresses(&self, account: &Account) -> Result<Vec<Value>> {
        Ok(match (&account.billing, &account.shipping) {
            (Some(billing), Some(shipping)) if billing != shipping => vec![
                self.address_values(billing, true, false).await?,
                self.address_values(shipping, false, true).await?,
            ],
            (Some(address), _) | (None, Some(address)) => {
                vec![self.address_values(address, true, true).await?]
            }
            (None, None) => Vec::new(),
        })
    }

    pub(super) async fn sync_customer(&self, account: &Account) -> Result<CustomerRef> {
        let lock = self.locks.get(&format!("party:{}", account.id));
        let _guard = lock.lock().await;
        let code = account.id.as_str();
        match self.party(&account.id).await {
            Ok(party) => {
                self.update_customer(party.id, &party.addresses, account)
                    .await?;
                Ok(CustomerRef {
                    erp_ref: code.to_owned(),
                    created: false,
                })
            }
            Err(failure) if failure.code.as_deref() == Some("UnknownCustomer") => {
                let mut values = json!({
                    "code": code,
                    "name": account.name,
                    "customer_payment_term": self.config.payment_term,
                });
                let addresses = self.new_addresses(account).await?;
                if !addresses.is_empty() {
                    values["addresses"] = json!([["create", addresses]]);
                }
                match self.client.create("party.party", vec![values], None).await {
                    Ok(_) => Ok(CustomerRef {
                        erp_ref: code.to_owned(),
                        created: true,
                    }),
                    // Another process created it meanwhile (the code is unique).
                    Err(Error::User { .. }) if self.party(&account.id).await.is_ok() => {
                        Ok(CustomerRef {
                            erp_ref: code.to_owned(),
                            created: false,
                        })
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Err(failure) => Err(failure),
        }
    }

    /// Updates the name and the invoice / delivery addresses in place.
    async fn update_customer(
        &self,
        party: i64,
        addresses: &[i64],
        account: &Account,
    ) -> Result<()> {
        self.client
            .write("party.party", &[party], json!({"name": account.name}), None)
            .await?;
        let records = self
            .client
            .read("party.address", addresses, &["invoice", "delivery"], None)
            .await?;
        let same = account.billing == account.shipping;
        let mut billing_target = None;
        for (address, is_billing) in [(&account.billing, true), (&account.shipping, false)] {
            let Some(address) = address else { continue };
            let flag = if is_billing { "invoice" } else { "delivery" };
            let mut target = records
                .iter()
                .find(|r| r.bool(flag).unwrap_or(false))
                .or_else(|| records.first())
                .map(|r| r.id())
                .transpose()?;
            if !is_billing && !same && target.is_some() && target == billing_target {
                // One address served both; the shipping address now differs: split it.
                if let Some(shared) = target.take() {
                    self.client
                        .write("party.address", &[shared], json!({"delivery": false}), None)
                        .await?;
                }
            }
            match target {
                Some(id) => {
                    let values = json!({
                        "street": address.street,
                        "city": address.city,
                        "postal_code": address.postal_code,
                        "country": self.country_id(&address.country).await?,
                    });
                    self.client
                        .write("party.address", &[id], values, None)
                        .await?;
                }
                None => {
                    let values = self
                        .address_values(address, is_billing, !is_billing)
                        .await?;
                    self.client
                        .write(
                            "party.party",
                            &[party],
                            json!({"addresses": [["create", [values]]]}),
                            None,
                        )
                        .await?;
                }
            }
            if is_billing {
                billing_target = target;
            }
        }
        Ok(())
    }
}
