//! The Transit engine (`plugins/secrets-transit`) through the real binary: Vault's HTTP shapes, hvac
//! with every key type checked by pyca/cryptography, the `bao` CLI, OpenBao backups restored here
//! (and ours restored there) with ciphertexts and signatures crossing both ways, and auto-rotation
//! driven by the host's periodic call.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tresor_tests::{BaoDev, Http, TestServer, send_both};

const HELLO: &str = "aGVsbG8gd29ybGQ=";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn mounted() -> (TestServer, Http) {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    (server, c)
}

fn data(c: &Http, path: &str, body: Value) -> Value {
    let (s, b) = c.put(path, body);
    assert_eq!(s, 200, "{path}: {b}");
    b["data"].clone()
}

fn error(c: &Http, path: &str, body: Value) -> String {
    let (s, b) = c.put(path, body);
    assert_eq!(s, 400, "{path}: {b}");
    b["errors"][0].as_str().unwrap().to_string()
}

#[test]
fn http_shapes_and_errors_match_vault() {
    let (_server, c) = mounted();
    let created = data(&c, "transit/keys/k1", json!({}));
    for (k, v) in [
        ("type", json!("aes256-gcm96")),
        ("latest_version", json!(1)),
        ("min_decryption_version", json!(1)),
        ("min_encryption_version", json!(0)),
        ("min_available_version", json!(0)),
        ("deletion_allowed", json!(false)),
        ("derived", json!(false)),
        ("exportable", json!(false)),
        ("allow_plaintext_backup", json!(false)),
        ("auto_rotate_period", json!(0)),
        ("supports_encryption", json!(true)),
        ("supports_decryption", json!(true)),
        ("supports_derivation", json!(true)),
        ("supports_signing", json!(false)),
        ("imported_key", json!(false)),
        ("soft_deleted", json!(false)),
        ("name", json!("k1")),
    ] {
        assert_eq!(created[k], v, "{k}");
    }
    assert!(created["keys"]["1"].is_u64());
    // Re-creating is idempotent; reading returns the same body.
    assert_eq!(data(&c, "transit/keys/k1", json!({"type": "ed25519"})), created);
    assert_eq!(c.get("transit/keys/k1").1["data"], created);
    let (s, b) = c.get("transit/keys/missing");
    assert_eq!((s, b), (404, json!({"errors": []})));
    assert_eq!(error(&c, "transit/keys/bad", json!({"type": "foo"})), "unknown key type foo");
    assert_eq!(c.get("transit/encrypt/k1").0, 405);

    let ct = data(&c, "transit/encrypt/k1", json!({"plaintext": HELLO}));
    assert_eq!(ct["key_version"], 1);
    let ciphertext = ct["ciphertext"].as_str().unwrap();
    assert!(ciphertext.starts_with("vault:v1:") && ciphertext.len() == 9 + 52, "{ciphertext}");
    assert_eq!(data(&c, "transit/decrypt/k1", json!({"ciphertext": ciphertext}))["plaintext"], HELLO);
    assert_eq!(error(&c, "transit/encrypt/k1", json!({"plaintext": "not base64!!"})), "illegal base64 data at input byte 3");
    // Base64 in the plugin is SIMD (wasm, 16 bytes per step): a long input round-trips, a bad byte
    // past the first blocks and non-canonical trailing bits are refused with Go's text.
    let long = b64(&(0..=255u8).collect::<Vec<_>>());
    let long_ct = data(&c, "transit/encrypt/k1", json!({"plaintext": long}))["ciphertext"].clone();
    assert_eq!(data(&c, "transit/decrypt/k1", json!({"ciphertext": long_ct}))["plaintext"], long.as_str());
    let mut bad = long.clone();
    bad.replace_range(200..201, "*");
    assert_eq!(error(&c, "transit/encrypt/k1", json!({"plaintext": bad})), "illegal base64 data at input byte 200");
    assert_eq!(error(&c, "transit/encrypt/k1", json!({"plaintext": "YR=="})), "illegal base64 data at input byte 1");
    assert_eq!(error(&c, "transit/decrypt/k1", json!({"ciphertext": "nope"})), "invalid ciphertext: no prefix");
    assert_eq!(error(&c, "transit/decrypt/k1", json!({"ciphertext": "vault:v2:garbage"})), "invalid ciphertext: version is too new");
    assert_eq!(error(&c, "transit/sign/k1", json!({"input": HELLO})), "key type aes256-gcm96 does not support signing");

    // First encrypt creates the key.
    assert_eq!(data(&c, "transit/encrypt/autocreated", json!({"plaintext": HELLO}))["key_version"], 1);
    assert_eq!(c.get("transit/keys/autocreated").1["data"]["type"], "aes256-gcm96");

    // Rotation, rewrap, min_decryption_version.
    assert_eq!(data(&c, "transit/keys/k1/rotate", json!({}))["latest_version"], 2);
    let rewrapped = data(&c, "transit/rewrap/k1", json!({"ciphertext": ciphertext}));
    assert_eq!(rewrapped["key_version"], 2);
    let config = data(&c, "transit/keys/k1/config", json!({"min_decryption_version": 2}));
    assert_eq!(config["min_decryption_version"], 2);
    assert!(config["keys"].get("1").is_none());
    assert_eq!(error(&c, "transit/decrypt/k1", json!({"ciphertext": ciphertext})), "ciphertext or signature version is disallowed by policy (too old)");

    // A batch with one bad item: per-item errors, the others succeed, status 400 (Vault's default).
    let (s, b) = c.put("transit/encrypt/k1", json!({"batch_input": [{"plaintext": HELLO}, {"plaintext": "!!"}, {"plaintext": "aGk=", "reference": "r2"}]}));
    assert_eq!(s, 400);
    let results = b["data"]["batch_results"].as_array().unwrap();
    assert_eq!(results[0]["key_version"], 2);
    assert_eq!(results[1], json!({"error": "illegal base64 data at input byte 0", "reference": ""}));
    assert_eq!(results[2]["reference"], "r2");
    let back = data(&c, "transit/decrypt/k1", json!({"batch_input": [{"ciphertext": results[0]["ciphertext"]}, {"ciphertext": results[2]["ciphertext"], "reference": "x"}]}));
    assert_eq!(back["batch_results"], json!([{"plaintext": HELLO, "reference": ""}, {"plaintext": "aGk=", "reference": "x"}]));
    // A reference is echoed as sent, whatever JSON it is; unknown item keys are ignored.
    let b = data(&c, "transit/encrypt/k1", json!({"batch_input": [{"plaintext": HELLO, "reference": {"id": [1, "xé"]}, "other": [true]}]}));
    assert_eq!(b["batch_results"][0]["reference"], json!({"id": [1, "xé"]}));
    assert_eq!(b["batch_results"][0]["key_version"], 2);

    // Deletion needs deletion_allowed.
    let (s, b) = c.delete("transit/keys/k1");
    assert_eq!((s, b["errors"][0].as_str().unwrap()), (400, "error deleting policy k1: deletion is not allowed for this key"));
    data(&c, "transit/keys/k1/config", json!({"deletion_allowed": true}));
    assert_eq!(c.delete("transit/keys/k1").0, 204);
    assert_eq!(c.list("transit/keys").1["data"]["keys"], json!(["autocreated"]));

    // Signing keys, HMAC, hash, random.
    let sig_key = data(&c, "transit/keys/sig", json!({"type": "ed25519"}));
    assert_eq!((sig_key["supports_signing"].clone(), sig_key["supports_encryption"].clone()), (json!(true), json!(false)));
    let sig = data(&c, "transit/sign/sig", json!({"input": HELLO}));
    assert_eq!(sig["key_version"], 1);
    assert_eq!(data(&c, "transit/verify/sig", json!({"input": HELLO, "signature": sig["signature"]}))["valid"], true);
    assert_eq!(data(&c, "transit/verify/sig", json!({"input": "b3RoZXI=", "signature": sig["signature"]}))["valid"], false);
    let hmac = data(&c, "transit/hmac/autocreated/sha2-512", json!({"input": HELLO}))["hmac"].as_str().unwrap().to_string();
    assert_eq!(hmac.len(), 9 + 88);
    assert_eq!(data(&c, "transit/verify/autocreated/sha2-512", json!({"input": HELLO, "hmac": hmac}))["valid"], true);
    assert_eq!(
        data(&c, "transit/hash", json!({"input": HELLO, "algorithm": "sha2-256", "format": "hex"}))["sum"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(data(&c, "transit/random/16", json!({"format": "hex"}))["random_bytes"].as_str().unwrap().len(), 32);
}

/// Vault's framework warns about a body parameter the path captures (hvac sends `name` in the
/// body of `verify`) apart from one it does not know, and only on a response with a body.
#[test]
fn captured_parameters_in_the_body_are_replaced_with_vaults_warning() {
    let (_server, c) = mounted();
    data(&c, "transit/keys/k", json!({}));
    let (s, b) = c.put("transit/hmac/k", json!({"input": HELLO, "name": "other", "color": "blue"}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["warnings"],
        json!([
            "Endpoint ignored these unrecognized parameters: [color]",
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]"
        ])
    );
    let (_, b) = c.put("transit/random/8", json!({"source": "seal"}));
    assert_eq!(
        b["warnings"],
        json!(["Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [source]"])
    );
    let (_, b) = c.put("sys/tools/random/seal/8", json!({}));
    assert_eq!(b["warnings"], json!(["no seal/entropy augmentation available, using platform entropy source"]));
}

#[test]
fn encrypting_to_a_new_key_needs_create_capability() {
    let (server, c) = mounted();
    data(&c, "transit/keys/existing", json!({}));
    assert_eq!(c.put("sys/policies/acl/enc", json!({"policy": "path \"transit/encrypt/*\" { capabilities = [\"update\"] }"})).0, 204);
    let token = c.put("auth/token/create", json!({"policies": ["enc"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let app = server.http(&token);
    assert_eq!(app.put("transit/encrypt/existing", json!({"plaintext": HELLO})).0, 200);
    assert_eq!(app.put("transit/encrypt/brand-new", json!({"plaintext": HELLO})).0, 403);
}

#[test]
fn hvac_round_trips_every_key_type_verified_by_cryptography() {
    let server = TestServer::dev();
    tresor_tests::hvac(&server, "hvac_transit.py", "hvac transit ok");
}

#[test]
fn bao_cli_encrypts_and_decrypts() {
    let (server, _c) = mounted();
    let run = |args: &[&str]| {
        let out = tresor_tests::bao(&server, &server.root_token, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(&["write", "-f", "transit/keys/cli"]);
    let ct = run(&["write", "-field=ciphertext", "transit/encrypt/cli", &format!("plaintext={HELLO}")]);
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    assert_eq!(run(&["write", "-field=plaintext", "transit/decrypt/cli", &format!("ciphertext={ct}")]), HELLO);
    assert!(run(&["list", "transit/keys"]).contains("cli"));
}

/// Encrypt (or sign) on `from`, back the key up there, restore it on `to`, decrypt (or verify) there.
fn cross(from: &Http, to: &Http, key_type: &str, name: &str) {
    data(from, &format!("transit/keys/{name}"), json!({"type": key_type, "exportable": true, "allow_plaintext_backup": true}));
    data(from, &format!("transit/keys/{name}/rotate"), json!({}));
    let signing = matches!(key_type, "ed25519" | "ecdsa-p256" | "ecdsa-p384");
    let produced = if signing {
        data(from, &format!("transit/sign/{name}"), json!({"input": HELLO}))["signature"].clone()
    } else {
        data(from, &format!("transit/encrypt/{name}"), json!({"plaintext": HELLO, "key_version": 1}))["ciphertext"].clone()
    };
    let (s, b) = from.get(&format!("transit/backup/{name}"));
    assert_eq!(s, 200, "{b}");
    let restored = format!("{name}-restored");
    let (s, b) = to.put(&format!("transit/restore/{restored}"), json!({"backup": b["data"]["backup"]}));
    assert_eq!(s, 204, "{key_type}: {b}");
    let key = to.get(&format!("transit/keys/{restored}")).1["data"].clone();
    assert_eq!(key["latest_version"], 2, "{key_type}: {key}");
    if signing {
        let valid = data(to, &format!("transit/verify/{restored}"), json!({"input": HELLO, "signature": produced}));
        assert_eq!(valid["valid"], true, "{key_type}");
    } else {
        assert_eq!(data(to, &format!("transit/decrypt/{restored}"), json!({"ciphertext": produced}))["plaintext"], HELLO, "{key_type}");
        // The restored key keeps encrypting in the same format the origin decrypts.
        let again = data(to, &format!("transit/encrypt/{restored}"), json!({"plaintext": HELLO}))["ciphertext"].clone();
        assert_eq!(data(from, &format!("transit/decrypt/{name}"), json!({"ciphertext": again}))["plaintext"], HELLO, "{key_type}");
    }
}

/// Ed25519 verification is Go's `crypto/ed25519`, as in OpenBao: a signature whose `R` is the
/// identity point (`s = k·a`; valid there, cofactorless with no small-order check) verifies on both
/// servers, and the same signature over another input on neither.
#[test]
fn ed25519_verification_accepts_what_openbao_accepts() {
    use curve25519_dalek::Scalar;
    use sha2::{Digest as _, Sha512};
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    data(&theirs, "transit/keys/edge", json!({"type": "ed25519", "exportable": true, "allow_plaintext_backup": true}));
    let (s, exported) = theirs.get("transit/export/signing-key/edge/1");
    assert_eq!(s, 200, "{exported}");
    let private = unb64(exported["data"]["keys"]["1"].as_str().unwrap());
    let (seed, public) = private.split_at(32);
    let mut a: [u8; 32] = Sha512::digest(seed)[..32].try_into().unwrap();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let mut r = [0u8; 32];
    r[0] = 1; // the identity point, y = 1
    let k = Scalar::from_bytes_mod_order_wide(&Sha512::new().chain_update(r).chain_update(public).chain_update(unb64(HELLO)).finalize().into());
    let signature = format!("vault:v1:{}", b64(&[r, (k * Scalar::from_bytes_mod_order(a)).to_bytes()].concat()));

    let (_server, ours) = mounted();
    let (s, backup) = theirs.get("transit/backup/edge");
    assert_eq!(s, 200, "{backup}");
    assert_eq!(ours.put("transit/restore/edge", json!({"backup": backup["data"]["backup"]})).0, 204);
    for c in [&theirs, &ours] {
        assert_eq!(data(c, "transit/verify/edge", json!({"input": HELLO, "signature": signature}))["valid"], true, "{}", if std::ptr::eq(c, &theirs) { "OpenBao" } else { "Tresor" });
        assert_eq!(data(c, "transit/verify/edge", json!({"input": "b3RoZXI=", "signature": signature}))["valid"], false);
    }
}

#[test]
fn openbao_backups_restore_here_and_ours_restore_there() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (_server, ours) = mounted();
    for key_type in ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "xchacha20-poly1305", "rsa-2048", "ed25519", "ecdsa-p256", "ecdsa-p384"] {
        cross(&theirs, &ours, key_type, &format!("from-bao-{key_type}"));
        cross(&ours, &theirs, key_type, &format!("from-tresor-{key_type}"));
    }
}

#[test]
fn auto_rotation_runs_from_the_hosts_periodic_call() {
    let mut server = TestServer::sqlite_with_config("plugin_periodic_interval = \"1s\"\n");
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(c.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let opts = json!({"exportable": true, "allow_plaintext_backup": true, "auto_rotate_period": "1h"});
    data(&c, "transit/keys/fresh", opts.clone());
    data(&c, "transit/keys/template", opts);
    assert_eq!(error(&c, "transit/keys/fresh/config", json!({"auto_rotate_period": "30m"})), "auto rotate period must be 0 to disable or at least an hour");
    // A key whose latest version is two hours old: restore a backup with its creation time moved back.
    let backup = c.get("transit/backup/template").1["data"]["backup"].as_str().unwrap().to_string();
    let mut doc: Value = serde_json::from_slice(&unb64(&backup)).unwrap();
    let two_hours_ago = doc["policy"]["keys"]["1"]["creation_time"].as_i64().unwrap() - 7200;
    doc["policy"]["keys"]["1"]["creation_time"] = json!(two_hours_ago);
    doc["archived_keys"]["keys"][1]["creation_time"] = json!(two_hours_ago);
    assert_eq!(c.put("transit/restore/aged", json!({"backup": b64(doc.to_string().as_bytes())})).0, 204);
    let ct = data(&c, "transit/encrypt/aged", json!({"plaintext": HELLO}))["ciphertext"].clone();

    let start = Instant::now();
    while c.get("transit/keys/aged").1["data"]["latest_version"] != 2 {
        assert!(start.elapsed() < Duration::from_secs(15), "the periodic call did not rotate the aged key");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing else rotated, and old ciphertexts still decrypt.
    assert_eq!(c.get("transit/keys/fresh").1["data"]["latest_version"], 1);
    assert_eq!(data(&c, "transit/decrypt/aged", json!({"ciphertext": ct}))["plaintext"], HELLO);
    assert_eq!(data(&c, "transit/encrypt/aged", json!({"plaintext": HELLO}))["key_version"], 2);
    // Exactly one rotation: the new version is recent.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.get("transit/keys/aged").1["data"]["latest_version"], 2);
}

#[test]
fn concurrent_rotations_each_add_a_version() {
    let (server, c) = mounted();
    data(&c, "transit/keys/busy", json!({}));
    let rotations = 16;
    let latest: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..rotations)
            .map(|_| {
                let c = server.root();
                s.spawn(move || data(&c, "transit/keys/busy/rotate", json!({}))["latest_version"].as_u64().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = latest.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (2..=rotations + 1).collect::<Vec<_>>(), "no rotation may overwrite another's key version");
    let key = c.get("transit/keys/busy").1["data"].clone();
    assert_eq!(key["keys"].as_object().unwrap().len() as u64, rotations + 1);
}

/// The same requests to OpenBao and to Tresor give the same status, the same error text and the
/// same result shape: verify with both a signature and an HMAC, rewrap batches (always 200),
/// `partial_failure_response_code`, the context rule, key configuration that cannot be undone,
/// Vault's messages, and the warning naming parameters a path does not take.
#[test]
fn edge_cases_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (_server, ours) = mounted();
    for c in [&theirs, &ours] {
        data(c, "transit/keys/s", json!({"type": "ed25519"}));
        data(c, "transit/keys/k", json!({"exportable": true, "allow_plaintext_backup": true}));
        data(c, "transit/keys/d", json!({"derived": true}));
    }
    let sig = |c: &Http| data(c, "transit/sign/s", json!({"input": HELLO}))["signature"].clone();
    let ct = |c: &Http| data(c, "transit/encrypt/k", json!({"plaintext": HELLO}))["ciphertext"].clone();
    let ctx = b64(b"tenant");
    type Body<'a> = Box<dyn Fn(&Http) -> Value + 'a>;
    let cases: Vec<(&str, Body)> = vec![
        ("transit/verify/s", Box::new(move |c| json!({"input": HELLO, "signature": sig(c), "hmac": "vault:v1:AAAA"}))),
        ("transit/verify/s", Box::new(|_| json!({"input": HELLO}))),
        ("transit/verify/s", Box::new(move |c| json!({"batch_input": [{"input": HELLO, "signature": sig(c)}, {"input": HELLO}]}))),
        ("transit/rewrap/k", Box::new(move |c| json!({"batch_input": [{"ciphertext": ct(c)}, {"ciphertext": "vault:v1:AAAA"}]}))),
        ("transit/decrypt/k", Box::new(move |c| json!({"batch_input": [{"ciphertext": ct(c)}, {"ciphertext": "vault:v1:AAAA"}], "partial_failure_response_code": 207}))),
        ("transit/decrypt/k", Box::new(|_| json!({"batch_input": [{"ciphertext": "vault:v1:AAAA"}], "partial_failure_response_code": 207}))),
        ("transit/encrypt/d", Box::new(move |_| json!({"batch_input": [{"plaintext": HELLO, "context": ctx}, {"plaintext": HELLO}]}))),
        ("transit/keys/k/config", Box::new(|_| json!({"exportable": false, "allow_plaintext_backup": false}))),
        ("transit/keys/k/config", Box::new(|_| json!({"min_decryption_version": -1}))),
        ("transit/keys/x", Box::new(|_| json!({"type": "aes256-gcm96", "key_size": 64}))),
        ("transit/keys/h", Box::new(|_| json!({"type": "hmac", "key_size": 8}))),
        ("transit/decrypt/k", Box::new(|_| json!({"ciphertext": "vault:v1:AAAA"}))),
        ("transit/random", Box::new(|_| json!({"bytes": 0}))),
        ("transit/random", Box::new(|_| json!({"format": "bad"}))),
        ("transit/datakey/bogus/k", Box::new(|_| json!({}))),
        ("transit/sign/s", Box::new(|_| json!({"input": HELLO, "signature_algorithm": "ignored-for-ed25519", "hash_algorithm": "sha2-512"}))),
        ("transit/sign/s", Box::new(|_| json!({"input": HELLO, "hash_algorithm": "bogus"}))),
        ("transit/keys/k/rotate", Box::new(|_| json!({"not_a_field": 1, "another": 2}))),
        ("transit/cache-config", Box::new(|_| json!({"size": 5}))),
        ("transit/cache-config", Box::new(|_| json!({"size": 500}))),
    ];
    for (path, body) in &cases {
        let (ts, tb) = theirs.put(path, body(&theirs));
        let (os, ob) = ours.put(path, body(&ours));
        let what = format!("{path} {}", body(&theirs));
        assert_eq!(os, ts, "{what}: status; OpenBao said {tb}, Tresor {ob}");
        assert_eq!(ob["errors"], tb["errors"], "{what}: errors");
        assert_eq!(ob["warnings"], tb["warnings"], "{what}: warnings");
        let shape = |b: &Value| match &b["data"] {
            Value::Object(m) => m.keys().cloned().collect::<Vec<_>>(),
            _ => vec![],
        };
        assert_eq!(shape(&ob), shape(&tb), "{what}: data keys");
        if let (Some(o), Some(t)) = (ob["data"]["batch_results"].as_array(), tb["data"]["batch_results"].as_array()) {
            let errors = |r: &[Value]| r.iter().map(|i| i["error"].clone()).collect::<Vec<_>>();
            assert_eq!(errors(o), errors(t), "{what}: per-item errors");
        }
    }
}

/// Bring your own key with the real `bao transit import` CLI (it fetches `wrapping_key`, wraps the
/// key with RSA-OAEP and AES-KWP, and posts to `import`): the same AES key imported into OpenBao and
/// into Tresor decrypts each other's ciphertexts; `import_version` adds a version; rotation of an
/// imported key is refused unless allowed.
#[test]
fn bao_transit_import_brings_the_same_key_to_both_servers() {
    use std::process::Command;
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (server, ours) = mounted();
    let import = |(addr, token): (&str, &str), args: &[&str]| {
        let out = Command::new(tresor_tests::bao_bin()).args(args).env("BAO_ADDR", addr).env("BAO_TOKEN", token).env("HOME", server.dir.path()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    let key = b64(&[0x5au8; 32]);
    let both = [(bao.addr.as_str(), BaoDev::ROOT), (server.addr.as_str(), server.root_token.as_str())];
    for target in both {
        import(target, &["transit", "import", "transit/keys/byok", &key, "type=aes256-gcm96", "exportable=true"]);
    }
    for c in [&theirs, &ours] {
        let read = c.get("transit/keys/byok").1["data"].clone();
        assert_eq!((read["imported_key"].clone(), read["imported_key_allow_rotation"].clone()), (json!(true), json!(false)), "{read}");
        assert_eq!(c.get("transit/export/encryption-key/byok/1").1["data"]["keys"]["1"], key);
        // Refused on both (OpenBao answers 500, Tresor 400: the client asked for it).
        assert_ne!(c.put("transit/keys/byok/rotate", json!({})).0, 200);
    }
    assert_eq!(ours.put("transit/keys/byok/rotate", json!({})), (400, json!({"errors": ["imported key byok does not allow rotation within Vault"]})));
    let from_bao = data(&theirs, "transit/encrypt/byok", json!({"plaintext": HELLO}))["ciphertext"].clone();
    let from_tresor = data(&ours, "transit/encrypt/byok", json!({"plaintext": HELLO}))["ciphertext"].clone();
    assert_eq!(data(&ours, "transit/decrypt/byok", json!({"ciphertext": from_bao}))["plaintext"], HELLO);
    assert_eq!(data(&theirs, "transit/decrypt/byok", json!({"ciphertext": from_tresor}))["plaintext"], HELLO);
    // A second version, imported the same way into both.
    let key2 = b64(&[0x33u8; 32]);
    for target in both {
        import(target, &["transit", "import-version", "transit/keys/byok", &key2]);
    }
    for c in [&theirs, &ours] {
        assert_eq!(c.get("transit/keys/byok").1["data"]["latest_version"], 2);
        assert_eq!(c.get("transit/export/encryption-key/byok/2").1["data"]["keys"]["2"], key2);
    }
    let (s, b) = ours.put("transit/keys/byok/import", json!({"ciphertext": "AAAA"}));
    assert_eq!(s, 400, "{b}");
}

/// OpenBao's soft delete (`DELETE keys/:name/soft-delete`, `POST …/soft-delete-restore`): the key
/// stays listed and readable but every use is refused until restored, compared step by step with
/// a real OpenBao. (Rotating or backing up a soft-deleted key: OpenBao 500, Tresor 400 with the
/// same reason, as for its other refusals.)
#[test]
fn soft_delete_answers_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (_server, ours) = mounted();
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "transit/keys/k", Some(json!({}))),
        ("POST", "transit/encrypt/k", Some(json!({"plaintext": HELLO}))),
        ("DELETE", "transit/keys/k/soft-delete", None),
        ("GET", "transit/keys/k", None),
        ("LIST", "transit/keys", None),
        ("POST", "transit/encrypt/k", Some(json!({"plaintext": HELLO}))),
        ("POST", "transit/keys/k/config", Some(json!({"deletion_allowed": true}))),
        ("DELETE", "transit/keys/k/soft-delete", None),
        ("POST", "transit/keys/k/soft-delete-restore", Some(json!({}))),
        ("POST", "transit/keys/k/soft-delete-restore", Some(json!({}))),
        ("POST", "transit/encrypt/k", Some(json!({"plaintext": HELLO}))),
        ("DELETE", "transit/keys/nope/soft-delete", None),
        ("POST", "transit/keys/nope/soft-delete-restore", Some(json!({}))),
        ("DELETE", "transit/keys/k/soft-delete", None),
        ("DELETE", "transit/keys/k", None),
        ("GET", "transit/keys/k", None),
    ];
    for (method, path, body) in &steps {
        let (tb, ob, what) = send_both(&theirs, &ours, method, path, body.as_ref());
        assert_eq!((&ob["errors"], &ob["warnings"]), (&tb["errors"], &tb["warnings"]), "{what}");
        assert_eq!(ob["data"]["soft_deleted"], tb["data"]["soft_deleted"], "{what}");
        assert_eq!(ob["data"]["keys"].is_null(), tb["data"]["keys"].is_null(), "{what}");
    }
}

/// Key migration both ways with a real OpenBao, by Vault's BYOK protocol: each server's
/// `wrapping_key` is imported into the other as a public-key-only RSA-4096 key, `byok-export`
/// wraps an exportable key for it, and `keys/:name/import` on the far side brings the same key in.
/// Ciphertexts and signatures made before the move are accepted after it.
#[test]
fn byok_export_and_public_key_import_move_keys_between_tresor_and_openbao() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (_server, ours) = mounted();
    let read = |c: &Http, path: &str| {
        let (s, b) = c.get(path);
        assert_eq!(s, 200, "{path}: {b}");
        b["data"].clone()
    };
    let no_content = |c: &Http, path: &str, body: Value| {
        let (s, b) = c.put(path, body);
        assert_eq!(s, 204, "{path}: {b}");
    };
    // Each side knows the other's wrapping key as a public key only.
    for (from, to) in [(&ours, &theirs), (&theirs, &ours)] {
        let pem = read(from, "transit/wrapping_key")["public_key"].as_str().unwrap().to_string();
        no_content(to, "transit/keys/peer-wrap/import", json!({"type": "rsa-4096", "public_key": pem}));
        let key = read(to, "transit/keys/peer-wrap");
        assert_eq!(key["keys"]["1"]["public_key"].as_str().map(str::trim), Some(pem.trim()), "the public key reads back");
        // (OpenBao answers 500, Tresor 400, with the same reason.)
        let (_, refused) = to.put("transit/decrypt/peer-wrap", json!({"ciphertext": "vault:v1:AAAA"}));
        assert!(refused["errors"][0].as_str().unwrap_or_default().contains("does not have a private counterpart"), "{refused}");
    }

    for (kind, from, to) in [("aes256-gcm96", &theirs, &ours), ("ed25519", &ours, &theirs), ("ecdsa-p256", &ours, &theirs), ("rsa-2048", &theirs, &ours)] {
        let name = format!("moved-{kind}");
        data(from, &format!("transit/keys/{name}"), json!({"type": kind, "exportable": true}));
        let made_before = if kind == "aes256-gcm96" || kind == "rsa-2048" {
            data(from, &format!("transit/encrypt/{name}"), json!({"plaintext": HELLO}))["ciphertext"].clone()
        } else {
            data(from, &format!("transit/sign/{name}"), json!({"input": HELLO}))["signature"].clone()
        };
        let exported = read(from, &format!("transit/byok-export/peer-wrap/{name}"));
        assert_eq!((exported["name"].as_str(), exported["type"].as_str()), (Some(name.as_str()), Some(kind)));
        let wrapped = exported["keys"]["1"].as_str().unwrap();
        no_content(to, &format!("transit/keys/{name}/import"), json!({"type": kind, "ciphertext": wrapped}));
        if kind == "aes256-gcm96" || kind == "rsa-2048" {
            let out = data(to, &format!("transit/decrypt/{name}"), json!({"ciphertext": made_before}));
            assert_eq!(out["plaintext"], HELLO, "{kind}: a ciphertext made before the move decrypts after it");
        } else {
            let out = data(to, &format!("transit/verify/{name}"), json!({"input": HELLO, "signature": made_before}));
            assert_eq!(out["valid"], true, "{kind}: a signature made before the move verifies after it");
            let back = data(to, &format!("transit/sign/{name}"), json!({"input": HELLO}))["signature"].clone();
            assert_eq!(data(from, &format!("transit/verify/{name}"), json!({"input": HELLO, "signature": back}))["valid"], true, "{kind}: and the reverse");
        }
    }

    // A public key alone verifies but cannot sign.
    let pem = read(&ours, "transit/keys/moved-ecdsa-p256")["keys"]["1"]["public_key"].as_str().unwrap().to_string();
    no_content(&ours, "transit/keys/verify-only/import", json!({"type": "ecdsa-p256", "public_key": pem}));
    let sig = data(&ours, "transit/sign/moved-ecdsa-p256", json!({"input": HELLO}))["signature"].clone();
    assert_eq!(data(&ours, "transit/verify/verify-only", json!({"input": HELLO, "signature": sig}))["valid"], true);
    assert_eq!(error(&ours, "transit/sign/verify-only", json!({"input": HELLO})), "requested version for signing does not contain a private part");
    // The source must be exportable.
    data(&ours, "transit/keys/kept", json!({}));
    let (s, b) = ours.get("transit/byok-export/peer-wrap/kept");
    assert_eq!((s, b["errors"][0].as_str()), (400, Some("key is not exportable")));
}

/// OpenBao's `derive-key` (ECDH, then HKDF-SHA256): with the same base key on both servers (moved
/// from OpenBao by BYOK) and the same peer public key, OpenBao's and Tresor's derived keys are the
/// same key: OpenBao's ciphertexts decrypt in Tresor and the reverse, for 128- and 256-bit types.
#[test]
fn derive_key_derives_the_same_key_as_openbao() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    assert_eq!(theirs.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    let (_server, ours) = mounted();
    let get = |c: &Http, path: &str| c.get(path).1["data"].clone();
    let no_content = |c: &Http, path: &str, body: Value| {
        let (s, b) = c.put(path, body);
        assert_eq!(s, 204, "{path}: {b}");
    };
    let wrapping = get(&ours, "transit/wrapping_key")["public_key"].as_str().unwrap().to_string();
    no_content(&theirs, "transit/keys/tresor-wrap/import", json!({"type": "rsa-4096", "public_key": wrapping}));
    data(&theirs, "transit/keys/base", json!({"type": "ecdsa-p256", "exportable": true}));
    let wrapped = get(&theirs, "transit/byok-export/tresor-wrap/base")["keys"]["1"].as_str().unwrap().to_string();
    no_content(&ours, "transit/keys/base/import", json!({"type": "ecdsa-p256", "ciphertext": wrapped}));
    data(&ours, "transit/keys/peer", json!({"type": "ecdsa-p256"}));
    let peer = get(&ours, "transit/keys/peer")["keys"]["1"]["public_key"].as_str().unwrap().to_string();
    for kind in ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"] {
        let name = format!("shared-{kind}");
        let body = json!({"base_key_name": "base", "peer_public_key": peer, "derived_key_type": kind});
        for c in [&theirs, &ours] {
            no_content(c, &format!("transit/derive-key/{name}"), body.clone());
        }
        for (from, to) in [(&theirs, &ours), (&ours, &theirs)] {
            let ct = data(from, &format!("transit/encrypt/{name}"), json!({"plaintext": HELLO}))["ciphertext"].clone();
            assert_eq!(data(to, &format!("transit/decrypt/{name}"), json!({"ciphertext": ct}))["plaintext"], HELLO, "{kind}");
        }
    }
    // The same refusals (OpenBao answers the peer-key ones 500; Tresor 400).
    for body in [json!({"base_key_name": "base"}), json!({"base_key_name": "nope", "peer_public_key": peer}), json!({"base_key_name": "base", "peer_public_key": peer, "key_derivation_algorithm": "hkdf"})] {
        let (ts, tb) = theirs.put("transit/derive-key/z", body.clone());
        let (os, ob) = ours.put("transit/derive-key/z", body.clone());
        assert_eq!((os, &ob["errors"]), (ts, &tb["errors"]), "{body}");
    }
}

/// One random Transit request over three key names: creates of every type (some exportable or
/// derived), rotations, version configs, trims, deletes, encrypt/decrypt/rewrap/datakey, sign,
/// HMAC, verify, exports and backups, many with out-of-range versions.
fn random_transit_op(r: &mut tresor_tests::Lcg) -> (&'static str, String, Option<Value>) {
    let k = ["k1", "k2", "k3"][r.below(3) as usize];
    let v = r.below(7) as i64 - 1;
    let types = ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256", "rsa-2048", "hmac"];
    let some = |r: &mut tresor_tests::Lcg, pct: u64| r.below(100) < pct;
    let with_version = |r: &mut tresor_tests::Lcg, mut body: Value| {
        if some(r, 40) {
            body["key_version"] = json!(v);
        }
        Some(body)
    };
    match r.below(100) {
        0..8 => {
            let kind = types[r.below(types.len() as u64) as usize];
            let mut body = json!({"type": kind});
            if kind == "hmac" {
                // (Without a key_size OpenBao refuses an HMAC key with a 500; Tresor gives 32 bytes.)
                body["key_size"] = json!(32);
            }
            if some(r, 50) {
                body["exportable"] = json!(true);
            }
            if some(r, 15) {
                body["derived"] = json!(true);
            }
            ("POST", format!("transit/keys/{k}"), Some(body))
        }
        8..16 => ("POST", format!("transit/keys/{k}/rotate"), Some(json!({}))),
        16..24 => {
            let field = ["min_decryption_version", "min_encryption_version"][r.below(2) as usize];
            let mut body = json!({field: r.below(5)});
            if some(r, 30) {
                body["deletion_allowed"] = json!(true);
            }
            ("POST", format!("transit/keys/{k}/config"), Some(body))
        }
        24..28 => ("POST", format!("transit/keys/{k}/trim"), Some(json!({"min_available_version": r.below(5)}))),
        28..31 => ("DELETE", format!("transit/keys/{k}"), None),
        31..38 => ("GET", format!("transit/keys/{k}"), None),
        // (No key_version on encrypt: OpenBao keeps a key its upsert created even when the
        // encryption then fails, Tresor does not; see the note on the Transit issue.)
        38..50 => ("POST", format!("transit/encrypt/{k}"), Some(json!({"plaintext": HELLO}))),
        50..58 => {
            let body = ["AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "!!"][r.below(3) as usize];
            ("POST", format!("transit/decrypt/{k}"), Some(json!({"ciphertext": format!("vault:v{}:{body}", r.below(6))})))
        }
        58..64 => {
            let mut body = json!({"input": HELLO});
            if some(r, 30) {
                body["marshaling_algorithm"] = json!("jws");
            }
            ("POST", format!("transit/sign/{k}"), with_version(r, body))
        }
        64..70 => ("POST", format!("transit/hmac/{k}"), with_version(r, json!({"input": HELLO}))),
        70..75 => ("POST", format!("transit/verify/{k}"), Some(json!({"input": HELLO, "signature": format!("vault:v{}:AAAA", r.below(6))}))),
        75..80 => {
            let kind = ["encryption-key", "signing-key", "hmac-key", "public-key"][r.below(4) as usize];
            let version = if some(r, 40) { format!("/{}", 1 + r.below(4)) } else { String::new() };
            ("GET", format!("transit/export/{kind}/{k}{version}"), None)
        }
        80..85 => ("GET", format!("transit/backup/{k}"), None),
        85..90 => ("POST", format!("transit/datakey/{}/{k}", ["plaintext", "wrapped"][r.below(2) as usize]), Some(json!({}))),
        90..94 => ("POST", format!("transit/rewrap/{k}"), with_version(r, json!({"ciphertext": "vault:v1:AAAA"}))),
        94..97 => ("LIST", "transit/keys".into(), None),
        _ => ("POST", format!("transit/keys/{k}/config"), Some(json!({"exportable": true, "allow_plaintext_backup": true}))),
    }
}

/// Status, errors and the shape of the data (values replaced by their kind: keys, ciphertexts and
/// times differ by nature). OpenBao's 500 refusals are 400s in Tresor with the same text.
fn comparable_transit(status: u16, body: &Value) -> (u16, Value) {
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().filter(|(k, _)| !matches!(k.as_str(), "request_id" | "lease_id")).map(|(k, x)| (k.clone(), shape(x))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
            Value::String(_) => json!("s"),
            Value::Number(_) => json!(0),
            other => other.clone(),
        }
    }
    let errors: Vec<Value> = body["errors"]
        .as_array()
        .map(|e| e.iter().map(|m| json!(m.as_str().unwrap_or("").trim_start_matches("1 error occurred:\n\t* ").trim_end()) ).collect())
        .unwrap_or_default();
    let status = if status == 500 { 400 } else { status };
    // Key descriptions (creates, config, trim, reads) carry per-version maps keyed by version.
    (status, json!({"errors": errors, "data": if errors.is_empty() { shape(&body["data"]) } else { Value::Null }}))
}

/// Seeded random sequences of Transit requests sent to OpenBao and to Tresor: the same status,
/// the same error texts and the same shape of data for every one.
#[test]
fn random_transit_sequences_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    let server = TestServer::dev();
    let ours = server.root();
    for c in [&theirs, &ours] {
        assert_eq!(c.put("sys/mounts/transit", json!({"type": "transit"})).0, 204);
    }
    for seed in [3u64, 11, 1, 2, 4, 8] {
        let mut r = tresor_tests::Lcg(seed);
        for i in 0..220 {
            let (method, path, body) = random_transit_op(&mut r);
            let (ts, tb) = theirs.send(method, &path, body.as_ref());
            let (os, ob) = ours.send(method, &path, body.as_ref());
            assert_eq!(
                comparable_transit(os, &ob),
                comparable_transit(ts, &tb),
                "seed {seed}, request {i}: {method} {path} {body:?}\n  Tresor {ob}\n  OpenBao {tb}"
            );
        }
        for c in [&theirs, &ours] {
            for k in ["k1", "k2", "k3"] {
                c.put(&format!("transit/keys/{k}/config"), json!({"deletion_allowed": true}));
                c.send("DELETE", &format!("transit/keys/{k}"), None);
            }
        }
    }
}
