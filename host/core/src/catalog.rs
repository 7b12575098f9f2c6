//! The plugin catalog: third-party plugins registered by name, type, version and sha256, stored in the
//! barrier under [`CATALOG_PREFIX`]. Registration asks the backend factory to verify the file (exists
//! in `plugin_directory`, matches the sha256, is a valid component); every later load verifies again,
//! so a file changed after registration is refused.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_logical::{Error, Map, Storage};

use crate::core::Core;

/// Barrier prefix of catalog entries: `core/plugin-catalog/<type>/<name>`.
pub const CATALOG_PREFIX: &str = "core/plugin-catalog/";

/// Database plugins built into the `database` secrets engine (its `plugin_name` values), listed
/// under the catalog's `database` type as Vault lists its built-in ones.
pub(crate) const BUILTIN_DATABASE_PLUGINS: &[&str] = &["postgresql-database-plugin"];

/// One registered plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Name (also the mount type that selects it).
    pub name: String,
    /// `secret` or `auth`.
    pub kind: String,
    /// File name inside `plugin_directory`.
    pub command: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Free-form version (`v1.2.0`).
    pub version: String,
}

fn plugin_type(t: &str) -> Result<&'static str, Error> {
    match t {
        "secret" => Ok("secret"),
        "auth" => Ok("auth"),
        "database" => Err(Error::invalid("database plugins are served by the database secrets engine")),
        other => Err(Error::invalid(format!("{other:?} is not a supported plugin type"))),
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') || name.starts_with('.') {
        return Err(Error::invalid(format!("invalid plugin name {name:?}")));
    }
    Ok(())
}

impl Core {
    /// A registered plugin.
    pub async fn catalog_get(&self, kind: &str, name: &str) -> Result<Option<CatalogEntry>, Error> {
        if kind == "database" {
            // Only the built-in database plugins exist (none can be registered).
            return Ok(None);
        }
        let kind = plugin_type(kind)?;
        check_name(name)?;
        match self.barrier.get(&format!("{CATALOG_PREFIX}{kind}/{name}")).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| Error::Internal(format!("corrupt catalog entry: {e}"))),
        }
    }

    /// Register (or replace) a plugin after the factory verified it.
    pub async fn catalog_register(&self, kind: &str, name: &str, data: &Map) -> Result<(), Error> {
        let kind = plugin_type(kind)?;
        check_name(name)?;
        let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let sha256 = field("sha256").to_ascii_lowercase();
        // Vault's messages.
        if sha256.is_empty() {
            return Err(Error::invalid("missing SHA-256 value"));
        }
        if sha256.len() % 2 != 0 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid("Could not decode SHA-256 value from Hex"));
        }
        if sha256.len() != 64 {
            return Err(Error::invalid("Decoded SHA-256 value is not 32 bytes"));
        }
        let command = match field("command") {
            c if c.is_empty() => name.to_string(),
            c => c,
        };
        let entry = CatalogEntry { name: name.to_string(), kind: kind.into(), command, sha256, version: field("version") };
        let factory = self.config.backend_factory.as_ref().ok_or_else(|| Error::invalid("this server has no plugin runtime"))?;
        factory.verify(&entry).await?;
        let raw = serde_json::to_vec(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put(&format!("{CATALOG_PREFIX}{kind}/{name}"), &raw).await?;
        Ok(())
    }

    /// Remove a registration (mounts using it keep running until reloaded or remounted).
    pub async fn catalog_delete(&self, kind: &str, name: &str) -> Result<(), Error> {
        let kind = plugin_type(kind)?;
        check_name(name)?;
        self.barrier.delete(&format!("{CATALOG_PREFIX}{kind}/{name}")).await?;
        Ok(())
    }

    /// Registered names of one type.
    pub async fn catalog_list(&self, kind: &str) -> Result<Vec<String>, Error> {
        if kind == "database" {
            return Ok(Vec::new());
        }
        let kind = plugin_type(kind)?;
        Ok(self.barrier.list(&format!("{CATALOG_PREFIX}{kind}/")).await?)
    }

    /// `GET sys/plugins/catalog`.
    pub(crate) async fn catalog_json(&self) -> Result<Map, Error> {
        let builtin = |auth: bool| self.config.backend_factory.as_ref().map(|f| f.builtin_names(auth)).unwrap_or_default();
        let mut secret: Vec<String> = builtin(false);
        let mut auth: Vec<String> = builtin(true);
        let mut detailed = Vec::new();
        let database: Vec<String> = BUILTIN_DATABASE_PLUGINS.iter().map(|n| n.to_string()).collect();
        for (kind, names) in [("secret", &secret), ("auth", &auth), ("database", &database)] {
            for name in names {
                detailed.push(json!({"builtin": true, "deprecation_status": "supported", "name": name, "type": kind,
                    "version": format!("v{}+builtin.tresor", crate::VERSION)}));
            }
        }
        for (kind, names) in [("secret", self.catalog_list("secret").await?), ("auth", self.catalog_list("auth").await?)] {
            for name in names {
                if let Some(e) = self.catalog_get(kind, &name).await? {
                    detailed.push(json!({"builtin": false, "name": e.name, "sha256": e.sha256, "type": kind, "version": e.version}));
                    let list = if kind == "secret" { &mut secret } else { &mut auth };
                    if !list.contains(&name) {
                        list.push(name);
                    }
                }
            }
        }
        secret.sort();
        auth.sort();
        Ok(crate::util::obj([
            ("auth", json!(auth)),
            ("database", json!(database)),
            ("detailed", json!(detailed)),
            ("secret", json!(secret)),
        ]))
    }

    /// Whether `name` is a plugin of any type: built in, or registered in the catalog.
    pub(crate) async fn plugin_known(&self, name: &str) -> Result<bool, Error> {
        let builtin = |auth: bool| self.config.backend_factory.as_ref().is_some_and(|f| f.builtin_names(auth).iter().any(|n| n == name));
        if builtin(false) || builtin(true) || BUILTIN_DATABASE_PLUGINS.contains(&name) {
            return Ok(true);
        }
        if check_name(name).is_err() {
            return Ok(false);
        }
        for kind in ["secret", "auth"] {
            if self.catalog_get(kind, name).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Swap every mount of plugin `name` to the currently registered build. Requests already running
    /// finish on the old instance; a failing new build leaves the old one serving.
    pub async fn reload_plugin(&self, name: &str, only_mounts: &[String]) -> Result<usize, Error> {
        let mut reloaded = 0;
        for settings in self.mounts_of(name, only_mounts).await? {
            self.rebuild_mount(&settings, true).await?;
            reloaded += 1;
        }
        Ok(reloaded)
    }
}
