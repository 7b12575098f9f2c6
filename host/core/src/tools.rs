//! `sys/tools/random` and `sys/tools/hash`: Vault's utility endpoints (the same behaviour and
//! messages as Transit's `random` and `hash`). Any valid token may call them (default policy).

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use tresor_logical::{Error, Map};

use crate::util::{field, obj};

/// Most bytes one `sys/tools/random` call returns (Vault's limit).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;

/// `sys/tools/random[/<source>][/<bytes>]`; `rest` is what follows `tools/random`. Parsed as
/// Vault does: the path's segments always replace the body's `source` and `urlbytes` (a body
/// `source` never takes effect, and a warning says so); a lone segment is a source when it names
/// one and a byte count otherwise. Returns the data and the warnings.
pub(crate) fn random(rest: &str, data: &Map) -> Result<(Map, Vec<String>), Error> {
    let body_bytes = || field::int(data, "bytes").map(|b| b.unwrap_or(32));
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (source, bytes) = match rest.split_once('/') {
        _ if rest.is_empty() => ("platform", body_bytes()?),
        None if matches!(rest, "platform" | "seal" | "all") => (rest, body_bytes()?),
        None => ("platform", go_atoi(rest)?),
        Some((source, count)) => (source, go_atoi(count)?),
    };
    if bytes < 1 {
        return Err(Error::invalid("'bytes' cannot be less than 1"));
    }
    let bytes = u64::try_from(bytes).unwrap_or(0);
    if bytes > MAX_RANDOM_BYTES {
        return Err(Error::invalid(format!("'bytes' should be less than {MAX_RANDOM_BYTES}")));
    }
    let format = field::str(data, "format")?.unwrap_or("base64");
    if !matches!(format, "hex" | "base64") {
        return Err(Error::invalid(format!("unsupported encoding format {format:?}; must be \"hex\" or \"base64\"")));
    }
    let mut warnings = Vec::new();
    match source {
        "platform" | "all" => {}
        // No seal-backed entropy source (no HSM): as Vault without entropy augmentation.
        "seal" => warnings.push("no seal/entropy augmentation available, using platform entropy source".to_string()),
        other => return Err(Error::invalid(format!("unsupported entropy source {other:?}; must be \"platform\" or \"seal\", or \"all\""))),
    }
    let mut buf = vec![0u8; usize::try_from(bytes).unwrap_or(32)];
    rand::fill(&mut buf[..]);
    let out = if format == "hex" { hex::encode(&buf) } else { base64::engine::general_purpose::STANDARD.encode(&buf) };
    let replaced: Vec<&str> = ["source", "urlbytes"].into_iter().filter(|k| data.get(*k).is_some_and(|v| !v.is_null())).collect();
    if !replaced.is_empty() {
        warnings.push(tresor_logical::framework::replaced_warning(&replaced));
    }
    Ok((obj([("random_bytes", json!(out))]), warnings))
}

/// Go's `strconv.Atoi` and its error, which Vault quotes for a byte count in the path.
fn go_atoi(s: &str) -> Result<i64, Error> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!("error parsing url-set byte count: strconv.Atoi: parsing {s:?}: invalid syntax")));
    }
    s.parse::<i64>().map_err(|_| Error::invalid(format!("error parsing url-set byte count: strconv.Atoi: parsing {s:?}: value out of range")))
}

/// `sys/tools/hash[/<algorithm>]`; `rest` is what follows `tools/hash`.
pub(crate) fn hash(rest: &str, data: &Map) -> Result<Map, Error> {
    let input = field::str(data, "input")?.ok_or_else(|| Error::invalid("missing input to hash"))?;
    let input = base64::engine::general_purpose::STANDARD
        .decode(input)
        .map_err(|e| Error::invalid(format!("unable to decode input as base64: illegal base64 data at input byte {}", go_offset(&e, input.len()))))?;
    let url_alg = rest.trim_matches('/');
    let alg = if url_alg.is_empty() { field::str(data, "algorithm")?.unwrap_or("sha2-256") } else { url_alg };
    let sum: Vec<u8> = match alg {
        "sha2-224" => sha2::Sha224::digest(&input).to_vec(),
        "sha2-256" => sha2::Sha256::digest(&input).to_vec(),
        "sha2-384" => sha2::Sha384::digest(&input).to_vec(),
        "sha2-512" => sha2::Sha512::digest(&input).to_vec(),
        "sha3-224" => sha3::Sha3_224::digest(&input).to_vec(),
        "sha3-256" => sha3::Sha3_256::digest(&input).to_vec(),
        "sha3-384" => sha3::Sha3_384::digest(&input).to_vec(),
        "sha3-512" => sha3::Sha3_512::digest(&input).to_vec(),
        other => return Err(Error::invalid(format!("unsupported algorithm {other}"))),
    };
    let out = match field::str(data, "format")?.unwrap_or("hex") {
        "hex" => hex::encode(sum),
        "base64" => base64::engine::general_purpose::STANDARD.encode(sum),
        other => return Err(Error::invalid(format!("unsupported encoding format {other}; must be \"hex\" or \"base64\""))),
    };
    Ok(obj([("sum", Value::String(out))]))
}

/// Where Go's decoder reports a refused input (`illegal base64 data at input byte N`).
fn go_offset(e: &base64::DecodeError, len: usize) -> usize {
    match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => *at,
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => len.saturating_sub(len % 4).min(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: Value) -> Map {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn random_sizes_formats_and_limits() {
        let bytes = |r: &Map| base64::engine::general_purpose::STANDARD.decode(r["random_bytes"].as_str().unwrap()).unwrap().len();
        let message = |r: Result<(Map, Vec<String>), Error>| r.unwrap_err().to_string();
        let (r, warnings) = random("", &Map::new()).unwrap();
        assert_eq!((bytes(&r), warnings.len()), (32, 0));
        let (r, _) = random("/16", &data(json!({"format": "hex", "bytes": 4}))).unwrap();
        assert_eq!(r["random_bytes"].as_str().unwrap().len(), 32, "the path's count wins");
        assert_eq!(bytes(&random("/all", &data(json!({"bytes": 4}))).unwrap().0), 4);
        let (r, warnings) = random("/seal/8", &Map::new()).unwrap();
        assert_eq!(bytes(&r), 8);
        assert_eq!(warnings, ["no seal/entropy augmentation available, using platform entropy source"]);
        // A body source is replaced by the path's (empty) one.
        let (_, warnings) = random("", &data(json!({"source": "seal"}))).unwrap();
        assert_eq!(warnings, ["Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [source]"]);
        assert_ne!(random("", &Map::new()).unwrap().0, random("", &Map::new()).unwrap().0);
        assert_eq!(message(random("/0", &Map::new())), "'bytes' cannot be less than 1");
        assert_eq!(message(random("/131073", &Map::new())), "'bytes' should be less than 131072");
        assert!(random("", &data(json!({"format": "bad"}))).is_err());
        assert_eq!(message(random("/moon", &Map::new())), "error parsing url-set byte count: strconv.Atoi: parsing \"moon\": invalid syntax");
        assert_eq!(message(random("/8/seal", &Map::new())), "error parsing url-set byte count: strconv.Atoi: parsing \"seal\": invalid syntax");
        assert_eq!(message(random("/moon/8", &Map::new())), "unsupported entropy source \"moon\"; must be \"platform\" or \"seal\", or \"all\"");
    }

    #[test]
    fn hash_known_answers() {
        // FIPS 180-4 and FIPS 202 "abc".
        let abc = data(json!({"input": "YWJj"}));
        assert_eq!(hash("", &abc).unwrap()["sum"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash("/sha3-256", &abc).unwrap()["sum"], "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
        let b64 = data(json!({"input": "YWJj", "algorithm": "sha2-512", "format": "base64"}));
        assert_eq!(hash("", &b64).unwrap()["sum"].as_str().unwrap().len(), 88);
        assert_eq!(hash("/md5", &abc).unwrap_err().to_string(), "unsupported algorithm md5");
        assert!(hash("", &data(json!({"input": "!!"}))).unwrap_err().to_string().contains("illegal base64 data at input byte 0"));
    }
}
