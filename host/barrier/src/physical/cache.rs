//! A read cache in front of a slow physical backend (SQLite), as Vault's physical LRU cache.
//!
//! It holds exactly what the backend holds — barrier ciphertext, never plaintext — so it adds nothing
//! to what a memory dump could reveal beyond the backend's own page cache. Writes go to the backend
//! first and then invalidate the key; a read that raced with a write never repopulates the cache
//! with what it read (a global write sequence number is checked under the lock), so the cache can be
//! behind only as a miss, never stale. One process owns the database (no HA yet), so no other writer
//! can change it behind the cache's back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Backend, StorageOp};
use crate::Error;

/// Default number of cached keys.
pub const DEFAULT_CACHE_ENTRIES: usize = 64 * 1024;

struct State {
    /// `None` caches "absent".
    entries: HashMap<String, Option<Arc<[u8]>>>,
    /// Bumped by every write; a miss only fills the cache if no write happened while it read.
    write_seq: u64,
}

/// A caching wrapper.
pub struct CachedBackend {
    inner: Arc<dyn Backend>,
    state: Arc<Mutex<State>>,
    max_entries: usize,
}

impl std::fmt::Debug for CachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBackend").field("inner", &self.inner).field("max_entries", &self.max_entries).finish()
    }
}

impl CachedBackend {
    /// Cache up to `max_entries` keys of `inner`.
    pub fn new(inner: Arc<dyn Backend>, max_entries: usize) -> Self {
        Self { inner, state: Arc::new(Mutex::new(State { entries: HashMap::new(), write_seq: 0 })), max_entries: max_entries.max(1) }
    }

    fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        invalidate(&self.state, keys);
    }
}

fn invalidate<'a>(state: &Mutex<State>, keys: impl IntoIterator<Item = &'a str>) {
    if let Ok(mut s) = state.lock() {
        s.write_seq = s.write_seq.wrapping_add(1);
        for k in keys {
            s.entries.remove(k);
        }
    }
}

fn keys_of(ops: &[StorageOp]) -> Vec<String> {
    ops.iter().map(|op| op.key().to_string()).collect()
}

#[async_trait]
impl Backend for CachedBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        // The guard never lives across an await: the lookup is finished before the backend is asked.
        let lookup: Option<Result<Option<Vec<u8>>, u64>> = self.state.lock().ok().map(|s| match s.entries.get(key) {
            Some(hit) => Ok(hit.as_ref().map(|v| v.to_vec())),
            None => Err(s.write_seq),
        });
        let seq = match lookup {
            Some(Ok(hit)) => return Ok(hit),
            Some(Err(seq)) => seq,
            None => return self.inner.get(key).await,
        };
        let value = self.inner.get(key).await?;
        if let Ok(mut s) = self.state.lock()
            && s.write_seq == seq {
                if s.entries.len() >= self.max_entries {
                    // Evict an arbitrary entry (HashMap order is randomised per process).
                    if let Some(victim) = s.entries.keys().next().cloned() {
                        s.entries.remove(&victim);
                    }
                }
                s.entries.insert(key.to_string(), value.as_deref().map(Arc::from));
            }
        Ok(value)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let result = self.inner.put(key, value).await;
        self.invalidate([key]);
        result
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let result = self.inner.delete(key).await;
        self.invalidate([key]);
        result
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.inner.keys_with_prefix(prefix).await
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.inner.scan_prefix(prefix).await
    }

    async fn transaction(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        let keys = keys_of(&ops);
        let result = self.inner.transaction(ops).await;
        self.invalidate(keys.iter().map(String::as_str));
        result
    }

    /// Invalidation follows the outcome, as for [`Backend::transaction`]: until then a read may
    /// still be served the value from before the write, which is not acknowledged yet either.
    async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> Result<(Option<u64>, super::Durable), Error> {
        let keys = keys_of(&ops);
        let (ticket, done) = match self.inner.submit(ops, after).await {
            Ok(queued) => queued,
            Err(e) => {
                self.invalidate(keys.iter().map(String::as_str));
                return Err(e);
            }
        };
        let state = self.state.clone();
        let done = async move {
            let result = done.await;
            invalidate(&state, keys.iter().map(String::as_str));
            result
        };
        Ok((ticket, Box::pin(done)))
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::InmemBackend;

    #[tokio::test]
    async fn passes_the_backend_conformance_suite() {
        let cached = CachedBackend::new(Arc::new(InmemBackend::new()), 3);
        crate::physical::tests::conformance(&cached).await;
    }

    #[tokio::test]
    async fn writes_are_visible_through_the_cache_and_eviction_bounds_it() {
        let inner: Arc<dyn Backend> = Arc::new(InmemBackend::new());
        let cached = CachedBackend::new(inner.clone(), 2);
        assert_eq!(cached.get("k").await.unwrap(), None);
        cached.put("k", b"1").await.unwrap();
        assert_eq!(cached.get("k").await.unwrap(), Some(b"1".to_vec()));
        cached.put("k", b"2").await.unwrap();
        assert_eq!(cached.get("k").await.unwrap(), Some(b"2".to_vec()));
        cached.transaction(vec![StorageOp::Delete("k".into())]).await.unwrap();
        assert_eq!(cached.get("k").await.unwrap(), None);
        for i in 0..10 {
            cached.get(&format!("x{i}")).await.unwrap();
        }
        assert!(cached.state.lock().unwrap().entries.len() <= 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reads_and_writes_never_leave_a_stale_entry() {
        let cached = Arc::new(CachedBackend::new(Arc::new(InmemBackend::new()), 1024));
        for round in 0..200u32 {
            let writer = {
                let c = cached.clone();
                tokio::spawn(async move { c.put("hot", &round.to_be_bytes()).await.unwrap() })
            };
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let c = cached.clone();
                    tokio::spawn(async move { c.get("hot").await.unwrap() })
                })
                .collect();
            writer.await.unwrap();
            for r in readers {
                r.await.unwrap();
            }
            assert_eq!(cached.get("hot").await.unwrap(), Some(round.to_be_bytes().to_vec()), "round {round}");
        }
    }
}
