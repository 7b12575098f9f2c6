//! A minimal Tresor secrets engine: `info` reports the plugin version; `items/<name>` stores JSON.
//! Start here for your own plugin (docs/writing-a-plugin.md).

use serde_json::{json, Value};
use tresor_sdk::{storage, Backend, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};

/// The plugin.
pub struct MyPlugin;

impl Backend for MyPlugin {
    fn spec() -> Spec {
        Spec::secrets("A template engine that stores items.")
            .path(Path::new("info").operations([Operation::Read]).help("Plugin name and version."))
            .path(
                Path::new("items/{name}")
                    .field(Field::new("value", FieldKind::Str).description("What to store").required())
                    .operations([Operation::Read, Operation::Update, Operation::Delete])
                    .help("One stored item."),
            )
            .path(Path::new("items/").operations([Operation::List]).help("List items."))
    }

    fn handle(req: Request) -> Result<Response, Error> {
        match (req.path_index, req.operation) {
            (0, _) => Ok(Response::data(json!({"plugin": "myplugin", "version": env!("CARGO_PKG_VERSION")}))),
            (1, Operation::Read) => {
                let name = req.captured("name").unwrap_or_default();
                let item: Value = storage::get_json(&format!("items/{name}"))?.ok_or(Error::NotFound)?;
                Ok(Response::data(item))
            }
            (1, Operation::Update) => {
                let name = req.captured("name").unwrap_or_default();
                let value = req.str("value").ok_or_else(|| Error::invalid("missing value"))?;
                storage::put_json(&format!("items/{name}"), &json!({ "value": value }))?;
                Ok(Response::empty())
            }
            (1, Operation::Delete) => {
                storage::delete(&format!("items/{}", req.captured("name").unwrap_or_default()))?;
                Ok(Response::empty())
            }
            (2, Operation::List) => Response::list(storage::list("items/")?),
            _ => Err(Error::UnsupportedOperation),
        }
    }
}

tresor_sdk::export!(MyPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_sdk::Value as V;

    #[test]
    fn stores_and_reads_items() {
        storage::reset_mock();
        let mut put = Request::new(Operation::Update, "items/a").capture("name", "a").with("value", V::Str("1".into()));
        put.path_index = 1;
        MyPlugin::handle(put).unwrap();
        let mut get = Request::new(Operation::Read, "items/a").capture("name", "a");
        get.path_index = 1;
        assert_eq!(MyPlugin::handle(get).unwrap().data.unwrap()["value"], "1");
    }
}
