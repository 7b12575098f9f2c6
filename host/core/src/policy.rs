//! ACL policies: parsing (HCL and JSON, both stored verbatim) into path rules with capabilities and
//! parameter constraints. Compiling a token's policies into one decision structure is [`crate::acl`].

use std::collections::BTreeMap;

use serde_json::Value;
use tresor_logical::parse_duration;

use crate::hcl::{self, Item};

/// Capability bits.
pub mod cap {
    /// Overrides everything on the same pattern.
    pub const DENY: u16 = 1;
    /// Write to an item that does not exist.
    pub const CREATE: u16 = 1 << 1;
    /// Read.
    pub const READ: u16 = 1 << 2;
    /// Write to an existing item, or an action.
    pub const UPDATE: u16 = 1 << 3;
    /// Delete.
    pub const DELETE: u16 = 1 << 4;
    /// List.
    pub const LIST: u16 = 1 << 5;
    /// Root-protected paths.
    pub const SUDO: u16 = 1 << 6;
    /// JSON merge patch.
    pub const PATCH: u16 = 1 << 7;
    /// Event subscription (accepted, unused).
    pub const SUBSCRIBE: u16 = 1 << 8;

    /// Names in alphabetical order, as Vault reports them.
    pub const NAMES: [(&str, u16); 9] = [
        ("create", CREATE),
        ("delete", DELETE),
        ("deny", DENY),
        ("list", LIST),
        ("patch", PATCH),
        ("read", READ),
        ("subscribe", SUBSCRIBE),
        ("sudo", SUDO),
        ("update", UPDATE),
    ];

    /// The bit of a capability name.
    pub fn parse(name: &str) -> Option<u16> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// Names of the set bits, sorted.
    pub fn names(bits: u16) -> Vec<String> {
        NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| n.to_string()).collect()
    }
}

/// What a rule grants on its pattern.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    /// Capability bits ([`cap`]).
    pub capabilities: u16,
    /// `None`: no constraint. Keys lower-case; an empty value list allows any value; key `*` any key.
    pub allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// As above; deny wins over allow.
    pub denied_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// Keys that must be present.
    pub required_parameters: Vec<String>,
    /// The request must be wrapped with at least this TTL (seconds, 0 = no constraint).
    pub min_wrapping_ttl: u64,
    /// ... and at most this TTL.
    pub max_wrapping_ttl: u64,
}

/// One `path "pattern" { ... }` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// Pattern without a leading slash.
    pub pattern: String,
    /// What it grants.
    pub permissions: Permissions,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Lower-case name.
    pub name: String,
    /// The text as submitted.
    pub raw: String,
    /// Rules in declaration order.
    pub rules: Vec<PathRule>,
}

/// Why a policy did not parse (rendered as `failed to parse policy: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse policy: {0}")]
pub struct PolicyError(pub String);

fn err(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

/// A neutral tree both syntaxes are lowered to.
enum Node {
    Scalar(Value),
    List(Vec<Node>),
    /// Key/value pairs in order (HCL objects and blocks, JSON objects).
    Map(Vec<(String, Node)>),
}

fn from_json(v: &Value) -> Node {
    match v {
        Value::Array(a) => Node::List(a.iter().map(from_json).collect()),
        Value::Object(o) => Node::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        other => Node::Scalar(other.clone()),
    }
}

fn from_hcl_value(v: &hcl::Value) -> Node {
    match v {
        hcl::Value::Str(s) => Node::Scalar(Value::String(s.clone())),
        hcl::Value::Num(n) => Node::Scalar(
            if n.fract() == 0.0 && n.abs() < 9.0e15 { Value::from(*n as i64) } else { serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number) },
        ),
        hcl::Value::Bool(b) => Node::Scalar(Value::Bool(*b)),
        hcl::Value::List(l) => Node::List(l.iter().map(from_hcl_value).collect()),
        hcl::Value::Object(items) => Node::Map(items.iter().flat_map(from_hcl_item).collect()),
    }
}

/// `key = v` is one pair; a block `a "b" "c" { body }` nests as `a → b → c → body`.
fn from_hcl_item(item: &Item) -> Vec<(String, Node)> {
    match item {
        Item::Attr(k, v) => vec![(k.clone(), from_hcl_value(v))],
        Item::Block(b) => {
            let mut node = Node::Map(b.body.iter().flat_map(from_hcl_item).collect());
            for label in b.labels.iter().rev() {
                node = Node::Map(vec![(label.clone(), node)]);
            }
            vec![(b.ident.clone(), node)]
        }
    }
}

impl Policy {
    /// Parse `raw` (HCL, or JSON when it starts with `{`). `name` is lower-cased.
    pub fn parse(name: &str, raw: &str) -> Result<Self, PolicyError> {
        let trimmed = raw.trim_start();
        let top: Vec<(String, Node)> = if trimmed.starts_with('{') {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect(),
                Ok(_) => return Err(err("policy must be a JSON object")),
                Err(e) => return Err(err(format!("invalid JSON: {e}"))),
            }
        } else {
            let items = hcl::parse(raw).map_err(|e| err(format!("At {}: {}", e.line, e.message)))?;
            items.iter().flat_map(from_hcl_item).collect()
        };
        let mut rules = Vec::new();
        for (key, node) in top {
            match key.as_str() {
                "name" => {}
                "path" => {
                    let Node::Map(paths) = node else { return Err(err("path must be an object")) };
                    for (pattern, body) in paths {
                        rules.push(parse_rule(&pattern, body)?);
                    }
                }
                other => return Err(err(format!("invalid key {other:?}"))),
            }
        }
        Ok(Self { name: name.to_lowercase(), raw: raw.to_string(), rules })
    }
}

impl Policy {
    /// Canonical HCL for the rules (`tresor policy fmt`): one block per rule, two-space indent.
    pub fn to_hcl(&self) -> String {
        const ORDER: [&str; 9] = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"];
        let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        let params = |m: &BTreeMap<String, Vec<Value>>| {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{} = [{}]", quote(k), v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")))
                .collect();
            format!("{{ {} }}", items.join(", "))
        };
        let mut out = String::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let p = &rule.permissions;
            out.push_str(&format!("path {} {{\n", quote(&rule.pattern)));
            let caps: Vec<String> = ORDER.iter().filter(|n| cap::parse(n).is_some_and(|b| p.capabilities & b != 0)).map(|n| quote(n)).collect();
            out.push_str(&format!("  capabilities = [{}]\n", caps.join(", ")));
            if let Some(a) = &p.allowed_parameters {
                out.push_str(&format!("  allowed_parameters = {}\n", params(a)));
            }
            if let Some(d) = &p.denied_parameters {
                out.push_str(&format!("  denied_parameters = {}\n", params(d)));
            }
            if !p.required_parameters.is_empty() {
                let r: Vec<String> = p.required_parameters.iter().map(|s| quote(s)).collect();
                out.push_str(&format!("  required_parameters = [{}]\n", r.join(", ")));
            }
            if p.min_wrapping_ttl > 0 {
                out.push_str(&format!("  min_wrapping_ttl = \"{}s\"\n", p.min_wrapping_ttl));
            }
            if p.max_wrapping_ttl > 0 {
                out.push_str(&format!("  max_wrapping_ttl = \"{}s\"\n", p.max_wrapping_ttl));
            }
            out.push_str("}\n");
        }
        out
    }
}

fn parse_rule(pattern: &str, body: Node) -> Result<PathRule, PolicyError> {
    let ctx = |m: String| err(format!("path {pattern:?}: {m}"));
    let Node::Map(items) = body else { return Err(ctx("expected an object".into())) };
    let mut p = Permissions::default();
    for (key, value) in items {
        match key.as_str() {
            "capabilities" => {
                for name in strings(&value).map_err(&ctx)? {
                    p.capabilities |= cap::parse(&name).ok_or_else(|| ctx(format!("path {pattern:?}: invalid capability {name:?}")))?;
                }
            }
            // The pre-0.5 shorthand.
            "policy" => {
                let Node::Scalar(Value::String(s)) = value else { return Err(ctx("policy must be a string".into())) };
                p.capabilities |= match s.as_str() {
                    "deny" => cap::DENY,
                    "read" => cap::READ | cap::LIST,
                    "write" => cap::CREATE | cap::READ | cap::UPDATE | cap::DELETE | cap::LIST,
                    "sudo" => cap::CREATE | cap::READ | cap::UPDATE | cap::DELETE | cap::LIST | cap::SUDO,
                    other => return Err(ctx(format!("invalid policy {other:?}"))),
                };
            }
            "allowed_parameters" => p.allowed_parameters = Some(parameters(value).map_err(&ctx)?),
            "denied_parameters" => p.denied_parameters = Some(parameters(value).map_err(&ctx)?),
            "required_parameters" => p.required_parameters = strings(&value).map_err(&ctx)?.into_iter().map(|s| s.to_lowercase()).collect(),
            "min_wrapping_ttl" => p.min_wrapping_ttl = duration(&value).map_err(&ctx)?,
            "max_wrapping_ttl" => p.max_wrapping_ttl = duration(&value).map_err(&ctx)?,
            "comment" | "mfa_methods" | "control_group" | "pagination_limit" | "expiration" => {}
            other => return Err(ctx(format!("invalid key {other:?}"))),
        }
    }
    if p.max_wrapping_ttl > 0 && p.min_wrapping_ttl > p.max_wrapping_ttl {
        return Err(ctx("max_wrapping_ttl cannot be less than min_wrapping_ttl".into()));
    }
    if p.capabilities & cap::DENY != 0 {
        p.capabilities = cap::DENY;
    }
    Ok(PathRule { pattern: pattern.trim_start_matches('/').to_string(), permissions: p })
}

fn strings(node: &Node) -> Result<Vec<String>, String> {
    match node {
        Node::List(items) => items
            .iter()
            .map(|i| match i {
                Node::Scalar(Value::String(s)) => Ok(s.clone()),
                _ => Err("expected a list of strings".to_string()),
            })
            .collect(),
        // Vault refuses a lone string here (`capabilities = "read"`) rather than guess at a list.
        _ => Err("expected a list of strings".into()),
    }
}

fn parameters(node: Node) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let Node::Map(items) = node else { return Err("parameters must be an object".into()) };
    let mut out = BTreeMap::new();
    for (k, v) in items {
        let values = match v {
            Node::List(l) => l
                .into_iter()
                .map(|n| match n {
                    Node::Scalar(s) => Ok(s),
                    _ => Err(format!("parameter {k:?}: values must be scalars")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Node::Scalar(s) => vec![s],
            Node::Map(m) if m.is_empty() => Vec::new(),
            Node::Map(_) => return Err(format!("parameter {k:?}: values must be a list")),
        };
        out.entry(k.to_lowercase()).or_insert_with(Vec::new).extend(values);
    }
    Ok(out)
}

fn duration(node: &Node) -> Result<u64, String> {
    match node {
        Node::Scalar(v) => parse_duration(v).map_err(|_| "invalid duration".to_string()),
        _ => Err("invalid duration".into()),
    }
}

/// The built-in `default` policy (editable, never deletable), as Vault ships it minus the identity
/// paths this server has no identity store for.
pub const DEFAULT_POLICY: &str = r#"# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_and_json_parse_to_the_same_rules() {
        let hcl = r#"
            path "secret/data/*" { capabilities = ["read", "list"] }
            path "/kv1/params" {
              capabilities = ["create","update"]
              allowed_parameters = { "foo" = [], "Bar" = ["a","b"] }
              denied_parameters = { "secret" = [] }
              required_parameters = ["must"]
              min_wrapping_ttl = "1m"
              max_wrapping_ttl = 600
            }
        "#;
        let json = r#"{"path":{"secret/data/*":{"capabilities":["read","list"]},
            "kv1/params":{"capabilities":["create","update"],"allowed_parameters":{"foo":[],"Bar":["a","b"]},
            "denied_parameters":{"secret":[]},"required_parameters":["must"],"min_wrapping_ttl":"1m","max_wrapping_ttl":"10m"}}}"#;
        let a = Policy::parse("P", hcl).unwrap();
        let mut b = Policy::parse("p", json).unwrap();
        assert_eq!(a.name, "p");
        b.rules.sort_by(|x, y| y.pattern.cmp(&x.pattern));
        assert_eq!(a.rules, b.rules);
        assert_eq!(a.rules[1].pattern, "kv1/params");
        let p = &a.rules[1].permissions;
        assert_eq!(p.capabilities, cap::CREATE | cap::UPDATE);
        assert_eq!(p.allowed_parameters.as_ref().unwrap()["bar"], vec![Value::from("a"), Value::from("b")]);
        assert_eq!((p.min_wrapping_ttl, p.max_wrapping_ttl), (60, 600));
    }

    #[test]
    fn bad_policies_are_refused_with_vaults_messages() {
        let e = Policy::parse("x", r#"path "x" { capabilities = ["fly"] }"#).unwrap_err();
        assert_eq!(e.to_string(), r#"failed to parse policy: path "x": path "x": invalid capability "fly""#);
        assert!(Policy::parse("x", "garbage {").unwrap_err().to_string().starts_with("failed to parse policy: At 1"));
        assert!(Policy::parse("x", r#"path "x" { capabilities = ["read"] wat = 1 }"#).is_err());
        assert!(Policy::parse("x", r#"{"path": 1}"#).is_err());
        // A lone string is not a list, in HCL or JSON.
        assert!(Policy::parse("x", r#"path "x" { capabilities = "read" }"#).is_err());
        assert!(Policy::parse("x", r#"{"path": {"x": {"capabilities": "read,list"}}}"#).is_err());
        assert!(Policy::parse("x", r#"nope "x" {}"#).is_err());
    }

    #[test]
    fn fmt_round_trips() {
        let src = r#"path "a/*" { capabilities = ["list","read"] allowed_parameters = { "x" = ["1"] } }  path "b" { policy = "write" }"#;
        let p = Policy::parse("p", src).unwrap();
        let text = p.to_hcl();
        assert!(text.starts_with("path \"a/*\" {\n  capabilities = [\"read\", \"list\"]\n"), "{text}");
        assert_eq!(Policy::parse("p", &text).unwrap().rules, p.rules);
    }

    #[test]
    fn deny_clears_other_capabilities_and_default_parses() {
        let p = Policy::parse("d", r#"path "a" { capabilities = ["read", "deny"] }"#).unwrap();
        assert_eq!(p.rules[0].permissions.capabilities, cap::DENY);
        let d = Policy::parse("default", DEFAULT_POLICY).unwrap();
        assert!(d.rules.iter().any(|r| r.pattern == "cubbyhole/*"));
        assert_eq!(cap::names(cap::READ | cap::LIST), vec!["list", "read"]);
    }
}
