//! Tresor's own CLI against the real server: status, operator, read/write/list/delete, login.

use std::process::{Command, Output};

use serde_json::json;
use tresor_tests::{bao, tresor_bin, TestServer};

fn tresor(server: &TestServer, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(tresor_bin());
    cmd.args(args).env("TRESOR_ADDR", &server.addr).env("HOME", server.dir.path()).env_remove("VAULT_TOKEN").env_remove("TRESOR_TOKEN");
    if let Some(t) = token {
        cmd.env("TRESOR_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn cli_operator_flow_and_generic_commands() {
    let server = TestServer::sqlite();
    assert_eq!(tresor(&server, None, &["status"]).status.code(), Some(2));
    let init = tresor(&server, None, &["operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"]);
    assert!(init.status.success(), "{}", out(&init));
    let init: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let keys = init["unseal_keys_hex"].as_array().unwrap();
    let root = init["root_token"].as_str().unwrap();
    for k in &keys[..2] {
        let o = tresor(&server, None, &["operator", "unseal", k.as_str().unwrap()]);
        assert!(o.status.success(), "{}", out(&o));
    }
    assert_eq!(tresor(&server, None, &["status"]).status.code(), Some(0));

    // login stores the token in the helper file; later commands use it without TRESOR_TOKEN.
    let o = tresor(&server, None, &["login", root]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(server.dir.path().join(".vault-token")).unwrap(), root);
    let o = tresor(&server, None, &["write", "cubbyhole/app", "user=alice", "pass=s3cret"]);
    assert!(out(&o).contains("Success! Data written to: cubbyhole/app"), "{}", out(&o));
    let o = tresor(&server, None, &["read", "-field=user", "cubbyhole/app"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "alice\n");
    let o = tresor(&server, None, &["read", "-format=json", "cubbyhole/app"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["pass"], "s3cret");
    let o = tresor(&server, None, &["list", "cubbyhole/"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("app"));
    assert!(tresor(&server, None, &["delete", "cubbyhole/app"]).status.success());
    assert_eq!(tresor(&server, None, &["read", "cubbyhole/app"]).status.code(), Some(2));

    let o = tresor(&server, Some("s.wrongwrongwrongwrongwrongwrong12"), &["read", "cubbyhole/app"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("permission denied") && out(&o).contains("Code: 403"), "{}", out(&o));

    assert!(tresor(&server, Some(root), &["operator", "seal"]).status.success());
    assert_eq!(tresor(&server, None, &["status"]).status.code(), Some(2));
}

#[test]
fn cli_secrets_kv_and_plugin_commands() {
    let server = TestServer::dev();
    let t = Some(server.root_token.as_str());
    let o = tresor(&server, t, &["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = tresor(&server, t, &["secrets", "list"]);
    assert!(out(&o).contains("kv1/") && out(&o).contains("secret/"), "{}", out(&o));
    assert!(tresor(&server, t, &["secrets", "tune", "-default-lease-ttl=1h", "kv1"]).status.success());
    assert!(tresor(&server, t, &["kv", "put", "kv1/a", "x=1"]).status.success());
    assert_eq!(String::from_utf8_lossy(&tresor(&server, t, &["kv", "get", "-field=x", "kv1/a"]).stdout), "1\n");

    // KV v2 through the same commands.
    assert!(tresor(&server, t, &["kv", "put", "secret/app", "user=alice"]).status.success());
    assert!(tresor(&server, t, &["kv", "put", "-cas=1", "secret/app", "user=bob"]).status.success());
    let o = tresor(&server, t, &["kv", "put", "-cas=1", "secret/app", "user=eve"]);
    assert!(!o.status.success() && out(&o).contains("check-and-set"), "{}", out(&o));
    assert!(tresor(&server, t, &["kv", "patch", "secret/app", "role=admin"]).status.success());
    assert_eq!(String::from_utf8_lossy(&tresor(&server, t, &["kv", "get", "-field=role", "secret/app"]).stdout), "admin\n");
    let o = tresor(&server, t, &["kv", "get", "-format=json", "-version=1", "secret/app"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["data"]["user"], "alice");
    assert!(String::from_utf8_lossy(&tresor(&server, t, &["kv", "list", "secret/"]).stdout).contains("app"));
    assert!(tresor(&server, t, &["kv", "delete", "secret/app"]).status.success());
    assert!(tresor(&server, t, &["kv", "undelete", "-versions=3", "secret/app"]).status.success());
    assert!(tresor(&server, t, &["kv", "destroy", "-versions=1", "secret/app"]).status.success());
    assert!(tresor(&server, t, &["kv", "metadata", "put", "-max-versions=4", "secret/app"]).status.success());
    let o = tresor(&server, t, &["kv", "metadata", "get", "-format=json", "secret/app"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["max_versions"], 4);
    assert_eq!(v["data"]["versions"]["1"]["destroyed"], true);
    assert!(tresor(&server, t, &["kv", "metadata", "delete", "secret/app"]).status.success());
    assert_eq!(tresor(&server, t, &["kv", "get", "secret/app"]).status.code(), Some(2));

    // Catalog: built-ins are listed; registering a missing file is refused with a clear message.
    let o = tresor(&server, t, &["plugin", "list"]);
    assert!(out(&o).contains("kv"), "{}", out(&o));
    let o = tresor(&server, t, &["plugin", "register", &format!("-sha256={}", "a".repeat(64)), "secret", "nothere"]);
    assert!(!o.status.success() && out(&o).contains("Code: 400"), "{}", out(&o));
    assert!(tresor(&server, t, &["secrets", "disable", "kv1"]).status.success());
}

fn ok_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", out(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn cli_policy_auth_login_and_token_commands() {
    let server = TestServer::dev();
    let root = Some(server.root_token.as_str());
    let file = server.dir.path().join("app.hcl");
    std::fs::write(&file, r#"path "secret/*" { capabilities = ["read","list"] }"#).unwrap();
    let o = tresor(&server, None, &["policy", "fmt", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "path \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n");
    assert!(tresor(&server, root, &["policy", "write", "app", file.to_str().unwrap()]).status.success());
    assert_eq!(ok_json(&tresor(&server, root, &["policy", "list", "-format=json"])), json!(["app", "default", "root"]));
    assert!(out(&tresor(&server, root, &["policy", "read", "app"])).contains("capabilities"));

    assert!(tresor(&server, root, &["auth", "enable", "userpass"]).status.success());
    assert_eq!(ok_json(&tresor(&server, root, &["auth", "list", "-format=json"]))["userpass/"]["type"], "userpass");
    assert!(tresor(&server, root, &["write", "auth/userpass/users/bob", "password=pw", "token_policies=app"]).status.success());
    let o = tresor(&server, None, &["login", "-method=userpass", "username=bob", "password=pw"]);
    assert!(o.status.success(), "{}", out(&o));
    let stored = std::fs::read_to_string(server.dir.path().join(".vault-token")).unwrap();
    assert!(stored.starts_with("s."));
    // The stored login token is used by later commands.
    let me = ok_json(&tresor(&server, None, &["token", "lookup", "-format=json"]));
    assert_eq!(me["data"]["display_name"], "userpass-bob");
    assert!(!tresor(&server, None, &["login", "-method=userpass", "username=bob", "password=bad"]).status.success());

    assert!(tresor(&server, root, &["auth", "enable", "approle"]).status.success());
    assert!(tresor(&server, root, &["write", "auth/approle/role/r", "token_policies=app"]).status.success());
    let role_id = String::from_utf8(tresor(&server, root, &["read", "-field=role_id", "auth/approle/role/r/role-id"]).stdout).unwrap();
    let secret_id = String::from_utf8(tresor(&server, root, &["write", "-f", "-field=secret_id", "auth/approle/role/r/secret-id"]).stdout).unwrap();
    let login = ok_json(&tresor(&server, None, &["login", "-no-store", "-format=json", "-method=approle", &format!("role_id={}", role_id.trim()), &format!("secret_id={}", secret_id.trim())]));
    assert_eq!(login["auth"]["metadata"]["role_name"], "r");

    let created = ok_json(&tresor(&server, root, &["token", "create", "-format=json", "-policy=app", "-ttl=1h", "-metadata=team=x"]));
    let tok = created["auth"]["client_token"].as_str().unwrap();
    assert_eq!(created["auth"]["lease_duration"], 3600);
    assert_eq!(created["auth"]["metadata"]["team"], "x");
    let renewed = ok_json(&tresor(&server, Some(tok), &["token", "renew", "-format=json", "-increment=30m"]));
    assert_eq!(renewed["auth"]["lease_duration"], 1800);
    assert!(tresor(&server, root, &["token", "revoke", tok]).status.success());
    assert!(!tresor(&server, Some(tok), &["token", "lookup"]).status.success());
}

#[test]
fn cli_audit_wrap_unwrap_and_lease_commands() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let r = Some(root.as_str());
    let audit_file = server.dir.path().join("cli-audit.log");
    let o = tresor(&server, r, &["audit", "enable", "file", &format!("file_path={}", audit_file.display())]);
    assert!(out(&o).contains("Success! Enabled the file audit device at: file/"), "{}", out(&o));
    let o = tresor(&server, r, &["audit", "list", "-detailed"]);
    assert!(out(&o).contains("file/") && out(&o).contains(&format!("file_path={}", audit_file.display())), "{}", out(&o));

    assert!(tresor(&server, r, &["write", "cubbyhole/w", "pw=cli-wrapped"]).status.success());
    let o = tresor(&server, r, &["read", "-wrap-ttl=2m", "-field=wrapping_token", "cubbyhole/w"]);
    assert!(o.status.success(), "{}", out(&o));
    let wrapping = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(wrapping.starts_with("s."), "{wrapping}");
    let o = tresor(&server, None, &["unwrap", "-field=pw", &wrapping]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "cli-wrapped", "{}", out(&o));
    let o = tresor(&server, None, &["unwrap", &wrapping]);
    assert!(!o.status.success() && out(&o).contains("wrapping token is not valid or does not exist"), "{}", out(&o));
    let o = tresor(&server, r, &["write", "-wrap-ttl=1m", "sys/wrapping/wrap", "a=b"]);
    assert!(out(&o).contains("wrapping_token:") && out(&o).contains("sys/wrapping/wrap"), "{}", out(&o));

    let o = tresor(&server, r, &["lease", "lookup", "nope/creds/x/abc"]);
    assert!(!o.status.success() && out(&o).contains("invalid lease"), "{}", out(&o));
    let o = tresor(&server, r, &["lease", "revoke", "-prefix", "nope/"]);
    assert!(out(&o).contains("Success! Revoked any leases with prefix: nope/"), "{}", out(&o));
    let o = tresor(&server, r, &["lease", "revoke", "-force", "x"]);
    assert!(!o.status.success(), "-force needs -prefix");

    let o = tresor(&server, r, &["audit", "disable", "file"]);
    assert!(out(&o).contains("Success! Disabled audit device"), "{}", out(&o));
    assert!(out(&tresor(&server, r, &["audit", "list"])).contains("No audit devices are enabled."));
    assert!(!std::fs::read_to_string(&audit_file).unwrap().contains("cli-wrapped"));
}

/// Vault's mount config flags (`-local`, `-seal-wrap`, `-listing-visibility`, `-audit-non-hmac-*`,
/// header lists, `-token-type`), given to the real `bao` CLI and to Tresor's own, land in the mount's
/// config; `bao auth tune` on `token/` bounds the tokens `bao token create` issues.
#[test]
fn mount_config_flags_through_the_bao_and_tresor_clis() {
    let server = TestServer::dev();
    let root = server.root_token.as_str();
    for (cli, path) in [("bao", "viabao"), ("tresor", "viatresor")] {
        let run = |args: &[&str]| {
            let o = if cli == "bao" { bao(&server, root, args) } else { tresor(&server, Some(root), args) };
            assert!(o.status.success(), "{cli} {args:?}: {}", out(&o));
        };
        run(&[
            "secrets",
            "enable",
            &format!("-path={path}"),
            "-local",
            "-seal-wrap",
            "-listing-visibility=unauth",
            "-audit-non-hmac-request-keys=env",
            "-audit-non-hmac-request-keys=owner",
            "-passthrough-request-headers=X-Team",
            "kv",
        ]);
        run(&["secrets", "tune", "-audit-non-hmac-response-keys=env", "-allowed-response-headers=X-Out", "-listing-visibility=hidden", &format!("{path}/")]);
        let (_, m) = server.root().get(&format!("sys/mounts/{path}"));
        assert_eq!((m["data"]["local"].clone(), m["data"]["seal_wrap"].clone()), (json!(true), json!(true)), "{cli}: {m}");
        let config = &m["data"]["config"];
        assert_eq!(config["listing_visibility"], "hidden", "{cli}: {config}");
        assert_eq!(config["audit_non_hmac_request_keys"], json!(["env", "owner"]), "{cli}: {config}");
        assert_eq!(config["audit_non_hmac_response_keys"], json!(["env"]), "{cli}: {config}");
        assert_eq!(config["passthrough_request_headers"], json!(["X-Team"]), "{cli}: {config}");
        assert_eq!(config["allowed_response_headers"], json!(["X-Out"]), "{cli}: {config}");

        let up = format!("up{cli}");
        run(&["auth", "enable", &format!("-path={up}"), "-listing-visibility=unauth", "-token-type=service", "userpass"]);
        // `bao auth tune` posts to `sys/mounts/auth/<path>/tune`.
        run(&["auth", "tune", "-default-lease-ttl=30m", &format!("{up}/")]);
        let (_, t) = server.root().get(&format!("sys/auth/{up}/tune"));
        assert_eq!(t["data"]["default_lease_ttl"], 1800, "{cli}: {t}");
        assert_eq!((t["data"]["listing_visibility"].as_str(), t["data"]["token_type"].as_str()), (Some("unauth"), Some("service")), "{cli}: {t}");
    }
    let o = bao(&server, root, &["auth", "tune", "-default-lease-ttl=20m", "-max-lease-ttl=1h", "token/"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = bao(&server, root, &["token", "create", "-format=json", "-policy=default"]);
    assert!(o.status.success(), "{}", out(&o));
    let created: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(created["auth"]["lease_duration"], 1200);
    let o = bao(&server, root, &["token", "create", "-format=json", "-policy=default", "-ttl=3h"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["auth"]["lease_duration"], 3600);
    // A bad value is refused with Vault's message and changes nothing.
    let o = bao(&server, root, &["secrets", "tune", "-listing-visibility=everyone", "viabao/"]);
    assert!(!o.status.success() && out(&o).contains("invalid listing_visibility everyone"), "{}", out(&o));
    assert_eq!(server.root().get("sys/mounts/viabao/tune").1["data"]["listing_visibility"], "hidden");
}
