//! Storage for the Tresor host, from the bytes on disk up to the encrypted view a mount sees.
//!
//! Layers, bottom to top:
//! - [`physical`]: an untrusted key/value store (`inmem`, `sqlite`); it only ever sees ciphertext, except
//!   for the few reserved paths in [`keys`] that must be readable before unseal.
//! - [`Barrier`]: AES-256-GCM with a keyring of terms; every value sealed with a fresh nonce and its
//!   storage path as associated data. The keyring is itself sealed by the root key.
//! - [`BarrierView`]: a prefix-scoped [`tresor_logical::Storage`] handed to one mount.
//! - [`shamir`]: splitting and recombining the unseal key.

mod barrier;
mod error;
mod keyring;
pub mod keys;
pub mod physical;
pub mod shamir;
mod view;

pub use barrier::{
    Barrier, KeyStatus, RotationConfig, DEFAULT_ROTATION_THRESHOLD, MIN_ROTATION_INTERVAL, MIN_ROTATION_THRESHOLD,
};
pub use error::Error;
pub use keyring::{Key, Keyring, KEY_LEN};
pub use view::BarrierView;

/// Seal a value with a single key outside the keyring (used for the root key under the unseal key).
pub use barrier::{open_with_key, seal_with_key};
