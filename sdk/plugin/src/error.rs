//! Plugin errors, mapped by the host to Vault's status codes.

/// Why a request failed.
///
/// ```
/// use tresor_sdk::Error;
/// let e = Error::invalid("missing 'name'");
/// assert_eq!(e.to_string(), "missing 'name'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 400 with this message. Never put a secret in it.
    InvalidRequest(String),
    /// 404 with an empty error list.
    NotFound,
    /// 403.
    PermissionDenied,
    /// 404 `unsupported path`.
    UnsupportedPath,
    /// 405 `unsupported operation`.
    UnsupportedOperation,
    /// 500; logged by the host, the client sees a generic message.
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidRequest`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidRequest(m) | Self::Internal(m) => f.write_str(m),
            Self::NotFound => f.write_str("not found"),
            Self::PermissionDenied => f.write_str("permission denied"),
            Self::UnsupportedPath => f.write_str("unsupported path"),
            Self::UnsupportedOperation => f.write_str("unsupported operation"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("JSON: {e}"))
    }
}
