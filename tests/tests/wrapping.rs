//! Response wrapping over raw HTTP, the real `bao` CLI and hvac: wrap, lookup, unwrap once, rewrap,
//! wrapping TTL bounds from policy.

use serde_json::{json, Value};
use tresor_tests::{bao, TestServer};

#[test]
fn wrap_lookup_unwrap_once_and_rewrap_over_http() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/wrapping/wrap", json!({"foo": "bar"})), (400, json!({"errors": ["endpoint requires response wrapping to be used"]})));

    let r = c.raw_headers("POST", "sys/wrapping/wrap", Some(br#"{"foo":"bar","n":1}"#), Some("application/json"), &[("X-Vault-Wrap-TTL", "5m")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["request_id"], "");
    assert_eq!(body["data"], Value::Null);
    let info = &body["wrap_info"];
    assert_eq!(info["ttl"], 300);
    assert_eq!(info["creation_path"], "sys/wrapping/wrap");
    let token = info["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("s."));

    // Lookup needs no other credential and does not use the token up.
    let anon = server.http("");
    let (s, look) = anon.put("sys/wrapping/lookup", json!({"token": token}));
    assert_eq!(s, 200, "{look}");
    assert_eq!(look["data"]["creation_ttl"], 300);
    assert_eq!(look["data"]["creation_path"], "sys/wrapping/wrap");
    assert_eq!(look["data"]["creation_time"], info["creation_time"]);

    // The wrapping token can do nothing else.
    let w = server.http(&token);
    assert_eq!(w.get("auth/token/lookup-self").0, 403);

    // Rewrap: a new token, the old one is gone.
    let (s, rw) = c.put("sys/wrapping/rewrap", json!({"token": token}));
    assert_eq!(s, 200, "{rw}");
    let token2 = rw["wrap_info"]["token"].as_str().unwrap().to_string();
    assert_ne!(token2, token);
    assert_eq!(rw["wrap_info"]["creation_path"], "sys/wrapping/wrap");
    assert_eq!(anon.put("sys/wrapping/lookup", json!({"token": token})).0, 400);

    let (s, un) = server.http(&token2).put("sys/wrapping/unwrap", json!({}));
    assert_eq!(s, 200, "{un}");
    assert_eq!(un["data"], json!({"foo": "bar", "n": 1}));
    assert!(un.get("foo").is_none(), "no sys/ legacy copy of unwrapped data");
    assert_eq!(server.http(&token2).put("sys/wrapping/unwrap", json!({})), (400, json!({"errors": ["wrapping token is not valid or does not exist"]})));
    assert_eq!(c.put("sys/wrapping/unwrap", json!({"token": token2})), (400, json!({"errors": ["wrapping token is not valid or does not exist"]})));
}

/// A wrapped AppRole secret ID names its accessor (`wrapped_accessor`, as Vault), a wrap TTL of 0
/// wraps nothing, and an unparsable one is refused in Vault's words.
#[test]
fn wrapped_secret_ids_name_their_accessor_and_bad_wrap_ttls_are_refused() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/auth/approle", json!({"type": "approle"})).0, 204);
    assert_eq!(c.put("auth/approle/role/r", json!({"token_policies": "p"})).0, 204);
    let r = c.raw_headers("POST", "auth/approle/role/r/secret-id", Some(b"{}"), Some("application/json"), &[("X-Vault-Wrap-TTL", "60s")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let info = r.json()["wrap_info"].clone();
    let (s, un) = server.http(info["token"].as_str().unwrap()).put("sys/wrapping/unwrap", json!({}));
    assert_eq!(s, 200, "{un}");
    assert_eq!(info["wrapped_accessor"], un["data"]["secret_id_accessor"]);
    assert!(un["data"]["secret_id"].is_string());

    let wrap = |ttl: &str| {
        let r = c.raw_headers("POST", "sys/wrapping/wrap", Some(br#"{"a":"b"}"#), Some("application/json"), &[("X-Vault-Wrap-TTL", ttl)]);
        (r.status, r.json()["errors"].clone())
    };
    assert_eq!(wrap("0"), (400, json!(["endpoint requires response wrapping to be used"])));
    assert_eq!(wrap("abc"), (400, json!(["error parsing X-Vault-Wrap-TTL header: time: invalid duration \"abc\""])));
}

#[test]
fn wrapping_ttl_bounds_come_from_policy() {
    let server = TestServer::dev();
    let c = server.root();
    c.put("sys/policies/acl/w", json!({"policy": "path \"cubbyhole/*\" { capabilities = [\"read\", \"create\", \"update\"]\n min_wrapping_ttl = \"1m\"\n max_wrapping_ttl = \"10m\" }"}));
    let t = c.put("auth/token/create", json!({"policies": ["w"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let u = server.http(&t);
    // The bounds apply to every operation on the path; an empty response stays unwrapped (204).
    assert_eq!(u.put("cubbyhole/x", json!({"v": "1"})).0, 403, "wrapping required");
    assert_eq!(u.raw_headers("PUT", "cubbyhole/x", Some(br#"{"v":"1"}"#), Some("application/json"), &[("X-Vault-Wrap-TTL", "5m")]).status, 204);
    let hdr = |ttl: &str| u.raw_headers("GET", "cubbyhole/x", None, None, &[("X-Vault-Wrap-TTL", ttl)]).status;
    assert_eq!(hdr("30s"), 403, "below min_wrapping_ttl");
    assert_eq!(hdr("1h"), 403, "above max_wrapping_ttl");
    assert_eq!(hdr("5m"), 200);
    assert_eq!(u.get("cubbyhole/x").0, 403, "wrapping required by min_wrapping_ttl");
}

#[test]
fn the_real_bao_cli_wraps_and_unwraps_once() {
    let server = TestServer::dev();
    let root = server.root_token.clone();
    let out = bao(&server, &root, &["kv", "put", "secret/w", "pw=bao-wrapped"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bao(&server, &root, &["kv", "get", "-wrap-ttl=2m", "-format=json", "secret/w"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wrapped: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = wrapped["wrap_info"]["token"].as_str().unwrap().to_string();
    assert_eq!(wrapped["wrap_info"]["ttl"], 120);
    let out = bao(&server, "", &["unwrap", "-format=json", &token]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let un: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(un["data"]["data"]["pw"], "bao-wrapped");
    let out = bao(&server, "", &["unwrap", &token]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrapping token is not valid or does not exist"));

    // bao write -wrap-ttl on token creation; the receiver unwraps with the wrapping token as its own.
    let out = bao(&server, &root, &["token", "create", "-wrap-ttl=5m", "-format=json", "-policy=default"]);
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wt = w["wrap_info"]["token"].as_str().unwrap().to_string();
    let out = bao(&server, &wt, &["unwrap", "-format=json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let un: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(un["auth"]["accessor"], w["wrap_info"]["wrapped_accessor"]);
}

#[test]
fn hvac_wraps_and_unwraps() {
    let server = TestServer::dev();
    tresor_tests::hvac(&server, "hvac_wrap.py", "hvac wrap ok");
}
