//! Change Data Capture and platform events: Avro schemas derived from the org metadata, the
//! change events every committed write produces, and the retained event log with replay ids.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value as Json, json};
use tokio::sync::watch;

use crate::avro::{self, Reader};
use crate::meta::{FieldType, Kind, Metadata, ObjectDef};
use crate::value::{Value, date_ms};

/// `ChangeEventHeader.changeType` (enum symbols in schema order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Record created.
    Create,
    /// Record deleted.
    Delete,
    /// Gap: create without details.
    GapCreate,
    /// Gap: delete without details.
    GapDelete,
    /// Too many changes in one transaction.
    GapOverflow,
    /// Gap: undelete without details.
    GapUndelete,
    /// Gap: update without details.
    GapUpdate,
    /// Record undeleted.
    Undelete,
    /// Record updated.
    Update,
}

/// Enum symbols of `ChangeType`, in the order of the schema.
pub const CHANGE_TYPES: [&str; 9] = [
    "CREATE",
    "DELETE",
    "GAP_CREATE",
    "GAP_DELETE",
    "GAP_OVERFLOW",
    "GAP_UNDELETE",
    "GAP_UPDATE",
    "UNDELETE",
    "UPDATE",
];

impl ChangeType {
    fn symbol_index(self) -> i64 {
        self as i64
    }

    /// Parses a change type symbol.
    pub fn parse(s: &str) -> Option<ChangeType> {
        Some(match s {
            "GAP_CREATE" => ChangeType::GapCreate,
            "GAP_UPDATE" => ChangeType::GapUpdate,
            "GAP_DELETE" => ChangeType::GapDelete,
            "GAP_UNDELETE" => ChangeType::GapUndelete,
            "GAP_OVERFLOW" => ChangeType::GapOverflow,
            _ => return None,
        })
    }
}

/// A change made inside a transaction, before it is committed.
#[derive(Debug, Clone)]
pub struct PendingChange {
    /// Object index.
    pub object: usize,
    /// 18-char record id.
    pub record_id: String,
    /// Kind of change.
    pub change_type: ChangeType,
    /// Field indexes (object numbering) that changed / are populated.
    pub changed: Vec<usize>,
    /// Field indexes set to null.
    pub nulled: Vec<usize>,
    /// Values to carry.
    pub values: Vec<(usize, Value)>,
}

/// One retained event.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Replay id.
    pub replay_id: u64,
    /// Entity (`Order`) or platform event (`Order_Shipped__e`).
    pub entity: String,
    /// Whether this is a change event (else a platform event).
    pub change: bool,
    /// Schema id of the payload.
    pub schema_id: String,
    /// Avro binary payload.
    pub payload: Vec<u8>,
    /// Event uuid.
    pub event_id: String,
    /// When it was stored (simulator clock, ms).
    pub at_ms: i64,
}

/// A Pub/Sub topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `/data/ChangeEvents`.
    AllChanges,
    /// `/data/<Entity>ChangeEvent`: the object's API name.
    Changes(String),
    /// `/event/<Name>__e`.
    Platform(String),
}

impl Topic {
    /// Whether `ev` belongs to this topic.
    pub fn matches(&self, ev: &StoredEvent) -> bool {
        match self {
            Topic::AllChanges => ev.change,
            Topic::Changes(entity) => ev.change && &ev.entity == entity,
            Topic::Platform(name) => !ev.change && &ev.entity == name,
        }
    }
}

/// Resolves a topic name against the metadata.
pub fn parse_topic(meta: &Metadata, name: &str) -> Option<Topic> {
    if name == "/data/ChangeEvents" {
        return Some(Topic::AllChanges);
    }
    if let Some(rest) = name.strip_prefix("/data/") {
        return meta
            .objects
            .iter()
            .find(|o| o.kind == Kind::SObject && o.change_event_name() == rest)
            .map(|o| Topic::Changes(o.name.clone()));
    }
    if let Some(rest) = name.strip_prefix("/event/") {
        return meta
            .objects
            .iter()
            .find(|o| o.kind == Kind::PlatformEvent && o.name == rest)
            .map(|o| Topic::Platform(o.name.clone()));
    }
    None
}

fn avro_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Boolean => "boolean",
        FieldType::Currency | FieldType::Double | FieldType::Percent => "double",
        FieldType::Int => "int",
        FieldType::Date | FieldType::DateTime => "long",
        _ => "string",
    }
}

fn avro_doc(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id | FieldType::Reference => "Data:EntityId",
        FieldType::Boolean => "Data:Switch",
        FieldType::Currency => "Data:Currency",
        FieldType::Double | FieldType::Int => "Data:Double",
        FieldType::Percent => "Data:Percent",
        FieldType::Date => "Data:DateOnly",
        FieldType::DateTime => "Data:DateTime",
        FieldType::Picklist => "Data:DynamicEnum",
        FieldType::TextArea => "Data:Text:MaxLength",
        _ => "Data:Text",
    }
}

fn header_schema() -> Json {
    let strings = json!({"type": "array", "items": "string"});
    json!({
        "name": "ChangeEventHeader",
        "type": {
            "type": "record",
            "name": "ChangeEventHeader",
            "fields": [
                {"name": "entityName", "type": "string"},
                {"name": "recordIds", "type": strings},
                {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": "com.sforce.eventbus", "symbols": CHANGE_TYPES}},
                {"name": "changeOrigin", "type": "string"},
                {"name": "transactionKey", "type": "string"},
                {"name": "sequenceNumber", "type": "int"},
                {"name": "commitTimestamp", "type": "long"},
                {"name": "commitNumber", "type": "long"},
                {"name": "commitUser", "type": "string"},
                {"name": "nulledFields", "type": strings},
                {"name": "diffFields", "type": strings},
                {"name": "changedFields", "type": strings},
            ]
        },
        "doc": "Data:ChangeEventHeader",
    })
}

/// The change-event schema of an object plus the schema position of each object field.
pub fn change_schema(def: &ObjectDef) -> (String, Vec<Option<usize>>) {
    let mut fields = vec![header_schema()];
    let mut positions = vec![None; def.fields.len()];
    for (i, fd) in def.fields.iter().enumerate() {
        if !fd.in_cdc {
            continue;
        }
        positions[i] = Some(fields.len());
        fields.push(json!({
            "name": fd.name,
            "type": ["null", avro_type(fd.ty)],
            "doc": avro_doc(fd.ty),
            "default": null,
        }));
    }
    let schema = json!({
        "type": "record",
        "name": def.change_event_name(),
        "namespace": "com.sforce.eventbus",
        "fields": fields,
    });
    (schema.to_string(), positions)
}

/// The schema of a platform event and the object-field index of each schema position.
pub fn platform_schema(def: &ObjectDef) -> (String, Vec<usize>) {
    let mut fields = Vec::new();
    let mut order = Vec::new();
    for name in ["CreatedDate", "CreatedById"] {
        if let Some(i) = def.field_index(name) {
            let ty = if name == "CreatedDate" {
                "long"
            } else {
                "string"
            };
            fields.push(json!({"name": name, "type": ty, "doc": format!("{name}:{}", if name == "CreatedDate" { "DateTime" } else { "EntityId" })}));
            order.push(i);
        }
    }
    for (i, fd) in def.fields.iter().enumerate() {
        if fd.custom {
            fields.push(json!({"name": fd.name, "type": ["null", avro_type(fd.ty)], "doc": avro_doc(fd.ty), "default": null}));
            order.push(i);
        }
    }
    let schema = json!({
        "type": "record",
        "name": def.name,
        "namespace": "com.sforce.eventbus",
        "fields": fields,
    });
    (schema.to_string(), order)
}

/// Stable schema id: a digest of the schema text (22 base64url characters).
pub fn schema_id(schema: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, schema.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Hex bitmap of schema positions (`0x…`, bit i = position i), empty when none.
pub fn bitmap(positions: &[usize]) -> Vec<String> {
    let Some(&max) = positions.iter().max() else {
        return Vec::new();
    };
    let mut nibbles = vec![0u8; max / 4 + 1];
    for &p in positions {
        nibbles[p / 4] |= 1 << (p % 4);
    }
    let hex: String = nibbles
        .iter()
        .rev()
        .map(|n| {
            char::from_digit(u32::from(*n), 16)
                .unwrap_or('0')
                .to_ascii_uppercase()
        })
        .collect();
    vec![format!("0x{}", hex.trim_start_matches('0'))]
}

fn put_value(out: &mut Vec<u8>, ty: FieldType, v: &Value) {
    use rust_decimal::prelude::ToPrimitive;
    match (v, avro_type(ty)) {
        (Value::Null, _) => avro::put_long(out, 0),
        (Value::Bool(b), "boolean") => {
            avro::put_long(out, 1);
            avro::put_bool(out, *b);
        }
        (Value::Number(n), "double") => {
            avro::put_long(out, 1);
            avro::put_double(out, n.to_f64().unwrap_or(0.0));
        }
        (Value::Number(n), "int") => {
            avro::put_long(out, 1);
            avro::put_long(out, n.to_i64().unwrap_or(0));
        }
        (Value::Date(d), _) => {
            avro::put_long(out, 1);
            avro::put_long(out, date_ms(*d));
        }
        (Value::DateTime(ms), _) => {
            avro::put_long(out, 1);
            avro::put_long(out, *ms);
        }
        (Value::Text(s), "string") => {
            avro::put_long(out, 1);
            avro::put_string(out, s);
        }
        _ => avro::put_long(out, 0),
    }
}

/// The header of one change event.
struct Header<'a> {
    entity: &'a str,
    record_ids: Vec<String>,
    change_type: ChangeType,
    origin: &'a str,
    transaction_key: &'a str,
    sequence: i64,
    commit_ts: i64,
    commit_number: i64,
    user: &'a str,
    nulled: Vec<String>,
    changed: Vec<String>,
}

fn put_header(out: &mut Vec<u8>, h: &Header<'_>) {
    avro::put_string(out, h.entity);
    avro::put_string_array(out, &h.record_ids);
    avro::put_long(out, h.change_type.symbol_index());
    avro::put_string(out, h.origin);
    avro::put_string(out, h.transaction_key);
    avro::put_long(out, h.sequence);
    avro::put_long(out, h.commit_ts);
    avro::put_long(out, h.commit_number);
    avro::put_string(out, h.user);
    avro::put_string_array(out, &h.nulled);
    avro::put_string_array(out, &[]);
    avro::put_string_array(out, &h.changed);
}

/// A schema id and the schema position of each object field (`None`: not in the schema).
pub type SchemaPositions = (String, Vec<Option<usize>>);

/// A copy of everything the event log persists.
#[derive(Debug, Clone)]
pub struct EventsSnapshot {
    /// Retained events, oldest first (shared with the log: copying them is cheap).
    pub events: Vec<Arc<StoredEvent>>,
    /// Every schema handed out, by id (retained events may use older ones).
    pub schemas: BTreeMap<String, String>,
    /// Latest replay id issued.
    pub latest: u64,
    /// Replay ids up to this one are no longer valid.
    pub trimmed_upto: u64,
    /// Last `commitNumber`.
    pub commit_number: i64,
    /// Seed of the generator behind replay-id steps, transaction keys and event uuids.
    pub rng_seed: [u8; 32],
    /// Position of that generator in its stream.
    pub rng_word_pos: u128,
}

/// The retained events, schemas and replay-id sequence.
pub struct EventLog {
    /// Shared so that snapshots and deliveries copy pointers, not payloads.
    events: VecDeque<Arc<StoredEvent>>,
    schemas: HashMap<String, String>,
    /// Change-event schema per (object, field count): building and hashing it per write is costly.
    change_schemas: HashMap<(String, usize), SchemaPositions>,
    latest: u64,
    trimmed_upto: u64,
    retention_ms: i64,
    commit_number: i64,
    rng: ChaCha8Rng,
    notify: watch::Sender<u64>,
    /// Moves whenever events, schemas or the replay window change.
    revision: u64,
}

impl EventLog {
    /// An empty log: replay ids start near `seed`-derived values, events live `retention_ms`.
    pub fn new(seed: u64, retention_ms: i64) -> EventLog {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_cdc0);
        let latest = 1_000 + rng.random_range(0..1_000u64);
        let (notify, _) = watch::channel(latest);
        EventLog {
            events: VecDeque::new(),
            schemas: HashMap::new(),
            change_schemas: HashMap::new(),
            latest,
            trimmed_upto: latest - 1,
            retention_ms,
            commit_number: 10_000_000 + i64::try_from(seed % 1_000_000).unwrap_or(0),
            rng,
            notify,
            revision: 0,
        }
    }

    /// Copies the log's persistent state.
    pub fn snapshot(&self) -> EventsSnapshot {
        EventsSnapshot {
            events: self.events.iter().cloned().collect(),
            schemas: self
                .schemas
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            latest: self.latest,
            trimmed_upto: self.trimmed_upto,
            commit_number: self.commit_number,
            rng_seed: self.rng.get_seed(),
            rng_word_pos: self.rng.get_word_pos(),
        }
    }

    /// Rebuilds a log from a snapshot; events live `retention_ms`.
    ///
    /// # Errors
    /// A message when replay ids do not increase, fall outside the valid window, or an event's
    /// schema is unknown.
    pub fn restore(s: EventsSnapshot, retention_ms: i64) -> Result<EventLog, String> {
        if s.trimmed_upto > s.latest {
            return Err(format!(
                "trimmed_upto {} is past the latest replay id {}",
                s.trimmed_upto, s.latest
            ));
        }
        let mut previous = s.trimmed_upto;
        for e in &s.events {
            if e.replay_id <= previous || e.replay_id > s.latest {
                return Err(format!(
                    "replay id {} is out of order (after {previous}, latest {})",
                    e.replay_id, s.latest
                ));
            }
            if !s.schemas.contains_key(&e.schema_id) {
                return Err(format!(
                    "event {} uses unknown schema {}",
                    e.replay_id, e.schema_id
                ));
            }
            previous = e.replay_id;
        }
        let mut rng = ChaCha8Rng::from_seed(s.rng_seed);
        rng.set_word_pos(s.rng_word_pos);
        let (notify, _) = watch::channel(s.latest);
        Ok(EventLog {
            events: s.events.into(),
            schemas: s.schemas.into_iter().collect(),
            change_schemas: HashMap::new(),
            latest: s.latest,
            trimmed_upto: s.trimmed_upto,
            retention_ms,
            commit_number: s.commit_number,
            rng,
            notify,
            revision: 0,
        })
    }

    /// A value that changes whenever events, schemas or the replay window change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// A receiver woken whenever events are appended.
    pub fn subscribe_notify(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// The latest replay id issued.
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// Retention in ms.
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    /// Whether a client may resume after `replay_id`.
    pub fn replay_valid(&self, replay_id: u64) -> bool {
        replay_id > self.trimmed_upto && replay_id <= self.latest
    }

    /// The change-event schema id of an object and the schema position of each field (cached).
    pub fn change_schema_of(&mut self, def: &ObjectDef) -> SchemaPositions {
        let key = (def.name.clone(), def.fields.len());
        if let Some(hit) = self.change_schemas.get(&key) {
            return hit.clone();
        }
        let (schema, positions) = change_schema(def);
        let id = self.register_schema(schema);
        self.change_schemas
            .insert(key, (id.clone(), positions.clone()));
        (id, positions)
    }

    /// Registers a schema, returning its id.
    pub fn register_schema(&mut self, schema: String) -> String {
        let id = schema_id(&schema);
        if !self.schemas.contains_key(&id) {
            self.schemas.insert(id.clone(), schema);
            self.revision += 1;
        }
        id
    }

    /// A schema by id.
    pub fn schema(&self, id: &str) -> Option<&str> {
        self.schemas.get(id).map(String::as_str)
    }

    /// Retained events (oldest first).
    pub fn events(&self) -> &VecDeque<Arc<StoredEvent>> {
        &self.events
    }

    /// Events of `topic` with replay id greater than `after`, at most `limit`.
    pub fn after(&self, topic: &Topic, after: u64, limit: usize) -> Vec<Arc<StoredEvent>> {
        let start = self.events.partition_point(|e| e.replay_id <= after);
        self.events
            .iter()
            .skip(start)
            .filter(|e| topic.matches(e))
            .take(limit)
            .cloned()
            .collect()
    }

    fn uuid(&mut self) -> String {
        let a: u128 = self.rng.random();
        let a = (a & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn append(
        &mut self,
        entity: String,
        change: bool,
        schema_id: String,
        payload: Vec<u8>,
        event_id: String,
        now: i64,
    ) -> u64 {
        self.latest += 1 + self.rng.random_range(0..4u64);
        self.revision += 1;
        let replay_id = self.latest;
        self.events.push_back(Arc::new(StoredEvent {
            replay_id,
            entity,
            change,
            schema_id,
            payload,
            event_id,
            at_ms: now,
        }));
        replay_id
    }

    fn wake(&self) {
        self.notify.send_replace(self.latest);
    }

    /// Drops events older than the retention window.
    pub fn expire(&mut self, now: i64) -> usize {
        let horizon = now - self.retention_ms;
        let mut n = 0;
        while self.events.front().is_some_and(|e| e.at_ms < horizon) {
            if let Some(e) = self.events.pop_front() {
                self.trimmed_upto = e.replay_id;
                n += 1;
            }
        }
        if n > 0 {
            self.revision += 1;
        }
        n
    }

    /// Drops every event with replay id up to `upto` (all when `None`); their ids become invalid.
    pub fn trim(&mut self, upto: Option<u64>) -> usize {
        let limit = upto.unwrap_or(self.latest);
        let mut n = 0;
        while self.events.front().is_some_and(|e| e.replay_id <= limit) {
            self.events.pop_front();
            n += 1;
        }
        self.trimmed_upto = self.trimmed_upto.max(limit.min(self.latest));
        self.revision += 1;
        n
    }

    /// Turns committed changes into change events sharing one transaction key.
    pub fn publish_changes(
        &mut self,
        meta: &Metadata,
        changes: Vec<PendingChange>,
        origin: &str,
        user: &str,
        now: i64,
    ) {
        self.expire(now);
        let key = self.uuid();
        self.commit_number += 1;
        let commit_number = self.commit_number;
        for (seq, ch) in changes.into_iter().enumerate() {
            let def = &meta.objects[ch.object];
            let (sid, positions) = self.change_schema_of(def);
            let pos = |fields: &[usize]| -> Vec<usize> {
                fields.iter().filter_map(|&i| positions[i]).collect()
            };
            let is_update = ch.change_type == ChangeType::Update;
            let header = Header {
                entity: &def.name,
                record_ids: vec![ch.record_id.clone()],
                change_type: ch.change_type,
                origin,
                transaction_key: &key,
                sequence: i64::try_from(seq).unwrap_or(0) + 1,
                commit_ts: now,
                commit_number,
                user,
                nulled: if is_update {
                    bitmap(&pos(&ch.nulled))
                } else {
                    Vec::new()
                },
                changed: if is_update {
                    bitmap(&pos(&ch.changed))
                } else {
                    Vec::new()
                },
            };
            let mut payload = Vec::with_capacity(256);
            put_header(&mut payload, &header);
            let values: HashMap<usize, &Value> = ch.values.iter().map(|(i, v)| (*i, v)).collect();
            for (i, fd) in def.fields.iter().enumerate() {
                if positions[i].is_none() {
                    continue;
                }
                let v = if ch.change_type == ChangeType::Delete {
                    None
                } else {
                    values.get(&i).copied()
                };
                put_value(&mut payload, fd.ty, v.unwrap_or(&Value::Null));
            }
            let event_id = self.uuid();
            self.append(def.name.clone(), true, sid, payload, event_id, now);
        }
        self.wake();
    }

    /// Emits a gap event (`GAP_*`) for records of an object, or `GAP_OVERFLOW` (no ids).
    pub fn publish_gap(
        &mut self,
        def: &ObjectDef,
        change_type: ChangeType,
        record_ids: Vec<String>,
        user: &str,
        now: i64,
    ) -> u64 {
        let (schema, positions) = change_schema(def);
        let sid = self.register_schema(schema);
        let key = self.uuid();
        self.commit_number += 1;
        let header = Header {
            entity: &def.name,
            record_ids: if change_type == ChangeType::GapOverflow {
                Vec::new()
            } else {
                record_ids
            },
            change_type,
            origin: "",
            transaction_key: &key,
            sequence: 1,
            commit_ts: now,
            commit_number: self.commit_number,
            user,
            nulled: Vec::new(),
            changed: Vec::new(),
        };
        let mut payload = Vec::new();
        put_header(&mut payload, &header);
        for _ in positions.iter().flatten() {
            avro::put_long(&mut payload, 0);
        }
        let event_id = self.uuid();
        let replay = self.append(def.name.clone(), true, sid, payload, event_id, now);
        self.wake();
        replay
    }

    /// Encodes and stores a platform event published over REST (`POST sobjects/<Name>__e`):
    /// `values` are object-field indexes with their values. Returns its replay id.
    pub fn publish_platform_values(
        &mut self,
        def: &ObjectDef,
        values: &[(usize, Value)],
        user: &str,
        now: i64,
    ) -> u64 {
        let (schema, order) = platform_schema(def);
        let sid = self.register_schema(schema);
        let mut payload = Vec::new();
        for &i in &order {
            match def.fields[i].name.as_str() {
                "CreatedDate" => avro::put_long(&mut payload, now),
                "CreatedById" => avro::put_string(&mut payload, user),
                _ => {
                    let v = values
                        .iter()
                        .find(|(f, _)| *f == i)
                        .map_or(&Value::Null, |(_, v)| v);
                    put_value(&mut payload, def.fields[i].ty, v);
                }
            }
        }
        let event_id = self.uuid();
        let replay = self.append(def.name.clone(), false, sid, payload, event_id, now);
        self.wake();
        replay
    }

    /// Validates and stores a published platform event. Returns its replay id.
    ///
    /// # Errors
    /// A message when the schema id is not the event's current schema or the payload does
    /// not decode against it.
    pub fn publish_platform(
        &mut self,
        def: &ObjectDef,
        schema_id: &str,
        payload: Vec<u8>,
        now: i64,
    ) -> Result<u64, String> {
        let (schema, order) = platform_schema(def);
        let current = self.register_schema(schema);
        if schema_id != current {
            return Err(format!("Unknown schema id {schema_id} for {}", def.name));
        }
        decode_platform(def, &order, &payload)
            .map_err(|e| format!("Failed to decode the event payload: {e}"))?;
        let event_id = self.uuid();
        let replay = self.append(def.name.clone(), false, current, payload, event_id, now);
        self.wake();
        Ok(replay)
    }
}

/// Decodes a platform-event payload to JSON (field name → value).
///
/// # Errors
/// [`avro::DecodeError`] when the bytes do not match the schema exactly.
pub fn decode_platform(
    def: &ObjectDef,
    order: &[usize],
    payload: &[u8],
) -> Result<Json, avro::DecodeError> {
    let mut r = Reader::new(payload);
    let mut out = serde_json::Map::new();
    for &i in order {
        let fd = &def.fields[i];
        let v = match fd.name.as_str() {
            "CreatedDate" => r.primitive("long")?,
            "CreatedById" => r.primitive("string")?,
            _ => match r.long()? {
                0 => Json::Null,
                1 => r.primitive(avro_type(fd.ty))?,
                b => {
                    return Err(avro::DecodeError(format!(
                        "bad union branch {b} for {}",
                        fd.name
                    )));
                }
            },
        };
        out.insert(fd.name.clone(), v);
    }
    if !r.at_end() {
        return Err(avro::DecodeError("trailing bytes after the record".into()));
    }
    Ok(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_mark_schema_positions() {
        assert_eq!(bitmap(&[2, 5]), vec!["0x24".to_string()]);
        assert_eq!(bitmap(&[]), Vec::<String>::new());
        // Upper-case hex digits, as Salesforce sends and clients expect.
        assert_eq!(bitmap(&[1, 2, 3, 4]), vec!["0x1E".to_string()]);
        assert_eq!(bitmap(&[0, 65]), vec!["0x20000000000000001".to_string()]);
    }

    #[test]
    fn schema_ids_are_stable_for_a_schema() {
        let meta = crate::meta::standard();
        let order = meta.object("Order").map(change_schema);
        let again = meta.object("Order").map(change_schema);
        assert_eq!(
            order.as_ref().map(|s| schema_id(&s.0)),
            again.as_ref().map(|s| schema_id(&s.0))
        );
        let account = meta.object("Account").map(change_schema);
        assert_ne!(
            order.map(|s| schema_id(&s.0)),
            account.map(|s| schema_id(&s.0))
        );
    }
}
