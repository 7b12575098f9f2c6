//! The KV plugin (a real wasm component) through the real binary: Vault's HTTP shapes, the real
//! `bao kv` CLI, and hvac's KV v1/v2 clients.

use std::process::Output;

use serde_json::{json, Value};
use tresor_tests::{BaoDev, Http, Lcg, TestServer, bao, send_both};

fn ok_json(out: Output) -> Value {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn bao_kv_commands_work_against_the_kv_plugin() {
    let server = TestServer::dev();
    let put = ok_json(bao(&server, &server.root_token, &["kv", "put", "-format=json", "secret/app", "user=alice", "pass=p1"]));
    assert_eq!(put["data"]["version"], 1);
    ok_json(bao(&server, &server.root_token, &["kv", "put", "-format=json", "secret/app", "user=bob"]));
    let got = ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"user": "bob"}));
    let v1 = ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "-version=1", "secret/app"]));
    assert_eq!(v1["data"]["data"], json!({"pass": "p1", "user": "alice"}));
    ok_json(bao(&server, &server.root_token, &["kv", "patch", "-format=json", "secret/app", "role=admin"]));
    let got = ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"role": "admin", "user": "bob"}));
    let listed = ok_json(bao(&server, &server.root_token, &["kv", "list", "-format=json", "secret/"]));
    assert_eq!(listed, json!(["app"]));

    assert!(bao(&server, &server.root_token, &["kv", "delete", "secret/app"]).status.success());
    // As real OpenBao: exit 0, `data` null, the deletion time in the metadata.
    let deleted = ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(deleted["data"]["data"], Value::Null);
    assert_ne!(deleted["data"]["metadata"]["deletion_time"], "");
    assert!(bao(&server, &server.root_token, &["kv", "undelete", "-versions=3", "secret/app"]).status.success());
    assert_eq!(ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "secret/app"]))["data"]["data"]["role"], "admin");
    assert!(bao(&server, &server.root_token, &["kv", "destroy", "-versions=1", "secret/app"]).status.success());
    let meta = ok_json(bao(&server, &server.root_token, &["kv", "metadata", "get", "-format=json", "secret/app"]));
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
    assert_eq!(meta["data"]["current_version"], 3);
    assert!(bao(&server, &server.root_token, &["kv", "metadata", "put", "-max-versions=2", "-custom-metadata=owner=ops", "secret/app"]).status.success());
    let meta = ok_json(bao(&server, &server.root_token, &["kv", "metadata", "get", "-format=json", "secret/app"]));
    assert_eq!(meta["data"]["custom_metadata"], json!({"owner": "ops"}));
    assert_eq!(meta["data"]["max_versions"], 2);
    // As OpenBao: a lower max_versions drops old versions at the next write, not when it is set.
    assert_eq!(meta["data"]["versions"].as_object().map(|v| v.len()), Some(3));
    assert!(bao(&server, &server.root_token, &["kv", "put", "secret/app", "role=ops"]).status.success());
    let meta = ok_json(bao(&server, &server.root_token, &["kv", "metadata", "get", "-format=json", "secret/app"]));
    assert_eq!((meta["data"]["versions"].as_object().map(|v| v.len()), meta["data"]["oldest_version"].clone()), (Some(2), json!(3)));
    assert!(bao(&server, &server.root_token, &["kv", "metadata", "delete", "secret/app"]).status.success());
    assert!(!bao(&server, &server.root_token, &["kv", "get", "secret/app"]).status.success());

    // KV v1 through `bao secrets enable` and the same kv commands.
    assert!(bao(&server, &server.root_token, &["secrets", "enable", "-path=kv1", "-version=1", "kv"]).status.success());
    assert!(bao(&server, &server.root_token, &["kv", "put", "kv1/x", "a=b"]).status.success());
    assert_eq!(ok_json(bao(&server, &server.root_token, &["kv", "get", "-format=json", "kv1/x"]))["data"], json!({"a": "b"}));
    let mounts = ok_json(bao(&server, &server.root_token, &["secrets", "list", "-format=json"]));
    assert_eq!(mounts["kv1/"]["options"]["version"], "1");
    assert_eq!(mounts["secret/"]["options"]["version"], "2");
}

#[test]
fn kv_v2_http_shapes_match_vault() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.raw("POST", "sys/mounts/kv2", Some(br#"{"type":"kv-v2"}"#), Some("application/json")).status, 204);
    let (s, b) = c.put("sys/mounts/kv2", json!({"type": "kv"}));
    assert_eq!((s, b), (400, json!({"errors": ["path is already in use at kv2/"]})));
    let (s, b) = c.put("sys/mounts/bogus", json!({"type": "nope"}));
    assert_eq!((s, b), (400, json!({"errors": ["plugin not found in the catalog: nope"]})));

    let (s, b) = c.put("kv2/data/app/db", json!({"data": {"user": "u", "pass": "p1"}}));
    assert_eq!(s, 200);
    assert_eq!(b["data"]["version"], 1);
    assert_eq!(b["data"]["deletion_time"], "");
    assert_eq!(b["data"]["custom_metadata"], Value::Null);
    let (s, b) = c.put("kv2/data/app/db", json!({"options": {"cas": 0}, "data": {"x": "y"}}));
    assert_eq!((s, b), (400, json!({"errors": ["check-and-set parameter did not match the current version"]})));
    let (s, b) = c.put("kv2/data/s2", json!({"data": {"x": 1}, "options": {"cas": "abc"}}));
    assert_eq!((s, b), (400, json!({"errors": ["error parsing check-and-set parameter"]})));
    let (s, b) = c.put("kv2/data/app/db", json!({"user": "no-data-wrapper"}));
    assert_eq!((s, b), (400, json!({"errors": ["no data provided"]})));

    let r = c.raw("LIST", "kv2/data/app", None, None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json(), json!({"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}));
    let (s, b) = c.get("kv2/app/db");
    assert_eq!(s, 404);
    assert!(b["warnings"][0].as_str().unwrap().starts_with("Invalid path for a versioned K/V secrets engine"));
    assert_eq!(c.get("kv2/data/nope"), (404, json!({"errors": []})));

    // The 404-with-body rule for a deleted version.
    assert_eq!(c.delete("kv2/data/app/db").0, 204);
    let (s, b) = c.get("kv2/data/app/db");
    assert_eq!(s, 404);
    assert_eq!(b["data"]["data"], Value::Null);
    assert_ne!(b["data"]["metadata"]["deletion_time"], "");
    assert_eq!(c.put("kv2/delete/app/db", json!({})), (400, json!({"errors": ["No version number provided"]})));

    let r = c.raw("PATCH", "kv2/data/s3", Some(br#"{"data":{"a":"1"}}"#), Some("application/merge-patch+json"));
    assert_eq!(r.status, 404, "patching a secret that does not exist");
    assert_eq!(c.get("kv2/config").1["data"], json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0, "metadata_cas_required": false}));

    let (s, ui) = c.get("sys/internal/ui/mounts/kv2/data/app/db");
    assert_eq!(s, 200);
    assert_eq!((ui["data"]["path"].clone(), ui["data"]["options"]["version"].clone()), (json!("kv2/"), json!("2")));
}

#[test]
fn kv_v1_shapes_ttl_and_tune() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}, "description": "kv v1"})).0, 204);
    assert_eq!(c.raw("POST", "kv1/app/db", Some(br#"{"user":"u","pass":"p","ttl":"1h"}"#), Some("application/json")).status, 204);
    let (s, b) = c.get("kv1/app/db");
    assert_eq!(s, 200);
    assert_eq!(b["lease_duration"], 3600);
    assert_eq!(b["lease_id"], "");
    assert_eq!(b["data"], json!({"pass": "p", "ttl": "1h", "user": "u"}));
    assert_eq!(c.list("kv1/app").1["data"]["keys"], json!(["db"]));
    assert_eq!(c.list("kv1/").1["data"]["keys"], json!(["app/"]));
    assert_eq!(c.list("kv1/nothing"), (404, json!({"errors": []})));
    assert_eq!(c.put("kv1/app/empty", json!({})), (400, json!({"errors": ["missing data fields"]})));

    let (_, tune) = c.get("sys/mounts/kv1/tune");
    assert_eq!(tune["data"]["default_lease_ttl"], 2_764_800);
    assert_eq!(tune["data"]["description"], "kv v1");
    assert_eq!(c.put("sys/mounts/kv1/tune", json!({"default_lease_ttl": "1h", "max_lease_ttl": "24h", "description": "tuned"})).0, 204);
    let (_, tune) = c.get("sys/mounts/kv1/tune");
    assert_eq!((tune["data"]["default_lease_ttl"].clone(), tune["data"]["max_lease_ttl"].clone()), (json!(3600), json!(86400)));
    c.put("kv1/nottl", json!({"a": "b"}));
    assert_eq!(c.get("kv1/nottl").1["lease_duration"], 3600, "mount default applies without a ttl key");
    assert_eq!(c.get("kv1/app/db").1["data"]["user"], "u", "tuning kept the data");

    assert_eq!(c.delete("sys/mounts/kv1").0, 204);
    assert_eq!(c.get("kv1/app/db").0, 404);
    assert_eq!(c.delete("sys/mounts/never-mounted").0, 204);
    // Re-enabling at the same path starts empty: disabling deleted the storage.
    assert_eq!(c.put("sys/mounts/kv1", json!({"type": "kv"})).0, 204);
    assert_eq!(c.get("kv1/app/db").0, 404);
}

#[test]
fn mounts_and_their_data_survive_restart_and_unseal() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/mounts/team", json!({"type": "kv-v2"})).0, 204);
    assert_eq!(c.put("team/data/db", json!({"data": {"password": "hunter2-unique-9d1"}})).0, 200);
    server.kill9();
    let db = std::fs::read(server.db_path()).unwrap_or_default();
    let wal = std::fs::read(format!("{}-wal", server.db_path().display())).unwrap_or_default();
    assert!(![db, wal].concat().windows(18).any(|w| w == b"hunter2-unique-9d1"), "plugin data is encrypted at rest");
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.get("team/data/db").1["data"]["data"]["password"], "hunter2-unique-9d1");
    assert_eq!(c.get("sys/mounts").1["data"]["team/"]["options"]["version"], "2");
}

#[test]
fn bao_kv_enable_versioning_upgrades_a_v1_mount_in_place() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    assert!(bao(&server, &root, &["secrets", "enable", "-path=legacy", "-version=1", "kv"]).status.success());
    for (path, kv) in [("legacy/app/db", "pass=p1"), ("legacy/meta/x", "a=b"), ("legacy/config", "c=d")] {
        assert!(bao(&server, &root, &["kv", "put", path, kv]).status.success());
    }
    let c = server.http(&root);
    // Going back is refused; going up warns as Vault does, then the data is versioned.
    let up = bao(&server, &root, &["kv", "enable-versioning", "legacy/"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    assert_eq!(c.get("sys/mounts/legacy/tune").1["data"]["options"]["version"], "2");
    let got = ok_json(bao(&server, &root, &["kv", "get", "-format=json", "legacy/app/db"]));
    assert_eq!((got["data"]["data"].clone(), got["data"]["metadata"]["version"].clone()), (json!({"pass": "p1"}), json!(1)));
    // Secrets whose v1 paths are where v2 keeps its own records moved as any other.
    assert_eq!(ok_json(bao(&server, &root, &["kv", "get", "-format=json", "legacy/meta/x"]))["data"]["data"], json!({"a": "b"}));
    assert_eq!(ok_json(bao(&server, &root, &["kv", "get", "-format=json", "legacy/config"]))["data"]["data"], json!({"c": "d"}));
    assert_eq!(ok_json(bao(&server, &root, &["kv", "list", "-format=json", "legacy/"])), json!(["app/", "config", "meta/"]));
    let put = ok_json(bao(&server, &root, &["kv", "put", "-format=json", "legacy/app/db", "pass=p2"]));
    assert_eq!(put["data"]["version"], 2);
    let (s, b) = c.put("sys/mounts/legacy/tune", json!({"options": {"version": "1"}}));
    assert_eq!((s, b), (400, json!({"errors": ["cannot downgrade mount from version 2"]})));
    // A restart loads the mount again without moving anything twice.
    server.kill9();
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.get("legacy/data/app/db").1["data"]["data"], json!({"pass": "p2"}));
    assert_eq!(c.get("legacy/data/app/db?version=1").1["data"]["data"], json!({"pass": "p1"}));
    assert_eq!(c.get("legacy/metadata/app/db").1["data"]["current_version"], 2);
}

#[test]
fn tuning_a_kv_mount_to_version_2_warns_as_vault_does() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}})).0, 204);
    let (s, b) = c.put("sys/mounts/kv1/tune", json!({"options": {"version": "2"}}));
    assert_eq!(s, 200);
    assert_eq!(
        b["warnings"],
        json!(["Upgrading mount from version 1 to version 2. This mount will be unavailable for a brief period and will resume service shortly."])
    );
    assert_eq!(c.put("sys/mounts/kv1/tune", json!({"options": {"version": "3"}})).0, 400);
    // Unknown parameters are named in a warning on a plugin's answer, as Vault's framework does.
    let (_, b) = c.put("kv1/data/x", json!({"data": {"a": "b"}}));
    assert_eq!(b["warnings"], Value::Null);
    let (_, b) = c.put("kv1/config", json!({"max_versions": 3, "bogus": 1}));
    assert_eq!(b, json!(null), "an empty answer stays a 204 without a warning");
    let (_, b) = c.get("kv1/config?zeta=1&alpha=2");
    assert_eq!(b["warnings"], json!(["Endpoint ignored these unrecognized parameters: [alpha zeta]"]));
}

#[test]
fn hvac_kv_v1_and_v2_clients_work() {
    let server = TestServer::dev();
    tresor_tests::hvac(&server, "hvac_kv.py", "hvac ok");
}

#[test]
fn help_and_openapi_come_from_the_declared_spec() {
    let server = TestServer::dev();
    let c = server.root();
    // As Vault: the help document itself (no envelope), paths relative to the mount.
    let (s, b) = c.get("secret/data/app?help=1");
    assert_eq!(s, 200, "{b}");
    assert!(b.get("request_id").is_none(), "{b}");
    assert!(b["openapi"]["paths"]["/data/{path}"]["post"].is_object(), "{b}");
    let help = b["help"].as_str().unwrap();
    assert!(help.starts_with("Request:        data/app\nMatching Route: ^data/(?P<path>.*)$\n\nWrite, Patch, Read, and Delete data"), "{help}");
    assert!(help.contains("\n    data (map)\n\n        The contents of the data map will be stored and returned on read.\n"), "{help}");
    let out = bao(&server, &server.root_token, &["path-help", "secret/metadata/app"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("custom_metadata (map)") && text.contains("max_versions (int)"), "{text}");
    // At the mount's root: the backend's description and every path (Vault's root help).
    let out = bao(&server, &server.root_token, &["path-help", "secret/"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("## DESCRIPTION\n") && text.contains("## PATHS"), "{text}");
    assert!(text.contains("    ^data/(?P<path>.*)$\n        Write, Patch, Read, and Delete data in the Key-Value Store.\n"), "{text}");
    // The core's own paths answer too (they were 405).
    for path in ["sys/mounts", "auth/token/create"] {
        let out = bao(&server, &server.root_token, &["path-help", path]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Matching Route: ^"), "{path}: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let (s, doc) = c.get("sys/internal/specs/openapi");
    assert_eq!(s, 200);
    // The document itself, as Vault sends it (no envelope).
    assert_eq!((doc["openapi"].as_str(), doc.get("request_id"), doc.get("data")), (Some("3.0.2"), None, None), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/secret/config", "/secret/data/{path}", "/secret/metadata/{path}", "/secret/destroy/{path}"] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
}

#[test]
fn remount_moves_a_mount_with_its_data() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/mounts/kv1", json!({"type": "kv"})).0, 204);
    assert_eq!(c.put("kv1/app", json!({"a": "b"})).0, 204);
    let (s, b) = c.put("sys/remount", json!({"from": "kv1", "to": "kv1b"}));
    assert_eq!(s, 200, "{b}");
    let id = b["data"]["migration_id"].as_str().unwrap().to_string();
    assert!(b["warnings"][0].as_str().unwrap().starts_with("Mount move has been queued"));
    assert_eq!(c.get(&format!("sys/remount/status/{id}")).1["data"]["migration_info"]["status"], "success");
    assert_eq!(c.get("kv1b/app").1["data"], json!({"a": "b"}));
    assert_eq!(c.get("kv1/app").0, 404);
    let (s, _) = c.put("sys/remount", json!({"from": "nope", "to": "x"}));
    assert_eq!(s, 400);
    // The move is persisted: it survives a restart.
    assert!(server.terminate().success());
    server.start();
    server.unseal(&keys);
    assert_eq!(server.http(&root).get("kv1b/app").1["data"], json!({"a": "b"}));
}

/// Every plugin call runs in its own instance with staged writes; the runtime's conflict detection
/// (`host/runtime/src/conflict.rs`) must make concurrent read-modify-writes serializable: no two
/// writes get the same version, and check-and-set admits exactly one writer.
#[test]
fn concurrent_writes_to_one_secret_are_serialized() {
    let server = TestServer::dev();
    let writers = 24;
    hammer_one_secret(&server, writers, 1);
    let c = server.root();
    // cas=0 ("only if absent") from many writers at once: exactly one wins.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let c = server.root();
                s.spawn(move || c.put("secret/data/once", json!({"options": {"cas": 0}, "data": {"writer": i}})).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), writers - 1, "{statuses:?}");
    assert_eq!(c.get("secret/metadata/once").1["data"]["current_version"], 1);
}

/// `writers` threads each write `rounds` versions of `secret/data/hot` at once; every write gets
/// its own version, and each version holds exactly what the writer that got it wrote.
fn hammer_one_secret(server: &TestServer, writers: usize, rounds: usize) {
    assert_eq!(server.root().put("secret/config", json!({"max_versions": 1000})).0, 204);
    let got: Vec<(u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let c = server.root();
                s.spawn(move || {
                    (0..rounds)
                        .map(|r| {
                            let tag = format!("w{i}-r{r}");
                            let (status, body) = c.put("secret/data/hot", json!({"data": {"writer": tag}}));
                            assert_eq!(status, 200, "{body}");
                            (body["data"]["version"].as_u64().unwrap(), tag)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let c = server.root();
    let total = (writers * rounds) as u64;
    let mut versions: Vec<u64> = got.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    let first = versions[0];
    assert_eq!(versions, (first..first + total).collect::<Vec<_>>(), "each write gets its own version");
    for (version, tag) in &got {
        let (status, body) = c.get(&format!("secret/data/hot?version={version}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["data"]["writer"], tag.as_str(), "version {version} holds its writer's data");
    }
    assert_eq!(c.get("secret/metadata/hot").1["data"]["current_version"], first + total - 1);
}

/// The same on durable SQLite storage, where a write to a hot key is queued behind the previous
/// version before that one is durable (pipelined commits): versions stay unique and complete, and
/// all of them survive a restart.
#[test]
fn concurrent_writes_to_one_secret_on_durable_storage_are_serialized_and_survive_a_restart() {
    let mut server = TestServer::sqlite();
    let (keys, _) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.root();
    assert_eq!(c.put("sys/mounts/secret", json!({"type": "kv", "options": {"version": "2"}})).0, 204);
    hammer_one_secret(&server, 16, 8);
    // Reads racing writes see whole versions, never a version that is not durable yet.
    std::thread::scope(|s| {
        let writer = {
            let c = server.root();
            s.spawn(move || (0..40).for_each(|i| assert_eq!(c.put("secret/data/hot", json!({"data": {"writer": format!("late-{i}")}})).0, 200)))
        };
        for _ in 0..40 {
            let (status, body) = c.get("secret/data/hot");
            assert_eq!(status, 200, "{body}");
            assert!(body["data"]["data"]["writer"].is_string(), "{body}");
        }
        writer.join().unwrap();
    });
    assert!(server.terminate().success());
    server.start();
    server.unseal(&keys);
    let c = server.root();
    let meta = c.get("secret/metadata/hot").1;
    assert_eq!(meta["data"]["current_version"], 16 * 8 + 40, "{meta}");
    assert_eq!(c.get("secret/data/hot").1["data"]["data"]["writer"], "late-39");
    assert_eq!(c.get("secret/data/hot?version=1").1["data"]["metadata"]["version"], 1);
}

/// OpenBao's `LIST detailed-metadata/:prefix` (keys plus each secret's metadata) and its paginated
/// lists (`after`, `limit` on KV metadata and Transit keys), compared with a real OpenBao after the
/// same writes (timestamps masked).
#[test]
fn detailed_metadata_lists_as_openbao_does() {
    let bao = tresor_tests::BaoDev::start();
    let server = TestServer::dev();
    fn masked(v: &Value) -> Value {
        match v {
            Value::String(s) if s.len() > 20 && s.as_bytes().get(4) == Some(&b'-') && s.ends_with('Z') => json!("<time>"),
            Value::Object(m) => Value::Object(m.iter().filter(|(k, _)| *k != "request_id").map(|(k, x)| (k.clone(), masked(x))).collect()),
            other => other.clone(),
        }
    }
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "secret/data/a", Some(json!({"data": {"x": "1"}}))),
        ("POST", "secret/data/a", Some(json!({"data": {"x": "2"}}))),
        ("POST", "secret/data/dir/b", Some(json!({"data": {"x": "1"}}))),
        ("POST", "secret/metadata/a", Some(json!({"custom_metadata": {"o": "p"}}))),
        ("DELETE", "secret/data/a", None),
        ("LIST", "secret/detailed-metadata/", None),
        ("LIST", "secret/detailed-metadata/dir/", None),
        ("LIST", "secret/detailed-metadata/none/", None),
        ("GET", "secret/detailed-metadata/a", None),
        // OpenBao's paginated lists: `after` (exclusive) and `limit`.
        ("POST", "secret/data/c", Some(json!({"data": {"x": "1"}}))),
        ("LIST", "secret/metadata/?limit=2", None),
        ("LIST", "secret/metadata/?after=a", None),
        ("LIST", "secret/metadata/?after=a&limit=1", None),
        ("LIST", "secret/metadata/?limit=0", None),
        ("LIST", "secret/metadata/?after=z", None),
        ("LIST", "secret/detailed-metadata/?after=c", None),
        ("POST", "sys/mounts/transit", Some(json!({"type": "transit"}))),
        ("POST", "transit/keys/k1", Some(json!({}))),
        ("POST", "transit/keys/k2", Some(json!({}))),
        ("LIST", "transit/keys?after=k1", None),
        ("LIST", "transit/keys?limit=1", None),
    ];
    let (theirs, ours) = (bao.http(), server.root());
    for (method, path, body) in &steps {
        let (tb, ob, what) = send_both(&theirs, &ours, method, path, body.as_ref());
        if method == &"LIST" {
            assert_eq!(masked(&ob["data"]), masked(&tb["data"]), "{what}");
            assert_eq!(ob["warnings"], tb["warnings"], "{what}");
        }
    }
}

/// One random KV v2 request over three secrets: writes and patches (some with `cas`), reads of
/// versions, deletes, undeletes, destroys, metadata writes and deletes, lists, subkeys and config.
fn random_kv_op(r: &mut Lcg) -> (&'static str, String, Option<Value>) {
    let key = ["a", "b", "d/e"][r.below(3) as usize];
    let v = r.below(7);
    let cas = |r: &mut Lcg| if r.below(10) < 3 { json!({"cas": v}) } else { json!({}) };
    let versions = |r: &mut Lcg| json!((0..r.below(3)).map(|_| r.below(7)).collect::<Vec<_>>());
    match r.below(100) {
        0..25 => ("POST", format!("kv/data/{key}"), Some(json!({"data": {"x": r.below(10).to_string()}, "options": cas(r)}))),
        25..32 => {
            let x = if r.below(10) < 3 { Value::Null } else { json!("z") };
            ("PATCH", format!("kv/data/{key}"), Some(json!({"data": {"y": r.below(10).to_string(), "x": x}, "options": cas(r)})))
        }
        32..45 => ("GET", if r.below(10) < 4 { format!("kv/data/{key}?version={v}") } else { format!("kv/data/{key}") }, None),
        45..50 => ("DELETE", format!("kv/data/{key}"), None),
        50..56 => ("POST", format!("kv/delete/{key}"), Some(json!({"versions": versions(r)}))),
        56..62 => ("POST", format!("kv/undelete/{key}"), Some(json!({"versions": versions(r)}))),
        62..66 => ("POST", format!("kv/destroy/{key}"), Some(json!({"versions": [1 + r.below(6)]}))),
        66..74 => ("GET", format!("kv/metadata/{key}"), None),
        74..80 => {
            let mut body = json!({"max_versions": r.below(5)});
            if r.below(2) == 0 {
                body["cas_required"] = json!(r.below(10) < 3);
            }
            ("POST", format!("kv/metadata/{key}"), Some(body))
        }
        80..83 => ("DELETE", format!("kv/metadata/{key}"), None),
        83..88 => ("LIST", format!("kv/metadata/{}", ["", "d/", "zz/"][r.below(3) as usize]), None),
        88..92 => ("GET", format!("kv/subkeys/{key}"), None),
        92..96 => ("POST", "kv/config".into(), Some(json!({"max_versions": r.below(6), "cas_required": r.below(10) < 2}))),
        _ => ("GET", "kv/config".into(), None),
    }
}

/// Timestamps as "set or not", request ids dropped: what two servers can agree on.
fn comparable_kv(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "request_id" | "lease_id"))
                .map(|(k, x)| match (k.as_str(), x) {
                    ("created_time" | "updated_time" | "deletion_time", Value::String(s)) => (k.clone(), json!(!s.is_empty())),
                    _ => (k.clone(), comparable_kv(x)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(comparable_kv).collect()),
        other => other.clone(),
    }
}

/// Seeded random sequences of KV v2 requests sent to OpenBao and to Tresor: every answer agrees
/// in status and body (timestamps as set/unset). This found Vault's version window (the larger of
/// the secret's and the mount's `max_versions`), its bare 404s and its metadata-write rules.
#[test]
fn random_kv_v2_sequences_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    let server = TestServer::dev();
    let ours = server.root();
    let send = |c: &Http, method: &str, path: &str, body: Option<&Value>| {
        let content_type = if method == "PATCH" { "application/merge-patch+json" } else { "application/json" };
        let raw = c.raw(method, path, body.map(|b| b.to_string().into_bytes()).as_deref(), Some(content_type));
        (raw.status, comparable_kv(&raw.json()))
    };
    for c in [&theirs, &ours] {
        assert_eq!(c.put("sys/mounts/kv", json!({"type": "kv-v2"})).0, 204);
    }
    for seed in [1u64, 7, 42] {
        let mut r = Lcg(seed);
        for i in 0..250 {
            let (method, path, body) = random_kv_op(&mut r);
            let theirs = send(&theirs, method, &path, body.as_ref());
            let ours = send(&ours, method, &path, body.as_ref());
            assert_eq!(ours, theirs, "seed {seed}, request {i}: {method} {path} {body:?} (left: Tresor, right: OpenBao)");
        }
        for c in [&theirs, &ours] {
            for key in ["a", "b", "d/e"] {
                c.send("DELETE", &format!("kv/metadata/{key}"), None);
            }
            c.put("kv/config", json!({"max_versions": 0, "cas_required": false}));
        }
    }
}
