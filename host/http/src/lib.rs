//! Tresor's HTTP front: Vault's `/v1` API over hyper.
//!
//! This crate owns everything HTTP-shaped and nothing else: it turns a request into a logical
//! [`tresor_logical::Request`] (verb → operation, `?list=true`, token headers, JSON or form body, size
//! limit), hands it to [`tresor_core::Core`], and renders the result as Vault's envelope or error body
//! (API.md §0). The sealed-state status endpoints (`sys/init`, `sys/seal-status`, `sys/unseal`,
//! `sys/health`, `sys/leader`) are answered here from `Core` methods without a token, because they must
//! work while the barrier is sealed. There is exactly one mapping from errors to status codes
//! ([`error::status_of`]).

mod body;
mod envelope;
mod error;
mod handler;
mod lanes;
mod server;
mod status;
mod urlencoded;

use std::sync::Arc;

use tresor_core::Core;

pub use handler::handle;
pub use lanes::{Connection, LaneStream, Lanes};
pub use server::{serve, ServeError};

/// Vault's default `max_request_size`: 32 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// Listener-level settings that change how requests are read.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted; larger bodies get `413`.
    pub max_request_size: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { max_request_size: DEFAULT_MAX_REQUEST_SIZE }
    }
}

/// The HTTP API: a core plus listener settings. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Api {
    core: Arc<Core>,
    config: ApiConfig,
}

impl Api {
    /// An API over `core`.
    pub fn new(core: Arc<Core>, config: ApiConfig) -> Arc<Self> {
        Arc::new(Self { core, config })
    }

    /// The core behind this API.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}
