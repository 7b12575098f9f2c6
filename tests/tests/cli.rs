//! Tresor's own CLI against the real server: status, operator, read/write/list/delete, login.

use std::process::{Command, Output};

use tresor_tests::{tresor_bin, TestServer};

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
