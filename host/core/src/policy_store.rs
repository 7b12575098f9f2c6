//! Stored ACL policies (`sys/policies/acl/*`, legacy `sys/policy/*`) and the cache of compiled ACLs.
//!
//! Policies live in the barrier under `sys/policy/<name>` as JSON `{name, policy, version, modified}`.
//! `root` is built in and never stored; `default` is created at first unseal and may be edited but not
//! deleted. Parsed policies and compiled ACLs (keyed by the sorted policy set) are cached in memory and
//! dropped on every policy change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_barrier::BarrierView;
use tresor_logical::{Error, Map, Storage};

use crate::acl::Acl;
use crate::policy::{Policy, DEFAULT_POLICY};
use crate::util::{now_unix_nanos, obj, rfc3339_nanos};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    name: String,
    policy: String,
    version: u64,
    /// Unix nanoseconds of the last write.
    modified: i128,
}

/// The policy store.
#[derive(Debug)]
pub(crate) struct PolicyStore {
    view: BarrierView,
    parsed: RwLock<HashMap<String, Option<Arc<Policy>>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
    /// Serialises writes (check-and-set).
    write: tokio::sync::Mutex<()>,
}

/// Vault lower-cases policy names and forbids a few characters.
fn check_name(name: &str) -> Result<String, Error> {
    let n = name.trim().to_lowercase();
    if n.is_empty() || n.len() > 128 || n.contains(['/', '\0']) || n.starts_with('.') {
        return Err(Error::invalid(format!("invalid policy name {name:?}")));
    }
    Ok(n)
}

impl PolicyStore {
    pub(crate) fn new(view: BarrierView) -> Self {
        Self { view, parsed: RwLock::new(HashMap::new()), acls: RwLock::new(HashMap::new()), write: tokio::sync::Mutex::new(()) }
    }

    /// Create the `default` policy if missing (after unseal); clear caches.
    pub(crate) async fn setup(&self) -> Result<(), Error> {
        self.invalidate();
        if self.view.get("default").await?.is_none() {
            self.store("default", DEFAULT_POLICY, 1).await?;
        }
        Ok(())
    }

    pub(crate) fn invalidate(&self) {
        if let Ok(mut p) = self.parsed.write() {
            p.clear();
        }
        if let Ok(mut a) = self.acls.write() {
            a.clear();
        }
    }

    async fn load(&self, name: &str) -> Result<Option<Stored>, Error> {
        match self.view.get(name).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| Error::Internal(format!("corrupt policy {name:?}: {e}"))),
        }
    }

    async fn store(&self, name: &str, text: &str, version: u64) -> Result<(), Error> {
        let s = Stored { name: name.into(), policy: text.into(), version, modified: now_unix_nanos() };
        let raw = serde_json::to_vec(&s).map_err(|e| Error::Internal(e.to_string()))?;
        self.view.put(name, &raw).await.map_err(Error::from)
    }

    /// A parsed policy (cached). Unknown names are `None` (a token may name a policy deleted since).
    async fn policy(&self, name: &str) -> Result<Option<Arc<Policy>>, Error> {
        if let Some(hit) = self.parsed.read().ok().and_then(|p| p.get(name).cloned()) {
            return Ok(hit);
        }
        if name == crate::wrapping::WRAPPING_POLICY_NAME {
            return Policy::parse(name, crate::wrapping::WRAPPING_POLICY).map(|p| Some(Arc::new(p))).map_err(|e| Error::Internal(e.to_string()));
        }
        let parsed = match self.load(name).await? {
            None => None,
            Some(s) => Some(Arc::new(Policy::parse(name, &s.policy).map_err(|e| Error::Internal(format!("stored policy {name:?}: {e}")))?)),
        };
        if let Ok(mut p) = self.parsed.write() {
            p.insert(name.to_string(), parsed.clone());
        }
        Ok(parsed)
    }

    /// Whether a policy of that name exists (`root` always does).
    pub(crate) async fn exists(&self, name: &str) -> Result<bool, Error> {
        Ok(name == "root" || self.policy(name).await?.is_some())
    }

    /// The compiled ACL for a set of policy names (cached by the sorted set).
    pub(crate) async fn acl(&self, names: &[String]) -> Result<Arc<Acl>, Error> {
        if let Some(hit) = self.acls.read().ok().and_then(|a| a.get(names).cloned()) {
            return Ok(hit);
        }
        let acl = if names.iter().any(|n| n == "root") {
            Arc::new(Acl::root())
        } else {
            let mut policies = Vec::with_capacity(names.len());
            for n in names {
                if let Some(p) = self.policy(n).await? {
                    policies.push(p);
                }
            }
            Arc::new(Acl::new(policies.iter().map(|p| p.as_ref())))
        };
        if let Ok(mut a) = self.acls.write() {
            a.insert(names.to_vec(), acl.clone());
        }
        Ok(acl)
    }

    pub(crate) async fn names(&self) -> Result<Vec<String>, Error> {
        let mut keys: Vec<String> = self.view.list("").await?.into_iter().filter(|k| !k.ends_with('/')).collect();
        keys.push("root".into());
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Write (create or replace) a policy, with optional check-and-set on its version.
    pub(crate) async fn put(&self, name: &str, text: &str, cas: Option<u64>) -> Result<(), Error> {
        let name = check_name(name)?;
        if name == "root" {
            return Err(Error::invalid("cannot update \"root\" policy"));
        }
        if name == crate::wrapping::WRAPPING_POLICY_NAME {
            return Err(Error::invalid(format!("cannot update {name:?} policy")));
        }
        Policy::parse(&name, text).map_err(|e| Error::invalid(e.to_string()))?;
        let _guard = self.write.lock().await;
        let current = self.load(&name).await?.map_or(0, |s| s.version);
        if let Some(cas) = cas
            && cas != current
        {
            return Err(Error::invalid(format!("check-and-set parameter {cas} did not match the current version {current}")));
        }
        self.store(&name, text, current + 1).await?;
        self.invalidate();
        Ok(())
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), Error> {
        let name = check_name(name)?;
        match name.as_str() {
            "root" => return Err(Error::invalid("cannot delete \"root\" policy")),
            "default" => return Err(Error::invalid("cannot delete default policy")),
            _ => {}
        }
        let _guard = self.write.lock().await;
        self.view.delete(&name).await?;
        self.invalidate();
        Ok(())
    }

    /// `GET sys/policies/acl/:name` (`legacy`: `sys/policy/:name`, which says `rules`).
    pub(crate) async fn read_json(&self, name: &str, legacy: bool) -> Result<Option<Map>, Error> {
        let name = check_name(name)?;
        let (text, version, modified) = if name == "root" {
            (String::new(), 0, None)
        } else {
            match self.load(&name).await? {
                None => return Ok(None),
                Some(s) => (s.policy, s.version, Some(s.modified)),
            }
        };
        let mut m = obj([
            ("name", json!(name)),
            (if legacy { "rules" } else { "policy" }, json!(text)),
            ("version", json!(version)),
            ("cas_required", json!(false)),
            ("allow_slashes_in_identity_templates", json!(false)),
            ("allow_wildcards_in_identity_templates", json!(false)),
        ]);
        if let Some(m2) = modified {
            m.insert("modified".into(), Value::String(rfc3339_nanos(m2)));
        }
        Ok(Some(m))
    }
}
