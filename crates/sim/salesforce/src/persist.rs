//! Resumable runs: when a data folder is configured, the whole org — records of every object
//! (deleted ones too, for `queryAll`), id and auto-number counters, fields added at run time,
//! the event log (retained events, replay ids, the trimmed window, schemas, the generator behind
//! replay-id steps), access and refresh tokens, JWT keys added at run time, API usage and the
//! clock offset — is kept in `<data dir>/org.json` and restored at start.
//!
//! Durable answers: an answer (REST, OAuth, admin) and a Pub/Sub delivery leave only once the
//! org they reflect is on disk ([`Persister::wait_durable`], [`durable_answers`]), so a killed
//! simulator never forgets a record, an id or an event it told anyone about. Group commit: one
//! write at a time; every answer that comes to wait during a write is covered by the next one.
//!
//! [`Persister::save_if_changed`] clones a [`Snapshot`] under the locks (one at a time, never
//! nested), then encodes and writes it without them. Writes are atomic: a temporary file is
//! written and fsynced, renamed over `org.json`, then the folder is fsynced, so a crash leaves
//! either the previous or the new state, never a torn file. [`run`] saves whenever an answer
//! waits and every [`SAVE_INTERVAL`] when something changed; the simulator also saves on
//! shutdown.
//!
//! Not kept: open query cursors (their locators answer `INVALID_QUERY_LOCATOR` after a restart),
//! fault knobs and the listeners' ports (both come from the configuration).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cdc::{EventsSnapshot, StoredEvent};
use crate::clock::Clock;
use crate::config::Config;
use crate::ids;
use crate::meta::{self, Metadata};
use crate::state::{AuthState, Session, Shared, Usage, lock};
use crate::store::{Org, OrgSnapshot, Record};
use crate::value::{Value, format_date, parse_date};

/// Name of the state file inside the data folder.
pub const FILE_NAME: &str = "org.json";

/// How often [`run`] looks for changes to save.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// Version of the file layout; files of other versions are refused.
const FORMAT: u32 = 1;

/// How far record numbers and auto-numbers skip ahead after an unclean stop: changes made after
/// the last save were never acknowledged, but their ids and numbers must not name new records.
const ID_SKIP: u64 = 100_000;

/// How far replay ids skip ahead after an unclean stop, so a replay id handed out after the
/// last save never names a different event (a subscriber holding one resumes after it).
const REPLAY_SKIP: u64 = 1_000_000;

/// Why the org could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The state file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The state file is not a saved org this simulator understands.
    #[error("{path} is not a usable saved org: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The state could not be encoded.
    #[error("cannot encode the org: {0}")]
    Encode(String),
    /// The state file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The thread that saves stopped unexpectedly.
    #[error("the saving thread stopped: {0}")]
    Thread(String),
}

/// A stored field value: externally tagged so no type is guessed back (nulls are left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum StoredValue {
    #[serde(rename = "t")]
    Text(String),
    #[serde(rename = "n")]
    Number(Decimal),
    #[serde(rename = "b")]
    Bool(bool),
    #[serde(rename = "d")]
    Date(String),
    #[serde(rename = "ms")]
    DateTime(i64),
}

/// The state file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgFile {
    format: u32,
    /// Written by a graceful shutdown; `false` while the simulator runs.
    clean: bool,
    /// Simulator clock at the save, ms (the restored clock never goes back past it).
    saved_at_ms: i64,
    clock_offset_ms: i64,
    org_id: String,
    user_id: String,
    standard_pricebook: String,
    objects: BTreeMap<String, ObjectFile>,
    events: EventsFile,
    auth: AuthFile,
    usage: UsageFile,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectFile {
    next_id: u64,
    autonumber: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added_fields: Vec<AddedField>,
    /// 15-character id → field name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    records: BTreeMap<String, BTreeMap<String, StoredValue>>,
}

/// A custom field added at run time (`POST /__sim/schema/fields`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddedField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    external_id: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsFile {
    latest: u64,
    trimmed_upto: u64,
    commit_number: i64,
    /// 64 hex digits.
    rng_seed: String,
    /// Decimal text (a u128 does not fit every JSON reader).
    rng_word_pos: String,
    schemas: BTreeMap<String, String>,
    events: Vec<EventFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    replay_id: u64,
    entity: String,
    change: bool,
    schema_id: String,
    event_id: String,
    at_ms: i64,
    /// Avro binary, base64.
    payload: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    sessions: BTreeMap<String, SessionFile>,
    refresh_tokens: BTreeMap<String, String>,
    jwt_keys: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    expires_ms: i64,
    user_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageFile {
    used: u64,
    max: u64,
    /// The configured limit when saved: a different configured limit at restart wins over
    /// `max` (which the admin API may have changed).
    configured_max: u64,
    refused: u64,
    by_kind: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
}

/// Everything that is saved, cloned under the locks.
pub struct Snapshot {
    org: OrgSnapshot,
    auth: AuthState,
    usage: Usage,
    clock_offset_ms: i64,
    now_ms: i64,
}

impl Snapshot {
    /// Clones the state of `shared`, taking each lock briefly and one at a time.
    pub fn take(shared: &Shared) -> Snapshot {
        let org = lock(&shared.org).snapshot();
        let auth = lock(&shared.auth).clone();
        let usage = lock(&shared.usage).clone();
        Snapshot {
            org,
            auth,
            usage,
            clock_offset_ms: shared.clock.offset_ms(),
            now_ms: shared.clock.now_ms(),
        }
    }
}

fn stored(v: &Value) -> Option<StoredValue> {
    Some(match v {
        Value::Null => return None,
        Value::Text(s) => StoredValue::Text(s.clone()),
        Value::Number(n) => StoredValue::Number(*n),
        Value::Bool(b) => StoredValue::Bool(*b),
        Value::Date(d) => StoredValue::Date(format_date(*d)),
        Value::DateTime(ms) => StoredValue::DateTime(*ms),
    })
}

fn loaded(v: StoredValue) -> Result<Value, String> {
    Ok(match v {
        StoredValue::Text(s) => Value::Text(s),
        StoredValue::Number(n) => Value::Number(n),
        StoredValue::Bool(b) => Value::Bool(b),
        StoredValue::Date(d) => {
            Value::Date(parse_date(&d).ok_or_else(|| format!("bad date {d:?}"))?)
        }
        StoredValue::DateTime(ms) => Value::DateTime(ms),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// Encodes a snapshot as the state file's bytes.
///
/// # Errors
/// [`PersistError::Encode`] when serialization fails.
pub fn encode(snap: &Snapshot, configured_max: u64, clean: bool) -> Result<Vec<u8>, PersistError> {
    let standard = meta::standard();
    let o = &snap.org;
    let mut objects = BTreeMap::new();
    for (obj, def) in o.meta.objects.iter().enumerate() {
        let added_fields = def
            .fields
            .iter()
            .filter(|fd| {
                standard
                    .object(&def.name)
                    .is_none_or(|s| s.field(&fd.name).is_none())
            })
            .map(|fd| AddedField {
                name: fd.name.clone(),
                ty: fd.ty.name().to_string(),
                external_id: fd.external_id,
            })
            .collect();
        let records = o.tables[obj]
            .iter()
            .map(|(id15, rec)| {
                let fields = rec
                    .values()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| Some((def.fields.get(i)?.name.clone(), stored(v)?)))
                    .collect();
                (id15.clone(), fields)
            })
            .collect();
        objects.insert(
            def.name.clone(),
            ObjectFile {
                next_id: o.next_id[obj],
                autonumber: o.autonumber[obj],
                added_fields,
                records,
            },
        );
    }
    let e = &o.events;
    let file = OrgFile {
        format: FORMAT,
        clean,
        saved_at_ms: snap.now_ms,
        clock_offset_ms: snap.clock_offset_ms,
        org_id: o.org_id.clone(),
        user_id: o.user_id.clone(),
        standard_pricebook: o.standard_pricebook.clone(),
        objects,
        events: EventsFile {
            latest: e.latest,
            trimmed_upto: e.trimmed_upto,
            commit_number: e.commit_number,
            rng_seed: hex(&e.rng_seed),
            rng_word_pos: e.rng_word_pos.to_string(),
            schemas: e.schemas.clone(),
            events: e
                .events
                .iter()
                .map(|ev| EventFile {
                    replay_id: ev.replay_id,
                    entity: ev.entity.clone(),
                    change: ev.change,
                    schema_id: ev.schema_id.clone(),
                    event_id: ev.event_id.clone(),
                    at_ms: ev.at_ms,
                    payload: STANDARD.encode(&ev.payload),
                })
                .collect(),
        },
        auth: AuthFile {
            sessions: snap
                .auth
                .sessions
                .iter()
                .map(|(t, s)| {
                    (
                        t.clone(),
                        SessionFile {
                            expires_ms: s.expires_ms,
                            user_id: s.user_id.clone(),
                        },
                    )
                })
                .collect(),
            refresh_tokens: snap
                .auth
                .refresh_tokens
                .iter()
                .map(|(t, u)| (t.clone(), u.clone()))
                .collect(),
            jwt_keys: snap.auth.jwt_keys.clone(),
        },
        usage: UsageFile {
            used: snap.usage.used,
            max: snap.usage.max,
            configured_max,
            refused: snap.usage.refused,
            by_kind: snap.usage.by_kind.clone(),
            faults: snap.usage.faults.clone(),
        },
    };
    serde_json::to_vec(&file).map_err(|e| PersistError::Encode(e.to_string()))
}

/// A restored org and the state around it, ready to become the simulator's shared state.
pub struct Restored {
    /// Records, metadata and events.
    pub org: Org,
    /// Sessions, refresh tokens, JWT keys.
    pub auth: AuthState,
    /// API usage.
    pub usage: Usage,
    /// The simulator clock, resumed.
    pub clock: Clock,
    /// Whether the simulator had stopped gracefully (else changes after the last save are
    /// lost and counters skipped ahead).
    pub clean: bool,
}

fn add_saved_fields(meta: &mut Metadata, name: &str, added: &[AddedField]) -> Result<(), String> {
    let Some(obj) = meta.object_index(name) else {
        return Ok(());
    };
    for f in added {
        if meta.objects[obj].field(&f.name).is_some() {
            continue;
        }
        let ty = meta::parse_type(&f.ty)
            .ok_or_else(|| format!("field {name}.{} has unknown type {:?}", f.name, f.ty))?;
        let mut field = meta::custom_field(&f.name, ty);
        if f.external_id {
            field.external_id = true;
            field.unique = true;
        }
        meta.objects[obj].add_field(field);
    }
    Ok(())
}

/// Rebuilds the state a file describes, for a simulator configured with `config`.
///
/// # Errors
/// A message naming what does not fit (unknown format, bad ids, out-of-order replay ids, …).
fn restore(file: OrgFile, config: &Config) -> Result<Restored, String> {
    if file.format != FORMAT {
        return Err(format!(
            "format {} is not supported (expected {FORMAT})",
            file.format
        ));
    }
    let mut meta = meta::standard();
    for (name, o) in &file.objects {
        add_saved_fields(&mut meta, name, &o.added_fields)?;
    }
    let n = meta.objects.len();
    let mut tables = vec![BTreeMap::new(); n];
    let mut next_id = vec![1; n];
    let mut autonumber = vec![0; n];
    for (name, o) in file.objects {
        let Some(obj) = meta.object_index(&name) else {
            tracing::warn!(object = %name, records = o.records.len(), "Saved object is no longer declared; its records are dropped");
            continue;
        };
        next_id[obj] = o.next_id;
        autonumber[obj] = o.autonumber;
        let def = &meta.objects[obj];
        let mut unknown = std::collections::BTreeSet::new();
        for (id15, fields) in o.records {
            let mut rec = Record::default();
            for (field, v) in fields {
                match def.field_index(&field) {
                    Some(i) => rec.set(i, loaded(v).map_err(|e| format!("{name}.{field}: {e}"))?),
                    None => {
                        unknown.insert(field);
                    }
                }
            }
            tables[obj].insert(id15, rec);
        }
        if !unknown.is_empty() {
            tracing::warn!(object = %name, fields = ?unknown, "Saved fields are no longer declared; their values are dropped");
        }
    }
    let mut e = file.events;
    if !file.clean {
        for n in next_id.iter_mut().chain(autonumber.iter_mut()) {
            *n = n.saturating_add(ID_SKIP);
        }
        e.latest = e.latest.saturating_add(REPLAY_SKIP);
    }
    let rng_seed = unhex32(&e.rng_seed).ok_or("events.rng_seed must be 64 hex digits")?;
    let rng_word_pos = e
        .rng_word_pos
        .parse::<u128>()
        .map_err(|_| "events.rng_word_pos must be a decimal number")?;
    let mut events = Vec::with_capacity(e.events.len());
    for ev in e.events {
        let payload = STANDARD
            .decode(&ev.payload)
            .map_err(|err| format!("event {}: payload is not base64: {err}", ev.replay_id))?;
        events.push(Arc::new(StoredEvent {
            replay_id: ev.replay_id,
            entity: ev.entity,
            change: ev.change,
            schema_id: ev.schema_id,
            payload,
            event_id: ev.event_id,
            at_ms: ev.at_ms,
        }));
    }
    let retention_ms =
        i64::try_from(config.retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut org = Org::restore(
        OrgSnapshot {
            meta,
            tables,
            org_id: file.org_id,
            user_id: file.user_id,
            standard_pricebook: file.standard_pricebook,
            next_id,
            autonumber,
            events: EventsSnapshot {
                events,
                schemas: e.schemas,
                latest: e.latest,
                trimmed_upto: e.trimmed_upto,
                commit_number: e.commit_number,
                rng_seed,
                rng_word_pos,
            },
        },
        retention_ms,
    )?;
    let user_ok = |u: &str| ids::parse(u).is_some_and(|id| org.locate(&id).is_some());
    let mut sessions = std::collections::HashMap::new();
    for (token, s) in file.auth.sessions {
        if !user_ok(&s.user_id) {
            return Err(format!("a session acts as unknown user {}", s.user_id));
        }
        sessions.insert(
            token,
            Session {
                expires_ms: s.expires_ms,
                user_id: s.user_id,
            },
        );
    }
    if let Some((_, u)) = file.auth.refresh_tokens.iter().find(|(_, u)| !user_ok(u)) {
        return Err(format!("a refresh token acts as unknown user {u}"));
    }
    let mut jwt_keys = config.jwt_keys.clone();
    for k in file.auth.jwt_keys {
        if !jwt_keys.contains(&k) {
            jwt_keys.push(k);
        }
    }
    let u = file.usage;
    let usage = Usage {
        used: u.used,
        max: if u.configured_max == config.daily_api_limit {
            u.max
        } else {
            config.daily_api_limit
        },
        by_kind: u.by_kind,
        refused: u.refused,
        faults: u.faults,
    };
    let clock = Clock::resumed(file.clock_offset_ms, file.saved_at_ms);
    org.events.expire(clock.now_ms());
    Ok(Restored {
        org,
        auth: AuthState {
            sessions,
            refresh_tokens: file.auth.refresh_tokens.into_iter().collect(),
            jwt_keys,
            revision: 0,
        },
        usage,
        clock,
        clean: file.clean,
    })
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the folder.
///
/// # Errors
/// [`PersistError::Write`] naming the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let tmp = path.with_extension("json.tmp");
    let fail = |p: &Path| {
        let p = p.to_path_buf();
        move |source| PersistError::Write { path: p, source }
    };
    {
        // Owner-only: the org holds customer records and access tokens.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(fail(&tmp))?;
        f.write_all(bytes).map_err(fail(&tmp))?;
        f.sync_all().map_err(fail(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(fail(path))?;
    // Make the rename itself durable (directories can only be opened for this on Unix).
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail(dir))?;
    }
    Ok(())
}

type Fingerprint = ((u64, u64), u64, (u64, u64, u64, u64, u64), i64);

/// What answers wait for: moves whenever records, events or sessions change (each part only
/// grows, so their sum does too).
fn durable_mark(shared: &Shared) -> u64 {
    let (records, events) = lock(&shared.org).revision();
    let auth = lock(&shared.auth).revision;
    records.wrapping_add(events).wrapping_add(auth)
}

fn fingerprint(shared: &Shared) -> Fingerprint {
    let org = lock(&shared.org).revision();
    let auth = lock(&shared.auth).revision;
    let usage = lock(&shared.usage).fingerprint();
    (org, auth, usage, shared.clock.offset_ms())
}

/// Loads and saves one org's state file.
pub struct Persister {
    path: PathBuf,
    configured_max: u64,
    /// What the file holds (state and clean flag); also serializes writers (the periodic
    /// saver and shutdown).
    saved: Mutex<Option<(Fingerprint, bool)>>,
    /// The newest [`durable_mark`] known to be on disk.
    durable: watch::Sender<u64>,
    /// The newest mark an answer waits for (the saver's demand).
    wanted: watch::Sender<u64>,
    /// Cancelled when [`run`] ends: waiting answers are refused, never sent unsaved.
    stopped: CancellationToken,
}

impl Persister {
    /// A persister of `<dir>/org.json` for a simulator configured with `config`.
    pub fn new(dir: &Path, config: &Config) -> Persister {
        Persister {
            path: dir.join(FILE_NAME),
            configured_max: config.daily_api_limit,
            saved: Mutex::new(None),
            durable: watch::Sender::new(0),
            wanted: watch::Sender::new(0),
            stopped: CancellationToken::new(),
        }
    }

    /// Waits until the org as it is now is on disk. `false` when the saver stopped first: the
    /// caller must not acknowledge anything then.
    pub async fn wait_durable(&self, shared: &Shared) -> bool {
        let mark = durable_mark(shared);
        if *self.durable.borrow() >= mark {
            return true;
        }
        if self.stopped.is_cancelled() {
            return false;
        }
        raise(&self.wanted, mark);
        let mut durable = self.durable.subscribe();
        tokio::select! {
            reached = durable.wait_for(|d| *d >= mark) => reached.is_ok(),
            () = self.stopped.cancelled() => *self.durable.borrow() >= mark,
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state file; `None` when there is none yet.
    ///
    /// # Errors
    /// [`PersistError::Read`] or [`PersistError::Invalid`]: a damaged file stops the start
    /// rather than being silently replaced by an empty org.
    pub fn load(&self, config: &Config) -> Result<Option<Restored>, PersistError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PersistError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let invalid = |message: String| PersistError::Invalid {
            path: self.path.clone(),
            message,
        };
        let file: OrgFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        restore(file, config).map(Some).map_err(invalid)
    }

    /// Writes the state when it changed since the last write, or when the file's clean flag
    /// differs from `clean` (`true` only for the save of a graceful shutdown). Returns whether
    /// it wrote. Blocking: call it from a blocking thread.
    ///
    /// # Errors
    /// [`PersistError`] when encoding or writing fails (the next call tries again).
    pub fn save_if_changed(&self, shared: &Shared, clean: bool) -> Result<bool, PersistError> {
        let mut saved = lock(&self.saved);
        // Taken before the snapshot: a change racing with it makes the next call write again.
        let mark = durable_mark(shared);
        let now = fingerprint(shared);
        if *saved == Some((now, clean)) {
            raise(&self.durable, mark);
            return Ok(false);
        }
        let snap = Snapshot::take(shared);
        let bytes = encode(&snap, self.configured_max, clean)?;
        write_atomic(&self.path, &bytes)?;
        *saved = Some((now, clean));
        raise(&self.durable, mark);
        Ok(true)
    }

    /// [`Self::save_if_changed`] on a blocking thread.
    ///
    /// # Errors
    /// As [`Self::save_if_changed`].
    pub async fn save(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        clean: bool,
    ) -> Result<bool, PersistError> {
        let (p, s) = (Arc::clone(self), Arc::clone(shared));
        tokio::task::spawn_blocking(move || p.save_if_changed(&s, clean))
            .await
            .unwrap_or_else(|e| Err(PersistError::Thread(e.to_string())))
    }
}

/// Moves a watched mark up to `mark` (never down).
fn raise(sender: &watch::Sender<u64>, mark: u64) {
    sender.send_if_modified(|current| {
        let more = mark > *current;
        if more {
            *current = mark;
        }
        more
    });
}

/// Saves whenever an answer waits for a save and every [`SAVE_INTERVAL`] when the org changed,
/// until `stop` (no final save: the simulator's shutdown does that, a crash does not). A failed
/// save is retried; the waiting answers keep waiting meanwhile.
pub async fn run(persister: Arc<Persister>, shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SAVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut wanted = persister.wanted.subscribe();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = wanted.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        if let Err(error) = persister.save(&shared, false).await {
            tracing::error!(%error, "Could not save the simulated org");
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(RETRY_AFTER_FAILED_SAVE) => {}
            }
        }
    }
    persister.stopped.cancel();
}

/// Pause before saving again after a failed save.
const RETRY_AFTER_FAILED_SAVE: Duration = Duration::from_millis(200);

/// Middleware of the REST listeners: with a data folder, an answer leaves only once the org it
/// reflects is saved; `503 SERVER_UNAVAILABLE` when the simulator stops before that.
pub async fn durable_answers(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    let Some(persister) = &shared.persister else {
        return response;
    };
    if persister.wait_durable(&shared).await {
        return response;
    }
    let body = serde_json::json!([{
        "errorCode": "SERVER_UNAVAILABLE",
        "message": "The server is shutting down. Please try again.",
    }]);
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_stored_form() {
        let date = parse_date("2026-11-26").map(Value::Date);
        for v in [
            Some(Value::Text("2026-11-26".into())),
            Some(Value::Number(Decimal::new(1999, 2))),
            Some(Value::Bool(false)),
            date,
            Some(Value::DateTime(1_795_732_662_123)),
        ]
        .into_iter()
        .flatten()
        {
            let json = serde_json::to_string(&stored(&v)).unwrap_or_default();
            let back: Option<StoredValue> = serde_json::from_str(&json).ok();
            assert_eq!(back.map(loaded).and_then(Result::ok), Some(v), "{json}");
        }
        assert_eq!(stored(&Value::Null), None);
        // Exact decimals: the amount is text, not a double.
        assert_eq!(
            serde_json::to_string(&stored(&Value::Number(Decimal::new(10, 1)))).ok(),
            Some(r#"{"n":"1.0"}"#.to_string())
        );
    }

    #[test]
    fn seeds_survive_hex() {
        let seed: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7).unwrap_or(0));
        assert_eq!(unhex32(&hex(&seed)), Some(seed));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
    }

    #[test]
    fn an_org_survives_encode_and_restore() {
        let config = Config::default();
        let mut org = Org::new(
            meta::standard(),
            "Acme",
            "integration@crossdock.sim",
            1_700_000_000_000,
            crate::cdc::EventLog::new(7, 3_600_000),
        );
        let rep = org.ensure_user("demo.rep@crossdock.sim", 1_700_000_000_000);
        let snapshot = Snapshot {
            org: org.snapshot(),
            auth: AuthState::default(),
            usage: Usage::default(),
            clock_offset_ms: 0,
            now_ms: 1_700_000_000_000,
        };
        let bytes = encode(&snapshot, config.daily_api_limit, true).unwrap_or_default();
        let file: Result<OrgFile, _> = serde_json::from_slice(&bytes);
        let restored = file
            .map_err(|e| e.to_string())
            .and_then(|f| restore(f, &config));
        let restored = restored.as_ref().map(|r| &r.org);
        assert_eq!(
            restored.map(|o| o.counts()).ok(),
            Some(org.counts()),
            "the same records come back"
        );
        assert_eq!(
            restored
                .map(|o| o.find_user("DEMO.rep@crossdock.sim"))
                .ok()
                .flatten(),
            rep.ok()
        );
        assert_eq!(
            restored.map(|o| o.events.latest()).ok(),
            Some(org.events.latest())
        );
    }

    /// Prints how long the locked part (snapshot) and the unlocked parts (encode, restore) take
    /// for a large org.
    #[test]
    fn a_large_org_is_snapshotted_under_the_lock_in_milliseconds() {
        use std::time::Instant;

        use crate::store::Txn;

        let config = Config::default();
        let mut org = Org::new(
            meta::standard(),
            "Acme",
            "integration@crossdock.sim",
            1_700_000_000_000,
            crate::cdc::EventLog::new(7, i64::MAX),
        );
        let account = org.meta.object_index("Account").unwrap_or(0);
        let n = 20_000;
        for i in 0..n {
            let mut txn = Txn::begin(&mut org, 1_700_000_000_000 + i, String::new());
            let body = serde_json::json!({"Name": format!("Customer {i}"), "ERP_Customer_Number__c": format!("C-{i}"), "Credit_Limit__c": 1000.5});
            let created = body
                .as_object()
                .map(|b| txn.insert(account, b).is_ok())
                .unwrap_or(false);
            assert!(created);
            txn.commit();
        }
        let started = Instant::now();
        let snapshot = Snapshot {
            org: org.snapshot(),
            auth: AuthState::default(),
            usage: Usage::default(),
            clock_offset_ms: 0,
            now_ms: 1_700_000_000_000,
        };
        let locked = started.elapsed();
        let started = Instant::now();
        let bytes = encode(&snapshot, config.daily_api_limit, true).unwrap_or_default();
        let encoded = started.elapsed();
        let started = Instant::now();
        let file: Result<OrgFile, _> = serde_json::from_slice(&bytes);
        let restored = file
            .map_err(|e| e.to_string())
            .and_then(|f| restore(f, &config));
        let loaded = started.elapsed();
        assert_eq!(
            restored
                .map(|r| r.org.counts().get("Account").copied())
                .ok(),
            Some(Some(20_000))
        );
        println!(
            "{n} accounts + {} events: snapshot under the lock {:.1} ms, encode {:.0} ms, file {:.1} MB, decode + restore {:.0} ms",
            org.events.events().len(),
            locked.as_secs_f64() * 1e3,
            encoded.as_secs_f64() * 1e3,
            bytes.len() as f64 / 1e6,
            loaded.as_secs_f64() * 1e3
        );
    }

    #[test]
    fn damaged_files_are_refused_with_a_reason() {
        let config = Config::default();
        let wrong_format: Result<OrgFile, _> = serde_json::from_str(
            r#"{"format":99,"clean":true,"saved_at_ms":0,"clock_offset_ms":0,"org_id":"","user_id":"","standard_pricebook":"","objects":{},
            "events":{"latest":1,"trimmed_upto":0,"commit_number":0,"rng_seed":"","rng_word_pos":"0","schemas":{},"events":[]},
            "auth":{"sessions":{},"refresh_tokens":{},"jwt_keys":[]},
            "usage":{"used":0,"max":1,"configured_max":1,"refused":0,"by_kind":{},"faults":{}}}"#,
        );
        let err = wrong_format
            .map_err(|e| e.to_string())
            .and_then(|f| restore(f, &config).map(|_| ()));
        assert!(err.is_err_and(|e| e.contains("format 99")));
        let unknown_key: Result<OrgFile, _> = serde_json::from_str(r#"{"format":1,"bogus":1}"#);
        assert!(unknown_key.is_err());
    }
}
