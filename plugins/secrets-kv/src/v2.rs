//! KV version 2: versioned secrets with check-and-set, soft delete, undelete, destroy and metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tresor_sdk::{page_fields, storage, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};


/// Vault's default when neither the key nor the mount sets `max_versions`.
const DEFAULT_MAX_VERSIONS: u64 = 10;
const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";
const INVALID_PATH_WARNING: &str = "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the OpenBao CLI, use 'bao kv get' for this operation.";

/// The settings a mount (`config`) and each secret (`metadata/<path>`) both carry; a secret's
/// non-zero value overrides the mount's.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    max_versions: u64,
    #[serde(default)]
    cas_required: bool,
    #[serde(default)]
    delete_version_after: u64,
}

impl Config {
    /// The request fields that set these settings.
    fn fields(path: Path) -> Path {
        path.field(Field::new("max_versions", FieldKind::Int).description("The number of versions to keep for each key (0: the default, 10)"))
            .field(Field::new("cas_required", FieldKind::Bool).description("If true, every write must carry the cas option"))
            .field(Field::new("delete_version_after", FieldKind::Duration).description("If set, the length of time before a version is deleted"))
    }

    /// Apply the settings present in `req`.
    fn update_from(&mut self, req: &Request) -> Result<(), Error> {
        if let Some(n) = req.int("max_versions") {
            self.max_versions = u64::try_from(n).map_err(|_| Error::invalid("max_versions must not be negative"))?;
        }
        if let Some(b) = req.bool("cas_required") {
            self.cas_required = b;
        }
        if let Some(d) = req.duration("delete_version_after") {
            self.delete_version_after = d;
        }
        Ok(())
    }
}

/// One version's bookkeeping.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct VersionMeta {
    created_time: String,
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

/// Per-secret metadata (`meta/<path>`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Metadata {
    created_time: String,
    updated_time: String,
    current_version: u64,
    oldest_version: u64,
    /// Stored flat (`max_versions`, `cas_required`, `delete_version_after` beside the other keys).
    #[serde(flatten)]
    settings: Config,
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, String>>,
    /// OpenBao's count of metadata writes (`metadata put`/`patch`).
    #[serde(default)]
    current_metadata_version: u64,
    versions: BTreeMap<u64, VersionMeta>,
}

pub(crate) fn spec() -> Spec {
    let p = |pattern: &str| Path::new(pattern);
    let versions = || Field::new("versions", FieldKind::Json).description("Versions to act on");
    Spec::secrets("KV version 2: versioned secrets.")
        .path(
            Config::fields(p("config"))
                .operations([Operation::Read, Operation::Update, Operation::Create])
                .help("Configures settings for the KV store."),
        )
        .path(
            p("data/{path*}")
                .field(Field::new("data", FieldKind::Json).description("The contents of the data map will be stored and returned on read."))
                .field(Field::new("options", FieldKind::Json).description(
                    "Options for writing a KV entry. Set the \"cas\" value to use a Check-And-Set operation: 0 writes only if the key does not exist, a version only if it is the current one.",
                ))
                .field(Field::new("version", FieldKind::Int).description("If provided during a read, the value at the version number will be returned"))
                .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Patch, Operation::Delete])
                .existence_check()
                .allow_unknown_fields()
                .help("Write, Patch, Read, and Delete data in the Key-Value Store."),
        )
        .path(
            page_fields()
                .into_iter()
                .fold(Config::fields(p("metadata/{path*}")), Path::field)
                .field(Field::new("custom_metadata", FieldKind::Json).description("User-provided key-value pairs used to describe the secret"))
                .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Patch, Operation::Delete, Operation::List])
                .existence_check()
                .help("Configures settings for the KV store (per secret) and lists or deletes a secret's versions."),
        )
        .path(p("delete/{path*}").field(versions()).operations([Operation::Update, Operation::Create]).help("Marks one or more versions as deleted in the KV store."))
        .path(p("undelete/{path*}").field(versions()).operations([Operation::Update, Operation::Create]).help("Undeletes one or more versions from the KV store."))
        .path(p("destroy/{path*}").field(versions()).operations([Operation::Update, Operation::Create]).help("Permanently removes one or more versions in the KV store."))
        .path(
            p("subkeys/{path*}")
                .field(Field::new("version", FieldKind::Int).description("Version to read (default latest)"))
                .field(Field::new("depth", FieldKind::Int).description("Deepest nesting level to provide in the output (0: no limit)"))
                .operations([Operation::Read])
                .help("Read the structure of a secret entry from the Key-Value store with the values removed."),
        )
        .path(
            page_fields()
                .into_iter()
                .fold(p("detailed-metadata/{path*}"), Path::field)
                .operations([Operation::List])
                .help("Lists secrets with the metadata of each (folders with none)."),
        )
        .path(
            p("{path*}")
                .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Delete, Operation::List, Operation::Patch])
                .allow_unknown_fields(),
        )
}

/// Marks storage in this module's layout; its value is [`LAYOUT_VALUE`].
const LAYOUT_KEY: &str = ".tresor-kv-layout";
const LAYOUT_VALUE: &str = r#"{"tresor_kv_layout":2}"#;

/// At every load: a mount without the layout mark is new (nothing stored) or was version 1 until
/// its `options.version` was tuned to 2, so everything it holds is a version-1 secret, which
/// becomes version 1 of the same path. One call, one transaction: the move happens entirely or not
/// at all (a mount too large for one call's CPU or staged-write budget stays unavailable, its data
/// untouched, and is tried again at the next load).
pub(crate) fn initialize() -> Result<(), Error> {
    if storage::get(LAYOUT_KEY)?.is_some() {
        return Ok(());
    }
    let mut keys = Vec::new();
    collect_keys("", &mut keys)?;
    let mut secrets = Vec::with_capacity(keys.len());
    for key in keys {
        let data: Value = storage::get_json(&key)?.ok_or_else(|| Error::internal(format!("version-1 secret {key} vanished during the upgrade")))?;
        secrets.push((key, data));
    }
    // Deletes first: a version-1 secret may sit where a moved one's metadata goes (`meta/...`).
    for (key, _) in &secrets {
        storage::delete(key)?;
    }
    let now = now();
    for (path, data) in &secrets {
        storage::put_json(&data_key(1, path), data)?;
        let versions = BTreeMap::from([(1, VersionMeta { created_time: now.clone(), ..VersionMeta::default() })]);
        save_meta(path, &Metadata { created_time: now.clone(), updated_time: now.clone(), current_version: 1, versions, ..Metadata::default() })?;
    }
    storage::put(LAYOUT_KEY, LAYOUT_VALUE.as_bytes())?;
    Ok(())
}

/// Every key under `prefix`, depth first.
fn collect_keys(prefix: &str, out: &mut Vec<String>) -> Result<(), Error> {
    for name in storage::list(prefix)? {
        let full = format!("{prefix}{name}");
        if name.ends_with('/') {
            collect_keys(&full, out)?;
        } else {
            out.push(full);
        }
    }
    Ok(())
}

fn now() -> String {
    let (s, n) = tresor_sdk::system::now();
    tresor_sdk::system::rfc3339(s, n)
}

fn secret_path(req: &Request) -> Result<String, Error> {
    let p = req.captured("path").unwrap_or("");
    if p.is_empty() {
        return Err(Error::invalid("missing path"));
    }
    Ok(p.to_string())
}

fn load_config() -> Result<Config, Error> {
    Ok(storage::get_json("config")?.unwrap_or_default())
}

fn load_meta(path: &str) -> Result<Option<Metadata>, Error> {
    storage::get_json(&format!("meta/{path}"))
}

fn save_meta(path: &str, meta: &Metadata) -> Result<(), Error> {
    storage::put_json(&format!("meta/{path}"), meta)
}

fn data_key(version: u64, path: &str) -> String {
    format!("data/{version}/{path}")
}

fn fmt_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

pub(crate) fn exists(req: &Request) -> Result<bool, Error> {
    match req.captured("path") {
        Some(p) if !p.is_empty() => Ok(load_meta(p)?.is_some()),
        _ => Ok(false),
    }
}

pub(crate) fn handle(req: Request) -> Result<Response, Error> {
    match (req.path_index, req.operation) {
        (0, Operation::Read) => read_config(),
        (0, _) => write_config(&req),
        (1, Operation::Read) => read_data(&req),
        (1, Operation::Create | Operation::Update) => write_data(&req, false),
        (1, Operation::Patch) => write_data(&req, true),
        (1, Operation::Delete) => delete_latest(&req),
        (2, Operation::List) => list_metadata(&req),
        (2, Operation::Read) => read_metadata(&req),
        (2, Operation::Delete) => delete_metadata(&req),
        (2, _) => write_metadata(&req),
        (3, _) => mark_versions(&req, Mark::Delete),
        (4, _) => mark_versions(&req, Mark::Undelete),
        (5, _) => mark_versions(&req, Mark::Destroy),
        (6, _) => subkeys(&req),
        (7, _) => list_detailed_metadata(&req),
        _ => Ok(Response { data: None, status: Some(404), ..Response::empty() }.warn(INVALID_PATH_WARNING)),
    }
}

fn read_config() -> Result<Response, Error> {
    let c = load_config()?;
    Ok(Response::data(json!({
        "cas_required": c.cas_required,
        "delete_version_after": fmt_duration(c.delete_version_after),
        "max_versions": c.max_versions,
        "metadata_cas_required": false,
    })))
}

fn write_config(req: &Request) -> Result<Response, Error> {
    let mut c = load_config()?;
    c.update_from(req)?;
    storage::put_json("config", &c)?;
    Ok(Response::empty())
}

/// Version metadata as the API shows it.
fn version_json(meta: &Metadata, version: u64, v: &VersionMeta) -> Value {
    json!({
        "created_time": v.created_time,
        "custom_metadata": meta.custom_metadata,
        "deletion_time": v.deletion_time,
        "destroyed": v.destroyed,
        "version": version,
    })
}

/// Vault's `deletionTime`: the smaller non-zero `delete_version_after` of the secret and the mount.
fn effective_dva(meta: &Metadata, config: &Config) -> u64 {
    match (meta.settings.delete_version_after, config.delete_version_after) {
        (0, mount) => mount,
        (secret, 0) => secret,
        (secret, mount) => secret.min(mount),
    }
}

/// Whether a version reads as deleted: its deletion time (set by a delete, or at write time from
/// `delete_version_after`, as Vault) has come. A future deletion time is shown but does not hide
/// the version yet.
fn is_deleted(v: &VersionMeta) -> bool {
    !v.deletion_time.is_empty() && parse_rfc3339_secs(&v.deletion_time).is_none_or(|at| at <= tresor_sdk::system::now().0)
}

fn parse_rfc3339_secs(t: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS...
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn read_data(req: &Request) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let meta = load_meta(&path)?.ok_or(Error::NotFound)?;
    let version = match req.int("version") {
        Some(v) if v > 0 => v as u64,
        _ => meta.current_version,
    };
    let v = meta.versions.get(&version).ok_or(Error::NotFound)?;
    let metadata = version_json(&meta, version, v);
    if v.destroyed || is_deleted(v) {
        return Ok(Response::data(json!({"data": null, "metadata": metadata})).status(404));
    }
    let data: Value = storage::get_json(&data_key(version, &path))?.ok_or(Error::NotFound)?;
    Ok(Response::data(json!({"data": data, "metadata": metadata})))
}

fn cas_of(req: &Request) -> Result<Option<u64>, Error> {
    let Some(options) = req.json("options") else { return Ok(None) };
    match options.get("cas") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| Error::invalid("error parsing check-and-set parameter")),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| Error::invalid("error parsing check-and-set parameter")),
        Some(_) => Err(Error::invalid("error parsing check-and-set parameter")),
    }
}

/// JSON merge patch (RFC 7396).
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn write_data(req: &Request, patch: bool) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let data = match req.json("data") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::Null) | None => return Err(Error::invalid("no data provided")),
        Some(other) => {
            return Err(Error::invalid(format!(
                "error converting input for field \"data\": '' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
                go_type(other)
            )))
        }
    };
    let config = load_config()?;
    let existing = load_meta(&path)?;
    if patch && existing.is_none() {
        // As Vault: a bare 404, no body.
        return Ok(Response::empty().status(404));
    }
    let cas = cas_of(req)?;
    let current = existing.as_ref().map_or(0, |m| m.current_version);
    let cas_required = config.cas_required || existing.as_ref().is_some_and(|m| m.settings.cas_required);
    match cas {
        Some(c) if c != current => return Err(Error::invalid(CAS_MISMATCH)),
        None if cas_required => return Err(Error::invalid("check-and-set parameter required for this call")),
        _ => {}
    }
    let new_data = if patch {
        let meta = existing.as_ref().ok_or(Error::NotFound)?;
        // Metadata written before any data: as Vault, a bare 404.
        let Some(v) = meta.versions.get(&current) else { return Ok(Response::empty().status(404)) };
        if v.destroyed || is_deleted(v) {
            // As Vault: the 404 carries the current version's metadata.
            return Ok(Response::data(version_json(meta, current, v)).status(404));
        }
        let mut base: Value = storage::get_json(&data_key(current, &path))?.ok_or(Error::NotFound)?;
        merge_patch(&mut base, &data);
        base
    } else {
        data
    };
    let (secs, nanos) = tresor_sdk::system::now();
    let now = tresor_sdk::system::rfc3339(secs, nanos);
    let mut meta = existing.unwrap_or_else(|| Metadata { created_time: now.clone(), oldest_version: 0, ..Metadata::default() });
    // As Vault: `delete_version_after` fixes the version's deletion time when it is written.
    let dva = effective_dva(&meta, &config);
    let deletion_time = if dva > 0 { tresor_sdk::system::rfc3339(secs.saturating_add_unsigned(dva), nanos) } else { String::new() };
    let version = meta.current_version + 1;
    storage::put_json(&data_key(version, &path), &new_data)?;
    meta.current_version = version;
    meta.updated_time = now.clone();
    meta.versions.insert(version, VersionMeta { created_time: now, deletion_time, ..VersionMeta::default() });
    prune(&path, &mut meta, &config)?;
    save_meta(&path, &meta)?;
    let v = meta.versions.get(&version).cloned().unwrap_or_default();
    Ok(Response::data(version_json(&meta, version, &v)))
}

/// Go's name for a JSON value's type, as Vault's messages print it.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Vault's sliding window (`KeyMetadata.AddVersion`): the limit is the larger of the secret's and
/// the mount's `max_versions` (10 when neither is set); once the newest version is that many past
/// `oldest_version`, every version up to `current - max` is dropped and `oldest_version` moves past
/// them. A secret holding exactly `max_versions` versions still says 0.
fn prune(path: &str, meta: &mut Metadata, config: &Config) -> Result<(), Error> {
    let max = match meta.settings.max_versions.max(config.max_versions) {
        0 => DEFAULT_MAX_VERSIONS,
        m => m,
    };
    if meta.current_version - meta.oldest_version < max {
        return Ok(());
    }
    let last = meta.current_version - max;
    for version in meta.oldest_version..=last {
        if meta.versions.remove(&version).is_some() {
            storage::delete(&data_key(version, path))?;
        }
    }
    meta.oldest_version = last + 1;
    Ok(())
}

fn delete_latest(req: &Request) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let Some(mut meta) = load_meta(&path)? else { return Ok(Response::empty()) };
    let current = meta.current_version;
    if let Some(v) = meta.versions.get_mut(&current)
        && !is_deleted(v) && !v.destroyed {
            v.deletion_time = now();
            save_meta(&path, &meta)?;
        }
    Ok(Response::empty())
}

#[derive(PartialEq, Eq)]
enum Mark {
    Delete,
    Undelete,
    Destroy,
}

fn versions_of(req: &Request) -> Result<Vec<u64>, Error> {
    let list = match req.json("versions") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => s.split(',').map(|p| Value::String(p.trim().to_string())).collect(),
        Some(Value::Number(n)) => vec![Value::Number(n.clone())],
        _ => Vec::new(),
    };
    let versions: Vec<u64> = list
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| Error::invalid("error parsing versions"))?;
    if versions.is_empty() {
        return Err(Error::invalid("No version number provided"));
    }
    Ok(versions)
}

fn mark_versions(req: &Request, mark: Mark) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let versions = match versions_of(req) {
        // Vault's destroy spells it in lower case.
        Err(_) if mark == Mark::Destroy && req.json("versions").is_none() => return Err(Error::invalid("no version number provided")),
        other => other?,
    };
    let Some(mut meta) = load_meta(&path)? else { return Ok(Response::empty()) };
    let now = now();
    for version in versions {
        let Some(v) = meta.versions.get_mut(&version) else { continue };
        match mark {
            Mark::Delete if !is_deleted(v) && !v.destroyed => v.deletion_time = now.clone(),
            Mark::Undelete if !v.destroyed => v.deletion_time.clear(),
            Mark::Destroy if !v.destroyed => {
                v.destroyed = true;
                storage::delete(&data_key(version, &path))?;
            }
            _ => {}
        }
    }
    save_meta(&path, &meta)?;
    Ok(Response::empty())
}

fn list_metadata(req: &Request) -> Result<Response, Error> {
    let p = req.captured("path").unwrap_or("");
    let prefix = if p.is_empty() || p.ends_with('/') { format!("meta/{p}") } else { format!("meta/{p}/") };
    Response::list(Response::page(storage::list(&prefix)?, req.str("after"), req.int("limit")))
}

/// OpenBao's `LIST detailed-metadata/:prefix`: the keys, and under `key_info` each secret's
/// metadata as `metadata/:path` reads it (folders map to `{}`).
fn list_detailed_metadata(req: &Request) -> Result<Response, Error> {
    let p = req.captured("path").unwrap_or("");
    let dir = if p.is_empty() || p.ends_with('/') { p.to_string() } else { format!("{p}/") };
    let keys = Response::page(storage::list(&format!("meta/{dir}"))?, req.str("after"), req.int("limit"));
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    let mut info = Map::new();
    for key in &keys {
        let entry = match key.ends_with('/') {
            true => json!({}),
            false => match load_meta(&format!("{dir}{key}"))? {
                Some(meta) => metadata_json(&meta),
                None => json!({}),
            },
        };
        info.insert(key.clone(), entry);
    }
    Ok(Response::data(json!({"keys": keys, "key_info": info})))
}

fn read_metadata(req: &Request) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let meta = load_meta(&path)?.ok_or(Error::NotFound)?;
    Ok(Response::data(metadata_json(&meta)))
}

/// A secret's metadata as `metadata/:path` reads it.
fn metadata_json(meta: &Metadata) -> Value {
    let versions: Map<String, Value> = meta
        .versions
        .iter()
        .map(|(n, v)| {
            (n.to_string(), json!({"created_time": v.created_time, "deletion_time": v.deletion_time, "destroyed": v.destroyed}))
        })
        .collect();
    json!({
        "cas_required": meta.settings.cas_required,
        "created_time": meta.created_time,
        "current_metadata_version": meta.current_metadata_version,
        "current_version": meta.current_version,
        "custom_metadata": meta.custom_metadata,
        "delete_version_after": fmt_duration(meta.settings.delete_version_after),
        "max_versions": meta.settings.max_versions,
        "metadata_cas_required": false,
        "oldest_version": meta.oldest_version,
        "updated_time": meta.updated_time,
        "versions": versions,
    })
}

fn custom_metadata_of(v: &Value) -> Result<BTreeMap<String, String>, Error> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(Error::invalid("custom_metadata values must be strings")),
            })
            .collect(),
        Value::Null => Ok(BTreeMap::new()),
        other => Err(Error::invalid(format!(
            "error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
            go_type(other)
        ))),
    }
}

fn write_metadata(req: &Request) -> Result<Response, Error> {
    let path = secret_path(req)?;
    let existing = load_meta(&path)?;
    if req.operation == Operation::Patch && existing.is_none() {
        return Err(Error::NotFound);
    }
    let given = ["max_versions", "cas_required", "delete_version_after", "custom_metadata"].iter().any(|f| req.has(f));
    if req.operation != Operation::Patch && !given {
        // As Vault: a write that sets nothing stores nothing (not even an empty metadata entry).
        return Ok(Response::empty());
    }
    let config = load_config()?;
    let ignored_cas = config.cas_required && req.bool("cas_required") == Some(false);
    let now = now();
    let mut meta = existing.unwrap_or_else(|| Metadata { created_time: now.clone(), ..Metadata::default() });
    meta.settings.update_from(req)?;
    if let Some(cm) = req.json("custom_metadata") {
        let incoming = custom_metadata_of(cm)?;
        if req.operation == Operation::Patch {
            let mut merged = meta.custom_metadata.take().unwrap_or_default();
            if let Value::Object(m) = cm {
                for (k, v) in m {
                    if v.is_null() {
                        merged.remove(k);
                    }
                }
            }
            merged.extend(incoming);
            meta.custom_metadata = Some(merged);
        } else {
            meta.custom_metadata = Some(incoming);
        }
    }
    meta.updated_time = now;
    meta.current_metadata_version += 1;
    // As Vault: a lower `max_versions` drops old versions at the next write, not now.
    save_meta(&path, &meta)?;
    Ok(if ignored_cas {
        Response::empty().warn("\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.")
    } else {
        Response::empty()
    })
}

fn delete_metadata(req: &Request) -> Result<Response, Error> {
    let path = secret_path(req)?;
    if let Some(meta) = load_meta(&path)? {
        for version in meta.versions.keys() {
            storage::delete(&data_key(*version, &path))?;
        }
        storage::delete(&format!("meta/{path}"))?;
    }
    Ok(Response::empty())
}

fn null_leaves(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), if v.is_object() { null_leaves(v) } else { Value::Null })).collect()),
        _ => Value::Null,
    }
}

fn subkeys(req: &Request) -> Result<Response, Error> {
    let resp = read_data(req)?;
    // A deleted or destroyed version: 404 with its metadata and null subkeys, as Vault.
    let deleted = resp.status == Some(404);
    let body = resp.data.unwrap_or_default();
    let subkeys = if deleted { Value::Null } else { null_leaves(&body["data"]) };
    let out = Response::data(json!({"metadata": body["metadata"], "subkeys": subkeys}));
    Ok(if deleted { out.status(404) } else { out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_sdk::Value as V;

    fn req(op: Operation, index: usize, path: &str) -> Request {
        let mut r = Request::new(op, path).capture("path", path.split_once('/').map_or("", |(_, p)| p));
        r.path_index = index;
        r
    }

    fn write(path: &str, data: Value, cas: Option<u64>) -> Result<Response, Error> {
        let mut r = req(Operation::Update, 1, &format!("data/{path}")).with("data", V::Json(data.into()));
        if let Some(c) = cas {
            r = r.with("options", V::Json(json!({ "cas": c }).into()));
        }
        handle(r)
    }

    fn read(path: &str) -> Result<Response, Error> {
        handle(req(Operation::Read, 1, &format!("data/{path}")))
    }

    /// As Vault: `delete_version_after` fixes each version's deletion time when it is written
    /// (shown at once, in the future); the version reads until then and is deleted after. A
    /// delete before then moves the time to now; an undelete clears it.
    #[test]
    fn delete_version_after_sets_a_future_deletion_time_at_write() {
        storage::reset_mock();
        tresor_sdk::system::set_mock_now(1_795_426_674, 0);
        handle(req(Operation::Update, 0, "config").with("delete_version_after", V::Duration(3600))).unwrap();
        let written = write("t", json!({"x": "1"}), None).unwrap().data.unwrap();
        let due = tresor_sdk::system::rfc3339(1_795_426_674 + 3600, 0);
        assert_eq!(written["deletion_time"], json!(due));
        let r = read("t").unwrap();
        assert_eq!((r.status, r.data.as_ref().unwrap()["metadata"]["deletion_time"].clone()), (None, json!(due)));
        tresor_sdk::system::set_mock_now(1_795_426_674 + 3600, 0);
        assert_eq!(read("t").unwrap().status, Some(404), "deleted once the time has come");
        handle(req(Operation::Update, 4, "undelete/t").with("versions", V::Json(json!([1]).into()))).unwrap();
        let r = read("t").unwrap();
        assert_eq!((r.status, r.data.unwrap()["metadata"]["deletion_time"].clone()), (None, json!("")));
        write("t", json!({"x": "2"}), None).unwrap();
        handle(req(Operation::Delete, 1, "data/t")).unwrap();
        let r = read("t").unwrap();
        assert_eq!(r.status, Some(404));
        assert_eq!(r.data.unwrap()["metadata"]["deletion_time"], json!(tresor_sdk::system::rfc3339(1_795_426_674 + 3600, 0)));
    }

    #[test]
    fn detailed_metadata_lists_each_secret_with_its_metadata() {
        storage::reset_mock();
        write("a", json!({"x": "1"}), None).unwrap();
        write("a", json!({"x": "2"}), None).unwrap();
        write("dir/b", json!({"x": "1"}), None).unwrap();
        let spec = spec();
        assert_eq!(spec.paths[7].pattern, "detailed-metadata/{path*}");
        let list = |p: &str| handle(req(Operation::List, 7, &format!("detailed-metadata/{p}")));
        let top = list("").unwrap().data.unwrap();
        assert_eq!(top["keys"], json!(["a", "dir/"]));
        assert_eq!(top["key_info"]["dir/"], json!({}));
        let meta = handle(req(Operation::Read, 2, "metadata/a")).unwrap().data.unwrap();
        assert_eq!(top["key_info"]["a"], meta, "the same as metadata/:path reads");
        assert_eq!(top["key_info"]["a"]["current_version"], 2);
        assert_eq!(list("dir/").unwrap().data.unwrap()["keys"], json!(["b"]));
        assert_eq!(list("none/").unwrap_err(), Error::NotFound);
    }

    #[test]
    fn versions_cas_and_soft_delete() {
        storage::reset_mock();
        assert_eq!(write("app/db", json!({"pass": "p1"}), None).unwrap().data.unwrap()["version"], 1);
        assert_eq!(write("app/db", json!({"pass": "p2"}), Some(1)).unwrap().data.unwrap()["version"], 2);
        assert_eq!(write("app/db", json!({"pass": "p3"}), Some(1)).unwrap_err(), Error::invalid(CAS_MISMATCH));
        assert_eq!(write("new", json!({"a": "b"}), Some(0)).unwrap().data.unwrap()["version"], 1);
        assert_eq!(write("new", json!({"a": "c"}), Some(0)).unwrap_err(), Error::invalid(CAS_MISMATCH));
        let r = read("app/db").unwrap();
        assert_eq!(r.data.as_ref().unwrap()["data"]["pass"], "p2");
        let r = handle(req(Operation::Read, 1, "data/app/db").with("version", V::Int(1))).unwrap();
        assert_eq!(r.data.unwrap()["data"]["pass"], "p1");

        handle(req(Operation::Delete, 1, "data/app/db")).unwrap();
        let r = read("app/db").unwrap();
        assert_eq!(r.status, Some(404));
        let body = r.data.unwrap();
        assert!(body["data"].is_null());
        assert_ne!(body["metadata"]["deletion_time"], "");

        handle(req(Operation::Update, 4, "undelete/app/db").with("versions", V::Json(json!([2]).into()))).unwrap();
        assert_eq!(read("app/db").unwrap().status, None);
        handle(req(Operation::Update, 5, "destroy/app/db").with("versions", V::Json(json!([2]).into()))).unwrap();
        let r = read("app/db").unwrap();
        assert_eq!(r.data.unwrap()["metadata"]["destroyed"], true);
        assert_eq!(
            handle(req(Operation::Update, 3, "delete/app/db")).unwrap_err(),
            Error::invalid("No version number provided")
        );
        assert_eq!(handle(req(Operation::Update, 5, "destroy/app/db")).unwrap_err(), Error::invalid("no version number provided"));
        let not_a_map = req(Operation::Update, 1, "data/app/db").with("data", V::Json(json!("text").into()));
        assert_eq!(
            handle(not_a_map).unwrap_err(),
            Error::invalid("error converting input for field \"data\": '' expected type 'map[string]interface {}', got unconvertible type 'string'")
        );
        assert_eq!(read("nope").unwrap_err(), Error::NotFound);
    }

    #[test]
    fn patch_merges_and_metadata_lists() {
        storage::reset_mock();
        write("s2", json!({"k": "v1", "other": "x"}), None).unwrap();
        let patch = req(Operation::Patch, 1, "data/s2").with("data", V::Json(json!({"k": "v3", "other": null}).into()));
        assert_eq!(handle(patch).unwrap().data.unwrap()["version"], 2);
        assert_eq!(read("s2").unwrap().data.unwrap()["data"], json!({"k": "v3"}));
        write("app/a", json!({"x": "1"}), None).unwrap();
        let l = handle(req(Operation::List, 2, "metadata/")).unwrap();
        assert_eq!(l.data.unwrap()["keys"], json!(["app/", "s2"]));
        let m = handle(req(Operation::Read, 2, "metadata/s2")).unwrap().data.unwrap();
        assert_eq!(m["current_version"], 2);
        assert_eq!((m["oldest_version"].clone(), m["current_metadata_version"].clone()), (json!(0), json!(0)), "nothing pruned, no metadata write");
        handle(req(Operation::Update, 2, "metadata/s2").with("max_versions", V::Int(2))).unwrap();
        let m = handle(req(Operation::Read, 2, "metadata/s2")).unwrap().data.unwrap();
        assert_eq!((m["oldest_version"].clone(), m["current_metadata_version"].clone()), (json!(0), json!(1)), "at the limit, not over it");
        assert_eq!(m["versions"]["1"]["destroyed"], false);
        let sk = handle(req(Operation::Read, 6, "subkeys/s2")).unwrap().data.unwrap();
        assert_eq!(sk["subkeys"], json!({"k": null}));
        handle(req(Operation::Delete, 2, "metadata/s2")).unwrap();
        assert_eq!(read("s2").unwrap_err(), Error::NotFound);
    }

    #[test]
    fn max_versions_prunes_oldest() {
        storage::reset_mock();
        handle(req(Operation::Update, 0, "config").with("max_versions", V::Int(2))).unwrap();
        for i in 0..4 {
            write("p", json!({ "i": i.to_string() }), None).unwrap();
        }
        let m = handle(req(Operation::Read, 2, "metadata/p")).unwrap().data.unwrap();
        assert_eq!(m["versions"].as_object().unwrap().len(), 2);
        assert_eq!(m["oldest_version"], 3);
        assert_eq!(handle(req(Operation::Read, 1, "data/p").with("version", V::Int(1))).unwrap_err(), Error::NotFound);
    }

    #[test]
    fn initialize_moves_version_1_secrets_once() {
        storage::reset_mock();
        // A version-1 mount's storage: secrets at their own paths, some where version 2 keeps its own.
        storage::put_json("app/db", &json!({"pass": "p1", "ttl": "1h"})).unwrap();
        storage::put_json("meta/x", &json!({"a": "b"})).unwrap();
        storage::put_json("config", &json!({"max_versions": "not a config"})).unwrap();
        storage::put_json("x", &json!({"top": "level"})).unwrap();
        initialize().unwrap();
        assert_eq!(read("app/db").unwrap().data.unwrap()["data"], json!({"pass": "p1", "ttl": "1h"}));
        assert_eq!(read("meta/x").unwrap().data.unwrap()["data"], json!({"a": "b"}));
        assert_eq!(read("config").unwrap().data.unwrap()["data"], json!({"max_versions": "not a config"}));
        assert_eq!(read("x").unwrap().data.unwrap()["data"], json!({"top": "level"}));
        let m = handle(req(Operation::Read, 2, "metadata/app/db")).unwrap().data.unwrap();
        assert_eq!((m["current_version"].clone(), m["versions"].as_object().unwrap().len()), (json!(1), 1));
        assert_eq!(handle(req(Operation::List, 2, "metadata/")).unwrap().data.unwrap()["keys"], json!(["app/", "config", "meta/", "x"]));
        assert_eq!(read_config().unwrap().data.unwrap()["max_versions"], 0, "the mount's own config starts empty");
        // Once marked, later loads leave the data alone.
        assert_eq!(write("app/db", json!({"pass": "p2"}), None).unwrap().data.unwrap()["version"], 2);
        initialize().unwrap();
        assert_eq!(read("app/db").unwrap().data.unwrap()["data"], json!({"pass": "p2"}));
        // A new mount is only marked.
        storage::reset_mock();
        initialize().unwrap();
        assert_eq!(storage::list("").unwrap(), [LAYOUT_KEY]);
    }

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(parse_rfc3339_secs(&tresor_sdk::system::rfc3339(1_795_451_298, 7)), Some(1_795_451_298));
    }
}
