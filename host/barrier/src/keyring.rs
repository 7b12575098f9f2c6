//! The barrier keyring: every data-encryption key ever installed, by term, plus which term encrypts new
//! writes. Serialised in a fixed binary layout into a `Zeroizing` buffer (no intermediate strings of key
//! material), then sealed by the root key.

use std::fmt;

use zeroize::Zeroizing;

use crate::Error;

/// Length of every key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// One data-encryption key.
#[derive(Clone)]
pub struct Key {
    /// Term number; stored in every ciphertext header.
    pub term: u32,
    /// Key bytes.
    pub value: Zeroizing<[u8; KEY_LEN]>,
    /// Unix time the key was installed.
    pub install_time: i64,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("term", &self.term).field("install_time", &self.install_time).finish()
    }
}

/// The keyring.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
    active: u32,
    /// Encryptions performed with the active key, as last persisted.
    pub encryptions: u64,
}

const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 8 + 4;
const ENTRY_LEN: usize = 4 + 8 + KEY_LEN;

impl Keyring {
    /// A keyring with one fresh random key at term 1.
    pub fn generate(now: i64) -> Self {
        Self { keys: vec![Key { term: 1, value: random_key(), install_time: now }], active: 1, encryptions: 0 }
    }

    /// The key that encrypts new writes.
    pub fn active(&self) -> &Key {
        // `active` always names a key in `keys`: both change together in `rotated`.
        self.keys.iter().find(|k| k.term == self.active).unwrap_or(&self.keys[0])
    }

    /// The key of a given term.
    pub fn term(&self, term: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.term == term)
    }

    /// All keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// A copy with a fresh key installed as the new active term.
    pub fn rotated(&self, now: i64) -> Self {
        let term = self.keys.iter().map(|k| k.term).max().unwrap_or(0) + 1;
        let mut keys = self.keys.clone();
        keys.push(Key { term, value: random_key(), install_time: now });
        Self { keys, active: term, encryptions: 0 }
    }

    /// Serialise: version, active term, encryptions, count, then (term, install time, key) per key.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.keys.len()));
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&self.encryptions.to_be_bytes());
        out.extend_from_slice(&(self.keys.len() as u32).to_be_bytes());
        for key in &self.keys {
            out.extend_from_slice(&key.term.to_be_bytes());
            out.extend_from_slice(&key.install_time.to_be_bytes());
            out.extend_from_slice(key.value.as_ref());
        }
        out
    }

    /// Parse what [`Keyring::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let corrupt = || Error::Corrupt("malformed keyring");
        if bytes.len() < HEADER_LEN || bytes[0] != FORMAT_VERSION {
            return Err(corrupt());
        }
        let active = u32::from_be_bytes(bytes[1..5].try_into().map_err(|_| corrupt())?);
        let encryptions = u64::from_be_bytes(bytes[5..13].try_into().map_err(|_| corrupt())?);
        let count = u32::from_be_bytes(bytes[13..17].try_into().map_err(|_| corrupt())?) as usize;
        let body = &bytes[HEADER_LEN..];
        if body.len() != count.checked_mul(ENTRY_LEN).ok_or_else(corrupt)? || count == 0 {
            return Err(corrupt());
        }
        let mut keys = Vec::with_capacity(count);
        for entry in body.chunks_exact(ENTRY_LEN) {
            let term = u32::from_be_bytes(entry[0..4].try_into().map_err(|_| corrupt())?);
            let install_time = i64::from_be_bytes(entry[4..12].try_into().map_err(|_| corrupt())?);
            let mut value = Zeroizing::new([0u8; KEY_LEN]);
            value.copy_from_slice(&entry[12..]);
            keys.push(Key { term, value, install_time });
        }
        if !keys.iter().any(|k| k.term == active) {
            return Err(corrupt());
        }
        Ok(Self { keys, active, encryptions })
    }
}

/// A fresh random 256-bit key from the thread-local CSPRNG (ChaCha seeded from the OS).
pub(crate) fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    crate::barrier::fill_random(key.as_mut());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_round_trips_through_bytes() {
        let ring = Keyring::generate(100).rotated(200);
        let back = Keyring::from_bytes(&ring.to_bytes()).unwrap();
        assert_eq!(back.active().term, 2);
        assert_eq!(back.keys().len(), 2);
        assert_eq!(*back.term(1).unwrap().value, *ring.term(1).unwrap().value);
        assert_ne!(*back.term(1).unwrap().value, *back.term(2).unwrap().value);
    }

    #[test]
    fn truncated_keyring_is_rejected() {
        let bytes = Keyring::generate(1).to_bytes();
        assert!(Keyring::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Keyring::from_bytes(&[]).is_err());
    }
}
