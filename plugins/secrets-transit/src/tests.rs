//! Handler tests against the SDK's mock host (in-memory storage, frozen clock).

use serde_json::{json, Value};
use tresor_sdk::{Backend as _, Error, Operation, Request, Value as V};

use crate::Transit;

fn req(op: Operation, path: &str, data: Value) -> Request {
    let mut r = Request::new(op, path);
    let segments: Vec<&str> = path.split('/').collect();
    // Captures as the host would set them for the patterns used here.
    match segments.as_slice() {
        [_, name] => r = r.capture("name", *name),
        ["keys", name, _] => r = r.capture("name", *name),
        ["datakey", kind, name] => r = r.capture("plaintext", *kind).capture("name", *name),
        ["export", kind, name] => r = r.capture("type", *kind).capture("name", *name),
        [_, name, alg] => r = r.capture("name", *name).capture("urlalgorithm", *alg),
        _ => {}
    }
    if let Value::Object(m) = data {
        for (k, v) in m {
            let v = match v {
                // Durations arrive coerced to seconds from the host.
                Value::String(s) if k == "auto_rotate_period" => V::Duration(match s.as_str() {
                    "1h" => 3600,
                    "10m" => 600,
                    other => other.parse().unwrap(),
                }),
                Value::String(s) => V::Str(s),
                Value::Bool(b) => V::Bool(b),
                Value::Number(n) => V::Int(n.as_i64().unwrap_or_default()),
                other => V::Json(other.into()),
            };
            r = r.with(k, v);
        }
    }
    r
}

fn call(op: Operation, path: &str, data: Value) -> Result<(Value, Option<u16>), Error> {
    let resp = Transit::handle(req(op, path, data))?;
    Ok((resp.data_value().unwrap_or(Value::Null), resp.status))
}

fn ok(op: Operation, path: &str, data: Value) -> Value {
    match call(op, path, data) {
        Ok((d, None)) => d,
        other => panic!("{path}: {other:?}"),
    }
}

fn bad(op: Operation, path: &str, data: Value) -> String {
    match call(op, path, data) {
        Err(Error::InvalidRequest(m)) => m,
        other => panic!("{path}: expected 400, got {other:?}"),
    }
}

const HELLO: &str = "aGVsbG8gd29ybGQ=";

fn fresh() {
    tresor_sdk::storage::reset_mock();
    tresor_sdk::system::set_mock_now(1_795_426_674, 0);
}

#[test]
fn aead_round_trip_rotate_rewrap_min_decryption() {
    for kind in ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "xchacha20-poly1305"] {
        fresh();
        let created = ok(Operation::Update, "keys/k", json!({ "type": kind }));
        assert_eq!(created["type"], kind);
        assert_eq!(created["keys"]["1"], 1_795_426_674);
        let ct1 = ok(Operation::Update, "encrypt/k", json!({ "plaintext": HELLO }))["ciphertext"].as_str().unwrap().to_string();
        assert!(ct1.starts_with("vault:v1:"));
        if kind == "aes256-gcm96" {
            // 11-byte plaintext: 12 nonce + 11 + 16 tag = 39 bytes = 52 base64 characters.
            assert_eq!(ct1.len(), "vault:v1:".len() + 52);
        }
        assert_eq!(ok(Operation::Update, "decrypt/k", json!({ "ciphertext": ct1 }))["plaintext"], HELLO);

        ok(Operation::Update, "keys/k/rotate", json!({}));
        let ct2 = ok(Operation::Update, "encrypt/k", json!({ "plaintext": HELLO }));
        assert_eq!(ct2["key_version"], 2);
        assert_eq!(ok(Operation::Update, "decrypt/k", json!({ "ciphertext": ct1 }))["plaintext"], HELLO);
        let rewrapped = ok(Operation::Update, "rewrap/k", json!({ "ciphertext": ct1 }));
        assert!(rewrapped["ciphertext"].as_str().unwrap().starts_with("vault:v2:"));

        ok(Operation::Update, "keys/k/config", json!({ "min_decryption_version": 2 }));
        assert_eq!(bad(Operation::Update, "decrypt/k", json!({ "ciphertext": ct1 })), "ciphertext or signature version is disallowed by policy (too old)");
        assert_eq!(ok(Operation::Update, "decrypt/k", json!({ "ciphertext": rewrapped["ciphertext"] }))["plaintext"], HELLO);
        let read = ok(Operation::Read, "keys/k", json!({}));
        assert!(read["keys"].get("1").is_none() && read["keys"].get("2").is_some());
    }
}

#[test]
fn tampering_and_malformed_ciphertexts_are_400() {
    fresh();
    let ct = ok(Operation::Update, "encrypt/k", json!({ "plaintext": HELLO }))["ciphertext"].as_str().unwrap().to_string();
    let body = crate::crypto::unb64(&ct[9..]).unwrap();
    for bit in [0usize, 8 * 12, 8 * body.len() - 1] {
        let mut flipped = body.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let tampered = format!("vault:v1:{}", crate::crypto::b64(&flipped));
        assert_eq!(bad(Operation::Update, "decrypt/k", json!({ "ciphertext": tampered })), "cipher: message authentication failed");
    }
    assert_eq!(bad(Operation::Update, "decrypt/k", json!({ "ciphertext": "nope" })), "invalid ciphertext: no prefix");
    assert_eq!(bad(Operation::Update, "decrypt/k", json!({ "ciphertext": "vault:v2:garbage" })), "invalid ciphertext: version is too new");
    assert_eq!(bad(Operation::Update, "decrypt/k", json!({ "ciphertext": "vault:v1:!!" })), "invalid ciphertext: could not decode base64");
    assert_eq!(bad(Operation::Update, "encrypt/k", json!({ "plaintext": "not base64!!" })), "illegal base64 data at input byte 3");
    assert_eq!(bad(Operation::Update, "encrypt/k", json!({})), "missing plaintext to encrypt");
}

#[test]
fn batch_reports_per_item_errors_and_keeps_the_rest() {
    fresh();
    let (data, status) = call(
        Operation::Update,
        "encrypt/k",
        json!({ "batch_input": [{ "plaintext": HELLO }, { "plaintext": "!!" }, { "plaintext": "aGk=", "reference": "r3" }] }),
    )
    .unwrap();
    assert_eq!(status, Some(400));
    let results = data["batch_results"].as_array().unwrap();
    assert_eq!(results[1]["error"], "illegal base64 data at input byte 0");
    assert_eq!(results[2]["reference"], "r3");
    let batch: Vec<Value> = results.iter().map(|r| json!({ "ciphertext": r["ciphertext"].as_str().unwrap_or("vault:v1:AAAA") })).collect();
    let (data, status) = call(Operation::Update, "decrypt/k", json!({ "batch_input": batch })).unwrap();
    assert_eq!(status, Some(400));
    let results = data["batch_results"].as_array().unwrap();
    assert_eq!(results[0]["plaintext"], HELLO);
    assert_eq!(results[1]["plaintext"], "");
    assert!(results[1]["error"].as_str().is_some());
    assert_eq!(results[2]["plaintext"], "aGk=");
    // All good: 200.
    let (_, status) = call(Operation::Update, "encrypt/k", json!({ "batch_input": [{ "plaintext": HELLO }] })).unwrap();
    assert_eq!(status, None);
}

#[test]
fn derived_and_convergent_keys() {
    fresh();
    ok(Operation::Update, "keys/c", json!({ "derived": true, "convergent_encryption": true }));
    let ctx = crate::crypto::b64(b"tenant-1");
    assert!(bad(Operation::Update, "encrypt/c", json!({ "plaintext": HELLO })).starts_with("missing 'context' for key derivation"));
    let a = ok(Operation::Update, "encrypt/c", json!({ "plaintext": HELLO, "context": ctx }));
    let b = ok(Operation::Update, "encrypt/c", json!({ "plaintext": HELLO, "context": ctx }));
    assert_eq!(a["ciphertext"], b["ciphertext"], "convergent: same plaintext and context → same ciphertext");
    let other = ok(Operation::Update, "encrypt/c", json!({ "plaintext": HELLO, "context": crate::crypto::b64(b"tenant-2") }));
    assert_ne!(a["ciphertext"], other["ciphertext"]);
    assert_eq!(ok(Operation::Update, "decrypt/c", json!({ "ciphertext": a["ciphertext"], "context": ctx }))["plaintext"], HELLO);
    assert_eq!(
        bad(Operation::Update, "decrypt/c", json!({ "ciphertext": a["ciphertext"], "context": crate::crypto::b64(b"tenant-2") })),
        "cipher: message authentication failed"
    );
    assert_eq!(bad(Operation::Update, "keys/x", json!({ "convergent_encryption": true })), "convergent encryption requires derivation to be enabled");
}

#[test]
fn signing_key_types_sign_and_verify() {
    for kind in ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048"] {
        fresh();
        let created = ok(Operation::Update, "keys/s", json!({ "type": kind }));
        assert_eq!(created["supports_signing"], true);
        let sig = ok(Operation::Update, "sign/s", json!({ "input": HELLO }))["signature"].as_str().unwrap().to_string();
        assert!(sig.starts_with("vault:v1:"), "{kind}: {sig}");
        assert_eq!(ok(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": sig }))["valid"], true, "{kind}");
        assert_eq!(ok(Operation::Update, "verify/s", json!({ "input": "b3RoZXI=", "signature": sig }))["valid"], false, "{kind}");
        if !kind.starts_with("rsa") {
            assert_eq!(bad(Operation::Update, "encrypt/s", json!({ "plaintext": HELLO })), format!("message encryption not supported for key type {kind}"));
        }
    }
    fresh();
    ok(Operation::Update, "keys/k", json!({}));
    assert_eq!(bad(Operation::Update, "sign/k", json!({ "input": HELLO })), "key type aes256-gcm96 does not support signing");
}

/// Vault's `SignWithOptions` and `VerifySignatureWithOptions`: JWS is an encoding any signing key
/// takes, ed25519 signs its input as given (`prehashed` changes nothing), signing checks only
/// the minimum *encryption* version, and each refusal has Vault's words.
#[test]
fn signing_follows_vaults_version_and_encoding_rules() {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for kind in ["ed25519", "rsa-2048", "ecdsa-p256"] {
        fresh();
        ok(Operation::Update, "keys/s", json!({ "type": kind }));
        let sig = ok(Operation::Update, "sign/s", json!({ "input": HELLO, "marshaling_algorithm": "jws" }))["signature"].as_str().unwrap().to_string();
        let body = sig.strip_prefix("vault:v1:").unwrap();
        assert!(!body.contains(['+', '/', '=']) && url.decode(body).is_ok(), "{kind}: base64url without padding: {sig}");
        assert_eq!(ok(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": sig, "marshaling_algorithm": "jws" }))["valid"], true, "{kind}");
        assert_eq!(bad(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": "vault:v1:!!" })), "invalid base64 signature value", "{kind}");
    }
    assert_eq!(
        bad(Operation::Update, "sign/s", json!({ "input": HELLO, "marshaling_algorithm": "pem" })),
        "invalid marshaling type \"pem\""
    );
    // ASN.1 that does not parse is refused, not "invalid" (Vault's two texts).
    let der = ok(Operation::Update, "sign/s", json!({ "input": HELLO }))["signature"].as_str().unwrap().to_string();
    let mut raw = base64::engine::general_purpose::STANDARD.decode(der.strip_prefix("vault:v1:").unwrap()).unwrap();
    raw.push(0);
    let extra = format!("vault:v1:{}", base64::engine::general_purpose::STANDARD.encode(&raw));
    assert_eq!(bad(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": extra })), "supplied signature contains extra data");
    assert_eq!(bad(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": "vault:v1:AAAA" })), "supplied signature is invalid");

    // Ed25519 is deterministic: `prehashed` and `hash_algorithm` leave the signature as it was.
    fresh();
    ok(Operation::Update, "keys/e", json!({ "type": "ed25519" }));
    let plain = ok(Operation::Update, "sign/e", json!({ "input": HELLO }))["signature"].clone();
    let prehashed = ok(Operation::Update, "sign/e", json!({ "input": HELLO, "prehashed": true, "hash_algorithm": "sha2-512" }))["signature"].clone();
    assert_eq!(plain, prehashed);
    assert_eq!(ok(Operation::Update, "sign/e", json!({ "input": HELLO, "hash_algorithm": "none" }))["signature"], plain);
    ok(Operation::Update, "keys/p", json!({ "type": "ecdsa-p256" }));
    assert_eq!(
        bad(Operation::Update, "sign/p", json!({ "input": HELLO, "hash_algorithm": "none", "prehashed": true })),
        "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
    );

    // Versions: one below the minimum decryption version is archived, so "no such key version".
    ok(Operation::Update, "keys/e/rotate", json!({}));
    ok(Operation::Update, "keys/e/rotate", json!({}));
    assert_eq!(ok(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": 1 }))["key_version"], 1);
    ok(Operation::Update, "keys/e/config", json!({ "min_decryption_version": 2 }));
    assert_eq!(bad(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": 1 })), "no such key version");
    assert_eq!(bad(Operation::Update, "hmac/e", json!({ "input": HELLO, "key_version": 1 })), "no such key version");
    assert_eq!(ok(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": 2 }))["key_version"], 2);
    assert_eq!(bad(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": 4 })), "requested version for signing is higher than the latest key version");
    assert_eq!(bad(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": -1 })), "requested version for signing is negative");
    ok(Operation::Update, "keys/e/config", json!({ "min_encryption_version": 3 }));
    assert_eq!(
        bad(Operation::Update, "sign/e", json!({ "input": HELLO, "key_version": 2 })),
        "requested version for signing is less than the minimum encryption key version"
    );
    assert_eq!(bad(Operation::Update, "hmac/e", json!({ "input": HELLO, "key_version": 9 })), "key version does not exist; latest key version is 3");
    assert_eq!(bad(Operation::Update, "hmac/e", json!({ "input": HELLO, "key_version": 2 })), "cannot generate HMAC: version is too old (disallowed by policy)");

    // RSA-PSS salt lengths as Vault parses them.
    fresh();
    ok(Operation::Update, "keys/r", json!({ "type": "rsa-2048" }));
    assert_eq!(bad(Operation::Update, "sign/r", json!({ "input": HELLO, "salt_length": "big" })), "salt length neither 'auto', 'hash', nor an int: big");
    assert_eq!(bad(Operation::Update, "sign/r", json!({ "input": HELLO, "salt_length": "-5" })), "salt length is invalid: -5");
    assert_eq!(bad(Operation::Update, "sign/r", json!({ "input": HELLO, "salt_length": "1000" })), "requested salt length 1000 is invalid");
    for salt in ["0", "-1", "hash", "20"] {
        let sig = ok(Operation::Update, "sign/r", json!({ "input": HELLO, "salt_length": salt }))["signature"].clone();
        assert_eq!(ok(Operation::Update, "verify/r", json!({ "input": HELLO, "signature": sig, "salt_length": salt }))["valid"], true, "{salt}");
    }
}

#[test]
fn rsa_encrypts_with_oaep_and_signs_both_paddings() {
    fresh();
    ok(Operation::Update, "keys/r", json!({ "type": "rsa-2048" }));
    let ct = ok(Operation::Update, "encrypt/r", json!({ "plaintext": HELLO }));
    assert_eq!(ok(Operation::Update, "decrypt/r", json!({ "ciphertext": ct["ciphertext"] }))["plaintext"], HELLO);
    for alg in ["pss", "pkcs1v15"] {
        let sig = ok(Operation::Update, "sign/r/sha2-512", json!({ "input": HELLO, "signature_algorithm": alg }))["signature"].clone();
        assert_eq!(ok(Operation::Update, "verify/r/sha2-512", json!({ "input": HELLO, "signature": sig, "signature_algorithm": alg }))["valid"], true);
        assert_eq!(ok(Operation::Update, "verify/r/sha2-256", json!({ "input": HELLO, "signature": sig, "signature_algorithm": alg }))["valid"], false);
    }
}

#[test]
fn hmac_and_verify() {
    fresh();
    ok(Operation::Update, "keys/h", json!({ "type": "hmac", "key_size": 64 }));
    let mac = ok(Operation::Update, "hmac/h", json!({ "input": HELLO }))["hmac"].clone();
    assert_eq!(ok(Operation::Update, "verify/h", json!({ "input": HELLO, "hmac": mac }))["valid"], true);
    assert_eq!(ok(Operation::Update, "verify/h", json!({ "input": "b3RoZXI=", "hmac": mac }))["valid"], false);
    let long = ok(Operation::Update, "hmac/h/sha2-512", json!({ "input": HELLO }))["hmac"].as_str().unwrap().len();
    assert_eq!(long, "vault:v1:".len() + 88);
    assert_eq!(bad(Operation::Update, "keys/h2", json!({ "type": "hmac", "key_size": 16 })), "invalid key_size 16");
}

#[test]
fn auto_rotation_runs_from_the_periodic_call() {
    fresh();
    ok(Operation::Update, "keys/auto", json!({ "auto_rotate_period": "1h" }));
    ok(Operation::Update, "keys/manual", json!({}));
    assert_eq!(bad(Operation::Update, "keys/auto/config", json!({ "auto_rotate_period": "10m" })), "auto rotate period must be 0 to disable or at least an hour");
    tresor_sdk::system::set_mock_now(1_795_426_674 + 3599, 0);
    Transit::periodic().unwrap();
    assert_eq!(ok(Operation::Read, "keys/auto", json!({}))["latest_version"], 1);
    tresor_sdk::system::set_mock_now(1_795_426_674 + 3600, 0);
    Transit::periodic().unwrap();
    assert_eq!(ok(Operation::Read, "keys/auto", json!({}))["latest_version"], 2);
    assert_eq!(ok(Operation::Read, "keys/manual", json!({}))["latest_version"], 1);
    // The period restarts from the new version.
    Transit::periodic().unwrap();
    assert_eq!(ok(Operation::Read, "keys/auto", json!({}))["latest_version"], 2);
}

#[test]
fn backup_restore_round_trip_for_every_type() {
    for kind in ["aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305", "ed25519", "ecdsa-p256", "ecdsa-p521", "rsa-2048", "hmac"] {
        fresh();
        ok(Operation::Update, "keys/b", json!({ "type": kind, "exportable": true, "allow_plaintext_backup": true }));
        ok(Operation::Update, "keys/b/rotate", json!({}));
        let before = ok(Operation::Read, "keys/b", json!({}));
        let backup = ok(Operation::Read, "backup/b", json!({}))["backup"].clone();
        // The backup is Vault's document: ECDSA and RSA keys as big integers Go can read (too big
        // for serde_json's `Value`, hence the text checks).
        let doc = String::from_utf8(crate::crypto::unb64(backup.as_str().unwrap()).unwrap()).unwrap();
        assert!(doc.starts_with("{\"policy\":{\"name\":\"b\""), "{doc}");
        if kind.starts_with("ecdsa") {
            assert!(doc.split("\"ec_d\":").skip(1).any(|rest| rest.starts_with(|c: char| c.is_ascii_digit())), "{doc}");
        }
        if kind.starts_with("rsa") {
            assert!(doc.contains("\"rsa_key\":{\"N\":"));
        }
        assert_eq!(bad(Operation::Update, "restore/b", json!({ "backup": backup })), "key \"b\" already exists");
        ok(Operation::Update, "restore/copy", json!({ "backup": backup }));
        let after = ok(Operation::Read, "keys/copy", json!({}));
        assert_eq!(after["latest_version"], before["latest_version"]);
        assert_eq!(after["keys"], before["keys"], "{kind}");
    }
}

#[test]
fn restores_ecdsa_and_rsa_from_vault_big_integers_alone() {
    for kind in ["ecdsa-p384", "rsa-2048"] {
        fresh();
        ok(Operation::Update, "keys/v", json!({ "type": kind, "exportable": true, "allow_plaintext_backup": true }));
        let sig = ok(Operation::Update, "sign/v", json!({ "input": HELLO }))["signature"].clone();
        let backup = ok(Operation::Read, "backup/v", json!({}))["backup"].as_str().unwrap().to_string();
        // Drop Tresor's own field: what is left is what Vault/OpenBao write.
        let text = String::from_utf8(crate::crypto::unb64(&backup).unwrap()).unwrap();
        let stripped = regex_free_strip(&text, "\"private_der\":\"");
        ok(Operation::Update, "restore/w", json!({ "backup": crate::crypto::b64(stripped.as_bytes()) }));
        assert_eq!(ok(Operation::Update, "verify/w", json!({ "input": HELLO, "signature": sig }))["valid"], true, "{kind}");
        assert_eq!(ok(Operation::Read, "keys/w", json!({}))["keys"]["1"]["public_key"], ok(Operation::Read, "keys/v", json!({}))["keys"]["1"]["public_key"]);
    }
}

/// Remove every `"field":"...",` occurrence (the values are base64, without quotes inside).
fn regex_free_strip(text: &str, field_start: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(field_start) {
        out.push_str(&rest[..i]);
        let after = &rest[i + field_start.len()..];
        let end = after.find('"').unwrap() + 1;
        rest = after[end..].strip_prefix(',').unwrap_or(&after[end..]);
    }
    out.push_str(rest);
    // A trailing comma before `}` would remain if the field was last.
    out.replace(",}", "}")
}

#[test]
fn export_rules() {
    fresh();
    ok(Operation::Update, "keys/k", json!({}));
    assert_eq!(bad(Operation::Read, "export/encryption-key/k", json!({})), "private key material is not exportable");
    ok(Operation::Update, "keys/k/config", json!({ "exportable": true }));
    let keys = ok(Operation::Read, "export/encryption-key/k", json!({}))["keys"].clone();
    assert_eq!(crate::crypto::unb64(keys["1"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(bad(Operation::Read, "export/signing-key/k", json!({})), "signing not supported for the key");
    // Once set it stays set; `false` is ignored, as in Vault.
    assert_eq!(ok(Operation::Update, "keys/k/config", json!({ "exportable": false }))["exportable"], true);
    assert_eq!(ok(Operation::Read, "keys/k", json!({}))["exportable"], true);
    assert_eq!(bad(Operation::Delete, "keys/k", json!({})), "error deleting policy k: deletion is not allowed for this key");
    ok(Operation::Update, "keys/k/config", json!({ "deletion_allowed": true }));
    assert_eq!(call(Operation::Delete, "keys/k", json!({})).unwrap().0, Value::Null);
    assert!(matches!(call(Operation::Read, "keys/k", json!({})), Err(Error::NotFound)));

    // PEM endings as OpenBao 2.7 exports them.
    ok(Operation::Update, "keys/ec", json!({ "type": "ecdsa-p256", "exportable": true }));
    ok(Operation::Update, "keys/rsa", json!({ "type": "rsa-2048", "exportable": true }));
    let one = |path: &str| ok(Operation::Read, path, json!({}))["keys"]["1"].as_str().unwrap().to_string();
    assert!(one("export/public-key/ec").ends_with("-----END PUBLIC KEY-----"));
    assert!(one("export/signing-key/ec").ends_with("-----END EC PRIVATE KEY-----"));
    assert!(one("export/public-key/rsa").ends_with("-----END PUBLIC KEY-----\n"));
    assert!(one("export/signing-key/rsa").ends_with("-----END RSA PRIVATE KEY-----\n"));
    assert!(one("export/encryption-key/rsa").ends_with("-----END RSA PRIVATE KEY-----\n"));
}

#[test]
fn hash_random_and_datakey() {
    fresh();
    assert_eq!(
        ok(Operation::Update, "hash", json!({ "input": HELLO, "algorithm": "sha2-256" }))["sum"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    let r = ok(Operation::Update, "random", json!({ "bytes": 16, "format": "hex" }))["random_bytes"].as_str().unwrap().to_string();
    assert_eq!(r.len(), 32);
    assert_eq!(bad(Operation::Update, "random", json!({ "bytes": 0 })), "'bytes' cannot be less than 1");
    ok(Operation::Update, "keys/k", json!({}));
    let dk = ok(Operation::Update, "datakey/plaintext/k", json!({ "bits": 128 }));
    assert_eq!(ok(Operation::Update, "decrypt/k", json!({ "ciphertext": dk["ciphertext"] }))["plaintext"], dk["plaintext"]);
    let wrapped = ok(Operation::Update, "datakey/wrapped/k", json!({}));
    assert!(wrapped.get("plaintext").is_none());
}

/// `random[/{source}][/{urlbytes}]` as Vault parses it: segments win over the body.
#[test]
fn random_reads_source_and_count_from_the_path_as_vault() {
    fresh();
    let call = |segments: &[&str], data: Value| {
        let mut r = req(Operation::Update, "random", data);
        for (name, seg) in ["a", "b"].into_iter().zip(segments) {
            r = r.capture(name, *seg);
        }
        Transit::handle(r)
    };
    let bytes = |r: &tresor_sdk::Response| {
        let text = r.data_value().unwrap()["random_bytes"].as_str().unwrap().to_string();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).unwrap().len()
    };
    let message = |r: Result<tresor_sdk::Response, Error>| match r {
        Err(Error::InvalidRequest(m)) => m,
        other => panic!("expected 400, got {other:?}"),
    };
    assert_eq!(bytes(&call(&["8"], json!({ "bytes": 4 })).unwrap()), 8);
    assert_eq!(bytes(&call(&["all"], json!({ "bytes": 4 })).unwrap()), 4);
    assert_eq!(bytes(&call(&["platform", "+6"], json!({})).unwrap()), 6);
    let seal = call(&["seal", "5"], json!({})).unwrap();
    assert_eq!(bytes(&seal), 5);
    assert_eq!(seal.warnings, ["no seal/entropy augmentation available, using platform entropy source"]);
    // A body `source` is replaced by the (possibly empty) segment, and said so.
    let body = call(&[], json!({ "source": "seal", "urlbytes": "9" })).unwrap();
    assert_eq!(bytes(&body), 32);
    assert_eq!(
        body.warnings,
        ["Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [source urlbytes]"]
    );
    assert_eq!(message(call(&["8", "seal"], json!({}))), "error parsing url-set byte count: strconv.Atoi: parsing \"seal\": invalid syntax");
    assert_eq!(message(call(&["hex"], json!({}))), "error parsing url-set byte count: strconv.Atoi: parsing \"hex\": invalid syntax");
    assert_eq!(
        message(call(&["99999999999999999999"], json!({}))),
        "error parsing url-set byte count: strconv.Atoi: parsing \"99999999999999999999\": value out of range"
    );
    assert_eq!(message(call(&["bogus", "8"], json!({}))), "unsupported entropy source \"bogus\"; must be \"platform\" or \"seal\", or \"all\"");
    assert_eq!(message(call(&[], json!({ "bytes": 131073 }))), "'bytes' should be less than 131072");
    assert_eq!(message(call(&["-1"], json!({}))), "'bytes' cannot be less than 1");
}

#[test]
fn verify_follows_vaults_signature_and_hmac_rules() {
    fresh();
    ok(Operation::Update, "keys/s", json!({ "type": "ed25519" }));
    let sig = ok(Operation::Update, "sign/s", json!({ "input": HELLO }))["signature"].clone();
    // A signature wins over an hmac sent beside it (Vault checks the signature, ignores the hmac).
    assert_eq!(ok(Operation::Update, "verify/s", json!({ "input": HELLO, "signature": sig, "hmac": "x" }))["valid"], true);
    assert_eq!(bad(Operation::Update, "verify/s", json!({ "input": HELLO })), "neither a 'signature' nor an 'hmac' were given to verify");
    let batch = |items: Value| bad(Operation::Update, "verify/s", json!({ "batch_input": items }));
    assert_eq!(
        batch(json!([{ "input": HELLO, "signature": sig }, { "input": HELLO, "hmac": "vault:v1:AAAA" }])),
        "elements of batch_input must all provide 'signature' or all provide 'hmac'"
    );
    assert_eq!(batch(json!([{ "input": HELLO, "signature": sig }, { "input": HELLO }])), "some elements of batch_input are missing 'signature'");
    assert_eq!(batch(json!([{ "input": HELLO, "hmac": "vault:v1:AAAA" }, { "input": HELLO }])), "some elements of batch_input are missing 'hmac'");
    assert_eq!(batch(json!([{ "input": HELLO }])), "no batch_input elements have 'signature' or 'hmac'");
    ok(Operation::Update, "keys/h", json!({ "type": "hmac" }));
    let mac = ok(Operation::Update, "hmac/h", json!({ "input": HELLO }))["hmac"].clone();
    let (data, status) = call(Operation::Update, "verify/h", json!({ "batch_input": [{ "input": HELLO, "hmac": mac }, { "input": "!!", "hmac": mac }] })).unwrap();
    assert_eq!(status, None, "sign/verify/hmac batches answer 200 whatever their items' errors");
    assert_eq!(data["batch_results"][0]["valid"], true);
    assert_eq!(data["batch_results"][1]["error"], "unable to decode input as base64: illegal base64 data at input byte 0");
    assert_eq!(bad(Operation::Update, "verify/nokey", json!({ "input": HELLO, "hmac": mac })), "encryption key not found");
    assert_eq!(bad(Operation::Update, "verify/nokey", json!({ "input": HELLO, "signature": sig })), "signature verification key not found");
}

#[test]
fn batch_context_rule_rewrap_status_and_partial_failure_code() {
    fresh();
    ok(Operation::Update, "keys/d", json!({ "derived": true }));
    let ctx = crate::crypto::b64(b"tenant");
    let mixed = json!({ "batch_input": [{ "plaintext": HELLO, "context": ctx }, { "plaintext": HELLO }] });
    for op in ["encrypt/d", "decrypt/d", "rewrap/d"] {
        let mixed = if op == "encrypt/d" { mixed.clone() } else { json!({ "batch_input": [{ "ciphertext": "vault:v1:AAAA", "context": ctx }, { "ciphertext": "vault:v1:AAAA" }] }) };
        assert_eq!(bad(Operation::Update, op, mixed), "context should be set either in all the request blocks or in none", "{op}");
    }
    ok(Operation::Update, "keys/k", json!({}));
    let ct = ok(Operation::Update, "encrypt/k", json!({ "plaintext": HELLO }))["ciphertext"].clone();
    let items = json!([{ "ciphertext": ct }, { "ciphertext": "vault:v1:AAAA" }]);
    // Rewrap answers 200 even when items fail (Vault's rewrap never sets a batch status).
    let (data, status) = call(Operation::Update, "rewrap/k", json!({ "batch_input": items })).unwrap();
    assert_eq!(status, None);
    assert!(data["batch_results"][1]["error"].as_str().is_some());
    // Decrypt: 400 by default, the client's code when some items succeeded, 400 with a warning
    // for a code a plugin may not answer, and 400 when nothing succeeded whatever the code.
    assert_eq!(call(Operation::Update, "decrypt/k", json!({ "batch_input": items })).unwrap().1, Some(400));
    assert_eq!(call(Operation::Update, "decrypt/k", json!({ "batch_input": items, "partial_failure_response_code": 207 })).unwrap().1, Some(207));
    assert_eq!(call(Operation::Update, "decrypt/k", json!({ "batch_input": items, "partial_failure_response_code": 200 })).unwrap().1, None);
    let resp = Transit::handle(req(Operation::Update, "decrypt/k", json!({ "batch_input": items, "partial_failure_response_code": 503 }))).unwrap();
    assert_eq!(resp.status, Some(400));
    assert_eq!(resp.warnings, ["invalid HTTP response code override from partial_failure_response_code, reverting to 400"]);
    let bad_only = json!([{ "ciphertext": "vault:v1:AAAA" }]);
    assert_eq!(call(Operation::Update, "decrypt/k", json!({ "batch_input": bad_only, "partial_failure_response_code": 200 })).unwrap().1, Some(400));
}

#[test]
fn key_config_follows_vault() {
    fresh();
    ok(Operation::Update, "keys/k", json!({ "allow_plaintext_backup": true }));
    ok(Operation::Update, "keys/k/rotate", json!({}));
    ok(Operation::Update, "keys/k/config", json!({ "min_decryption_version": 2 }));
    assert_eq!(
        bad(Operation::Update, "keys/k/config", json!({ "min_encryption_version": 1 })),
        "cannot set min encryption/decryption values; min encryption version of 1 must be greater than or equal to min decryption version of 2"
    );
    assert_eq!(bad(Operation::Update, "keys/k/config", json!({ "min_decryption_version": -1 })), "min decryption version cannot be negative");
    assert_eq!(bad(Operation::Update, "keys/k/config", json!({ "min_decryption_version": 3 })), "cannot set min decryption version of 3, latest key version is 2");
    let resp = Transit::handle(req(Operation::Update, "keys/k/config", json!({ "min_decryption_version": 0 }))).unwrap();
    assert_eq!(resp.data_value().unwrap()["min_decryption_version"], 1);
    assert_eq!(resp.warnings.len(), 1);
    // A refused change leaves the key as it was.
    assert_eq!(ok(Operation::Read, "keys/k", json!({}))["min_decryption_version"], 1);
    assert_eq!(ok(Operation::Update, "keys/k/config", json!({ "allow_plaintext_backup": false }))["allow_plaintext_backup"], true);
    assert_eq!(bad(Operation::Read, "backup/k", json!({})), "exporting is disallowed on the policy");
    ok(Operation::Update, "keys/e", json!({ "exportable": true }));
    assert_eq!(bad(Operation::Read, "backup/e", json!({})), "plaintext backup is disallowed on the policy");
    assert_eq!(bad(Operation::Update, "keys/a", json!({ "key_size": 64 })), "key_size is not valid for algorithm aes256-gcm96");
    assert_eq!(ok(Operation::Update, "keys/h", json!({ "type": "hmac" }))["key_size"], 32);
}

#[test]
fn batches_vault_cannot_decode_fail_whole() {
    fresh();
    ok(Operation::Update, "keys/k", json!({}));
    assert_eq!(
        bad(Operation::Update, "encrypt/k", json!({ "batch_input": [{ "plaintext": HELLO }, { "plaintext": HELLO, "key_version": "1" }, {}] })),
        "failed to parse batch input: '[1].key_version' expected type 'int', got unconvertible type 'string'\n'[2].plaintext' missing plaintext to encrypt"
    );
    assert_eq!(
        bad(Operation::Update, "decrypt/k", json!({ "batch_input": [{ "ciphertext": 5 }, { "context": true }] })),
        "failed to parse batch input: '[0].ciphertext' expected type 'string', got unconvertible type 'json.Number'\n'[1].context' expected type 'string', got unconvertible type 'bool'\n'[1].ciphertext' missing ciphertext to decrypt"
    );
    // Rewrap requires nothing at decoding: a missing ciphertext is that item's error.
    let (data, _) = call(Operation::Update, "rewrap/k", json!({ "batch_input": [{}] })).unwrap();
    assert_eq!(data["batch_results"][0]["error"], "missing ciphertext to decrypt");
}

#[test]
fn cache_config_is_stored_and_checked_as_vault_does() {
    fresh();
    assert_eq!(ok(Operation::Read, "cache-config", json!({}))["size"], 0);
    assert_eq!(bad(Operation::Update, "cache-config", json!({ "size": 5 })), "size must be 0 or a value greater or equal to 10");
    assert_eq!(ok(Operation::Update, "cache-config", json!({ "size": 500 }))["size"], 500);
    assert_eq!(ok(Operation::Read, "cache-config", json!({}))["size"], 500);
}

/// BYOK: key material wrapped as the `bao transit import` CLI wraps it (RSA-OAEP-SHA256 of an
/// ephemeral AES-256 key ‖ AES-KWP of the material) becomes a working key.
#[test]
fn imported_keys_hold_the_clients_material() {
    use rsa::traits::PublicKeyParts as _;
    fresh();
    // A 2048-bit wrapping key keeps this debug-build test quick; the server makes an RSA-4096 one.
    let wrapping = rsa::RsaPrivateKey::new(&mut crate::crypto::HostRng, 2048).unwrap();
    let mut entry = crate::policy::KeyEntry::default();
    crate::crypto::set_rsa(&mut entry, &wrapping).unwrap();
    tresor_sdk::storage::put_json("import/wrapping-key", &entry).unwrap();
    assert!(ok(Operation::Read, "wrapping_key", json!({}))["public_key"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    let wrap = |material: &[u8], hash_sha1: bool| {
        let ephemeral = [7u8; 32];
        let kek = aes_kw::KekAes256::from(ephemeral);
        let wrapped = kek.wrap_with_padding_vec(material).unwrap();
        let public = wrapping.to_public_key();
        let oaep = if hash_sha1 { rsa::Oaep::new::<sha1::Sha1>() } else { rsa::Oaep::new::<sha2::Sha256>() };
        let mut out = public.encrypt(&mut crate::crypto::HostRng, oaep, &ephemeral).unwrap();
        assert_eq!(out.len(), public.size());
        out.extend(wrapped);
        crate::crypto::b64(&out)
    };
    let material = [42u8; 32];
    let imported = call(Operation::Update, "keys/imp/import", json!({ "ciphertext": wrap(&material, false), "exportable": true })).unwrap();
    assert_eq!(imported.0, Value::Null);
    let key = ok(Operation::Read, "keys/imp", json!({}));
    assert_eq!((key["imported_key"].clone(), key["imported_key_allow_rotation"].clone()), (json!(true), json!(false)));
    let exported = ok(Operation::Read, "export/encryption-key/imp", json!({}))["keys"]["1"].clone();
    assert_eq!(crate::crypto::unb64(exported.as_str().unwrap()).unwrap(), material);
    let ct = ok(Operation::Update, "encrypt/imp", json!({ "plaintext": HELLO }))["ciphertext"].clone();
    assert_eq!(ok(Operation::Update, "decrypt/imp", json!({ "ciphertext": ct }))["plaintext"], HELLO);
    assert_eq!(bad(Operation::Update, "keys/imp/rotate", json!({})), "imported key imp does not allow rotation within Vault");
    assert!(bad(Operation::Update, "keys/imp/import", json!({ "ciphertext": wrap(&material, false) })).starts_with("the import path cannot be used with an existing key"));
    // A new version from new material (OAEP with SHA-1 this time).
    let second = [9u8; 32];
    ok_or_empty(Operation::Update, "keys/imp/import_version", json!({ "ciphertext": wrap(&second, true), "hash_function": "SHA1" }));
    let keys = ok(Operation::Read, "export/encryption-key/imp", json!({}))["keys"].clone();
    assert_eq!(crate::crypto::unb64(keys["2"].as_str().unwrap()).unwrap(), second);
    // Wrong sizes and tampering are refused.
    assert_eq!(bad(Operation::Update, "keys/short/import", json!({ "ciphertext": wrap(&[1u8; 16], false) })), "invalid key size 16 bytes for key type aes256-gcm96");
    let mut tampered = crate::crypto::unb64(&wrap(&material, false)).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(bad(Operation::Update, "keys/t/import", json!({ "ciphertext": crate::crypto::b64(&tampered) })), "failed to unwrap the target key: bad wrapping");
    // Ed25519 from PKCS#8, and an HMAC key of its own size.
    let seed = [5u8; 32];
    let der = {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der().unwrap().as_bytes().to_vec()
    };
    ok_or_empty(Operation::Update, "keys/ed/import", json!({ "ciphertext": wrap(&der, false), "type": "ed25519" }));
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let sig = ok(Operation::Update, "sign/ed", json!({ "input": HELLO }))["signature"].as_str().unwrap().to_string();
    let raw: [u8; 64] = crate::crypto::unb64(&sig["vault:v1:".len()..]).unwrap().try_into().unwrap();
    public.verify_strict(&crate::crypto::unb64(HELLO).unwrap(), &ed25519_dalek::Signature::from_bytes(&raw)).unwrap();
    ok_or_empty(Operation::Update, "keys/h/import", json!({ "ciphertext": wrap(&[3u8; 48], false), "type": "hmac" }));
    assert_eq!(ok(Operation::Read, "keys/h", json!({}))["key_size"], 48);
}

fn ok_or_empty(op: Operation, path: &str, data: Value) {
    match call(op, path, data) {
        Ok((Value::Null, None)) => {}
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn a_soft_deleted_key_is_kept_but_refused_for_every_use_until_restored() {
    fresh();
    ok(Operation::Update, "keys/k", json!({}));
    ok(Operation::Update, "keys/s", json!({"type": "ed25519"}));
    let ct = ok(Operation::Update, "encrypt/k", json!({"plaintext": HELLO}))["ciphertext"].as_str().unwrap().to_string();
    let sig = ok(Operation::Update, "sign/s", json!({"input": HELLO}))["signature"].as_str().unwrap().to_string();
    for name in ["k", "s"] {
        assert_eq!(ok(Operation::Delete, &format!("keys/{name}/soft-delete"), json!({}))["soft_deleted"], true);
    }
    let refused = crate::policy::SOFT_DELETED;
    assert_eq!(bad(Operation::Update, "encrypt/k", json!({"plaintext": HELLO})), refused);
    assert_eq!(bad(Operation::Update, "decrypt/k", json!({"ciphertext": ct})), refused);
    assert_eq!(bad(Operation::Update, "rewrap/k", json!({"ciphertext": ct})), refused);
    assert_eq!(bad(Operation::Update, "datakey/plaintext/k", json!({})), refused);
    assert_eq!(bad(Operation::Update, "hmac/k", json!({"input": HELLO})), refused);
    assert_eq!(bad(Operation::Update, "sign/s", json!({"input": HELLO})), refused);
    assert_eq!(bad(Operation::Update, "verify/s", json!({"input": HELLO, "signature": sig})), refused);
    assert_eq!(bad(Operation::Update, "keys/k/rotate", json!({})), refused);
    assert_eq!(bad(Operation::Read, "backup/k", json!({})), refused);
    // Still listed, readable and configurable; soft-deleting again warns.
    assert_eq!(ok(Operation::List, "keys", json!({}))["keys"], json!(["k", "s"]));
    assert_eq!(ok(Operation::Read, "keys/k", json!({}))["soft_deleted"], true);
    ok(Operation::Update, "keys/k/config", json!({"deletion_allowed": true}));
    let again = Transit::handle(req(Operation::Delete, "keys/k/soft-delete", json!({}))).unwrap();
    assert_eq!(again.warnings, vec!["key was already marked as soft deleted".to_string()]);
    // Restored: the old ciphertext decrypts and the signature verifies again.
    assert_eq!(ok(Operation::Update, "keys/k/soft-delete-restore", json!({}))["soft_deleted"], false);
    ok(Operation::Update, "keys/s/soft-delete-restore", json!({}));
    assert_eq!(ok(Operation::Update, "decrypt/k", json!({"ciphertext": ct}))["plaintext"], HELLO);
    assert_eq!(ok(Operation::Update, "verify/s", json!({"input": HELLO, "signature": sig}))["valid"], true);
    // An unknown key: nothing to do.
    assert_eq!(call(Operation::Delete, "keys/nope/soft-delete", json!({})).unwrap().0, Value::Null);
}

#[test]
fn derive_key_agrees_on_one_key_from_either_side() {
    fresh();
    for curve in ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"] {
        ok(Operation::Update, &format!("keys/a-{curve}"), json!({"type": curve}));
        ok(Operation::Update, &format!("keys/b-{curve}"), json!({"type": curve}));
        let public = |name: &str| ok(Operation::Read, &format!("keys/{name}"), json!({}))["keys"]["1"]["public_key"].as_str().unwrap().to_string();
        let (pa, pb) = (public(&format!("a-{curve}")), public(&format!("b-{curve}")));
        for (name, base, peer) in [(format!("x-{curve}"), format!("a-{curve}"), &pb), (format!("y-{curve}"), format!("b-{curve}"), &pa)] {
            let r = call(Operation::Update, &format!("derive-key/{name}"), json!({"base_key_name": base, "peer_public_key": peer, "derived_key_type": "chacha20-poly1305"}));
            assert_eq!(r.unwrap().0, Value::Null, "{name}");
        }
        let key = ok(Operation::Read, &format!("keys/x-{curve}"), json!({}));
        assert_eq!((key["type"].as_str(), key["imported_key"].as_bool(), key["exportable"].as_bool()), (Some("chacha20-poly1305"), Some(true), Some(false)));
        let ct = ok(Operation::Update, &format!("encrypt/x-{curve}"), json!({"plaintext": HELLO}))["ciphertext"].clone();
        assert_eq!(ok(Operation::Update, &format!("decrypt/y-{curve}"), json!({"ciphertext": ct}))["plaintext"], HELLO, "{curve}: both sides derive the same key");
    }
    // Deriving again adds a version; Vault's refusals.
    let pb = ok(Operation::Read, "keys/b-ecdsa-p256", json!({}))["keys"]["1"]["public_key"].as_str().unwrap().to_string();
    let p384 = ok(Operation::Read, "keys/b-ecdsa-p384", json!({}))["keys"]["1"]["public_key"].as_str().unwrap().to_string();
    let again = json!({"base_key_name": "a-ecdsa-p256", "peer_public_key": pb, "derived_key_type": "chacha20-poly1305"});
    call(Operation::Update, "derive-key/x-ecdsa-p256", again).unwrap();
    assert_eq!(ok(Operation::Read, "keys/x-ecdsa-p256", json!({}))["latest_version"], 2);
    ok(Operation::Update, "keys/ed", json!({"type": "ed25519"}));
    for (body, message) in [
        (json!({"base_key_name": "a-ecdsa-p256"}), "peer public key not provided".to_string()),
        (json!({"base_key_name": "nope", "peer_public_key": pb}), "specified base key not found".to_string()),
        (json!({"base_key_name": "ed", "peer_public_key": pb}), "base key type ed25519 does not support key agreement".to_string()),
        (json!({"base_key_name": "a-ecdsa-p256", "peer_public_key": pb, "derived_key_type": "rsa-2048"}), "unknown key type rsa-2048".to_string()),
        (json!({"base_key_name": "a-ecdsa-p256", "peer_public_key": pb, "key_derivation_algorithm": "hkdf"}), "key derivation algorithm hkdf not supported".to_string()),
        (json!({"base_key_name": "a-ecdsa-p256", "peer_public_key": p384}), "base private key type ecdsa-p256 does not match peer public key curve".to_string()),
        (json!({"base_key_name": "a-ecdsa-p256", "peer_public_key": "garbage"}), "failed to parse supplied peer public key PEM: data does not contain any valid public keys".to_string()),
    ] {
        assert_eq!(bad(Operation::Update, "derive-key/z", body.clone()), message, "{body}");
    }
}
