//! The audit broker: every request through the pipeline leaves one JSON line before the handler runs
//! and one after, on every enabled device (API.md §7).
//!
//! Nothing secret reaches a device in the clear: every string in request and response data, every
//! token and accessor is HMAC-SHA256'd with the device's own salt (`hmac-sha256:<hex>`), reproducible
//! with `sys/audit-hash/<path>`. `log_raw` turns hashing off except for fields a plugin declares
//! `sensitive` (and tokens, which are always hashed). **Fail closed**: when devices are enabled and
//! none of them can write a line, the request is refused (500) and nothing is returned.
//!
//! Devices: `file` (`file_path` = a path, `stdout` or `discard`; `mode`; reopened on SIGHUP) and
//! `socket` (`address`, `socket_type` tcp/udp, `write_timeout`). Enabled through `sys/audit/<path>`
//! (persisted in `core/audit`) or declared in the server config (`audit "file" "path" { ... }`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tresor_logical::{Error, Map, Operation, Response, Storage};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::router::{Handler, MountEntry};
use crate::token::TokenEntry;
use crate::util::{now_unix_nanos, rfc3339_nanos};

/// Barrier key of the persisted audit table.
pub const AUDIT_TABLE_KEY: &str = "core/audit";
/// Barrier prefix of the per-device salts.
const SALT_PREFIX: &str = "core/audit-salt/";

/// One audit device as configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditDeviceConfig {
    /// Path with trailing slash (`file/`).
    pub path: String,
    /// `file` or `socket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Device options (`file_path`, `log_raw`, `hmac_accessor`, `mode`, `format`, `prefix`, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Not replicated (reported only).
    #[serde(default)]
    pub local: bool,
    /// Declared in the server config (not persisted, not removable through the API).
    #[serde(skip)]
    pub declarative: bool,
}

/// Where lines go.
#[derive(Debug)]
enum Sink {
    File { path: std::path::PathBuf, mode: Option<u32>, file: Mutex<Option<std::fs::File>> },
    Stdout,
    Discard,
    Tcp { address: String, timeout: Duration, conn: tokio::sync::Mutex<Option<tokio::net::TcpStream>> },
    Udp { address: String, socket: tokio::sync::Mutex<Option<tokio::net::UdpSocket>> },
}

fn open_append(path: &std::path::Path, mode: Option<u32>) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode.unwrap_or(0o600));
    }
    let file = options.open(path)?;
    // Only a regular file takes the mode, and through the open descriptor: a device the path
    // names (`/dev/null`, a common sink) is never re-permissioned for the whole system, and a path
    // swapped after the open is not touched.
    #[cfg(unix)]
    if let Some(m) = mode
        && file.metadata()?.is_file()
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    Ok(file)
}

impl Sink {
    fn from_config(config: &AuditDeviceConfig) -> Result<Self, Error> {
        match config.kind.as_str() {
            "file" => {
                let path = config.options.get("file_path").or_else(|| config.options.get("path")).map(String::as_str).unwrap_or("");
                match path {
                    "" => Err(Error::invalid("file_path is required")),
                    "stdout" => Ok(Self::Stdout),
                    "discard" => Ok(Self::Discard),
                    p => {
                        let mode = match config.options.get("mode").map(String::as_str) {
                            None | Some("") => Some(0o600),
                            Some("0" | "0000") => None,
                            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| Error::invalid(format!("invalid mode {m:?}")))?),
                        };
                        let path = std::path::PathBuf::from(p);
                        let file = open_append(&path, mode).map_err(|e| Error::invalid(format!("sanity check failed; unable to open \"{p}\" for writing: {e}")))?;
                        Ok(Self::File { path, mode, file: Mutex::new(Some(file)) })
                    }
                }
            }
            "socket" => {
                let address = config.options.get("address").cloned().unwrap_or_default();
                if address.is_empty() {
                    return Err(Error::invalid("address is required"));
                }
                let timeout = match config.options.get("write_timeout") {
                    None => Duration::from_secs(2),
                    Some(t) => Duration::from_secs(tresor_logical::parse_duration(&Value::String(t.clone())).map_err(|_| Error::invalid("invalid write_timeout"))?),
                };
                match config.options.get("socket_type").map_or("tcp", String::as_str) {
                    "tcp" => Ok(Self::Tcp { address, timeout, conn: tokio::sync::Mutex::new(None) }),
                    "udp" => Ok(Self::Udp { address, socket: tokio::sync::Mutex::new(None) }),
                    other => Err(Error::invalid(format!("unsupported socket_type {other:?}"))),
                }
            }
            other => Err(Error::invalid(format!("unknown audit backend type: {other}"))),
        }
    }

    async fn write(&self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File { file, .. } => {
                let mut guard = file.lock().map_err(|_| std::io::Error::other("audit file lock poisoned"))?;
                let f = guard.as_mut().ok_or_else(|| std::io::Error::other("audit file is not open"))?;
                f.write_all(line)
            }
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Self::Discard => Ok(()),
            Self::Tcp { address, timeout, conn } => {
                use tokio::io::AsyncWriteExt;
                let mut guard = conn.lock().await;
                for attempt in 0..2 {
                    if guard.is_none() {
                        let stream = tokio::time::timeout(*timeout, tokio::net::TcpStream::connect(address.as_str()))
                            .await
                            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "audit socket connect timed out"))??;
                        *guard = Some(stream);
                    }
                    let Some(stream) = guard.as_mut() else { continue };
                    match tokio::time::timeout(*timeout, stream.write_all(line)).await {
                        Ok(Ok(())) => return Ok(()),
                        Ok(Err(e)) if attempt == 1 => return Err(e),
                        Err(_) if attempt == 1 => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "audit socket write timed out")),
                        _ => *guard = None,
                    }
                }
                Err(std::io::Error::other("audit socket unavailable"))
            }
            Self::Udp { address, socket } => {
                let mut guard = socket.lock().await;
                if guard.is_none() {
                    let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
                    s.connect(address.as_str()).await?;
                    *guard = Some(s);
                }
                let s = guard.as_ref().ok_or_else(|| std::io::Error::other("audit socket unavailable"))?;
                s.send(line).await.map(|_| ())
            }
        }
    }

    /// Close and reopen the file (log rotation on SIGHUP). A failure leaves the device failing.
    fn reopen(&self) -> std::io::Result<()> {
        if let Self::File { path, mode, file } = self {
            let mut guard = file.lock().map_err(|_| std::io::Error::other("audit file lock poisoned"))?;
            *guard = None;
            *guard = Some(open_append(path, *mode)?);
        }
        Ok(())
    }
}

/// An enabled device: its configuration, HMAC key and sink.
pub(crate) struct Device {
    pub(crate) config: AuditDeviceConfig,
    salt: Zeroizing<Vec<u8>>,
    sink: Sink,
    log_raw: bool,
    hmac_accessor: bool,
    prefix: String,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("path", &self.config.path).field("type", &self.config.kind).finish_non_exhaustive()
    }
}

fn truthy(v: Option<&String>) -> Option<bool> {
    v.map(|s| matches!(s.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"))
}

impl Device {
    fn new(config: AuditDeviceConfig, salt: Zeroizing<Vec<u8>>) -> Result<Self, Error> {
        match config.options.get("format").map(String::as_str) {
            None | Some("" | "json") => {}
            Some(other) => return Err(Error::invalid(format!("unsupported audit format {other:?}: only json is supported"))),
        }
        let sink = Sink::from_config(&config)?;
        Ok(Self {
            log_raw: truthy(config.options.get("log_raw")).unwrap_or(false),
            hmac_accessor: truthy(config.options.get("hmac_accessor")).unwrap_or(true),
            prefix: config.options.get("prefix").cloned().unwrap_or_default(),
            config,
            salt,
            sink,
        })
    }

    /// `hmac-sha256:<hex>` of `input` under this device's salt.
    pub(crate) fn hash(&self, input: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.salt) else { return "hmac-sha256:".into() };
        mac.update(input.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Hash every string at any depth (`raw`: only the keys named in `sensitive`, at the top level),
    /// except the strings held directly (or in lists) under a key named in `clear`: the mount's
    /// `audit_non_hmac_*_keys`, honoured at any depth as Vault does. A field the plugin declares
    /// sensitive is hashed even when listed there (Vault would write it in the clear).
    fn hash_value(&self, v: &mut Value, sensitive: &[String], clear: &[String]) {
        if self.log_raw {
            if let Value::Object(m) = v {
                for k in sensitive {
                    if let Some(x) = m.get_mut(k) {
                        self.hash_all(x, &[], &[], false);
                    }
                }
            }
        } else {
            self.hash_all(v, clear, sensitive, false);
        }
    }

    /// `in_clear`: the value sits under a key listed in `clear` and not in `sensitive`.
    fn hash_all(&self, v: &mut Value, clear: &[String], sensitive: &[String], in_clear: bool) {
        match v {
            Value::String(s) if !in_clear => *s = self.hash(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.hash_all(x, clear, sensitive, in_clear)),
            Value::Object(m) => m.iter_mut().for_each(|(k, x)| self.hash_all(x, clear, sensitive, clear.contains(k) && !sensitive.contains(k))),
            _ => {}
        }
    }

    fn token(&self, t: &str) -> String {
        if t.is_empty() { String::new() } else { self.hash(t) }
    }

    fn accessor(&self, a: &str) -> String {
        if a.is_empty() || !self.hmac_accessor { a.to_string() } else { self.hash(a) }
    }

    async fn write(&self, entry: &Value) -> std::io::Result<()> {
        let mut line = self.prefix.clone().into_bytes();
        serde_json::to_writer(&mut line, entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.sink.write(&line).await
    }
}

/// The enabled devices.
#[derive(Debug, Default)]
pub(crate) struct AuditBroker {
    devices: RwLock<Arc<Vec<Arc<Device>>>>,
}

impl AuditBroker {
    pub(crate) fn devices(&self) -> Arc<Vec<Arc<Device>>> {
        self.devices.read().map(|d| d.clone()).unwrap_or_default()
    }

    fn set(&self, devices: Vec<Arc<Device>>) {
        if let Ok(mut d) = self.devices.write() {
            *d = Arc::new(devices);
        }
    }

    /// Reopen every file device (SIGHUP). Returns the failures.
    pub(crate) fn reopen(&self) -> Vec<(String, std::io::Error)> {
        self.devices().iter().filter_map(|d| d.sink.reopen().err().map(|e| (d.config.path.clone(), e))).collect()
    }
}

/// What the pipeline learned about a request, for its two audit lines.
#[derive(Default)]
pub(crate) struct AuditCtx {
    pub(crate) id: String,
    pub(crate) operation: Option<Operation>,
    pub(crate) path: String,
    pub(crate) data: Map,
    pub(crate) remote: Option<std::net::SocketAddr>,
    /// The audited request headers (`sys/config/auditing/request-headers`) the request carried.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) wrap_ttl: Option<u64>,
    pub(crate) token: Option<Zeroizing<String>>,
    pub(crate) entry: Option<TokenEntry>,
    pub(crate) mount: Option<Arc<MountEntry>>,
    /// Field names the matched plugin path declares sensitive.
    pub(crate) sensitive: Vec<String>,
    pub(crate) allowed: bool,
    /// The devices enabled when the request arrived: both lines go to exactly these.
    devices: Arc<Vec<Arc<Device>>>,
    /// The rendered `auth` and `request` objects per device (reused in the response line).
    rendered: Vec<(Value, Value)>,
    pub(crate) request_logged: bool,
}

/// The mount fields both audit lines carry.
fn mount_fields(m: &MountEntry) -> Map {
    let mut fields = Map::new();
    fields.insert("mount_point".into(), json!(m.path));
    fields.insert("mount_type".into(), json!(m.kind));
    fields.insert("mount_accessor".into(), json!(m.accessor));
    fields.insert("mount_class".into(), json!(if m.is_auth() { "auth" } else { "secret" }));
    fields
}

/// Sensitive field names: those the plugin path `relative` of `mount` declares, and on the core's
/// own mounts the body fields that carry a token (`token` on `sys/wrapping/*`, `sys/capabilities`,
/// `auth/token/lookup|renew|revoke…`; a custom token `id` on `auth/token/create`). Always hashed,
/// even with `log_raw` or when listed in `audit_non_hmac_request_keys`: tokens never reach a log.
pub(crate) fn sensitive_fields(mount: &MountEntry, relative: &str) -> Vec<String> {
    match &mount.handler {
        Handler::Sys => return vec!["token".into()],
        Handler::Token => return vec!["token".into(), "id".into()],
        _ => {}
    }
    let Handler::Plugin(backend) = &mount.handler else { return Vec::new() };
    let Some(spec) = backend.spec() else { return Vec::new() };
    match tresor_logical::framework::match_path(&spec, relative) {
        Some(m) => spec[m.index].fields.iter().filter(|f| f.sensitive).map(|f| f.name.clone()).collect(),
        None => Vec::new(),
    }
}

/// Write one line; a failure is logged (never with the line) and reported as `false`.
async fn write_line(device: &Device, line: &Value, what: &str) -> bool {
    match device.write(line).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(device = %device.config.path, error = %e, "audit device failed to log the {what}");
            false
        }
    }
}

/// Fail closed: devices exist and none of them wrote the line.
fn all_failed(ok: usize, devices: usize, what: &str) -> Result<(), Error> {
    if ok == 0 && devices > 0 {
        return Err(Error::Internal(format!("no audit device could record the {what}")));
    }
    Ok(())
}

impl Core {
    /// Start the audit context of a request (only when devices are enabled).
    pub(crate) fn audit_ctx(&self, request: &tresor_logical::Request) -> Option<AuditCtx> {
        let devices = self.audit.devices();
        if devices.is_empty() {
            return None;
        }
        Some(AuditCtx {
            devices,
            id: request.id.clone(),
            operation: Some(request.operation),
            path: request.path.clone(),
            data: request.data.clone(),
            remote: request.remote_addr,
            headers: request.headers.clone(),
            wrap_ttl: request.wrap_ttl,
            token: request.client_token.clone(),
            ..AuditCtx::default()
        })
    }

    fn audit_auth(&self, device: &Device, ctx: &AuditCtx) -> Value {
        match &ctx.entry {
            None => json!({"policy_results": {"allowed": ctx.allowed}, "token_type": "default"}),
            Some(e) => json!({
                "client_token": device.token(ctx.token.as_deref().map_or("", String::as_str)),
                "accessor": device.accessor(&e.accessor),
                "display_name": e.display_name,
                "policies": e.policies,
                "token_policies": e.policies,
                "metadata": e.meta,
                "entity_id": "",
                "policy_results": {"allowed": ctx.allowed},
                "token_type": if e.batch { "batch" } else { "service" },
                "token_ttl": e.ttl,
                "token_issue_time": crate::util::rfc3339(e.creation_time),
            }),
        }
    }

    fn audit_request_object(&self, device: &Device, ctx: &AuditCtx) -> Value {
        let mut data = Value::Object(ctx.data.clone());
        device.hash_value(&mut data, &ctx.sensitive, ctx.mount.as_deref().map_or(&[], |m| &m.config.audit_non_hmac_request_keys));
        let mut r = json!({
            "id": ctx.id,
            "operation": ctx.operation.map_or("update", Operation::as_str),
            "namespace": {"id": "root"},
            "path": ctx.path,
            "data": if ctx.data.is_empty() { Value::Null } else { data },
            "remote_address": ctx.remote.map(|a| a.ip().to_string()).unwrap_or_default(),
            "remote_port": ctx.remote.map_or(0, |a| a.port()),
        });
        if let Some(e) = &ctx.entry {
            r["client_token"] = json!(device.token(ctx.token.as_deref().map_or("", String::as_str)));
            r["client_token_accessor"] = json!(device.accessor(&e.accessor));
        }
        if let (Some(m), Value::Object(obj)) = (&ctx.mount, &mut r) {
            obj.extend(mount_fields(m));
            obj.insert(
                "mount_running_version".into(),
                json!(if m.running_version.is_empty() { format!("v{}+builtin.tresor", crate::VERSION) } else { m.running_version.clone() }),
            );
        }
        if let Some(t) = ctx.wrap_ttl {
            r["wrap_ttl"] = json!(t);
        }
        if !ctx.headers.is_empty() {
            // As Vault: lower-case names, each with its list of values.
            let config = self.audited_headers();
            let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (name, value) in &ctx.headers {
                let hmac = config.get(name).copied().unwrap_or(true);
                let hash = crate::audited_headers::hashed(name, hmac, device.log_raw);
                headers.entry(name).or_default().push(if hash { device.hash(value) } else { value.clone() });
            }
            r["headers"] = json!(headers);
        }
        r
    }

    /// Write the request line on every device; `Err` when devices exist and none succeeded.
    pub(crate) async fn audit_log_request(&self, ctx: &mut AuditCtx, error: Option<&Error>) -> Result<(), Error> {
        let devices = ctx.devices.clone();
        ctx.rendered = devices.iter().map(|d| (self.audit_auth(d, ctx), self.audit_request_object(d, ctx))).collect();
        ctx.request_logged = true;
        let time = rfc3339_nanos(now_unix_nanos());
        let mut ok = 0usize;
        for (device, (auth, req)) in devices.iter().zip(&ctx.rendered) {
            let mut line = json!({"time": time, "type": "request", "auth": auth, "request": req});
            if let Some(e) = error {
                line["error"] = json!(e.to_string());
            }
            ok += usize::from(write_line(device, &line, "request").await);
        }
        all_failed(ok, devices.len(), "request")
    }

    /// Write the response line on every device; `Err` when devices exist and none succeeded.
    pub(crate) async fn audit_log_response(&self, ctx: &AuditCtx, result: &Result<Response, Error>) -> Result<(), Error> {
        let time = rfc3339_nanos(now_unix_nanos());
        let mut ok = 0usize;
        // The request line (always written first) rendered one (auth, request) pair per device.
        for (device, (auth, req)) in ctx.devices.iter().zip(&ctx.rendered) {
            let mut line = json!({"time": time, "type": "response", "auth": auth, "request": req});
            let mut response = ctx.mount.as_deref().map(mount_fields).unwrap_or_default();
            match result {
                Ok(r) => {
                    if let Some(d) = &r.data {
                        let mut data = Value::Object(d.clone());
                        device.hash_value(&mut data, &ctx.sensitive, ctx.mount.as_deref().map_or(&[], |m| &m.config.audit_non_hmac_response_keys));
                        response.insert("data".into(), data);
                    }
                    if let Some(a) = &r.auth {
                        response.insert(
                            "auth".into(),
                            json!({
                                "client_token": device.token(&a.client_token),
                                "accessor": device.accessor(&a.accessor),
                                "policies": a.policies,
                                "token_policies": a.token_policies,
                                "metadata": a.metadata,
                                "entity_id": "",
                                "token_type": a.token_type,
                                "token_ttl": a.lease_duration,
                            }),
                        );
                        // Vault repeats a login's auth at the top level of the response line.
                        if ctx.entry.is_none() {
                            line["auth"] = response["auth"].clone();
                            line["auth"]["display_name"] = json!(ctx.path.rsplit('/').next().unwrap_or_default());
                        }
                    }
                    if !r.lease_id.is_empty() {
                        response.insert("secret".into(), json!({"lease_id": r.lease_id}));
                    }
                    if let Some(w) = &r.wrap_info {
                        response.insert(
                            "wrap_info".into(),
                            json!({
                                "token": device.token(&w.token),
                                "accessor": device.accessor(&w.accessor),
                                "ttl": w.ttl,
                                "creation_time": w.creation_time,
                                "creation_path": w.creation_path,
                            }),
                        );
                    }
                    if !r.warnings.is_empty() {
                        response.insert("warnings".into(), json!(r.warnings));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    line["error"] = json!(text);
                    response.insert("data".into(), json!({"error": device.hash(&text)}));
                }
            }
            line["response"] = Value::Object(response);
            ok += usize::from(write_line(device, &line, "response").await);
        }
        all_failed(ok, ctx.devices.len(), "response")
    }

    async fn audit_salt(&self, path: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let key = format!("{SALT_PREFIX}{path}");
        if let Some(s) = self.barrier.get(&key).await? {
            return Ok(Zeroizing::new(s));
        }
        let salt = Zeroizing::new(rand::random::<[u8; 32]>().to_vec());
        self.barrier.put(&key, &salt).await?;
        Ok(salt)
    }

    async fn load_audit_table(&self) -> Result<Vec<AuditDeviceConfig>, Error> {
        match self.barrier.get(AUDIT_TABLE_KEY).await? {
            None => Ok(Vec::new()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt audit table: {e}"))),
        }
    }

    async fn save_audit_table(&self, table: &[AuditDeviceConfig]) -> Result<(), Error> {
        let persisted: Vec<&AuditDeviceConfig> = table.iter().filter(|d| !d.declarative).collect();
        let raw = serde_json::to_vec(&persisted).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put(AUDIT_TABLE_KEY, &raw).await?;
        Ok(())
    }

    /// Open the persisted and declared devices after unseal. A persisted device that cannot be opened
    /// fails the unseal, as Vault does: running without the audit trail an operator asked for would not
    /// be failing closed.
    pub(crate) async fn setup_audit(&self) -> Result<(), Error> {
        let mut table = self.load_audit_table().await?;
        for declared in &self.config.audit_devices {
            if table.iter().any(|d| d.path == declared.path) {
                return Err(Error::Internal(format!("declared audit device {:?} duplicates an API-created one", declared.path)));
            }
            table.push(AuditDeviceConfig { declarative: true, ..declared.clone() });
        }
        let mut devices = Vec::with_capacity(table.len());
        for config in table {
            let salt = self.audit_salt(&config.path).await?;
            let path = config.path.clone();
            devices.push(Arc::new(Device::new(config, salt).map_err(|e| Error::Internal(format!("audit device {path}: {e}")))?));
        }
        self.audit.set(devices);
        Ok(())
    }

    pub(crate) fn teardown_audit(&self) {
        self.audit.set(Vec::new());
    }

    /// Reopen file devices (SIGHUP).
    pub fn reopen_audit_devices(&self) {
        for (path, e) in self.audit.reopen() {
            tracing::error!(device = %path, error = %e, "audit device could not be reopened; requests fail while no device can write");
        }
    }

    /// `PUT sys/audit/<path>`.
    pub(crate) async fn enable_audit(&self, path: &str, data: &Map) -> Result<(), Error> {
        let _guard = self.mount_lock.lock().await;
        let path = format!("{}/", path.trim_matches('/'));
        if path == "/" {
            return Err(Error::invalid("missing audit device path"));
        }
        let kind = crate::util::field::str(data, "type")?.unwrap_or("");
        if kind.is_empty() {
            return Err(Error::invalid("type is required"));
        }
        let options: BTreeMap<String, String> = match data.get("options") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect(),
            Some(_) => return Err(Error::invalid("options must be a map")),
        };
        let config = AuditDeviceConfig {
            path: path.clone(),
            kind: kind.to_string(),
            description: crate::util::field::str(data, "description")?.unwrap_or("").to_string(),
            options,
            local: crate::util::field::bool(data, "local")?.unwrap_or(false),
            declarative: false,
        };
        let current = self.audit.devices();
        if current.iter().any(|d| d.config.path == path) {
            return Err(Error::invalid(format!("path already in use: {path}")));
        }
        // A fresh salt: a device re-enabled at the same path hashes differently (as Vault).
        self.barrier.delete(&format!("{SALT_PREFIX}{path}")).await?;
        let salt = self.audit_salt(&path).await?;
        let device = Arc::new(Device::new(config, salt)?);
        // Vault's sanity test entry.
        let test = json!({"type": "request", "auth": {"token_type": "default"}, "request": {"id": uuid::Uuid::new_v4().to_string(), "operation": "update", "namespace": {"id": "root"}, "path": "sys/audit/test"}});
        device.write(&test).await.map_err(|e| Error::invalid(format!("sanity check failed; unable to write to the audit device: {e}")))?;
        let mut table: Vec<AuditDeviceConfig> = current.iter().map(|d| d.config.clone()).collect();
        table.push(device.config.clone());
        self.save_audit_table(&table).await?;
        let mut devices: Vec<Arc<Device>> = current.iter().cloned().collect();
        devices.push(device);
        self.audit.set(devices);
        Ok(())
    }

    /// `DELETE sys/audit/<path>`.
    pub(crate) async fn disable_audit(&self, path: &str) -> Result<(), Error> {
        let _guard = self.mount_lock.lock().await;
        let path = format!("{}/", path.trim_matches('/'));
        let current = self.audit.devices();
        let Some(device) = current.iter().find(|d| d.config.path == path) else { return Ok(()) };
        if device.config.declarative {
            return Err(Error::invalid("cannot disable a declarative audit device; remove it from the server configuration"));
        }
        let devices: Vec<Arc<Device>> = current.iter().filter(|d| d.config.path != path).cloned().collect();
        let table: Vec<AuditDeviceConfig> = devices.iter().map(|d| d.config.clone()).collect();
        self.save_audit_table(&table).await?;
        self.barrier.delete(&format!("{SALT_PREFIX}{path}")).await?;
        self.audit.set(devices);
        Ok(())
    }

    /// `GET sys/audit`.
    pub(crate) fn audit_json(&self) -> Map {
        self.audit
            .devices()
            .iter()
            .map(|d| {
                (
                    d.config.path.clone(),
                    json!({"type": d.config.kind, "description": d.config.description, "options": d.config.options, "path": d.config.path, "local": d.config.local}),
                )
            })
            .collect()
    }

    /// `sys/audit-hash/<path>`.
    pub(crate) fn audit_hash(&self, path: &str, input: &str) -> Result<String, Error> {
        let path = format!("{}/", path.trim_matches('/'));
        let devices = self.audit.devices();
        let device = devices.iter().find(|d| d.config.path == path).ok_or_else(|| Error::invalid(format!("unknown audit backend {path}")))?;
        Ok(device.hash(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A regular file gets the device's mode, also when it already existed with another one.
    #[cfg(unix)]
    #[test]
    fn an_audit_file_gets_its_mode_through_the_descriptor() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("tresor-audit-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_append(&path, Some(0o600)).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        drop(open_append(&path, None).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "mode 0 leaves it alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn device(options: &[(&str, &str)]) -> Device {
        let config = AuditDeviceConfig {
            path: "t/".into(),
            kind: "file".into(),
            description: String::new(),
            options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain([("file_path".to_string(), "discard".to_string())]).collect(),
            local: false,
            declarative: false,
        };
        Device::new(config, Zeroizing::new(vec![7u8; 32])).unwrap()
    }

    #[test]
    fn every_string_at_any_depth_is_hashed_and_nothing_else() {
        let d = device(&[]);
        let mut v = json!({"a": "secret", "n": 1, "b": true, "z": null, "nested": {"list": ["x", {"y": ""}]}});
        d.hash_value(&mut v, &[], &[]);
        let h = |s: &str| d.hash(s);
        assert_eq!(v, json!({"a": h("secret"), "n": 1, "b": true, "z": null, "nested": {"list": [h("x"), {"y": h("")}]}}));
        assert!(h("secret").starts_with("hmac-sha256:") && h("secret").len() == "hmac-sha256:".len() + 64);
        assert_ne!(h("secret"), device(&[]).hash("Secret"));
    }

    #[test]
    fn non_hmac_keys_stay_clear_at_any_depth_but_sensitive_fields_never_do() {
        let d = device(&[]);
        let h = |s: &str| d.hash(s);
        let keys = ["env".to_string(), "password".to_string()];
        let mut v = json!({"env": "prod", "password": "hunter2", "other": "x", "deep": {"env": ["a", "b"], "k": "y", "env2": "z"}});
        d.hash_value(&mut v, &["password".to_string()], &keys);
        assert_eq!(
            v,
            json!({"env": "prod", "password": h("hunter2"), "other": h("x"), "deep": {"env": ["a", "b"], "k": h("y"), "env2": h("z")}})
        );
        // A map under a clear key is walked with its own keys.
        let mut v = json!({"env": {"inner": "s"}});
        d.hash_value(&mut v, &[], &keys);
        assert_eq!(v, json!({"env": {"inner": h("s")}}));
    }

    #[test]
    fn log_raw_still_hashes_sensitive_fields_and_accessors_follow_the_option() {
        let d = device(&[("log_raw", "true"), ("hmac_accessor", "false")]);
        let mut v = json!({"password": "hunter2", "username": "bob"});
        d.hash_value(&mut v, &["password".to_string()], &[]);
        assert_eq!(v["username"], "bob");
        assert_eq!(v["password"], d.hash("hunter2"));
        assert_eq!(d.accessor("acc"), "acc");
        assert_eq!(device(&[]).accessor("acc"), device(&[]).hash("acc"));
    }

    #[test]
    fn unknown_types_formats_and_missing_paths_are_refused() {
        let mk = |kind: &str, opts: &[(&str, &str)]| {
            Device::new(
                AuditDeviceConfig { path: "x/".into(), kind: kind.into(), description: String::new(), options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), local: false, declarative: false },
                Zeroizing::new(vec![0; 32]),
            )
        };
        assert!(mk("syslog", &[]).is_err());
        assert!(mk("file", &[]).is_err());
        assert!(mk("file", &[("file_path", "discard"), ("format", "jsonx")]).is_err());
        assert!(mk("socket", &[]).is_err());
        assert!(mk("socket", &[("address", "127.0.0.1:9")]).is_ok());
    }
}
