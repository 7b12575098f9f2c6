//! Small helpers shared by the core's modules: time formatting, random ids, JSON coercion.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tresor_logical::Map;

/// Now, as Unix seconds.
pub(crate) fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A Unix time as RFC 3339 (UTC).
pub(crate) fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Now, as Unix nanoseconds.
pub(crate) fn now_unix_nanos() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// Unix nanoseconds as RFC 3339 with fractional seconds (UTC).
pub(crate) fn rfc3339_nanos(nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random base62 string of `len` characters (≈5.95 bits each), from the thread CSPRNG.
pub(crate) fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rand::fill(&mut buf[..]);
        for b in buf {
            // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Build a JSON object from pairs.
pub(crate) fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Map {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Typed access to request fields, with Vault's lenient coercions and clear 400s.
pub(crate) mod field {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use tresor_logical::{parse_duration, Error, Map};

    /// A string field (numbers and booleans as their text).
    pub(crate) fn str<'a>(data: &'a Map, key: &str) -> Result<Option<&'a str>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Error::invalid(format!("field {key:?} must be a string"))),
        }
    }

    /// A boolean field (`"true"`, `1`...).
    pub(crate) fn bool(data: &Map, key: &str) -> Result<Option<bool>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(Some(true)),
                "false" | "0" | "f" | "F" | "FALSE" | "False" | "" => Ok(Some(false)),
                _ => Err(Error::invalid(format!("field {key:?} must be a boolean"))),
            },
            Some(Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
            Some(_) => Err(Error::invalid(format!("field {key:?} must be a boolean"))),
        }
    }

    /// A duration field in seconds (integers or Go duration strings).
    pub(crate) fn duration(data: &Map, key: &str) -> Result<Option<u64>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(0)),
            // Go's text, as Vault's parseutil reports it.
            Some(v @ Value::String(s)) => parse_duration(v).map(Some).map_err(|_| Error::invalid(format!("time: invalid duration {s:?}"))),
            Some(v) => parse_duration(v).map(Some).map_err(|_| Error::invalid(format!("field {key:?} is not a valid duration"))),
        }
    }

    /// An integer field (numbers or their decimal text).
    pub(crate) fn int(data: &Map, key: &str) -> Result<Option<i64>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| Error::invalid(format!("field {key:?} must be an integer"))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Error::invalid(format!("field {key:?} must be an integer"))),
            Some(_) => Err(Error::invalid(format!("field {key:?} must be an integer"))),
        }
    }

    /// A non-negative integer field.
    pub(crate) fn uint(data: &Map, key: &str) -> Result<Option<u64>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| Error::invalid(format!("field {key:?} must be a non-negative integer"))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Error::invalid(format!("field {key:?} must be a non-negative integer"))),
            Some(_) => Err(Error::invalid(format!("field {key:?} must be a non-negative integer"))),
        }
    }

    /// A list of strings (a comma-separated string is split; numbers and booleans are taken as
    /// their text, as Vault's weakly typed decoding does).
    pub(crate) fn str_list(data: &Map, key: &str) -> Result<Option<Vec<String>>, Error> {
        let bad = || Error::invalid(format!("field {key:?} must be a list of strings"));
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| text(v).map(|s| s.trim().to_string()).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(v.into_iter().filter(|s| !s.is_empty()).collect())),
            Some(v) => {
                let s = text(v).ok_or_else(bad)?;
                Ok(Some(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()))
            }
        }
    }

    /// A map of strings.
    pub(crate) fn str_map(data: &Map, key: &str) -> Result<Option<BTreeMap<String, String>>, Error> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                    _ => Err(Error::invalid(format!("field {key:?} must be a map of strings"))),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(Error::invalid(format!("field {key:?} must be a map of strings"))),
        }
    }
}

/// Whether `c` is an address or a CIDR block (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
pub(crate) fn valid_cidr(c: &str) -> bool {
    let (ip, bits) = match c.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (c, None),
    };
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(addr) => {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|b| b <= max))
        }
        Err(_) => false,
    }
}

/// Whether `addr` lies in any of `cidrs` (`10.0.0.0/8`, `::1/128`, or a bare address). Malformed
/// blocks match nothing, so a typo fails closed.
pub(crate) fn cidrs_contain(cidrs: &[String], addr: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    cidrs.iter().any(|c| {
        let (ip, bits) = match c.split_once('/') {
            Some((ip, bits)) => (ip, bits.parse::<u32>().ok()),
            None => (c.as_str(), None),
        };
        let Ok(net) = ip.trim().parse::<IpAddr>() else { return false };
        match (net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let bits = bits.unwrap_or(32);
                bits <= 32 && (bits == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - bits) == 0)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let bits = bits.unwrap_or(128);
                bits <= 128 && (bits == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - bits) == 0)
            }
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| {
                let bits = bits.unwrap_or(32);
                bits <= 32 && (bits == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - bits) == 0)
            }),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cidr_matching() {
        let c = vec!["10.0.0.0/8".to_string(), "127.0.0.1".to_string(), "::1/128".to_string()];
        assert!(cidrs_contain(&c, "10.2.3.4".parse().unwrap()));
        assert!(cidrs_contain(&c, "127.0.0.1".parse().unwrap()));
        assert!(cidrs_contain(&c, "::1".parse().unwrap()));
        assert!(!cidrs_contain(&c, "11.0.0.1".parse().unwrap()));
        assert!(!cidrs_contain(&["garbage".into()], "10.0.0.1".parse().unwrap()));
        assert!(cidrs_contain(&["0.0.0.0/0".into()], "8.8.8.8".parse().unwrap()));
    }

    use super::*;

    #[test]
    fn base62_has_requested_length_and_alphabet() {
        let s = random_base62(40);
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(random_base62(40), s);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
