//! Auth methods as plugins, through the real binary: the real `bao` CLI and hvac against userpass and
//! AppRole, `sys/auth` shapes, and the host's guarantees checked with a probe plugin (no token ever
//! reaches a plugin; the caller's address only on login paths; a login from a non-login path refused).

use std::process::Output;

use serde_json::{json, Value};
use tresor_tests::{BaoDev, TestServer, bao, send_both};

fn ok(out: &Output) -> Value {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn bao_cli_policy_userpass_login_allowed_and_denied() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let policy = server.dir.path().join("app.hcl");
    std::fs::write(&policy, "path \"secret/data/app/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n").unwrap();
    ok(&bao(&server, &root, &["policy", "write", "app", policy.to_str().unwrap()]));
    let listed = ok(&bao(&server, &root, &["policy", "list", "-format=json"]));
    assert_eq!(listed, json!(["app", "default", "root"]));
    ok(&bao(&server, &root, &["auth", "enable", "userpass"]));
    let auths = ok(&bao(&server, &root, &["auth", "list", "-format=json"]));
    assert_eq!(auths["userpass/"]["type"], "userpass");
    assert!(auths["userpass/"]["accessor"].as_str().unwrap().starts_with("auth_userpass_"));
    assert_eq!(auths["token/"]["type"], "token");
    ok(&bao(&server, &root, &["write", "auth/userpass/users/alice", "password=s3cret", "token_policies=app", "token_ttl=1h"]));
    ok(&bao(&server, &root, &["kv", "put", "secret/app/db", "pw=hunter2"]));
    ok(&bao(&server, &root, &["kv", "put", "secret/other", "pw=nope"]));

    let login = ok(&bao(&server, "", &["login", "-format=json", "-no-store", "-method=userpass", "username=alice", "password=s3cret"]));
    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(login["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(login["auth"]["lease_duration"], 3600);
    let got = ok(&bao(&server, &token, &["kv", "get", "-format=json", "secret/app/db"]));
    assert_eq!(got["data"]["data"], json!({"pw": "hunter2"}));
    let denied = bao(&server, &token, &["kv", "get", "secret/other"]);
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("403") && err.contains("permission denied"), "{err}");
    let me = ok(&bao(&server, &token, &["token", "lookup", "-format=json"]));
    assert_eq!(me["data"]["display_name"], "userpass-alice");
    assert_eq!(me["data"]["path"], "auth/userpass/login/alice");

    let bad = bao(&server, "", &["login", "-method=userpass", "username=alice", "password=wrong"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid username or password"));

    // Token child-tree revocation through the CLI.
    let creator = server.dir.path().join("creator.hcl");
    std::fs::write(&creator, "path \"auth/token/create\" { capabilities = [\"update\"] }\n").unwrap();
    ok(&bao(&server, &root, &["policy", "write", "creator", creator.to_str().unwrap()]));
    let parent = ok(&bao(&server, &root, &["token", "create", "-format=json", "-policy=app", "-policy=creator"]))["auth"]["client_token"].as_str().unwrap().to_string();
    let child = ok(&bao(&server, &parent, &["token", "create", "-format=json"]))["auth"]["client_token"].as_str().unwrap().to_string();
    ok(&bao(&server, &root, &["token", "revoke", &parent]));
    assert!(!bao(&server, &child, &["token", "lookup"]).status.success(), "child revoked with its parent");

    ok(&bao(&server, &root, &["auth", "disable", "userpass"]));
    assert!(ok(&bao(&server, &root, &["auth", "list", "-format=json"])).get("userpass/").is_none());
    assert!(!bao(&server, &token, &["token", "lookup"]).status.success(), "tokens of a disabled auth method are revoked");
}

#[test]
fn hvac_approle_userpass_and_tokens() {
    let server = TestServer::dev();
    tresor_tests::hvac(&server, "hvac_auth.py", "hvac auth ok");
}

#[test]
fn sys_auth_shapes_and_userpass_api() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/auth/userpass", json!({"type": "userpass"})).0, 204);
    assert_eq!(c.put("sys/auth/userpass", json!({"type": "userpass"})).0, 400, "path in use");
    assert_eq!(c.put("sys/auth/nope", json!({"type": "nope"})).0, 400);
    assert_eq!(c.put("sys/auth/kvauth", json!({"type": "kv"})).0, 400, "a secrets engine is not an auth method");
    assert_eq!(c.put("sys/mounts/up", json!({"type": "userpass"})).0, 400, "an auth method is not a secrets engine");
    let (_, auth) = c.get("sys/auth");
    assert_eq!(auth["data"]["userpass/"]["type"], "userpass");
    assert_eq!(auth["userpass/"]["type"], "userpass", "legacy top-level copy");
    let (s, tune) = c.get("sys/auth/userpass/tune");
    assert_eq!((s, &tune["data"]["default_lease_ttl"]), (200, &json!(2_764_800)));
    assert_eq!(c.put("sys/auth/userpass/tune", json!({"default_lease_ttl": "30m"})).0, 204);
    assert_eq!(c.get("sys/auth/userpass/tune").1["data"]["default_lease_ttl"], 1800);

    assert_eq!(c.put("auth/userpass/users/alice", json!({"password": "s3cret", "token_policies": ["app"], "token_max_ttl": "4h"})).0, 204);
    let (s, u) = c.get("auth/userpass/users/alice");
    assert_eq!(s, 200);
    assert_eq!(
        u["data"],
        json!({"token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 14400, "token_no_default_policy": false,
               "token_num_uses": 0, "token_period": 0, "token_policies": ["app"], "token_strictly_bind_ip": false, "token_ttl": 0,
               "token_type": "default"})
    );
    assert_eq!(c.list("auth/userpass/users").1["data"]["keys"], json!(["alice"]));
    let anon = server.http("");
    let (s, login) = anon.put("auth/userpass/login/alice", json!({"password": "s3cret"}));
    assert_eq!(s, 200, "{login}");
    // No token_ttl: the tuned mount default applies.
    assert_eq!((login["auth"]["lease_duration"].as_u64(), login["auth"]["orphan"].as_bool()), (Some(1800), Some(true)));
    assert!(login["auth"]["mfa_requirement"].is_null() && login["data"].is_null());
    assert_eq!(anon.put("auth/userpass/users/alice/password", json!({"password": "new"})).0, 403, "management paths need a token");
    assert_eq!(c.put("auth/userpass/users/alice/password", json!({"password": "new"})).0, 204);
    assert_eq!(anon.put("auth/userpass/login/alice", json!({"password": "s3cret"})), (400, json!({"errors": ["invalid username or password"]})));
    assert_eq!(anon.put("auth/userpass/login/alice", json!({"password": "new"})).0, 200);
    assert_eq!(c.put("auth/userpass/users/alice/policies", json!({"token_policies": ["app", "other"]})).0, 204);
    assert_eq!(anon.put("auth/userpass/login/alice", json!({"password": "new"})).1["auth"]["policies"], json!(["app", "default", "other"]));

    // CIDR-bound users cannot log in from elsewhere, and their tokens only work from the bound block.
    assert_eq!(c.put("auth/userpass/users/far", json!({"password": "pw", "token_bound_cidrs": ["10.0.0.0/8"]})).0, 204);
    assert_eq!(anon.put("auth/userpass/login/far", json!({"password": "pw"})), (403, json!({"errors": ["permission denied"]})), "as Vault");
    assert_eq!(c.put("auth/userpass/users/near", json!({"password": "pw", "token_bound_cidrs": ["127.0.0.0/8"]})).0, 204);
    let (s, near) = anon.put("auth/userpass/login/near", json!({"password": "pw"}));
    assert_eq!(s, 200, "{near}");
    assert_eq!(server.http(near["auth"]["client_token"].as_str().unwrap()).get("auth/token/lookup-self").0, 200);

    // Auth methods cannot mint root tokens.
    assert_eq!(c.put("auth/userpass/users/evil", json!({"password": "pw", "token_policies": ["root"]})).0, 204);
    assert_eq!(anon.put("auth/userpass/login/evil", json!({"password": "pw"})).0, 400);
}

#[test]
fn a_plugin_never_sees_tokens_and_cannot_log_in_from_a_normal_path() {
    let work = tempfile::tempdir().unwrap();
    let plugin_dir = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let bytes = std::fs::read(format!("{}/probe_auth.wasm", env!("TEST_PLUGINS_DIR"))).unwrap();
    std::fs::write(plugin_dir.join("probe.wasm"), &bytes).unwrap();
    let sha = tresor_runtime::sha256_hex(&bytes);
    let mut server = TestServer::sqlite_with_plugins(&plugin_dir);
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/plugins/catalog/auth/probe", json!({"sha256": sha, "command": "probe.wasm", "version": "v1"})).0, 204);
    assert_eq!(c.put("sys/auth/probe", json!({"type": "probe"})).0, 204);
    assert_eq!(c.put("sys/policies/acl/probe", json!({"policy": "path \"auth/probe/*\" { capabilities = [\"read\", \"update\"] }"})).0, 204);

    // Login path: no token needed; the plugin sees the address, and the host mints the token.
    let anon = server.http("");
    let (s, login) = anon.put("auth/probe/login", json!({"user": "x"}));
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["data"]["seen"]["remote_addr"], "127.0.0.1");
    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(login["auth"]["policies"], json!(["default", "probe"]));
    assert_eq!(login["auth"]["metadata"], json!({"who": "probe"}));
    let t = server.http(&token);
    assert_eq!(t.get("auth/token/lookup-self").1["data"]["display_name"], "probe-probe");

    // Authenticated path: the caller's token is nowhere in what the plugin received, nor its address.
    for client in [&t, &c] {
        let tok = if std::ptr::eq(client, &t) { &token } else { &root };
        let (s, echo) = client.put("auth/probe/echo", json!({"k": "v"}));
        assert_eq!(s, 200, "{echo}");
        let seen = echo["data"]["seen"].to_string();
        assert!(!seen.contains(tok.as_str()), "plugin saw the token: {seen}");
        assert!(echo["data"]["seen"]["remote_addr"].is_null(), "address leaked off the login path: {seen}");
        let r = client.raw_headers("GET", "auth/probe/echo", None, None, &[("Authorization", &format!("Bearer {tok}"))]);
        assert_eq!(r.status, 200);
        assert!(!r.body.contains(tok.as_str()));
    }
    // What the plugin stored at login holds no token either (the login request carried none, but a
    // token sent anyway must be stripped too).
    let r = anon.raw_headers("PUT", "auth/probe/login", Some(b"{}"), Some("application/json"), &[("X-Vault-Token", &root)]);
    assert_eq!(r.status, 200);
    assert!(!r.body.contains(&root));

    // A login from an authenticated path is refused by the host.
    let (s, b) = c.put("auth/probe/sneaky", json!({}));
    assert_eq!(s, 500, "{b}");
    assert!(!b.to_string().contains("client_token"));
}

/// Send each step to a real OpenBao and to Tresor (dev servers, root tokens), require the same
/// status, and hand both answers to `check` (Tresor's first) with the step's description. Returns
/// the Tresor server for checks of its own.
fn against_openbao(steps: &[(&str, &str, Option<Value>)], check: impl Fn(&str, &Value, &Value)) -> TestServer {
    let bao = BaoDev::start();
    let server = TestServer::dev();
    let (theirs, ours) = (bao.http(), server.root());
    for (method, path, body) in steps {
        let (tb, ob, what) = send_both(&theirs, &ours, method, path, body.as_ref());
        check(&what, &ob, &tb);
    }
    server
}

/// What must match in a login's `auth` block (the token and accessor themselves are random): its
/// type, renewability, policies, lease, orphanhood, metadata and the token's prefix (`s.` / `b.`).
fn login_shape(b: &Value) -> Value {
    let a = &b["auth"];
    json!([a["token_type"], a["renewable"], a["policies"], a["lease_duration"], a["orphan"], a["metadata"], a["client_token"].as_str().map(|t| &t[..2])])
}

/// Users and roles written with Vault's deprecated names (`policies`, `ttl`, `max_ttl`, `period`,
/// `bound_cidr_list`) read back as OpenBao's do: the old names shown until only the new ones are
/// written.
#[test]
fn deprecated_token_fields_read_back_as_openbao_does() {
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))),
        ("POST", "auth/userpass/users/bob", Some(json!({"password": "pw", "policies": "a", "ttl": "1h", "max_ttl": "2h"}))),
        ("GET", "auth/userpass/users/bob", None),
        ("POST", "auth/userpass/users/bob", Some(json!({"token_policies": "b"}))),
        ("GET", "auth/userpass/users/bob", None),
        ("POST", "auth/userpass/users/bob", Some(json!({"policies": "c", "token_policies": "d"}))),
        ("GET", "auth/userpass/users/bob", None),
        ("POST", "auth/userpass/users/bob", Some(json!({"token_ttl": "30m"}))),
        ("GET", "auth/userpass/users/bob", None),
        ("POST", "sys/auth/approle", Some(json!({"type": "approle"}))),
        ("POST", "auth/approle/role/r", Some(json!({"policies": "a,b", "period": "1h", "bound_cidr_list": "10.0.0.0/8"}))),
        ("GET", "auth/approle/role/r", None),
    ];
    against_openbao(&steps, |what, ours, theirs| assert_eq!(ours["data"], theirs["data"], "{what}"));
}

/// AppRole's secret IDs, role writes and token types against a real OpenBao: Vault's checks in its
/// order with its texts (a missing role is a 404 naming it; `bind_secret_id`; a secret ID's CIDR
/// blocks inside the role's; `num_uses`/`ttl` against the role's; metadata as JSON, base64 or
/// `k=v` pairs; `missing …`; one-setting paths on a missing role; `local_secret_ids` fixed at
/// creation; `default-service` adjusted with a warning; names outside Vault's pattern), and batch
/// tokens asked for by a role, decided together with the mount's tuned `token_type` as Vault does.
#[test]
fn approle_secret_ids_and_token_types_answer_as_openbao_does() {
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/auth/approle", Some(json!({"type": "approle"}))),
        ("POST", "auth/approle/role/nope/secret-id", Some(json!({}))),
        ("POST", "auth/approle/role/nope/custom-secret-id", Some(json!({"secret_id": "x"}))),
        ("POST", "auth/approle/role/nope/custom-secret-id", Some(json!({"secret_id": ""}))),
        ("POST", "auth/approle/role/nope/policies", Some(json!({"token_policies": "x"}))),
        ("DELETE", "auth/approle/role/nope/policies", None),
        ("DELETE", "auth/approle/role/nope/secret-id-ttl", None),
        ("POST", "auth/approle/role/nope/role-id", Some(json!({"role_id": "x"}))),
        ("POST", "auth/approle/role/b@d", Some(json!({"secret_id_ttl": "1h"}))),
        ("POST", "auth/approle/role/-bad", Some(json!({"secret_id_ttl": "1h"}))),
        ("POST", "auth/approle/role/open", Some(json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32"}))),
        ("POST", "auth/approle/role/open/secret-id", Some(json!({}))),
        ("POST", "auth/approle/role/r1", Some(json!({"secret_id_bound_cidrs": "10.0.0.0/8", "token_bound_cidrs": "10.1.0.0/16,127.0.0.1/32", "local_secret_ids": true}))),
        ("GET", "auth/approle/role/r1", None),
        ("POST", "auth/approle/role/r1", Some(json!({"local_secret_ids": false}))),
        ("GET", "auth/approle/role/r1/local-secret-ids", None),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"metadata": "notjson"}))),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"metadata": "{\"a\":1}"}))),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"metadata": "a=b,c"}))),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"metadata": "a=b,c=d", "cidr_list": "10.2.0.0/16", "token_bound_cidrs": "10.1.2.0/24"}))),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"metadata": "eyJhIjoiYiJ9"}))),
        ("POST", "auth/approle/role/r1/secret-id", Some(json!({"num_uses": -1}))),
        ("POST", "auth/approle/role/r2", Some(json!({"secret_id_num_uses": 2, "secret_id_ttl": "10m"}))),
        ("POST", "auth/approle/role/r2/secret-id", Some(json!({"num_uses": 0}))),
        ("POST", "auth/approle/role/r2/secret-id", Some(json!({"ttl": 0}))),
        ("POST", "auth/approle/role/r2/secret-id", Some(json!({"ttl": "1h"}))),
        ("POST", "auth/approle/role/r2/secret-id", Some(json!({"num_uses": 3}))),
        ("POST", "auth/approle/role/r2/secret-id", Some(json!({"num_uses": 1, "ttl": "5m"}))),
        ("POST", "auth/approle/role/r2/custom-secret-id", Some(json!({"secret_id": "s1"}))),
        ("POST", "auth/approle/role/r2/secret-id/lookup", Some(json!({"secret_id": ""}))),
        ("POST", "auth/approle/role/r2/secret-id/lookup", Some(json!({"secret_id": "nope"}))),
        ("POST", "auth/approle/role/r2/secret-id/destroy", Some(json!({"secret_id": ""}))),
        ("POST", "auth/approle/role/r2/secret-id-accessor/lookup", Some(json!({"secret_id_accessor": ""}))),
        ("POST", "auth/approle/role/r2/secret-id-accessor/lookup", Some(json!({"secret_id_accessor": "nope"}))),
        ("POST", "auth/approle/role/r2/policies", Some(json!({}))),
        ("POST", "auth/approle/role/r2/period", Some(json!({}))),
        ("POST", "auth/approle/role/r2/secret-id-ttl", Some(json!({}))),
        ("POST", "auth/approle/role/r2/token-bound-cidrs", Some(json!({}))),
        ("POST", "auth/approle/role/r2/token-bound-cidrs", Some(json!({"token_bound_cidrs": "bogus"}))),
        ("POST", "auth/approle/role/r2/secret-id-bound-cidrs", Some(json!({"secret_id_bound_cidrs": "bogus"}))),
        ("POST", "auth/approle/role/r2/token-ttl", Some(json!({"token_ttl": "5m"}))),
        ("POST", "auth/approle/role/r2/token-max-ttl", Some(json!({"token_max_ttl": "1m"}))),
        ("POST", "auth/approle/role/r2/bound-cidr-list", Some(json!({"bound_cidr_list": "10.0.0.0/8"}))),
        ("GET", "auth/approle/role/r2/bound-cidr-list", None),
        ("DELETE", "auth/approle/role/r2/bound-cidr-list", None),
        ("GET", "auth/approle/role/r2/secret-id-bound-cidrs", None),
        ("POST", "auth/approle/role/r2", Some(json!({"token_bound_cidrs": "bogus"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_num_uses": -1}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_type": "bogus"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_type": "default-service"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_type": "batch", "token_num_uses": 3}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_type": "batch", "token_period": "1h"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_period": "10000h"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"period": "10000h"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"period": "0"}))),
        ("POST", "auth/approle/role/r2", Some(json!({"token_max_ttl": "10000h"}))),
        ("GET", "auth/approle/role/r2", None),
        // Vault caps a login's period or TTL at the effective maximum, and says so.
        ("POST", "auth/approle/role/p", Some(json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32", "role_id": "rp", "period": "1m", "token_max_ttl": "30s"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rp"}))),
        ("POST", "auth/approle/role/p", Some(json!({"token_period": "0", "period": "0", "token_max_ttl": "0", "token_ttl": "1000h"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rp"}))),
        ("POST", "auth/approle/role/p", Some(json!({"token_ttl": "2h", "token_explicit_max_ttl": "1h"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rp"}))),
        // Batch tokens: the role asks, the mount's tuning decides with it.
        ("POST", "auth/approle/role/b", Some(json!({"token_type": "batch", "bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32", "role_id": "rb", "token_policies": "p1", "token_ttl": "10m"}))),
        ("GET", "auth/approle/role/b", None),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rb"}))),
        ("POST", "auth/approle/role/b", Some(json!({"token_num_uses": 2}))),
        ("POST", "sys/auth/approle/tune", Some(json!({"token_type": "service"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rb"}))),
        ("POST", "sys/auth/approle/tune", Some(json!({"token_type": "default-batch"}))),
        ("POST", "auth/approle/role/b", Some(json!({"token_type": "default-service"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rb"}))),
        ("POST", "auth/approle/role/b", Some(json!({"token_type": "default"}))),
        ("POST", "auth/approle/login", Some(json!({"role_id": "rb"}))),
    ];
    let volatile = ["secret_id", "secret_id_accessor", "creation_time", "expiration_time", "last_updated_time", "role_id"];
    let data = |b: &Value| {
        let mut d = b["data"].clone();
        if let Some(m) = d.as_object_mut() {
            m.retain(|k, _| !volatile.contains(&k.as_str()));
        }
        d
    };
    let server = against_openbao(&steps, |what, ob, tb| {
        assert_eq!((&ob["errors"], &ob["warnings"]), (&tb["errors"], &tb["warnings"]), "{what}");
        assert_eq!((data(ob), login_shape(ob)), (data(tb), login_shape(tb)), "{what}");
    });
    // OpenBao answers a login without a role ID with a 500; it is the client's mistake (400).
    let (s, b) = server.root().send("POST", "auth/approle/login", Some(&json!({})));
    assert_eq!((s, &b["errors"]), (400, &json!(["missing role_id"])));
}

/// AppRole's one-setting role paths (`role/:name/policies`, `…/period`, `…/secret-id-ttl`, …):
/// read, set, reset and their errors, compared value for value with a real OpenBao.
#[test]
fn approle_single_setting_paths_answer_as_openbao_does() {
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/auth/approle", Some(json!({"type": "approle"}))),
        ("POST", "auth/approle/role/r", Some(json!({"token_policies": "a", "secret_id_ttl": "1h", "token_ttl": "1h", "token_max_ttl": "2h", "period": "30m", "secret_id_bound_cidrs": "10.0.0.0/8", "token_bound_cidrs": "10.0.0.0/8", "secret_id_num_uses": 3, "token_num_uses": 2}))),
        ("GET", "auth/approle/role/r/bind-secret-id", None),
        ("GET", "auth/approle/role/r/local-secret-ids", None),
        ("GET", "auth/approle/role/r/period", None),
        ("GET", "auth/approle/role/r/policies", None),
        ("GET", "auth/approle/role/r/secret-id-bound-cidrs", None),
        ("GET", "auth/approle/role/r/secret-id-num-uses", None),
        ("GET", "auth/approle/role/r/secret-id-ttl", None),
        ("GET", "auth/approle/role/r/token-bound-cidrs", None),
        ("GET", "auth/approle/role/r/token-max-ttl", None),
        ("GET", "auth/approle/role/r/token-num-uses", None),
        ("GET", "auth/approle/role/r/token-ttl", None),
        ("POST", "auth/approle/role/r/policies", Some(json!({"policies": "x,y"}))),
        ("GET", "auth/approle/role/r/policies", None),
        ("POST", "auth/approle/role/r/secret-id-ttl", Some(json!({"secret_id_ttl": "2h"}))),
        ("GET", "auth/approle/role/r/secret-id-ttl", None),
        ("DELETE", "auth/approle/role/r/secret-id-ttl", None),
        ("GET", "auth/approle/role/r/secret-id-ttl", None),
        ("POST", "auth/approle/role/r/period", Some(json!({"token_period": "1h"}))),
        ("GET", "auth/approle/role/r/period", None),
        ("DELETE", "auth/approle/role/r/policies", None),
        ("GET", "auth/approle/role/r/policies", None),
        ("POST", "auth/approle/role/r/bind-secret-id", Some(json!({"bind_secret_id": false}))),
        ("GET", "auth/approle/role/r/bind-secret-id", None),
        ("DELETE", "auth/approle/role/r/bind-secret-id", None),
        ("GET", "auth/approle/role/r/bind-secret-id", None),
        ("POST", "auth/approle/role/r/token-ttl", Some(json!({"token_ttl": "3h"}))),
        ("GET", "auth/approle/role/nope/token-ttl", None),
        ("POST", "auth/approle/role/r/secret-id-num-uses", Some(json!({"secret_id_num_uses": -1}))),
        ("GET", "auth/approle/role/r", None),
    ];
    against_openbao(&steps, |what, ob, tb| assert_eq!((&ob["data"], &ob["errors"]), (&tb["data"], &tb["errors"]), "{what}"));
}

/// `bao auth move` (`sys/remount` within `auth/`): the method keeps its users and answers logins at
/// the new path, across a restart; moving between `auth/` and secrets engines is refused, and
/// `sys/mounts` cannot unmount an auth method (both with Vault's texts).
#[test]
fn bao_auth_move_keeps_an_auth_method_and_its_users() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    ok(&bao(&server, &root, &["auth", "enable", "userpass"]));
    ok(&bao(&server, &root, &["write", "auth/userpass/users/bob", "password=pw", "token_policies=default"]));
    ok(&bao(&server, &root, &["auth", "move", "auth/userpass", "auth/people"]));
    server.terminate();
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    assert!(c.get("sys/auth").1["data"].get("people/").is_some());
    assert!(c.get("sys/auth").1["data"].get("userpass/").is_none());
    let (s, login) = server.http("").put("auth/people/login/bob", json!({"password": "pw"}));
    assert_eq!(s, 200, "{login}");
    assert_eq!(server.http("").put("auth/userpass/login/bob", json!({"password": "pw"})).0, 404);
    let (s, b) = c.put("sys/remount", json!({"from": "auth/people", "to": "people"}));
    assert_eq!((s, b["errors"][0].as_str()), (400, Some("cannot remount auth mount to non-auth mount \"people/\"")));
    let (s, b) = c.put("sys/remount", json!({"from": "secret", "to": "auth/secret"}));
    assert_eq!(s, 400, "{b}");
    let (s, b) = c.delete("sys/mounts/auth/people");
    assert_eq!((s, b["errors"][0].as_str()), (400, Some("cannot unmount \"auth/people/\"")));
}

/// Userpass users against a real OpenBao: `password` or `password_hash` (one of them, a valid
/// bcrypt hash), `missing password` at login, a login from outside the user's
/// `token_bound_cidrs` is `permission denied`, and the login TTL capped at the effective maximum
/// with Vault's warning.
#[test]
fn userpass_answers_as_openbao_does() {
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/auth/userpass", Some(json!({"type": "userpass"}))),
        ("POST", "auth/userpass/users/alice", Some(json!({}))),
        ("POST", "auth/userpass/users/alice", Some(json!({"password": ""}))),
        ("POST", "auth/userpass/users/alice", Some(json!({"password": "pw", "password_hash": "abc"}))),
        ("POST", "auth/userpass/users/alice", Some(json!({"password_hash": "abc"}))),
        ("POST", "auth/userpass/users/alice", Some(json!({"password": "pw", "token_policies": "a,b", "token_ttl": "1h"}))),
        ("POST", "auth/userpass/users/alice", Some(json!({"token_ttl": "2h"}))),
        ("POST", "auth/userpass/users/alice/password", Some(json!({}))),
        ("POST", "auth/userpass/users/alice/password", Some(json!({"password_hash": "$2a$10$short"}))),
        ("POST", "auth/userpass/users/alice/password", Some(json!({"password": "new"}))),
        ("POST", "auth/userpass/login/alice", Some(json!({"password": "pw"}))),
        ("POST", "auth/userpass/login/alice", Some(json!({"password": "new"}))),
        ("POST", "auth/userpass/users/b@d", Some(json!({"password": "x"}))),
        ("POST", "auth/userpass/users/carol", Some(json!({"password": "x", "token_bound_cidrs": "10.0.0.0/8"}))),
        ("POST", "auth/userpass/login/carol", Some(json!({"password": "x"}))),
        ("POST", "auth/userpass/users/dave", Some(json!({"password": "x", "token_period": "1m", "token_max_ttl": "30s"}))),
        ("POST", "auth/userpass/login/dave", Some(json!({"password": "x"}))),
        ("POST", "auth/userpass/users/frank", Some(json!({"password": "x", "token_type": "batch", "token_period": "1h"}))),
        ("GET", "auth/userpass/users/alice", None),
    ];
    let server = against_openbao(&steps, |what, ob, tb| {
        assert_eq!((&ob["errors"], &ob["warnings"], &ob["data"]), (&tb["errors"], &tb["warnings"], &tb["data"]), "{what}");
        assert_eq!(login_shape(ob), login_shape(tb), "{what}");
    });
    // OpenBao answers a login without a password with a 500; it is the client's mistake (400).
    let (s, b) = server.root().send("POST", "auth/userpass/login/alice", Some(&json!({})));
    assert_eq!((s, &b["errors"]), (400, &json!(["missing password"])));
}
