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
    pub(crate) handler: Handler,
}

impl MountEntry {
    /// The JSON shape of `sys/mounts` entries.
    pub fn to_json(&self) -> Value {
        json!({
            "accessor": self.accessor,
            "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
            "deprecation_status": "supported",
            "description": self.description,
            "external_entropy_access": false,
            "local": self.local,
            "options": if self.kind == "token" { Value::Null } else { json!({}) },
            "plugin_version": "",
            "running_plugin_version": format!("v{}+builtin.tresor", crate::VERSION),
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.kind,
            "uuid": self.uuid,
        })
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

    /// All secret (non-auth) mounts as the `sys/mounts` map.
    pub(crate) fn mounts_json(&self, auth: bool) -> Map {
        self.mounts.iter().filter(|m| m.is_auth() == auth).map(|m| {
            let key = if auth { m.path.trim_start_matches("auth/").to_string() } else { m.path.clone() };
            (key, m.to_json())
        }).collect()
    }

    pub(crate) fn get(&self, path: &str) -> Option<Arc<MountEntry>> {
        self.mounts.iter().find(|m| m.path == path).cloned()
    }
}
