//! Tresor's plugin runtime: WebAssembly components (wasmtime 48, component model) served as
//! [`tresor_logical::LogicalBackend`]s.
//!
//! Shape (after Spin and wasmtime's wasi crates):
//! - [`Runtime`] owns one `Engine` (pooling allocator, epoch interruption driven by a 1 ms ticker
//!   thread; a call longer than a tick yields to its async runtime at every tick) and one `Linker` with exactly the capabilities a plugin may use: `tresor:plugin/storage`
//!   (its mount's view and nothing else), `system`, `log`, `crypto` (AEAD, Ed25519 and RSA key
//!   generation done natively, `crypto.rs`), `sql` (PostgreSQL pools the host owns per mount, only to
//!   hosts the mount's `allowed_outbound_hosts` grants, `sql.rs`), and a deny-everything WASI context (no
//!   files, sockets, env, args; stdio to a sink) because Rust std imports WASI even when unused.
//! - [`Plugin`] is a verified component (sha256 checked before compiling or loading) with its
//!   `InstancePre`; compiled artifacts are cached on disk keyed by sha256 and the engine's
//!   compatibility hash, so a restart deserialises (µs) instead of compiling (ms).
//! - [`WasmBackend`] serves one mount: matches and validates requests against the plugin's declared
//!   spec on the host side, then runs each request in a **fresh `Store`** with a CPU deadline and a
//!   memory cap. A trap, deadline or memory overrun fails that request (500) and nothing else.
//!
//! Guest output is untrusted: sizes are bounded, JSON is validated, statuses and TTLs are clamped.

mod backend;
mod conflict;
mod convert;
mod crypto;
mod engine;
mod host;
mod sql;

pub use backend::{MountContext, WasmBackend};
pub use engine::{Plugin, Runtime, RuntimeConfig};

/// Runtime failures outside a single request (loading, compiling, instantiating the spec).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The component's sha256 is not the one it was registered with.
    #[error("plugin checksum mismatch: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        /// Registered sum.
        expected: String,
        /// Sum of the bytes found.
        actual: String,
    },
    /// Not a valid component, or it does not implement the `tresor:plugin` world.
    #[error("invalid plugin: {0}")]
    Invalid(String),
    /// The plugin trapped or misbehaved while declaring its spec.
    #[error("plugin failed: {0}")]
    Guest(String),
    /// Engine or cache failure.
    #[error("runtime: {0}")]
    Engine(String),
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
