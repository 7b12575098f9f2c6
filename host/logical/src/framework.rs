//! The host-side path framework: a backend declares paths (patterns, fields, operations); the host
//! matches a request path against them and validates and coerces its fields **before** any plugin
//! code runs, so bad input is a 400 that never reaches the guest, and help never executes guest code.
//!
//! Patterns are literal segments plus `{name}` (exactly one non-empty segment) and a final `{name*}`
//! (the rest of the path, possibly empty, may contain `/`). Captures become string fields. The first
//! declared pattern that matches wins, so specific paths go before catch-alls.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Error, Map, Operation};

/// How a field is validated and coerced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// String; numbers and booleans become their text.
    Str,
    /// Signed integer; numeric strings accepted.
    Int,
    /// Boolean; `"true"`/`"false"`/`"1"`/`"0"` accepted.
    Bool,
    /// Seconds; integers or Go duration strings.
    Duration,
    /// List of strings; a comma-separated string is split.
    StrList,
    /// JSON object of strings.
    StrMap,
    /// Any JSON.
    Json,
}

/// A validated value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `Str`
    Str(String),
    /// `Int`
    Int(i64),
    /// `Bool`
    Bool(bool),
    /// `Duration`, in seconds.
    Duration(u64),
    /// `StrList`
    StrList(Vec<String>),
    /// `StrMap`
    StrMap(BTreeMap<String, String>),
    /// `Json`
    Json(Value),
}

/// One declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Field name.
    pub name: String,
    /// Kind.
    pub kind: FieldKind,
    /// Help text.
    pub description: String,
    /// Missing → 400.
    pub required: bool,
    /// Never echoed in errors or audit logs in the clear.
    pub sensitive: bool,
    /// Default applied when absent.
    pub default: Option<Value>,
}

/// One declared path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSpec {
    /// Pattern (see module docs).
    pub pattern: String,
    /// Declared fields.
    pub fields: Vec<FieldSpec>,
    /// Operations the path supports; others → 405.
    pub operations: Vec<Operation>,
    /// Whether writes ask the backend if the item exists (create vs update).
    pub existence_check: bool,
    /// Reachable without a token.
    pub unauthenticated: bool,
    /// Undeclared fields are passed through as JSON.
    pub allow_unknown_fields: bool,
    /// Help text.
    pub help: String,
}

/// A matched path: which spec, and the captured segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch {
    /// Index into the declared paths.
    pub index: usize,
    /// Captured values by name.
    pub captures: Vec<(String, String)>,
}

/// Find the first declared path matching `path`.
pub fn match_path(paths: &[PathSpec], path: &str) -> Option<PathMatch> {
    paths.iter().enumerate().find_map(|(index, spec)| {
        match_pattern(&spec.pattern, path).map(|captures| PathMatch { index, captures })
    })
}

/// Vault's `GenericNameRegex`, what a `{name}` segment matches: `\w(([\w-.]+)?\w)?` (ASCII word
/// characters, with `-` and `.` allowed inside). `keys/b@d` is no path, as in Vault.
fn generic_name(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    match b {
        [] => false,
        [c] => word(*c),
        [first, middle @ .., last] => word(*first) && word(*last) && middle.iter().all(|c| word(*c) || *c == b'-' || *c == b'.'),
    }
}

fn match_pattern(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut captures = Vec::new();
    let mut rest = path;
    let mut segments = pattern.split('/').peekable();
    if pattern.is_empty() {
        return rest.is_empty().then_some(captures);
    }
    while let Some(seg) = segments.next() {
        let is_last = segments.peek().is_none();
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("*}")) {
            // Rest capture: only valid as the last segment.
            if !is_last {
                return None;
            }
            captures.push((name.to_string(), rest.to_string()));
            return Some(captures);
        }
        let (head, tail) = match rest.split_once('/') {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !generic_name(head) {
                return None;
            }
            captures.push((name.to_string(), head.to_string()));
        } else if seg != head {
            return None;
        }
        // `metadata` against `metadata/{path*}`: an absent rest is an empty rest.
        if tail.is_none()
            && let Some(next) = segments.peek()
                && let Some(name) = next.strip_prefix('{').and_then(|s| s.strip_suffix("*}")) {
                    captures.push((name.to_string(), String::new()));
                    return Some(captures);
                }
        match (is_last, tail) {
            (true, None) => return Some(captures),
            // A trailing slash after the last literal/segment is tolerated (`config/`).
            (true, Some("")) => return Some(captures),
            (true, Some(_)) | (false, None) => return None,
            (false, Some(t)) => rest = t,
        }
    }
    None
}

/// Validate and coerce `data` against `spec`, adding captures and defaults.
///
/// Read and list requests ignore unknown query parameters (clients send extras such as `version`
/// only where declared); writes reject unknown fields unless the path allows them.
/// Captures are not fields: they travel separately, so a secret's own key may share a placeholder's name.
pub fn validate(spec: &PathSpec, op: Operation, data: &Map) -> Result<Vec<(String, FieldValue)>, Error> {
    // Vault validates a path with an existence check in that check (its error as it is), any
    // other in the handler's framework call ("Field validation failed: ...").
    let coerce = |field: &FieldSpec, v: &Value| {
        coerce(field, v).map_err(|e| match e {
            Error::InvalidRequest(m) if !spec.existence_check => Error::InvalidRequest(format!("Field validation failed: {m}")),
            other => other,
        })
    };
    let mut out: Vec<(String, FieldValue)> = Vec::new();
    for field in &spec.fields {
        let raw = data.get(&field.name).cloned().filter(|v| !v.is_null());
        match raw {
            Some(v) => out.push((field.name.clone(), coerce(field, &v)?)),
            None => {
                if let Some(d) = &field.default {
                    out.push((field.name.clone(), coerce(field, d)?));
                } else if field.required && !matches!(op, Operation::Read | Operation::List | Operation::Delete) {
                    return Err(Error::invalid(format!("missing required field {:?}", field.name)));
                }
            }
        }
    }
    for (name, value) in data {
        if spec.fields.iter().any(|f| &f.name == name) {
            continue;
        }
        if spec.allow_unknown_fields {
            out.push((name.clone(), FieldValue::Json(value.clone())));
        }
        // Vault ignores unknown fields on declared paths (it warns); so do we.
    }
    Ok(out)
}

/// Vault's warnings about a request's parameters, in its order: those `spec` neither declares
/// nor captures from the path, sorted (none when it takes arbitrary input), which are ignored;
/// then those the path's captures override (a body's `name` on `keys/:name`). Vault adds them
/// only to a response with something in it.
pub fn parameter_warnings(spec: &PathSpec, data: &Map, captures: &[(String, String)]) -> Vec<String> {
    let captured = |k: &str| captures.iter().any(|(name, _)| name == k);
    let mut warnings = Vec::new();
    if !spec.allow_unknown_fields {
        let mut ignored: Vec<&str> =
            data.keys().map(String::as_str).filter(|k| !spec.fields.iter().any(|f| f.name == *k) && !captured(k)).collect();
        ignored.sort_unstable();
        if !ignored.is_empty() {
            // Go's `%v` of a string slice: `[a b]`.
            warnings.push(format!("Endpoint ignored these unrecognized parameters: [{}]", ignored.join(" ")));
        }
    }
    let replaced: Vec<&str> =
        captures.iter().map(|(name, _)| name.as_str()).filter(|k| data.get(*k).is_some_and(|v| !v.is_null())).collect();
    if !replaced.is_empty() {
        warnings.push(replaced_warning(&replaced));
    }
    warnings
}

/// Vault's warning for body parameters a path capture replaced (Go's `%v` of the names).
pub fn replaced_warning(names: &[&str]) -> String {
    format!("Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [{}]", names.join(" "))
}

/// Vault's help at a mount's root: the backend's description and every path's route and synopsis.
pub fn backend_help_text(help: &str, paths: &[PathSpec]) -> String {
    let mut out = format!(
        "## DESCRIPTION\n\n{}\n\n## PATHS\n\nThe following paths are supported by this backend. To view help for\nany of the paths below, use the help command with any route matching\nthe path pattern. Note that depending on the policy of your auth token,\nyou may or may not be able to access certain paths.\n\n",
        help.trim()
    );
    for p in paths {
        let synopsis = p.help.trim().lines().next().unwrap_or_default();
        out.push_str(&format!("    ^{}$\n        {synopsis}\n\n", route_of(&p.pattern)));
    }
    out
}

/// A path pattern as Vault's route regex (`data/{path*}` → `data/(?P<path>.*)`).
fn route_of(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('*') {
                Some(rest) => format!("(?P<{rest}>.*)"),
                None => format!("(?P<{name}>\\w(([\\w-.]+)?\\w)?)"),
            },
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Vault's `path-help` text for `spec` matched by `request_path`: the request, the route as a
/// regular expression, the synopsis, and every parameter with its type and description.
pub fn help_text(spec: &PathSpec, request_path: &str) -> String {
    let route = route_of(&spec.pattern);
    let mut out = format!("Request:        {request_path}\nMatching Route: ^{route}$\n\n{}\n", spec.help.trim());
    let mut fields: Vec<&FieldSpec> = spec.fields.iter().collect();
    fields.sort_by(|a, b| a.name.cmp(&b.name));
    if !fields.is_empty() {
        out.push_str("\n## PARAMETERS\n");
        for f in fields {
            let kind = match f.kind {
                FieldKind::Str => "string",
                FieldKind::Int => "int",
                FieldKind::Bool => "bool",
                FieldKind::Duration => "duration (sec)",
                FieldKind::StrList => "comma-string-slice",
                FieldKind::StrMap => "keypair",
                FieldKind::Json => "map",
            };
            out.push_str(&format!("\n    {} ({kind})\n\n        {}\n", f.name, f.description.trim()));
        }
    }
    out.push_str(&format!("\n## DESCRIPTION\n\n{}\n", spec.help.trim()));
    out
}

/// A negative duration's seconds (Vault names them in its refusal).
fn negative_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|n| *n < 0),
        Value::String(s) => {
            let rest = s.trim().strip_prefix('-')?;
            let secs = crate::parse_duration(&Value::String(rest.to_string())).ok()?;
            i64::try_from(secs).ok().filter(|s| *s > 0).map(|s| -s)
        }
        _ => None,
    }
}

fn bad(field: &FieldSpec, what: &str) -> Error {
    Error::invalid(format!("error converting input for field {:?}: {what}", field.name))
}

/// Go's name for a JSON value's type as Vault decodes it (mapstructure's "unconvertible type").
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map[string]interface {}",
        Value::Array(_) => "[]interface {}",
        Value::String(_) => "string",
        Value::Number(_) => "json.Number",
        Value::Bool(_) => "bool",
        Value::Null => "<nil>",
    }
}

fn unconvertible(field: &FieldSpec, want: &str, v: &Value) -> Error {
    bad(field, &format!("'' expected type '{want}', got unconvertible type '{}'", go_type(v)))
}

/// Coerce one value to its field's kind; refusals carry Vault's (Go's) texts. Only a duration's
/// text quotes the value, and only for a field not marked sensitive.
fn coerce(field: &FieldSpec, v: &Value) -> Result<FieldValue, Error> {
    let cannot_parse = |go: &str, parser: &str| bad(field, &format!("'' cannot parse value as '{go}': strconv.{parser}: invalid syntax"));
    Ok(match field.kind {
        FieldKind::Str => FieldValue::Str(match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => return Err(unconvertible(field, "string", other)),
        }),
        FieldKind::Int => FieldValue::Int(match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| cannot_parse("int", "ParseInt"))?,
            Value::String(s) => s.trim().parse().map_err(|_| cannot_parse("int", "ParseInt"))?,
            other => return Err(unconvertible(field, "int", other)),
        }),
        FieldKind::Bool => FieldValue::Bool(match v {
            Value::Bool(b) => *b,
            Value::String(s) => match s.as_str() {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                "false" | "0" | "f" | "F" | "FALSE" | "False" | "" => false,
                _ => return Err(cannot_parse("bool", "ParseBool")),
            },
            Value::Number(n) => n.as_i64() != Some(0),
            other => return Err(unconvertible(field, "bool", other)),
        }),
        FieldKind::Duration => FieldValue::Duration(crate::parse_duration(v).map_err(|_| match (negative_seconds(v), v) {
            (Some(n), _) => bad(field, &format!("cannot provide negative value '{n}'")),
            (None, Value::String(s)) if !field.sensitive => bad(field, &crate::go_duration_error(s.trim())),
            (None, _) => bad(field, "could not parse duration from input"),
        })?),
        FieldKind::StrList => FieldValue::StrList(match v {
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(unconvertible(field, "string", other)),
                })
                .collect::<Result<_, _>>()?,
            Value::String(s) if s.is_empty() => Vec::new(),
            Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            // Vault decodes weakly: a lone number is a one-element list.
            Value::Number(n) => vec![n.to_string()],
            other => return Err(unconvertible(field, "[]string", other)),
        }),
        FieldKind::StrMap => FieldValue::StrMap(match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    other => Err(unconvertible(field, "string", other)),
                })
                .collect::<Result<_, _>>()?,
            Value::String(s) if s.trim().starts_with('{') => {
                serde_json::from_str(s).map_err(|_| unconvertible(field, "map[string]interface {}", v))?
            }
            other => return Err(unconvertible(field, "map[string]interface {}", other)),
        }),
        FieldKind::Json => FieldValue::Json(v.clone()),
    })
}

fn kind_schema(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Str => serde_json::json!({"type": "string"}),
        FieldKind::Int => serde_json::json!({"type": "integer"}),
        FieldKind::Bool => serde_json::json!({"type": "boolean"}),
        FieldKind::Duration => serde_json::json!({"type": "string", "format": "duration"}),
        FieldKind::StrList => serde_json::json!({"type": "array", "items": {"type": "string"}}),
        FieldKind::StrMap => serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}}),
        FieldKind::Json => serde_json::json!({"type": "object"}),
    }
}

/// OpenAPI 3 path items for a mount's declared paths (`{name*}` becomes `{name}`).
pub fn openapi_paths(mount: &str, paths: &[PathSpec]) -> Map {
    let mut out = Map::new();
    for p in paths {
        let pattern = p.pattern.replace("*}", "}");
        let mut item = Map::new();
        item.insert("description".into(), Value::String(p.help.clone()));
        let params: Vec<Value> = pattern
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        let props: Map = p
            .fields
            .iter()
            .map(|f| {
                let mut schema = kind_schema(f.kind);
                if let Value::Object(o) = &mut schema {
                    o.insert("description".into(), Value::String(f.description.clone()));
                    if let Some(d) = &f.default {
                        o.insert("default".into(), d.clone());
                    }
                }
                (f.name.clone(), schema)
            })
            .collect();
        let required: Vec<&str> = p.fields.iter().filter(|f| f.required).map(|f| f.name.as_str()).collect();
        for op in &p.operations {
            let (verb, body) = match op {
                Operation::Read => ("get", false),
                Operation::List => ("list", false),
                Operation::Create | Operation::Update => ("post", true),
                Operation::Patch => ("patch", true),
                Operation::Delete => ("delete", false),
                Operation::Help => continue,
            };
            let mut o = serde_json::json!({"responses": {"200": {"description": "OK"}}});
            if body {
                o["requestBody"] = serde_json::json!({"content": {"application/json": {"schema": {"type": "object", "properties": props, "required": required}}}});
            }
            item.insert(verb.into(), o);
        }
        out.insert(format!("/{mount}{pattern}"), Value::Object(item));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(pattern: &str, fields: Vec<FieldSpec>) -> PathSpec {
        PathSpec {
            pattern: pattern.into(),
            fields,
            operations: vec![Operation::Read],
            existence_check: false,
            unauthenticated: false,
            allow_unknown_fields: false,
            help: String::new(),
        }
    }

    fn field(name: &str, kind: FieldKind) -> FieldSpec {
        FieldSpec { name: name.into(), kind, description: String::new(), required: false, sensitive: false, default: None }
    }

    #[test]
    fn patterns_match_literals_segments_and_rest() {
        let paths = vec![path("config", vec![]), path("data/{path*}", vec![]), path("roles/{name}", vec![]), path("{path*}", vec![])];
        assert_eq!(match_path(&paths, "config").unwrap().index, 0);
        assert_eq!(match_path(&paths, "config/").unwrap().index, 0);
        let m = match_path(&paths, "data/a/b/c").unwrap();
        assert_eq!((m.index, m.captures), (1, vec![("path".into(), "a/b/c".into())]));
        assert_eq!(match_path(&paths, "data/").unwrap().captures, vec![("path".into(), "".into())]);
        let m = match_path(&paths, "data").unwrap();
        assert_eq!((m.index, m.captures), (1, vec![("path".into(), "".into())]));
        assert_eq!(match_path(&paths, "roles/web").unwrap().captures, vec![("name".into(), "web".into())]);
        // `roles/` has an empty segment: falls through to the catch-all.
        assert_eq!(match_path(&paths, "roles/").unwrap().index, 3);
        assert_eq!(match_path(&paths, "roles/a/b").unwrap().index, 3);
        assert!(match_path(&paths[..3], "other").is_none());
        // A `{name}` segment is Vault's generic name: word characters, `-` and `.` inside only.
        for ok in ["a", "web-1.prod", "A_b", "x.y"] {
            assert_eq!(match_path(&paths[..3], &format!("roles/{ok}")).map(|m| m.index), Some(2), "{ok}");
        }
        for bad in ["b@d", "-a", "a.", "a b", "é"] {
            assert!(match_path(&paths[..3], &format!("roles/{bad}")).is_none(), "{bad}");
        }
    }

    #[test]
    fn fields_are_coerced_and_validated() {
        let mut spec = path(
            "x",
            vec![field("n", FieldKind::Int), field("b", FieldKind::Bool), field("ttl", FieldKind::Duration), field("l", FieldKind::StrList)],
        );
        spec.fields.push(FieldSpec { required: true, ..field("req", FieldKind::Str) });
        spec.fields.push(FieldSpec { default: Some(json!(10)), ..field("d", FieldKind::Int) });
        let data: Map = serde_json::from_value(json!({"n": "5", "b": "true", "ttl": "1h", "l": "a,b", "req": 7, "zzz": 1})).unwrap();
        let out = validate(&spec, Operation::Update, &data).unwrap();
        assert!(out.contains(&("n".into(), FieldValue::Int(5))));
        assert!(out.contains(&("b".into(), FieldValue::Bool(true))));
        assert!(out.contains(&("ttl".into(), FieldValue::Duration(3600))));
        assert!(out.contains(&("l".into(), FieldValue::StrList(vec!["a".into(), "b".into()]))));
        assert!(out.contains(&("req".into(), FieldValue::Str("7".into()))));
        assert!(out.contains(&("d".into(), FieldValue::Int(10))));
        assert!(!out.iter().any(|(k, _)| k == "zzz"), "unknown fields dropped unless allowed");

        let bad: Map = serde_json::from_value(json!({"n": "five", "req": "x"})).unwrap();
        let err = validate(&spec, Operation::Update, &bad).unwrap_err().to_string();
        assert!(err.contains("\"n\"") && !err.contains("five"), "{err}");
        for (neg, secs) in [(json!("-1s"), -1), (json!("-2h"), -7200), (json!(-5), -5)] {
            let data: Map = serde_json::from_value(json!({"req": "x", "dur": neg})).unwrap();
            let mut with_dur = spec.clone();
            with_dur.fields.push(field("dur", FieldKind::Duration));
            let err = validate(&with_dur, Operation::Update, &data).unwrap_err().to_string();
            assert_eq!(err, format!("Field validation failed: error converting input for field \"dur\": cannot provide negative value '{secs}'"));
        }
        // Go's texts; with an existence check, without the prefix (Vault validates in the check).
        let mut checked = spec.clone();
        checked.existence_check = true;
        checked.fields.extend([field("dur", FieldKind::Duration), FieldSpec { sensitive: true, ..field("secret_ttl", FieldKind::Duration) }]);
        for (name, value, text) in [
            ("n", json!("x"), "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax"),
            ("b", json!("maybe"), "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"),
            ("dur", json!("1x"), "time: unknown unit \"x\" in duration \"1x\""),
            ("dur", json!(true), "could not parse duration from input"),
            ("secret_ttl", json!("hush"), "could not parse duration from input"),
            ("req", json!({"a": 1}), "'' expected type 'string', got unconvertible type 'map[string]interface {}'"),
        ] {
            let data: Map = serde_json::from_value(json!({"req": "x", name: value})).unwrap();
            let err = validate(&checked, Operation::Update, &data).unwrap_err().to_string();
            assert_eq!(err, format!("error converting input for field \"{name}\": {text}"));
        }
        let lone: Map = serde_json::from_value(json!({"req": "x", "l": 5})).unwrap();
        assert!(validate(&spec, Operation::Update, &lone).unwrap().contains(&("l".into(), FieldValue::StrList(vec!["5".into()]))));
        let missing: Map = Map::new();
        assert!(validate(&spec, Operation::Update, &missing).is_err());
        assert!(validate(&spec, Operation::Read, &missing).is_ok());
    }

    #[test]
    fn openapi_lists_paths_parameters_and_fields() {
        let mut p = path("roles/{name}", vec![FieldSpec { required: true, ..field("ttl", FieldKind::Duration) }]);
        p.operations = vec![Operation::Read, Operation::Update];
        let doc = openapi_paths("ssh/", &[p]);
        let item = &doc["/ssh/roles/{name}"];
        assert_eq!(item["parameters"][0]["name"], "name");
        assert!(item.get("get").is_some());
        assert_eq!(item["post"]["requestBody"]["content"]["application/json"]["schema"]["required"], json!(["ttl"]));
    }

    #[test]
    fn unknown_fields_pass_through_when_allowed() {
        let mut spec = path("data/{path*}", vec![]);
        spec.allow_unknown_fields = true;
        let data: Map = serde_json::from_value(json!({"data": {"a": 1}, "path": "mine"})).unwrap();
        let out = validate(&spec, Operation::Update, &data).unwrap();
        assert!(out.contains(&("path".into(), FieldValue::Json(json!("mine")))), "a field may share a capture's name");
        assert!(out.contains(&("data".into(), FieldValue::Json(json!({"a": 1})))));
        let captures = vec![("path".to_string(), "p".to_string())];
        assert_eq!(
            parameter_warnings(&spec, &data, &captures),
            ["Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [path]"],
            "nothing is ignored on a path taking arbitrary input, but a capture still overrides"
        );
    }

    #[test]
    fn undeclared_fields_are_named_in_vaults_warning() {
        let spec = path("keys/{name}", vec![field("type", FieldKind::Str)]);
        let captures = vec![("name".to_string(), "k".to_string())];
        let data: Map = serde_json::from_value(json!({"type": "x", "zeta": 1, "alpha": true})).unwrap();
        assert_eq!(parameter_warnings(&spec, &data, &captures), ["Endpoint ignored these unrecognized parameters: [alpha zeta]"]);
        let declared: Map = serde_json::from_value(json!({"type": "x"})).unwrap();
        assert!(parameter_warnings(&spec, &declared, &captures).is_empty());
        // A parameter named like a capture is not unrecognized: the path's value replaces it (a
        // null one is as good as absent).
        let named: Map = serde_json::from_value(json!({"type": "x", "name": "other", "zeta": 1})).unwrap();
        assert_eq!(
            parameter_warnings(&spec, &named, &captures),
            [
                "Endpoint ignored these unrecognized parameters: [zeta]",
                "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]"
            ]
        );
        let null: Map = serde_json::from_value(json!({"name": null})).unwrap();
        assert!(parameter_warnings(&spec, &null, &captures).is_empty());
    }
}
