//! The expiration manager: every lease a backend hands out is recorded here, persisted in the barrier,
//! and revoked on schedule by calling the issuing backend's `revoke_secret`.
//!
//! Storage: one entry per lease at `sys/expire/id/<lease id>` (the id contains the request path, so
//! `LIST sys/leases/lookup/<prefix>` is a prefix listing). Memory: only an index — id → due time and
//! creator — so 100,000 live leases cost a few tens of MiB, and restore at unseal is one storage scan.
//!
//! Failure policy: a revocation that fails is kept, retried with exponential backoff, and after
//! [`MAX_REVOKE_ATTEMPTS`] marked irrevocable: it stays in storage, is logged, and `sys/leases/lookup`
//! shows the error until an operator revokes it (or `revoke-force`s it). Nothing is dropped silently.
//!
//! Time comes from the injected [`Clock`], so tests move time by hand instead of sleeping.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_barrier::BarrierView;
use tresor_logical::{Error, LeaseSecret, Map, Response, Storage};

use crate::core::Core;
use crate::router::{Handler, MountEntry};
use crate::util::{field, random_base62, rfc3339_nanos};

/// Storage prefix of lease entries (under the barrier).
pub(crate) const LEASE_PREFIX: &str = "sys/expire/id/";
/// Revocation attempts before a lease is reported irrevocable.
pub(crate) const MAX_REVOKE_ATTEMPTS: u32 = 6;
/// Concurrent revocations when many leases fall due at once.
const REVOKE_CONCURRENCY: usize = 32;
/// Longest message kept from a failed revocation.
const MAX_ERROR_LEN: usize = 512;

/// Wall-clock time in Unix milliseconds. Injected so the expiration manager can be tested without
/// sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Whether the background timer should follow this clock. A manual clock is driven by its test,
    /// which calls the expiry pass itself.
    fn runs_timer(&self) -> bool {
        true
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(crate::util::now_unix_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock moved by hand (tests).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(now_ms))
    }

    /// Move the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn runs_timer(&self) -> bool {
        false
    }
}

/// One lease as persisted.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LeaseEntry {
    pub id: String,
    /// The request path that created it.
    pub path: String,
    /// What the backend gets back on renew/revoke (`ttl` is the currently granted TTL).
    pub secret: LeaseSecret,
    /// Storage hash of the token that created it (empty: none).
    pub token: String,
    pub issue_ms: i64,
    pub expire_ms: i64,
    /// Issue time plus the effective max TTL: no renewal goes past it.
    pub max_expire_ms: i64,
    pub last_renewal_ms: Option<i64>,
    #[serde(default)]
    pub revoke_attempts: u32,
    #[serde(default)]
    pub revoke_error: String,
    #[serde(default)]
    pub irrevocable: bool,
}

impl std::fmt::Debug for LeaseEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseEntry").field("id", &self.id).field("expire_ms", &self.expire_ms).finish_non_exhaustive()
    }
}

impl LeaseEntry {
    /// When the expiration manager should next act on this lease.
    fn due(&self, now: i64) -> Option<i64> {
        if self.irrevocable {
            None
        } else if self.revoke_attempts > 0 {
            Some(self.expire_ms.max(now))
        } else {
            Some(self.expire_ms)
        }
    }
}

#[derive(Debug)]
struct Slot {
    due: Option<i64>,
    token: Option<Arc<str>>,
}

/// The in-memory index.
#[derive(Debug, Default)]
struct Index {
    by_id: BTreeMap<Arc<str>, Slot>,
    timers: BTreeSet<(i64, Arc<str>)>,
    by_token: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Leases whose revocation is running (never two at once for one lease).
    in_flight: HashSet<Arc<str>>,
}

impl Index {
    fn upsert(&mut self, id: &str, due: Option<i64>, token: &str) {
        self.remove(id);
        let id: Arc<str> = Arc::from(id);
        let token: Option<Arc<str>> = (!token.is_empty()).then(|| Arc::from(token));
        if let Some(t) = &token {
            self.by_token.entry(t.clone()).or_default().insert(id.clone());
        }
        if let Some(d) = due {
            self.timers.insert((d, id.clone()));
        }
        self.by_id.insert(id, Slot { due, token });
    }

    fn remove(&mut self, id: &str) {
        let Some((key, slot)) = self.by_id.remove_entry(id) else { return };
        if let Some(d) = slot.due {
            self.timers.remove(&(d, key.clone()));
        }
        if let Some(t) = slot.token
            && let Some(set) = self.by_token.get_mut(&t)
        {
            set.remove(&key);
            if set.is_empty() {
                self.by_token.remove(&t);
            }
        }
    }

    /// Move a lease's timer; `false` if the index does not hold the lease.
    fn reschedule(&mut self, id: &str, due: Option<i64>) -> bool {
        let Some((key, slot)) = self.by_id.get_key_value(id) else { return false };
        let key = key.clone();
        if let Some(d) = slot.due {
            self.timers.remove(&(d, key.clone()));
        }
        if let Some(d) = due {
            self.timers.insert((d, key.clone()));
        }
        if let Some(slot) = self.by_id.get_mut(id) {
            slot.due = due;
        }
        true
    }
}

/// The lease store: persisted entries plus the index.
#[derive(Debug)]
pub(crate) struct Leases {
    view: BarrierView,
    index: Mutex<Index>,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Leases {
    pub(crate) fn new(view: BarrierView, clock: Arc<dyn Clock>) -> Self {
        Self { view, index: Mutex::new(Index::default()), wake: tokio::sync::Notify::new(), clock }
    }

    fn index(&self) -> Result<MutexGuard<'_, Index>, Error> {
        self.index.lock().map_err(|_| Error::Internal("lease index lock poisoned".into()))
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn load(&self, id: &str) -> Result<Option<LeaseEntry>, Error> {
        match self.view.get(id).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| Error::Internal(format!("corrupt lease entry: {e}"))),
        }
    }

    async fn persist(&self, entry: &LeaseEntry) -> Result<(), Error> {
        let raw = serde_json::to_vec(entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.view.put(&entry.id, &raw).await?;
        Ok(())
    }

    /// Store a new or changed lease and (re)arm its timer.
    async fn save(&self, entry: &LeaseEntry) -> Result<(), Error> {
        self.persist(entry).await?;
        let due = entry.due(self.now());
        let earlier = {
            let mut index = self.index()?;
            let first = index.timers.first().map(|(t, _)| *t);
            index.upsert(&entry.id, due, &entry.token);
            due.is_some_and(|d| first.is_none_or(|f| d < f))
        };
        // The timer only needs waking when this lease is now the first due.
        if earlier {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn forget(&self, id: &str) -> Result<(), Error> {
        self.view.delete(id).await?;
        self.index()?.remove(id);
        Ok(())
    }

    /// Claim one lease for revocation; false if another revocation of it is running.
    fn claim(&self, id: &str) -> Result<bool, Error> {
        Ok(self.index()?.in_flight.insert(Arc::from(id)))
    }

    fn release(&self, id: &str) {
        if let Ok(mut index) = self.index() {
            index.in_flight.remove(id);
        }
    }

    /// Pop and claim every lease due at `now`.
    fn claim_due(&self, now: i64) -> Result<Vec<Arc<str>>, Error> {
        let mut index = self.index()?;
        let mut due = Vec::new();
        while let Some((t, id)) = index.timers.first().cloned() {
            if t > now {
                break;
            }
            index.timers.remove(&(t, id.clone()));
            if let Some(slot) = index.by_id.get_mut(&id) {
                slot.due = None;
            }
            if index.in_flight.insert(id.clone()) {
                due.push(id);
            }
        }
        Ok(due)
    }

    /// The earliest due time.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.index().ok().and_then(|i| i.timers.first().map(|(t, _)| *t))
    }

    /// Ids of all leases under `prefix`, in order.
    fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let index = self.index()?;
        Ok(index
            .by_id
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(id, _)| id.to_string())
            .collect())
    }

    /// Ids of the leases created by any of these tokens.
    fn ids_of_tokens(&self, hashes: &[String]) -> Result<Vec<String>, Error> {
        let index = self.index()?;
        Ok(hashes.iter().filter_map(|h| index.by_token.get(h.as_str())).flatten().map(|id| id.to_string()).collect())
    }

    /// Number of live leases.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.index().map(|i| i.by_id.len()).unwrap_or(0)
    }

    /// Drop the index (seal).
    pub(crate) fn teardown(&self) {
        if let Ok(mut index) = self.index() {
            *index = Index::default();
        }
    }
}

/// Vault's warning when the effective maximum cuts a proposed `what` (`TTL` or `period`):
/// `TTL of "768h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly`.
pub(crate) fn capped_warning(what: &str, proposed: u64, cap: u64) -> String {
    format!("{what} of {:?} exceeded the effective max_ttl of {:?}; {what} value is capped accordingly", short_duration(proposed), short_duration(cap))
}

/// A Go-like short duration for warnings (`24h`, `90m`, `45s`).
pub(crate) fn short_duration(secs: u64) -> String {
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Seconds as milliseconds, saturating (a TTL never overflows a due time).
fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).map_or(i64::MAX, |s| s.saturating_mul(1000))
}

fn ms_to_nanos(ms: i64) -> i128 {
    i128::from(ms) * 1_000_000
}

fn secs_left(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0) / 1000).unwrap_or(0)
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn backoff_ms(attempt: u32) -> i64 {
    1000_i64.saturating_mul(1_i64 << attempt.saturating_sub(1).min(6)).min(60_000)
}

/// A token's lease id, as Vault shapes it: the path it was created at, then `h` + its storage hash.
pub(crate) fn token_lease_id(e: &crate::token::TokenEntry) -> String {
    format!("{}/h{}", e.path.trim_end_matches('/'), e.id_hash)
}

impl Core {
    /// The token behind a token lease id (`auth/.../h<hash>`), if it is one and still valid.
    async fn token_of_lease(&self, id: &str) -> Result<Option<crate::token::TokenEntry>, Error> {
        if !id.starts_with("auth/") {
            return Ok(None);
        }
        let Some(hash) = id.rsplit('/').next().and_then(|l| l.strip_prefix('h')) else { return Ok(None) };
        if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(self.tokens.lookup_hash(hash).await?.filter(|e| e.expire_time > 0 && token_lease_id(e) == id))
    }

    /// The lease `id` as read and shown by the API.
    fn mount_of_lease(&self, id: &str) -> Option<Arc<MountEntry>> {
        let router = self.router.read().ok()?;
        router.route(id).map(|(m, _)| m)
    }

    /// Register the lease a backend asked for with its response and fill the envelope's lease fields.
    /// TTLs are clamped to the mount's (or the system's) default and maximum.
    pub(crate) async fn register_lease(&self, mount: &MountEntry, request_path: &str, token: &crate::token::TokenEntry, secret: LeaseSecret, response: &mut Response) -> Result<(), Error> {
        let default = if mount.default_lease_ttl > 0 { mount.default_lease_ttl } else { self.config.default_lease_ttl };
        let mut max = if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { self.config.max_lease_ttl };
        if secret.max_ttl > 0 {
            max = max.min(secret.max_ttl);
        }
        // As Vault: a batch token's leases belong to its parent (none for an orphan) and end no
        // later than the batch token does.
        let owner = if token.batch { token.parent.clone().unwrap_or_default() } else { token.id_hash.clone() };
        if token.batch && token.expire_time > 0 {
            max = max.min(token.remaining(crate::util::now_unix()).max(1));
        }
        let ttl = if secret.ttl > 0 { secret.ttl.min(max) } else { default.min(max) };
        let now = self.leases.now();
        let id = format!("{}/{}", request_path.trim_end_matches('/'), random_base62(24));
        let entry = LeaseEntry {
            id: id.clone(),
            path: request_path.to_string(),
            secret: LeaseSecret { ttl, max_ttl: max, ..secret },
            token: owner,
            issue_ms: now,
            expire_ms: now.saturating_add(secs_to_ms(ttl)),
            max_expire_ms: now.saturating_add(secs_to_ms(max)),
            last_renewal_ms: None,
            revoke_attempts: 0,
            revoke_error: String::new(),
            irrevocable: false,
        };
        self.leases.save(&entry).await?;
        response.lease_id = id;
        response.lease_duration = ttl;
        response.renewable = entry.secret.renewable;
        Ok(())
    }

    /// `sys/leases/lookup`.
    pub(crate) async fn lease_lookup(&self, id: &str) -> Result<Response, Error> {
        let Some(entry) = self.leases.load(id).await? else {
            let token = self.token_of_lease(id).await?.ok_or_else(|| Error::invalid("invalid lease"))?;
            let mut data = Map::new();
            data.insert("id".into(), json!(id));
            data.insert("issue_time".into(), json!(crate::util::rfc3339(token.creation_time)));
            data.insert("expire_time".into(), json!(crate::util::rfc3339(token.expire_time)));
            data.insert("last_renewal".into(), Value::Null);
            data.insert("path".into(), json!(lease_path(id)));
            data.insert("renewable".into(), json!(token.renewable));
            data.insert("ttl".into(), json!(token.remaining(crate::util::now_unix())));
            return Ok(Response::with_data(data));
        };
        let now = self.leases.now();
        let mut data = Map::new();
        data.insert("id".into(), json!(entry.id));
        data.insert("issue_time".into(), json!(rfc3339_nanos(ms_to_nanos(entry.issue_ms))));
        data.insert("expire_time".into(), json!(rfc3339_nanos(ms_to_nanos(entry.expire_ms))));
        data.insert("last_renewal".into(), entry.last_renewal_ms.map_or(Value::Null, |t| json!(rfc3339_nanos(ms_to_nanos(t)))));
        data.insert("path".into(), json!(lease_path(&entry.id)));
        data.insert("renewable".into(), json!(entry.secret.renewable));
        data.insert("ttl".into(), json!(secs_left(entry.expire_ms, now)));
        if entry.revoke_attempts > 0 {
            data.insert("revoke_attempts".into(), json!(entry.revoke_attempts));
            data.insert("revoke_error".into(), json!(entry.revoke_error));
            data.insert("irrevocable".into(), json!(entry.irrevocable));
        }
        Ok(Response::with_data(data))
    }

    /// `LIST sys/leases/lookup/<prefix>`: the next path segments of live lease ids under `prefix`.
    pub(crate) async fn lease_list(&self, prefix: &str) -> Result<Response, Error> {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let mut ids = self.leases.ids_with_prefix(&prefix)?;
        if prefix.is_empty() || prefix.starts_with("auth/") {
            ids.extend(self.tokens.expiring_under(&prefix).await?.iter().map(token_lease_id));
            ids.sort();
        }
        let mut keys: Vec<String> = ids
            .iter()
            .map(|id| {
                let rest = &id[prefix.len()..];
                match rest.find('/') {
                    Some(i) => rest[..=i].to_string(),
                    None => rest.to_string(),
                }
            })
            .collect();
        keys.dedup();
        if keys.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(Response::list(keys))
    }

    /// `sys/leases/renew`: ask the backend, then cap at the lease's max TTL (with Vault's warning).
    pub(crate) async fn lease_renew(&self, id: &str, increment: Option<u64>) -> Result<Response, Error> {
        let Some(mut entry) = self.leases.load(id).await? else {
            // A token's lease is renewed through `auth/token/renew*`, as in Vault.
            self.token_of_lease(id).await?.ok_or_else(|| Error::invalid("lease not found"))?;
            return Err(Error::invalid("tokens cannot be renewed through this endpoint"));
        };
        if !entry.secret.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        let now = self.leases.now();
        if entry.expire_ms <= now {
            return Err(Error::invalid("lease expired"));
        }
        let mount = self.mount_of_lease(id).ok_or_else(|| Error::invalid("lease not found"))?;
        let Handler::Plugin(backend) = &mount.handler else { return Err(Error::invalid("lease is not renewable")) };
        let requested = increment.filter(|i| *i > 0).unwrap_or(entry.secret.ttl);
        let left = secs_left(entry.max_expire_ms, now);
        // The backend is told the TTL the lease will really get (a database sets VALID UNTIL to it).
        let asked = LeaseSecret { ttl: requested.min(left), ..entry.secret.clone() };
        let granted = match backend.renew_secret(&asked).await {
            Ok(g) => g,
            Err(Error::UnsupportedOperation) => return Err(Error::invalid("lease is not renewable")),
            Err(e) => return Err(e),
        };
        let mut ttl = if granted.ttl > 0 { granted.ttl } else { requested };
        let mut response = Response::default();
        if requested > left || ttl > left {
            ttl = ttl.max(requested);
            response.warnings.push(capped_warning("TTL", ttl, entry.secret.max_ttl));
            ttl = left;
        }
        entry.secret.ttl = ttl;
        entry.secret.renewable = granted.renewable || entry.secret.renewable;
        entry.expire_ms = now.saturating_add(secs_to_ms(ttl));
        entry.last_renewal_ms = Some(now);
        self.leases.save(&entry).await?;
        response.lease_id = entry.id;
        response.lease_duration = ttl;
        response.renewable = entry.secret.renewable;
        Ok(response)
    }

    /// Revoke one lease now: call the backend, then forget the lease. On failure the lease is kept
    /// and retried with backoff (or forgotten anyway with `force`).
    pub(crate) async fn lease_revoke(&self, id: &str, force: bool) -> Result<(), Error> {
        if !self.leases.claim(id)? {
            // Another revocation of this lease is running; it owns the outcome.
            return Ok(());
        }
        let result = self.revoke_claimed(id, force).await;
        self.leases.release(id);
        result
    }

    async fn revoke_claimed(&self, id: &str, force: bool) -> Result<(), Error> {
        let Some(mut entry) = self.leases.load(id).await? else {
            self.leases.index()?.remove(id);
            if let Some(token) = self.token_of_lease(id).await? {
                // Boxed: revoking a token revokes its leases, which lands here again.
                Box::pin(self.revoke_token_tree(&token.id_hash)).await?;
            }
            return Ok(());
        };
        let outcome = match self.mount_of_lease(id) {
            Some(mount) => match &mount.handler {
                Handler::Plugin(backend) => backend.revoke_secret(&entry.secret).await,
                Handler::Unavailable(why) => Err(Error::Unavailable(why.clone())),
                _ => Ok(()),
            },
            None => Err(Error::Internal(format!("no mount serves lease {id}"))),
        };
        match outcome {
            Ok(()) => self.leases.forget(id).await,
            Err(e) if force => {
                tracing::warn!(lease = %id, error = %e, "revocation failed; lease removed because revocation was forced");
                self.leases.forget(id).await
            }
            Err(e) => {
                let now = self.leases.now();
                entry.revoke_attempts += 1;
                entry.revoke_error = bounded(e.to_string());
                if entry.revoke_attempts >= MAX_REVOKE_ATTEMPTS {
                    entry.irrevocable = true;
                    tracing::error!(lease = %id, attempts = entry.revoke_attempts, error = %entry.revoke_error, "lease could not be revoked; kept as irrevocable until an operator acts");
                } else {
                    tracing::warn!(lease = %id, attempts = entry.revoke_attempts, error = %entry.revoke_error, "lease revocation failed; will retry");
                }
                self.leases.persist(&entry).await?;
                let due = (!entry.irrevocable).then(|| now.saturating_add(backoff_ms(entry.revoke_attempts)));
                let _ = self.leases.index()?.reschedule(id, due);
                self.leases.wake.notify_one();
                Err(Error::invalid(format!("failed to revoke lease {id}: {}", entry.revoke_error)))
            }
        }
    }

    /// Revoke every lease under `prefix` (a mount, a role...). Errors are collected; with `force` the
    /// leases are forgotten even when the backend fails.
    pub(crate) async fn lease_revoke_prefix(&self, prefix: &str, force: bool) -> Result<usize, Error> {
        // As Vault: a prefix is a path, so `p1` never reaches `p1x/`.
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let prefix = prefix.as_str();
        let mut ids = self.leases.ids_with_prefix(prefix)?;
        if prefix.is_empty() || prefix.starts_with("auth/") {
            ids.extend(self.tokens.expiring_under(prefix).await?.iter().map(token_lease_id));
        }
        let mut failed = 0usize;
        for id in &ids {
            if self.lease_revoke(id, force).await.is_err() {
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(Error::invalid(format!("failed to revoke {failed} of {} leases under {prefix:?}; they will be retried", ids.len())));
        }
        Ok(ids.len())
    }

    /// Revoke the leases created by these (just revoked) tokens. Failures stay scheduled for retry.
    pub(crate) async fn revoke_token_leases(&self, hashes: &[String]) -> Result<(), Error> {
        for id in self.leases.ids_of_tokens(hashes)? {
            if let Err(e) = self.lease_revoke(&id, false).await {
                tracing::warn!(lease = %id, error = %e, "revoking a revoked token's lease failed; retrying later");
            }
        }
        Ok(())
    }

    /// Revoke everything that is due now. Returns how many leases were attempted.
    pub(crate) async fn expire_due_leases(self: &Arc<Self>) -> Result<usize, Error> {
        if self.is_sealed() {
            return Ok(0);
        }
        let due = self.leases.claim_due(self.leases.now())?;
        let n = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        for id in due {
            while tasks.len() >= REVOKE_CONCURRENCY {
                tasks.join_next().await;
            }
            let core = self.clone();
            tasks.spawn(async move {
                if let Err(e) = core.revoke_claimed(&id, false).await {
                    tracing::debug!(lease = %id, error = %e, "expired lease not revoked yet");
                }
                core.leases.release(&id);
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }

    /// Rebuild the index from storage after unseal. One scan; expired leases fall due at once.
    pub(crate) async fn restore_leases(&self) -> Result<usize, Error> {
        let started = std::time::Instant::now();
        let rows = self.barrier.scan_values(LEASE_PREFIX).await.map_err(|e| Error::Internal(e.to_string()))?;
        let now = self.leases.now();
        let mut restored = 0usize;
        {
            let mut index = self.leases.index()?;
            *index = Index::default();
            for (key, raw) in rows {
                match serde_json::from_slice::<LeaseEntry>(&raw) {
                    Ok(entry) => {
                        index.upsert(&entry.id, entry.due(now), &entry.token);
                        restored += 1;
                    }
                    Err(e) => tracing::error!(key = %key, error = %e, "unreadable lease entry left in storage"),
                }
            }
        }
        self.leases.wake.notify_one();
        tracing::info!(leases = restored, elapsed_ms = started.elapsed().as_millis() as u64, "leases restored");
        Ok(restored)
    }

    /// `sys/leases/tidy`: drop index entries whose storage entry is gone and re-arm stored leases the
    /// index lost.
    pub(crate) async fn lease_tidy(&self) -> Result<(), Error> {
        let stored: BTreeSet<String> = self.barrier.physical().keys_with_prefix(LEASE_PREFIX).await.map_err(|e| Error::Internal(e.to_string()))?.into_iter().map(|k| k[LEASE_PREFIX.len()..].to_string()).collect();
        let indexed: BTreeSet<String> = self.leases.ids_with_prefix("")?.into_iter().collect();
        for gone in indexed.difference(&stored) {
            self.leases.index()?.remove(gone);
        }
        let now = self.leases.now();
        for missing in stored.difference(&indexed) {
            if let Some(entry) = self.leases.load(missing).await? {
                self.leases.index()?.upsert(&entry.id, entry.due(now), &entry.token);
            }
        }
        self.leases.wake.notify_one();
        Ok(())
    }

    /// The `sys/leases/*` family (and the legacy `sys/renew`, `sys/revoke*`). `path` is relative to
    /// `sys/`, untrimmed. `None`: not a lease path.
    pub(crate) async fn handle_lease_path(&self, path: &str, op: tresor_logical::Operation, data: &Map) -> Option<Result<Option<Response>, Error>> {
        let action = if let Some(prefix) = strip_any(path, &["leases/lookup"]) {
            LeaseAction::Lookup(prefix)
        } else if let Some(id) = strip_any(path, &["leases/renew", "renew"]) {
            LeaseAction::Renew(id)
        } else if let Some(prefix) = strip_any(path, &["leases/revoke-prefix", "revoke-prefix"]) {
            LeaseAction::RevokePrefix(prefix, false)
        } else if let Some(prefix) = strip_any(path, &["leases/revoke-force", "revoke-force"]) {
            LeaseAction::RevokePrefix(prefix, true)
        } else if let Some(id) = strip_any(path, &["leases/revoke", "revoke"]) {
            LeaseAction::Revoke(id)
        } else if path == "leases/tidy" {
            LeaseAction::Tidy
        } else {
            return None;
        };
        Some(self.lease_action(action, op, data).await)
    }

    async fn lease_action(&self, action: LeaseAction<'_>, op: tresor_logical::Operation, data: &Map) -> Result<Option<Response>, Error> {
        use tresor_logical::Operation::{Create, List, Update};
        if let LeaseAction::Lookup(prefix) = action
            && op == List
        {
            return self.lease_list(prefix).await.map(Some);
        }
        if !matches!(op, Update | Create) {
            return Err(Error::UnsupportedOperation);
        }
        // The lease id from the path, else from the body.
        let lease_id = |suffix: &str| -> Result<String, Error> {
            let id = if suffix.is_empty() { field::str(data, "lease_id")?.unwrap_or("") } else { suffix };
            if id.is_empty() {
                return Err(Error::invalid("lease_id must be specified"));
            }
            Ok(id.to_string())
        };
        match action {
            LeaseAction::Lookup("") => self.lease_lookup(&lease_id("")?).await.map(Some),
            LeaseAction::Lookup(_) => Err(Error::UnsupportedOperation),
            LeaseAction::Renew(id) => {
                let id = lease_id(id)?;
                let increment = field::duration(data, "increment")?;
                self.lease_renew(&id, increment).await.map(Some)
            }
            LeaseAction::RevokePrefix(prefix, force) => self.lease_revoke_prefix(prefix, force).await.map(|_| None),
            LeaseAction::Revoke(id) => {
                let id = lease_id(id)?;
                // `sync: false` (the `bao lease revoke` default) queues an indexed lease on the timer
                // (failures are retried as for expiry); anything else (token leases, unknown ids) is
                // revoked here and now.
                let queued = !field::bool(data, "sync").ok().flatten().unwrap_or(true) && self.leases.index()?.reschedule(&id, Some(self.leases.now()));
                if !queued {
                    return self.lease_revoke(&id, false).await.map(|()| None);
                }
                self.leases.wake.notify_one();
                Ok(None)
            }
            LeaseAction::Tidy => {
                self.lease_tidy().await?;
                let mut r = Response::default().warn("Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs.");
                r.status = Some(202);
                Ok(Some(r))
            }
        }
    }
}

/// What a `sys/leases/*` path asks for, with the id or prefix from the path ("" when absent).
enum LeaseAction<'a> {
    Lookup(&'a str),
    Renew(&'a str),
    RevokePrefix(&'a str, bool),
    Revoke(&'a str),
    Tidy,
}

/// `base` or `base/<rest>` → `rest` ("" for `base`).
fn strip_any<'a>(path: &'a str, bases: &[&str]) -> Option<&'a str> {
    bases.iter().find_map(|b| {
        if path == *b || path == format!("{b}/") {
            Some("")
        } else {
            path.strip_prefix(b).and_then(|r| r.strip_prefix('/'))
        }
    })
}

/// Revoke due leases for as long as the core lives: sleep until the earliest due time (at most 1 s,
/// so clock jumps are noticed), or until a new lease wakes the loop.
pub(crate) fn spawn_lease_timer(core: std::sync::Weak<Core>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    if core.upgrade().is_none_or(|c| !c.leases.clock.runs_timer()) {
        return;
    }
    handle.spawn(async move {
        loop {
            let wait = {
                let Some(core) = core.upgrade() else { return };
                let now = core.leases.now();
                core.leases.next_due().map_or(1000, |d| (d - now).clamp(0, 1000))
            };
            let Some(core) = core.upgrade() else { return };
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(0))) => {}
                () = core.leases.wake.notified() => {}
            }
            if let Err(e) = core.expire_due_leases().await {
                tracing::warn!(error = %e, "lease expiry pass failed");
            }
        }
    });
}

/// The request path a lease was issued on, as OpenBao's lookup reports it: the lease id without its
/// last (random) segment.
fn lease_path(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::{BackendFactory, Created, MountSettings};
    use crate::seal::InitParams;
    use crate::CatalogEntry;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tresor_logical::{LogicalBackend, Operation, Request};

    /// A native backend that issues a lease per write and counts revocations (failing on demand).
    #[derive(Debug, Default)]
    struct Counting {
        revoked: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl LogicalBackend for Counting {
        async fn handle(&self, request: Request) -> Result<Option<Response>, Error> {
            let ttl = request.data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
            Ok(Some(Response {
                data: Some(Map::new()),
                secret: Some(LeaseSecret { internal_data: "{}".into(), ttl, max_ttl: 0, renewable: true }),
                ..Response::default()
            }))
        }
        async fn revoke_secret(&self, _secret: &LeaseSecret) -> Result<(), Error> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Internal("refused".into()));
            }
            self.revoked.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Factory(Arc<Counting>);

    #[async_trait::async_trait]
    impl BackendFactory for Factory {
        fn supports(&self, kind: &str, auth: bool) -> bool {
            kind == "counting" && !auth
        }
        fn builtin_names(&self, _auth: bool) -> Vec<String> {
            vec!["counting".into()]
        }
        async fn verify(&self, _entry: &CatalogEntry) -> Result<(), Error> {
            Ok(())
        }
        async fn create(&self, _mount: &MountSettings, _plugin: Option<&CatalogEntry>, _storage: Arc<dyn Storage>) -> Result<Created, Error> {
            Ok(Created { backend: self.0.clone(), sha256: String::new(), version: String::new() })
        }
    }

    async fn core_with_clock(clock: Arc<ManualClock>, counting: Arc<Counting>) -> (Arc<Core>, String) {
        let physical = Arc::new(tresor_barrier::physical::InmemBackend::new());
        let config = crate::CoreConfig { clock, backend_factory: Some(Arc::new(Factory(counting))), ..Default::default() };
        let core = Core::new(physical, config).await.unwrap();
        let init = core.init(InitParams { secret_shares: 1, secret_threshold: 1, root_token_id: None, stay_unsealed: true }).await.unwrap();
        core.enable_mount(false, "c", crate::mount::MountRequest::new("counting", "")).await.unwrap();
        (core, init.root_token.to_string())
    }

    fn issue(ttl: u64, token: &str) -> Request {
        let mut data = Map::new();
        data.insert("ttl".into(), json!(ttl));
        Request::new(Operation::Update, "c/creds/x").with_data(data).with_token(token)
    }

    /// Time only moves when the test moves it: nothing is revoked early, everything on time.
    #[tokio::test]
    async fn leases_expire_exactly_when_the_injected_clock_says_so() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let counting = Arc::new(Counting::default());
        let (core, root) = core_with_clock(clock.clone(), counting.clone()).await;
        let short = core.handle_request(issue(10, &root)).await.unwrap();
        assert_eq!(short.lease_duration, 10);
        assert!(short.lease_id.starts_with("c/creds/x/"));
        core.handle_request(issue(20, &root)).await.unwrap();
        assert_eq!(core.leases.count(), 2);

        clock.advance(9_999);
        assert_eq!(core.expire_due_leases().await.unwrap(), 0);
        clock.advance(1);
        assert_eq!(core.expire_due_leases().await.unwrap(), 1);
        assert_eq!(counting.revoked.load(Ordering::SeqCst), 1);
        assert_eq!(core.leases.count(), 1);

        // A failure is retried after the backoff, not before; the lease is kept meanwhile.
        counting.failing.store(true, Ordering::SeqCst);
        clock.advance(10_000);
        assert_eq!(core.expire_due_leases().await.unwrap(), 1);
        assert_eq!(core.leases.count(), 1);
        counting.failing.store(false, Ordering::SeqCst);
        clock.advance(999);
        assert_eq!(core.expire_due_leases().await.unwrap(), 0, "backoff of 1 s not over");
        clock.advance(1);
        assert_eq!(core.expire_due_leases().await.unwrap(), 1);
        assert_eq!(counting.revoked.load(Ordering::SeqCst), 2);
        assert_eq!(core.leases.count(), 0);
    }

    #[tokio::test]
    async fn after_the_retry_budget_a_lease_is_irrevocable_and_reported_until_forced() {
        let clock = Arc::new(ManualClock::new(5_000_000));
        let counting = Arc::new(Counting::default());
        let (core, root) = core_with_clock(clock.clone(), counting.clone()).await;
        counting.failing.store(true, Ordering::SeqCst);
        let lease = core.handle_request(issue(1, &root)).await.unwrap().lease_id;
        clock.advance(1_000);
        for _ in 0..MAX_REVOKE_ATTEMPTS {
            assert_eq!(core.expire_due_leases().await.unwrap(), 1);
            clock.advance(60_000);
        }
        assert_eq!(core.expire_due_leases().await.unwrap(), 0, "no more automatic attempts");
        let look = core.lease_lookup(&lease).await.unwrap().data.unwrap();
        assert_eq!(look["irrevocable"], true);
        assert_eq!(look["revoke_attempts"], MAX_REVOKE_ATTEMPTS);
        assert!(look["revoke_error"].as_str().unwrap().contains("refused"));
        // Survives a seal/unseal (restored from storage, still reported).
        assert_eq!(core.restore_leases().await.unwrap(), 1);
        assert_eq!(core.leases.next_due(), None);
        core.lease_revoke_prefix("c/", true).await.unwrap();
        assert_eq!(core.leases.count(), 0);
        assert_eq!(counting.revoked.load(Ordering::SeqCst), 0, "forced: forgotten without the backend");
    }

    #[test]
    fn index_orders_timers_and_tracks_tokens() {
        let mut i = Index::default();
        i.upsert("a/1", Some(30), "t1");
        i.upsert("a/2", Some(10), "t1");
        i.upsert("b/1", None, "t2");
        assert_eq!(i.timers.first().map(|(t, id)| (*t, id.to_string())), Some((10, "a/2".to_string())));
        i.upsert("a/2", Some(40), "t1");
        assert_eq!(i.timers.len(), 2, "re-upsert replaces the timer");
        i.remove("a/1");
        assert_eq!(i.by_token.get("t1").map(HashSet::len), Some(1));
        i.remove("a/2");
        assert!(!i.by_token.contains_key("t1"));
        assert_eq!(i.by_id.len(), 1);
    }

    #[test]
    fn durations_and_backoff() {
        assert_eq!(short_duration(86400), "24h");
        assert_eq!(short_duration(720000), "200h");
        assert_eq!(short_duration(90), "90s");
        assert_eq!(short_duration(120), "2m");
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(3), 4000);
        assert_eq!(backoff_ms(30), 60_000);
        assert_eq!(strip_any("leases/revoke", &["leases/revoke"]), Some(""));
        assert_eq!(strip_any("leases/revoke/a/b", &["leases/revoke"]), Some("a/b"));
        assert_eq!(strip_any("leases/revoke-prefix/a", &["leases/revoke"]), None);
    }
}
