//! A token's policies compiled into one access-control list (API.md §16.2):
//!
//! * rules with the same pattern in several policies merge (capabilities union; `deny` anywhere → deny;
//!   parameter constraints merge permissively, as Vault does);
//! * for a request path, only the single highest-priority matching pattern applies: an exact pattern
//!   beats every wildcard pattern; among wildcard patterns the first wildcard occurring later wins, then
//!   not ending in `*`, then fewer `+` segments, then longer, then lexicographically larger.
//!
//! The priority order depends only on the patterns, so wildcard patterns are sorted once at compile
//! time and a check walks them until the first match; exact patterns are one hash lookup.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tresor_logical::{Map, Operation};

use crate::policy::{cap, Permissions, Policy};

/// A wildcard pattern with its precomputed priority keys.
#[derive(Debug, Clone)]
struct Pattern {
    raw: String,
    /// Byte index of the first `+` or `*`.
    first_wildcard: usize,
    /// Ends in `*` (prefix glob).
    glob: bool,
    /// Number of `+` segments.
    plus: usize,
    /// Segments (only used when `plus > 0`).
    segments: Vec<String>,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        let segments: Vec<String> = raw.split('/').map(str::to_string).collect();
        Self {
            first_wildcard: raw.find(['+', '*']).unwrap_or(raw.len()),
            glob: raw.ends_with('*'),
            plus: segments.iter().filter(|s| *s == "+").count(),
            segments,
            raw: raw.to_string(),
        }
    }

    fn is_exact(raw: &str) -> bool {
        !raw.ends_with('*') && !raw.split('/').any(|s| s == "+")
    }

    /// Higher is `Greater`.
    fn priority(&self, other: &Self) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| other.glob.cmp(&self.glob))
            .then_with(|| other.plus.cmp(&self.plus))
            .then_with(|| self.raw.len().cmp(&other.raw.len()))
            .then_with(|| self.raw.cmp(&other.raw))
    }

    fn matches(&self, path: &str) -> bool {
        if self.plus == 0 {
            // Only a trailing glob: a prefix match.
            return path.starts_with(&self.raw[..self.raw.len() - 1]);
        }
        let n = self.segments.len();
        let mut parts = path.split('/');
        for (i, seg) in self.segments.iter().enumerate() {
            let last = i + 1 == n;
            if last && self.glob {
                // The final segment's prefix, then anything (including further segments).
                let prefix = &seg[..seg.len() - 1];
                return parts.next().is_some_and(|p| p.starts_with(prefix));
            }
            let Some(part) = parts.next() else { return false };
            if seg != "+" && seg != part {
                return false;
            }
        }
        parts.next().is_none()
    }
}

/// The outcome of an ACL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// The operation is permitted (including parameter and wrapping constraints).
    pub allowed: bool,
    /// The matched rule grants `sudo` (or the token is root).
    pub sudo: bool,
    /// Capabilities of the matched rule.
    pub capabilities: u16,
}

/// A compiled ACL.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Permissions>,
    /// Highest priority first.
    wildcard: Vec<(Pattern, Permissions)>,
}

fn merge_params(into: &mut Option<BTreeMap<String, Vec<Value>>>, from: &Option<BTreeMap<String, Vec<Value>>>) {
    let Some(from) = from else { return };
    let target = into.get_or_insert_with(BTreeMap::new);
    for (k, v) in from {
        match target.get_mut(k) {
            // An empty list means "any value": it absorbs the other side.
            Some(existing) if existing.is_empty() || v.is_empty() => existing.clear(),
            Some(existing) => existing.extend(v.iter().cloned()),
            None => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge(into: &mut Permissions, from: &Permissions) {
    if into.capabilities & cap::DENY != 0 || from.capabilities & cap::DENY != 0 {
        *into = Permissions { capabilities: cap::DENY, ..Permissions::default() };
        return;
    }
    into.capabilities |= from.capabilities;
    merge_params(&mut into.allowed_parameters, &from.allowed_parameters);
    merge_params(&mut into.denied_parameters, &from.denied_parameters);
    for r in &from.required_parameters {
        if !into.required_parameters.contains(r) {
            into.required_parameters.push(r.clone());
        }
    }
    if from.min_wrapping_ttl > 0 && (into.min_wrapping_ttl == 0 || from.min_wrapping_ttl < into.min_wrapping_ttl) {
        into.min_wrapping_ttl = from.min_wrapping_ttl;
    }
    if from.max_wrapping_ttl > into.max_wrapping_ttl {
        into.max_wrapping_ttl = from.max_wrapping_ttl;
    }
}

/// The capability an operation needs.
pub fn required_capability(op: Operation) -> u16 {
    match op {
        Operation::Read | Operation::Help => cap::READ,
        Operation::Create => cap::CREATE,
        Operation::Update => cap::UPDATE,
        Operation::Patch => cap::PATCH,
        Operation::Delete => cap::DELETE,
        Operation::List => cap::LIST,
    }
}

/// Vault's value matching: strings may carry a leading or trailing `*` glob; other values compare equal.
fn value_in(v: &Value, list: &[Value]) -> bool {
    if list.is_empty() {
        return true;
    }
    list.iter().any(|el| match (el, v) {
        (Value::String(pattern), Value::String(s)) => glob_match(pattern, s),
        _ => el == v,
    })
}

fn glob_match(pattern: &str, s: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') && !rest.is_empty() => s.contains(&rest[..rest.len() - 1]),
        (Some(suffix), _) => s.ends_with(suffix),
        (None, Some(prefix)) => s.starts_with(prefix),
        (None, None) => pattern == s,
    }
}

fn parameters_allowed(p: &Permissions, data: &Map) -> bool {
    for r in &p.required_parameters {
        if !data.keys().any(|k| k.to_lowercase() == *r) {
            return false;
        }
    }
    if data.is_empty() {
        return true;
    }
    if let Some(denied) = &p.denied_parameters
        && !denied.is_empty()
    {
        if denied.contains_key("*") {
            return false;
        }
        for (k, v) in data {
            if let Some(values) = denied.get(&k.to_lowercase())
                && value_in(v, values)
            {
                return false;
            }
        }
    }
    let Some(allowed) = &p.allowed_parameters else { return true };
    if allowed.is_empty() {
        return true;
    }
    let any_key = allowed.contains_key("*");
    if any_key && allowed.len() == 1 {
        return true;
    }
    data.iter().all(|(k, v)| match allowed.get(&k.to_lowercase()) {
        Some(values) => value_in(v, values),
        None => any_key,
    })
}

impl Acl {
    /// The ACL of a token carrying `policies` (the `root` policy bypasses everything).
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        let mut acl = Self::default();
        let mut wildcard: HashMap<String, Permissions> = HashMap::new();
        for policy in policies {
            if policy.name == "root" {
                acl.root = true;
            }
            for rule in &policy.rules {
                // Identity templates cannot be resolved without an identity store: such rules match nothing.
                if rule.pattern.contains("{{") {
                    continue;
                }
                let table = if Pattern::is_exact(&rule.pattern) { &mut acl.exact } else { &mut wildcard };
                match table.get_mut(&rule.pattern) {
                    Some(existing) => merge(existing, &rule.permissions),
                    None => {
                        table.insert(rule.pattern.clone(), rule.permissions.clone());
                    }
                }
            }
        }
        acl.wildcard = wildcard.into_iter().map(|(k, v)| (Pattern::new(&k), v)).collect();
        acl.wildcard.sort_by(|a, b| b.0.priority(&a.0));
        acl
    }

    /// An ACL for the root policy alone.
    pub fn root() -> Self {
        Self { root: true, ..Self::default() }
    }

    /// Whether this ACL is root's.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The rule that governs `path`, if any.
    fn governing(&self, path: &str) -> Option<&Permissions> {
        if let Some(p) = self.exact.get(path) {
            return Some(p);
        }
        self.wildcard.iter().find(|(pat, _)| pat.matches(path)).map(|(_, p)| p)
    }

    /// `sys/internal/ui/resultant-acl`: what the merged policies grant, as Vault describes it
    /// (exact paths, and prefix globs under their prefix; `+` patterns are not listed, as Vault's).
    pub fn resultant(&self) -> Map {
        let mut data = Map::new();
        data.insert("root".into(), Value::Bool(self.root));
        if self.root {
            return data;
        }
        fn describe(p: &Permissions) -> Value {
            let mut out = Map::new();
            let bits = if p.capabilities == 0 { cap::DENY } else { p.capabilities };
            out.insert("capabilities".into(), serde_json::json!(cap::names(bits)));
            for (key, params) in [("allowed_parameters", &p.allowed_parameters), ("denied_parameters", &p.denied_parameters)] {
                if let Some(params) = params.as_ref().filter(|m| !m.is_empty()) {
                    out.insert(key.into(), serde_json::json!(params));
                }
            }
            if !p.required_parameters.is_empty() {
                out.insert("required_parameters".into(), serde_json::json!(p.required_parameters));
            }
            if p.min_wrapping_ttl > 0 {
                out.insert("min_wrapping_ttl".into(), serde_json::json!(p.min_wrapping_ttl));
            }
            if p.max_wrapping_ttl > 0 {
                out.insert("max_wrapping_ttl".into(), serde_json::json!(p.max_wrapping_ttl));
            }
            Value::Object(out)
        }
        let exact: Map = self.exact.iter().map(|(path, p)| (path.clone(), describe(p))).collect();
        let glob: Map = self
            .wildcard
            .iter()
            .filter(|(pat, _)| pat.plus == 0 && pat.glob)
            .map(|(pat, p)| (pat.raw[..pat.raw.len() - 1].to_string(), describe(p)))
            .collect();
        data.insert("exact_paths".into(), Value::Object(exact));
        data.insert("glob_paths".into(), Value::Object(glob));
        data
    }

    /// Capabilities on `path` (bits); root has all.
    pub fn capabilities(&self, path: &str) -> Option<u16> {
        if self.root {
            return None;
        }
        Some(self.governing(path).map_or(cap::DENY, |p| if p.capabilities == 0 { cap::DENY } else { p.capabilities }))
    }

    /// `sys/capabilities` names: `["root"]`, `["deny"]` or the sorted capabilities.
    pub fn capability_names(&self, path: &str) -> Vec<String> {
        match self.capabilities(path) {
            None => vec!["root".into()],
            Some(bits) => cap::names(bits),
        }
    }

    /// May `op` with `data` (top-level body keys) and the requested wrapping TTL run on `path`?
    pub fn check(&self, path: &str, op: Operation, data: &Map, wrap_ttl: Option<u64>) -> Decision {
        if self.root {
            return Decision { allowed: true, sudo: true, capabilities: u16::MAX };
        }
        let Some(p) = self.governing(path) else { return Decision::default() };
        let caps = p.capabilities;
        let denied = Decision { allowed: false, sudo: false, capabilities: caps };
        if caps & cap::DENY != 0 || caps & required_capability(op) == 0 {
            return denied;
        }
        let sudo = caps & cap::SUDO != 0;
        if p.min_wrapping_ttl > 0 && wrap_ttl.is_none_or(|t| t < p.min_wrapping_ttl) {
            return denied;
        }
        if p.max_wrapping_ttl > 0 && wrap_ttl.is_none_or(|t| t > p.max_wrapping_ttl) {
            return denied;
        }
        if matches!(op, Operation::Read | Operation::Create | Operation::Update | Operation::Patch) && !parameters_allowed(p, data) {
            return Decision { allowed: false, sudo, capabilities: caps };
        }
        Decision { allowed: true, sudo, capabilities: caps }
    }

    /// Whether any rule grants something (not `deny`) inside the mount at `mount_path` (`secret/`):
    /// what `sys/internal/ui/mounts` needs before it describes a mount to a token.
    pub fn has_mount_access(&self, mount_path: &str) -> bool {
        if self.root {
            return true;
        }
        let grants = |p: &Permissions| p.capabilities & cap::DENY == 0 && p.capabilities != 0;
        let literal = |pattern: &str| pattern.split(['*', '+']).next().unwrap_or("").to_string();
        self.exact.iter().any(|(k, p)| grants(p) && (k.starts_with(mount_path) || format!("{k}/") == mount_path))
            || self.wildcard.iter().any(|(pat, p)| {
                let lit = literal(&pat.raw);
                grants(p) && (lit.starts_with(mount_path) || mount_path.starts_with(&lit))
            })
    }

    /// Whether `op` could be allowed here with *some* choice between create and update: true when the
    /// governing rule grants both or neither, so an existence check cannot change the outcome.
    pub fn create_update_indifferent(&self, path: &str) -> bool {
        if self.root {
            return true;
        }
        match self.governing(path) {
            None => true,
            Some(p) => {
                let both = cap::CREATE | cap::UPDATE;
                p.capabilities & cap::DENY != 0 || p.capabilities & both == both || p.capabilities & both == 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts.iter().enumerate().map(|(i, t)| Policy::parse(&format!("p{i}"), t).unwrap()).collect();
        Acl::new(policies.iter())
    }

    /// API.md §16.3, policy `pp`, checked with `sys/capabilities` on real bao 2.7.2.
    #[test]
    fn precedence_matches_openbao() {
        let pp = r#"
            path "p/+/foo"      { capabilities = ["create"] }
            path "p/data/*"     { capabilities = ["read"] }
            path "p/data/fo*"   { capabilities = ["update"] }
            path "p/data/+/+"   { capabilities = ["list"] }
            path "p/data/+/bar" { capabilities = ["delete"] }
            path "p/x/*"        { capabilities = ["read"] }
            path "p/x/y"        { capabilities = ["update"] }
            path "p/+/*"        { capabilities = ["sudo", "read"] }
        "#;
        let a = acl(&[pp]);
        let cases: [(&str, &[&str]); 12] = [
            ("p/data/foo", &["update"]),
            ("p/data/fox", &["update"]),
            ("p/data/a/bar", &["delete"]),
            ("p/data/a/b", &["list"]),
            ("p/data/a/b/c", &["read"]),
            ("p/x/y", &["update"]),
            ("p/x/z", &["read"]),
            ("p/zz/foo", &["create"]),
            ("p/zz/q", &["read", "sudo"]),
            ("p/data", &["deny"]),
            ("p/x", &["deny"]),
            ("other", &["deny"]),
        ];
        for (path, want) in cases {
            assert_eq!(a.capability_names(path), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{path}");
        }
    }

    #[test]
    fn same_pattern_unions_and_deny_wins() {
        let a = acl(&[r#"path "s/*" { capabilities = ["read"] }"#, r#"path "s/*" { capabilities = ["list"] }"#]);
        assert_eq!(a.capability_names("s/x"), vec!["list", "read"]);
        let a = acl(&[r#"path "s/x" { capabilities = ["read"] }"#, r#"path "s/x" { capabilities = ["deny"] }"#]);
        assert_eq!(a.capability_names("s/x"), vec!["deny"]);
        assert!(!a.check("s/x", Operation::Read, &Map::new(), None).allowed);
    }

    #[test]
    fn parameter_constraints() {
        let a = acl(&[r#"
            path "k/p" { capabilities = ["update"] allowed_parameters = { "foo" = [], "bar" = ["a","b"] } }
            path "k/g" { capabilities = ["update"] allowed_parameters = { "env" = ["dev-*", "qa"] } }
            path "k/any" { capabilities = ["update"] allowed_parameters = { "*" = [] } denied_parameters = { "password" = [] } }
            path "k/r" { capabilities = ["update"] required_parameters = ["must"] }
        "#]);
        let ok = |path: &str, body: serde_json::Value| a.check(path, Operation::Update, body.as_object().unwrap(), None).allowed;
        assert!(ok("k/p", serde_json::json!({"foo": "x", "bar": "a"})));
        assert!(!ok("k/p", serde_json::json!({"foo": "x", "bar": "c"})));
        assert!(!ok("k/p", serde_json::json!({"baz": "x"})));
        assert!(ok("k/g", serde_json::json!({"env": "dev-eu"})));
        assert!(!ok("k/g", serde_json::json!({"env": "prod"})));
        assert!(ok("k/any", serde_json::json!({"x": "1", "y": 2})));
        assert!(!ok("k/any", serde_json::json!({"x": "1", "password": "p"})));
        assert!(!ok("k/r", serde_json::json!({"other": "x"})));
        assert!(ok("k/r", serde_json::json!({"must": "x"})));
    }

    #[test]
    fn wrapping_ttl_bounds() {
        let a = acl(&[r#"path "w" { capabilities = ["read"] min_wrapping_ttl = "1m" max_wrapping_ttl = "10m" }"#]);
        let m = Map::new();
        assert!(!a.check("w", Operation::Read, &m, None).allowed);
        assert!(!a.check("w", Operation::Read, &m, Some(30)).allowed);
        assert!(a.check("w", Operation::Read, &m, Some(300)).allowed);
        assert!(!a.check("w", Operation::Read, &m, Some(1200)).allowed);
    }

    #[test]
    fn glob_values() {
        assert!(glob_match("dev-*", "dev-eu"));
        assert!(glob_match("*-eu", "dev-eu"));
        assert!(glob_match("*ev*", "dev-eu"));
        assert!(!glob_match("qa", "qa2"));
    }
}
