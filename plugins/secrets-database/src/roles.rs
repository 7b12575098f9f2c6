//! Dynamic roles (`roles/:name`), their credentials (`creds/:name`, leased), and the lease's renewal
//! and revocation.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_sdk::sql::{self, Statement, Value as SqlValue};
use tresor_sdk::{storage, system, Error, LeaseOptions, Request, Response, Secret};

use crate::config::{db_error, redact, statement_list, DbConfig};
use crate::template::{self, quote_ident, NameInput, StatementInput};

/// Vault's default renewal for PostgreSQL.
const DEFAULT_RENEW: &str = r#"ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'"#;

/// A dynamic role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    pub db_name: String,
    pub creation_statements: Vec<String>,
    pub revocation_statements: Vec<String>,
    pub rollback_statements: Vec<String>,
    pub renew_statements: Vec<String>,
    pub default_ttl: u64,
    pub max_ttl: u64,
    pub credential_type: String,
}

const FOLDER: &str = "role/";

fn key(name: &str) -> String {
    format!("{FOLDER}{name}")
}

impl Role {
    pub fn load(name: &str) -> Result<Option<Self>, Error> {
        storage::get_json(&key(name))
    }

    fn to_json(&self) -> Value {
        json!({
            "creation_statements": self.creation_statements,
            "credential_type": self.credential_type,
            "db_name": self.db_name,
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "renew_statements": self.renew_statements,
            "revocation_statements": self.revocation_statements,
            "rollback_statements": self.rollback_statements,
        })
    }
}

/// `roles/:name` and `LIST roles`.
pub fn handle(req: &Request) -> Result<Response, Error> {
    crate::named_item(req, FOLDER, Role::to_json, |name| write(req, name), |_| {})
}

fn write(req: &Request, name: &str) -> Result<Response, Error> {
    let mut role = Role::load(name)?.unwrap_or(Role { credential_type: "password".into(), ..Role::default() });
    if crate::static_roles::StaticRole::load(name)?.is_some() {
        return Err(Error::invalid("Role and Static Role names must be unique"));
    }
    if let Some(db) = req.str("db_name") {
        role.db_name = db.to_string();
    }
    if role.db_name.is_empty() {
        return Err(Error::invalid("empty database name attribute"));
    }
    if let Some(s) = statement_list(req, "creation_statements")? {
        role.creation_statements = s;
    }
    for (field, slot) in [
        ("revocation_statements", &mut role.revocation_statements),
        ("rollback_statements", &mut role.rollback_statements),
        ("renew_statements", &mut role.renew_statements),
    ] {
        if let Some(s) = statement_list(req, field)? {
            *slot = s;
        }
    }
    if let Some(t) = req.duration("default_ttl") {
        role.default_ttl = t;
    }
    if let Some(t) = req.duration("max_ttl") {
        role.max_ttl = t;
    }
    if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
        return Err(Error::invalid("ttl cannot be greater than max_ttl"));
    }
    if let Some(t) = req.str("credential_type") {
        if t != "password" {
            return Err(Error::invalid(format!("credential_type {t:?} is not supported: only \"password\"")));
        }
        role.credential_type = t.to_string();
    }
    storage::put_json(&key(name), &role)?;
    Ok(Response::empty())
}

/// What the lease keeps host-side for revocation and renewal.
#[derive(Debug, Serialize, Deserialize)]
struct Internal {
    username: String,
    role: String,
    db_name: String,
}

/// `creds/:name`: create a user and lease it.
pub fn creds(req: &Request) -> Result<Response, Error> {
    let role_name = req.captured("name").unwrap_or_default();
    let role = Role::load(role_name)?.ok_or_else(|| Error::invalid(format!("unknown role: {role_name}")))?;
    let config = DbConfig::require(&role.db_name)?;
    if !config.allows(role_name) {
        return Err(Error::invalid(format!("{role_name:?} is not an allowed role")));
    }
    let mount_default = system::default_lease_ttl();
    let mount_max = system::max_lease_ttl();
    let max_ttl = if role.max_ttl > 0 { role.max_ttl.min(mount_max) } else { mount_max };
    let ttl = if role.default_ttl > 0 { role.default_ttl } else { mount_default }.min(max_ttl);
    let (now, _) = system::now();
    let expiration = template::expiration(now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2)));
    let display = system::caller_display_name();
    let tpl = if config.username_template.is_empty() { template::DEFAULT_USERNAME_TEMPLATE } else { &config.username_template };
    let username = template::username(tpl, &NameInput { display_name: &display, role_name, unix_time: now })
        .map_err(|e| Error::invalid(format!("unable to generate username: {e}")))?;
    let password = crate::password::generate()?;
    if role.creation_statements.is_empty() {
        return Err(Error::invalid("unable to create user: empty creation statements"));
    }
    let input = StatementInput { name: &username, password: &password, expiration: &expiration };
    let conn = config.connection(&role.db_name);
    let create = template::statements(&role.creation_statements, &input);
    if let Err(e) = sql::execute(&conn, &create, true) {
        // The transaction rolled back whatever it did; rollback statements undo what cannot be
        // transactional (Vault's contract). Their own failure is logged, the creation error returned.
        if !role.rollback_statements.is_empty() {
            let rollback = template::statements(&role.rollback_statements, &input);
            if let Err(re) = sql::execute(&conn, &rollback, false) {
                system::log(system::LogLevel::Warn, &format!("rollback statements for role {role_name} failed: {}", redact(re.to_string(), &[&password])));
            }
        }
        return Err(db_error("unable to create user", &e, &[&password, &config.password]));
    }
    let internal = json!(Internal { username: username.clone(), role: role_name.to_string(), db_name: role.db_name.clone() });
    let mut response = Response::data(json!({"username": username, "password": password.as_str()}));
    response.secret = Some(Secret { internal, lease: LeaseOptions { ttl, max_ttl, renewable: true } });
    Ok(response)
}

fn internal(secret: &Secret) -> Result<Internal, Error> {
    serde_json::from_value(secret.internal.clone()).map_err(|_| Error::internal("lease data is not a database credential"))
}

/// Extend the user's `VALID UNTIL` to the renewed lease's end.
pub fn renew(secret: Secret) -> Result<LeaseOptions, Error> {
    let data = internal(&secret)?;
    let config = DbConfig::require(&data.db_name)?;
    let role = Role::load(&data.role)?;
    let (now, _) = system::now();
    let ttl = secret.lease.ttl;
    let expiration = template::expiration(now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2)));
    let list = match role.as_ref().map(|r| &r.renew_statements) {
        Some(l) if !l.is_empty() => l.clone(),
        _ => vec![DEFAULT_RENEW.to_string()],
    };
    let stmts = template::statements(&list, &StatementInput { name: &data.username, password: "", expiration: &expiration });
    sql::execute(&config.connection(&data.db_name), &stmts, true).map_err(|e| db_error("unable to renew user", &e, &[&config.password]))?;
    Ok(LeaseOptions { ttl, max_ttl: secret.lease.max_ttl, renewable: true })
}

/// Drop the user: the role's revocation statements, or the default below.
pub fn revoke(secret: Secret) -> Result<(), Error> {
    let data = internal(&secret)?;
    let config = DbConfig::require(&data.db_name)?;
    let conn = config.connection(&data.db_name);
    let custom = Role::load(&data.role)?.map(|r| r.revocation_statements).unwrap_or_default();
    if !custom.is_empty() {
        let stmts = template::statements(&custom, &StatementInput { name: &data.username, password: "", expiration: "" });
        sql::execute(&conn, &stmts, true).map_err(|e| db_error("unable to revoke user", &e, &[&config.password]))?;
        return Ok(());
    }
    default_revoke(&conn, &data.username).map_err(|e| db_error("unable to revoke user", &e, &[&config.password]))
}

/// Vault's default PostgreSQL revocation, plus what it leaves out: no new logins, open sessions
/// terminated, owned objects reassigned to the connecting (root) user and dropped privileges, then
/// the role dropped. A user that no longer exists is already revoked.
pub fn default_revoke(conn: &sql::Connection, username: &str) -> Result<(), sql::SqlError> {
    let who = || vec![SqlValue::Text(username.to_string())];
    let exists = sql::query(conn, &Statement::new("SELECT 1 FROM pg_roles WHERE rolname = $1", who()))?;
    if exists.rows.is_empty() {
        return Ok(());
    }
    let schemas = sql::query(conn, &Statement::new("SELECT DISTINCT table_schema FROM information_schema.role_column_grants WHERE grantee = $1", who()))?;
    let db = sql::query(conn, &Statement::raw("SELECT current_database()"))?;
    let user = quote_ident(username);
    let mut stmts = vec![
        Statement::raw(format!("ALTER ROLE {user} NOLOGIN")),
        Statement::new("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", who()),
    ];
    let mut schema_names: Vec<String> = schemas.rows.iter().filter_map(|r| r.first().and_then(SqlValue::as_str).map(str::to_string)).collect();
    if !schema_names.iter().any(|s| s == "public") {
        schema_names.push("public".into());
    }
    for schema in &schema_names {
        let schema = quote_ident(schema);
        stmts.push(Statement::raw(format!("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {schema} FROM {user}")));
        stmts.push(Statement::raw(format!("REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA {schema} FROM {user}")));
        stmts.push(Statement::raw(format!("REVOKE USAGE ON SCHEMA {schema} FROM {user}")));
    }
    if let Some(name) = db.rows.first().and_then(|r| r.first()).and_then(SqlValue::as_str) {
        stmts.push(Statement::raw(format!("REVOKE CONNECT ON DATABASE {} FROM {user}", quote_ident(name))));
    }
    stmts.push(Statement::raw(format!("REASSIGN OWNED BY {user} TO CURRENT_USER")));
    stmts.push(Statement::raw(format!("DROP OWNED BY {user}")));
    stmts.push(Statement::raw(format!("DROP ROLE IF EXISTS {user}")));
    sql::execute(conn, &stmts, true).map(|_| ())
}
