//! A logical response: what a backend returns and the HTTP layer wraps in Vault's envelope.

use std::fmt;

use crate::Map;

/// The `auth` block of a response (logins, token creation).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResponseAuth {
    /// The new token.
    pub client_token: String,
    /// Its accessor.
    pub accessor: String,
    /// All policies (sorted).
    pub policies: Vec<String>,
    /// Policies attached to the token itself.
    pub token_policies: Vec<String>,
    /// Token metadata.
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    /// TTL in seconds.
    pub lease_duration: u64,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// `service` or `batch`.
    pub token_type: String,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Remaining uses, 0 = unlimited.
    pub num_uses: u64,
}

impl fmt::Debug for ResponseAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseAuth")
            .field("client_token", &"<redacted>")
            .field("policies", &self.policies)
            .field("lease_duration", &self.lease_duration)
            .finish_non_exhaustive()
    }
}

/// A successful response. `None` data and no auth renders as `204 No Content`.
#[derive(Clone, Default)]
pub struct Response {
    /// `data` of the envelope.
    pub data: Option<Map>,
    /// `warnings` of the envelope.
    pub warnings: Vec<String>,
    /// `auth` of the envelope.
    pub auth: Option<ResponseAuth>,
    /// `lease_id` of the envelope (empty when there is no lease).
    pub lease_id: String,
    /// `lease_duration` in seconds.
    pub lease_duration: u64,
    /// `renewable`.
    pub renewable: bool,
    /// A status other than 200 for an enveloped body (202 for async operations, 404 for kv-v2 deleted versions).
    pub status: Option<u16>,
}

impl Response {
    /// A response carrying `data`.
    pub fn with_data(data: Map) -> Self {
        Self { data: Some(data), ..Self::default() }
    }

    /// An empty success (`204`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// A list response: `{"keys": [...]}`. An empty list is a 404, as in Vault, which the caller decides.
    pub fn list(keys: Vec<String>) -> Self {
        let mut data = Map::new();
        data.insert("keys".into(), keys.into());
        Self::with_data(data)
    }

    /// Builder: add a warning.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Whether this response renders as `204 No Content`.
    pub fn is_empty(&self) -> bool {
        self.data.is_none() && self.auth.is_none() && self.warnings.is_empty() && self.lease_id.is_empty()
    }
}

impl fmt::Debug for Response {
    // Data may be a secret: only its shape is printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("data_keys", &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()))
            .field("warnings", &self.warnings)
            .field("auth", &self.auth)
            .field("lease_id", &self.lease_id)
            .field("status", &self.status)
            .finish()
    }
}
