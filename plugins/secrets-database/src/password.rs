//! Randomness (`getrandom` → `wasi:random`, the host's CSPRNG) and Vault's default password
//! generator: 20 characters from `[A-Za-z0-9-]` with at least one lowercase letter, one uppercase
//! letter, one digit and one dash.

use tresor_sdk::Error;
use zeroize::Zeroizing;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const DASH: &[u8] = b"-";

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("random: {e}")))?;
    Ok(buf)
}

/// `n` characters drawn uniformly from `charset` (rejection sampling, no modulo bias).
fn draw(charset: &[u8], n: usize) -> Result<Vec<u8>, Error> {
    let limit = 256 - (256 % charset.len());
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n * 2)? {
            if (b as usize) < limit && out.len() < n {
                out.push(charset[b as usize % charset.len()]);
            }
        }
    }
    Ok(out)
}

/// `n` random characters from `[A-Za-z0-9]`.
pub fn random_alphanumeric(n: usize) -> Result<String, Error> {
    let charset: Vec<u8> = [LOWER, UPPER, DIGITS].concat();
    Ok(draw(&charset, n)?.into_iter().map(char::from).collect())
}

/// A password as Vault's default policy makes them (about 118 bits).
pub fn generate() -> Result<Zeroizing<String>, Error> {
    let charset: Vec<u8> = [LOWER, UPPER, DIGITS, DASH].concat();
    loop {
        let candidate = Zeroizing::new(draw(&charset, 20)?);
        let has = |set: &[u8]| candidate.iter().any(|c| set.contains(c));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(DASH) {
            return Ok(Zeroizing::new(candidate.iter().map(|&c| char::from(c)).collect()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_vaults_default_policy_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = generate().expect("generated");
            assert_eq!(p.len(), 20);
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()) && p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()) && p.contains('-'));
            assert!(seen.insert(p.to_string()), "a repeated password");
        }
        let a = random_alphanumeric(20).expect("random");
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
