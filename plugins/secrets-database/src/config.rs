//! `config/:name`: database connections (Vault's `postgresql-database-plugin`), `rotate-root/:name`
//! and `reset/:name`. The root password is stored in the mount's (encrypted) storage and never
//! returned by any read.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_sdk::sql::{self, Connection, SqlError};
use tresor_sdk::{storage, Error, Request, Response};

use crate::template::{self, StatementInput};

/// The only database type this engine speaks.
pub const POSTGRES_PLUGIN: &str = "postgresql-database-plugin";

/// Vault's default root rotation statement for PostgreSQL.
const DEFAULT_ROOT_ROTATION: &str = r#"ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}'"#;

/// One configured database.
/// No `Debug`: it holds the root password.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DbConfig {
    pub plugin_name: String,
    /// With `{{username}}` / `{{password}}` placeholders (or literal credentials).
    pub connection_url: String,
    pub username: String,
    pub password: String,
    pub allowed_roles: Vec<String>,
    pub password_policy: String,
    pub username_template: String,
    pub root_rotation_statements: Vec<String>,
    pub verify_connection: bool,
    pub disable_escaping: bool,
    pub max_open_connections: Option<u32>,
    pub max_idle_connections: Option<u32>,
    pub max_connection_lifetime: Option<u64>,
}

const FOLDER: &str = "config/";

fn key(name: &str) -> String {
    format!("{FOLDER}{name}")
}

impl DbConfig {
    /// The stored config `name`.
    pub fn load(name: &str) -> Result<Option<Self>, Error> {
        storage::get_json(&key(name))
    }

    /// The stored config `name`, which a role or lease refers to (400 when it is gone).
    pub fn require(name: &str) -> Result<Self, Error> {
        Self::load(name)?.ok_or_else(|| Error::invalid(format!("could not find database configuration {name:?}")))
    }

    /// The host-side connection for this config (pool named after the config).
    pub fn connection(&self, name: &str) -> Connection {
        let escape = |s: &str| if self.disable_escaping { s.to_string() } else { url_escape(s) };
        let url = self.connection_url.replace("{{username}}", &escape(&self.username)).replace("{{password}}", &escape(&self.password));
        let mut c = Connection::new(name, url);
        c.max_open = self.max_open_connections.unwrap_or(4);
        c.max_idle_seconds = u32::try_from(self.max_connection_lifetime.unwrap_or(0)).unwrap_or(u32::MAX);
        c
    }

    /// Whether `role` may use this database (`*` and trailing-`*` globs as Vault).
    pub fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|r| r == "*" || r == role || r.strip_suffix('*').is_some_and(|p| role.starts_with(p)))
    }

    /// The URL as shown by reads: a literal password is masked, as Vault does.
    fn shown_url(&self) -> String {
        let url = &self.connection_url;
        let Some((scheme, rest)) = url.split_once("://") else { return url.clone() };
        let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.clone() };
        match userinfo.split_once(':') {
            Some((user, pw)) if !pw.is_empty() && pw != "{{password}}" => format!("{scheme}://{user}:*****@{host}"),
            _ => url.clone(),
        }
    }

    fn to_json(&self) -> Value {
        let mut details = json!({"connection_url": self.shown_url(), "username": self.username});
        if let Some(n) = self.max_open_connections {
            details["max_open_connections"] = json!(n);
        }
        if let Some(n) = self.max_idle_connections {
            details["max_idle_connections"] = json!(n);
        }
        if let Some(n) = self.max_connection_lifetime {
            details["max_connection_lifetime"] = json!(format!("{n}s"));
        }
        json!({
            "allowed_roles": self.allowed_roles,
            "connection_details": details,
            "password_policy": self.password_policy,
            "plugin_name": self.plugin_name,
            "plugin_version": "",
            "root_credentials_rotate_statements": self.root_rotation_statements,
        })
    }
}

/// Percent-encode a URL userinfo component (RFC 3986 unreserved characters stay).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A statement-list field: a JSON list of strings, or one string (kept whole: it may hold commas).
pub fn statement_list(req: &Request, field: &str) -> Result<Option<Vec<String>>, Error> {
    let Some(v) = req.json(field) else { return Ok(None) };
    match v {
        Value::Null => Ok(Some(Vec::new())),
        Value::String(s) if s.trim().is_empty() => Ok(Some(Vec::new())),
        Value::String(s) => Ok(Some(vec![s.clone()])),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| Error::invalid(format!("{field} must be a list of strings"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(Error::invalid(format!("{field} must be a list of strings"))),
    }
}

/// A string-list field given as a list or a comma-separated string.
pub fn string_list(req: &Request, field: &str) -> Option<Vec<String>> {
    req.str_list(field).map(|l| l.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// A database error as the client sees it: the database's message, never a password.
pub fn db_error(context: &str, e: &SqlError, secrets: &[&str]) -> Error {
    Error::invalid(redact(format!("{context}: {e}"), secrets))
}

/// `message` with every non-empty secret replaced by `[redacted]`.
pub fn redact(mut message: String, secrets: &[&str]) -> String {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        message = message.replace(*s, "[redacted]");
    }
    message
}

/// `config/:name` and `LIST config`.
pub fn handle(req: &Request) -> Result<Response, Error> {
    crate::named_item(req, FOLDER, DbConfig::to_json, |name| write(req, name), sql::close)
}

fn write(req: &Request, name: &str) -> Result<Response, Error> {
    let existing = DbConfig::load(name)?;
    let mut c = existing.clone().unwrap_or(DbConfig { verify_connection: true, ..DbConfig::default() });
    if let Some(p) = req.str("plugin_name") {
        c.plugin_name = p.to_string();
    }
    if c.plugin_name.is_empty() {
        return Err(Error::invalid("empty plugin name"));
    }
    if c.plugin_name != POSTGRES_PLUGIN {
        return Err(Error::invalid(format!(
            "error creating database object: unsupported database plugin {:?}: this engine supports {POSTGRES_PLUGIN}",
            c.plugin_name
        )));
    }
    if let Some(u) = req.str("connection_url") {
        c.connection_url = u.to_string();
    }
    if let Some(u) = req.str("username") {
        c.username = u.to_string();
    }
    if let Some(p) = req.str("password") {
        c.password = p.to_string();
    }
    if let Some(r) = string_list(req, "allowed_roles") {
        c.allowed_roles = r;
    }
    if let Some(p) = req.str("password_policy") {
        if !p.is_empty() {
            return Err(Error::invalid("password_policy is not supported yet (sys/policies/password is not implemented); omit it to use the default policy"));
        }
        c.password_policy = String::new();
    }
    if let Some(t) = req.str("username_template") {
        c.username_template = t.to_string();
    }
    if let Some(s) = statement_list(req, "root_rotation_statements")? {
        c.root_rotation_statements = s;
    }
    if let Some(v) = req.bool("verify_connection") {
        c.verify_connection = v;
    }
    if let Some(v) = req.bool("disable_escaping") {
        c.disable_escaping = v;
    }
    let count = |f: &str| -> Result<Option<u32>, Error> {
        req.int(f).map(|n| u32::try_from(n).map_err(|_| Error::invalid(format!("{f} must be a non-negative number")))).transpose()
    };
    if let Some(n) = count("max_open_connections")? {
        c.max_open_connections = Some(n);
    }
    if let Some(n) = count("max_idle_connections")? {
        c.max_idle_connections = Some(n);
    }
    if let Some(n) = req.duration("max_connection_lifetime") {
        c.max_connection_lifetime = Some(n);
    }
    if c.connection_url.is_empty() {
        return Err(Error::invalid("error creating database object: connection_url cannot be empty"));
    }
    if !c.username_template.is_empty() {
        let probe = template::NameInput { display_name: "token", role_name: "role", unix_time: 0 };
        template::username(&c.username_template, &probe).map_err(|e| Error::invalid(format!("unable to initialize username template: {e}")))?;
    }
    let conn = c.connection(name);
    if c.verify_connection {
        sql::ping(&conn).map_err(|e| db_error("error creating database object: error verifying connection", &e, &[&c.password]))?;
    }
    storage::put_json(&key(name), &c)?;
    Ok(Response::empty())
}

/// `rotate-root/:name`: a new root password, set in the database, then stored.
pub fn rotate_root(req: &Request) -> Result<Response, Error> {
    let name = req.captured("name").unwrap_or_default();
    let mut c = DbConfig::load(name)?.ok_or_else(|| Error::invalid(format!("unable to read connection configuration for {name:?}")))?;
    if c.username.is_empty() {
        return Err(Error::invalid("unable to rotate root credentials: no username in configuration"));
    }
    let old = c.connection(name);
    let password = crate::password::generate()?;
    let list = if c.root_rotation_statements.is_empty() { vec![DEFAULT_ROOT_ROTATION.to_string()] } else { c.root_rotation_statements.clone() };
    let stmts = template::statements(&list, &StatementInput { name: &c.username, password: &password, expiration: "" });
    sql::execute(&old, &stmts, true).map_err(|e| db_error("failed to update user", &e, &[&password, &c.password]))?;
    c.password = password.to_string();
    storage::put_json(&key(name), &c)?;
    // The pool still holds sessions authenticated with the old password; start afresh.
    sql::close(name);
    Ok(Response::empty())
}

/// `reset/:name`: close the connection pool; the next use reconnects with the stored settings.
pub fn reset(req: &Request) -> Result<Response, Error> {
    let name = req.captured("name").unwrap_or_default();
    let c = DbConfig::load(name)?.ok_or_else(|| Error::invalid(format!("unable to read connection configuration for {name:?}")))?;
    sql::close(name);
    if c.verify_connection {
        sql::ping(&c.connection(name)).map_err(|e| db_error("error reconnecting", &e, &[&c.password]))?;
    }
    Ok(Response::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_templated_escaped_and_masked() {
        let c = DbConfig {
            connection_url: "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?sslmode=disable".into(),
            username: "vault admin".into(),
            password: "p@ss:/word".into(),
            ..DbConfig::default()
        };
        assert_eq!(c.connection("pg").url, "postgresql://vault%20admin:p%40ss%3A%2Fword@127.0.0.1:5432/postgres?sslmode=disable");
        assert_eq!(c.shown_url(), c.connection_url);
        let literal = DbConfig { connection_url: "postgres://root:hunter2@db:5432/x".into(), ..DbConfig::default() };
        assert_eq!(literal.shown_url(), "postgres://root:*****@db:5432/x");
        assert!(!literal.to_json().to_string().contains("hunter2"));
        assert!(!c.to_json().to_string().contains("p@ss"));
    }

    #[test]
    fn allowed_roles_globs() {
        let c = DbConfig { allowed_roles: vec!["ro".into(), "app-*".into()], ..DbConfig::default() };
        assert!(c.allows("ro") && c.allows("app-1") && !c.allows("rw"));
        assert!(DbConfig { allowed_roles: vec!["*".into()], ..DbConfig::default() }.allows("any"));
        assert!(!DbConfig::default().allows("ro"));
    }
}
