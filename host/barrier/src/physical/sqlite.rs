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

use super::{Backend, StorageOp};
use crate::Error;

/// Readers run in parallel under WAL; SQLite serialises writers itself (with `busy_timeout`).
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for the database lock before failing the request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite-backed storage.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
    /// Group commit: every write goes to one writer task (see [`writer`]).
    writes: tokio::sync::mpsc::Sender<PendingWrite>,
}

/// A transaction waiting for the writer, and where to report its outcome.
type PendingWrite = (Vec<StorageOp>, tokio::sync::oneshot::Sender<Result<(), Error>>);

/// Most transactions committed together.
const MAX_GROUP: usize = 256;

/// The writer: takes every transaction queued right now, applies them in arrival order inside one
/// SQLite transaction and commits once (one fsync for the group), then acknowledges each. Nothing is
/// acknowledged before its commit, and a group is all-or-nothing, so each caller's batch stays atomic.
/// If a group fails, its members are retried one by one so one bad write cannot fail the others.
async fn writer(pool: SqlitePool, mut rx: tokio::sync::mpsc::Receiver<PendingWrite>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let all: Vec<&StorageOp> = group.iter().flat_map(|(ops, _)| ops.iter()).collect();
        match apply(&pool, &all).await {
            Ok(()) => {
                for (_, done) in group {
                    let _ = done.send(Ok(()));
                }
            }
            Err(_) if group.len() > 1 => {
                for (ops, done) in group {
                    let result = apply(&pool, &ops.iter().collect::<Vec<_>>()).await;
                    let _ = done.send(result);
                }
            }
            Err(e) => {
                for (_, done) in group {
                    let _ = done.send(Err(Error::Physical(e.to_string())));
                }
            }
        }
    }
}

/// Rows per multi-row statement (two bound variables each; far below SQLite's variable limit).
const ROWS_PER_STATEMENT: usize = 256;

/// Apply `ops` in order inside one SQLite transaction. Only the last operation on a key matters
/// within a transaction, so the group is coalesced to one final state per key and written with a
/// few multi-row statements (a statement per operation cost a round trip to sqlx's connection
/// thread each; KV v2 writes to new secrets at 32 connections went 7.4k -> 9.6k req/s).
async fn apply(pool: &SqlitePool, ops: &[&StorageOp]) -> Result<(), Error> {
    let mut last: std::collections::BTreeMap<&str, Option<&[u8]>> = std::collections::BTreeMap::new();
    for op in ops {
        match op {
            StorageOp::Put(k, v) => last.insert(k.as_str(), Some(v.as_slice())),
            StorageOp::Delete(k) => last.insert(k.as_str(), None),
        };
    }
    let puts: Vec<(&str, &[u8])> = last.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
    let deletes: Vec<&str> = last.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
    let mut tx = pool.begin().await.map_err(Error::physical)?;
    for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("DELETE FROM tresor_kv WHERE key IN ({})", vec!["?"; chunk.len()].join(","));
        // Only placeholders are generated; every key is a bound parameter.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in chunk {
            q = q.bind(*k);
        }
        q.execute(&mut *tx).await.map_err(Error::physical)?;
    }
    for chunk in puts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO tresor_kv (key, value) VALUES {} ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vec!["(?,?)"; chunk.len()].join(",")
        );
        // Only placeholders are generated; every key and value is a bound parameter.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (k, v) in chunk {
            q = q.bind(*k).bind(*v);
        }
        q.execute(&mut *tx).await.map_err(Error::physical)?;
    }
    tx.commit().await.map_err(Error::physical)
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
        Ok(Self::with_writer(pool))
    }

    fn with_writer(pool: SqlitePool) -> Self {
        let (writes, rx) = tokio::sync::mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(writer(pool.clone(), rx));
        Self { pool, writes }
    }

    /// Queue a transaction for the writer and wait for its commit.
    async fn write(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.writes.send((ops, done)).await.map_err(|_| Error::Physical("storage writer stopped".into()))?;
        result.await.map_err(|_| Error::Physical("storage writer stopped".into()))?
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self, Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(Error::physical)?;
        Self::create_schema(&pool).await?;
        Ok(Self::with_writer(pool))
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
        self.write(vec![StorageOp::Put(key.to_string(), value.to_vec())]).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.write(vec![StorageOp::Delete(key.to_string())]).await
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

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let rows = sqlx::query("SELECT key, value FROM tresor_kv WHERE key >= ?1 AND key < ?2 ORDER BY key")
            .bind(prefix)
            .bind(upper_bound(prefix))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::physical)?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0).map_err(Error::physical)?, r.try_get::<Vec<u8>, _>(1).map_err(Error::physical)?)))
            .collect()
    }

    async fn transaction(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        self.write(ops).await
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
    async fn a_transaction_keeps_the_last_operation_on_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBackend::open(&dir.path().join("t.db")).await.unwrap();
        b.put("gone", b"x").await.unwrap();
        b.put("back", b"old").await.unwrap();
        let mut ops = vec![
            StorageOp::Put("a".into(), b"1".to_vec()),
            StorageOp::Put("a".into(), b"2".to_vec()),
            StorageOp::Put("tmp".into(), b"t".to_vec()),
            StorageOp::Delete("tmp".into()),
            StorageOp::Delete("gone".into()),
            StorageOp::Delete("back".into()),
            StorageOp::Put("back".into(), b"new".to_vec()),
        ];
        // More rows than one statement takes.
        ops.extend((0..600).map(|i| StorageOp::Put(format!("bulk/{i:04}"), vec![(i % 251) as u8])));
        b.transaction(ops).await.unwrap();
        assert_eq!(b.get("a").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(b.get("tmp").await.unwrap(), None);
        assert_eq!(b.get("gone").await.unwrap(), None);
        assert_eq!(b.get("back").await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(b.keys_with_prefix("bulk/").await.unwrap().len(), 600);
        assert_eq!(b.get("bulk/0599").await.unwrap(), Some(vec![(599 % 251) as u8]));
        b.transaction((0..600).map(|i| StorageOp::Delete(format!("bulk/{i:04}"))).collect()).await.unwrap();
        assert!(b.keys_with_prefix("bulk/").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_are_group_committed_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(SqliteBackend::open(&dir.path().join("t.db")).await.unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.transaction(vec![StorageOp::Put(format!("k/{i}"), vec![i as u8]), StorageOp::Put(format!("m/{i}"), vec![1])]).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(b.keys_with_prefix("k/").await.unwrap().len(), 64);
        assert_eq!(b.get("k/7").await.unwrap(), Some(vec![7]));
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
