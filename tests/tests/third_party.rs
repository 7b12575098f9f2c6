//! The third-party plugin path, end to end: build `plugins/template` outside the workspace, register
//! it by sha256, mount it, call it, upgrade it with `sys/plugins/reload/backend` while a load runs
//! (no failed request), and refuse a file changed after registration.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use tresor_tests::{workspace_root, TestServer};

/// Copy the template to `dir`, point it at this checkout's SDK, set its version, build it for
/// wasm32-wasip2 with cargo exactly as a plugin author would, and return the component's bytes.
fn build_template(dir: &Path, version: &str) -> Vec<u8> {
    let template = workspace_root().join("plugins/template");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = workspace_root().join("sdk/plugin");
    let manifest = std::fs::read_to_string(template.join("Cargo.toml"))
        .unwrap()
        .replace("../../sdk/plugin", &sdk.display().to_string())
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(template.join("src/lib.rs"), dir.join("src/lib.rs")).unwrap();
    // Share the test plugins' target directory so dependencies compile once per machine.
    let target = workspace_root().join("tests/test-plugins/target");
    build_wasm_workspace(dir, &target).unwrap_or_else(|e| panic!("building the template failed:\n{e}"));
    std::fs::read(target.join("wasm32-wasip2/release/myplugin.wasm")).unwrap()
}

include!("../../build-support/wasm_build.rs");

fn sha256(bytes: &[u8]) -> String {
    tresor_runtime::sha256_hex(bytes)
}

#[test]
fn a_template_plugin_is_registered_mounted_and_upgraded_under_load_without_failures() {
    let work = tempfile::tempdir().unwrap();
    let plugin_dir: PathBuf = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let v1 = build_template(&work.path().join("src-v1"), "0.1.0");
    std::fs::write(plugin_dir.join("myplugin-1.wasm"), &v1).unwrap();
    let v2 = build_template(&work.path().join("src-v2"), "0.2.0");
    std::fs::write(plugin_dir.join("myplugin-2.wasm"), &v2).unwrap();
    assert_ne!(sha256(&v1), sha256(&v2));

    let server = TestServer::dev_with(&[&format!("-dev-plugin-dir={}", plugin_dir.display())]);
    let c = server.root();

    // A wrong checksum is refused at registration.
    let (s, b) = c.put("sys/plugins/catalog/secret/myplugin", json!({"sha256": "0".repeat(64), "command": "myplugin-1.wasm", "version": "v0.1.0"}));
    assert_eq!(s, 400, "{b}");
    assert!(b["errors"][0].as_str().unwrap().contains("sha256 mismatch"), "{b}");
    // A command that tries to leave the plugin directory is refused.
    let (s, _) = c.put("sys/plugins/catalog/secret/evil", json!({"sha256": sha256(&v1), "command": "../plugins/myplugin-1.wasm"}));
    assert_eq!(s, 400);

    let (s, b) = c.put("sys/plugins/catalog/secret/myplugin", json!({"sha256": sha256(&v1), "command": "myplugin-1.wasm", "version": "v0.1.0"}));
    assert_eq!(s, 204, "{b}");
    let (_, entry) = c.get("sys/plugins/catalog/secret/myplugin");
    assert_eq!(entry["data"]["sha256"], sha256(&v1));
    assert!(c.get("sys/plugins/catalog").1["data"]["secret"].as_array().unwrap().contains(&json!("myplugin")));

    assert_eq!(c.put("sys/mounts/my", json!({"type": "myplugin"})).0, 204);
    assert_eq!(c.get("my/info").1["data"]["version"], "0.1.0");
    assert_eq!(c.put("my/items/a", json!({"value": "kept"})).0, 204);
    let (_, mounts) = c.get("sys/mounts");
    assert_eq!(mounts["data"]["my/"]["running_sha256"], sha256(&v1));
    assert_eq!(mounts["data"]["my/"]["running_plugin_version"], "v0.1.0");

    // Load: four clients hammer the mount while it is upgraded.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let (seen_v1, seen_v2, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = server.root();
            let (stop, failures, seen_v1, seen_v2, total) = (stop.clone(), failures.clone(), seen_v1.clone(), seen_v2.clone(), total.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (s, b) = client.get("my/info");
                    total.fetch_add(1, Ordering::Relaxed);
                    match (s, b["data"]["version"].as_str()) {
                        (200, Some("0.1.0")) => seen_v1.fetch_add(1, Ordering::Relaxed),
                        (200, Some("0.2.0")) => seen_v2.fetch_add(1, Ordering::Relaxed),
                        _ => failures.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (s, b) = c.put("sys/plugins/catalog/secret/myplugin", json!({"sha256": sha256(&v2), "command": "myplugin-2.wasm", "version": "v0.2.0"}));
    assert_eq!(s, 204, "{b}");
    let (s, b) = c.put("sys/plugins/reload/backend", json!({"plugin": "myplugin"}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["reloaded_mounts"], 1);
    assert_eq!(b["data"]["reload_id"], b["request_id"], "the reload is named by the request, as Vault's");
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no request failed during the upgrade ({} total)", total.load(Ordering::Relaxed));
    assert!(seen_v1.load(Ordering::Relaxed) > 0 && seen_v2.load(Ordering::Relaxed) > 0, "both versions served");
    assert_eq!(c.get("my/info").1["data"]["version"], "0.2.0");
    assert_eq!(c.get("my/items/a").1["data"]["value"], "kept", "the upgrade kept the mount's storage");
    assert_eq!(c.get("sys/mounts").1["data"]["my/"]["running_sha256"], sha256(&v2));

    // The file changes after registration: reloading and mounting refuse it; the running build stays.
    let mut tampered = v2.clone();
    tampered.push(0);
    std::fs::write(plugin_dir.join("myplugin-2.wasm"), &tampered).unwrap();
    let (s, b) = c.put("sys/plugins/reload/backend", json!({"plugin": "myplugin"}));
    assert!(s >= 400, "{s} {b}");
    assert!(b["errors"][0].as_str().unwrap().contains("sha256 mismatch"), "{b}");
    let (s, _) = c.put("sys/mounts/my2", json!({"type": "myplugin"}));
    assert_eq!(s, 400);
    assert_eq!(c.get("my/info").1["data"]["version"], "0.2.0", "still serving the verified build");
}

#[test]
fn a_missing_plugin_never_blocks_unseal_and_its_mount_answers_500_until_fixed() {
    let work = tempfile::tempdir().unwrap();
    let plugin_dir = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let v1 = build_template(&work.path().join("src"), "0.1.0");
    std::fs::write(plugin_dir.join("myplugin.wasm"), &v1).unwrap();

    let mut server = TestServer::sqlite_with_plugins(&plugin_dir);
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/plugins/catalog/secret/myplugin", json!({"sha256": sha256(&v1), "command": "myplugin.wasm", "version": "v0.1.0"})).0, 204);
    assert_eq!(c.put("sys/mounts/my", json!({"type": "myplugin"})).0, 204);
    assert_eq!(c.put("sys/mounts/kv", json!({"type": "kv-v2"})).0, 204);
    assert_eq!(c.put("my/items/a", json!({"value": "kept"})).0, 204);
    assert!(server.terminate().success());

    // The plugin file disappears while the server is down.
    std::fs::remove_file(plugin_dir.join("myplugin.wasm")).unwrap();
    server.start();
    server.unseal(&keys); // asserts the unseal succeeded
    let c = server.http(&root);
    let (s, b) = c.get("my/info");
    assert_eq!(s, 500, "{b}");
    assert!(b["errors"][0].as_str().unwrap().contains("plugin for mount my/ could not be loaded"), "{b}");
    assert_eq!(c.put("kv/data/x", json!({"data": {"a": "b"}})).0, 200, "other mounts are unaffected");

    // Restored and reloaded: the mount works again, with its data.
    std::fs::write(plugin_dir.join("myplugin.wasm"), &v1).unwrap();
    let (s, b) = c.put("sys/plugins/reload/backend", json!({"plugin": "myplugin"}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(c.get("my/info").1["data"]["version"], "0.1.0");
    assert_eq!(c.get("my/items/a").1["data"]["value"], "kept");
}
