//! Shamir secret sharing of the unseal key over GF(256), through `blahaj` (the maintained fork of
//! `sharks`). Share layout matches Vault's: the share bytes followed by a one-byte x coordinate, so a
//! 32-byte key gives 33-byte shares. As in Vault, a single share (n = 1) is the key itself.

use blahaj::{Share, Sharks};
use zeroize::Zeroizing;

/// Why shares could not be produced or combined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    /// `threshold` or `shares` out of range.
    #[error("invalid seal configuration: {0}")]
    Config(&'static str),
    /// Shares of different lengths, duplicate or zero x coordinates, too few shares.
    #[error("invalid shares: {0}")]
    Shares(&'static str),
}

/// Split `secret` into `shares` parts, any `threshold` of which recombine it.
pub fn split(secret: &[u8], shares: u8, threshold: u8) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if shares == 0 || threshold == 0 {
        return Err(ShamirError::Config("secret shares and threshold must be at least 1"));
    }
    if threshold > shares {
        return Err(ShamirError::Config("threshold cannot be larger than shares"));
    }
    if shares > 1 && threshold < 2 {
        return Err(ShamirError::Config("threshold must be greater than one for multiple shares"));
    }
    if secret.is_empty() {
        return Err(ShamirError::Config("empty secret"));
    }
    if shares == 1 {
        return Ok(vec![Zeroizing::new(secret.to_vec())]);
    }
    let dealer = Sharks(threshold).dealer(secret);
    Ok(dealer
        .take(shares as usize)
        .map(|share| {
            let bytes = Zeroizing::new(Vec::from(&share));
            // blahaj: x first; Vault: x last.
            let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[1..]);
            out.push(bytes[0]);
            out
        })
        .collect())
}

/// Recombine shares. With one share (n = 1 configurations), the share is the secret.
pub fn combine(parts: &[Zeroizing<Vec<u8>>], threshold: u8) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if threshold <= 1 {
        return parts.first().cloned().ok_or(ShamirError::Shares("no shares"));
    }
    if parts.len() < threshold as usize {
        return Err(ShamirError::Shares("not enough shares"));
    }
    let len = parts[0].len();
    if len < 2 || parts.iter().any(|p| p.len() != len) {
        return Err(ShamirError::Shares("shares must have the same length"));
    }
    let mut xs = std::collections::HashSet::new();
    let mut shares = Vec::with_capacity(parts.len());
    for part in parts {
        let x = part[len - 1];
        if x == 0 || !xs.insert(x) {
            return Err(ShamirError::Shares("duplicate or invalid share"));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(len));
        bytes.push(x);
        bytes.extend_from_slice(&part[..len - 1]);
        shares.push(Share::try_from(bytes.as_slice()).map_err(ShamirError::Shares)?);
    }
    Sharks(threshold).recover(&shares).map(Zeroizing::new).map_err(|_| ShamirError::Shares("not enough shares"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_are_33_bytes_for_a_32_byte_key() {
        let shares = split(&[9u8; 32], 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.len() == 33));
    }

    #[test]
    fn a_single_share_is_the_key() {
        let shares = split(&[4u8; 32], 1, 1).unwrap();
        assert_eq!(shares[0].as_slice(), &[4u8; 32]);
        assert_eq!(combine(&shares, 1).unwrap().as_slice(), &[4u8; 32]);
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(split(&[1u8; 32], 5, 6).is_err());
        assert!(split(&[1u8; 32], 0, 0).is_err());
        assert!(split(&[1u8; 32], 3, 1).is_err());
    }

    #[test]
    fn duplicate_shares_are_refused() {
        let shares = split(&[3u8; 32], 5, 3).unwrap();
        let dup = vec![shares[0].clone(), shares[0].clone(), shares[1].clone()];
        assert!(combine(&dup, 3).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_k_of_n_shares_recombine_and_fewer_do_not(
            secret in proptest::collection::vec(any::<u8>(), 32),
            n in 2u8..=10,
            k_seed in any::<u8>(),
            pick_seed in any::<u64>(),
        ) {
            let k = 2 + k_seed % (n - 1); // 2..=n
            let shares = split(&secret, n, k).unwrap();
            // Choose k distinct shares pseudo-randomly from the seed.
            let mut idx: Vec<usize> = (0..n as usize).collect();
            let mut s = pick_seed;
            for i in (1..idx.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                idx.swap(i, (s >> 33) as usize % (i + 1));
            }
            let chosen: Vec<_> = idx[..k as usize].iter().map(|&i| shares[i].clone()).collect();
            let recovered = combine(&chosen, k).unwrap();
            prop_assert_eq!(recovered.as_slice(), secret.as_slice());
            // k-1 shares: refused outright, and even interpolated as if the threshold were k-1 they
            // give something other than the secret.
            prop_assert!(combine(&chosen[..k as usize - 1], k).is_err());
            let short = combine(&chosen[..k as usize - 1], k - 1).unwrap();
            prop_assert_ne!(short.as_slice(), secret.as_slice());
            // k-1 genuine shares plus a corrupted one: recombines to something else.
            let mut corrupted = chosen.clone();
            corrupted[0][0] ^= 0x5a;
            let wrong = combine(&corrupted, k).unwrap();
            prop_assert_ne!(wrong.as_slice(), secret.as_slice());
        }
    }
}
