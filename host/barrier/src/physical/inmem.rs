//! In-memory physical backend for `-dev` and tests. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{Backend, StorageOp};
use crate::Error;

/// A `BTreeMap` behind a lock (never held across an await).
#[derive(Debug, Default)]
pub struct InmemBackend {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InmemBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>>, Error> {
        self.map.read().map_err(|_| Error::Physical("inmem lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, BTreeMap<String, Vec<u8>>>, Error> {
        self.map.write().map_err(|_| Error::Physical("inmem lock poisoned".into()))
    }
}

#[async_trait]
impl Backend for InmemBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.read()?.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.write()?.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.write()?.remove(key);
        Ok(())
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let map = self.read()?;
        Ok(map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn transaction(&self, ops: Vec<StorageOp>) -> Result<(), Error> {
        let mut map = self.write()?;
        for op in ops {
            match op {
                StorageOp::Put(k, v) => {
                    map.insert(k, v);
                }
                StorageOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "inmem"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inmem_passes_conformance() {
        crate::physical::tests::conformance(&InmemBackend::new()).await;
    }
}
