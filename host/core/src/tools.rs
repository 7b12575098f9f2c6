//! `sys/tools/random` and `sys/tools/hash`: Vault's utility endpoints (the same behaviour and
//! messages as Transit's `random` and `hash`). Any valid token may call them (default policy).

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use tresor_logical::{Error, Map};

use crate::util::{field, obj};

/// Most bytes one `sys/tools/random` call returns (Vault's limit).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;

/// `sys/tools/random[/<source>][/<bytes>]`; `rest` is what follows `tools/random`.
pub(crate) fn random(rest: &str, data: &Map) -> Result<Map, Error> {
    let mut bytes = field::int(data, "bytes")?.unwrap_or(32);
    let mut format = field::str(data, "format")?.unwrap_or("base64").to_string();
    let mut source = field::str(data, "source")?.unwrap_or("platform").to_string();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        match seg.parse::<i64>() {
            Ok(n) => bytes = n,
            Err(_) if matches!(seg, "hex" | "base64") => format = seg.to_string(),
            Err(_) => source = seg.to_string(),
        }
    }
    if !matches!(source.as_str(), "platform" | "seal" | "all") {
        return Err(Error::invalid(format!("unsupported entropy source {source:?}; must be \"platform\" or \"seal\", or \"all\"")));
    }
    if bytes < 1 {
        return Err(Error::invalid("'bytes' cannot be less than 1"));
    }
    let bytes = u64::try_from(bytes).unwrap_or(0);
    if bytes > MAX_RANDOM_BYTES {
        return Err(Error::invalid(format!("'bytes' cannot be greater than {MAX_RANDOM_BYTES}")));
    }
    let mut buf = vec![0u8; usize::try_from(bytes).unwrap_or(32)];
    rand::fill(&mut buf[..]);
    let out = match format.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD.encode(&buf),
        "hex" => hex::encode(&buf),
        other => return Err(Error::invalid(format!("unsupported encoding format {other:?}; must be \"hex\" or \"base64\""))),
    };
    Ok(obj([("random_bytes", json!(out))]))
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
        let r = random("", &Map::new()).unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(r["random_bytes"].as_str().unwrap()).unwrap().len(), 32);
        let r = random("/16", &data(json!({"format": "hex"}))).unwrap();
        assert_eq!(r["random_bytes"].as_str().unwrap().len(), 32);
        let r = random("/seal/hex/8", &Map::new()).unwrap();
        assert_eq!(r["random_bytes"].as_str().unwrap().len(), 16);
        assert_ne!(random("", &Map::new()).unwrap(), random("", &Map::new()).unwrap());
        assert_eq!(random("/0", &Map::new()).unwrap_err().to_string(), "'bytes' cannot be less than 1");
        assert_eq!(random("/131073", &Map::new()).unwrap_err().to_string(), "'bytes' cannot be greater than 131072");
        assert!(random("", &data(json!({"format": "bad"}))).is_err());
        assert!(random("/moon", &Map::new()).is_err());
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
