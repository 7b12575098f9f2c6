//! Optimistic concurrency for plugin storage: every call runs in its own instance with its writes
//! staged, so two concurrent calls that read the same key and then write (KV v2's version counter,
//! Transit's key ring on rotation) would otherwise both commit and one update would be lost.
//!
//! Keys hash onto [`STRIPES`] stripes, each an atomic `version << 16 | pending writers`. A call
//! records the stripe word of every key it reads *before* reading it. At commit, under the mount's
//! commit lock, every recorded word must be unchanged and not pending; then the written stripes get
//! version + 1 and pending + 1, the lock is released, the storage transaction runs, and pending is
//! dropped. A call that fails validation is run again from scratch once the writers it collided with
//! have finished. Read-only calls pay one atomic load per key read; blind writes are not checked.
//! Stripes give false conflicts (a retry), never missed ones.

use std::sync::atomic::{AtomicU64, Ordering};

/// Number of stripes per mount.
const STRIPES: usize = 1024;
const PENDING_MASK: u64 = 0xffff;
const VERSION_ONE: u64 = 1 << 16;

/// Per-mount conflict detector (shared by every instance of the mount, across plugin reloads).
pub(crate) struct Conflicts {
    stripes: Box<[AtomicU64]>,
    /// Serialises validation + marking (not the storage write itself).
    commit: tokio::sync::Mutex<()>,
    /// Signalled whenever a writer finishes, so a conflicting call can retry.
    finished: tokio::sync::Notify,
}

impl std::fmt::Debug for Conflicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conflicts").finish_non_exhaustive()
    }
}

/// What a call saw: stripe index → word at first read.
pub(crate) type ReadSet = std::collections::HashMap<usize, u64>;

fn stripe_of(key: &str) -> usize {
    // FNV-1a: fast, stable, and collisions only cost a retry.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

/// Stripes marked by a successful validation; released (pending − 1) when dropped.
pub(crate) struct Marked<'a> {
    conflicts: &'a Conflicts,
    stripes: Vec<usize>,
}

impl Drop for Marked<'_> {
    fn drop(&mut self) {
        for &s in &self.stripes {
            self.conflicts.stripes[s].fetch_sub(1, Ordering::AcqRel);
        }
        self.conflicts.finished.notify_waiters();
    }
}

impl Conflicts {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            commit: tokio::sync::Mutex::new(()),
            finished: tokio::sync::Notify::new(),
        }
    }

    /// Record `key`'s stripe before reading it (first read wins).
    pub(crate) fn observe(&self, read_set: &mut ReadSet, key: &str) {
        let s = stripe_of(key);
        read_set.entry(s).or_insert_with(|| self.stripes[s].load(Ordering::Acquire));
    }

    /// Validate `read_set` and mark the stripes of `written`. `None`: a conflict, run the call again
    /// (after [`Conflicts::wait`]).
    pub(crate) async fn validate<K: AsRef<str>>(&self, read_set: &ReadSet, written: impl IntoIterator<Item = K>) -> Option<Marked<'_>> {
        let _lock = self.commit.lock().await;
        for (&s, &seen) in read_set {
            if seen & PENDING_MASK != 0 || self.stripes[s].load(Ordering::Acquire) != seen {
                return None;
            }
        }
        let mut stripes: Vec<usize> = written.into_iter().map(|k| stripe_of(k.as_ref())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        for &s in &stripes {
            self.stripes[s].fetch_add(VERSION_ONE + 1, Ordering::AcqRel);
        }
        Some(Marked { conflicts: self, stripes })
    }

    /// Wait until some writer finishes (or a short timeout: the writer may have finished already).
    pub(crate) async fn wait(&self) {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(5), self.finished.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_then_a_concurrent_write_conflicts() {
        let c = Conflicts::new();
        let (mut a, mut b) = (ReadSet::new(), ReadSet::new());
        c.observe(&mut a, "meta/app");
        c.observe(&mut b, "meta/app");
        let first = c.validate(&a, ["meta/app", "data/1/app"]).await;
        assert!(first.is_some());
        // The second reader saw the state before the first commit: it must run again.
        assert!(c.validate(&b, ["meta/app"]).await.is_none());
        drop(first);
        // Reading after the first writer finished is consistent.
        let mut b2 = ReadSet::new();
        c.observe(&mut b2, "meta/app");
        assert!(c.validate(&b2, ["meta/app"]).await.is_some());
    }

    #[tokio::test]
    async fn a_read_while_a_writer_is_pending_conflicts_and_unrelated_keys_do_not() {
        let c = Conflicts::new();
        let empty = ReadSet::new();
        let writing = c.validate(&empty, ["policy/k"]).await;
        let mut r = ReadSet::new();
        c.observe(&mut r, "policy/k");
        drop(writing);
        assert!(c.validate(&r, std::iter::empty::<&str>()).await.is_none(), "read during a pending write");
        // Disjoint keys (different stripes) never conflict.
        let mut x = ReadSet::new();
        c.observe(&mut x, "policy/a");
        let other = (0..100).map(|i| format!("policy/b{i}")).find(|k| stripe_of(k) != stripe_of("policy/a")).unwrap_or_default();
        assert!(c.validate(&ReadSet::new(), [other.as_str()]).await.is_some());
        assert!(c.validate(&x, std::iter::empty::<&str>()).await.is_some());
    }
}
