//! The REST client: authenticated calls with one token refresh on 401, limit tracking on every
//! answer, the write reserve, sObject Collections (≤ 200 records per call, `allOrNone: false`,
//! one result per record), SOQL with `nextRecordsUrl` paging and single-record reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossdock_ports::Failure;
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::auth::{Token, Tokens};
use crate::errors::{http_failure, parse_retry_after, record_failure, transport_failure, truncate};
use crate::limits::Limits;

/// Whether a call writes (held back by the reserve) or only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Queries and record reads.
    Read,
    /// Creates, updates, upserts.
    Write,
}

/// A collections write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `POST /composite/sobjects`: every record names its type in `attributes`.
    Create,
    /// `PATCH /composite/sobjects`: every record carries `Id` and its type.
    Update,
    /// `PATCH /composite/sobjects/{sobject}/{field}`: records carry the external id field.
    Upsert {
        /// Object.
        sobject: String,
        /// External id field.
        field: String,
    },
}

/// What Salesforce answered for one record of a collections write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Record id.
    pub id: String,
    /// For upserts: whether the record was created.
    pub created: Option<bool>,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    ///
    /// # Errors
    /// `Unknown` when the body is not JSON.
    pub fn json(&self) -> Result<Json, Failure> {
        serde_json::from_str(&self.body).map_err(|e| {
            Failure::unknown(format!(
                "Salesforce answered HTTP {} with a body that is not JSON ({e}): {}",
                self.status,
                truncate(&self.body, 200)
            ))
        })
    }
}

/// The REST client of one connector. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
    limits: Arc<Limits>,
    api_version: String,
    call_options: String,
    batch_size: usize,
    calls: AtomicU64,
}

impl Client {
    /// A client over an HTTP client, token source and limit tracker.
    pub fn new(
        http: reqwest::Client,
        tokens: Arc<Tokens>,
        limits: Arc<Limits>,
        api_version: &str,
        client_name: &str,
        batch_size: usize,
    ) -> Self {
        Self {
            http,
            tokens,
            limits,
            api_version: api_version.to_owned(),
            call_options: format!("client={client_name}"),
            batch_size: batch_size.clamp(1, crossdock_ports::salesforce::MAX_BATCH),
            calls: AtomicU64::new(0),
        }
    }

    /// The token source.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The limit tracker.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Records per collections call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// REST calls sent so far (token requests not included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn url(&self, token: &Token, path: &str) -> String {
        if path.starts_with("/services/") {
            format!("{}{path}", token.instance_url)
        } else {
            format!(
                "{}/services/data/v{}/{path}",
                token.instance_url, self.api_version
            )
        }
    }

    async fn once(
        &self,
        token: &Token,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<(u16, Option<String>, String), Failure> {
        let mut request = self
            .http
            .request(method.clone(), self.url(token, path))
            .bearer_auth(token.access_token.expose())
            .header("Sforce-Call-Options", &self.call_options)
            .header("Accept", "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| transport_failure(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        if let Some(info) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
        {
            self.limits.observe(info);
        }
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(|e| transport_failure(&e))?;
        Ok((status, retry_after, text))
    }

    /// Sends one call: refreshes the token once on 401, records usage, maps errors.
    ///
    /// # Errors
    /// The call's failure, classified.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
        access: Access,
    ) -> Result<Answer, Failure> {
        if access == Access::Write {
            self.limits.admit_write()?;
        }
        let token = self.tokens.get().await?;
        let mut answer = self.once(&token, &method, path, query, body).await?;
        if answer.0 == 401 {
            let fresh = self.tokens.refresh(&token).await?;
            answer = self.once(&fresh, &method, path, query, body).await?;
        }
        let (status, retry_after, body) = answer;
        if (200..300).contains(&status) {
            return Ok(Answer { status, body });
        }
        let failure = http_failure(status, &body, parse_retry_after(retry_after.as_deref()));
        if status == 403 && failure.code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
            self.limits.limit_exceeded();
            tracing::warn!(error = %failure, "Salesforce refused a call for the API limit");
        }
        Err(failure)
    }

    /// Writes records through sObject Collections, `batch_size` records per call, with
    /// `allOrNone: false`. One result per record, in input order: a record fails alone with
    /// its own class, or with its whole call when the call failed.
    pub async fn write(&self, op: &Write, records: &[Json]) -> Vec<Result<Written, Failure>> {
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(self.batch_size) {
            let (method, path) = match op {
                Write::Create => (Method::POST, "composite/sobjects".to_owned()),
                Write::Update => (Method::PATCH, "composite/sobjects".to_owned()),
                Write::Upsert { sobject, field } => (
                    Method::PATCH,
                    format!("composite/sobjects/{sobject}/{field}"),
                ),
            };
            let body = json!({"allOrNone": false, "records": chunk});
            let answer = self
                .send(method, &path, &[], Some(&body), Access::Write)
                .await
                .and_then(|a| a.json());
            match answer {
                Ok(json) => results.extend(per_record(&json, chunk.len())),
                Err(failure) => results.extend(chunk.iter().map(|_| Err(failure.clone()))),
            }
        }
        results
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` until every record is read.
    ///
    /// # Errors
    /// The first failed page.
    pub async fn query(&self, soql: &str) -> Result<Vec<Json>, Failure> {
        let mut records = Vec::new();
        let first = self
            .send(Method::GET, "query", &[("q", soql)], None, Access::Read)
            .await?
            .json()?;
        let mut page = first;
        loop {
            let Some(Json::Array(items)) = page.get_mut("records").map(Json::take) else {
                return Err(Failure::unknown(format!(
                    "query answer has no records array: {}",
                    truncate(&page.to_string(), 200)
                )));
            };
            records.extend(items);
            let done = page.get("done").and_then(Json::as_bool).unwrap_or(true);
            if done {
                return Ok(records);
            }
            let next = page
                .get("nextRecordsUrl")
                .and_then(Json::as_str)
                .filter(|u| u.starts_with("/services/data/"))
                .ok_or_else(|| {
                    Failure::unknown("query answer is not done but has no usable nextRecordsUrl")
                })?
                .to_owned();
            page = self
                .send(Method::GET, &next, &[], None, Access::Read)
                .await?
                .json()?;
        }
    }

    /// Reads one record (all fields, or the listed ones).
    ///
    /// # Errors
    /// `NOT_FOUND` and friends as permanent failures; transport trouble as transient.
    pub async fn record(
        &self,
        sobject: &str,
        id: &str,
        fields: Option<&[&str]>,
    ) -> Result<Json, Failure> {
        let path = format!("sobjects/{sobject}/{id}");
        let joined;
        let query: Vec<(&str, &str)> = match fields {
            Some(list) => {
                joined = list.join(",");
                vec![("fields", joined.as_str())]
            }
            None => Vec::new(),
        };
        self.send(Method::GET, &path, &query, None, Access::Read)
            .await?
            .json()
    }

    /// The field names of an object (`describe`).
    ///
    /// # Errors
    /// The call's failure.
    pub async fn describe_fields(&self, sobject: &str) -> Result<Vec<String>, Failure> {
        let json = self
            .send(
                Method::GET,
                &format!("sobjects/{sobject}/describe"),
                &[],
                None,
                Access::Read,
            )
            .await?
            .json()?;
        let fields = json
            .get("fields")
            .and_then(Json::as_array)
            .ok_or_else(|| Failure::unknown(format!("describe of {sobject} has no fields")))?;
        Ok(fields
            .iter()
            .filter_map(|f| f.get("name").and_then(Json::as_str))
            .map(str::to_owned)
            .collect())
    }
}

/// Parses a collections answer: one `{id, success, errors}` per record, in input order.
pub fn per_record(answer: &Json, expected: usize) -> Vec<Result<Written, Failure>> {
    let Some(items) = answer.as_array().filter(|a| a.len() == expected) else {
        let failure = Failure::unknown(format!(
            "collections answer should list {expected} results: {}",
            truncate(&answer.to_string(), 200)
        ));
        return (0..expected).map(|_| Err(failure.clone())).collect();
    };
    items.iter().map(record_result).collect()
}

fn record_result(item: &Json) -> Result<Written, Failure> {
    let success = item.get("success").and_then(Json::as_bool);
    let id = item.get("id").and_then(Json::as_str);
    match (success, id) {
        (Some(true), Some(id)) => Ok(Written {
            id: id.to_owned(),
            created: item.get("created").and_then(Json::as_bool),
        }),
        (Some(false), _) => {
            let first = item
                .get("errors")
                .and_then(Json::as_array)
                .and_then(|e| e.first());
            let Some(error) = first else {
                return Err(Failure::unknown(format!(
                    "record failed without an error: {item}"
                )));
            };
            let code = error
                .get("statusCode")
                .or_else(|| error.get("errorCode"))
                .and_then(Json::as_str)
                .unwrap_or("UNKNOWN");
            let message = error
                .get("message")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let fields: Vec<String> = error
                .get("fields")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Err(record_failure(code, message, &fields))
        }
        _ => Err(Failure::unknown(format!(
            "unreadable collections result: {}",
            truncate(&item.to_string(), 200)
        ))),
    }
}

/// Quotes a value for a SOQL string literal.
pub fn soql_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether `id` looks like a Salesforce record id (15 or 18 alphanumerics).
pub fn is_record_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}
