//! Initialisation, unseal and seal: the Shamir seal state machine.
//!
//! Key hierarchy: Shamir shares → unseal key (never stored) → root key (stored at `core/root-key`,
//! sealed by the unseal key) → barrier keyring (sealed by the root key) → data. The seal configuration
//! (`core/seal-config`) is stored in the clear and written last, so its presence means "initialised".

use std::sync::atomic::Ordering;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tresor_barrier::{keys, open_with_key, seal_with_key, shamir, KEY_LEN};
use tresor_logical::Error;
use zeroize::Zeroizing;

use crate::core::{ClusterInfo, Core};
use crate::util::random_base62;

/// Stored cluster identity (inside the barrier).
const CLUSTER_KEY: &str = "core/cluster";
/// The shortest share Vault takes: its smallest barrier key (AES-128).
const MIN_SHARE_LEN: usize = 16;
/// Vault's message when the recombined key does not open the root key.
const BAD_KEY_MESSAGE: &str =
    "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed";

/// Persisted seal configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SealConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub secret_shares: u8,
    pub secret_threshold: u8,
}

/// Shares entered so far.
#[derive(Default)]
pub(crate) struct UnsealProgress {
    parts: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

impl std::fmt::Debug for UnsealProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsealProgress").field("progress", &self.parts.len()).finish_non_exhaustive()
    }
}

/// `sys/init` parameters.
#[derive(Debug, Clone, Default)]
pub struct InitParams {
    /// Number of shares (1..=255).
    pub secret_shares: u8,
    /// Shares needed to unseal.
    pub secret_threshold: u8,
    /// Force the root token's value (dev mode only).
    pub root_token_id: Option<String>,
    /// Leave the core unsealed after init (dev mode only).
    pub stay_unsealed: bool,
}

/// `sys/init` result: the only time shares and the root token exist outside the server.
pub struct InitResult {
    /// The unseal key shares.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The initial root token.
    pub root_token: Zeroizing<String>,
}

impl std::fmt::Debug for InitResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitResult").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

/// `sys/seal-status` / `sys/unseal` body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SealStatus {
    /// Always `shamir`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether init has run.
    pub initialized: bool,
    /// Whether sealed.
    pub sealed: bool,
    /// Threshold.
    pub t: u8,
    /// Shares.
    pub n: u8,
    /// Shares entered so far.
    pub progress: usize,
    /// Identifies the current unseal attempt.
    pub nonce: String,
    /// Always false.
    pub recovery_seal: bool,
    /// Server version.
    pub version: &'static str,
    /// Build date (Vault's `commit_date`).
    pub commit_date: &'static str,
    /// Always false.
    pub migration: bool,
    /// Present when unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Present when unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Physical backend type.
    pub storage_type: &'static str,
}

/// Decode a share given as hex or base64.
/// Whether `share` is among `parts` (compared in constant time).
pub(crate) fn already_given(parts: &[Zeroizing<Vec<u8>>], share: &[u8]) -> bool {
    parts.iter().any(|p| bool::from(p.as_slice().ct_eq(share)))
}

pub(crate) fn decode_share(key: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let key = key.trim();
    // Hex first, as Vault does; hex of a length no share can have (a base64 share that happens to be
    // all hex digits) falls through to base64.
    let bytes = match hex::decode(key).map(Zeroizing::new) {
        Ok(bytes) if (MIN_SHARE_LEN..=KEY_LEN + 1).contains(&bytes.len()) => bytes,
        _ => base64::engine::general_purpose::STANDARD
            .decode(key)
            .map(Zeroizing::new)
            .map_err(|_| Error::invalid("'key' must be a valid hex or base64 string"))?,
    };
    // Vault checks the length against its barrier's key sizes (16 to 32 bytes, plus a share's x byte).
    if bytes.len() < MIN_SHARE_LEN {
        return Err(Error::invalid(format!("invalid key: key is shorter than minimum {MIN_SHARE_LEN} bytes")));
    }
    if bytes.len() > KEY_LEN + 1 {
        return Err(Error::invalid(format!("invalid key: key is longer than maximum {} bytes", KEY_LEN + 1)));
    }
    Ok(bytes)
}

impl Core {
    pub(crate) async fn load_seal_config(&self) -> Result<(), Error> {
        let raw = self.barrier.physical().get(keys::SEAL_CONFIG).await.map_err(|e| Error::Internal(e.to_string()))?;
        let config = raw
            .map(|r| serde_json::from_slice::<SealConfig>(&r))
            .transpose()
            .map_err(|e| Error::Internal(format!("corrupt seal configuration: {e}")))?;
        self.initialized.store(config.is_some(), Ordering::Release);
        if let Ok(mut guard) = self.seal_config.write() {
            *guard = config;
        }
        Ok(())
    }

    pub(crate) fn seal_config(&self) -> Option<SealConfig> {
        self.seal_config.read().ok().and_then(|c| c.clone())
    }

    pub(crate) fn set_seal_config(&self, config: SealConfig) {
        if let Ok(mut guard) = self.seal_config.write() {
            *guard = Some(config);
        }
    }

    /// The seal status.
    pub async fn seal_status(&self) -> SealStatus {
        let progress = self.progress.lock().await;
        self.status_with(&progress)
    }

    fn status_with(&self, progress: &UnsealProgress) -> SealStatus {
        let config = self.seal_config();
        let sealed = self.is_sealed();
        let cluster = if sealed { None } else { self.cluster() };
        SealStatus {
            kind: "shamir",
            initialized: config.is_some(),
            sealed,
            t: config.as_ref().map_or(0, |c| c.secret_threshold),
            n: config.as_ref().map_or(0, |c| c.secret_shares),
            progress: progress.parts.len(),
            nonce: progress.nonce.clone(),
            version: crate::VERSION,
            commit_date: crate::BUILD_DATE,
            migration: false,
            cluster_name: cluster.as_ref().map(|c| c.name.clone()),
            cluster_id: cluster.map(|c| c.id),
            recovery_seal: false,
            storage_type: self.storage_type(),
        }
    }

    /// Initialise: generate the keys, split the unseal key, create the root token.
    pub async fn init(&self, params: InitParams) -> Result<InitResult, Error> {
        let _transition = self.transition.lock().await;
        if self.is_initialized() {
            return Err(Error::invalid("Vault is already initialized"));
        }
        let mut unseal_key = Zeroizing::new([0u8; KEY_LEN]);
        let mut root_key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut unseal_key[..]);
        rand::fill(&mut root_key[..]);
        let shares = shamir::split(unseal_key.as_ref(), params.secret_shares, params.secret_threshold)
            .map_err(|e| Error::invalid(e.to_string()))?;

        let physical = self.barrier.physical().clone();
        let internal = |e: tresor_barrier::Error| Error::Internal(e.to_string());
        // A crash during an earlier init can leave a keyring without a seal configuration; its keys
        // were never handed out, so it is discarded.
        physical.delete(keys::KEYRING).await.map_err(internal)?;
        physical.delete(keys::ROOT_KEY).await.map_err(internal)?;
        self.barrier.initialize(root_key.as_ref()).await.map_err(internal)?;
        let sealed_root = seal_with_key(unseal_key.as_ref(), keys::ROOT_KEY, root_key.as_ref()).map_err(internal)?;
        physical.put(keys::ROOT_KEY, &sealed_root).await.map_err(internal)?;

        self.barrier.unseal(root_key.as_ref()).await.map_err(internal)?;
        let cluster = ClusterInfo {
            name: format!("vault-cluster-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            id: uuid::Uuid::new_v4().to_string(),
        };
        let cluster_json = serde_json::to_vec(&cluster).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(CLUSTER_KEY, &cluster_json).await.map_err(internal)?;
        self.post_unseal().await?;
        let (root_token, _) = self
            .tokens
            .create(crate::token::NewToken {
                id: params.root_token_id.as_deref().map(|s| Zeroizing::new(s.to_string())),
                policies: vec!["root".into()],
                // As Vault: a dev server given `-dev-root-token-id` makes its root token through
                // `auth/token/create`, so the token reads as created there.
                path: if params.root_token_id.is_some() { "auth/token/create" } else { "auth/token/root" }.into(),
                display_name: if params.root_token_id.is_some() { "token" } else { "root" }.into(),
                ..Default::default()
            })
            .await?;

        let config = SealConfig {
            kind: "shamir".into(),
            secret_shares: params.secret_shares,
            secret_threshold: params.secret_threshold,
        };
        let config_json = serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?;
        physical.put(keys::SEAL_CONFIG, &config_json).await.map_err(internal)?;
        if let Ok(mut guard) = self.seal_config.write() {
            *guard = Some(config);
        }
        self.initialized.store(true, Ordering::Release);
        if !params.stay_unsealed {
            self.seal_inner().await;
        }
        tracing::info!(shares = params.secret_shares, threshold = params.secret_threshold, "core initialized");
        Ok(InitResult { keys: shares, root_token })
    }

    /// Enter one share (or reset the attempt).
    pub async fn unseal(&self, key: Option<&str>, reset: bool) -> Result<SealStatus, Error> {
        let _transition = self.transition.lock().await;
        let config = self.seal_config().ok_or_else(|| Error::invalid("Vault is not initialized"))?;
        let mut progress = self.progress.lock().await;
        if reset {
            *progress = UnsealProgress::default();
            return Ok(self.status_with(&progress));
        }
        let key = key.ok_or_else(|| Error::invalid("'key' must be specified in request body as JSON, or 'reset' set to true"))?;
        let share = decode_share(key)?;
        if !self.is_sealed() {
            return Ok(self.status_with(&progress));
        }
        if already_given(&progress.parts, &share) {
            return Ok(self.status_with(&progress));
        }
        if progress.parts.is_empty() {
            progress.nonce = uuid::Uuid::new_v4().to_string();
        }
        progress.parts.push(share);
        if progress.parts.len() < config.secret_threshold as usize {
            return Ok(self.status_with(&progress));
        }
        let parts = std::mem::take(&mut *progress);
        let result = self.try_unseal(&parts.parts, config.secret_threshold).await;
        drop(parts);
        result?;
        Ok(self.status_with(&progress))
    }

    /// Combine `parts` into the unseal key and open the stored root key with it. `Ok(None)`: the
    /// shares do not make the unseal key (the caller words the refusal).
    pub(crate) async fn recover_root_key(&self, parts: &[Zeroizing<Vec<u8>>], threshold: u8) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let Ok(unseal_key) = shamir::combine(parts, threshold) else { return Ok(None) };
        let stored = self
            .barrier
            .physical()
            .get(keys::ROOT_KEY)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .ok_or_else(|| Error::Internal("root key missing from storage".into()))?;
        Ok(open_with_key(&unseal_key, keys::ROOT_KEY, &stored).ok())
    }

    async fn try_unseal(&self, parts: &[Zeroizing<Vec<u8>>], threshold: u8) -> Result<(), Error> {
        let root_key = self.recover_root_key(parts, threshold).await?.ok_or_else(|| Error::invalid(BAD_KEY_MESSAGE))?;
        self.barrier.unseal(&root_key).await.map_err(|_| Error::invalid(BAD_KEY_MESSAGE))?;
        if let Err(err) = self.post_unseal().await {
            self.seal_inner().await;
            return Err(err);
        }
        tracing::info!("core unsealed");
        Ok(())
    }

    /// Everything that must be loaded after the barrier opens.
    async fn post_unseal(&self) -> Result<(), Error> {
        self.load_rotation_config().await?;
        self.record_version().await?;
        self.load_audited_headers().await?;
        self.load_cors().await?;
        self.tokens.setup().await?;
        self.policies.setup().await?;
        let cluster = match self.barrier.get_value(CLUSTER_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?,
            None => ClusterInfo { name: format!("vault-cluster-{}", random_base62(8)), id: uuid::Uuid::new_v4().to_string() },
        };
        if let Ok(mut guard) = self.cluster.write() {
            *guard = Some(cluster);
        }
        self.load_mounts().await?;
        self.restore_leases().await?;
        self.setup_audit().await?;
        Ok(())
    }

    /// Seal: drop all key material. Idempotent.
    pub async fn seal(&self) {
        let _transition = self.transition.lock().await;
        self.seal_inner().await;
        *self.progress.lock().await = UnsealProgress::default();
        tracing::info!("core sealed");
    }

    async fn seal_inner(&self) {
        // Root-token generation and rekey attempts die with the unsealed state, as in Vault.
        *self.operator.lock().await = crate::operator::OperatorState::default();
        self.teardown_audited_headers();
        self.unload_mounts();
        self.leases.teardown();
        self.teardown_audit();
        self.tokens.teardown();
        self.policies.invalidate();
        if let Ok(mut guard) = self.cluster.write() {
            *guard = None;
        }
        self.barrier.seal().await;
    }
}
