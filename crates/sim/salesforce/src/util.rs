//! Small wire helpers: percent-decoding, form bodies, HTTP replies.

use serde_json::Value as Json;

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`). Invalid escapes stay as-is.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` (query strings and form bodies).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The first value of `key` in parsed pairs.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An HTTP reply produced by the simulator's handlers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: &Json) -> Reply {
        Reply {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: serde_json::to_vec(&AttributesFirst(body)).unwrap_or_default(),
        }
    }

    /// An XML reply.
    pub fn xml(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/xml;charset=UTF-8".into())],
            body: body.into_bytes(),
        }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.into(), value));
        self
    }

    /// The REST error array `[{"message","errorCode"[,"fields"]}]`.
    pub fn error(status: u16, code: &str, message: &str, fields: Option<&[String]>) -> Reply {
        let mut e = serde_json::json!({"message": message, "errorCode": code});
        if let (Some(f), Some(obj)) = (fields, e.as_object_mut()) {
            obj.insert("fields".into(), Json::from(f.to_vec()));
        }
        Reply::json(status, &Json::Array(vec![e]))
    }
}

/// Serializes JSON with every object's `attributes` key first, as Salesforce writes records.
struct AttributesFirst<'a>(&'a Json);

impl serde::Serialize for AttributesFirst<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Json::Object(map) => {
                let mut m = serializer.serialize_map(Some(map.len()))?;
                if let Some(attributes) = map.get("attributes") {
                    m.serialize_entry("attributes", &AttributesFirst(attributes))?;
                }
                for (k, v) in map.iter().filter(|(k, _)| *k != "attributes") {
                    m.serialize_entry(k, &AttributesFirst(v))?;
                }
                m.end()
            }
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&AttributesFirst(item))?;
                }
                seq.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Escapes text for XML.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text of the first element with local name `name` (any namespace prefix).
pub fn xml_element(doc: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(rel) = doc[from..].find('<') {
        let start = from + rel + 1;
        let end_tag = doc[start..].find('>')? + start;
        let tag = &doc[start..end_tag];
        from = end_tag;
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let tag_name = tag.split_whitespace().next().unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or("");
        if local != name {
            continue;
        }
        if tag.ends_with('/') {
            return Some(String::new());
        }
        let close = format!("</{tag_name}>");
        let body_end = doc[end_tag + 1..].find(&close)? + end_tag + 1;
        let text = &doc[end_tag + 1..body_end];
        return Some(
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        let p = parse_form("q=SELECT+Id%2C+Name+FROM+Account&x=%ZZ");
        assert_eq!(param(&p, "q"), Some("SELECT Id, Name FROM Account"));
        assert_eq!(param(&p, "x"), Some("%ZZ"));
        assert_eq!(percent_decode("%", false), "%");
    }

    #[test]
    fn records_are_written_attributes_first() {
        let body = serde_json::json!([{"Id": "1", "attributes": {"url": "/x", "type": "Account"}, "Amount": 2.5}]);
        let text = String::from_utf8(Reply::json(200, &body).body).unwrap_or_default();
        assert!(text.starts_with(r#"[{"attributes":{"#), "{text}");
        assert_eq!(serde_json::from_str::<Json>(&text).ok(), Some(body));
    }

    #[test]
    fn xml_elements_are_found_with_any_prefix() {
        let doc = "<env:Body><n1:login><n1:username>a&amp;b</n1:username><password>pw</password></n1:login></env:Body>";
        assert_eq!(xml_element(doc, "username").as_deref(), Some("a&b"));
        assert_eq!(xml_element(doc, "password").as_deref(), Some("pw"));
        assert_eq!(xml_element(doc, "missing"), None);
    }
}
