//! The endpoints: key management, encrypt/decrypt/rewrap (single and batch), data keys, HMAC,
//! signatures, hashes and random bytes.

use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tresor_sdk::{storage, system, Error, Request, Response};
use zeroize::Zeroizing;

use crate::batch::{Arg, Item, Items, Out};
use crate::crypto::{self, b64, unb64, HashAlg, SaltLen, SignOptions};
use crate::policy::{check_auto_rotate, check_name, Imported, KeyType, NewKey, Policy};

/// Largest `random` request (Vault's limit).
const MAX_RANDOM_BYTES: i64 = 128 * 1024;

fn name(req: &Request) -> Result<&str, Error> {
    let name = req.captured("name").ok_or(Error::UnsupportedPath)?;
    check_name(name)?;
    Ok(name)
}

fn load(name: &str) -> Result<Policy, Error> {
    Policy::load_usable(name)?.ok_or_else(|| Error::invalid("encryption key not found"))
}

fn version_arg(v: Option<i64>) -> Result<u64, Error> {
    match v {
        None => Ok(0),
        Some(n) => u64::try_from(n).map_err(|_| Error::invalid("key_version must not be negative")),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

pub fn keys(req: &Request) -> Result<Response, Error> {
    let segments: Vec<&str> = req.path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["keys"] => Response::list(Response::page(Policy::list()?, req.str("after"), req.int("limit"))),
        ["keys", _] => match req.operation {
            tresor_sdk::Operation::Read => read_key(req),
            tresor_sdk::Operation::Delete => delete_key(req),
            _ => create_key(req),
        },
        ["keys", _, "config"] => config_key(req),
        ["keys", _, "rotate"] => {
            let mut p = Policy::load(name(req)?)?.ok_or_else(|| Error::invalid("key not found"))?;
            if p.soft_deleted {
                // 400 with the reason (OpenBao: 500), as the key's other refusals.
                return Err(Error::invalid(crate::policy::SOFT_DELETED));
            }
            p.rotate()?;
            p.save()?;
            Ok(Response::data(p.describe()))
        }
        ["keys", _, "trim"] => trim_key(req),
        ["keys", _, "soft-delete"] => soft_delete(req, true),
        ["keys", _, "soft-delete-restore"] => soft_delete(req, false),
        ["keys", _, "import"] => import_key(req),
        ["keys", _, "import_version"] => import_key_version(req),
        _ => Err(Error::UnsupportedPath),
    }
}

// ---------------------------------------------------------------------------------------------
// Bring your own key

/// Where the mount's RSA-4096 wrapping key is kept (created on first use).
const WRAPPING_KEY: &str = "import/wrapping-key";

fn wrapping_key_entry() -> Result<crate::policy::KeyEntry, Error> {
    if let Some(entry) = storage::get_json::<crate::policy::KeyEntry>(WRAPPING_KEY)? {
        return Ok(entry);
    }
    let mut entry = crate::policy::KeyEntry::default();
    crypto::generate(KeyType::Rsa4096, 0, &mut entry)?;
    storage::put_json(WRAPPING_KEY, &entry)?;
    Ok(entry)
}

/// `wrapping_key`: the public half of the key that wraps imported key material.
pub fn wrapping_key(_req: &Request) -> Result<Response, Error> {
    Ok(Response::data(json!({ "public_key": wrapping_key_entry()?.public_key })))
}

/// What an import request brings: `ciphertext` (the private key, wrapped with the wrapping key),
/// or only `public_key` (PEM) for an asymmetric type.
fn imported_material(req: &Request) -> Result<Imported<'_>, Error> {
    let ciphertext = req.str("ciphertext").filter(|c| !c.is_empty());
    let public = req.str("public_key").filter(|k| !k.is_empty());
    match (ciphertext, public) {
        (Some(_), Some(_)) => Err(Error::invalid("only one of ciphertext or public_key may be provided")),
        (None, Some(pem)) => Ok(Imported::Public(pem)),
        (None, None) => Err(Error::invalid("ciphertext or public_key must be provided to import a key")),
        (Some(ciphertext), None) => {
            let ciphertext = unb64(ciphertext).map_err(|e| Error::invalid(format!("error decoding ciphertext: {e}")))?;
            crypto::unwrap_import(&wrapping_key_entry()?, &ciphertext, req.str("hash_function").unwrap_or("SHA256")).map(Imported::Private)
        }
    }
}

/// OpenBao's `derive-key/:name`: a new AEAD key (or a new version of one made here before) from
/// ECDH between the ECDSA key `base_key_name` and the caller's `peer_public_key`, so two parties
/// holding each other's public keys share a Transit key without sending it.
pub fn derive_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    let algorithm = req.str("key_derivation_algorithm").filter(|a| !a.is_empty()).unwrap_or("ecdh");
    if algorithm != "ecdh" {
        return Err(Error::invalid(format!("key derivation algorithm {algorithm} not supported")));
    }
    let peer = req.str("peer_public_key").filter(|p| !p.is_empty()).ok_or_else(|| Error::invalid("peer public key not provided"))?;
    let derived_type = req.str("derived_key_type").filter(|t| !t.is_empty()).unwrap_or("aes256-gcm96");
    let kind = KeyType::parse(derived_type).filter(|k| k.is_aead()).ok_or_else(|| Error::invalid(format!("unknown key type {derived_type}")))?;
    let base_name = req.str("base_key_name").unwrap_or_default();
    check_name(base_name).map_err(|_| Error::invalid("specified base key not found"))?;
    let base = Policy::load_usable(base_name)?.ok_or_else(|| Error::invalid("specified base key not found"))?;
    let version = match version_arg(req.int("base_key_version"))? {
        0 => base.latest_version,
        v => v,
    };
    let entry = base.entry(version)?;
    if base.kind.is_ecdsa() && !entry.has_private(base.kind) {
        return Err(Error::invalid("the base key version does not contain a private part"));
    }
    let material = crypto::ecdh_derive(base.kind, entry, peer, kind.aead_key_len())?;
    let material = Imported::Private(Zeroizing::new(material.to_vec()));
    match Policy::load_usable(name)? {
        Some(mut p) => {
            if !p.imported || p.kind != kind {
                return Err(Error::invalid(format!("key {name} exists and is not a derived {} key", kind.name())));
            }
            p.import_version(&material)?;
            p.save()?;
        }
        None => Policy::create_imported(name, &new_key_options(req, "derived_key_type")?, &material, false)?.save()?,
    }
    Ok(Response::empty())
}

/// `byok-export/:destination/:source[/:version]`: the source key's versions wrapped for import
/// into another Vault (or Tresor) whose wrapping key is `destination`, an RSA key here (often
/// imported as a public key only). The source must be exportable.
pub fn byok_export(req: &Request) -> Result<Response, Error> {
    let dst_name = req.captured("destination").ok_or(Error::UnsupportedPath)?;
    let src_name = req.captured("source").ok_or(Error::UnsupportedPath)?;
    check_name(dst_name)?;
    check_name(src_name)?;
    let dst = Policy::load_usable(dst_name)?.ok_or_else(|| Error::invalid("no such destination key to export to"))?;
    let src = Policy::load_usable(src_name)?.ok_or_else(|| Error::invalid("no such source key for export"))?;
    if !src.exportable {
        return Err(Error::invalid("key is not exportable"));
    }
    if !dst.kind.is_rsa() {
        return Err(Error::invalid(format!("key wrapping (requring message signing) is not supported for key type {}", dst.kind.name())));
    }
    let dst_entry = dst.keys.get(&dst.latest_version.to_string()).ok_or_else(|| Error::internal("destination key version missing"))?;
    let versions: Vec<u64> = match req.captured("version") {
        None | Some("") => (src.min_available_version.max(1)..=src.latest_version).collect(),
        Some("latest") => vec![src.latest_version],
        Some(v) => {
            let v: u64 = v.parse().map_err(|_| Error::invalid("invalid key version"))?;
            vec![v]
        }
    };
    let hash = req.str("hash").unwrap_or("SHA256");
    let mut keys = serde_json::Map::new();
    for v in versions {
        let entry = src.keys.get(&v.to_string()).ok_or_else(|| Error::invalid("version does not exist or cannot be found"))?;
        let material = crypto::import_material(src.kind, entry)?;
        keys.insert(v.to_string(), json!(crypto::b64(&crypto::wrap_export(dst_entry, &material, hash)?)));
    }
    Ok(Response::data(json!({"name": src.name, "type": src.kind.name(), "keys": keys})))
}

/// `keys/:name/import`: a new key whose first version is the client's own key material.
fn import_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    if Policy::load(name)?.is_some() {
        return Err(Error::invalid("the import path cannot be used with an existing key; use import-version to rotate an existing imported key"));
    }
    let opts = new_key_options(req, "type")?;
    let material = imported_material(req)?;
    let p = Policy::create_imported(name, &opts, &material, req.bool("allow_rotation").unwrap_or(false))?;
    p.save()?;
    Ok(Response::empty())
}

/// `keys/:name/import_version`: a new latest version of an imported key from the client's material.
fn import_key_version(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    let mut p = Policy::load_usable(name)?.ok_or_else(|| Error::invalid(format!("no key found with name {name}; to import a new key, use the import/ endpoint")))?;
    if !p.imported {
        return Err(Error::invalid("the import_version endpoint can only be used with an imported key"));
    }
    if req.int("version").is_some_and(|v| v != 0) {
        return Err(Error::invalid("importing into an existing version is not supported here; import a new version"));
    }
    let material = imported_material(req)?;
    p.import_version(&material)?;
    p.save()?;
    Ok(Response::empty())
}

/// OpenBao's `keys/:name/soft-delete` (DELETE) and `…/soft-delete-restore` (POST): mark the key
/// refused for every use, or usable again; the key itself is kept. An unknown key is a no-op.
fn soft_delete(req: &Request, delete: bool) -> Result<Response, Error> {
    let Some(mut p) = Policy::load(name(req)?)? else { return Ok(Response::empty()) };
    if p.soft_deleted == delete {
        let resp = Response::data(p.describe());
        return Ok(resp.warn(if delete { "key was already marked as soft deleted" } else { "key was already restored" }));
    }
    p.soft_deleted = delete;
    p.save()?;
    Ok(Response::data(p.describe()))
}

fn read_key(req: &Request) -> Result<Response, Error> {
    let p = Policy::load(name(req)?)?.ok_or(Error::NotFound)?;
    Ok(Response::data(p.describe()))
}

fn new_key_options(req: &Request, type_field: &str) -> Result<NewKey, Error> {
    let type_name = req.str(type_field).unwrap_or("aes256-gcm96");
    let kind = KeyType::parse(type_name).ok_or_else(|| Error::invalid(format!("unknown key type {type_name}")))?;
    Ok(NewKey {
        kind,
        derived: req.bool("derived").unwrap_or(false),
        convergent: req.bool("convergent_encryption").unwrap_or(false),
        exportable: req.bool("exportable").unwrap_or(false),
        allow_plaintext_backup: req.bool("allow_plaintext_backup").unwrap_or(false),
        auto_rotate_period: req.duration("auto_rotate_period").unwrap_or(0),
        key_size: {
            let size = req.int("key_size").unwrap_or(0);
            u64::try_from(size).map_err(|_| Error::invalid(format!("invalid key_size {size}")))?
        },
    })
}

fn create_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    // Re-creating an existing key is a no-op that returns it (Vault's upsert).
    if let Some(p) = Policy::load(name)? {
        return Ok(Response::data(p.describe()));
    }
    let p = Policy::create(name, &new_key_options(req, "type")?)?;
    p.save()?;
    Ok(Response::data(p.describe()))
}

fn delete_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    let p = Policy::load(name)?.ok_or_else(|| Error::invalid(format!("error deleting policy {name}: could not delete key; not found")))?;
    if !p.deletion_allowed {
        return Err(Error::invalid(format!("error deleting policy {name}: deletion is not allowed for this key")));
    }
    Policy::delete(name)?;
    Ok(Response::empty())
}

fn config_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    let mut p = Policy::load(name)?.ok_or_else(|| Error::invalid("no existing key named ".to_string() + name + " could be found"))?;
    let mut warning = None;
    // Vault's rules and messages; nothing is saved unless every check passes.
    if let Some(v) = req.int("min_decryption_version") {
        let mut v = u64::try_from(v).map_err(|_| Error::invalid("min decryption version cannot be negative"))?;
        if v == 0 {
            v = 1;
            warning = Some("since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1");
        }
        if v != p.min_decryption_version && v > p.latest_version {
            return Err(Error::invalid(format!("cannot set min decryption version of {v}, latest key version is {}", p.latest_version)));
        }
        p.min_decryption_version = v;
    }
    if let Some(v) = req.int("min_encryption_version") {
        let v = u64::try_from(v).map_err(|_| Error::invalid("min encryption version cannot be negative"))?;
        if v != p.min_encryption_version && v > p.latest_version {
            return Err(Error::invalid(format!("cannot set min encryption version of {v}, latest key version is {}", p.latest_version)));
        }
        p.min_encryption_version = v;
    }
    if p.min_encryption_version > 0 && p.min_encryption_version < p.min_decryption_version {
        return Err(Error::invalid(format!(
            "cannot set min encryption/decryption values; min encryption version of {} must be greater than or equal to min decryption version of {}",
            p.min_encryption_version, p.min_decryption_version
        )));
    }
    if let Some(b) = req.bool("deletion_allowed") {
        p.deletion_allowed = b;
    }
    p.min_decryption_version = p.min_decryption_version.max(1);
    // Once set, `exportable` and `allow_plaintext_backup` stay set: `false` is ignored, as in Vault.
    if req.bool("exportable") == Some(true) {
        p.exportable = true;
    }
    if req.bool("allow_plaintext_backup") == Some(true) {
        p.allow_plaintext_backup = true;
    }
    if let Some(d) = req.duration("auto_rotate_period") {
        check_auto_rotate(d)?;
        p.auto_rotate_period = i64::try_from(d.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
    }
    if p.min_available_version > p.min_encryption_version {
        return Err(Error::invalid("min encryption version should not be less than min available version"));
    }
    if p.min_available_version > p.min_decryption_version {
        return Err(Error::invalid("min decryption version should not be less then min available version"));
    }
    p.save()?;
    let resp = Response::data(p.describe());
    Ok(match warning {
        Some(w) => resp.warn(w),
        None => resp,
    })
}

fn trim_key(req: &Request) -> Result<Response, Error> {
    let name = name(req)?;
    let mut p = Policy::load_usable(name)?.ok_or_else(|| Error::invalid("invalid key name"))?;
    let v = req.int("min_available_version").ok_or_else(|| Error::invalid("missing min_available_version"))?;
    // Vault's checks, in its order.
    let refuse = |m: &str| Err(Error::invalid(format!("minimum available version {m}")));
    let (min_enc, min_dec) = (i64::try_from(p.min_encryption_version).unwrap_or(i64::MAX), i64::try_from(p.min_decryption_version).unwrap_or(i64::MAX));
    if v < i64::try_from(p.min_available_version).unwrap_or(i64::MAX) {
        return refuse("cannot be decremented");
    }
    if min_enc == 0 {
        return refuse("cannot be set when minimum encryption version is not set");
    }
    if min_dec == 0 {
        return refuse("cannot be set when minimum decryption version is not set");
    }
    if v > min_enc {
        return refuse("cannot be greater than minmum encryption version");
    }
    if v > min_dec {
        return refuse("cannot be greater than minimum decryption version");
    }
    let Ok(v) = u64::try_from(v) else { return refuse("cannot be negative") };
    if v == 0 {
        return refuse("should be positive");
    }
    p.keys.retain(|k, _| k.parse::<u64>().is_ok_and(|n| n >= v));
    p.min_available_version = v;
    p.save()?;
    Ok(Response::data(p.describe()))
}

/// Engine-wide settings (`config/keys`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysConfig {
    #[serde(default)]
    disable_upsert: bool,
}

pub fn config_keys(req: &Request) -> Result<Response, Error> {
    if req.path != "config/keys" {
        return Err(Error::UnsupportedPath);
    }
    let mut cfg: KeysConfig = storage::get_json("config/keys")?.unwrap_or_default();
    if req.operation != tresor_sdk::Operation::Read {
        if let Some(b) = req.bool("disable_upsert") {
            cfg.disable_upsert = b;
        }
        storage::put_json("config/keys", &cfg)?;
    }
    Ok(Response::data(json!({ "disable_upsert": cfg.disable_upsert })))
}

/// `cache-config`: Vault's policy-cache size. Stored and reported as Vault does; it changes nothing
/// here, where no key is cached between requests (each runs in a fresh instance).
pub fn cache_config(req: &Request) -> Result<Response, Error> {
    const MIN_CACHE_SIZE: i64 = 10;
    if req.operation == tresor_sdk::Operation::Read {
        let stored: Option<serde_json::Value> = storage::get_json("config/cache")?;
        let size = stored.as_ref().and_then(|v| v["size"].as_i64()).unwrap_or(0);
        return Ok(Response::data(json!({ "size": size })));
    }
    let size = req.int("size").unwrap_or(0);
    if size != 0 && size < MIN_CACHE_SIZE {
        return Err(Error::invalid(format!("size must be 0 or a value greater or equal to {MIN_CACHE_SIZE}")));
    }
    storage::put_json("config/cache", &json!({ "size": size }))?;
    Ok(Response::data(json!({ "size": size })))
}

/// Rotate every key whose `auto_rotate_period` has passed (the host's periodic call).
pub fn auto_rotate() -> Result<(), Error> {
    let (now, _) = system::now();
    for name in Policy::list()? {
        // A soft-deleted key is not rotated until restored.
        let Some(mut p) = Policy::load(&name)?.filter(|p| !p.soft_deleted) else { continue };
        if p.rotate_if_due(now)? {
            p.save()?;
            system::log(system::LogLevel::Info, &format!("auto-rotated key {name} to version {}", p.latest_version));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encrypt / decrypt / rewrap

/// The derivation context a derived key requires.
fn context_for(p: &Policy, context: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
    if !p.derived {
        return Ok(None);
    }
    match context {
        Some(c) if !c.is_empty() => Ok(Some(c.to_vec())),
        _ => Err(Error::invalid("missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key")),
    }
}

/// The AEAD key of `version`, derived for `context` when the key is derived.
fn aead_key(p: &Policy, version: u64, context: Option<&[u8]>) -> Result<crate::policy::Secret, Error> {
    let entry = p.entry(version)?;
    let key = entry.key.as_ref().ok_or_else(|| Error::internal("key material missing"))?;
    match context_for(p, context)? {
        Some(ctx) => crypto::hkdf(key, &ctx, p.kind.aead_key_len()),
        None => Ok(key.clone()),
    }
}

/// Encrypt `plaintext` with `version` (0 = latest) into Vault's ciphertext format.
pub fn encrypt_with(p: &Policy, version: i64, plaintext: &[u8], context: Option<&[u8]>, aad: Option<&[u8]>) -> Result<(String, u64), Error> {
    if !p.kind.supports_encryption() {
        return Err(Error::invalid(format!("message encryption not supported for key type {}", p.kind.name())));
    }
    let version = p.encryption_version(version)?;
    let entry = live_entry(p, version)?;
    let sealed = if p.kind.is_rsa() {
        crypto::rsa_encrypt(entry, plaintext)?
    } else {
        let key = aead_key(p, version, context)?;
        let nonce = if p.convergent_encryption {
            // Convergent version 3: the nonce is an HMAC of the plaintext under the derived key, so
            // equal plaintexts under one context give equal ciphertexts.
            crypto::hmac(HashAlg::Sha256, &key, plaintext)?[..p.kind.nonce_len()].to_vec()
        } else {
            crypto::random_bytes(p.kind.nonce_len())?
        };
        let mut out = nonce.clone();
        out.extend(crypto::aead_seal(p.kind, &key, &nonce, plaintext, aad.unwrap_or_default())?);
        out
    };
    Ok((versioned(version, &sealed), version))
}

/// `vault:v<N>:<base64>` built without `format!` (hot in batches inside wasm).
fn versioned(version: u64, raw: &[u8]) -> String {
    let mut out = String::with_capacity(12 + raw.len() * 4 / 3 + 4);
    out.push_str("vault:v");
    out.push_str(&version.to_string());
    out.push(':');
    crypto::b64_append(raw, &mut out);
    out
}

/// Split `vault:v<N>:<base64>` into the version (at most `p`'s latest) and the raw bytes, with
/// Vault's error texts.
fn parse_versioned<'a>(p: &Policy, value: &'a str, what: &str) -> Result<(u64, &'a str), Error> {
    let rest = value.strip_prefix("vault:").ok_or_else(|| Error::invalid(format!("invalid {what}: no prefix")))?;
    let (ver, body) = rest.split_once(':').ok_or_else(|| Error::invalid(format!("invalid {what}: wrong number of fields")))?;
    let ver: u64 = ver
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::invalid(format!("invalid {what}: version number could not be decoded")))?;
    if ver > p.latest_version {
        return Err(Error::invalid(format!("invalid {what}: version is too new")));
    }
    Ok((ver, body))
}

/// An item's plaintext with its `context` and `associated_data` (for rewrap to re-encrypt under).
type Decrypted = (Zeroizing<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Decrypt an item's `ciphertext` (with its `context` and `associated_data`).
fn decrypt_item(p: &Policy, item: &Item<'_>) -> Result<Decrypted, Error> {
    let ciphertext = item.ciphertext.str().filter(|c| !c.is_empty()).ok_or_else(|| Error::invalid("missing ciphertext to decrypt"))?;
    let context = item.context.b64("context")?;
    let aad = item.associated_data.b64("associated_data")?;
    let (plaintext, _) = decrypt_with(p, ciphertext, context.as_deref(), aad.as_deref())?;
    Ok((plaintext, context, aad))
}

/// Decrypt a Vault ciphertext; returns the plaintext and the key version it was under.
pub fn decrypt_with(p: &Policy, ciphertext: &str, context: Option<&[u8]>, aad: Option<&[u8]>) -> Result<(Zeroizing<Vec<u8>>, u64), Error> {
    if !p.kind.supports_encryption() {
        return Err(Error::invalid(format!("message decryption not supported for key type {}", p.kind.name())));
    }
    let (version, body) = parse_versioned(p, ciphertext, "ciphertext")?;
    // Version 0 ciphertexts predate versioning and mean version 1 (decryption only, as Vault).
    let version = version.max(1);
    let entry = p.entry(version)?;
    let raw = unb64(body).map_err(|_| Error::invalid("invalid ciphertext: could not decode base64"))?;
    let plaintext = if p.kind.is_rsa() {
        if !entry.has_private(p.kind) {
            return Err(Error::invalid("cannot decrypt ciphertext, key version does not have a private counterpart"));
        }
        crypto::rsa_decrypt(entry, &raw).map_err(Error::invalid)?
    } else {
        let key = aead_key(p, version, context)?;
        if raw.len() < p.kind.nonce_len() {
            return Err(Error::invalid("invalid ciphertext length"));
        }
        let (nonce, sealed) = raw.split_at(p.kind.nonce_len());
        crypto::aead_open(p.kind, &key, nonce, sealed, aad.unwrap_or_default()).map_err(Error::invalid)?
    };
    Ok((plaintext, version))
}

/// Load the key for encryption, creating it on first use as Vault does (unless upsert is disabled).
fn load_or_create(req: &Request, name: &str, first: Option<&Item<'_>>) -> Result<Policy, Error> {
    if let Some(p) = Policy::load_usable(name)? {
        return Ok(p);
    }
    let cfg: KeysConfig = storage::get_json("config/keys")?.unwrap_or_default();
    if cfg.disable_upsert {
        return Err(Error::invalid("encryption key not found"));
    }
    let mut opts = new_key_options(req, "type")?;
    // A context on the request that creates the key makes it a derived key.
    opts.derived = first.and_then(|i| i.context.str()).is_some_and(|c| !c.is_empty());
    if !opts.kind.supports_encryption() {
        return Err(Error::invalid(format!("key type {} not supported for encryption", opts.kind.name())));
    }
    let p = Policy::create(name, &opts)?;
    p.save()?;
    Ok(p)
}

pub fn encrypt(req: &Request) -> Result<Response, Error> {
    let items = Items::parse(req)?;
    items.check_batch_decoding(Some(("plaintext", "missing plaintext to encrypt")))?;
    items.check_context_everywhere_or_nowhere()?;
    let p = load_or_create(req, name(req)?, items.first())?;
    let default_version = req.int("key_version").unwrap_or(0);
    items.run(req, 400, Out::default(), |item| {
        let plaintext = item.plaintext.str().ok_or_else(|| Error::invalid("missing plaintext to encrypt"))?;
        let plaintext = Zeroizing::new(unb64(plaintext).map_err(Error::invalid)?);
        let context = item.context.b64("context")?;
        let aad = item.associated_data.b64("associated_data")?;
        let version = raw_item_version(item, default_version)?;
        let (ciphertext, version) = encrypt_with(&p, version, &plaintext, context.as_deref(), aad.as_deref())?;
        Ok(Out { ciphertext: Some(ciphertext), key_version: Some(version), ..Out::default() })
    })
}

pub fn decrypt(req: &Request) -> Result<Response, Error> {
    let p = load(name(req)?)?;
    let on_error = Out { plaintext: Some(String::new()), ..Out::default() };
    let items = Items::parse(req)?;
    items.check_batch_decoding(Some(("ciphertext", "missing ciphertext to decrypt")))?;
    items.check_context_everywhere_or_nowhere()?;
    items.run(req, 400, on_error, |item| {
        let (plaintext, _, _) = decrypt_item(&p, item)?;
        Ok(Out { plaintext: Some(b64(&plaintext)), ..Out::default() })
    })
}

pub fn rewrap(req: &Request) -> Result<Response, Error> {
    let p = load(name(req)?)?;
    let default_version = req.int("key_version").unwrap_or(0);
    let items = Items::parse(req)?;
    items.check_batch_decoding(None)?;
    items.check_context_everywhere_or_nowhere()?;
    // Vault answers 200 to a rewrap batch whatever its items' errors.
    items.run(req, 200, Out::default(), |item| {
        let version = raw_item_version(item, default_version)?;
        let (plaintext, context, aad) = decrypt_item(&p, item)?;
        let (ciphertext, version) = encrypt_with(&p, version, &plaintext, context.as_deref(), aad.as_deref())?;
        Ok(Out { ciphertext: Some(ciphertext), key_version: Some(version), ..Out::default() })
    })
}

pub fn datakey(req: &Request) -> Result<Response, Error> {
    let kind = req.captured("plaintext").unwrap_or_default();
    let with_plaintext = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => return Err(Error::invalid("Invalid path, must be 'plaintext' or 'wrapped'")),
    };
    let p = load(name(req)?)?;
    let bits = req.int("bits").unwrap_or(256);
    if !matches!(bits, 128 | 256 | 512) {
        return Err(Error::invalid("invalid bit length"));
    }
    let key = Zeroizing::new(crypto::random_bytes(usize::try_from(bits / 8).unwrap_or(32))?);
    let context = req.str("context").filter(|c| !c.is_empty()).map(unb64).transpose().map_err(|e| Error::invalid(format!("failed to base64-decode context: {e}")))?;
    let (ciphertext, version) = encrypt_with(&p, req.int("key_version").unwrap_or(0), &key, context.as_deref(), None)?;
    let mut data = json!({ "ciphertext": ciphertext, "key_version": version });
    if with_plaintext {
        data["plaintext"] = json!(b64(&key));
    }
    Ok(Response::data(data))
}

// ---------------------------------------------------------------------------------------------
// Random and hash

/// `random[/{source}][/{urlbytes}]`, parsed as Vault does: the path's segments always win over
/// the body's `source` and `urlbytes` (Vault's captures exist, empty, even when the path has no
/// segment, so a body `source` never takes effect; it says so in a warning). A lone segment is a
/// source when it names one and a byte count otherwise.
pub fn random(req: &Request) -> Result<Response, Error> {
    let body_bytes = req.int("bytes").unwrap_or(32);
    let (source, bytes) = match (req.captured("a"), req.captured("b")) {
        (None, _) => ("platform", body_bytes),
        (Some(s), None) if matches!(s, "platform" | "seal" | "all") => (s, body_bytes),
        (Some(s), None) => ("platform", go_atoi(s)?),
        (Some(s), Some(n)) => (s, go_atoi(n)?),
    };
    if bytes < 1 {
        return Err(Error::invalid("'bytes' cannot be less than 1"));
    }
    if bytes > MAX_RANDOM_BYTES {
        return Err(Error::invalid(format!("'bytes' should be less than {MAX_RANDOM_BYTES}")));
    }
    let format = req.str("format").unwrap_or("base64");
    if !matches!(format, "hex" | "base64") {
        return Err(Error::invalid(format!("unsupported encoding format \"{format}\"; must be \"hex\" or \"base64\"")));
    }
    let mut warnings = Vec::new();
    match source {
        "platform" | "all" => {}
        // Tresor has no seal-backed entropy source (no HSM): as Vault without augmentation.
        "seal" => warnings.push("no seal/entropy augmentation available, using platform entropy source".to_string()),
        other => return Err(Error::invalid(format!("unsupported entropy source \"{other}\"; must be \"platform\" or \"seal\", or \"all\""))),
    }
    let raw = crypto::random_bytes(usize::try_from(bytes).unwrap_or(32))?;
    let out = if format == "hex" { hex_encode(&raw) } else { b64(&raw) };
    let replaced: Vec<&str> = ["source", "urlbytes"].into_iter().filter(|k| req.has(k)).collect();
    if !replaced.is_empty() {
        warnings.push(format!(
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [{}]",
            replaced.join(" ")
        ));
    }
    let mut response = Response::data(json!({ "random_bytes": out }));
    response.warnings = warnings;
    Ok(response)
}

/// Go's `strconv.Atoi` and its error, which Vault quotes for a byte count in the path.
fn go_atoi(s: &str) -> Result<i64, Error> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!("error parsing url-set byte count: strconv.Atoi: parsing \"{s}\": invalid syntax")));
    }
    s.parse::<i64>()
        .map_err(|_| Error::invalid(format!("error parsing url-set byte count: strconv.Atoi: parsing \"{s}\": value out of range")))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hash(req: &Request) -> Result<Response, Error> {
    let input = req.str("input").ok_or_else(|| Error::invalid("missing input to hash"))?;
    let input = unb64(input).map_err(|e| Error::invalid(format!("unable to decode input as base64: {e}")))?;
    let alg_name = req.captured("urlalgorithm").or(req.str("algorithm")).unwrap_or("sha2-256");
    let alg = HashAlg::parse(alg_name).ok().filter(|a| *a != HashAlg::None).ok_or_else(|| Error::invalid(format!("unsupported algorithm {alg_name}")))?;
    let sum = crypto::digest(alg, &input);
    let out = match req.str("format").unwrap_or("hex") {
        "hex" => hex_encode(&sum),
        "base64" => b64(&sum),
        other => return Err(Error::invalid(format!("unsupported encoding format {other}; must be \"hex\" or \"base64\""))),
    };
    Ok(Response::data(json!({ "sum": out })))
}

// ---------------------------------------------------------------------------------------------
// HMAC, sign, verify

fn hmac_alg(req: &Request) -> Result<HashAlg, Error> {
    let name = req.captured("urlalgorithm").or(req.str("algorithm")).or(req.str("hash_algorithm")).unwrap_or("sha2-256");
    HashAlg::parse(name).ok().filter(|a| *a != HashAlg::None).ok_or_else(|| Error::invalid(format!("unsupported algorithm {name}")))
}

fn input_arg(item: &Item<'_>) -> Result<Vec<u8>, Error> {
    let input = item.input.str().ok_or_else(|| Error::invalid("missing input"))?;
    unb64(input).map_err(|e| Error::invalid(format!("unable to decode input as base64: {e}")))
}

/// The HMAC key of `version` (Vault's `HMACKey`).
fn hmac_key(p: &Policy, version: i64) -> Result<&[u8], Error> {
    let Ok(v) = u64::try_from(version) else { return Err(Error::invalid("key version does not exist (cannot be negative)")) };
    if v > p.latest_version {
        return Err(Error::invalid(format!("key version does not exist; latest key version is {}", p.latest_version)));
    }
    let entry = live_entry(p, v)?;
    entry.hmac_key.as_deref().map(Vec::as_slice).ok_or_else(|| Error::invalid("no HMAC key exists for that key version"))
}

pub fn hmac(req: &Request) -> Result<Response, Error> {
    let p = load(name(req)?)?;
    let alg = hmac_alg(req)?;
    let default_version = req.int("key_version").unwrap_or(0);
    Items::parse(req)?.run(req, 200, Out::default(), |item| {
        let input = input_arg(item)?;
        let requested = raw_item_version(item, default_version)?;
        let version = if requested == 0 { i64::try_from(p.latest_version).unwrap_or(i64::MAX) } else { requested };
        // Vault's order: the latest version always passes; below the minimum encryption version
        // is refused before the version is looked up.
        if u64::try_from(version).ok() != Some(p.latest_version) && p.min_encryption_version > 0 && version < i64::try_from(p.min_encryption_version).unwrap_or(i64::MAX) {
            return Err(Error::invalid("cannot generate HMAC: version is too old (disallowed by policy)"));
        }
        let mac = crypto::hmac(alg, hmac_key(&p, version)?, &input)?;
        Ok(Out { hmac: Some(versioned(u64::try_from(version).unwrap_or_default(), &mac)), ..Out::default() })
    })
}

fn sign_options(req: &Request, kind: KeyType) -> Result<SignOptions, Error> {
    let hash_name = req.captured("urlalgorithm").or(req.str("hash_algorithm")).or(req.str("algorithm")).unwrap_or("sha2-256");
    let hash = HashAlg::parse(hash_name).map_err(|_| Error::invalid(format!("invalid hash algorithm \"{hash_name}\"")))?;
    let signature_algorithm = req.str("signature_algorithm").unwrap_or("");
    let prehashed = req.bool("prehashed").unwrap_or(false);
    // Only RSA keys read `signature_algorithm`; Vault ignores it for the others.
    let pss = match signature_algorithm {
        "" | "pss" => true,
        "pkcs1v15" => false,
        _ if !kind.is_rsa() => true,
        other => return Err(Error::invalid(format!("unsupported rsa signature algorithm {other}"))),
    };
    // JWS only changes the encoding (base64url) for every key type, and ECDSA's layout.
    let jws = match req.str("marshaling_algorithm").unwrap_or("asn1") {
        "" | "asn1" => false,
        "jws" => true,
        other => return Err(Error::invalid(format!("invalid marshaling type \"{other}\""))),
    };
    // Go's `rsa.PSSSaltLengthAuto` (0) and `PSSSaltLengthEqualsHash` (-1) are accepted as numbers.
    let salt_len = match req.str("salt_length").unwrap_or("auto").to_ascii_lowercase().as_str() {
        "auto" => None,
        "hash" => Some(SaltLen::Hash),
        n => match n.parse::<i64>() {
            Ok(0) => None,
            Ok(-1) => Some(SaltLen::Hash),
            Ok(v) => Some(SaltLen::Bytes(usize::try_from(v).map_err(|_| Error::invalid(format!("salt length is invalid: {v}")))?)),
            Err(_) => return Err(Error::invalid(format!("salt length neither 'auto', 'hash', nor an int: {}", req.str("salt_length").unwrap_or_default()))),
        },
    };
    // Ed25519 hashes nothing, so `none` means nothing to it either (OpenBao signs).
    if hash == HashAlg::None && kind != KeyType::Ed25519 && !(prehashed && signature_algorithm == "pkcs1v15") {
        return Err(Error::invalid("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"));
    }
    Ok(SignOptions { hash, prehashed, pss, salt_len, jws })
}

/// The version a signature is made with, checked as Vault's `SignWithOptions` does (0 = latest).
fn signing_version(p: &Policy, requested: i64) -> Result<u64, Error> {
    let latest = p.latest_version;
    let version = match u64::try_from(requested) {
        Err(_) => return Err(Error::invalid("requested version for signing is negative")),
        Ok(0) => latest,
        Ok(v) if v > latest => return Err(Error::invalid("requested version for signing is higher than the latest key version")),
        Ok(v) if p.min_encryption_version > 0 && v < p.min_encryption_version => {
            return Err(Error::invalid("requested version for signing is less than the minimum encryption key version"))
        }
        Ok(v) => v,
    };
    Ok(version)
}

/// A version's entry as Vault's `safeGetKeyEntry` finds it: versions below the minimum decryption
/// version are archived out of the policy's working set, so they are "no such key version" too.
pub(crate) fn live_entry(p: &Policy, version: u64) -> Result<&crate::policy::KeyEntry, Error> {
    if p.min_decryption_version > 0 && version < p.min_decryption_version {
        return Err(Error::invalid("no such key version"));
    }
    p.keys.get(&version.to_string()).ok_or_else(|| Error::invalid("no such key version"))
}

/// An item's `key_version`, else `default` (the request's), as sent: negative numbers included.
fn raw_item_version(item: &Item<'_>, default: i64) -> Result<i64, Error> {
    Ok(item.key_version.int("key_version")?.unwrap_or(default))
}

/// ed25519 key material for a derived key and `context`: (private, public).
fn derived_ed25519(p: &Policy, version: u64, item: &Item<'_>) -> Result<Option<(crate::policy::Secret, Vec<u8>)>, Error> {
    if !p.derived || p.kind != KeyType::Ed25519 {
        return Ok(None);
    }
    let context = item.context.b64("context")?;
    // As Vault's SignWithOptions / VerifySignatureWithOptions word it.
    let context = context_for(p, context.as_deref())
        .map_err(|e| match e {
            Error::InvalidRequest(m) => Error::invalid(format!("error deriving key: {m}")),
            other => other,
        })?
        .unwrap_or_default();
    let base = p.entry(version)?.key.as_ref().ok_or_else(|| Error::internal("key material missing"))?;
    let seed = crypto::hkdf(base, &context, 32)?;
    crypto::ed25519_from_seed(&seed).map(Some)
}

pub fn sign(req: &Request) -> Result<Response, Error> {
    let p = Policy::load_usable(name(req)?)?.ok_or_else(|| Error::invalid("signing key not found"))?;
    if !p.kind.supports_signing() {
        return Err(Error::invalid(format!("key type {} does not support signing", p.kind.name())));
    }
    let opts = sign_options(req, p.kind)?;
    let default_version = req.int("key_version").unwrap_or(0);
    let on_error = Out { key_version: Some(0), ..Out::default() };
    Items::parse(req)?.run(req, 200, on_error, |item| {
        let input = input_arg(item)?;
        let version = signing_version(&p, raw_item_version(item, default_version)?)?;
        let entry = live_entry(&p, version)?;
        if !entry.has_private(p.kind) {
            return Err(Error::invalid(crate::policy::NO_PRIVATE_PART));
        }
        let derived = derived_ed25519(&p, version, item)?;
        let sig = crypto::sign(p.kind, entry, derived.as_ref().map(|(k, _)| k.as_slice()), &input, &opts)?;
        Ok(Out {
            signature: Some(format!("vault:v{version}:{}", crypto::encode_signature(&sig, &opts))),
            key_version: Some(version),
            public_key: derived.map(|(_, public)| b64(&public)),
            ..Out::default()
        })
    })
}

pub fn verify(req: &Request) -> Result<Response, Error> {
    let items = Items::parse(req)?;
    // As Vault: an item with a `signature` is a signature check (its `hmac`, if any, is ignored);
    // a batch may not mix the two nor leave either out.
    let (mut sig_found, mut hmac_found, mut missing) = (false, false, false);
    for item in items.as_slice() {
        if !matches!(item.signature, Arg::Absent) {
            sig_found = true;
        } else if !matches!(item.hmac, Arg::Absent) {
            hmac_found = true;
        } else {
            missing = true;
        }
    }
    let single = matches!(items, Items::Single(_));
    let refuse = |m: &str| Err(Error::invalid(m));
    match (sig_found, hmac_found, missing) {
        (false, false, _) if single => return refuse("neither a 'signature' nor an 'hmac' were given to verify"),
        (true, true, _) => return refuse("elements of batch_input must all provide 'signature' or all provide 'hmac'"),
        (true, false, true) => return refuse("some elements of batch_input are missing 'signature'"),
        (false, true, true) => return refuse("some elements of batch_input are missing 'hmac'"),
        (false, false, _) => return refuse("no batch_input elements have 'signature' or 'hmac'"),
        _ => {}
    }
    let valid = |v: bool| Out { valid: Some(v), ..Out::default() };
    if hmac_found {
        let p = load(name(req)?)?;
        let alg = hmac_alg(req)?;
        return items.run(req, 200, Out::default(), |item| {
            let input = input_arg(item)?;
            let hmac = item.hmac.str().ok_or_else(|| Error::invalid("missing hmac"))?;
            let (version, body) = parse_versioned(&p, hmac, "hmac")?;
            if p.min_decryption_version > 0 && version < p.min_decryption_version {
                return Err(Error::invalid("cannot verify HMAC: version is too old (disallowed by policy)"));
            }
            let given = unb64(body).map_err(|e| Error::invalid(format!("unable to decode verification HMAC as base64: {e}")))?;
            let mac = crypto::hmac(alg, hmac_key(&p, i64::try_from(version).unwrap_or(i64::MAX))?, &input)?;
            Ok(valid(bool::from(mac.ct_eq(&given))))
        });
    }
    let p = Policy::load_usable(name(req)?)?.ok_or_else(|| Error::invalid("signature verification key not found"))?;
    if !p.kind.supports_signing() {
        return Err(Error::invalid(format!("key type {} does not support verification", p.kind.name())));
    }
    let opts = sign_options(req, p.kind)?;
    items.run(req, 200, Out::default(), |item| {
        let input = input_arg(item)?;
        let signature = item.signature.str().ok_or_else(|| Error::invalid("missing signature"))?;
        let (version, body) = parse_versioned(&p, signature, "signature")?;
        if p.min_decryption_version > 0 && version < p.min_decryption_version {
            return Err(Error::invalid(crate::policy::TOO_OLD));
        }
        let sig = crypto::decode_signature(body, &opts).map_err(|_| Error::invalid("invalid base64 signature value"))?;
        let entry = live_entry(&p, version)?;
        let derived = derived_ed25519(&p, version, item)?;
        Ok(valid(crypto::verify(p.kind, entry, derived.as_ref().map(|(_, pk)| pk.as_slice()), &input, &sig, &opts)?))
    })
}
