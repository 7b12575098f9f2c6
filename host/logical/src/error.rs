//! The errors a logical request can end with. Each variant has exactly one HTTP status, decided in
//! `tresor-http`; messages of client errors are shown to the client, so they never carry secrets.

/// A request failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; the message is returned to the client (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing, invalid or revoked token (403 `permission denied`, not multierror-wrapped).
    #[error("permission denied")]
    PermissionDenied,
    /// Valid token, but the ACL denies the request (403, multierror-wrapped as Vault does).
    #[error("permission denied")]
    Forbidden,
    /// 403 with this message, not multierror-wrapped (`bad token` for a token lookup).
    #[error("{0}")]
    Denied(String),
    /// Nothing stored at the path (404 with an empty error list).
    #[error("not found")]
    NotFound,
    /// Nothing there, and Vault says what (404 with this message, multierror-wrapped as Vault's
    /// coded errors are: `policy does not exist`).
    #[error("{0}")]
    Missing(String),
    /// A client error with a status other than 400 and Vault's text, not multierror-wrapped: what
    /// Vault's `ErrorResponse` paired with a coded error gives (`role "r" does not exist`, 404).
    /// The status is always 4xx (a plugin's choice is checked by the runtime).
    #[error("{1}")]
    ClientStatus(u16, String),
    /// No mount matches the path (404).
    #[error("no handler for route {0:?}. route entry not found.")]
    NoRoute(String),
    /// The mount exists but has no such path (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// The path exists but not for this operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The barrier is sealed (503).
    #[error("Vault is sealed")]
    Sealed,
    /// The backend serving the path cannot run (its plugin is missing or broken); 500 with this
    /// message, which names the mount and never a secret.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed; the detail is logged, the client sees a generic message (500).
    #[error("storage error")]
    Storage(#[from] crate::StorageError),
    /// Anything else that is the server's fault (500). The message is logged, never sent as-is.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidRequest`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
}
