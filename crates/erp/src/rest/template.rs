//! Path templates: literal text with `{dotted.path}` placeholders filled from the call
//! context. Each value is encoded as one path segment, so a reference holding `/` or spaces
//! cannot change the route.

use serde_json::Value;

use super::http::encode;

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Vec<String>),
}

impl PathTemplate {
    /// Parses `text`.
    ///
    /// # Errors
    /// An unclosed or empty placeholder, or a path that does not start with `/`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("the path must start with '/', got {text:?}"));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
            let name = after[..close].trim();
            if name.is_empty() || name.split('.').any(str::is_empty) {
                return Err(format!("empty placeholder name in {text:?}"));
            }
            parts.push(Part::Field(name.split('.').map(str::to_owned).collect()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unopened placeholder in {text:?}"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Fills the placeholders from `context`.
    ///
    /// # Errors
    /// A placeholder names nothing, or an object or array.
    pub fn render(&self, context: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(path) => {
                    let value = path
                        .iter()
                        .try_fold(context, |value, key| value.get(key))
                        .ok_or_else(|| {
                            format!("placeholder {{{}}} names nothing", path.join("."))
                        })?;
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => {
                            return Err(format!("placeholder {{{}}} is null", path.join(".")));
                        }
                        _ => {
                            return Err(format!(
                                "placeholder {{{}}} is not a single value",
                                path.join(".")
                            ));
                        }
                    };
                    out.push_str(&encode(&text));
                }
            }
        }
        Ok(out)
    }
}
