//! The mount table: secrets engines mounted by operators, served by backends a [`BackendFactory`]
//! builds (the plugin runtime, wired in by the server). The table is persisted inside the barrier at
//! [`MOUNTS_KEY`] and restored at every unseal; a mount whose backend cannot be built (missing or
//! broken plugin) is still mounted and answers 500 with a clear error until fixed, so one bad plugin
//! never blocks unseal. Each mount's storage is the view `logical/<uuid>/`, deleted with the mount.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_barrier::BarrierView;
use tresor_logical::{Error, LogicalBackend, Map, Storage};

use crate::catalog::CatalogEntry;
use crate::core::Core;
use crate::router::{Handler, MountEntry};
use crate::util::field;

/// Barrier key of the persisted mount table.
pub const MOUNTS_KEY: &str = "core/mounts";
/// Barrier key of the persisted auth mount table.
pub const AUTH_KEY: &str = "core/auth";
/// Prefix of every mount's storage view.
const LOGICAL_PREFIX: &str = "logical/";
/// Mount points owned by the host.
const RESERVED: &[&str] = &["sys/", "auth/", "cubbyhole/", "identity/"];

/// Builds the backend of a mount (implemented by the plugin runtime).
#[async_trait]
pub trait BackendFactory: Send + Sync + std::fmt::Debug {
    /// Whether `kind` (a mount type such as `kv`, or `userpass` with `auth`) is a built-in plugin.
    fn supports(&self, kind: &str, auth: bool) -> bool;
    /// Names of the built-in secrets engines (or auth methods with `auth`).
    fn builtin_names(&self, auth: bool) -> Vec<String>;
    /// Check a registration: the file exists in the plugin directory, matches its sha256 and is a
    /// valid plugin component.
    async fn verify(&self, entry: &CatalogEntry) -> Result<(), Error>;
    /// Build the backend for `mount` over its private `storage`, from the registered `plugin` when
    /// given (verified again: a file changed since registration is refused), else the built-in.
    async fn create(&self, mount: &MountSettings, plugin: Option<&CatalogEntry>, storage: Arc<dyn Storage>) -> Result<Created, Error>;
}

/// A backend and what is running it.
#[derive(Debug)]
pub struct Created {
    /// The backend.
    pub backend: Arc<dyn LogicalBackend>,
    /// sha256 of the running component (empty for built-ins, as Vault reports).
    pub sha256: String,
    /// Version of the running component.
    pub version: String,
}

/// A mount as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MountSettings {
    /// Mount point with trailing slash.
    pub path: String,
    /// Type (`kv`).
    pub kind: String,
    /// Description.
    pub description: String,
    /// Names the storage view.
    pub uuid: String,
    /// `<type>_<8 hex>`.
    pub accessor: String,
    /// Options (`{"version":"2"}`).
    pub options: Map,
    /// Tuned default lease TTL (0 = system default).
    pub default_lease_ttl: u64,
    /// Tuned max lease TTL (0 = system max).
    pub max_lease_ttl: u64,
    /// An auth method (mounted under `auth/`), not a secrets engine.
    #[serde(default)]
    pub auth: bool,
    /// Hosts and Unix socket directories the plugin may connect to (`tresor_logical::Grants`
    /// syntax); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// CPU deadline per plugin call, seconds (0: the runtime's default, 5 s).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub plugin_cpu_deadline: u64,
    /// Memory cap per plugin instance, bytes (0: the runtime's default, 64 MiB).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub plugin_memory_limit: u64,
    /// Vault's per-mount config fields (listing visibility, audit keys left un-HMAC'd, headers).
    #[serde(default)]
    pub config: MountConfig,
    /// Not replicated (`local`, reported as given).
    #[serde(default)]
    pub local: bool,
    /// Seal wrapping asked for (`seal_wrap`, reported as given: the barrier already encrypts
    /// every value, and there is no separate seal key to wrap with).
    #[serde(default)]
    pub seal_wrap: bool,
    /// `external_entropy_access`, reported as given (the plugin's randomness is the host's CSPRNG).
    #[serde(default)]
    pub external_entropy_access: bool,
    /// The mount was enabled with `"options": null` (as `bao auth enable` sends): while it has no
    /// options they read `null`, as in Vault, rather than `{}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub options_null: bool,
}

/// Barrier key of the tuned settings of the core's own mounts (`sys/`, `cubbyhole/`, `auth/token/`).
pub const CORE_TUNES_KEY: &str = "core/core-mount-tunes";

/// What may be tuned on one of the core's own mounts.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct CoreTune {
    description: String,
    #[serde(default)]
    default_lease_ttl: u64,
    #[serde(default)]
    max_lease_ttl: u64,
    #[serde(default)]
    options: Option<Map>,
    #[serde(default)]
    config: MountConfig,
}

impl CoreTune {
    fn of(m: &MountEntry) -> Self {
        Self {
            description: m.description.clone(),
            default_lease_ttl: m.default_lease_ttl,
            max_lease_ttl: m.max_lease_ttl,
            options: m.options.clone(),
            config: m.config.clone(),
        }
    }

    fn applied_to(&self, m: &MountEntry) -> MountEntry {
        let mut out = m.clone();
        out.description.clone_from(&self.description);
        out.default_lease_ttl = self.default_lease_ttl;
        out.max_lease_ttl = self.max_lease_ttl;
        out.options.clone_from(&self.options);
        out.config = self.config.clone();
        out
    }
}

/// What `sys/mounts/:path` (or `sys/auth/:path`) asks to enable.
#[derive(Debug, Clone, Default)]
pub struct MountRequest {
    /// Type (`kv-v2`, `transit`, `userpass`, a catalog name).
    pub kind: String,
    /// Description.
    pub description: String,
    /// Options handed to the plugin (sandbox settings are lifted out of them).
    pub options: Map,
    /// The `config` map: TTLs, Vault's config fields, sandbox settings.
    pub config: Map,
    /// `local`.
    pub local: bool,
    /// `seal_wrap`.
    pub seal_wrap: bool,
    /// `external_entropy_access`.
    pub external_entropy_access: bool,
    /// `options` was sent as `null`.
    pub options_null: bool,
    /// `config.plugin_version`: a built-in plugin runs only its built-in version.
    pub plugin_version: String,
}

impl MountRequest {
    /// A mount of `kind` with a description and nothing else set.
    pub fn new(kind: &str, description: &str) -> Self {
        Self { kind: kind.into(), description: description.into(), ..Self::default() }
    }
}

/// Vault's mount config fields besides the TTLs, set at enable (`config`) or by tune, and shown in
/// `sys/mounts` and the tune read when set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct MountConfig {
    /// `""`, `"hidden"` or `"unauth"` (listed by an unauthenticated `sys/internal/ui/mounts`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listing_visibility: String,
    /// Request data keys the audit log writes in the clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_request_keys: Vec<String>,
    /// Response data keys the audit log writes in the clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_response_keys: Vec<String>,
    /// Request headers passed on to the backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passthrough_request_headers: Vec<String>,
    /// Response headers the backend may set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_response_headers: Vec<String>,
    /// Auth mounts: the type of token a login mints (empty: `default-service`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_type: String,
    /// `force_no_cache`, set when the mount is enabled (tune leaves it, as Vault's does); reported
    /// only: Tresor keeps no read cache in front of storage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_no_cache: bool,
}

impl MountConfig {
    /// Apply the fields present in `data` (an enable `config` or a tune body); validated first, so
    /// on error nothing changes. A list may be given as a comma-separated string; an empty list
    /// clears it.
    pub fn apply(&mut self, data: &Map, auth: bool) -> Result<(), Error> {
        let mut next = self.clone();
        if let Some(v) = field::str(data, "listing_visibility")? {
            if !matches!(v, "" | "hidden" | "unauth") {
                return Err(Error::invalid(format!("invalid listing_visibility {v}")));
            }
            next.listing_visibility = v.to_string();
        }
        for (key, slot) in [
            ("audit_non_hmac_request_keys", &mut next.audit_non_hmac_request_keys),
            ("audit_non_hmac_response_keys", &mut next.audit_non_hmac_response_keys),
            ("passthrough_request_headers", &mut next.passthrough_request_headers),
            ("allowed_response_headers", &mut next.allowed_response_headers),
        ] {
            if let Some(list) = field::str_list(data, key)? {
                *slot = list;
            }
        }
        if let Some(t) = field::str(data, "token_type")? {
            if !auth {
                return Err(Error::invalid("'token_type' can only be modified on auth mounts"));
            }
            next.token_type = match t {
                "" | "default-service" => String::new(),
                "service" => "service".into(),
                "default-batch" => "default-batch".into(),
                "batch" => "batch".into(),
                _ => return Err(Error::invalid("invalid value for 'token_type'")),
            };
        }
        *self = next;
        Ok(())
    }

    /// `force_no_cache` from an enable request's `config` (a boolean, or its text).
    pub fn apply_enable_only(&mut self, config: &Map) -> Result<(), Error> {
        self.force_no_cache = match config.get("force_no_cache") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if matches!(s.as_str(), "true" | "1") => true,
            Some(Value::String(s)) if matches!(s.as_str(), "false" | "0" | "") => false,
            Some(_) => return Err(Error::invalid("unable to convert given mount config information")),
        };
        Ok(())
    }

    /// The fields shown in a mount's `config` and its tune read: `force_no_cache`, those set, and
    /// an auth mount's `token_type`.
    pub fn to_map(&self, auth: bool) -> Map {
        let mut out = Map::new();
        out.insert("force_no_cache".into(), json!(self.force_no_cache));
        if !self.listing_visibility.is_empty() {
            out.insert("listing_visibility".into(), json!(self.listing_visibility));
        }
        for (key, list) in [
            ("audit_non_hmac_request_keys", &self.audit_non_hmac_request_keys),
            ("audit_non_hmac_response_keys", &self.audit_non_hmac_response_keys),
            ("passthrough_request_headers", &self.passthrough_request_headers),
            ("allowed_response_headers", &self.allowed_response_headers),
        ] {
            if !list.is_empty() {
                out.insert(key.into(), json!(list));
            }
        }
        if auth {
            out.insert("token_type".into(), json!(if self.token_type.is_empty() { "default-service" } else { self.token_type.as_str() }));
        }
        out
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Longest CPU deadline a mount may be given, seconds.
pub const MAX_PLUGIN_CPU_DEADLINE: u64 = 90;
/// Largest memory cap a mount may be given, bytes (the runtime's per-instance ceiling).
pub const MAX_PLUGIN_MEMORY_LIMIT: u64 = 512 << 20;
/// Smallest memory cap a mount may be given, bytes.
pub const MIN_PLUGIN_MEMORY_LIMIT: u64 = 1 << 20;

impl MountSettings {
    /// The sandbox settings shown in the mount's `config` (and its tune read) when set.
    pub fn sandbox_config(&self) -> Map {
        let mut out = Map::new();
        if !self.allowed_outbound_hosts.is_empty() {
            out.insert("allowed_outbound_hosts".into(), json!(self.allowed_outbound_hosts));
        }
        if self.plugin_cpu_deadline > 0 {
            out.insert("plugin_cpu_deadline".into(), json!(self.plugin_cpu_deadline));
        }
        if self.plugin_memory_limit > 0 {
            out.insert("plugin_memory_limit".into(), json!(self.plugin_memory_limit));
        }
        out
    }

    /// Apply the sandbox settings given in a `config` (enable) or tune body, or as mount options
    /// (lifted out of `options`, so `bao secrets enable -options=plugin_memory_limit=128MiB …`
    /// works and the plugin never sees them). Validated first: on error nothing is changed.
    fn apply_sandbox(&mut self, config: &Map, options: &mut Map) -> Result<(), Error> {
        let mut rest = options.clone();
        let hosts = outbound_hosts(config, &mut rest)?;
        let cpu = sandbox_value(config, &mut rest, "plugin_cpu_deadline").map(|v| cpu_deadline(&v)).transpose()?;
        let memory = sandbox_value(config, &mut rest, "plugin_memory_limit").map(|v| memory_limit(&v)).transpose()?;
        *options = rest;
        if let Some(h) = hosts {
            self.allowed_outbound_hosts = h;
        }
        if let Some(c) = cpu {
            self.plugin_cpu_deadline = c;
        }
        if let Some(m) = memory {
            self.plugin_memory_limit = m;
        }
        Ok(())
    }

    /// Where the router serves it (`secret/`, `auth/userpass/`).
    pub fn router_path(&self) -> String {
        if self.auth { format!("auth/{}", self.path) } else { self.path.clone() }
    }

    /// The mount's effective default TTL given the system values.
    pub fn effective_default_ttl(&self, system_default: u64) -> u64 {
        if self.default_lease_ttl > 0 { self.default_lease_ttl } else { system_default }
    }
    /// The mount's effective max TTL given the system values.
    pub fn effective_max_ttl(&self, system_max: u64) -> u64 {
        if self.max_lease_ttl > 0 { self.max_lease_ttl } else { system_max }
    }
}

/// The catalog type serving a table.
fn catalog_type(auth: bool) -> &'static str {
    if auth { "auth" } else { "secret" }
}

/// Normalise a mount point: no leading slash, exactly one trailing slash.
pub(crate) fn normalize(path: &str) -> Result<String, Error> {
    let p = path.trim_matches('/');
    if p.is_empty() || p.split('/').any(|s| s.is_empty() || s == ".." || s == ".") || p.contains('\0') {
        return Err(Error::invalid(format!("invalid mount path {path:?}")));
    }
    Ok(format!("{p}/"))
}

/// Vault's type aliases: `kv-v2` is `kv` with `options.version = "2"`; plain `kv` defaults to v1.
fn canonical_type(kind: &str, options: &mut Map) -> String {
    match kind {
        "kv-v2" => {
            options.insert("version".into(), json!("2"));
            "kv".into()
        }
        "kv-v1" => {
            options.insert("version".into(), json!("1"));
            "kv".into()
        }
        "kv" | "generic" => {
            // As Vault: a version given as a number is kept as its text; none given stays absent
            // (version 1), so the mount's options read `{}`.
            if let Some(Value::Number(n)) = options.get("version") {
                let v = n.to_string();
                options.insert("version".into(), json!(v));
            }
            "kv".into()
        }
        other => other.to_string(),
    }
}

impl Core {
    fn factory(&self) -> Option<&Arc<dyn BackendFactory>> {
        self.config.backend_factory.as_ref()
    }

    /// Enable a secrets engine (or, with `auth`, an auth method under `auth/`) at `path`.
    pub async fn enable_mount(&self, auth: bool, path: &str, request: MountRequest) -> Result<(), Error> {
        let MountRequest { kind, description, mut options, config, local, seal_wrap, external_entropy_access, options_null, plugin_version } = request;
        let (kind, config) = (kind.as_str(), &config);
        let _guard = self.mount_lock.lock().await;
        let path = normalize(path)?;
        let reserved: &[&str] = if auth { &["token/"] } else { RESERVED };
        if let Some(r) = reserved.iter().find(|r| path.starts_with(*r) || r.starts_with(&path)) {
            // Vault's texts: the core's own prefixes cannot be mounted over; auth's token/ is in use.
            return Err(Error::invalid(if auth { format!("path is already in use at auth/{r}") } else { format!("cannot mount \"{path}\"") }));
        }
        let kind = if auth { kind.to_string() } else { canonical_type(kind, &mut options) };
        let factory = self.factory().ok_or_else(|| Error::invalid(format!("plugin not found in the catalog: {kind}")))?.clone();
        let registered = if kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            self.catalog_get(catalog_type(auth), &kind).await?
        } else {
            None
        };
        if registered.is_none() && !factory.supports(&kind, auth) {
            return Err(Error::invalid(format!("plugin not found in the catalog: {kind}")));
        }
        if !plugin_version.is_empty() {
            let version = canonical_version(&plugin_version)?;
            if registered.is_none() && version != format!("v{}+builtin.tresor", crate::VERSION) {
                // OpenBao's two texts: an auth method is looked up in the catalog by version first.
                return Err(Error::invalid(if auth {
                    format!("plugin not found in the catalog: {kind}, version={version}")
                } else {
                    format!("cannot select non-builtin version of secrets plugin {kind}")
                }));
            }
        }
        let router_path = if auth { format!("auth/{path}") } else { path.clone() };
        {
            let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            if let Some(existing) = router.conflicting(&router_path) {
                return Err(Error::invalid(format!("path is already in use at {existing}")));
            }
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut settings = MountSettings {
            auth,
            accessor: format!("{}{kind}_{}", if auth { "auth_" } else { "" }, &uuid.replace('-', "")[..8]),
            path,
            kind,
            description,
            uuid,
            options,
            default_lease_ttl: ttl_field(config, "default_lease_ttl")?.unwrap_or(0),
            max_lease_ttl: ttl_field(config, "max_lease_ttl")?.unwrap_or(0),
            allowed_outbound_hosts: Vec::new(),
            plugin_cpu_deadline: 0,
            plugin_memory_limit: 0,
            config: MountConfig::default(),
            local,
            seal_wrap,
            external_entropy_access,
            options_null,
        };
        settings.config.apply(config, auth)?;
        settings.config.apply_enable_only(config)?;
        let mut options = std::mem::take(&mut settings.options);
        settings.apply_sandbox(config, &mut options)?;
        settings.options = options;
        let created = factory.create(&settings, registered.as_ref(), self.mount_view(&settings.uuid)).await?;
        let mut table = self.load_mount_table(auth).await?;
        table.push(settings.clone());
        self.save_mount_table(auth, &table).await?;
        self.router_mount(settings, Handler::Plugin(created.backend), created.sha256, created.version)?;
        Ok(())
    }

    /// Disable the mount at `path` and delete its storage. Unknown paths succeed, as in Vault.
    pub async fn disable_mount(&self, auth: bool, path: &str) -> Result<(), Error> {
        let _guard = self.mount_lock.lock().await;
        let path = normalize(path)?;
        if !auth && path.starts_with("auth/") {
            // As Vault: auth methods are disabled through `sys/auth`.
            return Err(Error::invalid(format!("cannot unmount \"{path}\"")));
        }
        let mut table = self.load_mount_table(auth).await?;
        let Some(pos) = table.iter().position(|m| m.path == path) else { return Ok(()) };
        // Its leases are revoked first (through the still-mounted backend); if any cannot be, the
        // mount stays, as in Vault.
        let lease_prefix = if auth { format!("auth/{path}") } else { path.clone() };
        self.lease_revoke_prefix(&lease_prefix, false).await?;
        let removed = table.remove(pos);
        {
            let mut router = self.router.write().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            router.unmount(&removed.router_path());
        }
        self.save_mount_table(auth, &table).await?;
        if auth {
            // Tokens minted through this auth method die with it, as in Vault.
            for hash in self.tokens.issued_by_mount(&removed.accessor).await? {
                self.revoke_token_tree(&hash).await?;
            }
        }
        let view = BarrierView::new(self.barrier.clone() as Arc<dyn Storage>, format!("{LOGICAL_PREFIX}{}/", removed.uuid));
        view.clear().await?;
        Ok(())
    }

    /// Move a mount to another path. Storage is keyed by the mount's uuid, so the data does not move:
    /// only the table entry and the route change, atomically for new requests.
    ///
    /// An auth method moves the same way within `auth/` (`bao auth move`); moving between `auth/`
    /// and secrets engines is refused, as in Vault.
    pub async fn remount(&self, from: &str, to: &str) -> Result<(), Error> {
        let _guard = self.mount_lock.lock().await;
        let from = normalize(from)?;
        let to = normalize(to)?;
        let auth = from.starts_with("auth/");
        match (auth, to.starts_with("auth/")) {
            (true, false) => return Err(Error::invalid(format!("cannot remount auth mount to non-auth mount \"{to}\""))),
            (false, true) => return Err(Error::invalid(format!("cannot remount non-auth mount to auth mount \"{to}\""))),
            _ => {}
        }
        let (table_from, table_to) = if auth { (&from["auth/".len()..], &to["auth/".len()..]) } else { (from.as_str(), to.as_str()) };
        let reserved: &[&str] = if auth { &["token/"] } else { RESERVED };
        if table_to.is_empty() {
            return Err(Error::invalid(format!("invalid mount path {to:?}")));
        }
        if let Some(r) = reserved.iter().find(|r| table_to.starts_with(*r) || r.starts_with(table_to)) {
            return Err(Error::invalid(format!("cannot remount to a reserved path ({}{r})", if auth { "auth/" } else { "" })));
        }
        let mut table = self.load_mount_table(auth).await?;
        let pos = table.iter().position(|m| m.path == table_from).ok_or_else(|| Error::invalid(format!("no matching mount at \"{from}\"")))?;
        {
            let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            if let Some(existing) = router.conflicting(&to).filter(|e| *e != from) {
                return Err(Error::invalid(format!("path already in use at \"{existing}\"")));
            }
        }
        table[pos].path = table_to.to_string();
        self.save_mount_table(auth, &table).await?;
        let mut router = self.router.write().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        router.rename(&from, &to);
        Ok(())
    }

    /// Tune a mount's TTLs, description and options; returns the response's warnings.
    ///
    /// A KV mount's `options.version` may go from 1 to 2 (`kv enable-versioning`): the mount is
    /// rebuilt and the KV plugin's `initialize` moves its data to the versioned layout before it
    /// serves again. Going back is refused, as in Vault.
    pub async fn tune_mount(&self, auth: bool, path: &str, data: &Map) -> Result<Vec<String>, Error> {
        let _guard = self.mount_lock.lock().await;
        let path = normalize(path)?;
        let mut table = self.load_mount_table(auth).await?;
        let Some(entry) = table.iter_mut().find(|m| m.path == path) else {
            return self.tune_core_mount(auth, &path, data).await.map(|()| Vec::new());
        };
        tune_ttls(data, &mut entry.default_lease_ttl, &mut entry.max_lease_ttl)?;
        if let Some(Value::String(d)) = data.get("description") {
            entry.description = d.clone();
        }
        let mut options = match data.get("options") {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        entry.apply_sandbox(data, &mut options)?;
        entry.config.apply(data, auth)?;
        let mut warnings = Vec::new();
        for (k, v) in &options {
            if k == "version" && entry.kind == "kv" {
                let (from, to) = (kv_version(entry.options.get("version"))?, kv_version(Some(v))?);
                if to < from {
                    return Err(Error::invalid(format!("cannot downgrade mount from version {from}")));
                }
                if to > from {
                    warnings.push(format!(
                        "Upgrading mount from version {from} to version {to}. This mount will be unavailable for a brief period and will resume service shortly."
                    ));
                }
            }
            entry.options.insert(k.clone(), v.clone());
        }
        let updated = entry.clone();
        self.save_mount_table(auth, &table).await?;
        if !warnings.is_empty() {
            // Nothing may write through the version-1 backend while `initialize` moves the data.
            self.router_mount(updated.clone(), Handler::Unavailable(KV_UPGRADING.into()), String::new(), String::new())?;
        }
        self.rebuild_mount(&updated, false).await?;
        Ok(warnings)
    }

    /// Tune one of the core's own mounts. As Vault: `sys/` and `cubbyhole/` take only the audit
    /// keys; `auth/token/` takes everything but `token_type` and `plugin_version`, and its TTLs
    /// bound the tokens `auth/token/create` issues. Persisted at [`CORE_TUNES_KEY`].
    async fn tune_core_mount(&self, auth: bool, path: &str, data: &Map) -> Result<(), Error> {
        let full = if auth { format!("auth/{path}") } else { path.to_string() };
        let current = {
            let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            router.get(&full).filter(|m| matches!(m.handler, Handler::Sys | Handler::Token | Handler::PerToken(_)))
        };
        let Some(current) = current else {
            return Err(Error::invalid(format!("tune of path \"{path}\" failed: no mount entry found")));
        };
        let mut tuned = CoreTune::of(&current);
        if current.kind == "token" {
            if data.contains_key("token_type") {
                return Err(Error::invalid("'token_type' cannot be set for 'token' or 'ns_token' auth mounts"));
            }
            if data.contains_key("plugin_version") {
                return Err(Error::invalid("plugin_version cannot be set for the token auth method: it is built into the core"));
            }
            tune_ttls(data, &mut tuned.default_lease_ttl, &mut tuned.max_lease_ttl)?;
            if let Some(d) = field::str(data, "description")? {
                tuned.description = d.to_string();
            }
            if let Some(Value::Object(o)) = data.get("options") {
                let options = tuned.options.get_or_insert_with(Map::new);
                options.extend(o.clone());
            }
            tuned.config.apply(data, auth)?;
        } else {
            const FIXED: &[&str] = &[
                "description",
                "default_lease_ttl",
                "max_lease_ttl",
                "listing_visibility",
                "passthrough_request_headers",
                "allowed_response_headers",
                "options",
                "plugin_version",
                "token_type",
            ];
            if let Some(k) = FIXED.iter().find(|k| data.contains_key(**k)) {
                return Err(Error::invalid(format!("cannot tune parameter {k} of {path}")));
            }
            let mut audit_only = Map::new();
            for k in ["audit_non_hmac_request_keys", "audit_non_hmac_response_keys"] {
                if let Some(v) = data.get(k) {
                    audit_only.insert(k.into(), v.clone());
                }
            }
            tuned.config.apply(&audit_only, auth)?;
        }
        let mut tunes = self.load_core_tunes().await?;
        tunes.insert(full, tuned.clone());
        self.barrier
            .put_value(CORE_TUNES_KEY, &serde_json::to_vec(&tunes).map_err(|e| Error::Internal(e.to_string()))?)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut router = self.router.write().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        router.mount(tuned.applied_to(&current));
        Ok(())
    }

    async fn load_core_tunes(&self) -> Result<std::collections::BTreeMap<String, CoreTune>, Error> {
        match self.barrier.get_value(CORE_TUNES_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            None => Ok(Default::default()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt core mount tunes: {e}"))),
        }
    }

    /// The default and max TTL of tokens issued by `auth/token/` (its tuned values, else the system's).
    pub(crate) fn token_mount_ttls(&self) -> (u64, u64) {
        let tuned = self.router.read().ok().and_then(|r| r.get("auth/token/")).map_or((0, 0), |m| (m.default_lease_ttl, m.max_lease_ttl));
        let max = if tuned.1 > 0 { tuned.1 } else { self.config.max_lease_ttl };
        let default = if tuned.0 > 0 { tuned.0 } else { self.config.default_lease_ttl };
        (default.min(max), max)
    }

    /// Persisted mounts served by plugin `name` (optionally only those at `only` paths).
    pub(crate) async fn mounts_of(&self, name: &str, only: &[String]) -> Result<Vec<MountSettings>, Error> {
        let only: Vec<String> = only.iter().map(|p| normalize(p)).collect::<Result<_, _>>()?;
        let mut all = self.load_mount_table(false).await?;
        all.extend(self.load_mount_table(true).await?);
        Ok(all
            .into_iter()
            .filter(|m| m.kind == name && (only.is_empty() || only.contains(&m.path) || only.contains(&m.router_path())))
            .collect())
    }

    /// Build a fresh backend for `settings` and swap it into the router. With `strict`, a failure is
    /// returned and the running backend keeps serving; otherwise the mount becomes unavailable.
    pub(crate) async fn rebuild_mount(&self, settings: &MountSettings, strict: bool) -> Result<(), Error> {
        match self.build_backend(settings).await {
            Ok((handler, sha, version)) => self.router_mount(settings.clone(), handler, sha, version),
            Err(e) if strict => Err(e),
            Err(e) => self.router_mount(settings.clone(), Handler::Unavailable(e.to_string()), String::new(), String::new()),
        }
    }

    /// Settings of the mount at `path` (relative to `auth/` with `auth`), if it is an operator mount.
    pub async fn mount_settings(&self, auth: bool, path: &str) -> Result<Option<MountSettings>, Error> {
        let path = normalize(path)?;
        Ok(self.load_mount_table(auth).await?.into_iter().find(|m| m.path == path))
    }

    fn mount_view(&self, uuid: &str) -> Arc<dyn Storage> {
        Arc::new(BarrierView::new(self.barrier.clone() as Arc<dyn Storage>, format!("{LOGICAL_PREFIX}{uuid}/")))
    }

    async fn build_backend(&self, settings: &MountSettings) -> Result<(Handler, String, String), Error> {
        let factory = self.factory().ok_or_else(|| Error::Unavailable(format!("no plugin runtime for mount {}", settings.path)))?;
        let registered = self.catalog_get(catalog_type(settings.auth), &settings.kind).await.ok().flatten();
        if registered.is_none() && !factory.supports(&settings.kind, settings.auth) {
            return Err(Error::Unavailable(format!("plugin {:?} for mount {} is not in the catalog", settings.kind, settings.path)));
        }
        match factory.create(settings, registered.as_ref(), self.mount_view(&settings.uuid)).await {
            Ok(c) => Ok((Handler::Plugin(c.backend), c.sha256, c.version)),
            Err(e) => {
                tracing::error!(mount = %settings.path, error = %e, "plugin could not be loaded");
                Err(Error::Unavailable(format!("plugin for mount {} could not be loaded: {e}", settings.path)))
            }
        }
    }

    fn router_mount(&self, s: MountSettings, handler: Handler, running_sha256: String, running_version: String) -> Result<(), Error> {
        let mut router = self.router.write().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        router.mount(MountEntry {
            path: s.router_path(),
            kind: s.kind.clone(),
            description: s.description.clone(),
            uuid: s.uuid.clone(),
            accessor: s.accessor.clone(),
            local: s.local,
            seal_wrap: s.seal_wrap,
            external_entropy_access: s.external_entropy_access,
            options: (!(s.options_null && s.options.is_empty())).then(|| s.options.clone()),
            default_lease_ttl: s.default_lease_ttl,
            max_lease_ttl: s.max_lease_ttl,
            sandbox_config: s.sandbox_config(),
            config: s.config.clone(),
            running_sha256,
            running_version,
            handler,
        });
        Ok(())
    }

    /// Restore every persisted mount (after unseal). Never fails because of one bad plugin.
    pub(crate) async fn load_mounts(&self) -> Result<(), Error> {
        for (full, tuned) in self.load_core_tunes().await? {
            let mut router = self.router.write().map_err(|_| Error::Internal("router lock poisoned".into()))?;
            if let Some(current) = router.get(&full) {
                router.mount(tuned.applied_to(&current));
            }
        }
        for auth in [false, true] {
            for settings in self.load_mount_table(auth).await? {
                // Never fails for one bad plugin: that mount answers 500 until fixed.
                self.rebuild_mount(&settings, false).await?;
            }
        }
        Ok(())
    }

    /// Drop operator mounts from the router (at seal).
    pub(crate) fn unload_mounts(&self) {
        if let Ok(mut router) = self.router.write() {
            router.retain_builtin();
        }
    }

    async fn load_mount_table(&self, auth: bool) -> Result<Vec<MountSettings>, Error> {
        let key = if auth { AUTH_KEY } else { MOUNTS_KEY };
        match self.barrier.get_value(key).await.map_err(|e| Error::Internal(e.to_string()))? {
            None => Ok(Vec::new()),
            Some(raw) => {
                let mut table: Vec<MountSettings> =
                    serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt mount table: {e}")))?;
                for m in &mut table {
                    m.auth = auth;
                }
                Ok(table)
            }
        }
    }

    async fn save_mount_table(&self, auth: bool, table: &[MountSettings]) -> Result<(), Error> {
        let key = if auth { AUTH_KEY } else { MOUNTS_KEY };
        let raw = serde_json::to_vec(table).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(key, &raw).await.map_err(|e| Error::Internal(e.to_string()))
    }
}

/// `allowed_outbound_hosts` from a mount's `config` (or tune body): a list or a comma-separated
/// string, also accepted as a mount option (so `bao secrets enable -options=allowed_outbound_hosts=…`
/// works); the option is taken out of the options the plugin sees. Validated here: a bad entry is a
/// 400 and nothing changes.
fn outbound_hosts(config: &Map, options: &mut Map) -> Result<Option<Vec<String>>, Error> {
    let Some(value) = sandbox_value(config, options, "allowed_outbound_hosts") else { return Ok(None) };
    let hosts: Vec<String> = match value {
        Value::String(s) => s.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(|h| h.trim().to_string()).ok_or_else(|| Error::invalid("allowed_outbound_hosts must be a list of strings")))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        Value::Null => Vec::new(),
        _ => return Err(Error::invalid("allowed_outbound_hosts must be a list of strings")),
    };
    tresor_logical::Grants::parse(&hosts).map_err(|e| Error::invalid(e.to_string()))?;
    Ok(Some(hosts))
}

/// A sandbox setting from `config` (preferred) or the mount options (always removed from them).
fn sandbox_value(config: &Map, options: &mut Map, key: &str) -> Option<Value> {
    let from_options = options.remove(key);
    match config.get(key) {
        Some(v) if !v.is_null() => Some(v.clone()),
        _ => from_options,
    }
}

/// `plugin_cpu_deadline`: seconds or a duration string, 1 s to [`MAX_PLUGIN_CPU_DEADLINE`]; 0 or
/// `""` restores the default.
fn cpu_deadline(value: &Value) -> Result<u64, Error> {
    let bad = || Error::invalid(format!("invalid plugin_cpu_deadline: expected a duration from 1s to {MAX_PLUGIN_CPU_DEADLINE}s"));
    let secs = tresor_logical::parse_duration(value).map_err(|_| bad())?;
    if secs > MAX_PLUGIN_CPU_DEADLINE {
        return Err(bad());
    }
    Ok(secs)
}

/// `plugin_memory_limit`: bytes, or a size with a unit (`128MiB`, `64MB`, `1GiB`, `512KiB`),
/// 1 MiB to [`MAX_PLUGIN_MEMORY_LIMIT`]; 0 or `""` restores the default.
fn memory_limit(value: &Value) -> Result<u64, Error> {
    let bad = || Error::invalid("invalid plugin_memory_limit: expected a size from 1MiB to 512MiB (bytes, or a number with KiB, MiB, GiB, KB, MB or GB)");
    let bytes = match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let number: u64 = if split == 0 && s.is_empty() { 0 } else { s[..split].parse().map_err(|_| bad())? };
            let unit: u64 = match s[split..].trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kib" => 1 << 10,
                "m" | "mib" => 1 << 20,
                "g" | "gib" => 1 << 30,
                "kb" => 1_000,
                "mb" => 1_000_000,
                "gb" => 1_000_000_000,
                _ => return Err(bad()),
            };
            number.checked_mul(unit).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if bytes != 0 && !(MIN_PLUGIN_MEMORY_LIMIT..=MAX_PLUGIN_MEMORY_LIMIT).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes)
}

/// Vault's answer while a KV mount moves to the versioned layout.
const KV_UPGRADING: &str = "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.";

/// A KV mount's version from its `options.version` (absent or empty: 1); only 1 and 2 exist.
fn kv_version(v: Option<&Value>) -> Result<u8, Error> {
    let n = match v {
        None => return Ok(1),
        Some(Value::String(s)) if s.is_empty() => return Ok(1),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    match n {
        Some(1) => Ok(1),
        Some(2) => Ok(2),
        _ => Err(Error::invalid("unsupported KV version; must be 1 or 2")),
    }
}

/// A `plugin_version` in Vault's canonical form (`v` + semantic version), or Vault's refusal.
fn canonical_version(v: &str) -> Result<String, Error> {
    let bare = v.strip_prefix('v').unwrap_or(v);
    let (core, rest) = match bare.find(['-', '+']) {
        Some(i) => bare.split_at(i),
        None => (bare, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(numeric) || rest.len() == 1 {
        return Err(Error::invalid(format!("version {v:?} is not a valid semantic version: malformed version: {v}")));
    }
    let mut full: Vec<String> = parts.iter().map(|p| p.trim_start_matches('0').to_string()).map(|p| if p.is_empty() { "0".into() } else { p }).collect();
    full.resize(3, "0".into());
    Ok(format!("v{}{rest}", full.join(".")))
}

/// Apply a tune body's `default_lease_ttl` / `max_lease_ttl` to a mount's pair, refusing a max
/// below the default with Vault's text (the callers then save nothing).
fn tune_ttls(data: &Map, default: &mut u64, max: &mut u64) -> Result<(), Error> {
    if let Some(t) = ttl_field(data, "default_lease_ttl")? {
        *default = t;
    }
    if let Some(t) = ttl_field(data, "max_lease_ttl")? {
        *max = t;
    }
    if *max != 0 && *default > *max {
        return Err(Error::invalid(format!("backend max lease TTL of {max} would be less than backend default lease TTL of {default}")));
    }
    Ok(())
}

/// A TTL field given as seconds or a duration string; `"system"` means 0 (inherit), an empty
/// string nothing at all: the `bao` CLI sends `""` for every TTL flag not given, and a tune of
/// another setting must leave the TTLs as they are (as Vault).
fn ttl_field(data: &Map, key: &str) -> Result<Option<u64>, Error> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "system" => Ok(Some(0)),
        Some(v) => tresor_logical::parse_duration(v).map(Some).map_err(|_| match v {
            Value::String(s) => Error::invalid(format!("time: invalid duration {s:?}")),
            _ => Error::invalid(format!("invalid {key}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_versions_are_canonical_semver() {
        assert_eq!(canonical_version("v1.2.3").unwrap(), "v1.2.3");
        assert_eq!(canonical_version("1.2").unwrap(), "v1.2.0");
        assert_eq!(canonical_version("v0.1.0+builtin.tresor").unwrap(), "v0.1.0+builtin.tresor");
        assert_eq!(
            canonical_version("banana").unwrap_err().to_string(),
            "version \"banana\" is not a valid semantic version: malformed version: banana"
        );
    }

    #[test]
    fn sandbox_limits_parse_sizes_and_durations_within_bounds() {
        assert_eq!(memory_limit(&json!("128MiB")).unwrap(), 128 << 20);
        assert_eq!(memory_limit(&json!("64 MB")).unwrap(), 64_000_000);
        assert_eq!(memory_limit(&json!(2 << 20)).unwrap(), 2 << 20);
        assert_eq!(memory_limit(&json!("512m")).unwrap(), 512 << 20);
        assert_eq!(memory_limit(&json!("")).unwrap(), 0);
        assert_eq!(memory_limit(&json!(0)).unwrap(), 0);
        for bad in [json!("513MiB"), json!("1GiB"), json!(1024), json!("MiB"), json!("12 parsecs"), json!(-1), json!(true), json!("99999999999999999999GiB")] {
            assert!(memory_limit(&bad).is_err(), "{bad}");
        }
        assert_eq!(cpu_deadline(&json!("1m30s")).unwrap(), 90);
        assert_eq!(cpu_deadline(&json!(2)).unwrap(), 2);
        for bad in [json!("91s"), json!("soon"), json!([1])] {
            assert!(cpu_deadline(&bad).is_err(), "{bad}");
        }
        let mut s = MountSettings::default();
        let mut options = Map::new();
        options.insert("plugin_cpu_deadline".into(), json!("10s"));
        options.insert("version".into(), json!("2"));
        let mut config = Map::new();
        config.insert("plugin_memory_limit".into(), json!("bad"));
        assert!(s.apply_sandbox(&config, &mut options).is_err());
        assert_eq!((s.plugin_cpu_deadline, s.plugin_memory_limit), (0, 0), "nothing applied on error");
        assert_eq!(options.len(), 2, "options untouched on error");
        config.insert("plugin_memory_limit".into(), json!("8MiB"));
        s.apply_sandbox(&config, &mut options).unwrap();
        assert_eq!((s.plugin_cpu_deadline, s.plugin_memory_limit), (10, 8 << 20));
        assert_eq!(options.len(), 1, "only the plugin's own options remain: {options:?}");
    }

    #[test]
    fn mount_paths_are_normalised_and_checked() {
        assert_eq!(normalize("/kv2/").unwrap(), "kv2/");
        assert_eq!(normalize("a/b").unwrap(), "a/b/");
        for bad in ["", "/", "a//b", "../x", "a/./b"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kv_type_aliases() {
        let mut o = Map::new();
        assert_eq!(canonical_type("kv-v2", &mut o), "kv");
        assert_eq!(o["version"], "2");
        let mut o = Map::new();
        assert_eq!(canonical_type("kv", &mut o), "kv");
        assert!(o.is_empty(), "as Vault: plain kv keeps no version (it is 1)");
        assert_eq!(canonical_type("kv-v1", &mut o), "kv");
        assert_eq!(o["version"], "1");
        let mut o = Map::new();
        o.insert("version".into(), json!(2));
        canonical_type("kv", &mut o);
        assert_eq!(o["version"], "2");
    }
}
