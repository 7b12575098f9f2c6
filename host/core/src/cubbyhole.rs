//! Cubbyhole: private key/value storage per token (native host backend). The core rewrites every path
//! to `<token storage id>/<path>` before dispatch, so a token can only ever address its own subtree.

use async_trait::async_trait;
use tresor_barrier::BarrierView;
use tresor_logical::{Error, LogicalBackend, Map, Operation, Request, Response, Storage};

/// The cubbyhole backend.
#[derive(Debug)]
pub(crate) struct Cubbyhole {
    view: BarrierView,
}

impl Cubbyhole {
    pub(crate) fn new(view: BarrierView) -> Self {
        Self { view }
    }
}

#[async_trait]
impl LogicalBackend for Cubbyhole {
    async fn handle(&self, request: Request) -> Result<Option<Response>, Error> {
        let path = request.path.as_str();
        // The first segment is the token's storage id added by the core; the rest is the caller's path.
        let key_part = path.split_once('/').map_or("", |(_, rest)| rest);
        match request.operation {
            Operation::Read => {
                if key_part.is_empty() {
                    return Err(Error::UnsupportedOperation);
                }
                let raw = self.view.get(path).await?.ok_or(Error::NotFound)?;
                let data: Map = serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?;
                Ok(Some(Response::with_data(data)))
            }
            Operation::Create | Operation::Update => {
                if key_part.is_empty() || key_part.ends_with('/') {
                    return Err(Error::invalid("missing path"));
                }
                if request.data.is_empty() {
                    return Err(Error::invalid("missing data fields"));
                }
                let raw = serde_json::to_vec(&request.data).map_err(|e| Error::Internal(e.to_string()))?;
                self.view.put(path, &raw).await?;
                Ok(None)
            }
            Operation::Delete => {
                self.view.delete(path).await?;
                Ok(None)
            }
            Operation::List => {
                let prefix = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
                let keys = self.view.list(&prefix).await?;
                if keys.is_empty() {
                    return Err(Error::NotFound);
                }
                Ok(Some(Response::list(keys)))
            }
            Operation::Patch | Operation::Help => Err(Error::UnsupportedOperation),
        }
    }

    async fn exists(&self, request: &Request) -> Result<Option<bool>, Error> {
        Ok(Some(self.view.get(&request.path).await?.is_some()))
    }
}
