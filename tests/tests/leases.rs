//! Leases and the expiration manager, end to end through the real binary and a probe plugin
//! (`tests/test-plugins/probe-lease`) that records in its own storage every revocation and renewal.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tresor_tests::{Http, TestServer};

/// A sealed-restartable server with the probe plugin registered and mounted at each of `mounts`.
fn server_with_probe(mounts: &[&str]) -> (TestServer, Vec<String>, String, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let plugin_dir = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let bytes = std::fs::read(format!("{}/probe_lease.wasm", env!("TEST_PLUGINS_DIR"))).unwrap();
    std::fs::write(plugin_dir.join("probe-lease.wasm"), &bytes).unwrap();
    let sha = tresor_runtime::sha256_hex(&bytes);
    let mut server = TestServer::sqlite_with_plugins(&plugin_dir);
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/plugins/catalog/secret/probe-lease", json!({"sha256": sha, "command": "probe-lease.wasm", "version": "v1"})).0, 204);
    for m in mounts {
        assert_eq!(c.put(&format!("sys/mounts/{m}"), json!({"type": "probe-lease"})).0, 204);
    }
    (server, keys, root, work)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn revoked(c: &Http, mount: &str, name: &str) -> Option<Value> {
    let (s, b) = c.get(&format!("{mount}/revoked/{name}"));
    (s == 200).then(|| b["data"].clone())
}

#[test]
fn a_two_second_lease_is_revoked_by_the_plugin_within_a_second_of_expiry() {
    let (server, _keys, root, _work) = server_with_probe(&["probe"]);
    let c = server.http(&root);
    let (s, b) = c.put("probe/creds/short", json!({"ttl": "2s"}));
    assert_eq!(s, 200, "{b}");
    let lease_id = b["lease_id"].as_str().unwrap().to_string();
    let (prefix, random) = lease_id.rsplit_once('/').unwrap();
    assert_eq!(prefix, "probe/creds/short");
    assert_eq!(random.len(), 24, "{lease_id}");
    assert_eq!(b["lease_duration"], 2);
    assert_eq!(b["renewable"], true);
    assert_eq!(b["data"]["username"], "short");

    let (s, look) = c.put("sys/leases/lookup", json!({"lease_id": lease_id}));
    assert_eq!(s, 200, "{look}");
    assert_eq!(look["data"]["id"], lease_id);
    assert_eq!(look["data"]["path"], "probe/creds/short");
    assert!(look["data"]["ttl"].as_u64().unwrap() <= 2);
    assert_eq!(look["data"]["last_renewal"], Value::Null);
    assert!(look["data"]["expire_time"].as_str().unwrap().ends_with('Z'));

    wait_for("the revocation", Duration::from_secs(10), || revoked(&c, "probe", "short").is_some());
    let r = revoked(&c, "probe", "short").unwrap();
    let late = r["at_ms"].as_i64().unwrap() - r["due_ms"].as_i64().unwrap();
    assert!((0..1000).contains(&late), "revoked {late} ms after expiry: {r}");
    assert_eq!(r["count"], 1);
    // The plugin records its revocation before the host deletes the lease entry (as Vault: revoke in
    // the backend, then forget), so the lookup may still see it for the moment between the two.
    let gone = || c.put("sys/leases/lookup", json!({"lease_id": lease_id}));
    wait_for("the lease entry to be deleted", Duration::from_secs(2), || gone().0 != 200);
    assert_eq!(gone(), (400, json!({"errors": ["invalid lease"]})));
}

#[test]
fn renew_is_capped_at_max_ttl_and_errors_match_vault() {
    let (server, _keys, root, _work) = server_with_probe(&["probe"]);
    let c = server.http(&root);
    let (_, b) = c.put("probe/creds/r", json!({"ttl": "1h", "max_ttl": "2h"}));
    let id = b["lease_id"].as_str().unwrap().to_string();
    assert_eq!(b["lease_duration"], 3600);

    let (s, r) = c.put("sys/leases/renew", json!({"lease_id": id, "increment": "90m"}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["lease_id"], id);
    assert_eq!(r["lease_duration"], 5400);
    assert_eq!(r["renewable"], true);
    assert_eq!(r["data"], Value::Null);
    assert_eq!(c.get("probe/renewed/r").1["data"], json!({"count": 1, "increment": 5400}));

    let (s, r) = c.put("sys/leases/renew", json!({"lease_id": id, "increment": "200h"}));
    assert_eq!(s, 200, "{r}");
    let capped = r["lease_duration"].as_u64().unwrap();
    assert!((7190..=7200).contains(&capped), "{r}");
    assert_eq!(r["warnings"], json!(["TTL of \"200h\" exceeded the effective max_ttl of \"2h\"; TTL value is capped accordingly"]));
    let look = c.put("sys/leases/lookup", json!({"lease_id": id})).1;
    assert!(look["data"]["last_renewal"].is_string(), "{look}");

    // The legacy path form works too.
    assert_eq!(c.put(&format!("sys/renew/{id}"), json!({"increment": 60})).1["lease_duration"], 60);

    let (_, nr) = c.put("probe/creds/nr", json!({"ttl": "1h", "renewable": false}));
    assert_eq!(nr["renewable"], false);
    let nr_id = nr["lease_id"].as_str().unwrap();
    assert_eq!(c.put("sys/leases/renew", json!({"lease_id": nr_id})), (400, json!({"errors": ["lease is not renewable"]})));
    assert_eq!(c.put("sys/leases/renew", json!({"lease_id": "probe/creds/r/nonexistent"})), (400, json!({"errors": ["lease not found"]})));
    assert_eq!(c.put("sys/leases/lookup", json!({})), (400, json!({"errors": ["lease_id must be specified"]})));
    assert_eq!(c.put("sys/leases/revoke", json!({"lease_id": "probe/creds/r/nonexistent"})).0, 204, "revoke is idempotent");

    assert_eq!(c.put("sys/leases/revoke", json!({"lease_id": nr_id})).0, 204);
    assert_eq!(revoked(&c, "probe", "nr").unwrap()["count"], 1);
    assert_eq!(c.put("sys/leases/lookup", json!({"lease_id": nr_id})).0, 400);
}

#[test]
fn revoke_prefix_revokes_exactly_the_leases_under_it_and_listing_needs_sudo() {
    let (server, _keys, root, _work) = server_with_probe(&["p1", "p1x", "p2"]);
    let c = server.http(&root);
    for m in ["p1", "p1x", "p2"] {
        for n in ["a", "b"] {
            assert_eq!(c.put(&format!("{m}/creds/{n}"), json!({"ttl": "1h"})).0, 200);
        }
    }
    let (s, l) = c.list("sys/leases/lookup/p1/creds/");
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["data"]["keys"], json!(["a/", "b/"]));
    assert_eq!(c.list("sys/leases/lookup/p1/creds/a/").1["data"]["keys"].as_array().unwrap().len(), 1);
    assert_eq!(c.list("sys/leases/lookup/nothing/").0, 404);

    // A token without sudo cannot list or revoke by prefix.
    c.put("sys/policies/acl/leases", json!({"policy": "path \"sys/leases/*\" { capabilities = [\"update\", \"list\"] }"}));
    let t = c.put("auth/token/create", json!({"policies": ["leases"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let limited = server.http(&t);
    assert_eq!(limited.list("sys/leases/lookup/p1/creds/").0, 403);
    assert_eq!(limited.put("sys/leases/revoke-prefix/p1", json!({})).0, 403);

    assert_eq!(c.put("sys/leases/revoke-prefix/p1/", json!({})).0, 204);
    for n in ["a", "b"] {
        assert_eq!(revoked(&c, "p1", n).unwrap()["count"], 1);
        assert!(revoked(&c, "p1x", n).is_none(), "p1x/ shares a string prefix with p1 but is another mount");
        assert!(revoked(&c, "p2", n).is_none());
    }
    assert_eq!(c.list("sys/leases/lookup/p1/creds/").0, 404);
    assert_eq!(c.list("sys/leases/lookup/p2/creds/").1["data"]["keys"], json!(["a/", "b/"]));

    // Disabling a mount revokes its leases first.
    assert_eq!(c.delete("sys/mounts/p2").0, 204);
    assert_eq!(c.list("sys/leases/lookup/p2/creds/").0, 404);
}

#[test]
fn revoking_a_token_revokes_the_leases_it_created() {
    let (server, _keys, root, _work) = server_with_probe(&["probe"]);
    let c = server.http(&root);
    c.put("sys/policies/acl/creds", json!({"policy": "path \"probe/creds/*\" { capabilities = [\"update\"] }"}));
    let t = c.put("auth/token/create", json!({"policies": ["creds"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, b) = server.http(&t).put("probe/creds/mine", json!({"ttl": "1h"}));
    assert_eq!(s, 200, "{b}");
    let (_, other) = c.put("probe/creds/roots", json!({"ttl": "1h"}));
    assert_eq!(c.put("auth/token/revoke", json!({"token": t})).0, 204);
    assert_eq!(revoked(&c, "probe", "mine").unwrap()["count"], 1);
    assert!(revoked(&c, "probe", "roots").is_none());
    assert_eq!(c.put("sys/leases/lookup", json!({"lease_id": other["lease_id"]})).0, 200);

    // A batch token's leases belong to its parent (revoked with it) and end when it does.
    c.put("sys/policies/acl/minter", json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"}));
    let parent = c.put("auth/token/create", json!({"policies": ["creds", "minter"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let (_, batch) = c.put("auth/token/create", json!({"policies": ["creds"], "type": "batch", "ttl": "20m"}));
    let batch = batch["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, capped) = server.http(&batch).put("probe/creds/capped", json!({"ttl": "1h"}));
    assert_eq!(s, 200, "{capped}");
    assert!(capped["lease_duration"].as_u64().unwrap() <= 1200, "capped at the batch token's TTL: {capped}");
    let (_, child) = server.http(&parent).put("auth/token/create", json!({"policies": ["creds"], "type": "batch"}));
    let child = child["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&child).put("probe/creds/batchy", json!({"ttl": "1h"})).0, 200);
    assert_eq!(c.put("auth/token/revoke", json!({"token": parent})).0, 204);
    assert_eq!(revoked(&c, "probe", "batchy").unwrap()["count"], 1, "revoked with the batch token's parent");
}

#[test]
fn a_failing_revocation_is_kept_reported_and_retried_until_it_succeeds() {
    let (server, _keys, root, _work) = server_with_probe(&["probe"]);
    let c = server.http(&root);
    assert_eq!(c.put("probe/config", json!({"fail_revoke": true})).0, 204);
    let (_, b) = c.put("probe/creds/stuck", json!({"ttl": "1s"}));
    let id = b["lease_id"].as_str().unwrap().to_string();
    wait_for("a failed attempt", Duration::from_secs(10), || {
        c.put("sys/leases/lookup", json!({"lease_id": id})).1["data"]["revoke_attempts"].as_u64().unwrap_or(0) >= 1
    });
    let look = c.put("sys/leases/lookup", json!({"lease_id": id})).1;
    assert!(look["data"]["revoke_error"].as_str().unwrap().contains("plugin") || look["data"]["revoke_error"].as_str().unwrap().contains("probe"), "{look}");
    // A manual revoke also fails, and says so.
    let (s, e) = c.put("sys/leases/revoke", json!({"lease_id": id}));
    assert_eq!(s, 400, "{e}");
    assert!(revoked(&c, "probe", "stuck").is_none());

    assert_eq!(c.put("probe/config", json!({"fail_revoke": false})).0, 204);
    wait_for("the retry", Duration::from_secs(20), || revoked(&c, "probe", "stuck").is_some());
    assert_eq!(revoked(&c, "probe", "stuck").unwrap()["count"], 1);
    // The plugin's revocation is visible a moment before the host drops the lease entry after it.
    wait_for("the lease to go", Duration::from_secs(5), || c.put("sys/leases/lookup", json!({"lease_id": id})).0 == 400);

    // revoke-force forgets a lease whose backend refuses.
    assert_eq!(c.put("probe/config", json!({"fail_revoke": true})).0, 204);
    let (_, b) = c.put("probe/creds/forced", json!({"ttl": "1h"}));
    assert_eq!(c.put("sys/leases/revoke-force/probe/creds/forced", json!({})).0, 204);
    assert_eq!(c.put("sys/leases/lookup", json!({"lease_id": b["lease_id"]})).0, 400);
}

#[test]
fn ten_thousand_leases_survive_kill_9_and_are_each_revoked_once_at_their_time() {
    const N: usize = 10_000;
    let (mut server, keys, root, _work) = server_with_probe(&["probe"]);
    // TTLs land after the restart: 40 s + up to 10 s of spread.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = server.http(&root);
            std::thread::spawn(move || {
                for i in (t..N).step_by(8) {
                    let (s, b) = c.put(&format!("probe/creds/l{i:05}"), json!({"ttl": 40 + (i % 10)}));
                    assert_eq!(s, 200, "{b}");
                }
            })
        })
        .collect();
    let issued = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    assert!(issued.elapsed() < Duration::from_secs(35), "issuing took {:?}: the leases would expire before the restart", issued.elapsed());
    server.kill9();
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.get("probe/stats").1["data"]["revoked"], 0, "nothing revoked before its time");
    wait_for("every lease to be revoked", Duration::from_secs(120), || c.get("probe/stats").1["data"]["revoked"] == N);
    std::thread::sleep(Duration::from_secs(1));
    let stats = c.get("probe/stats").1["data"].clone();
    assert_eq!(stats["revoked"], N, "{stats}");
    assert_eq!(stats["revoked_twice"], 0, "{stats}");
    assert_eq!(stats["revoked_early"], 0, "{stats}");
    assert!(stats["max_late_ms"].as_i64().unwrap() < 10_000, "{stats}");
    assert_eq!(c.list("sys/leases/lookup/probe/").0, 404, "no lease left");
}

#[test]
fn the_real_bao_cli_looks_up_renews_and_revokes_leases_by_prefix() {
    let (server, _keys, root, _work) = server_with_probe(&["probe", "other"]);
    let c = server.http(&root);
    let ids: Vec<String> = ["a", "b"].iter().map(|n| c.put(&format!("probe/creds/{n}"), json!({"ttl": "1h"})).1["lease_id"].as_str().unwrap().to_string()).collect();
    let keep = c.put("other/creds/k", json!({"ttl": "1h"})).1["lease_id"].as_str().unwrap().to_string();

    let out = tresor_tests::bao(&server, &root, &["lease", "lookup", "-format=json", &ids[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let look: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(look["data"]["id"], ids[0].as_str());

    let out = tresor_tests::bao(&server, &root, &["lease", "renew", "-increment=30m", "-format=json", &ids[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let renewed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(renewed["lease_duration"], 1800);

    let out = tresor_tests::bao(&server, &root, &["lease", "revoke", "-prefix", "probe/creds"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for n in ["a", "b"] {
        assert_eq!(revoked(&c, "probe", n).unwrap()["count"], 1);
    }
    assert!(revoked(&c, "other", "k").is_none());
    assert_eq!(c.put("sys/leases/lookup", json!({"lease_id": keep})).0, 200);
    // `bao lease revoke` sends `sync: false`: the revocation is queued, so wait for it.
    let out = tresor_tests::bao(&server, &root, &["lease", "revoke", &keep]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the queued revocation", Duration::from_secs(10), || revoked(&c, "other", "k").is_some());
    assert_eq!(revoked(&c, "other", "k").unwrap()["count"], 1);
}

#[test]
fn tokens_with_a_ttl_are_leases_under_their_creation_path() {
    let server = TestServer::dev();
    let c = server.root();
    let t = c.put("auth/token/create", json!({"policies": ["default"], "ttl": "1h"})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, l) = c.list("sys/leases/lookup/auth/token/create/");
    assert_eq!(s, 200, "{l}");
    let keys = l["data"]["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "the root token never expires and has no lease: {keys:?}");
    let id = format!("auth/token/create/{}", keys[0].as_str().unwrap());
    assert!(keys[0].as_str().unwrap().starts_with('h'));
    let (s, look) = c.put("sys/leases/lookup", json!({"lease_id": id}));
    assert_eq!(s, 200, "{look}");
    assert!(look["data"]["ttl"].as_u64().unwrap() > 3500);
    assert_eq!(look["data"]["path"], "auth/token/create", "{look}");
    // As Vault: a token's lease is renewed through auth/token/renew*, not sys/leases/renew.
    let (s, r) = c.put("sys/leases/renew", json!({"lease_id": id, "increment": "2h"}));
    assert_eq!((s, r), (400, json!({"errors": ["tokens cannot be renewed through this endpoint"]})));
    // An asynchronous revoke of a token lease is not lost (token leases are not on the timer).
    let t2 = c.put("auth/token/create", json!({"policies": ["default"], "ttl": "1h"})).1["auth"]["accessor"].as_str().unwrap().to_string();
    let t2_hash = c.list("sys/leases/lookup/auth/token/create/").1["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).find(|k| *k != keys[0].as_str().unwrap()).unwrap();
    assert_eq!(c.put("sys/leases/revoke", json!({"lease_id": format!("auth/token/create/{t2_hash}"), "sync": false})).0, 204);
    assert_eq!(c.put("auth/token/lookup-accessor", json!({"accessor": t2})).0, 400, "revoked at once");
    assert_eq!(c.put("sys/leases/revoke-prefix/auth/token/create", json!({})).0, 204);
    assert_eq!(server.http(&t).get("auth/token/lookup-self").0, 403, "revoking the lease revoked the token");
    assert_eq!(c.get("auth/token/lookup-self").0, 200, "the root token has no lease and survives");
    assert_eq!(c.list("sys/leases/lookup/auth/token/create/").0, 404);
}
