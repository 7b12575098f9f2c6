//! `tresor:plugin/crypto`: AEAD, Ed25519 and RSA key generation done natively for plugins (RustCrypto, with AES-NI and
//! CLMUL when the CPU has them). The host keeps no secret: each call gets its key, uses it, zeroes it.
//! It keeps only Ed25519 *public* keys it already computed ([`PublicKeys`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use ed25519_dalek::hazmat::ExpandedSecretKey;
use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use crate::engine::bindings::tresor::plugin::crypto::{self as wit, Aead, CryptoError};
use crate::host::State;

/// Largest message a plugin may pass in one call (the request body limit is smaller).
const MAX_INPUT: usize = 64 << 20;

fn invalid(msg: &str) -> CryptoError {
    CryptoError::InvalidInput(msg.to_string())
}

/// Seal `plaintext`: ciphertext ‖ tag.
pub(crate) fn aead_seal(alg: Aead, key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
    if nonce.len() != 12 {
        return Err(invalid("nonce must be 12 bytes"));
    }
    if plaintext.len() > MAX_INPUT {
        return Err(invalid("message too large"));
    }
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    let payload = Payload { msg: plaintext, aad };
    let bad_key = |_| invalid("wrong key length for the algorithm");
    let out = match alg {
        Aead::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(bad_key)?.encrypt(nonce, payload),
        Aead::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(bad_key)?.encrypt(nonce, payload),
        Aead::Chacha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(bad_key)?.encrypt(nonce, payload),
    };
    out.map_err(|_| invalid("encryption failed"))
}

/// Open ciphertext ‖ tag.
pub(crate) fn aead_open(alg: Aead, key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
    if nonce.len() != 12 {
        return Err(invalid("nonce must be 12 bytes"));
    }
    if sealed.len() > MAX_INPUT {
        return Err(invalid("message too large"));
    }
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    let payload = Payload { msg: sealed, aad };
    let bad_key = |_| invalid("wrong key length for the algorithm");
    let out = match alg {
        Aead::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
        Aead::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
        Aead::Chacha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
    };
    out.map_err(|_| CryptoError::AuthenticationFailed)
}

/// Ed25519 public keys the host has already computed: a signature would otherwise spend half its
/// time re-deriving the public half of its key (a fixed-base scalar multiplication), a verification
/// a sixth decompressing the same key again. Only public keys are kept. A signing key's entry is
/// found by a fingerprint, SHA-256 over a per-process random salt and the seed, which cannot be
/// turned back into the seed nor compared across processes; the seed itself is never stored.
/// Each map is cleared when it reaches [`MAX_PUBLIC_KEYS`] entries, so memory stays bounded
/// whatever keys plugins use.
struct PublicKeys {
    /// `None` when the OS gave no randomness for the salt: signing then derives every time.
    salt: Option<[u8; 32]>,
    by_seed: Mutex<HashMap<[u8; 32], VerifyingKey>>,
    by_bytes: Mutex<HashMap<[u8; 32], VerifyingKey>>,
}

const MAX_PUBLIC_KEYS: usize = 4096;

static PUBLIC_KEYS: LazyLock<PublicKeys> = LazyLock::new(|| {
    use rand_core::RngCore as _;
    let mut salt = [0u8; 32];
    PublicKeys::new(rand_core::OsRng.try_fill_bytes(&mut salt).ok().map(|()| salt))
});

impl PublicKeys {
    fn new(salt: Option<[u8; 32]>) -> Self {
        Self { salt, by_seed: Mutex::new(HashMap::new()), by_bytes: Mutex::new(HashMap::new()) }
    }

    fn get(map: &Mutex<HashMap<[u8; 32], VerifyingKey>>, id: &[u8; 32]) -> Option<VerifyingKey> {
        map.lock().ok()?.get(id).copied()
    }

    fn put(map: &Mutex<HashMap<[u8; 32], VerifyingKey>>, id: [u8; 32], key: VerifyingKey) {
        if let Ok(mut map) = map.lock() {
            if map.len() >= MAX_PUBLIC_KEYS {
                map.clear();
            }
            map.insert(id, key);
        }
    }

    fn fingerprint(&self, seed: &[u8; 32]) -> Option<[u8; 32]> {
        use sha2::Digest as _;
        let salt = self.salt.as_ref()?;
        Some(sha2::Sha256::new().chain_update(salt).chain_update(seed).finalize().into())
    }

    /// The public key of the key with this seed.
    fn of_seed(&self, seed: &[u8; 32], expanded: &ExpandedSecretKey) -> VerifyingKey {
        let fingerprint = self.fingerprint(seed);
        if let Some(key) = fingerprint.as_ref().and_then(|f| Self::get(&self.by_seed, f)) {
            return key;
        }
        let key = VerifyingKey::from(expanded);
        if let Some(f) = fingerprint {
            Self::put(&self.by_seed, f, key);
        }
        key
    }

    /// `bytes` decompressed, or `None` when they are not a valid point.
    fn of_bytes(&self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        if let Some(key) = Self::get(&self.by_bytes, bytes) {
            return Some(key);
        }
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        Self::put(&self.by_bytes, *bytes, key);
        Some(key)
    }
}

/// RFC 8032 Ed25519, exactly `SigningKey::from_bytes(seed).sign(message)` with the public half
/// taken from [`PublicKeys`] (always derived from this seed, never supplied by the guest).
pub(crate) fn ed25519_sign(seed: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.try_into().map_err(|_| invalid("ed25519 seed must be 32 bytes"))?);
    // Zeroized on drop (ed25519-dalek's `zeroize` feature).
    let expanded = ExpandedSecretKey::from(&*seed);
    let public = PUBLIC_KEYS.of_seed(&seed, &expanded);
    Ok(ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&expanded, message, &public).to_bytes().to_vec())
}

/// Ed25519 verification as Go's `crypto/ed25519` does it (Vault's and OpenBao's Transit): the
/// scalar must be canonical, `[s]B - [k]A` is compared with `R` by its encoding, and neither `R` nor
/// the key is checked for small order. (`verify_strict` adds those checks and decompresses `R`,
/// a field exponentiation per call; it refused signatures Vault accepts.)
pub(crate) fn ed25519_verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use ed25519_dalek::Verifier as _;
    let Ok(public) = <[u8; 32]>::try_from(public) else { return false };
    let Some(key) = PUBLIC_KEYS.of_bytes(&public) else { return false };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else { return false };
    key.verify(message, &sig).is_ok()
}

/// A new RSA key as PKCS#8 DER (only the sizes Transit and Vault use).
pub(crate) fn rsa_generate(bits: u32) -> Result<Vec<u8>, CryptoError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(invalid("RSA key size must be 2048, 3072 or 4096 bits"));
    }
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits as usize).map_err(|_| invalid("RSA key generation failed"))?;
    let der = key.to_pkcs8_der().map_err(|_| invalid("RSA key encoding failed"))?;
    Ok(der.as_bytes().to_vec())
}

impl wit::Host for State {
    fn aead_seal(&mut self, alg: Aead, key: Vec<u8>, nonce: Vec<u8>, aad: Vec<u8>, plaintext: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, CryptoError>> {
        let key = Zeroizing::new(key);
        let plaintext = Zeroizing::new(plaintext);
        Ok(aead_seal(alg, &key, &nonce, &aad, &plaintext))
    }

    fn aead_open(&mut self, alg: Aead, key: Vec<u8>, nonce: Vec<u8>, aad: Vec<u8>, sealed: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, CryptoError>> {
        let key = Zeroizing::new(key);
        // The plaintext is moved into the guest; the host's buffer is freed (not kept) after lowering.
        Ok(aead_open(alg, &key, &nonce, &aad, &sealed))
    }

    fn ed25519_sign(&mut self, seed: Vec<u8>, message: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, CryptoError>> {
        let seed = Zeroizing::new(seed);
        Ok(ed25519_sign(&seed, &message))
    }

    fn ed25519_verify(&mut self, public_key: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> wasmtime::Result<bool> {
        Ok(ed25519_verify(&public_key, &message, &signature))
    }

    /// Async: a 4096-bit prime search takes 0.3-3.5 s, so it runs on the blocking pool, not on an
    /// executor thread. Like all time spent in host calls it is not charged to the guest's CPU
    /// budget (the deadline counts epoch ticks seen while guest code runs).
    async fn rsa_generate(&mut self, bits: u32) -> wasmtime::Result<Result<Vec<u8>, CryptoError>> {
        match tokio::task::spawn_blocking(move || rsa_generate(bits)).await {
            Ok(out) => Ok(out),
            Err(_) => Ok(Err(invalid("RSA key generation failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The host's primitives against published vectors (the plugin's own tests cover its fallback).
    use super::*;

    #[test]
    fn rsa_keys_have_the_asked_size_and_work() {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let der = rsa_generate(2048).unwrap_or_default();
        let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).expect("a PKCS#8 RSA key");
        assert_eq!(key.size() * 8, 2048);
        assert_eq!(key.e(), &rsa::BigUint::from(65537u32));
        assert!(key.validate().is_ok());
        let other = rsa_generate(2048).unwrap_or_default();
        assert_ne!(der, other, "two keys from the CSPRNG differ");
        assert!(matches!(rsa_generate(1024), Err(CryptoError::InvalidInput(_))));
        assert!(matches!(rsa_generate(8192), Err(CryptoError::InvalidInput(_))));
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap_or_default()
    }

    #[test]
    fn aead_known_answers() {
        // GCM specification test cases 2 and 16; RFC 8439 §2.8.2.
        let cases = [
            (Aead::Aes128Gcm, "00".repeat(16), "00".repeat(12), "", "00".repeat(16), "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf".to_string()),
            (
                Aead::Aes256Gcm,
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308".into(),
                "cafebabefacedbaddecaf888".into(),
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39".into(),
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b".into(),
            ),
            (
                Aead::Chacha20Poly1305,
                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f".into(),
                "070000004041424344454647".into(),
                "50515253c0c1c2c3c4c5c6c7",
                hex::encode(b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."),
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691".into(),
            ),
        ];
        for (alg, key, nonce, aad, pt, expected) in cases {
            let sealed = aead_seal(alg, &h(&key), &h(&nonce), &h(aad), &h(&pt)).map_err(|e| format!("{e:?}"));
            assert_eq!(sealed.as_deref().map(hex::encode), Ok(expected.clone()));
            assert_eq!(aead_open(alg, &h(&key), &h(&nonce), &h(aad), &h(&expected)).map(hex::encode).map_err(|e| format!("{e:?}")), Ok(pt));
            let mut flipped = h(&expected);
            flipped[3] ^= 0x10;
            assert!(matches!(aead_open(alg, &h(&key), &h(&nonce), &h(aad), &flipped), Err(CryptoError::AuthenticationFailed)));
        }
        assert!(matches!(aead_seal(Aead::Aes256Gcm, &[0; 16], &[0; 12], b"", b"x"), Err(CryptoError::InvalidInput(_))));
        assert!(matches!(aead_seal(Aead::Aes256Gcm, &[0; 32], &[0; 8], b"", b"x"), Err(CryptoError::InvalidInput(_))));
    }

    #[test]
    fn ed25519_rfc8032() {
        let seed = h("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let public = h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let expected = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";
        assert_eq!(ed25519_sign(&seed, &h("72")).map(hex::encode).map_err(|e| format!("{e:?}")), Ok(expected.to_string()));
        assert!(ed25519_verify(&public, &h("72"), &h(expected)));
        assert!(!ed25519_verify(&public, &h("73"), &h(expected)));
        assert!(!ed25519_verify(&public[..31], &h("72"), &h(expected)));
    }

    /// A signature whose `R` is the identity (`s = k·a`) is valid for Go's `crypto/ed25519`, which
    /// Vault's Transit uses; `verify_strict` refused it. A non-canonical `s` is refused by both.
    #[test]
    fn ed25519_verifies_as_go_does() {
        use curve25519_dalek::Scalar;
        use sha2::Digest as _;
        let seed: [u8; 32] = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
        let expanded = ExpandedSecretKey::from(&seed);
        let public = VerifyingKey::from(&expanded);
        let mut r = [0u8; 32];
        r[0] = 1; // the identity point, y = 1
        let k = Scalar::from_bytes_mod_order_wide(&sha2::Sha512::new().chain_update(r).chain_update(public.as_bytes()).chain_update(b"m").finalize().into());
        let sig = [r, (k * expanded.scalar).to_bytes()].concat();
        assert!(ed25519_verify(public.as_bytes(), b"m", &sig));
        assert!(!ed25519_verify(public.as_bytes(), b"n", &sig));
        assert!(public.verify_strict(b"m", &ed25519_dalek::Signature::from_slice(&sig).unwrap()).is_err());
        let mut high = sig.clone();
        high[63] |= 0xe0;
        assert!(!ed25519_verify(public.as_bytes(), b"m", &high));
    }

    /// The public-key cache changes nothing: RFC 8032 test 1 and 2 interleaved, each signed and
    /// verified three times (the first derives, the others hit the cache), still give the published
    /// signatures, and a signature never verifies under the other key.
    #[test]
    fn ed25519_with_cached_public_keys() {
        let one = (h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"), h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), h(""),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
        let two = (h("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"), h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"), h("72"),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
        for _ in 0..3 {
            for ((seed, public, message, expected), other) in [(&one, &two.1), (&two, &one.1)] {
                assert_eq!(ed25519_sign(seed, message).map(hex::encode).map_err(|e| format!("{e:?}")), Ok(expected.to_string()));
                assert!(ed25519_verify(public, message, &h(expected)));
                assert!(!ed25519_verify(other, message, &h(expected)));
            }
        }
        // Not a point: refused, and nothing cached for it.
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some constant 32 bytes are not a point");
        assert!(!ed25519_verify(&bad, b"m", &[0u8; 64]));
        assert!(PublicKeys::get(&PUBLIC_KEYS.by_bytes, &bad).is_none());
    }

    #[test]
    fn the_public_key_cache_is_bounded() {
        let keys = PublicKeys::new(Some([7; 32]));
        let key = VerifyingKey::from_bytes(&<[u8; 32]>::try_from(h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")).unwrap()).unwrap();
        for i in 0..(MAX_PUBLIC_KEYS as u32 + 10) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            PublicKeys::put(&keys.by_bytes, id, key);
            assert!(keys.by_bytes.lock().unwrap().len() <= MAX_PUBLIC_KEYS);
        }
        // Fingerprints depend on the salt, so they cannot be matched across processes.
        let other = PublicKeys::new(Some([8; 32]));
        assert_ne!(other.fingerprint(&[1; 32]), keys.fingerprint(&[1; 32]));
        assert_ne!(other.fingerprint(&[1; 32]), Some([1; 32]));
        assert_eq!(PublicKeys::new(None).fingerprint(&[1; 32]), None);
    }
}
