//! Customer account sync: an account from the account master becomes `Inbound::Account`; the
//! engine stores it and syncs it to the ERP. Credit fields stay the ERP's.

use axum::extract::State;
use axum::http::StatusCode;
use crossdock_domain::account::{Account, Address, CustomerTier};
use crossdock_domain::ids::{AccountId, ExternalRefs, System};
use crossdock_domain::money::Currency;
use crossdock_ports::inbound::{Inbound, InboundMessage};
use serde::Deserialize;
use serde_json::json;

use crate::audit::record;
use crate::auth::Authorized;
use crate::auth::refs;
use crate::auth::scope::AccountsWrite;
use crate::dto::{AccountAccepted, AccountBody, AddressBody, TierName, is_id};
use crate::extract::{ApiJson, ApiPath};
use crate::idempotency::fingerprint;
use crate::middleware::CorrelationId;
use crate::problem::{FieldError, Problem};
use crate::state::AppState;

/// Path of one account.
#[derive(Debug, Deserialize)]
pub struct AccountPath {
    /// The account number shared by Salesforce and the ERP.
    pub external_ref: String,
}

/// `PUT /v1/accounts/{external_ref}`: create or update a customer account.
///
/// `salesforce_id` is accepted from clients without account or channel limits (they speak for
/// Salesforce). A client limited to accounts may send it only as the account already carries
/// it in the hub; any other value is refused with 422 on that field.
#[utoipa::path(
    put,
    path = "/v1/accounts/{external_ref}",
    operation_id = "putAccount",
    tag = "accounts",
    params(("external_ref" = String, Path, description = "Account number", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
    request_body = AccountBody,
    responses((status = 202, description = "Stored; syncing to the ERP", body = AccountAccepted)),
    security(("api_key" = []), ("oauth2" = ["accounts:write"]))
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Authorized<AccountsWrite>,
    correlation: CorrelationId,
    ApiPath(path): ApiPath<AccountPath>,
    body: ApiJson<AccountBody>,
) -> Result<(StatusCode, axum::Json<AccountAccepted>), Problem> {
    let principal = caller.principal;
    let account = &body.value;
    let mut errors = Vec::new();
    if !is_id(&path.external_ref) {
        errors.push(FieldError::new(
            "external_ref",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if account.name.trim().is_empty() || account.name.len() > 200 {
        errors.push(FieldError::new("name", "1-200 characters"));
    }
    let currency = account.currency.parse::<Currency>();
    if let Err(error) = &currency {
        errors.push(FieldError::new("currency", error.to_string()));
    }
    if let Some(region) = &account.region
        && !is_id(region)
    {
        errors.push(FieldError::new(
            "region",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    for (field, address) in [
        ("billing", &account.billing),
        ("shipping", &account.shipping),
    ] {
        if let Some(address) = address
            && (address.country.len() != 2
                || !address.country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            errors.push(FieldError::new(
                format!("{field}.country"),
                "an ISO 3166 alpha-2 code",
            ));
        }
    }
    let (Ok(currency), true) = (currency, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    if !principal.may_see_account(&path.external_ref) {
        return Err(Problem::not_found(format!(
            "no account {}",
            path.external_ref
        )));
    }
    if let Some(sf_id) = &account.salesforce_id
        && !refs::speaks_for_salesforce(&principal)
    {
        let stored = state.store().account(&path.external_ref).await?;
        if stored.and_then(|a| a.sf_id).as_deref() != Some(sf_id.as_str()) {
            return Err(refs::refused("salesforce_id"));
        }
    }
    let address = |a: &AddressBody| Address {
        street: a.street.clone(),
        city: a.city.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
    };
    let canonical = Account {
        id: AccountId::new(path.external_ref.clone()),
        refs: ExternalRefs {
            sf_id: account.salesforce_id.clone(),
            sf_number: None,
            erp_ref: None,
        },
        name: account.name.clone(),
        tier: match account.tier {
            TierName::Gold => CustomerTier::Gold,
            TierName::Silver => CustomerTier::Silver,
            TierName::Bronze => CustomerTier::Bronze,
        },
        region: account.region.clone(),
        billing: account.billing.as_ref().map(address),
        shipping: account.shipping.as_ref().map(address),
        currency,
        credit_limit: None,
        open_balance: None,
        credit_status: None,
    };
    let now = state.engine.clock().now();
    state
        .engine
        .accept_message(InboundMessage {
            source: System::Api,
            // The same content twice is one message; a change is a new one.
            message_id: format!(
                "account:{}:{}",
                path.external_ref,
                &fingerprint(&body.raw)[..16]
            ),
            received_at: now,
            raw: String::from_utf8_lossy(&body.raw).into_owned(),
            body: Inbound::Account { account: canonical },
        })
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    record(
        &state,
        &principal,
        "account.put",
        &path.external_ref,
        json!({ "correlation": correlation.0, "name": account.name, "tier": account.tier }),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(AccountAccepted {
            account_id: path.external_ref,
            status: "accepted".to_owned(),
        }),
    ))
}
