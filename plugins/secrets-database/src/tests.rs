//! Handler tests against the SDK's mock host: in-memory storage and a SQL mock that records the
//! statements it is sent (the real database is exercised by `tests/tests/database.rs`).

use serde_json::{json, Value};
use tresor_sdk::sql::{self, SqlError};
use tresor_sdk::{storage, Backend as _, Error, Operation, Request, Value as V};

use crate::Database;

fn req(op: Operation, path: &str, data: Value) -> Request {
    let mut r = Request::new(op, path);
    if let Some((_, name)) = path.split_once('/') {
        r = r.capture("name", name);
    }
    if let Value::Object(m) = data {
        for (k, v) in m {
            let v = match v {
                Value::String(s) if k.ends_with("ttl") || k == "rotation_period" => V::Duration(s.trim_end_matches('s').parse().unwrap_or(0)),
                Value::String(s) if k == "allowed_roles" => V::StrList(s.split(',').map(str::to_string).collect()),
                Value::String(s) if !k.ends_with("statements") => V::Str(s),
                Value::Bool(b) => V::Bool(b),
                Value::Number(n) => V::Int(n.as_i64().unwrap_or_default()),
                other => V::Json(other.into()),
            };
            r = r.with(k, v);
        }
    }
    r
}

fn call(op: Operation, path: &str, data: Value) -> Result<tresor_sdk::Response, Error> {
    Database::handle(req(op, path, data))
}

fn setup() {
    storage::reset_mock();
    sql::reset_mock();
    call(
        Operation::Update,
        "config/pg",
        json!({"plugin_name": "postgresql-database-plugin", "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres",
               "username": "postgres", "password": "rootpw-secret", "allowed_roles": "ro"}),
    )
    .expect("config");
    call(
        Operation::Update,
        "roles/ro",
        json!({"db_name": "pg", "default_ttl": "3600", "max_ttl": "86400",
               "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
               "rollback_statements": ["DROP ROLE IF EXISTS \"{{name}}\""]}),
    )
    .expect("role");
}

#[test]
fn config_reads_never_show_the_password_and_verify_by_default() {
    setup();
    assert_eq!(sql::mock_statements(), vec!["SELECT 1".to_string()], "verify_connection pings");
    let read = call(Operation::Read, "config/pg", json!({})).expect("read").data.expect("data");
    assert!(!read.to_string().contains("rootpw-secret"), "{read}");
    assert_eq!(read["connection_details"]["username"], "postgres");
    assert_eq!(read["allowed_roles"], json!(["ro"]));
    let err = call(Operation::Update, "config/my", json!({"plugin_name": "mysql-database-plugin", "connection_url": "x"})).err();
    assert!(matches!(err, Some(Error::InvalidRequest(m)) if m.contains("mysql-database-plugin")));
    sql::mock_fail_on("SELECT 1", SqlError::Connect("connection refused".into()));
    let err = call(Operation::Update, "config/other", json!({"plugin_name": "postgresql-database-plugin", "connection_url": "postgres://a:b@h/d"})).err();
    assert!(matches!(&err, Some(Error::InvalidRequest(m)) if m.contains("error verifying connection") && m.contains("connection refused")), "{err:?}");
    assert!(call(Operation::Read, "config/other", json!({})).is_err(), "a failed verification stores nothing");
}

#[test]
fn creds_run_the_creation_statements_with_a_fresh_name_and_password() {
    setup();
    sql::mock_fail_on("never", SqlError::Timeout);
    let resp = call(Operation::Read, "creds/ro", json!({})).expect("creds");
    let data = resp.data.expect("data");
    let user = data["username"].as_str().expect("username");
    let pw = data["password"].as_str().expect("password");
    assert!(user.starts_with("v-root-ro-"), "{user}");
    assert_eq!(pw.len(), 20);
    let ran = sql::mock_statements();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran[0].starts_with(&format!("CREATE ROLE \"{user}\" WITH LOGIN PASSWORD '{pw}' VALID UNTIL '")));
    assert_eq!(ran[1], format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{user}\""));
    let secret = resp.secret.expect("a lease");
    assert_eq!((secret.lease.ttl, secret.lease.max_ttl, secret.lease.renewable), (3600, 86400, true));
    assert_eq!(secret.internal["username"], user);
    let again = call(Operation::Read, "creds/ro", json!({})).expect("creds").data.expect("data");
    assert_ne!(again["username"], data["username"]);
    assert_ne!(again["password"], data["password"]);
}

#[test]
fn a_failed_creation_runs_the_rollback_and_hides_the_password() {
    setup();
    sql::mock_fail_on("GRANT", SqlError::Database { code: "42P01".into(), message: "relation \"nope\" does not exist".into() });
    let err = call(Operation::Read, "creds/ro", json!({})).err();
    let Some(Error::InvalidRequest(msg)) = err else { panic!("expected a 400, got {err:?}") };
    assert!(msg.contains("relation \"nope\" does not exist"), "{msg}");
    let ran = sql::mock_statements();
    assert!(ran.last().is_some_and(|s| s.starts_with("DROP ROLE IF EXISTS \"v-root-ro-")), "{ran:?}");
    let e = crate::config::db_error("unable to create user", &SqlError::Database { code: "42601".into(), message: "syntax error at or near \"'pw-1'\"".into() }, &["pw-1"]);
    assert!(matches!(e, Error::InvalidRequest(m) if !m.contains("pw-1") && m.contains("[redacted]")));
}

#[test]
fn roles_refuse_unknown_and_disallowed_names() {
    setup();
    assert!(matches!(call(Operation::Read, "creds/missing", json!({})), Err(Error::InvalidRequest(m)) if m == "unknown role: missing"));
    call(Operation::Update, "roles/other", json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\""]})).expect("role");
    assert!(matches!(call(Operation::Read, "creds/other", json!({})), Err(Error::InvalidRequest(m)) if m.contains("is not an allowed role")));
    let role = call(Operation::Read, "roles/ro", json!({})).expect("read").data.expect("data");
    assert_eq!(role["default_ttl"], 3600);
    assert_eq!(role["credential_type"], "password");
    assert_eq!(role["creation_statements"].as_array().map(Vec::len), Some(1), "one string stays one element");
    // As OpenBao: a role without creation statements is stored; its creds fail.
    call(Operation::Update, "roles/empty", json!({"db_name": "pg"})).expect("stored");
    call(Operation::Update, "config/pg", json!({"allowed_roles": "*"})).expect("config");
    assert!(matches!(call(Operation::Read, "creds/empty", json!({})), Err(Error::InvalidRequest(m)) if m.contains("empty creation statements")));
}

#[test]
fn static_roles_rotate_at_creation_and_when_due() {
    setup();
    call(Operation::Update, "config/pg", json!({"allowed_roles": "*"})).expect("config");
    sql::reset_mock();
    call(Operation::Update, "static-roles/app", json!({"db_name": "pg", "username": "app", "rotation_period": "60"})).expect("static role");
    let first = call(Operation::Read, "static-creds/app", json!({})).expect("creds").data.expect("data");
    let pw = first["password"].as_str().expect("password").to_string();
    assert_eq!(sql::mock_statements(), vec![format!("ALTER ROLE \"app\" WITH PASSWORD '{pw}'")]);
    assert_eq!(first["ttl"], 60);
    assert!(call(Operation::Update, "static-roles/fast", json!({"db_name": "pg", "username": "x", "rotation_period": "4"})).is_err());
    // Not due: nothing happens; due (clock moved past the period): rotated.
    Database::periodic().expect("periodic");
    assert_eq!(sql::mock_statements().len(), 1);
    let (now, _) = tresor_sdk::system::now();
    tresor_sdk::system::set_mock_now(now + 61, 0);
    Database::periodic().expect("periodic");
    let second = call(Operation::Read, "static-creds/app", json!({})).expect("creds").data.expect("data");
    assert_ne!(second["password"], first["password"]);
    assert_eq!(sql::mock_statements().len(), 2);
}
