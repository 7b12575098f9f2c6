//! A small blocking HTTP client for the CLI: address and token resolution as the Vault CLI does it,
//! and Vault-style rendering of API errors.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::Value;
use zeroize::Zeroizing;

/// Default server address.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

/// The CLI's connection to a server.
pub struct Client {
    addr: String,
    token: Option<Zeroizing<String>>,
    wrap_ttl: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// A failed API call, rendered as the Vault CLI renders it.
#[derive(Debug, thiserror::Error)]
#[error("Error making API request.\n\nURL: {method} {url}\nCode: {code}. Errors:\n\n{}", render_errors(.errors))]
pub struct ApiError {
    pub method: String,
    pub url: String,
    pub code: u16,
    pub errors: Vec<String>,
}

fn render_errors(errors: &[String]) -> String {
    errors.iter().map(|e| format!("* {e}")).collect::<Vec<_>>().join("\n")
}

/// Where the token helper keeps the token (`~/.vault-token`, as the Vault CLI).
pub fn token_helper_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".vault-token"))
}

impl Client {
    /// Resolve the address (`-address`, `TRESOR_ADDR`, `VAULT_ADDR`, default) and the token
    /// (`TRESOR_TOKEN`, `VAULT_TOKEN`, token helper file).
    pub fn from_env(address_flag: Option<&str>) -> Self {
        let addr = address_flag
            .map(str::to_owned)
            .or_else(|| std::env::var("TRESOR_ADDR").ok())
            .or_else(|| std::env::var("VAULT_ADDR").ok())
            .unwrap_or_else(|| DEFAULT_ADDR.into());
        let token = std::env::var("TRESOR_TOKEN")
            .ok()
            .or_else(|| std::env::var("VAULT_TOKEN").ok())
            .or_else(|| token_helper_path().and_then(|p| std::fs::read_to_string(p).ok()))
            .map(|t| Zeroizing::new(t.trim().to_string()))
            .filter(|t| !t.is_empty());
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        Self { addr: addr.trim_end_matches('/').to_string(), token, wrap_ttl: None, agent }
    }

    /// Replace the token.
    pub fn set_token(&mut self, token: &str) {
        self.token = Some(Zeroizing::new(token.to_string()));
    }

    /// Ask for response wrapping (`X-Vault-Wrap-TTL`) on every call.
    pub fn set_wrap_ttl(&mut self, ttl: Option<&str>) {
        self.wrap_ttl = ttl.filter(|t| !t.is_empty()).map(str::to_owned);
    }

    /// Call `method /v1/path`; `Ok(None)` for 204.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        self.call_as(method, path, body, "application/json")
    }

    /// As [`Client::call`], with an explicit body content type (merge-patch for PATCH).
    pub fn call_as(&self, method: &str, path: &str, body: Option<&Value>, content_type: &str) -> Result<Option<Value>> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut req = self.agent.request(method, &url).set("X-Vault-Request", "true");
        if let Some(token) = &self.token {
            req = req.set("X-Vault-Token", token);
        }
        if let Some(ttl) = &self.wrap_ttl {
            req = req.set("X-Vault-Wrap-TTL", ttl);
        }
        let result = match body {
            Some(b) => req.set("Content-Type", content_type).send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match result {
            Ok(resp) => resp,
            Err(ureq::Error::Status(code, resp)) => {
                let errors = resp
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v.get("errors").cloned())
                    .and_then(|e| serde_json::from_value::<Vec<String>>(e).ok())
                    .unwrap_or_default();
                return Err(ApiError { method: method.into(), url, code, errors }.into());
            }
            Err(e) => return Err(anyhow!("error contacting {}: {e}", self.addr)),
        };
        if resp.status() == 204 {
            return Ok(None);
        }
        let text = resp.into_string()?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&text)?))
    }
}

/// The status code of an API error, if `err` is one.
pub fn api_status(err: &anyhow::Error) -> Option<u16> {
    err.downcast_ref::<ApiError>().map(|e| e.code)
}
