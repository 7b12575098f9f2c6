//! Named keys ("policies" in Vault's vocabulary): a key type, its versions and its settings.
//!
//! Stored as JSON at `policy/<name>` with Vault's field names (`keys`, `latest_version`,
//! `min_decryption_version`, `type` as Vault's integer, ...), so a backup is Vault's backup format.
//! Key material is base64 in storage (the barrier encrypts it at rest) and [`Secret`] in memory
//! (zeroed on drop).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tresor_sdk::{storage, system, Error};
use zeroize::Zeroizing;

use crate::crypto::{self, random_bytes};

/// Key material: zeroed when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// The key types of Vault/OpenBao's transit engine, with OpenBao's numbering in storage and backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Aes256Gcm96,
    EcdsaP256,
    Ed25519,
    Rsa2048,
    Rsa4096,
    ChaCha20Poly1305,
    EcdsaP384,
    EcdsaP521,
    Aes128Gcm96,
    Rsa3072,
    Hmac,
    /// OpenBao's addition (not in Vault): ChaCha20-Poly1305 with a 24-byte nonce.
    XChaCha20Poly1305,
}

const KEY_TYPES: [(KeyType, &str, u8); 12] = [
    (KeyType::Aes256Gcm96, "aes256-gcm96", 0),
    (KeyType::EcdsaP256, "ecdsa-p256", 1),
    (KeyType::Ed25519, "ed25519", 2),
    (KeyType::Rsa2048, "rsa-2048", 3),
    (KeyType::Rsa4096, "rsa-4096", 4),
    (KeyType::ChaCha20Poly1305, "chacha20-poly1305", 5),
    (KeyType::EcdsaP384, "ecdsa-p384", 6),
    (KeyType::EcdsaP521, "ecdsa-p521", 7),
    (KeyType::Aes128Gcm96, "aes128-gcm96", 8),
    (KeyType::Rsa3072, "rsa-3072", 9),
    (KeyType::Hmac, "hmac", 10),
    (KeyType::XChaCha20Poly1305, "xchacha20-poly1305", 11),
];

impl KeyType {
    pub fn parse(name: &str) -> Option<Self> {
        KEY_TYPES.iter().find(|(_, n, _)| *n == name).map(|(t, _, _)| *t)
    }
    pub fn name(self) -> &'static str {
        KEY_TYPES.iter().find(|(t, _, _)| *t == self).map_or("unknown", |(_, n, _)| n)
    }
    fn code(self) -> u8 {
        KEY_TYPES.iter().find(|(t, _, _)| *t == self).map_or(0, |(_, _, c)| *c)
    }
    fn from_code(code: u8) -> Option<Self> {
        KEY_TYPES.iter().find(|(_, _, c)| *c == code).map(|(t, _, _)| *t)
    }
    /// Symmetric AEAD types (AES-GCM, ChaCha20-Poly1305, XChaCha20-Poly1305).
    pub fn is_aead(self) -> bool {
        matches!(self, Self::Aes256Gcm96 | Self::Aes128Gcm96 | Self::ChaCha20Poly1305 | Self::XChaCha20Poly1305)
    }
    /// ChaCha20-Poly1305 and its extended-nonce variant.
    pub fn is_chacha(self) -> bool {
        matches!(self, Self::ChaCha20Poly1305 | Self::XChaCha20Poly1305)
    }
    /// AEAD nonce length in bytes (the nonce leads every ciphertext).
    pub fn nonce_len(self) -> usize {
        if self == Self::XChaCha20Poly1305 { 24 } else { 12 }
    }
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
    pub fn is_ecdsa(self) -> bool {
        matches!(self, Self::EcdsaP256 | Self::EcdsaP384 | Self::EcdsaP521)
    }
    pub fn supports_encryption(self) -> bool {
        self.is_aead() || self.is_rsa()
    }
    pub fn supports_signing(self) -> bool {
        self.is_ecdsa() || self.is_rsa() || self == Self::Ed25519
    }
    pub fn supports_derivation(self) -> bool {
        self.is_aead() || self == Self::Ed25519
    }
    /// AEAD key length in bytes.
    pub fn aead_key_len(self) -> usize {
        if self == Self::Aes128Gcm96 { 16 } else { 32 }
    }
}

impl Serialize for KeyType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        Self::from_code(code).ok_or_else(|| serde::de::Error::custom(format!("unsupported key type {code}")))
    }
}

/// Base64 (standard, padded) for optional key material, as Go encodes `[]byte`.
pub mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Secret;

    pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes.as_slice())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        let text: Option<zeroize::Zeroizing<String>> = Option::<String>::deserialize(d)?.map(zeroize::Zeroizing::new);
        match text {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => base64::engine::general_purpose::STANDARD
                .decode(t.as_bytes())
                .map(|b| Some(Secret::new(b)))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// One version of a key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyEntry {
    /// AEAD key, ed25519 private key (seed ‖ public), or the HMAC-type key.
    #[serde(default, with = "b64")]
    pub key: Option<Secret>,
    /// The key HMAC operations use (every type has one).
    #[serde(default, with = "b64")]
    pub hmac_key: Option<Secret>,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub time: String,
    /// Unix seconds.
    #[serde(default)]
    pub creation_time: i64,
    /// ed25519: base64 public key; ECDSA and RSA: PEM (SPKI).
    #[serde(default)]
    pub public_key: String,
    /// ECDSA and RSA: the private key as PKCS#8 DER (Tresor's storage; backups also carry Vault's
    /// `ec_*` / `rsa_key` fields).
    #[serde(default, with = "b64", skip_serializing_if = "Option::is_none")]
    pub private_der: Option<Secret>,
    /// 3 for convergent keys (nonce = HMAC of the plaintext), else 0.
    #[serde(default)]
    pub convergent_version: i64,
}

/// Vault's key derivation functions; new keys use HKDF-SHA256.
pub const KDF_HKDF_SHA256: u8 = 1;

/// A named key and its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyType,
    /// Versions still available (>= `min_available_version`), by version number.
    pub keys: BTreeMap<String, KeyEntry>,
    #[serde(default)]
    pub derived: bool,
    #[serde(default)]
    pub kdf: u8,
    #[serde(default)]
    pub convergent_encryption: bool,
    #[serde(default)]
    pub convergent_version: i64,
    #[serde(default)]
    pub exportable: bool,
    #[serde(default)]
    pub allow_plaintext_backup: bool,
    #[serde(default)]
    pub deletion_allowed: bool,
    #[serde(default)]
    pub min_decryption_version: u64,
    #[serde(default)]
    pub min_encryption_version: u64,
    pub latest_version: u64,
    #[serde(default)]
    pub min_available_version: u64,
    /// Nanoseconds, as Go's `time.Duration` (0 = off).
    #[serde(default)]
    pub auto_rotate_period: i64,
    /// HMAC-type key size in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key_size: u64,
    #[serde(default)]
    pub backup_info: Option<Value>,
    #[serde(default)]
    pub restore_info: Option<Value>,
    /// Created from imported key material (`keys/:name/import`).
    #[serde(default)]
    pub imported: bool,
    /// Whether an imported key may be rotated here (new versions are then generated).
    #[serde(default)]
    pub allow_imported_key_rotation: bool,
    /// OpenBao's soft delete: the key is kept, listed, readable and configurable, but refused for
    /// every use until `soft-delete-restore`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_deleted: bool,
}

/// Key material brought to `keys/:name/import` or `import_version`.
pub enum Imported<'a> {
    /// The private key (raw for symmetric types, PKCS#8 DER for asymmetric ones), unwrapped.
    Private(zeroize::Zeroizing<Vec<u8>>),
    /// Only the public key (PEM, SPKI) of an asymmetric type: the version can verify (and, for
    /// RSA, encrypt) but not sign or decrypt.
    Public(&'a str),
}

/// Vault's answer when a version without its private half is asked to sign.
pub const NO_PRIVATE_PART: &str = "requested version for signing does not contain a private part";
/// Vault's `ErrTooOld`: a ciphertext or signature older than the minimum decryption version.
pub const TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

impl KeyEntry {
    /// Whether this version holds its private key (a public-key import does not).
    pub fn has_private(&self, kind: KeyType) -> bool {
        match kind {
            KeyType::Ed25519 => self.key.is_some(),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 | KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => self.private_der.is_some(),
            _ => self.key.is_some() || self.hmac_key.is_some(),
        }
    }
}

/// OpenBao's answer when a soft-deleted key is asked to work.
pub const SOFT_DELETED: &str = "refusing to use soft-deleted key";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Options for a new key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub kind: KeyType,
    pub derived: bool,
    pub convergent: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_period: u64,
    pub key_size: u64,
}

impl Default for NewKey {
    fn default() -> Self {
        Self {
            kind: KeyType::Aes256Gcm96,
            derived: false,
            convergent: false,
            exportable: false,
            allow_plaintext_backup: false,
            auto_rotate_period: 0,
            key_size: 0,
        }
    }
}

/// Storage key of a policy.
fn storage_key(name: &str) -> String {
    format!("policy/{name}")
}

/// Key names are one path segment of printable characters.
pub fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 256 || name.contains('/') || name.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("invalid key name"));
    }
    Ok(())
}

/// Seconds in the shortest auto-rotation period Vault accepts.
const MIN_AUTO_ROTATE: u64 = 3600;

pub fn check_auto_rotate(period: u64) -> Result<(), Error> {
    if period != 0 && period < MIN_AUTO_ROTATE {
        return Err(Error::invalid("auto rotate period must be 0 to disable or at least an hour"));
    }
    Ok(())
}

fn now() -> (i64, String) {
    let (secs, nanos) = system::now();
    (secs, system::rfc3339(secs, nanos))
}

impl Policy {
    /// Load a key.
    pub fn load(name: &str) -> Result<Option<Self>, Error> {
        storage::get_json(&storage_key(name))
    }

    /// Load a key to use it: a soft-deleted key is refused (400, as OpenBao's encrypt and sign).
    pub fn load_usable(name: &str) -> Result<Option<Self>, Error> {
        match Self::load(name)? {
            Some(p) if p.soft_deleted => Err(Error::invalid(SOFT_DELETED)),
            other => Ok(other),
        }
    }

    /// Persist a key.
    pub fn save(&self) -> Result<(), Error> {
        storage::put_json(&storage_key(&self.name), self)
    }

    /// Delete a key and every version.
    pub fn delete(name: &str) -> Result<(), Error> {
        Ok(storage::delete(&storage_key(name))?)
    }

    /// Names of every key, sorted.
    pub fn list() -> Result<Vec<String>, Error> {
        Ok(storage::list("policy/")?.into_iter().filter(|k| !k.ends_with('/')).collect())
    }

    /// A new key with its first version (not yet saved).
    pub fn create(name: &str, opts: &NewKey) -> Result<Self, Error> {
        let mut policy = Self::empty(name, opts)?;
        policy.rotate()?;
        Ok(policy)
    }

    /// A new key whose first version is `material` (BYOK), not yet saved.
    pub fn create_imported(name: &str, opts: &NewKey, material: &Imported<'_>, allow_rotation: bool) -> Result<Self, Error> {
        let mut policy = Self::empty(name, opts)?;
        policy.imported = true;
        policy.allow_imported_key_rotation = allow_rotation;
        policy.import_version(material)?;
        Ok(policy)
    }

    /// Add a new latest version holding `material`.
    pub fn import_version(&mut self, material: &Imported<'_>) -> Result<(), Error> {
        let mut entry = self.new_entry()?;
        match material {
            Imported::Private(material) => {
                crypto::import(self.kind, material, &mut entry)?;
                if self.kind == KeyType::Hmac {
                    self.key_size = material.len() as u64;
                }
            }
            Imported::Public(pem) => crypto::import_public(self.kind, pem, &mut entry)?,
        }
        self.latest_version += 1;
        self.keys.insert(self.latest_version.to_string(), entry);
        Ok(())
    }

    /// A policy checked against `opts`, without key versions.
    fn empty(name: &str, opts: &NewKey) -> Result<Self, Error> {
        let kind = opts.kind;
        // Vault's checks per type (keysutil's lock manager), with its texts.
        if kind.is_aead() {
            if opts.convergent && !opts.derived {
                return Err(Error::invalid("convergent encryption requires derivation to be enabled"));
            }
        } else if kind == KeyType::Ed25519 {
            if opts.convergent {
                return Err(Error::invalid(format!("convergent encryption not supported for keys of type {}", kind.name())));
            }
        } else if opts.derived || opts.convergent {
            return Err(Error::invalid(format!("key derivation and convergent encryption not supported for keys of type {}", kind.name())));
        }
        // Vault's messages; an HMAC key without `key_size` gets 32 bytes (OpenBao 2.7 refuses it
        // with a 500).
        if opts.key_size != 0 && kind != KeyType::Hmac {
            return Err(Error::invalid(format!("key_size is not valid for algorithm {}", kind.name())));
        }
        if opts.key_size != 0 && !(32..=512).contains(&opts.key_size) {
            return Err(Error::invalid(format!("invalid key_size {}", opts.key_size)));
        }
        let key_size = match kind {
            KeyType::Hmac if opts.key_size == 0 => 32,
            _ => opts.key_size,
        };
        check_auto_rotate(opts.auto_rotate_period)?;
        let policy = Policy {
            name: name.to_string(),
            kind,
            keys: BTreeMap::new(),
            derived: opts.derived,
            kdf: if opts.derived { KDF_HKDF_SHA256 } else { 0 },
            convergent_encryption: opts.convergent,
            convergent_version: if opts.convergent { -1 } else { 0 },
            exportable: opts.exportable,
            allow_plaintext_backup: opts.allow_plaintext_backup,
            deletion_allowed: false,
            min_decryption_version: 1,
            min_encryption_version: 0,
            latest_version: 0,
            min_available_version: 0,
            auto_rotate_period: i64::try_from(opts.auto_rotate_period.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX),
            key_size,
            backup_info: None,
            restore_info: None,
            imported: false,
            allow_imported_key_rotation: false,
            soft_deleted: false,
        };
        Ok(policy)
    }

    /// A version's bookkeeping: creation times and its own HMAC key.
    fn new_entry(&self) -> Result<KeyEntry, Error> {
        let (creation_time, time) = now();
        Ok(KeyEntry {
            hmac_key: Some(Secret::new(random_bytes(32)?)),
            time,
            creation_time,
            convergent_version: if self.convergent_encryption { 3 } else { 0 },
            ..KeyEntry::default()
        })
    }

    /// Add a new latest version with fresh key material. An imported key rotates only when it
    /// was imported with `allow_rotation`.
    pub fn rotate(&mut self) -> Result<(), Error> {
        if self.imported && !self.allow_imported_key_rotation {
            return Err(Error::invalid(format!("imported key {} does not allow rotation within Vault", self.name)));
        }
        let mut entry = self.new_entry()?;
        crypto::generate(self.kind, self.key_size, &mut entry)?;
        self.latest_version += 1;
        self.keys.insert(self.latest_version.to_string(), entry);
        Ok(())
    }

    /// The key entry of `version`, checked against the policy's bounds.
    pub fn entry(&self, version: u64) -> Result<&KeyEntry, Error> {
        if version > self.latest_version {
            return Err(Error::invalid("invalid ciphertext: version is too new"));
        }
        if self.min_decryption_version > 0 && version < self.min_decryption_version {
            return Err(Error::invalid(TOO_OLD));
        }
        self.keys.get(&version.to_string()).ok_or_else(|| Error::invalid(TOO_OLD))
    }

    /// The version encryption and signing use: `requested` (0 = latest) within the policy's bounds.
    pub fn encryption_version(&self, requested: i64) -> Result<u64, Error> {
        let Ok(requested) = u64::try_from(requested) else {
            return Err(Error::invalid("requested version for encryption is negative"));
        };
        if requested == 0 {
            return Ok(self.latest_version);
        }
        if requested > self.latest_version {
            return Err(Error::invalid("requested version for encryption is higher than the latest key version"));
        }
        if self.min_encryption_version > 0 && requested < self.min_encryption_version {
            return Err(Error::invalid("requested version for encryption is less than the minimum encryption key version"));
        }
        Ok(requested)
    }

    /// Rotate if an auto-rotation period has passed since the latest version was created.
    pub fn rotate_if_due(&mut self, now_secs: i64) -> Result<bool, Error> {
        if self.auto_rotate_period <= 0 || (self.imported && !self.allow_imported_key_rotation) {
            return Ok(false);
        }
        let period = self.auto_rotate_period / 1_000_000_000;
        let latest = self.keys.get(&self.latest_version.to_string()).map_or(0, |e| e.creation_time);
        if now_secs < latest.saturating_add(period) {
            return Ok(false);
        }
        self.rotate()?;
        Ok(true)
    }

    /// The key's description as Vault's `GET transit/keys/:name` returns it.
    pub fn describe(&self) -> Value {
        let kind = self.kind;
        let mut d = Map::new();
        d.insert("name".into(), json!(self.name));
        d.insert("type".into(), json!(kind.name()));
        d.insert("allow_plaintext_backup".into(), json!(self.allow_plaintext_backup));
        d.insert("auto_rotate_period".into(), json!(self.auto_rotate_period / 1_000_000_000));
        d.insert("deletion_allowed".into(), json!(self.deletion_allowed));
        d.insert("derived".into(), json!(self.derived));
        d.insert("exportable".into(), json!(self.exportable));
        d.insert("imported_key".into(), json!(self.imported));
        if self.imported {
            d.insert("imported_key_allow_rotation".into(), json!(self.allow_imported_key_rotation));
        }
        d.insert("latest_version".into(), json!(self.latest_version));
        d.insert("min_available_version".into(), json!(self.min_available_version));
        d.insert("min_decryption_version".into(), json!(self.min_decryption_version));
        d.insert("min_encryption_version".into(), json!(self.min_encryption_version));
        d.insert("soft_deleted".into(), json!(self.soft_deleted));
        d.insert("supports_decryption".into(), json!(kind.supports_encryption()));
        d.insert("supports_derivation".into(), json!(kind.supports_derivation()));
        d.insert("supports_encryption".into(), json!(kind.supports_encryption()));
        d.insert("supports_signing".into(), json!(kind.supports_signing()));
        if let Some(b) = &self.backup_info {
            d.insert("backup_info".into(), b.clone());
        }
        if let Some(r) = &self.restore_info {
            d.insert("restore_info".into(), r.clone());
        }
        if self.derived {
            d.insert("kdf".into(), json!(if self.kdf == KDF_HKDF_SHA256 { "hkdf_sha256" } else { "hmac-sha256-counter" }));
            d.insert("convergent_encryption".into(), json!(self.convergent_encryption));
            if self.convergent_encryption {
                d.insert("convergent_encryption_version".into(), json!(self.convergent_version));
            }
        }
        if kind == KeyType::Hmac {
            d.insert("key_size".into(), json!(self.key_size));
            return Value::Object(d);
        }
        let mut keys = Map::new();
        for (version, entry) in self.visible_versions() {
            let v = if kind.supports_signing() {
                json!({
                    "certificate_chain": "",
                    "creation_time": entry.time,
                    "name": crypto::public_key_name(kind),
                    "public_key": if self.derived { "" } else { entry.public_key.as_str() },
                })
            } else {
                json!(entry.creation_time)
            };
            keys.insert(version.to_string(), v);
        }
        d.insert("keys".into(), Value::Object(keys));
        Value::Object(d)
    }

    /// Versions from `min_decryption_version` to the latest, in order.
    pub fn visible_versions(&self) -> impl Iterator<Item = (u64, &KeyEntry)> {
        let min = self.min_decryption_version.max(1);
        let mut v: Vec<(u64, &KeyEntry)> =
            self.keys.iter().filter_map(|(k, e)| k.parse::<u64>().ok().map(|n| (n, e))).filter(|(n, _)| *n >= min).collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter()
    }
}
