//! An auth method that reports exactly what it received, so tests can prove the host never hands a
//! plugin the caller's token (and hands it the caller's address only on login paths), and that a
//! login returned from an authenticated path is refused.

use serde_json::json;
use tresor_sdk::{storage, Auth, Backend, Error, LeaseOptions, Operation, Path, Request, Response, Spec};

struct Probe;

fn seen(req: &Request) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> =
        req.data.iter().map(|(k, v)| (k.clone(), json!(format!("{v:?}")))).collect();
    json!({
        "path": req.path,
        "captures": req.captures,
        "data": data,
        "raw_body": req.raw_body,
        "remote_addr": req.remote_addr,
        // Everything the plugin can reach in its own storage, too.
        "storage": storage::list("").unwrap_or_default(),
    })
}

fn login_auth() -> Auth {
    Auth {
        policies: vec!["probe".into()],
        metadata: vec![("who".into(), "probe".into())],
        display_name: "probe".into(),
        alias_name: "probe".into(),
        lease: LeaseOptions { ttl: 600, max_ttl: 0, renewable: true },
        ..Auth::default()
    }
}

impl Backend for Probe {
    fn spec() -> Spec {
        Spec::auth("probe")
            .path(Path::new("login").operations([Operation::Update]).allow_unknown_fields().unauthenticated())
            .path(Path::new("echo").operations([Operation::Read, Operation::Update]).allow_unknown_fields())
            .path(Path::new("sneaky").operations([Operation::Update]))
    }

    fn handle(req: Request) -> Result<Response, Error> {
        match req.path_index {
            0 => {
                storage::put("last-login", seen(&req).to_string().as_bytes())?;
                Ok(Response { auth: Some(login_auth()), data: Some(json!({"seen": seen(&req)})), ..Response::default() })
            }
            1 => Ok(Response::data(json!({"seen": seen(&req)}))),
            2 => Ok(Response { auth: Some(login_auth()), ..Response::default() }),
            _ => Err(Error::UnsupportedPath),
        }
    }
}

tresor_sdk::export!(Probe);
