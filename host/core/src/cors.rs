//! `sys/config/cors`: Cross-Origin Resource Sharing for browser clients, as Vault's. The HTTP
//! layer asks [`Core::cors`] on every request that carries an `Origin`; the configuration is
//! persisted inside the barrier, applied at unseal, and kept in memory across a seal (so a
//! browser can still read `sys/health` and `sys/seal-status` of a sealed server).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_logical::{Error, Map};

use crate::core::Core;
use crate::util::{field, obj};

/// Where the configuration is stored.
pub const CORS_KEY: &str = "core/cors";

/// The request headers a browser may always send (Vault's standard list).
const STANDARD_HEADERS: &[&str] = &[
    "Content-Type",
    "Authorization",
    "X-Vault-Token",
    "X-Vault-MFA",
    "X-Vault-No-Request-Forwarding",
    "X-Vault-Wrap-Format",
    "X-Vault-Wrap-TTL",
    "X-Requested-With",
    "X-Vault-AWS-IAM-Server-ID",
    "X-Vault-Policy-Override",
];

/// The methods a preflight allows (Vault's list).
pub const ALLOWED_METHODS: &str = "DELETE,GET,OPTIONS,POST,PUT,LIST,SCAN";

/// The CORS configuration in force.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorsConfig {
    /// Whether CORS is on.
    pub enabled: bool,
    /// Origins allowed (`*`: any).
    pub allowed_origins: Vec<String>,
    /// Request headers allowed (the standard ones and those configured).
    pub allowed_headers: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    pub allow_credentials: bool,
}

impl CorsConfig {
    /// Whether `origin` may make requests.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// A list given as a JSON list or a comma-separated string.
fn list(data: &Map, key: &str) -> Result<Vec<String>, Error> {
    Ok(field::str_list(data, key)?.unwrap_or_default().into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

impl Core {
    /// The CORS configuration (disabled unless configured).
    pub fn cors(&self) -> Arc<CorsConfig> {
        self.cors.read().map(|g| g.clone()).unwrap_or_default()
    }

    fn set_cors(&self, config: CorsConfig) {
        if let Ok(mut guard) = self.cors.write() {
            *guard = Arc::new(config);
        }
    }

    /// Load the configuration. Called at unseal.
    pub(crate) async fn load_cors(&self) -> Result<(), Error> {
        let config = match self.barrier.get_value(CORS_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            None => CorsConfig::default(),
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt CORS configuration: {e}")))?,
        };
        self.set_cors(config);
        Ok(())
    }

    async fn store_cors(&self, config: CorsConfig) -> Result<(), Error> {
        let raw = serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(CORS_KEY, &raw).await.map_err(|e| Error::Internal(e.to_string()))?;
        self.set_cors(config);
        Ok(())
    }

    /// `GET sys/config/cors`: only `enabled` while off.
    pub(crate) fn cors_json(&self) -> Map {
        let c = self.cors();
        if !c.enabled {
            return obj([("enabled", json!(false))]);
        }
        obj([
            ("allow_credentials", json!(c.allow_credentials)),
            ("allowed_headers", json!(c.allowed_headers)),
            ("allowed_origins", json!(c.allowed_origins)),
            ("enabled", json!(true)),
        ])
    }

    /// `POST sys/config/cors`: enable with these origins (as Vault, a write always enables).
    pub(crate) async fn update_cors(&self, data: &Map) -> Result<(), Error> {
        let origins = list(data, "allowed_origins")?;
        if origins.is_empty() {
            return Err(Error::invalid("1 error occurred:\n\t* at least one origin or the wildcard must be provided\n\n"));
        }
        if origins.len() > 1 && origins.iter().any(|o| o == "*") {
            return Err(Error::invalid("1 error occurred:\n\t* to allow all origins the '*' must be the only value for allowed_origins\n\n"));
        }
        let mut headers: Vec<String> = STANDARD_HEADERS.iter().map(|h| (*h).to_string()).collect();
        for h in list(data, "allowed_headers")? {
            if !headers.iter().any(|x| x.eq_ignore_ascii_case(&h)) {
                headers.push(h);
            }
        }
        let allow_credentials = match data.get("allow_credentials") {
            None | Some(Value::Null) => false,
            _ => field::bool(data, "allow_credentials")?.unwrap_or(false),
        };
        self.store_cors(CorsConfig { enabled: true, allowed_origins: origins, allowed_headers: headers, allow_credentials }).await
    }

    /// `DELETE sys/config/cors`.
    pub(crate) async fn disable_cors(&self) -> Result<(), Error> {
        self.store_cors(CorsConfig::default()).await
    }
}
