//! The cryptography, all from RustCrypto crates: key generation, AEAD, RSA-OAEP, signatures, HMAC,
//! hashes and key derivation. Randomness comes from the host's CSPRNG through `wasi:random`.

use base64::Engine as _;
use hmac::Mac as _;
use sha2::Digest as _;
use tresor_sdk::Error;
use zeroize::Zeroizing;

use crate::policy::{KeyEntry, KeyType, Secret};

/// `n` bytes from the host's CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
    Ok(b)
}

/// The host CSPRNG as a `rand_core` generator for the RustCrypto APIs that take one.
pub struct HostRng;

impl rand_core::RngCore for HostRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A host without randomness cannot do cryptography at all: stop this request (the host turns
        // the trap into a 500) rather than continue with predictable bytes.
        if getrandom::fill(dest).is_err() {
            std::process::abort();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        getrandom::fill(dest).map_err(|e| rand_core::Error::from(std::num::NonZeroU32::new(e.raw_os_error().unwrap_or(1) as u32).unwrap_or(std::num::NonZeroU32::MIN)))
    }
}

impl rand_core::CryptoRng for HostRng {}

/// Standard base64 of `bytes`.
///
/// Standard base64 goes through `base64-simd` (wasm SIMD, 16 bytes per step): encoding and
/// decoding plaintexts and ciphertexts was ~9% of the server's CPU on a batch of 100 with the
/// scalar `base64` crate. Both accept exactly canonical, padded standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Append standard base64 of `bytes` to `out`.
pub fn b64_append(bytes: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// Decode standard base64 with Go's error text (`illegal base64 data at input byte N`).
pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    // The SIMD decoder's error has no position: a refused input is decoded again by the scalar
    // crate for the text. Both accept the same inputs (tested), so this yields the error; were
    // they ever to disagree, the scalar decoder's answer would stand.
    if let Ok(bytes) = base64_simd::STANDARD.decode_to_vec(text) {
        return Ok(bytes);
    }
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => format!("illegal base64 data at input byte {i}"),
        base64::DecodeError::InvalidLength(n) => format!("illegal base64 data at input byte {n}"),
        base64::DecodeError::InvalidPadding => format!("illegal base64 data at input byte {}", text.len().saturating_sub(1)),
    })
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e)
}

/// Fill `entry` with fresh key material of `kind`.
pub fn generate(kind: KeyType, key_size: u64, entry: &mut KeyEntry) -> Result<(), Error> {
    match kind {
        KeyType::Aes256Gcm96 | KeyType::Aes128Gcm96 | KeyType::ChaCha20Poly1305 | KeyType::XChaCha20Poly1305 => {
            entry.key = Some(Secret::new(random_bytes(kind.aead_key_len())?));
        }
        KeyType::Hmac => {
            let key = Secret::new(random_bytes(usize::try_from(key_size).map_err(internal)?)?);
            entry.hmac_key = Some(key.clone());
            entry.key = Some(key);
        }
        KeyType::Ed25519 => {
            let seed = Zeroizing::new(random_bytes(32)?);
            let (private, public) = ed25519_from_seed(&seed)?;
            entry.key = Some(private);
            entry.public_key = b64(&public);
        }
        KeyType::EcdsaP256 => ecdsa_p256::generate(entry)?,
        KeyType::EcdsaP384 => ecdsa_p384::generate(entry)?,
        KeyType::EcdsaP521 => ecdsa_p521::generate(entry)?,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = match kind {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            set_rsa(entry, &primitives::rsa_generate(bits)?)?;
        }
    }
    Ok(())
}

/// Fill `entry` with imported key material of `kind` (BYOK): raw bytes for AEAD and HMAC keys,
/// PKCS#8 DER for the asymmetric ones, as Vault's `keys/:name/import` takes them.
pub fn import(kind: KeyType, material: &[u8], entry: &mut KeyEntry) -> Result<(), Error> {
    use rsa::pkcs8::DecodePrivateKey as _;
    let bad = |what: &str| Error::invalid(format!("error parsing the imported {} key: {what}", kind.name()));
    match kind {
        KeyType::Aes256Gcm96 | KeyType::Aes128Gcm96 | KeyType::ChaCha20Poly1305 | KeyType::XChaCha20Poly1305 => {
            if material.len() != kind.aead_key_len() {
                return Err(Error::invalid(format!("invalid key size {} bytes for key type {}", material.len(), kind.name())));
            }
            entry.key = Some(Secret::new(material.to_vec()));
        }
        KeyType::Hmac => {
            if !(32..=512).contains(&material.len()) {
                return Err(Error::invalid(format!("invalid key size {} bytes for key type hmac", material.len())));
            }
            entry.hmac_key = Some(Secret::new(material.to_vec()));
            entry.key = Some(Secret::new(material.to_vec()));
        }
        KeyType::Ed25519 => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(material).map_err(|e| bad(&e.to_string()))?;
            let (private, public) = ed25519_from_seed(key.as_bytes())?;
            entry.key = Some(private);
            entry.public_key = b64(&public);
        }
        KeyType::EcdsaP256 => ecdsa_p256::set(entry, &p256::SecretKey::from_pkcs8_der(material).map_err(|e| bad(&e.to_string()))?)?,
        KeyType::EcdsaP384 => ecdsa_p384::set(entry, &p384::SecretKey::from_pkcs8_der(material).map_err(|e| bad(&e.to_string()))?)?,
        KeyType::EcdsaP521 => ecdsa_p521::set(entry, &p521::SecretKey::from_pkcs8_der(material).map_err(|e| bad(&e.to_string()))?)?,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(material).map_err(|e| bad(&e.to_string()))?;
            let (bits, want) = (key.size() * 8, rsa_bits(kind));
            if bits != want {
                return Err(Error::invalid(format!("invalid key size: expected {want} bits, got {bits}")));
            }
            set_rsa(entry, &key)?;
        }
    }
    Ok(())
}

/// Fill `entry` with only the public key of `kind` (a PEM SPKI public key, as Vault's
/// `keys/:name/import` takes `public_key`); stored as Tresor stores generated keys' public halves.
pub fn import_public(kind: KeyType, pem: &str, entry: &mut KeyEntry) -> Result<(), Error> {
    use p256::pkcs8::DecodePublicKey as _;
    if !kind.supports_signing() {
        return Err(Error::invalid("provided type does not support public_key import"));
    }
    if !pem.trim_start().starts_with("-----BEGIN") {
        return Err(Error::invalid("error importing key: error parsing public key: not in PEM format"));
    }
    let mismatch = || Error::invalid(format!("error importing key: invalid key type: expected {}", kind.name()));
    match kind {
        KeyType::Ed25519 => {
            let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|_| mismatch())?;
            entry.public_key = b64(key.as_bytes());
        }
        KeyType::EcdsaP256 => entry.public_key = ecdsa_p256::normalized_public_pem(pem).map_err(|_| mismatch())?,
        KeyType::EcdsaP384 => entry.public_key = ecdsa_p384::normalized_public_pem(pem).map_err(|_| mismatch())?,
        KeyType::EcdsaP521 => entry.public_key = ecdsa_p521::normalized_public_pem(pem).map_err(|_| mismatch())?,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            use rsa::pkcs8::EncodePublicKey as _;
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPublicKey::from_public_key_pem(pem).map_err(|_| mismatch())?;
            let (bits, want) = (key.size() * 8, rsa_bits(kind));
            if bits != want {
                return Err(Error::invalid(format!("invalid key size: expected {want} bits, got {bits}")));
            }
            entry.public_key = key.to_public_key_pem(rsa::pkcs8::LineEnding::LF).map_err(internal)?;
        }
        _ => return Err(Error::invalid("provided type does not support public_key import")),
    }
    // Only the public half: no private key, and no HMAC key derived from one.
    entry.key = None;
    entry.private_der = None;
    Ok(())
}

/// OpenBao's `derive-key` with ECDH: the shared secret of the ECDSA key `entry` (of `kind`) and the
/// peer's PEM public key on the same curve, stretched by HKDF-SHA256 (no salt, empty info) to `len`
/// bytes. Checked against OpenBao's output (its ciphertexts decrypt under this key).
pub fn ecdh_derive(kind: KeyType, entry: &KeyEntry, peer_pem: &str, len: usize) -> Result<Secret, Error> {
    let shared = match kind {
        KeyType::EcdsaP256 => ecdsa_p256::ecdh(entry, peer_pem)?,
        KeyType::EcdsaP384 => ecdsa_p384::ecdh(entry, peer_pem)?,
        KeyType::EcdsaP521 => ecdsa_p521::ecdh(entry, peer_pem)?,
        other => return Err(Error::invalid(format!("base key type {} does not support key agreement", other.name()))),
    };
    let Some(shared) = shared else {
        let any_curve = ecdsa_p256::is_public_pem(peer_pem) || ecdsa_p384::is_public_pem(peer_pem) || ecdsa_p521::is_public_pem(peer_pem);
        return Err(Error::invalid(if any_curve {
            format!("base private key type {} does not match peer public key curve", kind.name())
        } else {
            "failed to parse supplied peer public key PEM: data does not contain any valid public keys".to_string()
        }));
    };
    hkdf(&shared, b"", len)
}

/// The modulus size of an RSA key type.
fn rsa_bits(kind: KeyType) -> usize {
    match kind {
        KeyType::Rsa2048 => 2048,
        KeyType::Rsa3072 => 3072,
        _ => 4096,
    }
}

/// The private key material of one version as `keys/:name/import` takes it (raw bytes for AEAD
/// and HMAC keys, PKCS#8 DER for asymmetric ones): what `byok-export` wraps.
pub fn import_material(kind: KeyType, entry: &KeyEntry) -> Result<Zeroizing<Vec<u8>>, Error> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let missing = || Error::invalid("the key version has no private key material to export");
    Ok(match kind {
        KeyType::Hmac => Zeroizing::new(entry.key.as_deref().or(entry.hmac_key.as_deref()).ok_or_else(missing)?.to_vec()),
        KeyType::Ed25519 => {
            let seed: [u8; 32] = entry.key.as_deref().and_then(|k| k.get(..32)).and_then(|s| s.try_into().ok()).ok_or_else(missing)?;
            let der = ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der().map_err(internal)?;
            Zeroizing::new(der.as_bytes().to_vec())
        }
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 | KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            Zeroizing::new(entry.private_der.as_deref().ok_or_else(missing)?.to_vec())
        }
        _ => Zeroizing::new(entry.key.as_deref().ok_or_else(missing)?.to_vec()),
    })
}

/// Wrap key material for another Vault's `keys/:name/import` (`byok-export`), the inverse of
/// [`unwrap_import`]: RSA-OAEP(`hash`) of a fresh AES-256 key under `destination`'s public key ‖
/// AES-KWP of the material under that AES key.
pub fn wrap_export(destination: &KeyEntry, material: &[u8], hash: &str) -> Result<Vec<u8>, Error> {
    let public = rsa_public(destination)?;
    let ephemeral = Zeroizing::new(random_bytes(32)?);
    let kek = aes_kw::KekAes256::try_from(ephemeral.as_slice()).map_err(internal)?;
    let wrapped_key = kek.wrap_with_padding_vec(material).map_err(internal)?;
    let oaep = oaep_for(hash).ok_or_else(|| Error::invalid(format!("unknown hash function: {hash}")))?;
    let mut out = public.encrypt(&mut HostRng, oaep, &ephemeral).map_err(internal)?;
    out.extend_from_slice(&wrapped_key);
    Ok(out)
}

/// RSA-OAEP with one of the hashes BYOK allows (Vault's names; empty: SHA256).
fn oaep_for(hash: &str) -> Option<rsa::Oaep> {
    Some(match hash.to_ascii_uppercase().as_str() {
        "SHA1" => rsa::Oaep::new::<sha1::Sha1>(),
        "SHA224" => rsa::Oaep::new::<sha2::Sha224>(),
        "SHA256" | "" => rsa::Oaep::new::<sha2::Sha256>(),
        "SHA384" => rsa::Oaep::new::<sha2::Sha384>(),
        "SHA512" => rsa::Oaep::new::<sha2::Sha512>(),
        _ => return None,
    })
}

/// Unwrap BYOK key material: `ciphertext` = RSA-OAEP(`hash`, an ephemeral AES-256 key) under the
/// wrapping key (as long as its modulus) ‖ AES-KWP (RFC 5649) of the target key under that key.
pub fn unwrap_import(wrapping: &KeyEntry, ciphertext: &[u8], hash: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    use rsa::traits::PublicKeyParts as _;
    let private = rsa_private(wrapping)?;
    let split = private.size();
    if ciphertext.len() <= split {
        return Err(Error::invalid("provided ciphertext is too short"));
    }
    let (wrapped_aes, wrapped_key) = ciphertext.split_at(split);
    let oaep = oaep_for(hash).ok_or_else(|| Error::invalid(format!("unsupported hash function: {}", hash.to_ascii_uppercase())))?;
    let ephemeral = Zeroizing::new(private.decrypt(oaep, wrapped_aes).map_err(|e| Error::invalid(format!("failed to decrypt the ephemeral key: {e}")))?);
    let kek = aes_kw::KekAes256::try_from(ephemeral.as_slice()).map_err(|_| Error::invalid("the ephemeral key is not an AES-256 key"))?;
    let key = kek.unwrap_with_padding_vec(wrapped_key).map_err(|_| Error::invalid("failed to unwrap the target key: bad wrapping"))?;
    Ok(Zeroizing::new(key))
}

/// Store an RSA key in `entry` (PKCS#8 DER private, SPKI PEM public).
pub fn set_rsa(entry: &mut KeyEntry, key: &rsa::RsaPrivateKey) -> Result<(), Error> {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    entry.private_der = Some(Secret::new(key.to_pkcs8_der().map_err(internal)?.as_bytes().to_vec()));
    entry.public_key = key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).map_err(internal)?;
    Ok(())
}

/// Vault's name for a signing key's algorithm in key reads.
pub fn public_key_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::EcdsaP256 => "P-256",
        KeyType::EcdsaP384 => "P-384",
        KeyType::EcdsaP521 => "P-521",
        other => other.name(),
    }
}

/// ed25519 private key (seed ‖ public, Go's layout) and public key from a seed.
pub fn ed25519_from_seed(seed: &[u8]) -> Result<(Secret, Vec<u8>), Error> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| internal("ed25519 seed must be 32 bytes"))?;
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok((Secret::new(sk.to_keypair_bytes().to_vec()), sk.verifying_key().to_bytes().to_vec()))
}

/// HKDF-SHA256 of `ikm` with `context` as info (Vault's `hkdf_sha256` KDF, no salt).
pub fn hkdf(ikm: &[u8], context: &[u8], len: usize) -> Result<Secret, Error> {
    let mut out = Secret::new(vec![0u8; len]);
    hkdf::Hkdf::<sha2::Sha256>::new(None, ikm).expand(context, &mut out).map_err(internal)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// AEAD

/// Seal `plaintext` under `key`; returns ciphertext ‖ tag. In the component the host does it natively
/// (`tresor:plugin/crypto`, hardware AES; XChaCha20-Poly1305 excepted); native unit tests use
/// RustCrypto directly.
pub fn aead_seal(kind: KeyType, key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    if !kind.is_aead() {
        return Err(Error::invalid(format!("message encryption not supported for key type {}", kind.name())));
    }
    primitives::seal(kind, key, nonce, plaintext, aad)
}

/// Open ciphertext ‖ tag; an authentication failure is Go's text for the cipher (`cipher: message
/// authentication failed` for AES-GCM, `chacha20poly1305: message authentication failed` for the
/// ChaCha20-Poly1305 pair).
pub fn aead_open(kind: KeyType, key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    if !kind.is_aead() {
        return Err(format!("message decryption not supported for key type {}", kind.name()));
    }
    primitives::open(kind, key, nonce, sealed, aad).map(Zeroizing::new).map_err(|e| match kind {
        k if k.is_chacha() && e == AUTH_FAILED => "chacha20poly1305: message authentication failed".to_string(),
        _ => e,
    })
}

const AUTH_FAILED: &str = "cipher: message authentication failed";

/// XChaCha20-Poly1305 runs in the plugin (RustCrypto) everywhere: the host's `crypto` interface
/// has no 24-byte-nonce AEAD, and this OpenBao-only key type is not on a measured path.
mod xchacha {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    use super::{internal, Error, AUTH_FAILED};

    pub fn seal(key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(internal)?;
        cipher.encrypt(XNonce::from_slice(nonce), Payload { msg: plaintext, aad }).map_err(|_| internal("encryption failed"))
    }

    pub fn open(key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|_| "invalid key".to_string())?;
        cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| AUTH_FAILED.to_string())
    }
}

/// In the component: AEAD, Ed25519 and RSA key generation are the host's (`tresor:plugin/crypto`).
#[cfg(target_arch = "wasm32")]
mod primitives {
    use tresor_sdk::crypto::{self, Aead, CryptoError};

    use super::{internal, Error, KeyType, AUTH_FAILED};

    fn alg(kind: KeyType) -> Aead {
        match kind {
            KeyType::Aes128Gcm96 => Aead::Aes128Gcm,
            KeyType::ChaCha20Poly1305 => Aead::Chacha20Poly1305,
            _ => Aead::Aes256Gcm,
        }
    }

    pub fn seal(kind: KeyType, key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        if kind == KeyType::XChaCha20Poly1305 {
            return super::xchacha::seal(key, nonce, plaintext, aad);
        }
        crypto::aead_seal(alg(kind), key, nonce, aad, plaintext).map_err(|e| internal(format!("encryption failed: {e:?}")))
    }

    pub fn open(kind: KeyType, key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        if kind == KeyType::XChaCha20Poly1305 {
            return super::xchacha::open(key, nonce, sealed, aad);
        }
        crypto::aead_open(alg(kind), key, nonce, aad, sealed).map_err(|e| match e {
            CryptoError::AuthenticationFailed => AUTH_FAILED.to_string(),
            CryptoError::InvalidInput(m) => m,
        })
    }

    pub fn ed25519_sign(seed: &[u8], msg: &[u8]) -> Result<Vec<u8>, Error> {
        crypto::ed25519_sign(seed, msg).map_err(|e| internal(format!("signing failed: {e:?}")))
    }

    pub fn ed25519_verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        crypto::ed25519_verify(public, msg, sig)
    }

    /// In the host: its native prime search is ~10x faster than this crate's in wasm.
    pub fn rsa_generate(bits: u32) -> Result<rsa::RsaPrivateKey, Error> {
        use rsa::pkcs8::DecodePrivateKey as _;
        let der = zeroize::Zeroizing::new(crypto::rsa_generate(bits).map_err(|e| internal(format!("key generation failed: {e:?}")))?);
        rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(internal)
    }
}

/// In native unit tests: the same operations from RustCrypto.
#[cfg(not(target_arch = "wasm32"))]
mod primitives {
    use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};

    use super::{internal, Error, KeyType, AUTH_FAILED};

    pub fn seal(kind: KeyType, key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        if kind == KeyType::XChaCha20Poly1305 {
            return super::xchacha::seal(key, nonce, plaintext, aad);
        }
        let payload = Payload { msg: plaintext, aad };
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let out = match kind {
            KeyType::Aes128Gcm96 => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(internal)?.encrypt(nonce, payload),
            KeyType::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(internal)?.encrypt(nonce, payload),
            _ => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(internal)?.encrypt(nonce, payload),
        };
        out.map_err(|_| internal("encryption failed"))
    }

    pub fn open(kind: KeyType, key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        if kind == KeyType::XChaCha20Poly1305 {
            return super::xchacha::open(key, nonce, sealed, aad);
        }
        let payload = Payload { msg: sealed, aad };
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let bad_key = |_| "invalid key".to_string();
        let out = match kind {
            KeyType::Aes128Gcm96 => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
            KeyType::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
            _ => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(bad_key)?.decrypt(nonce, payload),
        };
        out.map_err(|_| AUTH_FAILED.to_string())
    }

    pub fn ed25519_sign(seed: &[u8], msg: &[u8]) -> Result<Vec<u8>, Error> {
        use ed25519_dalek::Signer as _;
        let seed: [u8; 32] = seed.try_into().map_err(|_| internal("ed25519 seed must be 32 bytes"))?;
        Ok(ed25519_dalek::SigningKey::from_bytes(&seed).sign(msg).to_bytes().to_vec())
    }

    /// As the host does it: Go's `crypto/ed25519` semantics (canonical `s`, no small-order checks).
    pub fn ed25519_verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        let Ok(public) = <[u8; 32]>::try_from(public) else { return false };
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&public) else { return false };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else { return false };
        vk.verify(msg, &sig).is_ok()
    }

    pub fn rsa_generate(bits: u32) -> Result<rsa::RsaPrivateKey, Error> {
        rsa::RsaPrivateKey::new(&mut super::HostRng, bits as usize).map_err(internal)
    }
}

// ---------------------------------------------------------------------------------------------
// RSA

pub fn rsa_private(entry: &KeyEntry) -> Result<rsa::RsaPrivateKey, Error> {
    use rsa::pkcs8::DecodePrivateKey as _;
    let der = entry.private_der.as_ref().ok_or_else(|| internal("RSA key material missing"))?;
    rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(internal)
}

fn rsa_public(entry: &KeyEntry) -> Result<rsa::RsaPublicKey, Error> {
    use rsa::pkcs8::DecodePublicKey as _;
    rsa::RsaPublicKey::from_public_key_pem(&entry.public_key).map_err(internal)
}

/// RSA-OAEP with SHA-256 (Vault's RSA encryption).
pub fn rsa_encrypt(entry: &KeyEntry, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    rsa_public(entry)?.encrypt(&mut HostRng, rsa::Oaep::new::<sha2::Sha256>(), plaintext).map_err(|e| Error::invalid(format!("failed to RSA encrypt the plaintext: {e}")))
}

pub fn rsa_decrypt(entry: &KeyEntry, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let key = rsa_private(entry).map_err(|_| "invalid key".to_string())?;
    key.decrypt_blinded(&mut HostRng, rsa::Oaep::new::<sha2::Sha256>(), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| "failed to RSA decrypt the ciphertext: crypto/rsa: decryption error".to_string())
}

// ---------------------------------------------------------------------------------------------
// Hashes and HMAC

/// Hash algorithms, by Vault's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    /// No hashing (signatures over an already-formatted input).
    None,
}

impl HashAlg {
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "sha1" => Self::Sha1,
            "sha2-224" => Self::Sha224,
            "sha2-256" => Self::Sha256,
            "sha2-384" => Self::Sha384,
            "sha2-512" => Self::Sha512,
            "sha3-224" => Self::Sha3_224,
            "sha3-256" => Self::Sha3_256,
            "sha3-384" => Self::Sha3_384,
            "sha3-512" => Self::Sha3_512,
            "none" => Self::None,
            other => return Err(Error::invalid(format!("unsupported hash algorithm {other}"))),
        })
    }
}

/// Run `$body` with `$D` bound to the digest type of `$alg` (not `None`).
macro_rules! with_digest {
    ($alg:expr, $D:ident => $body:expr, none => $none:expr) => {
        match $alg {
            HashAlg::Sha1 => { type $D = sha1::Sha1; $body }
            HashAlg::Sha224 => { type $D = sha2::Sha224; $body }
            HashAlg::Sha256 => { type $D = sha2::Sha256; $body }
            HashAlg::Sha384 => { type $D = sha2::Sha384; $body }
            HashAlg::Sha512 => { type $D = sha2::Sha512; $body }
            HashAlg::Sha3_224 => { type $D = sha3::Sha3_224; $body }
            HashAlg::Sha3_256 => { type $D = sha3::Sha3_256; $body }
            HashAlg::Sha3_384 => { type $D = sha3::Sha3_384; $body }
            HashAlg::Sha3_512 => { type $D = sha3::Sha3_512; $body }
            HashAlg::None => $none,
        }
    };
}

/// Digest of `data` (`None` returns the input).
pub fn digest(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    with_digest!(alg, D => D::digest(data).to_vec(), none => data.to_vec())
}

/// HMAC of `data` under `key`.
pub fn hmac(alg: HashAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    with_digest!(alg, D => {
        let mut mac = <hmac::Hmac<D> as hmac::Mac>::new_from_slice(key).map_err(internal)?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }, none => Err(Error::invalid("unsupported hash algorithm none")))
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// How a signature is computed and encoded.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    pub hash: HashAlg,
    pub prehashed: bool,
    /// RSA: PSS (default) or PKCS#1 v1.5.
    pub pss: bool,
    /// RSA-PSS salt length; `None` = auto (maximum when signing, detected when verifying).
    pub salt_len: Option<SaltLen>,
    /// JWS: base64url without padding, and for ECDSA `r ‖ s` instead of ASN.1 DER.
    pub jws: bool,
}

/// An RSA-PSS salt length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltLen {
    /// The digest's length.
    Hash,
    Bytes(usize),
}

/// Encode a raw signature as Vault does (base64, or base64url without padding for JWS).
pub fn encode_signature(sig: &[u8], opts: &SignOptions) -> String {
    if opts.jws {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    } else {
        b64(sig)
    }
}

pub fn decode_signature(text: &str, opts: &SignOptions) -> Result<Vec<u8>, String> {
    if opts.jws {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|e| format!("failed to decode signature: {e}"))
    } else {
        unb64(text)
    }
}

/// The message the signature algorithm sees: the input itself for ed25519 (pure Ed25519, whatever
/// `prehashed` says, as Vault), its digest (unless `prehashed`) for ECDSA and RSA.
fn signed_digest(kind: KeyType, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>, Error> {
    if kind == KeyType::Ed25519 || opts.prehashed {
        return Ok(input.to_vec());
    }
    if opts.hash == HashAlg::None {
        // `sign_options` lets `none` through only with `prehashed`.
        return Ok(input.to_vec());
    }
    Ok(digest(opts.hash, input))
}

/// Sign `input` with `entry` (`ed25519_private` overrides the key for derived ed25519 keys).
pub fn sign(kind: KeyType, entry: &KeyEntry, ed25519_private: Option<&[u8]>, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>, Error> {
    let msg = signed_digest(kind, input, opts)?;
    match kind {
        KeyType::Ed25519 => {
            let private = ed25519_private.or(entry.key.as_deref().map(Vec::as_slice)).ok_or_else(|| internal("ed25519 key missing"))?;
            let seed = private.get(..32).ok_or_else(|| internal("malformed ed25519 key"))?;
            primitives::ed25519_sign(seed, &msg)
        }
        KeyType::EcdsaP256 => ecdsa_p256::sign(entry, &msg, opts.jws),
        KeyType::EcdsaP384 => ecdsa_p384::sign(entry, &msg, opts.jws),
        KeyType::EcdsaP521 => ecdsa_p521::sign(entry, &msg, opts.jws),
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            use rsa::traits::PublicKeyParts as _;
            let key = rsa_private(entry)?;
            if opts.pss {
                let max = max_pss_salt(key.size(), opts.hash);
                let salt = match opts.salt_len {
                    None => max,
                    Some(SaltLen::Hash) => hash_len(opts.hash),
                    Some(SaltLen::Bytes(n)) if n <= max => n,
                    Some(SaltLen::Bytes(n)) => return Err(Error::invalid(format!("requested salt length {n} is invalid"))),
                };
                with_digest!(opts.hash, D => key.sign_with_rng(&mut HostRng, rsa::Pss::new_with_salt::<D>(salt), &msg),
                    none => return Err(Error::invalid("RSA-PSS requires a hash algorithm")))
                .map_err(|e| Error::invalid(format!("failed to sign: {e}")))
            } else {
                let scheme = with_digest!(opts.hash, D => rsa::Pkcs1v15Sign::new::<D>(), none => rsa::Pkcs1v15Sign::new_unprefixed());
                key.sign_with_rng(&mut HostRng, scheme, &msg).map_err(|e| Error::invalid(format!("failed to sign: {e}")))
            }
        }
        other => Err(Error::invalid(format!("key type {} does not support signing", other.name()))),
    }
}

/// Verify `sig` over `input`. `Ok(false)` for a signature that does not verify.
pub fn verify(kind: KeyType, entry: &KeyEntry, ed25519_public: Option<&[u8]>, input: &[u8], sig: &[u8], opts: &SignOptions) -> Result<bool, Error> {
    let msg = signed_digest(kind, input, opts)?;
    match kind {
        KeyType::Ed25519 => {
            let public = match ed25519_public {
                Some(p) => p.to_vec(),
                None => unb64(&entry.public_key).map_err(internal)?,
            };
            Ok(primitives::ed25519_verify(&public, &msg, sig))
        }
        KeyType::EcdsaP256 => ecdsa_p256::verify(entry, &msg, sig, opts.jws),
        KeyType::EcdsaP384 => ecdsa_p384::verify(entry, &msg, sig, opts.jws),
        KeyType::EcdsaP521 => ecdsa_p521::verify(entry, &msg, sig, opts.jws),
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let key = rsa_public(entry)?;
            use rsa::traits::PublicKeyParts as _;
            if opts.pss {
                let max = max_pss_salt(key.size(), opts.hash);
                // "auto": the signer's choice is unknown; the maximum (Go, Vault) and the digest
                // length (most other signers) are the two in use.
                let candidates: Vec<usize> = match opts.salt_len {
                    None => vec![max, hash_len(opts.hash)],
                    Some(SaltLen::Hash) => vec![hash_len(opts.hash)],
                    Some(SaltLen::Bytes(n)) => vec![n],
                };
                Ok(candidates.into_iter().any(|salt| {
                    with_digest!(opts.hash, D => key.verify(rsa::Pss::new_with_salt::<D>(salt), &msg, sig).is_ok(), none => false)
                }))
            } else {
                let scheme = with_digest!(opts.hash, D => rsa::Pkcs1v15Sign::new::<D>(), none => rsa::Pkcs1v15Sign::new_unprefixed());
                Ok(key.verify(scheme, &msg, sig).is_ok())
            }
        }
        other => Err(Error::invalid(format!("key type {} does not support verification", other.name()))),
    }
}

fn hash_len(alg: HashAlg) -> usize {
    with_digest!(alg, D => <D as sha2::digest::OutputSizeUser>::output_size(), none => 0)
}

/// Go's `PSSSaltLengthAuto` when signing: as long as the key and hash allow.
fn max_pss_salt(key_bytes: usize, alg: HashAlg) -> usize {
    key_bytes.saturating_sub(hash_len(alg)).saturating_sub(2)
}

/// ECDSA over one curve crate: generate, sign a digest, verify, and the PEM encodings.
macro_rules! ecdsa_curve {
    ($module:ident, $curve:ident, $name:ident) => {
        pub mod $module {
            use super::{internal, Error, KeyEntry, Secret};
            use $curve::ecdsa::signature::hazmat::{PrehashVerifier as _, RandomizedPrehashSigner as _};
            use $curve::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};

            pub fn generate(entry: &mut KeyEntry) -> Result<(), Error> {
                let secret = $curve::SecretKey::random(&mut super::HostRng);
                set(entry, &secret)
            }

            /// Store `secret` in `entry`.
            pub fn set(entry: &mut KeyEntry, secret: &$curve::SecretKey) -> Result<(), Error> {
                entry.private_der = Some(Secret::new(secret.to_pkcs8_der().map_err(internal)?.as_bytes().to_vec()));
                entry.public_key = secret.public_key().to_public_key_pem($curve::pkcs8::LineEnding::LF).map_err(internal)?;
                Ok(())
            }

            /// ECDH with `peer_pem`'s point: the shared secret (the x-coordinate), or `None` when
            /// the PEM is not a public key on this curve.
            pub fn ecdh(entry: &KeyEntry, peer_pem: &str) -> Result<Option<Secret>, Error> {
                let Ok(peer) = $curve::PublicKey::from_public_key_pem(peer_pem) else { return Ok(None) };
                let shared = $curve::ecdh::diffie_hellman(secret(entry)?.to_nonzero_scalar(), peer.as_affine());
                Ok(Some(Secret::new(shared.raw_secret_bytes().to_vec())))
            }

            /// Whether `pem` is a public key on this curve.
            pub fn is_public_pem(pem: &str) -> bool {
                $curve::PublicKey::from_public_key_pem(pem).is_ok()
            }

            /// A PEM public key of this curve, re-encoded as Tresor writes them.
            pub fn normalized_public_pem(pem: &str) -> Result<String, Error> {
                let public = $curve::PublicKey::from_public_key_pem(pem).map_err(internal)?;
                public.to_public_key_pem($curve::pkcs8::LineEnding::LF).map_err(internal)
            }

            pub fn secret(entry: &KeyEntry) -> Result<$curve::SecretKey, Error> {
                let der = entry.private_der.as_ref().ok_or_else(|| internal("ECDSA key material missing"))?;
                $curve::SecretKey::from_pkcs8_der(der).map_err(internal)
            }

            /// SEC 1 PEM (`EC PRIVATE KEY`) with the named curve and the public key, as Vault
            /// (Go's `x509.MarshalECPrivateKey`) exports signing keys; OpenSSL needs the curve.
            pub fn sec1_pem(entry: &KeyEntry) -> Result<String, Error> {
                use $curve::elliptic_curve::sec1::ToEncodedPoint as _;
                use $curve::pkcs8::AssociatedOid as _;
                use sec1::der::EncodePem as _;
                let secret = secret(entry)?;
                let scalar = Secret::new(secret.to_bytes().to_vec());
                let point = secret.public_key().to_encoded_point(false);
                let key = sec1::EcPrivateKey {
                    private_key: &scalar,
                    parameters: Some(sec1::EcParameters::NamedCurve($curve::$name::OID)),
                    public_key: Some(point.as_bytes()),
                };
                let pem = key.to_pem(sec1::LineEnding::LF).map_err(internal)?;
                Ok(pem.trim_end().to_string())
            }

            /// The public point's coordinates and the private scalar, big-endian (Vault's `ec_x`,
            /// `ec_y`, `ec_d`).
            pub fn scalars(entry: &KeyEntry) -> Result<(Vec<u8>, Vec<u8>, Secret), Error> {
                use $curve::elliptic_curve::sec1::ToEncodedPoint as _;
                let secret = secret(entry)?;
                let point = secret.public_key().to_encoded_point(false);
                let (x, y) = point.x().zip(point.y()).ok_or_else(|| internal("malformed ECDSA public key"))?;
                Ok((x.to_vec(), y.to_vec(), Secret::new(secret.to_bytes().to_vec())))
            }

            /// Set the key from its private scalar (big-endian, possibly shorter than the field).
            pub fn set_scalar(entry: &mut KeyEntry, d: &[u8]) -> Result<(), Error> {
                let size = $curve::FieldBytes::default().len();
                if d.len() > size {
                    return Err(Error::invalid("invalid backup: ECDSA scalar too large"));
                }
                let mut padded = Secret::new(vec![0u8; size]);
                padded[size - d.len()..].copy_from_slice(d);
                let secret = $curve::SecretKey::from_slice(&padded).map_err(|_| Error::invalid("invalid backup: malformed ECDSA key"))?;
                set(entry, &secret)
            }

            /// A digest shorter than the field, left-padded: the same integer (what Go's
            /// `hashToInt` sees), in the length the `ecdsa` crate accepts (SHA-256 with P-521).
            fn field_digest(digest: &[u8]) -> Vec<u8> {
                let size = $curve::FieldBytes::default().len();
                let mut out = vec![0u8; size.saturating_sub(digest.len())];
                out.extend_from_slice(digest);
                out
            }

            pub fn sign(entry: &KeyEntry, digest: &[u8], jws: bool) -> Result<Vec<u8>, Error> {
                let digest = &field_digest(digest);
                let key = $curve::ecdsa::SigningKey::from_bytes(&secret(entry)?.to_bytes()).map_err(internal)?;
                let sig: $curve::ecdsa::Signature = key.sign_prehash_with_rng(&mut super::HostRng, digest).map_err(|e| Error::invalid(format!("failed to sign: {e}")))?;
                Ok(if jws { sig.to_bytes().to_vec() } else { sig.to_der().as_bytes().to_vec() })
            }

            pub fn verify(entry: &KeyEntry, digest: &[u8], sig: &[u8], jws: bool) -> Result<bool, Error> {
                let digest = &field_digest(digest);
                let public = $curve::PublicKey::from_public_key_pem(&entry.public_key).map_err(internal)?;
                let key = $curve::ecdsa::VerifyingKey::from_sec1_bytes(&public.to_sec1_bytes()).map_err(internal)?;
                let sig = if jws {
                    // Vault splits a JWS signature in halves whatever its length: a wrong length
                    // is a signature that does not verify.
                    let Ok(sig) = $curve::ecdsa::Signature::from_slice(sig) else { return Ok(false) };
                    sig
                } else {
                    $curve::ecdsa::Signature::from_der(sig).map_err(|_| super::der_error(sig, |prefix| $curve::ecdsa::Signature::from_der(prefix).is_ok()))?
                };
                Ok(key.verify_prehash(digest, &sig).is_ok())
            }
        }
    };
}

/// Vault's refusal of an ASN.1 ECDSA signature that does not parse: "contains extra data" when a
/// whole DER SEQUENCE (as `parses` judges it) is followed by more bytes, "is invalid" otherwise.
fn der_error(sig: &[u8], parses: impl Fn(&[u8]) -> bool) -> Error {
    let declared = match sig {
        [0x30, n, ..] if *n < 0x80 => Some(2 + usize::from(*n)),
        [0x30, 0x81, n, ..] => Some(3 + usize::from(*n)),
        [0x30, 0x82, hi, lo, ..] => Some(4 + (usize::from(*hi) << 8 | usize::from(*lo))),
        _ => None,
    };
    match declared {
        Some(len) if len < sig.len() && parses(&sig[..len]) => Error::invalid("supplied signature contains extra data"),
        _ => Error::invalid("supplied signature is invalid"),
    }
}

ecdsa_curve!(ecdsa_p256, p256, NistP256);
ecdsa_curve!(ecdsa_p384, p384, NistP384);
ecdsa_curve!(ecdsa_p521, p521, NistP521);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byok_wrapping_is_the_inverse_of_unwrapping_for_every_hash() {
        let mut wrapping = KeyEntry::default();
        generate(KeyType::Rsa2048, 0, &mut wrapping).unwrap();
        let material = b"0123456789abcdef0123456789abcdef-and-a-tail-that-needs-padding";
        for hash in ["SHA1", "SHA224", "SHA256", "SHA384", "SHA512", ""] {
            let wrapped = wrap_export(&wrapping, material, hash).unwrap();
            assert_eq!(unwrap_import(&wrapping, &wrapped, hash).unwrap().as_slice(), material, "{hash}");
        }
        let wrapped = wrap_export(&wrapping, material, "SHA256").unwrap();
        assert!(unwrap_import(&wrapping, &wrapped, "SHA512").is_err(), "the hash must match");
        assert_eq!(wrap_export(&wrapping, material, "MD5").unwrap_err(), Error::invalid("unknown hash function: MD5"));
        // A public key alone wraps (what byok-export to another server's wrapping key does).
        let mut public_only = KeyEntry::default();
        import_public(KeyType::Rsa2048, &wrapping.public_key, &mut public_only).unwrap();
        assert!(public_only.private_der.is_none());
        let wrapped = wrap_export(&public_only, material, "SHA256").unwrap();
        assert_eq!(unwrap_import(&wrapping, &wrapped, "SHA256").unwrap().as_slice(), material);
        // The wrong type or no PEM at all is refused.
        let mut entry = KeyEntry::default();
        assert_eq!(
            import_public(KeyType::Ed25519, &wrapping.public_key, &mut entry).unwrap_err(),
            Error::invalid("error importing key: invalid key type: expected ed25519")
        );
        assert_eq!(
            import_public(KeyType::Rsa2048, "garbage", &mut entry).unwrap_err(),
            Error::invalid("error importing key: error parsing public key: not in PEM format")
        );
    }

    #[test]
    fn simd_and_scalar_base64_accept_the_same_inputs() {
        let scalar = base64::engine::general_purpose::STANDARD;
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64(&bytes), scalar.encode(&bytes));
            let mut appended = "vault:v1:".to_string();
            b64_append(&bytes, &mut appended);
            assert_eq!(appended, format!("vault:v1:{}", scalar.encode(&bytes)));
            assert_eq!(unb64(&b64(&bytes)).unwrap(), bytes);
        }
        // Non-canonical trailing bits, missing or extra padding, whitespace, other alphabets,
        // stray characters at both ends and in a SIMD-sized middle.
        let long = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=";
        let cases = [
            "", "=", "==", "YQ", "YQ=", "YQ==", "YR==", "YWI", "YWI=", "YWJ=", "YWJj", "YWJj=", "YWJj====", " YQ==", "YQ==\n",
            "YQ==YQ==", "-_-_", "+/+/", "YQ==\0", "ÿÿÿÿ", long, "QUJDREVGR0hJSktMTU5PUFFS U1RVVldYWVo=", "QUJDREVGR0hJSktMTU5PUFFS*1RVVldYWVo=",
        ];
        for case in cases {
            let simd = base64_simd::STANDARD.decode_to_vec(case).ok();
            assert_eq!(simd, scalar.decode(case).ok(), "{case:?}");
            assert_eq!(unb64(case).ok(), simd, "{case:?}");
        }
        assert_eq!(unb64("YQ=*").unwrap_err(), "illegal base64 data at input byte 2");
        assert_eq!(unb64("QUJDREVGR0hJSktMTU5PUFFS*1RVVldYWVo=").unwrap_err(), "illegal base64 data at input byte 24");
    }
}
