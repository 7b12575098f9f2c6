//! SQL databases through the host (`tresor:plugin/sql`): the host owns one connection pool per mount
//! and [`Connection::name`], reuses it across requests, and refuses hosts the mount's
//! `allowed_outbound_hosts` does not grant ([`SqlError::AccessDenied`]). Only PostgreSQL for now.
//!
//! ```no_run
//! use tresor_sdk::sql::{self, Connection, Statement, Value};
//! let db = Connection::new("main", "postgres://vault:pw@127.0.0.1:5432/postgres?sslmode=disable");
//! sql::execute(&db, &[Statement::raw("CREATE ROLE \"app\" LOGIN PASSWORD 'x'")], true).expect("created");
//! let rows = sql::query(&db, &Statement::new("SELECT rolname FROM pg_roles WHERE rolname = $1", vec![Value::Text("app".into())]))
//!     .expect("queried");
//! assert_eq!(rows.rows.len(), 1);
//! ```
//!
//! With the `testing` feature on a native build, a mock records statements instead
//! ([`mock_statements`], [`mock_fail_on`]), so handlers unit-test without a database.

/// A statement parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `bool`.
    Boolean(bool),
    /// Any integer column.
    Int(i64),
    /// `real` / `double precision`.
    Float(f64),
    /// Text-like columns.
    Text(String),
    /// `bytea`.
    Bytes(Vec<u8>),
}

impl Value {
    /// The text, if this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Your name for the database (one pool per mount and name).
    pub name: String,
    /// `postgres://user:password@host:port/db?sslmode=...` (or `?host=/socket/dir`).
    pub url: String,
    /// Most open connections (0 = 4, at most 64).
    pub max_open: u32,
    /// Idle connections close after this many seconds (0 = 300).
    pub max_idle_seconds: u32,
    /// Per-statement timeout in milliseconds (0 = 30 s, at most 120 s).
    pub timeout_ms: u32,
}

impl Connection {
    /// A connection with the host's defaults.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self { name: name.into(), url: url.into(), max_open: 0, max_idle_seconds: 0, timeout_ms: 0 }
    }
}

/// A statement and its `$1`, `$2` ... parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// Parameters; none means the text is sent as a simple query (several statements allowed).
    pub params: Vec<Value>,
}

impl Statement {
    /// A parameterised statement.
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Self { sql: sql.into(), params }
    }

    /// Literal SQL without parameters (DDL such as `CREATE ROLE` cannot take parameters).
    pub fn raw(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), params: Vec::new() }
    }
}

/// Query results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Values in column order.
    pub rows: Vec<Vec<Value>>,
}

/// Why a call failed. Messages never contain the connection URL's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    /// The host is not in the mount's `allowed_outbound_hosts`.
    AccessDenied(String),
    /// The URL is malformed or unsupported.
    InvalidUrl(String),
    /// Connecting or authenticating failed.
    Connect(String),
    /// The database refused a statement: SQLSTATE and message.
    Database {
        /// SQLSTATE (`42601` syntax error ...).
        code: String,
        /// The database's message.
        message: String,
    },
    /// Out of time.
    Timeout,
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::AccessDenied(m) => write!(f, "access denied: {m}"),
            SqlError::InvalidUrl(m) => write!(f, "invalid connection URL: {m}"),
            SqlError::Connect(m) => write!(f, "failed to connect: {m}"),
            SqlError::Database { code, message } => write!(f, "{message} (SQLSTATE {code})"),
            SqlError::Timeout => write!(f, "the database did not answer in time"),
            SqlError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SqlError {}

/// Connect (or reuse the pool) and make one round trip.
pub fn ping(conn: &Connection) -> Result<(), SqlError> {
    imp::ping(conn)
}

/// Run `statements` in order, inside one transaction if `transaction` (rolled back if any fails).
/// Returns the rows affected.
pub fn execute(conn: &Connection, statements: &[Statement], transaction: bool) -> Result<u64, SqlError> {
    imp::execute(conn, statements, transaction)
}

/// Run one query.
pub fn query(conn: &Connection, statement: &Statement) -> Result<Rows, SqlError> {
    imp::query(conn, statement)
}

/// Close the pool `name` (after a config change or `reset`).
pub fn close(name: &str) {
    imp::close(name)
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
mod imp {
    use super::{Connection, Rows, SqlError, Statement, Value};
    use crate::bindings::tresor::plugin::sql as wit;

    fn conn_to_wit(c: &Connection) -> wit::Connection {
        wit::Connection { name: c.name.clone(), url: c.url.clone(), max_open: c.max_open, max_idle_seconds: c.max_idle_seconds, timeout_ms: c.timeout_ms }
    }

    fn value_to_wit(v: &Value) -> wit::Value {
        match v {
            Value::Null => wit::Value::Null,
            Value::Boolean(b) => wit::Value::Boolean(*b),
            Value::Int(i) => wit::Value::Int(*i),
            Value::Float(f) => wit::Value::Float(*f),
            Value::Text(s) => wit::Value::Text(s.clone()),
            Value::Bytes(b) => wit::Value::Bytes(b.clone()),
        }
    }

    fn value_from_wit(v: wit::Value) -> Value {
        match v {
            wit::Value::Null => Value::Null,
            wit::Value::Boolean(b) => Value::Boolean(b),
            wit::Value::Int(i) => Value::Int(i),
            wit::Value::Float(f) => Value::Float(f),
            wit::Value::Text(s) => Value::Text(s),
            wit::Value::Bytes(b) => Value::Bytes(b),
        }
    }

    fn statement_to_wit(s: &Statement) -> wit::Statement {
        wit::Statement { sql: s.sql.clone(), params: s.params.iter().map(value_to_wit).collect() }
    }

    fn error_from_wit(e: wit::SqlError) -> SqlError {
        match e {
            wit::SqlError::AccessDenied(m) => SqlError::AccessDenied(m),
            wit::SqlError::InvalidUrl(m) => SqlError::InvalidUrl(m),
            wit::SqlError::Connect(m) => SqlError::Connect(m),
            wit::SqlError::Database((code, message)) => SqlError::Database { code, message },
            wit::SqlError::Timeout => SqlError::Timeout,
            wit::SqlError::Other(m) => SqlError::Other(m),
        }
    }

    pub(super) fn ping(conn: &Connection) -> Result<(), SqlError> {
        wit::ping(&conn_to_wit(conn)).map_err(error_from_wit)
    }

    pub(super) fn execute(conn: &Connection, statements: &[Statement], transaction: bool) -> Result<u64, SqlError> {
        let statements: Vec<wit::Statement> = statements.iter().map(statement_to_wit).collect();
        wit::execute(&conn_to_wit(conn), &statements, transaction).map_err(error_from_wit)
    }

    pub(super) fn query(conn: &Connection, statement: &Statement) -> Result<Rows, SqlError> {
        let rows = wit::query(&conn_to_wit(conn), &statement_to_wit(statement)).map_err(error_from_wit)?;
        Ok(Rows { columns: rows.columns, rows: rows.rows.into_iter().map(|r| r.into_iter().map(value_from_wit).collect()).collect() })
    }

    pub(super) fn close(name: &str) {
        wit::close(name)
    }
}

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
mod imp {
    //! The native mock: records statements per thread; fails the first statement containing a
    //! chosen text; queries return no rows.
    use std::cell::RefCell;

    use super::{Connection, Rows, SqlError, Statement};

    thread_local! {
        pub(super) static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        pub(super) static FAIL_ON: RefCell<Option<(String, SqlError)>> = const { RefCell::new(None) };
    }

    fn run(sql: &str) -> Result<(), SqlError> {
        LOG.with(|l| l.borrow_mut().push(sql.to_string()));
        FAIL_ON.with(|f| match &*f.borrow() {
            Some((needle, err)) if sql.contains(needle.as_str()) => Err(err.clone()),
            _ => Ok(()),
        })
    }

    pub(super) fn ping(_conn: &Connection) -> Result<(), SqlError> {
        run("SELECT 1")
    }

    pub(super) fn execute(_conn: &Connection, statements: &[Statement], _transaction: bool) -> Result<u64, SqlError> {
        for s in statements {
            run(&s.sql)?;
        }
        Ok(0)
    }

    pub(super) fn query(_conn: &Connection, statement: &Statement) -> Result<Rows, SqlError> {
        run(&statement.sql)?;
        Ok(Rows::default())
    }

    pub(super) fn close(_name: &str) {}
}

/// Statements the mock host ran on this thread, oldest first (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn mock_statements() -> Vec<String> {
    imp::LOG.with(|l| l.borrow().clone())
}

/// Make the mock fail every statement containing `needle` with `error`, and clear the statement
/// log (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn mock_fail_on(needle: &str, error: SqlError) {
    imp::FAIL_ON.with(|f| *f.borrow_mut() = Some((needle.to_string(), error)));
    imp::LOG.with(|l| l.borrow_mut().clear());
}

/// Forget the mock's statement log and failure (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn reset_mock() {
    imp::FAIL_ON.with(|f| *f.borrow_mut() = None);
    imp::LOG.with(|l| l.borrow_mut().clear());
}
