//! Which accounts' records an operations caller may see. A key created with `--accounts`
//! sees on `/ops` and the dashboard only those accounts' orders, traces and failed work; work
//! that belongs to no account (stock levels, refused messages that named none) is hidden
//! from it. Anything outside its reach answers 404, as on `/v1`.

use std::borrow::Cow;
use std::collections::HashMap;

use crossdock_store::{DeadLetter, SharedStore};
use rust_decimal::Decimal;

use super::exceptions::{self, ActionError, Filter, ReplayReport};
use super::health::HealthReport;
use crate::auth::Principal;

/// The accounts a caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// `None`: every account.
    accounts: Option<Vec<String>>,
}

impl Reach {
    /// Every account (keys without an account limit, the open dashboard).
    pub fn all() -> Self {
        Self { accounts: None }
    }

    /// The reach of an authenticated caller.
    pub fn of(principal: &Principal) -> Self {
        if principal.accounts.is_empty() {
            Self::all()
        } else {
            Self {
                accounts: Some(principal.accounts.clone()),
            }
        }
    }

    /// Whether every account is in reach.
    pub fn is_all(&self) -> bool {
        self.accounts.is_none()
    }

    /// Whether a record of `account` is in reach (one of no account only with every account).
    pub fn sees(&self, account: Option<&str>) -> bool {
        match (&self.accounts, account) {
            (None, _) => true,
            (Some(accounts), Some(account)) => accounts.iter().any(|a| a == account),
            (Some(_), None) => false,
        }
    }

    /// Whether the order `order_id` is in reach (no order: only with every account).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn sees_order(
        &self,
        store: &SharedStore,
        order_id: Option<&str>,
    ) -> crossdock_store::Result<bool> {
        if self.is_all() {
            return Ok(true);
        }
        let Some(order_id) = order_id else {
            return Ok(false);
        };
        let row = store.order(order_id).await?;
        Ok(self.sees(row.as_ref().map(|r| r.account.as_str())))
    }

    /// The dead letters in reach (each order looked up once).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn dead_letters(
        &self,
        store: &SharedStore,
        items: Vec<DeadLetter>,
    ) -> crossdock_store::Result<Vec<DeadLetter>> {
        if self.is_all() {
            return Ok(items);
        }
        let mut seen: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            let visible = match item.task.order_id.as_deref() {
                None => false,
                Some(order) => match seen.get(order) {
                    Some(visible) => *visible,
                    None => {
                        let visible = self.sees_order(store, Some(order)).await?;
                        seen.insert(order.to_owned(), visible);
                        visible
                    }
                },
            };
            if visible {
                kept.push(item);
            }
        }
        Ok(kept)
    }

    /// The dead letter `id` when it is in reach; otherwise the same not-found as for a dead
    /// letter that does not exist.
    ///
    /// # Errors
    /// Not found or out of reach, or a store failure.
    pub async fn dead_letter(
        &self,
        store: &SharedStore,
        id: i64,
    ) -> Result<DeadLetter, ActionError> {
        let dead = exceptions::get(store, id).await?;
        if self
            .sees_order(store, dead.task.order_id.as_deref())
            .await?
        {
            Ok(dead)
        } else {
            Err(ActionError::NotFound(format!("no dead letter {id}")))
        }
    }

    /// Whether a bulk replay with `filter` stays in reach: with an account limit, the filter
    /// must name one order of those accounts.
    ///
    /// # Errors
    /// Out of reach, or a store failure.
    pub async fn check_replay(
        &self,
        store: &SharedStore,
        filter: &Filter,
    ) -> Result<(), ActionError> {
        if self.is_all() {
            return Ok(());
        }
        let Some(asked) = filter
            .order
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        else {
            return Err(ActionError::Invalid(
                "a key limited to accounts replays one order at a time: set filter.order"
                    .to_owned(),
            ));
        };
        let order = store.resolve(asked).await?;
        if self.sees_order(store, order.as_deref()).await? {
            Ok(())
        } else {
            Err(ActionError::NotFound(format!("no order {asked}")))
        }
    }

    /// A replay report with only the items in reach (counts computed from them).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn replay_report(
        &self,
        store: &SharedStore,
        mut report: ReplayReport,
    ) -> crossdock_store::Result<ReplayReport> {
        if self.is_all() {
            return Ok(report);
        }
        let mut kept = Vec::with_capacity(report.items.len());
        for item in report.items {
            if self
                .sees_order(store, item.item.order_id.as_deref())
                .await?
            {
                kept.push(item);
            }
        }
        let count = |outcome: &str| kept.iter().filter(|i| i.outcome == outcome).count();
        report.succeeded = count("succeeded");
        report.waiting = count("waiting");
        report.failed_again = count("failed_again");
        report.items = kept;
        Ok(report)
    }

    /// The health report as this reach sees it: only its accounts' exceptions, ranked again,
    /// with the flows' counts and values at risk computed from them; the report itself (not
    /// a copy) with every account in reach.
    pub fn health<'a>(&self, report: &'a HealthReport) -> Cow<'a, HealthReport> {
        if self.is_all() {
            return Cow::Borrowed(report);
        }
        let mut limited = report.clone();
        limited
            .exceptions
            .retain(|e| self.sees(e.account.as_deref()));
        for (rank, e) in limited.exceptions.iter_mut().enumerate() {
            e.rank = rank + 1;
        }
        limited.value_at_risk.clear();
        for e in &limited.exceptions {
            if !e.value_at_risk.is_zero() {
                *limited
                    .value_at_risk
                    .entry(e.currency.clone())
                    .or_insert(Decimal::ZERO) += e.value_at_risk;
            }
        }
        for flow in &mut limited.flows {
            let own: Vec<_> = limited
                .exceptions
                .iter()
                .filter(|e| e.flow == flow.flow)
                .collect();
            flow.exceptions = own.len();
            flow.value_at_risk = own.iter().map(|e| e.value_at_risk).sum();
            flow.worst_late_by_secs = own.iter().map(|e| e.late_by_secs).max().unwrap_or(0);
            if own.is_empty() {
                "ok".clone_into(&mut flow.status);
            }
        }
        Cow::Owned(limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_reach_sees_only_its_accounts() {
        let all = Reach::all();
        assert!(all.sees(Some("ACC-1")) && all.sees(None) && all.is_all());
        let limited = Reach {
            accounts: Some(vec!["ACC-1".to_owned()]),
        };
        assert!(limited.sees(Some("ACC-1")));
        assert!(!limited.sees(Some("ACC-2")));
        assert!(!limited.sees(None), "records of no account are hidden");
        assert!(!limited.is_all());
    }
}
