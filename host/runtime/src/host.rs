//! The capabilities a plugin instance gets: per-store state and the `Host` trait implementations.
//! Everything here is reached by untrusted guest code: every input is checked, every failure is a
//! guest-visible error (never a host panic), and nothing outside the mount's storage view is nameable.

use std::sync::Arc;

use tresor_logical::Storage;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::backend::MountContext;
use crate::engine::bindings::tresor::plugin::{log, storage, system, types};

/// Longest storage key a plugin may use (bytes).
pub(crate) const MAX_KEY_LEN: usize = 1024;
/// Largest value a plugin may store (bytes): Vault's default max entry size.
pub(crate) const MAX_VALUE_LEN: usize = 1024 * 1024;
/// Most bytes one request may stage for writing.
pub(crate) const MAX_STAGED_BYTES: usize = 32 * 1024 * 1024;
/// Longest log line accepted from a guest; longer lines are truncated.
const MAX_LOG_LEN: usize = 4096;

/// Memory cap with a flag, so an allocation refused by the cap is reported as such and not as a
/// generic trap (StoreLimits failures do not downcast to `Trap`).
pub(crate) struct Limits {
    pub(crate) max_memory: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Per-request store state.
pub(crate) struct State {
    /// Built on the guest's first WASI call (most requests make none: building one costs a
    /// `getrandom` syscall and a dozen allocations).
    wasi: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    pub(crate) limits: Limits,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) mount: Arc<MountContext>,
    /// Writes of this request, applied in one transaction only if the request succeeds (a trap or an
    /// error leaves storage untouched). `None` is a delete. Reads see them (read-your-writes).
    pub(crate) staged: std::collections::BTreeMap<String, Option<Vec<u8>>>,
    staged_bytes: usize,
    /// Stripe versions of the keys this call read, and the queued writes it read from, checked at
    /// commit (`conflict.rs`).
    pub(crate) read_set: crate::conflict::ReadSet,
    pub(crate) conflicts: Arc<crate::conflict::Conflicts>,
    /// The mount's database pools.
    pub(crate) sql: Arc<crate::sql::SqlPools>,
    /// Display name of the token behind this call ("" outside client requests).
    pub(crate) display_name: String,
    /// Keeps the epoch ticking while this call's store lives.
    _running: crate::engine::Running,
}

impl State {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        mount: Arc<MountContext>,
        conflicts: Arc<crate::conflict::Conflicts>,
        sql: Arc<crate::sql::SqlPools>,
        running: crate::engine::Running,
    ) -> Self {
        let max_memory = mount.max_memory;
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits: Limits { max_memory, exceeded: false },
            storage,
            mount,
            staged: std::collections::BTreeMap::new(),
            staged_bytes: 0,
            read_set: crate::conflict::ReadSet::default(),
            conflicts,
            sql,
            display_name: String::new(),
            _running: running,
        }
    }

    /// The staged writes as one batch (emptying the stage).
    pub(crate) fn take_staged(&mut self) -> Vec<tresor_logical::StorageOp> {
        self.staged_bytes = 0;
        std::mem::take(&mut self.staged)
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => tresor_logical::StorageOp::Put(k, v),
                None => tresor_logical::StorageOp::Delete(k),
            })
            .collect()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Deny-by-default WASI: no preopens, env, args, network; stdout/stderr to a sink.
        WasiCtxView { ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()), table: &mut self.table }
    }
}

impl types::Host for State {}

fn check_key(key: &str) -> Result<(), storage::StorageError> {
    if key.len() > MAX_KEY_LEN {
        return Err(storage::StorageError::InvalidKey(format!("key longer than {MAX_KEY_LEN} bytes")));
    }
    if key.starts_with('/') || key.contains('\0') || key.split('/').any(|s| s == ".." || s == ".") {
        return Err(storage::StorageError::InvalidKey("key must be relative and may not contain '.', '..' or NUL".into()));
    }
    Ok(())
}

fn storage_error(e: tresor_logical::StorageError) -> storage::StorageError {
    match e {
        tresor_logical::StorageError::InvalidKey(k) => storage::StorageError::InvalidKey(k),
        // The detail may name host paths: log it, tell the guest only that storage failed.
        other => {
            tracing::warn!(error = %other, "plugin storage call failed");
            storage::StorageError::Failed("storage unavailable".into())
        }
    }
}

impl storage::Host for State {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, storage::StorageError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if let Some(staged) = self.staged.get(&key) {
            return Ok(Ok(staged.clone()));
        }
        // Recorded before reading (a write that lands in between is then a conflict); sees
        // writes queued but not yet durable (`conflict.rs`).
        Ok(self.conflicts.read(&mut self.read_set, &*self.storage, &key).await.map_err(storage_error))
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), storage::StorageError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if key.is_empty() || key.ends_with('/') {
            return Ok(Err(storage::StorageError::InvalidKey("cannot write to a folder".into())));
        }
        if value.len() > MAX_VALUE_LEN {
            return Ok(Err(storage::StorageError::TooLarge(MAX_VALUE_LEN as u64)));
        }
        if self.staged_bytes + value.len() + key.len() > MAX_STAGED_BYTES {
            return Ok(Err(storage::StorageError::TooLarge(MAX_STAGED_BYTES as u64)));
        }
        self.staged_bytes += value.len() + key.len();
        self.staged.insert(key, Some(value));
        Ok(Ok(()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), storage::StorageError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        self.staged_bytes += key.len();
        if self.staged_bytes > MAX_STAGED_BYTES {
            return Ok(Err(storage::StorageError::TooLarge(MAX_STAGED_BYTES as u64)));
        }
        self.staged.insert(key, None);
        Ok(Ok(()))
    }

    async fn list(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, storage::StorageError>> {
        if let Err(e) = check_key(&prefix) {
            return Ok(Err(e));
        }
        let mut keys = match self.storage.list(&prefix).await {
            Ok(k) => k,
            Err(e) => return Ok(Err(storage_error(e))),
        };
        // Overlay this request's staged writes: new leaves and folders appear, deleted leaves go.
        // (A folder emptied by this request's deletes stays listed until the request commits.)
        for (key, value) in self.staged.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(prefix.as_str()) else { break };
            let entry = match rest.find('/') {
                Some(i) => rest[..=i].to_string(),
                None => rest.to_string(),
            };
            match (value, entry.ends_with('/')) {
                (None, false) => keys.retain(|k| *k != entry),
                (Some(_), _) if !keys.contains(&entry) => keys.push(entry),
                _ => {}
            }
        }
        keys.sort();
        Ok(Ok(keys))
    }
}

impl system::Host for State {
    fn describe_mount(&mut self) -> wasmtime::Result<system::MountInfo> {
        Ok(system::MountInfo {
            path: self.mount.path.clone(),
            kind: self.mount.kind.clone(),
            options: self.mount.options.to_string(),
        })
    }

    fn default_lease_ttl(&mut self) -> wasmtime::Result<u64> {
        Ok(self.mount.default_lease_ttl)
    }

    fn max_lease_ttl(&mut self) -> wasmtime::Result<u64> {
        Ok(self.mount.max_lease_ttl)
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok((d.as_secs() as i64, d.subsec_nanos()))
    }

    fn caller_display_name(&mut self) -> wasmtime::Result<String> {
        Ok(self.display_name.clone())
    }
}

impl log::Host for State {
    fn emit(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let message = crate::convert::bounded(message, MAX_LOG_LEN);
        let mount = self.mount.path.as_str();
        match level {
            log::Level::Trace => tracing::trace!(mount, "plugin: {message}"),
            log::Level::Debug => tracing::debug!(mount, "plugin: {message}"),
            log::Level::Info => tracing::info!(mount, "plugin: {message}"),
            log::Level::Warn => tracing::warn!(mount, "plugin: {message}"),
            log::Level::Error => tracing::error!(mount, "plugin: {message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_leave_the_view_are_refused() {
        for bad in ["/etc/passwd", "../other", "a/../../b", "a/./b", "a\0b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        for good in ["", "config", "data/1/app/db", "meta/a/"] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }
}

#[cfg(test)]
mod cost {
    #[test]
    #[ignore = "timing probe, run by hand"]
    fn wasi_ctx_build_cost() {
        let n = 20_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let ctx = wasmtime_wasi::WasiCtx::builder().build();
            std::hint::black_box(ctx);
        }
        println!("WasiCtx::builder().build(): {:?} per call", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(wasmtime::component::ResourceTable::new());
        }
        println!("ResourceTable::new(): {:?} per call", t.elapsed() / n);
    }
}
