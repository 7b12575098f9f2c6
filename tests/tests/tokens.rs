//! The token store through the real binary (API.md §5): shapes, child trees, escalation, limits.

use serde_json::{json, Value};
use tresor_tests::{Http, TestServer};

fn create(c: &Http, body: Value) -> (String, Value) {
    let (s, b) = c.put("auth/token/create", body);
    assert_eq!(s, 200, "{b}");
    (b["auth"]["client_token"].as_str().unwrap().to_string(), b)
}

const DENIED: &str = r#"{"errors":["permission denied"]}"#;

#[test]
fn create_and_lookup_have_vaults_shapes() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/policies/acl/app", json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})).0, 204);
    let (tok, b) = create(&c, json!({"policies": ["app"], "ttl": "1h", "renewable": true, "display_name": "demo", "meta": {"team": "x"}, "num_uses": 0}));
    let auth = &b["auth"];
    assert!(tok.starts_with("s.") && tok.len() >= 2 + 32, "{tok}");
    assert_eq!(auth["policies"], json!(["app", "default"]));
    assert_eq!(auth["token_policies"], json!(["app", "default"]));
    assert_eq!(auth["metadata"], json!({"team": "x"}));
    assert_eq!((auth["lease_duration"].as_u64(), auth["renewable"].as_bool(), auth["orphan"].as_bool()), (Some(3600), Some(true), Some(false)));
    assert_eq!((auth["token_type"].as_str(), auth["entity_id"].as_str()), (Some("service"), Some("")));
    assert!(auth["mfa_requirement"].is_null());
    assert!(b["data"].is_null());

    let t = server.http(&tok);
    let (s, me) = t.get("auth/token/lookup-self");
    assert_eq!(s, 200, "{me}");
    let d = &me["data"];
    assert_eq!(d["id"], tok);
    assert_eq!(d["display_name"], "token-demo");
    assert_eq!(d["path"], "auth/token/create");
    assert_eq!(d["policies"], json!(["app", "default"]));
    assert_eq!(d["meta"], json!({"team": "x"}));
    assert_eq!(d["creation_ttl"], 3600);
    assert!(d["ttl"].as_u64().unwrap() <= 3600 && d["ttl"].as_u64().unwrap() > 3500);
    assert!(d["expire_time"].is_string() && d["issue_time"].is_string());
    let accessor = d["accessor"].as_str().unwrap().to_string();

    let (_, by_token) = c.put("auth/token/lookup", json!({"token": tok}));
    assert_eq!(by_token["data"]["accessor"], accessor);
    let (_, by_acc) = c.put("auth/token/lookup-accessor", json!({"accessor": accessor}));
    assert_eq!(by_acc["data"]["id"], "", "lookup by accessor never reveals the token");
    assert_eq!(c.put("auth/token/lookup", json!({"token": "s.nope"})), (403, json!({"errors": ["bad token"]})));

    // Defaults: orphan via create-orphan, 768h TTL; no_default_policy.
    let (_, o) = create(&c, json!({"policies": ["app"], "no_parent": true}));
    assert_eq!((o["auth"]["orphan"].as_bool(), o["auth"]["lease_duration"].as_u64()), (Some(true), Some(2_764_800)));
    let (_, nd) = create(&c, json!({"policies": ["app"], "no_default_policy": true}));
    assert_eq!(nd["auth"]["policies"], json!(["app"]));

    // Renew.
    let (s, r) = t.put("auth/token/renew-self", json!({"increment": "30m"}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["auth"]["lease_duration"], 1800);
    let (_, me) = t.get("auth/token/lookup-self");
    assert!(me["data"]["last_renewal_time"].is_i64());

    // The accessor list needs sudo; root has it.
    let (s, list) = c.list("auth/token/accessors");
    assert_eq!(s, 200);
    assert!(list["data"]["keys"].as_array().unwrap().iter().any(|k| k == &json!(accessor)));
    assert_eq!(t.list("auth/token/accessors").0, 403);
}

#[test]
fn revoking_a_token_revokes_its_whole_child_tree() {
    let server = TestServer::dev();
    let c = server.root();
    assert_eq!(c.put("sys/policies/acl/app", json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})).0, 204);
    let (parent, _) = create(&c, json!({"policies": ["app"]}));
    let p = server.http(&parent);
    let (child, _) = create(&p, json!({"policies": ["app"]}));
    let ch = server.http(&child);
    let (grandchild, _) = create(&ch, json!({}));
    let (orphan_parent, _) = create(&c, json!({"policies": ["app"]}));
    let (kept_child, _) = create(&server.http(&orphan_parent), json!({}));

    for t in [&parent, &child, &grandchild] {
        assert_eq!(server.http(t).get("auth/token/lookup-self").0, 200);
    }
    assert_eq!(c.put("auth/token/revoke", json!({"token": parent})).0, 204);
    for t in [&parent, &child, &grandchild] {
        let r = server.http(t).raw("GET", "auth/token/lookup-self", None, None);
        assert_eq!((r.status, r.body.as_str()), (403, DENIED), "a revoked token is refused");
    }
    // revoke-orphan (needs sudo: root has it) keeps the children.
    assert_eq!(c.put("auth/token/revoke-orphan", json!({"token": orphan_parent})).0, 204);
    assert_eq!(server.http(&orphan_parent).get("auth/token/lookup-self").0, 403);
    let (s, kept) = server.http(&kept_child).get("auth/token/lookup-self");
    assert_eq!((s, &kept["data"]["orphan"]), (200, &json!(true)));

    // revoke-self and revoke-accessor.
    let (t, _) = create(&c, json!({}));
    assert_eq!(server.http(&t).put("auth/token/revoke-self", json!({})).0, 204);
    assert_eq!(server.http(&t).get("auth/token/lookup-self").0, 403);
    let (t, b) = create(&c, json!({}));
    let acc = b["auth"]["accessor"].as_str().unwrap();
    assert_eq!(c.put("auth/token/revoke-accessor", json!({"accessor": acc})).0, 204);
    assert_eq!(server.http(&t).get("auth/token/lookup-self").0, 403);
    let (s, w) = c.put("auth/token/revoke-accessor", json!({"accessor": "nonexistent"}));
    assert_eq!((s, &w["warnings"]), (200, &json!(["No token found with this accessor"])));
}

#[test]
fn a_child_cannot_escalate_and_limited_tokens_run_out() {
    let server = TestServer::dev();
    let c = server.root();
    let create_policy = "path \"auth/token/create\" { capabilities = [\"update\"] }\npath \"secret/*\" { capabilities = [\"read\", \"create\", \"update\"] }";
    assert_eq!(c.put("sys/policies/acl/app", json!({"policy": create_policy})).0, 204);
    assert_eq!(c.put("sys/policies/acl/admin", json!({"policy": "path \"*\" { capabilities = [\"sudo\", \"read\"] }"})).0, 204);
    let (parent, _) = create(&c, json!({"policies": ["app"]}));
    let p = server.http(&parent);
    assert_eq!(p.put("auth/token/create", json!({"policies": ["admin"]})), (400, json!({"errors": ["child policies must be subset of parent"]})));
    assert_eq!(p.put("auth/token/create", json!({"policies": ["root"]})).0, 400);
    assert_eq!(p.put("auth/token/create", json!({"no_parent": true})).0, 400);
    let (s, ok) = p.put("auth/token/create", json!({"policies": ["app"]}));
    assert_eq!((s, &ok["auth"]["policies"]), (200, &json!(["app", "default"])));

    // num_uses: two requests, then refused.
    let (limited, _) = create(&c, json!({"policies": ["app"], "num_uses": 2}));
    let l = server.http(&limited);
    assert_eq!(l.put("secret/data/a", json!({"data": {"x": 1}})).0, 200);
    assert_eq!(l.get("secret/data/a").0, 200);
    let r = l.raw("GET", "secret/data/a", None, None);
    assert_eq!((r.status, r.body.as_str()), (403, DENIED), "a used-up token is refused");
    // A limited-use token may not have children.
    let (limited, _) = create(&c, json!({"policies": ["app"], "num_uses": 5}));
    assert_eq!(server.http(&limited).put("auth/token/create", json!({})).0, 400);

    // Expiry.
    let (short, _) = create(&c, json!({"policies": ["app"], "ttl": "1s"}));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = server.http(&short).raw("GET", "auth/token/lookup-self", None, None);
    assert_eq!((r.status, r.body.as_str()), (403, DENIED), "an expired token is refused");
    // Garbage and missing tokens.
    for t in ["", "s.garbage", "root2"] {
        assert_eq!(server.http(t).get("secret/data/a").0, 403);
    }
}

#[test]
fn token_roles() {
    let server = TestServer::dev();
    let c = server.root();
    let (s, _) = c.put("auth/token/roles/web", json!({"allowed_policies": ["app"], "orphan": true, "token_period": "1h", "renewable": true, "token_type": "service"}));
    assert_eq!(s, 204);
    let (_, r) = c.get("auth/token/roles/web");
    assert_eq!(r["data"]["allowed_policies"], json!(["app"]));
    assert_eq!((r["data"]["token_period"].as_u64(), r["data"]["orphan"].as_bool()), (Some(3600), Some(true)));
    assert_eq!(c.list("auth/token/roles").1["data"]["keys"], json!(["web"]));
    let (s, b) = c.put("auth/token/create/web", json!({"policies": ["app"]}));
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["auth"]["lease_duration"].as_u64(), b["auth"]["orphan"].as_bool()), (Some(3600), Some(true)));
    assert!(b["auth"]["metadata"].is_null());
    let (s, b) = c.put("auth/token/create/web", json!({"policies": ["root"]}));
    assert_eq!(s, 400);
    assert!(b["errors"][0].as_str().unwrap().contains("must be subset of the role's allowed policies"), "{b}");
    assert_eq!(c.delete("auth/token/roles/web").0, 204);
    assert_eq!(c.get("auth/token/roles/web").0, 404);

    // Through a role only the role decides orphanhood (Vault ignores `no_parent` there), and a
    // default TTL the role's explicit maximum cuts is said so.
    assert_eq!(c.put("auth/token/roles/kept", json!({"token_explicit_max_ttl": "2h"})).0, 204);
    let (s, b) = c.put("auth/token/create/kept", json!({"no_parent": true}));
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["auth"]["orphan"].as_bool(), b["auth"]["lease_duration"].as_u64()), (Some(false), Some(7200)));
    assert_eq!(b["warnings"], json!(["TTL of \"768h\" exceeded the effective max_ttl of \"2h\"; TTL value is capped accordingly"]));
    assert_eq!(c.put("auth/token/create", json!({"no_parent": true})).1["auth"]["orphan"], true);
}

/// Batch tokens (`type=batch`): nothing stored, no accessor, not renewable or revocable, no
/// children or cubbyhole; one with a parent dies with it; Vault's refusals; through a role and an
/// auth mount tuned to batch; unreadable by another cluster.
#[test]
fn batch_tokens() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    c.put("sys/policies/acl/tk", json!({"policy": "path \"auth/token/*\" { capabilities = [\"create\", \"update\", \"read\", \"sudo\"] }\npath \"cubbyhole/*\" { capabilities = [\"create\", \"read\", \"update\"] }\npath \"secret/*\" { capabilities = [\"read\", \"create\", \"update\"] }"}));
    c.put("sys/mounts/secret", json!({"type": "kv", "options": {"version": "1"}}));
    c.put("secret/x", json!({"v": "1"}));

    for (body, error) in [
        (json!({"type": "batch", "num_uses": 3, "policies": ["tk"]}), "batch tokens cannot have \"num_uses\" set"),
        (json!({"type": "batch", "period": "1h", "policies": ["tk"]}), "batch tokens cannot have \"period\" set"),
        (json!({"type": "batch", "explicit_max_ttl": "2h", "policies": ["tk"]}), "batch tokens cannot have \"explicit_max_ttl\" set"),
        (json!({"type": "batch"}), "batch tokens cannot be root tokens"),
        (json!({"type": "bogus"}), "invalid 'token_type' value"),
    ] {
        assert_eq!(c.put("auth/token/create", body.clone()).1["errors"][0], error, "{body}");
    }
    let before = c.get("sys/key-status").1["data"]["encryptions"].clone();
    let (s, created) = c.put("auth/token/create", json!({"type": "batch", "policies": ["tk"], "ttl": "1h", "meta": {"a": "b"}, "renewable": true}));
    assert_eq!(s, 200, "{created}");
    assert_eq!(c.get("sys/key-status").1["data"]["encryptions"], before, "a batch token stores nothing");
    let auth = &created["auth"];
    let batch = auth["client_token"].as_str().unwrap().to_string();
    assert!(batch.starts_with("b."), "{batch}");
    assert_eq!((&auth["accessor"], &auth["token_type"], &auth["renewable"], &auth["orphan"]), (&json!(""), &json!("batch"), &json!(false), &json!(false)));
    assert_eq!(auth["lease_duration"], 3600);

    let b = server.http(&batch);
    let (s, me) = b.get("auth/token/lookup-self");
    assert_eq!(s, 200, "{me}");
    let d = &me["data"];
    assert_eq!((&d["type"], &d["id"], &d["accessor"], &d["meta"], &d["policies"], &d["path"]), (&json!("batch"), &json!(batch), &json!(""), &json!({"a": "b"}), &json!(["default", "tk"]), &json!("auth/token/create")));
    assert_eq!((&d["renewable"], &d["num_uses"], &d["creation_ttl"]), (&json!(false), &json!(0), &json!(3600)));
    assert_eq!(c.put("auth/token/lookup", json!({"token": batch})).1["data"]["type"], "batch");
    // It works as a token: its policies apply.
    assert_eq!(b.get("secret/x").1["data"]["v"], "1");
    assert_eq!(b.get("sys/mounts").0, 403);
    // What it cannot do.
    assert_eq!(b.put("auth/token/renew-self", json!({})).1["errors"][0], "batch tokens cannot be renewed");
    assert_eq!(c.put("auth/token/renew", json!({"token": batch})).1["errors"][0], "batch tokens cannot be renewed");
    assert_eq!(b.put("auth/token/create", json!({"policies": ["tk"]})).1["errors"][0], "batch tokens cannot create more tokens");
    assert_eq!(b.put("cubbyhole/x", json!({"a": "b"})).1["errors"][0], "cubbyhole operations are only supported by 'service' type tokens");
    assert_eq!(b.put("auth/token/revoke-self", json!({})).1["errors"][0], "batch tokens cannot be revoked");
    assert_eq!(c.put("auth/token/revoke", json!({"token": batch})).1["errors"][0], "batch tokens cannot be revoked");
    // Tampering or another cluster: not a token.
    let mut forged = batch.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(server.http(&String::from_utf8(forged).unwrap()).get("auth/token/lookup-self").0, 403);
    let other = TestServer::dev();
    assert_eq!(other.http(&batch).get("auth/token/lookup-self").0, 403, "another cluster cannot read it");

    // A batch token with a parent stops working when the parent is revoked.
    let parent = c.put("auth/token/create", json!({"policies": ["tk"]})).1["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, child) = server.http(&parent).put("auth/token/create", json!({"type": "batch", "policies": ["tk"]}));
    assert_eq!(s, 200, "{child}");
    let child = child["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&child).get("auth/token/lookup-self").0, 200);
    assert_eq!(c.put("auth/token/revoke", json!({"token": parent})).0, 204);
    assert_eq!(server.http(&child).get("auth/token/lookup-self").0, 403, "revoked with its parent");
    // An orphan one outlives nothing and expires on time.
    let (_, short) = c.put("auth/token/create-orphan", json!({"type": "batch", "policies": ["tk"], "ttl": "2s"}));
    assert_eq!(short["auth"]["orphan"], true);
    let short = short["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(server.http(&short).get("auth/token/lookup-self").0, 200);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(server.http(&short).get("auth/token/lookup-self").0, 403, "expired");

    // Through a role, and an auth mount tuned to batch tokens.
    assert_eq!(
        c.put("auth/token/roles/b", json!({"allowed_policies": ["tk"], "token_type": "batch"})).1["errors"][0],
        "'token_type' cannot be 'batch' when role is set to generate non-orphan tokens"
    );
    assert_eq!(c.put("auth/token/roles/b", json!({"allowed_policies": ["tk"], "token_type": "batch", "orphan": true})).0, 204);
    assert_eq!(c.get("auth/token/roles/b").1["data"]["token_type"], "batch");
    assert_eq!(c.put("auth/token/create/b", json!({"policies": ["tk"]})).1["auth"]["token_type"], "batch");
    assert_eq!(c.put("auth/token/roles/d", json!({"token_type": "default"})).1["errors"][0], "invalid 'token_type' value \"default\"");
    c.put("sys/auth/up", json!({"type": "userpass", "config": {"token_type": "batch"}}));
    c.put("auth/up/users/u", json!({"password": "pw", "token_policies": ["tk"]}));
    let (s, login) = server.http("").put("auth/up/login/u", json!({"password": "pw"}));
    assert_eq!(s, 200, "{login}");
    assert_eq!((&login["auth"]["token_type"], &login["auth"]["orphan"]), (&json!("batch"), &json!(true)));
    let t = login["auth"]["client_token"].as_str().unwrap();
    assert!(t.starts_with("b."));
    assert_eq!(server.http(t).get("secret/x").1["data"]["v"], "1");

    // Sealed and unsealed again, the same cluster still reads it.
    assert_eq!(c.put("sys/seal", json!({})).0, 204);
    server.unseal(&keys);
    assert_eq!(b.get("auth/token/lookup-self").0, 200);
}
