//! Key export, backup and restore.
//!
//! A backup is Vault's format: base64 of `{"policy": {...}, "archived_keys": {"keys": [...]}}` where
//! the policy carries Vault's field names and key entries carry `key`/`hmac_key` (base64), and for
//! ECDSA `ec_x`/`ec_y`/`ec_d` and for RSA `rsa_key` (`N`, `E`, `D`, `Primes`) as JSON integers, as Go
//! marshals `big.Int`. So an OpenBao/Vault backup restores here and ours restores there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tresor_sdk::{system, Error, Request, Response};

use crate::crypto::{self, b64};
use crate::policy::{b64 as b64_serde, check_name, KeyEntry, KeyType, Policy, Secret};

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e)
}

fn load(req: &Request) -> Result<Policy, Error> {
    let name = req.captured("name").ok_or(Error::UnsupportedPath)?;
    check_name(name)?;
    match Policy::load(name)? {
        // OpenBao answers 500 here; a refusal the caller can act on is a 400 with its reason in
        // Tresor (whose 500s never show their text), as for a non-exportable key.
        Some(p) if p.soft_deleted => Err(Error::invalid(crate::policy::SOFT_DELETED)),
        Some(p) => Ok(p),
        None => Err(Error::NotFound),
    }
}

// ---------------------------------------------------------------------------------------------
// Export

/// One version's exported material for `export_type`.
fn export_entry(p: &Policy, entry: &KeyEntry, export_type: &str) -> Result<String, Error> {
    let kind = p.kind;
    let material = |k: &Option<Secret>| k.as_ref().map(|k| b64(k)).ok_or_else(|| internal("key material missing"));
    if matches!(export_type, "encryption-key" | "signing-key") && kind.supports_signing() && !entry.has_private(kind) {
        // A version imported as a public key only.
        return Err(Error::invalid("the key version has no private key material to export"));
    }
    match export_type {
        "encryption-key" if kind.is_aead() => material(&entry.key),
        "encryption-key" if kind.is_rsa() => rsa_pkcs1_pem(entry),
        "encryption-key" => Err(Error::invalid("encryption not supported for the key")),
        "signing-key" => match kind {
            KeyType::Ed25519 => material(&entry.key),
            KeyType::EcdsaP256 => crypto::ecdsa_p256::sec1_pem(entry),
            KeyType::EcdsaP384 => crypto::ecdsa_p384::sec1_pem(entry),
            KeyType::EcdsaP521 => crypto::ecdsa_p521::sec1_pem(entry),
            k if k.is_rsa() => rsa_pkcs1_pem(entry),
            _ => Err(Error::invalid("signing not supported for the key")),
        },
        "hmac-key" => material(&entry.hmac_key),
        // As OpenBao 2.7: an ECDSA public key leaves without its PEM's final newline (an RSA
        // one, and RSA private keys, with it; ECDSA private keys without).
        "public-key" if kind.is_ecdsa() => Ok(entry.public_key.trim_end().to_string()),
        "public-key" if kind.supports_signing() => Ok(entry.public_key.clone()),
        "public-key" => Err(Error::invalid(format!("unknown key type {} for export type public-key", kind.name()))),
        other => Err(Error::invalid(format!("invalid export type: {other}"))),
    }
}

fn rsa_pkcs1_pem(entry: &KeyEntry) -> Result<String, Error> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let pem = crypto::rsa_private(entry)?.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(internal)?;
    Ok(pem.to_string())
}

pub fn export(req: &Request) -> Result<Response, Error> {
    let export_type = req.captured("type").unwrap_or_default();
    if !matches!(export_type, "encryption-key" | "signing-key" | "hmac-key" | "public-key") {
        return Err(Error::invalid(format!("invalid export type: {export_type}")));
    }
    let p = load(req)?;
    if export_type != "public-key" && !p.exportable {
        return Err(Error::invalid("private key material is not exportable"));
    }
    // The type's support is checked before any version, as Vault does.
    if export_type == "encryption-key" && !p.kind.supports_encryption() {
        return Err(Error::invalid("encryption not supported for the key"));
    }
    if export_type == "signing-key" && !p.kind.supports_signing() {
        return Err(Error::invalid("signing not supported for the key"));
    }
    // A derived key exports its base keys, as Vault does.
    let mut keys = serde_json::Map::new();
    match req.captured("version") {
        None | Some("") => {
            for (v, entry) in p.visible_versions() {
                keys.insert(v.to_string(), json!(export_entry(&p, entry, export_type)?));
            }
        }
        Some(v) => {
            // Vault's rules: `latest` or a number (a `v` prefix allowed), not below the minimum
            // decryption version, and present.
            let version: i64 = if v == "latest" {
                i64::try_from(p.latest_version).unwrap_or(i64::MAX)
            } else {
                v.strip_prefix('v').unwrap_or(v).parse().map_err(|_| Error::invalid("invalid key version"))?
            };
            if version < i64::try_from(p.min_decryption_version).unwrap_or(i64::MAX) {
                return Err(Error::invalid("version for export is below minimum decryption version"));
            }
            let entry = p.keys.get(&version.to_string()).ok_or_else(|| Error::invalid("version does not exist or cannot be found"))?;
            keys.insert(version.to_string(), json!(export_entry(&p, entry, export_type)?));
        }
    }
    Ok(Response::data(json!({ "name": p.name, "type": p.kind.name(), "keys": keys })))
}

// ---------------------------------------------------------------------------------------------
// Vault's key entry with ECDSA and RSA keys as big integers

/// Go's `rsa.PrivateKey` as JSON (big integers as JSON numbers).
#[derive(Clone, Serialize, Deserialize)]
struct GoRsaKey {
    #[serde(rename = "N")]
    n: Box<RawValue>,
    #[serde(rename = "E")]
    e: Box<RawValue>,
    #[serde(rename = "D")]
    d: Box<RawValue>,
    #[serde(rename = "Primes")]
    primes: Vec<Box<RawValue>>,
}

/// A key entry in Vault's backup shape (plus Tresor's `private_der`).
#[derive(Clone, Serialize, Deserialize, Default)]
struct VaultEntry {
    #[serde(default, with = "b64_serde")]
    key: Option<Secret>,
    #[serde(default, with = "b64_serde")]
    hmac_key: Option<Secret>,
    #[serde(default)]
    time: String,
    #[serde(default)]
    ec_x: Option<Box<RawValue>>,
    #[serde(default)]
    ec_y: Option<Box<RawValue>>,
    #[serde(default)]
    ec_d: Option<Box<RawValue>>,
    #[serde(default)]
    rsa_key: Option<GoRsaKey>,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    convergent_version: i64,
    #[serde(default)]
    creation_time: i64,
    #[serde(default, with = "b64_serde", skip_serializing_if = "Option::is_none")]
    private_der: Option<Secret>,
}

fn raw_number(digits: String) -> Result<Box<RawValue>, Error> {
    RawValue::from_string(digits).map_err(internal)
}

fn decimal(n: &rsa::BigUint) -> Result<Box<RawValue>, Error> {
    raw_number(n.to_str_radix(10))
}

fn parse_decimal(raw: &RawValue) -> Result<rsa::BigUint, Error> {
    rsa::BigUint::parse_bytes(raw.get().trim().as_bytes(), 10).ok_or_else(|| Error::invalid("invalid backup: malformed big integer"))
}

impl VaultEntry {
    fn from_entry(kind: KeyType, e: &KeyEntry) -> Result<Self, Error> {
        let mut out = VaultEntry {
            key: e.key.clone(),
            hmac_key: e.hmac_key.clone(),
            time: e.time.clone(),
            public_key: e.public_key.clone(),
            convergent_version: e.convergent_version,
            creation_time: e.creation_time,
            private_der: e.private_der.clone(),
            ..VaultEntry::default()
        };
        if kind.is_ecdsa() {
            let (x, y, d) = match kind {
                KeyType::EcdsaP256 => crypto::ecdsa_p256::scalars(e)?,
                KeyType::EcdsaP384 => crypto::ecdsa_p384::scalars(e)?,
                _ => crypto::ecdsa_p521::scalars(e)?,
            };
            out.ec_x = Some(decimal(&rsa::BigUint::from_bytes_be(&x))?);
            out.ec_y = Some(decimal(&rsa::BigUint::from_bytes_be(&y))?);
            out.ec_d = Some(decimal(&rsa::BigUint::from_bytes_be(&d))?);
        }
        if kind.is_rsa() {
            use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
            let k = crypto::rsa_private(e)?;
            let big = |n: &rsa::BigUint| decimal(n);
            out.rsa_key = Some(GoRsaKey {
                n: big(k.n())?,
                e: big(k.e())?,
                d: big(k.d())?,
                primes: k.primes().iter().map(big).collect::<Result<_, _>>()?,
            });
        }
        Ok(out)
    }

    fn into_entry(self, kind: KeyType) -> Result<KeyEntry, Error> {
        let mut e = KeyEntry {
            key: self.key,
            hmac_key: self.hmac_key,
            time: self.time,
            creation_time: self.creation_time,
            public_key: self.public_key,
            private_der: self.private_der,
            convergent_version: self.convergent_version,
        };
        if e.private_der.is_none() && kind.is_ecdsa() {
            let d = self.ec_d.as_deref().ok_or_else(|| Error::invalid("invalid backup: ECDSA key without ec_d"))?;
            let d = parse_decimal(d)?.to_bytes_be();
            match kind {
                KeyType::EcdsaP256 => crypto::ecdsa_p256::set_scalar(&mut e, &d)?,
                KeyType::EcdsaP384 => crypto::ecdsa_p384::set_scalar(&mut e, &d)?,
                _ => crypto::ecdsa_p521::set_scalar(&mut e, &d)?,
            }
        }
        if e.private_der.is_none() && kind.is_rsa() {
            let r = self.rsa_key.ok_or_else(|| Error::invalid("invalid backup: RSA key without rsa_key"))?;
            let primes = r.primes.iter().map(|p| parse_decimal(p)).collect::<Result<Vec<_>, _>>()?;
            let key = rsa::RsaPrivateKey::from_components(parse_decimal(&r.n)?, parse_decimal(&r.e)?, parse_decimal(&r.d)?, primes)
                .map_err(|e| Error::invalid(format!("invalid backup: RSA key: {e}")))?;
            crypto::set_rsa(&mut e, &key)?;
        }
        if kind.is_aead() && e.key.as_ref().is_none_or(|k| k.len() != kind.aead_key_len()) {
            return Err(Error::invalid("invalid backup: key of the wrong length"));
        }
        if kind == KeyType::Ed25519 && e.key.as_ref().is_none_or(|k| k.len() != 64) {
            return Err(Error::invalid("invalid backup: malformed ed25519 key"));
        }
        Ok(e)
    }
}

/// The policy as Vault serialises it, with entries in Vault's shape.
#[derive(Serialize, Deserialize)]
struct VaultPolicy {
    name: String,
    #[serde(rename = "type")]
    kind: KeyType,
    keys: BTreeMap<String, VaultEntry>,
    #[serde(default)]
    derived: bool,
    #[serde(default)]
    kdf: u8,
    #[serde(default)]
    convergent_encryption: bool,
    #[serde(default)]
    convergent_version: i64,
    #[serde(default)]
    exportable: bool,
    #[serde(default)]
    allow_plaintext_backup: bool,
    #[serde(default)]
    deletion_allowed: bool,
    #[serde(default)]
    min_decryption_version: u64,
    #[serde(default)]
    min_encryption_version: u64,
    latest_version: u64,
    #[serde(default)]
    archive_version: u64,
    #[serde(default)]
    archive_min_version: u64,
    #[serde(default)]
    min_available_version: u64,
    #[serde(default)]
    auto_rotate_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    key_size: u64,
    #[serde(default)]
    backup_info: Option<Value>,
    #[serde(default)]
    restore_info: Option<Value>,
    /// Go's field names (the struct has no JSON tags for these).
    #[serde(default, rename = "Imported")]
    imported: bool,
    #[serde(default, rename = "AllowImportedKeyRotation")]
    allow_imported_key_rotation: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Default)]
struct Archive {
    #[serde(default)]
    keys: Vec<VaultEntry>,
}

#[derive(Serialize, Deserialize)]
struct BackupDoc {
    policy: VaultPolicy,
    #[serde(default)]
    archived_keys: Option<Archive>,
}

fn info_now(version: u64) -> Value {
    let (secs, nanos) = system::now();
    json!({ "time": system::rfc3339(secs, nanos), "version": version })
}

pub fn backup(req: &Request) -> Result<Response, Error> {
    // A missing key: OpenBao's text (its status is a 500; here a 400, as for the refusals below).
    let mut p = load(req).map_err(|e| match e {
        Error::NotFound => Error::invalid(format!("key {:?} not found", req.captured("name").unwrap_or_default())),
        other => other,
    })?;
    if !p.exportable {
        return Err(Error::invalid("exporting is disallowed on the policy"));
    }
    if !p.allow_plaintext_backup {
        return Err(Error::invalid("plaintext backup is disallowed on the policy"));
    }
    p.backup_info = Some(info_now(p.latest_version));
    p.save()?;
    let kind = p.kind;
    let mut keys = BTreeMap::new();
    let mut archive = Archive::default();
    archive.keys.push(VaultEntry { time: "0001-01-01T00:00:00Z".into(), ..VaultEntry::default() });
    for v in 1..=p.latest_version {
        match p.keys.get(&v.to_string()) {
            Some(entry) => {
                let converted = VaultEntry::from_entry(kind, entry)?;
                if v >= p.min_decryption_version {
                    keys.insert(v.to_string(), converted.clone());
                }
                archive.keys.push(converted);
            }
            None => archive.keys.push(VaultEntry { time: "0001-01-01T00:00:00Z".into(), ..VaultEntry::default() }),
        }
    }
    let doc = BackupDoc {
        policy: VaultPolicy {
            name: p.name.clone(),
            kind,
            keys,
            derived: p.derived,
            kdf: p.kdf,
            convergent_encryption: p.convergent_encryption,
            convergent_version: p.convergent_version,
            exportable: p.exportable,
            allow_plaintext_backup: p.allow_plaintext_backup,
            deletion_allowed: p.deletion_allowed,
            min_decryption_version: p.min_decryption_version,
            min_encryption_version: p.min_encryption_version,
            latest_version: p.latest_version,
            archive_version: p.latest_version,
            archive_min_version: p.min_available_version,
            min_available_version: p.min_available_version,
            auto_rotate_period: p.auto_rotate_period,
            key_size: p.key_size,
            backup_info: p.backup_info.clone(),
            restore_info: p.restore_info.clone(),
            imported: p.imported,
            allow_imported_key_rotation: p.allow_imported_key_rotation,
        },
        archived_keys: Some(archive),
    };
    let text = zeroize::Zeroizing::new(serde_json::to_vec(&doc).map_err(internal)?);
    Ok(Response::data(json!({ "backup": b64(&text) })))
}

pub fn restore(req: &Request) -> Result<Response, Error> {
    let text = req.str("backup").filter(|b| !b.is_empty()).ok_or_else(|| Error::invalid("'backup' must be supplied"))?;
    let raw = zeroize::Zeroizing::new(crypto::unb64(text).map_err(|e| Error::invalid(format!("failed to decode backup: {e}")))?);
    let doc: BackupDoc = serde_json::from_slice(&raw).map_err(|e| Error::invalid(format!("failed to parse backup: {}", format_args!("malformed JSON at line {} column {}", e.line(), e.column()))))?;
    let vp = doc.policy;
    let name = match req.captured("name") {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => vp.name.clone(),
    };
    check_name(&name)?;
    if Policy::load(&name)?.is_some() && !req.bool("force").unwrap_or(false) {
        return Err(Error::invalid(format!("key \"{name}\" already exists")));
    }
    if vp.derived && vp.kdf != crate::policy::KDF_HKDF_SHA256 {
        return Err(Error::invalid("invalid backup: only keys derived with hkdf_sha256 can be restored"));
    }
    let kind = vp.kind;
    // Every version from the archive (Vault keeps versions below min_decryption_version there),
    // overlaid with the policy's own entries.
    let mut entries: BTreeMap<String, KeyEntry> = BTreeMap::new();
    if let Some(archive) = doc.archived_keys {
        for (v, e) in archive.keys.into_iter().enumerate() {
            let v = v as u64;
            if v == 0 || v < vp.min_available_version.max(1) || v > vp.latest_version {
                continue;
            }
            if e.key.is_none() && e.hmac_key.is_none() && e.ec_d.is_none() && e.rsa_key.is_none() && e.private_der.is_none() {
                continue;
            }
            entries.insert(v.to_string(), e.into_entry(kind)?);
        }
    }
    for (v, e) in vp.keys {
        entries.insert(v, e.into_entry(kind)?);
    }
    if !entries.contains_key(&vp.latest_version.to_string()) {
        return Err(Error::invalid("invalid backup: the latest key version is missing"));
    }
    let p = Policy {
        name,
        kind,
        keys: entries,
        derived: vp.derived,
        kdf: vp.kdf,
        convergent_encryption: vp.convergent_encryption,
        convergent_version: vp.convergent_version,
        exportable: vp.exportable,
        allow_plaintext_backup: vp.allow_plaintext_backup,
        deletion_allowed: vp.deletion_allowed,
        min_decryption_version: vp.min_decryption_version.max(1),
        min_encryption_version: vp.min_encryption_version,
        latest_version: vp.latest_version,
        min_available_version: vp.min_available_version,
        auto_rotate_period: vp.auto_rotate_period,
        key_size: vp.key_size,
        backup_info: vp.backup_info,
        restore_info: Some(info_now(vp.latest_version)),
        imported: vp.imported,
        allow_imported_key_rotation: vp.allow_imported_key_rotation,
        soft_deleted: false,
    };
    p.save()?;
    Ok(Response::empty())
}
