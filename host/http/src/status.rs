//! The unauthenticated status endpoints that answer while sealed: `sys/init`, `sys/seal-status`,
//! `sys/unseal`, `sys/health` and `sys/leader`. Their bodies are not enveloped (API.md §1).

use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};
use tresor_core::{Core, InitParams};
use tresor_logical::{Error, Map};

/// What a status endpoint answers: a status code and an optional JSON body.
pub(crate) type Reply = Result<(StatusCode, Option<Value>), Error>;

/// `GET|HEAD sys/health` with Vault's query overrides.
pub(crate) fn health(core: &Core, query: &Map) -> Reply {
    let health = core.health();
    let code = |name: &str, default: u16| -> Result<StatusCode, Error> {
        match query.get(name).and_then(Value::as_str) {
            None => StatusCode::from_u16(default).map_err(|e| Error::Internal(e.to_string())),
            Some(raw) => raw
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| Error::invalid(format!("unable to parse {name} code: {raw:?}"))),
        }
    };
    // Parse every override up front so a malformed one is a 400 whatever the state.
    let active = code("activecode", 200)?;
    let _standby = code("standbycode", 429)?;
    let _perf = code("performancestandbycode", 473)?;
    let _dr = code("drsecondarycode", 472)?;
    let sealed = code("sealedcode", 503)?;
    let uninit = code("uninitcode", 501)?;
    let status = if !health.initialized {
        uninit
    } else if health.sealed {
        sealed
    } else {
        // A single node is always active; standby codes never apply.
        active
    };
    let body = serde_json::to_value(&health).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((status, Some(body)))
}

/// `GET sys/init`.
pub(crate) fn init_status(core: &Core) -> Reply {
    Ok((StatusCode::OK, Some(json!({"initialized": core.is_initialized()}))))
}

/// `PUT|POST sys/init`.
pub(crate) async fn init(core: &Core, data: &Map) -> Reply {
    let shares = small_int(data, "secret_shares")?;
    let threshold = small_int(data, "secret_threshold")?;
    for unsupported in ["pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"] {
        tresor_core::refuse_pgp(data, unsupported)?;
    }
    let result = core
        .init(InitParams { secret_shares: shares, secret_threshold: threshold, ..InitParams::default() })
        .await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = json!({
        "keys": result.keys.iter().map(|k| hex::encode(k.as_slice())).collect::<Vec<_>>(),
        "keys_base64": result.keys.iter().map(|k| b64.encode(k.as_slice())).collect::<Vec<_>>(),
        "root_token": result.root_token.as_str(),
    });
    Ok((StatusCode::OK, Some(body)))
}

/// `PUT|POST sys/unseal`.
pub(crate) async fn unseal(core: &Core, data: &Map) -> Reply {
    let reset = match data.get("reset") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "t"),
        Some(_) => return Err(Error::invalid("'reset' must be a boolean")),
    };
    let key = match data.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Error::invalid("'key' must be a valid hex or base64 string")),
    };
    let status = core.unseal(key, reset).await?;
    let body = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((StatusCode::OK, Some(body)))
}

/// `GET sys/seal-status`.
pub(crate) async fn seal_status(core: &Core) -> Reply {
    let status = core.seal_status().await;
    let body = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((StatusCode::OK, Some(body)))
}

/// `GET sys/leader`.
pub(crate) fn leader(core: &Core) -> Reply {
    if core.is_sealed() {
        return Err(Error::Sealed);
    }
    let body = serde_json::to_value(core.leader()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((StatusCode::OK, Some(body)))
}

/// An integer in 0..=255 from a JSON number or numeric string; missing is 0.
fn small_int(data: &Map, key: &str) -> Result<u8, Error> {
    let n = match data.get(key) {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| Error::invalid(format!("invalid value for {key}")))?,
        Some(Value::String(s)) => s.parse().map_err(|_| Error::invalid(format!("invalid value for {key}")))?,
        Some(_) => return Err(Error::invalid(format!("invalid value for {key}"))),
    };
    u8::try_from(n).map_err(|_| Error::invalid("invalid seal configuration: shares must be less than 256"))
}
