//! One HTTP request → one logical request → one HTTP response.
//!
//! Order of checks (each failure changes nothing): `/v1/` prefix → status endpoints (no token) →
//! verb → body size (413) → body decoding (400/415) → `Core::handle_request`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, VARY,
};
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use tresor_logical::{Error, Map, Operation, Request, Response};
use zeroize::Zeroizing;

use crate::error::Failure;
use crate::{body, envelope, error, status, urlencoded, Api};

/// The response type of every handler.
pub type HttpResponse = hyper::Response<Full<Bytes>>;

/// Handle one request. Never fails: every error becomes a Vault-shaped error response.
pub async fn handle<B>(api: &Api, req: hyper::Request<B>, remote: Option<SocketAddr>) -> HttpResponse
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // CORS (`sys/config/cors`), as Vault: with CORS on, a request from an origin not allowed is
    // refused, a preflight is answered here, and an allowed origin is named in the answer.
    let cors = match req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let config = api.core.cors();
            config.enabled.then(|| (origin.to_owned(), config))
        }
        None => None,
    };
    if let Some((origin, config)) = &cors {
        if !config.allows(origin) {
            return error_response(StatusCode::FORBIDDEN, vec!["origin not allowed".into()]);
        }
        if req.method() == Method::OPTIONS {
            let mut resp = bare(StatusCode::OK, Bytes::new());
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&config.allowed_headers.join(",")) {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(tresor_core::CORS_ALLOWED_METHODS));
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("300"));
            allow_origin(&mut resp, origin, config.allow_credentials);
            return resp;
        }
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    // The routing state machine is large (every endpoint's awaits); boxed, it is allocated once
    // instead of being copied as hyper moves the service future (a measured 3-4% of CPU).
    let mut resp = match Box::pin(route(api, req, remote, &request_id)).await {
        Ok(resp) => resp,
        Err(Failure::Logical(err)) => error_response(error::status_of(&err), error::messages_of(&err, &request_id)),
        Err(Failure::TooLarge) => {
            // The rest of the body was never read, so the connection cannot carry another
            // request: say so, or a client reusing it reads a reset (as Go's server does).
            let mut resp = error_response(StatusCode::PAYLOAD_TOO_LARGE, vec![error::TOO_LARGE.into()]);
            resp.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    };
    if let Some((origin, config)) = &cors {
        allow_origin(&mut resp, origin, config.allow_credentials);
    }
    resp
}

/// Name an allowed origin in a response (`Vary: Origin`, since the answer depends on it).
fn allow_origin(resp: &mut HttpResponse, origin: &str, credentials: bool) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(VARY, HeaderValue::from_static("Origin"));
    if credentials {
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

async fn route<B>(
    api: &Api,
    req: hyper::Request<B>,
    remote: Option<SocketAddr>,
    request_id: &str,
) -> Result<HttpResponse, Failure>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    let Some(raw_path) = parts.uri.path().strip_prefix("/v1/") else {
        return Ok(error_response(StatusCode::NOT_FOUND, vec![]));
    };
    let path = urlencoded::decode(raw_path, false).ok_or_else(|| Error::invalid("invalid path encoding"))?;
    let query = match parts.uri.query() {
        Some(q) => body::pairs_to_map(urlencoded::parse_pairs(q).ok_or_else(|| Error::invalid("invalid query string"))?),
        None => Map::new(),
    };
    let method = parts.method.clone();
    let core = api.core.as_ref();

    // Status endpoints: unauthenticated and available while sealed.
    match path.trim_end_matches('/') {
        "sys/health" => {
            return match method {
                Method::GET => reply(status::health(core, &query)?),
                Method::HEAD => {
                    let (code, _) = status::health(core, &query)?;
                    Ok(bare(code, Bytes::new()))
                }
                _ => Ok(error_response(StatusCode::METHOD_NOT_ALLOWED, vec![])),
            };
        }
        "sys/seal-status" => {
            return match method {
                Method::GET => reply(status::seal_status(core).await?),
                _ => Err(Error::UnsupportedOperation.into()),
            };
        }
        "sys/leader" => {
            return match method {
                Method::GET => reply(status::leader(core)?),
                _ => Err(Error::UnsupportedOperation.into()),
            };
        }
        "sys/init" => {
            return match method {
                Method::GET => reply(status::init_status(core)?),
                Method::PUT | Method::POST => {
                    let data = read_body(api, &parts.headers, body).await?;
                    reply(status::init(core, &data).await?)
                }
                _ => Err(Error::UnsupportedOperation.into()),
            };
        }
        // OpenBao 2.7 turned off Vault's unauthenticated rekey and root-token generation
        // (openbao/openbao#1496, #2912); Tresor never had them and answers as OpenBao does.
        "sys/rekey/init" | "sys/rekey/update" | "sys/rekey/verify" | "sys/generate-root/attempt" | "sys/generate-root/update" => {
            return Ok(error_response(StatusCode::METHOD_NOT_ALLOWED, vec!["unsupported operation".into()]));
        }
        // Unauthenticated, as in OpenBao: it only undoes the one-time pad the caller holds.
        "sys/decode-token" => {
            return match method {
                Method::PUT | Method::POST => {
                    let data = read_body(api, &parts.headers, body).await?;
                    let response = Response::with_data(tresor_core::decode_token(&data)?);
                    let body = envelope::render(&response, request_id, false).map_err(|e| Error::Internal(e.to_string()))?;
                    Ok(json_response(StatusCode::OK, Bytes::from(body)))
                }
                _ => Ok(error_response(StatusCode::METHOD_NOT_ALLOWED, vec!["unsupported operation".into()])),
            };
        }
        "sys/unseal" => {
            return match method {
                Method::PUT | Method::POST => {
                    let data = read_body(api, &parts.headers, body).await?;
                    reply(status::unseal(core, &data).await?)
                }
                _ => Err(Error::UnsupportedOperation.into()),
            };
        }
        _ => {}
    }

    let list_query = query.get("list").and_then(Value::as_str).is_some_and(|v| matches!(v, "true" | "1" | "t"));
    let help_query = query.get("help").and_then(Value::as_str).is_some_and(|v| matches!(v, "true" | "1" | "t"));
    let operation = match method.as_str() {
        "GET" if help_query => Operation::Help,
        "GET" if list_query => Operation::List,
        "GET" => Operation::Read,
        "LIST" => Operation::List,
        "POST" | "PUT" => Operation::Update,
        "PATCH" => Operation::Patch,
        "DELETE" => Operation::Delete,
        _ => return Ok(error_response(StatusCode::METHOD_NOT_ALLOWED, vec![])),
    };
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if operation == Operation::Patch {
        let ct = content_type.as_deref().unwrap_or("");
        if ct.split(';').next().map(str::trim) != Some("application/merge-patch+json") {
            return Ok(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                vec![format!("PATCH requires Content-Type of application/merge-patch+json, provided {ct}")],
            ));
        }
    }
    let data = match operation {
        Operation::Read | Operation::List | Operation::Help => {
            let mut q = query;
            q.remove("list");
            q.remove("help");
            q
        }
        _ => read_body(api, &parts.headers, body).await?,
    };

    let mut request = Request::new(operation, path);
    request.id = request_id.to_string();
    request.data = data;
    request.remote_addr = remote;
    request.client_token = token_of(&parts.headers);
    request.wrap_ttl = wrap_ttl(&parts.headers)?;
    // Only the headers the audit configuration names (usually none) are copied.
    for name in api.core.audited_header_names() {
        for value in parts.headers.get_all(name.as_str()) {
            request.headers.push((name.clone(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
        }
    }
    let legacy_copy = request.path.strip_prefix("sys/").is_some_and(has_legacy_copy);
    // Vault answers `?help=1` and `sys/internal/specs/openapi` with the document itself, not an
    // envelope (`bao path-help` reads `help` at the top level; OpenAPI tools read `paths`).
    let document = request.operation == Operation::Help
        || (request.operation == Operation::Read && request.path.trim_end_matches('/') == "sys/internal/specs/openapi");

    let response = api.core.handle_request(request).await?;
    if response.is_empty() {
        // A backend may answer "nothing, with this status" (Vault's `RespondWithStatusCode(nil,
        // …, 404)`): that status with no body; otherwise an empty answer is a 204.
        let status = response.status.and_then(|s| StatusCode::from_u16(s).ok()).filter(|s| *s != StatusCode::OK);
        return Ok(bare(status.unwrap_or(StatusCode::NO_CONTENT), Bytes::new()));
    }
    if document && response.wrap_info.is_none() && let Some(data) = &response.data {
        let body = serde_json::to_vec(data).map_err(|e| Error::Internal(e.to_string()))?;
        return Ok(json_response(StatusCode::OK, Bytes::from(body)));
    }
    let status = response
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    // A wrapped response carries no request id (as Vault): the id belongs to the wrapped one.
    let rid = if response.wrap_info.is_some() { "" } else { request_id };
    let body = envelope::render(&response, rid, legacy_copy).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json_response(status, Bytes::from(body)))
}

/// Read and decode the body, enforcing the size limit before and while reading.
async fn read_body<B>(api: &Api, headers: &HeaderMap, body: B) -> Result<Map, Failure>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limit = api.config.max_request_size;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Failure::TooLarge);
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(Failure::TooLarge),
        Err(_) => return Err(Error::invalid("failed to read request body").into()),
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    Ok(body::parse(&bytes, content_type).map_err(|e| Error::invalid(e.message()))?)
}

/// The client token: `X-Vault-Token`, else `Authorization: Bearer`.
fn token_of(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok())
        && !t.is_empty() {
            return Some(Zeroizing::new(t.to_string()));
        }
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| Zeroizing::new(t.trim().to_string()))
}

/// `X-Vault-Wrap-TTL` as seconds.
fn wrap_ttl(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    match headers.get("x-vault-wrap-ttl").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(raw) => tresor_logical::parse_duration(&Value::String(raw.to_string()))
            .map(Some)
            .map_err(|_| Error::invalid(format!("error parsing X-Vault-Wrap-TTL header: {}", tresor_logical::go_duration_error(raw)))),
    }
}

fn reply((status, body): (StatusCode, Option<Value>)) -> Result<HttpResponse, Failure> {
    match body {
        None => Ok(bare(status, Bytes::new())),
        Some(v) => {
            let bytes = serde_json::to_vec(&v).map_err(|e| Error::Internal(e.to_string()))?;
            Ok(json_response(status, Bytes::from(bytes)))
        }
    }
}

fn error_response(status: StatusCode, errors: Vec<String>) -> HttpResponse {
    let body = serde_json::to_vec(&serde_json::json!({ "errors": errors })).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
    json_response(status, Bytes::from(body))
}

fn json_response(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut resp = bare(status, body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn bare(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut resp = hyper::Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether Vault also copies `data` to the top level of the answer for this `sys/` path: the
/// mounts, auth, remount, old-style policy, capabilities and key-status endpoints (measured against
/// OpenBao 2.7; newer endpoints such as `policies/acl`, `internal/ui`, `audit`, `plugins` and
/// `tools` have only the envelope, and an unwrapped response is returned as it was produced).
fn has_legacy_copy(sys_path: &str) -> bool {
    let first = sys_path.split('/').next().unwrap_or("");
    matches!(first, "mounts" | "auth" | "remount" | "policy" | "capabilities" | "capabilities-self" | "capabilities-accessor" | "key-status" | "ha-status" | "config")
}

#[cfg(test)]
mod tests {
    use super::has_legacy_copy;

    #[test]
    fn only_vaults_older_sys_endpoints_copy_data_to_the_top_level() {
        for p in ["mounts", "mounts/secret", "mounts/secret/tune", "auth", "auth/token/tune", "policy", "policy/default", "capabilities-self", "key-status"] {
            assert!(has_legacy_copy(p), "{p}");
        }
        for p in ["policies/acl/default", "internal/ui/mounts/secret", "audit", "plugins/catalog/secret/kv", "tools/random", "wrapping/unwrap", "mountsx"] {
            assert!(!has_legacy_copy(p), "{p}");
        }
    }
}
