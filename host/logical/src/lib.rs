//! Logical layer of the Tresor host: the vocabulary every other host crate speaks.
//!
//! A request arrives over HTTP, becomes a [`Request`] (operation + mount-relative path + data), is routed
//! to a [`LogicalBackend`] and comes back as a [`Response`] or an [`Error`]. Backends persist through the
//! [`Storage`] trait, which the barrier implements (encrypted) and scopes per mount with a prefix view.
//! This crate knows nothing about HTTP, encryption, tokens or WebAssembly.

mod backend;
mod duration;
mod error;
pub mod framework;
mod outbound;
mod request;
mod response;
mod storage;

pub use backend::LogicalBackend;
pub use duration::{go_duration_error, parse_duration, DurationError};
pub use error::Error;
pub use outbound::{GrantError, Grants};
pub use request::{Operation, Request};
pub use response::{LeaseSecret, Login, Response, ResponseAuth, WrapInfo};
pub use storage::{Commit, Storage, StorageError, StorageOp, StorageResult, Submitted};

/// A JSON object, the shape of request and response `data` (keys sorted, as Vault emits them).
pub type Map = serde_json::Map<String, serde_json::Value>;
