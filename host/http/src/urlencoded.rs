//! Percent-decoding for paths, query strings and `application/x-www-form-urlencoded` bodies.

/// Decode `%XX` escapes; with `plus_is_space`, `+` means a space (query strings and forms).
/// `None` for a malformed escape or a result that is not UTF-8.
pub(crate) fn decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parse `a=1&b=2` into pairs, in order. Pairs that fail to decode are an error.
pub(crate) fn parse_pairs(input: &str) -> Option<Vec<(String, String)>> {
    input
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k, true)?, decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(decode("a%20b+c", false).as_deref(), Some("a b+c"));
        assert_eq!(decode("%zz", true), None);
        assert_eq!(decode("%4", true), None);
        assert_eq!(decode("%ff", true), None);
    }

    #[test]
    fn parses_pairs() {
        assert_eq!(
            parse_pairs("a=1&b=&c&&d=x%3Dy").unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "".into()), ("c".into(), "".into()), ("d".into(), "x=y".into())]
        );
    }
}
