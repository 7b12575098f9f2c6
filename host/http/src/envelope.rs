//! Vault's response envelope (API.md §0): key order as Vault emits it, `data` sorted (serde_json's map
//! is a BTreeMap), and the legacy top-level copy of `data` for `sys/` reads.

use serde::Serialize;
use serde_json::Value;
use tresor_logical::{Map, Response, ResponseAuth};

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(flatten)]
    legacy: Option<&'a Map>,
    request_id: &'a str,
    lease_id: &'a str,
    renewable: bool,
    lease_duration: u64,
    data: Option<Data<'a>>,
    wrap_info: Option<Value>,
    warnings: Option<&'a [String]>,
    auth: Option<Auth<'a>>,
}

/// `data`: a map, or a plugin's JSON object text written as is.
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Map(&'a Map),
    Text(&'a serde_json::value::RawValue),
}

#[derive(Serialize)]
struct Auth<'a> {
    client_token: &'a str,
    accessor: &'a str,
    policies: &'a [String],
    token_policies: &'a [String],
    metadata: &'a Option<std::collections::BTreeMap<String, String>>,
    lease_duration: u64,
    renewable: bool,
    entity_id: &'a str,
    token_type: &'a str,
    orphan: bool,
    mfa_requirement: Option<Value>,
    num_uses: u64,
}

impl<'a> From<&'a ResponseAuth> for Auth<'a> {
    fn from(a: &'a ResponseAuth) -> Self {
        Self {
            client_token: &a.client_token,
            accessor: &a.accessor,
            policies: &a.policies,
            token_policies: &a.token_policies,
            metadata: &a.metadata,
            lease_duration: a.lease_duration,
            renewable: a.renewable,
            entity_id: "",
            token_type: &a.token_type,
            orphan: a.orphan,
            mfa_requirement: None,
            num_uses: a.num_uses,
        }
    }
}

/// Render `response` for `request_id`. `legacy_copy` duplicates `data` at the top level (sys/ paths).
pub(crate) fn render(response: &Response, request_id: &str, legacy_copy: bool) -> Result<Vec<u8>, serde_json::Error> {
    let legacy = if legacy_copy {
        response.data.as_ref().filter(|d| !d.keys().any(|k| RESERVED.contains(&k.as_str())))
    } else {
        None
    };
    serde_json::to_vec(&Envelope {
        legacy,
        request_id,
        lease_id: &response.lease_id,
        renewable: response.renewable,
        lease_duration: response.lease_duration,
        data: match (&response.data_text, &response.data) {
            (Some(text), _) => Some(Data::Text(text)),
            (None, data) => data.as_ref().map(Data::Map),
        },
        wrap_info: response.wrap_info.as_ref().and_then(|w| serde_json::to_value(w).ok()),
        warnings: (!response.warnings.is_empty()).then_some(response.warnings.as_slice()),
        auth: response.auth.as_ref().map(Auth::from),
    })
}

/// Envelope keys a legacy copy must not shadow; a response whose data uses one is not copied.
const RESERVED: &[&str] =
    &["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_has_vault_shape() {
        let mut data = Map::new();
        data.insert("b".into(), json!(2));
        data.insert("a".into(), json!(1));
        let body = render(&Response::with_data(data), "rid", false).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            r#"{"request_id":"rid","lease_id":"","renewable":false,"lease_duration":0,"data":{"a":1,"b":2},"wrap_info":null,"warnings":null,"auth":null}"#
        );
    }

    #[test]
    fn plugin_data_text_is_written_as_is() {
        let response = Response { data_text: Some(serde_json::value::RawValue::from_string(r#"{"z":[1,"\u00e9"],"a":{}}"#.into()).unwrap()), ..Response::default() };
        let text = String::from_utf8(render(&response, "rid", false).unwrap()).unwrap();
        assert!(text.contains(r#","data":{"z":[1,"\u00e9"],"a":{}},"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["data"]["z"][1], "é");
    }

    #[test]
    fn sys_reads_copy_data_to_the_top_level() {
        let mut data = Map::new();
        data.insert("term".into(), json!(3));
        let v: Value = serde_json::from_slice(&render(&Response::with_data(data), "r", true).unwrap()).unwrap();
        assert_eq!(v["term"], 3);
        assert_eq!(v["data"]["term"], 3);
    }
}
