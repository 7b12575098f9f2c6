//! `sys/loggers`: read and change log levels while the server runs (Vault's API). The core only
//! validates and answers; the server owns the logging system and implements [`LogLevels`].

use std::collections::BTreeMap;

use serde_json::json;
use tresor_logical::{Error, Map};

use crate::core::Core;
use crate::util::field;

/// The server's logging system, as `sys/loggers` sees it.
pub trait LogLevels: Send + Sync + std::fmt::Debug {
    /// Every logger and its level (`trace`, `debug`, `info`, `warn`, `error`).
    fn levels(&self) -> BTreeMap<String, String>;
    /// Set one logger's level, or every logger's (`None`). `Err`: no such logger.
    fn set(&self, logger: Option<&str>, level: &str) -> Result<(), String>;
    /// Back to the configured level: one logger, or all (`None`).
    fn reset(&self, logger: Option<&str>) -> Result<(), String>;
}

/// A level as Vault accepts it, in the form the server uses.
fn level(data: &Map) -> Result<&'static str, Error> {
    let given = field::str(data, "level")?.unwrap_or("");
    if given.is_empty() {
        return Err(Error::invalid("level is required"));
    }
    Ok(match given.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "err" => "error",
        _ => return Err(Error::invalid(format!("invalid level provided: unknown log level: {given}"))),
    })
}

impl Core {
    fn log_levels(&self) -> Result<&dyn LogLevels, Error> {
        self.config.log_levels.as_deref().ok_or_else(|| Error::invalid("this server's log levels cannot be changed at run time"))
    }

    /// `GET sys/loggers` and `sys/loggers/<name>` (an unknown name: no loggers, as Vault).
    pub(crate) fn loggers_json(&self, name: Option<&str>) -> Result<Map, Error> {
        let levels = self.log_levels()?.levels();
        Ok(levels.into_iter().filter(|(k, _)| name.is_none_or(|n| n == k)).map(|(k, v)| (k, json!(v))).collect())
    }

    /// `POST sys/loggers[/<name>]`.
    pub(crate) fn set_log_level(&self, name: Option<&str>, data: &Map) -> Result<(), Error> {
        let level = level(data)?;
        self.log_levels()?.set(name, level).map_err(Error::invalid)?;
        tracing::info!(logger = name.unwrap_or("all"), level, "log level changed");
        Ok(())
    }

    /// `DELETE sys/loggers[/<name>]`.
    pub(crate) fn reset_log_level(&self, name: Option<&str>) -> Result<(), Error> {
        self.log_levels()?.reset(name).map_err(Error::invalid)
    }
}
