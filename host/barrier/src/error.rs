//! Errors of the barrier and the physical layer. None carries key material or plaintext.

use tresor_logical::StorageError;

/// A barrier or physical-storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The physical backend failed.
    #[error("physical storage failed: {0}")]
    Physical(String),
    /// The barrier is sealed.
    #[error("the barrier is sealed")]
    Sealed,
    /// The barrier was already initialised.
    #[error("the barrier is already initialized")]
    AlreadyInitialized,
    /// The barrier has not been initialised.
    #[error("the barrier is not initialized")]
    NotInitialized,
    /// Authentication of a ciphertext failed (wrong key, moved or tampered value).
    #[error("cipher: message authentication failed")]
    Decrypt,
    /// A stored value has an unknown layout or term.
    #[error("invalid ciphertext: {0}")]
    Corrupt(&'static str),
    /// A key of the wrong length was supplied.
    #[error("invalid key length")]
    KeyLength,
}

impl Error {
    pub(crate) fn physical(err: impl std::fmt::Display) -> Self {
        Self::Physical(err.to_string())
    }
}

impl From<Error> for StorageError {
    fn from(err: Error) -> Self {
        match err {
            Error::Sealed => StorageError::Sealed,
            Error::Decrypt | Error::Corrupt(_) => StorageError::Decrypt(String::new()),
            other => StorageError::Physical(other.to_string()),
        }
    }
}
