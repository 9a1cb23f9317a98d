//! Read models: order summaries, inventory cache, accounts, and the index from any external
//! id to the order it names.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// A JSON document kept as its text: rendered once by whoever builds it (straight from its
/// typed form, with no `serde_json::Value` tree in between), stored as is, and parsed only
/// by a reader that needs its fields. Serializes as the document itself.
#[derive(Clone)]
pub struct JsonText(Text);

#[derive(Clone)]
enum Text {
    /// Rendered by `serde_json` or checked.
    Checked(Box<RawValue>),
    /// Rendered by a writer of the hub's own, unchecked (see [`JsonText::rendered`]).
    Rendered(String),
}

impl JsonText {
    /// Renders `value`.
    ///
    /// # Errors
    /// `value`'s `Serialize` failed (a map with non-string keys, say).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(|raw| Self(Text::Checked(raw)))
    }

    /// Takes `text` as its writer rendered it, unchecked: for a hot path whose writer is
    /// tested to give what `serde_json` gives (checking would cost about what rendering
    /// does). It is checked only if serialized.
    #[must_use]
    pub fn rendered(text: String) -> Self {
        Self(Text::Rendered(text))
    }

    /// Takes `text` as is, once checked to be one JSON document.
    ///
    /// # Errors
    /// `text` is not JSON.
    pub fn from_text(text: String) -> serde_json::Result<Self> {
        RawValue::from_string(text).map(|raw| Self(Text::Checked(raw)))
    }

    /// The document's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Text::Checked(raw) => raw.get(),
            Text::Rendered(text) => text,
        }
    }

    /// Parses the document into `T`.
    ///
    /// # Errors
    /// The document does not have `T`'s shape.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.as_str())
    }

    /// The document as a `serde_json::Value` (for a reader of a field or two).
    #[must_use]
    pub fn value(&self) -> serde_json::Value {
        self.parse().unwrap_or(serde_json::Value::Null)
    }
}

/// `null`.
impl Default for JsonText {
    fn default() -> Self {
        Self(Text::Checked(RawValue::NULL.to_owned()))
    }
}

/// The document itself.
impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Text::Checked(raw) => raw.serialize(serializer),
            Text::Rendered(text) => RawValue::from_string(text.clone())
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
        }
    }
}

/// Any JSON document.
impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Self(Text::Checked(raw)))
    }
}

impl From<&serde_json::Value> for JsonText {
    fn from(value: &serde_json::Value) -> Self {
        // Rendering a `Value` cannot fail: its map keys are strings.
        Self::of(value).unwrap_or_default()
    }
}

/// The same document: the same text, or the same JSON once parsed (PostgreSQL's `jsonb`
/// gives a document back with its own spacing and key order).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.value() == other.value()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The summary row of one order (typed columns for queries, the full summary as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRow {
    /// Hub order id.
    pub order_id: String,
    /// Salesforce id.
    pub sf_id: Option<String>,
    /// Salesforce order number.
    pub sf_number: Option<String>,
    /// ERP order number.
    pub erp_ref: Option<String>,
    /// Account.
    pub account: String,
    /// Channel.
    pub channel: String,
    /// Status name.
    pub status: String,
    /// Order value (decimal as text, exact).
    pub total: String,
    /// Currency.
    pub currency: String,
    /// When captured.
    #[serde(with = "time::serde::rfc3339::option")]
    pub captured_at: Option<OffsetDateTime>,
    /// When booked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub booked_at: Option<OffsetDateTime>,
    /// When fully shipped.
    #[serde(with = "time::serde::rfc3339::option")]
    pub shipped_at: Option<OffsetDateTime>,
    /// When fully delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// When fully invoiced.
    #[serde(with = "time::serde::rfc3339::option")]
    pub invoiced_at: Option<OffsetDateTime>,
    /// When fully paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    /// When closed, rejected or cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Stream version the row reflects.
    pub version: i64,
    /// Full summary (JSON).
    pub body: JsonText,
    /// Status last confirmed written to Salesforce.
    pub sf_synced_status: Option<String>,
    /// Stream version last confirmed written to Salesforce.
    pub sf_synced_version: Option<i64>,
    /// When Salesforce last confirmed a write.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sf_synced_at: Option<OffsetDateTime>,
}

/// Confirmation that Salesforce holds an order's state up to `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMark {
    /// Order.
    pub order_id: String,
    /// Version written (a mark never lowers a higher one).
    pub version: i64,
    /// Status written.
    pub status: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Which order rows to list. Rows come ordered by `order_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only these statuses.
    pub statuses: Vec<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Only rows not updated since.
    pub updated_before: Option<OffsetDateTime>,
    /// Only rows whose Salesforce copy is behind (`sf_synced_version < version` or never synced).
    pub sf_behind: bool,
    /// Order ids greater than this (cursor).
    pub after: Option<String>,
    /// Most rows (default 100).
    pub limit: Option<usize>,
}

/// Cached stock of one product at one location, with the time the ERP measured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRow {
    /// Product.
    pub sku: String,
    /// Location.
    pub location: String,
    /// On hand.
    pub on_hand: i64,
    /// Reserved.
    pub reserved: i64,
    /// Available to promise.
    pub available: i64,
    /// When the ERP measured it (a write with an older `as_of` is ignored).
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// When the hub stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A customer account as the hub knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRow {
    /// Hub account id.
    pub account_id: String,
    /// Salesforce id.
    pub sf_id: Option<String>,
    /// ERP customer code.
    pub erp_ref: Option<String>,
    /// Name.
    pub name: String,
    /// Tier (`Gold`, `Silver`, `Bronze`).
    pub tier: String,
    /// Full account and credit data.
    pub body: serde_json::Value,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An external id that names an order (Salesforce id or number, ERP number, correlation id,
/// return id…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRef {
    /// Namespace (`sf_id`, `sf_number`, `erp_ref`, `correlation`, `rma`, `case`…).
    pub namespace: String,
    /// The id.
    pub value: String,
    /// Order it names.
    pub order_id: String,
}

#[cfg(test)]
mod tests {
    use super::JsonText;

    #[test]
    fn json_text_serializes_as_the_document_itself() {
        let checked = JsonText::from_text(r#"{"a":[1,"x"]}"#.to_owned()).unwrap();
        let rendered = JsonText::rendered(r#"{"a":[1,"x"]}"#.to_owned());
        assert_eq!(checked, rendered);
        for text in [&checked, &rendered] {
            let wrapped = serde_json::to_string(&serde_json::json!({ "body": text })).unwrap();
            assert_eq!(wrapped, r#"{"body":{"a":[1,"x"]}}"#);
            let back: JsonText = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(back.as_str(), text.as_str());
        }
        assert!(JsonText::from_text("{nope".to_owned()).is_err());
        // A rendered text is checked when serialized: a bad one fails there, not later.
        let bad = JsonText::rendered("{nope".to_owned());
        assert!(serde_json::to_string(&bad).is_err());
        assert_eq!(JsonText::default().as_str(), "null");
    }
}
