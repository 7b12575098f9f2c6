//! A logical response: what a backend returns and the HTTP layer wraps in Vault's envelope.

use std::fmt;

use crate::Map;

/// The `auth` block of a response (logins, token creation).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// What an auth method returns from a login path: who logged in and what token they should get.
/// Only the host mints tokens; a backend can merely ask, and only from a path declared unauthenticated.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    /// Policies for the token (the host adds `default` unless `no_default_policy`).
    pub policies: Vec<String>,
    /// Token metadata (`username`, `role_name`).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Display name without the mount prefix (`alice`).
    pub display_name: String,
    /// Stable principal name (entity alias).
    pub alias_name: String,
    /// Plugin state kept host-side and given back on renewal (JSON text).
    pub internal_data: String,
    /// Token TTL in seconds (0 = the mount default).
    pub ttl: u64,
    /// Max TTL in seconds (0 = the mount max).
    pub max_ttl: u64,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// Uses, 0 = unlimited.
    pub num_uses: u64,
    /// Periodic token: every renewal resets the TTL to this.
    pub period: u64,
    /// Hard cap regardless of renewals (0 = none).
    pub explicit_max_ttl: u64,
    /// Do not attach the `default` policy.
    pub no_default_policy: bool,
    /// The token only works from these CIDR blocks.
    pub bound_cidrs: Vec<String>,
    /// The token type the backend asks for: `""`/`default`, `service` or `batch` (the mount's
    /// tuned `token_type` decides with it).
    #[serde(default)]
    pub token_type: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A lease a backend asks for with its response (dynamic credentials). The host registers it with the
/// expiration manager and hands `internal_data` back on renew and revoke; the client never sees it.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseSecret {
    /// JSON object text kept host-side (e.g. the database user to drop).
    pub internal_data: String,
    /// TTL in seconds (0 = the mount default).
    pub ttl: u64,
    /// Max TTL in seconds from issue (0 = the mount max).
    pub max_ttl: u64,
    /// Whether the lease may be renewed.
    pub renewable: bool,
}

impl fmt::Debug for LeaseSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseSecret")
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// `wrap_info` of a wrapped response (API.md §9).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrapInfo {
    /// The single-use wrapping token.
    pub token: String,
    /// Its accessor.
    pub accessor: String,
    /// Seconds until it expires.
    pub ttl: u64,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// The path whose response is wrapped.
    pub creation_path: String,
    /// The accessor of the token a wrapped login or token creation minted.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub wrapped_accessor: String,
}

impl fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapInfo").field("creation_path", &self.creation_path).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// A successful response. `None` data and no auth renders as `204 No Content`.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Response {
    /// `data` of the envelope.
    pub data: Option<Map>,
    /// `data` still as the JSON object text a plugin returned (validated, not parsed): the envelope
    /// writes it out as is. Whatever reads `data` first calls [`Response::materialize`]; the core
    /// does so before audit logging and response wrapping, the only readers of a plugin's data.
    #[serde(skip)]
    pub data_text: Option<Box<serde_json::value::RawValue>>,
    /// `warnings` of the envelope.
    pub warnings: Vec<String>,
    /// `auth` of the envelope.
    pub auth: Option<ResponseAuth>,
    /// A login result from an auth method, turned into `auth` by the host (never rendered as such).
    #[serde(skip)]
    pub login: Option<Login>,
    /// A lease the backend asks for; the host registers it and fills `lease_id` (never rendered).
    #[serde(skip)]
    pub secret: Option<LeaseSecret>,
    /// Set when the response was wrapped: the envelope then carries only this.
    #[serde(skip)]
    pub wrap_info: Option<WrapInfo>,
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

    /// Parse [`data_text`](Self::data_text) into `data` (nothing to do without it).
    pub fn materialize(&mut self) -> Result<(), crate::Error> {
        if let Some(text) = self.data_text.take() {
            let data = serde_json::from_str(text.get()).map_err(|_| crate::Error::Internal("backend returned data that is not a JSON object".into()))?;
            self.data = Some(data);
        }
        Ok(())
    }

    /// Whether this response renders as `204 No Content`.
    pub fn is_empty(&self) -> bool {
        self.data.is_none() && self.data_text.is_none() && self.auth.is_none() && self.warnings.is_empty() && self.lease_id.is_empty() && self.wrap_info.is_none()
    }
}

impl fmt::Debug for Response {
    // Data may be a secret: only its shape is printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("data_keys", &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()))
            .field("data_text_len", &self.data_text.as_ref().map(|t| t.get().len()))
            .field("warnings", &self.warnings)
            .field("auth", &self.auth)
            .field("login", &self.login)
            .field("lease_id", &self.lease_id)
            .field("secret", &self.secret)
            .field("wrap_info", &self.wrap_info)
            .field("status", &self.status)
            .finish()
    }
}
