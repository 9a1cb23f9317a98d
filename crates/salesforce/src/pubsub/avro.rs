//! A small schema-driven Avro binary decoder: Pub/Sub payloads are raw Avro (no container
//! header, no fingerprint) in the writer's schema, which `GetSchema` returns for the event's
//! schema id. Decoding always uses that writer schema, and the result is read by field name,
//! so a field added to an object (a new schema id) never breaks decoding.
//!
//! Supports every Avro type Salesforce uses (null, boolean, int, long, float, double, bytes,
//! string, record, enum, array, map, union, fixed, named references). Lengths are checked
//! against the bytes left and nesting is bounded, so hostile input gives an error, never a
//! panic or a huge allocation.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json};

/// Deepest nesting accepted (records in records, arrays of arrays…).
const MAX_DEPTH: usize = 64;
/// Most items one array or map block may announce when its items take no bytes.
const MAX_EMPTY_ITEMS: i64 = 1 << 16;

/// An Avro schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// `null`.
    Null,
    /// `boolean`.
    Boolean,
    /// `int` (32-bit zig-zag varint).
    Int,
    /// `long` (64-bit zig-zag varint).
    Long,
    /// `float` (4 bytes little-endian).
    Float,
    /// `double` (8 bytes little-endian).
    Double,
    /// `bytes`.
    Bytes,
    /// `string`.
    String,
    /// A record.
    Record {
        /// Full name.
        name: String,
        /// Fields in order.
        fields: Vec<Field>,
    },
    /// An enum.
    Enum {
        /// Full name.
        name: String,
        /// Symbols in order.
        symbols: Vec<String>,
    },
    /// An array.
    Array(Box<Schema>),
    /// A map with string keys.
    Map(Box<Schema>),
    /// A union.
    Union(Vec<Schema>),
    /// Fixed-size bytes.
    Fixed {
        /// Full name.
        name: String,
        /// Size in bytes.
        size: usize,
    },
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Type.
    pub schema: Schema,
}

impl Schema {
    /// The fields of a record, or of the record branch of a `["null", record]` union.
    pub fn record_fields(&self) -> Option<&[Field]> {
        match self {
            Schema::Record { fields, .. } => Some(fields),
            Schema::Union(branches) => branches.iter().find_map(Schema::record_fields),
            _ => None,
        }
    }
}

/// A schema that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Avro schema: {0}")]
pub struct SchemaError(pub String);

/// A payload that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Avro payload does not match its schema at byte {offset}: {message}")]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// Parses a schema from its JSON text.
///
/// # Errors
/// [`SchemaError`] naming the first problem.
pub fn parse_schema(text: &str) -> Result<Schema, SchemaError> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| SchemaError(format!("not JSON: {e}")))?;
    let mut named = HashMap::new();
    parse(&json, "", &mut named, 0)
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

fn register(named: &mut HashMap<String, Schema>, full: &str, schema: &Schema) {
    named.insert(full.to_owned(), schema.clone());
    if let Some((_, short)) = full.rsplit_once('.') {
        named
            .entry(short.to_owned())
            .or_insert_with(|| schema.clone());
    }
}

fn parse(
    json: &Json,
    namespace: &str,
    named: &mut HashMap<String, Schema>,
    depth: usize,
) -> Result<Schema, SchemaError> {
    if depth > MAX_DEPTH {
        return Err(SchemaError("nesting too deep".into()));
    }
    match json {
        Json::String(name) => primitive(name)
            .or_else(|| named.get(&full_name(name, namespace)).cloned())
            .or_else(|| named.get(name.as_str()).cloned())
            .ok_or_else(|| SchemaError(format!("unknown type `{name}`"))),
        Json::Array(branches) => Ok(Schema::Union(
            branches
                .iter()
                .map(|b| parse(b, namespace, named, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        Json::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| SchemaError("a schema object has no `type`".into()))?;
            let Json::String(ty) = ty else {
                return parse(ty, namespace, named, depth + 1);
            };
            let ns = obj
                .get("namespace")
                .and_then(Json::as_str)
                .unwrap_or(namespace);
            let name = || {
                obj.get("name")
                    .and_then(Json::as_str)
                    .map(|n| full_name(n, ns))
                    .ok_or_else(|| SchemaError(format!("a {ty} has no name")))
            };
            match ty.as_str() {
                "record" | "error" => {
                    let name = name()?;
                    let inner_ns = name.rsplit_once('.').map_or("", |(n, _)| n).to_owned();
                    let list = obj
                        .get("fields")
                        .and_then(Json::as_array)
                        .ok_or_else(|| SchemaError(format!("record {name} has no fields")))?;
                    let mut fields = Vec::with_capacity(list.len());
                    for f in list {
                        let fname = f
                            .get("name")
                            .and_then(Json::as_str)
                            .ok_or_else(|| SchemaError(format!("a field of {name} has no name")))?;
                        let fty = f.get("type").ok_or_else(|| {
                            SchemaError(format!("field {name}.{fname} has no type"))
                        })?;
                        fields.push(Field {
                            name: fname.to_owned(),
                            schema: parse(fty, &inner_ns, named, depth + 1)?,
                        });
                    }
                    let schema = Schema::Record {
                        name: name.clone(),
                        fields,
                    };
                    register(named, &name, &schema);
                    Ok(schema)
                }
                "enum" => {
                    let name = name()?;
                    let symbols = obj
                        .get("symbols")
                        .and_then(Json::as_array)
                        .ok_or_else(|| SchemaError(format!("enum {name} has no symbols")))?
                        .iter()
                        .map(|s| {
                            s.as_str().map(str::to_owned).ok_or_else(|| {
                                SchemaError(format!("enum {name} has a non-string symbol"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let schema = Schema::Enum {
                        name: name.clone(),
                        symbols,
                    };
                    register(named, &name, &schema);
                    Ok(schema)
                }
                "fixed" => {
                    let name = name()?;
                    let size = obj
                        .get("size")
                        .and_then(Json::as_u64)
                        .and_then(|s| usize::try_from(s).ok())
                        .ok_or_else(|| SchemaError(format!("fixed {name} has no size")))?;
                    let schema = Schema::Fixed {
                        name: name.clone(),
                        size,
                    };
                    register(named, &name, &schema);
                    Ok(schema)
                }
                "array" => {
                    let items = obj
                        .get("items")
                        .ok_or_else(|| SchemaError("an array has no items".into()))?;
                    Ok(Schema::Array(Box::new(parse(items, ns, named, depth + 1)?)))
                }
                "map" => {
                    let values = obj
                        .get("values")
                        .ok_or_else(|| SchemaError("a map has no values".into()))?;
                    Ok(Schema::Map(Box::new(parse(values, ns, named, depth + 1)?)))
                }
                other => parse(&Json::String(other.to_owned()), ns, named, depth + 1),
            }
        }
        other => Err(SchemaError(format!("`{other}` is not a schema"))),
    }
}

fn primitive(name: &str) -> Option<Schema> {
    Some(match name {
        "null" => Schema::Null,
        "boolean" => Schema::Boolean,
        "int" => Schema::Int,
        "long" => Schema::Long,
        "float" => Schema::Float,
        "double" => Schema::Double,
        "bytes" => Schema::Bytes,
        "string" => Schema::String,
        _ => return None,
    })
}

/// Reads Avro binary values from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn fail(&self, message: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(self.fail(format!("needs {n} bytes, {} left", self.left())));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A zig-zag varint `long`.
    ///
    /// # Errors
    /// When the bytes end early or the varint is longer than 10 bytes.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(self.fail("varint longer than 10 bytes"))
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| self.fail(format!("int out of range: {v}")))
    }

    fn length(&mut self) -> Result<usize, DecodeError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.fail(format!("negative length {n}")))?;
        if n > self.left() {
            return Err(self.fail(format!("length {n} exceeds the {} bytes left", self.left())));
        }
        Ok(n)
    }

    /// Whether every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// Decodes one value of `schema` to JSON (unions flattened to the chosen branch; bytes and
/// fixed as base64; enums as their symbol).
///
/// # Errors
/// [`DecodeError`] where the bytes stop matching the schema.
pub fn decode(schema: &Schema, r: &mut Reader<'_>) -> Result<Json, DecodeError> {
    decode_at(schema, r, 0)
}

/// Decodes a whole payload that must hold exactly one record of `schema`.
///
/// # Errors
/// [`DecodeError`] when the bytes do not match or bytes are left over.
pub fn decode_payload(schema: &Schema, payload: &[u8]) -> Result<Json, DecodeError> {
    let mut r = Reader::new(payload);
    let value = decode(schema, &mut r)?;
    if !r.at_end() {
        return Err(r.fail(format!("{} bytes left after the record", r.left())));
    }
    Ok(value)
}

fn decode_at(schema: &Schema, r: &mut Reader<'_>, depth: usize) -> Result<Json, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.fail("nesting too deep"));
    }
    Ok(match schema {
        Schema::Null => Json::Null,
        Schema::Boolean => match r.take(1)?[0] {
            0 => Json::Bool(false),
            1 => Json::Bool(true),
            b => return Err(r.fail(format!("boolean byte {b}"))),
        },
        Schema::Int => Json::from(r.int()?),
        Schema::Long => Json::from(r.long()?),
        Schema::Float => {
            let b = r.take(4)?;
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Json::from(f64::from(v))
        }
        Schema::Double => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Json::from(f64::from_le_bytes(a))
        }
        Schema::Bytes => {
            let n = r.length()?;
            Json::String(STANDARD.encode(r.take(n)?))
        }
        Schema::String => {
            let n = r.length()?;
            let bytes = r.take(n)?;
            let text = std::str::from_utf8(bytes)
                .map_err(|e| r.fail(format!("string is not UTF-8: {e}")))?;
            Json::String(text.to_owned())
        }
        Schema::Fixed { size, .. } => Json::String(STANDARD.encode(r.take(*size)?)),
        Schema::Enum { name, symbols } => {
            let i = r.long()?;
            let symbol = usize::try_from(i)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| r.fail(format!("enum {name} has no symbol {i}")))?;
            Json::String(symbol.clone())
        }
        Schema::Union(branches) => {
            let i = r.long()?;
            let branch = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| r.fail(format!("union has no branch {i}")))?;
            decode_at(branch, r, depth + 1)?
        }
        Schema::Record { fields, .. } => {
            let mut out = Map::new();
            for f in fields {
                out.insert(f.name.clone(), decode_at(&f.schema, r, depth + 1)?);
            }
            Json::Object(out)
        }
        Schema::Array(items) => {
            let mut out = Vec::new();
            blocks(r, items, |r| {
                out.push(decode_at(items, r, depth + 1)?);
                Ok(())
            })?;
            Json::Array(out)
        }
        Schema::Map(values) => {
            let mut out = Map::new();
            blocks(r, &Schema::String, |r| {
                let n = r.length()?;
                let key = std::str::from_utf8(r.take(n)?)
                    .map_err(|e| r.fail(format!("map key is not UTF-8: {e}")))?
                    .to_owned();
                let value = decode_at(values, r, depth + 1)?;
                out.insert(key, value);
                Ok(())
            })?;
            Json::Object(out)
        }
    })
}

/// Reads array/map blocks: a count (negative: followed by a byte size), items, until 0.
fn blocks(
    r: &mut Reader<'_>,
    item: &Schema,
    mut each: impl FnMut(&mut Reader<'_>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let empty_items = matches!(item, Schema::Null);
    let mut total: i64 = 0;
    loop {
        let mut count = r.long()?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            count = count
                .checked_neg()
                .ok_or_else(|| r.fail("block count overflow"))?;
            r.length()?; // block size in bytes; items are read one by one anyway
        }
        total = total.saturating_add(count);
        let limit = if empty_items {
            MAX_EMPTY_ITEMS
        } else {
            i64::try_from(r.left()).unwrap_or(i64::MAX)
        };
        if total > limit {
            return Err(r.fail(format!(
                "block announces {count} items, more than the payload can hold"
            )));
        }
        for _ in 0..count {
            each(r)?;
        }
    }
}

/// Expands Pub/Sub bitmap field lists (`["0x24", "3-0x1"]`) to field names. Element 0 marks
/// top-level fields (bit *i* = the schema's field *i*); `"<parent>-0x…"` marks fields of the
/// compound field at top-level index `parent`, named `Parent.Child`. Elements that are not
/// bitmaps (already names) are kept.
///
/// # Errors
/// A message when a bit or parent index is outside the schema.
pub fn expand_bitmaps(fields: &[Field], entries: &[String]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in entries {
        let (parent, hex) = match entry.split_once('-') {
            Some((p, h)) if h.starts_with("0x") => (
                Some(
                    p.parse::<usize>()
                        .map_err(|_| format!("bitmap `{entry}` has a bad parent index"))?,
                ),
                h,
            ),
            _ => (None, entry.as_str()),
        };
        let Some(digits) = hex.strip_prefix("0x") else {
            names.push(entry.clone());
            continue;
        };
        let (scope, prefix): (&[Field], String) = match parent {
            None => (fields, String::new()),
            Some(p) => {
                let field = fields.get(p).ok_or_else(|| {
                    format!(
                        "bitmap `{entry}` names field {p}, the schema has {}",
                        fields.len()
                    )
                })?;
                let nested = field.schema.record_fields().ok_or_else(|| {
                    format!("bitmap `{entry}`: field {} is not compound", field.name)
                })?;
                (nested, format!("{}.", field.name))
            }
        };
        for (k, c) in digits.chars().rev().enumerate() {
            let nibble = c
                .to_digit(16)
                .ok_or_else(|| format!("bitmap `{entry}` is not hexadecimal"))?;
            for b in 0..4 {
                if nibble & (1 << b) != 0 {
                    let i = k * 4 + b;
                    let f = scope.get(i).ok_or_else(|| {
                        format!(
                            "bitmap `{entry}` sets bit {i}, the schema has {} fields",
                            scope.len()
                        )
                    })?;
                    names.push(format!("{prefix}{}", f.name));
                }
            }
        }
    }
    Ok(names)
}
