//! The database secrets engine (`plugins/secrets-database`) against a real PostgreSQL (the test
//! run's private cluster, `scripts/pg.sh`), through the real binary: users that log in and can
//! `SELECT` what the role grants, revocation and expiry dropping them and terminating their
//! sessions, renewal moving `VALID UNTIL`, root rotation, static roles rotated on schedule, failed
//! creations leaving nothing behind, the outbound grant, and the real `bao` CLI.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tresor_tests::{bao, pg, Http, Pg, TestServer};

const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";
const GRANT: &str = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

/// A mount granted the cluster, a config `pg` for `db` as the superuser, and a role `readonly`.
fn configured(c: &Http, pg: &Pg, db: &str, ttl: &str) {
    let (s, b) = c.put("sys/mounts/database", json!({"type": "database", "config": {"allowed_outbound_hosts": [pg.hostport()]}}));
    assert_eq!(s, 204, "{b}");
    let (s, b) = c.put(
        "database/config/pg",
        json!({"plugin_name": "postgresql-database-plugin", "connection_url": pg.template_url(db),
               "username": pg.user, "password": pg.password, "allowed_roles": ["readonly", "bad", "short"]}),
    );
    assert_eq!(s, 204, "{b}");
    let (s, b) = c.put("database/roles/readonly", json!({"db_name": "pg", "creation_statements": [CREATE, GRANT], "default_ttl": ttl, "max_ttl": "24h"}));
    assert_eq!(s, 204, "{b}");
}

fn creds(c: &Http, role: &str) -> (String, String, String) {
    let (s, b) = c.get(&format!("database/creds/{role}"));
    assert_eq!(s, 200, "{b}");
    let user = b["data"]["username"].as_str().unwrap().to_string();
    let password = b["data"]["password"].as_str().unwrap().to_string();
    (user, password, b["lease_id"].as_str().unwrap().to_string())
}

/// A `psql` session of `user` that stays open (sleeping) until it is terminated.
fn open_session(pg: &Pg, user: &str, password: &str, db: &str) -> std::process::Child {
    let child = pg.psql_cmd(user, password, db, "SELECT pg_sleep(120)").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("psql");
    let start = Instant::now();
    while pg.psql("postgres", &format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'")) != "1" {
        assert!(start.elapsed() < Duration::from_secs(20), "the session of {user} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Wait until the session ends; it must have been killed, not have finished.
fn assert_terminated(mut session: std::process::Child) {
    let start = Instant::now();
    loop {
        if let Some(status) = session.try_wait().unwrap() {
            assert!(!status.success(), "the session ended normally instead of being terminated");
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the session was not terminated");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dynamic_users_log_in_renew_and_are_dropped_with_their_sessions_on_revoke() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let c = server.root();
    configured(&c, pg, &db, "1h");

    // Vault's shapes: config without the password, the role as stored, the lease.
    let config = c.get("database/config/pg").1;
    assert!(!config.to_string().contains(&pg.password), "the root password leaked: {config}");
    assert_eq!(config["data"]["connection_details"]["username"], pg.user.as_str());
    assert_eq!(config["data"]["plugin_name"], "postgresql-database-plugin");
    assert_eq!(c.list("database/config").1["data"]["keys"], json!(["pg"]));
    let role = c.get("database/roles/readonly").1;
    assert_eq!(role["data"]["default_ttl"], 3600);
    assert_eq!(role["data"]["max_ttl"], 86400);
    assert_eq!(role["data"]["credential_type"], "password");
    let (s, b) = c.get("database/creds/readonly");
    assert_eq!(s, 200);
    assert_eq!(b["lease_duration"], 3600);
    assert_eq!(b["renewable"], true);
    let user = b["data"]["username"].as_str().unwrap().to_string();
    let password = b["data"]["password"].as_str().unwrap().to_string();
    let lease = b["lease_id"].as_str().unwrap().to_string();
    assert!(lease.starts_with("database/creds/readonly/"), "{lease}");
    assert!(user.starts_with("v-root-readonly-") && user.len() <= 63, "{user}");
    assert_eq!(password.len(), 20);

    // A real login that can SELECT what the role grants, and nothing more.
    assert_eq!(pg.psql_as(&user, &password, &db, "SELECT name FROM items").unwrap(), "one");
    let denied = pg.psql_as(&user, &password, &db, "INSERT INTO items VALUES (2, 'two')").unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");
    assert!(pg.psql_as(&user, "wrong-password", &db, "SELECT 1").is_err());

    // The host's pool is reused across requests: a few more users, still at most 4 connections.
    for _ in 0..5 {
        creds(&c, "readonly");
    }
    let pooled: u32 = pg.psql("postgres", &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tresor' AND datname = '{db}'")).parse().unwrap();
    assert!((1..=4).contains(&pooled), "{pooled} connections for one mount's pool");

    // Renewal moves VALID UNTIL to the renewed lease's end.
    let (s, b) = c.put("sys/leases/renew", json!({"lease_id": lease, "increment": "2h"}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["lease_duration"], 7200);
    let left: i64 = pg.psql("postgres", &format!("SELECT extract(epoch FROM rolvaliduntil - now())::bigint FROM pg_roles WHERE rolname = '{user}'")).parse().unwrap();
    assert!((7100..=7200).contains(&left), "VALID UNTIL is {left}s away, not ~7200");

    // Revocation: the role is gone and its open session is terminated.
    let session = open_session(pg, &user, &password, &db);
    assert_eq!(c.put("sys/leases/revoke", json!({"lease_id": lease})).0, 204);
    assert!(!pg.role_exists(&user), "the role survived revocation");
    assert_terminated(session);
    assert!(pg.psql_as(&user, &password, &db, "SELECT 1").is_err());

    // Revoking the token revokes its leases too (a second user, dropped with the token).
    let token = c.put("auth/token/create", json!({"policies": ["root"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let t = server.http(&token);
    let (user2, _, _) = creds(&t, "readonly");
    assert!(user2.starts_with("v-token-readonly-"), "display name of a child token is 'token': {user2}");
    assert!(pg.role_exists(&user2));
    assert_eq!(c.put("auth/token/revoke", json!({"token": token})).0, 204);
    wait_until("the token's user to be dropped", Duration::from_secs(20), || !pg.role_exists(&user2));
}

#[test]
fn expired_leases_drop_the_user_and_end_its_sessions() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let c = server.root();
    configured(&c, pg, &db, "3s");
    let (user, password, _) = creds(&c, "readonly");
    assert_eq!(pg.psql_as(&user, &password, &db, "SELECT count(*) FROM items").unwrap(), "1");
    let session = open_session(pg, &user, &password, &db);
    wait_until("the expired user to be dropped", Duration::from_secs(30), || !pg.role_exists(&user));
    assert_terminated(session);
}

#[test]
fn a_failed_creation_returns_the_database_error_and_leaves_no_user() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let c = server.root();
    configured(&c, pg, &db, "1h");
    let before = pg.psql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-bad-%'");
    assert_eq!(before, "0");
    let (s, b) = c.put(
        "database/roles/bad",
        json!({"db_name": "pg", "creation_statements": [CREATE, "GRANT SELECT ON no_such_table TO \"{{name}}\";"],
               "rollback_statements": ["DROP ROLE IF EXISTS \"{{name}}\";"]}),
    );
    assert_eq!(s, 204, "{b}");
    let (s, b) = c.get("database/creds/bad");
    assert_eq!(s, 400, "{b}");
    let msg = b["errors"][0].as_str().unwrap();
    assert!(msg.contains("relation \"no_such_table\" does not exist"), "{msg}");
    assert!(!msg.contains("PASSWORD"), "{msg}");
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-bad-%'"), "0", "a half-created user was left");
    // Unknown and disallowed roles, as Vault.
    let (s, b) = c.get("database/creds/missing");
    assert_eq!((s, b["errors"][0].as_str().unwrap()), (400, "unknown role: missing"));
    assert_eq!(c.put("database/roles/other", json!({"db_name": "pg", "creation_statements": CREATE})).0, 204);
    let (s, b) = c.get("database/creds/other");
    assert_eq!(s, 400);
    assert!(b["errors"][0].as_str().unwrap().contains("is not an allowed role"), "{b}");
}

#[test]
fn rotate_root_changes_the_password_and_the_engine_keeps_working() {
    let pg = pg();
    let db = pg.create_database();
    let admin = format!("admin_{}", &db[2..]);
    let old = "initial-Admin-pw-1";
    pg.psql("postgres", &format!("CREATE ROLE {admin} WITH LOGIN SUPERUSER PASSWORD '{old}'"));
    let server = TestServer::dev();
    let c = server.root();
    configured(&c, pg, &db, "1h");
    let (s, b) = c.put("database/config/pg", json!({"username": admin, "password": old}));
    assert_eq!(s, 204, "{b}");
    assert_eq!(pg.psql_as(&admin, old, &db, "SELECT 1").unwrap(), "1");

    assert_eq!(c.put("database/rotate-root/pg", json!({})).0, 204);
    let err = pg.psql_as(&admin, old, &db, "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "the old root password still works: {err}");
    assert!(!c.get("database/config/pg").1.to_string().contains(old));
    // The engine uses the new password it alone knows.
    let (user, password, _) = creds(&c, "readonly");
    assert_eq!(pg.psql_as(&user, &password, &db, "SELECT name FROM items").unwrap(), "one");
    assert_eq!(c.put("database/reset/pg", json!({})).0, 204);
    let (user2, _, _) = creds(&c, "readonly");
    assert_ne!(user, user2);
}

#[test]
fn static_roles_rotate_on_schedule_and_on_demand() {
    let pg = pg();
    let db = pg.create_database();
    let app = format!("app_{}", &db[2..]);
    pg.psql("postgres", &format!("CREATE ROLE {app} WITH LOGIN PASSWORD 'app-initial-1'"));
    let mut server = TestServer::sqlite_with_config("plugin_periodic_interval = \"1s\"\n");
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    configured(&c, pg, &db, "1h");
    assert_eq!(c.put("database/config/pg", json!({"allowed_roles": "*"})).0, 204);
    let (s, b) = c.put("database/static-roles/app", json!({"db_name": "pg", "username": app, "rotation_period": "6s"}));
    assert_eq!(s, 204, "{b}");
    assert!(pg.psql_as(&app, "app-initial-1", &db, "SELECT 1").is_err(), "creating the static role takes the password over");
    let read = |c: &Http| -> Value { c.get("database/static-creds/app").1["data"].clone() };
    let first = read(&c);
    assert_eq!(first["username"], app.as_str());
    assert_eq!(first["rotation_period"], 6);
    assert!(first["ttl"].as_u64().unwrap() <= 6);
    let p1 = first["password"].as_str().unwrap().to_string();
    assert_eq!(pg.psql_as(&app, &p1, &db, "SELECT 1").unwrap(), "1");
    let role = c.get("database/static-roles/app").1;
    assert!(role["data"]["last_vault_rotation"].as_str().unwrap().ends_with('Z'));
    assert!(role["data"].get("password").is_none());

    // On schedule, from the host's periodic call.
    wait_until("the scheduled rotation", Duration::from_secs(30), || read(&c)["password"] != p1.as_str());
    let p2 = read(&c)["password"].as_str().unwrap().to_string();
    assert_eq!(pg.psql_as(&app, &p2, &db, "SELECT 1").unwrap(), "1");
    assert!(pg.psql_as(&app, &p1, &db, "SELECT 1").is_err());

    // On demand.
    assert_eq!(c.put("database/rotate-role/app", json!({})).0, 204);
    let p3 = read(&c)["password"].as_str().unwrap().to_string();
    assert_ne!(p3, p2);
    let (s, b) = c.put("database/static-roles/fast", json!({"db_name": "pg", "username": app, "rotation_period": "2s"}));
    assert_eq!(s, 400, "{b}");
}

#[test]
fn connections_need_the_mounts_outbound_grant_and_errors_never_echo_passwords() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/mounts/database", json!({"type": "database"})).0, 204);
    let config = json!({"plugin_name": "postgresql-database-plugin", "connection_url": pg.template_url(&db),
                        "username": pg.user, "password": pg.password, "allowed_roles": "*"});
    let (s, b) = c.put("database/config/pg", config.clone());
    assert_eq!(s, 400, "{b}");
    let msg = b["errors"][0].as_str().unwrap();
    assert!(msg.contains("access denied") && msg.contains("allowed_outbound_hosts"), "{msg}");
    assert!(!b.to_string().contains(&pg.password));
    assert_eq!(c.get("database/config/pg").0, 404, "a refused config is not stored");

    // Grants are validated: a bad entry is a 400 and changes nothing.
    let (s, b) = c.put("sys/mounts/database/tune", json!({"allowed_outbound_hosts": ["db:notaport"]}));
    assert_eq!(s, 400, "{b}");
    // Another host or port is not enough; the right one is.
    assert_eq!(c.put("sys/mounts/database/tune", json!({"allowed_outbound_hosts": [format!("{}:1", pg.host)]})).0, 204);
    assert_eq!(c.put("database/config/pg", config.clone()).0, 400);
    assert_eq!(c.put("sys/mounts/database/tune", json!({"allowed_outbound_hosts": [pg.hostport()]})).0, 204);
    assert_eq!(c.get("sys/mounts/database/tune").1["data"]["allowed_outbound_hosts"], json!([pg.hostport()]));
    let (s, b) = c.put("database/config/pg", config.clone());
    assert_eq!(s, 204, "{b}");

    // Bad URLs and credentials: clear errors, no password.
    let mut bad = config.clone();
    bad["connection_url"] = json!(format!("postgresql://{{{{username}}}}:{{{{password}}}}@{}:notaport/{db}", pg.host));
    let (s, b) = c.put("database/config/bad", bad);
    assert_eq!(s, 400, "{b}");
    assert!(b["errors"][0].as_str().unwrap().contains("connection URL"), "{b}");
    assert!(!b.to_string().contains(&pg.password));
    let mut wrong = config.clone();
    wrong["password"] = json!("Not-The-Password-42");
    let (s, b) = c.put("database/config/wrong", wrong);
    assert_eq!(s, 400, "{b}");
    let msg = b["errors"][0].as_str().unwrap();
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(!msg.contains("Not-The-Password-42"));
    let mut literal = config;
    literal["connection_url"] = json!(format!("postgresql://{}:{}@{}/{db}?sslmode=disable", pg.user, pg.password, pg.hostport()));
    assert_eq!(c.put("database/config/literal", literal).0, 204);
    let shown = c.get("database/config/literal").1;
    assert!(!shown.to_string().contains(&pg.password), "{shown}");
    assert!(shown["data"]["connection_details"]["connection_url"].as_str().unwrap().contains(":*****@"));
}

#[test]
fn bao_cli_enables_configures_and_reads_creds() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let token = server.root_token.clone();
    let run = |args: &[&str]| {
        let out = bao(&server, &token, args);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["secrets", "enable", &format!("-options=allowed_outbound_hosts={}", pg.hostport()), "database"]);
    run(&[
        "write",
        "database/config/pg",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.template_url(&db)),
        &format!("username={}", pg.user),
        &format!("password={}", pg.password),
        "allowed_roles=readonly",
    ]);
    run(&["write", "database/roles/readonly", "db_name=pg", &format!("creation_statements={CREATE} {GRANT}"), "default_ttl=1h"]);
    let out: Value = serde_json::from_str(&run(&["read", "-format=json", "database/creds/readonly"])).unwrap();
    let user = out["data"]["username"].as_str().unwrap();
    let password = out["data"]["password"].as_str().unwrap();
    assert_eq!(pg.psql_as(user, password, &db, "SELECT name FROM items").unwrap(), "one");
    assert!(out["lease_id"].as_str().unwrap().starts_with("database/creds/readonly/"));
    let listed = run(&["list", "-format=json", "database/roles"]);
    assert!(listed.contains("readonly"));
    // `bao lease revoke` asks for a background revocation (sync=false), as Vault's CLI does.
    run(&["lease", "revoke", out["lease_id"].as_str().unwrap()]);
    wait_until("the revoked user to be dropped", Duration::from_secs(20), || !pg.role_exists(user));
}

#[test]
fn tresor_cli_grants_the_host_and_reads_creds() {
    let pg = pg();
    let db = pg.create_database();
    let server = TestServer::dev();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(tresor_tests::tresor_bin())
            .args(args)
            .env("VAULT_ADDR", &server.addr)
            .env("VAULT_TOKEN", &server.root_token)
            .env("HOME", server.dir.path())
            .env_remove("TRESOR_ADDR")
            .env_remove("TRESOR_TOKEN")
            .output()
            .expect("tresor");
        assert!(out.status.success(), "tresor {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["secrets", "enable", &format!("-allowed-outbound-hosts={}", pg.hostport()), "database"]);
    let config = format!("connection_url={}", pg.template_url(&db));
    let (user, password) = (format!("username={}", pg.user), format!("password={}", pg.password));
    run(&["write", "database/config/pg", "plugin_name=postgresql-database-plugin", &config, &user, &password, "allowed_roles=readonly"]);
    run(&["write", "database/roles/readonly", "db_name=pg", &format!("creation_statements={CREATE} {GRANT}")]);
    let out: Value = serde_json::from_str(&run(&["read", "-format=json", "database/creds/readonly"])).unwrap();
    let (u, p) = (out["data"]["username"].as_str().unwrap(), out["data"]["password"].as_str().unwrap());
    assert_eq!(pg.psql_as(u, p, &db, "SELECT name FROM items").unwrap(), "one");
    assert!(run(&["secrets", "list", "-format=json"]).contains("allowed_outbound_hosts"));
}
