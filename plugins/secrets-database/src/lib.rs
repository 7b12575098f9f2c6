//! The database secrets engine (Vault's API, API.md §17.1) for PostgreSQL: dynamic users created
//! per `creds/:role` read and dropped when their lease ends, static roles whose passwords rotate on
//! schedule, and root credential rotation. The engine never connects itself: every statement goes
//! through the host's `sql` capability, which owns the connection pools and only reaches hosts the
//! mount's `allowed_outbound_hosts` grants.
//!
//! Storage layout inside the mount's view:
//! - `config/<name>` → [`config::DbConfig`] (the root password included; never returned by reads),
//! - `role/<name>` → [`roles::Role`],
//! - `static-role/<name>` → [`static_roles::StaticRole`] (with the current password).

pub mod config;
pub mod password;
pub mod roles;
pub mod static_roles;
pub mod template;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tresor_sdk::{storage, Backend, Error, Field, FieldKind, LeaseOptions, Operation, Path, Request, Response, Secret, Spec};

/// The database engine.
pub struct Database;

/// One kind of named, stored item (`config/`, `role/`, `static-role/`): LIST of the folder, read
/// (`show`), delete (then `deleted`), and create/update (`write`).
fn named_item<T: DeserializeOwned>(
    req: &Request,
    folder: &str,
    show: impl Fn(&T) -> Value,
    write: impl FnOnce(&str) -> Result<Response, Error>,
    deleted: impl FnOnce(&str),
) -> Result<Response, Error> {
    use Operation::{Create, Delete, List, Read, Update};
    let Some(name) = req.captured("name").filter(|n| !n.is_empty()) else {
        return match req.operation {
            List => Response::list(storage::list(folder)?),
            _ => Err(Error::UnsupportedOperation),
        };
    };
    match req.operation {
        Read => match storage::get_json::<T>(&format!("{folder}{name}"))? {
            Some(item) => Ok(Response::data(show(&item))),
            None => Err(Error::NotFound),
        },
        Delete => {
            storage::delete(&format!("{folder}{name}"))?;
            deleted(name);
            Ok(Response::empty())
        }
        Create | Update => write(name),
        _ => Err(Error::UnsupportedOperation),
    }
}

fn f(name: &str, kind: FieldKind, description: &str) -> Field {
    Field::new(name, kind).description(description)
}

fn listing(p: &str, help: &str) -> [Path; 2] {
    [Path::new(p).operations([Operation::List]).help(help), Path::new(format!("{p}/")).operations([Operation::List]).help(help)]
}

impl Backend for Database {
    fn spec() -> Spec {
        use Operation::{Create, Delete, Read, Update};
        let statements = "SQL statements (a list, or one string); each may hold several ';'-separated statements";
        let mut spec = Spec::secrets("Dynamic and static database credentials (PostgreSQL).");
        for p in listing("config", "List the configured databases.")
            .into_iter()
            .chain(listing("roles", "List the dynamic roles."))
            .chain(listing("static-roles", "List the static roles."))
        {
            spec = spec.path(p);
        }
        spec.path(
            Path::new("config/{name}")
                .field(f("plugin_name", FieldKind::Str, "Database plugin: postgresql-database-plugin"))
                .field(f("plugin_version", FieldKind::Str, "Ignored (built in)"))
                .field(f("connection_url", FieldKind::Str, "Connection URL with {{username}} and {{password}} placeholders").sensitive())
                .field(f("username", FieldKind::Str, "Root username"))
                .field(f("password", FieldKind::Str, "Root password (never returned)").sensitive())
                .field(f("allowed_roles", FieldKind::StrList, "Roles allowed to use this database (* for all)"))
                .field(f("password_policy", FieldKind::Str, "Password policy name (not supported yet)"))
                .field(f("username_template", FieldKind::Str, "Template for generated usernames"))
                .field(f("root_rotation_statements", FieldKind::Json, statements))
                .field(f("verify_connection", FieldKind::Bool, "Connect once before saving (default true)"))
                .field(f("disable_escaping", FieldKind::Bool, "Do not URL-escape the credentials placed into the URL"))
                .field(f("max_open_connections", FieldKind::Int, "Pool size (default 4)"))
                .field(f("max_idle_connections", FieldKind::Int, "Idle connections kept (informational)"))
                .field(f("max_connection_lifetime", FieldKind::Duration, "Idle connection lifetime"))
                .operations([Create, Update, Read, Delete])
                .existence_check()
                .help("Configure a database connection."),
        )
        .path(
            Path::new("roles/{name}")
                .field(f("db_name", FieldKind::Str, "Database configuration to use"))
                .field(f("creation_statements", FieldKind::Json, statements))
                .field(f("revocation_statements", FieldKind::Json, statements))
                .field(f("rollback_statements", FieldKind::Json, statements))
                .field(f("renew_statements", FieldKind::Json, statements))
                .field(f("default_ttl", FieldKind::Duration, "Default lease TTL"))
                .field(f("max_ttl", FieldKind::Duration, "Maximum lease TTL"))
                .field(f("credential_type", FieldKind::Str, "password"))
                .field(f("credential_config", FieldKind::Json, "Ignored"))
                .operations([Create, Update, Read, Delete])
                .existence_check()
                .help("Manage a dynamic role."),
        )
        .path(Path::new("creds/{name}").operations([Read]).help("Create a database user for the role, under a lease."))
        .path(
            Path::new("static-roles/{name}")
                .field(f("db_name", FieldKind::Str, "Database configuration to use"))
                .field(f("username", FieldKind::Str, "The existing database user"))
                .field(f("rotation_period", FieldKind::Duration, "Rotate the password this often (at least 5s)"))
                .field(f("rotation_statements", FieldKind::Json, statements))
                .field(f("credential_type", FieldKind::Str, "password"))
                .operations([Create, Update, Read, Delete])
                .existence_check()
                .help("Manage a static role."),
        )
        .path(Path::new("static-creds/{name}").operations([Read]).help("Read a static role's current password."))
        .path(Path::new("rotate-root/{name}").operations([Update]).help("Rotate the root password of a database."))
        .path(Path::new("rotate-role/{name}").operations([Update]).help("Rotate a static role's password now."))
        .path(Path::new("reset/{name}").operations([Update]).help("Close and reopen a database's connections."))
    }

    fn handle(req: Request) -> Result<Response, Error> {
        let first = req.path.split('/').next().unwrap_or_default();
        match first {
            "config" => config::handle(&req),
            "roles" => roles::handle(&req),
            "creds" => roles::creds(&req),
            "static-roles" => static_roles::handle(&req),
            "static-creds" => static_roles::creds(&req),
            "rotate-root" => config::rotate_root(&req),
            "rotate-role" => static_roles::rotate_role(&req),
            "reset" => config::reset(&req),
            _ => Err(Error::UnsupportedPath),
        }
    }

    fn exists(req: Request) -> Result<bool, Error> {
        let name = req.captured("name").unwrap_or_default();
        Ok(match req.path.split('/').next().unwrap_or_default() {
            "config" => config::DbConfig::load(name)?.is_some(),
            "roles" => roles::Role::load(name)?.is_some(),
            "static-roles" => static_roles::StaticRole::load(name)?.is_some(),
            _ => false,
        })
    }

    fn renew_secret(secret: Secret) -> Result<LeaseOptions, Error> {
        roles::renew(secret)
    }

    fn revoke_secret(secret: Secret) -> Result<(), Error> {
        roles::revoke(secret)
    }

    fn periodic() -> Result<(), Error> {
        static_roles::rotate_due()
    }
}

tresor_sdk::export!(Database);

#[cfg(test)]
mod tests;
