//! The server configuration file: a Vault-shaped HCL subset.
//!
//! ```hcl
//! storage "sqlite" { path = "/var/lib/tresor/tresor.db" }   # or storage "inmem" {}
//! listener "tcp" {
//!   address = "127.0.0.1:8200"
//!   tls_disable = 1                  # or tls_cert_file / tls_key_file
//!   max_request_size = 33554432
//! }
//! api_addr  = "http://127.0.0.1:8200"
//! ui        = true                   # accepted; Tresor ships no UI
//! log_level = "info"
//! ```
//! Keys Vault accepts that have no meaning here (`disable_mlock`, `cluster_addr`, ...) are accepted and
//! logged as ignored, so existing Vault configs load; unknown storage or listener types are errors.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};



use tresor_core::hcl::{self, Block, Item, Value};

/// An attribute: its key and value.
#[derive(Clone, Copy)]
struct Attribute<'a> {
    key: &'a str,
    value: &'a Value,
}

impl Attribute<'_> {
    fn key(&self) -> &str {
        self.key
    }
}

fn attributes(items: &[Item]) -> impl Iterator<Item = Attribute<'_>> {
    items.iter().filter_map(|i| match i {
        Item::Attr(key, value) => Some(Attribute { key, value }),
        Item::Block(_) => None,
    })
}

fn blocks(items: &[Item]) -> impl Iterator<Item = &Block> {
    items.iter().filter_map(|i| match i {
        Item::Block(b) => Some(b),
        Item::Attr(..) => None,
    })
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory: lost on exit (dev and tests).
    Inmem,
    /// SQLite file (the embedded default).
    Sqlite { path: PathBuf },
}

/// One TCP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `host:port`.
    pub address: String,
    /// Plain HTTP when true.
    pub tls_disable: bool,
    /// PEM certificate chain.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key.
    pub tls_key_file: Option<PathBuf>,
    /// Body size limit in bytes.
    pub max_request_size: usize,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Storage backend.
    pub storage: Storage,
    /// Listeners (at least one).
    pub listeners: Vec<Listener>,
    /// Advertised address.
    pub api_addr: Option<String>,
    /// Accepted for compatibility.
    pub ui: bool,
    /// `trace|debug|info|warn|error`.
    pub log_level: Option<String>,
    /// Where registered third-party plugin files live.
    pub plugin_directory: Option<PathBuf>,
    /// System default lease/token TTL in seconds (Vault: `default_lease_ttl`, default 768h).
    pub default_lease_ttl: Option<u64>,
    /// System max lease/token TTL in seconds (Vault: `max_lease_ttl`, default 768h).
    pub max_lease_ttl: Option<u64>,
    /// Declarative audit devices (`audit "file" "path" { options { file_path = ... } }`).
    pub audit: Vec<tresor_core::AuditDeviceConfig>,
    /// How often plugins' periodic functions run, seconds (Tresor extension; default 60, as Vault's
    /// rollback/periodic manager).
    pub plugin_periodic_interval: Option<u64>,
}

const IGNORED_TOP: &[&str] =
    &["disable_mlock", "cluster_addr", "cluster_name", "disable_cache"];

impl Config {
    /// Load and validate a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parse configuration text.
    pub fn parse(text: &str) -> Result<Self> {
        let body = hcl::parse(text).map_err(|e| anyhow!("invalid HCL: {e}"))?;
        let mut storage = None;
        let mut listeners = Vec::new();
        let mut config = Config {
            storage: Storage::Inmem,
            listeners: Vec::new(),
            api_addr: None,
            ui: false,
            log_level: None,
            plugin_directory: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            audit: Vec::new(),
            plugin_periodic_interval: None,
        };
        for attr in attributes(&body) {
            match attr.key() {
                "api_addr" => config.api_addr = Some(string(attr)?),
                "ui" => config.ui = boolean(attr)?,
                "log_level" => config.log_level = Some(string(attr)?),
                "plugin_directory" => config.plugin_directory = Some(PathBuf::from(string(attr)?)),
                "default_lease_ttl" => config.default_lease_ttl = Some(duration(attr)?),
                "max_lease_ttl" => config.max_lease_ttl = Some(duration(attr)?),
                "plugin_periodic_interval" => config.plugin_periodic_interval = Some(duration(attr)?),
                key if IGNORED_TOP.contains(&key) => tracing::debug!(key, "config key accepted and ignored"),
                key => bail!("unknown configuration key {key:?}"),
            }
        }
        for block in blocks(&body) {
            match block.ident.as_str() {
                "storage" | "backend" => {
                    if storage.is_some() {
                        bail!("only one storage block is allowed");
                    }
                    storage = Some(parse_storage(block)?);
                }
                "listener" => listeners.push(parse_listener(block)?),
                "audit" => {
                    let device = parse_audit(block)?;
                    if config.audit.iter().any(|d| d.path == device.path) {
                        bail!("two audit blocks share the path {:?}", device.path);
                    }
                    config.audit.push(device);
                }
                "telemetry" | "seal" => {
                    bail!("{:?} blocks are not supported yet", block.ident)
                }
                other => bail!("unknown configuration block {other:?}"),
            }
        }
        config.storage = storage.ok_or_else(|| anyhow!("a storage block is required"))?;
        if listeners.is_empty() {
            bail!("at least one listener block is required");
        }
        config.listeners = listeners;
        Ok(config)
    }
}

/// `audit "<type>" "<path>" { description = "...", local = false, options { key = "value" } }` (OpenBao's
/// declarative form). The path defaults to the type.
fn parse_audit(block: &Block) -> Result<tresor_core::AuditDeviceConfig> {
    let kind = label(block)?.to_string();
    let path = block.labels.get(1).cloned().unwrap_or_else(|| kind.clone());
    let mut device = tresor_core::AuditDeviceConfig {
        path: format!("{}/", path.trim_matches('/')),
        kind,
        description: String::new(),
        options: Default::default(),
        local: false,
        declarative: true,
    };
    let scalar = |key: &str, v: &Value| -> Result<String> {
        Ok(match v {
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Num(n) if n.fract() == 0.0 => format!("{}", *n as i64),
            _ => bail!("audit option {key} must be a string"),
        })
    };
    let mut take_options = |items: &[Item]| -> Result<()> {
        for attr in attributes(items) {
            device.options.insert(attr.key().to_string(), scalar(attr.key(), attr.value)?);
        }
        Ok(())
    };
    for item in &block.body {
        match item {
            Item::Block(b) if b.ident == "options" => take_options(&b.body)?,
            Item::Block(b) => bail!("unknown block {:?} in audit block", b.ident),
            Item::Attr(key, Value::Object(items)) if key == "options" => take_options(items)?,
            Item::Attr(..) => {}
        }
    }
    for attr in attributes(&block.body) {
        match attr.key() {
            "description" => device.description = string(attr)?,
            "local" => device.local = boolean(attr)?,
            "options" => {}
            key => bail!("unknown audit key {key:?}"),
        }
    }
    Ok(device)
}

fn label(block: &Block) -> Result<&str> {
    block.labels.first().map(String::as_str).ok_or_else(|| anyhow!("{} block needs a type label", block.ident))
}

fn parse_storage(block: &Block) -> Result<Storage> {
    match label(block)? {
        "inmem" => Ok(Storage::Inmem),
        "sqlite" => {
            let mut path = None;
            for attr in attributes(&block.body) {
                match attr.key() {
                    "path" => path = Some(PathBuf::from(string(attr)?)),
                    key => bail!("unknown sqlite storage key {key:?}"),
                }
            }
            Ok(Storage::Sqlite { path: path.ok_or_else(|| anyhow!("storage \"sqlite\" needs a path"))? })
        }
        other => bail!("unknown storage type {other}"),
    }
}

fn parse_listener(block: &Block) -> Result<Listener> {
    let kind = label(block)?;
    if kind != "tcp" {
        bail!("unknown listener type {kind}");
    }
    let mut listener = Listener {
        address: "127.0.0.1:8200".into(),
        tls_disable: false,
        tls_cert_file: None,
        tls_key_file: None,
        max_request_size: tresor_http::DEFAULT_MAX_REQUEST_SIZE,
    };
    for attr in attributes(&block.body) {
        match attr.key() {
            "address" => listener.address = string(attr)?,
            "tls_disable" => listener.tls_disable = boolean(attr)?,
            "tls_cert_file" => listener.tls_cert_file = Some(string(attr)?.into()),
            "tls_key_file" => listener.tls_key_file = Some(string(attr)?.into()),
            "max_request_size" => {
                let n = integer(attr)?;
                // Vault: 0 means the default, a negative value disables the limit.
                listener.max_request_size = match n {
                    0 => tresor_http::DEFAULT_MAX_REQUEST_SIZE,
                    n if n < 0 => usize::MAX,
                    n => usize::try_from(n).context("max_request_size out of range")?,
                };
            }
            "cluster_address" | "tls_min_version" | "proxy_protocol_behavior" => {}
            key => bail!("unknown tcp listener key {key:?}"),
        }
    }
    if !listener.tls_disable && (listener.tls_cert_file.is_none() || listener.tls_key_file.is_none()) {
        bail!("listener {}: tls_cert_file and tls_key_file are required unless tls_disable = 1", listener.address);
    }
    Ok(listener)
}

fn string(attr: Attribute) -> Result<String> {
    match attr.value {
        Value::Str(s) => Ok(s.clone()),
        _ => bail!("{} must be a string", attr.key()),
    }
}

/// Seconds, or a Go duration string (`"768h"`).
fn duration(attr: Attribute) -> Result<u64> {
    let v = match attr.value {
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Num(n) if n.fract() == 0.0 && *n >= 0.0 && *n < 9.0e15 => serde_json::Value::from(*n as u64),
        _ => bail!("{} must be a duration", attr.key()),
    };
    tresor_logical::parse_duration(&v).map_err(|_| anyhow!("{} must be a duration", attr.key()))
}

fn integer(attr: Attribute) -> Result<i64> {
    match attr.value {
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(*n as i64),
        Value::Str(s) => s.parse().map_err(|_| anyhow!("{} must be an integer", attr.key())),
        _ => bail!("{} must be an integer", attr.key()),
    }
}

/// Vault accepts `true`, `1`, `"true"`, `"1"` for booleans.
fn boolean(attr: Attribute) -> Result<bool> {
    match attr.value {
        Value::Bool(b) => Ok(*b),
        Value::Num(n) => Ok(*n != 0.0),
        Value::Str(s) => match s.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => bail!("{} must be a boolean", attr.key()),
        },
        _ => bail!("{} must be a boolean", attr.key()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_vault_shaped_example() {
        let c = Config::parse(
            r#"
            storage "sqlite" { path = "/tmp/x.db" }
            listener "tcp" {
              address = "127.0.0.1:8299"
              tls_disable = 1
            }
            api_addr = "http://127.0.0.1:8299"
            ui = true
            disable_mlock = true
            "#,
        )
        .unwrap();
        assert_eq!(c.storage, Storage::Sqlite { path: "/tmp/x.db".into() });
        assert_eq!(c.listeners[0].address, "127.0.0.1:8299");
        assert!(c.listeners[0].tls_disable);
        assert_eq!(c.api_addr.as_deref(), Some("http://127.0.0.1:8299"));
        assert_eq!((c.default_lease_ttl, c.max_lease_ttl), (None, None));
        let t = Config::parse("storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:1\"  tls_disable = 1 }\ndefault_lease_ttl = \"1h\"\nmax_lease_ttl = 7200\n").unwrap();
        assert_eq!((t.default_lease_ttl, t.max_lease_ttl), (Some(3600), Some(7200)));
        assert!(c.ui);
    }

    #[test]
    fn parses_declarative_audit_blocks() {
        let c = Config::parse(
            "storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:1\"  tls_disable = 1 }\n\
             audit \"file\" \"to-file\" {\n  description = \"d\"\n  options {\n    file_path = \"/tmp/a.log\"\n    log_raw = \"true\"\n  }\n}\n\
             audit \"socket\" { options = { address = \"127.0.0.1:9\", socket_type = \"tcp\" } }\n",
        )
        .unwrap();
        assert_eq!(c.audit.len(), 2);
        assert_eq!(c.audit[0].path, "to-file/");
        assert_eq!(c.audit[0].kind, "file");
        assert_eq!(c.audit[0].description, "d");
        assert_eq!(c.audit[0].options["file_path"], "/tmp/a.log");
        assert_eq!(c.audit[0].options["log_raw"], "true");
        assert_eq!(c.audit[1].path, "socket/");
        assert_eq!(c.audit[1].options["socket_type"], "tcp");
        assert!(Config::parse("storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:1\"  tls_disable = 1 }\naudit \"file\" {}\naudit \"file\" {}\n").is_err());
    }

    #[test]
    fn accepts_the_one_line_listener_of_the_fixed_interface() {
        let c = Config::parse(
            "storage \"sqlite\" { path = \"/tmp/t.db\" }\nlistener \"tcp\" { address = \"127.0.0.1:8299\"  tls_disable = 1 }\napi_addr = \"http://127.0.0.1:8299\"\n",
        )
        .unwrap();
        assert_eq!(c.listeners[0].address, "127.0.0.1:8299");
        assert!(c.listeners[0].tls_disable);
        let c = Config::parse("storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:1\", tls_disable = \"true\" }").unwrap();
        assert!(c.listeners[0].tls_disable);
    }

    #[test]
    fn rejects_unknown_storage_and_missing_tls_files() {
        let err = Config::parse("storage \"file\" { path = \"x\" }\nlistener \"tcp\" { tls_disable = true }").unwrap_err();
        assert!(format!("{err:#}").contains("unknown storage type file"));
        let err = Config::parse("storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:1\" }").unwrap_err();
        assert!(format!("{err:#}").contains("tls_cert_file"));
    }

    #[test]
    fn requires_storage_and_listener() {
        assert!(Config::parse(r#"listener "tcp" { tls_disable = 1 }"#).is_err());
        assert!(Config::parse(r#"storage "inmem" {}"#).is_err());
    }
}
