//! The physical storage interface: an untrusted ordered key/value store. Values reaching it are
//! ciphertext (the barrier encrypts above it). Implementations: [`InmemBackend`] for dev mode and tests,
//! [`SqliteBackend`] for the embedded durable default.

mod cache;
mod inmem;
mod sqlite;

use async_trait::async_trait;

pub use cache::{CachedBackend, DEFAULT_CACHE_ENTRIES};
pub use inmem::InmemBackend;
pub use sqlite::SqliteBackend;

use crate::Error;

/// One operation of an atomic batch: the same type the logical layer batches with, so a batch
/// passes down the layers without conversion (the barrier only encrypts the values).
pub use tresor_logical::StorageOp;

/// The outcome of a queued physical transaction: resolves once it is durable (or has failed).
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'static>>;

/// A physical storage backend.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The value at `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Write `value` at `key`; durable when this returns.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    /// Delete `key` (missing keys are fine).
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// All keys starting with `prefix` (full keys, sorted).
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error>;
    /// Apply all operations or none.
    async fn transaction(&self, ops: Vec<StorageOp>) -> Result<(), Error>;
    /// A short name for `sys/seal-status`'s `storage_type`.
    fn kind(&self) -> &'static str;

    /// Queue `ops` as one transaction, applied after every transaction queued before this call
    /// returned; returns its ticket and a future for its outcome. With `after`, it fails unapplied
    /// if any transaction with a ticket from `after` on failed (see `tresor_logical::Storage::submit`).
    /// The default applies it before returning (ticket `None`).
    async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> Result<(Option<u64>, Durable), Error> {
        let _ = after;
        self.transaction(ops).await?;
        Ok((None, Box::pin(std::future::ready(Ok(())))))
    }

    /// Every `(key, value)` under `prefix`, sorted by key (restoring leases at unseal reads them all).
    /// The default reads key by key; backends override it with one scan.
    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        for key in self.keys_with_prefix(prefix).await? {
            if let Some(v) = self.get(&key).await? {
                out.push((key, v));
            }
        }
        Ok(out)
    }

    /// The direct children of `prefix`: leaf names and folder names with a trailing `/`, sorted and
    /// without duplicates (Vault's list semantics).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(children(prefix, self.keys_with_prefix(prefix).await?))
    }
}

/// Collapse full keys under `prefix` to their next path segment.
pub(crate) fn children(prefix: &str, keys: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else { continue };
        if rest.is_empty() {
            continue;
        }
        let child = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if out.last().map(String::as_str) != Some(child) {
            out.push(child.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_returns_next_segment_with_folders() {
        let keys = ["app/db", "app/x/y", "app/x/z", "app/web", "other"].map(String::from).to_vec();
        assert_eq!(children("app/", keys), vec!["db", "web", "x/"]);
    }

    /// A conformance suite every backend must pass.
    pub(crate) async fn conformance(backend: &dyn Backend) {
        assert_eq!(backend.get("a/b").await.ok().flatten(), None);
        backend.put("a/b", b"1").await.ok();
        backend.put("a/c/d", b"2").await.ok();
        backend.put("a/c/e", b"3").await.ok();
        backend.put("ab", b"4").await.ok();
        assert_eq!(backend.get("a/b").await.ok().flatten(), Some(b"1".to_vec()));
        backend.put("a/b", b"5").await.ok();
        assert_eq!(backend.get("a/b").await.ok().flatten(), Some(b"5".to_vec()));
        assert_eq!(backend.list("a/").await.ok(), Some(vec!["b".to_string(), "c/".to_string()]));
        assert_eq!(backend.list("").await.ok(), Some(vec!["a/".to_string(), "ab".to_string()]));
        assert_eq!(backend.list("zzz/").await.ok(), Some(vec![]));
        backend.delete("a/b").await.ok();
        backend.delete("never/there").await.ok();
        assert_eq!(backend.get("a/b").await.ok().flatten(), None);
        backend
            .transaction(vec![StorageOp::Put("t/1".into(), b"x".to_vec()), StorageOp::Delete("a/c/d".into())])
            .await
            .ok();
        assert_eq!(backend.get("t/1").await.ok().flatten(), Some(b"x".to_vec()));
        assert_eq!(backend.get("a/c/d").await.ok().flatten(), None);
        assert_eq!(
            backend.scan_prefix("a/").await.ok(),
            Some(vec![("a/c/e".to_string(), b"3".to_vec())]),
            "scan returns keys and values under the prefix only"
        );
    }
}
