//! JSON-RPC client for a Tryton 8.0 server.
//!
//! - Logs in with `common.db.login` and sends `Authorization: Session
//!   base64(login:user_id:session)` on every call; takes the call context from
//!   `res.user.get_preferences` (the company is mandatory) and appends it as the last
//!   positional parameter of every model and wizard call.
//! - On HTTP 401 (expired session, or a method that wants a fresh session after
//!   idleness, such as `account.invoice.post`) logs in again once and repeats the call.
//!   Concurrent calls that hit the same 401 share one re-login.
//! - Maps Tryton's answers to [`Error`]: `UserError`, `UserWarning` (accepted warnings
//!   are skipped with `res.user.warning.skip` and the call repeated), `ConcurrencyException`,
//!   other server exceptions, HTTP statuses, transport failures and malformed answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::error::{Error, Result};
use super::value::Record;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to reach and log in to a Tryton server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    /// Database name (the URL path is `/<database>/rpc/`).
    pub database: String,
    /// Login of the user.
    pub login: String,
    /// Password of the user.
    pub password: Secret,
    /// Language of Tryton's messages.
    pub language: String,
    /// Limit for one call, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Limit for establishing the connection.
    pub connect_timeout: Duration,
    /// `UserWarning` names skipped automatically (exact name, or the part after the last `.`,
    /// e.g. `credit_limit_amount`).
    pub accepted_warnings: Vec<String>,
}

/// A logged-in session.
#[derive(Debug)]
struct Session {
    user_id: i64,
    header: String,
    context: Map<String, Value>,
    /// Increases with every login, so concurrent 401s trigger a single re-login.
    generation: u64,
}

/// The answer of `wizard.<name>.create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WizardSession {
    /// Wizard session id.
    pub id: i64,
    /// First state.
    pub start_state: String,
    /// Final state.
    pub end_state: String,
}

/// Preference keys that make up the call context (the rest is display data).
const CONTEXT_KEYS: [&str; 5] = [
    "company",
    "employee",
    "language",
    "company_filter",
    "language_direction",
];

/// Skipping accepted warnings repeats a call at most this often.
const MAX_WARNING_SKIPS: usize = 3;

/// A JSON-RPC client bound to one database and user.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    rpc_url: String,
    config: ClientConfig,
    next_id: AtomicU64,
    logins: AtomicU64,
    // Held only to swap the session; never across an await.
    session: RwLock<Option<Arc<Session>>>,
    // Serialises logins so that concurrent 401s log in once.
    login_gate: tokio::sync::Mutex<()>,
}

fn is_json_object(value: &Value) -> bool {
    matches!(value, Value::Object(_))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl Client {
    /// A client for the server in `config`; does not connect yet.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL or database is unusable or the HTTP client cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let base_url = config.url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "Tryton URL `{}` must start with http:// or https://",
                config.url
            )));
        }
        if config.database.is_empty() || config.database.contains(['/', '?', '#']) {
            return Err(Error::Config(format!(
                "Tryton database name `{}` is empty or not a plain name",
                config.database
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            rpc_url: format!("{base_url}/{}/rpc/", config.database),
            base_url,
            http,
            config,
            next_id: AtomicU64::new(1),
            logins: AtomicU64::new(0),
            session: RwLock::new(None),
            login_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// A client that has logged in.
    ///
    /// # Errors
    /// As [`Client::new`] and [`Client::login`].
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let client = Self::new(config)?;
        client.login().await?;
        Ok(client)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// How many logins this client made (the first and every re-login).
    pub fn login_count(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<Session>> {
        self.session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The logged-in user's id, if logged in.
    pub fn user_id(&self) -> Option<i64> {
        self.current().map(|s| s.user_id)
    }

    /// The call context of the session (company, employee, language), if logged in.
    pub fn context(&self) -> Option<Map<String, Value>> {
        self.current().map(|s| s.context.clone())
    }

    /// `common.server.version`, without logging in.
    ///
    /// # Errors
    /// Transport, HTTP and shape errors.
    pub async fn server_version(&self) -> Result<String> {
        const METHOD: &str = "common.server.version";
        let url = format!("{}/rpc/", self.base_url);
        let result = self.post(&url, METHOD, Vec::new(), None).await?;
        result.as_str().map(str::to_owned).ok_or_else(|| {
            Error::malformed(METHOD, format!("expected a version string, got {result}"))
        })
    }

    /// Logs in (again) and loads the context from the user's preferences.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login is refused, [`Error::Malformed`] when the answer
    /// has the wrong shape or the user has no company.
    pub async fn login(&self) -> Result<()> {
        let _gate = self.login_gate.lock().await;
        self.login_locked().await
    }

    async fn login_locked(&self) -> Result<()> {
        const LOGIN: &str = "common.db.login";
        const PREFERENCES: &str = "model.res.user.get_preferences";
        let params = vec![
            json!(self.config.login),
            json!({"password": self.config.password.expose()}),
            json!(self.config.language),
        ];
        let answer = match self.post(&self.rpc_url, LOGIN, params, None).await {
            Err(Error::Http { status: 401, .. }) => {
                return Err(Error::Auth {
                    method: LOGIN.to_owned(),
                    message: format!("Tryton refused the login `{}`", self.config.login),
                });
            }
            other => other?,
        };
        let parts = answer.as_array().ok_or_else(|| {
            Error::malformed(
                LOGIN,
                format!("expected [user_id, session, …], got {answer}"),
            )
        })?;
        let user_id = parts.first().and_then(Value::as_i64).ok_or_else(|| {
            Error::malformed(
                LOGIN,
                format!("first element should be the user id, got {answer}"),
            )
        })?;
        let token = parts.get(1).and_then(Value::as_str).ok_or_else(|| {
            Error::malformed(LOGIN, "second element should be the session key".to_owned())
        })?;
        let credentials = format!("{}:{user_id}:{token}", self.config.login);
        let header = format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let preferences = self
            .post(
                &self.rpc_url,
                PREFERENCES,
                vec![json!(true), json!({})],
                Some(&header),
            )
            .await?;
        let Value::Object(preferences) = preferences else {
            return Err(Error::malformed(
                PREFERENCES,
                "expected an object of preferences",
            ));
        };
        let context: Map<String, Value> = CONTEXT_KEYS
            .iter()
            .filter_map(|key| {
                preferences
                    .get(*key)
                    .map(|v| ((*key).to_owned(), v.clone()))
            })
            .collect();
        if !context.get("company").is_some_and(Value::is_i64) {
            return Err(Error::malformed(
                PREFERENCES,
                format!(
                    "user `{}` has no company in its preferences; give it one in Tryton",
                    self.config.login
                ),
            ));
        }
        let generation = self.logins.fetch_add(1, Ordering::Relaxed) + 1;
        *self
            .session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(Session {
            user_id,
            header,
            context,
            generation,
        }));
        tracing::debug!(login = %self.config.login, user_id, "Logged in to Tryton.");
        Ok(())
    }

    async fn session(&self) -> Result<Arc<Session>> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let _gate = self.login_gate.lock().await;
        if let Some(session) = self.current() {
            return Ok(session);
        }
        self.login_locked().await?;
        self.current().ok_or_else(|| Error::Auth {
            method: "common.db.login".to_owned(),
            message: "no session after login".to_owned(),
        })
    }

    /// Logs in again unless another call already did since `stale` was issued.
    async fn relogin(&self, stale: u64) -> Result<()> {
        let _gate = self.login_gate.lock().await;
        if self.current().is_some_and(|s| s.generation != stale) {
            return Ok(());
        }
        tracing::info!(login = %self.config.login, "Tryton session expired; logging in again.");
        self.login_locked().await
    }

    /// Logs out on the server and forgets the session. The next call logs in again.
    ///
    /// # Errors
    /// Transport and HTTP errors of `common.db.logout`.
    pub async fn logout(&self) -> Result<()> {
        let Some(session) = self.current() else {
            return Ok(());
        };
        *self
            .session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.post(
            &self.rpc_url,
            "common.db.logout",
            Vec::new(),
            Some(&session.header),
        )
        .await
        .map(drop)
    }

    /// Calls `method` with `params` as they are (no context added), logged in, re-logging in
    /// once on HTTP 401.
    ///
    /// # Errors
    /// Every [`Error`] variant; see the module docs.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        let session = self.session().await?;
        match self
            .post(&self.rpc_url, method, params.clone(), Some(&session.header))
            .await
        {
            Err(Error::Http { status: 401, .. }) => {
                self.relogin(session.generation).await?;
                let fresh = self.session().await?;
                match self
                    .post(&self.rpc_url, method, params, Some(&fresh.header))
                    .await
                {
                    Err(Error::Http { status: 401, .. }) => Err(Error::Auth {
                        method: method.to_owned(),
                        message: "session refused again right after a fresh login".to_owned(),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    fn accepted(&self, warning: &str) -> bool {
        self.config.accepted_warnings.iter().any(|accepted| {
            warning == accepted
                || warning
                    .rsplit_once('.')
                    .is_some_and(|(_, suffix)| suffix == accepted)
        })
    }

    /// The session context merged with `extra`.
    async fn context_with(&self, extra: Option<&Map<String, Value>>) -> Result<Value> {
        let mut context = self.session().await?.context.clone();
        if let Some(extra) = extra {
            for (key, value) in extra {
                context.insert(key.clone(), value.clone());
            }
        }
        Ok(Value::Object(context))
    }

    /// Calls `<prefix>.<name>` with `args` followed by the context, skipping accepted
    /// warnings.
    async fn call_with_context(
        &self,
        method: &str,
        args: Vec<Value>,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Value> {
        let mut skipped = 0;
        loop {
            let mut params = args.clone();
            params.push(self.context_with(extra).await?);
            match self.call(method, params).await {
                Err(Error::Warning { name, .. })
                    if self.accepted(&name) && skipped < MAX_WARNING_SKIPS =>
                {
                    skipped += 1;
                    tracing::info!(method, warning = %name, "Skipping an accepted Tryton warning.");
                    let context = self.context_with(None).await?;
                    self.call(
                        "model.res.user.warning.skip",
                        vec![json!(name), json!(false), context],
                    )
                    .await?;
                }
                other => return other,
            }
        }
    }

    /// Calls `model.<model>.<method>` with `args` and the context (plus `extra` keys).
    ///
    /// # Errors
    /// Every [`Error`] variant; see the module docs.
    pub async fn model(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Value> {
        self.call_with_context(&format!("model.{model}.{method}"), args, extra)
            .await
    }

    fn ids_of(method: &str, value: &Value) -> Result<Vec<i64>> {
        let list = value.as_array().ok_or_else(|| {
            Error::malformed(
                method,
                format!(
                    "expected a list of ids, got {}",
                    truncate(&value.to_string(), 80)
                ),
            )
        })?;
        list.iter()
            .map(|v| {
                v.as_i64().ok_or_else(|| {
                    Error::malformed(method, format!("expected a list of ids, found element {v}"))
                })
            })
            .collect()
    }

    fn records_of(method: &str, value: Value) -> Result<Vec<Record>> {
        let Value::Array(items) = value else {
            return Err(Error::malformed(
                method,
                format!(
                    "expected a list of records, got {}",
                    truncate(&value.to_string(), 80)
                ),
            ));
        };
        let method: Arc<str> = Arc::from(method);
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::Object(fields) => Ok(Record::new(method.clone(), fields)),
                other => Err(Error::malformed(
                    &method,
                    format!("element {index} should be a record object, got {other}"),
                )),
            })
            .collect()
    }

    /// `search`: ids of the records matching `domain`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn search(
        &self,
        model: &str,
        domain: Value,
        offset: u64,
        limit: Option<u64>,
        order: Option<Value>,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Vec<i64>> {
        let args = vec![
            domain,
            json!(offset),
            json!(limit),
            order.unwrap_or(Value::Null),
        ];
        let result = self.model(model, "search", args, extra).await?;
        Self::ids_of(&format!("model.{model}.search"), &result)
    }

    /// `search_read`: the `fields` of the records matching `domain`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    #[allow(clippy::too_many_arguments)] // mirrors Tryton's positional signature
    pub async fn search_read(
        &self,
        model: &str,
        domain: Value,
        offset: u64,
        limit: Option<u64>,
        order: Option<Value>,
        fields: &[&str],
        extra: Option<&Map<String, Value>>,
    ) -> Result<Vec<Record>> {
        let args = vec![
            domain,
            json!(offset),
            json!(limit),
            order.unwrap_or(Value::Null),
            json!(fields),
        ];
        let result = self.model(model, "search_read", args, extra).await?;
        Self::records_of(&format!("model.{model}.search_read"), result)
    }

    /// `read`: the `fields` of the records `ids` (in Tryton's order, which follows `ids`).
    ///
    /// # Errors
    /// Every [`Error`] variant; a missing id is a `UserError`.
    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
        extra: Option<&Map<String, Value>>,
    ) -> Result<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let method = format!("model.{model}.read");
        let result = self
            .model(model, "read", vec![json!(ids), json!(fields)], extra)
            .await?;
        let records = Self::records_of(&method, result)?;
        if records.len() != ids.len() {
            return Err(Error::malformed(
                &method,
                format!("asked for {} records, got {}", ids.len(), records.len()),
            ));
        }
        Ok(records)
    }

    /// `create`: ids of the new records, one per value object.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn create(
        &self,
        model: &str,
        values: Vec<Value>,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Vec<i64>> {
        let method = format!("model.{model}.create");
        if let Some(bad) = values.iter().find(|v| !is_json_object(v)) {
            return Err(Error::Config(format!(
                "{method}: values must be objects, got {bad}"
            )));
        }
        let count = values.len();
        let result = self
            .model(model, "create", vec![Value::Array(values)], extra)
            .await?;
        let ids = Self::ids_of(&method, &result)?;
        if ids.len() != count {
            return Err(Error::malformed(
                &method,
                format!("created {count} records, got {} ids", ids.len()),
            ));
        }
        Ok(ids)
    }

    /// `write`: sets `values` on `ids`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn write(
        &self,
        model: &str,
        ids: &[i64],
        values: Value,
        extra: Option<&Map<String, Value>>,
    ) -> Result<()> {
        self.model(model, "write", vec![json!(ids), values], extra)
            .await
            .map(drop)
    }

    /// `delete`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn delete(
        &self,
        model: &str,
        ids: &[i64],
        extra: Option<&Map<String, Value>>,
    ) -> Result<()> {
        self.model(model, "delete", vec![json!(ids)], extra)
            .await
            .map(drop)
    }

    /// A workflow button (`quote`, `confirm`, `assign_try`, `post`, …) on `ids`; returns
    /// what the button returns (usually null).
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn button(
        &self,
        model: &str,
        button: &str,
        ids: &[i64],
        extra: Option<&Map<String, Value>>,
    ) -> Result<Value> {
        self.model(model, button, vec![json!(ids)], extra).await
    }

    /// `wizard.<name>.create`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn wizard_create(
        &self,
        name: &str,
        extra: Option<&Map<String, Value>>,
    ) -> Result<WizardSession> {
        let method = format!("wizard.{name}.create");
        let result = self.call_with_context(&method, Vec::new(), extra).await?;
        let parts = result.as_array().filter(|p| p.len() >= 3).ok_or_else(|| {
            Error::malformed(
                &method,
                format!("expected [session, start, end], got {result}"),
            )
        })?;
        match (parts[0].as_i64(), parts[1].as_str(), parts[2].as_str()) {
            (Some(id), Some(start), Some(end)) => Ok(WizardSession {
                id,
                start_state: start.to_owned(),
                end_state: end.to_owned(),
            }),
            _ => Err(Error::malformed(
                &method,
                format!("expected [session id, start state, end state], got {result}"),
            )),
        }
    }

    /// `wizard.<name>.execute`: runs `state` with the form `data`; returns the answer
    /// (`{"view": …}`, `{"actions": …}` or `{}`).
    ///
    /// # Errors
    /// Every [`Error`] variant; an answer that is not an object is malformed.
    pub async fn wizard_execute(
        &self,
        name: &str,
        session: &WizardSession,
        data: Value,
        state: &str,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>> {
        let method = format!("wizard.{name}.execute");
        let result = self
            .call_with_context(&method, vec![json!(session.id), data, json!(state)], extra)
            .await?;
        match result {
            Value::Object(map) => Ok(map),
            other => Err(Error::malformed(
                &method,
                format!(
                    "expected an object, got {}",
                    truncate(&other.to_string(), 80)
                ),
            )),
        }
    }

    /// `wizard.<name>.delete`.
    ///
    /// # Errors
    /// Every [`Error`] variant.
    pub async fn wizard_delete(
        &self,
        name: &str,
        session: &WizardSession,
        extra: Option<&Map<String, Value>>,
    ) -> Result<()> {
        let method = format!("wizard.{name}.delete");
        self.call_with_context(&method, vec![json!(session.id)], extra)
            .await
            .map(drop)
    }

    /// One HTTP exchange.
    async fn post(
        &self,
        url: &str,
        method: &str,
        params: Vec<Value>,
        auth: Option<&str>,
    ) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"id": id, "method": method, "params": params});
        let mut request = self.http.post(url).json(&body);
        if let Some(auth) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let transport = |e: reqwest::Error| Error::Transport {
            method: method.to_owned(),
            timeout: e.is_timeout(),
            message: if e.is_timeout() {
                format!("no answer within {:?}", self.config.timeout)
            } else if e.is_connect() {
                format!("cannot connect to {}: {e}", self.base_url)
            } else {
                format!("request failed: {e}")
            },
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            return Err(Error::Http {
                method: method.to_owned(),
                status: status.as_u16(),
                retry_after,
                body: truncate(text.trim(), 300),
            });
        }
        let bytes = response.bytes().await.map_err(transport)?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::malformed(
                method,
                format!(
                    "not JSON ({e}): {}",
                    truncate(&String::from_utf8_lossy(&bytes), 80)
                ),
            )
        })?;
        let Value::Object(mut answer) = answer else {
            return Err(Error::malformed(
                method,
                format!(
                    "expected a JSON-RPC object, got {}",
                    truncate(&answer.to_string(), 80)
                ),
            ));
        };
        match answer.get("id") {
            Some(got) if got.as_u64() == Some(id) => {}
            got => {
                return Err(Error::malformed(
                    method,
                    format!(
                        "answer id {} does not match request id {id}",
                        got.map_or_else(|| "(missing)".to_owned(), Value::to_string)
                    ),
                ));
            }
        }
        if let Some(error) = answer.remove("error").filter(|e| !e.is_null()) {
            return Err(parse_error(method, &error));
        }
        answer.remove("result").ok_or_else(|| {
            Error::malformed(method, "answer has neither `result` nor `error`".to_owned())
        })
    }
}

/// Maps Tryton's `error` member to an [`Error`].
pub(crate) fn parse_error(method: &str, error: &Value) -> Error {
    let text = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    let Some(parts) = error.as_array() else {
        return Error::malformed(
            method,
            format!(
                "`error` should be [name, details], got {}",
                truncate(&error.to_string(), 120)
            ),
        );
    };
    let name = parts.first().and_then(Value::as_str).unwrap_or_default();
    let details = parts.get(1);
    let args = details.and_then(Value::as_array);
    let arg = |i: usize| text(args.and_then(|a| a.get(i)));
    match name {
        "UserError" => Error::User {
            method: method.to_owned(),
            message: arg(0),
            description: arg(1),
        },
        "UserWarning" => Error::Warning {
            method: method.to_owned(),
            name: arg(0),
            message: arg(1),
        },
        "ConcurrencyException" => Error::Concurrency {
            method: method.to_owned(),
            message: text(details),
        },
        "LoginException" => Error::Auth {
            method: method.to_owned(),
            message: format!("login needs more than a password: {}", arg(1)),
        },
        "" => Error::malformed(
            method,
            format!("`error` has no name: {}", truncate(&error.to_string(), 120)),
        ),
        other => Error::Server {
            method: method.to_owned(),
            // The second element is a traceback, or empty; keep its last line only.
            message: {
                let detail = text(details);
                let last = detail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                if last.is_empty() {
                    other.to_owned()
                } else {
                    format!("{other} ({})", truncate(last.trim(), 200))
                }
            },
        },
    }
}
