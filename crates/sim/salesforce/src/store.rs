//! The in-memory org: tables of records, external-id indexes, and DML (insert, update, upsert,
//! delete, undelete) with Salesforce's validation rules. Every write goes through a [`Txn`],
//! which keeps an undo log (for `allOrNone` rollback) and the change list that becomes
//! Change Data Capture events on commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::cdc::{ChangeType, EventLog, EventsSnapshot, PendingChange};
use crate::ids;
use crate::meta::{FieldType, Kind, Metadata, ObjectDef};
use crate::value::{self, ConvertError, Value};

/// One record: values by field index (missing trailing values are null). The values are
/// shared until written (copy on write), so copying a table for a snapshot is cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    values: std::sync::Arc<Vec<Value>>,
}

impl Record {
    /// The value of field `i`.
    pub fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Null)
    }

    /// Sets field `i`.
    pub fn set(&mut self, i: usize, v: Value) {
        let values = std::sync::Arc::make_mut(&mut self.values);
        if values.len() <= i {
            values.resize(i + 1, Value::Null);
        }
        values[i] = v;
    }

    /// The stored values by field index (trailing nulls may be missing).
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// A DML failure, rendered as `{"message","errorCode","fields"}` (REST) or with `statusCode`
/// (collections).
#[derive(Debug, Clone, PartialEq)]
pub struct DmlError {
    /// Salesforce error code.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Fields concerned.
    pub fields: Vec<String>,
}

impl DmlError {
    /// A new error.
    pub fn new(code: &'static str, message: impl Into<String>) -> DmlError {
        DmlError {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The same error, naming fields.
    pub fn with_fields(mut self, fields: Vec<String>) -> DmlError {
        self.fields = fields;
        self
    }
}

/// Result of DML operations.
pub type DmlResult<T> = Result<T, DmlError>;

/// The records of one object.
#[derive(Debug, Default, Clone)]
pub struct Table {
    /// Records by 15-character id, in creation order.
    pub rows: BTreeMap<String, Record>,
    /// External-id field index → lower-cased value → live record ids.
    ext: HashMap<usize, HashMap<String, BTreeSet<String>>>,
}

/// The org's data and event log.
pub struct Org {
    /// Objects and fields.
    pub meta: Metadata,
    /// One table per object, same order as `meta.objects`.
    pub tables: Vec<Table>,
    /// 15-character org id.
    pub org_id: String,
    /// 15-character id of the integration user.
    pub user_id: String,
    /// Id of the standard price book (18 chars).
    pub standard_pricebook: String,
    next_id: Vec<u64>,
    autonumber: Vec<u64>,
    /// Live OrderItem ids per Order id (15 chars), kept in step with the OrderItem table.
    order_items: HashMap<String, BTreeSet<String>>,
    /// Moves on every record write and metadata change, so a saver can tell whether the org
    /// changed since its last write (events count their own changes).
    revision: u64,
    /// Change events and platform events.
    pub events: EventLog,
}

/// A copy of everything an org persists, taken under the org lock and written out without it.
#[derive(Debug, Clone)]
pub struct OrgSnapshot {
    /// Objects and fields, including fields added at run time.
    pub meta: Metadata,
    /// Records (live and deleted) per object, same order as `meta.objects`.
    pub tables: Vec<BTreeMap<String, Record>>,
    /// 15-character org id.
    pub org_id: String,
    /// 15-character id of the integration user.
    pub user_id: String,
    /// Id of the standard price book (18 chars).
    pub standard_pricebook: String,
    /// Next record number per object.
    pub next_id: Vec<u64>,
    /// Last auto-number per object.
    pub autonumber: Vec<u64>,
    /// The event log.
    pub events: EventsSnapshot,
}

/// What the identity endpoints tell about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// 18-character user id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// First name (may be empty).
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Short alias.
    pub alias: String,
}

/// OrderItem fields that stay frozen once the order is activated, even for users holding
/// "Edit Activated Orders".
const FROZEN_ITEM_FIELDS: [&str; 5] = [
    "OrderId",
    "PricebookEntryId",
    "Product2Id",
    "Quantity",
    "UnitPrice",
];

fn id_index(def: &ObjectDef, name: &str) -> usize {
    def.field_index(name).unwrap_or(usize::MAX)
}

impl Org {
    /// Creates an org with its fixed rows (organization, integration user, standard price book).
    pub fn new(meta: Metadata, org_name: &str, username: &str, now: i64, events: EventLog) -> Org {
        let mut org = Org::empty(meta, events);
        org.user_id = org.seed_row(
            "User",
            now,
            &[
                ("Username", Value::Text(username.into())),
                ("FirstName", Value::Text("Integration".into())),
                ("LastName", Value::Text("User".into())),
                ("Name", Value::Text("Integration User".into())),
                ("Email", Value::Text(username.into())),
                ("Alias", Value::Text("integ".into())),
                ("IsActive", Value::Bool(true)),
                ("TimeZoneSidKey", Value::Text("GMT".into())),
                ("LanguageLocaleKey", Value::Text("en_US".into())),
            ],
        );
        org.org_id = org.seed_row(
            "Organization",
            now,
            &[
                ("Name", Value::Text(org_name.into())),
                ("InstanceName", Value::Text("SIM1".into())),
                ("IsSandbox", Value::Bool(false)),
                ("OrganizationType", Value::Text("Developer Edition".into())),
                ("DefaultLocaleSidKey", Value::Text("en_US".into())),
                ("TimeZoneSidKey", Value::Text("GMT".into())),
            ],
        );
        let pb = org.seed_row(
            "Pricebook2",
            now,
            &[
                ("Name", Value::Text("Standard Price Book".into())),
                ("IsActive", Value::Bool(true)),
                ("IsStandard", Value::Bool(true)),
            ],
        );
        org.standard_pricebook = ids::to18(&pb);
        org
    }

    fn empty(meta: Metadata, events: EventLog) -> Org {
        let n = meta.objects.len();
        Org {
            tables: vec![Table::default(); n],
            meta,
            org_id: ids::make15("00D", 1),
            user_id: ids::make15("005", 1),
            standard_pricebook: String::new(),
            next_id: vec![1; n],
            autonumber: vec![0; n],
            order_items: HashMap::new(),
            revision: 0,
            events,
        }
    }

    /// Copies everything the org persists (records incl. deleted ones, counters, metadata, events).
    pub fn snapshot(&self) -> OrgSnapshot {
        OrgSnapshot {
            meta: self.meta.clone(),
            tables: self.tables.iter().map(|t| t.rows.clone()).collect(),
            org_id: self.org_id.clone(),
            user_id: self.user_id.clone(),
            standard_pricebook: self.standard_pricebook.clone(),
            next_id: self.next_id.clone(),
            autonumber: self.autonumber.clone(),
            events: self.events.snapshot(),
        }
    }

    /// Rebuilds an org from a snapshot (indexes are derived again); events live `retention_ms`.
    ///
    /// # Errors
    /// A message when the snapshot's tables or counters do not match its metadata, a record
    /// key is not an id of its object, or the event log is inconsistent.
    pub fn restore(snapshot: OrgSnapshot, retention_ms: i64) -> Result<Org, String> {
        let events = EventLog::restore(snapshot.events, retention_ms)?;
        let n = snapshot.meta.objects.len();
        if snapshot.tables.len() != n
            || snapshot.next_id.len() != n
            || snapshot.autonumber.len() != n
        {
            return Err(format!(
                "{} objects but {} tables, {} id counters and {} auto-numbers",
                n,
                snapshot.tables.len(),
                snapshot.next_id.len(),
                snapshot.autonumber.len()
            ));
        }
        let mut org = Org::empty(snapshot.meta, events);
        org.org_id = snapshot.org_id;
        org.user_id = snapshot.user_id;
        org.standard_pricebook = snapshot.standard_pricebook;
        org.next_id = snapshot.next_id;
        org.autonumber = snapshot.autonumber;
        for (obj, rows) in snapshot.tables.into_iter().enumerate() {
            let prefix = org.meta.objects[obj].key_prefix.clone();
            for (id15, rec) in rows {
                if ids::parse(&id15).as_deref() != Some(id15.as_str()) || !id15.starts_with(&prefix)
                {
                    return Err(format!("{id15} is not a {} id", org.meta.objects[obj].name));
                }
                org.put(obj, &id15, Some(rec));
            }
        }
        for (name, id) in [("Organization", &org.org_id), ("User", &org.user_id)] {
            if org.locate(id).is_none() {
                return Err(format!("the {name} row {id} is missing"));
            }
        }
        org.revision = 0;
        Ok(org)
    }

    /// A value that changes whenever records, metadata or events change.
    pub fn revision(&self) -> (u64, u64) {
        (self.revision, self.events.revision())
    }

    /// Records a change that no record write shows (a field added to the metadata).
    pub fn touch(&mut self) {
        self.revision += 1;
    }

    /// The 15-character id of the User whose `Username` is `username` (case-insensitive).
    pub fn find_user(&self, username: &str) -> Option<String> {
        let obj = self.meta.object_index("User")?;
        let def = &self.meta.objects[obj];
        let (ui, di) = (id_index(def, "Username"), id_index(def, "IsDeleted"));
        self.tables[obj]
            .rows
            .iter()
            .find(|(_, r)| {
                r.get(di) != &Value::Bool(true)
                    && r.get(ui)
                        .as_text()
                        .is_some_and(|u| u.eq_ignore_ascii_case(username))
            })
            .map(|(id, _)| id.clone())
    }

    /// The User `username`, created (active, standard profile, holding the same permissions as
    /// the integration user) when absent. Returns its 15-character id.
    ///
    /// # Errors
    /// A message when `username` is not shaped like an e-mail address of at most 80 characters.
    pub fn ensure_user(&mut self, username: &str, now: i64) -> Result<String, String> {
        let username = username.trim();
        let (local, domain) = username.split_once('@').unwrap_or_default();
        if local.is_empty()
            || !domain.contains('.')
            || domain.contains('@')
            || username.chars().count() > 80
            || username.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "username must look like an e-mail address of at most 80 characters, got {username:?}"
            ));
        }
        if let Some(id) = self.find_user(username) {
            return Ok(id);
        }
        let mut parts: Vec<String> = local
            .split(['.', '_', '-', '+'])
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect();
        let last = parts.pop().unwrap_or_else(|| local.to_string());
        let first = parts.join(" ");
        let name = if first.is_empty() {
            last.clone()
        } else {
            format!("{first} {last}")
        };
        let alias: String = local
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let mut values = vec![
            ("Username", Value::Text(username.into())),
            ("LastName", Value::Text(last)),
            ("Name", Value::Text(name)),
            ("Email", Value::Text(username.into())),
            ("Alias", Value::Text(alias)),
            ("IsActive", Value::Bool(true)),
            ("TimeZoneSidKey", Value::Text("GMT".into())),
            ("LanguageLocaleKey", Value::Text("en_US".into())),
        ];
        if !first.is_empty() {
            values.push(("FirstName", Value::Text(first)));
        }
        Ok(self.seed_row("User", now, &values))
    }

    /// Name and contact details of a user, by 15- or 18-character id.
    pub fn user_profile(&self, user: &str) -> Option<UserProfile> {
        let obj = self.meta.object_index("User")?;
        let (id15, rec) = self.find(obj, user)?;
        let def = &self.meta.objects[obj];
        let text = |f: &str| {
            rec.get(id_index(def, f))
                .as_text()
                .unwrap_or_default()
                .to_string()
        };
        Some(UserProfile {
            id: ids::to18(&id15),
            username: text("Username"),
            first_name: text("FirstName"),
            last_name: text("LastName"),
            name: text("Name"),
            email: text("Email"),
            alias: text("Alias"),
        })
    }

    fn seed_row(&mut self, object: &str, now: i64, values: &[(&str, Value)]) -> String {
        let Some(obj) = self.meta.object_index(object) else {
            return String::new();
        };
        let id15 = self.allocate_id(obj);
        let def = &self.meta.objects[obj];
        let mut rec = Record::default();
        for fd in def.fields.iter().enumerate() {
            if fd.1.ty == FieldType::Boolean {
                rec.set(fd.0, Value::Bool(false));
            }
        }
        for (name, v) in values {
            if let Some(i) = def.field_index(name) {
                rec.set(i, v.clone());
            }
        }
        let user = if self.user_id.is_empty() {
            id15.clone()
        } else {
            self.user_id.clone()
        };
        stamp_system_fields(def, &mut rec, &id15, &user, now, true);
        self.put(obj, &id15, Some(rec));
        id15
    }

    fn allocate_id(&mut self, obj: usize) -> String {
        let n = self.next_id[obj];
        self.next_id[obj] += 1;
        ids::make15(&self.meta.objects[obj].key_prefix, n)
    }

    /// Looks a record up by any-form id. `None` when the id is malformed or of another object.
    pub fn find(&self, obj: usize, raw_id: &str) -> Option<(String, &Record)> {
        let id15 = ids::parse(raw_id)?;
        self.tables[obj].rows.get(&id15).map(|r| (id15, r))
    }

    /// Resolves a record id to its object and 15-char id.
    pub fn locate(&self, raw_id: &str) -> Option<(usize, String)> {
        let id15 = ids::parse(raw_id)?;
        let obj = self.meta.object_by_prefix(&id15[..3])?;
        self.tables[obj]
            .rows
            .contains_key(&id15)
            .then_some((obj, id15))
    }

    /// Live records whose external-id field `field` equals `value` (case-insensitive).
    pub fn by_external_id(&self, obj: usize, field: usize, value: &str) -> Vec<String> {
        self.tables[obj]
            .ext
            .get(&field)
            .and_then(|m| m.get(&value.to_lowercase()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Live OrderItems of an order.
    pub fn items_of_order(&self, order15: &str) -> Vec<String> {
        self.order_items
            .get(order15)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces (or removes) a record and keeps the indexes in step. The single write path.
    fn put(&mut self, obj: usize, id15: &str, rec: Option<Record>) -> Option<Record> {
        self.revision += 1;
        let def = &self.meta.objects[obj];
        let deleted_idx = id_index(def, "IsDeleted");
        let live = |r: &Record| r.get(deleted_idx) != &Value::Bool(true);
        let ext_fields: Vec<usize> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.external_id)
            .map(|(i, _)| i)
            .collect();
        let is_item = def.name == "OrderItem";
        let order_idx = id_index(def, "OrderId");
        let table = &mut self.tables[obj];
        let old = match &rec {
            Some(r) => table.rows.insert(id15.to_string(), r.clone()),
            None => table.rows.remove(id15),
        };
        for &fi in &ext_fields {
            let index = table.ext.entry(fi).or_default();
            if let Some(o) = old.as_ref().filter(|o| live(o))
                && let Value::Text(v) = o.get(fi)
            {
                let key = v.to_lowercase();
                if let Some(set) = index.get_mut(&key) {
                    set.remove(id15);
                    if set.is_empty() {
                        index.remove(&key);
                    }
                }
            }
            if let Some(n) = rec.as_ref().filter(|n| live(n))
                && let Value::Text(v) = n.get(fi)
            {
                index
                    .entry(v.to_lowercase())
                    .or_default()
                    .insert(id15.to_string());
            }
        }
        if is_item {
            if let Some(o) = old.as_ref().filter(|o| live(o))
                && let Some(order) = o.get(order_idx).as_text().and_then(ids::parse)
                && let Some(set) = self.order_items.get_mut(&order)
            {
                set.remove(id15);
            }
            if let Some(n) = rec.as_ref().filter(|n| live(n))
                && let Some(order) = n.get(order_idx).as_text().and_then(ids::parse)
            {
                self.order_items
                    .entry(order)
                    .or_default()
                    .insert(id15.to_string());
            }
        }
        old
    }

    /// Number of live records per object (for stats).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.meta
            .objects
            .iter()
            .zip(&self.tables)
            .filter(|(d, _)| d.kind == Kind::SObject)
            .map(|(d, t)| {
                let del = id_index(d, "IsDeleted");
                let n = t
                    .rows
                    .values()
                    .filter(|r| r.get(del) != &Value::Bool(true))
                    .count();
                (d.name.clone(), n)
            })
            .collect()
    }

    /// JSON form of a record: `attributes` then the chosen fields (all when `fields` is `None`).
    pub fn record_json(
        &self,
        obj: usize,
        rec: &Record,
        fields: Option<&[usize]>,
        version: &str,
    ) -> Json {
        let def = &self.meta.objects[obj];
        let id = rec.get(0).as_text().unwrap_or_default();
        let mut map = Map::new();
        map.insert(
            "attributes".into(),
            json!({"type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", def.name, id)}),
        );
        let all: Vec<usize>;
        let chosen = match fields {
            Some(f) => f,
            None => {
                all = (0..def.fields.len()).collect();
                &all
            }
        };
        for &i in chosen {
            let fd = &def.fields[i];
            map.insert(fd.name.clone(), rec.get(i).to_json(fd.ty));
        }
        Json::Object(map)
    }
}

fn stamp_system_fields(
    def: &ObjectDef,
    rec: &mut Record,
    id15: &str,
    user15: &str,
    now: i64,
    create: bool,
) {
    let user = Value::Text(ids::to18(user15));
    let mut set = |name: &str, v: Value| {
        if let Some(i) = def.field_index(name) {
            rec.set(i, v);
        }
    };
    if create {
        set("Id", Value::Text(ids::to18(id15)));
        set("IsDeleted", Value::Bool(false));
        set("CreatedDate", Value::DateTime(now));
        set("CreatedById", user.clone());
    }
    set("LastModifiedDate", Value::DateTime(now));
    set("LastModifiedById", user);
    set("SystemModstamp", Value::DateTime(now));
}

/// How input fields are being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// A savepoint inside a transaction.
#[derive(Debug, Clone, Copy)]
pub struct Savepoint {
    undo: usize,
    changes: usize,
}

/// A unit of work: writes apply at once, are undone on rollback, and emit their change events
/// only on commit.
pub struct Txn<'a> {
    /// The org being written.
    pub org: &'a mut Org,
    undo: Vec<(usize, String, Option<Record>)>,
    changes: Vec<PendingChange>,
    now: i64,
    origin: String,
    /// 15-character id of the user making the changes (stamps, `commitUser`).
    user: String,
}

impl<'a> Txn<'a> {
    /// Starts a transaction of the integration user at time `now` with the CDC `changeOrigin`
    /// of the caller.
    pub fn begin(org: &'a mut Org, now: i64, origin: String) -> Txn<'a> {
        let user = org.user_id.clone();
        Txn {
            org,
            undo: Vec::new(),
            changes: Vec::new(),
            now,
            origin,
            user,
        }
    }

    /// The same transaction made by another user (15- or 18-character id of a User record).
    pub fn as_user(mut self, user: &str) -> Txn<'a> {
        if let Some(id15) = ids::parse(user) {
            self.user = id15;
        }
        self
    }

    /// 15-character id of the user making the changes.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Marks a point to roll back to.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo: self.undo.len(),
            changes: self.changes.len(),
        }
    }

    /// Undoes everything done after `sp`.
    pub fn rollback_to(&mut self, sp: Savepoint) {
        while self.undo.len() > sp.undo {
            if let Some((obj, id, old)) = self.undo.pop() {
                self.org.put(obj, &id, old);
            }
        }
        self.changes.truncate(sp.changes);
    }

    /// Undoes the whole transaction.
    pub fn rollback(mut self) {
        self.rollback_to(Savepoint {
            undo: 0,
            changes: 0,
        });
    }

    /// Commits: publishes the change events (one transaction key). Returns how many.
    pub fn commit(self) -> usize {
        let n = self.changes.len();
        if n > 0 {
            let user = ids::to18(&self.user);
            let changes = self.changes;
            let org = &mut *self.org;
            org.events
                .publish_changes(&org.meta, changes, &self.origin, &user, self.now);
        }
        n
    }

    fn write(&mut self, obj: usize, id15: &str, rec: Record) {
        let old = self.org.put(obj, id15, Some(rec));
        self.undo.push((obj, id15.to_string(), old));
    }

    fn def(&self, obj: usize) -> &ObjectDef {
        &self.org.meta.objects[obj]
    }

    /// Converts an input JSON object to field assignments, refusing unknown, read-only and
    /// ill-typed fields. `skip` names fields the caller handles (targeting ids).
    fn parse_fields(
        &self,
        obj: usize,
        body: &Map<String, Json>,
        mode: Mode,
        skip: &[&str],
    ) -> DmlResult<Vec<(usize, Value)>> {
        let def = self.def(obj);
        let mut out = Vec::with_capacity(body.len());
        let mut readonly = Vec::new();
        for (key, json) in body {
            if key == "attributes" || skip.iter().any(|s| s.eq_ignore_ascii_case(key)) {
                continue;
            }
            let Some(i) = def.field_index(key) else {
                return Err(DmlError::new(
                    "INVALID_FIELD",
                    format!("No such column '{key}' on sobject of type {}", def.name),
                ));
            };
            let fd = &def.fields[i];
            let allowed = match mode {
                Mode::Create => fd.createable,
                Mode::Update => fd.updateable,
            };
            if !allowed {
                readonly.push(fd.name.clone());
                continue;
            }
            let v = match value::from_json(json, fd.ty, fd.length) {
                Ok(v) => v,
                Err(ConvertError::WrongType(shown)) => {
                    return Err(DmlError::new(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        format!("{}: value not of required type: {shown}", fd.label),
                    )
                    .with_fields(vec![fd.name.clone()]));
                }
                Err(ConvertError::TooLong(max)) => {
                    return Err(DmlError::new(
                        "STRING_TOO_LONG",
                        format!("{}: data value too large (max length={max})", fd.label),
                    )
                    .with_fields(vec![fd.name.clone()]));
                }
            };
            out.push((i, v));
        }
        if !readonly.is_empty() {
            return Err(DmlError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    readonly.join(", ")
                ),
            )
            .with_fields(readonly));
        }
        Ok(out)
    }

    /// Validates picklists and references of the assigned fields; normalises ids to 18 chars.
    fn check_values(&self, obj: usize, assigns: &mut [(usize, Value)]) -> DmlResult<()> {
        let def = self.def(obj);
        for (i, v) in assigns.iter_mut() {
            let fd = &def.fields[*i];
            let Value::Text(text) = v else { continue };
            if fd.ty == FieldType::Picklist
                && fd.restricted
                && !fd.picklist.iter().any(|p| p == text)
            {
                return Err(DmlError::new(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {text}",
                        fd.label
                    ),
                )
                .with_fields(vec![fd.name.clone()]));
            }
            if fd.ty == FieldType::Reference {
                let Some(id15) = ids::parse(text) else {
                    return Err(DmlError::new(
                        "MALFORMED_ID",
                        format!("{} ID: id value of incorrect type: {text}", fd.label),
                    )
                    .with_fields(vec![fd.name.clone()]));
                };
                let declared: Vec<usize> = fd
                    .reference_to
                    .iter()
                    .filter_map(|t| self.org.meta.object_index(t))
                    .collect();
                if !declared.is_empty() {
                    let target = self.org.meta.object_by_prefix(&id15[..3]);
                    match target.filter(|t| declared.contains(t)) {
                        None => {
                            return Err(DmlError::new(
                                "FIELD_INTEGRITY_EXCEPTION",
                                format!("field integrity exception: unknown ({} ID: id value of incorrect type: {text})", fd.label),
                            )
                            .with_fields(vec![fd.name.clone()]));
                        }
                        Some(t) => {
                            let tdef = &self.org.meta.objects[t];
                            let del = id_index(tdef, "IsDeleted");
                            let alive = self.org.tables[t]
                                .rows
                                .get(&id15)
                                .is_some_and(|r| r.get(del) != &Value::Bool(true));
                            if !alive {
                                return Err(DmlError::new(
                                    "INVALID_CROSS_REFERENCE_KEY",
                                    "invalid cross reference id".to_string(),
                                )
                                .with_fields(vec![fd.name.clone()]));
                            }
                        }
                    }
                }
                *v = Value::Text(ids::to18(&id15));
            }
        }
        Ok(())
    }

    fn check_required(&self, obj: usize, rec: &Record) -> DmlResult<()> {
        let def = self.def(obj);
        let missing: Vec<String> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| f.required && rec.get(*i).is_null())
            .map(|(_, f)| f.name.clone())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DmlError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing))
        }
    }

    fn check_unique(&self, obj: usize, id15: &str, rec: &Record) -> DmlResult<()> {
        let def = self.def(obj);
        for (i, fd) in def.fields.iter().enumerate() {
            if !fd.unique {
                continue;
            }
            if let Value::Text(v) = rec.get(i)
                && let Some(other) = self
                    .org
                    .by_external_id(obj, i, v)
                    .into_iter()
                    .find(|o| o != id15)
            {
                return Err(DmlError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {}",
                        fd.name,
                        ids::to18(&other)
                    ),
                )
                .with_fields(vec![fd.name.clone()]));
            }
        }
        Ok(())
    }

    fn next_autonumber(&mut self, obj: usize) -> u64 {
        self.org.autonumber[obj] += 1;
        self.org.autonumber[obj]
    }

    /// Creates a record from an input JSON object. Returns the 18-char id.
    ///
    /// # Errors
    /// The first validation failure.
    pub fn insert(&mut self, obj: usize, body: &Map<String, Json>) -> DmlResult<String> {
        let def = self.def(obj);
        if !def.createable || def.kind != Kind::SObject {
            return Err(DmlError::new(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                format!("entity type {} does not support insert", def.name),
            ));
        }
        if let Some(key) = body.keys().find(|k| k.eq_ignore_ascii_case("Id")) {
            return Err(DmlError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
            )
            .with_fields(vec![key.clone()]));
        }
        let mut assigns = self.parse_fields(obj, body, Mode::Create, &[])?;
        self.check_values(obj, &mut assigns)?;
        let def = self.def(obj);
        let mut rec = Record::default();
        for (i, fd) in def.fields.iter().enumerate() {
            if fd.ty == FieldType::Boolean {
                rec.set(i, Value::Bool(false));
            }
            if let Some(d) = &fd.default_value
                && !fd.calculated
            {
                rec.set(i, Value::Text(d.clone()));
            }
        }
        if let Some(i) = def.field_index("OwnerId") {
            rec.set(i, Value::Text(ids::to18(&self.user)));
        }
        for (i, v) in assigns {
            rec.set(i, v);
        }
        self.check_required(obj, &rec)?;
        let name = def.name.clone();
        self.rules_before(obj, &name, None, &mut rec)?;
        let id15 = self.org.allocate_id(obj);
        self.check_unique(obj, &id15, &rec)?;
        let user = self.user.clone();
        stamp_system_fields(self.def(obj), &mut rec, &id15, &user, self.now, true);
        self.write(obj, &id15, rec.clone());
        self.record_change(obj, &id15, ChangeType::Create, None, &rec);
        self.rules_after(obj, &name, None, Some(&rec))?;
        Ok(ids::to18(&id15))
    }

    /// Updates a record from an input JSON object.
    ///
    /// # Errors
    /// `NOT_FOUND`, `ENTITY_IS_DELETED`, `MALFORMED_ID` or a validation failure.
    pub fn update(
        &mut self,
        obj: usize,
        raw_id: &str,
        body: &Map<String, Json>,
    ) -> DmlResult<String> {
        let (id15, old) = self.live_record(obj, raw_id)?;
        let def = self.def(obj);
        if !def.updateable {
            return Err(DmlError::new(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                format!("entity type {} does not support update", def.name),
            ));
        }
        let mut assigns = self.parse_fields(obj, body, Mode::Update, &["Id"])?;
        self.check_values(obj, &mut assigns)?;
        let mut rec = old.clone();
        for (i, v) in assigns {
            rec.set(i, v);
        }
        self.check_required(obj, &rec)?;
        let name = self.def(obj).name.clone();
        self.rules_before(obj, &name, Some(&old), &mut rec)?;
        self.check_unique(obj, &id15, &rec)?;
        self.apply_update(obj, &id15, &old, rec.clone());
        self.rules_after(obj, &name, Some(&old), Some(&rec))?;
        Ok(ids::to18(&id15))
    }

    /// Writes an update computed by the org itself (roll-ups), with its change event.
    fn apply_update(&mut self, obj: usize, id15: &str, old: &Record, mut rec: Record) {
        let user = self.user.clone();
        stamp_system_fields(self.def(obj), &mut rec, id15, &user, self.now, false);
        self.write(obj, id15, rec.clone());
        self.record_change(obj, id15, ChangeType::Update, Some(old), &rec);
    }

    /// Upserts by external id: `(id, created)`.
    ///
    /// # Errors
    /// `MULTIPLE_RECORDS` (its `fields` list the matching ids) when several records match,
    /// `INVALID_FIELD` when the body sets the key to another value, or a validation failure.
    pub fn upsert(
        &mut self,
        obj: usize,
        ext_field: usize,
        ext_value: &str,
        body: &Map<String, Json>,
    ) -> DmlResult<(String, bool)> {
        let fd_name = self.def(obj).fields[ext_field].name.clone();
        if let Some((_, v)) = body.iter().find(|(k, _)| k.eq_ignore_ascii_case(&fd_name)) {
            let given = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !given.eq_ignore_ascii_case(ext_value) {
                return Err(DmlError::new(
                    "INVALID_FIELD",
                    format!("The value of field '{fd_name}' in the body does not match the external ID in the URL"),
                )
                .with_fields(vec![fd_name]));
            }
        }
        let matches = self.org.by_external_id(obj, ext_field, ext_value);
        match matches.as_slice() {
            [] => {
                let mut with_key = body.clone();
                with_key.retain(|k, _| !k.eq_ignore_ascii_case(&fd_name));
                if ext_field != 0 {
                    with_key.insert(fd_name, Json::String(ext_value.to_string()));
                }
                self.insert(obj, &with_key).map(|id| (id, true))
            }
            [one] => {
                let one = one.clone();
                self.update(obj, &one, body).map(|id| (id, false))
            }
            _ => Err(DmlError::new(
                "MULTIPLE_RECORDS",
                format!("More than one record found for external id field {fd_name} with value {ext_value}."),
            )
            .with_fields(matches.iter().map(|m| ids::to18(m)).collect())),
        }
    }

    /// Deletes a record (moves it to the recycle bin).
    ///
    /// # Errors
    /// `NOT_FOUND`, `ENTITY_IS_DELETED`, `MALFORMED_ID` or a rule refusing the delete.
    pub fn delete(&mut self, obj: usize, raw_id: &str) -> DmlResult<String> {
        let (id15, old) = self.live_record(obj, raw_id)?;
        let def = self.def(obj);
        if !def.deletable {
            return Err(DmlError::new(
                "INSUFFICIENT_ACCESS_OR_READONLY",
                format!("entity type {} does not support delete", def.name),
            ));
        }
        let name = def.name.clone();
        match name.as_str() {
            "Order" => {
                if self.text(obj, &old, "Status") == "Activated" {
                    return Err(DmlError::new(
                        "FIELD_INTEGRITY_EXCEPTION",
                        "You can't delete an activated order. Set its status to Draft first.",
                    ));
                }
                for item in self.org.items_of_order(&id15) {
                    if let Some(item_obj) = self.org.meta.object_index("OrderItem") {
                        self.delete_row(item_obj, &item)?;
                    }
                }
            }
            "OrderItem" => {
                self.ensure_order_open(obj, &old)?;
            }
            "Pricebook2"
                if old.get(id_index(self.def(obj), "IsStandard")) == &Value::Bool(true) =>
            {
                return Err(DmlError::new(
                    "DELETE_FAILED",
                    "Cannot delete the standard price book",
                ));
            }
            _ => {}
        }
        self.delete_row(obj, &id15)?;
        if name == "OrderItem" {
            self.rules_after(obj, &name, Some(&old), None)?;
        }
        Ok(ids::to18(&id15))
    }

    fn delete_row(&mut self, obj: usize, id15: &str) -> DmlResult<()> {
        let Some(old) = self.org.tables[obj].rows.get(id15).cloned() else {
            return Err(not_found());
        };
        let mut rec = old;
        let user = self.user.clone();
        let def = self.def(obj);
        rec.set(id_index(def, "IsDeleted"), Value::Bool(true));
        stamp_system_fields(def, &mut rec, id15, &user, self.now, false);
        self.write(obj, id15, rec.clone());
        self.record_change(obj, id15, ChangeType::Delete, None, &rec);
        Ok(())
    }

    /// Restores a deleted record.
    ///
    /// # Errors
    /// `NOT_FOUND` when absent, `UNDELETE_FAILED` when it is not deleted.
    pub fn undelete(&mut self, raw_id: &str) -> DmlResult<String> {
        let Some((obj, id15)) = self.org.locate(raw_id) else {
            return Err(not_found());
        };
        let old = self.org.tables[obj]
            .rows
            .get(&id15)
            .cloned()
            .unwrap_or_default();
        let del = id_index(self.def(obj), "IsDeleted");
        if old.get(del) != &Value::Bool(true) {
            return Err(DmlError::new(
                "UNDELETE_FAILED",
                "Entity is not in the recycle bin",
            ));
        }
        let mut rec = old.clone();
        rec.set(del, Value::Bool(false));
        self.check_unique(obj, &id15, &rec)?;
        let user = self.user.clone();
        stamp_system_fields(self.def(obj), &mut rec, &id15, &user, self.now, false);
        self.write(obj, &id15, rec.clone());
        self.record_change(obj, &id15, ChangeType::Undelete, None, &rec);
        if self.def(obj).name == "OrderItem" {
            self.rules_after(obj, "OrderItem", None, Some(&rec))?;
        }
        Ok(ids::to18(&id15))
    }

    /// A live record by id, or the documented error.
    fn live_record(&self, obj: usize, raw_id: &str) -> DmlResult<(String, Record)> {
        let def = self.def(obj);
        let Some(id15) = ids::parse(raw_id).filter(|id| id.starts_with(&def.key_prefix)) else {
            return Err(DmlError::new(
                "MALFORMED_ID",
                format!("{} ID: id value of incorrect type: {raw_id}", def.label),
            )
            .with_fields(vec!["Id".into()]));
        };
        let Some(rec) = self.org.tables[obj].rows.get(&id15) else {
            return Err(not_found());
        };
        if rec.get(id_index(def, "IsDeleted")) == &Value::Bool(true) {
            return Err(DmlError::new("ENTITY_IS_DELETED", "entity is deleted"));
        }
        Ok((id15, rec.clone()))
    }

    fn text(&self, obj: usize, rec: &Record, field: &str) -> String {
        rec.get(id_index(self.def(obj), field))
            .as_text()
            .unwrap_or_default()
            .to_string()
    }

    fn set(&self, obj: usize, rec: &mut Record, field: &str, v: Value) {
        if let Some(i) = self.def(obj).field_index(field) {
            rec.set(i, v);
        }
    }

    fn num(&self, obj: usize, rec: &Record, field: &str) -> Decimal {
        rec.get(id_index(self.def(obj), field))
            .as_number()
            .unwrap_or(Decimal::ZERO)
    }

    fn ensure_order_open(&self, item_obj: usize, item: &Record) -> DmlResult<()> {
        let order_id = self.text(item_obj, item, "OrderId");
        if let Some(order_obj) = self.org.meta.object_index("Order")
            && let Some((_, order)) = self.org.find(order_obj, &order_id)
            && self.text(order_obj, order, "Status") == "Activated"
        {
            return Err(DmlError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't add, change or delete products on an activated order.",
            )
            .with_fields(vec!["OrderId".into()]));
        }
        Ok(())
    }

    /// On an activated order the structural fields of an item are frozen. Every simulated user
    /// holds the "Edit Activated Orders" permission, so the item's other fields (custom fields,
    /// `Description`, dates) stay editable; adding and deleting items stays refused
    /// ([`Self::ensure_order_open`]).
    fn ensure_item_editable(&self, obj: usize, old: &Record, rec: &Record) -> DmlResult<()> {
        let order_id = self.text(obj, old, "OrderId");
        let Some(order_obj) = self.org.meta.object_index("Order") else {
            return Ok(());
        };
        let activated = self
            .org
            .find(order_obj, &order_id)
            .is_some_and(|(_, order)| self.text(order_obj, order, "Status") == "Activated");
        if !activated {
            return Ok(());
        }
        let def = self.def(obj);
        let changed: Vec<String> = FROZEN_ITEM_FIELDS
            .iter()
            .filter(|f| {
                let i = id_index(def, f);
                old.get(i) != rec.get(i)
            })
            .map(|f| (*f).to_string())
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        Err(DmlError::new(
            "FIELD_INTEGRITY_EXCEPTION",
            format!(
                "You can't change {} of a product on an activated order.",
                changed.join(", ")
            ),
        )
        .with_fields(changed))
    }

    /// Object rules that run before a write (derived fields, state checks).
    fn rules_before(
        &mut self,
        obj: usize,
        name: &str,
        old: Option<&Record>,
        rec: &mut Record,
    ) -> DmlResult<()> {
        let now = self.now;
        match name {
            "Order" => {
                let status = self.text(obj, rec, "Status");
                match old {
                    None => {
                        if status != "Draft" {
                            return Err(DmlError::new(
                                "FIELD_INTEGRITY_EXCEPTION",
                                "You can't create an order with an activated status. Create it as Draft, add products, then activate it.",
                            )
                            .with_fields(vec!["Status".into()]));
                        }
                        let n = self.next_autonumber(obj);
                        self.set(
                            obj,
                            rec,
                            "OrderNumber",
                            Value::Text(format!("{:08}", 99 + n)),
                        );
                        self.set(obj, rec, "TotalAmount", Value::Number(Decimal::ZERO));
                    }
                    Some(old) => {
                        let was = self.text(obj, old, "Status");
                        let id15 = ids::parse(&self.text(obj, old, "Id")).unwrap_or_default();
                        let has_items = !self.org.items_of_order(&id15).is_empty();
                        for field in ["AccountId", "Pricebook2Id"] {
                            let changed = self.text(obj, old, field) != self.text(obj, rec, field);
                            if changed && was == "Activated" && status == "Activated" {
                                return Err(DmlError::new(
                                    "FIELD_INTEGRITY_EXCEPTION",
                                    format!("You can't change {field} on an activated order."),
                                )
                                .with_fields(vec![field.into()]));
                            }
                            if changed && field == "Pricebook2Id" && has_items {
                                return Err(DmlError::new(
                                    "FIELD_INTEGRITY_EXCEPTION",
                                    "You can't change the price book of an order that has products.",
                                )
                                .with_fields(vec![field.into()]));
                            }
                        }
                        if was != "Activated" && status == "Activated" {
                            if !has_items {
                                return Err(DmlError::new(
                                    "FIELD_INTEGRITY_EXCEPTION",
                                    "You can't activate an order that has no products.",
                                )
                                .with_fields(vec!["Status".into()]));
                            }
                            let user = Value::Text(ids::to18(&self.user));
                            self.set(obj, rec, "ActivatedDate", Value::DateTime(now));
                            self.set(obj, rec, "ActivatedById", user);
                        }
                    }
                }
                self.set(obj, rec, "StatusCode", Value::Text(status));
            }
            "OrderItem" => {
                if let Some(old) = old {
                    self.ensure_item_editable(obj, old, rec)?;
                } else {
                    self.ensure_order_open(obj, rec)?;
                    let order_obj = self.org.meta.object_index("Order").unwrap_or(0);
                    let pbe_obj = self.org.meta.object_index("PricebookEntry").unwrap_or(0);
                    let order_id = self.text(obj, rec, "OrderId");
                    let entry_id = self.text(obj, rec, "PricebookEntryId");
                    let order_pb = self
                        .org
                        .find(order_obj, &order_id)
                        .map(|(_, o)| self.text(order_obj, o, "Pricebook2Id"))
                        .unwrap_or_default();
                    let entry = self
                        .org
                        .find(pbe_obj, &entry_id)
                        .map(|(_, e)| e.clone())
                        .unwrap_or_default();
                    let entry_pb = self.text(pbe_obj, &entry, "Pricebook2Id");
                    if order_pb.is_empty() || !order_pb.eq_ignore_ascii_case(&entry_pb) {
                        return Err(DmlError::new(
                            "FIELD_INTEGRITY_EXCEPTION",
                            "field integrity exception: PricebookEntryId (pricebook entry is in a different pricebook than the one assigned to the Order, or Order has no pricebook assigned)",
                        )
                        .with_fields(vec!["PricebookEntryId".into()]));
                    }
                    if entry.get(id_index(self.def(pbe_obj), "IsActive")) != &Value::Bool(true) {
                        return Err(DmlError::new(
                            "FIELD_INTEGRITY_EXCEPTION",
                            "field integrity exception: PricebookEntryId (pricebook entry is inactive)",
                        )
                        .with_fields(vec!["PricebookEntryId".into()]));
                    }
                    let product = self.text(pbe_obj, &entry, "Product2Id");
                    let given = self.text(obj, rec, "Product2Id");
                    if !given.is_empty() && !given.eq_ignore_ascii_case(&product) {
                        return Err(DmlError::new(
                            "FIELD_INTEGRITY_EXCEPTION",
                            "field integrity exception: Product2Id (product does not match the pricebook entry)",
                        )
                        .with_fields(vec!["Product2Id".into()]));
                    }
                    self.set(obj, rec, "Product2Id", Value::Text(product));
                    let list = self.num(pbe_obj, &entry, "UnitPrice");
                    self.set(obj, rec, "ListPrice", Value::Number(list));
                    let n = self.next_autonumber(obj);
                    self.set(obj, rec, "OrderItemNumber", Value::Text(format!("{n:010}")));
                }
                let total = self
                    .num(obj, rec, "Quantity")
                    .checked_mul(self.num(obj, rec, "UnitPrice"))
                    .ok_or_else(out_of_range)?;
                self.set(obj, rec, "TotalPrice", Value::Number(total.normalize()));
            }
            "PricebookEntry" if old.is_none() => {
                let pb_obj = self.org.meta.object_index("Pricebook2").unwrap_or(0);
                let p_obj = self.org.meta.object_index("Product2").unwrap_or(0);
                let pb = self.text(obj, rec, "Pricebook2Id");
                let product = self.text(obj, rec, "Product2Id");
                let mut standard_ok = false;
                let pe_def = self.def(obj);
                let (pbi, pi, ai, di) = (
                    id_index(pe_def, "Pricebook2Id"),
                    id_index(pe_def, "Product2Id"),
                    id_index(pe_def, "IsActive"),
                    id_index(pe_def, "IsDeleted"),
                );
                for r in self.org.tables[obj].rows.values() {
                    if r.get(di) == &Value::Bool(true)
                        || r.get(pi).as_text() != Some(product.as_str())
                    {
                        continue;
                    }
                    let rpb = r.get(pbi).as_text().unwrap_or_default();
                    if rpb == pb {
                        return Err(DmlError::new(
                            "DUPLICATE_VALUE",
                            "This price definition already exists in this price book",
                        ));
                    }
                    if rpb == self.org.standard_pricebook && r.get(ai) == &Value::Bool(true) {
                        standard_ok = true;
                    }
                }
                if pb != self.org.standard_pricebook && !standard_ok {
                    return Err(DmlError::new(
                        "STANDARD_PRICE_NOT_DEFINED",
                        "Before creating a custom price, create a standard price.",
                    ));
                }
                let _ = pb_obj;
                if let Some((_, p)) = self.org.find(p_obj, &product) {
                    let pname = self.text(p_obj, p, "Name");
                    let code = p.get(id_index(self.def(p_obj), "ProductCode")).clone();
                    self.set(obj, rec, "Name", Value::Text(pname));
                    self.set(obj, rec, "ProductCode", code);
                }
            }
            "Case" => {
                if old.is_none() {
                    let n = self.next_autonumber(obj);
                    self.set(
                        obj,
                        rec,
                        "CaseNumber",
                        Value::Text(format!("{:08}", 999 + n)),
                    );
                }
                let closed = self.text(obj, rec, "Status") == "Closed";
                let was_closed = old.is_some_and(|o| self.text(obj, o, "Status") == "Closed");
                self.set(obj, rec, "IsClosed", Value::Bool(closed));
                if closed && !was_closed {
                    self.set(obj, rec, "ClosedDate", Value::DateTime(now));
                } else if !closed {
                    self.set(obj, rec, "ClosedDate", Value::Null);
                }
            }
            "Contact" => {
                let first = self.text(obj, rec, "FirstName");
                let last = self.text(obj, rec, "LastName");
                let full = if first.is_empty() {
                    last
                } else {
                    format!("{first} {last}")
                };
                self.set(obj, rec, "Name", Value::Text(full));
            }
            "FulfillmentOrder" => {
                let category = match self.text(obj, rec, "Status").as_str() {
                    "Fulfilled" => "Fulfilled",
                    "Cancelled" => "Cancelled",
                    _ => "Activated",
                };
                self.set(obj, rec, "StatusCategory", Value::Text(category.into()));
                self.autonumber_field(obj, old, rec, "FulfillmentOrderNumber", "FO-");
            }
            "FulfillmentOrderLineItem" => {
                self.autonumber_field(obj, old, rec, "FulfillmentOrderLineItemNumber", "FOLI-")
            }
            "Shipment" => self.autonumber_field(obj, old, rec, "ShipmentNumber", "SH-"),
            "ShipmentItem" => self.autonumber_field(obj, old, rec, "ShipmentItemNumber", "SI-"),
            "ReturnOrder" => self.autonumber_field(obj, old, rec, "ReturnOrderNumber", "RO-"),
            "ReturnOrderLineItem" => {
                self.autonumber_field(obj, old, rec, "ReturnOrderLineItemNumber", "ROLI-")
            }
            "Invoice" => self.autonumber_field(obj, old, rec, "DocumentNumber", "INV-"),
            "CreditMemo" => self.autonumber_field(obj, old, rec, "DocumentNumber", "CM-"),
            _ => {}
        }
        Ok(())
    }

    fn autonumber_field(
        &mut self,
        obj: usize,
        old: Option<&Record>,
        rec: &mut Record,
        field: &str,
        prefix: &str,
    ) {
        if old.is_none() {
            let n = self.next_autonumber(obj);
            self.set(obj, rec, field, Value::Text(format!("{prefix}{n:08}")));
        }
    }

    /// Roll-ups after a write: an order's `TotalAmount` follows its items.
    fn rules_after(
        &mut self,
        obj: usize,
        name: &str,
        old: Option<&Record>,
        new: Option<&Record>,
    ) -> DmlResult<()> {
        if name != "OrderItem" {
            return Ok(());
        }
        let before = old
            .map(|o| self.num(obj, o, "TotalPrice"))
            .unwrap_or(Decimal::ZERO);
        let after = new
            .map(|n| self.num(obj, n, "TotalPrice"))
            .unwrap_or(Decimal::ZERO);
        let delta = after.checked_sub(before).ok_or_else(out_of_range)?;
        if delta == Decimal::ZERO {
            return Ok(());
        }
        let order_id = new
            .or(old)
            .map(|r| self.text(obj, r, "OrderId"))
            .unwrap_or_default();
        let Some(order_obj) = self.org.meta.object_index("Order") else {
            return Ok(());
        };
        let Some((order15, order)) = self
            .org
            .find(order_obj, &order_id)
            .map(|(i, r)| (i, r.clone()))
        else {
            return Ok(());
        };
        let mut rec = order.clone();
        let total = self
            .num(order_obj, &order, "TotalAmount")
            .checked_add(delta)
            .ok_or_else(out_of_range)?;
        self.set(
            order_obj,
            &mut rec,
            "TotalAmount",
            Value::Number(total.normalize()),
        );
        self.apply_update(order_obj, &order15, &order, rec);
        Ok(())
    }

    fn record_change(
        &mut self,
        obj: usize,
        id15: &str,
        kind: ChangeType,
        old: Option<&Record>,
        rec: &Record,
    ) {
        let def = self.def(obj);
        let mut fields = Vec::new();
        let mut nulled = Vec::new();
        match kind {
            ChangeType::Update => {
                if let Some(old) = old {
                    for (i, fd) in def.fields.iter().enumerate() {
                        if fd.in_cdc && old.get(i) != rec.get(i) {
                            fields.push(i);
                            if rec.get(i).is_null() {
                                nulled.push(i);
                            }
                        }
                    }
                }
            }
            ChangeType::Create | ChangeType::Undelete => {
                for (i, fd) in def.fields.iter().enumerate() {
                    if fd.in_cdc && !rec.get(i).is_null() {
                        fields.push(i);
                    }
                }
            }
            _ => {}
        }
        let values = fields.iter().map(|&i| (i, rec.get(i).clone())).collect();
        self.changes.push(PendingChange {
            object: obj,
            record_id: ids::to18(id15),
            change_type: kind,
            changed: fields,
            nulled,
            values,
        });
    }
}

fn out_of_range() -> DmlError {
    DmlError::new(
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Total Price: value outside of valid range on numeric field",
    )
    .with_fields(vec!["TotalPrice".into()])
}

fn not_found() -> DmlError {
    DmlError::new("NOT_FOUND", "The requested resource does not exist")
}
