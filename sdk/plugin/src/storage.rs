//! The mount's private storage. Keys are relative to the mount; the host refuses keys that try to
//! leave it (`..`, leading `/`, NUL). Values are bytes; the JSON helpers cover the common case.
//!
//! ```no_run
//! use tresor_sdk::storage;
//! storage::put_json("config", &serde_json::json!({"max_versions": 10}))?;
//! let cfg: Option<serde_json::Value> = storage::get_json("config")?;
//! let keys = storage::list("roles/")?;
//! # Ok::<(), tresor_sdk::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The key is not acceptable.
    InvalidKey(String),
    /// The value is over the host's per-entry limit (bytes).
    TooLarge(u64),
    /// The host's storage failed.
    Failed(String),
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidKey(k) => write!(f, "invalid storage key: {k}"),
            Self::TooLarge(n) => write!(f, "value too large (limit {n} bytes)"),
            Self::Failed(m) => write!(f, "storage failed: {m}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// Read a value.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    imp::get(key)
}

/// Write a value.
pub fn put(key: &str, value: &[u8]) -> Result<(), StorageError> {
    imp::put(key, value)
}

/// Delete a value (absent keys are fine).
pub fn delete(key: &str) -> Result<(), StorageError> {
    imp::delete(key)
}

/// The next segments under `prefix`; folders end with `/`.
pub fn list(prefix: &str) -> Result<Vec<String>, StorageError> {
    imp::list(prefix)
}

/// Read and deserialize a JSON value.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, crate::Error> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
    }
}

/// Serialize and write a JSON value.
pub fn put_json<T: Serialize>(key: &str, value: &T) -> Result<(), crate::Error> {
    Ok(put(key, &serde_json::to_vec(value)?)?)
}

/// Delete every key under `prefix`, depth first.
pub fn delete_prefix(prefix: &str) -> Result<(), StorageError> {
    for entry in list(prefix)? {
        let key = format!("{prefix}{entry}");
        if entry.ends_with('/') {
            delete_prefix(&key)?;
        } else {
            delete(&key)?;
        }
    }
    Ok(())
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
mod imp {
    use super::StorageError;
    use crate::bindings::tresor::plugin::storage as wit;

    fn map(e: wit::StorageError) -> StorageError {
        match e {
            wit::StorageError::InvalidKey(k) => StorageError::InvalidKey(k),
            wit::StorageError::TooLarge(n) => StorageError::TooLarge(n),
            wit::StorageError::Failed(m) => StorageError::Failed(m),
        }
    }

    pub(super) fn get(key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        wit::get(key).map_err(map)
    }
    pub(super) fn put(key: &str, value: &[u8]) -> Result<(), StorageError> {
        wit::put(key, value).map_err(map)
    }
    pub(super) fn delete(key: &str) -> Result<(), StorageError> {
        wit::delete(key).map_err(map)
    }
    pub(super) fn list(prefix: &str) -> Result<Vec<String>, StorageError> {
        wit::list(prefix).map_err(map)
    }
}

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
mod imp {
    //! The native mock host: a per-thread ordered map, so parallel tests never share state.
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::StorageError;

    thread_local! {
        static STORE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    fn check(key: &str) -> Result<(), StorageError> {
        if key.starts_with('/') || key.split('/').any(|s| s == "..") || key.contains('\0') {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        Ok(())
    }

    pub(super) fn get(key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check(key)?;
        Ok(STORE.with(|s| s.borrow().get(key).cloned()))
    }
    pub(super) fn put(key: &str, value: &[u8]) -> Result<(), StorageError> {
        check(key)?;
        STORE.with(|s| s.borrow_mut().insert(key.to_string(), value.to_vec()));
        Ok(())
    }
    pub(super) fn delete(key: &str) -> Result<(), StorageError> {
        check(key)?;
        STORE.with(|s| s.borrow_mut().remove(key));
        Ok(())
    }
    pub(super) fn list(prefix: &str) -> Result<Vec<String>, StorageError> {
        check(prefix)?;
        Ok(STORE.with(|s| {
            let mut out: Vec<String> = Vec::new();
            for key in s.borrow().keys().filter(|k| k.starts_with(prefix)) {
                let rest = &key[prefix.len()..];
                let entry = match rest.find('/') {
                    Some(i) => rest[..=i].to_string(),
                    None => rest.to_string(),
                };
                if out.last() != Some(&entry) {
                    out.push(entry);
                }
            }
            out.dedup();
            out
        }))
    }

    /// Clear the mock storage of this thread.
    pub fn reset() {
        STORE.with(|s| s.borrow_mut().clear());
    }
}

/// Clear the in-memory mock storage (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn reset_mock() {
    imp::reset();
}
