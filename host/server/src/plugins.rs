//! Wires the plugin runtime into the core as its [`BackendFactory`]: built-in plugins (embedded
//! components built from `plugins/` by build.rs) are verified and compiled once per process (or
//! loaded from the on-disk compilation cache), then every mount gets its own `WasmBackend`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tresor_core::{BackendFactory, MountSettings};
use tresor_logical::{Error, LogicalBackend, Storage};
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

/// The factory: runtime + built-in catalog.
pub struct PluginFactory {
    runtime: Arc<Runtime>,
    builtin: HashMap<&'static str, &'static [u8]>,
    loaded: Mutex<HashMap<String, Plugin>>,
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
    pub fn new(cache_dir: Option<PathBuf>, default_lease_ttl: u64, max_lease_ttl: u64) -> anyhow::Result<Arc<Self>> {
        let runtime = Runtime::new(RuntimeConfig { cache_dir, ..RuntimeConfig::default() })?;
        Ok(Arc::new(Self {
            runtime,
            builtin: builtin::BUILTIN.iter().copied().collect(),
            loaded: Mutex::new(HashMap::new()),
            default_lease_ttl,
            max_lease_ttl,
        }))
    }

    /// Verify and compile (or load from cache) a built-in plugin, once per process.
    async fn plugin(&self, kind: &str) -> Result<Plugin, Error> {
        if let Some(p) = self.loaded.lock().ok().and_then(|m| m.get(kind).cloned()) {
            return Ok(p);
        }
        let bytes = *self.builtin.get(kind).ok_or_else(|| Error::invalid(format!("plugin not found in the catalog: {kind}")))?;
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
}

#[async_trait]
impl BackendFactory for PluginFactory {
    fn supports(&self, kind: &str) -> bool {
        self.builtin.contains_key(kind)
    }

    async fn create(&self, mount: &MountSettings, storage: Arc<dyn Storage>) -> Result<Arc<dyn LogicalBackend>, Error> {
        let plugin = self.plugin(&mount.kind).await?;
        let mut ctx = MountContext::new(mount.path.clone(), mount.kind.clone(), Value::Object(mount.options.clone()));
        ctx.default_lease_ttl = mount.effective_default_ttl(self.default_lease_ttl);
        ctx.max_lease_ttl = mount.effective_max_ttl(self.max_lease_ttl);
        let backend = WasmBackend::new(self.runtime.clone(), plugin, storage, ctx)
            .await
            .map_err(|e| Error::Unavailable(format!("plugin for mount {} failed to start: {e}", mount.path)))?;
        Ok(Arc::new(backend))
    }
}
