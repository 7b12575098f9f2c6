//! Optimistic concurrency for plugin storage, with pipelined commits.
//!
//! Every call runs in its own instance with its writes staged, so two concurrent calls that read
//! the same key and then write (KV v2's version counter, Transit's key ring on rotation) would
//! otherwise both commit and one update would be lost.
//!
//! Keys hash onto [`STRIPES`] stripes, each with a version. A call records the version of every
//! key's stripe it reads *before* reading it. At commit, under the mount's commit lock, every
//! recorded version must be unchanged; then the transaction is queued in storage, its values are
//! put in the mount's *overlay* and the written stripes' versions go up, all before the lock is
//! released. Reads look in the overlay first, so a call can build on a write that is queued but not
//! yet durable: it does not wait for that write's fsync, and many versions of one hot key share a
//! group commit (`Storage::submit`). What it read in the overlay are its *dependencies*:
//! - a writing call is queued `after` the earliest of them still in flight, so storage fails it
//!   unapplied if any of them fails; it is acknowledged only when durable, which is after them;
//! - a read-only call waits until they are durable before answering, and runs again if one failed.
//!
//! An overlay entry leaves when its write is durable (after the storage caches saw it), by a task of
//! its own, so a caller that goes away cannot strand it. A call that fails validation is run again
//! from scratch. Read-only calls pay one atomic load per key read and one lookup in an overlay that
//! is usually empty; blind writes are not checked. Stripes give false conflicts (a retry), never
//! missed ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tresor_logical::{Storage, StorageError, StorageOp, StorageResult};

/// Number of stripes per mount.
const STRIPES: usize = 1024;

/// Per-mount conflict detector and overlay (shared by every instance of the mount, across plugin
/// reloads).
pub(crate) struct Conflicts {
    versions: Box<[AtomicU64]>,
    /// Serialises validation, queueing and marking (not waiting for durability).
    commit: tokio::sync::Mutex<()>,
    /// Values of queued, not yet durable writes, by key: the latest queued write of each key.
    overlay: Mutex<HashMap<String, Queued>>,
    /// Entries in `overlay` (read without the lock: most reads find it empty).
    overlay_len: AtomicUsize,
}

impl std::fmt::Debug for Conflicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conflicts").finish_non_exhaustive()
    }
}

/// A value in the overlay and the write it belongs to.
#[derive(Clone)]
struct Queued {
    /// `None`: a delete.
    value: Option<Arc<[u8]>>,
    write: Arc<InFlight>,
}

/// A queued write's place in the storage queue and its outcome.
pub(crate) struct InFlight {
    ticket: Option<u64>,
    /// `None` while in flight; then whether it became durable.
    outcome: tokio::sync::watch::Sender<Option<bool>>,
}

impl InFlight {
    fn state(&self) -> Option<bool> {
        *self.outcome.borrow()
    }

    /// Wait until the write is durable (`true`) or has failed.
    async fn durable(&self) -> bool {
        let mut rx = self.outcome.subscribe();
        matches!(rx.wait_for(Option::is_some).await.map(|o| *o), Ok(Some(true)))
    }
}

/// What a call saw: stripe → version at its first read, and the in-flight writes it read from.
#[derive(Default)]
pub(crate) struct ReadSet {
    versions: HashMap<usize, u64>,
    deps: Vec<Arc<InFlight>>,
}

impl ReadSet {
    fn depend_on(&mut self, write: Arc<InFlight>) {
        if !self.deps.iter().any(|d| Arc::ptr_eq(d, &write)) {
            self.deps.push(write);
        }
    }

    /// For a call that wrote nothing: wait until what it read is durable. `false`: something it
    /// read was lost, run it again.
    pub(crate) async fn settle(&self) -> bool {
        for d in &self.deps {
            if !d.durable().await {
                return false;
            }
        }
        true
    }
}

fn stripe_of(key: &str) -> usize {
    // FNV-1a: fast, stable, and collisions only cost a retry.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

impl Conflicts {
    pub(crate) fn new() -> Self {
        Self {
            versions: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            commit: tokio::sync::Mutex::new(()),
            overlay: Mutex::new(HashMap::new()),
            overlay_len: AtomicUsize::new(0),
        }
    }

    /// Read `key` for a call: record its stripe's version first (first read wins), then the
    /// overlay, then `storage`.
    pub(crate) async fn read(&self, read_set: &mut ReadSet, storage: &dyn Storage, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let s = stripe_of(key);
        read_set.versions.entry(s).or_insert_with(|| self.versions[s].load(Ordering::Acquire));
        if self.overlay_len.load(Ordering::Acquire) > 0 {
            let queued = self.overlay.lock().ok().and_then(|o| o.get(key).cloned());
            if let Some(q) = queued {
                read_set.depend_on(q.write);
                return Ok(q.value.map(|v| v.to_vec()));
            }
        }
        storage.get(key).await
    }

    /// Validate `read_set` and, if nothing it read has been written since, queue `ops` in
    /// `storage` and wait until they are durable. `Ok(false)`: a conflict, nothing written, run the
    /// call again.
    pub(crate) async fn commit(self: &Arc<Self>, storage: &dyn Storage, read_set: ReadSet, ops: Vec<StorageOp>) -> StorageResult<bool> {
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        {
            let _lock = self.commit.lock().await;
            for (&s, &seen) in &read_set.versions {
                if self.versions[s].load(Ordering::Acquire) != seen {
                    return Ok(false);
                }
            }
            let mut after: Option<u64> = None;
            for d in &read_set.deps {
                match d.state() {
                    Some(true) => {}
                    Some(false) => return Ok(false),
                    None => {
                        if let Some(t) = d.ticket {
                            after = Some(after.map_or(t, |a| a.min(t)));
                        }
                    }
                }
            }
            let values: Vec<(String, Option<Arc<[u8]>>)> = ops
                .iter()
                .map(|op| match op {
                    StorageOp::Put(k, v) => (k.clone(), Some(Arc::from(v.as_slice()))),
                    StorageOp::Delete(k) => (k.clone(), None),
                })
                .collect();
            let mut stripes: Vec<usize> = ops.iter().map(|op| stripe_of(op.key())).collect();
            stripes.sort_unstable();
            stripes.dedup();
            // Queued: from here to the end of this block nothing awaits, so a caller dropped now
            // cannot leave the overlay or the versions behind the queue.
            let submitted = storage.submit(ops, after).await?;
            let write = Arc::new(InFlight { ticket: submitted.ticket, outcome: tokio::sync::watch::Sender::new(None) });
            let mut keys = Vec::with_capacity(values.len());
            if let Ok(mut overlay) = self.overlay.lock() {
                for (k, value) in values {
                    keys.push(k.clone());
                    overlay.insert(k, Queued { value, write: write.clone() });
                }
                self.overlay_len.store(overlay.len(), Ordering::Release);
            }
            for &s in &stripes {
                self.versions[s].fetch_add(1, Ordering::AcqRel);
            }
            let this = self.clone();
            let done = submitted.done;
            tokio::spawn(async move {
                let result = done.await;
                write.outcome.send_replace(Some(result.is_ok()));
                this.retire(&write, &keys);
                let _ = result_tx.send(result);
            });
        }
        match result_rx.await {
            Ok(result) => result.map(|()| true),
            Err(_) => Err(StorageError::Physical("storage write abandoned".into())),
        }
    }

    /// Take `write`'s entries out of the overlay (those a later write replaced stay).
    fn retire(&self, write: &Arc<InFlight>, keys: &[String]) {
        if let Ok(mut overlay) = self.overlay.lock() {
            for k in keys {
                if overlay.get(k).is_some_and(|q| Arc::ptr_eq(&q.write, write)) {
                    overlay.remove(k);
                }
            }
            self.overlay_len.store(overlay.len(), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use tresor_logical::Submitted;

    /// A queued transaction: ticket, `after`, operations, where its outcome goes.
    type Pending = (u64, Option<u64>, Vec<StorageOp>, tokio::sync::oneshot::Sender<StorageResult<()>>);

    /// A map whose queued transactions become durable only when the test says so, in order; a
    /// transaction fails (unapplied) if its value is `b"bad"` or if it was queued after one that failed.
    #[derive(Debug, Default)]
    struct Slow {
        map: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
        queue: Mutex<Vec<Pending>>,
        next: AtomicU64,
        failed: Mutex<Option<u64>>,
    }

    impl Slow {
        /// Apply (or fail) everything queued so far.
        fn flush(&self) {
            let queued = std::mem::take(&mut *self.queue.lock().unwrap());
            for (ticket, after, ops, done) in queued {
                let mut failed = self.failed.lock().unwrap();
                let bad = ops.iter().any(|op| matches!(op, StorageOp::Put(_, v) if v == b"bad"));
                if bad || matches!((after, *failed), (Some(a), Some(f)) if f >= a) {
                    *failed = Some(ticket);
                    let _ = done.send(Err(StorageError::Physical("failed".into())));
                    continue;
                }
                let mut map = self.map.lock().unwrap();
                for op in ops {
                    match op {
                        StorageOp::Put(k, v) => map.insert(k, v),
                        StorageOp::Delete(k) => map.remove(&k),
                    };
                }
                let _ = done.send(Ok(()));
            }
        }
    }

    #[async_trait]
    impl Storage for Slow {
        async fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
            Ok(self.map.lock().unwrap().get(key).cloned())
        }
        async fn put(&self, _: &str, _: &[u8]) -> StorageResult<()> {
            unreachable!("the runtime only submits")
        }
        async fn delete(&self, _: &str) -> StorageResult<()> {
            unreachable!("the runtime only submits")
        }
        async fn list(&self, _: &str) -> StorageResult<Vec<String>> {
            Ok(vec![])
        }
        async fn submit(&self, ops: Vec<StorageOp>, after: Option<u64>) -> StorageResult<Submitted> {
            let ticket = self.next.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.queue.lock().unwrap().push((ticket, after, ops, tx));
            Ok(Submitted { ticket: Some(ticket), done: Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Physical("gone".into()))) }) })
        }
    }

    fn put(k: &str, v: &[u8]) -> Vec<StorageOp> {
        vec![StorageOp::Put(k.into(), v.to_vec())]
    }

    async fn read(c: &Conflicts, s: &Slow, rs: &mut ReadSet, key: &str) -> Option<Vec<u8>> {
        c.read(rs, s, key).await.unwrap()
    }

    #[tokio::test]
    async fn a_read_then_a_concurrent_write_conflicts() {
        let (c, s) = (Arc::new(Conflicts::new()), Arc::new(Slow::default()));
        let (mut a, mut b) = (ReadSet::default(), ReadSet::default());
        read(&c, &s, &mut a, "meta/app").await;
        read(&c, &s, &mut b, "meta/app").await;
        let first = tokio::spawn({
            let (c, s) = (c.clone(), s.clone());
            async move { c.commit(&*s, a, put("meta/app", b"1")).await }
        });
        tokio::task::yield_now().await;
        // The second reader saw the state before the first commit: it must run again.
        while c.overlay_len.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!c.commit(&*s, b, put("meta/app", b"2")).await.unwrap());
        s.flush();
        assert!(first.await.unwrap().unwrap());
        assert_eq!(s.map.lock().unwrap().get("meta/app").unwrap(), b"1");
    }

    #[tokio::test]
    async fn a_writer_builds_on_a_queued_write_without_waiting_for_it() {
        let (c, s) = (Arc::new(Conflicts::new()), Arc::new(Slow::default()));
        let spawn_commit = |rs: ReadSet, v: &'static [u8]| {
            let (c, s) = (c.clone(), s.clone());
            tokio::spawn(async move { c.commit(&*s, rs, put("counter", v)).await })
        };
        let mut a = ReadSet::default();
        assert_eq!(read(&c, &s, &mut a, "counter").await, None);
        let first = spawn_commit(a, b"1");
        while c.overlay_len.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // Not durable yet, but the next writer reads it and queues behind it.
        let mut b = ReadSet::default();
        assert_eq!(read(&c, &s, &mut b, "counter").await.as_deref(), Some(&b"1"[..]));
        assert_eq!(b.deps.len(), 1);
        let second = spawn_commit(b, b"2");
        while s.queue.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(s.queue.lock().unwrap()[1].1, Some(0), "queued after the write it read");
        s.flush();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
        assert_eq!(s.map.lock().unwrap().get("counter").unwrap(), b"2");
        // Both durable: the overlay is empty again and reads go to storage.
        assert_eq!(c.overlay_len.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn what_builds_on_a_failed_write_fails_and_readers_run_again() {
        let (c, s) = (Arc::new(Conflicts::new()), Arc::new(Slow::default()));
        let mut a = ReadSet::default();
        read(&c, &s, &mut a, "k").await;
        let first = tokio::spawn({
            let (c, s) = (c.clone(), s.clone());
            async move { c.commit(&*s, a, put("k", b"bad")).await }
        });
        while c.overlay_len.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let mut writer = ReadSet::default();
        assert_eq!(read(&c, &s, &mut writer, "k").await.as_deref(), Some(&b"bad"[..]));
        let second = tokio::spawn({
            let (c, s) = (c.clone(), s.clone());
            async move { c.commit(&*s, writer, put("k", b"built-on-bad")).await }
        });
        let mut reader = ReadSet::default();
        read(&c, &s, &mut reader, "k").await;
        let settled = tokio::spawn(async move { reader.settle().await });
        while s.queue.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        s.flush();
        assert!(first.await.unwrap().is_err());
        assert!(second.await.unwrap().is_err(), "a write built on a lost write is not applied");
        assert!(!settled.await.unwrap(), "a reader of a lost write runs again");
        assert_eq!(s.map.lock().unwrap().get("k"), None);
        // A failed dependency seen at validation is a conflict (run again), not a queued failure.
        let mut late = ReadSet::default();
        late.deps.push(Arc::new(InFlight { ticket: Some(9), outcome: tokio::sync::watch::Sender::new(Some(false)) }));
        assert!(!c.commit(&*s, late, put("k", b"x")).await.unwrap());
    }

    #[tokio::test]
    async fn unrelated_keys_do_not_conflict() {
        let (c, s) = (Arc::new(Conflicts::new()), Arc::new(Slow::default()));
        let mut x = ReadSet::default();
        read(&c, &s, &mut x, "policy/a").await;
        let other = (0..100).map(|i| format!("policy/b{i}")).find(|k| stripe_of(k) != stripe_of("policy/a")).unwrap_or_default();
        let blind = tokio::spawn({
            let (c, s) = (c.clone(), s.clone());
            async move { c.commit(&*s, ReadSet::default(), put(&other, b"1")).await }
        });
        while s.queue.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let mine = tokio::spawn({
            let (c, s) = (c.clone(), s.clone());
            async move { c.commit(&*s, x, put("policy/a", b"2")).await }
        });
        while s.queue.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        s.flush();
        assert!(blind.await.unwrap().unwrap());
        assert!(mine.await.unwrap().unwrap());
    }
}
