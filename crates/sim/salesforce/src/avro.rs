//! Minimal Avro binary encoding and decoding (no container header), enough for change-event and
//! platform-event payloads: null, boolean, int, long, double, string, enum, array, union, record.

use serde_json::Value as Json;

/// Appends a zig-zag varint `long` (also used for `int`).
pub fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if n & !0x7f == 0 {
            out.push(n as u8);
            return;
        }
        out.push(((n & 0x7f) | 0x80) as u8);
        n >>= 7;
    }
}

/// Appends a string.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a double (little-endian IEEE 754).
pub fn put_double(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a boolean.
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Appends an array of strings (one block, then the end marker).
pub fn put_string_array(out: &mut Vec<u8>, items: &[String]) {
    if !items.is_empty() {
        put_long(out, items.len() as i64);
        for s in items {
            put_string(out, s);
        }
    }
    put_long(out, 0);
}

/// Why a payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Reads Avro binary data.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Whether all bytes were consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| DecodeError("unexpected end of payload".into()))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a zig-zag varint.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(DecodeError("varint too long".into()));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// Reads a string.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len =
            usize::try_from(self.long()?).map_err(|_| DecodeError("negative length".into()))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| DecodeError("string runs past the payload".into()))?;
        let s = std::str::from_utf8(&self.data[self.pos..end])
            .map_err(|_| DecodeError("string is not UTF-8".into()))?
            .to_string();
        self.pos = end;
        Ok(s)
    }

    /// Reads a double.
    pub fn double(&mut self) -> Result<f64, DecodeError> {
        let end = self.pos + 8;
        let bytes: [u8; 8] = self
            .data
            .get(self.pos..end)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DecodeError("unexpected end of payload".into()))?;
        self.pos = end;
        Ok(f64::from_le_bytes(bytes))
    }

    /// Reads a boolean.
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad boolean".into())),
        }
    }

    /// Reads one value of a primitive Avro type named `ty` as JSON.
    pub fn primitive(&mut self, ty: &str) -> Result<Json, DecodeError> {
        Ok(match ty {
            "null" => Json::Null,
            "boolean" => Json::Bool(self.boolean()?),
            "int" | "long" => Json::from(self.long()?),
            "double" => serde_json::Number::from_f64(self.double()?)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            "string" => Json::String(self.string()?),
            other => return Err(DecodeError(format!("unsupported type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_use_zigzag_varints() {
        let mut out = Vec::new();
        for v in [0, -1, 1, 63, -64, 64, 1_700_000_000_000, i64::MIN, i64::MAX] {
            out.clear();
            put_long(&mut out, v);
            assert_eq!(Reader::new(&out).long(), Ok(v));
        }
        out.clear();
        put_long(&mut out, -1);
        assert_eq!(out, vec![1]);
        out.clear();
        put_long(&mut out, 64);
        assert_eq!(out, vec![0x80, 0x01]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0x80]).long().is_err());
        assert!(Reader::new(&[0x10, b'a']).string().is_err());
        assert!(Reader::new(&[1, 2]).double().is_err());
    }
}
