//! A deliberately hostile plugin. Each path attacks one sandbox boundary; the host must contain it.

use serde_json::json;
use tresor_sdk::{storage, Backend, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};

struct Hostile;

impl Backend for Hostile {
    fn spec() -> Spec {
        let key = || Field::new("key", FieldKind::Str);
        Spec::secrets("hostile test plugin")
            .path(Path::new("ok").operations([Operation::Read]))
            .path(Path::new("spin").operations([Operation::Read]))
            .path(Path::new("alloc").field(Field::new("mib", FieldKind::Int).default_json("1024")).operations([Operation::Read]))
            .path(Path::new("trap").operations([Operation::Read]))
            .path(Path::new("storage/get").field(key()).operations([Operation::Read]))
            .path(Path::new("storage/put").field(key()).field(Field::new("value", FieldKind::Str)).operations([Operation::Update]))
            .path(Path::new("storage/list").field(Field::new("prefix", FieldKind::Str)).operations([Operation::Read]))
            .path(Path::new("huge").operations([Operation::Read]))
            .path(Path::new("write-then-trap").field(Field::new("key", FieldKind::Str)).operations([Operation::Update]))
    }

    fn handle(req: Request) -> Result<Response, Error> {
        match req.path.as_str() {
            "ok" => Ok(Response::data(json!({"ok": true}))),
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mib = req.int("mib").unwrap_or(1024) as usize;
                let v = vec![7u8; mib << 20];
                Ok(Response::data(json!({"len": std::hint::black_box(v).len()})))
            }
            "trap" => {
                #[allow(clippy::panic)]
                {
                    panic!("deliberate trap")
                }
            }
            "storage/get" => {
                let key = req.str("key").unwrap_or("");
                Ok(Response::data(match storage::get(key) {
                    Ok(v) => json!({"value": v.map(|b| String::from_utf8_lossy(&b).into_owned())}),
                    Err(e) => json!({"error": e.to_string()}),
                }))
            }
            "storage/put" => {
                let key = req.str("key").unwrap_or("");
                let value = req.str("value").unwrap_or("");
                Ok(Response::data(match storage::put(key, value.as_bytes()) {
                    Ok(()) => json!({"written": true}),
                    Err(e) => json!({"error": e.to_string()}),
                }))
            }
            "storage/list" => {
                let prefix = req.str("prefix").unwrap_or("");
                Ok(Response::data(match storage::list(prefix) {
                    Ok(keys) => json!({"keys": keys}),
                    Err(e) => json!({"error": e.to_string()}),
                }))
            }
            // Half a request: writes, then dies. The write must not survive.
            "write-then-trap" => {
                let key = req.str("key").unwrap_or("k");
                storage::put(key, b"partial").map_err(Error::internal)?;
                assert!(storage::get(key).map_err(Error::internal)?.is_some(), "read-your-writes");
                #[allow(clippy::panic)]
                {
                    panic!("dying after a write")
                }
            }
            // A response far over the host's size bound.
            "huge" => Ok(Response::data(json!({"blob": "x".repeat(20 << 20)}))),
            _ => Err(Error::UnsupportedPath),
        }
    }
}

tresor_sdk::export!(Hostile);
