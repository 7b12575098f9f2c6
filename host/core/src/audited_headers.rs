//! `sys/config/auditing/request-headers`: request headers written to the audit log (Vault's
//! audited headers), each in the clear or HMAC'd. Persisted inside the barrier, applied at unseal.
//! The HTTP layer copies only these headers into a request ([`Core::audited_header_names`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tresor_logical::{Error, Map};

use crate::core::Core;
use crate::util::{field, obj};

/// Where the configuration is stored: lower-case header name → HMAC the values.
pub const AUDITED_HEADERS_KEY: &str = "core/audited-headers";

/// Headers that carry a token: hashed in the audit log whatever the configuration says.
const TOKEN_HEADERS: &[&str] = &["x-vault-token", "authorization"];

/// Whether an audited header's values are hashed: always for token headers, otherwise as
/// configured unless the device logs raw.
pub(crate) fn hashed(name: &str, hmac: bool, log_raw: bool) -> bool {
    TOKEN_HEADERS.contains(&name) || (hmac && !log_raw)
}

impl Core {
    fn set_audited_headers(&self, headers: BTreeMap<String, bool>) {
        if let Ok(mut guard) = self.audited_headers.write() {
            *guard = Arc::new(headers);
        }
    }

    /// The configured headers (name → hmac).
    pub(crate) fn audited_headers(&self) -> Arc<BTreeMap<String, bool>> {
        self.audited_headers.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// The lower-case names of the headers to copy into requests (empty: none, the usual case).
    pub fn audited_header_names(&self) -> Vec<String> {
        let headers = self.audited_headers();
        if headers.is_empty() { Vec::new() } else { headers.keys().cloned().collect() }
    }

    /// Load the configuration. Called at unseal.
    pub(crate) async fn load_audited_headers(&self) -> Result<(), Error> {
        let headers = match self.barrier.get_value(AUDITED_HEADERS_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            None => BTreeMap::new(),
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt audited headers: {e}")))?,
        };
        self.set_audited_headers(headers);
        Ok(())
    }

    /// Forget the configuration (at seal).
    pub(crate) fn teardown_audited_headers(&self) {
        self.set_audited_headers(BTreeMap::new());
    }

    async fn store_audited_headers(&self, headers: BTreeMap<String, bool>) -> Result<(), Error> {
        let raw = serde_json::to_vec(&headers).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(AUDITED_HEADERS_KEY, &raw).await.map_err(|e| Error::Internal(e.to_string()))?;
        self.set_audited_headers(headers);
        Ok(())
    }

    /// `GET sys/config/auditing/request-headers`.
    pub(crate) fn audited_headers_json(&self) -> Map {
        let headers: Map = self.audited_headers().iter().map(|(k, h)| (k.clone(), json!({"hmac": h}))).collect();
        obj([("headers", Value::Object(headers))])
    }

    /// `GET sys/config/auditing/request-headers/<name>`.
    pub(crate) fn audited_header_json(&self, name: &str) -> Result<Map, Error> {
        let name = name.to_ascii_lowercase();
        let hmac = *self.audited_headers().get(&name).ok_or_else(|| Error::invalid("Could not find header in config"))?;
        Ok(obj([(name.as_str(), json!({"hmac": hmac}))]))
    }

    /// `POST sys/config/auditing/request-headers/<name>` (`hmac`, default false).
    pub(crate) async fn put_audited_header(&self, name: &str, data: &Map) -> Result<(), Error> {
        let hmac = field::bool(data, "hmac").map_err(|_| {
            Error::invalid("Field validation failed: error converting input for field \"hmac\": cannot parse value as 'bool'")
        })?;
        let name = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
            return Err(Error::invalid("header name must be a valid HTTP header name"));
        }
        let mut headers = (*self.audited_headers()).clone();
        headers.insert(name, hmac.unwrap_or(false));
        self.store_audited_headers(headers).await
    }

    /// `DELETE sys/config/auditing/request-headers/<name>` (204 also for a header not configured).
    pub(crate) async fn delete_audited_header(&self, name: &str) -> Result<(), Error> {
        let mut headers = (*self.audited_headers()).clone();
        if headers.remove(&name.to_ascii_lowercase()).is_some() {
            self.store_audited_headers(headers).await?;
        }
        Ok(())
    }
}
