//! Vault-style durations: integer seconds (as number or string) or Go duration strings (`"1h30m"`).

/// A duration that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Parse a duration value (JSON number or string) into whole seconds.
pub fn parse_duration(value: &serde_json::Value) -> Result<u64, DurationError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()).map(|f| f as u64))
            .ok_or_else(|| DurationError(n.to_string())),
        serde_json::Value::String(s) => parse_duration_str(s),
        other => Err(DurationError(other.to_string())),
    }
}

fn parse_duration_str(input: &str) -> Result<u64, DurationError> {
    let s = input.trim();
    let err = || DurationError(input.to_string());
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    if !total.is_finite() || total < 0.0 || total > u64::MAX as f64 {
        return Err(err());
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_seconds_and_go_durations() {
        assert_eq!(parse_duration(&json!(30)), Ok(30));
        assert_eq!(parse_duration(&json!("45")), Ok(45));
        assert_eq!(parse_duration(&json!("1h")), Ok(3600));
        assert_eq!(parse_duration(&json!("1h30m")), Ok(5400));
        assert_eq!(parse_duration(&json!("768h")), Ok(2_764_800));
        assert_eq!(parse_duration(&json!("1.5h")), Ok(5400));
        assert_eq!(parse_duration(&json!("")), Ok(0));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_duration(&json!("abc")).is_err());
        assert!(parse_duration(&json!("10x")).is_err());
        assert!(parse_duration(&json!("h")).is_err());
        assert!(parse_duration(&json!(-5)).is_err());
        assert!(parse_duration(&json!(true)).is_err());
    }
}
