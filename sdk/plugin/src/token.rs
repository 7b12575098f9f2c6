//! The `token_*` parameter family every Vault auth method shares (`token_ttl`, `token_max_ttl`,
//! `token_policies`, `token_bound_cidrs`, `token_explicit_max_ttl`, `token_no_default_policy`,
//! `token_num_uses`, `token_period`, `token_type`), with the legacy `policies`/`ttl`/`max_ttl`/`period`
//! aliases. Declare the fields with [`TokenParams::fields`], apply a write with
//! [`TokenParams::update`], render reads with [`TokenParams::write_json`] and build the login with
//! [`TokenParams::auth`].
//!
//! ```
//! use tresor_sdk::token::TokenParams;
//! use tresor_sdk::{Operation, Request, Value};
//! let mut p = TokenParams::default();
//! let req = Request::new(Operation::Update, "users/alice")
//!     .with("token_policies", Value::StrList(vec!["app".into()]))
//!     .with("token_ttl", Value::Duration(3600));
//! p.update(&req).unwrap();
//! let auth = p.auth("alice", "alice", vec![("username".into(), "alice".into())]);
//! assert_eq!(auth.policies, vec!["app".to_string()]);
//! assert_eq!(auth.lease.ttl, 3600);
//! ```

use serde::{Deserialize, Serialize};

use crate::{Auth, Error, Field, FieldKind, LeaseOptions, Request, TokenType};

/// Token settings of a user or role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenParams {
    /// `token_ttl` (0 = the mount default).
    pub ttl: u64,
    /// `token_max_ttl` (0 = the mount max).
    pub max_ttl: u64,
    /// `token_policies`.
    pub policies: Vec<String>,
    /// `token_bound_cidrs`.
    pub bound_cidrs: Vec<String>,
    /// `token_explicit_max_ttl`.
    pub explicit_max_ttl: u64,
    /// `token_no_default_policy`.
    pub no_default_policy: bool,
    /// `token_num_uses`.
    pub num_uses: u64,
    /// `token_period`.
    pub period: u64,
    /// `token_type` (`default`, `service` or `batch`).
    pub token_type: String,
    /// The deprecated names (`policies`, `ttl`, `max_ttl`, `period`, `bound_cidrs`) whose value was
    /// last written under that name: as Vault, a read shows them under it too, until a write uses
    /// the `token_*` name alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub legacy: Vec<String>,
}

/// Deprecated field names and the `token_*` names that replaced them.
const LEGACY_NAMES: [(&str, &str); 5] =
    [("policies", "token_policies"), ("ttl", "token_ttl"), ("max_ttl", "token_max_ttl"), ("period", "token_period"), ("bound_cidrs", "token_bound_cidrs")];

impl TokenParams {
    /// The field declarations (add them to every path that writes token settings).
    pub fn fields() -> Vec<Field> {
        vec![
            Field::new("token_ttl", FieldKind::Duration).description("Default TTL of generated tokens"),
            Field::new("token_max_ttl", FieldKind::Duration).description("Maximum TTL of generated tokens"),
            Field::new("token_policies", FieldKind::StrList).description("Policies of generated tokens"),
            Field::new("token_bound_cidrs", FieldKind::StrList).description("CIDR blocks generated tokens are bound to"),
            Field::new("token_explicit_max_ttl", FieldKind::Duration).description("Hard cap on generated tokens"),
            Field::new("token_no_default_policy", FieldKind::Bool).description("Do not add the default policy"),
            Field::new("token_num_uses", FieldKind::Int).description("Uses per generated token (0 = unlimited)"),
            Field::new("token_period", FieldKind::Duration).description("Period of generated periodic tokens"),
            Field::new("token_type", FieldKind::Str).description("Token type: default, service or batch"),
            Field::new("policies", FieldKind::StrList).description("Deprecated: use token_policies"),
            Field::new("ttl", FieldKind::Duration).description("Deprecated: use token_ttl"),
            Field::new("max_ttl", FieldKind::Duration).description("Deprecated: use token_max_ttl"),
            Field::new("period", FieldKind::Duration).description("Deprecated: use token_period"),
            Field::new("bound_cidrs", FieldKind::StrList).description("Deprecated: use token_bound_cidrs"),
        ]
    }

    /// Apply the fields present in `req`.
    pub fn update(&mut self, req: &Request) -> Result<(), Error> {
        if let Some(v) = req.duration("token_ttl").or(req.duration("ttl")) {
            self.ttl = v;
        }
        if let Some(v) = req.duration("token_max_ttl").or(req.duration("max_ttl")) {
            self.max_ttl = v;
        }
        if let Some(v) = req.str_list("token_policies").or(req.str_list("policies")) {
            let mut p: Vec<String> = v.iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
            p.sort();
            p.dedup();
            self.policies = p;
        }
        if let Some(v) = req.str_list("token_bound_cidrs").or(req.str_list("bound_cidrs")) {
            for c in v {
                if !valid_cidr(c) {
                    return Err(Error::InvalidRequest(cidr_error(c)));
                }
            }
            self.bound_cidrs = v.to_vec();
        }
        if let Some(v) = req.duration("token_explicit_max_ttl") {
            self.explicit_max_ttl = v;
        }
        if let Some(v) = req.bool("token_no_default_policy") {
            self.no_default_policy = v;
        }
        if let Some(v) = req.int("token_num_uses") {
            self.num_uses = u64::try_from(v).map_err(|_| Error::InvalidRequest("'token_num_uses' cannot be negative".into()))?;
        }
        if let Some(v) = req.duration("token_period").or(req.duration("period")) {
            self.period = v;
        }
        if let Some(v) = req.str("token_type") {
            match v {
                "" | "default" => self.token_type = "default".into(),
                "service" | "batch" => self.token_type = v.to_string(),
                other => return Err(Error::InvalidRequest(format!("invalid 'token_type' value {other:?}"))),
            }
        }
        if self.max_ttl > 0 && self.ttl > self.max_ttl {
            return Err(Error::InvalidRequest("'token_ttl' cannot be greater than 'token_max_ttl'".into()));
        }
        if self.token_type == "batch" {
            if self.period > 0 {
                return Err(Error::InvalidRequest("'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens".into()));
            }
            if self.num_uses > 0 {
                return Err(Error::InvalidRequest(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count".into(),
                ));
            }
        }
        // Vault's upgrade rule: writing the old name keeps it shown; writing only the new one
        // retires the old.
        for (old, new) in LEGACY_NAMES {
            let has = |name: &str| req.has(name);
            if has(old) {
                if !self.legacy.iter().any(|l| l == old) {
                    self.legacy.push(old.to_string());
                }
            } else if has(new) {
                self.legacy.retain(|l| l != old);
            }
        }
        Ok(())
    }

    /// Add the `token_*` keys to a read response.
    pub fn write_json(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::json;
        out.insert("token_ttl".into(), json!(self.ttl));
        out.insert("token_max_ttl".into(), json!(self.max_ttl));
        out.insert("token_policies".into(), json!(self.policies));
        // As Vault shows them (Go's sockaddr): a single address without its `/32` or `/128`.
        let shown: Vec<&str> = self
            .bound_cidrs
            .iter()
            .map(|c| match c.split_once('/') {
                Some((ip, "32")) if ip.parse::<std::net::Ipv4Addr>().is_ok() => ip,
                Some((ip, "128")) if ip.parse::<std::net::Ipv6Addr>().is_ok() => ip,
                _ => c.as_str(),
            })
            .collect();
        out.insert("token_bound_cidrs".into(), json!(shown));
        out.insert("token_explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        out.insert("token_no_default_policy".into(), json!(self.no_default_policy));
        out.insert("token_num_uses".into(), json!(self.num_uses));
        out.insert("token_period".into(), json!(self.period));
        out.insert("token_strictly_bind_ip".into(), json!(false));
        out.insert("token_type".into(), json!(if self.token_type.is_empty() { "default" } else { &self.token_type }));
        for old in &self.legacy {
            match old.as_str() {
                "policies" if !self.policies.is_empty() => out.insert("policies".into(), json!(self.policies)),
                "ttl" if self.ttl > 0 => out.insert("ttl".into(), json!(self.ttl)),
                "max_ttl" if self.max_ttl > 0 => out.insert("max_ttl".into(), json!(self.max_ttl)),
                "period" if self.period > 0 => out.insert("period".into(), json!(self.period)),
                "bound_cidrs" if !self.bound_cidrs.is_empty() => out.insert("bound_cidrs".into(), json!(shown)),
                _ => None,
            };
        }
    }

    /// The login result for a principal with these settings.
    pub fn auth(&self, display_name: &str, alias_name: &str, metadata: Vec<(String, String)>) -> Auth {
        Auth {
            policies: self.policies.clone(),
            metadata,
            display_name: display_name.to_string(),
            alias_name: alias_name.to_string(),
            internal: serde_json::Value::Null,
            lease: LeaseOptions { ttl: self.ttl, max_ttl: self.max_ttl, renewable: true },
            num_uses: u32::try_from(self.num_uses).unwrap_or(u32::MAX),
            period: self.period,
            explicit_max_ttl: self.explicit_max_ttl,
            no_default_policy: self.no_default_policy,
            bound_cidrs: self.bound_cidrs.clone(),
            token_type: match self.token_type.as_str() {
                "service" | "default-service" => TokenType::Service,
                "batch" | "default-batch" => TokenType::Batch,
                _ => TokenType::Default,
            },
        }
    }
}

/// Vault's text for a `token_bound_cidrs` entry that is neither an address nor a CIDR block.
pub fn cidr_error(c: &str) -> String {
    format!("error parsing address {c:?}: Unable to convert {c:?} to an IPv4 or IPv6 address, or a UNIX Socket")
}

/// Whether `c` is an IPv4/IPv6 address or CIDR block.
pub fn valid_cidr(c: &str) -> bool {
    let (ip, bits) = match c.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (c, None),
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= 32)),
        Ok(std::net::IpAddr::V6(_)) => bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= 128)),
        Err(_) => false,
    }
}

/// Whether `addr` lies in one of `cidrs` (empty list: anywhere). Unparseable input matches nothing.
pub fn cidrs_allow(cidrs: &[String], addr: Option<&str>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(Ok(addr)) = addr.map(|a| a.parse::<std::net::IpAddr>()) else { return false };
    cidrs.iter().any(|c| {
        let (ip, bits) = match c.split_once('/') {
            Some((ip, bits)) => (ip, bits.parse::<u32>().ok()),
            None => (c.as_str(), None),
        };
        match (ip.parse::<std::net::IpAddr>(), addr) {
            (Ok(std::net::IpAddr::V4(n)), std::net::IpAddr::V4(a)) => {
                let b = bits.unwrap_or(32);
                b <= 32 && (b == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - b) == 0)
            }
            (Ok(std::net::IpAddr::V6(n)), std::net::IpAddr::V6(a)) => {
                let b = bits.unwrap_or(128);
                b <= 128 && (b == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - b) == 0)
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_names_are_shown_until_only_the_new_name_is_written() {
        use crate::{Operation, Request, Value};
        let read = |p: &TokenParams| {
            let mut out = serde_json::Map::new();
            p.write_json(&mut out);
            out
        };
        let mut p = TokenParams::default();
        let write = |p: &mut TokenParams, fields: &[(&str, Value)]| {
            let req = fields.iter().fold(Request::new(Operation::Update, "users/bob"), |r, (k, v)| r.with(*k, v.clone()));
            p.update(&req).unwrap();
        };
        write(&mut p, &[("policies", Value::StrList(vec!["a".into()])), ("ttl", Value::Duration(3600)), ("max_ttl", Value::Duration(7200))]);
        let out = read(&p);
        assert_eq!((out["policies"].clone(), out["ttl"].clone(), out["max_ttl"].clone()), (serde_json::json!(["a"]), 3600.into(), 7200.into()));
        // The new name alone retires the old one; the other old names stay.
        write(&mut p, &[("token_policies", Value::StrList(vec!["b".into()])), ("token_ttl", Value::Duration(1800))]);
        let out = read(&p);
        assert!(out.get("policies").is_none() && out.get("ttl").is_none(), "{out:?}");
        assert_eq!((out["token_policies"].clone(), out["max_ttl"].clone()), (serde_json::json!(["b"]), 7200.into()));
        // Both names: the new value, shown under both (Vault's upgrade rule).
        write(&mut p, &[("policies", Value::StrList(vec!["c".into()])), ("token_policies", Value::StrList(vec!["d".into()]))]);
        let out = read(&p);
        assert_eq!((out["policies"].clone(), out["token_policies"].clone()), (serde_json::json!(["d"]), serde_json::json!(["d"])));
    }

    #[test]
    fn cidrs() {
        assert!(valid_cidr("10.0.0.0/8") && valid_cidr("::1") && !valid_cidr("10.0.0.0/33") && !valid_cidr("x"));
        let c = vec!["127.0.0.0/8".to_string()];
        assert!(cidrs_allow(&c, Some("127.0.0.1")));
        assert!(!cidrs_allow(&c, Some("10.0.0.1")));
        assert!(!cidrs_allow(&c, None));
        assert!(cidrs_allow(&[], None));
    }
}
