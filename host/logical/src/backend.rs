//! The trait every mounted thing implements: native host backends (`sys/`, `cubbyhole/`,
//! `auth/token/`) and, from the plugin runtime, WebAssembly components.

use async_trait::async_trait;

use crate::{Error, Request, Response};

/// A backend mounted at a path. The request path it receives is relative to its mount point, and the
/// request never carries the client token.
#[async_trait]
pub trait LogicalBackend: Send + Sync + std::fmt::Debug {
    /// Handle one request.
    async fn handle(&self, request: Request) -> Result<Option<Response>, Error>;

    /// Whether the item a create-or-update request targets exists (decides `create` vs `update` in ACLs).
    /// `None` means the path has no existence check, so the request is an `update`.
    async fn exists(&self, request: &Request) -> Result<Option<bool>, Error> {
        let _ = request;
        Ok(None)
    }

    /// Whether `path` is reachable without a token (an auth method's login paths).
    fn unauthenticated(&self, path: &str) -> bool {
        let _ = path;
        false
    }

    /// Extend a lease this backend issued. `secret.ttl` carries the requested increment; the answer is
    /// the lease the backend grants (the host clamps it). Default: not renewable.
    async fn renew_secret(&self, secret: &crate::LeaseSecret) -> Result<crate::LeaseSecret, Error> {
        let _ = secret;
        Err(Error::invalid("lease is not renewable"))
    }

    /// Revoke a lease this backend issued (drop the user, delete the key). Default: nothing to undo.
    async fn revoke_secret(&self, secret: &crate::LeaseSecret) -> Result<(), Error> {
        let _ = secret;
        Ok(())
    }

    /// The declared paths, for help and OpenAPI (served by the host, never by running backend code).
    fn spec(&self) -> Option<std::sync::Arc<Vec<crate::framework::PathSpec>>> {
        None
    }

    /// The backend's own help (Vault's `path-help` at the mount root), if it has one.
    fn backend_help(&self) -> Option<String> {
        None
    }

    /// Background work the core runs about once a minute while unsealed (Vault's periodic function).
    async fn periodic(&self) -> Result<(), Error> {
        Ok(())
    }
}
