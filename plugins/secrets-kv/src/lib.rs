//! The KV secrets engine: version 1 (a plain key/value store) and version 2 (versioned, with
//! check-and-set, soft delete, undelete, destroy and metadata), selected by the mount's
//! `options.version` exactly as Vault's `kv` plugin (API.md §10–11).
//!
//! Storage layout inside the mount's view:
//! - v1: the secret's path itself → JSON object.
//! - v2: `config` → [`v2::Config`]; `meta/<path>` → [`v2::Metadata`]; `data/<version>/<path>` → JSON object;
//!   `.tresor-kv-layout` marks the layout (written by `initialize`: on a new mount, or after moving a
//!   version-1 mount's secrets when its `options.version` was tuned to 2, `kv enable-versioning`).

mod v1;
mod v2;

use tresor_sdk::{Backend, Error, Request, Response, Spec};

/// The KV engine.
pub struct Kv;

/// Whether this mount is KV version 2.
fn is_v2() -> bool {
    let options = tresor_sdk::system::mount_info().options;
    matches!(options.get("version").and_then(|v| v.as_str()), Some("2"))
        || options.get("version").and_then(|v| v.as_u64()) == Some(2)
}

impl Backend for Kv {
    fn spec() -> Spec {
        if is_v2() { v2::spec() } else { v1::spec() }
    }

    fn initialize() -> Result<(), Error> {
        if is_v2() { v2::initialize() } else { Ok(()) }
    }

    fn handle(req: Request) -> Result<Response, Error> {
        if is_v2() { v2::handle(req) } else { v1::handle(req) }
    }

    fn exists(req: Request) -> Result<bool, Error> {
        if is_v2() { v2::exists(&req) } else { v1::exists(&req) }
    }
}

tresor_sdk::export!(Kv);
