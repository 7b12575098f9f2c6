//! The engine, the linker and plugin loading (verify → compile or load from cache → `InstancePre`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::host::State;
use crate::Error;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/plugin",
        world: "secrets-engine",
        // Host functions that never wait are sync: an async host call costs a fiber switch and a
        // future poll per call, which batch endpoints (Transit: one AEAD call per item) pay many times.
        imports: {
            "tresor:plugin/crypto.aead-seal": trappable,
            "tresor:plugin/crypto.aead-open": trappable,
            "tresor:plugin/crypto.ed25519-sign": trappable,
            "tresor:plugin/crypto.ed25519-verify": trappable,
            "tresor:plugin/system.describe-mount": trappable,
            "tresor:plugin/system.default-lease-ttl": trappable,
            "tresor:plugin/system.max-lease-ttl": trappable,
            "tresor:plugin/system.now": trappable,
            "tresor:plugin/system.caller-display-name": trappable,
            "tresor:plugin/log.emit": trappable,
            default: async | trappable,
        },
        exports: { default: async },
    });
}

/// The optional periodic interface's export name.
const PERIODIC_INTERFACE: &str = "tresor:plugin/periodic@0.3.0";

/// One epoch tick. Deadlines are whole ticks (a CPU budget of 5 s is 5000); a guest call longer
/// than a tick yields to its async runtime at every tick, so it holds its thread (a connection lane)
/// for at most about a tick at a time.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Linear memory kept mapped (and reset with memset) between instances of a pool slot, so a fresh
/// instance does not page-fault its way back to the pages the previous one touched. With
/// `PAGEMAP_SCAN` (Linux 6.7+, used when the kernel has it) only the pages the instance dirtied are
/// reset, not the whole region; without it the built-in plugins' 512 KiB initial memory would be
/// memset after every request (measured: Transit encrypt at 32 connections fell from 39k to 27k
/// req/s with a 2 MiB initial memory and no scan).
const KEEP_RESIDENT: usize = 2 << 20;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once across all mounts (pool size).
    pub max_instances: u32,
    /// Upper bound for any mount's memory cap; the pool reserves this much address space per slot.
    pub max_memory_ceiling: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            // Each slot is virtual address space, committed only when touched.
            max_instances: 1000,
            max_memory_ceiling: 512 << 20,
        }
    }
}

/// Ticks without a guest call after which the ticker parks until the next call starts (ticking
/// 1000 times a second costs an idle server ~1.5% of a core).
const IDLE_TICKS: u32 = 100;

/// Advances the engine's epoch every [`TICK`] while guest calls run, and sleeps when none has run
/// for [`IDLE_TICKS`] ticks.
#[derive(Debug, Default)]
pub(crate) struct Ticker {
    running: AtomicUsize,
    thread: OnceLock<std::thread::Thread>,
}

/// One guest call in progress (held by its store); wakes the ticker if it sleeps.
#[derive(Debug)]
pub(crate) struct Running(Arc<Ticker>);

impl Ticker {
    pub(crate) fn enter(self: &Arc<Self>) -> Running {
        if self.running.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
        Running(self.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The plugin runtime: engine, linker, epoch ticker.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) ticker: Arc<Ticker>,
    /// The async runtime this was built on, which drives host I/O that outlives one call (the
    /// PostgreSQL pools): their sockets are registered with its reactor, always polled, rather
    /// than with whichever connection lane happened to open them. `None` outside a runtime.
    pub(crate) io: Option<tokio::runtime::Handle>,
    linker: Linker<State>,
    config: RuntimeConfig,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A verified, compiled plugin, ready to instantiate.
#[derive(Clone)]
pub struct Plugin {
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    pub(crate) pre: bindings::SecretsEnginePre<State>,
    /// `tresor:plugin/periodic#run`, when the plugin exports it (optional, see `wit/plugin`).
    pub(crate) periodic: Option<ComponentExportIndex>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("sha256", &self.sha256).finish_non_exhaustive()
    }
}

fn engine_err(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

impl Runtime {
    /// Build the engine and linker and start the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Self>, Error> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 2)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 2)
            .max_memories_per_component(4)
            .max_memory_size(config.max_memory_ceiling)
            .max_component_instance_size(1 << 20)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Profiling aid: `TRESOR_WASM_PERFMAP=1` writes /tmp/perf-<pid>.map so `perf report` names
        // guest functions (docs/benchmarks.md).
        if std::env::var_os("TRESOR_WASM_PERFMAP").is_some() {
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(engine_err)?;

        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        bindings::SecretsEngine::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(engine_err)?;

        // The ticker holds only a weak engine handle, so dropping the runtime stops it (within a
        // second when it sleeps).
        let weak = engine.weak();
        let ticker = Arc::new(Ticker::default());
        let shared = ticker.clone();
        let thread = std::thread::Builder::new()
            .name("tresor-epoch".into())
            .spawn(move || {
                let mut idle = 0;
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                    if shared.running.load(Ordering::Acquire) > 0 {
                        idle = 0;
                    } else if idle < IDLE_TICKS {
                        idle += 1;
                    } else {
                        // A call that starts before this parks leaves a token: park returns at once.
                        std::thread::park_timeout(Duration::from_secs(1));
                        idle = 0;
                    }
                }
            })
            .map_err(engine_err)?;
        let _ = ticker.thread.set(thread.thread().clone());
        Ok(Arc::new(Self { engine, linker, config, ticker, io: tokio::runtime::Handle::try_current().ok() }))
    }

    /// Verify `bytes` against `expected_sha256` (when given), then compile (or load the cached
    /// compilation) and pre-link.
    pub fn load(&self, bytes: &[u8], expected_sha256: Option<&str>) -> Result<Plugin, Error> {
        let sha256 = crate::sha256_hex(bytes);
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256) {
                return Err(Error::ChecksumMismatch { expected: expected.to_string(), actual: sha256 });
            }
        let component = self.compile_cached(bytes, &sha256)?;
        let periodic = component
            .get_export_index(None, PERIODIC_INTERFACE)
            .and_then(|interface| component.get_export_index(Some(&interface), "run"));
        let pre = self.linker.instantiate_pre(&component).map_err(|e| Error::Invalid(format!("{e:#}")))?;
        let pre = bindings::SecretsEnginePre::new(pre).map_err(|e| Error::Invalid(format!("{e:#}")))?;
        Ok(Plugin { sha256, pre, periodic })
    }

    fn compile_cached(&self, bytes: &[u8], sha256: &str) -> Result<Component, Error> {
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(|e| Error::Invalid(format!("{e:#}")));
        };
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let path = dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
        if path.exists() {
            // SAFETY contract of deserialize_file: the file must be a wasmtime artifact we produced. The
            // cache directory is ours, and the name binds the artifact to the verified sha256 and to
            // this engine's settings; anything that fails to load is recompiled.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(error = %e, "discarding unusable compiled plugin cache entry"),
            }
        }
        let artifact = self.engine.precompile_component(bytes).map_err(|e| Error::Invalid(format!("{e:#}")))?;
        std::fs::create_dir_all(dir).map_err(engine_err)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &artifact).map_err(engine_err)?;
        std::fs::rename(&tmp, &path).map_err(engine_err)?;
        #[allow(unsafe_code)]
        // SAFETY: bytes just produced by this engine's `precompile_component`.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(engine_err)
    }
}
