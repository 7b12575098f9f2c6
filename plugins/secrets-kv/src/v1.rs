//! KV version 1: data stored verbatim at its path; `ttl` in the data is an advisory lease duration.

use serde_json::{Map, Value};
use tresor_sdk::{storage, Error, Operation, Path, Request, Response, Spec};

pub(crate) fn spec() -> Spec {
    Spec::secrets("KV version 1: arbitrary secrets at arbitrary paths.").path(
        Path::new("{path*}")
            .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Delete, Operation::List])
            .existence_check()
            .allow_unknown_fields()
            .help("Pass-through secret storage; any fields are stored as given."),
    )
}

fn key(req: &Request) -> Result<&str, Error> {
    let path = req.path.as_str();
    if path.is_empty() || path.ends_with('/') {
        return Err(Error::UnsupportedOperation);
    }
    Ok(path)
}

pub(crate) fn exists(req: &Request) -> Result<bool, Error> {
    Ok(storage::get(key(req)?)?.is_some())
}

pub(crate) fn handle(req: Request) -> Result<Response, Error> {
    match req.operation {
        Operation::List => {
            let prefix = if req.path.is_empty() || req.path.ends_with('/') { req.path.clone() } else { format!("{}/", req.path) };
            Response::list(storage::list(&prefix)?)
        }
        Operation::Read => {
            let data: Map<String, Value> = storage::get_json(key(&req)?)?.ok_or(Error::NotFound)?;
            let ttl = data.get("ttl").and_then(ttl_seconds).unwrap_or_else(tresor_sdk::system::default_lease_ttl);
            let mut resp = Response::data(Value::Object(data));
            resp.ttl_hint = Some(ttl);
            Ok(resp)
        }
        Operation::Create | Operation::Update => {
            let path = key(&req)?;
            if req.data.is_empty() {
                return Err(Error::invalid("missing data fields"));
            }
            let data: Map<String, Value> = req.data.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
            if let Some(ttl) = data.get("ttl")
                && ttl_seconds(ttl).is_none() {
                    return Err(Error::invalid("failed to parse ttl for entry"));
                }
            storage::put_json(path, &data)?;
            Ok(Response::empty())
        }
        Operation::Delete => {
            storage::delete(key(&req)?)?;
            Ok(Response::empty())
        }
        Operation::Patch => Err(Error::UnsupportedOperation),
    }
}

/// `ttl` as integer seconds or a Go duration string (`"1h"`, `"90m"`, `"30s"`).
pub(crate) fn ttl_seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_go_duration(s),
        _ => None,
    }
}

fn parse_go_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let value: f64 = num.parse().ok()?;
        num.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                _ => return None,
            };
        any = true;
    }
    (any && num.is_empty()).then_some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_sdk::Value as V;

    #[test]
    fn write_read_list_delete() {
        storage::reset_mock();
        let w = Request::new(Operation::Update, "app/db").with("user", V::Json(serde_json::json!("u").into())).with("ttl", V::Json(serde_json::json!("1h").into()));
        handle(w).unwrap();
        let r = handle(Request::new(Operation::Read, "app/db")).unwrap();
        assert_eq!(r.data.unwrap()["user"], "u");
        assert_eq!(r.ttl_hint, Some(3600));
        let l = handle(Request::new(Operation::List, "app")).unwrap();
        assert_eq!(l.data.unwrap()["keys"], serde_json::json!(["db"]));
        assert_eq!(handle(Request::new(Operation::List, "")).unwrap().data.unwrap()["keys"], serde_json::json!(["app/"]));
        assert_eq!(handle(Request::new(Operation::Update, "app/empty")).unwrap_err(), Error::invalid("missing data fields"));
        handle(Request::new(Operation::Delete, "app/db")).unwrap();
        assert_eq!(handle(Request::new(Operation::Read, "app/db")).unwrap_err(), Error::NotFound);
        assert_eq!(handle(Request::new(Operation::List, "nothing")).unwrap_err(), Error::NotFound);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("90"), Some(90));
        assert_eq!(parse_go_duration("10x"), None);
    }
}
