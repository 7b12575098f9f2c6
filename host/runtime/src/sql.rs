//! `tresor:plugin/sql`: PostgreSQL for plugins through connection pools the host owns (sqlx).
//!
//! - One pool per mount and connection name, created lazily and reused across requests; a call with
//!   a different URL or settings for the same name replaces it (Vault's `config/:name` rewritten,
//!   a rotated root password). At most [`MAX_POOLS`] per mount.
//! - Every call first checks the URL's host (or Unix socket directory) and port against the mount's
//!   `allowed_outbound_hosts` ([`Grants`]); nothing is connected otherwise.
//! - The URL is parsed here, not by sqlx's URL parser, so a plugin cannot make the host read files
//!   (`sslrootcert`, `sslcert`, `sslkey`, `~/.pgpass`): only what the URL says is used.
//! - Each statement is bounded by a timeout, both server-side (`statement_timeout`) and host-side.
//! - Error messages never contain the URL's password.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{Column as _, Executor as _, Row as _, TypeInfo as _};

use crate::engine::bindings::tresor::plugin::sql::{self as wit, Connection, Rows, SqlError, Statement, Value};
use tresor_logical::Grants;

use crate::host::State;

/// Pools one mount may hold.
pub(crate) const MAX_POOLS: usize = 16;
/// Rows one query may return.
const MAX_ROWS: usize = 10_000;
/// Statements one `execute` call may run.
const MAX_STATEMENTS: usize = 256;
const DEFAULT_TIMEOUT_MS: u32 = 30_000;
const MAX_TIMEOUT_MS: u32 = 120_000;

/// A mount's pools.
#[derive(Default)]
pub(crate) struct SqlPools {
    grants: Grants,
    pools: tokio::sync::Mutex<HashMap<String, Pooled>>,
    /// Where pool work runs (see `Runtime::io`); `None`: the calling task's runtime.
    io: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for SqlPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlPools").field("grants", &self.grants).finish_non_exhaustive()
    }
}

struct Pooled {
    /// sha256 of the URL and settings the pool was made for.
    fingerprint: [u8; 32],
    pool: PgPool,
}

/// A connection request, validated: options, timeout and the password to keep out of messages.
struct Target {
    options: PgConnectOptions,
    timeout: Duration,
    max_open: u32,
    idle: Duration,
    password: Option<String>,
}

impl SqlPools {
    pub(crate) fn new(grants: Grants, io: Option<tokio::runtime::Handle>) -> Self {
        Self { grants, pools: tokio::sync::Mutex::new(HashMap::new()), io }
    }

    /// Run `work` (bounded by the target's timeout) on the I/O runtime. A pool's connections stay
    /// registered with the reactor that opened them, and a connection lane polls its reactor only
    /// between its own tasks: database credentials at 32 connections fell from ~680 to ~550 per
    /// second when lanes drove the pools.
    async fn on_io<T: Send + 'static>(&self, target: &Target, work: impl std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static) -> Result<T, SqlError> {
        let (timeout, password) = (target.timeout, target.password.clone());
        let bounded = async move { bounded(timeout, password.as_deref(), work).await };
        self.spawn(bounded).await.unwrap_or_else(|e| Err(SqlError::Other(format!("database call failed: {e}"))))
    }

    /// Spawn on the I/O runtime (the current one when there is none).
    fn spawn<F: std::future::Future<Output: Send + 'static> + Send + 'static>(&self, f: F) -> tokio::task::JoinHandle<F::Output> {
        match &self.io {
            Some(io) => io.spawn(f),
            None => tokio::spawn(f),
        }
    }

    /// The pool for `conn`, created or replaced as needed, after the grant check.
    async fn pool(&self, conn: &Connection) -> Result<(PgPool, Target), SqlError> {
        let target = self.target(conn)?;
        let fingerprint = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(conn.url.as_bytes());
            h.update([0]);
            h.update(format!("{}/{}/{}", conn.max_open, conn.max_idle_seconds, conn.timeout_ms).as_bytes());
            <[u8; 32]>::from(h.finalize())
        };
        let mut pools = self.pools.lock().await;
        if let Some(p) = pools.get(&conn.name)
            && p.fingerprint == fingerprint
        {
            return Ok((p.pool.clone(), target));
        }
        if !pools.contains_key(&conn.name) && pools.len() >= MAX_POOLS {
            return Err(SqlError::Other(format!("a mount may hold at most {MAX_POOLS} database connections")));
        }
        let pool = PgPoolOptions::new()
            .max_connections(target.max_open)
            .min_connections(0)
            .idle_timeout(target.idle)
            .acquire_timeout(target.timeout)
            .connect_lazy_with(target.options.clone());
        if let Some(old) = pools.insert(conn.name.clone(), Pooled { fingerprint, pool: pool.clone() }) {
            drop(self.spawn(async move { old.pool.close().await }));
        }
        Ok((pool, target))
    }

    fn target(&self, conn: &Connection) -> Result<Target, SqlError> {
        // `postgresql://user:pw@/db?host=/socket/dir` (an empty host, as libpq allows) is not a valid
        // URL to the `url` crate: parse it with a placeholder host and remember it was empty.
        let (text, empty_host) = match conn.url.split_once("://") {
            Some((scheme, rest)) if rest.split('/').next().is_some_and(|auth| auth.ends_with('@') || auth.is_empty()) => {
                let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (format!("{scheme}://{auth}empty-host.invalid{path}"), true)
            }
            _ => (conn.url.clone(), false),
        };
        let url = url::Url::from_str(&text).map_err(|e| SqlError::InvalidUrl(format!("connection URL: {e}")))?;
        let password = url.password().map(decode).transpose()?;
        let redact = |m: String| redact(m, password.as_deref());
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(SqlError::InvalidUrl(format!("unsupported database URL scheme {:?}: only postgres:// is supported", url.scheme())));
        }
        let mut options = PgConnectOptions::new_without_pgpass();
        let mut socket: Option<String> = None;
        // libpq's default without a host is the Unix socket directory /var/run/postgresql.
        let mut host = if empty_host { "/var/run/postgresql".to_string() } else { url.host_str().map(decode).transpose()?.unwrap_or_default() };
        let mut port = url.port().unwrap_or(5432);
        let mut user = decode(url.username())?;
        let mut database = decode(url.path().trim_start_matches('/'))?;
        let mut ssl = PgSslMode::Prefer;
        let mut app_name = "tresor".to_string();
        for (key, value) in url.query_pairs() {
            match &*key {
                "host" => host = value.into_owned(),
                "port" => port = value.parse().map_err(|_| SqlError::InvalidUrl("port must be a number".into()))?,
                "user" => user = value.into_owned(),
                "dbname" => database = value.into_owned(),
                "sslmode" => ssl = value.parse().map_err(|_| SqlError::InvalidUrl(format!("unknown sslmode {value:?}")))?,
                "application_name" => app_name = value.into_owned(),
                "password" => return Err(SqlError::InvalidUrl("give the password in the URL's userinfo, not as a parameter".into())),
                "connect_timeout" => {}
                other => {
                    return Err(SqlError::InvalidUrl(redact(format!(
                        "connection URL parameter {other:?} is not supported (files on the server, such as sslrootcert, cannot be named)"
                    ))));
                }
            }
        }
        if host.starts_with('/') {
            socket = Some(host.clone());
        }
        if host.is_empty() {
            return Err(SqlError::InvalidUrl("connection URL has no host (give host:port, or ?host=/socket/dir)".into()));
        }
        if user.is_empty() {
            return Err(SqlError::InvalidUrl("connection URL has no username".into()));
        }
        match &socket {
            Some(dir) if !self.grants.allows_socket(dir) => {
                return Err(SqlError::AccessDenied(format!("Unix socket directory {dir} is not in this mount's allowed_outbound_hosts")));
            }
            None if !self.grants.allows_net("postgres", &host, port) => {
                return Err(SqlError::AccessDenied(format!("{host}:{port} is not in this mount's allowed_outbound_hosts")));
            }
            _ => {}
        }
        options = match &socket {
            Some(dir) => options.socket(dir),
            None => options.host(&host),
        };
        options = options.port(port).username(&user).password(password.as_deref().unwrap_or("")).ssl_mode(ssl).application_name(&app_name);
        if !database.is_empty() {
            options = options.database(&database);
        }
        let timeout_ms = match conn.timeout_ms {
            0 => DEFAULT_TIMEOUT_MS,
            t => t.min(MAX_TIMEOUT_MS),
        };
        options = options.options([("statement_timeout", timeout_ms.to_string())]);
        Ok(Target {
            options,
            timeout: Duration::from_millis(u64::from(timeout_ms)),
            max_open: match conn.max_open {
                0 => 4,
                n => n.min(64),
            },
            idle: Duration::from_secs(match conn.max_idle_seconds {
                0 => 300,
                n => u64::from(n),
            }),
            password,
        })
    }

    pub(crate) async fn ping(&self, conn: &Connection) -> Result<(), SqlError> {
        let (pool, target) = self.pool(conn).await?;
        let work = async move {
            let mut c = pool.acquire().await?;
            c.execute(sqlx::raw_sql("SELECT 1")).await?;
            Ok::<_, sqlx::Error>(())
        };
        self.on_io(&target, work).await
    }

    pub(crate) async fn execute(&self, conn: &Connection, statements: Vec<Statement>, transaction: bool) -> Result<u64, SqlError> {
        if statements.len() > MAX_STATEMENTS {
            return Err(SqlError::Other(format!("at most {MAX_STATEMENTS} statements per call")));
        }
        let (pool, target) = self.pool(conn).await?;
        let work = async move {
            let mut affected = 0;
            if transaction {
                let mut tx = pool.begin().await?;
                for st in &statements {
                    affected += run(&mut tx, st).await?;
                }
                tx.commit().await?;
            } else {
                let mut c = pool.acquire().await?;
                for st in &statements {
                    affected += run(&mut c, st).await?;
                }
            }
            Ok::<_, sqlx::Error>(affected)
        };
        self.on_io(&target, work).await
    }

    pub(crate) async fn query(&self, conn: &Connection, statement: Statement) -> Result<Rows, SqlError> {
        let (pool, target) = self.pool(conn).await?;
        let work = async move {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(statement.sql.as_str()));
            for p in &statement.params {
                q = bind(q, p);
            }
            let mut c = pool.acquire().await?;
            let rows: Vec<PgRow> = q.fetch_all(&mut *c).await?;
            Ok::<_, sqlx::Error>(rows)
        };
        let rows = self.on_io(&target, work).await?;
        if rows.len() > MAX_ROWS {
            return Err(SqlError::Other(format!("query returned more than {MAX_ROWS} rows")));
        }
        let columns = rows.first().map(|r| r.columns().iter().map(|c| c.name().to_string()).collect()).unwrap_or_default();
        let rows = rows.iter().map(row_values).collect::<Result<_, _>>()?;
        Ok(Rows { columns, rows })
    }

    pub(crate) async fn close(&self, name: &str) {
        let removed = self.pools.lock().await.remove(name);
        if let Some(p) = removed {
            p.pool.close().await;
        }
    }
}

fn decode(s: &str) -> Result<String, SqlError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| SqlError::InvalidUrl("connection URL is not valid UTF-8 after percent-decoding".into()))
}

/// `message` with every occurrence of the password replaced.
fn redact(message: String, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() && message.contains(p) => message.replace(p, "[redacted]"),
        _ => message,
    }
}

async fn run(conn: &mut sqlx::PgConnection, st: &Statement) -> Result<u64, sqlx::Error> {
    if st.params.is_empty() {
        // Simple query protocol: DDL with literals, several statements in one string.
        return Ok(conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(st.sql.as_str()))).await?.rows_affected());
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(st.sql.as_str()));
    for p in &st.params {
        q = bind(q, p);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(q: PgQuery<'q>, v: &'q Value) -> PgQuery<'q> {
    match v {
        Value::Null => q.bind(None::<String>),
        Value::Boolean(b) => q.bind(*b),
        Value::Int(i) => q.bind(*i),
        Value::Float(f) => q.bind(*f),
        Value::Text(s) => q.bind(s.as_str()),
        Value::Bytes(b) => q.bind(b.as_slice()),
    }
}

fn row_values(row: &PgRow) -> Result<Vec<Value>, SqlError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_info().name();
        let err = |e: sqlx::Error| SqlError::Other(format!("column {:?}: {e}", col.name()));
        let v = match ty {
            "BOOL" => row.try_get::<Option<bool>, _>(i).map_err(err)?.map(Value::Boolean),
            "INT2" => row.try_get::<Option<i16>, _>(i).map_err(err)?.map(|v| Value::Int(v.into())),
            "INT4" => row.try_get::<Option<i32>, _>(i).map_err(err)?.map(|v| Value::Int(v.into())),
            "INT8" => row.try_get::<Option<i64>, _>(i).map_err(err)?.map(Value::Int),
            "OID" => row.try_get::<Option<sqlx::postgres::types::Oid>, _>(i).map_err(err)?.map(|v| Value::Int(v.0.into())),
            "FLOAT4" => row.try_get::<Option<f32>, _>(i).map_err(err)?.map(|v| Value::Float(v.into())),
            "FLOAT8" => row.try_get::<Option<f64>, _>(i).map_err(err)?.map(Value::Float),
            "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" | "CHAR" | "UNKNOWN" => row.try_get::<Option<String>, _>(i).map_err(err)?.map(Value::Text),
            "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i).map_err(err)?.map(Value::Bytes),
            other => return Err(SqlError::Other(format!("column {:?} has type {other}, which is not supported: cast it to text", col.name()))),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Run `work` under the target's timeout and map its error.
async fn bounded<T>(timeout: Duration, password: Option<&str>, work: impl std::future::Future<Output = Result<T, sqlx::Error>>) -> Result<T, SqlError> {
    match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
        Err(_) => Err(SqlError::Timeout),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_error(e, password)),
    }
}

fn map_error(e: sqlx::Error, password: Option<&str>) -> SqlError {
    let r = |m: String| redact(m, password);
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // Authentication failures are connection failures (28000, 28P01).
            if code.starts_with("28") || code == "3D000" {
                SqlError::Connect(r(db.message().to_string()))
            } else if code == "57014" {
                SqlError::Timeout
            } else {
                SqlError::Database((code, r(db.message().to_string())))
            }
        }
        sqlx::Error::PoolTimedOut => SqlError::Timeout,
        sqlx::Error::Configuration(m) => SqlError::InvalidUrl(r(m.to_string())),
        sqlx::Error::Io(io) => SqlError::Connect(r(io.to_string())),
        sqlx::Error::Tls(t) => SqlError::Connect(r(format!("TLS: {t}"))),
        other => SqlError::Other(r(other.to_string())),
    }
}

impl wit::Host for State {
    async fn ping(&mut self, conn: Connection) -> wasmtime::Result<Result<(), SqlError>> {
        Ok(self.sql.ping(&conn).await)
    }

    async fn execute(&mut self, conn: Connection, statements: Vec<Statement>, transaction: bool) -> wasmtime::Result<Result<u64, SqlError>> {
        Ok(self.sql.execute(&conn, statements, transaction).await)
    }

    async fn query(&mut self, conn: Connection, statement: Statement) -> wasmtime::Result<Result<Rows, SqlError>> {
        Ok(self.sql.query(&conn, statement).await)
    }

    async fn close(&mut self, name: String) -> wasmtime::Result<()> {
        self.sql.close(&name).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(url: &str) -> Connection {
        Connection { name: "db".into(), url: url.into(), max_open: 0, max_idle_seconds: 0, timeout_ms: 0 }
    }

    #[test]
    fn urls_are_checked_against_grants_and_never_name_files() {
        let pools = SqlPools::new(Grants::parse(&["127.0.0.1:5432", "/run/pgsock"]).expect("valid"), None);
        assert!(pools.target(&conn("postgres://u:p@127.0.0.1:5432/db?sslmode=disable")).is_ok());
        assert!(pools.target(&conn("postgresql://u:p@/postgres?host=/run/pgsock")).is_ok());
        let denied = pools.target(&conn("postgres://u:secretpw@127.0.0.1:5433/db")).err();
        assert!(matches!(&denied, Some(SqlError::AccessDenied(m)) if m.contains("127.0.0.1:5433") && !m.contains("secretpw")), "{denied:?}");
        assert!(matches!(pools.target(&conn("postgres://u:p@/postgres?host=/tmp")), Err(SqlError::AccessDenied(_))));
        assert!(matches!(pools.target(&conn("postgres://u:p@/postgres")), Err(SqlError::AccessDenied(m)) if m.contains("/var/run/postgresql")));
        for bad in [
            "postgres://u:p@127.0.0.1:5432/db?sslrootcert=/etc/shadow",
            "postgres://u:p@127.0.0.1:5432/db?sslkey=/etc/shadow",
            "mysql://u:p@127.0.0.1:5432/db",
            "not a url",
            "postgres://127.0.0.1:5432/db",
        ] {
            assert!(matches!(pools.target(&conn(bad)), Err(SqlError::InvalidUrl(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn pool_work_runs_on_the_io_runtime_not_the_calling_one() {
        let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("tresor-io-test").enable_all().build().unwrap();
        let grants = Grants::parse(&["127.0.0.1:5432"]).expect("valid");
        let target = SqlPools::new(grants.clone(), None).target(&conn("postgres://u:p@127.0.0.1:5432/db")).unwrap();
        let thread = || async { Ok::<_, sqlx::Error>(std::thread::current().name().map(str::to_owned)) };
        let on_io = SqlPools::new(grants.clone(), Some(io.handle().clone())).on_io(&target, thread()).await.unwrap();
        assert_eq!(on_io.as_deref(), Some("tresor-io-test"));
        let inline = SqlPools::new(grants, None).on_io(&target, thread()).await.unwrap();
        assert_ne!(inline.as_deref(), Some("tresor-io-test"));
        io.shutdown_background();
    }

    #[test]
    fn passwords_are_redacted_and_percent_decoded() {
        assert_eq!(redact("auth failed for p@ss".into(), Some("p@ss")), "auth failed for [redacted]");
        assert_eq!(decode("a%40b%2Fc").ok().as_deref(), Some("a@b/c"));
    }
}
