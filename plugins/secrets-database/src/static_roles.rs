//! Static roles: an existing database user whose password this engine owns and rotates every
//! `rotation_period` (from the host's periodic call), on `rotate-role/:name`, and when the role is
//! created. `static-creds/:name` reads the current password.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_sdk::sql;
use tresor_sdk::{storage, system, Error, Request, Response};

use crate::config::{db_error, statement_list, DbConfig};
use crate::template::{self, StatementInput};

/// Vault's default rotation for PostgreSQL.
const DEFAULT_ROTATION: &str = r#"ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'"#;
/// Vault's floor for `rotation_period`.
const MIN_ROTATION_PERIOD: u64 = 5;

/// No `Debug`: it holds the password.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StaticRole {
    pub db_name: String,
    pub username: String,
    pub rotation_period: u64,
    pub rotation_statements: Vec<String>,
    pub credential_type: String,
    pub password: String,
    /// Unix seconds and nanoseconds of the last rotation.
    pub last_rotation: (i64, u32),
}

const FOLDER: &str = "static-role/";

fn key(name: &str) -> String {
    format!("{FOLDER}{name}")
}

impl StaticRole {
    pub fn load(name: &str) -> Result<Option<Self>, Error> {
        storage::get_json(&key(name))
    }

    fn last_rotation_text(&self) -> String {
        system::rfc3339(self.last_rotation.0, self.last_rotation.1)
    }

    /// Seconds until the next scheduled rotation (0 when due).
    fn ttl(&self, now: i64) -> u64 {
        let next = self.last_rotation.0.saturating_add(i64::try_from(self.rotation_period).unwrap_or(i64::MAX / 2));
        u64::try_from(next.saturating_sub(now)).unwrap_or(0)
    }

    fn to_json(&self) -> Value {
        json!({
            "credential_type": self.credential_type,
            "db_name": self.db_name,
            "last_vault_rotation": self.last_rotation_text(),
            "rotation_period": self.rotation_period,
            "rotation_statements": self.rotation_statements,
            "username": self.username,
        })
    }

    /// Set a new password in the database, then record it.
    fn rotate(&mut self, name: &str) -> Result<(), Error> {
        let config = DbConfig::require(&self.db_name)?;
        if !config.allows(name) {
            return Err(Error::invalid(format!("{name:?} is not an allowed role")));
        }
        let password = crate::password::generate()?;
        let list = if self.rotation_statements.is_empty() { vec![DEFAULT_ROTATION.to_string()] } else { self.rotation_statements.clone() };
        let stmts = template::statements(&list, &StatementInput { name: &self.username, password: &password, expiration: "" });
        sql::execute(&config.connection(&self.db_name), &stmts, true)
            .map_err(|e| db_error("error setting credentials", &e, &[&password, &config.password]))?;
        self.password = password.to_string();
        self.last_rotation = system::now();
        storage::put_json(&key(name), self)
    }
}

/// `static-roles/:name` and `LIST static-roles`.
pub fn handle(req: &Request) -> Result<Response, Error> {
    crate::named_item(req, FOLDER, StaticRole::to_json, |name| write(req, name), |_| {})
}

fn write(req: &Request, name: &str) -> Result<Response, Error> {
    if crate::roles::Role::load(name)?.is_some() {
        return Err(Error::invalid("Role and Static Role names must be unique"));
    }
    let existing = StaticRole::load(name)?;
    let mut role = existing.clone().unwrap_or(StaticRole { credential_type: "password".into(), ..StaticRole::default() });
    if let Some(db) = req.str("db_name") {
        role.db_name = db.to_string();
    }
    if role.db_name.is_empty() {
        return Err(Error::invalid("database name is a required field"));
    }
    match (req.str("username"), &existing) {
        (Some(u), Some(e)) if u != e.username => return Err(Error::invalid("cannot update static account username")),
        (Some(u), _) => role.username = u.to_string(),
        (None, _) => {}
    }
    if role.username.is_empty() {
        return Err(Error::invalid("username is a required field to create a static account"));
    }
    if let Some(p) = req.duration("rotation_period") {
        role.rotation_period = p;
    }
    if role.rotation_period == 0 {
        return Err(Error::invalid("rotation_period is required to create static accounts"));
    }
    if role.rotation_period < MIN_ROTATION_PERIOD {
        return Err(Error::invalid(format!("rotation_period must be {MIN_ROTATION_PERIOD} seconds or more")));
    }
    if let Some(s) = statement_list(req, "rotation_statements")? {
        role.rotation_statements = s;
    }
    if existing.is_none() {
        // A new static role takes the password over at once, as Vault does.
        role.rotate(name)?;
    } else {
        storage::put_json(&key(name), &role)?;
    }
    Ok(Response::empty())
}

/// `static-creds/:name`.
pub fn creds(req: &Request) -> Result<Response, Error> {
    let name = req.captured("name").unwrap_or_default();
    let role = StaticRole::load(name)?.ok_or_else(|| Error::invalid(format!("unknown role: {name}")))?;
    let (now, _) = system::now();
    Ok(Response::data(json!({
        "last_vault_rotation": role.last_rotation_text(),
        "password": role.password,
        "rotation_period": role.rotation_period,
        "ttl": role.ttl(now),
        "username": role.username,
    })))
}

/// `rotate-role/:name`.
pub fn rotate_role(req: &Request) -> Result<Response, Error> {
    let name = req.captured("name").unwrap_or_default();
    let mut role = StaticRole::load(name)?.ok_or_else(|| Error::invalid("no static role found for role name"))?;
    role.rotate(name)?;
    Ok(Response::empty())
}

/// The periodic call: rotate every static role whose period has passed. One role's failure is
/// logged and does not stop the others (their new passwords must be recorded).
pub fn rotate_due() -> Result<(), Error> {
    let (now, _) = system::now();
    for name in storage::list("static-role/")? {
        if name.ends_with('/') {
            continue;
        }
        let Some(mut role) = StaticRole::load(&name)? else { continue };
        if role.ttl(now) > 0 {
            continue;
        }
        if let Err(e) = role.rotate(&name) {
            system::log(system::LogLevel::Warn, &format!("scheduled rotation of static role {name} failed: {e:?}"));
        }
    }
    Ok(())
}
