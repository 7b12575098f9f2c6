//! The AppRole auth method (API.md §14): a machine logs in with a role ID and (usually) a secret ID.
//!
//! Secret IDs are never stored: only `HMAC-SHA256(mount salt, secret_id)` names their entry, so a copy of
//! the storage does not reveal a usable credential. Storage layout inside the mount's view:
//!
//! * `salt` → 32 random bytes (created at first use)
//! * `role/<name>` → [`Role`]
//! * `role_id/<hmac(role_id)>` → role name
//! * `secret_id/<role>/<hmac(secret_id)>` → [`SecretId`]
//! * `accessor/<role>/<accessor>` → hmac(secret_id)

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::Sha256;
use tresor_sdk::token::{cidrs_allow, valid_cidr, TokenParams};
use tresor_sdk::{storage, system, Backend, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};

const BAD_LOGIN: &str = "invalid role or secret ID";

/// A role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    /// The role ID (not secret; identifies the role at login).
    pub role_id: String,
    /// Whether login needs a secret ID.
    pub bind_secret_id: bool,
    /// Logins must come from these blocks.
    pub secret_id_bound_cidrs: Vec<String>,
    /// Uses per secret ID (0 = unlimited).
    pub secret_id_num_uses: u64,
    /// Lifetime of secret IDs (0 = forever).
    pub secret_id_ttl: u64,
    /// Reported only.
    pub local_secret_ids: bool,
    /// Token settings.
    pub token: TokenParams,
}

impl Default for Role {
    fn default() -> Self {
        Self {
            role_id: String::new(),
            bind_secret_id: true,
            secret_id_bound_cidrs: Vec::new(),
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            token: TokenParams::default(),
        }
    }
}

/// A secret ID's entry (the secret itself is not stored).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretId {
    /// Non-secret handle.
    pub accessor: String,
    /// Metadata merged into token metadata.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Logins must come from these blocks.
    pub cidr_list: Vec<String>,
    /// Tokens are bound to these blocks.
    pub token_bound_cidrs: Vec<String>,
    /// Remaining uses (0 = unlimited).
    pub num_uses: u64,
    /// TTL at creation.
    pub ttl: u64,
    /// Unix seconds.
    pub creation_time: i64,
    /// Unix seconds, 0 = never.
    pub expiration_time: i64,
    /// Unix seconds.
    pub last_updated_time: i64,
}

/// The AppRole backend.
pub struct AppRole;

fn now() -> i64 {
    system::now().0
}

fn time(t: i64) -> String {
    system::rfc3339(t, 0)
}

/// A random UUID-shaped identifier (122 random bits).
fn uuid() -> Result<String, Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

fn salt() -> Result<Vec<u8>, Error> {
    if let Some(s) = storage::get("salt")? {
        return Ok(s);
    }
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    storage::put("salt", &s)?;
    Ok(s)
}

fn hmac(value: &str) -> Result<String, Error> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&salt()?).map_err(|e| Error::Internal(e.to_string()))?;
    mac.update(value.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

fn role_name(req: &Request) -> Result<String, Error> {
    let n = req.captured("role_name").unwrap_or("").trim().to_lowercase();
    if n.is_empty() {
        return Err(Error::InvalidRequest("missing role_name".into()));
    }
    Ok(n)
}

fn load_role(name: &str) -> Result<Option<Role>, Error> {
    storage::get_json(&format!("role/{name}"))
}

fn need_role(name: &str) -> Result<Role, Error> {
    load_role(name)?.ok_or_else(|| Error::InvalidRequest(format!("role {name:?} does not exist")))
}

/// A list of CIDR blocks; `what` names it in Vault's refusal (`failed to validate CIDR blocks:
/// invalid CIDR address: x`, which Vault answers with a 500).
fn cidrs(req: &Request, key: &str, what: &str) -> Result<Option<Vec<String>>, Error> {
    match req.str_list(key) {
        None => Ok(None),
        Some(list) => {
            if let Some(bad) = list.iter().find(|c| !valid_cidr(c)) {
                return Err(Error::InvalidRequest(format!("failed to validate {what}: invalid CIDR address: {bad}")));
            }
            Ok(Some(list.to_vec()))
        }
    }
}

/// Vault's rule for a secret ID's CIDR blocks: each must lie inside one of the role's (when the role
/// has any).
fn cidr_subset(secret: &[String], role: &[String]) -> Result<(), Error> {
    if role.is_empty() || secret.iter().all(|c| role.iter().any(|r| cidr_within(c, r))) {
        return Ok(());
    }
    let quoted = |l: &[String]| format!("[{}]", l.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(" "));
    Err(Error::InvalidRequest(format!(
        "failed to verify subset relationship between CIDR blocks on the role {} and CIDR blocks on the secret ID {}",
        quoted(role),
        quoted(secret)
    )))
}

/// Whether block `inner` (address or CIDR) lies inside block `outer`.
fn cidr_within(inner: &str, outer: &str) -> bool {
    let bits = |c: &str| -> Option<(std::net::IpAddr, u32)> {
        let (ip, b) = c.split_once('/').map_or((c, None), |(ip, b)| (ip, Some(b)));
        let ip: std::net::IpAddr = ip.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let b = match b {
            Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
            None => max,
        };
        Some((ip, b))
    };
    match (bits(inner), bits(outer)) {
        (Some((i, ib)), Some((_, ob))) if ib >= ob => cidrs_allow(&[outer.to_string()], Some(&i.to_string())),
        _ => false,
    }
}

/// Vault's `ParseArbitraryKeyValues`: a JSON object of strings, or `k1=v1,k2=v2`, either possibly
/// base64-encoded; an empty value is refused.
fn parse_metadata(text: &str) -> Result<std::collections::BTreeMap<String, String>, Error> {
    use base64::Engine as _;
    let fail = |why: String| Error::InvalidRequest(format!("failed to parse metadata: {why}"));
    let mut out = std::collections::BTreeMap::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(out);
    }
    let input = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .map_or_else(|| text.to_string(), |b| String::from_utf8_lossy(&b).into_owned());
    match serde_json::from_str::<Option<std::collections::BTreeMap<String, String>>>(&input) {
        Ok(map) => out = map.unwrap_or_default(),
        Err(_) => {
            let mut pairs: Vec<&str> = input.trim().split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            pairs.sort_unstable();
            pairs.dedup();
            for pair in pairs {
                let shards: Vec<&str> = pair.split('=').collect();
                let [k, v] = shards[..] else { return Err(fail("failed to parse the input: invalid <key,value> format".into())) };
                let (k, v) = (k.trim(), v.trim());
                if k.is_empty() || v.is_empty() {
                    return Err(fail(format!("failed to parse the input: invalid <key,value> pair {pair:?}")));
                }
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    if let Some((k, _)) = out.iter().find(|(k, v)| !k.is_empty() && v.is_empty()) {
        return Err(fail(format!("invalid value for key {k:?}")));
    }
    Ok(out)
}

fn role_path(suffix: &str) -> Path {
    Path::new(format!("role/{{role_name}}{suffix}")).field(Field::new("role_name", FieldKind::Str).description("Name of the role"))
}

fn secret_id_fields(p: Path) -> Path {
    p.field(Field::new("metadata", FieldKind::Str).description("JSON object of string metadata, attached to tokens"))
        .field(Field::new("cidr_list", FieldKind::StrList).description("CIDR blocks logins with this secret ID must come from"))
        .field(Field::new("token_bound_cidrs", FieldKind::StrList).description("CIDR blocks tokens are bound to"))
        .field(Field::new("ttl", FieldKind::Duration).description("TTL of this secret ID (at most the role's)"))
        .field(Field::new("num_uses", FieldKind::Int).description("Uses of this secret ID (at most the role's)"))
}

/// Every field a role takes (its own and the `token_*` family).
fn role_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("bind_secret_id", FieldKind::Bool).description("Require a secret ID at login"),
        Field::new("secret_id_bound_cidrs", FieldKind::StrList).description("CIDR blocks logins must come from"),
        Field::new("bound_cidr_list", FieldKind::StrList).description("Deprecated: use secret_id_bound_cidrs"),
        Field::new("secret_id_num_uses", FieldKind::Int).description("Uses per secret ID"),
        Field::new("secret_id_ttl", FieldKind::Duration).description("Lifetime of secret IDs"),
        Field::new("local_secret_ids", FieldKind::Bool),
        Field::new("role_id", FieldKind::Str).description("Custom role ID"),
    ];
    fields.extend(TokenParams::fields());
    fields
}

/// Vault's one-setting role paths (`role/:name/policies`, `…/secret-id-ttl`, …): the path suffix and
/// the fields it reads and writes (the first is the setting; a second is its deprecated name).
/// `local-secret-ids` is read-only, as in Vault.
const FIELD_PATHS: &[(&str, &[&str])] = &[
    ("policies", &["token_policies", "policies"]),
    ("period", &["token_period", "period"]),
    ("secret-id-bound-cidrs", &["secret_id_bound_cidrs"]),
    ("secret-id-num-uses", &["secret_id_num_uses"]),
    ("secret-id-ttl", &["secret_id_ttl"]),
    ("token-bound-cidrs", &["token_bound_cidrs"]),
    ("token-max-ttl", &["token_max_ttl"]),
    ("token-num-uses", &["token_num_uses"]),
    ("token-ttl", &["token_ttl"]),
    ("local-secret-ids", &["local_secret_ids"]),
    ("bound-cidr-list", &["bound_cidr_list"]),
];

/// Index of the first [`FIELD_PATHS`] path in the spec.
const FIELD_PATHS_START: usize = 12;

impl Backend for AppRole {
    fn spec() -> Spec {
        let role = role_fields()
            .into_iter()
            .fold(role_path(""), Path::field)
            .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Delete])
            .existence_check()
            .help("Manage AppRole roles.");
        let mut spec = Spec::auth("Machines authenticate with a role ID and a secret ID.")
            .path(Path::new("role").operations([Operation::List]).help("List roles."))
            .path(Path::new("role/").operations([Operation::List]).help("List roles."))
            .path(role)
            .path(role_path("/role-id").field(Field::new("role_id", FieldKind::Str)).operations([Operation::Read, Operation::Update]).help("The role's role ID."))
            .path(secret_id_fields(role_path("/secret-id")).operations([Operation::Update, Operation::List]).help("Generate a secret ID; list accessors."))
            .path(
                secret_id_fields(role_path("/custom-secret-id"))
                    .field(Field::new("secret_id", FieldKind::Str).sensitive())
                    .operations([Operation::Update])
                    .help("Register a caller-chosen secret ID."),
            )
            .path(role_path("/secret-id/lookup").field(Field::new("secret_id", FieldKind::Str).sensitive()).operations([Operation::Update]))
            .path(
                role_path("/secret-id/destroy")
                    .field(Field::new("secret_id", FieldKind::Str).sensitive())
                    .operations([Operation::Update, Operation::Delete]),
            )
            .path(role_path("/secret-id-accessor/lookup").field(Field::new("secret_id_accessor", FieldKind::Str)).operations([Operation::Update]))
            .path(
                role_path("/secret-id-accessor/destroy")
                    .field(Field::new("secret_id_accessor", FieldKind::Str))
                    .operations([Operation::Update, Operation::Delete]),
            )
            .path(
                Path::new("login")
                    .field(Field::new("role_id", FieldKind::Str))
                    .field(Field::new("secret_id", FieldKind::Str).sensitive())
                    .operations([Operation::Update])
                    .unauthenticated()
                    .help("Log in with a role ID and secret ID."),
            )
            .path(Path::new("tidy/secret-id").operations([Operation::Update]).help("Delete expired secret IDs."));
        for (suffix, names) in FIELD_PATHS {
            let ops: &[Operation] = if *suffix == "local-secret-ids" { &[Operation::Read] } else { &[Operation::Read, Operation::Update, Operation::Delete] };
            let path = role_fields()
                .into_iter()
                .filter(|f| names.contains(&f.name.as_str()))
                .fold(role_path(&format!("/{suffix}")), Path::field)
                .operations(ops.iter().copied())
                .help(format!("Read, set or reset the role's {}.", names[0]));
            spec = spec.path(path);
        }
        spec
    }

    fn handle(req: Request) -> Result<Response, Error> {
        match req.path_index {
            0 | 1 => Response::list(storage::list("role/")?.into_iter().filter(|k| !k.ends_with('/')).collect()),
            2 => role(req),
            3 => role_id(req),
            4 if req.operation == Operation::List => {
                let name = role_name(&req)?;
                need_role(&name)?;
                Response::list(storage::list(&format!("accessor/{name}/"))?)
            }
            4 => {
                let id = uuid()?;
                issue_secret_id(&req, id)
            }
            5 => {
                let id = req.str("secret_id").unwrap_or("").to_string();
                if id.is_empty() {
                    return Err(Error::InvalidRequest("missing secret_id".into()));
                }
                issue_secret_id(&req, id)
            }
            6 | 7 => {
                let name = role_name(&req)?;
                let secret_id = req.str("secret_id").unwrap_or("");
                if secret_id.is_empty() {
                    return Err(Error::InvalidRequest("missing secret_id".into()));
                }
                need_role(&name)?;
                secret_id_op(&name, &hmac(secret_id)?, req.path_index == 7)
            }
            8 | 9 => {
                let name = role_name(&req)?;
                let accessor = req.str("secret_id_accessor").unwrap_or("");
                if accessor.is_empty() {
                    return Err(Error::InvalidRequest("missing secret_id_accessor".into()));
                }
                need_role(&name)?;
                let h: Option<String> = if accessor.contains('/') {
                    None
                } else {
                    storage::get(&format!("accessor/{name}/{accessor}"))?.map(|b| String::from_utf8_lossy(&b).into_owned())
                };
                let Some(h) = h else {
                    let why = format!("failed to find accessor entry for secret_id_accessor: {accessor:?}");
                    // As Vault: the lookup answers 404 with the error as data, the destroy refuses.
                    return if req.path_index == 8 { Ok(Response::data(json!({"error": why})).status(404)) } else { Err(Error::InvalidRequest(why)) };
                };
                secret_id_op(&name, &h, req.path_index == 9)
            }
            10 => login(&req),
            11 => {
                // As Vault: 202 with a warning and no data; the count goes to the server's log.
                let removed = tidy()?;
                tresor_sdk::system::log(tresor_sdk::system::LogLevel::Info, &format!("tidy of secret IDs removed {removed} expired entries"));
                Ok(Response::empty()
                    .warn("Tidy operation successfully started. Any information from the operation will be printed to the server logs.")
                    .status(202))
            }
            i if i >= FIELD_PATHS_START => {
                let (_, names) = FIELD_PATHS.get(i - FIELD_PATHS_START).ok_or(Error::UnsupportedPath)?;
                role_field(req, names)
            }
            _ => Err(Error::UnsupportedPath),
        }
    }

    fn exists(req: Request) -> Result<bool, Error> {
        Ok(load_role(&role_name(&req)?)?.is_some())
    }
}

/// A role as `role/:name` reads it.
fn role_json(r: &Role) -> serde_json::Map<String, Json> {
    let mut data = serde_json::Map::new();
    r.token.write_json(&mut data);
    data.insert("bind_secret_id".into(), json!(r.bind_secret_id));
    data.insert("local_secret_ids".into(), json!(r.local_secret_ids));
    data.insert("secret_id_bound_cidrs".into(), if r.secret_id_bound_cidrs.is_empty() { Json::Null } else { json!(r.secret_id_bound_cidrs) });
    data.insert("secret_id_num_uses".into(), json!(r.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(r.secret_id_ttl));
    data
}

/// One of the [`FIELD_PATHS`]: read the setting (and its deprecated name while in use), set it as a
/// role update restricted to it, or reset it to its default. As Vault: reading a missing role is a
/// 404, setting on one `unsupported path`, resetting on one does nothing.
fn role_field(req: Request, names: &[&str]) -> Result<Response, Error> {
    let name = role_name(&req)?;
    let stored = load_role(&name)?;
    match req.operation {
        Operation::Read => {
            let r = stored.ok_or(Error::NotFound)?;
            if names[0] == "bound_cidr_list" {
                // Vault reads the pre-migration field, which no write fills any more.
                return Ok(Response::data(json!({"bound_cidr_list": null})).warn(
                    "The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead.",
                ));
            }
            let all = role_json(&r);
            let data: serde_json::Map<String, Json> = names.iter().filter_map(|n| all.get(*n).map(|v| ((*n).to_string(), v.clone()))).collect();
            Ok(Response::data(Json::Object(data)))
        }
        Operation::Update | Operation::Create => {
            let r = stored.ok_or(Error::UnsupportedPath)?;
            let cidr_list = names[0].ends_with("cidrs") || names[0] == "bound_cidr_list";
            let given = names.iter().any(|n| req.has(n));
            if !cidr_list && !given {
                let shown = if names[0] == "token_period" { "period" } else { names[0] };
                return Err(Error::InvalidRequest(format!("missing {shown}")));
            }
            // The single-setting paths check the pair against the stored other half, as Vault's.
            let ttl = req.duration("token_ttl").unwrap_or(r.token.ttl);
            let max = req.duration("token_max_ttl").unwrap_or(r.token.max_ttl);
            if max > 0 && ttl > max {
                let why = if names[0] == "token_max_ttl" {
                    "token_max_ttl should be greater than or equal to token_ttl"
                } else {
                    "token_ttl should not be greater than token_max_ttl"
                };
                return Err(Error::InvalidRequest(why.into()));
            }
            let req = if cidr_list && !given { req.with(names[0], tresor_sdk::Value::StrList(Vec::new())) } else { req };
            match role(req) {
                Err(Error::InvalidRequest(why)) if names[0] == "token_bound_cidrs" && why.starts_with("error parsing address") => {
                    Err(Error::InvalidRequest(format!("failed to parse token_bound_cidrs: {why}")))
                }
                other => other,
            }
        }
        Operation::Delete => {
            let Some(mut r) = stored else { return Ok(Response::empty()) };
            match names[0] {
                "token_policies" => r.token.policies.clear(),
                "token_period" => r.token.period = 0,
                "secret_id_bound_cidrs" => r.secret_id_bound_cidrs.clear(),
                // Vault resets the pre-migration field, which nothing reads any more.
                "bound_cidr_list" => return Ok(Response::empty()),
                "secret_id_num_uses" => r.secret_id_num_uses = 0,
                "secret_id_ttl" => r.secret_id_ttl = 0,
                "token_bound_cidrs" => r.token.bound_cidrs.clear(),
                "token_max_ttl" => r.token.max_ttl = 0,
                "token_num_uses" => r.token.num_uses = 0,
                "token_ttl" => r.token.ttl = 0,
                _ => return Err(Error::UnsupportedOperation),
            }
            if let Some(old) = names.get(1) {
                r.token.legacy.retain(|l| l != old);
            }
            storage::put_json(&format!("role/{name}"), &r)?;
            Ok(Response::empty())
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

/// Go's `time.Duration` text for whole seconds (`1h0m0s`, `5m0s`, `30s`).
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn role(req: Request) -> Result<Response, Error> {
    let name = role_name(&req)?;
    match req.operation {
        Operation::Read => {
            let r = load_role(&name)?.ok_or(Error::NotFound)?;
            Ok(Response::data(Json::Object(role_json(&r))))
        }
        Operation::Delete => {
            if let Some(r) = load_role(&name)? {
                storage::delete(&format!("role_id/{}", hmac(&r.role_id)?))?;
                storage::delete_prefix(&format!("secret_id/{name}/"))?;
                storage::delete_prefix(&format!("accessor/{name}/"))?;
                storage::delete(&format!("role/{name}"))?;
            }
            Ok(Response::empty())
        }
        Operation::Create | Operation::Update => {
            let existing = load_role(&name)?;
            let mut r = existing.clone().unwrap_or_default();
            let mut warnings = Vec::new();
            // Vault's backwards-compatibility case, before the token fields are parsed.
            let req = match req.str("token_type") {
                Some(t @ ("default-service" | "default-batch")) => {
                    let to = &t["default-".len()..];
                    warnings.push(format!("{t} has no useful meaning; adjusting to {to}"));
                    let to = to.to_string();
                    req.with("token_type", tresor_sdk::Value::Str(to))
                }
                _ => req,
            };
            r.token.update(&req)?;
            if req.has("local_secret_ids") {
                if existing.is_some() {
                    return Err(Error::InvalidRequest("local_secret_ids can only be modified during role creation".into()));
                }
                r.local_secret_ids = req.bool("local_secret_ids").unwrap_or(false);
            }
            if let Some(v) = req.bool("bind_secret_id") {
                r.bind_secret_id = v;
            }
            // `bound_cidr_list` is Vault's deprecated name for `secret_id_bound_cidrs`.
            let bound = match cidrs(&req, "secret_id_bound_cidrs", "CIDR blocks")? {
                Some(v) => Some(v),
                None => cidrs(&req, "bound_cidr_list", "CIDR blocks")?,
            };
            if let Some(v) = bound {
                r.secret_id_bound_cidrs = v;
            }
            if let Some(v) = req.int("secret_id_num_uses") {
                r.secret_id_num_uses = u64::try_from(v).map_err(|_| Error::InvalidRequest("secret_id_num_uses cannot be negative".into()))?;
            }
            if let Some(v) = req.duration("secret_id_ttl") {
                r.secret_id_ttl = v;
            }
            let mount_max = system::max_lease_ttl();
            // Vault checks the deprecated `period` only (what its upgrade step leaves in the old field).
            if mount_max > 0 && !req.has("token_period") && req.duration("period").is_some_and(|p| p > mount_max) {
                return Err(Error::InvalidRequest(format!(
                    "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
                    go_duration(r.token.period),
                    go_duration(mount_max)
                )));
            }
            if mount_max > 0 && r.token.max_ttl > mount_max {
                warnings.push("token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
            }
            if !r.bind_secret_id && r.secret_id_bound_cidrs.is_empty() && r.token.bound_cidrs.is_empty() {
                return Err(Error::InvalidRequest("at least one constraint should be enabled on the role".into()));
            }
            let new_id = match req.str("role_id").filter(|s| !s.is_empty()) {
                Some(id) => id.to_string(),
                None if r.role_id.is_empty() => uuid()?,
                None => r.role_id.clone(),
            };
            set_role_id(&name, &mut r, new_id)?;
            storage::put_json(&format!("role/{name}"), &r)?;
            Ok(warnings.into_iter().fold(Response::empty(), Response::warn))
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

/// Point the role at `id`, keeping the `role_id/` index unique.
fn set_role_id(name: &str, r: &mut Role, id: String) -> Result<(), Error> {
    let key = format!("role_id/{}", hmac(&id)?);
    if let Some(owner) = storage::get(&key)?
        && owner != name.as_bytes()
    {
        return Err(Error::InvalidRequest("role_id already in use".into()));
    }
    if !r.role_id.is_empty() && r.role_id != id {
        storage::delete(&format!("role_id/{}", hmac(&r.role_id)?))?;
    }
    storage::put(&key, name.as_bytes())?;
    r.role_id = id;
    Ok(())
}

fn role_id(req: Request) -> Result<Response, Error> {
    let name = role_name(&req)?;
    let role = load_role(&name)?;
    match req.operation {
        Operation::Read => Ok(Response::data(json!({"role_id": role.ok_or(Error::NotFound)?.role_id}))),
        _ => {
            let mut r = role.ok_or(Error::UnsupportedPath)?;
            let id = req.str("role_id").unwrap_or("").to_string();
            if id.is_empty() {
                return Err(Error::InvalidRequest("missing role_id".into()));
            }
            set_role_id(&name, &mut r, id)?;
            storage::put_json(&format!("role/{name}"), &r)?;
            Ok(Response::empty())
        }
    }
}

fn issue_secret_id(req: &Request, secret_id: String) -> Result<Response, Error> {
    let name = role_name(req)?;
    // Vault's checks, in its order.
    let Some(role) = load_role(&name)? else { return Ok(Response::error(404, format!("role {name:?} does not exist"))) };
    if !role.bind_secret_id {
        return Err(Error::InvalidRequest("bind_secret_id is not set on the role".into()));
    }
    let cidr_list = cidrs(req, "cidr_list", "CIDR blocks")?.unwrap_or_default();
    cidr_subset(&cidr_list, &role.secret_id_bound_cidrs)?;
    let token_bound_cidrs = cidrs(req, "token_bound_cidrs", "token CIDR blocks")?.unwrap_or_default();
    cidr_subset(&token_bound_cidrs, &role.token.bound_cidrs)?;
    let num_uses = match req.int("num_uses") {
        None => role.secret_id_num_uses,
        Some(n) if n < 0 => return Err(Error::InvalidRequest("num_uses cannot be negative".into())),
        Some(n) => {
            let n = n.unsigned_abs();
            if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) {
                return Err(Error::InvalidRequest("num_uses cannot be higher than the role's secret_id_num_uses".into()));
            }
            n
        }
    };
    let ttl = match req.duration("ttl") {
        None => role.secret_id_ttl,
        Some(t) => {
            if role.secret_id_ttl > 0 && (t == 0 || t > role.secret_id_ttl) {
                return Err(Error::InvalidRequest("ttl cannot be longer than the role's secret_id_ttl".into()));
            }
            t
        }
    };
    let metadata = parse_metadata(req.str("metadata").unwrap_or(""))?;
    let h = hmac(&secret_id)?;
    let key = format!("secret_id/{name}/{h}");
    if storage::get(&key)?.is_some() {
        return Err(Error::InvalidRequest("failed to store secret_id: SecretID is already registered".into()));
    }
    let now = now();
    let entry = SecretId {
        accessor: uuid()?,
        metadata,
        cidr_list,
        token_bound_cidrs,
        num_uses,
        ttl,
        creation_time: now,
        expiration_time: if ttl > 0 { now + ttl as i64 } else { 0 },
        last_updated_time: now,
    };
    storage::put_json(&key, &entry)?;
    storage::put(&format!("accessor/{name}/{}", entry.accessor), h.as_bytes())?;
    Ok(Response::data(json!({
        "secret_id": secret_id,
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.num_uses,
        "secret_id_ttl": entry.ttl,
    })))
}

fn lookup_json(e: &SecretId) -> Json {
    json!({
        "cidr_list": e.cidr_list,
        "creation_time": time(e.creation_time),
        "expiration_time": if e.expiration_time > 0 { time(e.expiration_time) } else { "0001-01-01T00:00:00Z".into() },
        "last_updated_time": time(e.last_updated_time),
        "metadata": e.metadata,
        "secret_id_accessor": e.accessor,
        "secret_id_num_uses": e.num_uses,
        "secret_id_ttl": e.ttl,
        "token_bound_cidrs": e.token_bound_cidrs,
    })
}

/// Look up (or, with `destroy`, delete) the secret ID whose HMAC is `h`.
fn secret_id_op(role: &str, h: &str, destroy: bool) -> Result<Response, Error> {
    let key = format!("secret_id/{role}/{h}");
    let Some(entry) = storage::get_json::<SecretId>(&key)? else { return Ok(Response::empty()) };
    if destroy {
        storage::delete(&key)?;
        storage::delete(&format!("accessor/{role}/{}", entry.accessor))?;
        return Ok(Response::empty());
    }
    if entry.expiration_time > 0 && now() >= entry.expiration_time {
        return Ok(Response::empty());
    }
    Ok(Response::data(lookup_json(&entry)))
}

fn login(req: &Request) -> Result<Response, Error> {
    let bad = || Error::InvalidRequest(BAD_LOGIN.into());
    let role_id = req.str("role_id").unwrap_or("");
    if role_id.is_empty() {
        return Err(Error::InvalidRequest("missing role_id".into()));
    }
    let owner = storage::get(&format!("role_id/{}", hmac(role_id)?))?.ok_or_else(bad)?;
    let name = String::from_utf8(owner).map_err(|_| bad())?;
    let role = load_role(&name)?.ok_or_else(bad)?;
    let remote = req.remote_addr.as_deref();
    if !cidrs_allow(&role.secret_id_bound_cidrs, remote) {
        return Err(Error::InvalidRequest("source address unauthorized through CIDR restrictions on the role".into()));
    }
    let mut metadata: Vec<(String, String)> = Vec::new();
    let mut token_cidrs = role.token.bound_cidrs.clone();
    if role.bind_secret_id {
        let secret_id = req.str("secret_id").unwrap_or("");
        if secret_id.is_empty() {
            return Err(Error::InvalidRequest("missing secret_id".into()));
        }
        let key = format!("secret_id/{name}/{}", hmac(secret_id)?);
        let mut entry: SecretId = storage::get_json(&key)?.ok_or_else(bad)?;
        let now = now();
        if entry.expiration_time > 0 && now >= entry.expiration_time {
            storage::delete(&key)?;
            storage::delete(&format!("accessor/{name}/{}", entry.accessor))?;
            return Err(bad());
        }
        if !cidrs_allow(&entry.cidr_list, remote) {
            return Err(Error::InvalidRequest("source address unauthorized through CIDR restrictions on the secret ID".into()));
        }
        match entry.num_uses {
            0 => {}
            1 => {
                storage::delete(&key)?;
                storage::delete(&format!("accessor/{name}/{}", entry.accessor))?;
            }
            n => {
                entry.num_uses = n - 1;
                entry.last_updated_time = now;
                storage::put_json(&key, &entry)?;
            }
        }
        metadata.extend(entry.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !entry.token_bound_cidrs.is_empty() {
            token_cidrs = entry.token_bound_cidrs.clone();
        }
    }
    metadata.retain(|(k, _)| k != "role_name");
    metadata.push(("role_name".into(), name.clone()));
    metadata.sort();
    let mut auth = role.token.auth("", &role.role_id, metadata);
    auth.bound_cidrs = token_cidrs;
    auth.internal = json!({"role_name": name});
    Ok(Response { auth: Some(auth), ..Response::default() })
}

/// Delete expired secret IDs; returns how many.
fn tidy() -> Result<usize, Error> {
    let now = now();
    let mut removed = 0;
    for role in storage::list("secret_id/")? {
        let role = role.trim_end_matches('/');
        for h in storage::list(&format!("secret_id/{role}/"))? {
            let key = format!("secret_id/{role}/{h}");
            if let Some(e) = storage::get_json::<SecretId>(&key)?
                && e.expiration_time > 0
                && now >= e.expiration_time
            {
                storage::delete(&key)?;
                storage::delete(&format!("accessor/{role}/{}", e.accessor))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

tresor_sdk::export!(AppRole);

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_sdk::Value;

    fn req(op: Operation, index: usize, role: &str) -> Request {
        let mut r = Request::new(op, "x").capture("role_name", role);
        r.path_index = index;
        r
    }

    #[test]
    fn single_setting_paths_read_set_and_reset_one_setting() {
        storage::reset_mock();
        let spec = AppRole::spec();
        for (i, (suffix, _)) in FIELD_PATHS.iter().enumerate() {
            assert_eq!(spec.paths[FIELD_PATHS_START + i].pattern, format!("role/{{role_name}}/{suffix}"));
        }
        let at = |suffix: &str| FIELD_PATHS_START + FIELD_PATHS.iter().position(|(s, _)| *s == suffix).unwrap();
        let read = |suffix: &str| AppRole::handle(req(Operation::Read, at(suffix), "r")).map(|r| r.data.unwrap());
        assert_eq!(read("policies").unwrap_err(), Error::NotFound, "the role must exist");
        AppRole::handle(req(Operation::Create, 2, "r").with("policies", Value::StrList(vec!["a".into()])).with("token_max_ttl", Value::Duration(3600))).unwrap();
        assert_eq!(read("policies").unwrap(), json!({"policies": ["a"], "token_policies": ["a"]}));
        AppRole::handle(req(Operation::Update, at("policies"), "r").with("token_policies", Value::StrList(vec!["b".into()]))).unwrap();
        assert_eq!(read("policies").unwrap(), json!({"token_policies": ["b"]}));
        let err = AppRole::handle(req(Operation::Update, at("token-ttl"), "r").with("token_ttl", Value::Duration(7200))).unwrap_err();
        assert_eq!(err, Error::InvalidRequest("token_ttl should not be greater than token_max_ttl".into()));
        AppRole::handle(req(Operation::Update, at("secret-id-ttl"), "r").with("secret_id_ttl", Value::Duration(60))).unwrap();
        assert_eq!(read("secret-id-ttl").unwrap(), json!({"secret_id_ttl": 60}));
        AppRole::handle(req(Operation::Delete, at("secret-id-ttl"), "r")).unwrap();
        assert_eq!(read("secret-id-ttl").unwrap(), json!({"secret_id_ttl": 0}));
        // Only that setting changed.
        let role = AppRole::handle(req(Operation::Read, 2, "r")).unwrap().data.unwrap();
        assert_eq!((role["token_policies"].clone(), role["token_max_ttl"].clone()), (json!(["b"]), json!(3600)));
    }

    #[test]
    fn role_secret_id_login_and_use_counting() {
        storage::reset_mock();
        system::set_mock_now(1_000, 0);
        AppRole::handle(
            req(Operation::Create, 2, "ci")
                .with("token_policies", Value::StrList(vec!["app".into()]))
                .with("secret_id_num_uses", Value::Int(2))
                .with("secret_id_ttl", Value::Duration(600)),
        )
        .unwrap();
        let role_id = AppRole::handle(req(Operation::Read, 3, "ci")).unwrap().data.unwrap()["role_id"].as_str().unwrap().to_string();
        let sid = AppRole::handle(req(Operation::Update, 4, "ci").with("metadata", Value::Str(r#"{"env":"ci"}"#.into()))).unwrap().data.unwrap();
        let secret_id = sid["secret_id"].as_str().unwrap().to_string();
        assert_eq!(sid["secret_id_num_uses"], 2);
        // The secret is not in storage, only its HMAC.
        for key in storage::list("secret_id/ci/").unwrap() {
            assert!(!key.contains(&secret_id));
        }
        let login = |sid: &str| {
            let mut r = Request::new(Operation::Update, "login")
                .with("role_id", Value::Str(role_id.clone()))
                .with("secret_id", Value::Str(sid.into()));
            r.path_index = 10;
            AppRole::handle(r)
        };
        let auth = login(&secret_id).unwrap().auth.unwrap();
        assert_eq!(auth.policies, vec!["app".to_string()]);
        assert!(auth.metadata.contains(&("env".into(), "ci".into())) && auth.metadata.contains(&("role_name".into(), "ci".into())));
        assert!(login(&secret_id).is_ok());
        assert_eq!(login(&secret_id).unwrap_err(), Error::InvalidRequest(BAD_LOGIN.into()), "used up after 2 uses");
        assert_eq!(login("bogus").unwrap_err(), Error::InvalidRequest(BAD_LOGIN.into()));
    }

    #[test]
    fn metadata_is_json_base64_or_pairs_and_cidrs_nest() {
        let m = |t: &str| parse_metadata(t).map(|m| m.into_iter().collect::<Vec<_>>());
        let ab = Ok(vec![("a".to_string(), "b".to_string())]);
        assert_eq!(m(r#"{"a":"b"}"#), ab);
        assert_eq!(m("eyJhIjoiYiJ9"), ab, "base64 of the JSON");
        assert_eq!(m(" a = b "), ab);
        assert_eq!(m(""), Ok(vec![]));
        let bad = |t: &str| match parse_metadata(t) {
            Err(Error::InvalidRequest(why)) => why,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(bad(r#"{"a":1}"#), "failed to parse metadata: failed to parse the input: invalid <key,value> format");
        assert_eq!(bad("a=b,c="), "failed to parse metadata: failed to parse the input: invalid <key,value> pair \"c=\"");
        assert_eq!(bad(r#"{"a":""}"#), "failed to parse metadata: invalid value for key \"a\"");
        assert!(cidr_within("10.1.2.0/24", "10.0.0.0/8") && cidr_within("10.1.2.3", "10.0.0.0/8") && cidr_within("10.0.0.0/8", "10.0.0.0/8"));
        assert!(!cidr_within("10.0.0.0/7", "10.0.0.0/8") && !cidr_within("192.168.0.0/16", "10.0.0.0/8") && !cidr_within("::1", "10.0.0.0/8"));
        assert!(cidr_subset(&["10.2.0.0/16".into()], &[]).is_ok());
        assert!(cidr_subset(&["10.2.0.0/16".into()], &["10.1.0.0/16".into()]).is_err());
    }

    #[test]
    fn expired_secret_ids_fail_and_tidy_removes_them() {
        storage::reset_mock();
        system::set_mock_now(1_000, 0);
        AppRole::handle(req(Operation::Create, 2, "r").with("secret_id_ttl", Value::Duration(60))).unwrap();
        AppRole::handle(req(Operation::Update, 4, "r")).unwrap();
        assert_eq!(storage::list("accessor/r/").unwrap().len(), 1);
        system::set_mock_now(2_000, 0);
        let mut t = Request::new(Operation::Update, "tidy/secret-id");
        t.path_index = 11;
        let r = AppRole::handle(t).unwrap();
        assert_eq!(r.status, Some(202));
        assert!(storage::list("accessor/r/").unwrap().is_empty());
    }
}
