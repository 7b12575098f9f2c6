//! The token store — for now the minimal slice init needs: create the root token, look tokens up.
//!
//! Tokens are `s.` + 33 base62 characters (≥ 196 random bits). Only a salted hash is stored:
//! `HMAC-SHA256(salt, token)`, with a random per-cluster salt kept inside the barrier; the stored hash is
//! compared with the computed one in constant time. Storage layout under the token view (`sys/token/`):
//! `salt`, `id/<hash>` → entry (JSON, never the token itself), `accessor/<hash of accessor>` → id hash.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tresor_barrier::BarrierView;
use tresor_logical::{Error, Storage};
use zeroize::Zeroizing;

use crate::util::{now_unix, random_base62};

/// Storage key of the per-cluster token salt (inside the token view).
const SALT_KEY: &str = "salt";
const ID_PREFIX: &str = "id/";
const ACCESSOR_PREFIX: &str = "accessor/";
/// Random characters after `s.`: 33 base62 characters carry more than 192 bits.
const TOKEN_CHARS: usize = 33;
const ACCESSOR_CHARS: usize = 24;

/// A stored token. Holds the hash of the token, never the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenEntry {
    /// Salted hash of the token id (hex).
    pub id_hash: String,
    /// Accessor (a second, non-secret handle).
    pub accessor: String,
    /// Policies attached to the token, sorted.
    pub policies: Vec<String>,
    /// Path that created it (`auth/token/root`, `auth/userpass/login/alice`).
    pub path: String,
    /// Display name (`root`, `token-demo`, `userpass-alice`).
    pub display_name: String,
    /// Metadata.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Unix time of creation.
    pub creation_time: i64,
    /// TTL in seconds, 0 = never expires.
    pub ttl: u64,
    /// Hard cap in seconds, 0 = none.
    #[serde(default)]
    pub explicit_max_ttl: u64,
    /// Remaining uses, 0 = unlimited.
    #[serde(default)]
    pub num_uses: u64,
    /// Hash of the parent token, if any.
    #[serde(default)]
    pub parent: Option<String>,
}

impl TokenEntry {
    /// Whether this token carries the `root` policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether the TTL has run out at `now`.
    pub fn expired_at(&self, now: i64) -> bool {
        self.ttl > 0 && now >= self.creation_time.saturating_add(self.ttl as i64)
    }
}

/// The token store, over its own barrier view.
#[derive(Debug)]
pub(crate) struct TokenStore {
    view: BarrierView,
    salt: RwLock<Option<Arc<Zeroizing<Vec<u8>>>>>,
}

impl TokenStore {
    pub(crate) fn new(view: BarrierView) -> Self {
        Self { view, salt: RwLock::new(None) }
    }

    /// Load (or create) the salt; called after every unseal.
    pub(crate) async fn setup(&self) -> Result<(), Error> {
        let salt = match self.view.get(SALT_KEY).await? {
            Some(s) => Zeroizing::new(s),
            None => {
                let mut s = Zeroizing::new(vec![0u8; 32]);
                rand::fill(&mut s[..]);
                self.view.put(SALT_KEY, &s).await?;
                s
            }
        };
        if let Ok(mut guard) = self.salt.write() {
            *guard = Some(Arc::new(salt));
        }
        Ok(())
    }

    /// Forget the salt (on seal).
    pub(crate) fn teardown(&self) {
        if let Ok(mut guard) = self.salt.write() {
            *guard = None;
        }
    }

    fn hash(&self, value: &str) -> Result<String, Error> {
        let salt = self.salt.read().ok().and_then(|g| g.clone()).ok_or(Error::Sealed)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        mac.update(value.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Create a token with the given properties. `id` forces the token value (dev root token).
    pub(crate) async fn create(
        &self,
        id: Option<&str>,
        policies: Vec<String>,
        path: &str,
        display_name: &str,
        ttl: u64,
    ) -> Result<(Zeroizing<String>, TokenEntry), Error> {
        let token = Zeroizing::new(match id {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!("s.{}", random_base62(TOKEN_CHARS)),
        });
        let accessor = random_base62(ACCESSOR_CHARS);
        let entry = TokenEntry {
            id_hash: self.hash(&token)?,
            accessor: accessor.clone(),
            policies,
            path: path.to_string(),
            display_name: display_name.to_string(),
            meta: BTreeMap::new(),
            creation_time: now_unix(),
            ttl,
            explicit_max_ttl: 0,
            num_uses: 0,
            parent: None,
        };
        let json = serde_json::to_vec(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.view.put(&format!("{ID_PREFIX}{}", entry.id_hash), &json).await?;
        self.view.put(&format!("{ACCESSOR_PREFIX}{}", self.hash(&accessor)?), entry.id_hash.as_bytes()).await?;
        Ok((token, entry))
    }

    /// Look a token up; `None` for unknown or expired tokens.
    pub(crate) async fn lookup(&self, token: &str) -> Result<Option<TokenEntry>, Error> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let hash = self.hash(token)?;
        let Some(raw) = self.view.get(&format!("{ID_PREFIX}{hash}")).await? else { return Ok(None) };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?;
        // The storage key already matched; compare again in constant time so no code path ever compares
        // token material with a short-circuiting equality.
        if !bool::from(entry.id_hash.as_bytes().ct_eq(hash.as_bytes())) || entry.expired_at(now_unix()) {
            return Ok(None);
        }
        Ok(Some(entry))
    }
}
