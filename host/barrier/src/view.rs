//! A prefix-scoped view of a [`Storage`]: what one mount (or one host subsystem) is given.
//!
//! Every key is joined to the prefix, so no key can name anything outside it; keys that try to walk
//! out (`..` segments, a leading `/`) are refused anyway, so that a confused caller gets an error
//! instead of a silently different key.

use std::sync::Arc;

use async_trait::async_trait;
use tresor_logical::{Storage, StorageError, StorageOp, StorageResult, Submitted};

/// Storage restricted to keys under `prefix`.
#[derive(Debug, Clone)]
pub struct BarrierView {
    inner: Arc<dyn Storage>,
    prefix: String,
}

impl BarrierView {
    /// A view of `inner` under `prefix` (which should end with `/`).
    pub fn new(inner: Arc<dyn Storage>, prefix: impl Into<String>) -> Self {
        Self { inner, prefix: prefix.into() }
    }

    /// A view nested inside this one.
    pub fn sub_view(&self, prefix: &str) -> Self {
        Self { inner: self.inner.clone(), prefix: format!("{}{prefix}", self.prefix) }
    }

    /// The prefix of this view.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, key: &str) -> StorageResult<String> {
        let escapes = key.starts_with('/') || key.split('/').any(|seg| seg == "..") || key.contains('\0');
        if escapes {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        Ok(format!("{}{key}", self.prefix))
    }

    /// Delete every key under this view (used when a mount is disabled).
    pub async fn clear(&self) -> StorageResult<()> {
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for child in self.list(&dir).await? {
                let key = format!("{dir}{child}");
                if child.ends_with('/') {
                    stack.push(key);
                } else {
                    self.delete(&key).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for BarrierView {
    async fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        self.inner.get(&self.full(key)?).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> StorageResult<()> {
        self.inner.put(&self.full(key)?, value).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.inner.delete(&self.full(key)?).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.inner.list(&self.full(prefix)?).await
    }

    async fn transaction(&self, ops: Vec<StorageOp>) -> StorageResult<()> {
        self.inner.transaction(self.full_ops(ops)?).await
    }

    async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> StorageResult<Submitted> {
        self.inner.submit(self.full_ops(ops)?, after).await
    }
}

impl BarrierView {
    fn full_ops(&self, ops: Vec<StorageOp>) -> StorageResult<Vec<StorageOp>> {
        ops.into_iter()
            .map(|op| match op {
                StorageOp::Put(k, v) => Ok(StorageOp::Put(self.full(&k)?, v)),
                StorageOp::Delete(k) => Ok(StorageOp::Delete(self.full(&k)?)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::InmemBackend;
    use crate::Barrier;

    async fn barrier() -> Arc<Barrier> {
        let b = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
        b.initialize(&[1u8; 32]).await.unwrap();
        b.unseal(&[1u8; 32]).await.unwrap();
        b
    }

    #[tokio::test]
    async fn a_view_cannot_reach_outside_its_prefix() {
        let b = barrier().await;
        b.put("logical/other/secret", b"theirs").await.unwrap();
        let view = BarrierView::new(b.clone(), "logical/mine/");
        for key in ["../other/secret", "/logical/other/secret", "a/../../other/secret", "x\0y"] {
            assert!(matches!(view.get(key).await, Err(StorageError::InvalidKey(_))), "{key}");
            assert!(view.put(key, b"x").await.is_err(), "{key}");
        }
        // Keys that merely look like other paths stay inside the prefix.
        assert_eq!(view.get("logical/other/secret").await.unwrap(), None);
        view.put("k", b"mine").await.unwrap();
        assert_eq!(b.get("logical/mine/k").await.unwrap().unwrap(), b"mine");
        assert_eq!(view.list("").await.unwrap(), vec!["k"]);
    }

    #[tokio::test]
    async fn a_transaction_is_scoped_encrypted_and_complete() {
        let b = barrier().await;
        let view = BarrierView::new(b.clone(), "logical/t/");
        view.put("gone", b"x").await.unwrap();
        let ops = vec![
            StorageOp::Put("a".into(), b"1".to_vec()),
            StorageOp::Put("d/b".into(), b"2".to_vec()),
            StorageOp::Delete("gone".into()),
        ];
        view.transaction(ops).await.unwrap();
        assert_eq!(b.get("logical/t/a").await.unwrap().unwrap(), b"1");
        assert_eq!(view.get("d/b").await.unwrap().unwrap(), b"2");
        assert_eq!(view.get("gone").await.unwrap(), None);
        // A bad key anywhere in the batch rejects the whole batch.
        let bad = vec![
            StorageOp::Put("ok".into(), b"1".to_vec()),
            StorageOp::Put("../escape".into(), b"2".to_vec()),
        ];
        assert!(view.transaction(bad).await.is_err());
        assert_eq!(view.get("ok").await.unwrap(), None);
    }

    #[tokio::test]
    async fn clear_removes_only_the_view() {
        let b = barrier().await;
        b.put("keep/x", b"1").await.unwrap();
        let view = BarrierView::new(b.clone(), "gone/");
        view.put("a", b"1").await.unwrap();
        view.put("d/e/f", b"1").await.unwrap();
        view.clear().await.unwrap();
        assert!(view.list("").await.unwrap().is_empty());
        assert_eq!(b.get("keep/x").await.unwrap().unwrap(), b"1");
    }
}
