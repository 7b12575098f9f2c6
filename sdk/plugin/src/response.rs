//! What a handler returns.

/// Lease settings (clamped by the host to the mount's maxima).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseOptions {
    /// TTL in seconds (0 = the mount default).
    pub ttl: u64,
    /// Hard maximum in seconds (0 = the mount maximum).
    pub max_ttl: u64,
    /// Whether the lease may be renewed.
    pub renewable: bool,
}

/// A leased secret: `internal` stays host-side and comes back on revoke/renew.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// Data needed to revoke (e.g. the database username).
    pub internal: serde_json::Value,
    /// Lease settings.
    pub lease: LeaseOptions,
}

/// A successful login; the host mints the token. Return it only from a path declared
/// [`unauthenticated`](crate::Path::unauthenticated): the host refuses it anywhere else.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Auth {
    /// Policies for the token.
    pub policies: Vec<String>,
    /// Token metadata.
    pub metadata: Vec<(String, String)>,
    /// Display name suffix.
    pub display_name: String,
    /// Stable principal name.
    pub alias_name: String,
    /// Kept host-side for renewals.
    pub internal: serde_json::Value,
    /// Lease of the token.
    pub lease: LeaseOptions,
    /// Uses (0 = unlimited).
    pub num_uses: u32,
    /// Periodic token: each renewal resets the TTL to this (0 = not periodic).
    pub period: u64,
    /// Hard cap on the token's life (0 = none).
    pub explicit_max_ttl: u64,
    /// Do not attach the `default` policy.
    pub no_default_policy: bool,
    /// CIDR blocks the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// The kind of token to mint (the mount's tuned `token_type` decides with it).
    pub token_type: TokenType,
}

/// The token type a login asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenType {
    /// Whatever the auth mount's tuned `token_type` says (service unless tuned otherwise).
    #[default]
    Default,
    /// A service token.
    Service,
    /// A batch token: not stored, not renewable, no children; refused with a use limit or a period.
    Batch,
}

/// A successful response.
///
/// ```
/// use tresor_sdk::Response;
/// let r = Response::data(serde_json::json!({"a": 1})).warn("deprecated");
/// assert_eq!(r.warnings, vec!["deprecated".to_string()]);
/// assert!(Response::empty().data.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// JSON object, or `None` for 204.
    pub data: Option<serde_json::Value>,
    /// The data already serialised as a JSON object ([`Response::data_text()`]); sent instead of
    /// `data` when set. The host checks it exactly as it checks `data`.
    pub data_text: Option<String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// A leased secret.
    pub secret: Option<Secret>,
    /// A login.
    pub auth: Option<Auth>,
    /// Non-200 status for a response with data.
    pub status: Option<u16>,
    /// Advisory `lease_duration` with no lease behind it (KV v1 `ttl`).
    pub ttl_hint: Option<u64>,
}

impl Response {
    /// `204 No Content`.
    pub fn empty() -> Self {
        Self::default()
    }
    /// `200` with `data` (must be a JSON object).
    pub fn data(data: serde_json::Value) -> Self {
        Self { data: Some(data), ..Self::default() }
    }
    /// `200` with data the handler has serialised itself (a JSON object), for large responses
    /// built from the handler's own types without a `serde_json::Value` in between.
    ///
    /// ```
    /// use tresor_sdk::Response;
    /// #[derive(serde::Serialize)]
    /// struct Out { n: u32 }
    /// let r = Response::data_text(serde_json::to_string(&Out { n: 1 }).unwrap());
    /// assert_eq!(r.data_value(), Some(serde_json::json!({"n": 1})));
    /// ```
    pub fn data_text(text: String) -> Self {
        Self { data_text: Some(text), ..Self::default() }
    }
    /// The data as a value, whichever way it was given (for tests).
    pub fn data_value(&self) -> Option<serde_json::Value> {
        match &self.data_text {
            Some(t) => serde_json::from_str(t).ok(),
            None => self.data.clone(),
        }
    }
    /// A list response `{"keys": [...]}`; an empty list is a 404 as in Vault.
    pub fn list(keys: Vec<String>) -> Result<Self, crate::Error> {
        if keys.is_empty() {
            return Err(crate::Error::NotFound);
        }
        Ok(Self::data(serde_json::json!({ "keys": keys })))
    }

    /// A page of sorted `keys` as OpenBao's paginated LISTs give it: those after `after`
    /// (exclusive), at most `limit` of them (0 or less: all). Declare [`page_fields`] on the path
    /// and pass the request's values.
    ///
    /// ```
    /// use tresor_sdk::Response;
    /// let keys = vec!["a".to_string(), "b".into(), "c".into()];
    /// assert_eq!(Response::page(keys.clone(), Some("a"), Some(1)), vec!["b".to_string()]);
    /// assert_eq!(Response::page(keys, None, Some(0)).len(), 3);
    /// ```
    pub fn page(keys: Vec<String>, after: Option<&str>, limit: Option<i64>) -> Vec<String> {
        let start = after.map_or(0, |a| keys.partition_point(|k| k.as_str() <= a));
        let take = limit.filter(|l| *l > 0).map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        keys.into_iter().skip(start).take(take).collect()
    }
    /// A client error with a status other than 400 and this message, answered as Vault answers an
    /// error response paired with a coded error: `{"errors": [message]}` with `status` (4xx only;
    /// the host refuses any other). For a plain 400 return [`crate::Error::InvalidRequest`].
    ///
    /// ```
    /// use tresor_sdk::Response;
    /// let r = Response::error(404, "role \"web\" does not exist");
    /// assert_eq!(r.status, Some(404));
    /// assert_eq!(r.data_value(), Some(serde_json::json!({"errors": ["role \"web\" does not exist"]})));
    /// ```
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::data(serde_json::json!({ "errors": [message.into()] })).status(status)
    }
    /// Builder: add a warning.
    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
    /// Builder: a status other than 200.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// The fields of a paginated LIST path (`after`, `limit`), for [`Response::page`].
///
/// ```
/// use tresor_sdk::{page_fields, Operation, Path};
/// let path = page_fields().into_iter().fold(Path::new("keys/"), Path::field).operations([Operation::List]);
/// assert_eq!(path.fields.len(), 2);
/// ```
pub fn page_fields() -> [crate::Field; 2] {
    [
        crate::Field::new("after", crate::FieldKind::Str).description("Optional entry to list begin listing after, not required to exist."),
        crate::Field::new("limit", crate::FieldKind::Int).description("Optional number of entries to return; defaults to all entries."),
    ]
}
