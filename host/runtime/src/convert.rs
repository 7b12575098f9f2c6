//! Conversions between WIT types and the host's logical types. Everything coming from the guest is
//! validated and bounded here.

use serde_json::Value;
use tresor_logical::framework::{FieldKind, FieldSpec, FieldValue, PathSpec};
use tresor_logical::{Error, Operation};

use crate::engine::bindings::tresor::plugin::types as wit;

/// Most paths a plugin may declare.
const MAX_PATHS: usize = 1000;
/// Largest response body a plugin may return (bytes of JSON).
pub(crate) const MAX_RESPONSE_LEN: usize = 16 << 20;
/// Longest client-visible error message a plugin may return.
const MAX_ERROR_LEN: usize = 1024;
const MAX_WARNINGS: usize = 32;

pub(crate) fn op_to_wit(op: Operation) -> Option<wit::Operation> {
    Some(match op {
        Operation::Read => wit::Operation::Read,
        Operation::Create => wit::Operation::Create,
        Operation::Update => wit::Operation::Update,
        Operation::Patch => wit::Operation::Patch,
        Operation::Delete => wit::Operation::Delete,
        Operation::List => wit::Operation::List,
        Operation::Help => return None,
    })
}

fn op_from_wit(op: wit::Operation) -> Operation {
    match op {
        wit::Operation::Read => Operation::Read,
        wit::Operation::Create => Operation::Create,
        wit::Operation::Update => Operation::Update,
        wit::Operation::Patch => Operation::Patch,
        wit::Operation::Delete => Operation::Delete,
        wit::Operation::List => Operation::List,
    }
}

fn kind_from_wit(k: wit::FieldKind) -> FieldKind {
    match k {
        wit::FieldKind::Str => FieldKind::Str,
        wit::FieldKind::Int => FieldKind::Int,
        wit::FieldKind::Boolean => FieldKind::Bool,
        wit::FieldKind::Duration => FieldKind::Duration,
        wit::FieldKind::StrList => FieldKind::StrList,
        wit::FieldKind::StrMap => FieldKind::StrMap,
        wit::FieldKind::Json => FieldKind::Json,
    }
}

/// The plugin's declared spec as host path specs; a malformed spec makes the plugin unusable.
pub(crate) fn spec_from_wit(spec: wit::BackendSpec) -> Result<(bool, Vec<PathSpec>, String), crate::Error> {
    if spec.paths.len() > MAX_PATHS {
        return Err(crate::Error::Invalid(format!("plugin declares more than {MAX_PATHS} paths")));
    }
    let mut out = Vec::with_capacity(spec.paths.len());
    for p in spec.paths {
        if let Some(pos) = p.pattern.find("*}")
            && pos + 2 != p.pattern.len() {
                return Err(crate::Error::Invalid(format!("pattern {:?}: a rest capture must be last", p.pattern)));
            }
        let mut fields = Vec::with_capacity(p.fields.len());
        for f in p.fields {
            let default = match f.default_value {
                None => None,
                Some(text) => Some(serde_json::from_str::<Value>(&text).map_err(|_| {
                    crate::Error::Invalid(format!("field {:?}: default is not valid JSON", f.name))
                })?),
            };
            fields.push(FieldSpec {
                name: f.name,
                kind: kind_from_wit(f.kind),
                description: f.description,
                required: f.required,
                sensitive: f.sensitive,
                default,
            });
        }
        out.push(PathSpec {
            pattern: p.pattern,
            fields,
            operations: p.operations.into_iter().map(op_from_wit).collect(),
            existence_check: p.existence_check,
            unauthenticated: p.unauthenticated,
            allow_unknown_fields: p.allow_unknown_fields,
            help: p.help,
        });
    }
    Ok((matches!(spec.kind, wit::BackendKind::Auth), out, spec.help))
}

pub(crate) fn value_to_wit(v: FieldValue) -> wit::FieldValue {
    match v {
        FieldValue::Str(s) => wit::FieldValue::Str(s),
        FieldValue::Int(i) => wit::FieldValue::Int(i),
        FieldValue::Bool(b) => wit::FieldValue::Boolean(b),
        FieldValue::Duration(d) => wit::FieldValue::Duration(d),
        FieldValue::StrList(l) => wit::FieldValue::StrList(l),
        FieldValue::StrMap(m) => wit::FieldValue::StrMap(serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())),
        // `to_string` on a `Value` goes through `fmt::Formatter`; the serializer directly is faster.
        FieldValue::Json(v) => wit::FieldValue::Json(serde_json::to_string(&v).unwrap_or_default()),
    }
}

/// `s` cut to at most `max` bytes on a character boundary (guest strings are untrusted in size).
pub(crate) fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

pub(crate) fn error_from_wit(e: wit::Error) -> Error {
    match e {
        wit::Error::InvalidRequest(m) => Error::InvalidRequest(bounded(m, MAX_ERROR_LEN)),
        wit::Error::NotFound => Error::NotFound,
        wit::Error::PermissionDenied => Error::Forbidden,
        wit::Error::UnsupportedPath => Error::UnsupportedPath,
        wit::Error::UnsupportedOperation => Error::UnsupportedOperation,
        wit::Error::Internal(m) => Error::Internal(format!("plugin error: {}", bounded(m, MAX_ERROR_LEN))),
    }
}

/// Statuses a plugin may choose for a response with data: success and client errors (Transit's
/// `partial_failure_response_code` lets a client pick any of them). Never 1xx/3xx (they would
/// change how the connection or client behaves) nor 5xx (server faults are the host's to report).
fn allowed_status(s: u16) -> bool {
    matches!(s, 200..=299 | 400..=499)
}

/// A plugin's client error with a status of its choosing: a 4xx response whose data is exactly
/// `{"errors": ["<message>"]}` (the SDK's `Response::error`) is answered as that error, the way
/// Vault answers an `ErrorResponse` paired with a coded error (`role "r" does not exist`, 404).
fn error_body(status: u16, text: &str) -> Option<String> {
    if !(400..=499).contains(&status) || !text.contains("\"errors\"") {
        return None;
    }
    let serde_json::Value::Object(mut body) = serde_json::from_str(text).ok()? else { return None };
    match (body.remove("errors"), body.is_empty()) {
        (Some(serde_json::Value::Array(mut errors)), true) if errors.len() == 1 => match errors.pop() {
            Some(serde_json::Value::String(message)) => Some(bounded(message, MAX_ERROR_LEN)),
            _ => None,
        },
        _ => None,
    }
}

/// Most policies / metadata pairs / CIDRs a login may carry.
const MAX_LOGIN_ITEMS: usize = 256;

fn login_from_wit(a: wit::Auth) -> Result<tresor_logical::Login, Error> {
    if a.policies.len() > MAX_LOGIN_ITEMS || a.metadata.len() > MAX_LOGIN_ITEMS || a.bound_cidrs.len() > MAX_LOGIN_ITEMS {
        return Err(Error::Internal("plugin login carries too many policies, metadata or CIDRs".into()));
    }
    if a.internal_data.len() > MAX_RESPONSE_LEN {
        return Err(Error::Internal("plugin login internal data too large".into()));
    }
    let small = |s: String| bounded(s, MAX_ERROR_LEN);
    Ok(tresor_logical::Login {
        policies: a.policies.into_iter().map(small).collect(),
        metadata: a.metadata.into_iter().map(|(k, v)| (small(k), small(v))).collect(),
        display_name: small(a.display_name),
        alias_name: small(a.alias_name),
        internal_data: a.internal_data,
        ttl: a.lease.ttl_seconds,
        max_ttl: a.lease.max_ttl_seconds,
        renewable: a.lease.renewable,
        num_uses: u64::from(a.num_uses),
        period: a.period_seconds,
        explicit_max_ttl: a.explicit_max_ttl_seconds,
        no_default_policy: a.no_default_policy,
        bound_cidrs: a.bound_cidrs.into_iter().map(small).collect(),
        token_type: match a.token_type {
            wit::TokenType::Default => "default",
            wit::TokenType::Service => "service",
            wit::TokenType::Batch => "batch",
        }
        .into(),
    })
}

/// A guest response as a host response. `login_allowed`: the request hit an auth method's login path,
/// the only place an `auth` result is accepted.
pub(crate) fn response_from_wit(r: wit::Response, max_lease_ttl: u64, login_allowed: bool) -> Result<tresor_logical::Response, Error> {
    let data = match r.data {
        None => None,
        Some(text) if text.len() > MAX_RESPONSE_LEN => {
            return Err(Error::Internal(format!("plugin response larger than {MAX_RESPONSE_LEN} bytes")));
        }
        // Checked as JSON (syntax, nesting limit) but not parsed: most responses go straight to
        // the client, and the core parses the text only for audit or wrapping.
        Some(text) => match serde_json::value::RawValue::from_string(text) {
            Ok(raw) if raw.get().starts_with('{') => Some(raw),
            Ok(raw) if raw.get() == "null" => None,
            Ok(_) | Err(_) => return Err(Error::Internal("plugin returned data that is not a JSON object".into())),
        },
    };
    let secret = match r.secret {
        None => None,
        Some(s) => Some(secret_from_wit(s)?),
    };
    let login = match r.auth {
        None => None,
        Some(_) if !login_allowed => {
            return Err(Error::Internal("plugin returned a login from a path that is not a login path; refused".into()));
        }
        Some(a) => Some(login_from_wit(a)?),
    };
    let status = match r.status {
        None => None,
        Some(s) if allowed_status(s) => Some(s),
        Some(s) => return Err(Error::Internal(format!("plugin returned disallowed status {s}"))),
    };
    if let (Some(s), Some(raw)) = (status, &data)
        && let Some(message) = error_body(s, raw.get())
    {
        return Err(Error::ClientStatus(s, message));
    }
    let warnings: Vec<String> = r.warnings.into_iter().take(MAX_WARNINGS).map(|w| bounded(w, MAX_ERROR_LEN)).collect();
    let lease_duration = r.ttl_hint.map_or(0, |t| t.min(max_lease_ttl));
    Ok(tresor_logical::Response {
        data: None,
        data_text: data,
        warnings,
        auth: None,
        login,
        lease_id: String::new(),
        lease_duration,
        renewable: false,
        status,
        secret,
        wrap_info: None,
    })
}

/// A guest's lease request: internal data must be a JSON object of bounded size (TTLs are clamped by
/// the expiration manager, which knows the mount).
pub(crate) fn secret_from_wit(s: wit::Secret) -> Result<tresor_logical::LeaseSecret, Error> {
    if s.internal_data.len() > MAX_RESPONSE_LEN {
        return Err(Error::Internal("plugin lease internal data too large".into()));
    }
    let internal_data = if s.internal_data.is_empty() { "{}".to_string() } else { s.internal_data };
    if !matches!(serde_json::from_str::<Value>(&internal_data), Ok(Value::Object(_))) {
        return Err(Error::Internal("plugin lease internal data is not a JSON object".into()));
    }
    Ok(tresor_logical::LeaseSecret { internal_data, ttl: s.lease.ttl_seconds, max_ttl: s.lease.max_ttl_seconds, renewable: s.lease.renewable })
}

/// A host lease as the guest sees it.
pub(crate) fn secret_to_wit(s: &tresor_logical::LeaseSecret) -> wit::Secret {
    wit::Secret {
        internal_data: s.internal_data.clone(),
        lease: wit::LeaseOptions { ttl_seconds: s.ttl, max_ttl_seconds: s.max_ttl, renewable: s.renewable },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_data(data: &str) -> wit::Response {
        wit::Response { data: Some(data.into()), warnings: Vec::new(), secret: None, auth: None, status: None, ttl_hint: None }
    }

    /// A plugin's data is checked as a JSON object and passed on as text; parsing it on demand gives
    /// exactly what the plugin sent.
    #[test]
    fn plugin_data_is_checked_and_kept_as_text() {
        let mut r = response_from_wit(with_data(" {\"b\":[1,{\"c\":\"\\u00e9\"}],\"a\":null}\n"), 60, false).unwrap();
        assert_eq!(r.data_text.as_ref().map(|t| t.get()), Some("{\"b\":[1,{\"c\":\"\\u00e9\"}],\"a\":null}"));
        assert!(r.data.is_none() && !r.is_empty());
        r.materialize().unwrap();
        assert_eq!(Value::Object(r.data.clone().unwrap()), serde_json::json!({"a": null, "b": [1, {"c": "é"}]}));
        assert!(r.data_text.is_none());
        assert!(response_from_wit(with_data("null"), 60, false).unwrap().is_empty());
        for bad in ["[1]", "\"x\"", "3", "{\"a\":", "{} {}", "{\"a\":1}x", "", &"[".repeat(200)] {
            assert!(matches!(response_from_wit(with_data(bad), 60, false), Err(Error::Internal(_))), "{bad}");
        }
    }

    /// A plugin may answer 2xx and 4xx; a 1xx, 3xx or 5xx fails the request (500 from the host).
    #[test]
    fn an_errors_body_with_a_client_status_is_that_error() {
        let r = response_from_wit(wit::Response { status: Some(404), ..with_data(r#"{"errors":["role \"r\" does not exist"]}"#) }, 60, false);
        assert!(matches!(r, Err(Error::ClientStatus(404, ref m)) if m == "role \"r\" does not exist"), "{r:?}");
        // Anything else stays data: no status, other keys, several messages.
        for (status, body) in [(None, r#"{"errors":["x"]}"#), (Some(404), r#"{"errors":["x"],"data":1}"#), (Some(400), r#"{"errors":["x","y"]}"#), (Some(404), r#"{"error":"x"}"#)] {
            let r = response_from_wit(wit::Response { status, ..with_data(body) }, 60, false).unwrap();
            assert!(r.data_text.is_some(), "{body}");
        }
    }

    #[test]
    fn plugin_statuses_are_bounded() {
        for ok in [200, 202, 204, 207, 400, 404, 409, 429] {
            let r = response_from_wit(wit::Response { status: Some(ok), ..with_data("{}") }, 60, false).unwrap();
            assert_eq!(r.status, Some(ok));
        }
        for bad in [100, 101, 199, 301, 302, 307, 500, 503, 599, 600, 0] {
            let r = response_from_wit(wit::Response { status: Some(bad), ..with_data("{}") }, 60, false);
            assert!(matches!(r, Err(Error::Internal(_))), "{bad}");
        }
    }
}
