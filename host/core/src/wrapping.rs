//! Response wrapping (API.md §9): a response is stored in the cubbyhole of a fresh single-use token
//! carrying only the built-in `response-wrapping` policy, and the client receives that token instead.
//! Unwrapping uses the token up (its last use revokes it, which destroys the cubbyhole), so a second
//! unwrap fails.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tresor_logical::{Error, Map, Response, Storage, WrapInfo};

use crate::core::Core;
use crate::token::{NewToken, TokenEntry};
use crate::util::{field, now_unix_nanos, rfc3339_nanos};

/// The policy a wrapping token carries (built in, never stored, not assignable).
pub(crate) const WRAPPING_POLICY_NAME: &str = "response-wrapping";

/// What the `response-wrapping` policy allows: reading its own response (Vault's `cubbyhole/response`)
/// and the unwrap/rewrap endpoints.
pub(crate) const WRAPPING_POLICY: &str = r#"
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
path "sys/wrapping/rewrap" {
    capabilities = ["update"]
}
"#;

/// Cubbyhole key of the wrapped response.
const RESPONSE_KEY: &str = "response";

pub(crate) const INVALID: &str = "wrapping token is not valid or does not exist";

/// The wrapped response and where it came from.
#[derive(Serialize, Deserialize)]
struct Wrapped {
    response: Response,
    creation_path: String,
    creation_time: String,
    creation_ttl: u64,
}

/// A token minted by [`Core::wrap_response`]: exactly the `response-wrapping` policy.
fn is_wrapping_token(entry: &TokenEntry) -> bool {
    entry.policies.len() == 1 && entry.policies[0] == WRAPPING_POLICY_NAME
}

impl Core {
    /// Replace `response` by a wrapping token valid for `ttl` seconds.
    pub(crate) async fn wrap_response(&self, mut response: Response, ttl: u64, creation_path: &str) -> Result<Response, Error> {
        // The stored response must carry a plugin's data parsed (`data_text` is not stored).
        response.materialize()?;
        let creation_time = rfc3339_nanos(now_unix_nanos());
        // A token's accessor, or (as Vault does for AppRole) a wrapped secret ID's accessor.
        let secret_id_accessor = || {
            let data = response.data.as_ref()?;
            data.get("secret_id")?;
            data.get("secret_id_accessor")?.as_str().map(str::to_owned)
        };
        let wrapped_accessor = response.auth.as_ref().map(|a| a.accessor.clone()).or_else(secret_id_accessor).unwrap_or_default();
        let (token, entry) = self
            .tokens
            .create(NewToken {
                id: None,
                policies: vec![WRAPPING_POLICY_NAME.into()],
                path: creation_path.to_string(),
                display_name: String::new(),
                meta: Default::default(),
                ttl,
                max_ttl: ttl,
                explicit_max_ttl: ttl,
                period: 0,
                renewable: false,
                num_uses: 1,
                parent: None,
                bound_cidrs: Vec::new(),
                role: None,
                login: None,
                batch: false,
            })
            .await?;
        let record = Wrapped { response, creation_path: creation_path.to_string(), creation_time: creation_time.clone(), creation_ttl: ttl };
        let raw = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
        self.cubbyhole_of(&entry.id_hash).put(RESPONSE_KEY, &raw).await?;
        Ok(Response {
            wrap_info: Some(WrapInfo {
                token: token.to_string(),
                accessor: entry.accessor,
                ttl,
                creation_time,
                creation_path: creation_path.to_string(),
                wrapped_accessor,
            }),
            ..Response::default()
        })
    }

    async fn read_wrapped(&self, entry: &TokenEntry) -> Result<Wrapped, Error> {
        if !is_wrapping_token(entry) {
            return Err(Error::invalid(INVALID));
        }
        let raw = self.cubbyhole_of(&entry.id_hash).get(RESPONSE_KEY).await?.ok_or_else(|| Error::invalid(INVALID))?;
        serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt wrapped response: {e}")))
    }

    /// Use up the wrapping token named in a request body and return what it wrapped.
    async fn consume(&self, token: &str) -> Result<Wrapped, Error> {
        let entry = self.tokens.lookup(token).await?.ok_or_else(|| Error::invalid(INVALID))?;
        // Checked before using the token up: a normal token named here is left alone.
        if !is_wrapping_token(&entry) {
            return Err(Error::invalid(INVALID));
        }
        let (usable, _last) = self.tokens.use_token(&entry).await?;
        if !usable {
            return Err(Error::invalid(INVALID));
        }
        let result = self.read_wrapped(&entry).await;
        self.revoke_token_tree(&entry.id_hash).await?;
        result
    }

    /// `sys/wrapping/lookup`: reachable without a token (the wrapping token itself is the credential)
    /// and does not use the token up.
    pub(crate) async fn wrapping_lookup(&self, data: &Map, header_token: Option<&str>) -> Result<Response, Error> {
        let token = field::str(data, "token")?.filter(|t| !t.is_empty()).or(header_token).unwrap_or("");
        if token.is_empty() {
            return Err(Error::invalid("missing token"));
        }
        let entry = self.tokens.lookup(token).await?.ok_or_else(|| Error::invalid(INVALID))?;
        let w = self.read_wrapped(&entry).await?;
        let mut out = Map::new();
        out.insert("creation_path".into(), json!(w.creation_path));
        out.insert("creation_time".into(), json!(w.creation_time));
        out.insert("creation_ttl".into(), json!(w.creation_ttl));
        Ok(Response::with_data(out))
    }

    /// `sys/wrapping/*` once past the ACL. `caller` is the request's token entry: for `unwrap` without
    /// a `token` field it is the wrapping token itself (already used up by the pipeline).
    pub(crate) async fn handle_wrapping(&self, caller: &TokenEntry, op: &str, data: &Map, wrap_ttl: Option<u64>) -> Result<Option<Response>, Error> {
        let body_token = field::str(data, "token")?.filter(|t| !t.is_empty());
        match op {
            "wrap" => {
                if wrap_ttl.is_none_or(|t| t == 0) {
                    return Err(Error::invalid("endpoint requires response wrapping to be used"));
                }
                if data.is_empty() {
                    return Err(Error::invalid("missing data fields"));
                }
                Ok(Some(Response::with_data(data.clone())))
            }
            "unwrap" => {
                let wrapped = match body_token {
                    Some(t) => self.consume(t).await?,
                    None => self.read_wrapped(caller).await?,
                };
                Ok(Some(wrapped.response))
            }
            "rewrap" => {
                let wrapped = match body_token {
                    Some(t) => self.consume(t).await?,
                    None => self.read_wrapped(caller).await?,
                };
                Ok(Some(self.wrap_response(wrapped.response, wrapped.creation_ttl, &wrapped.creation_path).await?))
            }
            _ => Err(Error::UnsupportedPath),
        }
    }
}
