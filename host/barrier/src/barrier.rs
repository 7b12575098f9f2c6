//! The encryption barrier: everything above it sees plaintext, everything below it ciphertext.
//!
//! Value layout: `version (1) | term (4, BE) | nonce (12) | AES-256-GCM ciphertext + tag (16)`, with the
//! storage path as associated data, so a value copied to another path fails to open. Each write uses a
//! fresh random 96-bit nonce; the active key is rotated after a configurable number of encryptions,
//! well before the 2^32 random-nonce bound for GCM. The keyring lives at [`keys::KEYRING`], sealed by the
//! root key (term 0 in the header).
//!
//! Invariants: the unsealed state is swapped atomically as one `Arc`; no lock is held across an await;
//! key material is dropped (zeroized) on seal.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use tresor_logical::{Storage, StorageOp, StorageResult};
use zeroize::Zeroizing;

use crate::keyring::{Keyring, KEY_LEN};
use crate::physical::Backend;
use crate::{keys, Error};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Term number written in the header of values sealed directly by the root (or unseal) key.
const ROOT_TERM: u32 = 0;
/// Default number of encryptions after which the active key is rotated: Vault's 3,865,470,566, 90% of
/// the 2^32 invocations NIST SP 800-38D allows one key with random 96-bit nonces. Also the most
/// `sys/rotate/config` accepts.
pub const DEFAULT_ROTATION_THRESHOLD: u64 = 3_865_470_566;
/// The fewest encryptions `sys/rotate/config` accepts between rotations (Vault's bound).
pub const MIN_ROTATION_THRESHOLD: u64 = 1_000_000;
/// The shortest rotation interval `sys/rotate/config` accepts (Vault's bound), in seconds.
pub const MIN_ROTATION_INTERVAL: u64 = 24 * 3600;
/// The keyring stores an upper bound of the active key's encryption count, this much above the
/// count when written, renewed when the count comes within half of it. After a crash the count
/// resumes at that bound (over-counting by less than this, never under-counting); a seal stores the
/// exact count, so after a clean restart `sys/key-status` reads true.
const RESERVE: u64 = 1 << 16;

/// Fill `buf` from the thread-local CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) {
    rand::fill(buf);
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn encrypt(cipher: &Aes256Gcm, term: u32, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: path.as_bytes() })
        .map_err(|_| Error::Corrupt("encryption failed"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Split a stored value into (term, nonce, ciphertext).
fn parse(value: &[u8]) -> Result<(u32, &[u8], &[u8]), Error> {
    if value.len() < HEADER_LEN + 16 {
        return Err(Error::Corrupt("value too short"));
    }
    if value[0] != VERSION {
        return Err(Error::Corrupt("unknown version"));
    }
    let term = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    Ok((term, &value[5..HEADER_LEN], &value[HEADER_LEN..]))
}

fn decrypt(cipher: &Aes256Gcm, path: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: path.as_bytes() })
        .map(Zeroizing::new)
        .map_err(|_| Error::Decrypt)
}

fn cipher_for(key: &[u8]) -> Result<Aes256Gcm, Error> {
    Aes256Gcm::new_from_slice(key).map_err(|_| Error::KeyLength)
}

/// Seal `plaintext` stored at `path` with a single key (not from the keyring).
pub fn seal_with_key(key: &[u8], path: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    encrypt(&cipher_for(key)?, ROOT_TERM, path, plaintext)
}

/// Open a value sealed by [`seal_with_key`].
pub fn open_with_key(key: &[u8], path: &str, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (term, nonce, ct) = parse(value)?;
    if term != ROOT_TERM {
        return Err(Error::Corrupt("unexpected term"));
    }
    decrypt(&cipher_for(key)?, path, nonce, ct)
}

/// The state that exists only while unsealed.
struct Unsealed {
    root_key: Zeroizing<[u8; KEY_LEN]>,
    keyring: Keyring,
    ciphers: HashMap<u32, Aes256Gcm>,
    active_term: u32,
}

impl Unsealed {
    fn new(root_key: Zeroizing<[u8; KEY_LEN]>, keyring: Keyring) -> Result<Self, Error> {
        let ciphers = keyring
            .keys()
            .iter()
            .map(|k| Ok((k.term, cipher_for(k.value.as_ref())?)))
            .collect::<Result<HashMap<_, _>, Error>>()?;
        let active_term = keyring.active().term;
        Ok(Self { root_key, keyring, ciphers, active_term })
    }
}

/// `sys/key-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Active term.
    pub term: u32,
    /// Unix time the active key was installed.
    pub install_time: i64,
    /// Encryptions with the active key.
    pub encryptions: u64,
}

/// Automatic rotation of the active key (`sys/rotate/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationConfig {
    /// Whether the barrier rotates on its own at all.
    pub enabled: bool,
    /// Rotate after this many encryptions with the active key.
    pub max_operations: u64,
    /// Rotate when the active key is this many seconds old; 0: never by age.
    pub interval: u64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self { enabled: true, max_operations: DEFAULT_ROTATION_THRESHOLD, interval: 0 }
    }
}

/// The AES-256-GCM barrier over a physical backend.
pub struct Barrier {
    physical: Arc<dyn Backend>,
    state: RwLock<Option<Arc<Unsealed>>>,
    encryptions: AtomicU64,
    /// The upper bound of `encryptions` stored in the keyring (see [`RESERVE`]).
    reserved: AtomicU64,
    /// Rotate at this many encryptions (`u64::MAX` when automatic rotation is off).
    rotation_threshold: AtomicU64,
    rotation: RwLock<RotationConfig>,
    rotate_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("physical", &self.physical.kind())
            .field("sealed", &self.is_sealed())
            .finish()
    }
}

impl Barrier {
    /// A sealed barrier over `physical`.
    pub fn new(physical: Arc<dyn Backend>) -> Self {
        Self::with_rotation_threshold(physical, DEFAULT_ROTATION_THRESHOLD)
    }

    /// A sealed barrier that rotates its key after `threshold` encryptions.
    pub fn with_rotation_threshold(physical: Arc<dyn Backend>, threshold: u64) -> Self {
        Self {
            physical,
            state: RwLock::new(None),
            encryptions: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            rotation_threshold: AtomicU64::new(threshold.max(1)),
            rotation: RwLock::new(RotationConfig { max_operations: threshold.max(1), ..RotationConfig::default() }),
            rotate_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Change automatic rotation. The caller validates the bounds and persists the setting.
    pub fn set_rotation(&self, config: RotationConfig) {
        let threshold = if config.enabled { config.max_operations.max(1) } else { u64::MAX };
        self.rotation_threshold.store(threshold, Ordering::SeqCst);
        if let Ok(mut guard) = self.rotation.write() {
            *guard = config;
        }
    }

    /// The automatic rotation in force.
    pub fn rotation(&self) -> RotationConfig {
        self.rotation.read().map(|g| *g).unwrap_or_default()
    }

    /// Rotate if automatic rotation is on with an interval and the active key is at least that
    /// old at `now` (unix seconds). Returns whether it rotated.
    pub async fn rotate_if_due(&self, now: i64) -> Result<bool, Error> {
        let config = self.rotation();
        if !config.enabled || config.interval == 0 {
            return Ok(false);
        }
        let due = |state: Arc<Unsealed>| {
            let age = now.saturating_sub(state.keyring.active().install_time);
            u64::try_from(age).is_ok_and(|age| age >= config.interval)
        };
        if !due(self.current()?) {
            return Ok(false);
        }
        let guard = self.rotate_lock.lock().await;
        // Another caller may have rotated while we waited.
        if !due(self.current()?) {
            return Ok(false);
        }
        self.rotate_locked().await?;
        drop(guard);
        Ok(true)
    }

    /// The physical backend underneath.
    pub fn physical(&self) -> &Arc<dyn Backend> {
        &self.physical
    }

    fn current(&self) -> Result<Arc<Unsealed>, Error> {
        self.state.read().map_err(|_| Error::Sealed)?.clone().ok_or(Error::Sealed)
    }

    fn install(&self, unsealed: Option<Unsealed>) {
        if let Ok(mut guard) = self.state.write() {
            *guard = unsealed.map(Arc::new);
        }
    }

    /// Whether the barrier has been initialised (a keyring exists).
    pub async fn is_initialized(&self) -> Result<bool, Error> {
        Ok(self.physical.get(keys::KEYRING).await?.is_some())
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.current().is_err()
    }

    /// Create the first keyring, sealed by `root_key`. Leaves the barrier sealed.
    pub async fn initialize(&self, root_key: &[u8]) -> Result<(), Error> {
        if root_key.len() != KEY_LEN {
            return Err(Error::KeyLength);
        }
        if self.is_initialized().await? {
            return Err(Error::AlreadyInitialized);
        }
        let keyring = Keyring::generate(now_unix());
        let sealed = seal_with_key(root_key, keys::KEYRING, &keyring.to_bytes())?;
        self.physical.put(keys::KEYRING, &sealed).await
    }

    /// Open the keyring with `root_key` and start serving.
    pub async fn unseal(&self, root_key: &[u8]) -> Result<(), Error> {
        let root: [u8; KEY_LEN] = root_key.try_into().map_err(|_| Error::KeyLength)?;
        let stored = self.physical.get(keys::KEYRING).await?.ok_or(Error::NotInitialized)?;
        let bytes = open_with_key(&root, keys::KEYRING, &stored)?;
        let keyring = Keyring::from_bytes(&bytes)?;
        // The stored count: exact after a seal, an upper bound after a crash. Never under-counts.
        let resumed = keyring.encryptions;
        self.encryptions.store(resumed, Ordering::SeqCst);
        self.install(Some(Unsealed::new(Zeroizing::new(root), keyring)?));
        // Reserve before serving a write, so a crash from now on resumes above every use.
        let _guard = self.rotate_lock.lock().await;
        if let Err(e) = self.store_count_locked(resumed.saturating_add(RESERVE)).await {
            self.install(None);
            return Err(e);
        }
        Ok(())
    }

    /// Drop all key material. Stores the exact encryption count first (best effort: if it fails,
    /// the stored upper bound stands).
    pub async fn seal(&self) {
        let _guard = self.rotate_lock.lock().await;
        // Refuse new writes first, then count what was written.
        let Ok(state) = self.current() else { return };
        self.install(None);
        let _ = self.store_count(&state, self.encryptions.load(Ordering::SeqCst)).await;
    }

    /// Write the keyring with `count` as the active key's encryption count (and remember it as the
    /// reservation). The caller holds `rotate_lock`, so the keyring written is the current one:
    /// a rotation can never be overwritten by an older keyring.
    async fn store_count_locked(&self, count: u64) -> Result<(), Error> {
        let state = self.current()?;
        self.store_count(&state, count).await
    }

    async fn store_count(&self, state: &Unsealed, count: u64) -> Result<(), Error> {
        let mut ring = state.keyring.clone();
        ring.encryptions = count;
        let sealed = seal_with_key(state.root_key.as_ref(), keys::KEYRING, &ring.to_bytes())?;
        self.physical.put(keys::KEYRING, &sealed).await?;
        self.reserved.store(count, Ordering::SeqCst);
        Ok(())
    }

    /// Install a new active key; existing values stay readable under their old term.
    pub async fn rotate(&self) -> Result<KeyStatus, Error> {
        let _guard = self.rotate_lock.lock().await;
        self.rotate_locked().await
    }

    /// [`Barrier::rotate`] for a caller that holds `rotate_lock`.
    async fn rotate_locked(&self) -> Result<KeyStatus, Error> {
        let state = self.current()?;
        let mut rotated = state.keyring.rotated(now_unix());
        rotated.encryptions = RESERVE;
        let sealed = seal_with_key(state.root_key.as_ref(), keys::KEYRING, &rotated.to_bytes())?;
        self.physical.put(keys::KEYRING, &sealed).await?;
        let next = Unsealed::new(state.root_key.clone(), rotated)?;
        self.encryptions.store(0, Ordering::SeqCst);
        self.reserved.store(RESERVE, Ordering::SeqCst);
        self.install(Some(next));
        tracing::info!(term = self.key_status()?.term, "barrier key rotated");
        self.key_status()
    }

    /// The active term, its install time and encryption count.
    pub fn key_status(&self) -> Result<KeyStatus, Error> {
        let state = self.current()?;
        let active = state.keyring.active();
        Ok(KeyStatus {
            term: active.term,
            install_time: active.install_time,
            encryptions: self.encryptions.load(Ordering::SeqCst),
        })
    }

    /// Count one encryption; rotate or persist the counter when due.
    async fn count_encryption(&self) -> Result<(), Error> {
        let n = self.encryptions.fetch_add(1, Ordering::SeqCst) + 1;
        let threshold = self.rotation_threshold.load(Ordering::Relaxed);
        if n >= threshold {
            let _guard = self.rotate_lock.lock().await;
            // Another writer may have rotated while we waited.
            if self.encryptions.load(Ordering::SeqCst) >= threshold {
                self.rotate_locked().await?;
            }
        } else if n.saturating_add(RESERVE / 2) >= self.reserved.load(Ordering::SeqCst) {
            let _guard = self.rotate_lock.lock().await;
            // Another writer may have renewed the reservation (or rotated) while we waited.
            let now = self.encryptions.load(Ordering::SeqCst);
            if now.saturating_add(RESERVE / 2) >= self.reserved.load(Ordering::SeqCst) {
                self.store_count_locked(now.saturating_add(RESERVE)).await?;
            }
        }
        Ok(())
    }

    /// Encrypt and store.
    pub async fn put_value(&self, path: &str, value: &[u8]) -> Result<(), Error> {
        let sealed = {
            let state = self.current()?;
            let cipher = state.ciphers.get(&state.active_term).ok_or(Error::Corrupt("no active key"))?;
            encrypt(cipher, state.active_term, path, value)?
        };
        self.physical.put(path, &sealed).await?;
        self.count_encryption().await
    }

    /// Load and decrypt every entry under `prefix` in one physical scan (sorted by key).
    pub async fn scan_values(&self, prefix: &str) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>, Error> {
        let rows = self.physical.scan_prefix(prefix).await?;
        let state = self.current()?;
        rows.into_iter()
            .map(|(key, stored)| {
                let (term, nonce, ct) = parse(&stored)?;
                let cipher = state.ciphers.get(&term).ok_or(Error::Corrupt("unknown key term"))?;
                let plain = decrypt(cipher, &key, nonce, ct)?;
                Ok((key, plain))
            })
            .collect()
    }

    /// Load and decrypt.
    pub async fn get_value(&self, path: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let state = self.current()?;
        let Some(stored) = self.physical.get(path).await? else { return Ok(None) };
        let (term, nonce, ct) = parse(&stored)?;
        let cipher = state.ciphers.get(&term).ok_or(Error::Corrupt("unknown key term"))?;
        decrypt(cipher, path, nonce, ct).map(Some)
    }
}

#[async_trait]
impl Storage for Barrier {
    async fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        match self.get_value(key).await {
            Ok(v) => Ok(v.map(|z| z.to_vec())),
            Err(Error::Decrypt) | Err(Error::Corrupt(_)) => Err(tresor_logical::StorageError::Decrypt(key.into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(&self, key: &str, value: &[u8]) -> StorageResult<()> {
        Ok(self.put_value(key, value).await?)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.current()?;
        Ok(self.physical.delete(key).await?)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.current()?;
        Ok(self.physical.list(prefix).await?)
    }

    /// Encrypt every value (each with its own path as associated data), then write them all in one
    /// physical transaction: all or nothing, one fsync.
    async fn transaction(&self, ops: Vec<StorageOp>) -> StorageResult<()> {
        let (physical_ops, puts) = self.seal_ops(ops)?;
        self.physical.transaction(physical_ops).await?;
        for _ in 0..puts {
            self.count_encryption().await?;
        }
        Ok(())
    }

    /// As [`Barrier::transaction`], queued: the encryptions are counted first, so the physical
    /// queueing is the last step and a caller dropped after it returns leaves nothing half done.
    async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> StorageResult<tresor_logical::Submitted> {
        let (physical_ops, puts) = self.seal_ops(ops)?;
        for _ in 0..puts {
            self.count_encryption().await?;
        }
        let (ticket, done) = self.physical.submit(physical_ops, after).await?;
        Ok(tresor_logical::Submitted { ticket, done: Box::pin(async move { Ok(done.await?) }) })
    }
}

impl Barrier {
    /// Encrypt the values of `ops` under the active key; also returns how many there were.
    fn seal_ops(&self, ops: Vec<StorageOp>) -> Result<(Vec<StorageOp>, u64), Error> {
        let mut puts = 0u64;
        let state = self.current()?;
        let cipher = state.ciphers.get(&state.active_term).ok_or(Error::Corrupt("no active key"))?;
        let sealed = ops
            .into_iter()
            .map(|op| match op {
                StorageOp::Put(k, v) => {
                    puts += 1;
                    let sealed = encrypt(cipher, state.active_term, &k, &v)?;
                    Ok(StorageOp::Put(k, sealed))
                }
                delete @ StorageOp::Delete(_) => Ok(delete),
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((sealed, puts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::InmemBackend;

    async fn unsealed(threshold: u64) -> (Arc<InmemBackend>, Barrier, [u8; 32]) {
        let physical = Arc::new(InmemBackend::new());
        let barrier = Barrier::with_rotation_threshold(physical.clone(), threshold);
        let root = [7u8; 32];
        barrier.initialize(&root).await.unwrap();
        barrier.unseal(&root).await.unwrap();
        (physical, barrier, root)
    }

    #[tokio::test]
    async fn round_trips_and_stores_no_plaintext() {
        let (physical, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.put("secret/a", b"hunter2-plaintext").await.unwrap();
        assert_eq!(barrier.get("secret/a").await.unwrap().unwrap(), b"hunter2-plaintext");
        let raw = physical.get("secret/a").await.unwrap().unwrap();
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
    }

    #[tokio::test]
    async fn a_value_copied_to_another_path_fails_to_decrypt() {
        let (physical, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.put("a", b"value").await.unwrap();
        let raw = physical.get("a").await.unwrap().unwrap();
        physical.put("b", &raw).await.unwrap();
        assert!(matches!(barrier.get("b").await, Err(tresor_logical::StorageError::Decrypt(_))));
    }

    #[tokio::test]
    async fn a_flipped_bit_fails_to_decrypt() {
        let (physical, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.put("a", b"value").await.unwrap();
        let mut raw = physical.get("a").await.unwrap().unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        physical.put("a", &raw).await.unwrap();
        assert!(barrier.get("a").await.is_err());
    }

    #[tokio::test]
    async fn rotation_keeps_old_values_and_uses_the_new_term() {
        let (physical, barrier, root) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.put("old", b"1").await.unwrap();
        let status = barrier.rotate().await.unwrap();
        assert_eq!(status.term, 2);
        barrier.put("new", b"2").await.unwrap();
        assert_eq!(parse(&physical.get("old").await.unwrap().unwrap()).unwrap().0, 1);
        assert_eq!(parse(&physical.get("new").await.unwrap().unwrap()).unwrap().0, 2);
        // Survives seal + unseal.
        barrier.seal().await;
        assert!(barrier.get("old").await.is_err());
        barrier.unseal(&root).await.unwrap();
        assert_eq!(barrier.get("old").await.unwrap().unwrap(), b"1");
        assert_eq!(barrier.get("new").await.unwrap().unwrap(), b"2");
        assert_eq!(barrier.key_status().unwrap().term, 2);
    }

    #[tokio::test]
    async fn rotates_automatically_after_the_threshold() {
        let (_, barrier, _) = unsealed(5).await;
        for i in 0..12 {
            barrier.put(&format!("k{i}"), b"v").await.unwrap();
        }
        assert!(barrier.key_status().unwrap().term >= 3);
        for i in 0..12 {
            assert_eq!(barrier.get(&format!("k{i}")).await.unwrap().unwrap(), b"v");
        }
    }

    #[tokio::test]
    async fn disabled_rotation_never_rotates_and_reenabling_resumes() {
        let (_, barrier, _) = unsealed(5).await;
        barrier.set_rotation(RotationConfig { enabled: false, max_operations: 5, interval: 0 });
        for i in 0..12 {
            barrier.put(&format!("k{i}"), b"v").await.unwrap();
        }
        assert_eq!(barrier.key_status().unwrap().term, 1);
        barrier.set_rotation(RotationConfig { enabled: true, max_operations: 5, interval: 0 });
        barrier.put("k", b"v").await.unwrap();
        assert_eq!(barrier.key_status().unwrap().term, 2);
    }

    #[tokio::test]
    async fn rotates_when_the_active_key_reaches_the_interval() {
        let (_, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        let installed = barrier.key_status().unwrap().install_time;
        assert!(!barrier.rotate_if_due(installed + 100).await.unwrap(), "no interval set");
        barrier.set_rotation(RotationConfig { enabled: true, max_operations: DEFAULT_ROTATION_THRESHOLD, interval: 100 });
        assert!(!barrier.rotate_if_due(installed + 99).await.unwrap());
        assert!(barrier.rotate_if_due(installed + 100).await.unwrap());
        let status = barrier.key_status().unwrap();
        assert_eq!(status.term, 2);
        assert!(!barrier.rotate_if_due(status.install_time + 99).await.unwrap(), "the new key is young");
        barrier.set_rotation(RotationConfig { enabled: false, max_operations: DEFAULT_ROTATION_THRESHOLD, interval: 100 });
        assert!(!barrier.rotate_if_due(status.install_time + 1000).await.unwrap(), "disabled");
    }

    #[tokio::test]
    async fn the_count_is_exact_after_a_seal_and_never_low_after_a_crash() {
        let (physical, barrier, root) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        assert_eq!(barrier.key_status().unwrap().encryptions, 0, "a fresh keyring has encrypted nothing");
        for i in 0..3 {
            barrier.put(&format!("k{i}"), b"v").await.unwrap();
        }
        barrier.seal().await;
        barrier.unseal(&root).await.unwrap();
        assert_eq!(barrier.key_status().unwrap().encryptions, 3, "a clean restart reads the true count");

        barrier.put("k3", b"v").await.unwrap();
        // A crash: a new barrier over the same storage, the old one never sealed.
        let after_crash = Barrier::new(physical.clone());
        after_crash.unseal(&root).await.unwrap();
        let resumed = after_crash.key_status().unwrap().encryptions;
        assert!((4..=3 + RESERVE).contains(&resumed), "resumed at {resumed}");
    }

    #[tokio::test]
    async fn the_reservation_is_renewed_before_the_count_reaches_it() {
        let (physical, barrier, root) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        for i in 0..(RESERVE / 2 + 10) {
            barrier.put(&format!("k{}", i % 7), b"v").await.unwrap();
        }
        let written = barrier.key_status().unwrap().encryptions;
        let after_crash = Barrier::new(physical.clone());
        after_crash.unseal(&root).await.unwrap();
        let resumed = after_crash.key_status().unwrap().encryptions;
        assert!(resumed >= written && resumed <= written + RESERVE, "{written} written, resumed at {resumed}");
    }

    #[tokio::test]
    async fn wrong_root_key_does_not_unseal() {
        let (_, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.seal().await;
        assert!(matches!(barrier.unseal(&[8u8; 32]).await, Err(Error::Decrypt)));
        assert!(barrier.is_sealed());
    }

    #[tokio::test]
    async fn sealed_barrier_refuses_everything() {
        let (_, barrier, _) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        barrier.seal().await;
        assert!(matches!(barrier.put("a", b"v").await, Err(tresor_logical::StorageError::Sealed)));
        assert!(matches!(barrier.list("").await, Err(tresor_logical::StorageError::Sealed)));
    }

    #[tokio::test]
    async fn second_initialize_is_refused() {
        let (_, barrier, root) = unsealed(DEFAULT_ROTATION_THRESHOLD).await;
        assert!(matches!(barrier.initialize(&root).await, Err(Error::AlreadyInitialized)));
    }
}
