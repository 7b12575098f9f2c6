//! Request bodies: JSON, or a form when the client said so and the body is not a JSON object, exactly
//! as Vault decides (API.md §0).

use serde_json::Value;
use tresor_logical::Map;

use crate::urlencoded;

/// Why a body could not become request data. Both are client errors (400).
#[derive(Debug)]
pub(crate) enum BodyError {
    Json(String),
    Form,
}

impl BodyError {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Json(e) => format!("failed to decode JSON input: {e}"),
            Self::Form => "failed to parse form input".to_string(),
        }
    }
}

/// Turn a body into request data. An empty body is empty data.
pub(crate) fn parse(body: &[u8], content_type: Option<&str>) -> Result<Map, BodyError> {
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        return Ok(Map::new());
    }
    let is_form = content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if is_form && trimmed.first() != Some(&b'{') {
        let text = std::str::from_utf8(body).map_err(|_| BodyError::Form)?;
        let pairs = urlencoded::parse_pairs(text).ok_or(BodyError::Form)?;
        return Ok(pairs_to_map(pairs));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(BodyError::Json(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        ))),
        Err(e) => Err(BodyError::Json(e.to_string())),
    }
}

/// Query parameters (or form fields) as data: a repeated key keeps all values as a list.
pub(crate) fn pairs_to_map(pairs: Vec<(String, String)>) -> Map {
    let mut map = Map::new();
    for (k, v) in pairs {
        match map.get_mut(&k) {
            None => {
                map.insert(k, Value::String(v));
            }
            Some(Value::Array(list)) => list.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
        }
    }
    map
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null | Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn json_object_is_data() {
        let m = parse(br#"{"a":1,"b":"x"}"#, None).unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(m["b"], "x");
    }

    #[test]
    fn form_body_without_brace_is_a_form() {
        let m = parse(b"a=1&b=2", FORM).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "2");
        let m = parse(b"not json", FORM).unwrap();
        assert_eq!(m["not json"], "");
    }

    #[test]
    fn form_content_type_with_brace_is_json() {
        let err = parse(b"{bad", FORM).unwrap_err();
        assert!(err.message().starts_with("failed to decode JSON input: "), "{}", err.message());
        assert!(parse(br#"{"a":"b"}"#, FORM).is_ok());
    }

    #[test]
    fn non_object_json_is_rejected() {
        assert!(parse(b"[1,2]", None).is_err());
        assert!(parse(b"not json", None).is_err());
        assert!(parse(b"   ", None).unwrap().is_empty());
    }
}
