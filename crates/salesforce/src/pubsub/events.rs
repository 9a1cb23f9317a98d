//! Change events: decoding a payload into a [`ChangeEvent`] and turning events (or re-read
//! records, after gaps) into canonical inbound meanings.
//!
//! | Event | Meaning |
//! |---|---|
//! | `Order` whose `Status` became `Activated` | `CaptureOrder` with the order re-read (items, SKUs, account) |
//! | `Order` with `Cancel_Requested__c = true` | `CancelOrder { by: Salesforce, reason: Cancel_Reason__c }` |
//! | `Case` with `Type = Return` (or `Return_Lines__c`) and `Order__c` | `RequestReturn` (`RMA-<CaseNumber>`, lines from `SKU:QTY;…`) |
//! | `Account` created or updated | `Inbound::Account` |
//! | anything else | nothing (checkpointed) |

use std::collections::BTreeMap;

use crossdock_domain::account::{Account, Address, CustomerTier};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, RmaId, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Command, OrderDraft, ReturnRequest};
use crossdock_ports::inbound::Inbound;
use crossdock_ports::{Failure, Salesforce};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use super::avro::{self, Schema};
use crate::adapter::{Adapter, parse_datetime, str_at};
use crate::client::is_record_id;

/// A decoded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Object API name (`Order`).
    pub entity: String,
    /// Records changed.
    pub record_ids: Vec<String>,
    /// `CREATE`, `UPDATE`, `DELETE`, `UNDELETE`, `GAP_*`.
    pub change_type: String,
    /// `com/salesforce/api/rest/60.0;client=crossdock` for API changes.
    pub change_origin: String,
    /// Commit time, epoch milliseconds.
    pub commit_timestamp: i64,
    /// User that committed the change.
    pub commit_user: String,
    /// Changed field names (bitmaps expanded).
    pub changed_fields: Vec<String>,
    /// Fields set to null (bitmaps expanded).
    pub nulled_fields: Vec<String>,
    /// The record's fields carried by the event (null when unchanged).
    pub fields: Map<String, Json>,
    /// The whole event as JSON, bitmaps expanded: what the inbox keeps as raw payload.
    pub json: Json,
}

impl ChangeEvent {
    /// A body field's text value.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether a body field is JSON `true`.
    pub fn is_true(&self, field: &str) -> bool {
        self.fields.get(field).and_then(Json::as_bool) == Some(true)
    }

    /// Commit time.
    pub fn committed_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.commit_timestamp) * 1_000_000)
            .ok()
    }

    /// Whether this is a gap event (`GAP_*`).
    pub fn is_gap(&self) -> bool {
        self.change_type.starts_with("GAP_")
    }
}

/// What decoding found in a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A change event.
    Change(ChangeEvent),
    /// Another event (a platform event): the decoded fields.
    Other(Json),
}

/// Decodes a payload in its writer schema and reads the change-event header.
///
/// # Errors
/// A precise message when the bytes or the header do not match the schema.
pub fn decode_event(schema: &Schema, payload: &[u8]) -> Result<Decoded, String> {
    let value = avro::decode_payload(schema, payload).map_err(|e| e.to_string())?;
    let Some(fields) = schema.record_fields() else {
        return Err("the event schema is not a record".to_owned());
    };
    let Json::Object(mut body) = value else {
        return Err("the event did not decode to a record".to_owned());
    };
    let Some(Json::Object(mut header)) = body.remove("ChangeEventHeader") else {
        return Ok(Decoded::Other(Json::Object(body)));
    };
    let strings = |h: &Map<String, Json>, key: &str| -> Vec<String> {
        h.get(key)
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut expanded = |key: &str| -> Result<Vec<String>, String> {
        let names = avro::expand_bitmaps(fields, &strings(&header, key))
            .map_err(|e| format!("{key}: {e}"))?;
        header.insert(
            key.to_owned(),
            Json::Array(names.iter().cloned().map(Json::String).collect()),
        );
        Ok(names)
    };
    let changed_fields = expanded("changedFields")?;
    let nulled_fields = expanded("nulledFields")?;
    expanded("diffFields")?;
    let text = |key: &str| {
        header
            .get(key)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let entity = text("entityName");
    if entity.is_empty() {
        return Err("the change event header has no entityName".to_owned());
    }
    let change_type = text("changeType");
    if change_type.is_empty() {
        return Err("the change event header has no changeType".to_owned());
    }
    let event = ChangeEvent {
        entity,
        record_ids: strings(&header, "recordIds"),
        change_type,
        change_origin: text("changeOrigin"),
        commit_timestamp: header
            .get("commitTimestamp")
            .and_then(Json::as_i64)
            .unwrap_or_default(),
        commit_user: text("commitUser"),
        changed_fields,
        nulled_fields,
        fields: body.clone(),
        json: Json::Null,
    };
    let mut json = body;
    json.insert("ChangeEventHeader".to_owned(), Json::Object(header));
    Ok(Decoded::Change(ChangeEvent {
        json: Json::Object(json),
        ..event
    }))
}

/// Whether `origin` (`com/salesforce/api/rest/60.0;client=crossdock`) names `client`.
pub fn origin_is(origin: &str, client: &str) -> bool {
    origin
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("client="))
        .any(|c| c.trim() == client)
}

/// The object a `/data/…ChangeEvent` topic carries (`Order`, `Foo__c`), if one.
pub fn entity_of_topic(topic: &str) -> Option<String> {
    let name = topic.strip_prefix("/data/")?.strip_suffix("ChangeEvent")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some(match name.strip_suffix("__") {
        Some(custom) => format!("{custom}__c"),
        None => name.to_owned(),
    })
}

/// One canonical meaning derived from a record, with a stable name for message ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Meaning {
    /// Record it came from.
    pub record_id: String,
    /// `capture`, `cancel`, `return`, `account`, `unreadable`.
    pub kind: &'static str,
    /// The meaning.
    pub body: Inbound,
}

fn unreadable(record_id: &str, reason: String) -> Meaning {
    Meaning {
        record_id: record_id.to_owned(),
        kind: "unreadable",
        body: Inbound::Unreadable { reason },
    }
}

/// Turns events and re-read records into meanings, reading from Salesforce what events leave
/// out. Transient failures are returned (the caller retries); data that cannot be understood
/// becomes an `Unreadable` meaning.
pub struct Interpreter<'a> {
    /// Adapter for re-reads.
    pub adapter: &'a Adapter,
}

impl Interpreter<'_> {
    /// The meanings of a (non-gap) change event.
    ///
    /// # Errors
    /// A retryable failure while reading from Salesforce.
    pub async fn event(&self, ev: &ChangeEvent) -> Result<Vec<Meaning>, Failure> {
        let at = ev.committed_at();
        let mut out = Vec::new();
        let upsert = matches!(ev.change_type.as_str(), "CREATE" | "UPDATE" | "UNDELETE");
        if !upsert {
            return Ok(out);
        }
        for id in &ev.record_ids {
            if !is_record_id(id) {
                out.push(unreadable(
                    id,
                    format!("{} event names `{id}`, which is not a record id", ev.entity),
                ));
                continue;
            }
            match ev.entity.as_str() {
                "Order" => {
                    let activated = ev.text("Status") == Some("Activated")
                        && (ev.change_type != "UPDATE"
                            || ev.changed_fields.iter().any(|f| f == "Status"));
                    if activated {
                        out.push(self.capture(id).await?);
                    }
                    if ev.is_true("Cancel_Requested__c") {
                        out.push(self.cancel(id, ev.text("Cancel_Reason__c"), at).await?);
                    }
                }
                "Case" => {
                    let relevant = ev.text("Type") == Some("Return")
                        || ev.text("Return_Lines__c").is_some()
                        || ev.text("Order__c").is_some();
                    if relevant {
                        let case = self.adapter.client().record("Case", id, None).await;
                        match case {
                            Ok(case) => out.extend(self.case(id, &case, at).await?),
                            Err(f) if is_gone(&f) => {}
                            Err(f) => return Err(f),
                        }
                    }
                }
                "Account" => match self.adapter.client().record("Account", id, None).await {
                    Ok(account) => out.push(account_meaning(id, &account)),
                    Err(f) if is_gone(&f) => {}
                    Err(f) => return Err(f),
                },
                _ => {}
            }
        }
        Ok(out)
    }

    /// The meanings of records re-read in full (after a gap event or an expired replay id).
    ///
    /// # Errors
    /// A retryable failure while reading from Salesforce.
    pub async fn reread(&self, entity: &str, ids: &[String]) -> Result<Vec<Meaning>, Failure> {
        let mut out = Vec::new();
        for id in ids {
            if !is_record_id(id) {
                out.push(unreadable(
                    id,
                    format!("gap event names `{id}`, which is not a record id"),
                ));
                continue;
            }
            match entity {
                "Order" => {
                    let fields = self.adapter.fields_of("Order").await?;
                    let wanted: Vec<&str> = [
                        "Status",
                        "OrderNumber",
                        "Cancel_Requested__c",
                        "Cancel_Reason__c",
                        "LastModifiedDate",
                    ]
                    .into_iter()
                    .filter(|f| fields.contains(&f.to_ascii_lowercase()))
                    .collect();
                    let record = match self
                        .adapter
                        .client()
                        .record("Order", id, Some(&wanted))
                        .await
                    {
                        Ok(r) => r,
                        Err(f) if is_gone(&f) => continue,
                        Err(f) => return Err(f),
                    };
                    if str_at(&record, "Status") == Some("Activated") {
                        out.push(self.capture(id).await?);
                    }
                    if record.get("Cancel_Requested__c").and_then(Json::as_bool) == Some(true) {
                        let at = str_at(&record, "LastModifiedDate").and_then(parse_datetime);
                        out.push(
                            self.cancel(id, str_at(&record, "Cancel_Reason__c"), at)
                                .await?,
                        );
                    }
                }
                "Case" => match self.adapter.client().record("Case", id, None).await {
                    Ok(case) => {
                        let at = str_at(&case, "LastModifiedDate").and_then(parse_datetime);
                        out.extend(self.case(id, &case, at).await?);
                    }
                    Err(f) if is_gone(&f) => {}
                    Err(f) => return Err(f),
                },
                "Account" => match self.adapter.client().record("Account", id, None).await {
                    Ok(account) => out.push(account_meaning(id, &account)),
                    Err(f) if is_gone(&f) => {}
                    Err(f) => return Err(f),
                },
                _ => {}
            }
        }
        Ok(out)
    }

    /// Ids of `entity` records changed at or after `since` (overflow and replay resets).
    ///
    /// # Errors
    /// The query's failure.
    pub async fn changed_since(
        &self,
        entity: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<String>, Failure> {
        let utc = since.to_offset(time::UtcOffset::UTC);
        let literal = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
        let soql = format!(
            "SELECT Id FROM {entity} WHERE SystemModstamp >= {literal} ORDER BY SystemModstamp"
        );
        let rows = self.adapter.client().query(&soql).await?;
        Ok(rows
            .iter()
            .filter_map(|r| str_at(r, "Id"))
            .map(str::to_owned)
            .collect())
    }

    async fn capture(&self, id: &str) -> Result<Meaning, Failure> {
        match self.adapter.read_order(id).await {
            Ok(draft) => Ok(Meaning {
                record_id: id.to_owned(),
                kind: "capture",
                body: Inbound::Order {
                    order: draft.id.clone(),
                    command: Command::CaptureOrder(draft),
                },
            }),
            Err(f) if retryable(&f) => Err(f),
            Err(f) => Ok(unreadable(
                id,
                format!(
                    "order {id} was activated but cannot be captured: {}",
                    f.message
                ),
            )),
        }
    }

    async fn cancel(
        &self,
        id: &str,
        reason: Option<&str>,
        at: Option<OffsetDateTime>,
    ) -> Result<Meaning, Failure> {
        let fields = self.adapter.fields_of("Order").await?;
        let wanted: Vec<&str> = ["OrderNumber", "Hub_Order_Id__c", "Cancel_Reason__c"]
            .into_iter()
            .filter(|f| fields.contains(&f.to_ascii_lowercase()))
            .collect();
        let record = match self
            .adapter
            .client()
            .record("Order", id, Some(&wanted))
            .await
        {
            Ok(r) => r,
            Err(f) if retryable(&f) => return Err(f),
            Err(f) => {
                return Ok(unreadable(
                    id,
                    format!("cancellation of order {id} cannot be read: {}", f.message),
                ));
            }
        };
        let Some(order) = hub_order_id(&record) else {
            return Ok(unreadable(id, format!("order {id} has no OrderNumber")));
        };
        let reason = reason
            .or_else(|| str_at(&record, "Cancel_Reason__c"))
            .unwrap_or("Cancellation requested in Salesforce")
            .to_owned();
        Ok(Meaning {
            record_id: id.to_owned(),
            kind: "cancel",
            body: Inbound::Order {
                order: order.into(),
                command: Command::CancelOrder {
                    by: System::Salesforce,
                    reason,
                    at: at.unwrap_or_else(|| self.adapter.clock().now()),
                },
            },
        })
    }

    async fn case(
        &self,
        id: &str,
        case: &Json,
        at: Option<OffsetDateTime>,
    ) -> Result<Vec<Meaning>, Failure> {
        let is_return =
            str_at(case, "Type") == Some("Return") || str_at(case, "Return_Lines__c").is_some();
        let Some(order_id) = str_at(case, "Order__c").filter(|_| is_return) else {
            return Ok(Vec::new());
        };
        let Some(lines_text) = str_at(case, "Return_Lines__c") else {
            // A return case without lines yet: nothing to request until they are filled in.
            return Ok(Vec::new());
        };
        let Some(number) = str_at(case, "CaseNumber") else {
            return Ok(vec![unreadable(id, format!("case {id} has no CaseNumber"))]);
        };
        let draft = match self.adapter.read_order(order_id).await {
            Ok(d) => d,
            Err(f) if retryable(&f) => return Err(f),
            Err(f) => {
                return Ok(vec![unreadable(
                    id,
                    format!(
                        "return case {number}: its order {order_id} cannot be read: {}",
                        f.message
                    ),
                )]);
            }
        };
        let lines = match return_lines(lines_text, &draft) {
            Ok(l) => l,
            Err(reason) => {
                return Ok(vec![unreadable(
                    id,
                    format!("return case {number}: {reason}"),
                )]);
            }
        };
        let reason = ["Reason", "Subject", "Description"]
            .into_iter()
            .find_map(|f| str_at(case, f))
            .unwrap_or("Return requested in Salesforce")
            .to_owned();
        Ok(vec![Meaning {
            record_id: id.to_owned(),
            kind: "return",
            body: Inbound::Order {
                order: draft.id.clone(),
                command: Command::RequestReturn {
                    rma: RmaId::new(format!("RMA-{number}")),
                    request: ReturnRequest {
                        case: ExternalRefs {
                            sf_id: Some(id.to_owned()),
                            sf_number: Some(number.to_owned()),
                            erp_ref: None,
                        },
                        lines,
                        reason,
                        at: at.unwrap_or_else(|| self.adapter.clock().now()),
                    },
                },
            },
        }])
    }
}

/// The hub id of an order record: `Hub_Order_Id__c`, else `SF-<OrderNumber>`.
pub fn hub_order_id(record: &Json) -> Option<String> {
    str_at(record, "Hub_Order_Id__c")
        .map(str::to_owned)
        .or_else(|| str_at(record, "OrderNumber").map(|n| format!("SF-{n}")))
}

fn is_gone(f: &Failure) -> bool {
    matches!(f.code.as_deref(), Some("NOT_FOUND" | "ENTITY_IS_DELETED"))
}

/// Whether a failure may go away by itself (so the event is retried, not given up).
pub fn retryable(f: &Failure) -> bool {
    use crossdock_ports::FailureClass as C;
    matches!(
        f.class,
        C::Transient | C::Throttled { .. } | C::Conflict | C::Unknown
    )
}

/// Parses `SKU:QTY;SKU:QTY` and maps each SKU to the order's lines (spilling over lines of
/// the same SKU in line order).
///
/// # Errors
/// A message naming the malformed entry, the unknown SKU or the excess quantity.
pub fn return_lines(text: &str, order: &OrderDraft) -> Result<BTreeMap<LineNo, u32>, String> {
    let mut out: BTreeMap<LineNo, u32> = BTreeMap::new();
    for entry in text
        .split([';', ',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (sku, qty) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("Return_Lines__c entry `{entry}` is not SKU:QTY"))?;
        let sku = sku.trim();
        let mut qty: u32 = qty.trim().parse().ok().filter(|q| *q > 0).ok_or_else(|| {
            format!("Return_Lines__c entry `{entry}` has no positive whole quantity")
        })?;
        let candidates: Vec<_> = order
            .lines
            .iter()
            .filter(|l| l.sku.as_str() == sku)
            .collect();
        if candidates.is_empty() {
            return Err(format!("order {} has no line with SKU {sku}", order.id));
        }
        for line in candidates {
            let taken = out.get(&line.line).copied().unwrap_or(0);
            let room = line.quantity.saturating_sub(taken);
            let take = room.min(qty);
            if take > 0 {
                *out.entry(line.line).or_insert(0) += take;
                qty -= take;
            }
            if qty == 0 {
                break;
            }
        }
        if qty > 0 {
            return Err(format!(
                "returns {qty} more of {sku} than order {} has",
                order.id
            ));
        }
    }
    if out.is_empty() {
        return Err("Return_Lines__c lists no lines".to_owned());
    }
    Ok(out)
}

fn address(record: &Json, prefix: &str) -> Option<Address> {
    let part = |p: &str| {
        str_at(record, &format!("{prefix}{p}"))
            .unwrap_or_default()
            .to_owned()
    };
    let a = Address {
        street: part("Street"),
        city: part("City"),
        postal_code: part("PostalCode"),
        country: part("Country"),
    };
    (a != Address::default()).then_some(a)
}

/// The `Inbound::Account` of an `Account` record, or `Unreadable` when it has no number.
pub fn account_meaning(id: &str, record: &Json) -> Meaning {
    let Some(number) =
        str_at(record, "ERP_Customer_Number__c").or_else(|| str_at(record, "AccountNumber"))
    else {
        return unreadable(
            id,
            format!("account {id} has neither ERP_Customer_Number__c nor AccountNumber"),
        );
    };
    let tier = match str_at(record, "Customer_Tier__c") {
        Some("Gold") => CustomerTier::Gold,
        Some("Silver") => CustomerTier::Silver,
        _ => CustomerTier::Bronze,
    };
    let currency = match str_at(record, "CurrencyIsoCode").map(str::parse::<Currency>) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return unreadable(id, format!("account {id}: {e}")),
        None => Currency::USD,
    };
    let account = Account {
        id: AccountId::new(number),
        refs: ExternalRefs {
            sf_id: Some(id.to_owned()),
            sf_number: str_at(record, "AccountNumber").map(str::to_owned),
            erp_ref: str_at(record, "ERP_Customer_Number__c").map(str::to_owned),
        },
        name: str_at(record, "Name").unwrap_or_default().to_owned(),
        tier,
        region: [
            "ShippingState",
            "BillingState",
            "ShippingCountry",
            "BillingCountry",
        ]
        .into_iter()
        .find_map(|f| str_at(record, f))
        .map(str::to_owned),
        billing: address(record, "Billing"),
        shipping: address(record, "Shipping"),
        currency,
        credit_limit: None,
        open_balance: None,
        credit_status: None,
    };
    Meaning {
        record_id: id.to_owned(),
        kind: "account",
        body: Inbound::Account { account },
    }
}
