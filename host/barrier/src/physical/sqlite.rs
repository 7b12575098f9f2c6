//! SQLite physical backend through sqlx: the embedded durable default.
//!
//! WAL journal with `synchronous=FULL`, so a write acknowledged to the client has been fsynced and
//! survives `kill -9` or power loss. One table of `(key TEXT PRIMARY KEY, value BLOB)`; prefix scans use
//! the primary-key index through a half-open key range.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;

use super::{Backend, TxnOp};
use crate::Error;

/// Readers run in parallel under WAL; SQLite serialises writers itself (with `busy_timeout`).
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for the database lock before failing the request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite-backed storage.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

/// The database holds only ciphertext, but its size and key paths are still metadata: owner-only
/// access for the file and its WAL/SHM companions, as Vault's file backends use. Best effort (the
/// directory may not be ours to change), so a failure is logged, not fatal.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                && e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "could not restrict database file permissions");
                }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl SqliteBackend {
    /// Open (creating if needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::physical)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let backend = Self::connect(options).await?;
        restrict_permissions(path);
        Ok(backend)
    }

    /// A private in-memory SQLite database (tests).
    pub async fn in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(Error::physical)?;
        // One connection: every connection to `:memory:` would otherwise be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(Error::physical)?;
        Self::create_schema(&pool).await?;
        Ok(Self { pool })
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self, Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(Error::physical)?;
        Self::create_schema(&pool).await?;
        Ok(Self { pool })
    }

    async fn create_schema(pool: &SqlitePool) -> Result<(), Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tresor_kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID",
        )
        .execute(pool)
        .await
        .map_err(Error::physical)?;
        Ok(())
    }

    /// Close the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The smallest string greater than every string starting with `prefix` (SQLite compares TEXT bytewise;
/// U+10FFFF encodes as F4 8F BF BF, above any byte that can follow in valid UTF-8 at that position).
fn upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

const UPSERT: &str = "INSERT INTO tresor_kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";

#[async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let row = sqlx::query("SELECT value FROM tresor_kv WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::physical)?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0).map_err(Error::physical)).transpose()
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        sqlx::query(UPSERT).bind(key).bind(value).execute(&self.pool).await.map_err(Error::physical)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM tresor_kv WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(Error::physical)?;
        Ok(())
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT key FROM tresor_kv WHERE key >= ?1 AND key < ?2 ORDER BY key")
            .bind(prefix)
            .bind(upper_bound(prefix))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::physical)?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::physical)).collect()
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(Error::physical)?;
        for op in ops {
            match op {
                TxnOp::Put(k, v) => {
                    sqlx::query(UPSERT).bind(k).bind(v).execute(&mut *tx).await.map_err(Error::physical)?;
                }
                TxnOp::Delete(k) => {
                    sqlx::query("DELETE FROM tresor_kv WHERE key = ?1")
                        .bind(k)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::physical)?;
                }
            }
        }
        tx.commit().await.map_err(Error::physical)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("t.db")).await.unwrap();
        crate::physical::tests::conformance(&backend).await;
    }

    #[tokio::test]
    async fn sqlite_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let b = SqliteBackend::open(&path).await.unwrap();
        b.put("k", b"v").await.unwrap();
        b.close().await;
        let b = SqliteBackend::open(&path).await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), Some(b"v".to_vec()));
    }
}
