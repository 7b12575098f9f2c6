//! The `sys/` backend (native host code) and the minimal `auth/token/` slice. Paths here change the
//! host's own state, so they live in the core rather than in a plugin.
//!
//! Unauthenticated status endpoints (`init`, `seal-status`, `unseal`, `health`, `leader`) are served by
//! the HTTP layer through `Core` methods before a token is looked up; reaching them here means an
//! unsupported verb.

use serde_json::{json, Value};
use tresor_logical::{Error, Map, Operation, Request, Response};

use crate::core::Core;
use crate::token::TokenEntry;
use crate::util::{field, obj, rfc3339};

impl Core {
    pub(crate) async fn handle_sys(&self, entry: &TokenEntry, request: Request) -> Result<Option<Response>, Error> {
        let op = request.operation;
        if let Some(result) = self.handle_lease_path(&request.path, op, &request.data).await {
            return result;
        }
        let path = request.path.trim_end_matches('/');
        if let Some(action) = path.strip_prefix("wrapping/")
            && matches!(op, Operation::Update | Operation::Create)
        {
            return self.handle_wrapping(entry, action, &request.data, request.wrap_ttl).await;
        }
        match (path, op) {
            ("audit", Operation::Read) => Ok(Some(Response::with_data(self.audit_json()))),
            (p, Operation::Update | Operation::Create) if p.starts_with("audit-hash/") => {
                let input = field::str(&request.data, "input")?.unwrap_or("");
                let hash = self.audit_hash(&p["audit-hash/".len()..], input)?;
                Ok(Some(Response::with_data(obj([("hash", json!(hash))]))))
            }
            (p, op) if p.starts_with("audit/") => match op {
                Operation::Update | Operation::Create => {
                    self.enable_audit(&p["audit/".len()..], &request.data).await?;
                    Ok(None)
                }
                Operation::Delete => {
                    self.disable_audit(&p["audit/".len()..]).await?;
                    Ok(None)
                }
                _ => Err(Error::UnsupportedOperation),
            },
            (p, Operation::Update | Operation::Create) if p == "tools/random" || p.starts_with("tools/random/") => {
                crate::tools::random(&p["tools/random".len()..], &request.data).map(|(d, warnings)| {
                    let mut response = Response::with_data(d);
                    response.warnings = warnings;
                    Some(response)
                })
            }
            (p, Operation::Update | Operation::Create) if p == "tools/hash" || p.starts_with("tools/hash/") => {
                crate::tools::hash(&p["tools/hash".len()..], &request.data).map(|d| Some(Response::with_data(d)))
            }
            ("key-status", Operation::Read) => {
                let status = self.barrier.key_status().map_err(|_| Error::Sealed)?;
                Ok(Some(Response::with_data(obj([
                    ("term", json!(status.term)),
                    ("install_time", json!(rfc3339(status.install_time))),
                    ("encryptions", json!(status.encryptions)),
                ]))))
            }
            ("rotate" | "rotate/keyring", Operation::Update | Operation::Create) => {
                self.barrier.rotate().await.map_err(|e| Error::Internal(e.to_string()))?;
                Ok(None)
            }
            ("rotate/config" | "rotate/keyring/config", Operation::Read) => Ok(Some(Response::with_data(self.rotation_config_json()))),
            ("rotate/config" | "rotate/keyring/config", Operation::Update | Operation::Create) => {
                self.update_rotation_config(&request.data).await?;
                Ok(None)
            }
            ("generate-root-token/attempt", Operation::Read) => Ok(Some(Response::with_data(self.root_generation_status().await?))),
            ("generate-root-token/attempt", Operation::Update | Operation::Create) => {
                Ok(Some(Response::with_data(self.root_generation_start(&request.data).await?)))
            }
            ("generate-root-token/attempt", Operation::Delete) => {
                self.root_generation_cancel().await;
                Ok(None)
            }
            ("generate-root-token/update", Operation::Update | Operation::Create) => {
                Ok(Some(Response::with_data(self.root_generation_update(&request.data).await?)))
            }
            ("rotate/root/init", Operation::Read) => Ok(Some(Response::with_data(self.rekey_status_json().await?))),
            ("rotate/root/init", Operation::Update | Operation::Create) => Ok(Some(Response::with_data(self.rekey_start(&request.data).await?))),
            ("rotate/root/init", Operation::Delete) => {
                self.rekey_cancel().await;
                Ok(None)
            }
            ("rotate/root/update", Operation::Update | Operation::Create) => Ok(Some(Response::with_data(self.rekey_update(&request.data).await?))),
            ("rotate/root/verify", Operation::Read) => Ok(Some(Response::with_data(self.rekey_verify_status().await?))),
            ("rotate/root/verify", Operation::Update | Operation::Create) => {
                Ok(Some(Response::with_data(self.rekey_verify_update(&request.data).await?)))
            }
            ("rotate/root/verify", Operation::Delete) => Ok(Some(Response::with_data(self.rekey_verify_restart().await?))),
            ("loggers", Operation::Read) => Ok(Some(Response::with_data(self.loggers_json(None)?))),
            ("loggers", Operation::Update | Operation::Create) => self.set_log_level(None, &request.data).map(|()| None),
            ("loggers", Operation::Delete) => self.reset_log_level(None).map(|()| None),
            (p, op) if p.starts_with("loggers/") => {
                let name = Some(&p["loggers/".len()..]);
                match op {
                    Operation::Read => Ok(Some(Response::with_data(self.loggers_json(name)?))),
                    Operation::Update | Operation::Create => self.set_log_level(name, &request.data).map(|()| None),
                    Operation::Delete => self.reset_log_level(name).map(|()| None),
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            ("config/cors", Operation::Read) => Ok(Some(Response::with_data(self.cors_json()))),
            ("config/cors", Operation::Update | Operation::Create) => {
                self.update_cors(&request.data).await?;
                Ok(None)
            }
            ("config/cors", Operation::Delete) => {
                self.disable_cors().await?;
                Ok(None)
            }
            ("config/auditing/request-headers", Operation::Read) => Ok(Some(Response::with_data(self.audited_headers_json()))),
            (p, op) if p.starts_with("config/auditing/request-headers/") => {
                let name = &p["config/auditing/request-headers/".len()..];
                match op {
                    Operation::Read => Ok(Some(Response::with_data(self.audited_header_json(name)?))),
                    Operation::Update | Operation::Create => {
                        self.put_audited_header(name, &request.data).await?;
                        Ok(None)
                    }
                    Operation::Delete => {
                        self.delete_audited_header(name).await?;
                        Ok(None)
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            ("version-history", Operation::List) => Ok(Some(Response::with_data(self.version_history().await?))),
            // The one node of a server without HA (`bao operator members`).
            ("ha-status", Operation::Read) => {
                let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
                let node = json!({
                    "hostname": if hostname.is_empty() { "localhost".to_string() } else { hostname },
                    "api_address": self.config.api_addr,
                    "cluster_address": "",
                    "active_node": true,
                    "last_echo": null,
                    "version": crate::VERSION,
                });
                Ok(Some(Response::with_data(obj([("nodes", json!([node]))]))))
            }
            // A single server with no HA: there is no standby to hand over to, as OpenBao without
            // HA storage answers (204, nothing happens).
            ("step-down", Operation::Update | Operation::Create) => Ok(None),
            // No rekey, so never a backup of rekeyed shares (Vault's answers when there is none).
            ("rekey/backup" | "rekey/recovery-key-backup" | "rotate/root/backup", Operation::Read) => Err(Error::invalid("no backed-up keys found")),
            ("rekey/backup" | "rekey/recovery-key-backup" | "rotate/root/backup", Operation::Delete) => Ok(None),
            // OpenBao rotates the root key under the same unseal key, which Tresor does not keep
            // once unsealed (only the shares rebuild it).
            ("rotate/root", Operation::Update | Operation::Create) => Err(Error::invalid(
                "rotating the root key needs the unseal key, which Tresor does not keep after unseal; rekey with sys/rotate/root/init, or rotate the barrier key with sys/rotate",
            )),
            ("seal", Operation::Update | Operation::Create) => {
                self.seal().await;
                Ok(None)
            }
            ("mounts", Operation::Read) => Ok(Some(Response::with_data(self.mounts_json(false)?))),
            ("auth", Operation::Read) => Ok(Some(Response::with_data(self.mounts_json(true)?))),
            (p, op) if (p.starts_with("mounts/") || p.starts_with("auth/")) && p.ends_with("/tune") => {
                let mut auth = p.starts_with("auth/");
                let mut mount = &p[p.find('/').map_or(0, |i| i + 1)..p.len() - "/tune".len()];
                // As Vault: `sys/mounts/auth/<path>/tune` tunes the auth mount (`bao auth tune` uses it).
                if let Some(rest) = mount.strip_prefix("auth/").filter(|_| !auth) {
                    (auth, mount) = (true, rest);
                }
                match op {
                    Operation::Read => self.tune_json(auth, mount).await.map(|d| Some(Response::with_data(d))),
                    Operation::Update | Operation::Create => {
                        let warnings = self.tune_mount(auth, mount, &request.data).await?;
                        Ok((!warnings.is_empty()).then(|| Response { warnings, ..Response::default() }))
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            (p, op) if p.starts_with("mounts/") || p.starts_with("auth/") => {
                let auth = p.starts_with("auth/");
                let mount = &p[p.find('/').map_or(0, |i| i + 1)..];
                match op {
                    Operation::Read => {
                        let full = format!("{}{}/", if auth { "auth/" } else { "" }, mount.trim_end_matches('/'));
                        self.mount_json(&full).map(|d| Some(Response::with_data(d)))
                    }
                    Operation::Update | Operation::Create => {
                        let kind = request.get_str("type").ok_or_else(|| Error::invalid("backend type must be specified as a string"))?;
                        let (options, options_null) = match request.data.get("options") {
                            Some(Value::Object(o)) => (o.clone(), false),
                            None => (Map::new(), false),
                            Some(Value::Null) => (Map::new(), true),
                            Some(_) => return Err(Error::invalid("options must be a map")),
                        };
                        let config = match request.data.get("config") {
                            Some(Value::Object(c)) => c.clone(),
                            _ => Map::new(),
                        };
                        let enable = crate::mount::MountRequest {
                            kind: kind.to_string(),
                            description: request.get_str("description").unwrap_or("").to_string(),
                            options,
                            config,
                            local: field::bool(&request.data, "local")?.unwrap_or(false),
                            seal_wrap: field::bool(&request.data, "seal_wrap")?.unwrap_or(false),
                            external_entropy_access: field::bool(&request.data, "external_entropy_access")?.unwrap_or(false),
                            options_null,
                            // Vault reads it from `config` (the `bao` CLI sends it there).
                            plugin_version: request.data.get("config").and_then(|c| c.get("plugin_version")).and_then(Value::as_str).unwrap_or("").to_string(),
                        };
                        self.enable_mount(auth, mount, enable).await?;
                        Ok(None)
                    }
                    Operation::Delete => {
                        self.disable_mount(auth, mount).await?;
                        Ok(None)
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            (p, op) if p == "policies/password" || p.starts_with("policies/password/") => {
                Ok(self.password_policy(&p["policies/password".len()..], op, &request.data).await?.map(Response::with_data))
            }
            ("policy" | "policies/acl", Operation::Read | Operation::List) => {
                let keys = self.policies.names().await?;
                let mut data = Map::new();
                if path == "policy" {
                    data.insert("policies".into(), json!(keys));
                }
                data.insert("keys".into(), json!(keys));
                Ok(Some(Response::with_data(data)))
            }
            (p, op) if p.starts_with("policy/") || p.starts_with("policies/acl/") => {
                let legacy = p.starts_with("policy/");
                let name = &p[if legacy { "policy/".len() } else { "policies/acl/".len() }..];
                match op {
                    Operation::Read => Ok(Some(Response::with_data(self.policies.read_json(name, legacy).await?.ok_or(Error::NotFound)?))),
                    Operation::Update | Operation::Create => {
                        // As Vault: the legacy `sys/policy` also takes the deprecated `rules` (with a
                        // warning, when `policy` is not given); `sys/policies/acl` only `policy`.
                        let given = field::str(&request.data, "policy")?.filter(|t| !t.trim().is_empty());
                        let rules = if legacy && given.is_none() { field::str(&request.data, "rules")?.filter(|t| !t.trim().is_empty()) } else { None };
                        let Some(text) = given.or(rules) else {
                            return Err(Error::invalid("'policy' parameter not supplied or empty"));
                        };
                        let cas = match request.data.get("cas") {
                            None | Some(Value::Null) => None,
                            Some(v) => Some(v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| Error::invalid("cas must be a non-negative integer"))?),
                        };
                        self.policies.put(name, text, cas).await?;
                        Ok(rules.map(|_| Response {
                            warnings: vec!["'rules' is deprecated, please use 'policy' instead".into()],
                            ..Response::default()
                        }))
                    }
                    Operation::Delete => {
                        self.policies.delete(name).await?;
                        Ok(None)
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            ("capabilities" | "capabilities-self" | "capabilities-accessor", Operation::Update | Operation::Create) => {
                let acl = match path {
                    "capabilities-self" => self.policies.acl(&entry.policies).await?,
                    "capabilities" => {
                        // Vault's texts (its multierror rendering, on a 400).
                        let token = field::str(&request.data, "token")?.unwrap_or("");
                        let target = self.tokens.lookup(token).await?.ok_or_else(|| Error::invalid("1 error occurred:\n\t* invalid token\n\n"))?;
                        self.policies.acl(&target.policies).await?
                    }
                    _ => {
                        let accessor = field::str(&request.data, "accessor")?.unwrap_or("");
                        if accessor.is_empty() {
                            return Err(Error::invalid("missing accessor"));
                        }
                        let target =
                            self.tokens.lookup_accessor(accessor).await?.ok_or_else(|| Error::invalid("1 error occurred:\n\t* invalid accessor\n\n"))?;
                        self.policies.acl(&target.policies).await?
                    }
                };
                let mut paths = field::str_list(&request.data, "paths")?.unwrap_or_default();
                if let Some(p) = field::str(&request.data, "path")? {
                    paths.push(p.to_string());
                }
                if paths.is_empty() {
                    return Err(Error::invalid("missing paths"));
                }
                let mut data = Map::new();
                for p in &paths {
                    data.insert(p.clone(), json!(acl.capability_names(p.trim_start_matches('/'))));
                }
                if paths.len() == 1 {
                    data.insert("capabilities".into(), json!(acl.capability_names(paths[0].trim_start_matches('/'))));
                }
                Ok(Some(Response::with_data(data)))
            }
            (p, Operation::Read) if p.starts_with("internal/ui/mounts/") => {
                let target = p.trim_start_matches("internal/ui/mounts/");
                let acl = self.policies.acl(&entry.policies).await?;
                self.ui_mount_json(target, &acl).map(|d| Some(Response::with_data(d)))
            }
            ("plugins/catalog", Operation::Read) => Ok(Some(Response::with_data(self.catalog_json().await?))),
            (p, op) if p.starts_with("plugins/catalog/") => {
                let rest = p.trim_start_matches("plugins/catalog/");
                match (rest.split_once('/'), op) {
                    (None, Operation::List | Operation::Read) => {
                        let mut keys = self.catalog_list(rest).await?;
                        if rest == "secret" || rest == "auth" {
                            keys.extend(self.config.backend_factory.as_ref().map(|f| f.builtin_names(rest == "auth")).unwrap_or_default());
                        }
                        if rest == "database" {
                            keys.extend(crate::catalog::BUILTIN_DATABASE_PLUGINS.iter().map(|n| n.to_string()));
                        }
                        keys.sort();
                        keys.dedup();
                        Ok(Some(Response::list(keys)))
                    }
                    (Some((kind, name)), Operation::Read) => {
                        let Some(e) = self.catalog_get(kind, name).await? else {
                            // A built-in plugin answers as Vault's built-ins do (`plugin info secret kv`).
                            let builtin = (matches!(kind, "secret" | "auth")
                                && self.config.backend_factory.as_ref().is_some_and(|f| f.builtin_names(kind == "auth").iter().any(|n| n == name)))
                                || (kind == "database" && crate::catalog::BUILTIN_DATABASE_PLUGINS.contains(&name));
                            if !builtin {
                                return Err(Error::NotFound);
                            }
                            return Ok(Some(Response::with_data(crate::util::obj([
                                ("args", Value::Null),
                                ("builtin", json!(true)),
                                ("command", json!("")),
                                ("declarative", json!(false)),
                                ("deprecation_status", json!("supported")),
                                ("name", json!(name)),
                                ("oci", json!(false)),
                                ("sha256", json!("")),
                                ("version", json!(format!("v{}+builtin.tresor", crate::VERSION))),
                            ]))));
                        };
                        Ok(Some(Response::with_data(crate::util::obj([
                            ("args", json!([])),
                            ("builtin", json!(false)),
                            ("command", json!(e.command)),
                            ("deprecation_status", json!("supported")),
                            ("name", json!(e.name)),
                            ("sha256", json!(e.sha256)),
                            ("version", json!(e.version)),
                        ]))))
                    }
                    (Some((kind, name)), Operation::Update | Operation::Create) => {
                        self.catalog_register(kind, name, &request.data).await?;
                        Ok(None)
                    }
                    (Some((kind, name)), Operation::Delete) => {
                        self.catalog_delete(kind, name).await?;
                        Ok(None)
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            ("plugins/reload/backend", Operation::Update | Operation::Create) => {
                let plugin = request.get_str("plugin").unwrap_or("").to_string();
                let mounts: Vec<String> = match request.data.get("mounts") {
                    Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                    Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                    _ => Vec::new(),
                };
                if plugin.is_empty() && mounts.is_empty() {
                    return Err(Error::invalid("plugin or mounts must be provided"));
                }
                if !plugin.is_empty() && !mounts.is_empty() {
                    return Err(Error::invalid("plugin and mounts cannot be set at the same time"));
                }
                if !plugin.is_empty() && !self.plugin_known(&plugin).await? {
                    return Err(Error::invalid(format!("plugin not found in the catalog: {plugin:?}")));
                }
                let name = if plugin.is_empty() {
                    let first = match self.mount_settings(false, &mounts[0]).await? {
                        Some(m) => m,
                        None => self
                            .mount_settings(true, mounts[0].trim_start_matches("auth/"))
                            .await?
                            .ok_or_else(|| Error::invalid("no such mount"))?,
                    };
                    first.kind
                } else {
                    plugin
                };
                let n = self.reload_plugin(&name, &mounts).await?;
                // As Vault, the reload is named by the request's id; Tresor also says how many
                // mounts now run the plugin's registered build (reloads finish before the answer).
                Ok(Some(Response::with_data(crate::util::obj([("reload_id", json!(request.id)), ("reloaded_mounts", json!(n))]))))
            }
            ("remount", Operation::Update | Operation::Create) => {
                let from = request.get_str("from").ok_or_else(|| Error::invalid("missing 'from'"))?.to_string();
                let to = request.get_str("to").ok_or_else(|| Error::invalid("missing 'to'"))?.to_string();
                self.remount(&from, &to).await?;
                let id = uuid::Uuid::new_v4().to_string();
                if let Ok(mut done) = self.remounts.lock() {
                    done.insert(id.clone(), (from.trim_matches('/').to_string() + "/", to.trim_matches('/').to_string() + "/"));
                }
                Ok(Some(
                    Response::with_data(crate::util::obj([("migration_id", json!(id))]))
                        .warn("Mount move has been queued. Progress will be reported in the server log, tagged with the returned migration_id"),
                ))
            }
            (p, Operation::Read) if p.starts_with("remount/status/") => {
                let id = p.trim_start_matches("remount/status/");
                let entry = self.remounts.lock().ok().and_then(|m| m.get(id).cloned());
                let (from, to) = entry.ok_or_else(|| Error::invalid(format!("Did not find migration info for migration ID {id:?}")))?;
                Ok(Some(Response::with_data(crate::util::obj([
                    ("migration_id", json!(id)),
                    ("migration_info", json!({"source_mount": from, "target_mount": to, "status": "success"})),
                ]))))
            }
            ("internal/ui/resultant-acl", Operation::Read) => {
                let acl = self.policies.acl(&entry.policies).await?;
                Ok(Some(Response::with_data(acl.resultant())))
            }
            ("internal/specs/openapi", Operation::Read) => Ok(Some(Response::with_data(self.openapi()?))),
            ("internal/ui/mounts", Operation::Read) => {
                let acl = self.policies.acl(&entry.policies).await?;
                let visible = |m: Map, prefix: &str| -> Map {
                    m.into_iter()
                        .filter(|(k, v)| acl.has_mount_access(&format!("{prefix}{k}")) || v["config"]["listing_visibility"] == "unauth")
                        .collect()
                };
                let mut data = Map::new();
                data.insert("secret".into(), Value::Object(visible(self.mounts_json(false)?, "")));
                data.insert("auth".into(), Value::Object(visible(self.mounts_json(true)?, "auth/")));
                Ok(Some(Response::with_data(data)))
            }
            ("init" | "seal-status" | "unseal" | "health" | "leader" | "key-status" | "rotate" | "seal" | "step-down"
            | "rotate/config" | "rotate/keyring/config" | "rotate/keyring" | "rekey/backup" | "rekey/recovery-key-backup"
            | "generate-root-token/attempt" | "generate-root-token/update" | "rotate/root/init" | "rotate/root/update" | "rotate/root/verify"
            | "rotate/root" | "rotate/root/backup" | "ha-status" | "version-history" | "config/auditing/request-headers" | "config/cors" | "loggers"
            | "mounts" | "auth" | "policy" | "policies/acl" | "capabilities" | "capabilities-self" | "capabilities-accessor", _) => {
                Err(Error::UnsupportedOperation)
            }
            _ => Err(Error::UnsupportedPath),
        }
    }

    /// The unauthenticated `sys/internal/ui/mounts`: mounts tuned `listing_visibility=unauth`,
    /// with their type, description and options only.
    pub(crate) fn ui_mounts_unauthenticated(&self) -> Result<Response, Error> {
        let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        let mut data = Map::new();
        for auth in [false, true] {
            let listed: Map = router
                .entries()
                .filter(|m| m.is_auth() == auth && m.config.listing_visibility == "unauth")
                .map(|m| {
                    let key = if auth { m.path.trim_start_matches("auth/").to_string() } else { m.path.clone() };
                    let options = m.options.clone().map_or(Value::Null, Value::Object);
                    (key, json!({"type": m.kind, "description": m.description, "options": options}))
                })
                .collect();
            data.insert(if auth { "auth" } else { "secret" }.into(), Value::Object(listed));
        }
        Ok(Response::with_data(data))
    }

    fn mounts_json(&self, auth: bool) -> Result<Map, Error> {
        let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        Ok(router.mounts_json(auth))
    }

    /// `sys/internal/ui/mounts/<path>`: the mount serving `path`, with its `path` (used by `bao kv` to
    /// find the KV version and mount point).
    fn ui_mount_json(&self, target: &str, acl: &crate::acl::Acl) -> Result<Map, Error> {
        let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        let probe = if target.ends_with('/') { target.to_string() } else { format!("{target}/") };
        let preflight = || Error::Denied(format!("preflight capability check returned 403, please ensure client's policies grant access to path \"{target}/\""));
        let (mount, _) = router.route(&probe).ok_or_else(preflight)?;
        if !acl.has_mount_access(&mount.path) && mount.config.listing_visibility != "unauth" {
            return Err(preflight());
        }
        match mount.to_json() {
            Value::Object(mut map) => {
                map.insert("path".into(), json!(mount.path));
                Ok(map)
            }
            _ => Err(Error::Internal("mount entry is not an object".into())),
        }
    }

    async fn tune_json(&self, auth: bool, path: &str) -> Result<Map, Error> {
        let mount = format!("{}/", path.trim_matches('/'));
        let full = if auth { format!("auth/{mount}") } else { mount.clone() };
        let (description, options, default_ttl, max_ttl, extra) = match self.mount_settings(auth, &mount).await? {
            Some(s) => {
                let mut extra = s.config.to_map(auth);
                extra.extend(s.sandbox_config());
                (
                    s.description.clone(),
                    s.options.clone(),
                    s.effective_default_ttl(self.config.default_lease_ttl),
                    s.effective_max_ttl(self.config.max_lease_ttl),
                    extra,
                )
            }
            None => {
                let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
                let m = router.get(&full).ok_or_else(|| Error::invalid(format!("cannot fetch sysview for path {mount:?}")))?;
                let ttl = |tuned: u64, system: u64| if tuned > 0 { tuned } else { system };
                (
                    m.description.clone(),
                    m.options.clone().unwrap_or_default(),
                    ttl(m.default_lease_ttl, self.config.default_lease_ttl),
                    ttl(m.max_lease_ttl, self.config.max_lease_ttl),
                    m.config.to_map(auth),
                )
            }
        };
        let mut out = crate::util::obj([
            ("default_lease_ttl", json!(default_ttl)),
            ("description", json!(description)),
            ("max_lease_ttl", json!(max_ttl)),
        ]);
        // As Vault: options only when the mount has some.
        if !options.is_empty() {
            out.insert("options".into(), Value::Object(options));
        }
        out.extend(extra);
        Ok(out)
    }

    /// `sys/internal/specs/openapi`: every plugin mount's declared paths, from the host's copy of the spec.
    fn openapi(&self) -> Result<Map, Error> {
        let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        let mut paths = Map::new();
        for (mount, backend) in router.plugin_backends() {
            if let Some(spec) = backend.spec() {
                paths.extend(tresor_logical::framework::openapi_paths(&mount, &spec));
            }
        }
        Ok(crate::util::obj([
            ("openapi", json!("3.0.2")),
            ("info", json!({"title": "Tresor API", "description": "HTTP API of Tresor (Vault-compatible)", "version": crate::VERSION})),
            ("paths", Value::Object(paths)),
            ("components", json!({"schemas": {}})),
        ]))
    }

    fn mount_json(&self, path: &str) -> Result<Map, Error> {
        let router = self.router.read().map_err(|_| Error::Internal("router lock poisoned".into()))?;
        match router.get(path).map(|m| m.to_json()) {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(Error::invalid(match path.strip_prefix("auth/") {
                Some(p) => format!("No auth engine at {p}"),
                None => format!("No secret engine mount at {path}"),
            })),
        }
    }
}

/// `?help=1` on one of the core's own mounts (`sys/`, `auth/token/`, `cubbyhole/`): the request
/// and a synopsis of the path. These paths are Vault's; their full reference is Vault's and
/// OpenBao's API documentation.
pub(crate) fn core_help_response(mount: &crate::router::MountEntry, path: &str) -> Response {
    const SYNOPSES: &[(&str, &str)] = &[
        ("mounts", "List the currently mounted backends; mount, tune, read and unmount them."),
        ("auth", "List the currently enabled credential backends; enable, tune and disable them."),
        ("remount", "Move the mount point of an already-mounted backend."),
        ("policy", "List, read, write and delete policies (legacy path)."),
        ("policies/acl", "List, read, write and delete ACL policies."),
        ("policies/password", "List, read, write and delete password policies; generate passwords from them."),
        ("capabilities", "Fetch the capabilities of a token on the given paths."),
        ("capabilities-self", "Fetch the capabilities of the calling token on the given paths."),
        ("capabilities-accessor", "Fetch the capabilities of the token with the given accessor on the given paths."),
        ("audit", "List, enable and disable audit devices."),
        ("audit-hash", "Hash a value with an audit device's salt."),
        ("plugins/catalog", "List, register, read and remove plugins in the catalog."),
        ("plugins/reload/backend", "Reload mounts running a plugin."),
        ("leases", "Look up, renew and revoke leases."),
        ("wrapping", "Wrap, look up, rewrap and unwrap response-wrapping tokens."),
        ("tools", "Generate random bytes and hashes."),
        ("seal-status", "The seal status of the server."),
        ("seal", "Seal the server."),
        ("unseal", "Unseal the server with a key share."),
        ("init", "Initialize the server."),
        ("health", "The health status of the server."),
        ("key-status", "The status of the encryption key of the barrier."),
        ("rotate", "Rotate the encryption key of the barrier."),
        ("rotate/config", "Configure automatic rotation of the barrier's encryption key."),
        ("rotate/root", "Rekey: replace the unseal key shares, given a quorum of the current ones."),
        ("generate-root-token", "Generate a root token from a quorum of unseal key shares."),
        ("step-down", "Give up active duty (a single server has no standby: nothing happens)."),
        ("internal/ui/mounts", "The mounts visible to the caller (used by clients to find KV versions)."),
        ("internal/specs/openapi", "The OpenAPI document of the mounted plugins' paths."),
        ("create", "Create a token."),
        ("lookup", "Look up a token's properties."),
        ("renew", "Renew a token."),
        ("revoke", "Revoke a token and its children."),
        ("roles", "List, read, write and delete token roles."),
        ("accessors", "List token accessors."),
        ("tidy", "Clean up the token store's indexes."),
    ];
    let synopsis = SYNOPSES
        .iter()
        .filter(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")) || path.starts_with(&format!("{prefix}-")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or(mount.description.as_str(), |(_, s)| s);
    let help = format!(
        "Request:        {path}\nMatching Route: ^{}$\n\n{synopsis}\n\n## DESCRIPTION\n\nA path of the {} backend, built into the host (not a plugin). It follows Vault's HTTP API; see Vault's and OpenBao's API documentation for its parameters.\n",
        regex_escape(path),
        mount.kind,
    );
    help_document(help, None)
}

/// `text` with regular-expression metacharacters escaped (for the "Matching Route" line).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Vault's `?help=1` document: the help text, the OpenAPI paths it covers (relative to the mount;
/// none for the core's own paths) and `see_also`.
fn help_document(help: String, paths: Option<Map>) -> Response {
    let openapi = paths.map_or(Value::Null, |paths| json!({"openapi": "3.0.2", "paths": paths}));
    Response::with_data(crate::util::obj([("help", json!(help)), ("openapi", openapi), ("see_also", Value::Null)]))
}

/// `?help=1` on a plugin mount: the matched path's help and OpenAPI, without running guest code.
pub(crate) fn help_response(backend: &dyn tresor_logical::LogicalBackend, path: &str) -> Result<Option<Response>, Error> {
    use tresor_logical::framework::{backend_help_text, help_text, match_path, openapi_paths};
    let spec = backend.spec().ok_or(Error::UnsupportedOperation)?;
    // At the mount's root, Vault describes the backend and lists its paths.
    if path.is_empty()
        && let Some(help) = backend.backend_help()
    {
        return Ok(Some(help_document(backend_help_text(&help, &spec), Some(openapi_paths("", &spec)))));
    }
    let matched = &spec[match_path(&spec, path).ok_or(Error::UnsupportedPath)?.index];
    Ok(Some(help_document(help_text(matched, path), Some(openapi_paths("", std::slice::from_ref(matched))))))
}
