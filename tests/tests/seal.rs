//! Init, unseal, seal and health over HTTP against the real binary (SQLite storage).

use serde_json::json;
use tresor_tests::TestServer;

#[test]
fn health_reflects_uninitialised_sealed_and_active_states_with_overrides() {
    let mut server = TestServer::sqlite();
    let anon = server.http("");
    let (status, body) = anon.get("sys/health");
    assert_eq!(status, 501);
    assert_eq!(body["initialized"], false);
    assert_eq!(body["sealed"], true);
    assert_eq!(anon.get("sys/health?uninitcode=200").0, 200);
    assert_eq!(anon.raw("HEAD", "sys/health", None, None).status, 501);
    assert_eq!(anon.get("sys/init").1, json!({"initialized": false}));

    let (keys, _) = server.init(3, 2);
    assert_eq!(anon.get("sys/init").1, json!({"initialized": true}));
    let (status, body) = anon.get("sys/health");
    assert_eq!(status, 503);
    assert_eq!(body["sealed"], true);
    assert_eq!(anon.get("sys/health?sealedcode=200").0, 200);

    server.unseal(&keys[..2]);
    let (status, body) = anon.get("sys/health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["standby"], false);
    assert!(body["cluster_name"].as_str().unwrap().starts_with("vault-cluster-"));
    assert_eq!(anon.get("sys/health?activecode=201").0, 201);
    assert_eq!(anon.raw("HEAD", "sys/health", None, None).status, 200);
    assert_eq!(anon.get("sys/health?activecode=abc").0, 400);
    assert_eq!(anon.raw("DELETE", "sys/health", None, None).status, 405);
    let (status, leader) = anon.get("sys/leader");
    assert_eq!(status, 200);
    assert_eq!(leader, serde_json::json!({"ha_enabled": false}), "a server without HA, as OpenBao answers");
}

#[test]
fn init_validates_and_refuses_twice() {
    let server = TestServer::sqlite();
    let anon = server.http("");
    let (status, body) = anon.put("sys/init", json!({"secret_shares": 5, "secret_threshold": 6}));
    assert_eq!(status, 400);
    assert_eq!(body, json!({"errors": ["invalid seal configuration: threshold cannot be larger than shares"]}));
    assert_eq!(anon.get("sys/init").1["initialized"], false, "a rejected init changes nothing");

    let (status, body) = anon.put("sys/init", json!({"secret_shares": 5, "secret_threshold": 3}));
    assert_eq!(status, 200);
    let keys = body["keys"].as_array().unwrap();
    let keys_b64 = body["keys_base64"].as_array().unwrap();
    assert_eq!(keys.len(), 5);
    for (hex, b64) in keys.iter().zip(keys_b64) {
        assert_eq!(hex.as_str().unwrap().len(), 66, "33-byte shares as Vault");
        assert_eq!(b64.as_str().unwrap().len(), 44);
    }
    let token = body["root_token"].as_str().unwrap();
    assert!(token.starts_with("s.") && token.len() >= 26, "{token}");

    let (status, body) = anon.put("sys/init", json!({"secret_shares": 1, "secret_threshold": 1}));
    assert_eq!(status, 400);
    assert_eq!(body, json!({"errors": ["Vault is already initialized"]}));
}

#[test]
fn any_three_of_five_shares_unseal_and_two_do_not() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(5, 3);
    let anon = server.http("");
    let mut combos = 0;
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                let (_, s) = anon.put("sys/unseal", json!({"key": keys[a]}));
                assert_eq!((s["sealed"].clone(), s["progress"].clone(), s["t"].clone(), s["n"].clone()), (json!(true), json!(1), json!(3), json!(5)));
                let nonce = s["nonce"].as_str().unwrap().to_string();
                assert!(!nonce.is_empty());
                let (_, s) = anon.put("sys/unseal", json!({"key": keys[b]}));
                assert_eq!(s["progress"], 2, "two shares do not unseal");
                assert_eq!(s["sealed"], true);
                assert_eq!(s["nonce"], nonce.as_str());
                let (status, s) = anon.put("sys/unseal", json!({"key": keys[c]}));
                assert_eq!(status, 200);
                assert_eq!(s["sealed"], false, "shares {a},{b},{c}");
                assert_eq!(s["progress"], 0);
                assert_eq!(server.http(&root).raw("PUT", "sys/seal", None, None).status, 204);
                combos += 1;
            }
        }
    }
    assert_eq!(combos, 10);
}

#[test]
fn duplicate_share_is_ignored_reset_clears_and_base64_works() {
    let mut server = TestServer::sqlite();
    let (keys, _) = server.init(5, 3);
    let anon = server.http("");
    assert_eq!(anon.put("sys/unseal", json!({"key": keys[0]})).1["progress"], 1);
    assert_eq!(anon.put("sys/unseal", json!({"key": keys[0]})).1["progress"], 1, "duplicate ignored");
    let (status, s) = anon.put("sys/unseal", json!({"reset": true}));
    assert_eq!(status, 200);
    assert_eq!((s["progress"].clone(), s["nonce"].clone()), (json!(0), json!("")));

    let (status, body) = anon.put("sys/unseal", json!({"key": "abc"}));
    assert_eq!(status, 400);
    assert_eq!(body, json!({"errors": ["'key' must be a valid hex or base64 string"]}));
    // Well-formed text of a length no share has is refused as Vault does, and counts for nothing.
    assert_eq!(anon.put("sys/unseal", json!({"key": keys[0]})).1["progress"], 1);
    let (status, body) = anon.put("sys/unseal", json!({"key": base64(b"hello")}));
    assert_eq!((status, body), (400, json!({"errors": ["invalid key: key is shorter than minimum 16 bytes"]})));
    let (status, body) = anon.put("sys/unseal", json!({"key": base64(&[7u8; 34])}));
    assert_eq!((status, body), (400, json!({"errors": ["invalid key: key is longer than maximum 33 bytes"]})));
    assert_eq!(anon.get("sys/seal-status").1["progress"], 1, "a refused key is not a share");
    anon.put("sys/unseal", json!({"reset": true}));

    let b64 = |hex: &str| {
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        base64(&bytes)
    };
    for key in &keys[1..4] {
        anon.put("sys/unseal", json!({"key": b64(key)}));
    }
    assert_eq!(anon.get("sys/seal-status").1["sealed"], false);
}

#[test]
fn a_corrupted_share_fails_and_resets_progress() {
    let mut server = TestServer::sqlite();
    let (keys, _) = server.init(5, 3);
    let anon = server.http("");
    anon.put("sys/unseal", json!({"key": keys[0]}));
    anon.put("sys/unseal", json!({"key": keys[1]}));
    // Flip one bit of the third share's y bytes (keep the x coordinate, the last byte).
    let mut corrupted = keys[2].clone().into_bytes();
    corrupted[0] = if corrupted[0] == b'0' { b'1' } else { b'0' };
    let corrupted = String::from_utf8(corrupted).unwrap();
    let (status, body) = anon.put("sys/unseal", json!({"key": corrupted}));
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"errors": ["unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed"]})
    );
    let (_, s) = anon.get("sys/seal-status");
    assert_eq!(s["sealed"], true);
    assert_eq!(s["progress"], 0, "progress reset after a failed combination");
    server.unseal(&keys[2..5]);
}

#[test]
fn sealed_server_answers_503_except_status_endpoints() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    let client = server.http(&root);
    for (method, path) in [("GET", "sys/mounts"), ("PUT", "cubbyhole/x"), ("GET", "nosuch/mount"), ("LIST", "cubbyhole/"), ("PUT", "sys/seal")] {
        let r = client.raw(method, path, Some(b"{\"a\":\"b\"}"), Some("application/json"));
        assert_eq!(r.status, 503, "{method} {path}");
        assert_eq!(r.json(), json!({"errors": ["Vault is sealed"]}));
    }
    assert_eq!(client.get("sys/seal-status").0, 200);
    assert_eq!(client.get("sys/init").0, 200);
    assert_eq!(client.get("sys/health").0, 503);
    server.unseal(&keys);
    assert_eq!(client.get("sys/mounts").0, 200);
    assert_eq!(client.raw("PUT", "sys/seal", None, None).status, 204);
    assert_eq!(client.get("sys/mounts").0, 503);
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `sys/rotate/config` (and OpenBao's alias `sys/rotate/keyring/config`): Vault's default, partial
/// updates, its bounds refused without a change, root-only, kept across a restart and a seal.
#[test]
fn rotation_config_is_validated_persisted_and_root_only() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let read = |c: &tresor_tests::Http| {
        let (s, b) = c.get("sys/rotate/config");
        assert_eq!(s, 200, "{b}");
        b["data"].clone()
    };
    assert_eq!(read(&c), json!({"enabled": true, "interval": 0, "max_operations": 3865470566u64}));
    for (body, error) in [
        (json!({"max_operations": 5}), "max_operations must be in the range [1000000,3865470566]"),
        (json!({"max_operations": 5_000_000_000u64}), "max_operations must be in the range [1000000,3865470566]"),
        (json!({"interval": "1h"}), "interval must be greater or equal to 24h0m0s"),
        (json!({"interval": "abc"}), "Field validation failed: error converting input for field \"interval\": time: invalid duration \"abc\""),
    ] {
        let (s, b) = c.put("sys/rotate/config", body.clone());
        assert_eq!((s, &b["errors"][0]), (400, &json!(error)), "{body}");
    }
    assert_eq!(read(&c)["max_operations"], 3865470566u64, "a refused update changes nothing");
    assert_eq!(c.put("sys/rotate/config", json!({"max_operations": 2000000, "interval": "25h"})).0, 204);
    assert_eq!(c.put("sys/rotate/keyring/config", json!({"enabled": false})).0, 204);
    let want = json!({"enabled": false, "interval": "25h0m0s", "max_operations": 2000000});
    assert_eq!(read(&c), want);
    assert_eq!(c.get("sys/rotate/keyring/config").1["data"], want);

    // Root-protected, as Vault's sys/rotate/*.
    let limited = c.put("auth/token/create", json!({"policies": ["default"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&limited).get("sys/rotate/config").0, 403);
    assert_eq!(server.http(&limited).put("sys/rotate/config", json!({"enabled": true})).0, 403);

    server.terminate();
    server.start();
    server.unseal(&keys);
    assert_eq!(read(&server.http(&root)), want, "kept across a restart");
}

/// Break glass: with every root token revoked, holders of a quorum of shares generate a new one
/// (`sys/generate-root-token/*`, OpenBao 2.7's authenticated form); the token comes back under the
/// initiator's one-time pad and `sys/decode-token` recovers it.
#[test]
fn a_quorum_of_shares_generates_a_root_token() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(3, 2);
    server.unseal(&keys[..2]);
    let c = server.http(&root);
    // An operator token allowed only this ceremony (a sudo path).
    c.put("sys/policies/acl/breakglass", json!({"policy": "path \"sys/generate-root-token/*\" { capabilities = [\"read\", \"update\", \"delete\", \"sudo\"] }"}));
    // An orphan, so revoking the root token below does not take it along.
    let op = c.put("auth/token/create", json!({"policies": ["breakglass"], "no_parent": true})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let op = server.http(&op);
    let nobody = c.put("auth/token/create", json!({"policies": ["default"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&nobody).get("sys/generate-root-token/attempt").0, 403);

    let (s, st) = op.get("sys/generate-root-token/attempt");
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["data"], json!({"complete": false, "otp": "", "otp_length": 35, "progress": 0, "required": 2, "started": false}));
    let (s, started) = op.put("sys/generate-root-token/attempt", json!({}));
    assert_eq!(s, 200, "{started}");
    let otp = started["data"]["otp"].as_str().unwrap().to_string();
    let nonce = started["data"]["nonce"].as_str().unwrap().to_string();
    assert_eq!(otp.len(), 35);
    assert_eq!(op.put("sys/generate-root-token/attempt", json!({})).1["errors"][0], "root generation already in progress for this namespace");
    assert_eq!(op.get("sys/generate-root-token/attempt").1["data"]["otp"], "", "the pad is shown once");

    // Revoke the original root token: the ceremony does not depend on it.
    assert_eq!(c.put("auth/token/revoke-self", json!({})).0, 204);
    assert_eq!(c.get("auth/token/lookup-self").0, 403);

    let update = |key: &str, nonce: &str| op.put("sys/generate-root-token/update", json!({"key": key, "nonce": nonce}));
    assert_eq!(update(&keys[0], "wrong").1["errors"][0], format!("incorrect nonce supplied; nonce for this root generation operation is {nonce:?}"));
    assert_eq!(op.put("sys/generate-root-token/update", json!({"key": keys[0]})).1["errors"][0], "nonce is required");
    let (s, first) = update(&keys[0], &nonce);
    assert_eq!((s, &first["data"]["progress"], &first["data"]["complete"]), (200, &json!(1), &json!(false)), "{first}");
    assert_eq!(update(&keys[0], &nonce).1["errors"][0], "given key has already been provided during this generation operation");
    let (s, done) = update(&keys[2], &nonce);
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["data"]["complete"], true);
    let encoded = done["data"]["encoded_token"].as_str().unwrap().to_string();
    assert_eq!(op.get("sys/generate-root-token/attempt").1["data"]["started"], false, "finished attempts are gone");

    // Unauthenticated, as OpenBao's.
    let anon = server.http("");
    assert_eq!(anon.put("sys/decode-token", json!({"encoded_token": encoded})).1["errors"][0], "provided 'encoded_token' or 'otp' is empty");
    let (s, decoded) = anon.put("sys/decode-token", json!({"encoded_token": encoded, "otp": otp}));
    assert_eq!(s, 200, "{decoded}");
    let new_root = decoded["data"]["token"].as_str().unwrap().to_string();
    let (s, me) = server.http(&new_root).get("auth/token/lookup-self");
    assert_eq!(s, 200, "{me}");
    assert_eq!((&me["data"]["policies"], &me["data"]["path"], &me["data"]["display_name"]), (&json!(["root"]), &json!("auth/token/root"), &json!("root")));

    // Shares that do not make the unseal key: refused, the attempt stays open with its nonce.
    let (_, again) = op.put("sys/generate-root-token/attempt", json!({"otp": "x".repeat(35)}));
    assert_eq!(again["data"]["otp"], "", "a pad the caller chose is not echoed");
    let nonce = again["data"]["nonce"].as_str().unwrap().to_string();
    let mut bad = keys[1].clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    update(&keys[0], &nonce);
    let (s, refused) = update(&String::from_utf8(bad).unwrap(), &nonce);
    assert_eq!(s, 400, "{refused}");
    assert!(refused["errors"][0].as_str().unwrap().starts_with("root generation aborted: unable to authenticate"), "{refused}");
    let (_, st) = op.get("sys/generate-root-token/attempt");
    assert_eq!((&st["data"]["started"], &st["data"]["progress"], &st["data"]["nonce"]), (&json!(true), &json!(0), &json!(nonce)));
    assert_eq!(op.delete("sys/generate-root-token/attempt").0, 204);
    assert_eq!(op.put("sys/generate-root-token/attempt", json!({"otp": "short"})).1["errors"][0], "OTP string has incorrect length");
    // A seal ends an attempt.
    op.put("sys/generate-root-token/attempt", json!({}));
    assert_eq!(server.http(&new_root).put("sys/seal", json!({})).0, 204);
    server.unseal(&keys[1..]);
    assert_eq!(op.get("sys/generate-root-token/attempt").1["data"]["started"], false);
}

/// Rekey (`sys/rotate/root/*`, `bao operator rotate-keys`): a quorum of the current shares yields
/// new shares with a new count and threshold; the old ones stop unsealing, across a restart.
/// With `require_verification` the new shares only take effect once a quorum of them comes back.
#[test]
fn rekeying_replaces_the_shares_and_verification_gates_it() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(3, 2);
    server.unseal(&keys[..2]);
    let c = server.http(&root);
    c.put("cubbyhole/kept", json!({"v": "still here"}));
    assert_eq!(c.get("sys/rotate/root/init").1["data"], json!({"n": 0, "required": 2, "started": false, "t": 0}));
    for (body, error) in [
        (json!({"secret_shares": 1, "secret_threshold": 2}), "invalid rotate seal configuration: threshold cannot be larger than shares"),
        (json!({"secret_shares": 0, "secret_threshold": 0}), "invalid rotate seal configuration: shares must be at least one"),
        (json!({"secret_shares": 2, "secret_threshold": 1}), "invalid rotate seal configuration: threshold must be greater than one for multiple shares"),
        (json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["abc"]}), "pgp_keys is not supported by Tresor"),
    ] {
        assert_eq!(c.put("sys/rotate/root/init", body.clone()).1["errors"][0], error, "{body}");
    }
    let (s, started) = c.put("sys/rotate/root/init", json!({"secret_shares": 5, "secret_threshold": 3}));
    assert_eq!(s, 200, "{started}");
    assert_eq!((&started["data"]["n"], &started["data"]["t"], &started["data"]["required"]), (&json!(5), &json!(3), &json!(2)));
    let nonce = started["data"]["nonce"].as_str().unwrap().to_string();
    assert_eq!(c.put("sys/rotate/root/init", json!({"secret_shares": 5, "secret_threshold": 3})).1["errors"][0], "rotation already in progress");
    let update = |key: &str, nonce: &str| c.put("sys/rotate/root/update", json!({"key": key, "nonce": nonce}));
    assert_eq!(update(&keys[0], "bad").1["errors"][0], format!("incorrect nonce supplied; nonce for rotation is {nonce:?}"));
    assert_eq!(update(&keys[0], &nonce).1["data"]["progress"], 1);
    assert_eq!(update(&keys[0], &nonce).1["errors"][0], "given key has already been provided during this rotation");
    let (s, done) = update(&keys[2], &nonce);
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["data"]["complete"], true);
    let new: Vec<String> = done["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(new.len(), 5);
    assert_eq!(done["data"]["keys_base64"].as_array().unwrap().len(), 5);
    let status = server.http("").get("sys/seal-status").1;
    assert_eq!((&status["n"], &status["t"]), (&json!(5), &json!(3)));
    assert_eq!(c.get("sys/rotate/root/init").1["data"]["required"], 3);

    // Across a restart: the old shares are refused, three new ones unseal, the data is intact.
    server.terminate();
    server.start();
    let anon = server.http("");
    anon.put("sys/unseal", json!({"key": keys[0]}));
    let (s, refused) = anon.put("sys/unseal", json!({"key": keys[1]}));
    anon.put("sys/unseal", json!({"key": keys[2]}));
    let (s2, refused2) = anon.put("sys/unseal", json!({"reset": true}));
    assert_eq!(s2, 200, "{refused2}");
    assert!(s == 200 || s == 400, "{refused}");
    assert_eq!(anon.get("sys/seal-status").1["sealed"], true, "the old shares no longer unseal");
    server.unseal(&new[1..4]);
    let c = server.http(&root);
    assert_eq!(c.get("cubbyhole/kept").1["data"]["v"], "still here");

    // With verification: nothing changes until a quorum of the new shares is entered back.
    let (_, started) = c.put("sys/rotate/root/init", json!({"secret_shares": 2, "secret_threshold": 2, "require_verification": true}));
    assert_eq!(started["data"]["verification_required"], true);
    let nonce = started["data"]["nonce"].as_str().unwrap().to_string();
    for k in &new[..3] {
        c.put("sys/rotate/root/update", json!({"key": k, "nonce": nonce}));
    }
    let (_, st) = c.get("sys/rotate/root/init");
    let vnonce = st["data"]["verification_nonce"].as_str().unwrap().to_string();
    assert!(!vnonce.is_empty(), "{st}");
    let (s, pending) = c.get("sys/rotate/root/verify");
    assert_eq!(s, 200, "{pending}");
    assert_eq!(pending["data"], json!({"n": 2, "nonce": vnonce, "progress": 0, "started": true, "t": 2}));
    assert_eq!(server.http("").get("sys/seal-status").1["n"], 5, "not in effect before verification");
    // The shares of that round were only in the update answer; fetch them by restarting verification.
    assert_eq!(c.put("sys/rotate/root/update", json!({"key": new[0], "nonce": nonce})).1["errors"][0], format!("rotation already finished; verification must be performed; nonce for the verification operation is {vnonce:?}"));
    // Wrong shares fail the verification and start it over under a new nonce.
    c.put("sys/rotate/root/verify", json!({"key": new[0], "nonce": vnonce}));
    let (s, failed) = c.put("sys/rotate/root/verify", json!({"key": new[1], "nonce": vnonce}));
    assert_eq!((s, &failed["errors"][0]), (400, &json!("rotation verification failed; incorrect key shares supplied")));
    let (_, restarted) = c.delete("sys/rotate/root/verify");
    assert_ne!(restarted["data"]["nonce"], json!(vnonce));
    assert_eq!(c.delete("sys/rotate/root/init").0, 204);
    assert_eq!(c.get("sys/rotate/root/verify").1["errors"][0], "no rotation configuration found");
    assert_eq!(server.http("").get("sys/seal-status").1["n"], 5);
}

/// The same ceremony with verification completed, driving the update answers' shares back in.
#[test]
fn a_verified_rekey_takes_effect_once_the_new_shares_come_back() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let (_, started) = c.put("sys/rotate/root/init", json!({"secret_shares": 3, "secret_threshold": 2, "require_verification": true}));
    let nonce = started["data"]["nonce"].as_str().unwrap();
    let (_, done) = c.put("sys/rotate/root/update", json!({"key": keys[0], "nonce": nonce}));
    let new: Vec<String> = done["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let vnonce = done["data"]["verification_nonce"].as_str().unwrap().to_string();
    assert_eq!(c.put("sys/rotate/root/verify", json!({"key": new[2], "nonce": vnonce})).1["data"]["progress"], 1);
    let (s, verified) = c.put("sys/rotate/root/verify", json!({"key": new[0], "nonce": vnonce}));
    assert_eq!(s, 200, "{verified}");
    assert_eq!(verified["data"], json!({"complete": true, "nonce": vnonce}));
    assert_eq!(c.get("sys/rotate/root/init").1["data"], json!({"n": 0, "required": 2, "started": false, "t": 0}));
    assert_eq!(c.put("sys/seal", json!({})).0, 204);
    let anon = server.http("");
    assert_eq!(anon.put("sys/unseal", json!({"key": keys[0]})).1["progress"], 1);
    let (s, refused) = anon.put("sys/unseal", json!({"key": new[0]}));
    assert_eq!(s, 400, "the old key is not a share of the new unseal key: {refused}");
    assert_eq!(anon.get("sys/seal-status").1["sealed"], true);
    server.unseal(&new[..2]);
}
