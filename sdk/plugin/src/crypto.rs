//! Host-native cryptographic primitives (`tresor:plugin/crypto`): AEAD, Ed25519 and RSA key generation run in the host
//! with hardware AES, 3-10x faster than the same code compiled to wasm. Your plugin keeps the keys
//! and decides what to do; the host transforms bytes and forgets the key.
//!
//! Only on `wasm32` (the component); native unit tests use a RustCrypto implementation of their own.
//!
//! ```no_run
//! use tresor_sdk::crypto::{aead_seal, Aead};
//! let key = [7u8; 32];
//! let sealed = aead_seal(Aead::Aes256Gcm, &key, &[0u8; 12], b"", b"hello").expect("sealed");
//! assert_eq!(sealed.len(), 5 + 16);
//! ```

use crate::bindings::tresor::plugin::crypto as wit;

pub use wit::Aead;

/// Why a primitive failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Wrong key or nonce length, malformed input.
    InvalidInput(String),
    /// The ciphertext did not authenticate.
    AuthenticationFailed,
}

fn from_wit(e: wit::CryptoError) -> CryptoError {
    match e {
        wit::CryptoError::InvalidInput(m) => CryptoError::InvalidInput(m),
        wit::CryptoError::AuthenticationFailed => CryptoError::AuthenticationFailed,
    }
}

/// Encrypt `plaintext`; returns ciphertext ‖ 16-byte tag. `nonce` is 12 bytes.
pub fn aead_seal(algorithm: Aead, key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    wit::aead_seal(algorithm, key, nonce, aad, plaintext).map_err(from_wit)
}

/// Decrypt ciphertext ‖ tag.
pub fn aead_open(algorithm: Aead, key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    wit::aead_open(algorithm, key, nonce, aad, sealed).map_err(from_wit)
}

/// Sign `message` with the Ed25519 key whose 32-byte seed is `seed`.
pub fn ed25519_sign(seed: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    wit::ed25519_sign(seed, message).map_err(from_wit)
}

/// Verify an Ed25519 signature strictly.
pub fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    wit::ed25519_verify(public_key, message, signature)
}

/// Generate an RSA private key of `bits` (2048, 3072 or 4096; e = 65537) natively in the host, as
/// PKCS#8 DER. The host's prime search is ~10x faster than the same code in wasm; the host keeps no copy.
pub fn rsa_generate(bits: u32) -> Result<Vec<u8>, CryptoError> {
    wit::rsa_generate(bits).map_err(from_wit)
}
