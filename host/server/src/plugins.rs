//! Wires the plugin runtime into the core as its [`BackendFactory`]: built-in plugins (embedded
//! components built from `plugins/` by build.rs) are verified and compiled once per process (or
//! loaded from the on-disk compilation cache), then every mount gets its own `WasmBackend`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tresor_core::{BackendFactory, CatalogEntry, Created, MountSettings};
use tresor_logical::{Error, Storage};
use tresor_runtime::{MountContext, Plugin, Runtime, RuntimeConfig, WasmBackend};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// Where compiled plugins are cached: `$TRESOR_PLUGIN_CACHE`, else `$HOME/.cache/tresor/plugins`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRESOR_PLUGIN_CACHE") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tresor/plugins"))
}

/// The factory: runtime + built-in catalog + the operator's plugin directory.
pub struct PluginFactory {
    runtime: Arc<Runtime>,
    /// Built-in components by mount type, with whether each is an auth method.
    builtin: HashMap<&'static str, (bool, &'static [u8])>,
    /// Compiled plugins by sha256 (built-ins by kind), so many mounts share one compilation.
    loaded: Mutex<HashMap<String, Plugin>>,
    plugin_directory: Option<PathBuf>,
    default_lease_ttl: u64,
    max_lease_ttl: u64,
}

impl std::fmt::Debug for PluginFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFactory").field("builtin", &self.builtin.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl PluginFactory {
    /// A factory over a new runtime.
    pub fn new(
        cache_dir: Option<PathBuf>,
        plugin_directory: Option<PathBuf>,
        default_lease_ttl: u64,
        max_lease_ttl: u64,
    ) -> anyhow::Result<Arc<Self>> {
        let runtime = Runtime::new(RuntimeConfig { cache_dir, ..RuntimeConfig::default() })?;
        Ok(Arc::new(Self {
            runtime,
            builtin: builtin::BUILTIN.iter().map(|(kind, auth, bytes)| (*kind, (*auth, *bytes))).collect(),
            loaded: Mutex::new(HashMap::new()),
            plugin_directory,
            default_lease_ttl,
            max_lease_ttl,
        }))
    }

    /// Verify and compile (or load from cache) a built-in plugin, once per process.
    async fn plugin(&self, kind: &str) -> Result<Plugin, Error> {
        if let Some(p) = self.loaded.lock().ok().and_then(|m| m.get(kind).cloned()) {
            return Ok(p);
        }
        let (_, bytes) = *self.builtin.get(kind).ok_or_else(|| Error::invalid(format!("plugin not found in the catalog: {kind}")))?;
        let runtime = self.runtime.clone();
        // Compiling is CPU-bound (tens of ms): keep it off the async workers.
        let plugin = tokio::task::spawn_blocking(move || runtime.load(bytes, None))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Ok(mut m) = self.loaded.lock() {
            m.insert(kind.to_string(), plugin.clone());
        }
        Ok(plugin)
    }

    /// Read a registered plugin's file and verify it against the registration; compile once per sha.
    async fn external(&self, entry: &CatalogEntry) -> Result<Plugin, Error> {
        let dir = self.plugin_directory.as_ref().ok_or_else(|| Error::invalid("no plugin_directory is configured"))?;
        // The command is a file name inside the directory, never a path out of it.
        if entry.command.is_empty() || entry.command.contains('/') || entry.command.contains('\\') || entry.command.starts_with('.') {
            return Err(Error::invalid(format!("invalid plugin command {:?}: must be a file name in plugin_directory", entry.command)));
        }
        let path = dir.join(&entry.command);
        let bytes = tokio::fs::read(&path).await.map_err(|_| Error::invalid(format!("plugin file {:?} not found in plugin_directory", entry.command)))?;
        let actual = tresor_runtime::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(Error::invalid(format!("plugin {:?}: sha256 mismatch: the file does not match its registration", entry.name)));
        }
        if let Some(p) = self.loaded.lock().ok().and_then(|m| m.get(&actual).cloned()) {
            return Ok(p);
        }
        let runtime = self.runtime.clone();
        let expected = entry.sha256.clone();
        let plugin = tokio::task::spawn_blocking(move || runtime.load(&bytes, Some(&expected)))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::invalid(format!("plugin {:?} is not a valid Tresor plugin: {e}", entry.name)))?;
        if let Ok(mut m) = self.loaded.lock() {
            m.insert(actual, plugin.clone());
        }
        Ok(plugin)
    }
}

#[async_trait]
impl BackendFactory for PluginFactory {
    fn supports(&self, kind: &str, auth: bool) -> bool {
        self.builtin.get(kind).is_some_and(|(a, _)| *a == auth)
    }

    fn builtin_names(&self, auth: bool) -> Vec<String> {
        let mut names: Vec<String> = self.builtin.iter().filter(|(_, (a, _))| *a == auth).map(|(k, _)| k.to_string()).collect();
        names.sort();
        names
    }

    async fn verify(&self, entry: &CatalogEntry) -> Result<(), Error> {
        self.external(entry).await.map(|_| ())
    }

    async fn create(&self, mount: &MountSettings, registered: Option<&CatalogEntry>, storage: Arc<dyn Storage>) -> Result<Created, Error> {
        let (plugin, version) = match registered {
            Some(entry) => (self.external(entry).await?, entry.version.clone()),
            None => (self.plugin(&mount.kind).await?, String::new()),
        };
        let sha256 = if registered.is_some() { plugin.sha256.clone() } else { String::new() };
        let mut ctx = MountContext::new(mount.router_path(), mount.kind.clone(), Value::Object(mount.options.clone()));
        ctx.default_lease_ttl = mount.effective_default_ttl(self.default_lease_ttl);
        ctx.max_lease_ttl = mount.effective_max_ttl(self.max_lease_ttl);
        ctx.allowed_outbound_hosts = tresor_logical::Grants::parse(&mount.allowed_outbound_hosts).map_err(|e| Error::invalid(e.to_string()))?;
        if mount.plugin_cpu_deadline > 0 {
            ctx.cpu_budget = std::time::Duration::from_secs(mount.plugin_cpu_deadline);
        }
        if mount.plugin_memory_limit > 0 {
            ctx.max_memory = usize::try_from(mount.plugin_memory_limit).map_err(|_| Error::invalid("plugin_memory_limit is too large"))?;
        }
        let backend = WasmBackend::new(self.runtime.clone(), plugin, storage, ctx)
            .await
            .map_err(|e| Error::Unavailable(format!("plugin for mount {} failed to start: {e}", mount.path)))?;
        if backend.is_auth() != mount.auth {
            let what = if backend.is_auth() { "an auth method, not a secrets engine" } else { "a secrets engine, not an auth method" };
            return Err(Error::invalid(format!("plugin {:?} is {what}", mount.kind)));
        }
        Ok(Created { backend: Arc::new(backend), sha256, version })
    }
}
