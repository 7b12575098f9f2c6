//! The items of an encrypt/decrypt/rewrap/HMAC/sign/verify request and their results.
//!
//! `batch_input` is read straight from the request's JSON text into [`Item`]s that borrow their
//! strings from it, and the results are serialised from [`Out`] values: no `serde_json::Value`
//! tree or map is built per item (those maps, their allocations and the extra parse and
//! serialisation were most of a batch's cost inside wasm). Every argument is kept as sent
//! ([`Arg`]) and checked by the operation, so a wrongly typed value fails its own item, not the
//! request.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use tresor_sdk::{Error, Request, Response, Value};

use crate::crypto::unb64;

/// Most items one batch may carry.
pub const MAX_BATCH: usize = 10_000;

// Go's names for JSON values' types (Vault decodes numbers as `json.Number`).
const GO_NUMBER: &str = "json.Number";
const GO_BOOL: &str = "bool";
const GO_LIST: &str = "[]interface {}";
const GO_MAP: &str = "map[string]interface {}";

/// An item's argument as the client sent it.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Arg<'a> {
    /// Absent or `null`.
    #[default]
    Absent,
    /// A string (borrowed from the request unless it had escapes).
    Str(Cow<'a, str>),
    /// An integer that fits `i64`.
    Int(i64),
    /// Anything else (other numbers, booleans, lists, objects), with the name Go's JSON decoding
    /// gives its type in Vault's messages.
    Other(&'static str),
}

impl<'a> Arg<'a> {
    /// From a request field (the single-item form).
    fn from_field(v: &'a Value) -> Self {
        match v {
            Value::Str(s) => Self::Str(Cow::Borrowed(s)),
            Value::Int(i) => Self::Int(*i),
            Value::Duration(d) => i64::try_from(*d).map_or(Self::Other(GO_NUMBER), Self::Int),
            Value::Json(j) => match j.value() {
                serde_json::Value::Null => Self::Absent,
                serde_json::Value::String(s) => Self::Str(Cow::Borrowed(s)),
                serde_json::Value::Number(n) => n.as_i64().map_or(Self::Other(GO_NUMBER), Self::Int),
                serde_json::Value::Bool(_) => Self::Other(GO_BOOL),
                serde_json::Value::Array(_) => Self::Other(GO_LIST),
                serde_json::Value::Object(_) => Self::Other(GO_MAP),
            },
            Value::Bool(_) => Self::Other(GO_BOOL),
            Value::StrList(_) => Self::Other(GO_LIST),
            Value::StrMap(_) => Self::Other(GO_MAP),
        }
    }

    /// The string, if it is one.
    pub fn str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An integer argument (a decimal string counts); empty or absent is `None`.
    pub fn int(&self, key: &str) -> Result<Option<i64>, Error> {
        match self {
            Self::Absent => Ok(None),
            Self::Int(i) => Ok(Some(*i)),
            Self::Str(s) if s.is_empty() => Ok(None),
            Self::Str(s) => s.parse().map(Some).map_err(|_| Error::invalid(format!("{key} must be an integer"))),
            Self::Other(_) => Err(Error::invalid(format!("{key} must be an integer"))),
        }
    }

    /// A base64 argument, decoded; empty or absent is `None`.
    pub fn b64(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Absent => Ok(None),
            Self::Str(s) if s.is_empty() => Ok(None),
            Self::Str(s) => unb64(s).map(Some).map_err(|e| Error::invalid(format!("failed to base64-decode {key}: {e}"))),
            Self::Int(_) | Self::Other(_) => Err(Error::invalid(format!("{key} must be a string"))),
        }
    }
}

impl<'de> Deserialize<'de> for Arg<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Arg<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Arg<'de>, E> {
                Ok(Arg::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Arg<'de>, E> {
                Ok(Arg::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Arg<'de>, E> {
                Ok(Arg::Str(Cow::Owned(s)))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Arg<'de>, E> {
                Ok(Arg::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Arg<'de>, E> {
                Ok(i64::try_from(u).map_or(Arg::Other(GO_NUMBER), Arg::Int))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Arg<'de>, E> {
                Ok(Arg::Other(GO_NUMBER))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Arg<'de>, E> {
                Ok(Arg::Other(GO_BOOL))
            }
            fn visit_unit<E>(self) -> Result<Arg<'de>, E> {
                Ok(Arg::Absent)
            }
            fn visit_none<E>(self) -> Result<Arg<'de>, E> {
                Ok(Arg::Absent)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Arg::Other(GO_LIST))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arg<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Arg::Other(GO_MAP))
            }
        }
        d.deserialize_any(V)
    }
}

/// One item: a `batch_input` entry, or the request's own fields. Unknown keys are ignored and a
/// repeated key keeps its last value, as with a JSON object.
#[derive(Debug, Default)]
pub struct Item<'a> {
    pub plaintext: Arg<'a>,
    pub ciphertext: Arg<'a>,
    pub context: Arg<'a>,
    pub associated_data: Arg<'a>,
    pub key_version: Arg<'a>,
    pub input: Arg<'a>,
    pub hmac: Arg<'a>,
    pub signature: Arg<'a>,
    /// Echoed unchanged in the item's result (batch only).
    pub reference: Option<&'a RawValue>,
}

impl<'a> Item<'a> {
    fn from_request(req: &'a Request) -> Self {
        let arg = |name: &str| req.data.get(name).map(Arg::from_field).unwrap_or_default();
        Self {
            plaintext: arg("plaintext"),
            ciphertext: arg("ciphertext"),
            context: arg("context"),
            associated_data: arg("associated_data"),
            key_version: arg("key_version"),
            input: arg("input"),
            hmac: arg("hmac"),
            signature: arg("signature"),
            reference: None,
        }
    }
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Name {
            Plaintext,
            Ciphertext,
            Context,
            AssociatedData,
            KeyVersion,
            Input,
            Hmac,
            Signature,
            Reference,
            #[serde(other)]
            Unknown,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item<'de>, A::Error> {
                let mut item = Item::default();
                while let Some(key) = map.next_key::<Name>()? {
                    let slot = match key {
                        Name::Plaintext => &mut item.plaintext,
                        Name::Ciphertext => &mut item.ciphertext,
                        Name::Context => &mut item.context,
                        Name::AssociatedData => &mut item.associated_data,
                        Name::KeyVersion => &mut item.key_version,
                        Name::Input => &mut item.input,
                        Name::Hmac => &mut item.hmac,
                        Name::Signature => &mut item.signature,
                        Name::Reference => {
                            item.reference = Some(map.next_value()?);
                            continue;
                        }
                        Name::Unknown => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(item)
            }
        }
        d.deserialize_map(V)
    }
}

/// A request's items: its `batch_input`, or its own fields as one item.
pub enum Items<'a> {
    Single(Item<'a>),
    Batch(Vec<Item<'a>>),
}

impl<'a> Items<'a> {
    /// Read `batch_input` (absent or `null`: the request's own fields).
    pub fn parse(req: &'a Request) -> Result<Self, Error> {
        let not_a_list = || Error::invalid("batch_input must be a list of objects");
        let Some(text) = req.json_text("batch_input") else { return Ok(Self::Single(Item::from_request(req))) };
        let Some(batch) = serde_json::from_str::<Option<Vec<Item<'a>>>>(text).map_err(|_| not_a_list())? else {
            return Ok(Self::Single(Item::from_request(req)));
        };
        if batch.is_empty() {
            return Err(Error::invalid("missing batch input to process"));
        }
        if batch.len() > MAX_BATCH {
            return Err(Error::invalid(format!("batch_input has more than {MAX_BATCH} items")));
        }
        Ok(Self::Batch(batch))
    }

    /// The first item (the one whose context decides whether a key created on first use is derived).
    pub fn first(&self) -> Option<&Item<'a>> {
        match self {
            Self::Single(item) => Some(item),
            Self::Batch(batch) => batch.first(),
        }
    }

    /// The items as a slice (one for a single request).
    pub fn as_slice(&self) -> &[Item<'a>] {
        match self {
            Self::Single(item) => std::slice::from_ref(item),
            Self::Batch(batch) => batch,
        }
    }

    /// Vault's decoding of an encrypt, decrypt or rewrap batch: a wrongly typed field, or an item
    /// without the `required` one, fails the whole request (Vault answers 500; this is the
    /// client's error, so 400) with Vault's text. A `reference` may be any JSON (Vault: a string).
    pub fn check_batch_decoding(&self, required: Option<(&str, &str)>) -> Result<(), Error> {
        let Self::Batch(items) = self else { return Ok(()) };
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            // In Vault's order: context, ciphertext, plaintext, key_version, associated_data.
            for (name, arg, want) in [
                ("context", &item.context, "string"),
                ("ciphertext", &item.ciphertext, "string"),
                ("plaintext", &item.plaintext, "string"),
                ("key_version", &item.key_version, "int"),
                ("associated_data", &item.associated_data, "string"),
            ] {
                let got = match (arg, want) {
                    (Arg::Absent, _) => match required {
                        Some((field, missing)) if field == name => {
                            errors.push(format!("'[{i}].{name}' {missing}"));
                            continue;
                        }
                        _ => continue,
                    },
                    (Arg::Str(_), "string") | (Arg::Int(_), "int") => continue,
                    (Arg::Str(_), _) => "string",
                    (Arg::Int(_), _) => GO_NUMBER,
                    (Arg::Other(t), _) => t,
                };
                errors.push(format!("'[{i}].{name}' expected type '{want}', got unconvertible type '{got}'"));
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(format!("failed to parse batch input: {}", errors.join("\n"))))
    }

    /// Vault's rule for encrypt, decrypt and rewrap: a context in every item or in none.
    pub fn check_context_everywhere_or_nowhere(&self) -> Result<(), Error> {
        let set = |item: &Item<'_>| !matches!(&item.context, Arg::Absent) && item.context.str() != Some("");
        let items = self.as_slice();
        let first = items.first().is_some_and(set);
        if items.iter().any(|item| set(item) != first) {
            return Err(Error::invalid("context should be set either in all the request blocks or in none"));
        }
        Ok(())
    }

    /// Run `each` over the batch (per-item errors; a failed item is `on_error` plus its `error`)
    /// or the single item (an error fails the request). `fail_status`: the status when some batch
    /// items failed (Vault: 400 for encrypt and decrypt; 200 for rewrap, sign, verify and HMAC).
    /// When some items succeeded, the request's `partial_failure_response_code` replaces it, as
    /// Vault's does; a code that is not 2xx or 4xx (the statuses the host lets a plugin choose;
    /// Vault takes 1-599) is ignored with a warning.
    pub fn run(
        self,
        req: &Request,
        fail_status: u16,
        on_error: Out,
        mut each: impl FnMut(&Item<'a>) -> Result<Out, Error>,
    ) -> Result<Response, Error> {
        let batch = match self {
            Self::Single(item) => {
                let mut json = String::new();
                each(&item)?.write_json(&mut json, None);
                return Ok(Response::data_text(json));
            }
            Self::Batch(batch) => batch,
        };
        let (mut failed, mut succeeded) = (false, false);
        let mut results = Vec::with_capacity(batch.len());
        for item in &batch {
            results.push(match each(item) {
                Ok(out) => {
                    succeeded = true;
                    out
                }
                Err(e) => {
                    failed = true;
                    Out { error: Some(item_error(e)), ..on_error.clone() }
                }
            });
        }
        let mut json = String::with_capacity(32 + results.iter().zip(&batch).map(|(out, item)| out.json_len(item.reference)).sum::<usize>());
        json.push_str("{\"batch_results\":[");
        for (i, (out, item)) in results.iter().zip(&batch).enumerate() {
            if i > 0 {
                json.push(',');
            }
            out.write_json(&mut json, Some(item.reference));
        }
        json.push_str("]}");
        let mut resp = Response::data_text(json);
        if !failed {
            return Ok(resp);
        }
        let mut status = fail_status;
        if let Some(code) = req.int("partial_failure_response_code").filter(|_| succeeded) {
            match u16::try_from(code).ok().filter(|c| matches!(c, 200..=299 | 400..=499)) {
                Some(code) => status = code,
                None => {
                    resp = resp.warn(format!("invalid HTTP response code override from partial_failure_response_code, reverting to {status}"))
                }
            }
        }
        Ok(if status == 200 { resp } else { resp.status(status) })
    }
}

/// The error text a batch item carries.
fn item_error(e: Error) -> String {
    match e {
        Error::InvalidRequest(m) => m,
        Error::NotFound => "not found".into(),
        Error::PermissionDenied => "permission denied".into(),
        _ => "internal error".into(),
    }
}

/// One result; fields left `None` are not sent.
#[derive(Debug, Default, Clone)]
pub struct Out {
    pub ciphertext: Option<String>,
    pub plaintext: Option<String>,
    pub hmac: Option<String>,
    pub signature: Option<String>,
    pub public_key: Option<String>,
    pub valid: Option<bool>,
    pub key_version: Option<u64>,
    pub error: Option<String>,
}

impl Out {
    fn strings(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("ciphertext", self.ciphertext.as_deref()),
            ("plaintext", self.plaintext.as_deref()),
            ("hmac", self.hmac.as_deref()),
            ("signature", self.signature.as_deref()),
            ("public_key", self.public_key.as_deref()),
            ("error", self.error.as_deref()),
        ]
    }

    /// About the length of [`write_json`](Self::write_json)'s output (to size the buffer once).
    fn json_len(&self, reference: Option<&RawValue>) -> usize {
        let strings: usize = self.strings().iter().map(|(k, v)| v.map_or(0, |v| k.len() + v.len() + 6)).sum();
        strings + 64 + reference.map_or(0, |r| r.get().len())
    }

    /// Append this result as a JSON object; `reference` (batch results only) is the item's
    /// `reference` as sent, or `""` when it had none, as Vault does.
    ///
    /// Written by hand rather than derived: the values are almost all base64 and `vault:vN:`
    /// strings, which never need escaping, and serde_json's byte-by-byte escape loop over them was
    /// the single largest cost of a batch inside wasm (6.7% of the server's CPU on 100 items).
    /// Every string still goes through [`push_json_str`], which escapes whatever needs it.
    fn write_json(&self, out: &mut String, reference: Option<Option<&RawValue>>) {
        out.push('{');
        let mut first = true;
        let mut key = |out: &mut String, k: &str| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            push_json_str(out, k);
            out.push(':');
        };
        for (k, v) in self.strings() {
            if let Some(v) = v {
                key(out, k);
                push_json_str(out, v);
            }
        }
        if let Some(valid) = self.valid {
            key(out, "valid");
            out.push_str(if valid { "true" } else { "false" });
        }
        if let Some(version) = self.key_version {
            key(out, "key_version");
            out.push_str(&version.to_string());
        }
        if let Some(reference) = reference {
            key(out, "reference");
            out.push_str(reference.map_or("\"\"", RawValue::get));
        }
        out.push('}');
    }
}

/// Append `s` as a JSON string: as is when nothing in it needs escaping, through serde_json
/// otherwise. The check has no early exit so that the compiler vectorises it (wasm SIMD: 16 bytes
/// per step); with one it ran byte by byte, as slow as the escaping it avoids.
fn push_json_str(out: &mut String, s: &str) {
    let needs_escape = s.bytes().fold(false, |acc, b| acc | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if !needs_escape {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serialising a `str` cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_sdk::Operation;

    fn batch(text: &str) -> Request {
        Request::new(Operation::Update, "encrypt/k").with("batch_input", Value::Json(tresor_sdk::Json::from_text(text.into())))
    }

    #[test]
    fn items_borrow_and_keep_what_was_sent() {
        let req = batch(r#"[{"plaintext": "YQ==", "key_version": "2", "reference": {"id": [1, "x"]}, "extra": [1, {"a": 2}]},
                            {"plaintext": "a\u0062", "context": 5, "key_version": 3.5, "plaintext": null},
                            {"input": true, "hmac": [], "signature": {}, "key_version": 18446744073709551615}]"#);
        let Items::Batch(items) = Items::parse(&req).unwrap() else { panic!("not a batch") };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0].plaintext, Arg::Str(Cow::Borrowed("YQ=="))));
        assert_eq!(items[0].key_version.int("key_version").unwrap(), Some(2));
        assert_eq!(items[0].reference.map(RawValue::get), Some(r#"{"id": [1, "x"]}"#));
        // The last of a repeated key wins; an escaped string is owned.
        assert_eq!(items[1].plaintext, Arg::Absent);
        assert_eq!(items[1].context.b64("context").unwrap_err(), Error::invalid("context must be a string"));
        assert_eq!(items[1].key_version.int("key_version").unwrap_err(), Error::invalid("key_version must be an integer"));
        assert_eq!(items[2].input, Arg::Other("bool"));
        assert_eq!(items[2].hmac, Arg::Other("[]interface {}"));
        assert_eq!(items[2].signature, Arg::Other("map[string]interface {}"));
        assert_eq!(items[2].key_version, Arg::Other("json.Number"));
        let req = batch(r#"[{"plaintext": "a\u0062"}]"#);
        let Items::Batch(items) = Items::parse(&req).unwrap() else { panic!("not a batch") };
        assert!(matches!(&items[0].plaintext, Arg::Str(Cow::Owned(s)) if s == "ab"));
    }

    #[test]
    fn malformed_batches_fail_the_request() {
        for bad in [r#"{"plaintext": "YQ=="}"#, r#"["YQ=="]"#, r#"[{"a": 1}, 2]"#, r#""[]""#] {
            assert_eq!(Items::parse(&batch(bad)).err(), Some(Error::invalid("batch_input must be a list of objects")), "{bad}");
        }
        assert_eq!(Items::parse(&batch("[]")).err(), Some(Error::invalid("missing batch input to process")));
        let many = format!("[{}{{}}]", "{},".repeat(MAX_BATCH));
        assert_eq!(Items::parse(&batch(&many)).err(), Some(Error::invalid(format!("batch_input has more than {MAX_BATCH} items"))));
        assert!(matches!(Items::parse(&batch("null")), Ok(Items::Single(_))));
    }

    #[test]
    fn results_are_json_whatever_they_hold() {
        let out = Out {
            ciphertext: Some("vault:v1:abc+/=".into()),
            error: Some("bad \"quote\" \\ and \n newline \u{1} é".into()),
            valid: Some(false),
            key_version: Some(u64::MAX),
            ..Out::default()
        };
        for reference in [None, Some(None), Some(Some(serde_json::from_str::<&RawValue>(r#" {"a": "\u00e9"} "#).unwrap()))] {
            let mut json = String::new();
            out.write_json(&mut json, reference);
            let mut want = serde_json::json!({
                "ciphertext": "vault:v1:abc+/=",
                "error": "bad \"quote\" \\ and \n newline \u{1} é",
                "valid": false,
                "key_version": u64::MAX,
            });
            match reference {
                None => {}
                Some(None) => want["reference"] = "".into(),
                Some(Some(_)) => want["reference"] = serde_json::json!({"a": "é"}),
            }
            assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), want, "{json}");
        }
        let mut json = String::new();
        Out::default().write_json(&mut json, None);
        assert_eq!(json, "{}");
    }

    #[test]
    fn results_carry_references_and_per_item_errors() {
        let req = batch(r#"[{"plaintext": "YQ==", "reference": "r1"}, {"plaintext": 1}, {"plaintext": "Yg==", "reference": 7}]"#);
        let items = Items::parse(&req).unwrap();
        let on_error = Out { plaintext: Some(String::new()), ..Out::default() };
        let resp = items
            .run(&req, 400, on_error, |item| {
                let p = item.plaintext.str().ok_or_else(|| Error::invalid("missing plaintext"))?;
                Ok(Out { ciphertext: Some(p.to_uppercase()), key_version: Some(1), ..Out::default() })
            })
            .unwrap();
        assert_eq!(resp.status, Some(400));
        assert_eq!(
            resp.data_value().unwrap(),
            serde_json::json!({ "batch_results": [
                { "ciphertext": "YQ==", "key_version": 1, "reference": "r1" },
                { "plaintext": "", "error": "missing plaintext", "reference": "" },
                { "ciphertext": "YG==", "key_version": 1, "reference": 7 },
            ]})
        );
    }
}
