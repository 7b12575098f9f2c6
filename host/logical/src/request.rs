//! A logical request: what the HTTP layer hands to the core, and what the core hands (stripped of the
//! client token) to a backend.

use std::fmt;
use std::net::SocketAddr;

use zeroize::Zeroizing;

use crate::Map;

/// The operation a request performs; mapped from the HTTP verb (and `?list=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET`
    Read,
    /// `POST`/`PUT` on an item that does not exist yet (decided by the backend's existence check).
    Create,
    /// `POST`/`PUT` on an existing item, or on an action endpoint.
    Update,
    /// `PATCH` with a JSON merge patch.
    Patch,
    /// `DELETE`
    Delete,
    /// `LIST` or `GET ?list=true`
    List,
    /// `?help=1`
    Help,
}

impl Operation {
    /// The lower-case name Vault uses in audit logs and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Help => "help",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logical request. `path` is relative to `/v1/` when it enters the core and relative to the mount
/// point when it reaches a backend.
#[derive(Clone)]
pub struct Request {
    /// Request id (a UUID), echoed as `request_id`.
    pub id: String,
    /// What the request does.
    pub operation: Operation,
    /// The path, without leading slash.
    pub path: String,
    /// Body (JSON or form) merged with query parameters for reads.
    pub data: Map,
    /// The caller's token. The core removes it before dispatching to any backend.
    pub client_token: Option<Zeroizing<String>>,
    /// The caller's address; only login paths of auth backends may see it.
    pub remote_addr: Option<SocketAddr>,
    /// `X-Vault-Wrap-TTL`, in seconds, when the caller asked for response wrapping.
    pub wrap_ttl: Option<u64>,
    /// The display name of the caller's token, set by the core when it dispatches to a backend
    /// (for name templates such as the database engine's `v-<display name>-...`).
    pub display_name: Option<String>,
    /// Request headers the core audits (`sys/config/auditing/request-headers`): lower-case name
    /// and value, filled by the HTTP layer with the configured headers only. Never given to plugins.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A request with no data, token or connection.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            operation,
            path: path.into(),
            data: Map::new(),
            client_token: None,
            remote_addr: None,
            wrap_ttl: None,
            display_name: None,
            headers: Vec::new(),
        }
    }

    /// Builder: replace the request data.
    pub fn with_data(mut self, data: Map) -> Self {
        self.data = data;
        self
    }

    /// Builder: attach a client token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// A string field of `data`, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(|v| v.as_str())
    }
}

impl fmt::Debug for Request {
    // Hand-written: the token and data may hold secrets and must never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("client_token", &self.client_token.as_ref().map(|_| "<redacted>"))
            .field("remote_addr", &self.remote_addr)
            .field("wrap_ttl", &self.wrap_ttl)
            .finish()
    }
}
