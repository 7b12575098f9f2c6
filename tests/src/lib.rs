//! Test support: [`TestServer`] runs the real `tresor` binary on `127.0.0.1:0` and [`Http`] talks to it.
//! Every server gets its own temporary directory, so tests are parallel-safe.


use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `tresor` binary under test: `$TRESOR_BIN`, else the one cargo built for this profile.
pub fn tresor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRESOR_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    // Tests run from target/<profile>/deps/<test>; the binary sits in target/<profile>/.
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(|deps| deps.parent()).map(Path::to_path_buf))
        .unwrap_or_else(|| target.join("debug"));
    let bin = profile_dir.join("tresor");
    assert!(bin.exists(), "{} not found: build it first (`cargo build -p tresor`, done by scripts/test.sh)", bin.display());
    bin
}

/// The real OpenBao CLI: `$TRESOR_BAO`, the project venv (scripts/test-deps.sh), or `bao` on PATH.
pub fn bao_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRESOR_BAO") {
        return p.into();
    }
    let venv = workspace_root().join("target/test-venv/bin/bao");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("bao")).find(|p| p.exists()));
    on_path.unwrap_or_else(|| panic!("the OpenBao `bao` CLI is required: run scripts/test-deps.sh"))
}

/// Run `tests/python/<script>` (hvac) with the project venv's Python against `server` as root;
/// assert it exits 0 and prints `expect`.
pub fn hvac(server: &TestServer, script: &str, expect: &str) {
    let python = workspace_root().join("target/test-venv/bin/python");
    let out = Command::new(&python)
        .arg(workspace_root().join("tests/python").join(script))
        .arg(&server.addr)
        .arg(&server.root_token)
        .output()
        .unwrap_or_else(|e| panic!("running {} (scripts/test-deps.sh installs it): {e}", python.display()));
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(expect));
}

/// Run the real `bao` CLI against `server` with `token` (empty: none), isolated from the caller's
/// environment (`HOME` is the server's private directory, `VAULT_*` unset).
pub fn bao(server: &TestServer, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(bao_bin())
        .args(args)
        .env("BAO_ADDR", &server.addr)
        .env("BAO_TOKEN", token)
        .env("HOME", server.dir.path())
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .output()
        .expect("running bao")
}

/// The real OpenBao (`bao server -dev`, in-memory) on a free loopback port, as a reference server for
/// compatibility tests. Killed on drop.
pub struct BaoDev {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    _home: tempfile::TempDir,
}

impl BaoDev {
    /// Root token of the dev server.
    pub const ROOT: &'static str = "root";

    /// Start it and wait until it answers `sys/health`.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(bao_bin())
            .args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address=127.0.0.1:{port}")])
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bao (scripts/test-deps.sh installs it)");
        let bao = Self { child, addr: format!("http://127.0.0.1:{port}"), _home: home };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || bao.http().get("sys/health").0 != 200 {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "bao dev server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        bao
    }

    /// A client with the root token.
    pub fn http(&self) -> Http {
        Http::new(&self.addr, Self::ROOT)
    }
}

impl Drop for BaoDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `tresor server`. Killed on drop.
pub struct TestServer {
    child: Option<Child>,
    args: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// Root token printed by `-dev` (empty for config servers until init).
    pub root_token: String,
    /// Private directory for config, database and logs.
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// `tresor server -dev` on a free port.
    pub fn dev() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn(vec!["server".into(), "-dev".into(), "-dev-listen-address=127.0.0.1:0".into()], dir)
    }

    /// `tresor server -dev` with extra arguments.
    pub fn dev_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["server".to_string(), "-dev".into(), "-dev-listen-address=127.0.0.1:0".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args, dir)
    }

    /// `tresor server -dev -dev-db=<dir>/tresor.db`: dev mode on persistent SQLite storage.
    pub fn dev_db() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tresor.db");
        Self::spawn(
            vec!["server".into(), "-dev".into(), "-dev-listen-address=127.0.0.1:0".into(), format!("-dev-db={}", db.display())],
            dir,
        )
    }

    /// `tresor server -config=FILE` with SQLite storage in a private directory.
    pub fn sqlite() -> Self {
        Self::with_listener_extra("")
    }

    /// As [`TestServer::sqlite`], with `plugin_directory` set.
    pub fn sqlite_with_plugins(plugin_dir: &Path) -> Self {
        Self::with_config_extra("", &format!("plugin_directory = \"{}\"\n", plugin_dir.display()))
    }

    /// As [`TestServer::sqlite`], with extra top-level configuration (e.g. `audit` blocks).
    pub fn sqlite_with_config(top_extra: &str) -> Self {
        Self::with_config_extra("", top_extra)
    }

    /// As [`TestServer::sqlite`], with extra lines inside the listener block.
    pub fn with_listener_extra(extra: &str) -> Self {
        Self::with_config_extra(extra, "")
    }

    fn with_config_extra(listener_extra: &str, top_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tresor.hcl");
        std::fs::write(
            &config,
            format!(
                // The one-line listener form of the brief's fixed interface (Vault's HCL1 accepts it).
                "storage \"sqlite\" {{ path = \"{}\" }}\nlistener \"tcp\" {{ address = \"127.0.0.1:0\"  tls_disable = 1 {listener_extra} }}\napi_addr = \"http://127.0.0.1:0\"\n{top_extra}",
                dir.path().join("tresor.db").display()
            ),
        )
        .unwrap();
        Self::spawn(vec!["server".into(), format!("-config={}", config.display())], dir)
    }

    fn spawn(args: Vec<String>, dir: tempfile::TempDir) -> Self {
        let mut server = Self { child: None, args, addr: String::new(), root_token: String::new(), dir };
        server.start();
        server
    }

    /// Path of the SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tresor.db")
    }

    /// (Re)start the process with the same arguments and wait until it prints its address.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("server.log")).unwrap();
        let mut child = Command::new(tresor_bin())
            .args(&self.args)
            .env("HOME", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let dev = self.args.iter().any(|a| a == "-dev");
        let (mut addr, mut token) = (None, None);
        while addr.is_none() || (dev && token.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("server did not start: {:?}", child.try_wait()));
            // The bound address (api_addr may be anything the config says).
            if let Some(rest) = line.trim().strip_prefix("Listener 1: tcp (addr: \"") {
                addr = rest.split('"').next().map(|a| format!("http://{a}"));
            }
            if let Some(t) = line.trim().strip_prefix("Root Token: ") {
                token = Some(t.to_string());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.addr = addr.unwrap();
        if let Some(t) = token {
            self.root_token = t;
        }
        self.child = Some(child);
    }

    /// `kill -9`: no chance to flush or checkpoint anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Send a signal (`HUP`, ...) to the running server.
    pub fn signal(&self, sig: &str) {
        let child = self.child.as_ref().expect("server not running");
        let status = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// The server's log (its stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server not running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An HTTP client for this server with the given token.
    pub fn http(&self, token: &str) -> Http {
        Http { addr: self.addr.clone(), token: token.to_string(), agent: ureq::AgentBuilder::new().build() }
    }

    /// A client with the dev root token.
    pub fn root(&self) -> Http {
        self.http(&self.root_token)
    }

    /// `sys/init` with `shares`/`threshold`; returns (hex shares, root token) and remembers the token.
    pub fn init(&mut self, shares: u8, threshold: u8) -> (Vec<String>, String) {
        let (status, body) = self.http("").put("sys/init", serde_json::json!({"secret_shares": shares, "secret_threshold": threshold}));
        assert_eq!(status, 200, "{body}");
        let keys = body["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
        self.root_token = body["root_token"].as_str().unwrap().to_string();
        (keys, self.root_token.clone())
    }

    /// Enter shares until unsealed.
    pub fn unseal(&self, keys: &[String]) {
        for key in keys {
            let (status, body) = self.http("").put("sys/unseal", serde_json::json!({ "key": key }));
            assert_eq!(status, 200, "{body}");
        }
        let (_, status) = self.http("").get("sys/seal-status");
        assert_eq!(status["sealed"], false, "{status}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal HTTP client returning (status, JSON body or Null).
pub struct Http {
    addr: String,
    token: String,
    agent: ureq::Agent,
}

/// A raw response: status, headers we care about, body text.
pub struct Raw {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// Every response header (lower-case name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Raw {
    /// The body as JSON (Null when empty).
    pub fn json(&self) -> Value {
        if self.body.is_empty() { Value::Null } else { serde_json::from_str(&self.body).unwrap() }
    }
}

/// Send one request to OpenBao (`theirs`) and to Tresor (`ours`) and require the same status;
/// returns OpenBao's answer, Tresor's and the request described for assertion messages.
pub fn send_both(theirs: &Http, ours: &Http, method: &str, path: &str, body: Option<&Value>) -> (Value, Value, String) {
    let (ts, tb) = theirs.send(method, path, body);
    let (os, ob) = ours.send(method, path, body);
    let what = format!("{method} {path} {body:?}");
    assert_eq!(os, ts, "{what}: OpenBao said {tb}, Tresor {ob}");
    (tb, ob, what)
}

impl Http {
    /// A client for any Vault-API server at `addr` (`http://127.0.0.1:PORT`).
    pub fn new(addr: &str, token: &str) -> Self {
        Http { addr: addr.to_string(), token: token.to_string(), agent: ureq::AgentBuilder::new().build() }
    }

    /// Any method with an optional JSON body: the status and the parsed answer (what the
    /// side-by-side tests compare between Tresor and OpenBao).
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let raw = self.raw(method, path, body.map(|b| b.to_string().into_bytes()).as_deref(), Some("application/json"));
        (raw.status, raw.json())
    }

    /// The same server with another token (empty: none sent).
    pub fn with_token(&self, token: &str) -> Self {
        Http::new(&self.addr, token)
    }

    /// Send any request with optional raw body and content type.
    pub fn raw(&self, method: &str, path: &str, body: Option<&[u8]>, content_type: Option<&str>) -> Raw {
        self.raw_headers(method, path, body, content_type, &[])
    }

    /// As [`Http::raw`], with extra headers.
    pub fn raw_headers(&self, method: &str, path: &str, body: Option<&[u8]>, content_type: Option<&str>, headers: &[(&str, &str)]) -> Raw {
        let mut req = self.agent.request(method, &format!("{}/v1/{}", self.addr, path));
        if !self.token.is_empty() {
            req = req.set("X-Vault-Token", &self.token);
        }
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").map(str::to_owned);
        let cache_control = resp.header("cache-control").map(str::to_owned);
        let headers = resp.headers_names().into_iter().filter_map(|n| resp.header(&n).map(|v| (n.to_lowercase(), v.to_string()))).collect();
        let body = resp.into_string().unwrap_or_default();
        Raw { status, content_type, cache_control, headers, body }
    }

    /// `GET`.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self.raw("GET", path, None, None);
        (r.status, r.json())
    }

    /// `PUT` with a JSON body.
    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.raw("PUT", path, Some(body.to_string().as_bytes()), Some("application/json"));
        (r.status, r.json())
    }

    /// `DELETE`.
    pub fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.raw("DELETE", path, None, None);
        (r.status, r.json())
    }

    /// `LIST`.
    pub fn list(&self, path: &str) -> (u16, Value) {
        let r = self.raw("LIST", path, None, None);
        (r.status, r.json())
    }
}

/// The private PostgreSQL cluster of the test run (`scripts/pg.sh`): `scripts/test.sh` starts it
/// and exports `TRESOR_TEST_PG_*`; a test run by hand starts it on first use (stop it with
/// `scripts/pg.sh stop`). Tests share the cluster, so each works in its own database
/// ([`Pg::create_database`]) and generated role names are unique.
#[derive(Debug, Clone)]
pub struct Pg {
    /// Loopback address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Superuser.
    pub user: String,
    /// Superuser password.
    pub password: String,
    bin: PathBuf,
}

/// The cluster, started if needed.
pub fn pg() -> &'static Pg {
    static PG: std::sync::OnceLock<Pg> = std::sync::OnceLock::new();
    PG.get_or_init(|| {
        let mut vars: std::collections::HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with("TRESOR_TEST_PG_")).collect();
        if !vars.contains_key("TRESOR_TEST_PG_PORT") {
            let out = Command::new("bash").arg(workspace_root().join("scripts/pg.sh")).arg("start").output().expect("running scripts/pg.sh");
            assert!(out.status.success(), "scripts/pg.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
            vars = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect();
        }
        let get = |k: &str| vars.get(k).cloned().unwrap_or_else(|| panic!("{k} missing from scripts/pg.sh's output"));
        Pg {
            host: get("TRESOR_TEST_PG_HOST"),
            port: get("TRESOR_TEST_PG_PORT").parse().expect("a port"),
            user: get("TRESOR_TEST_PG_USER"),
            password: get("TRESOR_TEST_PG_PASSWORD"),
            bin: get("TRESOR_TEST_PG_BIN").into(),
        }
    })
}

impl Pg {
    /// `host:port`, as granted in a mount's `allowed_outbound_hosts`.
    pub fn hostport(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Vault's templated connection URL for database `db`.
    pub fn template_url(&self, db: &str) -> String {
        format!("postgresql://{{{{username}}}}:{{{{password}}}}@{}:{}/{db}?sslmode=disable", self.host, self.port)
    }

    /// A `psql` command connecting as `user` to `db`, unaligned and quiet.
    pub fn psql_cmd(&self, user: &str, password: &str, db: &str, sql: &str) -> Command {
        let psql = if self.bin.join("psql").exists() { self.bin.join("psql") } else { PathBuf::from("psql") };
        let mut cmd = Command::new(psql);
        cmd.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", &self.host, "-p", &self.port.to_string(), "-U", user, "-d", db, "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// Run `sql` as `user`; stdout trimmed, or psql's stderr.
    pub fn psql_as(&self, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
        let out = self.psql_cmd(user, password, db, sql).output().expect("running psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Run `sql` as the superuser in `db`; panics on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.psql_as(&self.user, &self.password, db, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A fresh database for one test (`t_<random>`), with a table `items` holding one row.
    pub fn create_database(&self) -> String {
        let name = format!("t_{:016x}", rand_u64());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.psql(&name, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one')");
        name
    }

    /// Whether role `name` exists.
    pub fn role_exists(&self, name: &str) -> bool {
        self.psql("postgres", &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{}'", name.replace('\'', "''"))) == "1"
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    h.finish()
}

/// A small deterministic generator (64-bit LCG, high bits) for seeded random request sequences.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
