//! Identifiers in Salesforce's namespace (an order's record id and number, a case's record id
//! and number, an account's record id) sent by API clients.
//!
//! The hub writes back to the Salesforce record such an identifier names, so it is never taken
//! on trust:
//!
//! - A client *without* account or channel limits speaks for Salesforce (an integration or
//!   admin key): its identifiers are accepted unless the hub already holds them on another
//!   order.
//! - A client limited to accounts or channels may send one only when the hub already holds it
//!   on the very record the request writes to, and that record is one the client may see (a
//!   retry of its own submission). Otherwise it names its records with its own ids
//!   (`external_order_id`, `return_id`).
//!
//! Every refusal of a field is the same 422 with the same message, whatever the reason
//! (unknown, another account's, bound to another order), so an answer never tells whether
//! another account's record exists.

use crossdock_domain::summary::OrderSummary;

use super::Principal;
use crate::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::views;

/// Message of every refused identifier field.
pub const REFUSED: &str = "not accepted: a Salesforce identifier must name this record's own \
     Salesforce record; clients limited to accounts name their records with their own ids";

/// A Salesforce identifier of an order or a case, as the hub's references name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesforceRef<'a> {
    /// An order's Salesforce record id.
    OrderId(&'a str),
    /// A case's Salesforce record id.
    CaseId(&'a str),
    /// A case's number.
    CaseNumber(&'a str),
}

impl SalesforceRef<'_> {
    fn value(&self) -> &str {
        match self {
            Self::OrderId(v) | Self::CaseId(v) | Self::CaseNumber(v) => v,
        }
    }

    /// Whether an order's summary carries this identifier.
    fn held_by(&self, summary: &OrderSummary) -> bool {
        match *self {
            Self::OrderId(v) => summary.refs.sf_id.as_deref() == Some(v),
            Self::CaseId(v) => summary
                .returns
                .iter()
                .any(|r| r.case.sf_id.as_deref() == Some(v)),
            Self::CaseNumber(v) => summary
                .returns
                .iter()
                .any(|r| r.case.sf_number.as_deref() == Some(v)),
        }
    }
}

/// Whether a client speaks for Salesforce: it has no account or channel limits.
pub fn speaks_for_salesforce(principal: &Principal) -> bool {
    principal.accounts.is_empty() && principal.channels.is_empty()
}

/// The refusal of an identifier field.
pub fn refused(field: &str) -> Problem {
    Problem::validation(vec![FieldError::new(field, REFUSED)])
}

/// The order that holds a Salesforce identifier in the hub's records, if any.
///
/// # Errors
/// 500 when the store fails.
pub async fn holder(
    state: &AppState,
    reference: SalesforceRef<'_>,
) -> Result<Option<String>, Problem> {
    let Some(order_id) = state.store().resolve(reference.value()).await? else {
        return Ok(None);
    };
    let Some(row) = state.store().order(&order_id).await? else {
        return Ok(None);
    };
    // `resolve` searches every namespace; only a holder of this very identifier counts.
    let summary = views::summary(&row)?;
    Ok(reference.held_by(&summary).then_some(order_id))
}

/// Checks a client-supplied identifier for a write to order `target` (the order being
/// submitted, or the order a return is requested on).
///
/// Accepted when the hub holds it on `target` (whose visibility the caller has checked), or,
/// for a client that speaks for Salesforce, when no other order holds it.
///
/// # Errors
/// 422 on `field` ([`refused`]); 500 when the store fails.
pub async fn check(
    state: &AppState,
    principal: &Principal,
    field: &str,
    reference: SalesforceRef<'_>,
    target: &str,
) -> Result<(), Problem> {
    match holder(state, reference).await? {
        Some(order) if order == target => Ok(()),
        Some(_) => Err(refused(field)),
        None if speaks_for_salesforce(principal) => Ok(()),
        None => Err(refused(field)),
    }
}
