//! Audit devices through the real binary: no secret in any file, denied requests logged with their
//! error, fail-closed when no device can write, `sys/audit-hash`, declarative and socket devices, and
//! the real `bao audit` commands.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{json, Value};
use tresor_tests::{bao, TestServer};

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn storage_bytes(server: &TestServer) -> Vec<u8> {
    ["", "-wal", "-shm"].iter().flat_map(|s| std::fs::read(format!("{}{s}", server.db_path().display())).unwrap_or_default()).collect()
}

#[test]
fn a_kv_secret_appears_in_no_audit_line_storage_file_or_log_and_its_hmac_is_reproducible() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let audit_file = server.dir.path().join("audit.log");
    let (s, b) = c.put("sys/audit/file", json!({"type": "file", "options": {"file_path": audit_file.to_str().unwrap()}}));
    assert_eq!(s, 204, "{b}");
    let test_entry = &lines(&audit_file)[0];
    assert_eq!(test_entry["request"]["path"], "sys/audit/test", "Vault's sanity entry is written at enable");

    let secret = "correct-horse-9f2b7c1e-audit";
    assert_eq!(c.put("sys/mounts/secret", json!({"type": "kv-v2"})).0, 204);
    assert_eq!(c.put("secret/data/app", json!({"data": {"password": secret}})).0, 200);
    let (s, read) = c.get("secret/data/app");
    assert_eq!((s, read["data"]["data"]["password"].as_str()), (200, Some(secret)));
    // A denied request is logged, with its error, before anything else happens.
    let (s, _) = server.http("not-a-token").get("secret/data/app");
    assert_eq!(s, 403);

    let all = lines(&audit_file);
    let write_req = all.iter().find(|l| l["type"] == "request" && l["request"]["path"] == "secret/data/app" && l["request"]["data"].is_object()).expect("request line");
    let hashed = write_req["request"]["data"]["data"]["password"].as_str().unwrap();
    assert!(hashed.starts_with("hmac-sha256:"), "{write_req}");
    assert_eq!(write_req["request"]["client_token"].as_str().unwrap().len(), "hmac-sha256:".len() + 64);
    assert_eq!(write_req["auth"]["policies"], json!(["root"]));
    assert_eq!(write_req["request"]["mount_type"], "kv");
    let read_resp = all.iter().find(|l| l["type"] == "response" && l["request"]["operation"] == "read" && l["auth"]["policies"] == json!(["root"])).expect("response line");
    assert_eq!(read_resp["response"]["data"]["data"]["password"], hashed, "same input, same HMAC within a device");
    assert_eq!(read_resp["response"]["data"]["metadata"]["version"], 1, "numbers are not hashed");
    let denied: Vec<&Value> = all.iter().filter(|l| l["error"] == "permission denied").collect();
    assert_eq!(denied.len(), 2, "request and response line of the denied read: {denied:?}");
    assert_eq!(denied[0]["type"], "request");

    // sys/audit-hash reproduces the logged HMAC.
    let (s, h) = c.put("sys/audit-hash/file", json!({"input": secret}));
    assert_eq!(s, 200);
    assert_eq!(h["data"]["hash"], hashed);
    assert_eq!(c.get("sys/audit").1["data"]["file/"]["options"]["file_path"], audit_file.to_str().unwrap());

    // The secret (and the root token) are nowhere: audit file, storage files, server log.
    let audit_bytes = std::fs::read(&audit_file).unwrap();
    assert!(!contains(&audit_bytes, secret));
    assert!(!contains(&audit_bytes, &root));
    server.terminate();
    assert!(!contains(&storage_bytes(&server), secret), "plaintext in the storage files");
    assert!(!contains(server.log().as_bytes(), secret), "plaintext in the server log");
    assert!(!server.log().is_empty(), "sanity: the log was captured");
}

#[test]
fn with_no_writable_device_requests_fail_closed_and_return_nothing() {
    let server = TestServer::sqlite();
    let mut server = server;
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let audit_file = server.dir.path().join("audit.log");
    assert_eq!(c.put("sys/audit/file", json!({"type": "file", "options": {"file_path": audit_file.to_str().unwrap()}})).0, 204);
    assert_eq!(c.put("cubbyhole/s", json!({"v": "top-secret-value"})).0, 204);

    // Rotate the file away and put a directory where it was: the reopen on SIGHUP fails (even for root).
    std::fs::rename(&audit_file, server.dir.path().join("audit.log.1")).unwrap();
    std::fs::create_dir(&audit_file).unwrap();
    server.signal("HUP");
    let mut failed = None;
    for _ in 0..100 {
        let r = c.raw("GET", "cubbyhole/s", None, None);
        if r.status == 500 {
            failed = Some(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = failed.expect("requests must fail once the audit device cannot write");
    assert!(!r.body.contains("top-secret-value"), "{}", r.body);
    assert_eq!(c.put("cubbyhole/t", json!({"v": "x"})).0, 500, "writes are refused too");

    // Put a file back and SIGHUP again: auditing (and service) resumes.
    std::fs::remove_dir(&audit_file).unwrap();
    server.signal("HUP");
    let mut ok = false;
    for _ in 0..100 {
        if c.get("cubbyhole/s").0 == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok, "service resumes after a successful reopen");
    assert!(lines(&audit_file).iter().any(|l| l["request"]["path"] == "cubbyhole/s"), "the new file receives lines");
    // The refused write never happened.
    assert_eq!(c.get("cubbyhole/t").0, 404);
    server.terminate();
}

#[test]
fn declarative_devices_log_raw_keeps_sensitive_fields_hashed_and_cannot_be_disabled() {
    let work = tempfile::tempdir().unwrap();
    let audit_file = work.path().join("raw.log");
    let plugin_dir = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let bytes = std::fs::read(format!("{}/probe_lease.wasm", env!("TEST_PLUGINS_DIR"))).unwrap();
    std::fs::write(plugin_dir.join("probe-lease.wasm"), &bytes).unwrap();
    let sha = tresor_runtime::sha256_hex(&bytes);
    let mut server = TestServer::sqlite_with_config(&format!(
        "plugin_directory = \"{}\"\naudit \"file\" \"raw-audit\" {{\n  description = \"declared\"\n  options {{\n    file_path = \"{}\"\n    log_raw = \"true\"\n  }}\n}}\n",
        plugin_dir.display(),
        audit_file.display()
    ));
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let (s, list) = c.get("sys/audit");
    assert_eq!(s, 200);
    assert_eq!(list["data"]["raw-audit/"]["description"], "declared");
    assert_eq!(c.delete("sys/audit/raw-audit").0, 400, "declared devices are managed in the config");

    assert_eq!(c.put("sys/plugins/catalog/secret/probe-lease", json!({"sha256": sha, "command": "probe-lease.wasm"})).0, 204);
    assert_eq!(c.put("sys/mounts/probe", json!({"type": "probe-lease"})).0, 204);
    let (s, b) = c.put("probe/creds/alice", json!({"ttl": "1h", "password": "declared-sensitive-pw"}));
    assert_eq!(s, 200, "{b}");
    let all = lines(&audit_file);
    let req = all.iter().find(|l| l["type"] == "request" && l["request"]["path"] == "probe/creds/alice").unwrap();
    assert_eq!(req["request"]["data"]["ttl"], "1h", "log_raw: ordinary fields in the clear");
    assert!(req["request"]["data"]["password"].as_str().unwrap().starts_with("hmac-sha256:"), "sensitive field hashed even with log_raw: {req}");
    assert!(req["request"]["client_token"].as_str().unwrap().starts_with("hmac-sha256:"), "tokens are always hashed");
    let resp = all.iter().find(|l| l["type"] == "response" && l["request"]["path"] == "probe/creds/alice").unwrap();
    assert_eq!(resp["response"]["secret"]["lease_id"], b["lease_id"]);
    assert!(!contains(&std::fs::read(&audit_file).unwrap(), "declared-sensitive-pw"));
    // A token in a request body (the core's own paths) is hashed with log_raw too.
    let other = c.put("auth/token/create", json!({"ttl": "1h"})).1["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(c.put("sys/wrapping/lookup", json!({"token": "not-a-wrapping-token"})).0, 400);
    assert_eq!(c.put("auth/token/lookup", json!({"token": other})).0, 200);
    let all = lines(&audit_file);
    let lookup = all.iter().find(|l| l["type"] == "request" && l["request"]["path"] == "auth/token/lookup").unwrap();
    assert!(lookup["request"]["data"]["token"].as_str().unwrap().starts_with("hmac-sha256:"), "{lookup}");
    assert!(!contains(&std::fs::read(&audit_file).unwrap(), &other));

    // Restart: the declared device is there again, with the same salt (hashes stay comparable).
    let before = c.put("sys/audit-hash/raw-audit", json!({"input": "x"})).1["data"]["hash"].clone();
    server.terminate();
    server.start();
    server.unseal(&keys);
    assert_eq!(server.http(&root).put("sys/audit-hash/raw-audit", json!({"input": "x"})).1["data"]["hash"], before);
}

#[test]
fn a_socket_device_streams_lines_to_a_tcp_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        for line in BufReader::new(conn).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/audit/sock", json!({"type": "socket", "options": {"address": addr, "socket_type": "tcp"}})).0, 204);
    assert_eq!(c.put("cubbyhole/over-the-wire", json!({"v": "socket-secret"})).0, 204);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let done = v["type"] == "response" && v["request"]["path"] == "cubbyhole/over-the-wire";
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains("cubbyhole/over-the-wire") && l.contains("\"type\":\"response\"")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("socket-secret")));
}

#[test]
fn the_real_bao_cli_enables_lists_and_disables_audit_devices() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let audit_file = server.dir.path().join("bao-audit.log");
    let out = bao(&server, &root, &["audit", "enable", "file", &format!("file_path={}", audit_file.display())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bao(&server, &root, &["audit", "list", "-format=json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["file/"]["type"], "file");
    let out = bao(&server, &root, &["write", "cubbyhole/x", "k=bao-audit-secret"]);
    assert!(out.status.success());
    assert!(!contains(&std::fs::read(&audit_file).unwrap(), "bao-audit-secret"));
    assert!(std::fs::read_to_string(&audit_file).unwrap().contains("cubbyhole/x"));
    let out = bao(&server, &root, &["audit", "disable", "file"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bao(&server, &root, &["audit", "list", "-format=json"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("file/"));
}

/// A mount's `audit_non_hmac_request_keys` / `audit_non_hmac_response_keys` leave those keys in the
/// clear in its audit lines, as Vault does, and only on that mount; a field the plugin declares
/// sensitive stays hashed even when listed (Tresor's rule: a secret never reaches a log).
#[test]
fn a_mount_tuned_with_non_hmac_keys_logs_them_in_the_clear_and_only_them() {
    let server = TestServer::dev();
    let c = server.root();
    let audit_file = server.dir.path().join("audit-nonhmac.log");
    assert_eq!(c.put("sys/audit/file", json!({"type": "file", "options": {"file_path": audit_file.to_str().unwrap()}})).0, 204);
    assert_eq!(c.put("sys/mounts/kv1", json!({"type": "kv", "config": {"audit_non_hmac_request_keys": ["env"]}})).0, 204);
    assert_eq!(c.put("sys/mounts/kv1/tune", json!({"audit_non_hmac_response_keys": "env,owner"})).0, 204);
    assert_eq!(c.put("sys/mounts/other", json!({"type": "kv"})).0, 204);
    for mount in ["kv1", "other"] {
        assert_eq!(c.put(&format!("{mount}/app"), json!({"env": "prod", "owner": "ops", "pw": "hunter2-nonhmac"})).0, 204);
        assert_eq!(c.get(&format!("{mount}/app")).0, 200);
    }
    assert_eq!(c.put("sys/auth/up", json!({"type": "userpass", "config": {"audit_non_hmac_request_keys": ["password", "username"]}})).0, 204);
    assert_eq!(c.put("auth/up/users/bob", json!({"password": "bobs-secret-pw", "policies": "default"})).0, 204);
    assert_eq!(server.http("").put("auth/up/login/bob", json!({"password": "bobs-secret-pw"})).0, 200);
    // On the token mount, a token in a body stays hashed even when listed.
    assert_eq!(c.put("sys/auth/token/tune", json!({"audit_non_hmac_request_keys": ["token", "display_name"]})).0, 204);
    let (s, created) = c.put("auth/token/create", json!({"display_name": "shown", "ttl": "1h"}));
    assert_eq!(s, 200, "{created}");
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(c.put("auth/token/lookup", json!({"token": token})).0, 200);

    let all = lines(&audit_file);
    let line = |kind: &str, op: &str, path: &str| -> Value {
        all.iter().find(|l| l["type"] == kind && l["request"]["operation"] == op && l["request"]["path"] == path).cloned().unwrap_or_else(|| panic!("{kind} {op} {path}"))
    };
    let hashed = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("hmac-sha256:"));
    let req = &line("request", "update", "kv1/app")["request"]["data"];
    assert_eq!(req["env"], "prod", "{req}");
    assert!(hashed(&req["owner"]) && hashed(&req["pw"]), "{req}");
    let resp = &line("response", "read", "kv1/app")["response"]["data"];
    assert_eq!((resp["env"].as_str(), resp["owner"].as_str()), (Some("prod"), Some("ops")), "{resp}");
    assert!(hashed(&resp["pw"]), "{resp}");
    for (kind, op) in [("request", "update"), ("response", "read")] {
        let l = line(kind, op, "other/app");
        let data = if kind == "request" { &l["request"]["data"] } else { &l["response"]["data"] };
        assert!(hashed(&data["env"]) && hashed(&data["owner"]), "another mount is not affected: {data}");
    }
    let login = &line("request", "update", "auth/up/login/bob")["request"]["data"];
    assert!(hashed(&login["password"]), "a sensitive field stays hashed: {login}");
    assert_eq!(line("request", "update", "auth/token/create")["request"]["data"]["display_name"], "shown");
    let lookup = &line("request", "update", "auth/token/lookup")["request"]["data"];
    assert!(hashed(&lookup["token"]), "{lookup}");
    let text = std::fs::read_to_string(&audit_file).unwrap();
    assert!(!text.contains("hunter2-nonhmac") && !text.contains("bobs-secret-pw") && !text.contains(&token));
}

/// `sys/config/auditing/request-headers`: configured headers appear in the request's audit entry
/// (lower-case, values HMAC'd when asked, a token header always hashed), others never; the
/// configuration is root-only and survives a restart.
#[test]
fn audited_request_headers_are_logged_as_configured() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let audit_file = server.dir.path().join("audit.log");
    assert_eq!(c.put("sys/audit/file", json!({"type": "file", "options": {"file_path": audit_file.to_str().unwrap()}})).0, 204);
    assert_eq!(c.get("sys/config/auditing/request-headers").1["data"], json!({"headers": {}}));
    assert_eq!(c.put("sys/config/auditing/request-headers/X-Forwarded-For", json!({})).0, 204);
    assert_eq!(c.put("sys/config/auditing/request-headers/X-Secret-Header", json!({"hmac": true})).0, 204);
    assert_eq!(c.put("sys/config/auditing/request-headers/Authorization", json!({"hmac": false})).0, 204);
    assert_eq!(
        c.get("sys/config/auditing/request-headers").1["data"],
        json!({"headers": {"authorization": {"hmac": false}, "x-forwarded-for": {"hmac": false}, "x-secret-header": {"hmac": true}}})
    );
    assert_eq!(c.get("sys/config/auditing/request-headers/x-secret-header").1["data"], json!({"x-secret-header": {"hmac": true}}));
    assert_eq!(c.get("sys/config/auditing/request-headers/nope").1["errors"][0], "Could not find header in config");
    let limited = c.put("auth/token/create", json!({"policies": ["default"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&limited).get("sys/config/auditing/request-headers").0, 403);

    server.terminate();
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    let secret = "header-secret-5e1d";
    let bearer = format!("Bearer {root}");
    let r = c.raw_headers(
        "GET",
        "sys/mounts",
        None,
        None,
        &[("X-Forwarded-For", "10.1.2.3"), ("X-Secret-Header", secret), ("X-Other", "not-configured"), ("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
    let entry = lines(&audit_file).into_iter().rev().find(|l| l["type"] == "request" && l["request"]["path"] == "sys/mounts").unwrap();
    let headers = &entry["request"]["headers"];
    assert_eq!(headers["x-forwarded-for"], json!(["10.1.2.3"]), "{entry}");
    let hashed = headers["x-secret-header"][0].as_str().unwrap();
    assert!(hashed.starts_with("hmac-sha256:"), "{entry}");
    assert_eq!(c.put("sys/audit-hash/file", json!({"input": secret})).1["data"]["hash"], hashed, "reproducible with sys/audit-hash");
    assert!(headers["authorization"][0].as_str().unwrap().starts_with("hmac-sha256:"), "a token header is always hashed: {entry}");
    assert!(headers.get("x-other").is_none(), "{entry}");
    let bytes = std::fs::read(&audit_file).unwrap();
    assert!(!contains(&bytes, secret) && !contains(&bytes, &root));

    assert_eq!(c.delete("sys/config/auditing/request-headers/X-Secret-Header").0, 204);
    c.raw_headers("GET", "sys/auth", None, None, &[("X-Secret-Header", secret)]);
    let entry = lines(&audit_file).into_iter().rev().find(|l| l["type"] == "request" && l["request"]["path"] == "sys/auth").unwrap();
    assert!(entry["request"]["headers"].get("x-secret-header").is_none(), "{entry}");
}
