//! The HTTP conventions of API.md §0 against the real binary: envelope, headers, verbs, tokens, bodies,
//! and bad input that must be rejected without changing stored state.

use serde_json::{json, Value};
use tresor_tests::{BaoDev, Http, TestServer, send_both};

/// The barrier's encryption counter: any storage write moves it, so "unchanged" proves "nothing stored".
fn encryptions(server: &TestServer) -> u64 {
    server.root().get("sys/key-status").1["data"]["encryptions"].as_u64().unwrap()
}

/// Send one request to OpenBao and to Tresor, assert they answer with the same status and
/// errors, and return both bodies (OpenBao's first) with the case's description.
fn same_status_and_errors(theirs: &Http, ours: &Http, method: &str, path: &str, body: Option<&Value>) -> (Value, Value, String) {
    let (tb, ob, what) = send_both(theirs, ours, method, path, body);
    assert_eq!(ob["errors"], tb["errors"], "{what}");
    (tb, ob, what)
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let server = TestServer::with_listener_extra("  max_request_size = 1024");
    let mut server = server;
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let client = server.http(&root);
    let before = encryptions(&server);

    let r = client.raw("PUT", "cubbyhole/app", Some(b"{\"a\": bad}"), Some("application/json"));
    assert_eq!(r.status, 400);
    let msg = r.json()["errors"][0].as_str().unwrap().to_string();
    assert!(msg.starts_with("failed to decode JSON input: "), "{msg}");

    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(4096));
    let r = client.raw("PUT", "cubbyhole/app", Some(big.as_bytes()), Some("application/json"));
    assert_eq!(r.status, 413);
    assert_eq!(r.json(), json!({"errors": ["http: request body too large"]}));
    // The unread rest of the body ends the connection; the client is told not to reuse it.
    assert!(r.headers.iter().any(|(k, v)| k == "connection" && v == "close"), "{:?}", r.headers);

    let r = client.raw("PUT", "nosuchmount/app", Some(b"{\"a\":\"b\"}"), Some("application/json"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"errors": ["no handler for route \"nosuchmount/app\". route entry not found."]}));

    let r = client.raw("PUT", "sys/nosuch", Some(b"{\"a\":\"b\"}"), Some("application/json"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"errors": ["1 error occurred:\n\t* unsupported path\n\n"]}));

    let r = client.raw("GET", "sys/rotate", None, None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json(), json!({"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}));
    assert_eq!(client.raw("DELETE", "sys/health", None, None).status, 405);
    assert_eq!(client.raw("OPTIONS", "cubbyhole/app", None, None).status, 405);

    let r = client.raw("PATCH", "cubbyhole/app", Some(b"a=1"), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.status, 415);
    assert_eq!(
        r.json(),
        json!({"errors": ["PATCH requires Content-Type of application/merge-patch+json, provided application/x-www-form-urlencoded"]})
    );

    assert_eq!(encryptions(&server), before, "rejected requests wrote nothing");
    assert_eq!(client.get("cubbyhole/app").0, 404);
    // The size limit is not the body parser's: a body just under it still works.
    assert_eq!(client.raw("PUT", "cubbyhole/app", Some(b"{\"a\":\"b\"}"), Some("application/json")).status, 204);
    assert_eq!(encryptions(&server), before + 1);
}

#[test]
fn envelope_headers_and_empty_responses_match_vault() {
    let server = TestServer::dev();
    let client = server.root();
    let r = client.raw("PUT", "cubbyhole/app", Some(br#"{"b":"2","a":"1"}"#), Some("application/json"));
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());

    let r = client.raw("GET", "cubbyhole/app", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.cache_control.as_deref(), Some("no-store"));
    // Key order of the envelope and sorted data, byte for byte after the request id.
    let rid = r.json()["request_id"].as_str().unwrap().to_string();
    assert_eq!(rid.len(), 36);
    assert_eq!(
        r.body,
        format!(r#"{{"request_id":"{rid}","lease_id":"","renewable":false,"lease_duration":0,"data":{{"a":"1","b":"2"}},"wrap_info":null,"warnings":null,"auth":null}}"#)
    );
    let other = client.raw("GET", "cubbyhole/app", None, None).json()["request_id"].clone();
    assert_ne!(other, json!(rid), "request ids are per request");

    // Plain not-found is 404 with an empty error list.
    let (status, body) = client.get("cubbyhole/missing");
    assert_eq!((status, body), (404, json!({"errors": []})));

    // LIST and GET ?list=true are the same.
    let (status, listed) = client.list("cubbyhole/");
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["keys"], json!(["app"]));
    assert_eq!(client.get("cubbyhole/?list=true").1["data"], listed["data"]);

    // sys/ reads duplicate data at the top level; others do not.
    let (_, mounts) = client.get("sys/mounts");
    assert_eq!(mounts["sys/"]["type"], "system");
    assert_eq!(mounts["data"]["cubbyhole/"]["type"], "cubbyhole");
    assert!(client.get("cubbyhole/app").1.get("a").is_none());

    assert_eq!(client.delete("cubbyhole/app").0, 204);
    assert_eq!(client.get("cubbyhole/app").0, 404);
}

#[test]
fn form_bodies_are_parsed_like_vault() {
    let server = TestServer::dev();
    let client = server.root();
    assert_eq!(client.raw("POST", "cubbyhole/form", Some(b"a=1&b=x%20y"), Some("application/x-www-form-urlencoded")).status, 204);
    assert_eq!(client.get("cubbyhole/form").1["data"], json!({"a": "1", "b": "x y"}));
    assert_eq!(client.raw("POST", "cubbyhole/nj", Some(b"not json"), Some("application/x-www-form-urlencoded")).status, 204);
    assert_eq!(client.get("cubbyhole/nj").1["data"], json!({"not json": ""}));
    // A form content type with a JSON-looking body is parsed as JSON.
    assert_eq!(client.raw("POST", "cubbyhole/j", Some(br#"{"k":"v"}"#), Some("application/x-www-form-urlencoded")).status, 204);
    assert_eq!(client.get("cubbyhole/j").1["data"], json!({"k": "v"}));
}

#[test]
fn tokens_come_from_either_header_and_bad_tokens_are_denied() {
    let server = TestServer::dev();
    let anon = server.http("");
    let r = anon.raw_headers("GET", "sys/mounts", None, None, &[("Authorization", &format!("Bearer {}", server.root_token))]);
    assert_eq!(r.status, 200);
    for client in [server.http(""), server.http("s.notarealtokenatallxxxxxxxxxxxxxxx"), server.http("root")] {
        let (status, body) = client.get("sys/mounts");
        assert_eq!(status, 403);
        assert_eq!(body, json!({"errors": ["permission denied"]}));
    }
    let (status, me) = server.root().get("auth/token/lookup-self");
    assert_eq!(status, 200);
    assert_eq!(me["data"]["policies"], json!(["root"]));
    // As in Vault, lookup-self shows the caller its own token (API.md §5.2); the store only holds its hash.
    assert_eq!(me["data"]["id"], Value::String(server.root_token.clone()));
}

#[test]
fn rotation_keeps_old_values_readable_and_moves_new_writes_to_the_new_term() {
    let server = TestServer::dev();
    let client = server.root();
    client.put("cubbyhole/before", json!({"v": "old"}));
    let term = |c: &tresor_tests::Http| c.get("sys/key-status").1["data"]["term"].as_u64().unwrap();
    assert_eq!(term(&client), 1);
    assert_eq!(client.raw("PUT", "sys/rotate", None, None).status, 204);
    assert_eq!(term(&client), 2);
    let (_, status) = client.get("sys/key-status");
    assert_eq!(status["data"]["encryptions"], 0, "the new term starts counting afresh");
    client.put("cubbyhole/after", json!({"v": "new"}));
    assert_eq!(client.get("sys/key-status").1["data"]["encryptions"], 1, "the write used the new term");
    assert_eq!(client.get("cubbyhole/before").1["data"]["v"], "old");
    assert_eq!(client.get("cubbyhole/after").1["data"]["v"], "new");
}

/// The same `sys/` (and token role) requests to OpenBao and to Tresor: status, error text, warnings and the top-level
/// shape (Vault copies `data` to the top level only on its older endpoints) agree.
#[test]
fn sys_edge_cases_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    let server = TestServer::dev();
    let ours = server.root();
    let cases: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/mounts/x", Some(json!({"type": "kv-v2"}))),
        ("POST", "sys/mounts/bad", Some(json!({}))),
        ("POST", "sys/mounts/sys", Some(json!({"type": "kv"}))),
        ("POST", "sys/mounts/x/tune", Some(json!({"default_lease_ttl": "bogus"}))),
        ("POST", "sys/mounts/x/tune", Some(json!({"default_lease_ttl": "1h", "max_lease_ttl": "30m"}))),
        ("GET", "sys/mounts/x/tune", None),
        ("GET", "sys/mounts/nonexistent", None),
        ("POST", "sys/mounts/nonexistent/tune", Some(json!({"description": "x"}))),
        ("POST", "sys/plugins/catalog/secret/mine", Some(json!({"command": "nope"}))),
        ("POST", "sys/plugins/catalog/secret/mine", Some(json!({"sha256": "00", "command": "nope"}))),
        ("GET", "sys/internal/ui/mounts/nonexistent", None),
        ("GET", "sys/internal/ui/mounts/x", None),
        ("GET", "sys/policies/acl/default", None),
        ("POST", "sys/tools/random/8", Some(json!({"format": "hex"}))),
        ("POST", "sys/tools/random", Some(json!({"bytes": 0}))),
        ("POST", "sys/tools/hash/sha3-256", Some(json!({"input": "YWJj"}))),
        ("POST", "sys/tools/hash", Some(json!({"input": "YWJj", "algorithm": "md5"}))),
        ("POST", "x/data/a", Some(json!({"data": "not a map"}))),
        ("POST", "x/destroy/a", Some(json!({}))),
        ("POST", "sys/remount", Some(json!({"from": "x", "to": "y"}))),
        ("POST", "auth/token/roles/r1", Some(json!({"allowed_policies": ["default"], "orphan": true}))),
        ("GET", "auth/token/roles/r1", None),
        ("POST", "auth/token/create", Some(json!({"ttl": "bogus"}))),
        ("GET", "sys/plugins/catalog/secret/kv", None),
        ("LIST", "sys/plugins/catalog/database", None),
        ("GET", "sys/plugins/catalog/database/postgresql-database-plugin", None),
        ("GET", "sys/internal/specs/openapi", None),
        ("GET", "sys/leader", None),
        ("GET", "sys/health", None),
        ("POST", "auth/token/tidy", Some(json!({}))),
        // Token API edges (found by random sequences against OpenBao).
        ("POST", "auth/token/lookup", Some(json!({"token": ""}))),
        ("POST", "auth/token/renew", Some(json!({}))),
        ("POST", "auth/token/renew", Some(json!({"token": "bogus"}))),
        ("POST", "auth/token/revoke", Some(json!({}))),
        ("POST", "auth/token/revoke-orphan", Some(json!({"token": "bogus"}))),
        ("POST", "auth/token/renew-self", Some(json!({"increment": "bogus"}))),
        ("POST", "auth/token/roles/sfx", Some(json!({"path_suffix": "x"}))),
        ("POST", "auth/token/roles/sfx", Some(json!({"path_suffix": "ok/fine"}))),
        ("POST", "auth/token/roles/cidr", Some(json!({"token_bound_cidrs": ["bogus"]}))),
        ("POST", "auth/token/roles/ali", Some(json!({"allowed_entity_aliases": ["A", "b", "a"]}))),
        ("GET", "auth/token/roles/ali", None),
        ("POST", "auth/token/roles/dis", Some(json!({"disallowed_policies": ["p2"]}))),
        ("POST", "auth/token/create/dis", Some(json!({"policies": ["p2"]}))),
        ("POST", "auth/token/create", Some(json!({"num_uses": -1, "ttl": "-1"}))),
        ("POST", "auth/token/create", Some(json!({"ttl": "-1"}))),
        ("POST", "auth/token/create", Some(json!({"num_uses": -1, "type": "bogus"}))),
        ("POST", "sys/auth/approle", Some(json!({"type": "approle"}))),
        // Field conversion errors: Go's texts, "Field validation failed: " where the path has no
        // existence check (Vault validates there), without it where it has one.
        ("POST", "sys/mounts/transit", Some(json!({"type": "transit"}))),
        ("POST", "transit/keys/a", Some(json!({"exportable": "notabool"}))),
        ("POST", "transit/keys/a", Some(json!({"auto_rotate_period": "1x"}))),
        ("POST", "transit/keys/a", Some(json!({"auto_rotate_period": true}))),
        ("POST", "transit/encrypt/a", Some(json!({"plaintext": "aGk=", "key_version": "x"}))),
        ("POST", "x/config", Some(json!({"delete_version_after": "bogus"}))),
        ("POST", "x/metadata/m", Some(json!({"max_versions": "x"}))),
        ("POST", "x/metadata/m", Some(json!({"custom_metadata": "x"}))),
        ("POST", "auth/approle/role/r", Some(json!({"token_ttl": "bogus"}))),
        ("POST", "auth/approle/tidy/secret-id", Some(json!({}))),
        ("POST", "sys/tools/random/seal/8", Some(json!({}))),
        ("POST", "sys/tools/random/8/seal", Some(json!({}))),
        ("POST", "sys/tools/random", Some(json!({"bytes": 200000}))),
        ("POST", "sys/capabilities-accessor", Some(json!({"accessor": "nope", "paths": ["x"]}))),
        ("POST", "sys/capabilities-accessor", Some(json!({"paths": ["x"]}))),
        ("POST", "sys/capabilities", Some(json!({"token": "nope", "paths": ["x"]}))),
        ("POST", "sys/plugins/reload/backend", Some(json!({}))),
        ("POST", "sys/plugins/reload/backend", Some(json!({"plugin": "kv", "mounts": ["x/"]}))),
        ("POST", "sys/plugins/reload/backend", Some(json!({"plugin": "nope"}))),
        ("POST", "sys/mounts/pv", Some(json!({"type": "kv", "config": {"plugin_version": "v9.9.9"}}))),
        ("POST", "sys/mounts/pv", Some(json!({"type": "kv-v2", "config": {"plugin_version": "banana"}}))),
        ("POST", "sys/auth/pv", Some(json!({"type": "userpass", "config": {"plugin_version": "v1.0.0"}}))),
        // A top-level plugin_version is not read.
        ("POST", "sys/mounts/pv", Some(json!({"type": "kv", "plugin_version": "v9.9.9"}))),
        ("GET", "sys/rotate/config", None),
        ("POST", "sys/rotate/config", Some(json!({"max_operations": 0}))),
        ("POST", "sys/rotate/config", Some(json!({"interval": "2h"}))),
        ("POST", "sys/rotate/keyring/config", Some(json!({"interval": "48h", "max_operations": "3000000"}))),
        ("GET", "sys/rotate/config", None),
        ("POST", "sys/rotate/config", Some(json!({"interval": 0}))),
        ("GET", "sys/rotate/keyring/config", None),
        ("GET", "sys/rekey/init", None),
        ("PUT", "sys/rekey/init", Some(json!({"secret_shares": 1, "secret_threshold": 1}))),
        ("PUT", "sys/rekey/update", Some(json!({"key": "aa", "nonce": "x"}))),
        ("GET", "sys/generate-root/attempt", None),
        ("PUT", "sys/generate-root/attempt", Some(json!({}))),
        ("DELETE", "sys/generate-root/attempt", None),
        ("GET", "sys/rekey/backup", None),
        ("DELETE", "sys/rekey/backup", None),
        ("PUT", "sys/step-down", None),
        ("GET", "sys/ha-status", None),
        ("LIST", "sys/version-history", None),
        ("POST", "sys/config/auditing/request-headers/X-Custom-A", Some(json!({"hmac": true}))),
        ("POST", "sys/config/auditing/request-headers/X-Plain", Some(json!({}))),
        ("GET", "sys/config/auditing/request-headers", None),
        ("GET", "sys/config/auditing/request-headers/x-custom-a", None),
        ("GET", "sys/config/auditing/request-headers/nope", None),
        ("DELETE", "sys/config/auditing/request-headers/x-plain", None),
        ("DELETE", "sys/config/auditing/request-headers/never", None),
        ("POST", "auth/token/create", Some(json!({"policies": ["nope", "default"]}))),
        ("POST", "auth/token/create", Some(json!({"policies": ["nope2"], "no_default_policy": true}))),
        ("PUT", "sys/policy/r1", Some(json!({"rules": "path \"a\" { capabilities = [\"read\"] }"}))),
        ("PUT", "sys/policy/r2", Some(json!({"rules": "path \"a\" { capabilities = [\"read\"] }", "policy": "path \"b\" { capabilities = [\"read\"] }"}))),
        ("GET", "sys/policy/r2", None),
        ("PUT", "sys/policies/acl/r3", Some(json!({"rules": "path \"a\" { capabilities = [\"read\"] }"}))),
    ];
    for (method, path, body) in &cases {
        let (tb, ob, what) = same_status_and_errors(&theirs, &ours, method, path, body.as_ref());
        if !matches!(*path, "sys/remount" | "auth/token/tidy" | "auth/approle/tidy/secret-id") {
            // (remount's and tidy's warnings name the server: "OpenBao's server log" there.)
            assert_eq!(ob["warnings"], tb["warnings"], "{what}");
        }
        let keys = |b: &Value| b.as_object().map(|m| m.keys().filter(|k| *k != "mount_type").cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&ob), keys(&tb), "{what}: top-level keys");
        let data_keys = |b: &Value| b["data"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(data_keys(&ob), data_keys(&tb), "{what}: data keys");
        if path.starts_with("sys/tools/hash") || path.starts_with("sys/rotate/") || path.starts_with("sys/config/auditing/") {
            assert_eq!(ob["data"], tb["data"], "{what}");
        }
    }
}

/// Vault's per-mount config fields (`listing_visibility`, `audit_non_hmac_*_keys`, header lists,
/// an auth mount's `token_type`), `local`/`seal_wrap`, tuning the core's own mounts, and the
/// unauthenticated `sys/internal/ui/mounts`, each compared with a real OpenBao.
#[test]
fn mount_config_fields_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    let server = TestServer::dev();
    let ours = server.root();
    // Everything but what names one server's instance (uuids, accessors, versions, request ids).
    fn comparable(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "request_id" | "accessor" | "uuid" | "running_plugin_version" | "identity/" | "mount_type"))
                    .map(|(k, x)| (k.clone(), comparable(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let cases: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "sys/mounts/u", Some(json!({"type": "kv-v2", "config": {"listing_visibility": "unauth", "audit_non_hmac_request_keys": ["a"], "audit_non_hmac_response_keys": "b,c", "passthrough_request_headers": ["X-A"], "allowed_response_headers": ["X-B"]}, "description": "d"}))),
        ("POST", "sys/mounts/h", Some(json!({"type": "kv", "config": {"listing_visibility": "hidden", "force_no_cache": true}, "local": true, "seal_wrap": true}))),
        ("POST", "sys/mounts/h2", Some(json!({"type": "kv", "config": {"force_no_cache": "yes"}}))),
        ("POST", "sys/mounts/bad", Some(json!({"type": "kv", "config": {"listing_visibility": "nope"}}))),
        ("POST", "sys/auth/up", Some(json!({"type": "userpass", "config": {"listing_visibility": "unauth"}}))),
        ("GET", "sys/mounts/u", None),
        ("GET", "sys/mounts/u/tune", None),
        ("GET", "sys/mounts/h", None),
        ("GET", "sys/mounts/h/tune", None),
        ("GET", "sys/auth/up/tune", None),
        ("POST", "sys/mounts/u/tune", Some(json!({"listing_visibility": "hidden", "audit_non_hmac_request_keys": [], "passthrough_request_headers": 5}))),
        ("GET", "sys/mounts/u/tune", None),
        ("POST", "sys/mounts/u/tune", Some(json!({"listing_visibility": "bogus"}))),
        ("POST", "sys/mounts/h/tune", Some(json!({"token_type": "service"}))),
        ("POST", "sys/mounts/h/tune", Some(json!({"force_no_cache": false}))),
        ("GET", "sys/mounts/h/tune", None),
        ("POST", "sys/auth/up/tune", Some(json!({"token_type": "nope"}))),
        ("POST", "sys/auth/up/tune", Some(json!({"token_type": "service", "audit_non_hmac_request_keys": "x,y"}))),
        ("GET", "sys/auth/up/tune", None),
        ("POST", "sys/mounts/sys/tune", Some(json!({"description": "mine"}))),
        ("POST", "sys/mounts/cubbyhole/tune", Some(json!({"default_lease_ttl": "1h"}))),
        ("POST", "sys/mounts/sys/tune", Some(json!({"audit_non_hmac_request_keys": ["k"]}))),
        ("GET", "sys/mounts/sys/tune", None),
        ("GET", "sys/mounts/cubbyhole/tune", None),
        ("POST", "sys/auth/token/tune", Some(json!({"token_type": "batch"}))),
        ("POST", "sys/auth/token/tune", Some(json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "tokens", "listing_visibility": "unauth"}))),
        ("GET", "sys/auth/token/tune", None),
        ("POST", "auth/token/create", Some(json!({"policies": ["default"]}))),
        ("POST", "auth/token/create", Some(json!({"policies": ["default"], "ttl": "5h"}))),
        // `"options": null` (what `bao auth enable` sends) reads back as null, absent as {}.
        ("POST", "sys/auth/a1", Some(json!({"type": "userpass", "options": null}))),
        ("POST", "sys/mounts/m1", Some(json!({"type": "kv", "options": null}))),
        ("GET", "sys/auth/a1", None),
        ("GET", "sys/mounts/m1", None),
        ("GET", "sys/mounts", None),
        ("GET", "sys/auth", None),
    ];
    for (method, path, body) in &cases {
        let (tb, ob, what) = same_status_and_errors(&theirs, &ours, method, path, body.as_ref());
        if *path == "auth/token/create" {
            // Capped by the token mount's tuned TTLs: 1h by default, 2h at most.
            assert_eq!(ob["auth"]["lease_duration"], tb["auth"]["lease_duration"], "{what}");
            continue;
        }
        assert_eq!(comparable(&ob["data"]), comparable(&tb["data"]), "{what}");
    }
    assert_eq!(ours.put("auth/token/create", json!({"ttl": "5h"})).1["auth"]["lease_duration"], 7200);

    // With the root token: every secrets mount (Tresor has no `identity/`). (A fresh OpenBao
    // leaves `sys/` out until the system mount is tuned, as it is above; Tresor always lists it.)
    let secret_mounts = |b: &Value| -> Vec<String> {
        b["data"]["secret"].as_object().map(|m| m.keys().filter(|k| *k != "identity/").cloned().collect()).unwrap_or_default()
    };
    let (_, tb) = theirs.send("GET", "sys/internal/ui/mounts", None);
    let (_, ob) = ours.send("GET", "sys/internal/ui/mounts", None);
    assert_eq!(secret_mounts(&ob), secret_mounts(&tb));

    // Without a token, only the mounts tuned `unauth` are listed, with type, description and
    // options; a bad token is refused.
    for token in ["", "not-a-token"] {
        let (ts, tb) = theirs.with_token(token).send("GET", "sys/internal/ui/mounts", None);
        let (os, ob) = server.http(token).send("GET", "sys/internal/ui/mounts", None);
        assert_eq!(os, ts, "token {token:?}: OpenBao said {tb}, Tresor {ob}");
        assert_eq!(comparable(&ob["data"]), comparable(&tb["data"]), "token {token:?}");
    }
    let (_, listed) = server.http("").send("GET", "sys/internal/ui/mounts", None);
    assert_eq!(listed["data"], json!({"secret": {}, "auth": {"up/": {"type": "userpass", "description": "", "options": {}}, "token/": {"type": "token", "description": "tokens", "options": null}}}));

    // The settings survive a restart of a durable server (the core mounts' tunes included).
    let mut durable = TestServer::sqlite();
    let (keys, root) = durable.init(1, 1);
    durable.unseal(&keys);
    let c = durable.http(&root);
    assert_eq!(c.put("sys/mounts/kept", json!({"type": "kv", "config": {"listing_visibility": "unauth", "audit_non_hmac_request_keys": ["a"]}, "local": true})).0, 204);
    assert_eq!(c.put("sys/auth/token/tune", json!({"max_lease_ttl": "3h"})).0, 204);
    assert_eq!(c.put("sys/mounts/cubbyhole/tune", json!({"audit_non_hmac_response_keys": ["r"]})).0, 204);
    durable.terminate();
    durable.start();
    durable.unseal(&keys);
    let c = durable.http(&root);
    let kept = c.get("sys/mounts/kept").1;
    assert_eq!((kept["local"].clone(), kept["config"]["listing_visibility"].clone(), kept["config"]["audit_non_hmac_request_keys"].clone()), (json!(true), json!("unauth"), json!(["a"])));
    assert_eq!(c.get("sys/auth/token/tune").1["max_lease_ttl"], 10800);
    assert_eq!(c.get("sys/mounts/cubbyhole/tune").1["audit_non_hmac_response_keys"], json!(["r"]));
    assert_eq!(c.put("auth/token/create", json!({"ttl": "5h"})).1["auth"]["lease_duration"], 10800);
}

/// `sys/config/cors` as Vault's: off by default (a preflight is 405), on with origins (a preflight
/// is answered with the allowed headers and methods, an allowed origin is named on every answer,
/// another origin is refused), off again on delete; the same answers as a real OpenBao.
#[test]
fn cors_is_configured_and_enforced_as_openbao_does() {
    let bao = BaoDev::start();
    let server = TestServer::dev();
    for (c, ours) in [(bao.http(), false), (server.root(), true)] {
        let preflight = |origin: &str| c.raw_headers("OPTIONS", "sys/health", None, None, &[("Origin", origin), ("Access-Control-Request-Method", "GET")]);
        assert_eq!(preflight("http://a.example").status, 405, "off by default");
        assert_eq!(c.get("sys/config/cors").1["data"], json!({"enabled": false}));
        // OpenBao answers these refusals 500; Tresor 400 (bad input, nothing changed).
        let refusal = if ours { 400 } else { 500 };
        let (s, e) = c.put("sys/config/cors", json!({"allowed_origins": ["*", "http://x"]}));
        assert_eq!((s, &e["errors"][0]), (refusal, &json!("1 error occurred:\n\t* to allow all origins the '*' must be the only value for allowed_origins\n\n")));
        let (s, e) = c.put("sys/config/cors", json!({"enabled": true}));
        assert_eq!((s, &e["errors"][0]), (refusal, &json!("1 error occurred:\n\t* at least one origin or the wildcard must be provided\n\n")));
        assert_eq!(c.put("sys/config/cors", json!({"allowed_origins": "http://a.example,http://b.example", "allowed_headers": "X-Custom"})).0, 204);
        let (_, read) = c.get("sys/config/cors");
        assert_eq!(read["data"]["enabled"], true);
        assert_eq!(read["data"]["allowed_origins"], json!(["http://a.example", "http://b.example"]));
        assert_eq!(read["data"]["allowed_headers"].as_array().unwrap().last().unwrap(), "X-Custom");
        assert_eq!(read["data"]["allowed_headers"][2], "X-Vault-Token");

        let ok = preflight("http://a.example");
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("access-control-allow-origin"), Some("http://a.example"));
        assert_eq!(ok.header("access-control-allow-methods"), Some("DELETE,GET,OPTIONS,POST,PUT,LIST,SCAN"));
        assert_eq!(ok.header("access-control-max-age"), Some("300"));
        assert!(ok.header("access-control-allow-headers").unwrap().ends_with(",X-Custom"));
        let refused = preflight("http://evil.example");
        assert_eq!((refused.status, refused.json()), (403, json!({"errors": ["origin not allowed"]})));
        let get = c.raw_headers("GET", "sys/health", None, None, &[("Origin", "http://b.example")]);
        assert_eq!((get.status, get.header("access-control-allow-origin"), get.header("vary")), (200, Some("http://b.example"), Some("Origin")));
        assert_eq!(c.raw_headers("GET", "sys/health", None, None, &[("Origin", "http://evil.example")]).status, 403);
        assert_eq!(c.raw_headers("GET", "sys/health", None, None, &[]).header("access-control-allow-origin"), None, "no Origin, no CORS");

        assert_eq!(c.delete("sys/config/cors").0, 204);
        assert_eq!(c.get("sys/config/cors").1["data"], json!({"enabled": false}));
        assert_eq!(preflight("http://a.example").status, 405);
    }
}

/// `sys/loggers` as Vault's: every logger's level, changed for all or one while running (and
/// taking effect: a filtered line is not written), reset to the configured level; root-only.
#[test]
fn log_levels_change_at_run_time() {
    let server = TestServer::dev();
    let c = server.root();
    let (s, all) = c.get("sys/loggers");
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["data"]["core"], "info");
    assert!(all["data"].as_object().unwrap().len() >= 5, "{all}");
    let limited = c.put("auth/token/create", json!({"policies": ["default"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&limited).get("sys/loggers").0, 403);
    assert_eq!(c.put("sys/loggers", json!({})).1["errors"][0], "level is required");
    assert_eq!(c.put("sys/loggers", json!({"level": "off"})).1["errors"][0], "invalid level provided: unknown log level: off");
    assert_eq!(c.put("sys/loggers/nope", json!({"level": "warn"})).1["errors"][0], "logger \"nope\" not found");
    assert_eq!(c.get("sys/loggers/nope").1["data"], json!({}));

    let changed = || server.log().matches("log level changed").count();
    assert_eq!(c.put("sys/loggers", json!({"level": "error"})).0, 204);
    assert_eq!(changed(), 0, "logged at info, filtered at error");
    assert_eq!(c.get("sys/loggers").1["data"]["http"], "error");
    assert_eq!(c.put("sys/loggers/core", json!({"level": "WARNING"})).0, 204);
    assert_eq!(c.get("sys/loggers/core").1["data"], json!({"core": "warn"}));
    assert_eq!(c.put("sys/loggers/core", json!({"level": "info"})).0, 204);
    assert_eq!(changed(), 1, "core at info writes it");
    assert_eq!(c.delete("sys/loggers/core").0, 204);
    assert_eq!(c.get("sys/loggers/core").1["data"], json!({"core": "error"}));
    assert_eq!(c.delete("sys/loggers").0, 204);
    assert_eq!(c.get("sys/loggers").1["data"]["http"], "info", "back to the configured level");
}

/// `sys/policies/password`: the same answers as OpenBao (status and errors), and generated
/// passwords that meet the policy's rules.
#[test]
fn password_policies_answer_as_openbao_does() {
    let bao = BaoDev::start();
    let theirs = bao.http();
    let server = TestServer::dev();
    let ours = server.root();
    let policy = "length = 20\nrule \"charset\" {\n  charset = \"abcdefghijklmnopqrstuvwxyz\"\n  min-chars = 1\n}\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 5\n}\n";
    let cases: Vec<(&str, &str, Option<Value>)> = vec![
        ("LIST", "sys/policies/password", None),
        ("GET", "sys/policies/password/nope", None),
        ("GET", "sys/policies/password/nope/generate", None),
        ("PUT", "sys/policies/password/p1", Some(json!({"policy": policy}))),
        ("GET", "sys/policies/password/p1", None),
        ("LIST", "sys/policies/password", None),
        ("PUT", "sys/policies/password/p2", Some(json!({}))),
        ("PUT", "sys/policies/password/p2", Some(json!({"policy": "length = 3\nrule \"charset\" { charset = \"ab\" }"}))),
        ("PUT", "sys/policies/password/p2", Some(json!({"policy": "length = 8"}))),
        ("PUT", "sys/policies/password/p2", Some(json!({"policy": "length = 4\nrule \"charset\" { charset = \"ab\" min-chars = 3 }\nrule \"charset\" { charset = \"12\" min-chars = 2 }"}))),
        ("PUT", "sys/policies/password/p2", Some(json!({"policy": "length = 8\nrule \"nope\" { charset = \"ab\" }"}))),
        // Base64 of `length = 8` with one charset rule.
        ("PUT", "sys/policies/password/p2", Some(json!({"policy": "bGVuZ3RoID0gOApydWxlICJjaGFyc2V0IiB7IGNoYXJzZXQgPSAiYWIiIH0="}))),
        ("GET", "sys/policies/password/p2", None),
        ("DELETE", "sys/policies/password/p2", None),
        ("GET", "sys/policies/password/p2", None),
        ("DELETE", "sys/policies/password/never", None),
    ];
    for (method, path, body) in &cases {
        let (tb, ob, what) = same_status_and_errors(&theirs, &ours, method, path, body.as_ref());
        assert_eq!(ob["data"], tb["data"], "{what}");
    }
    for _ in 0..20 {
        let (s, b) = ours.send("GET", "sys/policies/password/p1/generate", None);
        assert_eq!(s, 200, "{b}");
        let password = b["data"]["password"].as_str().unwrap().to_string();
        assert_eq!(password.len(), 20);
        assert!(password.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{password}");
        assert!(password.chars().filter(char::is_ascii_digit).count() >= 5, "{password}");
    }
}
