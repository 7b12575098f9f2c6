//! Reserved storage paths. Everything under `core/` belongs to the host; mounts live under
//! `logical/<uuid>/` and `auth/<uuid>/`, the host's own state under `sys/`.

/// Seal configuration (shares, threshold). Stored in the clear: needed before unseal, holds no secret.
pub const SEAL_CONFIG: &str = "core/seal-config";
/// The root key, sealed by the unseal key that the Shamir shares reconstruct.
pub const ROOT_KEY: &str = "core/root-key";
/// The barrier keyring, sealed by the root key.
pub const KEYRING: &str = "core/keyring";
/// Prefix of everything the host reserves for itself.
pub const CORE_PREFIX: &str = "core/";
