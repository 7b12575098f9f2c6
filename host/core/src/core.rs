//! `Core`: the seal state, the router and the request pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tresor_barrier::physical::Backend;
use tresor_barrier::{Barrier, BarrierView};
use tresor_logical::{Error, Request, Response};

use crate::cubbyhole::Cubbyhole;
use crate::policy_store::PolicyStore;
use crate::router::{Handler, MountEntry, Router};
use crate::seal::UnsealProgress;
use crate::token::{LoginSource, NewToken, TokenStore};
use crate::token_api::{auth_block, Caller};
use tresor_logical::{Login, Operation};

/// Barrier prefix of the per-token cubbyholes.
const CUBBYHOLE_PREFIX: &str = "sys/cubbyhole/";

/// Static configuration of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// System default lease TTL in seconds (Vault: 768h).
    pub default_lease_ttl: u64,
    /// System max lease TTL in seconds (Vault: 768h).
    pub max_lease_ttl: u64,
    /// Barrier key rotation threshold (encryptions).
    pub rotation_threshold: u64,
    /// Address advertised in `sys/leader`.
    pub api_addr: String,
    /// Builds backends for operator mounts (the plugin runtime). `None`: only host backends.
    pub backend_factory: Option<std::sync::Arc<dyn crate::mount::BackendFactory>>,
    /// Wall clock for leases (injected so tests control time).
    pub clock: Arc<dyn crate::expiration::Clock>,
    /// Audit devices declared in the server configuration (enabled at every unseal).
    pub audit_devices: Vec<crate::audit::AuditDeviceConfig>,
    /// How often plugins' periodic functions run (Vault: once a minute). Zero: never.
    pub periodic_interval: std::time::Duration,
    /// The server's logging system, for `sys/loggers` (`None`: levels fixed at start).
    pub log_levels: Option<Arc<dyn crate::loggers::LogLevels>>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            default_lease_ttl: 768 * 3600,
            max_lease_ttl: 768 * 3600,
            rotation_threshold: tresor_barrier::DEFAULT_ROTATION_THRESHOLD,
            api_addr: String::new(),
            backend_factory: None,
            clock: Arc::new(crate::expiration::SystemClock),
            audit_devices: Vec::new(),
            periodic_interval: std::time::Duration::from_secs(60),
            log_levels: None,
        }
    }
}

/// `sys/health` body (status code chosen by the HTTP layer).
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Whether `sys/init` has run.
    pub initialized: bool,
    /// Whether the barrier is sealed.
    pub sealed: bool,
    /// Whether this node is a standby (a sealed node reports true, as Vault does).
    pub standby: bool,
    /// `disabled` when unsealed, `unknown` when sealed.
    pub replication_performance_mode: &'static str,
    /// As above.
    pub replication_dr_mode: &'static str,
    /// Server clock.
    pub server_time_utc: i64,
    /// Server version.
    pub version: &'static str,
    /// Present when unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Present when unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// `sys/leader` body. Tresor has no HA mode; a server without HA answers with this alone, as
/// OpenBao's does (`bao status` then shows `HA Enabled false` and nothing more).
#[derive(Debug, Clone, Serialize)]
pub struct LeaderStatus {
    /// Always false: no HA backends.
    pub ha_enabled: bool,
}

/// Cluster identity, created at init and stored in the barrier.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
pub(crate) struct ClusterInfo {
    pub name: String,
    pub id: String,
}

/// The core.
#[derive(Debug)]
pub struct Core {
    pub(crate) config: CoreConfig,
    pub(crate) barrier: Arc<Barrier>,
    pub(crate) tokens: TokenStore,
    pub(crate) policies: PolicyStore,
    pub(crate) leases: crate::expiration::Leases,
    pub(crate) audit: crate::audit::AuditBroker,
    pub(crate) router: RwLock<Router>,
    pub(crate) progress: tokio::sync::Mutex<UnsealProgress>,
    /// Serialises init / unseal / seal transitions.
    pub(crate) transition: tokio::sync::Mutex<()>,
    pub(crate) initialized: AtomicBool,
    pub(crate) seal_config: RwLock<Option<crate::seal::SealConfig>>,
    /// Root-token generation and rekey attempts in progress.
    pub(crate) operator: tokio::sync::Mutex<crate::operator::OperatorState>,
    /// `sys/config/auditing/request-headers`: header name → HMAC its values.
    pub(crate) audited_headers: RwLock<Arc<std::collections::BTreeMap<String, bool>>>,
    /// `sys/config/cors`.
    pub(crate) cors: RwLock<Arc<crate::cors::CorsConfig>>,
    pub(crate) cluster: RwLock<Option<ClusterInfo>>,
    /// Serialises mount table changes.
    pub(crate) mount_lock: tokio::sync::Mutex<()>,
    /// Finished remounts by migration id (`sys/remount/status/:id`); moves are synchronous.
    pub(crate) remounts: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

impl Core {
    /// A sealed core over `physical`. Reads the seal configuration to learn whether it is initialised.
    pub async fn new(physical: Arc<dyn Backend>, config: CoreConfig) -> Result<Arc<Self>, Error> {
        let barrier = Arc::new(Barrier::with_rotation_threshold(physical, config.rotation_threshold));
        let storage: Arc<dyn tresor_logical::Storage> = barrier.clone();
        let tokens = TokenStore::new(BarrierView::new(storage.clone(), "sys/token/"));
        let policies = PolicyStore::new(BarrierView::new(storage.clone(), "sys/policy/"));
        let leases = crate::expiration::Leases::new(BarrierView::new(storage.clone(), crate::expiration::LEASE_PREFIX), config.clock.clone());
        let mut router = Router::default();
        router.mount(MountEntry {
            path: "sys/".into(),
            kind: "system".into(),
            description: "system endpoints used for control, policy and debugging".into(),
            uuid: "00000000-0000-0000-0000-000000000001".into(),
            accessor: "system_00000001".into(),
            local: false,
            seal_wrap: true,
            options: None,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            external_entropy_access: false,
            sandbox_config: Default::default(),
            // As Vault's `sys/` mount entry.
            config: crate::mount::MountConfig { passthrough_request_headers: vec!["Accept".into()], ..Default::default() },
            running_sha256: String::new(),
            running_version: String::new(),
            handler: Handler::Sys,
        });
        router.mount(MountEntry {
            path: "cubbyhole/".into(),
            kind: "cubbyhole".into(),
            description: "per-token private secret storage".into(),
            uuid: "00000000-0000-0000-0000-000000000002".into(),
            accessor: "cubbyhole_00000002".into(),
            local: true,
            seal_wrap: false,
            options: None,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            external_entropy_access: false,
            sandbox_config: Default::default(),
            config: Default::default(),
            running_sha256: String::new(),
            running_version: String::new(),
            handler: Handler::PerToken(Arc::new(Cubbyhole::new(BarrierView::new(storage, CUBBYHOLE_PREFIX)))),
        });
        router.mount(MountEntry {
            path: "auth/token/".into(),
            kind: "token".into(),
            description: "token based credentials".into(),
            uuid: "00000000-0000-0000-0000-000000000003".into(),
            accessor: "auth_token_00000003".into(),
            local: false,
            seal_wrap: false,
            options: None,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            external_entropy_access: false,
            sandbox_config: Default::default(),
            config: Default::default(),
            running_sha256: String::new(),
            running_version: String::new(),
            handler: Handler::Token,
        });
        let core = Arc::new(Self {
            config,
            barrier,
            tokens,
            policies,
            leases,
            audit: crate::audit::AuditBroker::default(),
            router: RwLock::new(router),
            progress: tokio::sync::Mutex::new(UnsealProgress::default()),
            transition: tokio::sync::Mutex::new(()),
            initialized: AtomicBool::new(false),
            seal_config: RwLock::new(None),
            operator: tokio::sync::Mutex::new(crate::operator::OperatorState::default()),
            audited_headers: RwLock::new(Arc::default()),
            cors: RwLock::new(Arc::default()),
            cluster: RwLock::new(None),
            mount_lock: tokio::sync::Mutex::new(()),
            remounts: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        core.load_seal_config().await?;
        spawn_token_sweeper(Arc::downgrade(&core));
        crate::expiration::spawn_lease_timer(Arc::downgrade(&core));
        spawn_periodic(Arc::downgrade(&core));
        Ok(core)
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    /// Whether `sys/init` has run.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// The physical backend's type name.
    pub fn storage_type(&self) -> &'static str {
        self.barrier.physical().kind()
    }

    pub(crate) fn cluster(&self) -> Option<ClusterInfo> {
        self.cluster.read().ok().and_then(|c| c.clone())
    }

    /// The `sys/health` body. No I/O: safe to call at any rate.
    pub fn health(&self) -> Health {
        let sealed = self.is_sealed();
        let cluster = if sealed { None } else { self.cluster() };
        Health {
            initialized: self.is_initialized(),
            sealed,
            standby: sealed,
            replication_performance_mode: if sealed { "unknown" } else { "disabled" },
            replication_dr_mode: if sealed { "unknown" } else { "disabled" },
            server_time_utc: crate::util::now_unix(),
            version: crate::VERSION,
            cluster_name: cluster.as_ref().map(|c| c.name.clone()),
            cluster_id: cluster.map(|c| c.id),
        }
    }

    /// The `sys/leader` body.
    pub fn leader(&self) -> LeaderStatus {
        LeaderStatus { ha_enabled: false }
    }

    /// Run one request through the pipeline (DESIGN.md §2): sealed → route → login path or token →
    /// create/update by existence check → ACL (+ sudo paths, parameters, wrapping TTL) → use count →
    /// dispatch with the token stripped → a login result becomes a token minted here.
    ///
    /// With audit devices enabled, the request line is written before the handler runs and the
    /// response line after; if no device can write either, the request fails closed.
    // A debug span: at the default `info` level it costs nothing (at `info` it was built, its
    // fields formatted, and entered and exited on every poll of every request).
    #[tracing::instrument(level = "debug", skip_all, fields(op = %request.operation, path = %request.path))]
    pub async fn handle_request(&self, request: Request) -> Result<Response, Error> {
        let mut audit = if self.is_sealed() { None } else { self.audit_ctx(&request) };
        let mut result = self.handle_inner(request, &mut audit).await;
        let Some(mut ctx) = audit else { return result };
        // The response line HMACs the data field by field: a plugin's data text is parsed for it.
        if let Ok(response) = &mut result
            && let Err(e) = response.materialize()
        {
            result = Err(e);
        }
        if !ctx.request_logged {
            // Refused before any handler ran: the request line carries the error.
            self.audit_log_request(&mut ctx, result.as_ref().err()).await?;
        }
        self.audit_log_response(&ctx, &result).await?;
        result
    }

    async fn handle_inner(&self, mut request: Request, audit: &mut Option<crate::audit::AuditCtx>) -> Result<Response, Error> {
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        let (mount, relative) = {
            let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            let (mount, rel) = router.route(&request.path).ok_or_else(|| Error::NoRoute(request.path.clone()))?;
            (mount, rel.to_string())
        };
        let token = request.client_token.take();
        let remote = request.remote_addr.take();

        // An auth method's login path: no token; the plugin sees the caller's address and may return a
        // login, which only the host turns into a token.
        if let Handler::Plugin(backend) = &mount.handler
            && mount.is_auth()
            && request.operation != Operation::Help
            && backend.unauthenticated(&relative)
        {
            let full_path = std::mem::replace(&mut request.path, relative);
            request.remote_addr = remote;
            let wrap_ttl = self.wrap_ttl(&request);
            if let Some(ctx) = audit.as_mut() {
                ctx.mount = Some(mount.clone());
                ctx.allowed = true;
                ctx.sensitive = crate::audit::sensitive_fields(&mount, &request.path);
                self.audit_log_request(ctx, None).await?;
            }
            let mut response = backend.handle(request).await?.unwrap_or_default();
            if response.secret.is_some() {
                return Err(Error::Internal("an auth method's login path returned a lease; refused".into()));
            }
            if let Some(login) = response.login.take() {
                let (auth, warnings) = self.mint_login_token(&mount, &full_path, login).await?;
                response.auth = Some(auth);
                response.warnings.extend(warnings);
            }
            return self.wrap_if_asked(response, wrap_ttl, &full_path).await;
        }

        // The wrapping token is its own credential for a lookup, which must not use it up.
        if matches!(mount.handler, Handler::Sys)
            && relative.trim_end_matches('/') == "wrapping/lookup"
            && matches!(request.operation, Operation::Update | Operation::Create)
        {
            return self.wrapping_lookup(&request.data, token.as_deref().map(String::as_str)).await;
        }

        // Without a token, `sys/internal/ui/mounts` lists the mounts tuned `listing_visibility=unauth`
        // (type, description and options only), as Vault's does; a token that is given must be valid.
        if matches!(mount.handler, Handler::Sys)
            && relative == "internal/ui/mounts"
            && request.operation == Operation::Read
            && token.as_deref().is_none_or(|t| t.is_empty())
        {
            if let Some(ctx) = audit.as_mut() {
                ctx.mount = Some(mount.clone());
                ctx.allowed = true;
                ctx.operation = Some(request.operation);
                self.audit_log_request(ctx, None).await?;
            }
            return self.ui_mounts_unauthenticated();
        }

        // Unwrapping with a used-up or unknown wrapping token is a 400, as in Vault, not a 403.
        let unwrap_by_header = matches!(mount.handler, Handler::Sys)
            && relative.trim_end_matches('/') == "wrapping/unwrap"
            && request.data.get("token").and_then(|t| t.as_str()).is_none_or(str::is_empty);
        let denied = || if unwrap_by_header { Error::invalid(crate::wrapping::INVALID) } else { Error::PermissionDenied };
        let token = token.ok_or_else(denied)?;
        let entry = self.tokens.lookup(&token).await?.ok_or_else(denied)?;
        if let Some(ctx) = audit.as_mut() {
            ctx.entry = Some(entry.clone());
            ctx.mount = Some(mount.clone());
        }
        if !entry.bound_cidrs.is_empty() && !remote.is_some_and(|a| crate::util::cidrs_contain(&entry.bound_cidrs, a.ip())) {
            return Err(Error::PermissionDenied);
        }
        let acl = self.policies.acl(&entry.policies).await?;
        if request.operation == Operation::Update
            && !acl.create_update_indifferent(&request.path)
            && let Handler::Plugin(backend) = &mount.handler
        {
            let mut probe = request.clone();
            probe.path.clone_from(&relative);
            if backend.exists(&probe).await? == Some(false) {
                request.operation = Operation::Create;
            }
        }
        let mut decision = acl.check(&request.path, request.operation, &request.data, request.wrap_ttl);
        // Any valid token may ask which mounts it can see (the handler filters by its ACL), as in Vault.
        if matches!(mount.handler, Handler::Sys) && request.operation == Operation::Read && (relative == "internal/ui/mounts" || relative.starts_with("internal/ui/mounts/")) {
            decision.allowed = true;
        }
        if !decision.allowed || (requires_sudo(&mount, &relative) && !decision.sudo) {
            return Err(Error::Forbidden);
        }
        let wrap_ttl = self.wrap_ttl(&request);
        if let Some(ctx) = audit.as_mut() {
            ctx.allowed = true;
            ctx.operation = Some(request.operation);
            ctx.sensitive = crate::audit::sensitive_fields(&mount, &relative);
            self.audit_log_request(ctx, None).await?;
        }
        let (usable, last_use) = self.tokens.use_token(&entry).await?;
        if !usable {
            return Err(Error::PermissionDenied);
        }
        let full_path = std::mem::replace(&mut request.path, relative);
        let mut result = self.dispatch(&mount, &entry, &token, decision.sudo, &full_path, request).await;
        if let Ok(response) = &mut result
            && let Some(secret) = response.secret.take()
            && let Err(e) = self.register_lease(&mount, &full_path, &entry, secret, response).await
        {
            // The backend created something it can no longer be told to revoke: say so loudly.
            tracing::error!(path = %full_path, error = %e, "could not record a lease for a secret the backend issued");
            result = Err(e);
        }
        let result = match result {
            Ok(response) => self.wrap_if_asked(response, wrap_ttl, &full_path).await,
            Err(e) => Err(e),
        };
        if last_use {
            self.revoke_token_tree(&entry.id_hash).await?;
        }
        result
    }

    /// Answer with a wrapping token instead of `response` when the request asked for one (an empty
    /// response has nothing to wrap and stays a 204).
    async fn wrap_if_asked(&self, response: Response, wrap_ttl: Option<u64>, path: &str) -> Result<Response, Error> {
        match wrap_ttl {
            Some(ttl) if !response.is_empty() => self.wrap_response(response, ttl, path).await,
            _ => Ok(response),
        }
    }

    /// The wrapping TTL a request asked for (0 = none), capped at the system maximum.
    fn wrap_ttl(&self, request: &Request) -> Option<u64> {
        request.wrap_ttl.filter(|t| *t > 0).map(|t| t.min(self.config.max_lease_ttl))
    }

    async fn dispatch(
        &self,
        mount: &MountEntry,
        entry: &crate::token::TokenEntry,
        token: &str,
        sudo: bool,
        full_path: &str,
        mut request: Request,
    ) -> Result<Response, Error> {
        let response = match &mount.handler {
            Handler::Sys | Handler::Token | Handler::PerToken(_) if request.operation == tresor_logical::Operation::Help => {
                Some(crate::sys::core_help_response(mount, &request.path))
            }
            Handler::Sys => self.handle_sys(entry, request).await?,
            Handler::Token => self.handle_token(&Caller { entry, token, sudo }, request).await?,
            Handler::PerToken(_) if entry.batch => {
                return Err(Error::invalid("cubbyhole operations are only supported by 'service' type tokens"));
            }
            Handler::PerToken(backend) => {
                request.path = format!("{}/{}", entry.id_hash, request.path);
                backend.handle(request).await?
            }
            Handler::Plugin(backend) if request.operation == tresor_logical::Operation::Help => {
                crate::sys::help_response(backend.as_ref(), &request.path)?
            }
            Handler::Plugin(backend) => {
                request.display_name = Some(entry.display_name.clone());
                backend.handle(request).await?
            }
            Handler::Unavailable(why) => return Err(Error::Unavailable(why.clone())),
        };
        let response = response.unwrap_or_default();
        if response.login.is_some() {
            tracing::error!(path = %full_path, "backend returned a login from a path that is not a login path; refused");
            return Err(Error::Internal("backend returned a login from a path that is not a login path".into()));
        }
        Ok(response)
    }

    /// Mint the token for a successful login at `path` of auth mount `mount`.
    async fn mint_login_token(&self, mount: &MountEntry, path: &str, login: Login) -> Result<(tresor_logical::ResponseAuth, Vec<String>), Error> {
        let mut policies: Vec<String> = login.policies.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
        if policies.iter().any(|p| p == "root") {
            return Err(Error::invalid("auth methods cannot create root tokens"));
        }
        if !login.no_default_policy {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();
        let mount_default = if mount.default_lease_ttl > 0 { mount.default_lease_ttl } else { self.config.default_lease_ttl };
        let mut max_ttl = if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { self.config.max_lease_ttl };
        if login.max_ttl > 0 {
            max_ttl = max_ttl.min(login.max_ttl);
        }
        // Vault's `CalculateTTL`: the effective maximum is the smallest of the mount's, the
        // backend's and the explicit one; a period or TTL above it is capped, and Vault says so.
        let cap = if login.explicit_max_ttl > 0 { max_ttl.min(login.explicit_max_ttl) } else { max_ttl };
        let (what, proposed) = match login.period {
            0 => ("TTL", if login.ttl > 0 { login.ttl } else { mount_default }),
            period => ("period", period),
        };
        let warnings: Vec<String> = (proposed > cap).then(|| crate::expiration::capped_warning(what, proposed, cap)).into_iter().collect();
        let ttl = proposed.min(cap);
        let prefix = mount.path.trim_start_matches("auth/").trim_end_matches('/').replace('/', "-");
        let display_name = if login.display_name.is_empty() { prefix } else { format!("{prefix}-{}", login.display_name) };
        // Vault's rule: a mount tuned to `service` or `batch` decides; `default-batch` and
        // `default-service` (the default) decide only when the backend asks for no type. Batch
        // tokens are orphans and nothing is stored per login.
        let batch = match mount.config.token_type.as_str() {
            "service" => false,
            "batch" => true,
            "default-batch" => login.token_type != "service",
            _ => login.token_type == "batch",
        };
        if batch {
            crate::token_api::refuse_for_batch(login.num_uses, login.period, login.explicit_max_ttl)?;
        }
        let (token, entry) = self
            .tokens
            .create(NewToken {
                id: None,
                policies,
                path: path.to_string(),
                display_name,
                meta: login.metadata.clone(),
                ttl,
                max_ttl: if login.period > 0 { 0 } else { max_ttl },
                explicit_max_ttl: login.explicit_max_ttl,
                period: login.period,
                renewable: login.renewable,
                num_uses: login.num_uses,
                parent: None,
                bound_cidrs: login.bound_cidrs.clone(),
                role: None,
                login: (!batch).then(|| LoginSource { mount_accessor: mount.accessor.clone(), login }),
                batch,
            })
            .await?;
        Ok((auth_block(&entry, &token), warnings))
    }

    /// The cubbyhole of the token stored as `id_hash` (what the cubbyhole backend sees under
    /// `<id_hash>/`, and where wrapped responses live).
    pub(crate) fn cubbyhole_of(&self, id_hash: &str) -> BarrierView {
        BarrierView::new(self.barrier.clone() as Arc<dyn tresor_logical::Storage>, format!("{CUBBYHOLE_PREFIX}{id_hash}/"))
    }

    /// Destroy the cubbyholes of revoked tokens.
    pub(crate) async fn cubbyhole_destroy(&self, id_hashes: &[String]) -> Result<(), Error> {
        for hash in id_hashes {
            self.cubbyhole_of(hash).clear().await?;
        }
        Ok(())
    }

    /// Revoke tokens whose TTL has run out (with their children).
    pub(crate) async fn sweep_expired_tokens(&self) -> Result<usize, Error> {
        if self.is_sealed() {
            return Ok(0);
        }
        let expired = self.tokens.expired(crate::util::now_unix()).await?;
        for hash in &expired {
            self.revoke_token_tree(hash).await?;
        }
        Ok(expired.len())
    }
}

/// Paths that need `sudo` on top of the operation's capability (Vault's root-protected paths).
fn requires_sudo(mount: &MountEntry, relative: &str) -> bool {
    const SYS: &[&str] = &[
        "auth/*", "remount", "audit", "audit/*", "raw", "raw/*", "rotate", "rotate/*", "seal", "step-down", "config/cors",
        "config/auditing/*", "config/ui/headers/*", "plugins/catalog/*", "revoke-prefix/*", "revoke-force/*",
        "leases/revoke-prefix/*", "leases/revoke-force/*", "leases/lookup/*", "leases", "internal/inspect/*",
        "rekey/backup", "rekey/recovery-key-backup", "generate-root-token/*", "loggers", "loggers/*",
    ];
    const TOKEN: &[&str] = &["revoke-orphan/*", "accessors*"];
    let list = match mount.handler {
        Handler::Sys => SYS,
        Handler::Token => TOKEN,
        _ => return false,
    };
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => relative.starts_with(prefix),
        None => relative == *p,
    })
}

/// Revoke expired tokens, and rotate the barrier key when it is due by age, once a second for as
/// long as the core lives.
fn spawn_token_sweeper(core: std::sync::Weak<Core>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    handle.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(core) = core.upgrade() else { return };
            if let Err(e) = core.sweep_expired_tokens().await {
                tracing::warn!(error = %e, "token expiry sweep failed");
            }
            // The barrier's age-based rotation (`sys/rotate/config` interval) is checked on the same tick.
            if !core.is_sealed()
                && let Err(e) = core.barrier.rotate_if_due(crate::util::now_unix()).await
            {
                tracing::warn!(error = %e, "automatic barrier key rotation failed");
            }
        }
    });
}

/// Run every plugin mount's periodic function each `periodic_interval` while unsealed, one mount
/// after another (a failure is logged and does not stop the others).
fn spawn_periodic(core: std::sync::Weak<Core>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    let Some(interval) = core.upgrade().map(|c| c.config.periodic_interval).filter(|i| !i.is_zero()) else { return };
    handle.spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(core) = core.upgrade() else { return };
            if core.is_sealed() {
                continue;
            }
            let backends = core.router.read().map(|r| r.plugin_backends()).unwrap_or_default();
            for (path, backend) in backends {
                if let Err(e) = backend.periodic().await {
                    tracing::warn!(mount = %path, error = %e, "periodic function failed");
                }
            }
        }
    });
}
