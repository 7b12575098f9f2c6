//! `WasmBackend`: one mount served by one plugin. Host-side matching and validation, then one fresh
//! instance per call under a CPU deadline and a memory cap.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tresor_logical::framework::{match_path, parameter_warnings, validate, PathSpec};
use tresor_logical::{Error, LeaseSecret, LogicalBackend, Operation, Request, Response, Storage};
use wasmtime::Store;

use crate::convert;
use crate::engine::bindings::{tresor::plugin::types as wit, SecretsEngine};
use crate::engine::{Plugin, Runtime, TICK};
use crate::conflict::Conflicts;
use crate::sql::SqlPools;
use crate::host::State;

/// Per-mount settings a plugin runs under.
#[derive(Debug, Clone)]
pub struct MountContext {
    /// Mount path with trailing slash (`secret/`).
    pub path: String,
    /// Mount type (`kv`).
    pub kind: String,
    /// Mount options (`{"version":"2"}`).
    pub options: Value,
    /// Effective default lease TTL, seconds.
    pub default_lease_ttl: u64,
    /// Effective max lease TTL, seconds.
    pub max_lease_ttl: u64,
    /// Memory cap per instance, bytes (default 64 MiB).
    pub max_memory: usize,
    /// CPU deadline per call (default 5 s).
    pub cpu_budget: Duration,
    /// Hosts and sockets the plugin may reach through the `sql` capability (default: none).
    pub allowed_outbound_hosts: tresor_logical::Grants,
}

impl MountContext {
    /// Defaults: 64 MiB, 5 s.
    pub fn new(path: impl Into<String>, kind: impl Into<String>, options: Value) -> Self {
        Self {
            path: path.into(),
            kind: kind.into(),
            options,
            default_lease_ttl: 768 * 3600,
            max_lease_ttl: 768 * 3600,
            max_memory: 64 << 20,
            cpu_budget: Duration::from_secs(5),
            allowed_outbound_hosts: tresor_logical::Grants::default(),
        }
    }
}

/// What is swapped atomically when a plugin is reloaded.
struct Loaded {
    plugin: Plugin,
    spec: Arc<Vec<PathSpec>>,
    /// The backend's own help text (its `path-help` at the mount root).
    help: String,
    auth: bool,
}

/// A mount served by a WebAssembly plugin.
pub struct WasmBackend {
    runtime: Arc<Runtime>,
    loaded: RwLock<Arc<Loaded>>,
    storage: Arc<dyn Storage>,
    mount: Arc<MountContext>,
    conflicts: Arc<Conflicts>,
    /// The mount's database pools (`sql` capability), shared by its instances, kept across reloads.
    sql: Arc<SqlPools>,
    /// Calls that lost a conflict re-run one at a time, so a hot key does not make every loser
    /// re-run in every round.
    retry_lane: tokio::sync::Mutex<()>,
}

/// How long a call keeps re-running after write conflicts before it gives up with a 500.
const CONFLICT_DEADLINE: Duration = Duration::from_secs(10);

/// Run one guest call (`$attempt`: instantiate and call, evaluating to `Result<(store, value)>`)
/// and commit its staged writes; when something it read was written meanwhile, run it again (losers
/// one at a time) for up to [`CONFLICT_DEADLINE`]. (A macro: an async closure here would not be
/// `Send`.)
macro_rules! with_retries {
    ($self:ident, $attempt:expr) => {{
        let deadline = std::time::Instant::now() + CONFLICT_DEADLINE;
        let mut lane = None;
        loop {
            let (mut store, value) = $attempt?;
            if $self.commit(&mut store).await? {
                break Ok(value);
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(mount = %$self.mount.path, "giving up after repeated storage write conflicts");
                break Err(Error::Internal("storage write conflict: too many concurrent writers".into()));
            }
            // The write it collided with is in the overlay already: run again at once.
            match lane {
                None => lane = Some($self.retry_lane.lock().await),
                Some(_) => tokio::task::yield_now().await,
            }
        }
    }};
}

impl std::fmt::Debug for WasmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmBackend").field("mount", &self.mount.path).finish_non_exhaustive()
    }
}

/// Why a guest call failed, classified for the log line.
fn classify(err: &wasmtime::Error, store: &Store<State>) -> &'static str {
    if store.data().limits.exceeded {
        "memory limit exceeded"
    } else if matches!(err.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        "CPU deadline exceeded"
    } else {
        "plugin trapped"
    }
}

impl WasmBackend {
    /// Serve `mount` with `plugin`: ask for its spec, then run its `initialize`.
    pub async fn new(
        runtime: Arc<Runtime>,
        plugin: Plugin,
        storage: Arc<dyn Storage>,
        mount: MountContext,
    ) -> Result<Self, crate::Error> {
        let sql = Arc::new(SqlPools::new(mount.allowed_outbound_hosts.clone(), runtime.io.clone()));
        let mount = Arc::new(mount);
        let conflicts = Arc::new(Conflicts::new());
        let env = Env { runtime: &runtime, storage: &storage, mount: &mount, conflicts: &conflicts, sql: &sql };
        let loaded = Self::prepare(&env, plugin).await?;
        Ok(Self { runtime, loaded: RwLock::new(Arc::new(loaded)), storage, mount, conflicts, sql, retry_lane: tokio::sync::Mutex::new(()) })
    }

    async fn prepare(env: &Env<'_>, plugin: Plugin) -> Result<Loaded, crate::Error> {
        let storage = env.storage;
        let (mut store, instance) = instantiate(env, &plugin, None).await.map_err(|e| crate::Error::Guest(format!("{e:#}")))?;
        let spec = instance.tresor_plugin_backend().call_spec(&mut store).await.map_err(|e| crate::Error::Guest(classify(&e, &store).into()))?;
        let (auth, paths, help) = convert::spec_from_wit(spec)?;
        let (mut store, instance) = instantiate(env, &plugin, None).await.map_err(|e| crate::Error::Guest(format!("{e:#}")))?;
        match instance.tresor_plugin_backend().call_initialize(&mut store).await {
            Ok(Ok(())) => {
                let ops = store.data_mut().take_staged();
                if !ops.is_empty() {
                    storage.transaction(ops).await.map_err(|e| crate::Error::Guest(format!("initialize: storage: {e}")))?;
                }
            }
            Ok(Err(e)) => return Err(crate::Error::Guest(format!("initialize failed: {}", convert::error_from_wit(e)))),
            Err(e) => return Err(crate::Error::Guest(classify(&e, &store).into())),
        }
        Ok(Loaded { plugin, spec: Arc::new(paths), help, auth })
    }

    /// Switch to another build of the plugin. In-flight requests finish on the instance they started
    /// with; new requests use the new one once its spec and `initialize` succeeded.
    pub async fn reload(&self, plugin: Plugin) -> Result<(), crate::Error> {
        let loaded = Self::prepare(&self.env(), plugin).await?;
        if let Ok(mut guard) = self.loaded.write() {
            *guard = Arc::new(loaded);
        }
        Ok(())
    }

    /// The sha256 of the running plugin.
    pub fn running_sha256(&self) -> String {
        self.current().map(|l| l.plugin.sha256.clone()).unwrap_or_default()
    }

    /// Whether the plugin declared itself an auth method.
    pub fn is_auth(&self) -> bool {
        self.current().is_some_and(|l| l.auth)
    }

    /// The declared paths (for help and OpenAPI without running guest code).
    pub fn spec(&self) -> Arc<Vec<PathSpec>> {
        self.current().map(|l| l.spec.clone()).unwrap_or_default()
    }

    fn current(&self) -> Option<Arc<Loaded>> {
        self.loaded.read().ok().map(|g| g.clone())
    }

    /// The guest's request, and Vault's warnings about its parameters ([`parameter_warnings`]).
    fn to_wit(&self, spec: &[PathSpec], request: &Request) -> Result<(wit::Request, Vec<String>), Error> {
        let matched = match_path(spec, &request.path).ok_or(Error::UnsupportedPath)?;
        let path = &spec[matched.index];
        let mut operation = request.operation;
        // Create and update share a handler when a path declares only one of them.
        if operation == Operation::Update && !path.operations.contains(&Operation::Update) && path.operations.contains(&Operation::Create) {
            operation = Operation::Create;
        } else if operation == Operation::Create && !path.operations.contains(&Operation::Create) && path.operations.contains(&Operation::Update) {
            operation = Operation::Update;
        }
        if !path.operations.contains(&operation) {
            return Err(Error::UnsupportedOperation);
        }
        let fields = validate(path, operation, &request.data)?;
        let warnings = parameter_warnings(path, &request.data, &matched.captures);
        let op = convert::op_to_wit(operation).ok_or(Error::UnsupportedOperation)?;
        let req = wit::Request {
            operation: op,
            path: request.path.clone(),
            path_index: u32::try_from(matched.index).map_err(|_| Error::Internal("path index overflow".into()))?,
            captures: matched.captures,
            data: fields.into_iter().map(|(k, v)| (k, convert::value_to_wit(v))).collect(),
            raw_body: (operation == Operation::Patch).then(|| Value::Object(request.data.clone()).to_string()),
            // The core strips the address except on login paths; check again here.
            remote_addr: request.remote_addr.filter(|_| path.unauthenticated).map(|a| a.ip().to_string()),
        };
        Ok((req, warnings))
    }

    fn env(&self) -> Env<'_> {
        Env { runtime: &self.runtime, storage: &self.storage, mount: &self.mount, conflicts: &self.conflicts, sql: &self.sql }
    }

    /// A fresh instance of `loaded` for one call (on behalf of a token with `display_name`).
    async fn instance(&self, loaded: &Loaded, display_name: Option<&str>) -> Result<(Store<State>, SecretsEngine), Error> {
        instantiate(&self.env(), &loaded.plugin, display_name)
            .await
            .map_err(|e| Error::Internal(format!("instantiating plugin: {e}")))
    }

    /// Commit the call's staged writes in one transaction if nothing it read has been written since
    /// (`Ok(false)`: a conflict, nothing written).
    async fn commit(&self, store: &mut Store<State>) -> Result<bool, Error> {
        let ops = store.data_mut().take_staged();
        let read_set = std::mem::take(&mut store.data_mut().read_set);
        if ops.is_empty() {
            // Read-only: answer only with what is durable.
            return Ok(read_set.settle().await);
        }
        Ok(self.conflicts.commit(&*self.storage, read_set, ops).await?)
    }

    fn guest_failure(&self, err: &wasmtime::Error, store: &Store<State>) -> Error {
        let why = classify(err, store);
        tracing::warn!(mount = %self.mount.path, reason = why, error = %err, "plugin call failed");
        Error::Internal(format!("plugin at {} failed: {why}", self.mount.path))
    }
}

/// What every store of a mount shares.
struct Env<'a> {
    runtime: &'a Runtime,
    storage: &'a Arc<dyn Storage>,
    mount: &'a Arc<MountContext>,
    conflicts: &'a Arc<Conflicts>,
    sql: &'a Arc<SqlPools>,
}

/// A fresh store for one call: the mount's storage view, memory cap and CPU deadline.
fn new_store(env: &Env<'_>, display_name: Option<&str>) -> Store<State> {
    let running = env.runtime.ticker.enter();
    let mut state = State::new(env.storage.clone(), env.mount.clone(), env.conflicts.clone(), env.sql.clone(), running);
    state.display_name = display_name.unwrap_or_default().to_string();
    let mount = env.mount;
    let mut store = Store::new(&env.runtime.engine, state);
    store.limiter(|s| &mut s.limits);
    let budget = (mount.cpu_budget.as_millis() / TICK.as_millis()).max(1) as u64;
    // Set before instantiating: a new store's deadline is 0 and would trap at once. The first
    // deadline is two ticks away, so a call shorter than a tick never yields; from then on the call
    // yields at every tick (counted as it goes) until its budget is spent.
    store.set_epoch_deadline(2);
    let mut used = 1u64;
    store.epoch_deadline_callback(move |_| {
        used += 1;
        if used >= budget {
            Err(wasmtime::Trap::Interrupt.into())
        } else {
            // `yield_now` lets the runtime poll its reactor before the call resumes, so requests
            // that arrived meanwhile on other connections of this thread run first (a plain wake
            // would put the call straight back on the run queue).
            Ok(wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        }
    });
    store
}

async fn instantiate(env: &Env<'_>, plugin: &Plugin, display_name: Option<&str>) -> wasmtime::Result<(Store<State>, SecretsEngine)> {
    let mut store = new_store(env, display_name);
    let instance = plugin.pre.instantiate_async(&mut store).await?;
    Ok((store, instance))
}

#[async_trait::async_trait]
impl LogicalBackend for WasmBackend {
    async fn handle(&self, request: Request) -> Result<Option<Response>, Error> {
        let loaded = self.current().ok_or_else(|| Error::Internal("plugin unavailable".into()))?;
        let (req, parameter_warnings) = self.to_wit(&loaded.spec, &request)?;
        let login_allowed = loaded.auth && loaded.spec[req.path_index as usize].unauthenticated;
        let display_name = request.display_name.as_deref();
        with_retries!(self, async {
            let (mut store, instance) = self.instance(&loaded, display_name).await?;
            match instance.tresor_plugin_backend().call_handle(&mut store, &req).await {
                Ok(Ok(resp)) => {
                    let mut response = convert::response_from_wit(resp, self.mount.max_lease_ttl, login_allowed)?;
                    // As Vault: only a response with something in it carries the warnings (an
                    // empty one stays a 204).
                    if !response.is_empty() {
                        response.warnings.extend(parameter_warnings.iter().cloned());
                    }
                    Ok((store, Some(response)))
                }
                Ok(Err(e)) => Err(convert::error_from_wit(e)),
                Err(e) => Err(self.guest_failure(&e, &store)),
            }
        }
        .await)
    }

    fn spec(&self) -> Option<Arc<Vec<PathSpec>>> {
        Some(WasmBackend::spec(self))
    }

    fn backend_help(&self) -> Option<String> {
        self.current().map(|l| l.help.clone())
    }

    async fn renew_secret(&self, secret: &LeaseSecret) -> Result<LeaseSecret, Error> {
        let loaded = self.current().ok_or_else(|| Error::Internal("plugin unavailable".into()))?;
        let wit_secret = convert::secret_to_wit(secret);
        with_retries!(self, async {
            let (mut store, instance) = self.instance(&loaded, None).await?;
            match instance.tresor_plugin_backend().call_renew_secret(&mut store, &wit_secret).await {
                Ok(Ok(lease)) => Ok((
                    store,
                    LeaseSecret {
                        internal_data: secret.internal_data.clone(),
                        ttl: lease.ttl_seconds,
                        max_ttl: lease.max_ttl_seconds,
                        renewable: lease.renewable,
                    },
                )),
                Ok(Err(e)) => Err(convert::error_from_wit(e)),
                Err(e) => Err(self.guest_failure(&e, &store)),
            }
        }
        .await)
    }

    async fn revoke_secret(&self, secret: &LeaseSecret) -> Result<(), Error> {
        let loaded = self.current().ok_or_else(|| Error::Internal("plugin unavailable".into()))?;
        let wit_secret = convert::secret_to_wit(secret);
        with_retries!(self, async {
            let (mut store, instance) = self.instance(&loaded, None).await?;
            match instance.tresor_plugin_backend().call_revoke_secret(&mut store, &wit_secret).await {
                Ok(Ok(())) => Ok((store, ())),
                Ok(Err(e)) => Err(convert::error_from_wit(e)),
                Err(e) => Err(self.guest_failure(&e, &store)),
            }
        }
        .await)
    }

    async fn periodic(&self) -> Result<(), Error> {
        let loaded = self.current().ok_or_else(|| Error::Internal("plugin unavailable".into()))?;
        let Some(index) = loaded.plugin.periodic else { return Ok(()) };
        with_retries!(self, async {
            let mut store = new_store(&self.env(), None);
            // The bindings' instance hides the raw one, which the optional export is looked up on.
            let instance = match loaded.plugin.pre.instance_pre().instantiate_async(&mut store).await {
                Ok(i) => i,
                Err(e) => return Err(Error::Internal(format!("instantiating plugin: {e}"))),
            };
            let run = instance
                .get_typed_func::<(), (Result<(), wit::Error>,)>(&mut store, index)
                .map_err(|e| Error::Internal(format!("plugin periodic export has the wrong type: {e}")))?;
            match run.call_async(&mut store, ()).await {
                Ok((Ok(()),)) => Ok((store, ())),
                Ok((Err(e),)) => Err(convert::error_from_wit(e)),
                Err(e) => Err(self.guest_failure(&e, &store)),
            }
        }
        .await)
    }

    fn unauthenticated(&self, path: &str) -> bool {
        self.current().is_some_and(|l| l.auth && match_path(&l.spec, path).is_some_and(|m| l.spec[m.index].unauthenticated))
    }

    async fn exists(&self, request: &Request) -> Result<Option<bool>, Error> {
        let loaded = self.current().ok_or_else(|| Error::Internal("plugin unavailable".into()))?;
        let Some(m) = match_path(&loaded.spec, &request.path) else { return Ok(None) };
        if !loaded.spec[m.index].existence_check {
            return Ok(None);
        }
        let (req, _) = self.to_wit(&loaded.spec, request)?;
        let (mut store, instance) = self.instance(&loaded, request.display_name.as_deref()).await?;
        match instance.tresor_plugin_backend().call_exists(&mut store, &req).await {
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(e)) => Err(convert::error_from_wit(e)),
            Err(e) => Err(self.guest_failure(&e, &store)),
        }
    }
}
