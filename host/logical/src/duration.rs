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

/// Why Go's `time.ParseDuration` refuses `input` (which [`parse_duration`] refused), in Go's
/// words: Vault quotes them in its field validation errors.
pub fn go_duration_error(input: &str) -> String {
    let invalid = || format!("time: invalid duration {input:?}");
    let mut rest = input.strip_prefix(['-', '+']).unwrap_or(input);
    if rest.is_empty() {
        return invalid();
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..number_len];
        if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
            return invalid();
        }
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        match &rest[..unit_len] {
            "" => return format!("time: missing unit in duration {input:?}"),
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h" => {}
            unit => return format!("time: unknown unit {unit:?} in duration {input:?}"),
        }
        rest = &rest[unit_len..];
    }
    // Well formed but out of range (or negative, which Vault refuses separately).
    invalid()
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
    fn go_error_texts() {
        assert_eq!(go_duration_error("bogus"), "time: invalid duration \"bogus\"");
        assert_eq!(go_duration_error("1x"), "time: unknown unit \"x\" in duration \"1x\"");
        assert_eq!(go_duration_error("1h5"), "time: missing unit in duration \"1h5\"");
        assert_eq!(go_duration_error("h"), "time: invalid duration \"h\"");
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
