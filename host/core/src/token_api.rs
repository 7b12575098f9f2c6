//! The `auth/token/` backend (native host code, API.md §5): create, lookup, renew, revoke, accessors and
//! token roles. Policy rules for children: a child carries a subset of its parent's policies unless the
//! parent is root or has `sudo` on the path; only root may mint root tokens; limited-use tokens cannot
//! have children.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tresor_logical::{Error, Map, Operation, Request, Response, ResponseAuth};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::token::{NewToken, TokenEntry, TokenRole};
use crate::util::{field, now_unix, obj, rfc3339};

/// What the pipeline knows about the caller of a token endpoint.
pub(crate) struct Caller<'a> {
    pub entry: &'a TokenEntry,
    /// The caller's own token (lookup-self shows it back as `id`).
    pub token: &'a str,
    /// The ACL grants `sudo` on the requested path (or the token is root).
    pub sudo: bool,
}

/// `token-<name>`, sanitised as Vault does.
fn display_name(prefix: &str, name: &str) -> String {
    if name.is_empty() {
        return prefix.to_string();
    }
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' }).collect();
    format!("{prefix}-{}", clean.to_lowercase())
}

/// What a batch token cannot have, refused with Vault's texts.
pub(crate) fn refuse_for_batch(num_uses: u64, period: u64, explicit_max_ttl: u64) -> Result<(), Error> {
    for (set, name) in [(num_uses > 0, "num_uses"), (period > 0, "period"), (explicit_max_ttl > 0, "explicit_max_ttl")] {
        if set {
            return Err(Error::invalid(format!("batch tokens cannot have {name:?} set")));
        }
    }
    Ok(())
}

const BATCH_NO_REVOKE: &str = "batch tokens cannot be revoked";
/// Vault's text (its multierror rendering) for the accessor endpoints.
const MISSING_ACCESSOR: &str = "1 error occurred:\n\t* missing accessor\n\n";

fn glob_any(globs: &[String], s: &str) -> bool {
    globs.iter().any(|g| match g.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => g == s,
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The lookup shape of API.md §5.2.
pub(crate) fn token_json(entry: &TokenEntry, id: &str) -> Map {
    let now = now_unix();
    let mut m = obj([
        ("accessor", json!(entry.accessor)),
        ("creation_time", json!(entry.creation_time)),
        ("creation_ttl", json!(entry.ttl)),
        ("display_name", json!(entry.display_name)),
        ("entity_id", json!("")),
        ("expire_time", if entry.expire_time > 0 { json!(rfc3339(entry.expire_time)) } else { Value::Null }),
        ("explicit_max_ttl", json!(entry.explicit_max_ttl)),
        ("id", json!(id)),
        ("issue_time", json!(rfc3339(entry.creation_time))),
        ("meta", if entry.meta.is_empty() { Value::Null } else { json!(entry.meta) }),
        ("num_uses", json!(entry.num_uses.max(0))),
        ("orphan", json!(entry.parent.is_none())),
        ("path", json!(entry.path)),
        ("policies", json!(entry.policies)),
        ("renewable", json!(entry.renewable)),
        ("ttl", json!(entry.remaining(now))),
        ("type", json!(if entry.batch { "batch" } else { "service" })),
    ]);
    if entry.period > 0 {
        m.insert("period".into(), json!(entry.period));
    }
    if let Some(t) = entry.last_renewal_time {
        m.insert("last_renewal".into(), json!(rfc3339(t)));
        m.insert("last_renewal_time".into(), json!(t));
    }
    if !entry.bound_cidrs.is_empty() {
        m.insert("bound_cidrs".into(), json!(entry.bound_cidrs));
    }
    if let Some(role) = &entry.role {
        m.insert("role".into(), json!(role));
    }
    m
}

/// The `auth` block for a token.
pub(crate) fn auth_block(entry: &TokenEntry, token: &str) -> ResponseAuth {
    let token_policies = entry.policies.clone();
    ResponseAuth {
        client_token: token.to_string(),
        accessor: entry.accessor.clone(),
        policies: entry.policies.clone(),
        token_policies,
        metadata: (!entry.meta.is_empty()).then(|| entry.meta.clone()),
        lease_duration: entry.remaining(now_unix()),
        renewable: entry.renewable && entry.expire_time > 0,
        token_type: if entry.batch { "batch" } else { "service" }.into(),
        orphan: entry.parent.is_none(),
        num_uses: entry.num_uses.max(0) as u64,
    }
}

/// Vault's (unanchored) check of a role's `path_suffix`: somewhere in it, `\w[\w-.]+\w` — a
/// run of word characters, dashes and dots at least three long that starts and ends with a word
/// character.
fn path_suffix_ok(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    s.as_bytes().split(|b| !(word(*b) || *b == b'-' || *b == b'.')).any(|run| {
        match (run.iter().position(|b| word(*b)), run.iter().rposition(|b| word(*b))) {
            (Some(first), Some(last)) => last >= first + 2,
            _ => false,
        }
    })
}

fn role_json(r: &TokenRole) -> Map {
    let mut m = obj([
        ("allowed_entity_aliases", json!(r.allowed_entity_aliases)),
        ("allowed_policies", json!(r.allowed_policies)),
        ("allowed_policies_glob", json!(r.allowed_policies_glob)),
        ("disallowed_policies", json!(r.disallowed_policies)),
        ("disallowed_policies_glob", json!(r.disallowed_policies_glob)),
        ("explicit_max_ttl", json!(r.token_explicit_max_ttl)),
        ("name", json!(r.name)),
        ("orphan", json!(r.orphan)),
        ("path_suffix", json!(r.path_suffix)),
        ("period", json!(r.token_period)),
        ("renewable", json!(r.renewable)),
        ("token_explicit_max_ttl", json!(r.token_explicit_max_ttl)),
        ("token_no_default_policy", json!(r.token_no_default_policy)),
        ("token_period", json!(r.token_period)),
        ("token_type", json!(if r.token_type.is_empty() { "default-service" } else { r.token_type.as_str() })),
    ]);
    // As Vault: these appear only when set (token_ttl / token_max_ttl are Tresor's additions).
    if !r.token_bound_cidrs.is_empty() {
        m.insert("token_bound_cidrs".into(), json!(r.token_bound_cidrs));
    }
    if r.token_num_uses > 0 {
        m.insert("token_num_uses".into(), json!(r.token_num_uses));
    }
    if r.token_ttl > 0 {
        m.insert("token_ttl".into(), json!(r.token_ttl));
    }
    if r.token_max_ttl > 0 {
        m.insert("token_max_ttl".into(), json!(r.token_max_ttl));
    }
    m
}

impl Core {
    /// `auth/token/*`.
    pub(crate) async fn handle_token(&self, caller: &Caller<'_>, request: Request) -> Result<Option<Response>, Error> {
        let op = request.operation;
        let write = matches!(op, Operation::Update | Operation::Create);
        let data = &request.data;
        let path = request.path.trim_end_matches('/');
        match (path, op) {
            ("create", _) if write => self.token_create(caller, data, None, false).await,
            ("create-orphan", _) if write => self.token_create(caller, data, None, true).await,
            (p, _) if write && p.starts_with("create/") => self.token_create(caller, data, Some(&p["create/".len()..]), false).await,
            ("lookup-self", _) if op == Operation::Read || write => {
                Ok(Some(Response::with_data(token_json(caller.entry, caller.token))))
            }
            ("lookup", Operation::Read) | ("lookup", Operation::Update | Operation::Create) => {
                let token = field::str(data, "token")?.unwrap_or("");
                if token.is_empty() {
                    // As Vault: no token named is the caller's own.
                    return Ok(Some(Response::with_data(token_json(caller.entry, caller.token))));
                }
                let entry = self.tokens.lookup(token).await?.ok_or_else(|| Error::Denied("bad token".into()))?;
                Ok(Some(Response::with_data(token_json(&entry, token))))
            }
            ("lookup-accessor", _) if write => {
                let entry = self.by_accessor(data).await?;
                Ok(Some(Response::with_data(token_json(&entry, ""))))
            }
            ("renew-self", _) if write => self.token_renew(caller.entry, caller.token, data).await,
            ("renew", _) if write => {
                let token = field::str(data, "token")?.unwrap_or("").to_string();
                if token.is_empty() {
                    return Err(Error::invalid("missing token ID"));
                }
                let entry = self.tokens.lookup(&token).await?.ok_or_else(|| Error::invalid("token not found"))?;
                self.token_renew(&entry, &token, data).await
            }
            ("renew-accessor", _) if write => {
                let entry = self.by_accessor(data).await?;
                self.token_renew(&entry, "", data).await
            }
            ("revoke-self", _) if write => {
                if caller.entry.batch {
                    return Err(Error::invalid(BATCH_NO_REVOKE));
                }
                self.revoke_token_tree(&caller.entry.id_hash).await?;
                Ok(None)
            }
            ("revoke", _) if write => {
                let token = field::str(data, "token")?.unwrap_or("");
                if token.is_empty() {
                    return Err(Error::invalid("missing token ID"));
                }
                // Vault answers 204 for unknown tokens: revocation is idempotent.
                if let Some(entry) = self.tokens.lookup(token).await? {
                    if entry.batch {
                        return Err(Error::invalid(BATCH_NO_REVOKE));
                    }
                    self.revoke_token_tree(&entry.id_hash).await?;
                }
                Ok(None)
            }
            ("revoke-orphan", _) if write => {
                if !caller.sudo {
                    return Err(Error::invalid("root or sudo privileges required to revoke and orphan"));
                }
                let token = field::str(data, "token")?.unwrap_or("");
                if token.is_empty() {
                    return Err(Error::invalid("missing token ID"));
                }
                let entry = self.tokens.lookup(token).await?.ok_or_else(|| Error::invalid("token to revoke not found"))?;
                if entry.batch {
                    return Err(Error::invalid(BATCH_NO_REVOKE));
                }
                self.tokens.revoke_orphan(&entry.id_hash).await?;
                self.cubbyhole_destroy(&[entry.id_hash]).await?;
                Ok(None)
            }
            ("revoke-accessor", _) if write => {
                let accessor = field::str(data, "accessor")?.unwrap_or("");
                if accessor.is_empty() {
                    return Err(Error::invalid(MISSING_ACCESSOR));
                }
                match self.tokens.lookup_accessor(accessor).await? {
                    Some(entry) => {
                        self.revoke_token_tree(&entry.id_hash).await?;
                        Ok(None)
                    }
                    None => Ok(Some(Response::default().warn("No token found with this accessor"))),
                }
            }
            ("tidy", _) if write => {
                let report = self.tokens.tidy(crate::util::now_unix()).await?;
                for hash in &report.revoke {
                    self.revoke_token_tree(hash).await?;
                }
                tracing::info!(
                    accessors_removed = report.accessors_removed,
                    parent_links_removed = report.links_removed,
                    tokens_revoked = report.revoke.len(),
                    "token store tidied"
                );
                // As Vault (whose tidy runs in the background, hence its wording); here it has
                // finished when the answer comes.
                let mut response = Response::default().warn("Tidy operation successfully started. Any information from the operation will be printed to Tresor's server logs.");
                response.status = Some(202);
                Ok(Some(response))
            }
            ("accessors", Operation::List) => {
                let keys = self.tokens.accessors().await?;
                if keys.is_empty() {
                    return Err(Error::NotFound);
                }
                Ok(Some(Response::list(keys)))
            }
            ("roles", Operation::List) => {
                let keys = self.tokens.roles().await?;
                if keys.is_empty() {
                    return Err(Error::NotFound);
                }
                Ok(Some(Response::list(keys)))
            }
            (p, _) if p.starts_with("roles/") => {
                let name = &p["roles/".len()..];
                if name.is_empty() || name.contains('/') {
                    return Err(Error::UnsupportedPath);
                }
                match op {
                    Operation::Read => Ok(Some(Response::with_data(role_json(&self.tokens.role(name).await?.ok_or(Error::NotFound)?)))),
                    Operation::Delete => {
                        self.tokens.delete_role(name).await?;
                        Ok(None)
                    }
                    _ if write => {
                        let existing = self.tokens.role(name).await?;
                        let role = role_from(name, existing, data)?;
                        self.tokens.put_role(&role).await?;
                        Ok(None)
                    }
                    _ => Err(Error::UnsupportedOperation),
                }
            }
            (
                "create" | "create-orphan" | "lookup-accessor" | "renew-self" | "renew" | "renew-accessor" | "revoke-self" | "revoke"
                | "revoke-orphan" | "revoke-accessor" | "accessors" | "roles" | "lookup" | "lookup-self" | "tidy",
                _,
            ) => Err(Error::UnsupportedOperation),
            _ => Err(Error::UnsupportedPath),
        }
    }

    async fn by_accessor(&self, data: &Map) -> Result<TokenEntry, Error> {
        let accessor = field::str(data, "accessor")?.unwrap_or("");
        if accessor.is_empty() {
            return Err(Error::invalid(MISSING_ACCESSOR));
        }
        self.tokens.lookup_accessor(accessor).await?.ok_or_else(|| Error::invalid("1 error occurred:\n\t* invalid accessor\n\n"))
    }

    /// Revoke a token with its children, and destroy their cubbyholes.
    pub(crate) async fn revoke_token_tree(&self, id_hash: &str) -> Result<(), Error> {
        let revoked = self.tokens.revoke_tree(id_hash).await?;
        self.revoke_token_leases(&revoked).await?;
        self.cubbyhole_destroy(&revoked).await
    }

    async fn token_renew(&self, entry: &TokenEntry, token: &str, data: &Map) -> Result<Option<Response>, Error> {
        let increment = field::duration(data, "increment")
            .map_err(|e| Error::invalid(format!("Field validation failed: error converting input for field \"increment\": {e}")))?
            .unwrap_or(0);
        let renewed = self.tokens.renew(entry, increment).await?;
        Ok(Some(Response { auth: Some(auth_block(&renewed, token)), ..Response::default() }))
    }

    async fn token_create(&self, caller: &Caller<'_>, data: &Map, role_name: Option<&str>, orphan_path: bool) -> Result<Option<Response>, Error> {
        let parent = caller.entry;
        let privileged = parent.is_root() || caller.sudo;
        if parent.batch {
            return Err(Error::invalid("batch tokens cannot create more tokens"));
        }
        if parent.num_uses != 0 {
            return Err(Error::invalid("restricted use token cannot generate child tokens"));
        }
        let role = match role_name {
            Some(n) => Some(self.tokens.role(n).await?.ok_or_else(|| Error::invalid(format!("unknown role {n}")))?),
            None => None,
        };
        // The role's token_type decides, unless it is a `default-*` one and the request names a type.
        let role_type = role.as_ref().map_or("", |r| r.token_type.as_str());
        let batch = match (field::str(data, "type")?, role_type) {
            (None | Some("" | "default"), "batch" | "default-batch") => true,
            (None | Some("" | "default"), _) => false,
            (Some(asked @ "batch"), "service") | (Some(asked @ "service"), "batch") => {
                return Err(Error::invalid(format!("token type \"{asked}\" cannot be created through a role of token_type \"{role_type}\"")));
            }
            (Some("batch"), _) => true,
            (Some("service"), _) => false,
            (Some(_), _) => return Err(Error::invalid("invalid 'token_type' value")),
        };
        // Vault's early refusals, in its order (after the token type).
        if field::int(data, "num_uses").ok().flatten().is_some_and(|n| n < 0) {
            return Err(Error::invalid("number of uses cannot be negative"));
        }
        let negative = |v: &Value| v.as_i64().is_some_and(|n| n < 0) || v.as_str().is_some_and(|s| s.trim_start().starts_with('-'));
        if data.get("ttl").is_some_and(negative) {
            return Err(Error::invalid("ttl must be positive"));
        }
        let id = field::str(data, "id")?.filter(|s| !s.is_empty());
        if id.is_some() && !privileged {
            return Err(Error::invalid("root or sudo privileges required to specify token id"));
        }
        let no_parent = field::bool(data, "no_parent")?.unwrap_or(false);
        if no_parent && !privileged {
            return Err(Error::invalid("root or sudo privileges required to create orphan token"));
        }
        let no_default = field::bool(data, "no_default_policy")?.unwrap_or(false) || role.as_ref().is_some_and(|r| r.token_no_default_policy);
        let requested = field::str_list(data, "policies")?.unwrap_or_default();
        let requested: Vec<String> = requested.into_iter().map(|p| p.to_lowercase()).collect();

        let mut policies = match &role {
            Some(r) => {
                let allowed: Vec<String> = r.allowed_policies.iter().cloned().chain(["default".to_string()]).collect();
                let policies = if requested.is_empty() {
                    if r.allowed_policies.is_empty() && r.allowed_policies_glob.is_empty() {
                        parent.policies.clone()
                    } else {
                        r.allowed_policies.clone()
                    }
                } else {
                    requested.clone()
                };
                let constrained = !r.allowed_policies.is_empty() || !r.allowed_policies_glob.is_empty();
                for p in &policies {
                    let refused = r.disallowed_policies.contains(p) || glob_any(&r.disallowed_policies_glob, p);
                    let permitted = if constrained {
                        allowed.contains(p) || glob_any(&r.allowed_policies_glob, p)
                    } else {
                        privileged || p == "default" || parent.policies.contains(p)
                    };
                    if refused {
                        return Err(Error::invalid(format!("token policy {p:?} is disallowed by this role")));
                    }
                    if !permitted {
                        return Err(Error::invalid(format!(
                            "token policies ({:?}) must be subset of the role's allowed policies ({:?}) or glob policies ({:?})",
                            policies, sorted(allowed.clone()), r.allowed_policies_glob
                        )));
                    }
                }
                policies
            }
            None if requested.is_empty() => parent.policies.clone(),
            None => {
                if !privileged && requested.iter().any(|p| p != "default" && !parent.policies.contains(p)) {
                    return Err(Error::invalid("child policies must be subset of parent"));
                }
                requested
            }
        };
        if policies.iter().any(|p| p == "root") && !parent.is_root() {
            return Err(Error::invalid("root tokens may not be created without parent token being root"));
        }
        if no_default {
            policies.retain(|p| p != "default");
        } else if !policies.iter().any(|p| p == "root") {
            policies.push("default".into());
        }
        let policies = sorted(policies);

        let period = match (field::duration(data, "period")?, &role) {
            (Some(p), _) if p > 0 && !privileged => return Err(Error::invalid("root or sudo privileges required to create periodic token")),
            (Some(p), _) if p > 0 => p,
            (_, Some(r)) => r.token_period,
            _ => 0,
        };
        let mut explicit_max_ttl = field::duration(data, "explicit_max_ttl")?.unwrap_or(0);
        if let Some(cap) = role.as_ref().map(|r| r.token_explicit_max_ttl).filter(|t| *t > 0)
            && (explicit_max_ttl == 0 || explicit_max_ttl > cap)
        {
            explicit_max_ttl = cap;
        }
        let requested_ttl = field::duration(data, "ttl")?.or_else(|| field::duration(data, "lease").ok().flatten()).unwrap_or(0);
        // The token mount's TTLs (tunable, as Vault's `auth/token/tune`), else the system's.
        let (mount_default_ttl, mount_max_ttl) = self.token_mount_ttls();
        let max_ttl = role.as_ref().map(|r| r.token_max_ttl).filter(|t| *t > 0).unwrap_or(mount_max_ttl).min(mount_max_ttl);
        let is_root_token = policies.iter().any(|p| p == "root");
        // The TTL the request (else the role, else the mount) proposes; none for a periodic token or
        // a root token without an explicit maximum.
        let proposed = if period > 0 || (requested_ttl == 0 && is_root_token && explicit_max_ttl == 0) {
            0
        } else if requested_ttl > 0 {
            requested_ttl
        } else {
            role.as_ref().map(|r| r.token_ttl).filter(|t| *t > 0).unwrap_or(mount_default_ttl)
        };
        let mut ttl = if period > 0 { period } else { proposed.min(max_ttl) };
        // Vault says so when the effective maximum cuts the proposed TTL.
        let cap = if explicit_max_ttl > 0 { max_ttl.min(explicit_max_ttl) } else { max_ttl };
        let capped_warning = (proposed > cap).then(|| crate::expiration::capped_warning("TTL", proposed, cap));
        if explicit_max_ttl > 0 {
            ttl = if ttl == 0 { explicit_max_ttl } else { ttl.min(explicit_max_ttl) };
        }
        let renewable = match field::bool(data, "renewable")? {
            Some(r) => r && role.as_ref().is_none_or(|r| r.renewable),
            None => role.as_ref().is_none_or(|r| r.renewable),
        };
        let num_uses = field::uint(data, "num_uses")?.unwrap_or(0).max(role.as_ref().map_or(0, |r| r.token_num_uses));
        if batch {
            refuse_for_batch(num_uses, period, explicit_max_ttl)?;
            if is_root_token {
                return Err(Error::invalid("batch tokens cannot be root tokens"));
            }
            if id.is_some() {
                return Err(Error::invalid("batch tokens cannot have a custom id"));
            }
        }
        // Through a role only the role decides (Vault ignores `no_parent` there).
        let orphan = orphan_path || role.as_ref().map_or(no_parent, |r| r.orphan);
        let meta: BTreeMap<String, String> = field::str_map(data, "meta")?.unwrap_or_default();
        let display = display_name("token", field::str(data, "display_name")?.unwrap_or(""));
        let path = match &role {
            Some(r) => match r.path_suffix.trim_matches('/') {
                "" => format!("auth/token/create/{}", r.name),
                suffix => format!("auth/token/create/{}/{suffix}", r.name),
            },
            None if orphan_path => "auth/token/create-orphan".into(),
            None => "auth/token/create".into(),
        };
        let (token, entry) = self
            .tokens
            .create(NewToken {
                id: id.map(|s| Zeroizing::new(s.to_string())),
                policies,
                path,
                display_name: display,
                meta,
                ttl,
                max_ttl: if period > 0 { 0 } else { max_ttl },
                explicit_max_ttl,
                period,
                renewable: renewable && !batch,
                num_uses,
                parent: (!orphan).then(|| parent.id_hash.clone()),
                bound_cidrs: role.as_ref().map(|r| r.token_bound_cidrs.clone()).unwrap_or_default(),
                role: role.as_ref().map(|r| r.name.clone()),
                login: None,
                batch,
            })
            .await?;
        let mut auth = auth_block(&entry, &token);
        if role.is_some() && entry.meta.is_empty() {
            auth.metadata = None;
        }
        // As Vault: the capped TTL first, then each policy that does not exist (yet): a token may
        // name one, and the answer says so.
        let mut warnings: Vec<String> = capped_warning.into_iter().collect();
        for name in &entry.policies {
            if !self.policies.exists(name).await? {
                warnings.push(format!("Policy {name:?} does not exist"));
            }
        }
        Ok(Some(Response { auth: Some(auth), warnings, ..Response::default() }))
    }
}

/// Build a role from request fields over its previous version.
fn role_from(name: &str, existing: Option<TokenRole>, data: &Map) -> Result<TokenRole, Error> {
    let mut r = existing.unwrap_or_else(|| TokenRole { name: name.to_string(), renewable: true, ..TokenRole::default() });
    let lower = |v: Vec<String>| sorted(v.into_iter().map(|p| p.to_lowercase()).collect());
    if let Some(v) = field::str_list(data, "allowed_policies")? {
        r.allowed_policies = lower(v);
    }
    if let Some(v) = field::str_list(data, "disallowed_policies")? {
        r.disallowed_policies = lower(v);
    }
    if let Some(v) = field::str_list(data, "allowed_policies_glob")? {
        r.allowed_policies_glob = lower(v);
    }
    if let Some(v) = field::str_list(data, "disallowed_policies_glob")? {
        r.disallowed_policies_glob = lower(v);
    }
    if let Some(v) = field::bool(data, "orphan")? {
        r.orphan = v;
    }
    if let Some(v) = field::bool(data, "renewable")? {
        r.renewable = v;
    }
    if let Some(v) = field::str(data, "path_suffix")? {
        if !v.is_empty() && !path_suffix_ok(v) {
            return Err(Error::invalid("given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w"));
        }
        r.path_suffix = v.to_string();
    }
    if let Some(v) = field::str_list(data, "allowed_entity_aliases")? {
        let mut aliases: Vec<String> = Vec::new();
        for a in v.into_iter().map(|a| a.to_lowercase()) {
            if !aliases.contains(&a) {
                aliases.push(a);
            }
        }
        r.allowed_entity_aliases = Some(aliases);
    }
    if let Some(v) = field::duration(data, "token_period")?.or(field::duration(data, "period")?) {
        r.token_period = v;
    }
    if let Some(v) = field::duration(data, "token_explicit_max_ttl")?.or(field::duration(data, "explicit_max_ttl")?) {
        r.token_explicit_max_ttl = v;
    }
    if let Some(v) = field::duration(data, "token_ttl")? {
        r.token_ttl = v;
    }
    if let Some(v) = field::duration(data, "token_max_ttl")? {
        r.token_max_ttl = v;
    }
    if let Some(v) = field::bool(data, "token_no_default_policy")? {
        r.token_no_default_policy = v;
    }
    if let Some(v) = field::uint(data, "token_num_uses")? {
        r.token_num_uses = v;
    }
    if let Some(v) = field::str_list(data, "token_bound_cidrs")? {
        if let Some(bad) = v.iter().find(|c| !crate::util::valid_cidr(c)) {
            return Err(Error::invalid(format!(
                "error parsing role fields: error parsing address {bad:?}: Unable to convert {bad:?} to an IPv4 or IPv6 address, or a UNIX Socket"
            )));
        }
        r.token_bound_cidrs = v;
    }
    if let Some(v) = field::str(data, "token_type")? {
        match v {
            "" | "default-service" => r.token_type = "default-service".into(),
            "service" | "batch" | "default-batch" => r.token_type = v.to_string(),
            _ => return Err(Error::invalid(format!("invalid 'token_type' value {v:?}"))),
        }
    }
    // Vault's rule: a role that only mints batch tokens mints orphans.
    if r.token_type == "batch" && !r.orphan {
        return Err(Error::invalid("'token_type' cannot be 'batch' when role is set to generate non-orphan tokens"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_prefixed_and_sanitised() {
        assert_eq!(display_name("token", ""), "token");
        assert_eq!(display_name("token", "Demo App"), "token-demo-app");
        assert_eq!(display_name("userpass", "alice"), "userpass-alice");
    }
}
