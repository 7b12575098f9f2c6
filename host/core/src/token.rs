//! The token store: creation, lookup, renewal, revocation (with the child tree), accessors and roles.
//!
//! Tokens are `s.` + 33 base62 characters (≥ 196 random bits). Only a salted hash is stored:
//! `HMAC-SHA256(salt, token)`, with a random per-cluster salt kept inside the barrier; the stored hash is
//! compared with the computed one in constant time. Storage layout under the token view (`sys/token/`):
//!
//! * `salt`
//! * `id/<hash>` → [`TokenEntry`] (JSON, never the token itself)
//! * `accessor/<hash of accessor>` → [`AccessorEntry`]
//! * `parent/<parent hash>/<child hash>` → empty (the child index used by tree revocation)
//! * `roles/<name>` → [`TokenRole`]
//!
//! Expiry: a token is invalid from its `expire_time` on (checked at every lookup); a sweeper revokes
//! expired tokens and their children in the background ([`TokenStore::expired`]).
//!
//! Batch tokens (`b.`, Vault's lightweight tokens) are never stored: the token *is* its entry,
//! AES-256-GCM sealed under a key derived from the salt (so only this cluster can read or mint them,
//! and a seal makes them unreadable until unseal). They carry no accessor, cannot be renewed,
//! revoked, used up or have children; one with a parent stops working when its parent is revoked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tresor_barrier::BarrierView;
use tresor_logical::{Error, Login, Storage, StorageOp};
use zeroize::Zeroizing;

use crate::util::{now_unix, random_base62};

/// Storage key of the per-cluster token salt (inside the token view).
const SALT_KEY: &str = "salt";
const ID_PREFIX: &str = "id/";
const ACCESSOR_PREFIX: &str = "accessor/";
const PARENT_PREFIX: &str = "parent/";
const ROLE_PREFIX: &str = "roles/";

/// What [`TokenStore::tidy`] found.
#[derive(Debug, Default)]
pub(crate) struct TidyReport {
    /// Accessor entries of tokens that no longer exist, deleted.
    pub accessors_removed: usize,
    /// Parent links to tokens that no longer exist, deleted.
    pub links_removed: usize,
    /// Tokens to revoke: expired, or orphaned by a parent that is gone.
    pub revoke: Vec<String>,
}
/// Random characters after `s.`: 33 base62 characters carry more than 192 bits.
const TOKEN_CHARS: usize = 33;
/// A service token's length (`s.` and [`TOKEN_CHARS`]); a generated root token's one-time pad has it.
pub(crate) const TOKEN_LEN: usize = 2 + TOKEN_CHARS;
const ACCESSOR_CHARS: usize = 24;
/// Prefix of batch tokens.
pub(crate) const BATCH_PREFIX: &str = "b.";
/// Bound on a batch token's length (its metadata travels inside it).
const MAX_BATCH_TOKEN: usize = 8192;
/// Associated data of a batch token's ciphertext (and the label its key is derived with).
const BATCH_AAD: &[u8] = b"tresor/batch-token/v1";
/// `num_uses` of a token whose last use has been consumed: invalid from then on.
pub(crate) const USES_EXHAUSTED: i64 = -1;

/// Where a login token came from, for renewals through its auth method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginSource {
    /// Mount accessor of the auth method.
    pub mount_accessor: String,
    /// What the auth method returned (policies, internal data, limits).
    pub login: Login,
}

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
    /// TTL at creation in seconds, 0 = never expires.
    pub ttl: u64,
    /// Unix time the token stops working, 0 = never.
    #[serde(default)]
    pub expire_time: i64,
    /// Hard cap in seconds from creation, 0 = none.
    #[serde(default)]
    pub explicit_max_ttl: u64,
    /// Max TTL from creation that renewals may reach (mount/system max), 0 = none.
    #[serde(default)]
    pub max_ttl: u64,
    /// Periodic token: every renewal resets the TTL to this.
    #[serde(default)]
    pub period: u64,
    /// Whether renewals are allowed.
    #[serde(default)]
    pub renewable: bool,
    /// Remaining uses, 0 = unlimited, -1 = used up.
    #[serde(default)]
    pub num_uses: i64,
    /// Hash of the parent token, if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// Unix time of the last renewal.
    #[serde(default)]
    pub last_renewal_time: Option<i64>,
    /// CIDR blocks the token may be used from (empty: anywhere).
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
    /// Token role it was created through.
    #[serde(default)]
    pub role: Option<String>,
    /// The auth method login that created it.
    #[serde(default)]
    pub login: Option<LoginSource>,
    /// A batch token (never stored; see the module documentation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// What a batch token carries (sealed inside it).
#[derive(Serialize, Deserialize)]
struct BatchPayload {
    #[serde(rename = "p")]
    policies: Vec<String>,
    #[serde(rename = "h")]
    path: String,
    #[serde(rename = "d")]
    display_name: String,
    #[serde(rename = "m", default, skip_serializing_if = "BTreeMap::is_empty")]
    meta: BTreeMap<String, String>,
    #[serde(rename = "c")]
    creation_time: i64,
    #[serde(rename = "t")]
    ttl: u64,
    #[serde(rename = "e")]
    expire_time: i64,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    bound_cidrs: Vec<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

impl BatchPayload {
    /// The entry of the batch token that carries this payload (`id_hash`: the token's hash).
    fn into_entry(self, id_hash: String) -> TokenEntry {
        TokenEntry {
            id_hash,
            accessor: String::new(),
            policies: self.policies,
            path: self.path,
            display_name: self.display_name,
            meta: self.meta,
            creation_time: self.creation_time,
            ttl: self.ttl,
            expire_time: self.expire_time,
            explicit_max_ttl: 0,
            max_ttl: 0,
            period: 0,
            renewable: false,
            num_uses: 0,
            parent: self.parent,
            last_renewal_time: None,
            bound_cidrs: self.bound_cidrs,
            role: self.role,
            login: None,
            batch: true,
        }
    }
}

impl TokenEntry {
    /// Whether this token carries the `root` policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether the token is no longer valid at `now` (expired or used up).
    pub fn invalid_at(&self, now: i64) -> bool {
        self.num_uses == USES_EXHAUSTED || (self.expire_time > 0 && now >= self.expire_time)
    }

    /// Seconds left, 0 for tokens that never expire.
    pub fn remaining(&self, now: i64) -> u64 {
        if self.expire_time == 0 { 0 } else { (self.expire_time - now).max(0) as u64 }
    }
}

/// `accessor/<hash>` → which token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessorEntry {
    pub accessor: String,
    pub id_hash: String,
}

/// A token role (`auth/token/roles/:name`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct TokenRole {
    /// Role name.
    pub name: String,
    /// Policies a token of this role may carry (empty: a subset of the parent's).
    pub allowed_policies: Vec<String>,
    /// Policies it may never carry.
    pub disallowed_policies: Vec<String>,
    /// Glob patterns of allowed policies.
    pub allowed_policies_glob: Vec<String>,
    /// Glob patterns of disallowed policies.
    pub disallowed_policies_glob: Vec<String>,
    /// Tokens have no parent.
    pub orphan: bool,
    /// Tokens may be renewed.
    pub renewable: bool,
    /// Appended to the token path.
    pub path_suffix: String,
    /// Periodic tokens with this period.
    pub token_period: u64,
    /// Hard cap.
    pub token_explicit_max_ttl: u64,
    /// Default TTL of the role's tokens.
    pub token_ttl: u64,
    /// Max TTL of the role's tokens.
    pub token_max_ttl: u64,
    /// Do not attach `default`.
    pub token_no_default_policy: bool,
    /// Uses per token.
    pub token_num_uses: u64,
    /// CIDR binding.
    pub token_bound_cidrs: Vec<String>,
    /// `default-service` (or empty), `service`, `batch` or `default-batch`.
    pub token_type: String,
    /// Entity aliases a token of this role may be created for (kept and shown, as Vault; Tresor
    /// has no identity store to apply them to). `None` until set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_entity_aliases: Option<Vec<String>>,
}

/// Everything a new token is made of (TTLs already computed).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewToken {
    pub id: Option<Zeroizing<String>>,
    pub policies: Vec<String>,
    pub path: String,
    pub display_name: String,
    pub meta: BTreeMap<String, String>,
    pub ttl: u64,
    pub max_ttl: u64,
    pub explicit_max_ttl: u64,
    pub period: u64,
    pub renewable: bool,
    pub num_uses: u64,
    pub parent: Option<String>,
    pub bound_cidrs: Vec<String>,
    pub role: Option<String>,
    pub login: Option<LoginSource>,
    /// Mint a batch token.
    pub batch: bool,
}

/// The token store, over its own barrier view.
#[derive(Debug)]
pub(crate) struct TokenStore {
    view: BarrierView,
    salt: RwLock<Option<Arc<Zeroizing<Vec<u8>>>>>,
    /// (expire time, id hash) of tokens that expire; stale pairs are re-checked when due.
    expiry: Mutex<BTreeSet<(i64, String)>>,
    /// Serialises read-modify-write of entries (use counts, renewals, revocation).
    write: tokio::sync::Mutex<()>,
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))
}

impl TokenStore {
    pub(crate) fn new(view: BarrierView) -> Self {
        Self { view, salt: RwLock::new(None), expiry: Mutex::new(BTreeSet::new()), write: tokio::sync::Mutex::new(()) }
    }

    /// Load (or create) the salt and index expiring tokens; called after every unseal.
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
        let mut index = BTreeSet::new();
        for key in self.view.list(ID_PREFIX).await? {
            if let Some(e) = self.get_by_hash(&key).await?
                && e.expire_time > 0
            {
                index.insert((e.expire_time, e.id_hash));
            }
        }
        if let Ok(mut guard) = self.expiry.lock() {
            *guard = index;
        }
        Ok(())
    }

    /// Forget the salt (on seal).
    pub(crate) fn teardown(&self) {
        if let Ok(mut guard) = self.salt.write() {
            *guard = None;
        }
        if let Ok(mut guard) = self.expiry.lock() {
            guard.clear();
        }
    }

    fn hash(&self, value: &str) -> Result<String, Error> {
        let salt = self.salt.read().ok().and_then(|g| g.clone()).ok_or(Error::Sealed)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        mac.update(value.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// The batch-token cipher: AES-256-GCM under HMAC-SHA256(salt, label).
    fn batch_cipher(&self) -> Result<Aes256Gcm, Error> {
        let salt = self.salt.read().ok().and_then(|g| g.clone()).ok_or(Error::Sealed)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        mac.update(BATCH_AAD);
        let key = Zeroizing::new(mac.finalize().into_bytes().to_vec());
        <Aes256Gcm as KeyInit>::new_from_slice(&key).map_err(|e| Error::Internal(e.to_string()))
    }

    fn seal_batch(&self, payload: &BatchPayload) -> Result<Zeroizing<String>, Error> {
        let plain = Zeroizing::new(to_json(payload)?);
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let sealed = self
            .batch_cipher()?
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: BATCH_AAD })
            .map_err(|_| Error::Internal("batch token encryption failed".into()))?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        Ok(Zeroizing::new(format!("{BATCH_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))))
    }

    /// The entry a batch token carries, if this cluster sealed it (expiry not checked here).
    fn open_batch(&self, token: &str) -> Result<Option<TokenEntry>, Error> {
        let Some(body) = token.strip_prefix(BATCH_PREFIX) else { return Ok(None) };
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body) else { return Ok(None) };
        if raw.len() < 12 + 16 {
            return Ok(None);
        }
        let (nonce, sealed) = raw.split_at(12);
        let Ok(plain) = self.batch_cipher()?.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: BATCH_AAD }) else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        let p: BatchPayload = serde_json::from_slice(&plain).map_err(|e| Error::Internal(format!("corrupt batch token: {e}")))?;
        Ok(Some(p.into_entry(self.hash(token)?)))
    }

    /// A valid batch token's entry: sealed by this cluster, not expired, its parent (if any) alive.
    async fn lookup_batch(&self, token: &str) -> Result<Option<TokenEntry>, Error> {
        if token.len() > MAX_BATCH_TOKEN {
            return Ok(None);
        }
        let Some(entry) = self.open_batch(token)? else { return Ok(None) };
        if entry.invalid_at(now_unix()) {
            return Ok(None);
        }
        if let Some(parent) = &entry.parent
            && self.lookup_hash(parent).await?.is_none()
        {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    fn track_expiry(&self, entry: &TokenEntry) {
        if entry.expire_time > 0
            && let Ok(mut guard) = self.expiry.lock()
        {
            guard.insert((entry.expire_time, entry.id_hash.clone()));
        }
    }

    async fn save(&self, entry: &TokenEntry) -> Result<(), Error> {
        self.view.put(&format!("{ID_PREFIX}{}", entry.id_hash), &to_json(entry)?).await?;
        self.track_expiry(entry);
        Ok(())
    }

    /// Create a token.
    pub(crate) async fn create(&self, new: NewToken) -> Result<(Zeroizing<String>, TokenEntry), Error> {
        if new.batch {
            return self.create_batch(new);
        }
        let token = match new.id {
            Some(id) if !id.is_empty() => id,
            _ => Zeroizing::new(format!("s.{}", random_base62(TOKEN_CHARS))),
        };
        let id_hash = self.hash(&token)?;
        if self.view.get(&format!("{ID_PREFIX}{id_hash}")).await?.is_some() {
            return Err(Error::invalid("cannot create a token with a duplicate ID"));
        }
        let accessor = random_base62(ACCESSOR_CHARS);
        let now = now_unix();
        let entry = TokenEntry {
            id_hash: id_hash.clone(),
            accessor: accessor.clone(),
            policies: new.policies,
            path: new.path,
            display_name: new.display_name,
            meta: new.meta,
            creation_time: now,
            ttl: new.ttl,
            expire_time: if new.ttl > 0 { now.saturating_add(new.ttl as i64) } else { 0 },
            explicit_max_ttl: new.explicit_max_ttl,
            max_ttl: new.max_ttl,
            period: new.period,
            renewable: new.renewable,
            num_uses: i64::try_from(new.num_uses).map_err(|_| Error::invalid("num_uses is too large"))?,
            parent: new.parent,
            last_renewal_time: None,
            bound_cidrs: new.bound_cidrs,
            role: new.role,
            login: new.login,
            batch: false,
        };
        let mut ops = vec![
            StorageOp::Put(format!("{ID_PREFIX}{id_hash}"), to_json(&entry)?),
            StorageOp::Put(
                format!("{ACCESSOR_PREFIX}{}", self.hash(&accessor)?),
                to_json(&AccessorEntry { accessor, id_hash: id_hash.clone() })?,
            ),
        ];
        if let Some(parent) = &entry.parent {
            ops.push(StorageOp::Put(format!("{PARENT_PREFIX}{parent}/{id_hash}"), Vec::new()));
        }
        self.view.transaction(ops).await?;
        self.track_expiry(&entry);
        Ok((token, entry))
    }

    /// A batch token: nothing is stored. The caller has refused what batch tokens cannot have
    /// (a use limit, a period, an explicit max TTL, root policies, a custom id).
    fn create_batch(&self, new: NewToken) -> Result<(Zeroizing<String>, TokenEntry), Error> {
        let now = now_unix();
        let payload = BatchPayload {
            policies: new.policies,
            path: new.path,
            display_name: new.display_name,
            meta: new.meta,
            creation_time: now,
            ttl: new.ttl,
            expire_time: if new.ttl > 0 { now.saturating_add(new.ttl as i64) } else { 0 },
            parent: new.parent,
            bound_cidrs: new.bound_cidrs,
            role: new.role,
        };
        let token = self.seal_batch(&payload)?;
        let id_hash = self.hash(&token)?;
        Ok((token, payload.into_entry(id_hash)))
    }

    async fn get_by_hash(&self, hash: &str) -> Result<Option<TokenEntry>, Error> {
        let Some(raw) = self.view.get(&format!("{ID_PREFIX}{hash}")).await? else { return Ok(None) };
        serde_json::from_slice(&raw).map(Some).map_err(|e| Error::Internal(format!("corrupt token entry: {e}")))
    }

    /// Look a token up; `None` for unknown, expired or used-up tokens.
    pub(crate) async fn lookup(&self, token: &str) -> Result<Option<TokenEntry>, Error> {
        if token.starts_with(BATCH_PREFIX) {
            return self.lookup_batch(token).await;
        }
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let hash = self.hash(token)?;
        let Some(entry) = self.get_by_hash(&hash).await? else { return Ok(None) };
        // The storage key already matched; compare again in constant time so no code path ever compares
        // token material with a short-circuiting equality.
        if !bool::from(entry.id_hash.as_bytes().ct_eq(hash.as_bytes())) || entry.invalid_at(now_unix()) {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// A valid token by its stored hash.
    pub(crate) async fn lookup_hash(&self, hash: &str) -> Result<Option<TokenEntry>, Error> {
        Ok(self.get_by_hash(hash).await?.filter(|e| !e.invalid_at(now_unix())))
    }

    /// A valid token by accessor.
    pub(crate) async fn lookup_accessor(&self, accessor: &str) -> Result<Option<TokenEntry>, Error> {
        if accessor.is_empty() || accessor.len() > 256 {
            return Ok(None);
        }
        let Some(raw) = self.view.get(&format!("{ACCESSOR_PREFIX}{}", self.hash(accessor)?)).await? else { return Ok(None) };
        let a: AccessorEntry = serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt accessor entry: {e}")))?;
        if !bool::from(a.accessor.as_bytes().ct_eq(accessor.as_bytes())) {
            return Ok(None);
        }
        self.lookup_hash(&a.id_hash).await
    }

    /// Every accessor.
    pub(crate) async fn accessors(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for key in self.view.list(ACCESSOR_PREFIX).await? {
            if let Some(raw) = self.view.get(&format!("{ACCESSOR_PREFIX}{key}")).await?
                && let Ok(a) = serde_json::from_slice::<AccessorEntry>(&raw)
            {
                out.push(a.accessor);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Count one use of a limited-use token. Returns `false` if the token has no use left (the request
    /// must be refused) and whether this was the last use (the token must be revoked after the request).
    pub(crate) async fn use_token(&self, entry: &TokenEntry) -> Result<(bool, bool), Error> {
        if entry.num_uses == 0 {
            return Ok((true, false));
        }
        let _guard = self.write.lock().await;
        let Some(mut current) = self.get_by_hash(&entry.id_hash).await? else { return Ok((false, false)) };
        if current.num_uses <= 0 {
            return Ok((current.num_uses == 0, false));
        }
        current.num_uses -= 1;
        let last = current.num_uses == 0;
        if last {
            current.num_uses = USES_EXHAUSTED;
        }
        self.save(&current).await?;
        Ok((true, last))
    }

    /// Extend a token. `increment` 0 means "by its original TTL".
    pub(crate) async fn renew(&self, entry: &TokenEntry, increment: u64) -> Result<TokenEntry, Error> {
        if entry.batch {
            return Err(Error::invalid("batch tokens cannot be renewed"));
        }
        let _guard = self.write.lock().await;
        let mut e = self.lookup_hash(&entry.id_hash).await?.ok_or(Error::PermissionDenied)?;
        if !e.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        if e.expire_time == 0 {
            return Ok(e);
        }
        let now = now_unix();
        let want = if e.period > 0 { e.period } else if increment > 0 { increment } else { e.ttl };
        let mut expire = now.saturating_add(want as i64);
        if e.period == 0 && e.max_ttl > 0 {
            expire = expire.min(e.creation_time.saturating_add(e.max_ttl as i64));
        }
        if e.explicit_max_ttl > 0 {
            expire = expire.min(e.creation_time.saturating_add(e.explicit_max_ttl as i64));
        }
        e.expire_time = expire.max(now);
        e.last_renewal_time = Some(now);
        self.save(&e).await?;
        Ok(e)
    }

    /// Revoke a token and all its descendants. Returns the id hashes revoked (for cubbyhole cleanup).
    pub(crate) async fn revoke_tree(&self, id_hash: &str) -> Result<Vec<String>, Error> {
        let _guard = self.write.lock().await;
        let mut revoked = Vec::new();
        let mut stack = vec![id_hash.to_string()];
        while let Some(hash) = stack.pop() {
            for child in self.view.list(&format!("{PARENT_PREFIX}{hash}/")).await? {
                stack.push(child.trim_end_matches('/').to_string());
            }
            self.remove(&hash).await?;
            revoked.push(hash);
        }
        Ok(revoked)
    }

    /// Revoke only this token; its children become orphans.
    pub(crate) async fn revoke_orphan(&self, id_hash: &str) -> Result<(), Error> {
        let _guard = self.write.lock().await;
        for child in self.view.list(&format!("{PARENT_PREFIX}{id_hash}/")).await? {
            if let Some(mut c) = self.get_by_hash(child.trim_end_matches('/')).await? {
                c.parent = None;
                self.save(&c).await?;
            }
        }
        self.remove(id_hash).await
    }

    /// Vault's `auth/token/tidy` sweep over the store's indexes: accessor entries and parent links
    /// whose token is gone are deleted. Returns the tokens to revoke (with their children): those
    /// past their expiry, and those whose parent is gone.
    pub(crate) async fn tidy(&self, now: i64) -> Result<TidyReport, Error> {
        let _guard = self.write.lock().await;
        let mut report = TidyReport::default();
        for key in self.view.list(ACCESSOR_PREFIX).await? {
            let path = format!("{ACCESSOR_PREFIX}{key}");
            let dangling = match self.view.get(&path).await? {
                Some(raw) => match serde_json::from_slice::<AccessorEntry>(&raw) {
                    Ok(a) => self.get_by_hash(&a.id_hash).await?.is_none(),
                    Err(_) => true,
                },
                None => false,
            };
            if dangling {
                self.view.delete(&path).await?;
                report.accessors_removed += 1;
            }
        }
        for parent in self.view.list(PARENT_PREFIX).await? {
            let parent = parent.trim_end_matches('/');
            let parent_gone = self.get_by_hash(parent).await?.is_none();
            for child in self.view.list(&format!("{PARENT_PREFIX}{parent}/")).await? {
                let child = child.trim_end_matches('/');
                if self.get_by_hash(child).await?.is_none() {
                    self.view.delete(&format!("{PARENT_PREFIX}{parent}/{child}")).await?;
                    report.links_removed += 1;
                } else if parent_gone {
                    report.revoke.push(child.to_string());
                }
            }
        }
        for hash in self.view.list(ID_PREFIX).await? {
            if let Some(e) = self.get_by_hash(&hash).await?
                && e.expire_time > 0
                && e.expire_time <= now
                && !report.revoke.contains(&hash)
            {
                report.revoke.push(hash);
            }
        }
        Ok(report)
    }

    /// Delete one token's entries (not its children).
    async fn remove(&self, hash: &str) -> Result<(), Error> {
        let mut ops = Vec::new();
        if let Some(e) = self.get_by_hash(hash).await? {
            ops.push(StorageOp::Delete(format!("{ACCESSOR_PREFIX}{}", self.hash(&e.accessor)?)));
            if let Some(parent) = &e.parent {
                ops.push(StorageOp::Delete(format!("{PARENT_PREFIX}{parent}/{hash}")));
            }
        }
        for child in self.view.list(&format!("{PARENT_PREFIX}{hash}/")).await? {
            ops.push(StorageOp::Delete(format!("{PARENT_PREFIX}{hash}/{}", child.trim_end_matches('/'))));
        }
        ops.push(StorageOp::Delete(format!("{ID_PREFIX}{hash}")));
        self.view.transaction(ops).await.map_err(Error::from)
    }

    /// Tokens whose expiry time has passed (taken out of the index; the caller revokes them).
    pub(crate) async fn expired(&self, now: i64) -> Result<Vec<String>, Error> {
        let due: Vec<(i64, String)> = match self.expiry.lock() {
            Ok(mut index) => {
                let later = index.split_off(&(now.saturating_add(1), String::new()));
                std::mem::replace(&mut *index, later).into_iter().collect()
            }
            Err(_) => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for (_, hash) in due {
            // The index may be stale (renewed since): re-check the entry.
            if let Some(e) = self.get_by_hash(&hash).await? {
                if e.expire_time > 0 && e.expire_time <= now {
                    out.push(hash);
                } else {
                    self.track_expiry(&e);
                }
            }
        }
        Ok(out)
    }

    /// Valid tokens that expire and whose lease id lies under `prefix` (token leases).
    pub(crate) async fn expiring_under(&self, prefix: &str) -> Result<Vec<TokenEntry>, Error> {
        let now = now_unix();
        let mut out = Vec::new();
        for key in self.view.list(ID_PREFIX).await? {
            if let Some(e) = self.get_by_hash(&key).await?
                && e.expire_time > 0
                && !e.invalid_at(now)
                && crate::expiration::token_lease_id(&e).starts_with(prefix)
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Hashes of the tokens minted by logins through the auth mount with `accessor`.
    pub(crate) async fn issued_by_mount(&self, accessor: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for key in self.view.list(ID_PREFIX).await? {
            if let Some(e) = self.get_by_hash(&key).await?
                && e.login.as_ref().is_some_and(|l| l.mount_accessor == accessor)
            {
                out.push(e.id_hash);
            }
        }
        Ok(out)
    }

    pub(crate) async fn role(&self, name: &str) -> Result<Option<TokenRole>, Error> {
        let Some(raw) = self.view.get(&format!("{ROLE_PREFIX}{name}")).await? else { return Ok(None) };
        serde_json::from_slice(&raw).map(Some).map_err(|e| Error::Internal(format!("corrupt token role: {e}")))
    }

    pub(crate) async fn put_role(&self, role: &TokenRole) -> Result<(), Error> {
        self.view.put(&format!("{ROLE_PREFIX}{}", role.name), &to_json(role)?).await.map_err(Error::from)
    }

    pub(crate) async fn delete_role(&self, name: &str) -> Result<(), Error> {
        self.view.delete(&format!("{ROLE_PREFIX}{name}")).await.map_err(Error::from)
    }

    pub(crate) async fn roles(&self) -> Result<Vec<String>, Error> {
        self.view.list(ROLE_PREFIX).await.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tresor_logical::Storage as _;

    use crate::{Core, InitParams};

    async fn core() -> Arc<Core> {
        let physical = Arc::new(tresor_barrier::physical::InmemBackend::new());
        let core = Core::new(physical, crate::CoreConfig::default()).await.unwrap();
        core.init(InitParams { secret_shares: 1, secret_threshold: 1, root_token_id: None, stay_unsealed: true }).await.unwrap();
        core
    }

    fn new_token(parent: Option<String>) -> super::NewToken {
        super::NewToken { policies: vec!["default".into()], parent, display_name: "t".into(), ..Default::default() }
    }

    #[tokio::test]
    async fn tidy_removes_dangling_index_entries_and_finds_what_to_revoke() {
        let core = core().await;
        let store = &core.tokens;
        let (_, parent) = store.create(new_token(None)).await.unwrap();
        let (_, child) = store.create(new_token(Some(parent.id_hash.clone()))).await.unwrap();
        let (_, gone) = store.create(new_token(None)).await.unwrap();
        let (_, kept) = store.create(super::NewToken { ttl: 3600, ..new_token(None) }).await.unwrap();
        // What a crash between writes could leave: token entries gone, their index entries not.
        store.view.delete(&format!("{}{}", super::ID_PREFIX, gone.id_hash)).await.unwrap();
        store.view.delete(&format!("{}{}", super::ID_PREFIX, parent.id_hash)).await.unwrap();
        let report = store.tidy(crate::util::now_unix()).await.unwrap();
        assert_eq!(report.accessors_removed, 2, "the two tokens whose entries are gone");
        assert_eq!(report.revoke, vec![child.id_hash.clone()], "a child whose parent is gone");
        assert!(store.lookup_accessor(&kept.accessor).await.unwrap().is_some());
        // Nothing left to do the second time (the child is only revoked by the caller).
        let again = store.tidy(crate::util::now_unix()).await.unwrap();
        assert_eq!((again.accessors_removed, again.links_removed), (0, 0));
        // Expired tokens are found too.
        let later = crate::util::now_unix() + 10 * 365 * 24 * 3600;
        let expired = store.tidy(later).await.unwrap();
        assert!(expired.revoke.contains(&kept.id_hash), "{:?}", expired.revoke);
    }
}
