//! The storage interface backends see. Keys are `/`-separated paths; `list` returns the next segment
//! under a prefix, folders with a trailing `/`, sorted, as Vault does.

use async_trait::async_trait;

/// A storage failure. Never carries the value that was being written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The physical backend failed (I/O, database).
    #[error("physical storage failed: {0}")]
    Physical(String),
    /// A stored value could not be decrypted or authenticated.
    #[error("failed to decrypt the value at {0:?}")]
    Decrypt(String),
    /// The barrier is sealed.
    #[error("the barrier is sealed")]
    Sealed,
    /// A key that this storage view may not address.
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
}

/// One write of an atomic batch.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageOp {
    /// Store the value at the key.
    Put(String, Vec<u8>),
    /// Remove the key.
    Delete(String),
}

impl StorageOp {
    /// The key the operation writes or deletes.
    pub fn key(&self) -> &str {
        match self {
            Self::Put(k, _) | Self::Delete(k) => k,
        }
    }
}

impl std::fmt::Debug for StorageOp {
    // Values may be secrets: only their size is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Put(k, v) => write!(f, "Put({k:?}, {} bytes)", v.len()),
            Self::Delete(k) => write!(f, "Delete({k:?})"),
        }
    }
}

/// Result of a storage operation.
pub type StorageResult<T> = Result<T, StorageError>;

/// The outcome of a queued transaction: resolves once it is durable (or has failed).
pub type Commit = std::pin::Pin<Box<dyn std::future::Future<Output = StorageResult<()>> + Send + 'static>>;

/// A transaction handed to [`Storage::submit`]: its place in the write queue and its outcome.
pub struct Submitted {
    /// Its position in the physical write queue (`None`: it was already applied when `submit`
    /// returned, so nothing can depend on it being pending).
    pub ticket: Option<u64>,
    /// Resolves when the transaction is durable or has failed.
    pub done: Commit,
}

impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted").field("ticket", &self.ticket).finish_non_exhaustive()
    }
}

/// Key/value storage as seen by the layer above: the barrier for the core, a prefix view for a mount.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Store `value` at `key`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8]) -> StorageResult<()>;
    /// Remove `key`; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> StorageResult<()>;
    /// The direct children of `prefix`: leaf names, and folder names ending in `/`, sorted.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>>;

    /// Apply all `ops` or none. The default applies them one by one (not atomic); the barrier and
    /// its views override it with one physical transaction.
    async fn transaction(&self, ops: Vec<StorageOp>) -> StorageResult<()> {
        for op in ops {
            match op {
                StorageOp::Put(k, v) => self.put(&k, &v).await?,
                StorageOp::Delete(k) => self.delete(&k).await?,
            }
        }
        Ok(())
    }

    /// Queue `ops` as one atomic transaction and return once it is queued, before it is durable:
    /// transactions are applied in the order their `submit` calls returned, so a caller that
    /// serialises its submissions can queue a write that builds on one still in flight.
    ///
    /// `after`: the ticket of the earliest in-flight transaction this one builds on. If any queued
    /// transaction from that ticket on fails, this one fails too without being applied, so nothing
    /// durable ever builds on a write that was lost.
    ///
    /// The default applies the transaction before returning (no pipelining, `ticket: None`).
    async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> StorageResult<Submitted> {
        let _ = after;
        self.transaction(ops).await?;
        Ok(Submitted { ticket: None, done: Box::pin(std::future::ready(Ok(()))) })
    }
}
