//! [`Adapter`]: the ERP port over any JSON REST API, as described by a [`Config`].
//!
//! Each port call becomes an input object, the operation's calls run in order over the
//! context (input + answers so far), and the `response` filter maps the context to the
//! port's JSON, which is then decoded into the port's type. A mapping that fails on an
//! answer, or gives JSON of the wrong shape, is an unknown failure naming the operation and
//! the field.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crossdock_domain::account::Account;
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_domain::money::{Currency, round_cents};
use crossdock_domain::order::CreditAnswer;
use crossdock_ports::erp::{
    BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
    CustomerRef, Erp, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
    ReturnAuthorisation, ReturnReceipt, ReturnRequest,
};
use crossdock_ports::{Failure, FailureClass, failure::Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use time::Date;
use time::macros::format_description;

use super::config::{Config, Operation};
use super::http::{self, Answer, Http, encode};
use super::jq::Program;
use super::template::PathTemplate;

#[derive(Debug)]
struct CompiledCall {
    name: String,
    method: Method,
    path: PathTemplate,
    query: Option<Program>,
    body: Option<Program>,
    when: Option<Program>,
    accept: Vec<u16>,
}

#[derive(Debug)]
struct CompiledOperation {
    each: Option<Program>,
    calls: Vec<CompiledCall>,
    response: Program,
    refusal: Option<Program>,
}

#[derive(Debug, Default)]
struct CompiledErrors {
    message: Option<Program>,
    code: Option<Program>,
    class: Option<Program>,
}

/// The ERP port over a configured REST API.
#[derive(Debug)]
pub struct Adapter {
    name: String,
    http: Http,
    headers: Vec<(String, String)>,
    idempotency_header: Option<String>,
    errors: CompiledErrors,
    operations: BTreeMap<&'static str, CompiledOperation>,
    fan_out: usize,
}

fn compile(code: Option<&String>) -> Result<Option<Program>> {
    code.map(|c| Program::compile(c).map_err(Failure::permanent))
        .transpose()
}

fn compile_operation(op: &Operation) -> Result<CompiledOperation> {
    let mut calls = Vec::new();
    for (index, call) in op.call.iter().enumerate() {
        calls.push(CompiledCall {
            name: call
                .name
                .clone()
                .unwrap_or_else(|| format!("call{}", index + 1)),
            method: Method::from_bytes(call.method.to_ascii_uppercase().as_bytes())
                .map_err(|e| Failure::permanent(e.to_string()))?,
            path: PathTemplate::parse(&call.path).map_err(Failure::permanent)?,
            query: compile(call.query.as_ref())?,
            body: compile(call.body.as_ref())?,
            when: compile(call.when.as_ref())?,
            accept: call.accept.clone(),
        });
    }
    Ok(CompiledOperation {
        each: compile(op.each.as_ref())?,
        calls,
        response: Program::compile(&op.response).map_err(Failure::permanent)?,
        refusal: compile(op.refusal.as_ref())?,
    })
}

/// A JSON value as query-parameter text (`None` for null).
fn query_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn class_named(name: &str, retry_after: Option<std::time::Duration>) -> Option<FailureClass> {
    Some(match name {
        "transient" => FailureClass::Transient,
        "throttled" => FailureClass::Throttled { retry_after },
        "conflict" => FailureClass::Conflict,
        "permanent" => FailureClass::Permanent,
        "unknown" => FailureClass::Unknown,
        _ => return None,
    })
}

impl Adapter {
    /// Validates the configuration, compiles its filters and builds the HTTP client (no I/O).
    ///
    /// # Errors
    /// Permanent, listing every configuration problem.
    pub fn new(config: &Config) -> Result<Self> {
        config
            .validate()
            .map_err(|problems| Failure::permanent(problems.join("; ")).with_code("config"))?;
        let mut operations = BTreeMap::new();
        for (name, op) in config.operations.iter() {
            operations.insert(name, compile_operation(op)?);
        }
        let header = config.idempotency_header.trim();
        Ok(Self {
            name: config.name.clone(),
            http: Http::new(&config.base_url, config.timeout(), config.connect_timeout())?,
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            idempotency_header: (!header.is_empty()).then(|| header.to_owned()),
            errors: CompiledErrors {
                message: compile(config.errors.message.as_ref())?,
                code: compile(config.errors.code.as_ref())?,
                class: compile(config.errors.class.as_ref())?,
            },
            operations,
            fan_out: config.fan_out,
        })
    }

    /// Runs an operation on `input` and decodes the mapped answer into `T`.
    async fn run<T: DeserializeOwned>(
        &self,
        op: &'static str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<T> {
        let value = self.execute(op, input, idempotency_key).await?;
        http::decode_value(op, "mapped answer", &value)
    }

    async fn execute(
        &self,
        name: &'static str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let op = self.operations.get(name).ok_or_else(|| {
            Failure::permanent(format!(
                "the REST ERP `{}` has no `{name}` operation configured",
                self.name
            ))
            .with_code("not_configured")
        })?;
        let Value::Object(mut context) = input else {
            return Err(Failure::permanent(format!(
                "{name}: the input is not an object"
            )));
        };
        if let Some(key) = idempotency_key {
            context.insert("idempotency_key".to_owned(), json!(key));
        }
        let write = idempotency_key.is_some();
        let Some(each) = &op.each else {
            return self.run_calls(name, op, context, write).await;
        };
        let items = each
            .run(&Value::Object(context.clone()))
            .map_err(|e| Failure::permanent(format!("{name}: `each`: {e}")).with_code("mapping"))?;
        let runs: Vec<_> = items
            .into_iter()
            .map(|item| {
                let mut context = context.clone();
                context.insert("item".to_owned(), item);
                self.run_calls(name, op, context, write)
            })
            .collect();
        let outputs: Vec<Value> = stream::iter(runs)
            .buffered(self.fan_out)
            .try_collect()
            .await?;
        let mut all = Vec::new();
        for output in outputs {
            match output {
                Value::Array(values) => all.extend(values),
                other => all.push(other),
            }
        }
        Ok(Value::Array(all))
    }

    async fn run_calls(
        &self,
        op_name: &'static str,
        op: &CompiledOperation,
        mut context: Map<String, Value>,
        write: bool,
    ) -> Result<Value> {
        let mapping = |what: &str, e: String| {
            Failure::unknown(format!("{op_name}: {what}: {e}")).with_code("mapping")
        };
        context.insert("calls".to_owned(), Value::Object(Map::new()));
        let mut last: Option<Value> = None;
        for call in &op.calls {
            let here = Value::Object(context.clone());
            if let Some(when) = &call.when {
                match when.optional(&here) {
                    Ok(Some(Value::Bool(true))) => {}
                    Ok(_) => continue,
                    Err(e) => return Err(mapping(&format!("call {} `when`", call.name), e)),
                }
            }
            let mut path = call.path.render(&here).map_err(|e| {
                Failure::permanent(format!("{op_name}: call {} path: {e}", call.name))
                    .with_code("mapping")
            })?;
            if let Some(query) = &call.query {
                let params = query
                    .one(&here)
                    .map_err(|e| mapping(&format!("call {} `query`", call.name), e))?;
                let Value::Object(params) = params else {
                    return Err(mapping(
                        &format!("call {} `query`", call.name),
                        format!("an object is needed, got {params}"),
                    ));
                };
                let pairs: Vec<String> = params
                    .iter()
                    .filter_map(|(k, v)| {
                        query_text(v).map(|v| format!("{}={}", encode(k), encode(&v)))
                    })
                    .collect();
                if !pairs.is_empty() {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    path.push_str(&pairs.join("&"));
                }
            }
            let body = match &call.body {
                Some(body) => Some(
                    body.one(&here)
                        .map_err(|e| mapping(&format!("call {} `body`", call.name), e))?,
                ),
                None => None,
            };
            let mut headers: Vec<(&str, &str)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if let (true, Some(header), Some(Value::String(key))) = (
                write && call.method != Method::GET && call.method != Method::HEAD,
                self.idempotency_header.as_deref(),
                context.get("idempotency_key"),
            ) {
                headers.push((header, key.as_str()));
            }
            let answer = self
                .http
                .send(op_name, call.method.clone(), &path, body.as_ref(), &headers)
                .await?;
            if !answer.is_success() && !call.accept.contains(&answer.status) {
                return Err(self.failure_of(op_name, &answer));
            }
            let body = if answer.body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&answer.body).map_err(|e| {
                    Failure::unknown(format!(
                        "{op_name}: call {}: the answer is not valid JSON ({e}): {}",
                        call.name,
                        http::snippet(&answer.body)
                    ))
                    .with_code("malformed_answer")
                })?
            };
            let record =
                json!({ "status": answer.status, "headers": answer.headers, "body": body });
            if let Some(Value::Object(calls)) = context.get_mut("calls") {
                calls.insert(call.name.clone(), record.clone());
            }
            last = Some(record);
        }
        if let Some(Value::Object(last)) = last {
            for (key, value) in last {
                context.insert(key, value);
            }
        }
        let context = Value::Object(context);
        if let Some(refusal) = &op.refusal {
            match refusal.optional(&context) {
                Ok(Some(Value::String(message))) => {
                    return Err(Failure::permanent(message).with_code("refused"));
                }
                Ok(_) => {}
                Err(e) => return Err(mapping("`refusal`", e)),
            }
        }
        op.response
            .one(&context)
            .map_err(|e| mapping("`response`", e))
    }

    /// The failure an error answer stands for, read with the `errors` filters.
    fn failure_of(&self, op: &str, answer: &Answer) -> Failure {
        let body = serde_json::from_slice::<Value>(&answer.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
        let input = json!({ "status": answer.status, "headers": answer.headers, "body": body });
        let pick = |program: &Option<Program>| {
            program
                .as_ref()
                .and_then(|p| p.optional(&input).ok().flatten())
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
        };
        let retry_after = http::retry_after(answer);
        let class = pick(&self.errors.class)
            .and_then(|name| class_named(&name, retry_after))
            .unwrap_or_else(|| http::class_of_status(answer.status, retry_after));
        let message = pick(&self.errors.message)
            .unwrap_or_else(|| format!("HTTP {}: {}", answer.status, http::snippet(&answer.body)));
        let code = pick(&self.errors.code).unwrap_or_else(|| answer.status.to_string());
        let message = match class {
            FailureClass::Permanent => message,
            _ => format!("{op}: {message}"),
        };
        Failure::new(class, message).with_code(code)
    }
}

/// A fulfilment option as mappings give it (the date as `YYYY-MM-DD` text).
#[derive(Debug, Deserialize)]
struct MappedOption {
    method: FulfilmentMethod,
    locations: Vec<LocationId>,
    #[serde(default)]
    promised_date: Option<String>,
}

fn ymd(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_else(|_| date.to_string())
}

fn parse_ymd(op: &str, text: &str) -> Result<Date> {
    let head = text.get(..10).unwrap_or(text);
    Date::parse(head, format_description!("[year]-[month]-[day]")).map_err(|e| {
        Failure::unknown(format!(
            "{op}: mapped answer field `promised_date`: {text:?} is not a YYYY-MM-DD date: {e}"
        ))
        .with_code("malformed_answer")
    })
}

fn lines_json(lines: &[(Sku, u32)]) -> Value {
    lines
        .iter()
        .map(|(sku, quantity)| json!({ "sku": sku, "quantity": quantity }))
        .collect()
}

#[async_trait]
impl Erp for Adapter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prices(
        &self,
        account: &AccountId,
        items: &[PriceRequest],
        on: Date,
    ) -> Result<Vec<PriceQuote>> {
        let input = json!({ "account": account, "items": items, "on": ymd(on) });
        self.run("prices", input, None).await
    }

    async fn availability(
        &self,
        skus: &[Sku],
        location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>> {
        self.run(
            "availability",
            json!({ "skus": skus, "location": location }),
            None,
        )
        .await
    }

    async fn credit_check(
        &self,
        account: &AccountId,
        amount: Decimal,
        currency: Currency,
    ) -> Result<CreditAnswer> {
        let input =
            json!({ "account": account, "amount": round_cents(amount), "currency": currency });
        self.run("credit_check", input, None).await
    }

    async fn fulfilment_options(
        &self,
        request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>> {
        let op = "fulfilment_options";
        let input = json!({
            "account": request.account,
            "region": request.region,
            "lines": lines_json(&request.lines),
        });
        let mapped: Vec<MappedOption> = self.run(op, input, None).await?;
        mapped
            .into_iter()
            .map(|o| {
                Ok(FulfilmentOption {
                    method: o.method,
                    locations: o.locations,
                    promised_date: o
                        .promised_date
                        .as_deref()
                        .map(|d| parse_ymd(op, d))
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn book_order(
        &self,
        order: &BookingRequest,
        idempotency_key: &str,
    ) -> Result<BookingConfirmation> {
        let fulfilment = order.fulfilment.as_ref().map(|f| {
            json!({
                "method": f.method,
                "locations": f.locations,
                "promised_date": f.promised_date.map(ymd),
            })
        });
        let input = json!({
            "reference": order.reference,
            "sf_number": order.sf_number,
            "account": order.account,
            "currency": order.currency,
            "lines": order.lines,
            "fulfilment": fulfilment,
            "region": order.region,
        });
        self.run("book_order", input, Some(idempotency_key)).await
    }

    async fn cancel_order(
        &self,
        erp_ref: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<CancelOutcome> {
        let input = json!({ "erp_ref": erp_ref, "reason": reason });
        self.run("cancel_order", input, Some(idempotency_key)).await
    }

    async fn order(&self, erp_ref: &str) -> Result<ErpOrder> {
        self.run("order", json!({ "erp_ref": erp_ref }), None).await
    }

    async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch> {
        self.run("changes", json!({ "cursor": cursor, "limit": limit }), None)
            .await
    }

    async fn upsert_customer(
        &self,
        account: &Account,
        idempotency_key: &str,
    ) -> Result<CustomerRef> {
        self.run(
            "upsert_customer",
            json!({ "account": account }),
            Some(idempotency_key),
        )
        .await
    }

    async fn credit_status(&self, account: &AccountId) -> Result<CreditReport> {
        self.run("credit_status", json!({ "account": account }), None)
            .await
    }

    async fn create_return(
        &self,
        request: &ReturnRequest,
        idempotency_key: &str,
    ) -> Result<ReturnAuthorisation> {
        let input = json!({
            "rma": request.rma,
            "order": request.order,
            "order_erp_ref": request.order_erp_ref,
            "account": request.account,
            "lines": request.lines.iter().map(|(line, sku, quantity)| {
                json!({ "line": line, "sku": sku, "quantity": quantity })
            }).collect::<Vec<_>>(),
            "reason": request.reason,
        });
        self.run("create_return", input, Some(idempotency_key))
            .await
    }

    async fn receive_return(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        idempotency_key: &str,
    ) -> Result<ReturnReceipt> {
        let input = json!({
            "erp_rma": erp_rma,
            "lines": lines.iter().map(|(line, quantity)| json!({ "line": line, "quantity": quantity })).collect::<Vec<_>>(),
        });
        self.run("receive_return", input, Some(idempotency_key))
            .await
    }

    async fn issue_credit_memo(&self, erp_rma: &str, idempotency_key: &str) -> Result<CreditMemo> {
        self.run(
            "issue_credit_memo",
            json!({ "erp_rma": erp_rma }),
            Some(idempotency_key),
        )
        .await
    }

    async fn issue_refund(&self, credit_memo: &str, idempotency_key: &str) -> Result<Refund> {
        self.run(
            "issue_refund",
            json!({ "credit_memo": credit_memo }),
            Some(idempotency_key),
        )
        .await
    }
}
