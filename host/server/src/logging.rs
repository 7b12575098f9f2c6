//! The server's logging: `tracing` to stderr under an `EnvFilter` that `sys/loggers` can change
//! while running (a reload handle), one named logger per part of the server.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// `sys/loggers` names and the `tracing` targets behind them.
const LOGGERS: &[(&str, &str)] = &[
    ("audit", "tresor_core::audit"),
    ("barrier", "tresor_barrier"),
    ("core", "tresor_core"),
    ("expiration", "tresor_core::expiration"),
    ("http", "tresor_http"),
    ("plugin", "tresor_runtime::host"),
    ("runtime", "tresor_runtime"),
    ("server", "tresor"),
    ("token", "tresor_core::token"),
];

/// The filter in force: the configured base (possibly a full directive list), overrides per logger.
#[derive(Debug)]
struct Levels {
    configured: String,
    base: String,
    overrides: BTreeMap<&'static str, String>,
}

impl Levels {
    fn directives(&self) -> String {
        let mut d = self.base.clone();
        for (name, target) in LOGGERS {
            if let Some(level) = self.overrides.get(name) {
                d.push_str(&format!(",{target}={level}"));
            }
        }
        d
    }
}

/// The reloadable filter behind `sys/loggers`.
pub struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    levels: Mutex<Levels>,
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging").finish_non_exhaustive()
    }
}

/// The plain level of a directive list (`info` from `info,hyper=warn`), for display.
fn plain_level(directives: &str) -> String {
    directives
        .split(',')
        .map(str::trim)
        .find(|d| !d.contains('='))
        .filter(|d| matches!(*d, "trace" | "debug" | "info" | "warn" | "error"))
        .unwrap_or("info")
        .to_string()
}

impl Logging {
    /// Install the subscriber with `filter` (`TRESOR_LOG` wins over the configured level).
    pub fn init(level: Option<&str>) -> Option<Self> {
        let configured = std::env::var("TRESOR_LOG").ok().or_else(|| level.map(str::to_owned)).unwrap_or_else(|| "info".into());
        let configured = if EnvFilter::try_new(&configured).is_ok() { configured } else { "info".into() };
        let (filter, handle) = reload::Layer::new(EnvFilter::new(&configured));
        use std::io::IsTerminal as _;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false);
        tracing_subscriber::registry().with(filter).with(fmt).try_init().ok()?;
        Some(Self { handle, levels: Mutex::new(Levels { base: configured.clone(), configured, overrides: BTreeMap::new() }) })
    }

    fn apply(&self, levels: &Levels) -> Result<(), String> {
        let filter = EnvFilter::try_new(levels.directives()).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }

    fn logger(name: &str) -> Result<&'static str, String> {
        LOGGERS.iter().find(|(n, _)| *n == name).map(|(n, _)| *n).ok_or_else(|| format!("logger {name:?} not found"))
    }
}

impl tresor_core::LogLevels for Logging {
    fn levels(&self) -> BTreeMap<String, String> {
        let Ok(levels) = self.levels.lock() else { return BTreeMap::new() };
        let base = plain_level(&levels.base);
        LOGGERS.iter().map(|(n, _)| ((*n).to_string(), levels.overrides.get(n).cloned().unwrap_or_else(|| base.clone()))).collect()
    }

    fn set(&self, logger: Option<&str>, level: &str) -> Result<(), String> {
        let mut levels = self.levels.lock().map_err(|_| "logging lock poisoned".to_string())?;
        match logger {
            None => {
                levels.base = level.to_string();
                levels.overrides.clear();
            }
            Some(name) => {
                let name = Self::logger(name)?;
                levels.overrides.insert(name, level.to_string());
            }
        }
        self.apply(&levels)
    }

    fn reset(&self, logger: Option<&str>) -> Result<(), String> {
        let mut levels = self.levels.lock().map_err(|_| "logging lock poisoned".to_string())?;
        match logger {
            None => {
                levels.base = levels.configured.clone();
                levels.overrides.clear();
            }
            Some(name) => {
                let name = Self::logger(name)?;
                levels.overrides.remove(name);
            }
        }
        self.apply(&levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_put_each_override_after_the_base() {
        let mut levels = Levels { configured: "info".into(), base: "warn".into(), overrides: BTreeMap::new() };
        levels.overrides.insert("core", "debug".into());
        levels.overrides.insert("http", "error".into());
        assert_eq!(levels.directives(), "warn,tresor_core=debug,tresor_http=error");
        assert!(EnvFilter::try_new(levels.directives()).is_ok());
        assert_eq!(plain_level("debug,hyper=warn"), "debug");
        assert_eq!(plain_level("tresor_core=trace"), "info");
    }
}
