//! The mount table and longest-prefix routing. A mount entry says where a backend lives, its type and
//! accessor, and the storage view (by uuid) it was given.

use std::sync::Arc;

use serde_json::{json, Value};
use tresor_logical::{LogicalBackend, Map};

/// What serves a mount.
#[derive(Debug, Clone)]
pub(crate) enum Handler {
    /// The `sys/` backend, implemented on `Core` itself.
    Sys,
    /// `auth/token/` (minimal slice: lookup-self).
    Token,
    /// A backend whose paths are rewritten to `<token storage id>/<path>` (cubbyhole).
    PerToken(Arc<dyn LogicalBackend>),
    /// An operator mount served by a plugin.
    Plugin(Arc<dyn LogicalBackend>),
    /// An operator mount whose plugin could not be loaded: every request is a 500 with this message.
    Unavailable(String),
}

/// One mounted backend.
#[derive(Debug, Clone)]
pub struct MountEntry {
    /// Mount point with trailing slash, relative to `/v1/` (`sys/`, `auth/token/`).
    pub path: String,
    /// Backend type (`system`, `cubbyhole`, `token`, `kv`).
    pub kind: String,
    /// Human description.
    pub description: String,
    /// Random UUID; names the storage view.
    pub uuid: String,
    /// `<type>_<8 hex>` or `auth_<type>_<8 hex>`.
    pub accessor: String,
    /// Not replicated (cubbyhole).
    pub local: bool,
    /// Sealed-wrap flag (reported only).
    pub seal_wrap: bool,
    /// Mount options (`{"version":"2"}`); `None` renders as `null` (the core's own mounts).
    pub options: Option<Map>,
    /// Tuned default lease TTL (0 = system).
    pub default_lease_ttl: u64,
    /// Tuned max lease TTL (0 = system).
    pub max_lease_ttl: u64,
    /// `external_entropy_access` (reported as given).
    pub external_entropy_access: bool,
    /// Sandbox settings of a plugin mount shown in `config` (outbound grants, limits), when set.
    pub sandbox_config: Map,
    /// Vault's config fields (listing visibility, audit non-HMAC keys, headers, token type).
    pub config: crate::mount::MountConfig,
    /// sha256 of the running plugin (empty for built-ins).
    pub running_sha256: String,
    /// Version of the running plugin (empty: the host's built-in version).
    pub running_version: String,
    pub(crate) handler: Handler,
}

impl MountEntry {
    /// The JSON shape of `sys/mounts` entries.
    pub fn to_json(&self) -> Value {
        let mut config = json!({"default_lease_ttl": self.default_lease_ttl, "max_lease_ttl": self.max_lease_ttl});
        if let Value::Object(c) = &mut config {
            c.extend(self.config.to_map(self.is_auth()));
            c.extend(self.sandbox_config.clone());
        }
        let mut entry = json!({
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": match &self.options { Some(o) => Value::Object(o.clone()), None => Value::Null },
            "plugin_version": "",
            "running_plugin_version": if self.running_version.is_empty() { format!("v{}+builtin.tresor", crate::VERSION) } else { self.running_version.clone() },
            "running_sha256": self.running_sha256,
            "seal_wrap": self.seal_wrap,
            "type": self.kind,
            "uuid": self.uuid,
        });
        // As Vault: the core's own mounts (sys, cubbyhole, token) are not plugins and carry no
        // deprecation status.
        if matches!(self.handler, Handler::Plugin(_) | Handler::Unavailable(_))
            && let Value::Object(e) = &mut entry
        {
            e.insert("deprecation_status".into(), json!("supported"));
        }
        entry
    }

    /// Whether this is an auth mount.
    pub fn is_auth(&self) -> bool {
        self.path.starts_with("auth/")
    }
}

/// The routing table.
#[derive(Debug, Default)]
pub(crate) struct Router {
    /// Sorted by mount path length, longest first.
    mounts: Vec<Arc<MountEntry>>,
}

impl Router {
    pub(crate) fn mount(&mut self, entry: MountEntry) {
        self.mounts.retain(|m| m.path != entry.path);
        self.mounts.push(Arc::new(entry));
        self.mounts.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then_with(|| a.path.cmp(&b.path)));
    }

    /// The mount serving `path` and the path relative to it.
    pub(crate) fn route<'p>(&self, path: &'p str) -> Option<(Arc<MountEntry>, &'p str)> {
        self.mounts.iter().find_map(|m| {
            if let Some(rest) = path.strip_prefix(m.path.as_str()) {
                return Some((m.clone(), rest));
            }
            // `sys/mounts` vs mount `sys/`: the mount path without its slash also matches itself.
            (path == m.path.trim_end_matches('/')).then(|| (m.clone(), ""))
        })
    }

    /// Every mount, longest path first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Arc<MountEntry>> {
        self.mounts.iter()
    }

    /// All secret (non-auth) mounts as the `sys/mounts` map.
    pub(crate) fn mounts_json(&self, auth: bool) -> Map {
        self.mounts.iter().filter(|m| m.is_auth() == auth).map(|m| {
            let key = if auth { m.path.trim_start_matches("auth/").to_string() } else { m.path.clone() };
            (key, m.to_json())
        }).collect()
    }

    /// An existing mount that overlaps `path` (one is a prefix of the other).
    pub(crate) fn conflicting(&self, path: &str) -> Option<String> {
        self.mounts.iter().find(|m| path.starts_with(m.path.as_str()) || m.path.starts_with(path)).map(|m| m.path.clone())
    }

    /// Move the mount at `from` to `to`, keeping its backend.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        if let Some(pos) = self.mounts.iter().position(|m| m.path == from) {
            let mut entry = (*self.mounts[pos]).clone();
            entry.path = to.to_string();
            self.mounts.remove(pos);
            self.mount(entry);
        }
    }

    /// Remove the mount at exactly `path`.
    pub(crate) fn unmount(&mut self, path: &str) {
        self.mounts.retain(|m| m.path != path);
    }

    /// `(mount path, backend)` of every plugin mount.
    pub(crate) fn plugin_backends(&self) -> Vec<(String, Arc<dyn LogicalBackend>)> {
        self.mounts
            .iter()
            .filter_map(|m| match &m.handler {
                Handler::Plugin(b) => Some((m.path.clone(), b.clone())),
                _ => None,
            })
            .collect()
    }

    /// Keep only the host's own mounts (sys/, cubbyhole/, auth/token/).
    pub(crate) fn retain_builtin(&mut self) {
        self.mounts.retain(|m| !matches!(m.handler, Handler::Plugin(_) | Handler::Unavailable(_)));
    }

    pub(crate) fn get(&self, path: &str) -> Option<Arc<MountEntry>> {
        self.mounts.iter().find(|m| m.path == path).cloned()
    }
}
