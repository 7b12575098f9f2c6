//! The Transit secrets engine: encryption, signing, HMAC, hashing and random bytes as a service, with
//! named, versioned keys that never leave the engine's storage (except through export of keys marked
//! exportable). Vault/OpenBao's API (API.md §12); ciphertexts are `vault:v<N>:base64(nonce ‖
//! ciphertext ‖ tag)`, byte-compatible with Vault's for the AES-GCM and ChaCha20-Poly1305 key types.
//!
//! Storage layout inside the mount's view:
//! - `policy/<name>` → [`policy::Policy`] (Vault's field names; key material base64).
//! - `config/keys` → `{"disable_upsert": bool}`.

pub mod backup;
mod batch;
pub mod crypto;
pub mod ops;
pub mod policy;

use tresor_sdk::{page_fields, Backend, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};

/// The Transit engine.
pub struct Transit;

fn f(name: &str, kind: FieldKind, description: &str) -> Field {
    Field::new(name, kind).description(description)
}

/// Fields shared by the signing endpoints.
fn signing_fields(p: Path) -> Path {
    p.field(f("input", FieldKind::Str, "Base64 input"))
        .field(f("key_version", FieldKind::Int, "Key version (default latest)"))
        .field(f("hash_algorithm", FieldKind::Str, "Hash algorithm (default sha2-256)"))
        .field(f("algorithm", FieldKind::Str, "Deprecated alias of hash_algorithm"))
        .field(f("context", FieldKind::Str, "Base64 derivation context"))
        .field(f("prehashed", FieldKind::Bool, "The input is already a digest"))
        .field(f("signature_algorithm", FieldKind::Str, "RSA: pss (default) or pkcs1v15"))
        .field(f("marshaling_algorithm", FieldKind::Str, "ECDSA: asn1 (default) or jws"))
        .field(f("salt_length", FieldKind::Str, "RSA-PSS salt length: auto, hash or bytes"))
        .field(f("batch_input", FieldKind::Json, "Items to process"))
}

/// Fields shared by `import` and `import_version`.
fn import_fields(p: Path) -> Path {
    p.field(f("ciphertext", FieldKind::Str, "Base64: RSA-OAEP(ephemeral AES-256 key) ‖ AES-KWP(ephemeral, key material)").sensitive())
        .field(f("hash_function", FieldKind::Str, "OAEP hash: SHA1, SHA224, SHA256 (default), SHA384 or SHA512"))
        .field(f("public_key", FieldKind::Str, "A public key to import alone (not supported)"))
        .operations([Operation::Update])
}

/// Fields shared by encrypt, decrypt and rewrap.
fn cipher_fields(p: Path) -> Path {
    p.field(f("context", FieldKind::Str, "Base64 derivation context"))
        .field(f("nonce", FieldKind::Str, "Base64 nonce (convergent keys of version 1 only)"))
        .field(f("associated_data", FieldKind::Str, "Base64 additional authenticated data (AEAD key types)"))
        .field(f("key_version", FieldKind::Int, "Key version to encrypt with (default latest)"))
        .field(f("batch_input", FieldKind::Json, "Items to process"))
        .field(f("partial_failure_response_code", FieldKind::Int, "Status when some batch items fail"))
}

impl Backend for Transit {
    fn spec() -> Spec {
        use Operation::{Create, Delete, List, Read, Update};
        let key_settings = |p: Path| {
            p.field(f("exportable", FieldKind::Bool, "Allow the key to be exported"))
                .field(f("allow_plaintext_backup", FieldKind::Bool, "Allow plaintext backups"))
                .field(f("auto_rotate_period", FieldKind::Duration, "Rotate automatically after this long (0 = never, min 1h)"))
        };
        Spec::secrets("Transit: cryptography as a service. Keys stay here; data is sent in and out.")
            .path(page_fields().into_iter().fold(Path::new("keys"), Path::field).operations([List]).help("List the named keys."))
            .path(page_fields().into_iter().fold(Path::new("keys/"), Path::field).operations([List]).help("List the named keys."))
            .path(
                key_settings(Path::new("keys/{name}"))
                    .field(f("type", FieldKind::Str, "Key type").default_json("\"aes256-gcm96\""))
                    .field(f("derived", FieldKind::Bool, "Derive a key per context"))
                    .field(f("convergent_encryption", FieldKind::Bool, "Deterministic encryption (requires derived)"))
                    .field(f("key_size", FieldKind::Int, "HMAC key size in bytes (32-512)"))
                    .field(f("context", FieldKind::Str, "Ignored (Vault compatibility)"))
                    .operations([Update, Read, Delete])
                    .help("Create, read or delete a named key."),
            )
            .path(
                key_settings(Path::new("keys/{name}/config"))
                    .field(f("min_decryption_version", FieldKind::Int, "Oldest version that may decrypt or verify"))
                    .field(f("min_encryption_version", FieldKind::Int, "Oldest version that may encrypt or sign"))
                    .field(f("deletion_allowed", FieldKind::Bool, "Allow deleting the key"))
                    .operations([Update])
                    .help("Configure a named key."),
            )
            .path(Path::new("keys/{name}/rotate").operations([Update]).help("Add a new key version."))
            .path(Path::new("keys/{name}/soft-delete").operations([Delete]).help("Refuse every use of the key until restored (the key is kept)."))
            .path(Path::new("keys/{name}/soft-delete-restore").operations([Update]).help("Make a soft-deleted key usable again."))
            .path(Path::new("wrapping_key").operations([Read]).help("The RSA-4096 public key that wraps key material for import (BYOK)."))
            .path(
                import_fields(key_settings(Path::new("keys/{name}/import")))
                    .field(f("type", FieldKind::Str, "Key type").default_json("\"aes256-gcm96\""))
                    .field(f("allow_rotation", FieldKind::Bool, "Allow the imported key to be rotated here"))
                    .field(f("derived", FieldKind::Bool, "Derive a key per context"))
                    .field(f("context", FieldKind::Str, "Base64 derivation context"))
                    .help("Import your own key material as a new key."),
            )
            .path(
                import_fields(Path::new("keys/{name}/import_version"))
                    .field(f("version", FieldKind::Int, "An existing version to fill (not supported)"))
                    .help("Import your own key material as a new version of an imported key."),
            )
            .path(
                Path::new("keys/{name}/trim")
                    .field(f("min_available_version", FieldKind::Int, "Delete versions older than this").required())
                    .operations([Update])
                    .help("Delete old key versions permanently."),
            )
            .path(
                cipher_fields(Path::new("encrypt/{name}"))
                    .field(f("plaintext", FieldKind::Str, "Base64 plaintext").sensitive())
                    .field(f("type", FieldKind::Str, "Key type when the key is created by this request").default_json("\"aes256-gcm96\""))
                    .field(f("convergent_encryption", FieldKind::Bool, "Convergent key when created by this request"))
                    .operations([Create, Update])
                    .existence_check()
                    .help("Encrypt base64 plaintext (creating the key on first use)."),
            )
            .path(
                cipher_fields(Path::new("decrypt/{name}"))
                    .field(f("ciphertext", FieldKind::Str, "vault:vN: ciphertext"))
                    .operations([Update])
                    .help("Decrypt to base64 plaintext."),
            )
            .path(
                cipher_fields(Path::new("rewrap/{name}"))
                    .field(f("ciphertext", FieldKind::Str, "vault:vN: ciphertext"))
                    .operations([Update])
                    .help("Re-encrypt under the latest (or given) key version without revealing the plaintext."),
            )
            .path(
                Path::new("datakey/{plaintext}/{name}")
                    .field(f("context", FieldKind::Str, "Base64 derivation context"))
                    .field(f("nonce", FieldKind::Str, "Base64 nonce"))
                    .field(f("bits", FieldKind::Int, "128, 256 or 512").default_json("256"))
                    .field(f("key_version", FieldKind::Int, "Key version to wrap with"))
                    .operations([Update])
                    .help("Generate a data key, returned wrapped (and in plaintext for `plaintext`)."),
            )
            .path(random_path(Path::new("random")))
            .path(random_path(Path::new("random/{a}")))
            .path(random_path(Path::new("random/{a}/{b*}")))
            .path(hash_path(Path::new("hash")))
            .path(hash_path(Path::new("hash/{urlalgorithm}")))
            .path(hmac_path(Path::new("hmac/{name}")))
            .path(hmac_path(Path::new("hmac/{name}/{urlalgorithm}")))
            .path(signing_fields(Path::new("sign/{name}")).operations([Update]).help("Sign base64 input."))
            .path(signing_fields(Path::new("sign/{name}/{urlalgorithm}")).operations([Update]).help("Sign base64 input."))
            .path(verify_path(Path::new("verify/{name}")))
            .path(verify_path(Path::new("verify/{name}/{urlalgorithm}")))
            .path(Path::new("export/{type}/{name}").operations([Read]).help("Export key material of an exportable key."))
            .path(Path::new("export/{type}/{name}/{version}").operations([Read]).help("Export one version's key material."))
            .path(Path::new("backup/{name}").operations([Read]).help("Back up a key (exportable, allow_plaintext_backup)."))
            .path(
                Path::new("derive-key/{name}")
                    .field(f("base_key_name", FieldKind::Str, "Name of the base key to use for derivation (own private key for ECDH)"))
                    .field(f("base_key_version", FieldKind::Int, "The version of the base key to use (0: latest)"))
                    .field(f("derived_key_type", FieldKind::Str, "Type of the derived key: aes128-gcm96, aes256-gcm96 (default), chacha20-poly1305, xchacha20-poly1305"))
                    .field(f("key_derivation_algorithm", FieldKind::Str, "Key derivation algorithm: ecdh (default)"))
                    .field(f("peer_public_key", FieldKind::Str, "The PEM-encoded public key of the other party, on the base key's curve"))
                    .operations([Update])
                    .help("Derive a new key from a base key (ECDH with a peer's public key, then HKDF-SHA256)."),
            )
            .path(byok_path(Path::new("byok-export/{destination}/{source}")))
            .path(byok_path(Path::new("byok-export/{destination}/{source}/{version}")))
            .path(restore_path(Path::new("restore")))
            .path(restore_path(Path::new("restore/{name}")))
            .path(
                Path::new("config/keys")
                    .field(f("disable_upsert", FieldKind::Bool, "Refuse to create keys on encrypt"))
                    .operations([Read, Update])
                    .help("Engine-wide key settings."),
            )
            .path(
                Path::new("cache-config")
                    .field(f("size", FieldKind::Int, "Size of cache, use 0 for an unlimited cache size, defaults to 0").default_json("0"))
                    .operations([Read, Update, Create])
                    .help("Configure caching strategy (stored for compatibility: every request here reads its key from storage)."),
            )
    }

    fn handle(req: Request) -> Result<Response, Error> {
        let first = req.path.split('/').next().unwrap_or_default();
        match first {
            "keys" => ops::keys(&req),
            "encrypt" => ops::encrypt(&req),
            "decrypt" => ops::decrypt(&req),
            "rewrap" => ops::rewrap(&req),
            "datakey" => ops::datakey(&req),
            "random" => ops::random(&req),
            "hash" => ops::hash(&req),
            "hmac" => ops::hmac(&req),
            "sign" => ops::sign(&req),
            "verify" => ops::verify(&req),
            "export" => backup::export(&req),
            "backup" => backup::backup(&req),
            "restore" => backup::restore(&req),
            "config" => ops::config_keys(&req),
            "wrapping_key" => ops::wrapping_key(&req),
            "cache-config" => ops::cache_config(&req),
            "byok-export" => ops::byok_export(&req),
            "derive-key" => ops::derive_key(&req),
            _ => Err(Error::UnsupportedPath),
        }
    }

    fn exists(req: Request) -> Result<bool, Error> {
        let name = req.captured("name").unwrap_or_default();
        Ok(policy::Policy::load(name)?.is_some())
    }

    fn periodic() -> Result<(), Error> {
        ops::auto_rotate()
    }
}

fn byok_path(p: Path) -> Path {
    p.field(f("hash", FieldKind::Str, "Hash of the RSA-OAEP wrapping (SHA1, SHA224, SHA256 (default), SHA384, SHA512)"))
        .operations([Operation::Read])
        .help("Export a key's versions wrapped for import into another server whose wrapping key is the destination key.")
}

fn random_path(p: Path) -> Path {
    p.field(f("bytes", FieldKind::Int, "Number of bytes (default 32)"))
        .field(f("format", FieldKind::Str, "base64 (default) or hex"))
        // Declared as Vault declares them, but the path's segments always replace them.
        .field(f("source", FieldKind::Str, "Ignored: the source is the path's segment (platform, seal or all)"))
        .field(f("urlbytes", FieldKind::Str, "Ignored: the byte count in the path"))
        .operations([Operation::Update])
        .help("Random bytes from the host CSPRNG.")
}

fn hash_path(p: Path) -> Path {
    p.field(f("input", FieldKind::Str, "Base64 input"))
        .field(f("algorithm", FieldKind::Str, "Hash algorithm (default sha2-256)"))
        .field(f("format", FieldKind::Str, "hex (default) or base64"))
        .operations([Operation::Update])
        .help("Hash base64 input.")
}

fn hmac_path(p: Path) -> Path {
    p.field(f("input", FieldKind::Str, "Base64 input"))
        .field(f("key_version", FieldKind::Int, "Key version (default latest)"))
        .field(f("algorithm", FieldKind::Str, "Hash algorithm (default sha2-256)"))
        .field(f("hash_algorithm", FieldKind::Str, "Alias of algorithm"))
        .field(f("batch_input", FieldKind::Json, "Items to process"))
        .operations([Operation::Update])
        .help("HMAC base64 input with the key's HMAC key.")
}

fn verify_path(p: Path) -> Path {
    signing_fields(p)
        .field(f("signature", FieldKind::Str, "vault:vN: signature"))
        .field(f("hmac", FieldKind::Str, "vault:vN: HMAC"))
        .operations([Operation::Update])
        .help("Verify a signature or HMAC.")
}

fn restore_path(p: Path) -> Path {
    p.field(f("backup", FieldKind::Str, "Backup from transit/backup").sensitive().required())
        .field(f("force", FieldKind::Bool, "Overwrite an existing key"))
        .operations([Operation::Update])
        .help("Restore a key from a backup.")
}

tresor_sdk::export!(Transit);

#[cfg(test)]
mod kat;
#[cfg(test)]
mod tests;
