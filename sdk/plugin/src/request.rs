//! The request a handler receives: operation, mount-relative path, validated fields.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;

use crate::Operation;

/// A `json` field: the JSON text as the host sent it, parsed only when asked for.
///
/// Handlers that read a large field into their own types (a batch of items, say) can deserialise
/// [`text`](Json::text) directly instead of building a `serde_json::Value` first.
///
/// ```
/// use tresor_sdk::Json;
/// let j = Json::from_text(r#"{"a": [1, 2]}"#.to_string());
/// assert_eq!(j.value()["a"][1], 2);
/// assert_eq!(j.text(), r#"{"a": [1, 2]}"#);
/// let k = Json::from(serde_json::json!({"a": [1, 2]}));
/// assert_eq!(j, k);
/// assert_eq!(k.text(), r#"{"a":[1,2]}"#);
/// ```
#[derive(Clone)]
pub struct Json {
    /// At least one of the two is always set.
    text: OnceCell<String>,
    value: OnceCell<serde_json::Value>,
}

impl Json {
    /// From JSON text (the host sends only text it has parsed; anything else reads as `null`).
    pub fn from_text(text: String) -> Self {
        Self { text: OnceCell::from(text), value: OnceCell::new() }
    }
    /// The value, parsed on first use.
    pub fn value(&self) -> &serde_json::Value {
        self.value.get_or_init(|| self.text.get().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default())
    }
    /// The JSON text (serialised on first use when built from a value).
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| self.value.get().map(crate::__private::json_text).unwrap_or_default())
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        Self { text: OnceCell::new(), value: OnceCell::from(v) }
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

/// A validated field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// String.
    Str(String),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Seconds.
    Duration(u64),
    /// List of strings.
    StrList(Vec<String>),
    /// Object of strings.
    StrMap(BTreeMap<String, String>),
    /// Any JSON.
    Json(Json),
}

impl Value {
    /// As JSON (what a response would echo).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Str(s) => s.clone().into(),
            Self::Int(i) => (*i).into(),
            Self::Bool(b) => (*b).into(),
            Self::Duration(d) => (*d).into(),
            Self::StrList(l) => l.clone().into(),
            Self::StrMap(m) => serde_json::to_value(m).unwrap_or_default(),
            Self::Json(v) => v.value().clone(),
        }
    }
}

/// One request.
///
/// ```
/// use tresor_sdk::{Operation, Request, Value};
/// let req = Request::new(Operation::Read, "roles/web").capture("name", "web").with("ttl", Value::Duration(60));
/// assert_eq!(req.captured("name"), Some("web"));
/// assert_eq!(req.duration("ttl"), Some(60));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Operation.
    pub operation: Operation,
    /// Path relative to the mount.
    pub path: String,
    /// Index of the matched declared path.
    pub path_index: usize,
    /// Values of the pattern's placeholders (`{name}`, `{name*}`).
    pub captures: BTreeMap<String, String>,
    /// Fields (declared or defaulted; unknown ones as JSON when allowed).
    pub data: BTreeMap<String, Value>,
    /// The raw JSON body, for merge-patch handlers.
    pub raw_body: Option<String>,
    /// The caller's IP address: given only on unauthenticated (login) paths, for CIDR bindings.
    pub remote_addr: Option<String>,
}

impl Request {
    /// A request (for tests).
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Self { operation, path: path.into(), path_index: 0, captures: BTreeMap::new(), data: BTreeMap::new(), raw_body: None, remote_addr: None }
    }
    /// Builder: add a field (for tests).
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.data.insert(name.into(), value);
        self
    }
    /// Builder: set a placeholder capture (for tests).
    pub fn capture(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.captures.insert(name.into(), value.into());
        self
    }
    /// A placeholder's value (`{name}` in the pattern).
    pub fn captured(&self, name: &str) -> Option<&str> {
        self.captures.get(name).map(String::as_str)
    }
    /// A string field.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.data.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// An integer field.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.data.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    /// A boolean field.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.data.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    /// A duration field, in seconds.
    pub fn duration(&self, name: &str) -> Option<u64> {
        match self.data.get(name) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }
    /// A string-list field.
    pub fn str_list(&self, name: &str) -> Option<&[String]> {
        match self.data.get(name) {
            Some(Value::StrList(l)) => Some(l),
            _ => None,
        }
    }
    /// A JSON field.
    pub fn json(&self, name: &str) -> Option<&serde_json::Value> {
        match self.data.get(name) {
            Some(Value::Json(v)) => Some(v.value()),
            _ => None,
        }
    }
    /// A JSON field's text, as the host sent it (no `serde_json::Value` is built).
    ///
    /// ```
    /// use tresor_sdk::{Operation, Request, Value};
    /// let req = Request::new(Operation::Update, "batch").with("items", Value::Json(serde_json::json!([1, 2]).into()));
    /// let items: Vec<u32> = serde_json::from_str(req.json_text("items").unwrap()).unwrap();
    /// assert_eq!(items, [1, 2]);
    /// ```
    pub fn json_text(&self, name: &str) -> Option<&str> {
        match self.data.get(name) {
            Some(Value::Json(v)) => Some(v.text()),
            _ => None,
        }
    }
    /// Whether the field was sent (or defaulted).
    pub fn has(&self, name: &str) -> bool {
        self.data.contains_key(name)
    }
}
