//! API.md §16.3: the 38 policy cases and the 12 precedence checks verified against real OpenBao 2.7.2,
//! replayed table-driven against the real binary over HTTP with tokens carrying exactly those policies.

use serde_json::{json, Value};
use tresor_tests::{Http, TestServer};

const PA: &str = r#"
path "secret/data/*"          { capabilities = ["read", "list"] }
path "secret/data/team/*"     { capabilities = ["create", "update"] }
path "secret/data/team/*"     { capabilities = ["create", "update"] }
path "secret/data/+/config"   { capabilities = ["create", "read", "update", "delete"] }
path "secret/data/blocked/*"  { capabilities = ["deny"] }
path "secret/data/prefix*"    { capabilities = ["patch", "read"] }
path "secret/metadata/*"      { capabilities = ["list"] }
path "kv1/params"   { capabilities = ["create","update"]  allowed_parameters = { "foo" = [], "bar" = ["a","b"] } }
path "kv1/denied"   { capabilities = ["create","update"]  denied_parameters  = { "secret" = [] } }
path "kv1/required" { capabilities = ["create","update"]  required_parameters = ["must"] }
path "kv1/wrapped"  { capabilities = ["read"]  min_wrapping_ttl = "1m"  max_wrapping_ttl = "10m" }
path "auth/token/accessors"  { capabilities = ["list"] }
"#;
const PB: &str = r#"
path "secret/data/team/*" { capabilities = ["read"] }
path "secret/data/other"  { capabilities = ["read"] }
path "kv1/*"              { capabilities = ["read", "list"] }
"#;
const PC: &str = r#"{"path":{"secret/data/other":{"capabilities":["deny"]},"kv1/sudo":{"capabilities":["read","sudo"]}}}"#;
const PD: &str = r#"
path "secret/data/blocked/*" { capabilities = ["deny"] }
path "kv1/any"     { capabilities = ["create","update"]  allowed_parameters = { "*" = [] }  denied_parameters = { "password" = [] } }
path "kv1/globval" { capabilities = ["create","update"]  allowed_parameters = { "env" = ["dev-*", "qa"] } }
"#;
const PE: &str = r#"path "secret/data/blocked/ok" { capabilities = ["read"] }"#;
const PF: &str = r#"
path "kv1/c/*" { capabilities = ["create"] }
path "auth/token/accessors" { capabilities = ["list", "sudo"] }
"#;
const PP: &str = r#"
path "p/+/foo"      { capabilities = ["create"] }
path "p/data/*"     { capabilities = ["read"] }
path "p/data/fo*"   { capabilities = ["update"] }
path "p/data/+/+"   { capabilities = ["list"] }
path "p/data/+/bar" { capabilities = ["delete"] }
path "p/x/*"        { capabilities = ["read"] }
path "p/x/y"        { capabilities = ["update"] }
path "p/+/*"        { capabilities = ["sudo", "read"] }
"#;

fn setup() -> (TestServer, Http) {
    let server = TestServer::dev();
    let root = server.root();
    for (name, text) in [("pa", PA), ("pb", PB), ("pc", PC), ("pd", PD), ("pe", PE), ("pf", PF), ("pp", PP)] {
        let (s, b) = root.put(&format!("sys/policies/acl/{name}"), json!({ "policy": text }));
        assert_eq!(s, 204, "{name}: {b}");
    }
    assert_eq!(root.put("sys/mounts/kv1", json!({"type": "kv"})).0, 204);
    for p in ["x", "team/x", "app/config", "blocked/x", "blocked/ok", "prefixed", "other"] {
        assert_eq!(root.put(&format!("secret/data/{p}"), json!({"data": {"v": p}})).0, 200);
    }
    for p in ["sudo", "wrapped"] {
        assert_eq!(root.put(&format!("kv1/{p}"), json!({"v": p})).0, 204);
    }
    (server, root)
}

fn token(server: &TestServer, root: &Http, policies: &[&str]) -> Http {
    let (s, b) = root.put("auth/token/create", json!({ "policies": policies }));
    assert_eq!(s, 200, "{b}");
    server.http(b["auth"]["client_token"].as_str().unwrap())
}

#[test]
fn the_38_verified_policy_cases() {
    let (server, root) = setup();
    let merge = "application/merge-patch+json";
    // (case, policies, method, path, body, extra header, expected status)
    type Case<'a> = (u32, &'a [&'a str], &'a str, &'a str, Option<Value>, Option<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        (1, &["pa"], "GET", "secret/data/x", None, None, 200),
        (2, &["pa"], "POST", "secret/data/x", Some(json!({"data": {"a": 1}})), None, 403),
        (3, &["pa"], "GET", "secret/data/team/x", None, None, 403),
        (4, &["pa"], "POST", "secret/data/team/new", Some(json!({"data": {"a": 1}})), None, 200),
        (5, &["pa", "pb"], "GET", "secret/data/team/x", None, None, 200),
        (6, &["pa"], "GET", "secret/data/app/config", None, None, 200),
        (6, &["pa"], "DELETE", "secret/data/app/config", None, None, 204),
        (7, &["pa"], "GET", "secret/data/a/b/config", None, None, 404),
        (8, &["pa"], "GET", "secret/data/blocked/x", None, None, 403),
        (9, &["pa"], "GET", "secret/data/prefixed", None, None, 200),
        (10, &["pa"], "PATCH", "secret/data/prefixed", Some(json!({"data": {"b": 2}})), None, 200),
        (11, &["pa"], "PATCH", "secret/data/x", Some(json!({"data": {"b": 2}})), None, 403),
        (12, &["pa"], "LIST", "secret/metadata/", None, None, 200),
        (12, &["pa"], "GET", "secret/metadata/?list=true", None, None, 200),
        (13, &["pa"], "GET", "secret/metadata/x", None, None, 403),
        (14, &["pa"], "POST", "kv1/params", Some(json!({"foo": "anything", "bar": "a"})), None, 204),
        (15, &["pa"], "POST", "kv1/params", Some(json!({"foo": "anything", "bar": "c"})), None, 403),
        (16, &["pa"], "POST", "kv1/params", Some(json!({"baz": "x"})), None, 403),
        (17, &["pa"], "POST", "kv1/denied", Some(json!({"ok": "x"})), None, 204),
        (18, &["pa"], "POST", "kv1/denied", Some(json!({"ok": "x", "secret": "y"})), None, 403),
        (19, &["pa"], "POST", "kv1/required", Some(json!({"other": "x"})), None, 403),
        (20, &["pa"], "POST", "kv1/required", Some(json!({"must": "x"})), None, 204),
        (21, &["pa"], "GET", "kv1/wrapped", None, None, 403),
        (22, &["pa"], "GET", "kv1/wrapped", None, Some(("X-Vault-Wrap-TTL", "30s")), 403),
        (24, &["pa"], "GET", "kv1/wrapped", None, Some(("X-Vault-Wrap-TTL", "20m")), 403),
        (25, &["pa"], "LIST", "auth/token/accessors", None, None, 403),
        (26, &["pf"], "LIST", "auth/token/accessors", None, None, 200),
        (27, &["pa", "pb"], "GET", "secret/data/other", None, None, 200),
        (28, &["pa", "pb", "pc"], "GET", "secret/data/other", None, None, 403),
        (29, &["pa", "pb", "pc"], "GET", "kv1/sudo", None, None, 200),
        (30, &["pa"], "PUT", "sys/policies/acl/x", Some(json!({"policy": PE})), None, 403),
        (31, &["pd", "pe"], "GET", "secret/data/blocked/ok", None, None, 200),
        (32, &["pd", "pe"], "GET", "secret/data/blocked/other", None, None, 403),
        (33, &["pd"], "POST", "kv1/any", Some(json!({"x": "1", "y": "2"})), None, 204),
        (34, &["pd"], "POST", "kv1/any", Some(json!({"x": "1", "password": "p"})), None, 403),
        (35, &["pd"], "POST", "kv1/globval", Some(json!({"env": "dev-eu"})), None, 204),
        (36, &["pd"], "POST", "kv1/globval", Some(json!({"env": "prod"})), None, 403),
        (37, &["pf"], "POST", "kv1/c/new", Some(json!({"a": "1"})), None, 204),
        (38, &["pf"], "POST", "kv1/c/new", Some(json!({"a": "2"})), None, 403),
    ];
    let mut failures = Vec::new();
    for (n, policies, method, path, body, header, want) in cases {
        let client = token(&server, &root, policies);
        let body_text = body.as_ref().map(|b| b.to_string());
        let ct = if method == "PATCH" { Some(merge) } else { body.as_ref().map(|_| "application/json") };
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let r = client.raw_headers(method, path, body_text.as_deref().map(str::as_bytes), ct, &headers);
        if r.status != want {
            failures.push(format!("case {n}: {method} {path} with {policies:?}: got {} want {want}: {}", r.status, r.body));
        }
        if want == 403 && r.status == 403 {
            assert_eq!(r.json(), json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}), "case {n}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Case 38's refused overwrite changed nothing.
    assert_eq!(root.get("kv1/c/new").1["data"], json!({"a": "1"}));
}

/// Case 23 is the one allowed wrapped read: the ACL lets it through and the answer is a wrapping
/// token, never the secret itself; unwrapping it yields the secret once.
#[test]
fn case_23_passes_the_acl_and_is_answered_wrapped() {
    let (server, root) = setup();
    let client = token(&server, &root, &["pa"]);
    let r = client.raw_headers("GET", "kv1/wrapped", None, None, &[("X-Vault-Wrap-TTL", "5m")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["data"], serde_json::Value::Null, "secret answered in the clear: {}", r.body);
    assert_eq!(body["wrap_info"]["creation_path"], "kv1/wrapped");
    let wrapping = body["wrap_info"]["token"].as_str().unwrap();
    let (s, un) = server.http(wrapping).put("sys/wrapping/unwrap", json!({}));
    assert_eq!(s, 200, "{un}");
    assert_eq!(un["data"], root.get("kv1/wrapped").1["data"]);
}

#[test]
fn the_12_precedence_checks_through_sys_capabilities() {
    let (server, root) = setup();
    let tok = root.put("auth/token/create", json!({"policies": ["pp"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let client = server.http(&tok);
    let cases: [(&str, &[&str]); 12] = [
        ("p/data/foo", &["update"]),
        ("p/data/fox", &["update"]),
        ("p/data/a/bar", &["delete"]),
        ("p/data/a/b", &["list"]),
        ("p/data/a/b/c", &["read"]),
        ("p/x/y", &["update"]),
        ("p/x/z", &["read"]),
        ("p/zz/foo", &["create"]),
        ("p/zz/q", &["read", "sudo"]),
        ("p/data", &["deny"]),
        ("p/x", &["deny"]),
        ("other", &["deny"]),
    ];
    let paths: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    // As root with the token, and as the token itself: same answers.
    let (s, by_root) = root.put("sys/capabilities", json!({"token": tok, "paths": paths}));
    assert_eq!(s, 200, "{by_root}");
    let (s, by_self) = client.put("sys/capabilities-self", json!({"paths": paths}));
    assert_eq!(s, 200, "{by_self}");
    for (path, want) in cases {
        assert_eq!(by_root["data"][path], json!(want), "{path}");
        assert_eq!(by_self["data"][path], json!(want), "{path}");
        assert_eq!(by_self[path], json!(want), "legacy top-level copy for {path}");
    }
    // Singular `path` adds `capabilities`; root reports ["root"].
    let (_, one) = root.put("sys/capabilities-self", json!({"path": "secret/data/app/x"}));
    assert_eq!(one["data"]["capabilities"], json!(["root"]));
    let accessor = root.put("auth/token/lookup", json!({"token": tok})).1["data"]["accessor"].as_str().unwrap().to_string();
    let (s, by_acc) = root.put("sys/capabilities-accessor", json!({"accessor": accessor, "paths": ["p/x/y"]}));
    assert_eq!(s, 200);
    assert_eq!(by_acc["data"]["p/x/y"], json!(["update"]));
    assert_eq!(by_acc["data"]["capabilities"], json!(["update"]));
}

#[test]
fn policy_crud_shapes_and_errors() {
    let server = TestServer::dev();
    let c = server.root();
    let (s, b) = c.list("sys/policies/acl");
    assert_eq!((s, &b["data"]["keys"]), (200, &json!(["default", "root"])));
    assert_eq!(c.put("sys/policies/acl/App", json!({"policy": PE})).0, 204);
    let (s, b) = c.get("sys/policies/acl/app");
    assert_eq!(s, 200);
    assert_eq!(b["data"]["name"], "app");
    assert_eq!(b["data"]["policy"], PE);
    assert_eq!(b["data"]["version"], 1);
    let (_, legacy) = c.get("sys/policy/app");
    assert_eq!(legacy["data"]["rules"], PE);
    let (_, all) = c.get("sys/policy");
    assert_eq!(all["policies"], json!(["app", "default", "root"]));
    assert_eq!(c.get("sys/policies/acl/nosuch"), (404, json!({"errors": []})));
    assert_eq!(c.delete("sys/policies/acl/nosuch").0, 204);
    assert_eq!(c.delete("sys/policies/acl/root"), (400, json!({"errors": ["cannot delete \"root\" policy"]})));
    assert_eq!(c.delete("sys/policies/acl/default"), (400, json!({"errors": ["cannot delete default policy"]})));
    let (s, b) = c.put("sys/policies/acl/bad", json!({"policy": "path \"x\" { capabilities = [\"fly\"] }"}));
    assert_eq!((s, b), (400, json!({"errors": ["failed to parse policy: path \"x\": path \"x\": invalid capability \"fly\""]})));
    let (s, b) = c.put("sys/policies/acl/bad2", json!({"policy": "garbage {"}));
    assert_eq!(s, 400);
    assert!(b["errors"][0].as_str().unwrap().starts_with("failed to parse policy: "), "{b}");
    assert_eq!(c.get("sys/policies/acl/bad").0, 404, "a refused policy is not stored");
    let (s, b) = c.put("sys/policies/acl/app", json!({"policy": PE, "cas": 0}));
    assert_eq!((s, b), (400, json!({"errors": ["check-and-set parameter 0 did not match the current version 1"]})));
    assert_eq!(c.put("sys/policies/acl/app", json!({"policy": PD, "cas": 1})).0, 204);
    assert_eq!(c.get("sys/policies/acl/app").1["data"]["version"], 2);
    // The default policy is editable, and a change takes effect for existing tokens at once.
    let tok = c.put("auth/token/create", json!({"policies": ["app"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let t = server.http(&tok);
    assert_eq!(t.get("auth/token/lookup-self").0, 200);
    assert_eq!(c.put("sys/policies/acl/default", json!({"policy": PE})).0, 204);
    assert_eq!(t.get("auth/token/lookup-self").0, 403, "compiled ACL cache invalidated on policy change");
}

/// `sys/internal/ui/resultant-acl` (granted by the default policy; what clients use to learn a
/// token's grants) describes the merged policies as OpenBao's does: exact paths, prefix globs under
/// their prefix with capabilities and parameter/wrapping constraints, `+` patterns left out; root
/// reads `{"root": true}`; no token is 403.
#[test]
fn resultant_acl_answers_as_openbao_does() {
    let bao = tresor_tests::BaoDev::start();
    let server = TestServer::dev();
    let policy = r#"
path "secret/data/*" { capabilities = ["read", "list"] }
path "secret/data/exact" {
  capabilities = ["create"]
  allowed_parameters = { "a" = [] }
  min_wrapping_ttl = "1m"
}
path "kv/+/x" { capabilities = ["update"] }
path "sys/x*" { capabilities = ["deny"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
"#;
    let mut answers = Vec::new();
    for c in [bao.http(), server.root()] {
        assert_eq!(c.put("sys/policies/acl/p", json!({"policy": policy})).0, 204);
        let (s, created) = c.put("auth/token/create", json!({"policies": ["p"], "no_default_policy": true}));
        assert_eq!(s, 200, "{created}");
        let token = created["auth"]["client_token"].as_str().unwrap().to_string();
        let scoped = c.with_token(&token);
        let (_, root_view) = c.get("sys/internal/ui/resultant-acl");
        let (status, scoped_view) = scoped.get("sys/internal/ui/resultant-acl");
        let (anonymous, _) = c.with_token("").get("sys/internal/ui/resultant-acl");
        answers.push((root_view["data"].clone(), status, scoped_view["data"].clone(), anonymous));
    }
    let (theirs, ours) = (&answers[0], &answers[1]);
    assert_eq!(ours.0, json!({"root": true}));
    assert_eq!(ours, theirs);
    assert_eq!(ours.1, 200);
    assert_eq!(ours.2["glob_paths"]["secret/data/"], json!({"capabilities": ["list", "read"]}));
    assert_eq!(ours.2["exact_paths"]["secret/data/exact"], json!({"capabilities": ["create"], "allowed_parameters": {"a": []}, "min_wrapping_ttl": 60}));
    assert_eq!(ours.3, 403);
}
