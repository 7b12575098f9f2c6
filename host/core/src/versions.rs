//! `LIST sys/version-history`: every server version that has unsealed this storage, with when it
//! first did (`bao version-history`). Recorded inside the barrier at unseal.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tresor_logical::{Error, Map};

use crate::core::Core;
use crate::util::{now_unix, obj, rfc3339};

/// Where the history is stored: version → unix time it first unsealed this storage.
pub const VERSION_HISTORY_KEY: &str = "core/version-history";

impl Core {
    async fn load_versions(&self) -> Result<BTreeMap<String, i64>, Error> {
        match self.barrier.get_value(VERSION_HISTORY_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            None => Ok(BTreeMap::new()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("corrupt version history: {e}"))),
        }
    }

    /// Record this version on its first unseal of the storage. Called at unseal.
    pub(crate) async fn record_version(&self) -> Result<(), Error> {
        let mut versions = self.load_versions().await?;
        if versions.contains_key(crate::VERSION) {
            return Ok(());
        }
        versions.insert(crate::VERSION.to_string(), now_unix());
        let raw = serde_json::to_vec(&versions).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(VERSION_HISTORY_KEY, &raw).await.map_err(|e| Error::Internal(e.to_string()))
    }

    /// `LIST sys/version-history`: versions in the order they were installed, each with the one
    /// before it.
    pub(crate) async fn version_history(&self) -> Result<Map, Error> {
        let mut installed: Vec<(String, i64)> = self.load_versions().await?.into_iter().collect();
        installed.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let mut key_info = Map::new();
        let mut previous = Value::Null;
        for (version, at) in &installed {
            // Only this build's date is known; earlier versions' are not recorded.
            let commit_date = if version == crate::VERSION { json!(crate::BUILD_DATE) } else { json!("") };
            key_info.insert(
                version.clone(),
                json!({"commit_date": commit_date, "previous_version": previous, "timestamp_installed": rfc3339(*at)}),
            );
            previous = json!(version);
        }
        let keys: Vec<Value> = installed.iter().map(|(v, _)| json!(v)).collect();
        Ok(obj([("key_info", Value::Object(key_info)), ("keys", Value::Array(keys))]))
    }
}
